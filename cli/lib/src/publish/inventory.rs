//! `index.json` and `SHA256SUMS` as the host will serve them: they describe every
//! manifest and image the host serves after this publish, not just the tree's. Files the
//! tree holds are described from their bytes; the rest from the host: its manifests are
//! read (they are few: one per device type and channel), its images and deltas are taken from the
//! host's current `index.json` when size and digest agree with the listing, and read only
//! when that index does not know them. So a host with a long history costs one extra
//! request, not one per image.
//!
//! Two publishers merging at once are caught by the conditional write of both files
//! ([`super::plan::execute`] merges again on a conflict).

use std::collections::BTreeMap;

use ota_format::Manifest;
use sha2::{Digest, Sha256};

use super::{Destination, PublishError, RemoteObject};
use crate::repo::index::{self, ChannelEntry, DeltaEntry, ImageEntry, Index};
use crate::repo::{FileKind, names};

/// Where the content of one served file comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// These bytes (from the tree, or already read from the host).
    Bytes(&'a [u8]),
    /// The host's current object, which this publish leaves in place.
    Host(&'a RemoteObject),
}

/// The two files' bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// `index.json`.
    pub index_json: Vec<u8>,
    /// `SHA256SUMS`, covering `index.json` too.
    pub sha256sums: Vec<u8>,
}

/// The manifests and images the host will serve: `local` (name -> bytes) over what
/// `remote` lists.
pub fn served<'a>(
    local: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    remote: &'a BTreeMap<String, RemoteObject>,
) -> BTreeMap<&'a str, Source<'a>> {
    let mut out: BTreeMap<&str, Source<'_>> = remote
        .iter()
        .filter(|(name, _)| names::classify(name).is_some_and(|k| k != FileKind::Info))
        .map(|(name, r)| (name.as_str(), Source::Host(r)))
        .collect();
    for (name, bytes) in local {
        if names::classify(name).is_some_and(|k| k != FileKind::Info) {
            out.insert(name, Source::Bytes(bytes));
        }
    }
    out
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// An entry of the host's index that describes a served file.
enum Listed {
    Image(ImageEntry),
    Delta(DeltaEntry),
}

/// Builds both files for `served`, reading from `dest` what the host must tell.
pub fn build(
    served: &BTreeMap<&str, Source<'_>>,
    dest: &mut dyn Destination,
) -> Result<Inventory, PublishError> {
    let mut host_index: Option<HostIndex> = None;
    let mut channels: Vec<ChannelEntry> = Vec::new();
    let mut images: Vec<ImageEntry> = Vec::new();
    let mut deltas: Vec<DeltaEntry> = Vec::new();
    let mut digests = BTreeMap::new();
    for (&name, source) in served {
        let kind = names::classify(name);
        let fetched;
        let bytes = match source {
            Source::Bytes(b) => Some(*b),
            // Images and deltas the host's index describes, when the entry agrees with
            // what the host serves: no need to fetch them.
            Source::Host(r) if matches!(kind, Some(FileKind::Image | FileKind::Delta)) => {
                if host_index.is_none() {
                    host_index = Some(read_host_index(dest)?);
                }
                let index = host_index.as_ref();
                let known = if kind == Some(FileKind::Image) {
                    index
                        .and_then(|i| i.images.get(name))
                        .filter(|e| agrees(e.size, &e.sha256, r))
                        .map(|e| (e.sha256.clone(), Listed::Image(e.clone())))
                } else {
                    index
                        .and_then(|i| i.deltas.get(name))
                        .filter(|e| agrees(e.size, &e.sha256, r))
                        .map(|e| (e.sha256.clone(), Listed::Delta(e.clone())))
                };
                if let Some((sha256, entry)) = known {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(&sha256, &mut d)
                        .map_err(|_| PublishError::RemoteGarbage(names::INDEX_JSON.into()))?;
                    digests.insert(name.to_owned(), d);
                    match entry {
                        Listed::Image(e) => images.push(e),
                        Listed::Delta(e) => deltas.push(e),
                    }
                    continue;
                }
                fetched = dest.fetch(name)?;
                fetched.as_deref()
            }
            Source::Host(_) => {
                fetched = dest.fetch(name)?;
                fetched.as_deref()
            }
        };
        // Gone since the listing: not served, not listed.
        let Some(bytes) = bytes else { continue };
        match kind {
            Some(FileKind::Manifest { .. }) => {
                let m = Manifest::inspect(bytes)
                    .map_err(|_| PublishError::RemoteGarbage(name.to_owned()))?;
                channels.push(index::channel_entry(name, &m));
            }
            Some(FileKind::Image) => images.push(
                index::image_entry(name, bytes)
                    .map_err(|_| PublishError::RemoteGarbage(name.to_owned()))?,
            ),
            Some(FileKind::Delta) => deltas.push(
                index::delta_entry(name, bytes)
                    .map_err(|_| PublishError::RemoteGarbage(name.to_owned()))?,
            ),
            _ => continue,
        }
        digests.insert(name.to_owned(), sha256(bytes));
    }
    let index_json = index::render_index(&Index {
        format: 1,
        channels,
        images,
        deltas,
    });
    digests.insert(names::INDEX_JSON.to_owned(), sha256(&index_json));
    Ok(Inventory {
        sha256sums: index::render_sums(&digests).into_bytes(),
        index_json,
    })
}

/// Whether a host index entry (`size`, `sha256`) fits what the listing says of the
/// object.
fn agrees(size: u64, sha256: &str, remote: &RemoteObject) -> bool {
    size == remote.size
        && remote
            .sha256
            .is_none_or(|d| hex::encode(d) == sha256.to_ascii_lowercase())
}

/// The image and delta entries of the host's `index.json`.
#[derive(Default)]
struct HostIndex {
    images: BTreeMap<String, ImageEntry>,
    deltas: BTreeMap<String, DeltaEntry>,
}

/// The image entries of the host's `index.json`; none when it is missing or not ours
/// (then each image is read instead).
fn read_host_index(dest: &mut dyn Destination) -> Result<HostIndex, PublishError> {
    let Some(bytes) = dest.fetch(names::INDEX_JSON)? else {
        return Ok(HostIndex::default());
    };
    Ok(serde_json::from_slice::<Index>(&bytes)
        .map(|i| HostIndex {
            images: i.images.into_iter().map(|e| (e.name.clone(), e)).collect(),
            deltas: i.deltas.into_iter().map(|e| (e.name.clone(), e)).collect(),
        })
        .unwrap_or_default())
}
