//! `release`: verify images, lay them into the tree, and sign the channel manifests.
//!
//! Everything that can fail is decided before the first write: images are verified,
//! names checked against what the tree holds, manifests signed and their signatures
//! checked ([`prepare`]). Only then are images written (never replaced), then manifests
//! (atomically replaced), then the informational files ([`SignedRelease::write`]).

use std::fs;
use std::path::PathBuf;

use ota_format::{Channel, Expectations, KeyId, Manifest, TrustedKey, TrustedKeys};
use ota_keys::SigningKeySource;
use serde::Serialize;

use super::channel::{self, Change, ImageFacts, ReleaseOptions};
use super::deltas::{self, DeltaOutcome, DeltaPlan, Target};
use super::{ReleaseTree, RepoError, atomic, index, io_err, names};
use crate::devices::{AgentGeneration, FleetSettings};
use crate::trust::{ImageRejection, check_image};

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
    /// What each device type's agents decode (`[device.NAME]` of ota-sign.toml): images
    /// are checked against it with the agents' own decoders and install rules.
    pub devices: FleetSettings,
    /// How many earlier releases to make deltas from, for every device type (`--deltas`);
    /// `None`: each device type's `deltas`, else [`deltas::DEFAULT_DELTAS`].
    pub deltas: Option<u32>,
    /// The deltas' payload encoding for every device type (`--delta-encoding`); `None`:
    /// each device type's `delta_encoding`, else both tried and the smaller kept.
    pub delta_encoding: Option<crate::delta::EncodingChoice>,
}

/// What happens (or happened) to one channel.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChannelOutcome {
    /// Manifest file name.
    pub manifest: String,
    /// Image file name.
    pub image: String,
    /// Whether the image file is new in the tree.
    pub image_added: bool,
    /// Version at the head.
    pub version: String,
    /// Security counter at the head.
    pub security_counter: u64,
    /// Sequence at the head.
    pub sequence: u64,
    /// Rollout at the head, basis points.
    pub rollout: u16,
    /// Expiry at the head, Unix seconds.
    pub not_after: Option<u64>,
    /// Whether the head lets devices install it over a newer version.
    pub allow_downgrade: bool,
    /// How the head moves; `None` when the request changes nothing.
    pub change: Option<Change>,
    /// Deltas beside the new image, from earlier releases.
    pub deltas: Vec<DeltaOutcome>,
    /// Why deltas from some earlier releases were left out.
    pub delta_notes: Vec<String>,
}

struct Prepared {
    facts: ImageFacts,
    bytes: Vec<u8>,
    image_added: bool,
    manifest_name: String,
    signed: Option<([u8; ota_format::MANIFEST_LEN], Manifest, Change)>,
    current: Option<Manifest>,
    header: ota_format::ImageHeader,
    installed: Vec<u8>,
    deltas: DeltaPlan,
}

/// A release whose every check passed and whose manifests are signed, not yet written.
/// The only thing to do with it is to look at it ([`SignedRelease::outcomes`], for
/// `--dry-run`) or to write it ([`SignedRelease::write`]).
#[must_use = "a signed release changes nothing until it is written"]
pub struct SignedRelease {
    prepared: Vec<Prepared>,
}

/// Runs a release against `tree`: [`prepare`] then [`SignedRelease::write`].
#[cfg(test)]
pub fn release(
    tree: &ReleaseTree,
    signer: &dyn SigningKeySource,
    request: &ReleaseRequest,
) -> Result<Vec<ChannelOutcome>, RepoError> {
    prepare(tree, signer, request)?.write(tree)
}

/// Verifies the images, applies the channel rules and signs the new manifests with
/// `signer` (a key file, or any other [`SigningKeySource`]: the one signing abstraction of
/// the project). Reads `tree`, writes nothing.
pub fn prepare(
    tree: &ReleaseTree,
    signer: &dyn SigningKeySource,
    request: &ReleaseRequest,
) -> Result<SignedRelease, RepoError> {
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
        // The complete check devices make: signature, digests, then the payload through
        // the agent's own install rules for the device type's zstd window.
        let (verified, installed) =
            check_image(&bytes, keys, Expectations::default(), &request.devices).map_err(
                |rejection| match rejection {
                    ImageRejection::Format { error, .. } => RepoError::BadImage {
                        path: path.clone(),
                        source: error,
                    },
                    ImageRejection::NotInstallable {
                        error,
                        declared_window_log,
                        max_window_log,
                    } => RepoError::NotInstallable {
                        path: path.clone(),
                        source: error,
                        declared_window_log,
                        max_window_log,
                    },
                },
            )?;
        let header = verified.header;
        let info = header.info;
        if prepared
            .iter()
            .any(|p| p.facts.info.device_type == info.device_type)
        {
            return Err(RepoError::DuplicateDeviceType(info.device_type.to_string()));
        }
        let name = names::image_name(&info.device_type, &info.version, header.header_sha256())
            .ok_or_else(|| RepoError::BadName(format!("{}-{}", info.device_type, info.version)))?;
        let existing = tree.read(name.as_str())?;
        if existing.as_ref().is_some_and(|e| *e != bytes) {
            return Err(RepoError::ImageNameCollision(name.to_string()));
        }
        let manifest_name = names::manifest_name(&info.device_type, &request.channel);
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
        agents_decode(
            tree,
            &request.devices,
            path,
            &manifest_name,
            &info,
            current.as_ref(),
        )?;
        prepared.push(Prepared {
            facts: ImageFacts {
                info,
                header_sha256: *header.header_sha256(),
                file_size: header.file_size(),
                name,
            },
            bytes,
            image_added: existing.is_none(),
            manifest_name,
            signed: None,
            current,
            header,
            installed,
            deltas: DeltaPlan::default(),
        });
    }

    for p in &mut prepared {
        let label = p.manifest_name.trim_end_matches(names::MANIFEST_SUFFIX);
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
            // A new head gets deltas from the releases before it; a re-signed one has
            // them from when it became the head.
            if change != Change::Resign {
                let info = &p.facts.info;
                let count = request.deltas.unwrap_or_else(|| {
                    request
                        .devices
                        .for_device_type(info.device_type.as_str())
                        .deltas
                        .unwrap_or(deltas::DEFAULT_DELTAS)
                });
                let trusted_raw: Vec<[u8; 32]> = trusted.iter().map(|k| k.public_key).collect();
                p.deltas = deltas::plan(
                    tree,
                    signer,
                    keys,
                    &trusted_raw,
                    &request.devices,
                    count,
                    request.delta_encoding,
                    &Target {
                        name: p.facts.name.as_str(),
                        header: &p.header,
                        ota: &p.bytes,
                        installed: &p.installed,
                    },
                    p.current.as_ref(),
                )?;
            }
            p.signed = Some((sign(signer, &m, release_key)?, m, change));
        }
    }

    Ok(SignedRelease { prepared })
}

impl SignedRelease {
    /// What [`SignedRelease::write`] does to each channel.
    pub fn outcomes(&self) -> Vec<ChannelOutcome> {
        self.prepared
            .iter()
            .map(|p| {
                let head = match &p.signed {
                    Some((_, m, _)) => m,
                    None => p
                        .current
                        .as_ref()
                        .expect("unchanged implies a current head"),
                };
                ChannelOutcome {
                    manifest: p.manifest_name.clone(),
                    image: head.image_name.to_string(),
                    image_added: p.image_added,
                    version: head.version.to_string(),
                    security_counter: head.security_counter,
                    sequence: head.sequence,
                    rollout: head.rollout,
                    not_after: head.not_after,
                    allow_downgrade: head.allow_downgrade,
                    change: p.signed.as_ref().map(|s| s.2),
                    deltas: p.deltas.deltas.iter().map(|(d, _)| d.clone()).collect(),
                    delta_notes: p.deltas.notes.clone(),
                }
            })
            .collect()
    }

    /// Writes images (never replacing one), then manifests (atomically replaced), then
    /// `index.json` and `SHA256SUMS`. A crash in between leaves at worst an image no
    /// manifest names yet, which the next run reuses.
    pub fn write(self, tree: &ReleaseTree) -> Result<Vec<ChannelOutcome>, RepoError> {
        fs::create_dir_all(tree.root()).map_err(io_err(tree.root()))?;
        for p in &self.prepared {
            let path = tree.path(p.facts.name.as_str());
            if p.image_added {
                match atomic::write_new(&path, &p.bytes) {
                    // Written by a concurrent or interrupted run: fine if identical.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if fs::read(&path).map_err(io_err(&path))? != p.bytes {
                            return Err(RepoError::ImageNameCollision(p.facts.name.to_string()));
                        }
                    }
                    r => r.map_err(io_err(&path))?,
                }
            }
        }
        // Deltas beside their images, before the manifests that make devices ask for them.
        for p in &self.prepared {
            for (d, bytes) in p.deltas.deltas.iter().filter(|(d, _)| d.added) {
                let path = tree.path(&d.name);
                match atomic::write_new(&path, bytes) {
                    // Written by a concurrent or interrupted run: it is as good.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    r => r.map_err(io_err(&path))?,
                }
            }
        }
        for p in &self.prepared {
            if let Some((bytes, _, _)) = &p.signed {
                let path = tree.path(&p.manifest_name);
                atomic::write_replace(&path, bytes).map_err(io_err(&path))?;
            }
        }
        index::write(tree)?;
        Ok(self.outcomes())
    }
}

/// Refuses an image the device type's agents cannot decode: one its configured
/// generation does not decode, and, when no generation is configured, a method-2 image
/// following a method-0/1 one on the channel (the fleet may still run the first agent,
/// which would silently stop updating; the operator must say which agent it runs).
fn agents_decode(
    tree: &ReleaseTree,
    devices: &FleetSettings,
    path: &std::path::Path,
    manifest_name: &str,
    info: &ota_format::ImageInfo,
    current: Option<&Manifest>,
) -> Result<(), RepoError> {
    let device_type = info.device_type.as_str();
    let compression = info.compression;
    match devices.for_device_type(device_type).agent_generation {
        Some(generation) if !generation.decodes(compression) => Err(RepoError::AgentCannotDecode {
            path: path.to_path_buf(),
            device_type: device_type.to_owned(),
            generation,
            compression,
        }),
        Some(_) => Ok(()),
        None => {
            if AgentGeneration::One.decodes(compression) {
                return Ok(());
            }
            let Some(current) = current else {
                return Ok(());
            };
            // The image the channel serves now; without it (a tree edited by hand) there
            // is nothing to compare, and the configured default applies.
            let Some(bytes) = tree.read(current.image_name.as_str())? else {
                return Ok(());
            };
            let Ok((previous, _)) = ota_format::inspect_header(&bytes) else {
                return Ok(());
            };
            if AgentGeneration::One.decodes(previous.compression) {
                return Err(RepoError::AgentGenerationUnset {
                    path: path.to_path_buf(),
                    channel: manifest_name
                        .trim_end_matches(names::MANIFEST_SUFFIX)
                        .to_owned(),
                    device_type: device_type.to_owned(),
                    previous: previous.compression,
                    compression,
                });
            }
            Ok(())
        }
    }
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
