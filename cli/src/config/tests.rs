//! Tests of reading ota-sign.toml.

use super::*;

const SAMPLE: &str = include_str!("../../../examples/ota-sign.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/proj/ota-sign.toml"))
}

fn invalid_at(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn sample_file_parses() {
    let c = parse(SAMPLE).unwrap();
    assert_eq!(
        c.defaults.key,
        Some(PathBuf::from("/proj/keys/release.key"))
    );
    assert_eq!(c.defaults.channel.unwrap().as_str(), "stable");
    let d = c.device("thermostat-v2").unwrap();
    assert_eq!(d.chip, ChipId::from_name("esp32c3"));
    assert_eq!(
        d.trusted_keys,
        [TrustedKeySpec::File(PathBuf::from(
            "/proj/keys/release.pub"
        ))]
    );
    assert!(c.device("gateway").is_some());
}

#[test]
fn example_slot_size_is_the_default_4mb_layouts_slot() {
    let c = parse(SAMPLE).unwrap();
    let d = c.device("thermostat-v2").unwrap();
    assert_eq!(d.chip, ChipId::from_name("esp32c3"));
    let table = ota_sign_lib::flash::partitions::default_table(4 * 1024 * 1024, false).unwrap();
    for slot in ["ota_0", "ota_1"] {
        assert_eq!(
            d.slot_size,
            Some(table.find(slot).unwrap().size()),
            "{slot}"
        );
    }
}

#[test]
fn example_trusts_no_key_whose_private_half_is_public() {
    let c = parse(SAMPLE).unwrap();
    for (name, device) in &c.devices {
        for spec in &device.trusted_keys {
            if let TrustedKeySpec::Hex(key) = spec {
                assert_eq!(
                    ota_keys::published_key_name(&key.to_bytes()),
                    None,
                    "[device.{name}]"
                );
            }
        }
    }
}

#[test]
fn partition_table_is_relative_to_the_file() {
    let c = parse("[device.a]\npartition_table = \"hw/partitions.csv\"\n").unwrap();
    assert_eq!(
        c.device("a").unwrap().partition_table,
        Some(PathBuf::from("/proj/hw/partitions.csv"))
    );
}

#[test]
fn empty_file_is_all_defaults() {
    let c = parse("").unwrap();
    assert!(c.defaults.key.is_none());
    assert!(c.devices.is_empty());
}

#[test]
fn syntax_error_has_line_and_column() {
    let (line, _, _) = invalid_at("[defaults]\nchannel = \"stable\"\nkey = \n");
    assert_eq!(line, 3);
}

#[test]
fn unknown_key_is_an_error_at_its_line() {
    let (line, _, msg) = invalid_at("[defaults]\nchanel = \"stable\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("chanel"), "{msg}");
}

#[test]
fn bad_chip_names_the_known_ones() {
    let (line, column, msg) = invalid_at("[device.a]\nchip = \"esp8266\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(msg.contains("esp8266") && msg.contains("esp32c3"), "{msg}");
}

#[test]
fn bad_slot_sizes() {
    for bad in [
        "slot_size = 1000",
        "slot_size = -4096",
        "slot_size = \"lots\"",
        "slot_size = 0",
    ] {
        let (line, _, msg) = invalid_at(&format!("[device.a]\n{bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(msg.contains("slot_size"), "{msg}");
    }
    let c = parse("[device.a]\nslot_size = \"1920K\"\n[device.b]\nslot_size = \"2M\"\n").unwrap();
    assert_eq!(c.device("a").unwrap().slot_size, Some(1920 * 1024));
    assert_eq!(c.device("b").unwrap().slot_size, Some(2 * 1024 * 1024));
}

#[test]
fn bad_names_and_keys() {
    let (line, _, msg) = invalid_at("[defaults]\nchannel = \"Stable\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("channel"), "{msg}");
    let (_, _, msg) = invalid_at("[device.\"Bad Name\"]\nchip = \"esp32\"\n");
    assert!(msg.contains("Bad Name"), "{msg}");
    // 64 hex digits that are not a curve point.
    let bad_key = format!(
        "[device.a]\ntrusted_keys = [\n  \"{}\",\n]\n",
        "02".repeat(32)
    );
    let (line, _, msg) = invalid_at(&bad_key);
    assert_eq!(line, 3);
    assert!(msg.contains("invalid public key"), "{msg}");
}

#[test]
fn max_window_log_is_checked_and_defaults_to_the_shipped_firmware() {
    let c = parse("[device.a]\nmax_window_log = 14\n[device.b]\n").unwrap();
    assert_eq!(device_settings(Some(&c)).max_window_log("a"), 14);
    assert_eq!(device_settings(Some(&c)).max_window_log("b"), 12);
    assert_eq!(
        device_settings(None).max_window_log("a"),
        ota_agent::agent::DEFAULT_WINDOW_LOG
    );
    // The default is what the shipped firmware configures its agent with.
    let firmware = include_str!("../../../firmware/esp32c3/src/update.rs");
    assert!(firmware.contains("max_window_log: DEFAULT_WINDOW_LOG,"));
    for bad in ["9", "15", "-1"] {
        let (line, _, msg) = invalid_at(&format!("[device.a]\nmax_window_log = {bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(msg.contains("max_window_log"), "{bad}: {msg}");
    }
}

#[test]
fn discover_walks_up_and_explicit_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    fs::create_dir_all(&nested).unwrap();
    assert!(
        Config::discover(None, &nested)
            .unwrap()
            .is_none_or(|c| !c.path.starts_with(dir.path()))
    );
    fs::write(
        dir.path().join(FILE_NAME),
        "[defaults]\nchannel = \"beta\"\n",
    )
    .unwrap();
    let c = Config::discover(None, &nested).unwrap().unwrap();
    assert_eq!(c.path, dir.path().join(FILE_NAME));
    assert_eq!(c.defaults.channel.unwrap().as_str(), "beta");
    let missing = dir.path().join("nope.toml");
    assert!(matches!(
        Config::discover(Some(&missing), &nested),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn precedence_is_flag_env_file() {
    assert_eq!(resolve(Some(1), Some(2), Some(3)), Some(1));
    assert_eq!(resolve(None, Some(2), Some(3)), Some(2));
    assert_eq!(resolve(None, None, Some(3)), Some(3));
    assert_eq!(resolve::<u8>(None, None, None), None);
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn agent_generation_is_checked_and_unset_means_the_default() {
    use ota_sign_lib::devices::AgentGeneration;
    let c =
        parse("[device.a]\nagent_generation = 1\n[device.b]\nagent_generation = 2\n[device.c]\n")
            .unwrap();
    let s = device_settings(Some(&c));
    assert_eq!(
        s.for_device_type("a").agent_generation,
        Some(AgentGeneration::One)
    );
    assert_eq!(
        s.for_device_type("b").agent_generation,
        Some(AgentGeneration::Two)
    );
    // Unset stays distinguishable from an explicit 2: `release` asks for it when a
    // channel moves from method 1 to method 2.
    assert_eq!(s.for_device_type("c").agent_generation, None);
    assert_eq!(
        s.for_device_type("c").agent_generation(),
        AgentGeneration::Two
    );
    assert_eq!(
        device_settings(None).for_device_type("a").agent_generation,
        None
    );
    let c = parse("[device.a]\ndeltas = 0\n[device.b]\ndeltas = 5\n").unwrap();
    let s = device_settings(Some(&c));
    assert_eq!(
        (s.for_device_type("a").deltas, s.for_device_type("b").deltas),
        (Some(0), Some(5))
    );
    assert_eq!(s.for_device_type("c").deltas, None);
    let c = parse("[device.a]\ndelta_encoding = \"patch-from\"\n").unwrap();
    assert_eq!(
        device_settings(Some(&c))
            .for_device_type("a")
            .delta_encoding,
        Some(ota_sign_lib::delta::EncodingChoice::PatchFrom)
    );
    let (line, _, msg) = invalid_at("[device.a]\ndelta_encoding = \"lzma\"\n");
    assert_eq!(line, 2);
    assert!(
        msg.contains("delta_encoding") && msg.contains("patch-from"),
        "{msg}"
    );
    for bad in ["-1", "17"] {
        let (line, _, msg) = invalid_at(&format!("[device.a]\ndeltas = {bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(msg.contains("deltas"), "{bad}: {msg}");
    }
    for bad in ["0", "3", "-1"] {
        let (line, _, msg) = invalid_at(&format!("[device.a]\nagent_generation = {bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(msg.contains("agent_generation"), "{bad}: {msg}");
    }
}
