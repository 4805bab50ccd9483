//! Key files on disk: exclusive creation with tight permissions, and reading with a
//! warning when a private key is exposed to other users.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::encrypt::ScryptCost;
use crate::error::KeyError;
use crate::origin::KeyOrigin;
use crate::private::PrivateKey;

/// Key files are a few hundred bytes; anything far larger is the wrong file.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// File mode of a new private key file.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// File mode of a new public key file.
pub const PUBLIC_KEY_MODE: u32 = 0o644;

/// Something the caller should tell the user, though the operation succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyWarning {
    /// A private key file can be read by its group or by other users.
    PrivateKeyReadableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyWarning::PrivateKeyReadableByOthers { path, mode } => write!(
                f,
                "private key {} is readable by other users (mode {:04o}); run `chmod 600 {}`",
                path.display(),
                mode,
                path.display()
            ),
        }
    }
}

/// The text of a key file and its permission bits (Unix only).
pub(crate) struct KeyFileText {
    pub text: Zeroizing<String>,
    pub mode: Option<u32>,
}

pub(crate) fn read_key_file(path: &Path) -> Result<KeyFileText, KeyError> {
    let origin = || KeyOrigin::File(path.to_path_buf());
    let io_err = |source| KeyError::Io {
        origin: origin(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(io_err(io::Error::other("is a directory, not a key file")));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::NotPem { origin: origin() });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(MAX_KEY_FILE)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(s) => Zeroizing::new(s.to_owned()),
        // Binary (DER) or other non-text files.
        Err(_) => return Err(KeyError::NotPem { origin: origin() }),
    };
    Ok(KeyFileText {
        text,
        mode: file_mode(&meta),
    })
}

#[cfg(unix)]
fn file_mode(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn file_mode(_: &fs::Metadata) -> Option<u32> {
    None
}

pub(crate) fn permission_warning(path: &Path, mode: Option<u32>) -> Option<KeyWarning> {
    match mode {
        Some(mode) if mode & 0o077 != 0 => Some(KeyWarning::PrivateKeyReadableByOthers {
            path: path.to_path_buf(),
            mode,
        }),
        _ => None,
    }
}

/// Creates `path` with `contents`, failing if anything (a file, a directory, a dangling
/// symlink) is already there. If writing fails part-way the file is removed, so a key
/// file either exists complete or not at all.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Io {
                origin: KeyOrigin::File(path.to_path_buf()),
                source,
            }
        }
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(KeyError::Io {
            origin: KeyOrigin::File(path.to_path_buf()),
            source,
        });
    }
    Ok(())
}

/// The two files `keygen` writes for a base path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairPaths {
    /// `<base>.key`: the private key.
    pub private: PathBuf,
    /// `<base>.pub`: the public key.
    pub public: PathBuf,
}

impl KeyPairPaths {
    /// `<base>.key` and `<base>.pub`. A base that already ends in `.key` or `.pub` has that
    /// suffix replaced rather than doubled.
    pub fn for_base(base: &Path) -> Self {
        let base = match base.extension().and_then(|e| e.to_str()) {
            Some("key" | "pub") => base.with_extension(""),
            _ => base.to_path_buf(),
        };
        let with = |ext: &str| {
            let mut s = base.clone().into_os_string();
            s.push(".");
            s.push(ext);
            PathBuf::from(s)
        };
        KeyPairPaths {
            private: with("key"),
            public: with("pub"),
        }
    }
}

/// How the private key file is protected.
#[derive(Clone, Copy)]
pub enum Protection<'a> {
    /// Plain PKCS#8; the file mode is the only protection.
    Unencrypted,
    /// Encrypted PKCS#8 with this passphrase and scrypt cost.
    Passphrase {
        /// The passphrase.
        passphrase: &'a str,
        /// The scrypt cost.
        cost: ScryptCost,
    },
}

impl fmt::Debug for Protection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protection::Unencrypted => f.write_str("Unencrypted"),
            Protection::Passphrase { cost, .. } => f
                .debug_struct("Passphrase")
                .field("cost", cost)
                .finish_non_exhaustive(),
        }
    }
}

/// Writes `key` as `paths.private` (mode 0600) and its public key as `paths.public`
/// (mode 0644). Neither file may exist; if the second cannot be written the first is
/// removed again, so either both files are written or neither is.
pub fn write_keypair(
    paths: &KeyPairPaths,
    key: &PrivateKey,
    protection: Protection<'_>,
) -> Result<(), KeyError> {
    // Checked up front so that a refusal leaves no trace even for the first file.
    for path in [&paths.private, &paths.public] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::AlreadyExists { path: path.clone() });
        }
    }
    let private_pem = match protection {
        Protection::Unencrypted => key.to_pkcs8_pem()?,
        Protection::Passphrase { passphrase, cost } => {
            key.to_encrypted_pkcs8_pem(passphrase, cost)?
        }
    };
    let public_pem = key.public_key().to_pem();
    write_new_file(&paths.private, private_pem.as_bytes(), PRIVATE_KEY_MODE)?;
    if let Err(e) = write_new_file(&paths.public, public_pem.as_bytes(), PUBLIC_KEY_MODE) {
        let _ = fs::remove_file(&paths.private);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_base() {
        let p = KeyPairPaths::for_base(Path::new("keys/release"));
        assert_eq!(p.private, Path::new("keys/release.key"));
        assert_eq!(p.public, Path::new("keys/release.pub"));
        let q = KeyPairPaths::for_base(Path::new("keys/release.key"));
        assert_eq!(q, p);
        let r = KeyPairPaths::for_base(Path::new("keys/v1.2"));
        assert_eq!(r.private, Path::new("keys/v1.2.key"));
    }

    #[test]
    fn write_new_file_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_new_file(&path, b"first", 0o600).unwrap();
        let err = write_new_file(&path, b"second", 0o600).unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists { .. }));
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[cfg(unix)]
    #[test]
    fn modes_are_applied() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::for_base(&dir.path().join("k"));
        write_keypair(
            &paths,
            &PrivateKey::from_seed(&[7; 32]),
            Protection::Unencrypted,
        )
        .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.private), 0o600);
        // The umask may only remove bits from 0644.
        assert_eq!(mode(&paths.public) & !0o644, 0);
        assert_ne!(mode(&paths.public) & 0o400, 0);
    }

    #[test]
    fn existing_public_file_blocks_both() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::for_base(&dir.path().join("k"));
        fs::write(&paths.public, b"keep me").unwrap();
        let err = write_keypair(
            &paths,
            &PrivateKey::from_seed(&[7; 32]),
            Protection::Unencrypted,
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists { ref path } if *path == paths.public));
        assert!(!paths.private.exists());
        assert_eq!(fs::read(&paths.public).unwrap(), b"keep me");
    }

    #[cfg(unix)]
    #[test]
    fn dangling_symlink_counts_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::for_base(&dir.path().join("k"));
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &paths.private).unwrap();
        let err = write_keypair(
            &paths,
            &PrivateKey::from_seed(&[7; 32]),
            Protection::Unencrypted,
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists { .. }));
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPairPaths::for_base(&dir.path().join("no/such/dir/k"));
        let err = write_keypair(
            &paths,
            &PrivateKey::from_seed(&[7; 32]),
            Protection::Unencrypted,
        )
        .unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }

    #[test]
    fn oversized_or_binary_file_is_not_pem() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; (MAX_KEY_FILE + 1) as usize]).unwrap();
        assert!(matches!(read_key_file(&big), Err(KeyError::NotPem { .. })));
        let bin = dir.path().join("bin");
        fs::write(&bin, [0x30, 0x82, 0xff, 0xfe]).unwrap();
        assert!(matches!(read_key_file(&bin), Err(KeyError::NotPem { .. })));
    }

    #[test]
    fn permission_warning_only_for_group_or_other_bits() {
        let p = Path::new("k.key");
        assert_eq!(permission_warning(p, Some(0o600)), None);
        assert_eq!(permission_warning(p, Some(0o400)), None);
        assert!(permission_warning(p, Some(0o640)).is_some());
        assert!(permission_warning(p, Some(0o604)).is_some());
        assert_eq!(permission_warning(p, None), None);
    }
}
