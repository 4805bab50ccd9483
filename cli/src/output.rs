//! Reading inputs and writing outputs for commands: every failure names the file, and an
//! output is either complete or absent (written beside the target and linked or renamed
//! into place), so an error never leaves a partial file behind.

use std::path::Path;

use crate::exit::{self, Failure, IoFailure};
use ota_sign_lib::repo::atomic;

/// Reads a whole input file.
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|source| {
        IoFailure {
            action: format!("cannot read {}", path.display()),
            source,
        }
        .into()
    })
}

/// The failure for an output that already exists.
pub fn exists(path: &Path) -> Failure {
    Failure::new(
        exit::CONFLICT,
        crate::exit::Message::new(
            format!("{} already exists", path.display()),
            Some(
                "outputs are never overwritten silently; pass --force or choose another name"
                    .to_owned(),
            ),
            "ota_sign::output_exists",
        ),
    )
}

/// Writes an output file completely or not at all; refuses to replace an existing file
/// unless `replace`.
pub fn write(path: &Path, bytes: &[u8], replace: bool) -> Result<(), Failure> {
    let result = if replace {
        atomic::write_replace(path, bytes)
    } else {
        atomic::write_new(path, bytes)
    };
    result.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            exists(path)
        } else {
            IoFailure {
                action: format!("cannot write {}", path.display()),
                source,
            }
            .into()
        }
    })
}
