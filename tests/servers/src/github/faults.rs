//! The fake's documented misbehaviours: what GitHub answers when a client hits a primary
//! or secondary rate limit, when an upload fails on GitHub's side, and when a token lacks a
//! permission. A test injects them with [`super::FakeGitHub::inject`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Host, Reply, Request, State, Urls};

/// Which requests an injected fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requests {
    /// Every request to the API or the upload host.
    ApiAndUploads,
    /// Content-creating requests (POST, PATCH, PUT, DELETE) to the API or upload host.
    Writes,
    /// Asset uploads.
    Uploads,
}

impl Requests {
    fn selects(self, host: Host, method: &str) -> bool {
        let api = matches!(host, Host::Api | Host::Upload);
        match self {
            Requests::ApiAndUploads => api,
            Requests::Writes => api && matches!(method, "POST" | "PATCH" | "PUT" | "DELETE"),
            Requests::Uploads => host == Host::Upload && method == "POST",
        }
    }
}

/// An answer GitHub documents for a request it does not carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Primary rate limit: 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`
    /// this many seconds from now.
    PrimaryRateLimit {
        /// Seconds until the window resets.
        reset_in: u64,
    },
    /// Secondary rate limit: `status` (403 or 429) with a message saying so, and a
    /// `retry-after` header when given.
    SecondaryRateLimit {
        /// 403 or 429.
        status: u16,
        /// Seconds in `retry-after`, if sent.
        retry_after: Option<u64>,
    },
    /// A token without the permission: 403 with requests left in the window.
    Forbidden,
    /// An upload fails on GitHub's side with this 5xx status; with `leave_starter` the
    /// asset stays behind in state `starter`, holding its name.
    ServerError {
        /// 500, 502, ...
        status: u16,
        /// Whether a `starter` asset is left.
        leave_starter: bool,
    },
    /// An upload is stored whole, but the answer that says so is lost to a 5xx (a proxy
    /// timing out after the upload host finished).
    ServerErrorAfterStoring {
        /// 502, 504, ...
        status: u16,
    },
}

/// A fault waiting for the requests it selects.
pub(super) struct Injected {
    which: Requests,
    fault: Fault,
    left: usize,
}

impl Injected {
    pub(super) fn new(which: Requests, fault: Fault, times: usize) -> Self {
        Injected {
            which,
            fault,
            left: times,
        }
    }
}

/// The fault this request meets, if any (counting it down).
pub(super) fn take(s: &mut State, host: Host, req: &Request) -> Option<Fault> {
    let injected = s
        .faults
        .iter_mut()
        .find(|f| f.left > 0 && f.which.selects(host, &req.method))?;
    injected.left -= 1;
    Some(injected.fault.clone())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// GitHub's answer for `fault`.
pub(super) fn reply(s: &mut State, fault: Fault, host: Host, req: &Request, urls: &Urls) -> Reply {
    match fault {
        Fault::PrimaryRateLimit { reset_in } => {
            let mut r = Reply::json(
                403,
                json!({"message": "API rate limit exceeded for user ID 1.",
                       "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
            );
            r.headers.extend([
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-used".into(), "5000".into()),
                (
                    "x-ratelimit-reset".into(),
                    (unix_now() + reset_in).to_string(),
                ),
            ]);
            r
        }
        Fault::SecondaryRateLimit {
            status,
            retry_after,
        } => {
            let mut r = Reply::json(
                status,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            );
            r.headers
                .push(("x-ratelimit-remaining".into(), "4000".into()));
            if let Some(seconds) = retry_after {
                r.headers.push(("retry-after".into(), seconds.to_string()));
            }
            r
        }
        Fault::Forbidden => {
            let mut r = Reply::message(403, "Resource not accessible by personal access token");
            r.headers
                .push(("x-ratelimit-remaining".into(), "4999".into()));
            r
        }
        Fault::ServerError {
            status,
            leave_starter,
        } => {
            if leave_starter && host == Host::Upload {
                let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
                let stored = super::uploads::upload(s, req, segs.get(3..).unwrap_or(&[]), urls);
                // The asset just stored has the highest id.
                let newest = s
                    .releases
                    .iter_mut()
                    .flat_map(|r| r.assets.iter_mut())
                    .max_by_key(|a| a.id);
                if let (201, Some(a)) = (stored.status, newest) {
                    a.state = "starter".into();
                }
            }
            Reply::message(status, "Server Error")
        }
        Fault::ServerErrorAfterStoring { status } => {
            if host == Host::Upload {
                let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
                super::uploads::upload(s, req, segs.get(3..).unwrap_or(&[]), urls);
            }
            Reply::message(status, "Server Error")
        }
    }
}
