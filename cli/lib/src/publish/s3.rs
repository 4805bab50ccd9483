//! `s3://bucket/prefix` through `object_store`: standard AWS credential environment,
//! endpoint override for S3-compatible services, conditional writes (`If-None-Match: *`
//! for new objects, `If-Match: <etag>` for manifests and the inventory), and the cache
//! headers devices and CDNs rely on. Each object carries its SHA-256 as
//! `x-amz-meta-sha256`.
//!
//! A republish must not cost a request per image ever released: the listing gives each
//! object's ETag, and a small state object, [`STATE_NAME`], remembers the SHA-256 of each
//! object at the ETag it had. An object whose ETag is unchanged needs no request; only
//! one the state does not know (written by someone else, or before the state existed)
//! costs a HEAD, once.
//!
//! Credentials come from the environment (static keys, web identity, container
//! credentials); with none configured, publish fails at once instead of asking the
//! instance-metadata service, which it asks only when told to
//! ([`S3Options::instance_metadata`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::s3_status::{LastFailure, StatusRecorder, classify};
use super::{Destination, Precondition, PublishError, RemoteObject, Upload, http_headers};
use crate::repo::names;

const SHA256_META: &str = "sha256";

/// Name of the state object under the prefix: hidden, outside the layout.
pub const STATE_NAME: &str = ".ota-sign-digests.json";

/// Connection settings beyond the environment.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// Endpoint URL for S3-compatible services (`--s3-endpoint`, else `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Access key; by default `AWS_ACCESS_KEY_ID` and the rest of the AWS chain.
    pub access_key: Option<String>,
    /// Secret key; by default `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<String>,
    /// Region; by default `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Whether the EC2 instance-metadata service may supply credentials when the
    /// environment configures none (`--s3-instance-metadata`).
    pub instance_metadata: bool,
}

/// What the state object holds: per object, its ETag and the SHA-256 of its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    format: u32,
    objects: BTreeMap<String, Known>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    etag: String,
    /// Last-modified time, for servers whose listing has no ETags (s3s-fs, some
    /// S3-compatible services): with the size, it stands in for the ETag there.
    modified: Option<String>,
    size: u64,
    sha256: String,
}

impl Known {
    /// Whether the listed object is still the one whose digest this records.
    fn describes(&self, meta: &ObjectMeta) -> bool {
        match &meta.e_tag {
            Some(etag) => same_etag(etag) == self.etag,
            None => {
                self.size == meta.size
                    && self.modified.as_deref() == Some(meta.last_modified.to_rfc3339().as_str())
            }
        }
    }

    fn sha256(&self) -> Option<[u8; 32]> {
        let mut d = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut d).ok().map(|_| d)
    }
}

/// Publishes into an S3 bucket under a prefix.
pub struct S3Destination {
    bucket: String,
    prefix: String,
    store: Arc<AmazonS3>,
    rt: tokio::runtime::Runtime,
    last_failure: LastFailure,
    /// The state as read from the host.
    stored: State,
    /// The state as this publish knows it: confirmed by the listing, learned by HEADs
    /// and uploads.
    learned: State,
    /// Whether the last listing gave every object an ETag (AWS does): then the state
    /// needs no times, and no listing after the uploads.
    listing_has_etags: bool,
}

/// An ETag as compared: servers differ in quoting it between a PUT's answer and a
/// listing.
fn same_etag(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// Whether the environment (or the options) configure credentials, as object_store would
/// pick them up: static keys, a web identity, or container credentials.
fn credentials_configured(builder: &AmazonS3Builder) -> bool {
    let set = |k: AmazonS3ConfigKey| builder.get_config_value(&k).is_some_and(|v| !v.is_empty());
    (set(AmazonS3ConfigKey::AccessKeyId) && set(AmazonS3ConfigKey::SecretAccessKey))
        || (set(AmazonS3ConfigKey::WebIdentityTokenFile) && set(AmazonS3ConfigKey::RoleArn))
        || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
        || (set(AmazonS3ConfigKey::ContainerCredentialsFullUri)
            && set(AmazonS3ConfigKey::ContainerAuthorizationTokenFile))
}

/// The S3 client `publish` and `fleet status` share: credentials, region and endpoint
/// from `options` and the standard AWS environment (region `us-east-1` when none is set),
/// and retries bounded so a failing host is reported in seconds, not minutes (at most 2
/// retries within 20 s; object_store's default timeout of 30 s per request).
/// `None` when no credentials are configured and instance metadata is not allowed:
/// object_store would otherwise ask the EC2 metadata service and wait for it.
pub fn configured_builder(bucket: &str, options: &S3Options) -> Option<AmazonS3Builder> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    } else if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    if let Some(k) = &options.access_key {
        builder = builder.with_access_key_id(k);
    }
    if let Some(k) = &options.secret_key {
        builder = builder.with_secret_access_key(k);
    }
    if !credentials_configured(&builder) && !options.instance_metadata {
        return None;
    }
    if let Some(endpoint) = &options.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    } else if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        builder = builder.with_allow_http(endpoint.starts_with("http://"));
    }
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(20),
        ..Default::default()
    };
    Some(builder.with_retry(retry))
}

impl S3Destination {
    /// A destination for `bucket`/`prefix` with credentials and region from the standard
    /// AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, ...).
    /// Fails with [`PublishError::NoCredentials`], before any request, when none are set.
    pub fn new(bucket: &str, prefix: &str, options: &S3Options) -> Result<Self, PublishError> {
        let host = || format!("s3://{bucket}");
        let builder = configured_builder(bucket, options)
            .ok_or_else(|| PublishError::NoCredentials { host: host() })?;
        let last_failure = LastFailure::default();
        let store = builder
            .with_http_connector(StatusRecorder(last_failure.clone()))
            .build()
            .map_err(|e| PublishError::Remote {
                host: host(),
                detail: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PublishError::Remote {
                host: host(),
                detail: e.to_string(),
            })?;
        Ok(S3Destination {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            store: Arc::new(store),
            rt,
            last_failure,
            stored: State::default(),
            learned: State::default(),
            listing_has_etags: false,
        })
    }

    fn key(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn error(&self, name: &str, e: object_store::Error) -> PublishError {
        classify(&self.describe(), name, &self.last_failure, e)
    }

    /// Runs one object_store operation, with the failure record cleared first so a
    /// classification sees only this operation's answers.
    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.last_failure.clear();
        self.rt.block_on(f)
    }

    /// Records the digest of `name` as it is now: its ETag, and its size and time when
    /// known (an upload's answer has no time; [`Destination::remember`] lists for it).
    fn learn(
        &mut self,
        name: &str,
        etag: Option<String>,
        meta: Option<&ObjectMeta>,
        size: u64,
        sha256: [u8; 32],
    ) {
        if let Some(etag) = etag {
            self.learned.objects.insert(
                name.to_owned(),
                Known {
                    etag: same_etag(&etag).to_owned(),
                    modified: meta.map(|m| m.last_modified.to_rfc3339()),
                    size,
                    sha256: hex::encode(sha256),
                },
            );
        }
    }

    fn list(&self) -> Result<Vec<ObjectMeta>, PublishError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        self.run(async {
            self.store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map(|l| l.objects)
        })
        .map_err(|e| self.error("", e))
    }

    fn read_state(&mut self) -> Result<State, PublishError> {
        let state = self
            .fetch(STATE_NAME)?
            .and_then(|b| serde_json::from_slice::<State>(&b).ok())
            .filter(|s| s.format == 1)
            .unwrap_or_default();
        Ok(state)
    }
}

impl Destination for S3Destination {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn snapshot(&mut self) -> Result<BTreeMap<String, RemoteObject>, PublishError> {
        // The listing first: it is what tells a missing bucket or bad credentials.
        let listed = self.list()?;
        self.stored = self.read_state()?;
        // What this publish learned itself stays known while the object is unchanged.
        let by_name: BTreeMap<&str, &ObjectMeta> = listed
            .iter()
            .filter_map(|m| Some((m.location.filename()?, m)))
            .collect();
        self.learned.format = 1;
        self.listing_has_etags = !listed.is_empty() && listed.iter().all(|m| m.e_tag.is_some());
        self.learned.objects.retain(|name, k| {
            by_name.get(name.as_str()).is_some_and(|m| {
                // An upload of this publish has no time yet: its size must do.
                k.describes(m) || (m.e_tag.is_none() && k.modified.is_none() && k.size == m.size)
            })
        });
        let mut out = BTreeMap::new();
        for meta in &listed {
            let Some(name) = meta.location.filename().map(str::to_owned) else {
                continue;
            };
            if names::classify(&name).is_none() {
                continue;
            }
            let known = self
                .stored
                .objects
                .get(&name)
                .filter(|k| k.describes(meta))
                .cloned();
            let (sha256, version) = match (known, &meta.e_tag) {
                (Some(k), _) => {
                    let d = k.sha256();
                    // The ETag the conditional write needs, from the listing or the state.
                    let etag = meta.e_tag.clone().unwrap_or_else(|| k.etag.clone());
                    self.learned.objects.insert(name.clone(), k);
                    (d, Some(etag))
                }
                (None, Some(etag)) => (None, Some(etag.clone())),
                // Unknown to the state, listed without ETag: the conditional write needs
                // one, so ask.
                (None, None) => {
                    let (sha256, head) = self.head(&name)?;
                    if let Some(d) = sha256 {
                        self.learn(&name, head.e_tag.clone(), Some(&head), head.size, d);
                    }
                    (sha256, head.e_tag)
                }
            };
            out.insert(
                name,
                RemoteObject {
                    size: meta.size,
                    sha256,
                    version,
                },
            );
        }
        Ok(out)
    }

    fn digest(&mut self, name: &str) -> Result<Option<[u8; 32]>, PublishError> {
        let (sha256, head) = self.head(name)?;
        if let Some(d) = sha256 {
            self.learn(name, head.e_tag.clone(), Some(&head), head.size, d);
        }
        Ok(sha256)
    }

    fn fetch(&mut self, name: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let key = self.key(name);
        let r = self.run(async {
            match self.store.get(&key).await {
                Ok(g) => g.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        r.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.error(name, e))
    }

    fn put(&mut self, upload: Upload<'_>) -> Result<(), PublishError> {
        let (content_type, cache_control) = http_headers(upload.kind, upload.name);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, AttributeValue::from(content_type));
        attributes.insert(Attribute::CacheControl, AttributeValue::from(cache_control));
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(upload.bytes).into();
        attributes.insert(
            Attribute::Metadata(SHA256_META.into()),
            AttributeValue::from(hex::encode(digest)),
        );
        let mode = match upload.precondition {
            Precondition::Absent => PutMode::Create,
            Precondition::Unchanged(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: e_tag.clone(),
                version: None,
            }),
            Precondition::None => PutMode::Overwrite,
        };
        let opts = PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        let key = self.key(upload.name);
        let payload = PutPayload::from(upload.bytes.to_vec());
        let result = self.run(self.store.put_opts(&key, payload, opts));
        match result {
            Ok(done) => {
                let size = upload.bytes.len() as u64;
                self.learn(upload.name, done.e_tag, None, size, digest);
                Ok(())
            }
            // An image that appeared since planning is fine if it is the same image.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if *upload.precondition == Precondition::Absent
                && self.fetch(upload.name)?.as_deref() == Some(upload.bytes) =>
            {
                Ok(())
            }
            // The object planned against was deleted meanwhile: another publisher's doing.
            Err(object_store::Error::NotFound { .. })
                if matches!(upload.precondition, Precondition::Unchanged(_)) =>
            {
                Err(PublishError::Concurrent(upload.name.to_owned()))
            }
            Err(e) => Err(self.error(upload.name, e)),
        }
    }

    /// Writes the state object when it changed. Best effort: the publish itself is done,
    /// and a state that could not be written only costs the next publish some HEADs.
    fn remember(&mut self) -> Result<(), PublishError> {
        if self.learned.objects == self.stored.objects {
            return Ok(());
        }
        // Uploads answer with an ETag but no time; where the listing lacks ETags, one
        // more listing gives the times.
        if !self.listing_has_etags
            && self.learned.objects.values().any(|k| k.modified.is_none())
            && let Ok(listed) = self.list()
        {
            for meta in &listed {
                let entry = meta
                    .location
                    .filename()
                    .and_then(|n| self.learned.objects.get_mut(n));
                if let Some(k) = entry
                    && k.modified.is_none()
                    && meta.e_tag.as_deref().is_none_or(|e| same_etag(e) == k.etag)
                    && meta.size == k.size
                {
                    k.modified = Some(meta.last_modified.to_rfc3339());
                }
            }
        }
        let Ok(bytes) = serde_json::to_vec(&self.learned) else {
            return Ok(());
        };
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from("application/json"),
        );
        attributes.insert(Attribute::CacheControl, AttributeValue::from("no-cache"));
        let opts = PutOptions {
            mode: PutMode::Overwrite,
            attributes,
            ..Default::default()
        };
        let key = self.key(STATE_NAME);
        if self
            .run(self.store.put_opts(&key, PutPayload::from(bytes), opts))
            .is_ok()
        {
            self.stored = self.learned.clone();
        }
        Ok(())
    }
}

impl S3Destination {
    /// The `sha256` metadata and the rest of what a HEAD tells of an object.
    fn head(&self, name: &str) -> Result<(Option<[u8; 32]>, ObjectMeta), PublishError> {
        let key = self.key(name);
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let r = self
            .run(self.store.get_opts(&key, opts))
            .map_err(|e| self.error(name, e))?;
        let value = r
            .attributes
            .get(&Attribute::Metadata(SHA256_META.into()))
            .map(|v| v.to_string());
        let sha256 = value.and_then(|v| {
            let mut d = [0u8; 32];
            hex::decode_to_slice(v.as_bytes(), &mut d).ok().map(|_| d)
        });
        Ok((sha256, r.meta))
    }
}
