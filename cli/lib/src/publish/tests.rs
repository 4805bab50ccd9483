use super::*;

#[test]
fn targets_parse() {
    let s3 = |bucket: &str, prefix: &str| HostLocation::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
    };
    let cases = [
        ("s3://acme-fw/fw/prod/", s3("acme-fw", "fw/prod")),
        ("s3://acme-fw", s3("acme-fw", "")),
        (
            "github://acme/fw",
            HostLocation::GitHub {
                owner: "acme".into(),
                repo: "fw".into(),
            },
        ),
        ("file:///srv/www", HostLocation::Dir("/srv/www".into())),
        ("out", HostLocation::Dir("out".into())),
    ];
    for (text, location) in cases {
        assert_eq!(HostLocation::parse(text).unwrap(), location, "{text}");
    }
    for bad in [
        "s3://",
        "s3:///x",
        "github://acme",
        "github://a/b/c",
        "ftp://x",
        "",
    ] {
        assert!(
            matches!(
                HostLocation::parse(bad),
                Err(PublishError::BadDestination(_))
            ),
            "{bad}"
        );
    }
    for bad in ["s3://ab", "s3://Bad_Bucket!/prod"] {
        assert!(
            matches!(
                HostLocation::parse(bad),
                Err(PublishError::BadBucketName { .. })
            ),
            "{bad}"
        );
    }
}
