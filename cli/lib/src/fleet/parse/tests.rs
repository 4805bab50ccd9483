use super::*;

const UA: &str = "ota-agent/0.1.0 (i=3f9a1c2e8b01;t=sensor;c=stable;v=1.2.0;s=1;r=up)";

#[test]
fn nginx_combined_lines() {
    let line = format!(
        "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET /fleet/sensor.stable.manifest?x=1 HTTP/1.1\" 304 0 \"-\" \"{UA}\""
    );
    let r = nginx(&line).unwrap();
    assert_eq!(
        (r.time, r.method, r.path, r.status, r.user_agent),
        (
            1_796_546_469,
            "GET",
            "/fleet/sensor.stable.manifest",
            304,
            UA
        )
    );
    assert_eq!(r.file_name(), "sensor.stable.manifest");
    assert_eq!(detect(&line), Some(LogFormat::Nginx));
    // nginx escapes quotes inside fields; a request line that is not HTTP is skipped.
    let escaped =
        "1.2.3.4 - - [06/Dec/2026:08:41:09 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"x\\x22y\"";
    assert_eq!(nginx(escaped).unwrap().user_agent, "x\\x22y");
    for bad in [
        "1.2.3.4 - - [06/Dec/2026:08:41:09 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\"",
        "1.2.3.4 - - [06/Dec/2026:08:41:09 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"trunc",
        "1.2.3.4 - - [not a time] \"GET /a HTTP/1.1\" 200 5 \"-\" \"-\"",
        "",
        "garbage",
    ] {
        assert_eq!(nginx(bad), None, "{bad}");
    }
}

/// The first example record of AWS's "Amazon S3 server access log format" page, with
/// a GET of an object and the agent's User-Agent in place of the console's.
#[test]
fn s3_access_log_records() {
    let line = format!(
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 \
         [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT \
         fw/sensor-1.3.0-0a1b2c3d.ota \"GET /amzn-s3-demo-bucket1/fw/sensor-1.3.0-0a1b2c3d.ota HTTP/1.1\" \
         206 - 4096 22751 7 - \"-\" \"{UA}\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= \
         SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com \
         TLSV1.2 - - us-east-1"
    );
    assert_eq!(detect(&line), Some(LogFormat::S3));
    let r = s3(&line).unwrap();
    assert_eq!(
        (r.time, r.method, r.file_name(), r.status, r.user_agent),
        (1_549_411_238, "GET", "sensor-1.3.0-0a1b2c3d.ota", 206, UA)
    );
    // A nginx line is not an S3 record, and the other way round.
    assert_eq!(
        s3(&format!(
            "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET / HTTP/1.1\" 200 0 \"-\" \"{UA}\""
        )),
        None
    );
    assert_eq!(nginx(&line), None);
}

#[test]
fn cloudfront_standard_log_lines() {
    let header = format!("#Fields: {}", CLOUDFRONT_FIELDS.join(" "));
    let columns = CloudfrontColumns::from_header(&header).unwrap();
    assert_eq!(columns, CloudfrontColumns::default());
    let ua = UA.replace(' ', "%20");
    let line = format!(
        "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/fleet/sensor.stable.manifest\t304\t-\t{ua}\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/1.1\t-\t-\t11040\t0.001\tHit\t-\t-\t-\t-"
    );
    assert_eq!(detect(&line), Some(LogFormat::Cloudfront));
    let mut scratch = String::new();
    let r = cloudfront(&line, &columns, &mut scratch).unwrap();
    assert_eq!(
        (r.time, r.method, r.path, r.status, r.user_agent),
        (
            1_575_493_351,
            "GET",
            "/fleet/sensor.stable.manifest",
            304,
            UA
        )
    );
    // Doubly encoded, and a reordered header.
    let mut scratch = String::new();
    let twice = "2019-12-04\t21:02:31\t/a\tGET\t200\ta%2520b";
    let cols = CloudfrontColumns::from_header(
        "#Fields: date time cs-uri-stem cs-method sc-status cs(User-Agent)",
    )
    .unwrap();
    assert_eq!(
        cloudfront(twice, &cols, &mut scratch).unwrap().user_agent,
        "a b"
    );
    assert_eq!(CloudfrontColumns::from_header("#Fields: date time"), None);
    let mut scratch = String::new();
    assert_eq!(
        cloudfront("2019-12-04\t21:02:31\tLAX1", &columns, &mut scratch),
        None
    );
}

/// Every truncation of a valid line (a log cut off mid-write) is skipped or read,
/// never a panic; each is counted once.
#[test]
fn truncated_lines_are_counted_not_fatal() {
    let nginx_line = format!(
        "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET /a.manifest HTTP/1.1\" 304 0 \"-\" \"{UA}\""
    );
    let s3_line = format!(
        "o b [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - ID REST.GET.OBJECT k \"GET /b/k HTTP/1.1\" 200 - 1 1 7 - \"-\" \"{UA}\" -"
    );
    let cf_line =
        format!("2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\th\t/a\t304\t-\t{UA}\t-");
    let mut reader = crate::fleet::source::LogReader::new(None);
    let mut expected = 0;
    for line in [&nginx_line, &s3_line, &cf_line] {
        for end in 1..=line.len() {
            let prefix = &line[..end];
            if prefix.trim().is_empty() || prefix.starts_with('#') {
                continue;
            }
            reader.line(prefix);
            expected += 1;
        }
    }
    let counts = reader.fleet.counts;
    assert_eq!(counts.lines, expected);
    assert_eq!(
        counts.malformed + counts.device_requests + counts.other_clients,
        expected
    );
    // The complete lines were read.
    assert!(counts.device_requests >= 3, "{counts:?}");
}
