//! Keys whose private half is public: anyone can sign with them, so firmware must never
//! trust them and a configuration must never list them as a fleet's key.
//!
//! This is the one list ota-sign checks against (`package`, `verify`, `extract`, `flash`
//! refuse them unless `--allow-test-keys`). It holds the private halves (the seeds), not
//! just the public keys, so that the list visibly is what it claims to be.
//!
//! | name | where its seed is published |
//! |---|---|
//! | RFC 8032 TEST 1, 2, 3, 1024, SHA(abc) | RFC 8032 section 7.1 |
//! | ota-sign test vectors key A / key B | `format/tests/vectors/README.md` (SHA-256 of a text) |
//! | ota-sign insecure test key | `firmware/esp32c3/README.md` (SHA-256 of a text); the ESP32-C3 firmware trusts it when built without `OTA_TRUSTED_KEYS` |

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::{PrivateKey, PublicKey};

/// Where a public seed comes from.
enum Seed {
    /// 32 bytes as hex, as RFC 8032 prints its secret keys.
    Hex(&'static str),
    /// SHA-256 of a text, as this project derives its test keys.
    Sha256Of(&'static str),
}

/// Every key whose private half is published, with a name people recognise.
const PUBLISHED: [(&str, Seed); 8] = [
    (
        "RFC 8032 test vector TEST 1",
        Seed::Hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    ),
    (
        "RFC 8032 test vector TEST 2",
        Seed::Hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    ),
    (
        "RFC 8032 test vector TEST 3",
        Seed::Hex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
    ),
    (
        "RFC 8032 test vector TEST 1024",
        Seed::Hex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5"),
    ),
    (
        "RFC 8032 test vector TEST SHA(abc)",
        Seed::Hex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"),
    ),
    (
        "ota-sign test vectors key A",
        Seed::Sha256Of("ota-sign test vectors: TEST ONLY key A"),
    ),
    (
        "ota-sign test vectors key B",
        Seed::Sha256Of("ota-sign test vectors: TEST ONLY key B"),
    ),
    (
        "ota-sign insecure test key (ESP32-C3 firmware default)",
        Seed::Sha256Of("ota-sign INSECURE test key; never use in production"),
    ),
];

fn seed_bytes(seed: &Seed) -> [u8; 32] {
    match seed {
        Seed::Hex(hex) => {
            let mut out = [0u8; 32];
            for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
                let text = std::str::from_utf8(pair).expect("ASCII hex");
                *byte = u8::from_str_radix(text, 16).expect("the list holds valid hex");
            }
            out
        }
        Seed::Sha256Of(text) => Sha256::digest(text.as_bytes()).into(),
    }
}

/// The public halves of the published keys, with their names (derived once).
pub fn published_keys() -> &'static [(PublicKey, &'static str)] {
    static KEYS: OnceLock<Vec<(PublicKey, &'static str)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        PUBLISHED
            .iter()
            .map(|(name, seed)| (PrivateKey::from_seed(&seed_bytes(seed)).public_key(), *name))
            .collect()
    })
}

/// The name of a key whose private half is public, or `None` for any other key.
pub fn published_key_name(public_key: &[u8; 32]) -> Option<&'static str> {
    published_keys()
        .iter()
        .find(|(key, _)| key.to_bytes() == *public_key)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8032_public_keys_are_the_published_ones() {
        // RFC 8032 section 7.1 prints the public key of each test; a wrong seed here
        // would silently let that key through.
        let expected = [
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        ];
        for (hex, (key, name)) in expected.iter().zip(published_keys()) {
            assert_eq!(key.to_hex(), *hex, "{name}");
        }
    }

    #[test]
    fn the_esp32c3_default_test_key_is_listed() {
        // firmware/esp32c3/build/config.rs embeds this public key without OTA_TRUSTED_KEYS.
        let key =
            PublicKey::from_hex("6ff1e05de7d0807220aa4e83963a0f42f8e10ad78363ee00cfcd3f1d8d04c0db")
                .unwrap();
        assert!(published_key_name(&key.to_bytes()).is_some());
    }

    #[test]
    fn a_fresh_key_is_not_listed() {
        let key = PrivateKey::generate().unwrap().public_key();
        assert_eq!(published_key_name(&key.to_bytes()), None);
    }
}
