//! The download side: the web host's `latest/download` and `download/{tag}` redirects and
//! the object host behind the "signed" URLs (ETag, Range).

use sha2::{Digest, Sha256};

use super::state::hex;
use super::{Reply, Request, State, Urls};

pub(super) fn signed_url(urls: &Urls, asset_id: u64) -> String {
    format!(
        "{}/github-production-release-asset/{asset_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature={:064x}",
        urls.objects,
        u128::from(asset_id).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

pub(super) fn web(s: &State, req: &Request, segs: &[&str], urls: &Urls) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::message(404, "Not Found");
    }
    match segs {
        [o, r, "releases", "latest", "download", name] if *o == s.owner && *r == s.repo => {
            match s.latest() {
                Some(rel) => Reply::redirect(format!(
                    "{}/{}/{}/releases/download/{}/{name}",
                    urls.web, s.owner, s.repo, rel.tag
                )),
                None => Reply::message(404, "Not Found"),
            }
        }
        [o, r, "releases", "download", tag, name] if *o == s.owner && *r == s.repo => {
            let asset = s
                .releases
                .iter()
                .find(|rel| !rel.draft && rel.tag == *tag)
                .and_then(|rel| rel.assets.iter().find(|a| a.name == *name));
            match asset {
                Some(a) => Reply::redirect(signed_url(urls, a.id)),
                None => Reply::message(404, "Not Found"),
            }
        }
        _ => Reply::message(404, "Not Found"),
    }
}

pub(super) fn objects(s: &State, req: &Request, segs: &[&str]) -> Reply {
    let ["github-production-release-asset", id] = segs else {
        return Reply::message(404, "Not Found");
    };
    if !req.query.contains_key("X-Amz-Signature") {
        return Reply::message(403, "AccessDenied");
    }
    let Some(a) = s
        .releases
        .iter()
        .flat_map(|r| r.assets.iter())
        .find(|a| a.id.to_string() == *id)
    else {
        return Reply::message(404, "NoSuchKey");
    };
    let etag = format!("\"{}\"", hex(&Sha256::digest(&a.data)[..16]));
    if req.header("if-none-match") == Some(etag.as_str()) {
        return Reply {
            status: 304,
            headers: vec![("ETag".into(), etag)],
            body: Vec::new(),
        };
    }
    let mut headers = vec![
        ("ETag".into(), etag),
        ("Content-Type".into(), "application/octet-stream".into()),
        ("Accept-Ranges".into(), "bytes".into()),
    ];
    if let Some(range) = req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
        let (a0, a1) = range.split_once('-').unwrap_or((range, ""));
        let len = a.data.len();
        let start: usize = a0.parse().unwrap_or(len);
        let end: usize = a1.parse().map(|e: usize| e + 1).unwrap_or(len).min(len);
        if start >= end {
            return Reply::message(416, "Range Not Satisfiable");
        }
        headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{}/{len}", end - 1),
        ));
        return Reply {
            status: 206,
            headers,
            body: a.data[start..end].to_vec(),
        };
    }
    Reply {
        status: 200,
        headers,
        body: a.data.clone(),
    }
}
