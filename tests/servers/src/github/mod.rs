//! A local stand-in for GitHub Releases, on four loopback ports like GitHub's four hosts:
//!
//! | field         | plays                               | serves                                   |
//! |---------------|-------------------------------------|------------------------------------------|
//! | `api_url`     | `api.github.com`                    | repos, releases (drafts), asset listing   |
//! | `upload_url`  | `uploads.github.com`                | `POST .../releases/{id}/assets?name=`    |
//! | `web_url`     | `github.com`                        | `/{o}/{r}/releases/latest/download/{n}`: 302 -> `/download/{tag}/{n}`: 302 -> objects |
//! | `objects_url` | `objects.githubusercontent.com`     | asset bytes behind a "signed" URL (ETag, Range) |
//!
//! Every API and upload request must carry the token. A test can make the whole server
//! die at the N-th upload ([`FakeGitHub::die_at_upload`]), dropping that connection and
//! every later one, as if the process were killed mid-publish, and can make it misbehave
//! the ways GitHub documents ([`FakeGitHub::inject`]: rate limits, 5xx on upload leaving a
//! `starter` asset, 422 on release creation).
//!
//! As on GitHub, lists are paginated with `Link: <...>; rel="next"` (releases, a release's
//! assets), a release's embedded `assets` array holds at most [`EMBEDDED_ASSETS_MAX`]
//! entries, and an uploaded asset whose name has special characters is stored renamed.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

mod api;
mod downloads;
mod faults;
mod state;
#[cfg(test)]
mod tests;
mod uploads;
mod wire;

use faults::Injected;
pub use faults::{Fault, Requests};
use state::{State, Urls};
use wire::{Reply, Request, serve};

use crate::util::{accept_until, lock};
pub(crate) use wire::{read_chunked, read_headers};

/// How many assets a release's JSON embeds at most, like GitHub, which does not promise a
/// complete `assets` array: the rest only appear in `GET /releases/{id}/assets`.
pub const EMBEDDED_ASSETS_MAX: usize = 100;

/// Which of the four hosts a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The REST API.
    Api,
    /// The upload host.
    Upload,
    /// The web host (`latest/download`).
    Web,
    /// The object storage behind the signed URLs.
    Objects,
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Host.
    pub host: Host,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Logged {
    /// Whether GitHub counts it as content-creating (secondary rate limits: POST, PATCH,
    /// PUT, DELETE on the API or the upload host).
    pub fn creates_content(&self) -> bool {
        matches!(self.host, Host::Api | Host::Upload)
            && matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
    }
}

/// A stored release asset.
#[derive(Clone, Debug)]
pub struct Asset {
    /// Asset id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Content type given at upload.
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// `uploaded`, or `starter` for an upload that failed half-way (it still holds the
    /// name, as on GitHub, until deleted).
    pub state: String,
    /// Whole-file downloads served (`200`), reported as `download_count` like GitHub.
    pub downloads: u64,
}

/// A stored release.
#[derive(Clone, Debug)]
pub struct Release {
    /// Release id.
    pub id: u64,
    /// Tag name.
    pub tag: String,
    /// Whether it is still a draft.
    pub draft: bool,
    /// Order of publication (higher = later); `None` while a draft.
    pub published: Option<u64>,
    /// The description given at creation.
    pub body: String,
    /// Assets in upload order.
    pub assets: Vec<Asset>,
}

/// The running fake. Stops when dropped.
pub struct FakeGitHub {
    /// Base URL of the REST API.
    pub api_url: String,
    /// Base URL of the upload host.
    pub upload_url: String,
    /// Base URL of the web host.
    pub web_url: String,
    /// Base URL of the object host.
    pub objects_url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    ports: Vec<u16>,
}

impl FakeGitHub {
    /// Starts a fake holding one empty repository `owner/repo` that accepts `token`.
    pub fn start(owner: &str, repo: &str, token: &str) -> FakeGitHub {
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback"))
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local addr").port())
            .collect();
        let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
        let urls = Arc::new(Urls {
            api: url(0),
            upload: url(1),
            web: url(2),
            objects: url(3),
        });
        let state = Arc::new(Mutex::new(State {
            owner: owner.into(),
            repo: repo.into(),
            token: token.into(),
            next_id: 1000,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let hosts = [Host::Api, Host::Upload, Host::Web, Host::Objects];
        for (listener, host) in listeners.into_iter().zip(hosts) {
            let (state, urls) = (state.clone(), urls.clone());
            accept_until(listener, stop.clone(), move |conn| {
                serve(conn, host, &state, &urls);
            });
        }
        FakeGitHub {
            api_url: urls.api.clone(),
            upload_url: urls.upload.clone(),
            web_url: urls.web.clone(),
            objects_url: urls.objects.clone(),
            state,
            stop,
            ports,
        }
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Logged> {
        lock(&self.state).log.clone()
    }

    /// Every release, drafts included, in creation order.
    pub fn releases(&self) -> Vec<Release> {
        lock(&self.state).releases.clone()
    }

    /// Creates a release directly, as a person would in the web interface, and returns its
    /// id: e.g. a draft of someone's own that a publish must leave alone.
    pub fn add_release(&self, tag: &str, draft: bool, body: &str) -> u64 {
        let mut s = lock(&self.state);
        s.next_id += 1;
        s.clock += 1;
        let release = Release {
            id: s.next_id,
            tag: tag.to_owned(),
            draft,
            published: (!draft).then_some(s.clock),
            body: body.to_owned(),
            assets: Vec::new(),
        };
        s.releases.push(release);
        s.next_id
    }

    /// Makes the next `times` requests that `which` selects misbehave as `fault` says.
    /// Faults injected earlier are served first.
    pub fn inject(&self, which: Requests, fault: Fault, times: usize) {
        lock(&self.state)
            .faults
            .push(Injected::new(which, fault, times));
    }

    /// Makes release creation fail as on a repository without a commit: GitHub answers
    /// 422 "Repository is empty." (no tag can point anywhere).
    pub fn make_repository_empty(&self) {
        lock(&self.state).empty_repository = true;
    }

    /// The content-creating requests so far (what GitHub's secondary limits count).
    pub fn writes(&self) -> Vec<Logged> {
        lock(&self.state)
            .log
            .iter()
            .filter(|l| l.creates_content())
            .cloned()
            .collect()
    }

    /// The release `latest/download` resolves to.
    pub fn latest(&self) -> Option<Release> {
        lock(&self.state).latest().cloned()
    }

    /// The server dies when the `n`-th upload (counting from 1) arrives: that upload and
    /// every later request on every host get their connection dropped unanswered.
    pub fn die_at_upload(&self, n: usize) {
        lock(&self.state).die_at_upload = Some(n);
    }

    /// The `n`-th upload from now (counting from 1) is held unanswered until [`FakeGitHub::revive`]
    /// (then its connection is dropped), while every other request is served: a slow
    /// upload during which a test can kill the publishing process.
    pub fn stall_at_upload(&self, n: usize) {
        let mut s = lock(&self.state);
        s.stall_at_upload = Some(s.uploads + n);
    }

    /// Whether an upload is being held by [`FakeGitHub::stall_at_upload`] right now.
    pub fn holding(&self) -> bool {
        lock(&self.state).holding
    }

    /// The server dies when the `n`-th content-creating request of its life (counting
    /// from 1, see [`Logged::creates_content`]) arrives: that request and every later one
    /// go unanswered, as when the publishing process is killed just before sending it.
    pub fn die_at_write(&self, n: usize) {
        lock(&self.state).die_at_write = Some(n);
    }

    /// Brings a dead server back, keeping its state (a restarted GitHub); releases a held
    /// upload.
    pub fn revive(&self) {
        let mut s = lock(&self.state);
        s.dead = false;
        s.die_at_upload = None;
        s.die_at_write = None;
        s.stall_at_upload = None;
    }

    /// The URL a device polls for `name` in the latest release.
    pub fn latest_download_url(&self, name: &str) -> String {
        let s = lock(&self.state);
        format!(
            "{}/{}/{}/releases/latest/download/{name}",
            self.web_url, s.owner, s.repo
        )
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for p in &self.ports {
            // Wakes each accept loop so it sees the stop flag.
            let _ = TcpStream::connect(("127.0.0.1", *p));
        }
    }
}
