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
//!
//! `latest` is one release per repository: a release a person or another tool published
//! becomes every device's `latest` and lacks the manifests. Planning therefore refuses a
//! latest release without the marker ([`PublishError::ForeignLatest`]): firmware needs a
//! repository of its own. Assets are read page by page from `/releases/{id}/assets`,
//! never from the `assets` array embedded in a release, which GitHub does not promise to
//! be complete. Rate limits, pacing and pagination live in [`super::github_http`].
//!
//! That whole-set path costs one request per file, so it is taken only for the first
//! publish, when the latest release predates the marker or holds more than
//! [`INCREMENTAL_MAX_ASSETS`] assets, and when a tag is given ([`GitHubOptions::tag`]).
//! Otherwise a publish changes the latest release in place ([`incremental`]): new images
//! are added to it and each changed manifest is swapped for its successor by a rename.
//!
//! Why one file of ~700 lines: it is the one [`Destination`] for GitHub, and its steps
//! share the planned release's state (ids, assets, leftovers); the HTTP client, the
//! incremental path and the tests already live in their own files.

mod incremental;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::github_http::{Answer, Http, Listing, message, parse};
pub use super::github_http::{GitHubLimits, WaitNotice};
use super::{
    Destination, Leftover, LeftoverKind, PublishError, RemoteObject, Upload, http_headers,
};
use crate::repo::names;

/// Default REST API base.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Written into the body of every release ota-sign creates; an HTML comment, so
/// GitHub does not show it. A draft carrying it was left by an interrupted publish.
pub const DRAFT_MARKER: &str = "<!-- ota-sign:publish -->";

/// The body releases had before [`DRAFT_MARKER`] existed; a draft with exactly this body
/// is an orphan of an older ota-sign.
const LEGACY_BODY: &str = "Signed OTA release published by ota-sign.";

/// The most assets a latest release may hold for a publish to add to it in place; past
/// it, a new release is made holding only what the manifests name (GitHub's limit is
/// 1,000 assets a release, and an in-place publish never deletes an image).
pub const INCREMENTAL_MAX_ASSETS: usize = 500;

/// Releases per page when listing (GitHub's maximum).
const PER_PAGE: usize = 100;

/// Pages listed at most: orphans are newer than the last finished publish, which cleaned
/// up, so they sit at the top of the newest-first listing.
const MAX_PAGES: usize = 10;

/// Pages of a release's assets read at most: GitHub holds at most 1,000 assets per
/// release, 10 pages of [`PER_PAGE`].
const MAX_ASSET_PAGES: usize = 10;

/// Attempts per upload when GitHub answers 5xx: the first and three retries, after
/// [`GitHubLimits::retry_delay`], twice that, and four times that.
const UPLOAD_ATTEMPTS: u32 = 4;

/// Whether ota-sign made this release: its body carries the marker (or the body of
/// releases older than the marker).
fn is_ota_sign_release(release: &Value) -> bool {
    let body = release["body"].as_str().unwrap_or("");
    body.contains(DRAFT_MARKER) || body.trim() == LEGACY_BODY
}

/// Whether a release is a draft that ota-sign created and never published.
fn is_orphan_draft(release: &Value) -> bool {
    release["draft"] == json!(true) && is_ota_sign_release(release)
}

/// Whether a 422 on release creation is a clash with an existing tag (the one case a
/// different tag name fixes).
fn is_tag_clash(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v["errors"].as_array().into_iter().flatten().any(|e| {
            e["code"].as_str() == Some("already_exists") && e["field"].as_str() == Some("tag_name")
        })
    })
}

/// Connection settings. Not `Debug`: it holds the token.
#[derive(Clone)]
pub struct GitHubOptions {
    /// Token (`GITHUB_TOKEN`).
    pub token: String,
    /// REST API base URL (`--github-api-url`).
    pub api_url: String,
    /// Upload base URL (`--github-upload-url`); by default the one the API announces.
    pub upload_url: Option<String>,
    /// Tag of a new release, which then holds every current file even when the latest
    /// release could be changed in place; by default a publish after the first changes
    /// the latest release, and a first one tags `ota-<unix seconds>`.
    pub tag: Option<String>,
    /// Rate-limit waiting, pacing and retry bounds.
    pub limits: GitHubLimits,
    /// Told each time publish waits for a rate limit, so a pause does not look like a hang.
    pub on_wait: Option<WaitNotice>,
}

#[derive(Clone, Debug)]
struct AssetRef {
    id: u64,
}

/// What an upload that GitHub failed with a 5xx left in the draft.
enum FailedUpload {
    /// Nothing, or a `starter` asset now deleted: send again.
    Cleared,
    /// The asset arrived whole despite the error answer; its id.
    Stored(u64),
}

/// The draft this publish is building.
#[derive(Clone, Debug)]
struct Draft {
    id: u64,
    tag: String,
    upload_url: String,
}

/// The latest release, when this publish changes it in place.
#[derive(Clone, Debug)]
struct InPlace {
    id: u64,
    upload_url: String,
}

/// Publishes as GitHub releases.
pub struct GitHubDestination {
    owner: String,
    repo: String,
    options: GitHubOptions,
    http: Http,
    latest_id: Option<u64>,
    assets: BTreeMap<String, AssetRef>,
    draft: Option<Draft>,
    in_place: Option<InPlace>,
    /// Temporary assets an interrupted publish left in the latest release.
    found_temporaries: Vec<Leftover>,
    /// Of those, the ones to rename into place (by id, to the name they stand for): the
    /// publish was killed after deleting the manifest they replace.
    restores: BTreeMap<u64, String>,
    /// Temporary assets this publish uploaded that are not in place yet (abort deletes
    /// them).
    temporaries: Vec<u64>,
    /// Tells this publish's temporary names apart from any other's.
    nonce: String,
    /// The release this publish began writing into in place: a snapshot taken meanwhile
    /// (to merge the inventory again) must find it still latest.
    writing_to: Option<u64>,
}

impl GitHubDestination {
    /// A destination for `owner/repo`.
    pub fn new(owner: &str, repo: &str, options: GitHubOptions) -> Result<Self, PublishError> {
        let http = Http::new(
            format!("github://{owner}/{repo}"),
            options.limits.clone(),
            options.on_wait.clone(),
        )?;
        Ok(GitHubDestination {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            options,
            http,
            latest_id: None,
            assets: BTreeMap::new(),
            draft: None,
            in_place: None,
            found_temporaries: Vec::new(),
            restores: BTreeMap::new(),
            temporaries: Vec::new(),
            nonce: incremental::nonce(),
            writing_to: None,
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
        self.http
            .client()
            .request(method, url)
            .bearer_auth(&self.options.token)
            .header("Accept", accept)
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// Sends and returns status and body; rate limits and bad credentials are errors
    /// already ([`Http::send`]).
    fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), PublishError> {
        let answer = self.http.send(req)?;
        Ok((answer.status, answer.body))
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

    /// Reads the list at `path` (100 a page, following `Link`) for at most `max_pages`
    /// pages; a 404 is `gone()`, any other refusal names `what`.
    fn list(
        &self,
        path: &str,
        max_pages: usize,
        what: &str,
        gone: impl Fn() -> PublishError,
    ) -> Result<Listing, PublishError> {
        let first = self.api(&format!("{path}?per_page={PER_PAGE}"));
        self.http.list(
            &first,
            |url| self.request(reqwest::Method::GET, url),
            max_pages,
            |answer: Answer| match answer.status {
                StatusCode::NOT_FOUND => gone(),
                s => self.remote(what, s, &answer.body),
            },
        )
    }

    /// Every asset of release `id`, page by page.
    fn release_assets(&self, id: u64) -> Result<Vec<Value>, PublishError> {
        // A 404: deleted since it was read, someone else changed the releases.
        let listing = self.list(
            &format!("/releases/{id}/assets"),
            MAX_ASSET_PAGES,
            "list release assets",
            || PublishError::Concurrent(format!("release {id}")),
        )?;
        if !listing.complete {
            return Err(PublishError::Remote {
                host: self.describe(),
                detail: format!(
                    "release {id} lists more than {} assets, GitHub's limit",
                    MAX_ASSET_PAGES * PER_PAGE
                ),
            });
        }
        Ok(listing.items)
    }

    /// After a 5xx on uploading `name`, removes what the failed upload left in release
    /// `release` (an asset in state `starter` holds the name until deleted), unless the asset
    /// arrived whole with exactly these bytes.
    fn clear_failed_upload(
        &self,
        release: u64,
        name: &str,
        bytes: &[u8],
    ) -> Result<FailedUpload, PublishError> {
        let assets = self.release_assets(release)?;
        let Some(asset) = assets.iter().find(|a| a["name"].as_str() == Some(name)) else {
            return Ok(FailedUpload::Cleared);
        };
        let digest = format!("sha256:{}", hex::encode(super::plan::sha256(bytes)));
        let whole = asset["state"].as_str() == Some("uploaded")
            && asset["size"].as_u64() == Some(bytes.len() as u64)
            && asset["digest"].as_str() == Some(digest.as_str());
        let id = asset["id"].as_u64().unwrap_or_default();
        if whole {
            return Ok(FailedUpload::Stored(id));
        }
        let url = self.api(&format!("/releases/assets/{id}"));
        let (status, body) = self.send(self.request(reqwest::Method::DELETE, &url))?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => {
                Ok(FailedUpload::Cleared)
            }
            s => Err(self.remote(&format!("delete half-uploaded asset {name}"), s, &body)),
        }
    }

    /// GitHub renames assets whose names have special characters; a renamed manifest or
    /// image is one devices never find.
    fn check_stored_name(&self, sent: &str, body: &[u8]) -> Result<u64, PublishError> {
        let asset = parse(body)?;
        let stored = asset["name"].as_str().unwrap_or_default().to_owned();
        if stored == sent {
            return asset["id"]
                .as_u64()
                .ok_or_else(|| self.remote(&format!("asset {sent}"), StatusCode::OK, b"no id"));
        }
        Err(PublishError::Renamed {
            host: self.describe(),
            sent: sent.to_owned(),
            stored,
        })
    }

    /// The upload URL of release `v` (the one given on the command line, or the one the
    /// API announces).
    fn upload_url_of(&self, v: &Value) -> Result<String, PublishError> {
        let id = v["id"].as_u64().unwrap_or_default();
        match &self.options.upload_url {
            Some(base) => Ok(format!(
                "{}/repos/{}/{}/releases/{id}/assets",
                base.trim_end_matches('/'),
                self.owner,
                self.repo
            )),
            None => v["upload_url"]
                .as_str()
                .map(|u| u.split('{').next().unwrap_or(u).to_owned())
                .ok_or_else(|| self.remote("release", StatusCode::OK, b"no upload_url")),
        }
    }

    /// Uploads `bytes` as asset `name` of release `release`, retrying a 5xx after clearing
    /// what it left; returns the asset's id. A 404 means the release is gone, a 422 that
    /// the name is taken: both are another publisher's doing.
    fn upload_asset(
        &self,
        release: u64,
        upload_url: &str,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<u64, PublishError> {
        let mut url = reqwest::Url::parse(upload_url).map_err(|e| PublishError::Remote {
            host: self.describe(),
            detail: format!("bad upload URL {upload_url}: {e}"),
        })?;
        url.query_pairs_mut().append_pair("name", name);
        let mut delay = self.http.limits().retry_delay;
        let mut attempt = 1;
        loop {
            let req = self
                .request(reqwest::Method::POST, url.as_str())
                .header("Content-Type", content_type)
                .body(bytes.to_vec());
            let (status, body) = self.send(req)?;
            match status {
                StatusCode::CREATED => return self.check_stored_name(name, &body),
                StatusCode::NOT_FOUND if self.draft.is_some() => return Err(self.draft_gone()),
                StatusCode::NOT_FOUND => {
                    return Err(PublishError::Concurrent("releases/latest".into()));
                }
                StatusCode::UNPROCESSABLE_ENTITY if message(&body).contains("already_exists") => {
                    return Err(PublishError::Concurrent(name.to_owned()));
                }
                s if s.is_server_error() && attempt < UPLOAD_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                    if let FailedUpload::Stored(id) =
                        self.clear_failed_upload(release, name, bytes)?
                    {
                        return Ok(id);
                    }
                }
                s => return Err(self.remote(&format!("upload {name}"), s, &body)),
            }
        }
    }

    /// Deletes asset `id`; one already gone is not an error.
    fn delete_asset(&self, id: u64) -> Result<(), PublishError> {
        let url = self.api(&format!("/releases/assets/{id}"));
        let (status, body) = self.send(self.request(reqwest::Method::DELETE, &url))?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.remote(&format!("delete asset {id}"), s, &body)),
        }
    }

    /// Our own draft answered 404: another publisher deleted it as an orphan.
    fn draft_gone(&self) -> PublishError {
        let tag = self.draft.as_ref().map_or("", |d| d.tag.as_str());
        PublishError::Concurrent(format!("draft release {tag}"))
    }
}

/// What the listing says of asset `a` (id `id`).
fn remote_object(a: &Value, id: u64) -> RemoteObject {
    let sha256 = a["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .and_then(|h| {
            let mut d = [0u8; 32];
            hex::decode_to_slice(h, &mut d).ok().map(|_| d)
        });
    RemoteObject {
        size: a["size"].as_u64().unwrap_or(0),
        sha256,
        version: Some(id.to_string()),
    }
}

impl Destination for GitHubDestination {
    fn describe(&self) -> String {
        format!("github://{}/{}", self.owner, self.repo)
    }

    fn replaces_whole_set(&self) -> bool {
        self.in_place.is_none()
    }

    fn offers_only_referenced_images(&self) -> bool {
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
        self.in_place = None;
        self.found_temporaries.clear();
        self.restores.clear();
        let Some(latest) = self.latest()? else {
            self.latest_id = None;
            return Ok(out);
        };
        let id = latest["id"]
            .as_u64()
            .ok_or_else(|| self.remote("latest release", StatusCode::OK, b"no id"))?;
        if !is_ota_sign_release(&latest) {
            return Err(PublishError::ForeignLatest {
                host: self.describe(),
                tag: latest["tag_name"].as_str().unwrap_or_default().to_owned(),
                id,
            });
        }
        self.latest_id = Some(id);
        let assets = self.release_assets(id)?;
        let names: BTreeSet<&str> = assets.iter().filter_map(|a| a["name"].as_str()).collect();
        for a in &assets {
            let (Some(name), Some(asset_id)) = (a["name"].as_str(), a["id"].as_u64()) else {
                continue;
            };
            if let Some(temporary) = incremental::temporary(name) {
                let target = temporary.target;
                // Killed between deleting `target` and renaming this into place: it
                // serves `target` again once the leftovers are handled, so plan with it.
                let complete = a["state"].as_str() == Some("uploaded");
                let restore = complete && !names.contains(target) && !out.contains_key(target);
                if restore {
                    self.restores.insert(asset_id, target.to_owned());
                    out.insert(target.to_owned(), remote_object(a, asset_id));
                    self.assets
                        .insert(target.to_owned(), AssetRef { id: asset_id });
                }
                if restore || temporary.is_stale() {
                    self.found_temporaries.push(Leftover {
                        kind: LeftoverKind::TemporaryAsset,
                        name: name.to_owned(),
                        id: Some(asset_id.to_string()),
                    });
                }
                continue;
            }
            if names::classify(name).is_none() {
                continue;
            }
            out.insert(name.to_owned(), remote_object(a, asset_id));
            self.assets
                .insert(name.to_owned(), AssetRef { id: asset_id });
        }
        let marked = latest["body"].as_str().unwrap_or("").contains(DRAFT_MARKER);
        // A tag asked for is a new release asked for (one that drops the images no
        // manifest names any more).
        if marked && self.options.tag.is_none() && assets.len() <= INCREMENTAL_MAX_ASSETS {
            self.in_place = Some(InPlace {
                id,
                upload_url: self.upload_url_of(&latest)?,
            });
        }
        if self
            .writing_to
            .is_some_and(|w| self.in_place.as_ref().map(|p| p.id) != Some(w))
        {
            return Err(PublishError::Concurrent("releases/latest".into()));
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
        let releases = self.list("/releases", MAX_PAGES, "list releases", || {
            PublishError::NotFound(self.describe())
        })?;
        let mut out = self.found_temporaries.clone();
        for r in releases.items.iter().filter(|r| is_orphan_draft(r)) {
            let Some(id) = r["id"].as_u64() else { continue };
            out.push(Leftover {
                kind: LeftoverKind::DraftRelease,
                name: r["tag_name"].as_str().unwrap_or_default().to_owned(),
                id: Some(id.to_string()),
            });
        }
        Ok(out)
    }

    fn remove(&mut self, leftover: &Leftover) -> Result<(), PublishError> {
        if leftover.kind == LeftoverKind::TemporaryAsset {
            return self.remove_temporary(leftover);
        }
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
        if let Some(release) = &self.in_place {
            self.writing_to = Some(release.id);
            return Ok(());
        }
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
                    let upload = self.upload_url_of(&v)?;
                    self.draft = Some(Draft {
                        id,
                        tag,
                        upload_url: upload,
                    });
                    return Ok(());
                }
                // Only a tag clash is fixed by another name; any other 422 ("Repository is
                // empty.", an invalid tag) fails with GitHub's words.
                StatusCode::UNPROCESSABLE_ENTITY if is_tag_clash(&resp) => continue,
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
        if self.in_place.is_some() {
            return self.put_in_place(upload);
        }
        // Neither: a snapshot during the publish found another latest release.
        let draft = self
            .draft
            .clone()
            .ok_or_else(|| PublishError::Concurrent("releases/latest".into()))?;
        let (content_type, _) = http_headers(upload.kind, upload.name);
        self.upload_asset(
            draft.id,
            &draft.upload_url,
            upload.name,
            content_type,
            upload.bytes,
        )
        .map(|_| ())
    }

    fn commit(&mut self) -> Result<(), PublishError> {
        let now_latest = self.latest()?.and_then(|v| v["id"].as_u64());
        if now_latest != self.latest_id {
            return Err(PublishError::Concurrent("releases/latest".into()));
        }
        let Some(id) = self.draft.as_ref().map(|d| d.id) else {
            // In place: every file is in the latest release already.
            return Ok(());
        };
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
        for id in std::mem::take(&mut self.temporaries) {
            let _ = self.delete_asset(id);
        }
    }
}
