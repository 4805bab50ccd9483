//! What the fake remembers between requests (repository, releases, counters of the
//! injected deaths and stalls) and how GitHub renders releases and assets as JSON.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Asset, EMBEDDED_ASSETS_MAX, Injected, Logged, Release};

#[derive(Default)]
pub(super) struct State {
    pub(super) owner: String,
    pub(super) repo: String,
    pub(super) token: String,
    pub(super) releases: Vec<Release>,
    pub(super) next_id: u64,
    pub(super) clock: u64,
    pub(super) log: Vec<Logged>,
    pub(super) die_at_upload: Option<usize>,
    pub(super) die_at_write: Option<usize>,
    pub(super) writes: usize,
    pub(super) stall_at_upload: Option<usize>,
    pub(super) holding: bool,
    pub(super) uploads: usize,
    pub(super) dead: bool,
    pub(super) faults: Vec<Injected>,
    pub(super) empty_repository: bool,
}

impl State {
    pub(super) fn latest(&self) -> Option<&Release> {
        self.releases
            .iter()
            .filter(|r| !r.draft)
            .max_by_key(|r| r.published)
    }
}

pub(super) struct Urls {
    pub(super) api: String,
    pub(super) upload: String,
    pub(super) web: String,
    pub(super) objects: String,
}

pub(super) fn asset_json(s: &State, urls: &Urls, tag: &str, a: &Asset) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "size": a.data.len(),
        "download_count": a.downloads,
        "content_type": a.content_type,
        "state": a.state,
        "digest": format!("sha256:{}", hex(&Sha256::digest(&a.data))),
        "url": format!("{}/repos/{}/{}/releases/assets/{}", urls.api, s.owner, s.repo, a.id),
        "browser_download_url":
            format!("{}/{}/{}/releases/download/{tag}/{}", urls.web, s.owner, s.repo, a.name),
    })
}

pub(super) fn release_json(s: &State, urls: &Urls, r: &Release) -> Value {
    json!({
        "id": r.id,
        "tag_name": r.tag,
        "name": r.tag,
        "draft": r.draft,
        "prerelease": false,
        "body": r.body,
        "url": format!("{}/repos/{}/{}/releases/{}", urls.api, s.owner, s.repo, r.id),
        "upload_url":
            format!("{}/repos/{}/{}/releases/{}/assets{{?name,label}}", urls.upload, s.owner, s.repo, r.id),
        "assets": r.assets.iter().take(EMBEDDED_ASSETS_MAX)
            .map(|a| asset_json(s, urls, &r.tag, a)).collect::<Vec<_>>(),
    })
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
