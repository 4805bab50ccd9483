//! `s3://bucket/prefix` through `object_store`: standard AWS credential environment,
//! endpoint override for S3-compatible services, conditional writes (`If-None-Match: *`
//! for new objects, `If-Match: <etag>` for manifests), and the cache headers devices
//! and CDNs rely on. Each object carries its SHA-256 as `x-amz-meta-sha256`, so the next
//! publish compares images without downloading them.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, UpdateVersion,
};

use super::{Destination, Precondition, PublishError, RemoteObject, Upload, http_headers};
use crate::repo::layout;

const SHA256_META: &str = "sha256";

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
}

/// Publishes into an S3 bucket under a prefix.
pub struct S3Destination {
    bucket: String,
    prefix: String,
    store: Arc<AmazonS3>,
    rt: tokio::runtime::Runtime,
}

impl S3Destination {
    /// A destination for `bucket`/`prefix` with credentials and region from the standard
    /// AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, ...).
    pub fn new(bucket: &str, prefix: &str, options: &S3Options) -> Result<Self, PublishError> {
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
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        } else if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_allow_http(endpoint.starts_with("http://"));
        }
        // A publish should fail fast and clearly, not retry for minutes.
        let retry = object_store::RetryConfig {
            max_retries: 2,
            retry_timeout: std::time::Duration::from_secs(20),
            ..Default::default()
        };
        let store = builder
            .with_retry(retry)
            .build()
            .map_err(|e| PublishError::Remote {
                host: format!("s3://{bucket}"),
                detail: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PublishError::Remote {
                host: format!("s3://{bucket}"),
                detail: e.to_string(),
            })?;
        Ok(S3Destination {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            store: Arc::new(store),
            rt,
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
        classify_error(&self.describe(), name, e)
    }
}

/// Maps object_store's errors onto the classes that get exit codes.
fn classify_error(host: &str, name: &str, e: object_store::Error) -> PublishError {
    use object_store::Error as E;
    let text = format!("{e}");
    match e {
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => PublishError::Credentials {
            host: host.to_owned(),
            detail: text,
        },
        E::Precondition { .. } | E::AlreadyExists { .. } => {
            PublishError::Concurrent(name.to_owned())
        }
        E::NotFound { .. } if text.contains("NoSuchBucket") => {
            PublishError::NotFound(host.to_owned())
        }
        _ if text.contains("NoSuchBucket") => PublishError::NotFound(host.to_owned()),
        _ if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("AccessDenied") =>
        {
            PublishError::Credentials {
                host: host.to_owned(),
                detail: text,
            }
        }
        _ if is_transport(&text) => PublishError::Network {
            host: host.to_owned(),
            detail: text,
        },
        _ => PublishError::Remote {
            host: host.to_owned(),
            detail: text,
        },
    }
}

fn is_transport(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "error sending request",
        "connection refused",
        "connection reset",
        "timed out",
        "dns error",
        "http error",
        "connect",
    ]
    .iter()
    .any(|p| t.contains(p))
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
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let listed = self
            .rt
            .block_on(async {
                self.store
                    .list_with_delimiter(prefix.as_ref())
                    .await
                    .map(|l| l.objects)
            })
            .map_err(|e| self.error("", e))?;
        let mut out = BTreeMap::new();
        for meta in listed {
            let Some(name) = meta.location.filename().map(str::to_owned) else {
                continue;
            };
            let Some(kind) = layout::classify(&name) else {
                continue;
            };
            // Image digests come from their metadata (a HEAD each); manifests and info
            // files are small and compared by download.
            let (sha256, version) = if kind == layout::FileKind::Image {
                (self.head(&name)?.0, meta.e_tag)
            } else if meta.e_tag.is_none() {
                // Some servers list without ETags; the conditional write needs one, and
                // the digest from the same HEAD spares downloading an unchanged file.
                self.head(&name)?
            } else {
                (None, meta.e_tag)
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

    fn fetch(&mut self, name: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let key = self.key(name);
        let r = self.rt.block_on(async {
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
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(upload.bytes));
        attributes.insert(
            Attribute::Metadata(SHA256_META.into()),
            AttributeValue::from(digest),
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
        let result = self.rt.block_on(self.store.put_opts(&key, payload, opts));
        match result {
            Ok(_) => Ok(()),
            // An image that appeared since planning is fine if it is the same image.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if *upload.precondition == Precondition::Absent
                && self.fetch(upload.name)?.as_deref() == Some(upload.bytes) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(upload.name, e)),
        }
    }
}

impl S3Destination {
    /// The `sha256` metadata and the ETag of an object.
    fn head(&self, name: &str) -> Result<(Option<[u8; 32]>, Option<String>), PublishError> {
        let key = self.key(name);
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let r = self
            .rt
            .block_on(self.store.get_opts(&key, opts))
            .map_err(|e| self.error(name, e))?;
        let value = r
            .attributes
            .get(&Attribute::Metadata(SHA256_META.into()))
            .map(|v| v.to_string());
        let sha256 = value.and_then(|v| {
            let mut d = [0u8; 32];
            hex::decode_to_slice(v.as_bytes(), &mut d).ok().map(|_| d)
        });
        Ok((sha256, r.meta.e_tag))
    }
}
