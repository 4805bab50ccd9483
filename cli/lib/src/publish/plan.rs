//! Deciding what to upload, and uploading it in the one safe order.
//!
//! Rules, for every host:
//! * every manifest's image must be in the tree with the bytes the manifest binds;
//! * an image already on the host must be byte-identical, or publish stops (images are
//!   immutable: a device may be half-way through downloading it);
//! * a manifest replaces the host's only if the host's sequence is lower than ours; an
//!   equal or higher one means another publisher moved the channel (conflict);
//! * images first, then manifests, then `index.json` and `SHA256SUMS`; manifests are
//!   written with a precondition on what was planned against;
//! * `index.json` and `SHA256SUMS` describe what the host serves afterwards, the tree's
//!   files merged with the host's ([`super::inventory`]), written conditionally; when
//!   another publisher changed them meanwhile they are merged again, a bounded number of
//!   times.

use std::collections::{BTreeMap, BTreeSet};

use ota_format::{Manifest, inspect_header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::inventory::{self, Inventory};
use super::{Destination, Leftover, Precondition, Progress, PublishError, RemoteObject, Upload};
use crate::repo::{FileKind, ReleaseTree, names};

/// Merges of `index.json` and `SHA256SUMS` tried before a run of concurrent publishers
/// changing them counts as a conflict.
pub const INVENTORY_ATTEMPTS: usize = 5;

/// Why a file is or is not uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The host does not have it.
    New,
    /// The host has an older manifest for this channel.
    Newer,
    /// The informational file changed.
    Changed,
    /// The host already serves these bytes.
    Unchanged,
    /// Sent again because the host replaces its whole set on each publish.
    Carried,
    /// Copied from the host's current set (another channel this tree does not hold).
    CarriedFromHost,
}

/// One file of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// File name.
    pub name: String,
    /// `image`, `manifest` or `info`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is uploaded.
    pub upload: bool,
    /// Why.
    pub reason: Reason,
    #[serde(skip)]
    file_kind: FileKind,
    #[serde(skip)]
    bytes: Vec<u8>,
    #[serde(skip)]
    precondition: Precondition,
}

/// The whole plan, in upload order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Where it goes.
    pub destination: String,
    /// Every file considered, uploads first in upload order.
    pub steps: Vec<Step>,
    /// What interrupted publishes left behind, deleted before the uploads.
    pub leftovers: Vec<Leftover>,
    #[serde(skip)]
    whole_set: bool,
}

impl Plan {
    /// The steps that upload.
    pub fn uploads(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.upload)
    }

    /// Bytes to upload.
    pub fn upload_bytes(&self) -> u64 {
        self.uploads().map(|s| s.size).sum()
    }
}

fn kind_label(k: &FileKind) -> &'static str {
    match k {
        FileKind::Image => "image",
        FileKind::Delta => "delta",
        FileKind::Manifest { .. } => "manifest",
        FileKind::Info => "info",
    }
}

pub(super) fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Whether the host's object has exactly `bytes`, downloading only when the listing has
/// no digest.
fn same_bytes(
    dest: &mut dyn Destination,
    name: &str,
    remote: &RemoteObject,
    bytes: &[u8],
) -> Result<bool, PublishError> {
    if remote.size != bytes.len() as u64 {
        return Ok(false);
    }
    let digest = match remote.sha256 {
        Some(d) => Some(d),
        None => dest.digest(name)?,
    };
    match digest {
        Some(d) => Ok(d == sha256(bytes)),
        None => Ok(dest.fetch(name)?.is_some_and(|b| b == bytes)),
    }
}

/// Checks that each manifest's image is present with the bytes it binds.
fn check_tree(
    manifests: &BTreeMap<String, (Manifest, Vec<u8>)>,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<(), PublishError> {
    for (name, (m, _)) in manifests {
        let image = m.image_name.as_str();
        let ok = files.get(image).is_some_and(|b| image_matches(m, b));
        if !ok {
            return Err(PublishError::MissingImage {
                manifest: name.clone(),
                image: image.to_owned(),
            });
        }
    }
    Ok(())
}

fn image_matches(m: &Manifest, bytes: &[u8]) -> bool {
    bytes.len() as u64 == u64::from(m.image_file_size)
        && inspect_header(bytes)
            .is_ok_and(|(_, header_len)| sha256(&bytes[..header_len]) == m.image_header_sha256)
}

/// Works out what to upload to `dest` so that it serves the tree's release.
pub fn make_plan(tree: &ReleaseTree, dest: &mut dyn Destination) -> Result<Plan, PublishError> {
    let kinds = tree.files()?;
    let mut files = BTreeMap::new();
    for name in kinds.keys() {
        files.insert(name.clone(), tree.read(name)?.unwrap_or_default());
    }
    let manifests = tree.manifests()?;
    check_tree(&manifests, &files)?;

    let remote = dest.snapshot()?;
    let leftovers = dest.leftovers()?;
    let whole_set = dest.replaces_whole_set();
    let only_referenced = dest.offers_only_referenced_images();
    let mut steps = Vec::new();

    // On a host that replaces its whole set (or keeps its assets in one bounded release),
    // only what the manifests name (ours and the host's) is offered; elsewhere every image
    // of the tree is.
    let mut wanted_images: BTreeSet<String> = manifests
        .values()
        .map(|(m, _)| m.image_name.to_string())
        .collect();

    // Manifests first: on a whole-set host, replacing one keeps its old image wanted. The
    // tree's own index.json and SHA256SUMS describe the tree only: the host's are built
    // below, from everything it will serve.
    let ordered = [1u8, 0]
        .into_iter()
        .flat_map(|rank| kinds.iter().filter(move |(_, k)| k.upload_rank() == rank));
    for (name, kind) in ordered {
        let bytes = &files[name];
        let (upload, reason, pre) = match kind {
            FileKind::Image => {
                if only_referenced && !wanted_images.contains(name) {
                    continue;
                }
                match remote.get(name) {
                    None => (true, Reason::New, Precondition::Absent),
                    Some(r) if same_bytes(dest, name, r, bytes)? => {
                        (false, Reason::Unchanged, Precondition::Absent)
                    }
                    Some(_) => return Err(PublishError::ImageConflict(name.clone())),
                }
            }
            // A delta goes wherever its image goes: a device asks for it beside the image.
            FileKind::Delta => {
                let image = crate::delta::delta_target(name).unwrap_or_default();
                if only_referenced && !wanted_images.contains(image) {
                    continue;
                }
                match remote.get(name) {
                    None => (true, Reason::New, Precondition::Absent),
                    Some(r) if same_bytes(dest, name, r, bytes)? => {
                        (false, Reason::Unchanged, Precondition::Absent)
                    }
                    Some(_) => return Err(PublishError::ImageConflict(name.clone())),
                }
            }
            FileKind::Manifest { .. } => {
                let local = &manifests[name].0;
                match remote.get(name) {
                    None => (true, Reason::New, Precondition::Absent),
                    // The host vouches for the digest of what it serves: equal means
                    // nothing to do, without a download.
                    Some(r) if r.sha256 == Some(sha256(bytes)) => {
                        (false, Reason::Unchanged, Precondition::None)
                    }
                    Some(r) => {
                        let theirs = dest.fetch(name)?.unwrap_or_default();
                        if theirs == *bytes {
                            (false, Reason::Unchanged, Precondition::None)
                        } else {
                            let m = Manifest::inspect(&theirs)
                                .map_err(|_| PublishError::RemoteGarbage(name.clone()))?;
                            if m.sequence >= local.sequence {
                                return Err(PublishError::ChannelAhead {
                                    name: name.clone(),
                                    remote: m.sequence,
                                    local: local.sequence,
                                });
                            }
                            // The planned-against manifest's image stays wanted on a
                            // whole-set host, so devices mid-download still find it.
                            wanted_images.insert(m.image_name.to_string());
                            (
                                true,
                                Reason::Newer,
                                Precondition::Unchanged(r.version.clone()),
                            )
                        }
                    }
                }
            }
            FileKind::Info => continue,
        };
        steps.push(step(name, kind, bytes.clone(), upload, reason, pre));
    }

    if whole_set {
        carry_over(dest, &remote, &kinds, &mut wanted_images, &mut steps)?;
    }
    let mut info = inventory_steps(dest, &remote, &steps, whole_set)?;
    // A whole-set host gets a new set only for a new manifest or image: the inventory
    // alone (say one an older ota-sign wrote) is not worth replacing every file for, and
    // the new set would drop the images kept for devices mid-download.
    if whole_set && !steps.iter().any(|s| s.upload) {
        for s in &mut info {
            s.upload = false;
            s.reason = Reason::Unchanged;
        }
    }
    steps.extend(info);
    if whole_set {
        // A new set is needed as soon as anything differs; it then holds everything.
        if steps.iter().any(|s| s.upload) {
            for s in &mut steps {
                if !s.upload {
                    s.upload = true;
                    if s.reason != Reason::CarriedFromHost {
                        s.reason = Reason::Carried;
                    }
                }
                s.precondition = Precondition::None;
            }
        }
    }

    // SHA256SUMS last: it covers index.json.
    let key = |s: &Step| {
        (
            !s.upload,
            s.file_kind.upload_rank(),
            s.name == names::SHA256SUMS,
            s.name.clone(),
        )
    };
    steps.sort_by_key(key);
    Ok(Plan {
        destination: dest.describe(),
        steps,
        leftovers,
        whole_set,
    })
}

/// The steps for `index.json` and `SHA256SUMS`, describing the manifests and images of
/// `steps` and, unless the host replaces its whole set, the host's others.
fn inventory_steps(
    dest: &mut dyn Destination,
    remote: &BTreeMap<String, RemoteObject>,
    steps: &[Step],
    whole_set: bool,
) -> Result<Vec<Step>, PublishError> {
    let local = steps
        .iter()
        .filter(|s| s.file_kind != FileKind::Info)
        .map(|s| (s.name.as_str(), s.bytes.as_slice()));
    let none = BTreeMap::new();
    let served = inventory::served(local, if whole_set { &none } else { remote });
    let Inventory {
        index_json,
        sha256sums,
    } = inventory::build(&served, dest)?;
    let mut out = Vec::new();
    for (name, bytes) in [
        (names::INDEX_JSON, index_json),
        (names::SHA256SUMS, sha256sums),
    ] {
        let (upload, reason, pre) = match remote.get(name) {
            None => (true, Reason::New, Precondition::Absent),
            Some(r) if same_bytes(dest, name, r, &bytes)? => {
                (false, Reason::Unchanged, Precondition::None)
            }
            Some(r) => (
                true,
                Reason::Changed,
                Precondition::Unchanged(r.version.clone()),
            ),
        };
        out.push(step(name, &FileKind::Info, bytes, upload, reason, pre));
    }
    Ok(out)
}

/// On a whole-set host, copies the host's manifests for channels the tree does not hold
/// (and their images), so devices of those channels keep finding them in the new set.
fn carry_over(
    dest: &mut dyn Destination,
    remote: &BTreeMap<String, RemoteObject>,
    local: &BTreeMap<String, FileKind>,
    wanted_images: &mut BTreeSet<String>,
    steps: &mut Vec<Step>,
) -> Result<(), PublishError> {
    for name in remote.keys() {
        if local.contains_key(name) {
            continue;
        }
        let Some(kind @ FileKind::Manifest { .. }) = names::classify(name) else {
            continue;
        };
        let bytes = dest.fetch(name)?.unwrap_or_default();
        let m = Manifest::inspect(&bytes).map_err(|_| PublishError::RemoteGarbage(name.clone()))?;
        steps.push(step(
            name,
            &kind,
            bytes,
            false,
            Reason::CarriedFromHost,
            Precondition::None,
        ));
        let image = m.image_name.to_string();
        if wanted_images.insert(image.clone()) && !local.contains_key(&image) {
            let bytes = dest.fetch(&image)?.unwrap_or_default();
            if !image_matches(&m, &bytes) {
                return Err(PublishError::RemoteGarbage(image));
            }
            steps.push(step(
                &image,
                &FileKind::Image,
                bytes,
                false,
                Reason::CarriedFromHost,
                Precondition::None,
            ));
        }
    }
    // Images of replaced manifests that the tree no longer holds, kept for devices that
    // read the old manifest a moment ago.
    for image in wanted_images.iter() {
        let present = local.contains_key(image) || steps.iter().any(|s| &s.name == image);
        if !present && remote.contains_key(image) {
            let bytes = dest.fetch(image)?.unwrap_or_default();
            steps.push(step(
                image,
                &FileKind::Image,
                bytes,
                false,
                Reason::CarriedFromHost,
                Precondition::None,
            ));
        }
    }
    Ok(())
}

fn step(
    name: &str,
    kind: &FileKind,
    bytes: Vec<u8>,
    upload: bool,
    reason: Reason,
    precondition: Precondition,
) -> Step {
    Step {
        name: name.to_owned(),
        kind: kind_label(kind),
        size: bytes.len() as u64,
        upload,
        reason,
        file_kind: kind.clone(),
        bytes,
        precondition,
    }
}

/// Deletes the plan's leftovers, then uploads its files in order. On failure the staging
/// is aborted; what was already written is only ever images (invisible until a manifest
/// names them) or complete manifests whose images are already there.
///
/// Leftovers go even when nothing needs uploading: a rerun after an interrupted publish
/// that someone else completed must still clean up.
pub fn execute(
    plan: &Plan,
    dest: &mut dyn Destination,
    progress: &dyn Progress,
) -> Result<usize, PublishError> {
    for leftover in &plan.leftovers {
        dest.remove(leftover)?;
    }
    let uploads: Vec<&Step> = plan.uploads().collect();
    if uploads.is_empty() {
        dest.remember()?;
        return Ok(0);
    }
    let run = |dest: &mut dyn Destination| -> Result<(), PublishError> {
        dest.begin()?;
        for s in uploads.iter().filter(|s| s.file_kind != FileKind::Info) {
            put(dest, s, progress)?;
        }
        write_inventory(plan, dest, progress)?;
        dest.commit()
    };
    match run(dest) {
        Ok(()) => {
            dest.remember()?;
            Ok(uploads.len())
        }
        Err(e) => {
            dest.abort();
            Err(e)
        }
    }
}

fn put(dest: &mut dyn Destination, s: &Step, progress: &dyn Progress) -> Result<(), PublishError> {
    progress.start(&s.name, s.size);
    dest.put(Upload {
        name: &s.name,
        kind: &s.file_kind,
        bytes: &s.bytes,
        precondition: &s.precondition,
        progress,
    })?;
    progress.finish(&s.name);
    Ok(())
}

/// Writes the plan's `index.json` and `SHA256SUMS`; when another publisher changed either
/// since planning, merges again with what the host serves now and retries.
fn write_inventory(
    plan: &Plan,
    dest: &mut dyn Destination,
    progress: &dyn Progress,
) -> Result<(), PublishError> {
    let mut info: Vec<Step> = plan
        .uploads()
        .filter(|s| s.file_kind == FileKind::Info)
        .cloned()
        .collect();
    let mut attempt = 1;
    loop {
        match info.iter().try_for_each(|s| put(dest, s, progress)) {
            Err(PublishError::Concurrent(_)) if attempt < INVENTORY_ATTEMPTS && !plan.whole_set => {
                attempt += 1;
                let remote = dest.snapshot()?;
                info = inventory_steps(dest, &remote, &plan.steps, false)?;
                info.retain(|s| s.upload);
            }
            done => return done,
        }
    }
}
