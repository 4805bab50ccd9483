//! docs/FORMAT.md quotes constants a verifier in another language will copy: every hex
//! constant it quotes must be the value the test vectors (`vectors.json`), their
//! generator and this crate use, and the test key's seed, public key and key id must
//! stand beside their own labels (a seed printed as the public key fails every vector).

mod common;
#[path = "vectors/generator.rs"]
mod generator;

use std::path::Path;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ota_format::*;
use serde_json::Value;

fn format_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/FORMAT.md");
    std::fs::read_to_string(path).expect("docs/FORMAT.md")
}

fn vectors_json() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The hex constants quoted in backticks: runs of 8+ hex digits, or groups of hex digits
/// separated by single spaces (`4f 54 41 49`), with `00…00` standing for zero bytes up to
/// the end of a 32-byte field. Returned as lower-case hex without spaces, the zero fill
/// spelled out.
fn quoted_hex(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, quoted) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let (body, fill) = match quoted.strip_suffix(" 00…00") {
            Some(body) => (body, true),
            None => (quoted, false),
        };
        let groups: Vec<&str> = body.split(' ').collect();
        let is_hex = |g: &&str| {
            !g.is_empty() && g.len().is_multiple_of(2) && g.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !groups.iter().all(is_hex) {
            continue;
        }
        let mut hex: String = groups.concat().to_ascii_lowercase();
        if hex.len() < 8 {
            continue;
        }
        if fill {
            while hex.len() < 64 {
                hex.push_str("00");
            }
        }
        out.push(hex);
    }
    out
}

#[test]
fn test_key_a_is_quoted_beside_its_labels() {
    let flat = format_md().split_whitespace().collect::<Vec<_>>().join(" ");
    let generated = generator::generate().index;
    assert_eq!(
        vectors_json()["keys"],
        generated["keys"],
        "vectors.json is stale"
    );
    let a = &generated["keys"]["a"];
    for (label, field) in [
        ("seed", "seed"),
        ("public key", "public"),
        ("key id", "key_id"),
    ] {
        let value = a[field].as_str().unwrap();
        assert!(
            flat.contains(&format!("{label} `{value}`")),
            "FORMAT.md must give test key A's {label} as `{value}` (vectors.json keys.a.{field})"
        );
    }
    // The public key is the one the seed derives, and the key id is its hash prefix.
    let seed: [u8; 32] = hex::decode(a["seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    assert_eq!(hex::encode(public), a["public"]);
    assert_eq!(KeyId::of(&public).to_string(), a["key_id"]);
}

#[test]
fn every_hex_constant_in_format_md_is_a_vector_or_crate_value() {
    let text = format_md();
    let generated = generator::generate();
    let index = &generated.index;
    let file = |name: &str| {
        &generated
            .files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not generated"))
            .1
    };
    let mut known: Vec<(String, &str)> = vec![
        (hex::encode(IMAGE_DOMAIN), "image signature domain"),
        (hex::encode(MANIFEST_DOMAIN), "manifest signature domain"),
        (hex::encode(ROLLOUT_DOMAIN), "rollout domain"),
        (hex::encode(IMAGE_MAGIC), "image magic"),
        (hex::encode(DELTA_DOMAIN), "delta signature domain"),
        (hex::encode(DELTA_MAGIC), "delta magic"),
        (
            // The release-tree name of the delta vector: its base's digest prefix.
            hex::encode(&common::sha(file("deltas/base.installed.bin"))[..8]),
            "the delta vector's base digest prefix",
        ),
        (hex::encode(MANIFEST_MAGIC), "manifest magic"),
        (
            hex::encode(&DESCRIPTOR_MAGIC[8..]),
            "descriptor magic after OTAKEYS!",
        ),
        (
            hex::encode(Version::parse("1.2.3-rc.1").unwrap().encode()),
            "the version example",
        ),
        (
            // The zstd frame magic, as the zstd vector's payload starts.
            hex::encode(&file("images/valid-zstd.ota")[IMAGE_HEADER_LEN..][..4]),
            "zstd frame magic",
        ),
    ];
    // The worked example of delta encoding 3: 8-byte pairs of `diffs/pairs.*` (base,
    // target, the stream's diff bytes, and what a byte-wise diff would be) at offsets 4
    // and 20.
    let (base, target, stream) = (
        file("diffs/pairs.base"),
        file("diffs/pairs.target"),
        file("diffs/pairs.stream"),
    );
    for at in [4, 20] {
        let bytewise: Vec<u8> = (at..at + 8)
            .map(|i| target[i].wrapping_sub(base[i]))
            .collect();
        for (bytes, what) in [
            (&base[at..at + 8], "a base pair of diffs/pairs.base"),
            (&target[at..at + 8], "a target pair of diffs/pairs.target"),
            (
                &stream[at..at + 8],
                "a pair's diff bytes in diffs/pairs.stream",
            ),
            (
                &bytewise[..],
                "a pair's byte-wise difference in diffs/pairs.*",
            ),
        ] {
            known.push((hex::encode(bytes), what));
        }
    }
    for key in index["keys"].as_object().unwrap().values() {
        for field in ["seed", "public", "key_id"] {
            known.push((
                key[field].as_str().unwrap().to_owned(),
                "a vectors.json key",
            ));
        }
    }
    let mut small_order = Vec::new();
    for hex_text in quoted_hex(&text) {
        if known.iter().any(|(k, _)| *k == hex_text) {
            continue;
        }
        let bytes: [u8; 32] = hex::decode(&hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("FORMAT.md quotes `{hex_text}`, which nothing defines"));
        let point = CompressedEdwardsY(bytes)
            .decompress()
            .unwrap_or_else(|| panic!("FORMAT.md quotes `{hex_text}`, which nothing defines"));
        assert!(
            point.is_small_order() && point.compress().to_bytes() == bytes,
            "FORMAT.md quotes `{hex_text}`, which is not a canonical small-order point"
        );
        small_order.push(hex_text);
    }
    small_order.sort();
    small_order.dedup();
    assert_eq!(
        small_order.len(),
        8,
        "the eight small-order points: {small_order:?}"
    );
    // The small-order vector's R is the first point listed (the identity).
    let r = &file("images/small-order-r.ota")[IMAGE_HEADER_LEN - 64..][..32];
    assert!(text.contains(&format!("`{}` (the identity)", hex::encode(r))));
}

#[test]
fn group_order_in_format_md_is_the_one_the_vectors_use() {
    let text = format_md();
    let low: u128 = 27_742_317_777_372_353_535_851_937_790_883_648_493;
    assert!(text.contains("`2^252 + 27742317777372353535851937790883648493`"));
    let mut l = [0u8; 32];
    l[..16].copy_from_slice(&low.to_le_bytes());
    l[31] = 0x10; // 2^252
    assert_eq!(l, generator::ED25519_L);
}

#[test]
fn every_error_a_vector_expects_is_in_the_error_table() {
    let text = format_md();
    let table = &text[text.find("## Errors").unwrap()..text.find("## Shared encodings").unwrap()];
    for entry in vectors_json()["vectors"].as_array().unwrap() {
        let expect = entry["expect"].as_str().unwrap();
        let name = expect.split(['(', ' ']).next().unwrap();
        if ["valid", "None", "Install", "UpToDate", "NotInRollout"].contains(&name) {
            continue;
        }
        assert!(
            table.contains(&format!("`{name}`")) || table.contains(&format!("`{name}(")),
            "FORMAT.md's error table lacks {name} ({})",
            entry["file"]
        );
    }
}
