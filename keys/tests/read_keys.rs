//! Reading every kind of key file ota-sign meets, good and bad (fixtures: tests/data).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use ota_keys::{
    Algorithm, FixedPassphrase, KeyError, KeyLocation, KeyMaterial, KeyOrigin, KeyPairPaths,
    KeyWarning, NoPassphrase, PassphraseRequest, PassphraseSource, PrivateKey, Protection,
    PublicKey, ScryptCost, SigningKeySource, Zeroizing, load_public_key, parse_pem, write_keypair,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

fn parse(name: &str, pass: &dyn PassphraseSource) -> Result<KeyMaterial, KeyError> {
    parse_pem(&text(name), &KeyOrigin::File(data(name)), pass)
}

fn fast() -> ScryptCost {
    ScryptCost::new(10, 8, 1).unwrap()
}

fn private(m: KeyMaterial) -> (PrivateKey, bool) {
    match m {
        KeyMaterial::Private { key, encrypted } => (key, encrypted),
        KeyMaterial::Public(_) => panic!("expected a private key"),
    }
}

/// Counts how often it is asked, to prove unencrypted keys never prompt.
struct Counting<'a>(&'a str, Cell<u32>);

impl PassphraseSource for Counting<'_> {
    fn passphrase(&self, _: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError> {
        self.1.set(self.1.get() + 1);
        Ok(Zeroizing::new(self.0.to_owned()))
    }
}

fn openssl_public() -> PublicKey {
    match parse("openssl_ed25519.pub", &NoPassphrase).unwrap() {
        KeyMaterial::Public(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn openssl_key_signs_exactly_like_openssl() {
    let (key, encrypted) = private(parse("openssl_ed25519.pem", &NoPassphrase).unwrap());
    assert!(!encrypted);
    assert_eq!(key.public_key(), openssl_public());
    let message = std::fs::read(data("message.txt")).unwrap();
    let expected: [u8; 64] = std::fs::read(data("openssl_ed25519.sig"))
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(key.sign(&message), expected);
}

#[test]
fn our_v1_pem_is_byte_identical_to_openssl() {
    let (key, _) = private(parse("openssl_ed25519.pem", &NoPassphrase).unwrap());
    assert_eq!(*key.to_pkcs8_pem().unwrap(), text("openssl_ed25519.pem"));
    assert_eq!(key.public_key().to_pem(), text("openssl_ed25519.pub"));
}

#[test]
fn openssl_pbkdf2_and_scrypt_encrypted_keys_are_read() {
    for name in ["openssl_ed25519_pbkdf2.pem", "openssl_ed25519_scrypt.pem"] {
        let (key, encrypted) = private(parse(name, &FixedPassphrase::new("fixture")).unwrap());
        assert!(encrypted, "{name}");
        assert_eq!(key.public_key(), openssl_public(), "{name}");
    }
}

#[test]
fn pkcs8_v2_with_public_key_is_read() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    // ed25519-dalek writes v2 (OneAsymmetricKey with the public key) by default.
    let pem = signing.to_pkcs8_pem(Default::default()).unwrap();
    let (key, _) = private(parse_pem(&pem, &KeyOrigin::Memory, &NoPassphrase).unwrap());
    assert_eq!(
        key.public_key().to_bytes(),
        signing.verifying_key().to_bytes()
    );
}

#[test]
fn pkcs8_v2_with_foreign_public_key_is_rejected() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes, PublicKeyBytes};
    let other = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    let forged = KeypairBytes {
        secret_key: [5; 32],
        public_key: Some(PublicKeyBytes(other.verifying_key().to_bytes())),
    };
    let pem = forged.to_pkcs8_pem(Default::default()).unwrap();
    assert!(matches!(
        parse_pem(&pem, &KeyOrigin::Memory, &NoPassphrase),
        Err(KeyError::KeyPairMismatch { .. })
    ));
}

#[test]
fn encrypted_round_trip_asks_once() {
    let key = PrivateKey::from_seed(&[9; 32]);
    let pem = key.to_encrypted_pkcs8_pem("correct horse", fast()).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    let asker = Counting("correct horse", Cell::new(0));
    let (back, encrypted) = private(parse_pem(&pem, &KeyOrigin::Memory, &asker).unwrap());
    assert!(encrypted);
    assert_eq!(back.public_key(), key.public_key());
    assert_eq!(asker.1.get(), 1);
}

#[test]
fn unencrypted_key_never_asks_for_a_passphrase() {
    let asker = Counting("unused", Cell::new(0));
    parse("openssl_ed25519.pem", &asker).unwrap();
    parse("openssl_ed25519.pub", &asker).unwrap();
    assert_eq!(asker.1.get(), 0);
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    // Several keys, so that the ~1/256 case of valid CBC padding over garbage is covered
    // by the same error.
    for seed in 0..8u8 {
        let pem = PrivateKey::from_seed(&[seed; 32])
            .to_encrypted_pkcs8_pem("right", fast())
            .unwrap();
        let err = parse_pem(&pem, &KeyOrigin::Memory, &FixedPassphrase::new("wrong")).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
    }
    let err = parse("openssl_ed25519_pbkdf2.pem", &FixedPassphrase::new("wrong")).unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
    assert!(err.to_string().ends_with("wrong passphrase"));
}

#[test]
fn encrypted_key_without_passphrase_names_the_variable() {
    let err = parse("openssl_ed25519_scrypt.pem", &NoPassphrase).unwrap_err();
    assert!(
        matches!(err, KeyError::PassphraseRequired { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("key is encrypted: set OTA_SIGN_PASSPHRASE"),
        "{msg}"
    );
}

#[test]
fn wrong_algorithms_are_named() {
    let cases = [
        ("rsa_pkcs8.pem", Algorithm::Rsa),
        ("rsa_pkcs1.pem", Algorithm::Rsa),
        ("rsa_legacy_encrypted.pem", Algorithm::Rsa),
        ("rsa.pub", Algorithm::Rsa),
        ("p256_pkcs8.pem", Algorithm::P256),
        ("p256_sec1.pem", Algorithm::P256),
        ("p256.pub", Algorithm::P256),
        ("ed448.pem", Algorithm::Ed448),
        ("x25519.pem", Algorithm::X25519),
    ];
    for (name, want) in cases {
        match parse(name, &NoPassphrase) {
            Err(KeyError::WrongAlgorithm { algorithm, .. }) => {
                assert_eq!(algorithm, want, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    for (name, ending) in [
        (
            "rsa_pkcs8.pem",
            "this is an RSA key; ota-sign needs Ed25519",
        ),
        (
            "p256_pkcs8.pem",
            "this is a P-256 (ECDSA) key; ota-sign needs Ed25519",
        ),
    ] {
        let msg = parse(name, &NoPassphrase).unwrap_err().to_string();
        assert!(msg.ends_with(ending), "{name}: {msg}");
    }
}

#[test]
fn openssh_key_is_an_unsupported_label() {
    match parse("openssh_ed25519.key", &NoPassphrase) {
        Err(KeyError::UnsupportedPemLabel { label, .. }) => {
            assert_eq!(label, "OPENSSH PRIVATE KEY")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pbes1_encryption_is_unsupported() {
    let err = parse(
        "openssl_ed25519_pbes1.pem",
        &FixedPassphrase::new("fixture"),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedEncryption { .. }),
        "{err:?}"
    );
}

#[test]
fn not_pem_and_corrupt_pem() {
    let origin = KeyOrigin::Memory;
    assert!(matches!(
        parse_pem("", &origin, &NoPassphrase),
        Err(KeyError::NotPem { .. })
    ));
    assert!(matches!(
        parse_pem("just some text\n", &origin, &NoPassphrase),
        Err(KeyError::NotPem { .. })
    ));
    let good = text("openssl_ed25519.pem");
    // Damaged base64.
    let bad_b64 = good.replace("MC4CAQAw", "MC4C*QAw");
    assert!(matches!(
        parse_pem(&bad_b64, &origin, &NoPassphrase),
        Err(KeyError::CorruptPem { .. })
    ));
    // Cut before the END line.
    let truncated = &good[..good.len() - 10];
    assert!(matches!(
        parse_pem(truncated, &origin, &NoPassphrase),
        Err(KeyError::CorruptPem { .. })
    ));
    // Valid PEM, but the DER inside is cut short.
    let short_der =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
    let err = parse_pem(short_der, &origin, &NoPassphrase).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::CorruptPem { .. } | KeyError::Malformed { .. }
        ),
        "{err:?}"
    );
    // Well-formed base64 of something that is not a key at all.
    let junk = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        parse_pem(junk, &origin, &NoPassphrase),
        Err(KeyError::Malformed { .. })
    ));
}

#[test]
fn every_truncation_of_a_key_fails_cleanly() {
    let good = text("openssl_ed25519.pem");
    for cut in 0..good.len() - 1 {
        let r = parse_pem(&good[..cut], &KeyOrigin::Memory, &NoPassphrase);
        assert!(r.is_err(), "cut at {cut} parsed");
    }
}

/// Builds an EncryptedPrivateKeyInfo announcing `params`, with dummy ciphertext: the cost
/// check must reject it before any key derivation runs.
fn encrypted_with(params: pkcs8::pkcs5::pbes2::Parameters) -> String {
    use pkcs8::der::{Encode, asn1::OctetStringRef};
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: OctetStringRef::new(&[0u8; 48]).unwrap(),
    };
    let der = info.to_der().unwrap();
    pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", Default::default(), &der).unwrap()
}

#[test]
fn hostile_kdf_costs_are_refused_before_asking() {
    use pkcs8::pkcs5::{pbes2, scrypt};
    let huge_scrypt = pbes2::Parameters::generate_scrypt_aes256cbc(
        scrypt::Params::new(24, 8, 1).unwrap(),
        &[1; 16],
        [2; 16],
    )
    .unwrap();
    let huge_pbkdf2 =
        pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(50_000_000, &[1; 16], [2; 16]).unwrap();
    for params in [huge_scrypt, huge_pbkdf2] {
        let asker = Counting("x", Cell::new(0));
        let err = parse_pem(&encrypted_with(params), &KeyOrigin::Memory, &asker).unwrap_err();
        assert!(matches!(err, KeyError::KdfTooExpensive { .. }), "{err:?}");
        assert_eq!(asker.1.get(), 0);
    }
}

#[test]
fn keypair_files_round_trip_plain_and_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate().unwrap();
    let plain = KeyPairPaths::for_base(&dir.path().join("plain"));
    write_keypair(&plain, &key, Protection::Unencrypted).unwrap();
    let enc = KeyPairPaths::for_base(&dir.path().join("enc"));
    write_keypair(
        &enc,
        &key,
        Protection::Passphrase {
            passphrase: "pw",
            cost: fast(),
        },
    )
    .unwrap();

    let loaded = KeyLocation::File(plain.private.clone())
        .load_signing(&NoPassphrase)
        .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!loaded.value.was_encrypted());
    assert_eq!(loaded.value.key_id(), key.key_id());
    let sig = loaded.value.sign(b"m").unwrap();
    assert!(key.public_key().verify(b"m", &sig));

    let loaded = KeyLocation::File(enc.private.clone())
        .load_signing(&FixedPassphrase::new("pw"))
        .unwrap();
    assert!(loaded.value.was_encrypted());
    assert_eq!(loaded.value.public_key(), key.public_key().to_bytes());
    assert_eq!(loaded.value.describe(), enc.private.display().to_string());

    let public = load_public_key(enc.public.to_str().unwrap(), &NoPassphrase).unwrap();
    assert_eq!(public.value, key.public_key());
}

#[test]
fn public_key_file_cannot_sign() {
    let err = KeyLocation::File(data("openssl_ed25519.pub"))
        .load_signing(&NoPassphrase)
        .unwrap_err();
    assert!(matches!(err, KeyError::PublicKeyOnly { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn readable_private_key_warns_and_public_does_not() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    std::fs::write(&path, text("openssl_ed25519.pem")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = KeyLocation::File(path.clone()).load(&NoPassphrase).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![KeyWarning::PrivateKeyReadableByOthers {
            path: path.clone(),
            mode: 0o644
        }]
    );
    assert!(loaded.warnings[0].to_string().contains("chmod 600"));
    let pub_path = dir.path().join("k.pub");
    std::fs::write(&pub_path, text("openssl_ed25519.pub")).unwrap();
    std::fs::set_permissions(&pub_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        KeyLocation::File(pub_path)
            .load(&NoPassphrase)
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
fn missing_file_is_io() {
    let err = KeyLocation::File(data("no-such.key"))
        .load(&NoPassphrase)
        .unwrap_err();
    assert!(err.is_io(), "{err:?}");
}

#[test]
fn location_precedence_is_flag_then_env_then_config() {
    let flag = Path::new("flag.key");
    let config = Path::new("config.key");
    let env = Some("-----BEGIN PRIVATE KEY-----".to_owned());
    let r = KeyLocation::resolve(Some(flag), env.clone(), Some(config)).unwrap();
    assert!(matches!(r, KeyLocation::File(ref p) if p == flag));
    let r = KeyLocation::resolve(None, env.clone(), Some(config)).unwrap();
    assert!(matches!(r, KeyLocation::Env(_)));
    assert_eq!(r.origin(), KeyOrigin::Env("OTA_SIGN_KEY"));
    // The PEM text never shows in debug output.
    assert_eq!(format!("{r:?}"), "Env($OTA_SIGN_KEY)");
    let r = KeyLocation::resolve(None, None, Some(config)).unwrap();
    assert!(matches!(r, KeyLocation::File(ref p) if p == config));
    assert!(KeyLocation::resolve(None, None, None).is_none());
}

#[test]
fn env_location_reads_pem_text() {
    let loc = KeyLocation::Env(Zeroizing::new(text("openssl_ed25519.pem")));
    let key = loc.load_signing(&NoPassphrase).unwrap();
    assert_eq!(key.value.public_key(), openssl_public().to_bytes());
    assert_eq!(key.value.describe(), "$OTA_SIGN_KEY");
    let empty = KeyLocation::Env(Zeroizing::new(String::new()));
    let err = empty.load(&NoPassphrase).unwrap_err();
    assert!(matches!(err, KeyError::NotPem { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("$OTA_SIGN_KEY is not a PEM key"), "{msg}");
}

#[test]
fn public_key_from_hex_spec() {
    let hex = openssl_public().to_hex();
    let k = load_public_key(&hex, &NoPassphrase).unwrap();
    assert_eq!(k.value, openssl_public());
}
