//! `ota-sign flash` as a real process: full flash images checked byte by byte against
//! esp-idf-part and espflash, booted and updated by the device simulator, and every
//! refusal with its exit code and no output left behind.
//!
//! Longer than 500 lines on purpose: one test binary for `flash`, because each binary
//! links espflash and the simulator again; the helpers at the top serve every scenario.

mod common;

use std::path::Path;

use common::*;
use esp_idf_part::{DataType, PartitionTable, SubType, Type};
use md5::{Digest as _, Md5};
use ota_agent::geometry::BootTarget;
use ota_agent::status::CheckResult;
use ota_device_sim::SimFlash;
use ota_device_sim::device::{
    BootResult, DeviceConfig, STATE_PARTITION, VirtualDevice, default_partition_table,
    offline_status,
};
use ota_format::{ChipId, Expectations, TrustedKey, TrustedKeys, Version, verify_image};
use ota_test_servers::static_host::StaticHost;
use ota_testkit::{Chip, TestFirmware, release};
use sha2::{Digest as _, Sha256};

const SEED: [u8; 32] = [42; 32];
const MB4: usize = 4 * 1024 * 1024;
const TABLE_AT: usize = 0x8000;

/// A scratch dir with a fixed release key (so the test can sign manifests too).
fn scratch() -> (Scratch, String) {
    let s = Scratch::new();
    let key = ota_keys::PrivateKey::from_seed(&SEED);
    let pem = key.to_pkcs8_pem().unwrap();
    let path = s.write("release.key", pem.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (s, key.public_key().to_hex())
}

fn public() -> [u8; 32] {
    ota_keys::PrivateKey::from_seed(&SEED)
        .public_key()
        .to_bytes()
}

fn firmware(chip: Chip, version: &str) -> TestFirmware {
    TestFirmware::new(chip)
        .version(version)
        .project_name("thermostat")
        .trusted_keys(&[public()])
        .payload_size(60_000)
        .seed(version.len() as u64 + 7)
}

/// [`scratch`] with `app.bin`, version 1.0.0 of [`firmware`] for `chip`.
fn scratch_with_app(chip: Chip) -> (Scratch, String) {
    let (s, pk) = scratch();
    s.write("app.bin", &firmware(chip, "1.0.0").app_image());
    (s, pk)
}

/// The JSON plan of `flash --app-image app.bin`, then `rest`.
fn app_plan(s: &Scratch, rest: &[&str]) -> serde_json::Value {
    let args = [&["flash", "--app-image", "app.bin"], rest, &["--json"]].concat();
    json(&s.ok(&args))
}

fn package(s: &Scratch, app: &str, out: &str) {
    s.ok(&[
        "package",
        "--key",
        "release.key",
        "--device-type",
        "thermostat",
        "--app-image",
        app,
        "-o",
        out,
    ]);
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn table_of(image: &[u8]) -> PartitionTable {
    PartitionTable::try_from_bytes(image[TABLE_AT..TABLE_AT + 0xC00].to_vec()).unwrap()
}

fn region<'a>(image: &'a [u8], table: &PartitionTable, name: &str) -> &'a [u8] {
    let p = table.find(name).unwrap_or_else(|| panic!("no {name}"));
    &image[p.offset() as usize..(p.offset() + p.size()) as usize]
}

/// The table at 0x8000 ends with an MD5 record over the entries before it.
fn assert_table_md5(image: &[u8]) {
    let table = &image[TABLE_AT..TABLE_AT + 0xC00];
    let at = table
        .chunks(32)
        .position(|r| r.starts_with(&[0xEB, 0xEB]))
        .expect("MD5 record")
        * 32;
    assert_eq!(&table[at + 2..at + 16], &[0xFF; 14]);
    assert_eq!(
        &table[at + 16..at + 32],
        Md5::digest(&table[..at]).as_slice()
    );
    assert!(table[at + 32..].iter().all(|&b| b == 0xFF));
}

/// Bytes outside the plan's writes are erased flash.
fn assert_rest_erased(image: &[u8], plan: &serde_json::Value) {
    let mut covered = vec![false; image.len()];
    for w in plan["writes"].as_array().unwrap() {
        let (at, size) = (
            w["offset"].as_u64().unwrap() as usize,
            w["size"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            hex::encode(Sha256::digest(&image[at..at + size])),
            w["sha256"].as_str().unwrap(),
            "write at {at:#x}"
        );
        covered[at..at + size].iter_mut().for_each(|c| *c = true);
    }
    let stray = image
        .iter()
        .zip(&covered)
        .position(|(&b, &c)| !c && b != 0xFF);
    assert_eq!(stray, None, "non-erased byte outside the plan");
}

fn espflash_segments(elf: &[u8], chip: &str, table: &Path) -> Vec<(u32, Vec<u8>)> {
    use espflash::flasher::{FlashData, FlashSettings, FlashSize};
    use std::str::FromStr;
    let esp = espflash::target::Chip::from_str(chip).unwrap();
    let flash = FlashData::new(
        FlashSettings::new(None, Some(FlashSize::_4Mb), None),
        0,
        None,
        esp,
        esp.default_xtal_frequency(),
    );
    espflash::image_format::idf::IdfBootloaderFormat::new(
        elf,
        &flash,
        Some(table),
        None,
        None,
        Some("ota_0"),
    )
    .unwrap()
    .flash_segments()
    .map(|s| (s.addr, s.data.into_owned()))
    .collect()
}

#[test]
fn elf_image_holds_what_espflash_would_write_at_the_same_offsets() {
    let (s, _) = scratch();
    let elf = firmware(Chip::Esp32c3, "1.0.0").elf();
    s.write("fw.elf", &elf);
    let plan = json(&s.ok(&[
        "flash",
        "--elf",
        "fw.elf",
        "--chip",
        "esp32c3",
        "--output",
        "flash.bin",
        "--json",
    ]));
    assert_eq!(plan["written"], true);
    assert_eq!(plan["app_partition"], "ota_0");
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    assert_eq!(image.len(), MB4);

    assert_table_md5(&image);
    let table = table_of(&image);
    let names: Vec<String> = table.partitions().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        ["nvs", "ota_state", "otadata", "phy_init", "ota_0", "ota_1"]
    );
    let state = table.find(STATE_PARTITION).unwrap();
    assert_eq!(
        (state.ty(), state.subtype(), state.offset(), state.size()),
        (
            Type::Data,
            SubType::Data(DataType::Undefined),
            0xB000,
            0x2000
        )
    );
    assert!(region(&image, &table, "otadata").iter().all(|&b| b == 0xFF));
    assert!(
        region(&image, &table, "ota_state")
            .iter()
            .all(|&b| b == 0xFF)
    );
    assert_rest_erased(&image, &plan);

    // espflash, given the same ELF and table, writes the very same three regions.
    s.write("table.bin", &image[TABLE_AT..TABLE_AT + 0xC00]);
    let segments = espflash_segments(&elf, "esp32c3", &s.path("table.bin"));
    let offsets: Vec<u32> = segments.iter().map(|(a, _)| *a).collect();
    assert_eq!(offsets, [0x0, 0x8000, 0x10000]);
    for (addr, data) in segments {
        let at = addr as usize;
        assert_eq!(&image[at..at + data.len()], &data[..], "region {addr:#x}");
    }
}

#[test]
fn esp32_bootloader_goes_to_0x1000() {
    let (s, _) = scratch_with_app(Chip::Esp32);
    let plan = app_plan(&s, &["-o", "flash.bin"]);
    assert_eq!(plan["chip"], "esp32");
    assert_eq!(plan["writes"][0]["offset"], 0x1000);
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    assert!(image[..0x1000].iter().all(|&b| b == 0xFF));
    assert_eq!(image[0x1000], 0xE9, "bootloader image magic");
    assert_rest_erased(&image, &plan);
}

#[test]
fn signed_image_installs_what_extract_writes_and_the_simulator_boots_it() {
    let (s, pk) = scratch_with_app(Chip::Esp32c3);
    package(&s, "app.bin", "fw.ota");
    let out = s.ok(&[
        "flash",
        "--image",
        "fw.ota",
        "--pubkey",
        &pk,
        "--output",
        "flash.bin",
    ]);
    // The plan is printed before writing, one line per region.
    for what in [
        "bootloader",
        "partition table",
        "otadata",
        "ota_state",
        "-> ota_0",
    ] {
        assert!(out.contains(what), "{what} missing from plan:\n{out}");
    }
    s.ok(&["extract", "--pubkey", &pk, "fw.ota", "-o", "extracted.bin"]);
    let app = std::fs::read(s.path("extracted.bin")).unwrap();
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    let table = table_of(&image);
    let ota_0 = region(&image, &table, "ota_0");
    assert_eq!(&ota_0[..app.len()], &app[..]);
    assert!(ota_0[app.len()..].iter().all(|&b| b == 0xFF));
    assert!(region(&image, &table, "ota_1").iter().all(|&b| b == 0xFF));

    // What `ota-device-sim status` prints, from the same library function.
    let mut flash = SimFlash::load(&s.path("flash.bin")).unwrap();
    let status = offline_status(&mut flash, ChipId(5)).unwrap();
    assert_eq!(status["slots"][0]["version"], "1.0.0", "{status}");
    assert_eq!(status["slots"][0]["bootable"], true);
    assert_eq!(status["slots"][1]["bootable"], false);
    assert_eq!(status["otadata"][0]["seq"], u32::MAX);

    let mut device = VirtualDevice::new(flash, DeviceConfig::new("http://127.0.0.1:9/m", "d1"));
    match device.boot(|session| session.firmware.clone()).unwrap() {
        BootResult::Ran { firmware, .. } => {
            assert_eq!(firmware.target, BootTarget::Ota(0));
            assert_eq!(firmware.version, Version::parse("1.0.0").unwrap());
            assert_eq!(firmware.keys, vec![TrustedKey::new(public())]);
        }
        other => panic!("device did not boot: {other:?}"),
    }
}

#[test]
fn factory_layout_installs_into_factory_and_boots_it() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    let plan = app_plan(&s, &["--factory", "-o", "flash.bin"]);
    assert_eq!(plan["app_partition"], "factory");
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    let table = table_of(&image);
    let app = std::fs::read(s.path("app.bin")).unwrap();
    assert_eq!(&region(&image, &table, "factory")[..app.len()], &app[..]);
    assert!(region(&image, &table, "ota_0").iter().all(|&b| b == 0xFF));
    let flash = SimFlash::load(&s.path("flash.bin")).unwrap();
    let mut device = VirtualDevice::new(flash, DeviceConfig::new("http://127.0.0.1:9/m", "d1"));
    match device.boot(|session| session.firmware.target).unwrap() {
        BootResult::Ran { value, .. } => assert_eq!(value, BootTarget::Factory),
        other => panic!("device did not boot: {other:?}"),
    }
}

#[test]
fn default_layout_is_the_simulators() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    for (flag, size) in [
        ("1MB", 1u32 << 20),
        ("2MB", 2 << 20),
        ("4MB", 4 << 20),
        ("16MB", 16 << 20),
    ] {
        let plan = app_plan(&s, &["--flash-size", flag, "--dry-run"]);
        assert_eq!(plan["written"], false);
        let slot = plan["partitions"][4]["size"].as_u64().unwrap() as u32;
        let sim = default_partition_table(size, slot).unwrap();
        let ours: Vec<(String, u32, u32)> = plan["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["offset"].as_u64().unwrap() as u32,
                    p["size"].as_u64().unwrap() as u32,
                )
            })
            .collect();
        let theirs: Vec<(String, u32, u32)> = sim
            .partitions()
            .iter()
            .map(|p| (p.name(), p.offset(), p.size()))
            .collect();
        assert_eq!(ours, theirs, "{flag}");
        assert_eq!(plan["partitions"][1]["subtype"], "undefined");
    }
    let listed = std::fs::read_dir(s.dir.path()).unwrap().count();
    assert_eq!(listed, 2, "--dry-run writes nothing");
}

#[test]
fn partition_table_from_the_configuration() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    std::fs::create_dir_all(s.path("hw")).unwrap();
    s.write(
        "hw/parts.csv",
        b"# 8 MB board\n\
nvs,      data, nvs,       0x9000,  0x4000,\n\
otadata,  data, ota,       0xd000,  0x2000,\n\
phy_init, data, phy,       0xf000,  0x1000,\n\
ota_0,    app,  ota_0,     0x20000, 0x300000,\n\
ota_1,    app,  ota_1,     0x320000,0x300000,\n\
ota_state,data, undefined, 0x620000,0x2000,\n",
    );
    s.write(
        "ota-sign.toml",
        b"[device.thermostat]\nchip = \"esp32c3\"\npartition_table = \"hw/parts.csv\"\n",
    );
    let plan = app_plan(
        &s,
        &[
            "--device-type",
            "thermostat",
            "--flash-size",
            "8MB",
            "-o",
            "flash.bin",
        ],
    );
    let image = std::fs::read(s.path("flash.bin")).unwrap();
    assert_eq!(image.len(), 8 << 20);
    let table = table_of(&image);
    assert_eq!(table.find("ota_0").unwrap().offset(), 0x20000);
    assert_eq!(table.find("ota_state").unwrap().offset(), 0x620000);
    assert!(
        region(&image, &table, "ota_state")
            .iter()
            .all(|&b| b == 0xFF)
    );
    let app = std::fs::read(s.path("app.bin")).unwrap();
    assert_eq!(&image[0x20000..0x20000 + app.len()], &app[..]);
    assert_rest_erased(&image, &plan);

    // The configured chip is enforced too.
    s.write("s3.bin", &firmware(Chip::Esp32s3, "1.0.0").app_image());
    let err = s.fails(
        &[
            "flash",
            "--app-image",
            "s3.bin",
            "--device-type",
            "thermostat",
            "--flash-size",
            "8MB",
            "-o",
            "s3-flash.bin",
        ],
        POLICY,
    );
    assert!(
        err.contains("esp32s3") && err.contains("[device.thermostat]"),
        "{err}"
    );
    assert_absent(&s.path("s3-flash.bin"));
}

/// A manifest for `ota`, signed with the release key.
fn manifest_for(ota: &[u8], image_name: &str) -> Vec<u8> {
    let keys = [TrustedKey::new(public())];
    let verified = verify_image(ota, TrustedKeys::new(&keys), Expectations::default()).unwrap();
    let spec = release::Spec {
        signer: SEED,
        sequence: 1,
        created: 1_764_000_000,
        ..release::Spec::default()
    };
    let header = &ota[..verified.header.header_len()];
    release::sign_manifest(&spec, &verified.header.info, header, ota.len(), image_name)
}

#[test]
fn a_flashed_device_updates_over_http() {
    let (s, pk) = scratch();
    s.write("v1.bin", &firmware(Chip::Esp32c3, "1.0.0").app_image());
    s.write("v2.bin", &firmware(Chip::Esp32c3, "1.1.0").app_image());
    package(&s, "v1.bin", "v1.ota");
    package(&s, "v2.bin", "v2.ota");
    s.ok(&[
        "flash",
        "--image",
        "v1.ota",
        "--pubkey",
        &pk,
        "-o",
        "flash.bin",
    ]);

    let host = StaticHost::start();
    let ota = std::fs::read(s.path("v2.ota")).unwrap();
    host.put("/fw/thermostat-1.1.0.ota", ota.clone());
    host.put(
        "/fw/thermostat.stable.manifest",
        manifest_for(&ota, "thermostat-1.1.0.ota"),
    );
    let url = host.url("/fw/thermostat.stable.manifest");
    let flash = SimFlash::load(&s.path("flash.bin")).unwrap();
    let mut device = VirtualDevice::new(flash, DeviceConfig::new(&url, "device-1"));
    assert_eq!(
        device.config.device_type, None,
        "device type from the app descriptor"
    );

    match device.boot(|session| session.check()).unwrap() {
        BootResult::Ran {
            firmware, value, ..
        } => {
            assert_eq!(firmware.version, Version::parse("1.0.0").unwrap());
            assert_eq!(
                value,
                Ok(CheckResult::Installed {
                    version: Version::parse("1.1.0").unwrap()
                })
            );
        }
        other => panic!("first boot: {other:?}"),
    }
    match device.boot(|session| session.check()).unwrap() {
        BootResult::Ran {
            firmware,
            confirmed_trial,
            value,
        } => {
            assert_eq!(firmware.version, Version::parse("1.1.0").unwrap());
            assert_eq!(firmware.target, BootTarget::Ota(1));
            assert!(confirmed_trial);
            assert_eq!(value, Ok(CheckResult::UpToDate));
        }
        other => panic!("second boot: {other:?}"),
    }
    let app = std::fs::read(s.path("v2.bin")).unwrap();
    let table = table_of(device.flash.bytes());
    assert_eq!(
        &region(device.flash.bytes(), &table, "ota_1")[..app.len()],
        &app[..]
    );
}

// ---- refusals: exit code, message, and no output file -------------------------------

fn refuses(s: &Scratch, args: &[&str], code: i32, needle: &str) {
    let out = s.path("out.bin");
    let args = [args, &["-o", out.to_str().unwrap()]].concat();
    let err = s.fails(&args, code);
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    assert_absent(&out);
}

/// A table that passes every check (shared with ota-sign-lib's partition tests).
const GOOD_CSV: &str = include_str!("data/ota_state_partitions.csv");

fn with_table(s: &Scratch, csv: &str, code: i32, needle: &str) {
    s.write("parts.csv", csv.as_bytes());
    refuses(
        s,
        &[
            "flash",
            "--app-image",
            "app.bin",
            "--partition-table",
            "parts.csv",
        ],
        code,
        needle,
    );
}

#[test]
fn the_good_table_is_accepted() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    s.write("parts.csv", GOOD_CSV.as_bytes());
    s.ok(&[
        "flash",
        "--app-image",
        "app.bin",
        "--partition-table",
        "parts.csv",
        "-o",
        "ok.bin",
    ]);
    let image = std::fs::read(s.path("ok.bin")).unwrap();
    assert_eq!(
        table_of(&image),
        PartitionTable::try_from_str(GOOD_CSV).unwrap()
    );
}

#[test]
fn tables_a_device_cannot_update_with_are_refused() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    let without = |name: &str| {
        GOOD_CSV
            .lines()
            .filter(|l| !l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let short_state = GOOD_CSV.replace("0xb000,  0x2000", "0xb000,  0x1000");
    let tables = [
        (without("otadata"), "no otadata"),
        (without("ota_1"), "1 OTA slot"),
        (without("ota_state"), "update agent keeps its state"),
        (short_state, "two or more whole 4 KiB sectors"),
    ];
    for (csv, needle) in tables {
        with_table(&s, &csv, POLICY, needle);
    }
}

#[test]
fn malformed_tables_are_refused() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    let ota_1 = "0x110000,0x100000";
    let nvs = "nvs,      data, nvs,       0x9000";
    let edits = [
        (ota_1, "0x100000,0x100000", "overlapping"),
        (ota_1, "0x118000,0x100000", "aligned"),
        (
            ota_1,
            "0x3f0000,0x100000",
            "does not fit a flash of 0x400000",
        ),
        (
            nvs,
            &nvs.replace("0x9000", "0x7000"),
            "overlaps the bootloader or the partition table",
        ),
    ];
    for (from, to, needle) in edits {
        with_table(&s, &GOOD_CSV.replace(from, to), FAILURE, needle);
    }
    with_table(&s, "", FAILURE, "is empty");
    with_table(&s, "this is not, a table\n", FAILURE, "invalid");
}

#[test]
fn an_app_larger_than_its_slot_is_refused() {
    let (s, _) = scratch();
    let big = firmware(Chip::Esp32c3, "1.0.0")
        .payload_size(200_000)
        .app_image();
    assert!(big.len() > 0x20000);
    s.write("app.bin", &big);
    with_table(
        &s,
        &GOOD_CSV.replace("0x10000, 0x100000", "0x10000, 0x20000"),
        POLICY,
        "partition ota_0 holds 131072 bytes",
    );
}

#[test]
fn firmware_for_another_chip_is_refused() {
    let (s, pk) = scratch();
    s.write("s3.bin", &firmware(Chip::Esp32s3, "1.0.0").app_image());
    s.write("s3.elf", &firmware(Chip::Esp32s3, "1.0.0").elf());
    s.write("c6.elf", &firmware(Chip::Esp32c6, "1.0.0").elf());
    package(&s, "s3.bin", "s3.ota");
    let signed = ["--image", "s3.ota", "--pubkey", &pk];
    let inputs: [(&[&str], &str); 4] = [
        (
            &["--app-image", "s3.bin"],
            "the firmware is for esp32s3 but --chip says esp32c3",
        ),
        (&signed, "esp32s3"),
        (&["--elf", "s3.elf"], "Xtensa"),
        (&["--elf", "c6.elf"], "esp32c6"),
    ];
    for (input, needle) in inputs {
        let args = [&["flash"], input, &["--chip", "esp32c3"]].concat();
        refuses(&s, &args, POLICY, needle);
    }
}

#[test]
fn a_signed_image_that_does_not_verify_writes_nothing() {
    let (s, pk) = scratch_with_app(Chip::Esp32c3);
    package(&s, "app.bin", "fw.ota");
    let mut bytes = std::fs::read(s.path("fw.ota")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    s.write("tampered.ota", &bytes);
    let other = ota_keys::PrivateKey::from_seed(&[1; 32])
        .public_key()
        .to_hex();
    let refusals: [(&[&str], i32, &str); 3] = [
        (&["tampered.ota", "--pubkey", &pk], INVALID, "digest"),
        (&["fw.ota", "--pubkey", &other], INVALID, "key"),
        (
            &["fw.ota", "--pubkey", &pk, "--device-type", "gateway"],
            POLICY,
            "device type",
        ),
    ];
    for (image_and_checks, code, needle) in refusals {
        let args = [&["flash", "--image"], image_and_checks].concat();
        refuses(&s, &args, code, needle);
    }
}

#[test]
fn usage_and_io_errors() {
    let (s, _) = scratch();
    s.write("fw.elf", &firmware(Chip::Esp32c3, "1.0.0").elf());
    refuses(
        &s,
        &["flash", "--elf", "fw.elf"],
        USAGE,
        "--chip is required",
    );
    refuses(
        &s,
        &["flash", "--app-image", "missing.bin"],
        IO,
        "missing.bin",
    );
    // A port that does not exist: nothing was written, the port is named.
    let err = s.fails(
        &[
            "flash",
            "--elf",
            "fw.elf",
            "--chip",
            "esp32c3",
            "--port",
            "/nonexistent/ttyX",
        ],
        IO,
    );
    assert!(
        err.contains("cannot open serial port /nonexistent/ttyX"),
        "{err}"
    );
    // Neither a port nor an output: clap's usage error.
    s.fails(&["flash", "--elf", "fw.elf", "--chip", "esp32c3"], USAGE);
    // A signed image needs the key to verify it.
    s.fails(&["flash", "--image", "x.ota", "-o", "o.bin"], USAGE);
    assert_absent(&s.path("o.bin"));
}

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let (s, _) = scratch_with_app(Chip::Esp32c3);
    s.write("flash.bin", b"precious");
    s.fails(
        &["flash", "--app-image", "app.bin", "-o", "flash.bin"],
        CONFLICT,
    );
    assert_eq!(std::fs::read(s.path("flash.bin")).unwrap(), b"precious");
    s.ok(&[
        "flash",
        "--app-image",
        "app.bin",
        "-o",
        "flash.bin",
        "--force",
    ]);
    assert_eq!(std::fs::read(s.path("flash.bin")).unwrap().len(), MB4);
}

#[test]
fn help_describes_the_command() {
    let (s, _) = scratch();
    let help = s.ok(&["flash", "--help"]);
    for needle in [
        "--port",
        "--output",
        "--partition-table",
        "ota_state",
        "Exit codes",
    ] {
        assert!(help.contains(needle), "{needle} missing:\n{help}");
    }
}
