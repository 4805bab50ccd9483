//! `github://owner/repo` through the GitHub REST API. Devices poll
//! `https://github.com/OWNER/REPO/releases/latest/download/<manifest>`, so "latest" must
//! switch from one complete set to the next in one step:
//!
//! 1. read the current latest release's assets (the snapshot);
//! 2. create a **draft** release (invisible to `latest`);
//! 3. upload every file of the new set to the upload host, images first;
//! 4. check that `latest` is still the release planned against (else a concurrent
//!    publisher won: delete the draft, report a conflict);
//! 5. publish the draft, which makes it `latest`.
//!
//! An interruption anywhere before step 5 leaves the previous release as `latest`, whole,
//! and a draft behind. Drafts are invisible to devices but would pile up, so planning
//! also lists the drafts an earlier ota-sign publish created (their body carries
//! [`DRAFT_MARKER`]) and step 2 is preceded by deleting them. Drafts without the marker
//! are someone else's and never touched. A concurrent publisher's draft looks the same as
//! an orphan: deleting it makes that publisher stop with a conflict, which it would have
//! met anyway when one of the two replaced `latest` under the other.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Destination, Leftover, PublishError, RemoteObject, Upload, http_headers};
use crate::repo::layout;

/// Default REST API base.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Written into the body of every release ota-sign creates; an HTML comment, so
/// GitHub does not show it. A draft carrying it was left by an interrupted publish.
pub const DRAFT_MARKER: &str = "<!-- ota-sign:publish -->";

/// The body releases had before [`DRAFT_MARKER`] existed; a draft with exactly this body
/// is an orphan of an older ota-sign.
const LEGACY_BODY: &str = "Signed OTA release published by ota-sign.";

/// The `kind` of a [`Leftover`] on GitHub.
pub const DRAFT_KIND: &str = "draft-release";

/// Releases per page when listing (GitHub's maximum).
const PER_PAGE: usize = 100;

/// Pages listed at most: orphans are newer than the last finished publish, which cleaned
/// up, so they sit at the top of the newest-first listing.
const MAX_PAGES: usize = 10;

/// Whether a release is a draft that ota-sign created and never published.
fn is_orphan_draft(release: &Value) -> bool {
    let body = release["body"].as_str().unwrap_or("");
    release["draft"] == json!(true) && (body.contains(DRAFT_MARKER) || body.trim() == LEGACY_BODY)
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct GitHubOptions {
    /// Token (`GITHUB_TOKEN`).
    pub token: String,
    /// REST API base URL (`--github-api-url`).
    pub api_url: String,
    /// Upload base URL (`--github-upload-url`); by default the one the API announces.
    pub upload_url: Option<String>,
    /// Tag of the new release; by default `ota-<unix seconds>`.
    pub tag: Option<String>,
}

#[derive(Clone, Debug)]
struct AssetRef {
    id: u64,
}

/// The draft this publish is building.
#[derive(Clone, Debug)]
struct Draft {
    id: u64,
    tag: String,
    upload_url: String,
}

/// Publishes as GitHub releases.
pub struct GitHubDestination {
    owner: String,
    repo: String,
    options: GitHubOptions,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    latest_id: Option<u64>,
    assets: BTreeMap<String, AssetRef>,
    draft: Option<Draft>,
}

impl GitHubDestination {
    /// A destination for `owner/repo`.
    pub fn new(owner: &str, repo: &str, options: GitHubOptions) -> Result<Self, PublishError> {
        let host = format!("github://{owner}/{repo}");
        let remote = |detail: String| PublishError::Remote {
            host: host.clone(),
            detail,
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("ota-sign/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| remote(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| remote(e.to_string()))?;
        Ok(GitHubDestination {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            options,
            client,
            rt,
            latest_id: None,
            assets: BTreeMap::new(),
            draft: None,
        })
    }

    fn api(&self, path: &str) -> String {
        format!(
            "{}/repos/{}/{}{path}",
            self.options.api_url.trim_end_matches('/'),
            self.owner,
            self.repo
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.request_accepting(method, url, "application/vnd.github+json")
    }

    fn request_accepting(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .bearer_auth(&self.options.token)
            .header("Accept", accept)
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    fn net(&self, e: reqwest::Error) -> PublishError {
        PublishError::Network {
            host: self.describe(),
            detail: e.to_string(),
        }
    }

    /// Sends and returns status and body, mapping the statuses every call shares.
    fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), PublishError> {
        let (status, body) = self
            .rt
            .block_on(async {
                let resp = req.send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, body.to_vec()))
            })
            .map_err(|e| self.net(e))?;
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(PublishError::Credentials {
                host: self.describe(),
                detail: message(&body),
            }),
            _ => Ok((status, body)),
        }
    }

    fn remote(&self, what: &str, status: StatusCode, body: &[u8]) -> PublishError {
        PublishError::Remote {
            host: self.describe(),
            detail: format!("{what}: HTTP {status}: {}", message(body)),
        }
    }

    fn latest(&self) -> Result<Option<Value>, PublishError> {
        let (status, body) =
            self.send(self.request(reqwest::Method::GET, &self.api("/releases/latest")))?;
        match status {
            StatusCode::OK => Ok(Some(parse(&body)?)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self.remote("latest release", s, &body)),
        }
    }

    fn delete_draft(&mut self) {
        if let Some(draft) = self.draft.take() {
            let url = self.api(&format!("/releases/{}", draft.id));
            let _ = self.send(self.request(reqwest::Method::DELETE, &url));
        }
    }

    /// Our own draft answered 404: another publisher deleted it as an orphan.
    fn draft_gone(&self) -> PublishError {
        let tag = self.draft.as_ref().map_or("", |d| d.tag.as_str());
        PublishError::Concurrent(format!("draft release {tag}"))
    }
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

fn parse(body: &[u8]) -> Result<Value, PublishError> {
    serde_json::from_slice(body).map_err(|e| PublishError::Remote {
        host: "github".into(),
        detail: format!("unexpected answer: {e}"),
    })
}

impl Destination for GitHubDestination {
    fn describe(&self) -> String {
        format!("github://{}/{}", self.owner, self.repo)
    }

    fn replaces_whole_set(&self) -> bool {
        true
    }

    fn snapshot(&mut self) -> Result<BTreeMap<String, RemoteObject>, PublishError> {
        let (status, body) = self.send(self.request(reqwest::Method::GET, &self.api("")))?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(PublishError::NotFound(self.describe())),
            s => return Err(self.remote("repository", s, &body)),
        }
        let mut out = BTreeMap::new();
        self.assets.clear();
        let Some(latest) = self.latest()? else {
            self.latest_id = None;
            return Ok(out);
        };
        self.latest_id = latest["id"].as_u64();
        for a in latest["assets"].as_array().into_iter().flatten() {
            let (Some(name), Some(id)) = (a["name"].as_str(), a["id"].as_u64()) else {
                continue;
            };
            if layout::classify(name).is_none() {
                continue;
            }
            let sha256 = a["digest"]
                .as_str()
                .and_then(|d| d.strip_prefix("sha256:"))
                .and_then(|h| {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(h, &mut d).ok().map(|_| d)
                });
            out.insert(
                name.to_owned(),
                RemoteObject {
                    size: a["size"].as_u64().unwrap_or(0),
                    sha256,
                    version: Some(id.to_string()),
                },
            );
            self.assets.insert(name.to_owned(), AssetRef { id });
        }
        Ok(out)
    }

    fn fetch(&mut self, name: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let Some(asset) = self.assets.get(name) else {
            return Ok(None);
        };
        // The API answers with a redirect to a signed URL on another host; reqwest
        // follows it and drops the Authorization header on the way, as it must.
        let url = self.api(&format!("/releases/assets/{}", asset.id));
        let req = self.request_accepting(reqwest::Method::GET, &url, "application/octet-stream");
        let (status, body) = self.send(req)?;
        match status {
            StatusCode::OK => Ok(Some(body)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self.remote(name, s, &body)),
        }
    }

    fn leftovers(&mut self) -> Result<Vec<Leftover>, PublishError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = self.api(&format!("/releases?per_page={PER_PAGE}&page={page}"));
            let (status, body) = self.send(self.request(reqwest::Method::GET, &url))?;
            match status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Err(PublishError::NotFound(self.describe())),
                s => return Err(self.remote("list releases", s, &body)),
            }
            let releases = parse(&body)?;
            let releases = releases.as_array().map_or(&[][..], Vec::as_slice);
            for r in releases.iter().filter(|r| is_orphan_draft(r)) {
                let Some(id) = r["id"].as_u64() else { continue };
                out.push(Leftover {
                    kind: DRAFT_KIND,
                    name: r["tag_name"].as_str().unwrap_or_default().to_owned(),
                    id: Some(id.to_string()),
                });
            }
            if releases.len() < PER_PAGE {
                break;
            }
        }
        Ok(out)
    }

    fn remove(&mut self, leftover: &Leftover) -> Result<(), PublishError> {
        let id = leftover.id.as_deref().unwrap_or_default();
        let url = self.api(&format!("/releases/{id}"));
        let (status, body) = self.send(self.request(reqwest::Method::DELETE, &url))?;
        match status {
            // Gone already: another publisher cleaned up first.
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.remote(&format!("delete draft release {}", leftover.name), s, &body)),
        }
    }

    fn begin(&mut self) -> Result<(), PublishError> {
        let base = self.options.tag.clone().unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("ota-{now}")
        });
        for attempt in 0..10 {
            let tag = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let body = json!({
                "tag_name": tag,
                "name": tag,
                "draft": true,
                "body": format!("{LEGACY_BODY}\n\n{DRAFT_MARKER}"),
            });
            let req = self
                .request(reqwest::Method::POST, &self.api("/releases"))
                .header("Content-Type", "application/json")
                .body(body.to_string());
            let (status, resp) = self.send(req)?;
            match status {
                StatusCode::CREATED => {
                    let v = parse(&resp)?;
                    let id = v["id"]
                        .as_u64()
                        .ok_or_else(|| self.remote("create release", status, &resp))?;
                    let upload = match &self.options.upload_url {
                        Some(base) => format!(
                            "{}/repos/{}/{}/releases/{id}/assets",
                            base.trim_end_matches('/'),
                            self.owner,
                            self.repo
                        ),
                        None => v["upload_url"]
                            .as_str()
                            .map(|u| u.split('{').next().unwrap_or(u).to_owned())
                            .ok_or_else(|| self.remote("create release", status, &resp))?,
                    };
                    self.draft = Some(Draft {
                        id,
                        tag,
                        upload_url: upload,
                    });
                    return Ok(());
                }
                StatusCode::UNPROCESSABLE_ENTITY if message(&resp).contains("Validation") => {
                    continue;
                }
                StatusCode::NOT_FOUND => return Err(PublishError::NotFound(self.describe())),
                s => return Err(self.remote("create release", s, &resp)),
            }
        }
        Err(PublishError::Remote {
            host: self.describe(),
            detail: format!("no free tag name after {base}-9"),
        })
    }

    fn put(&mut self, upload: Upload<'_>) -> Result<(), PublishError> {
        let upload_url = self
            .draft
            .as_ref()
            .map(|d| d.upload_url.clone())
            .expect("begin() creates the draft before any put()");
        let (content_type, _) = http_headers(upload.kind, upload.name);
        let mut url = reqwest::Url::parse(&upload_url).map_err(|e| PublishError::Remote {
            host: self.describe(),
            detail: format!("bad upload URL {upload_url}: {e}"),
        })?;
        url.query_pairs_mut().append_pair("name", upload.name);
        let req = self
            .request(reqwest::Method::POST, url.as_str())
            .header("Content-Type", content_type)
            .body(upload.bytes.to_vec());
        let (status, body) = self.send(req)?;
        match status {
            StatusCode::CREATED => Ok(()),
            StatusCode::NOT_FOUND => Err(self.draft_gone()),
            s => Err(self.remote(&format!("upload {}", upload.name), s, &body)),
        }
    }

    fn commit(&mut self) -> Result<(), PublishError> {
        let id = self.draft.as_ref().expect("begin() creates the draft").id;
        let now_latest = self.latest()?.and_then(|v| v["id"].as_u64());
        if now_latest != self.latest_id {
            return Err(PublishError::Concurrent("releases/latest".into()));
        }
        let req = self
            .request(
                reqwest::Method::PATCH,
                &self.api(&format!("/releases/{id}")),
            )
            .header("Content-Type", "application/json")
            .body(json!({ "draft": false, "make_latest": "true" }).to_string());
        let (status, body) = self.send(req)?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(self.draft_gone()),
            s => return Err(self.remote("publish release", s, &body)),
        }
        self.draft = None;
        Ok(())
    }

    fn abort(&mut self) {
        self.delete_draft();
    }
}
