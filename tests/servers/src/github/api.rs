//! The REST API's routes: the token check, the repository, releases (create, list with
//! pages, edit, publish, delete) and their assets (list, rename, delete).

use serde_json::{Value, json};

use super::downloads::signed_url;
use super::state::{asset_json, release_json};
use super::uploads::stored_name;
use super::{Host, Release, Reply, Request, State, Urls, downloads, uploads};

pub(super) fn route(s: &mut State, host: Host, req: &Request, urls: &Urls) -> Reply {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match host {
        Host::Api | Host::Upload => {
            let auth = req.header("authorization").unwrap_or("");
            let ok = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("token "))
                .is_some_and(|t| t == s.token);
            if !ok {
                return Reply::message(401, "Bad credentials");
            }
            if segs.len() < 3 || segs[0] != "repos" || segs[1] != s.owner || segs[2] != s.repo {
                return Reply::message(404, "Not Found");
            }
            if host == Host::Upload {
                return uploads::upload(s, req, &segs[3..], urls);
            }
            api(s, req, &segs[3..], urls)
        }
        Host::Web => downloads::web(s, req, &segs, urls),
        Host::Objects => {
            let reply = downloads::objects(s, req, &segs);
            if reply.status == 200
                && let [_, id] = segs[..]
                && let Some(a) = s
                    .releases
                    .iter_mut()
                    .flat_map(|r| r.assets.iter_mut())
                    .find(|a| a.id.to_string() == id)
            {
                a.downloads += 1;
            }
            reply
        }
    }
}

fn api(s: &mut State, req: &Request, rest: &[&str], urls: &Urls) -> Reply {
    let find = |s: &State, id: &str| {
        id.parse::<u64>()
            .ok()
            .and_then(|id| s.releases.iter().position(|r| r.id == id))
    };
    match (req.method.as_str(), rest) {
        ("GET", []) => Reply::json(
            200,
            json!({ "full_name": format!("{}/{}", s.owner, s.repo), "private": false }),
        ),
        ("GET", ["releases"]) => {
            // Newest first.
            let all: Vec<Value> = s
                .releases
                .iter()
                .rev()
                .map(|r| release_json(s, urls, r))
                .collect();
            paginated(req, urls, all)
        }
        ("GET", ["releases", "latest"]) => match s.latest() {
            Some(r) => Reply::json(200, release_json(s, urls, r)),
            None => Reply::message(404, "Not Found"),
        },
        ("POST", ["releases"]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Reply::message(400, "Problems parsing JSON");
            };
            let Some(tag) = body["tag_name"].as_str() else {
                return Reply::message(422, "Validation Failed: tag_name");
            };
            if s.empty_repository {
                return Reply::json(
                    422,
                    json!({"message": "Repository is empty.",
                           "documentation_url": "https://docs.github.com/rest/releases/releases#create-a-release"}),
                );
            }
            // Git's rules for a ref name, in part: GitHub refuses such a tag with 422.
            let bad_tag = tag.is_empty()
                || tag.contains("..")
                || tag.ends_with(".lock")
                || tag
                    .chars()
                    .any(|c| c.is_whitespace() || "~^:?*[\\".contains(c));
            if bad_tag {
                return Reply::json(
                    422,
                    json!({"message": "Validation Failed",
                           "errors": [{"resource": "Release", "code": "custom", "field": "tag_name",
                                       "message": "tag_name is not a valid tag"}]}),
                );
            }
            if s.releases.iter().any(|r| r.tag == tag) {
                return Reply::json(
                    422,
                    json!({"message": "Validation Failed",
                           "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]}),
                );
            }
            s.next_id += 1;
            s.clock += 1;
            let draft = body["draft"].as_bool().unwrap_or(false);
            let r = Release {
                id: s.next_id,
                tag: tag.to_owned(),
                draft,
                published: (!draft).then_some(s.clock),
                body: body["body"].as_str().unwrap_or_default().to_owned(),
                assets: Vec::new(),
            };
            let v = release_json(s, urls, &r);
            s.releases.push(r);
            Reply::json(201, v)
        }
        ("GET", ["releases", "assets", id]) => {
            let Some((tag, a)) = s.releases.iter().find_map(|r| {
                r.assets
                    .iter()
                    .find(|a| a.id.to_string() == *id)
                    .map(|a| (r.tag.clone(), a.clone()))
            }) else {
                return Reply::message(404, "Not Found");
            };
            if req.header("accept") == Some("application/octet-stream") {
                return Reply::redirect(signed_url(urls, a.id));
            }
            Reply::json(200, asset_json(s, urls, &tag, &a))
        }
        ("GET", ["releases", id]) => match find(s, id) {
            Some(i) => Reply::json(200, release_json(s, urls, &s.releases[i])),
            None => Reply::message(404, "Not Found"),
        },
        ("GET", ["releases", id, "assets"]) => match find(s, id) {
            Some(i) => {
                let r = &s.releases[i];
                let all: Vec<Value> = r
                    .assets
                    .iter()
                    .map(|a| asset_json(s, urls, &r.tag, a))
                    .collect();
                paginated(req, urls, all)
            }
            None => Reply::message(404, "Not Found"),
        },
        ("DELETE", ["releases", "assets", id]) => {
            let found = s.releases.iter_mut().find_map(|r| {
                let i = r.assets.iter().position(|a| a.id.to_string() == *id)?;
                Some(r.assets.remove(i))
            });
            match found {
                Some(_) => Reply {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                },
                None => Reply::message(404, "Not Found"),
            }
        }
        // Renames an asset (GitHub: "Update a release asset"); a name another asset of
        // the release holds is refused with 422, as on GitHub.
        ("PATCH", ["releases", "assets", id]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Reply::message(400, "Problems parsing JSON");
            };
            let Some(ri) = s
                .releases
                .iter()
                .position(|r| r.assets.iter().any(|a| a.id.to_string() == *id))
            else {
                return Reply::message(404, "Not Found");
            };
            if let Some(name) = body["name"].as_str().map(stored_name) {
                let r = &mut s.releases[ri];
                if r.assets
                    .iter()
                    .any(|a| a.name == name && a.id.to_string() != *id)
                {
                    return Reply::json(
                        422,
                        json!({"message": "Validation Failed",
                               "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]}),
                    );
                }
                let a = r.assets.iter_mut().find(|a| a.id.to_string() == *id);
                a.expect("found above").name = name;
            }
            let r = &s.releases[ri];
            let a = r
                .assets
                .iter()
                .find(|a| a.id.to_string() == *id)
                .expect("found above");
            Reply::json(200, asset_json(s, urls, &r.tag, a))
        }
        ("PATCH", ["releases", id]) => {
            let Some(i) = find(s, id) else {
                return Reply::message(404, "Not Found");
            };
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return Reply::message(400, "Problems parsing JSON");
            };
            if body["draft"] == json!(false) && s.releases[i].draft {
                s.clock += 1;
                s.releases[i].draft = false;
                s.releases[i].published = Some(s.clock);
            }
            Reply::json(200, release_json(s, urls, &s.releases[i]))
        }
        ("DELETE", ["releases", id]) => match find(s, id) {
            Some(i) => {
                s.releases.remove(i);
                Reply {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            }
            None => Reply::message(404, "Not Found"),
        },
        _ => Reply::message(404, "Not Found"),
    }
}

/// One page of `all` as GitHub serves lists: `per_page` (default 30, at most 100) and
/// `page` from the query, `Link` to the next and last pages.
fn paginated(req: &Request, urls: &Urls, all: Vec<Value>) -> Reply {
    let number = |k: &str, default: usize| {
        req.query
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).min(100);
    let page = number("page", 1);
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let mut reply = Reply::json(200, Value::Array(items));
    let link = |p: usize, rel: &str| {
        format!(
            "<{}{}?per_page={per_page}&page={p}>; rel=\"{rel}\"",
            urls.api, req.path
        )
    };
    if page < last {
        let value = format!("{}, {}", link(page + 1, "next"), link(last, "last"));
        reply.headers.push(("Link".into(), value));
    }
    reply
}
