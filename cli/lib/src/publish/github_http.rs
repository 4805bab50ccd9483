//! HTTP plumbing under every GitHub REST call of [`super::github`]: rate limits are told
//! apart from bad credentials and waited out within a bound, content-creating requests are
//! paced, and lists are read page by page along their `Link` headers. Kept apart from the
//! publish steps so either can change without the other.
//!
//! GitHub's documented rules this follows
//! (docs.github.com, "Rate limits for the REST API" and "Best practices"):
//! * a rate-limited request is answered 403 or 429; a primary limit says so with
//!   `x-ratelimit-remaining: 0` and the window's end in `x-ratelimit-reset` (Unix
//!   seconds), a secondary limit with `retry-after` (seconds) or only in the message; with
//!   no time given, wait at least a minute;
//! * content-creating requests (POST, PATCH, PUT, DELETE) are limited to about 80 a minute
//!   and 500 an hour; wait at least a second between them.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::PublishError;

/// Longest total time one publish waits for GitHub's rate limits by default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// Least time between two content-creating requests by default: GitHub's advice of one
/// second keeps a publish at 60 a minute, under the secondary limit of 80.
pub const DEFAULT_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// How long to wait on a secondary rate limit that names no time (GitHub: "at least one
/// minute").
const UNTIMED_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Rate-limited answers one request may meet before the publish stops, even when each
/// asks for no wait at all (`retry-after: 0`): the loop is bounded whatever GitHub says.
const RATE_LIMIT_RETRIES: u32 = 5;

/// Bounds on waiting for GitHub.
#[derive(Clone, Debug)]
pub struct GitHubLimits {
    /// Longest total time one publish waits for rate limits to lift; a limit that needs
    /// longer stops the publish at once, saying when it lifts.
    pub max_wait: Duration,
    /// Least time between two content-creating requests.
    pub write_interval: Duration,
    /// Delay before the first retry of an upload GitHub failed with a 5xx; it doubles
    /// for each further retry.
    pub retry_delay: Duration,
}

impl Default for GitHubLimits {
    fn default() -> Self {
        GitHubLimits {
            max_wait: DEFAULT_MAX_WAIT,
            write_interval: DEFAULT_WRITE_INTERVAL,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// Receives a line for each wait on a rate limit.
pub type WaitNotice = Arc<dyn Fn(&str) + Send + Sync>;

/// One answer, whole.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A list read along its `Link: rel="next"` headers.
pub(super) struct Listing {
    /// The items of every page read.
    pub items: Vec<Value>,
    /// Whether the last page was reached within the page bound.
    pub complete: bool,
}

/// The HTTP client with GitHub's rules applied.
pub(super) struct Http {
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    host: String,
    limits: GitHubLimits,
    on_wait: Option<WaitNotice>,
    waited: Cell<Duration>,
    last_write: Cell<Option<Instant>>,
}

impl Http {
    /// A client for `host` (used in messages).
    pub fn new(
        host: String,
        limits: GitHubLimits,
        on_wait: Option<WaitNotice>,
    ) -> Result<Self, PublishError> {
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
        Ok(Http {
            client,
            rt,
            host,
            limits,
            on_wait,
            waited: Cell::new(Duration::ZERO),
            last_write: Cell::new(None),
        })
    }

    /// The underlying client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The limits in force.
    pub fn limits(&self) -> &GitHubLimits {
        &self.limits
    }

    fn net(&self, e: reqwest::Error) -> PublishError {
        PublishError::Network {
            host: self.host.clone(),
            detail: e.to_string(),
        }
    }

    /// Sends a request, pacing it if it creates content and waiting out rate limits
    /// within [`GitHubLimits::max_wait`]. 401, and 403 that is not a rate limit, are
    /// credential failures; every other status is the caller's to judge.
    pub fn send(&self, req: RequestBuilder) -> Result<Answer, PublishError> {
        self.send_paced(req, true)
    }

    /// Sends like [`Http::send`] but without waiting for the pacing interval: for the one
    /// write that ends a window in which devices get 404 (the rename after the delete of
    /// a replaced manifest), where a second's pause would be a second of 404s.
    pub fn send_unpaced(&self, req: RequestBuilder) -> Result<Answer, PublishError> {
        self.send_paced(req, false)
    }

    fn send_paced(&self, req: RequestBuilder, paced: bool) -> Result<Answer, PublishError> {
        let request = req.build().map_err(|e| self.net(e))?;
        let creates_content = matches!(
            *request.method(),
            Method::POST | Method::PATCH | Method::PUT | Method::DELETE
        );
        let mut limited = 0;
        loop {
            let attempt = request.try_clone().ok_or_else(|| PublishError::Remote {
                host: self.host.clone(),
                detail: "a request body that cannot be sent twice".into(),
            })?;
            if creates_content && paced {
                self.pace();
            } else if creates_content {
                self.last_write.set(Some(Instant::now()));
            }
            let answer = self
                .rt
                .block_on(async {
                    let resp = self.client.execute(attempt).await?;
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.bytes().await?.to_vec();
                    Ok::<_, reqwest::Error>(Answer {
                        status,
                        headers,
                        body,
                    })
                })
                .map_err(|e| self.net(e))?;
            if let Some(wait) = rate_limit_wait(&answer, unix_now()) {
                let left = self.limits.max_wait.saturating_sub(self.waited.get());
                if wait > left || limited >= RATE_LIMIT_RETRIES {
                    return Err(self.rate_limited(&answer, wait));
                }
                if let Some(notice) = &self.on_wait {
                    notice(&self.waiting(&answer, wait));
                }
                std::thread::sleep(wait);
                self.waited.set(self.waited.get() + wait);
                limited += 1;
                continue;
            }
            return match answer.status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Err(PublishError::Credentials {
                        host: self.host.clone(),
                        detail: message(&answer.body),
                    })
                }
                _ => Ok(answer),
            };
        }
    }

    /// Waits until [`GitHubLimits::write_interval`] has passed since the last
    /// content-creating request.
    fn pace(&self) {
        if let Some(last) = self.last_write.get() {
            let due = last + self.limits.write_interval;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.last_write.set(Some(Instant::now()));
    }

    fn waiting(&self, answer: &Answer, wait: Duration) -> String {
        format!(
            "{}: rate limit (GitHub answered {} \"{}\"): waiting {}, at most {} in all (--github-max-wait)",
            self.host,
            answer.status.as_u16(),
            message(&answer.body),
            humantime::format_duration(wait),
            humantime::format_duration(self.limits.max_wait),
        )
    }

    fn rate_limited(&self, answer: &Answer, wait: Duration) -> PublishError {
        let lifts = SystemTime::now() + wait;
        PublishError::RateLimited {
            host: self.host.clone(),
            detail: format!(
                "GitHub answered {} \"{}\"; it lifts in {} (at {}), longer than this publish may still wait ({} in all, --github-max-wait)",
                answer.status.as_u16(),
                message(&answer.body),
                humantime::format_duration(wait),
                humantime::format_rfc3339_seconds(lifts),
                humantime::format_duration(self.limits.max_wait),
            ),
        }
    }

    /// Reads a list from `first_url` on, following `Link: rel="next"` for at most
    /// `max_pages` pages. A page answered with anything but 200 goes to `refused`.
    pub fn list(
        &self,
        first_url: &str,
        request: impl Fn(&str) -> RequestBuilder,
        max_pages: usize,
        refused: impl Fn(Answer) -> PublishError,
    ) -> Result<Listing, PublishError> {
        let mut items = Vec::new();
        let mut url = first_url.to_owned();
        for _ in 0..max_pages {
            let answer = self.send(request(&url))?;
            if answer.status != StatusCode::OK {
                return Err(refused(answer));
            }
            let page: Value = parse(&answer.body)?;
            let Value::Array(page) = page else {
                return Err(PublishError::Remote {
                    host: self.host.clone(),
                    detail: format!("expected a list from {url}"),
                });
            };
            items.extend(page);
            match next_link(&answer.headers) {
                // The token goes with every page: never to another host than the first.
                Some(next) if !same_origin(first_url, &next) => {
                    return Err(PublishError::Remote {
                        host: self.host.clone(),
                        detail: format!("the next page of {first_url} is on another host: {next}"),
                    });
                }
                Some(next) => url = next,
                None => {
                    return Ok(Listing {
                        items,
                        complete: true,
                    });
                }
            }
        }
        Ok(Listing {
            items,
            complete: false,
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// How long GitHub asks to wait, when `answer` is a rate limit rather than a refusal: 403
/// or 429 with `retry-after`, with `x-ratelimit-remaining: 0` (wait until
/// `x-ratelimit-reset`, plus a second for the clocks' rounding), or with a message that
/// says "rate limit"; a 429 is one whatever it says.
fn rate_limit_wait(answer: &Answer, now_unix: u64) -> Option<Duration> {
    if !matches!(
        answer.status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        return None;
    }
    if let Some(seconds) = header(&answer.headers, "retry-after").and_then(|v| v.parse().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header(&answer.headers, "x-ratelimit-remaining") == Some("0") {
        let reset = header(&answer.headers, "x-ratelimit-reset").and_then(|v| v.parse().ok());
        return Some(match reset {
            Some(reset) => Duration::from_secs(u64::saturating_sub(reset, now_unix) + 1),
            None => UNTIMED_LIMIT_WAIT,
        });
    }
    let says_so = message(&answer.body)
        .to_ascii_lowercase()
        .contains("rate limit");
    (says_so || answer.status == StatusCode::TOO_MANY_REQUESTS).then_some(UNTIMED_LIMIT_WAIT)
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), as GitHub paginates.
fn next_link(headers: &HeaderMap) -> Option<String> {
    header(headers, "link")?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// GitHub's `message` from an error body with the `errors` it lists (`field: code` or
/// their own message), or the start of the body.
pub(super) fn message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).chars().take(200).collect();
    };
    let mut text = v["message"].as_str().unwrap_or_default().to_owned();
    let errors: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            match (
                e["message"].as_str(),
                e["field"].as_str(),
                e["code"].as_str(),
            ) {
                (Some(m), _, _) => m.to_owned(),
                (None, field, code) => format!("{}: {}", field.unwrap_or("?"), code.unwrap_or("?")),
            }
        })
        .collect();
    if !errors.is_empty() {
        text.push_str(&format!(" ({})", errors.join("; ")));
    }
    text
}

/// Parses a JSON answer.
pub(super) fn parse(body: &[u8]) -> Result<Value, PublishError> {
    serde_json::from_slice(body).map_err(|e| PublishError::Remote {
        host: "github".into(),
        detail: format!("unexpected answer: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, v.parse().unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rate_limits_are_told_apart_from_refusals() {
        let secs = |a: &Answer| rate_limit_wait(a, 1_000).map(|d| d.as_secs());
        let primary = answer(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1030"),
            ],
            r#"{"message":"API rate limit exceeded for user ID 1."}"#,
        );
        assert_eq!(secs(&primary), Some(31));
        let retry_after = answer(429, &[("retry-after", "7")], "{}");
        assert_eq!(secs(&retry_after), Some(7));
        let secondary = answer(
            403,
            &[("x-ratelimit-remaining", "4000")],
            r#"{"message":"You have exceeded a secondary rate limit."}"#,
        );
        assert_eq!(secs(&secondary), Some(60));
        assert_eq!(secs(&answer(429, &[], "")), Some(60));
        let reset_passed = answer(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")],
            "{}",
        );
        assert_eq!(secs(&reset_passed), Some(1));
        // A token without the permission: requests left, nothing about limits.
        let forbidden = answer(
            403,
            &[("x-ratelimit-remaining", "4999")],
            r#"{"message":"Resource not accessible by personal access token"}"#,
        );
        assert_eq!(secs(&forbidden), None);
        assert_eq!(secs(&answer(401, &[("retry-after", "5")], "")), None);
        assert_eq!(secs(&answer(503, &[("retry-after", "5")], "")), None);
    }

    #[test]
    fn next_link_is_found_among_the_relations() {
        let a = answer(
            200,
            &[(
                "link",
                r#"<https://api.github.com/r?page=1>; rel="prev", <https://api.github.com/r?per_page=100&page=3>; rel="next", <https://api.github.com/r?page=9>; rel="last""#,
            )],
            "[]",
        );
        assert_eq!(
            next_link(&a.headers).as_deref(),
            Some("https://api.github.com/r?per_page=100&page=3")
        );
        let last = answer(
            200,
            &[("link", r#"<https://x/r?page=1>; rel="first""#)],
            "[]",
        );
        assert_eq!(next_link(&last.headers), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn pages_are_followed_only_on_the_same_host() {
        let first = "https://api.github.com/repos/a/b/releases?per_page=100";
        assert!(same_origin(
            first,
            "https://api.github.com/repos/a/b/releases?page=2"
        ));
        for other in [
            "https://evil.example/repos/a/b/releases?page=2",
            "http://api.github.com/repos/a/b/releases?page=2",
            "https://api.github.com:8443/x",
            "not a url",
        ] {
            assert!(!same_origin(first, other), "{other}");
        }
    }
}
