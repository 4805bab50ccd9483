//! The upload host: `POST /repos/{o}/{r}/releases/{id}/assets?name=`, stored under the
//! name GitHub would give it.

use serde_json::json;

use super::state::asset_json;
use super::{Asset, Reply, Request, State, Urls};

pub(super) fn upload(s: &mut State, req: &Request, rest: &[&str], urls: &Urls) -> Reply {
    let ["releases", id, "assets"] = rest else {
        return Reply::message(404, "Not Found");
    };
    if req.method != "POST" {
        return Reply::message(404, "Not Found");
    }
    let Some(name) = req.query.get("name").map(|n| stored_name(n)) else {
        return Reply::message(422, "Validation Failed: name");
    };
    let Some(i) = s.releases.iter().position(|r| r.id.to_string() == *id) else {
        return Reply::message(404, "Not Found");
    };
    if s.releases[i].assets.iter().any(|a| a.name == name) {
        return Reply::json(
            422,
            json!({"message": "Validation Failed",
                   "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]}),
        );
    }
    s.next_id += 1;
    let a = Asset {
        id: s.next_id,
        name,
        content_type: req
            .header("content-type")
            .unwrap_or("application/octet-stream")
            .to_owned(),
        data: req.body.clone(),
        state: "uploaded".into(),
        downloads: 0,
    };
    let tag = s.releases[i].tag.clone();
    let v = asset_json(s, urls, &tag, &a);
    s.releases[i].assets.push(a);
    Reply::json(201, v)
}

/// The name GitHub stores an uploaded asset under: it renames names with special
/// characters, here (as for `+` and spaces) each character other than a letter, a digit,
/// `.`, `-` or `_` becomes `.`.
pub(super) fn stored_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '.'
            }
        })
        .collect()
}
