//! `release`: verify images, lay them into the tree, and sign the channel manifests.
//!
//! Everything that can fail is decided before the first write: images are verified,
//! names checked against what the tree holds, manifests signed and their signatures
//! checked. Only then are images written (never replaced), then manifests (atomically
//! replaced), then the informational files.

use std::fs;
use std::path::PathBuf;

use ota_format::{Channel, Expectations, KeyId, Manifest, TrustedKey, TrustedKeys, verify_image};
use ota_keys::SigningKeySource;
use serde::Serialize;

use super::channel::{self, Change, ImageFacts, ReleaseOptions};
use super::{ReleaseTree, RepoError, atomic, index, io_err, layout};

/// One `release` invocation.
#[derive(Clone, Debug)]
pub struct ReleaseRequest {
    /// Channel the images are released to.
    pub channel: Channel,
    /// The `.ota` files.
    pub images: Vec<PathBuf>,
    /// Rollout, expiry, downgrade.
    pub options: ReleaseOptions,
    /// Public keys trusted besides the release key, for images and manifests signed
    /// before a key rotation.
    pub extra_trusted: Vec<[u8; 32]>,
    /// Signing time, Unix seconds.
    pub now: u64,
}

/// What happened to one channel.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChannelOutcome {
    /// Manifest file name.
    pub manifest: String,
    /// Image file name.
    pub image: String,
    /// Version now at the head.
    pub version: String,
    /// Sequence now at the head.
    pub sequence: u64,
    /// Rollout now at the head, basis points.
    pub rollout: u16,
    /// How the head moved; `None` when the request changed nothing.
    pub change: Option<Change>,
}

struct Prepared {
    facts: ImageFacts,
    bytes: Vec<u8>,
    manifest_name: String,
    signed: Option<([u8; ota_format::MANIFEST_LEN], Manifest, Change)>,
    current: Option<Manifest>,
}

/// Runs a release against `tree`, signing manifests with `signer` (a key file, or any
/// other [`SigningKeySource`]: the one signing abstraction of the project).
pub fn release(
    tree: &ReleaseTree,
    signer: &dyn SigningKeySource,
    request: &ReleaseRequest,
) -> Result<Vec<ChannelOutcome>, RepoError> {
    let release_key = signer.public_key();
    let key_id = KeyId::of(&release_key);
    let trusted: Vec<TrustedKey> = std::iter::once(release_key)
        .chain(request.extra_trusted.iter().copied())
        .map(TrustedKey::new)
        .collect();
    let keys = TrustedKeys::new(&trusted);

    let mut prepared: Vec<Prepared> = Vec::new();
    for path in &request.images {
        let bytes = fs::read(path).map_err(io_err(path))?;
        let verified = verify_image(&bytes, keys, Expectations::default()).map_err(|source| {
            RepoError::BadImage {
                path: path.clone(),
                source,
            }
        })?;
        let header = verified.header;
        let info = header.info;
        if prepared
            .iter()
            .any(|p| p.facts.info.device_type == info.device_type)
        {
            return Err(RepoError::DuplicateDeviceType(info.device_type.to_string()));
        }
        let name = layout::image_name(&info.device_type, &info.version, header.header_sha256())
            .ok_or_else(|| RepoError::BadName(format!("{}-{}", info.device_type, info.version)))?;
        if let Some(existing) = tree.read(name.as_str())?
            && existing != bytes
        {
            return Err(RepoError::ImageNameCollision(name.to_string()));
        }
        let manifest_name = layout::manifest_name(&info.device_type, &request.channel);
        let current = match tree.read(&manifest_name)? {
            None => None,
            Some(b) => Some(
                *Manifest::verify(&b, &keys)
                    .map_err(|source| RepoError::BadManifest {
                        name: manifest_name.clone(),
                        source,
                    })?
                    .manifest(),
            ),
        };
        prepared.push(Prepared {
            facts: ImageFacts {
                info,
                header_sha256: *header.header_sha256(),
                file_size: header.file_size(),
                name,
            },
            bytes,
            manifest_name,
            signed: None,
            current,
        });
    }

    for p in &mut prepared {
        let label = p.manifest_name.trim_end_matches(layout::MANIFEST_SUFFIX);
        let next = channel::next_manifest(
            label,
            p.current.as_ref(),
            &p.facts,
            &request.options,
            request.now,
            key_id,
            request.channel,
        )?;
        if let Some((m, change)) = next {
            p.signed = Some((sign(signer, &m, release_key)?, m, change));
        }
    }

    fs::create_dir_all(tree.root()).map_err(io_err(tree.root()))?;
    for p in &prepared {
        let path = tree.path(p.facts.name.as_str());
        if !path.exists() {
            atomic::write_new(&path, &p.bytes).map_err(io_err(&path))?;
        }
    }
    let mut outcomes = Vec::new();
    for p in &prepared {
        let head = match &p.signed {
            Some((bytes, m, _)) => {
                let path = tree.path(&p.manifest_name);
                atomic::write_replace(&path, bytes).map_err(io_err(&path))?;
                m
            }
            None => p
                .current
                .as_ref()
                .expect("unchanged implies a current head"),
        };
        outcomes.push(ChannelOutcome {
            manifest: p.manifest_name.clone(),
            image: head.image_name.to_string(),
            version: head.version.to_string(),
            sequence: head.sequence,
            rollout: head.rollout,
            change: p.signed.as_ref().map(|s| s.2),
        });
    }
    index::write(tree)?;
    Ok(outcomes)
}

/// Signs through the signer and checks the result, so a faulty backend can never put an
/// unverifiable manifest into the tree.
fn sign(
    signer: &dyn SigningKeySource,
    m: &Manifest,
    public_key: [u8; 32],
) -> Result<[u8; ota_format::MANIFEST_LEN], RepoError> {
    let message = m
        .signing_message()
        .map_err(|source| RepoError::BadManifest {
            name: m.device_type.to_string(),
            source,
        })?;
    let sig = signer.sign(message.as_bytes()).map_err(RepoError::Signer)?;
    let bytes = m.assemble(&sig).map_err(|source| RepoError::BadManifest {
        name: m.device_type.to_string(),
        source,
    })?;
    let own = [TrustedKey::new(public_key)];
    Manifest::verify(&bytes, &TrustedKeys::new(&own)).map_err(|_| RepoError::SignerFailed)?;
    Ok(bytes)
}
