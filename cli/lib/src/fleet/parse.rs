//! The three access-log formats static hosts write, reduced to [`Request`]s. A line no
//! parser accepts is counted by the caller and skipped: logs hold foreign and truncated
//! lines, and one of them must never hide the rest of the fleet.

use super::record::Request;
use super::time::{parse_common_log_time, parse_date_and_time};

/// A log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// nginx's predefined `combined` format (Apache's too).
    Nginx,
    /// Amazon S3 server access logs.
    S3,
    /// Amazon CloudFront standard (legacy) logs, tab-separated with `#Fields:`.
    Cloudfront,
}

impl LogFormat {
    /// Every format, by the name `--format` and the JSON report use.
    pub const ALL: [(&'static str, LogFormat); 3] = [
        ("nginx", LogFormat::Nginx),
        ("s3", LogFormat::S3),
        ("cloudfront", LogFormat::Cloudfront),
    ];

    /// The format named `name` (as in [`LogFormat::ALL`]).
    pub fn named(name: &str) -> Option<LogFormat> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, format)| format)
    }
}

/// Splits a space-separated line into fields, where `"..."` (with `\"` inside) and
/// `[...]` are one field each, returned without their delimiters: at most `N` fields,
/// their count, and a bit set of which were bracketed. `None` when a quote or bracket is
/// not closed.
struct Fields<'a, const N: usize> {
    f: [&'a str; N],
    count: usize,
    bracketed: u32,
}

fn fields<const N: usize>(line: &str) -> Option<Fields<'_, N>> {
    let mut out = [""; N];
    let mut count = 0;
    let mut bracketed = 0u32;
    let bytes = line.as_bytes();
    let mut at = 0;
    while at < bytes.len() && count < N {
        match bytes[at] {
            b' ' => at += 1,
            b'"' => {
                let start = at + 1;
                let mut end = start;
                loop {
                    match bytes.get(end)? {
                        b'\\' => end += 2,
                        b'"' => break,
                        _ => end += 1,
                    }
                }
                out[count] = line.get(start..end)?;
                count += 1;
                at = end + 1;
            }
            b'[' => {
                let end = at + line[at..].find(']')?;
                out[count] = &line[at + 1..end];
                bracketed |= 1 << count;
                count += 1;
                at = end + 1;
            }
            _ => {
                let end = line[at..].find(' ').map_or(line.len(), |n| at + n);
                out[count] = &line[at..end];
                count += 1;
                at = end;
            }
        }
    }
    Some(Fields {
        f: out,
        count,
        bracketed,
    })
}

fn path_only(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

/// `GET /path?query HTTP/1.1` → method and path.
fn request_line(text: &str) -> Option<(&str, &str)> {
    let mut parts = text.split(' ');
    let method = parts.next().filter(|m| !m.is_empty())?;
    let target = parts.next().filter(|t| t.starts_with('/'))?;
    Some((method, path_only(target)))
}

/// nginx `combined`, as nginx documents it (ngx_http_log_module):
///
/// ```text
/// log_format combined '$remote_addr - $remote_user [$time_local] '
///                     '"$request" $status $body_bytes_sent '
///                     '"$http_referer" "$http_user_agent"';
/// ```
///
/// nginx writes `"` and control characters inside variables as `\xXX`, so a quoted
/// field never contains a bare quote. The `User-Agent` is the last field.
pub fn nginx(line: &str) -> Option<Request<'_>> {
    let Fields {
        f,
        count,
        bracketed,
    } = fields::<10>(line)?;
    if count < 9 || bracketed & (1 << 3) == 0 {
        return None;
    }
    let (method, path) = request_line(f[4])?;
    Some(Request {
        time: parse_common_log_time(f[3])?,
        method,
        path,
        status: f[5].parse().ok()?,
        user_agent: f[8],
    })
}

/// Amazon S3 server access log record. AWS's "Amazon S3 server access log format" page:
/// "Each log record represents one request and consists of space-delimited fields", in
/// this order: Bucket owner, Bucket, Time (`[06/Feb/2019:00:00:38 +0000]`), Remote IP,
/// Requester, Request ID, Operation (e.g. `REST.GET.OBJECT`), Key, Request-URI ("The
/// Request-URI part of the HTTP request message", quoted), HTTP status, Error Code,
/// Bytes Sent, Object Size, Total Time, Turn-Around Time, Referer (quoted), User-Agent
/// (quoted), Version Id, Host Id, Signature Version, Cipher Suite, Authentication Type,
/// Host Header, TLS version, Access Point ARN, aclRequired, Source region. "Any field can
/// be set to `-` to indicate that the data was unknown or unavailable". AWS adds fields
/// at the end over time, so only the first 17 are read.
pub fn s3(line: &str) -> Option<Request<'_>> {
    let Fields {
        f,
        count,
        bracketed,
    } = fields::<17>(line)?;
    if count < 17 || bracketed & (1 << 2) == 0 {
        return None;
    }
    let time = parse_common_log_time(f[2])?;
    let (method, path) = request_line(f[8])?;
    // The Request-URI path starts with the bucket for path-style requests
    // (`/bucket/key`); the file name is the last segment either way.
    Some(Request {
        time,
        method,
        path,
        status: f[9].parse().ok()?,
        user_agent: f[16],
    })
}

/// Field names of CloudFront standard (legacy) logs. AWS's "Standard logging reference",
/// "Log file fields": "The log file for a distribution contains 33 fields", in this
/// order: `date` (UTC, `YYYY-MM-DD`), `time` ("when the CloudFront server finished
/// responding to the request (in UTC)"), `x-edge-location`, `sc-bytes`, `c-ip`,
/// `cs-method`, `cs(Host)`, `cs-uri-stem` ("the portion of the request URL that
/// identifies the path and object"), `sc-status`, `cs(Referer)`, `cs(User-Agent)` ("The
/// value of the User-Agent header in the request"), `cs-uri-query`, `cs(Cookie)`,
/// `x-edge-result-type`, `x-edge-request-id`, `x-host-header`, `cs-protocol`,
/// `cs-bytes`, `time-taken`, `x-forwarded-for`, `ssl-protocol`, `ssl-cipher`,
/// `x-edge-response-result-type`, `cs-protocol-version`, `fle-status`,
/// `fle-encrypted-fields`, `c-port`, `time-to-first-byte`,
/// `x-edge-detailed-result-type`, `sc-content-type`, `sc-content-len`,
/// `sc-range-start`, `sc-range-end`. Each file starts with `#Version: 1.0` and a
/// `#Fields:` line naming the columns, which is what this parser follows (a file
/// without it gets the order above). Values are URL-encoded (a space in a User-Agent is
/// `%20`).
pub const CLOUDFRONT_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// Where the fields the report needs are in a CloudFront file's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudfrontColumns {
    date: usize,
    time: usize,
    method: usize,
    stem: usize,
    status: usize,
    user_agent: usize,
}

impl Default for CloudfrontColumns {
    fn default() -> Self {
        Self::from_names(CLOUDFRONT_FIELDS.iter().copied()).unwrap_or(CloudfrontColumns {
            date: 0,
            time: 1,
            method: 5,
            stem: 7,
            status: 8,
            user_agent: 10,
        })
    }
}

impl CloudfrontColumns {
    /// From a `#Fields: date time ...` line; `None` when a needed field is missing.
    pub fn from_header(line: &str) -> Option<Self> {
        Self::from_names(line.strip_prefix("#Fields:")?.split_whitespace())
    }

    fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> Option<Self> {
        let names: Vec<&str> = names.collect();
        let at = |name: &str| names.iter().position(|n| *n == name);
        Some(CloudfrontColumns {
            date: at("date")?,
            time: at("time")?,
            method: at("cs-method")?,
            stem: at("cs-uri-stem")?,
            status: at("sc-status")?,
            user_agent: at("cs(User-Agent)")?,
        })
    }
}

/// Undoes URL encoding (`%20`); CloudFront encodes some characters twice (`%2520`), so
/// a second pass runs while escapes remain, at most twice in all.
fn url_decode_into(text: &str, out: &mut String) {
    out.clear();
    out.push_str(text);
    for _ in 0..2 {
        if !out.contains('%') {
            return;
        }
        let bytes = std::mem::take(out).into_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
                (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                    decoded.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        *out = String::from_utf8_lossy(&decoded).into_owned();
    }
}

/// One CloudFront line with `columns`; the decoded `User-Agent` goes to `scratch`.
pub fn cloudfront<'a>(
    line: &'a str,
    columns: &CloudfrontColumns,
    scratch: &'a mut String,
) -> Option<Request<'a>> {
    let f: Vec<&str> = line.split('\t').collect();
    let get = |i: usize| f.get(i).copied();
    let time = parse_date_and_time(get(columns.date)?, get(columns.time)?)?;
    let method = get(columns.method).filter(|m| !m.is_empty() && *m != "-")?;
    let path = get(columns.stem).filter(|p| p.starts_with('/'))?;
    let status = get(columns.status)?.parse().ok()?;
    url_decode_into(get(columns.user_agent)?, scratch);
    Some(Request {
        time,
        method,
        path,
        status,
        user_agent: scratch.as_str(),
    })
}

/// The format of one line, judged by its shape: tab-separated is CloudFront; otherwise
/// `[time]` as the third field is S3, as the fourth nginx.
pub fn detect(line: &str) -> Option<LogFormat> {
    if line.contains('\t') {
        return Some(LogFormat::Cloudfront);
    }
    let bracketed = fields::<4>(line)?.bracketed;
    if bracketed & (1 << 2) != 0 {
        Some(LogFormat::S3)
    } else if bracketed & (1 << 3) != 0 {
        Some(LogFormat::Nginx)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
