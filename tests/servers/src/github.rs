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

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod faults;
use faults::Injected;
pub use faults::{Fault, Requests};

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

#[derive(Default)]
struct State {
    owner: String,
    repo: String,
    token: String,
    releases: Vec<Release>,
    next_id: u64,
    clock: u64,
    log: Vec<Logged>,
    die_at_upload: Option<usize>,
    die_at_write: Option<usize>,
    writes: usize,
    stall_at_upload: Option<usize>,
    holding: bool,
    uploads: usize,
    dead: bool,
    faults: Vec<Injected>,
    empty_repository: bool,
}

impl State {
    fn latest(&self) -> Option<&Release> {
        self.releases
            .iter()
            .filter(|r| !r.draft)
            .max_by_key(|r| r.published)
    }
}

struct Urls {
    api: String,
    upload: String,
    web: String,
    objects: String,
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
            let (state, stop, urls) = (state.clone(), stop.clone(), urls.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, urls) = (state.clone(), urls.clone());
                    thread::spawn(move || serve(conn, host, &state, &urls));
                }
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// Every release, drafts included, in creation order.
    pub fn releases(&self) -> Vec<Release> {
        self.lock().releases.clone()
    }

    /// Creates a release directly, as a person would in the web interface, and returns its
    /// id: e.g. a draft of someone's own that a publish must leave alone.
    pub fn add_release(&self, tag: &str, draft: bool, body: &str) -> u64 {
        let mut s = self.lock();
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
        self.lock().faults.push(Injected::new(which, fault, times));
    }

    /// Makes release creation fail as on a repository without a commit: GitHub answers
    /// 422 "Repository is empty." (no tag can point anywhere).
    pub fn make_repository_empty(&self) {
        self.lock().empty_repository = true;
    }

    /// The content-creating requests so far (what GitHub's secondary limits count).
    pub fn writes(&self) -> Vec<Logged> {
        self.lock()
            .log
            .iter()
            .filter(|l| l.creates_content())
            .cloned()
            .collect()
    }

    /// The release `latest/download` resolves to.
    pub fn latest(&self) -> Option<Release> {
        self.lock().latest().cloned()
    }

    /// The server dies when the `n`-th upload (counting from 1) arrives: that upload and
    /// every later request on every host get their connection dropped unanswered.
    pub fn die_at_upload(&self, n: usize) {
        self.lock().die_at_upload = Some(n);
    }

    /// The `n`-th upload from now (counting from 1) is held unanswered until [`FakeGitHub::revive`]
    /// (then its connection is dropped), while every other request is served: a slow
    /// upload during which a test can kill the publishing process.
    pub fn stall_at_upload(&self, n: usize) {
        let mut s = self.lock();
        s.stall_at_upload = Some(s.uploads + n);
    }

    /// Whether an upload is being held by [`FakeGitHub::stall_at_upload`] right now.
    pub fn holding(&self) -> bool {
        self.lock().holding
    }

    /// The server dies when the `n`-th content-creating request of its life (counting
    /// from 1, see [`Logged::creates_content`]) arrives: that request and every later one
    /// go unanswered, as when the publishing process is killed just before sending it.
    pub fn die_at_write(&self, n: usize) {
        self.lock().die_at_write = Some(n);
    }

    /// Brings a dead server back, keeping its state (a restarted GitHub); releases a held
    /// upload.
    pub fn revive(&self) {
        let mut s = self.lock();
        s.dead = false;
        s.die_at_upload = None;
        s.die_at_write = None;
        s.stall_at_upload = None;
    }

    /// The URL a device polls for `name` in the latest release.
    pub fn latest_download_url(&self, name: &str) -> String {
        let s = self.lock();
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

struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(&v).expect("json"),
        }
    }

    fn message(status: u16, msg: &str) -> Reply {
        Reply::json(status, json!({ "message": msg }))
    }

    fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location)],
            body: Vec::new(),
        }
    }
}

/// Reads header lines up to the blank line; names lowercased.
pub(crate) fn read_headers(r: &mut impl BufRead) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        let (n, v) = line.split_once(':').ok_or("bad header line")?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

/// Reads a chunked body.
pub(crate) fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            read_headers(r)?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| e.to_string())?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|e| e.to_string())?;
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request(r: &mut impl BufRead) -> Result<Request, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or("empty request")?.to_owned();
    let target = parts.next().ok_or("no target")?.to_owned();
    let headers = read_headers(r)?;
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(r)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().map_err(|_| "bad content-length")?;
        let mut b = vec![0; len];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        b
    } else {
        Vec::new()
    };
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

fn serve(conn: TcpStream, host: Host, state: &Mutex<State>, urls: &Urls) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let Ok(req) = read_request(&mut reader) else {
        return;
    };
    let reply = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let full = if req.query.is_empty() {
            req.path.clone()
        } else {
            let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}?{}", req.path, q.join("&"))
        };
        s.log.push(Logged {
            host,
            method: req.method.clone(),
            path: full,
            at: std::time::Instant::now(),
        });
        if s.log.last().is_some_and(Logged::creates_content) {
            s.writes += 1;
            if s.die_at_write.is_some_and(|n| s.writes >= n) {
                s.dead = true;
            }
        }
        if host == Host::Upload && req.method == "POST" {
            s.uploads += 1;
            if s.die_at_upload.is_some_and(|n| s.uploads >= n) {
                s.dead = true;
            }
            if s.stall_at_upload == Some(s.uploads) {
                s.holding = true;
            }
        }
        if s.holding && host == Host::Upload && req.method == "POST" {
            drop(s);
            hold(state);
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        if s.dead {
            None
        } else if let Some(fault) = faults::take(&mut s, host, &req) {
            Some(faults::reply(&mut s, fault, host, &req, urls))
        } else {
            Some(route(&mut s, host, &req, urls))
        }
    };
    // A dead server answers nothing: dropping the connection is what a killed process does.
    let Some(reply) = reply else {
        let _ = conn.shutdown(std::net::Shutdown::Both);
        return;
    };
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let head_only = req.method == "HEAD";
    let _ = out.write_all(head.as_bytes());
    if !head_only {
        let _ = out.write_all(&reply.body);
    }
    let _ = out.flush();
}

/// Waits until the stall is lifted; the held request is never answered.
fn hold(state: &Mutex<State>) {
    loop {
        thread::sleep(std::time::Duration::from_millis(20));
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.stall_at_upload.is_none() {
            s.holding = false;
            return;
        }
    }
}

fn asset_json(s: &State, urls: &Urls, tag: &str, a: &Asset) -> Value {
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

fn release_json(s: &State, urls: &Urls, r: &Release) -> Value {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn route(s: &mut State, host: Host, req: &Request, urls: &Urls) -> Reply {
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
                return upload(s, req, &segs[3..], urls);
            }
            api(s, req, &segs[3..], urls)
        }
        Host::Web => web(s, req, &segs, urls),
        Host::Objects => {
            let reply = objects(s, req, &segs);
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

fn upload(s: &mut State, req: &Request, rest: &[&str], urls: &Urls) -> Reply {
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
fn stored_name(name: &str) -> String {
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

fn signed_url(urls: &Urls, asset_id: u64) -> String {
    format!(
        "{}/github-production-release-asset/{asset_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature={:064x}",
        urls.objects,
        u128::from(asset_id).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

fn web(s: &State, req: &Request, segs: &[&str], urls: &Urls) -> Reply {
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

fn objects(s: &State, req: &Request, segs: &[&str]) -> Reply {
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

#[cfg(test)]
mod tests {
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
        let post = |name: &str| {
            http::request("POST", &format!("{upload}?name={name}"), &auth, b"x").unwrap()
        };
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
}
