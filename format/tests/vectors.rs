//! The committed test vectors (`tests/vectors/`): they match their generator byte for
//! byte, each produces exactly the outcome its index entry labels, and the independent
//! Python verifier (written from docs/FORMAT.md alone) agrees on every one.
//!
//! `OTA_REGENERATE_VECTORS=1 cargo test -p ota-format --test vectors` rewrites them.

mod common;
#[path = "vectors/generator.rs"]
mod generator;

use std::path::{Path, PathBuf};
use std::process::Command;

use ota_format::*;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn index() -> Value {
    let text = std::fs::read_to_string(dir().join("vectors.json")).expect("vectors.json");
    serde_json::from_str(&text).expect("vectors.json parses")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// The fuzz targets' seed corpus (`fuzz/seeds/<target>/`) is the vector set, so that
/// mutations start from every interesting case; image and delta seeds carry the leading
/// byte the `image_stream` and `delta_stream` targets take as their chunk size, and
/// difference-stream seeds the header `diff_patch` reads (piece size, image size, base
/// length, base) before the stream.
fn fuzz_seeds(generated: &generator::Vectors) -> Vec<(PathBuf, Vec<u8>)> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let file = |name: &str| &generated.files.iter().find(|(n, _)| n == name).unwrap().1;
    let mut out = Vec::new();
    for (name, bytes) in &generated.files {
        let (kind, file) = name.split_once('/').unwrap();
        let (target, seed) = match kind {
            "images" if file.ends_with(".ota") => ("image_stream", [&[0x3f], &bytes[..]].concat()),
            "deltas" if file.ends_with(".otad") => ("delta_stream", [&[0x3f], &bytes[..]].concat()),
            "manifests" => ("manifest", bytes.clone()),
            "descriptors" => ("descriptor", bytes.clone()),
            _ => continue,
        };
        out.push((seeds.join(target).join(file), seed));
    }
    for entry in generated.index["vectors"].as_array().unwrap() {
        if entry["kind"] != "diff" {
            continue;
        }
        let name = entry["file"].as_str().unwrap();
        let base = file(entry["base"].as_str().unwrap());
        let image_size = entry["image_size"].as_u64().unwrap() as u32;
        let mut seed = vec![0x3f];
        seed.extend_from_slice(&image_size.to_le_bytes());
        seed.extend_from_slice(&u16::try_from(base.len()).unwrap().to_le_bytes());
        seed.extend_from_slice(base);
        seed.extend_from_slice(file(name));
        let (_, stream) = name.split_once('/').unwrap();
        out.push((seeds.join("diff_patch").join(stream), seed));
    }
    out
}

#[test]
fn fuzz_seeds_are_the_vectors() {
    let generated = generator::generate();
    let seeds = fuzz_seeds(&generated);
    for (path, bytes) in &seeds {
        assert!(
            std::fs::read(path).is_ok_and(|b| &b == bytes),
            "{} is missing or stale: run OTA_REGENERATE_VECTORS=1 cargo test -p ota-format --test vectors",
            path.display()
        );
    }
    for target in [
        "image_stream",
        "delta_stream",
        "manifest",
        "descriptor",
        "diff_patch",
    ] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(
                seeds.iter().any(|(p, _)| *p == path),
                "{} is no longer a vector: delete it",
                path.display()
            );
        }
    }
}

#[test]
fn vectors_on_disk_match_the_generator() {
    let generated = generator::generate();
    let json = serde_json::to_string_pretty(&generated.index).unwrap() + "\n";
    if std::env::var_os("OTA_REGENERATE_VECTORS").is_some() {
        for (name, bytes) in &generated.files {
            let path = dir().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        std::fs::write(dir().join("vectors.json"), json).unwrap();
        for (seed, bytes) in fuzz_seeds(&generated) {
            std::fs::create_dir_all(seed.parent().unwrap()).unwrap();
            std::fs::write(seed, bytes).unwrap();
        }
        return;
    }
    for (name, bytes) in &generated.files {
        assert!(
            &read(name) == bytes,
            "{name} differs from its generator: run OTA_REGENERATE_VECTORS=1 cargo test -p ota-format --test vectors"
        );
    }
    assert_eq!(
        index(),
        generated.index,
        "vectors.json is stale: regenerate"
    );
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for entry in generated.index["vectors"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        assert!(
            readme.contains(&format!("`{file}`")),
            "README.md lacks {file}"
        );
    }
}

fn device_from(v: &Value, id: &[u8]) -> Device<'static> {
    let id: &'static [u8] = Box::leak(id.to_vec().into_boxed_slice());
    Device {
        device_type: DeviceType::new(v["device_type"].as_str().unwrap()).unwrap(),
        chip: ChipId(v["chip"].as_u64().unwrap() as u16),
        channel: Channel::new(v["channel"].as_str().unwrap()).unwrap(),
        running_version: Version::parse(v["running_version"].as_str().unwrap()).unwrap(),
        security_counter: v["security_counter"].as_u64().unwrap(),
        last_sequence: v["last_sequence"].as_u64(),
        device_id: id,
        now: v["now"].as_u64(),
        slot_size: v["slot_size"].as_u64().unwrap() as u32,
    }
}

/// Applies a difference stream to `base` with [`diff::DiffPatcher`], asking for the target
/// `piece` bytes at a time; the error's name on refusal. A read outside the stream or the
/// base fails the test: the patcher must never ask for one.
fn patch(stream: &[u8], base: &[u8], image_size: u32, piece: usize) -> Result<Vec<u8>, String> {
    let name = |e: diff::DiffCorruption| format!("{e:?}");
    let mut patcher =
        diff::DiffPatcher::new(image_size, base.len() as u32, stream.len() as u32).map_err(name)?;
    let mut source = diff::SliceSource {
        stream,
        base,
        control_offset: diff::control_offset(image_size),
    };
    let mut out = vec![0u8; image_size as usize];
    for chunk in out.chunks_mut(piece) {
        match patcher.fill(&mut source, chunk) {
            Ok(()) => {}
            Err(diff::DiffError::Corrupt(e)) => return Err(name(e)),
            Err(diff::DiffError::Source(e)) => panic!("read outside the stream or base: {e:?}"),
        }
    }
    assert_eq!(patcher.produced(), image_size);
    patcher.finish().map_err(name)?;
    Ok(out)
}

/// A difference-stream vector's outcome, the same whatever the output piece size.
fn run_diff(entry: &Value, stream: &[u8]) -> String {
    let base = read(entry["base"].as_str().unwrap());
    let image_size = entry["image_size"].as_u64().unwrap() as u32;
    let whole = (image_size as usize).max(1);
    let outcomes: Vec<_> = [1, 7, 4096, whole]
        .into_iter()
        .map(|piece| patch(stream, &base, image_size, piece))
        .collect();
    for o in &outcomes[1..] {
        assert_eq!(o, &outcomes[0], "piece sizes disagree: {entry}");
    }
    match &outcomes[0] {
        Ok(target) => {
            let expected = read(
                entry["target"]
                    .as_str()
                    .expect("a valid diff names its target"),
            );
            assert!(*target == expected, "{entry}: not the expected target");
            "valid".into()
        }
        Err(name) => name.clone(),
    }
}

fn run(entry: &Value, keys: TrustedKeys<'_>) -> String {
    let bytes = read(entry["file"].as_str().unwrap());
    let err = |e: FormatError| format!("{e:?}");
    match entry["kind"].as_str().unwrap() {
        "image" => {
            let manifest = entry.get("manifest").map(|m| {
                Manifest::verify(&read(m.as_str().unwrap()), &keys).expect("bound manifest")
            });
            let expect = Expectations {
                manifest: manifest.as_ref(),
                device_type: entry
                    .get("expect_device_type")
                    .map(|t| DeviceType::new(t.as_str().unwrap()).unwrap()),
                chip: entry
                    .get("expect_chip")
                    .map(|c| ChipId(c.as_u64().unwrap() as u16)),
            };
            let whole = verify_image(&bytes, keys, expect).map_or_else(err, |_| "valid".into());
            // Byte-at-a-time streaming must reach the same verdict.
            let mut v = ImageVerifier::new(keys, expect);
            let streamed = bytes
                .iter()
                .try_for_each(|b| v.feed(std::slice::from_ref(b)).map(drop))
                .and_then(|()| v.finish())
                .map_or_else(err, |_| "valid".into());
            assert_eq!(whole, streamed, "{entry}");
            whole
        }
        "delta" => {
            let manifest = entry.get("manifest").map(|m| {
                Manifest::verify(&read(m.as_str().unwrap()), &keys).expect("bound manifest")
            });
            let base = entry.get("base").map(|b| {
                let base = read(b.as_str().unwrap());
                (base.len() as u32, common::sha(&base))
            });
            let expect = DeltaExpectations {
                target: Expectations {
                    manifest: manifest.as_ref(),
                    device_type: entry
                        .get("expect_device_type")
                        .map(|t| DeviceType::new(t.as_str().unwrap()).unwrap()),
                    chip: entry
                        .get("expect_chip")
                        .map(|c| ChipId(c.as_u64().unwrap() as u16)),
                },
                base,
            };
            let whole = verify_delta(&bytes, keys, expect).map_or_else(err, |_| "valid".into());
            // Byte-at-a-time streaming must reach the same verdict.
            let mut v = DeltaVerifier::new(keys, expect);
            let streamed = bytes
                .iter()
                .try_for_each(|b| v.feed(std::slice::from_ref(b)).map(drop))
                .and_then(|()| v.finish())
                .map_or_else(err, |_| "valid".into());
            assert_eq!(whole, streamed, "{entry}");
            whole
        }
        "manifest" => match Manifest::verify(&bytes, &keys) {
            Err(e) => err(e),
            Ok(vm) => match entry.get("device") {
                None => "valid".into(),
                Some(d) => {
                    let id = hex::decode(d["device_id"].as_str().unwrap()).unwrap();
                    vm.decide(&device_from(d, &id))
                        .map_or_else(err, |decision| format!("{decision:?}"))
                }
            },
        },
        kind @ ("descriptor" | "firmware") => {
            let parsed = if kind == "descriptor" {
                TrustedKeyDescriptor::parse(&bytes).map(Some)
            } else {
                TrustedKeyDescriptor::find_in(&bytes)
            };
            match parsed {
                Err(e) => err(e),
                Ok(None) => "None".into(),
                Ok(Some(d)) => {
                    let want: Vec<[u8; 32]> = entry["keys"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(hex32)
                        .collect();
                    let got: Vec<[u8; 32]> = d.keys().iter().map(|k| k.public_key).collect();
                    assert_eq!(got, want, "{entry}");
                    "valid".into()
                }
            }
        }
        "diff" => run_diff(entry, &bytes),
        other => panic!("unknown vector kind {other}"),
    }
}

#[test]
fn every_vector_gives_its_labelled_result() {
    let index = index();
    let trusted: Vec<TrustedKey> = index["trusted_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| TrustedKey::new(hex32(k)))
        .collect();
    let keys = TrustedKeys::new(&trusted);
    let entries = index["vectors"].as_array().unwrap();
    assert!(entries.len() >= 90, "only {} vectors", entries.len());
    let mut failures = Vec::new();
    for entry in entries {
        let got = run(entry, keys);
        if got != entry["expect"].as_str().unwrap() {
            failures.push(format!("{}: got {got}, {entry}", entry["file"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The encoding-3 delta vector installs: its payload (zstd, no prefix, method-2 rules)
/// decodes to exactly `stream_size` bytes, the `diffs/moved-code.stream` vector, which
/// applied to the base gives the bytes whose digest the carried target header signs.
#[test]
fn difference_delta_decodes_to_its_target() {
    use std::io::Read;
    let trusted = [TrustedKey::new(common::pk(&common::key_a()))];
    let base = read("deltas/riscv-base.installed.bin");
    let file = read("deltas/valid-difference.otad");
    let expect = DeltaExpectations {
        base: Some((base.len() as u32, common::sha(&base))),
        ..Default::default()
    };
    let verified = verify_delta(&file, TrustedKeys::new(&trusted), expect).unwrap();
    let DeltaEncoding::Difference { stream_size } = verified.delta.info.encoding else {
        panic!("not encoding 3");
    };
    let payload = &file[file.len() - verified.delta.info.payload_size as usize..];
    let mut decoder = zstd::stream::read::Decoder::new(payload).unwrap();
    decoder
        .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(u32::from(
            verified.delta.info.window_log,
        )))
        .unwrap();
    let mut stream = Vec::new();
    decoder.read_to_end(&mut stream).unwrap();
    assert_eq!(stream.len(), stream_size as usize);
    assert!(stream == read("diffs/moved-code.stream"));
    let target = patch(&stream, &base, verified.target.info.image_size, 4096).unwrap();
    assert_eq!(common::sha(&target), verified.target.info.image_sha256);
}

#[test]
fn index_keys_and_rollout_buckets_are_what_the_crate_computes() {
    let index = index();
    for (name, key) in index["keys"].as_object().unwrap() {
        let public = hex32(&key["public"]);
        let signing = ed25519_dalek::SigningKey::from_bytes(&hex32(&key["seed"]));
        assert_eq!(signing.verifying_key().to_bytes(), public, "key {name}");
        assert_eq!(KeyId::of(&public).to_string(), key["key_id"], "key {name}");
    }
    for b in index["rollout_buckets"].as_array().unwrap() {
        let id = hex::decode(b["device_id"].as_str().unwrap()).unwrap();
        let bucket = rollout_bucket(&hex32(&b["image_header_sha256"]), &id);
        assert_eq!(u64::from(bucket), b["bucket"].as_u64().unwrap());
    }
}

#[test]
fn independent_python_verifier_agrees() {
    let python = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status();
    if !matches!(python, Ok(s) if s.success()) {
        // CI installs it (scripts/test.sh), so there a missing verifier is a failure.
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but python3 with the `cryptography` package is missing"
        );
        println!("SKIPPED: python3 with the `cryptography` package is not available");
        return;
    }
    let out = Command::new("python3")
        .arg(dir().join("verify.py"))
        .arg(dir().join("vectors.json"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = index()["vectors"].as_array().unwrap().len();
    assert!(
        stdout.contains(&format!("{total}/{total} vectors agree")),
        "{stdout}"
    );
}
