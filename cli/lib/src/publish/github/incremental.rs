//! Changing the latest release in place, for a publish after the first: GitHub cannot
//! copy assets between releases, so a new release would carry every file again, while
//! GitHub allows about 80 content-creating requests a minute and 500 an hour.
//!
//! Devices fetch `releases/latest/download/<name>`, so what changes is what they see at
//! once. In upload order ([`super::super::plan`]):
//! * a new image or manifest is uploaded under its own name (a 422 says another
//!   publisher took it: conflict); an image is invisible until a manifest names it;
//! * a changed manifest (and `index.json`, `SHA256SUMS`) is uploaded whole under a
//!   temporary name ([`temporary_name`]); then the live asset is read again by id and
//!   must still be the one planned against (an asset's bytes never change, so the same
//!   id under the same name is the same manifest); then it is deleted and the temporary
//!   renamed into place with `PATCH /releases/assets/{id}`, sent without the pacing wait.
//!   Between that delete and that rename, one round trip, devices get 404 for this
//!   name (their check fails and is retried at the next one); never a partial or
//!   foreign manifest, since an asset is only served once uploaded whole.
//!
//! A 422 on the rename means another publisher put its manifest in place meanwhile:
//! ours is deleted, theirs stays, the publish stops with a conflict. The images a
//! replaced manifest named stay in the release (devices mid-download still fetch them);
//! nothing else is deleted. A publish killed between upload and rename leaves its
//! temporary asset; the next publish renames it into place when it was killed after the
//! delete (the name is free and the temporary holds a whole manifest whose image went up
//! before it), or else deletes it once it is [`STALE_TEMP_AGE`] old (a younger one may be
//! a concurrent publish's, about to be swapped in).

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::super::dir::STALE_TEMP_AGE;
use super::super::{Leftover, PublishError, Upload, http_headers};
use super::{GitHubDestination, parse};
use crate::repo::names;

/// Between a file's name and the publish's nonce in a temporary asset's name: no other
/// file of the layout has it, so only names ota-sign made are ever cleaned up.
const TEMPORARY_INFIX: &str = ".ota-sign-tmp-";

/// This publish's part of its temporary names: the time, the process id and a count of
/// the destinations this process made (two publishes never share a name).
pub(super) fn nonce() -> String {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    format!("{now}-{}-{n}", std::process::id())
}

/// The temporary name `name` is uploaded under before it is renamed into place.
pub(super) fn temporary_name(name: &str, nonce: &str) -> String {
    format!("{name}{TEMPORARY_INFIX}{nonce}")
}

/// A temporary asset: the file it stands for and when (Unix seconds) its publish began.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Temporary<'a> {
    pub target: &'a str,
    pub started: u64,
}

impl Temporary<'_> {
    /// Whether its publish began [`STALE_TEMP_AGE`] ago or more: a live publish renames or
    /// deletes its temporary within seconds of uploading it, so an older one was left
    /// by a killed publish. A younger one may be a concurrent publish's and stays.
    pub fn is_stale(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_sub(self.started) >= STALE_TEMP_AGE.as_secs()
    }
}

/// What `name` is a temporary for, if it is one of ota-sign's temporary names.
pub(super) fn temporary(name: &str) -> Option<Temporary<'_>> {
    let (target, nonce) = name.rsplit_once(TEMPORARY_INFIX)?;
    let (started, rest) = nonce.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(started) || !rest.split('-').all(digits) || names::classify(target).is_none() {
        return None;
    }
    Some(Temporary {
        target,
        started: started.parse().ok()?,
    })
}

impl GitHubDestination {
    /// Writes one file into the latest release: added under its name when new, else
    /// swapped in for the asset planned against.
    pub(super) fn put_in_place(&mut self, upload: Upload<'_>) -> Result<(), PublishError> {
        let target = self.in_place.clone().expect("put_in_place needs a release");
        let (content_type, _) = http_headers(upload.kind, upload.name);
        let planned = match upload.precondition {
            super::super::Precondition::Absent => None,
            super::super::Precondition::Unchanged(Some(version)) => version.parse().ok(),
            _ => self.assets.get(upload.name).map(|a| a.id),
        };
        let Some(planned) = planned else {
            let name = upload.name;
            return self
                .upload_asset(
                    target.id,
                    &target.upload_url,
                    name,
                    content_type,
                    upload.bytes,
                )
                .map(|_| ());
        };
        let temporary = temporary_name(upload.name, &self.nonce);
        let id = self.upload_asset(
            target.id,
            &target.upload_url,
            &temporary,
            content_type,
            upload.bytes,
        )?;
        self.temporaries.push(id);
        let swapped = self.swap(upload.name, planned, id);
        // Not swapped in and not needed for a restore: deleted now, since a conflict on
        // `index.json` or `SHA256SUMS` is merged again and retried under the same name.
        if swapped.is_err() && self.temporaries.contains(&id) {
            self.temporaries.retain(|t| *t != id);
            self.delete_asset(id)?;
        }
        swapped
    }

    /// Replaces asset `planned`, which must still serve `name`, with asset `new`.
    fn swap(&mut self, name: &str, planned: u64, new: u64) -> Result<(), PublishError> {
        let conflict = || PublishError::Concurrent(name.to_owned());
        let url = self.api(&format!("/releases/assets/{planned}"));
        let (status, body) = self.send(self.request(Method::GET, &url))?;
        let still_live = status == StatusCode::OK && {
            let live = parse(&body)?;
            live["name"].as_str() == Some(name) && live["state"].as_str() == Some("uploaded")
        };
        if !still_live {
            return Err(conflict());
        }
        let (status, body) = self.send(self.request(Method::DELETE, &url))?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(conflict()),
            s => return Err(self.remote(&format!("delete replaced {name}"), s, &body)),
        }
        // From here the temporary is the manifest devices should get: an interrupted
        // rename leaves it for the next publish to put in place, not to abort's delete.
        self.temporaries.retain(|t| *t != new);
        match self.rename(new, name, false)? {
            (StatusCode::OK, body) => self.check_stored_name(name, &body).map(|_| ()),
            (StatusCode::UNPROCESSABLE_ENTITY, _) => {
                // Another publisher's manifest took the name: it stays, ours goes.
                self.delete_asset(new)?;
                Err(conflict())
            }
            (StatusCode::NOT_FOUND, _) => Err(conflict()),
            (s, body) => Err(self.remote(&format!("rename into {name}"), s, &body)),
        }
    }

    /// Renames asset `id` to `name`; unless `paced`, at once (see
    /// [`super::super::github_http::Http::send_unpaced`]).
    fn rename(
        &self,
        id: u64,
        name: &str,
        paced: bool,
    ) -> Result<(StatusCode, Vec<u8>), PublishError> {
        let url = self.api(&format!("/releases/assets/{id}"));
        let req = self
            .request(Method::PATCH, &url)
            .header("Content-Type", "application/json")
            .body(json!({ "name": name }).to_string());
        let answer = if paced {
            self.http.send(req)?
        } else {
            self.http.send_unpaced(req)?
        };
        Ok((answer.status, answer.body))
    }

    /// Handles a temporary asset an interrupted publish left: renamed into place when the
    /// name it stands for is free (planning found it so), else deleted.
    pub(super) fn remove_temporary(&mut self, leftover: &Leftover) -> Result<(), PublishError> {
        let Some(id) = leftover.id.as_deref().and_then(|id| id.parse::<u64>().ok()) else {
            return Ok(());
        };
        if let Some(target) = self.restores.get(&id).cloned() {
            match self.rename(id, &target, true)? {
                (StatusCode::OK, body) => {
                    return self.check_stored_name(&target, &body).map(|_| ());
                }
                (StatusCode::NOT_FOUND, _) => return Ok(()),
                // Taken meanwhile: the temporary is only a leftover after all.
                (StatusCode::UNPROCESSABLE_ENTITY, _) => {}
                (s, body) => return Err(self.remote(&format!("rename into {target}"), s, &body)),
            }
        }
        self.delete_asset(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ota_sign_temporary_names_are_recognised() {
        let name = temporary_name("lamp.stable.manifest", "1750000000-42-0");
        let old = temporary(&name).unwrap();
        assert_eq!(old.target, "lamp.stable.manifest");
        assert!(old.is_stale());
        assert_eq!(
            names::classify(&name),
            None,
            "never taken for a served file"
        );
        let sums = temporary_name(names::SHA256SUMS, &nonce());
        let live = temporary(&sums).unwrap();
        assert_eq!(live.target, names::SHA256SUMS);
        assert!(!live.is_stale(), "a publish running now");
        for other in [
            "lamp.stable.manifest",
            "notes.txt.ota-sign-tmp-1-2",
            "lamp.stable.manifest.ota-sign-tmp-",
            "lamp.stable.manifest.ota-sign-tmp-12",
            "lamp.stable.manifest.ota-sign-tmp-abc-1",
            "lamp.stable.manifest.ota-sign-tmp-1-x",
        ] {
            assert_eq!(temporary(other), None, "{other}");
        }
    }
}
