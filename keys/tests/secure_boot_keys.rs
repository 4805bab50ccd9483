//! Secure Boot V2 key files: what is read, and what is refused with which error. Real
//! RSA 3072 keys are made at test time (openssl) in `cli/tests/secure_boot_cli.rs`, where
//! espsecure checks the signatures; the fixtures here are the 1024-bit ones of `data/`.

use std::path::PathBuf;

use ota_keys::secure_boot::SecureBootKey;
use ota_keys::{FixedPassphrase, KeyError, KeyOrigin, NoPassphrase};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn rsa_keys_of_another_size_are_refused_in_every_encoding() {
    for name in ["rsa_pkcs8.pem", "rsa_pkcs1.pem", "rsa.pub"] {
        let err = SecureBootKey::load(&data(name), &NoPassphrase).unwrap_err();
        assert!(
            err.to_string()
                .contains("1024-bit RSA key; Secure Boot V2 needs RSA 3072"),
            "{name}: {err}"
        );
    }
}

#[test]
fn other_keys_and_encodings_are_refused() {
    let pass = FixedPassphrase::new("fixture");
    let err = SecureBootKey::load(&data("rsa_legacy_encrypted.pem"), &pass).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedEncryption { .. }),
        "{err}"
    );
    for name in ["openssl_ed25519.pem", "x25519.pem", "openssl_ed25519.pub"] {
        let err = SecureBootKey::load(&data(name), &NoPassphrase).unwrap_err();
        assert!(
            matches!(err, KeyError::UnsupportedSecureBootKey { .. }),
            "{name}: {err}"
        );
    }
    let err = SecureBootKey::load(&data("missing.pem"), &NoPassphrase).unwrap_err();
    assert!(matches!(err, KeyError::Io { .. }), "{err}");
}

#[test]
fn text_that_is_not_pem_is_refused() {
    let err = SecureBootKey::parse("not pem", &KeyOrigin::Memory, &NoPassphrase).unwrap_err();
    assert!(matches!(err, KeyError::NotPem { .. }), "{err}");
}

#[test]
fn p256_keys_load_from_sec1_pkcs8_and_public_key_files() {
    let pkcs8 = SecureBootKey::load(&data("p256_pkcs8.pem"), &NoPassphrase).unwrap();
    let public = SecureBootKey::load(&data("p256.pub"), &NoPassphrase).unwrap();
    assert_eq!(pkcs8.digest(), public.digest(), "one key, one digest");
    let sec1 = SecureBootKey::load(&data("p256_sec1.pem"), &NoPassphrase).unwrap();
    assert_ne!(sec1.digest(), pkcs8.digest(), "another key");

    let image = [0x5Au8; 100];
    let signed = sec1.sign_app_image(&image, &KeyOrigin::Memory).unwrap();
    assert_eq!(signed.len(), 8192);
    assert_eq!(signed[..100], image);
    assert_eq!(&signed[4096..4098], &[0xE7, 3]);
    let err = public
        .sign_app_image(&image, &KeyOrigin::Memory)
        .unwrap_err();
    assert!(matches!(err, KeyError::PublicKeyOnly { .. }), "{err}");
}
