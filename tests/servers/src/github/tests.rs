//! The fake against the GitHub behaviour publish relies on, through a device-like client.

use serde_json::{Value, json};

use super::*;
use crate::http;

#[test]
fn draft_is_invisible_until_published_and_latest_redirects_twice() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let auth = [("Authorization", "Bearer t0k")];
    let r = http::request(
        "POST",
        &format!("{}/repos/acme/fw/releases", gh.api_url),
        &auth,
        br#"{"tag_name":"v1","draft":true}"#,
    )
    .unwrap();
    assert_eq!(r.status, 201);
    let rel: Value = serde_json::from_slice(&r.body).unwrap();
    let upload = rel["upload_url"]
        .as_str()
        .unwrap()
        .replace("{?name,label}", "");
    assert!(upload.starts_with(&gh.upload_url));
    let r = http::request("POST", &format!("{upload}?name=a.bin"), &auth, b"hello").unwrap();
    assert_eq!(r.status, 201);
    let url = gh.latest_download_url("a.bin");
    assert_eq!(http::get(&url, &[]).unwrap().status, 404);
    let id = rel["id"].as_u64().unwrap();
    let r = http::request(
        "PATCH",
        &format!("{}/repos/acme/fw/releases/{id}", gh.api_url),
        &auth,
        br#"{"draft":false}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let (resp, hops) = http::get_following(&url, &[]).unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(hops.len(), 3);
    assert!(hops[1].starts_with(&gh.web_url));
    assert!(hops[2].starts_with(&gh.objects_url));
}

#[test]
fn asset_rename_moves_the_download_and_refuses_a_taken_name() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let id = gh.add_release("v1", false, "body");
    let auth = [("Authorization", "Bearer t0k")];
    let upload = format!("{}/repos/acme/fw/releases/{id}/assets", gh.upload_url);
    let mut ids = Vec::new();
    for (name, data) in [("a.bin", b"old"), ("a.bin.tmp", b"new")] {
        let r = http::request("POST", &format!("{upload}?name={name}"), &auth, data).unwrap();
        assert_eq!(r.status, 201);
        ids.push(
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let rename = |id: u64, name: &str| {
        let url = format!("{}/repos/acme/fw/releases/assets/{id}", gh.api_url);
        let body = json!({ "name": name }).to_string();
        http::request("PATCH", &url, &auth, body.as_bytes()).unwrap()
    };
    let taken = rename(ids[1], "a.bin");
    assert_eq!(taken.status, 422);
    assert!(String::from_utf8_lossy(&taken.body).contains("already_exists"));
    assert_eq!(rename(ids[0], "a.bin.old").status, 200);
    let url = gh.latest_download_url("a.bin");
    assert_eq!(http::get_following(&url, &[]).unwrap().0.status, 404);
    let moved = rename(ids[1], "a.bin");
    assert_eq!(moved.status, 200);
    let v: Value = serde_json::from_slice(&moved.body).unwrap();
    assert_eq!(v["name"], "a.bin");
    let (resp, _) = http::get_following(&url, &[]).unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"new"[..]));
    assert_eq!(rename(999_999, "x").status, 404);
    // Two uploads and four renames, refused ones included: GitHub counts requests.
    assert_eq!(gh.writes().len(), 6);
}

#[test]
fn releases_are_listed_newest_first_in_pages_with_their_body() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    for i in 0..5 {
        gh.add_release(&format!("v{i}"), i == 4, &format!("body {i}"));
    }
    let list = |q: &str| -> Vec<Value> {
        let url = format!("{}/repos/acme/fw/releases{q}", gh.api_url);
        let r = http::get(&url, &[("Authorization", "Bearer t0k")]).unwrap();
        assert_eq!(r.status, 200);
        serde_json::from_slice::<Value>(&r.body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let tags = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|r| r["tag_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = list("");
    assert_eq!(tags(&all), ["v4", "v3", "v2", "v1", "v0"]);
    assert_eq!(
        (all[0]["draft"].clone(), all[0]["body"].clone()),
        (json!(true), json!("body 4"))
    );
    assert_eq!(tags(&list("?per_page=2&page=2")), ["v2", "v1"]);
    assert_eq!(tags(&list("?per_page=2&page=3")), ["v0"]);
    assert!(list("?per_page=2&page=4").is_empty());
}

#[test]
fn assets_past_the_embedded_hundred_are_listed_in_linked_pages() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let auth = [("Authorization", "Bearer t0k")];
    let id = gh.add_release("v1", true, "");
    let upload = format!("{}/repos/acme/fw/releases/{id}/assets", gh.upload_url);
    for i in 0..122 {
        let r = http::request("POST", &format!("{upload}?name=a{i:03}"), &auth, b"x").unwrap();
        assert_eq!(r.status, 201);
    }
    let r = http::get(
        &format!("{}/repos/acme/fw/releases/{id}", gh.api_url),
        &auth,
    )
    .unwrap();
    let rel: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(rel["assets"].as_array().unwrap().len(), EMBEDDED_ASSETS_MAX);

    let mut url = format!(
        "{}/repos/acme/fw/releases/{id}/assets?per_page=100",
        gh.api_url
    );
    let mut names = Vec::new();
    for _ in 0..3 {
        let r = http::get(&url, &auth).unwrap();
        let page: Value = serde_json::from_slice(&r.body).unwrap();
        names.extend(page.as_array().unwrap().iter().map(|a| a["name"].clone()));
        let Some(link) = r.header("link") else { break };
        let next = link.split(", ").find(|l| l.ends_with("rel=\"next\""));
        let Some(next) = next else { break };
        url = next[1..next.find('>').unwrap()].to_owned();
    }
    assert_eq!(names.len(), 122);
    assert_eq!(names[121], json!("a121"));
}

#[test]
fn faults_answer_as_github_documents_and_starter_assets_hold_their_name() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let auth = [("Authorization", "Bearer t0k")];
    let repo = format!("{}/repos/acme/fw", gh.api_url);
    gh.inject(
        Requests::ApiAndUploads,
        Fault::PrimaryRateLimit { reset_in: 60 },
        1,
    );
    let r = http::get(&repo, &auth).unwrap();
    assert_eq!(
        (r.status, r.header("x-ratelimit-remaining")),
        (403, Some("0"))
    );
    assert!(r.header("x-ratelimit-reset").is_some());
    assert_eq!(http::get(&repo, &auth).unwrap().status, 200, "only once");

    let id = gh.add_release("v1", true, "");
    let upload = format!("{}/repos/acme/fw/releases/{id}/assets", gh.upload_url);
    gh.inject(
        Requests::Uploads,
        Fault::ServerError {
            status: 502,
            leave_starter: true,
        },
        1,
    );
    let post =
        |name: &str| http::request("POST", &format!("{upload}?name={name}"), &auth, b"x").unwrap();
    assert_eq!(post("a.ota").status, 502);
    assert_eq!(gh.releases()[0].assets[0].state, "starter");
    assert_eq!(
        post("a.ota").status,
        422,
        "the starter asset holds the name"
    );
    let renamed: Value = serde_json::from_slice(&post("b+1.ota").body).unwrap();
    assert_eq!(renamed["name"], json!("b.1.ota"));
}

#[test]
fn wrong_token_is_refused() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    let r = http::get(
        &format!("{}/repos/acme/fw", gh.api_url),
        &[("Authorization", "Bearer nope")],
    )
    .unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn dying_server_drops_connections() {
    let gh = FakeGitHub::start("acme", "fw", "t0k");
    gh.die_at_upload(1);
    let url = format!("{}/repos/acme/fw/releases/1/assets?name=x", gh.upload_url);
    assert!(http::request("POST", &url, &[("Authorization", "Bearer t0k")], b"x").is_err());
    assert!(http::get(&format!("{}/repos/acme/fw", gh.api_url), &[]).is_err());
}
