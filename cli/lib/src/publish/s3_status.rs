//! S3 failures classified by what the server answered, not by the words in its error:
//! object_store turns some statuses into typed errors (403 on a GET) and others into a
//! generic error with text (403 on a listing, where S3 says `InvalidAccessKeyId`,
//! `NotSignedUp`, `AccessDenied` or whatever a compatible service chose). So requests go
//! through [`StatusRecorder`], which keeps the status of the last failed answer, and
//! [`classify`] decides from that status, or, when no answer came, from the transport
//! error's kind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpService,
};

use super::PublishError;

/// Connect timeout, as object_store's default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout, as object_store's default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The status of the last answer that was not a success (nor a 304).
#[derive(Clone, Debug, Default)]
pub struct LastFailure(Arc<Mutex<Option<u16>>>);

impl LastFailure {
    /// Forgets the last failure: call before each operation.
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn set(&self, status: u16) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    fn get(&self) -> Option<u16> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes the HTTP clients object_store uses, each recording into one [`LastFailure`].
#[derive(Debug)]
pub struct StatusRecorder(pub LastFailure);

impl HttpConnector for StatusRecorder {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("ota-sign/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(Recording {
            client,
            last: self.0.clone(),
        }))
    }
}

#[derive(Debug)]
struct Recording {
    client: reqwest::Client,
    last: LastFailure,
}

#[async_trait::async_trait]
impl HttpService for Recording {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let resp = self.client.call(req).await?;
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            self.last.set(status.as_u16());
        }
        Ok(resp)
    }
}

/// The class of a failed operation on `name` ("" for the listing).
pub fn classify(
    host: &str,
    name: &str,
    last: &LastFailure,
    e: object_store::Error,
) -> PublishError {
    use object_store::Error as E;
    let detail = |status: Option<u16>| match status {
        Some(s) => format!("HTTP {s}: {e}"),
        None => e.to_string(),
    };
    let status = last.get();
    if matches!(e, E::Precondition { .. } | E::AlreadyExists { .. }) {
        return PublishError::Concurrent(name.to_owned());
    }
    match status {
        Some(401 | 403) => PublishError::Credentials {
            host: host.to_owned(),
            detail: detail(status),
        },
        // A listing or a write answered 404: the bucket is missing (objects are looked up
        // by listing or by reads that take a 404 as "absent").
        Some(404) => PublishError::NotFound(host.to_owned()),
        Some(412 | 409) => PublishError::Concurrent(name.to_owned()),
        Some(_) => PublishError::Remote {
            host: host.to_owned(),
            detail: detail(status),
        },
        None if is_transport(&e) => PublishError::Network {
            host: host.to_owned(),
            detail: detail(None),
        },
        None => PublishError::Remote {
            host: host.to_owned(),
            detail: detail(None),
        },
    }
}

/// Whether no answer came: the connection failed, timed out or broke off.
fn is_transport(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.into(),
        }
    }

    #[test]
    fn the_status_decides_whatever_the_error_text_says() {
        let last = LastFailure::default();
        let class = |status: u16, text: &str| {
            last.clear();
            last.set(status);
            classify("s3://b", "", &last, generic(text)).kind()
        };
        use super::super::FailureKind as K;
        assert_eq!(class(403, "NotSignedUp"), K::Credentials);
        assert_eq!(class(403, "InvalidAccessKeyId"), K::Credentials);
        assert_eq!(class(401, "anything"), K::Credentials);
        assert_eq!(class(404, "NoSuchKey"), K::NotFound);
        assert_eq!(class(500, "AccessDenied"), K::Remote);
        assert_eq!(class(412, "x"), K::Conflict);
        last.clear();
        assert_eq!(
            classify("s3://b", "", &last, generic("AccessDenied")).kind(),
            K::Remote,
            "no status and no transport error: not credentials by its words"
        );
    }
}
