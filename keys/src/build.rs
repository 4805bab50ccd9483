//! For a firmware's `build.rs`: turn the trusted public keys into the Rust source that
//! embeds them, so the key set lives in key files rather than pasted arrays.
//!
//! ```no_run
//! // build.rs of a firmware crate (ota-keys as a build-dependency)
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("trusted_keys.rs");
//! let read = ota_keys::build::write_trusted_keys(&["../keys/release.pub"], &out).unwrap();
//! for file in read {
//!     println!("cargo:rerun-if-changed={}", file.display());
//! }
//! // src/main.rs:
//! // include!(concat!(env!("OUT_DIR"), "/trusted_keys.rs"));
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::KeyError;
use crate::export::render_rust_trusted_keys;
use crate::origin::KeyOrigin;
use crate::passphrase::NoPassphrase;
use crate::source::load_public_key;

/// Reads each spec (a `.pub` file, an unencrypted `.key` file, or 64 hex digits) and
/// writes the Rust source of [`render_rust_trusted_keys`] to `out`, rewriting it only
/// when it changes so an unchanged key set triggers no rebuild. Returns the files read,
/// for `cargo:rerun-if-changed`.
pub fn write_trusted_keys<S: AsRef<str>>(
    specs: &[S],
    out: &Path,
) -> Result<Vec<PathBuf>, KeyError> {
    let mut keys = Vec::with_capacity(specs.len());
    let mut files = Vec::new();
    for spec in specs {
        let spec = spec.as_ref();
        keys.push(load_public_key(spec, &NoPassphrase)?.value);
        if Path::new(spec).exists() {
            files.push(PathBuf::from(spec));
        }
    }
    let source = render_rust_trusted_keys(&keys)?;
    if fs::read_to_string(out).ok().as_deref() != Some(source.as_str()) {
        fs::write(out, source).map_err(|source| KeyError::Io {
            origin: KeyOrigin::File(out.to_path_buf()),
            source,
        })?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyPairPaths, PrivateKey, Protection, write_keypair};

    #[test]
    fn writes_source_for_files_and_hex_and_lists_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::for_base(&dir.path().join("release"));
        let release = PrivateKey::from_seed(&[3; 32]);
        write_keypair(&paths, &release, Protection::Unencrypted).unwrap();
        let next = PrivateKey::from_seed(&[4; 32]).public_key();
        let out = dir.path().join("trusted_keys.rs");
        let specs = [paths.public.to_str().unwrap().to_owned(), next.to_hex()];
        let read = write_trusted_keys(&specs, &out).unwrap();
        assert_eq!(read, vec![paths.public.clone()]);
        let text = fs::read_to_string(&out).unwrap();
        assert_eq!(
            text,
            render_rust_trusted_keys(&[release.public_key(), next]).unwrap()
        );

        // Unchanged set: the file is not rewritten (its mtime stays).
        let before = fs::metadata(&out).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_trusted_keys(&specs, &out).unwrap();
        assert_eq!(fs::metadata(&out).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn bad_spec_or_set_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("trusted_keys.rs");
        let err = write_trusted_keys(&["missing.pub"], &out).unwrap_err();
        assert!(err.is_io(), "{err:?}");
        let none: [&str; 0] = [];
        assert!(matches!(
            write_trusted_keys(&none, &out),
            Err(KeyError::InvalidTrustedKeySet { .. })
        ));
        assert!(!out.exists());
    }
}
