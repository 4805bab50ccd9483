//! `ota-sign package`: an ESP32 build (ELF or app image) into a signed `.ota` image.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use ota_format::{ChipId, DeviceType, KeyId, Version};
use ota_keys::secure_boot::SecureBootKey;
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::config;
use crate::diagnostics::{PackagingDiagnostic, PolicyRefusal, firmware_failure};
use crate::exit::Failure;
use crate::output;
use crate::progress::Bar;
use ota_sign_lib::devices::AgentGeneration;
use ota_sign_lib::input::{self, ElfOptions, Firmware, InputKind};
use ota_sign_lib::packaging::{self, PackageSpec, PayloadEncoding};
use ota_sign_lib::trust::{LockoutPolicy, check_lockout};

pub const ABOUT: &str = "\
Turn an ESP32 build into a signed OTA image.

The input is either the ELF your build produced (converted to an ESP-IDF app image with
espflash for --chip) or a finished app image (checked: magic, chip, checksum, SHA-256).
The firmware must carry an ESP-IDF app descriptor; its version string (semver) becomes
the image version unless --version says otherwise (a contradiction is an error).

The firmware must also carry a trusted-key descriptor that contains the signing key or a
key given with --next-key: a device that installs firmware trusting none of your keys
can never be updated again. --allow-lockout overrides this for deliberate hand-overs.

With --secure-boot-key (or `secure_boot_key` for the device type in ota-sign.toml) an
unsigned app image is first signed for Secure Boot V2 exactly as `espsecure sign-data
--version 2` (RSA-PSS for an RSA 3072 key; deterministic ECDSA for a P-256 key, as the
ESP32-C2 needs), and an image that is already signed must name that
key. An app image may end with a Secure Boot V2 signature sector and nothing else.

The payload is zstd-compressed (level 19) in the form the device type's update agent
decodes, chosen by --agent-generation, else `agent_generation` of its [device.NAME]
table in ota-sign.toml, else 2:
  2  compression method 2: the agent reads the zstd window back from flash, so the
     window covers the whole image (or 2^--zstd-window-log, at most 2^25) and costs no
     RAM; compressed blocks are capped at 8 KiB, the agent's block buffer.
  1  compression method 1, for fleets still running the first agent, which holds the
     window in RAM: `max_window_log` of the [device.NAME] table, by default 12 (4 KiB),
     what the shipped firmware decodes within its 64 KiB RAM budget. A larger
     --zstd-window-log is refused (exit 6): such an image could never install.
A generation-1 agent cannot install a method-2 image: `release` refuses one for a device
type configured with `agent_generation = 1`. The finished image is checked with the
device's own decoder and install rules before it is written. The output
is deterministic: the same inputs give the same bytes (the creation time comes from
SOURCE_DATE_EPOCH when set).

Examples:
  ota-sign package --key release.key --device-type thermostat \\
      --elf target/riscv32imc-unknown-none-elf/release/app \\
      --chip esp32c3 -o app.ota
  ota-sign package --key release.key --device-type thermostat \\
      --app-image build/app.bin --chip esp32s3 --security-counter 4 \\
      -o app.ota --json";

/// Package an ESP32 build into a signed image
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT, disable_version_flag = true)]
pub struct Args {
    /// Private key that signs the image [default: $OTA_SIGN_KEY, then `key` in ota-sign.toml]
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,

    /// Device type the image is for (a-z 0-9 - _) [default: $OTA_SIGN_DEVICE_TYPE, then ota-sign.toml]
    #[arg(long, value_parser = config::parse_device_type)]
    pub device_type: Option<DeviceType>,

    /// ELF file of the firmware build
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "app_image",
        required_unless_present = "app_image"
    )]
    pub elf: Option<PathBuf>,

    /// ESP-IDF app image (the .bin an ESP-IDF build or `espflash save-image` writes)
    #[arg(long, value_name = "FILE")]
    pub app_image: Option<PathBuf>,

    /// Chip the firmware is built for (esp32, esp32c3, esp32c6, esp32s3, ...) [default: from ota-sign.toml]
    #[arg(long, value_parser = crate::args::parse_chip)]
    pub chip: Option<ChipId>,

    /// Firmware version; must agree with the app descriptor's version if both are semver
    #[arg(long, value_parser = crate::args::parse_version)]
    pub version: Option<Version>,

    /// Anti-rollback counter: devices never install an image with a lower one
    /// [default: the app descriptor's secure_version]
    #[arg(long, value_name = "N")]
    pub security_counter: Option<u64>,

    /// Public key of a key you will sign with later (planned rotation); the firmware may trust it instead of the signing key. `trusted_keys` of the device type in ota-sign.toml count too
    #[arg(long, value_name = "PUBKEY")]
    pub next_key: Vec<String>,

    /// Secure Boot V2 key (RSA 3072 or ECDSA P-256 PEM; may be passphrase-encrypted): an unsigned app image is signed with it (RSA-PSS or ECDSA, as espsecure) before the Ed25519 signature; an already signed one must name it. A public key only checks [default: `secure_boot_key` of the device type in ota-sign.toml]
    #[arg(long, value_name = "PEM")]
    pub secure_boot_key: Option<PathBuf>,

    /// Package firmware that trusts none of your keys (devices that install it can only be updated by whoever holds the keys it trusts)
    #[arg(long)]
    pub allow_lockout: bool,

    /// Size of the device's OTA slot in bytes (e.g. 1536K, 0x180000) [default: from ota-sign.toml]
    #[arg(long, value_parser = crate::args::parse_size)]
    pub slot_size: Option<u32>,

    /// Flash size used when converting an ELF (1MB, 2MB, 4MB, 8MB, 16MB, 32MB; or bytes, e.g. 0x400000)
    #[arg(long, default_value = "4MB", value_parser = crate::args::parse_flash_size)]
    pub flash_size: espflash::flasher::FlashSize,

    /// Store the app image uncompressed
    #[arg(long, conflicts_with_all = ["zstd_level", "zstd_window_log"])]
    pub no_compress: bool,

    /// zstd compression level (1-22)
    #[arg(long, default_value_t = packaging::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,

    /// Update agent the devices run: 2 decodes compression method 2 (window in flash),
    /// 1 only method 1 (window in RAM) [default: `agent_generation` of the device type in
    /// ota-sign.toml, else 2]
    #[arg(long, value_name = "1|2", value_parser = parse_generation)]
    pub agent_generation: Option<AgentGeneration>,

    /// zstd window log: the device decompresses with a 2^N-byte window. Generation 2: at
    /// most 25 [default: the smallest window covering the image]. Generation 1: at most
    /// what the device type accepts [default: `max_window_log` of the device type in
    /// ota-sign.toml, else 12]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(10..=31))]
    pub zstd_window_log: Option<u8>,

    /// Output file (never overwritten unless --force)
    #[arg(short, long, value_name = "OUT.ota")]
    pub output: PathBuf,

    /// Replace the output file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct Summary {
    output: String,
    device_type: String,
    chip: String,
    version: String,
    security_counter: u64,
    key_id: String,
    input_size: u32,
    payload_size: u32,
    file_size: usize,
    compression: String,
    header_sha256: String,
    image_sha256: String,
    trusted_key_ids: Vec<String>,
    created: u64,
    project_name: String,
    segments: usize,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let cfg = global.config()?;
    let device_type = config::device_type(args.device_type, cfg)?.ok_or_else(|| {
        Failure::usage(
            "no device type given",
            Some(
                "pass --device-type NAME or set device_type in [defaults] of ota-sign.toml"
                    .to_owned(),
            ),
        )
    })?;
    let device_cfg = cfg.and_then(|c| c.device(device_type.as_str()));
    let chip = args.chip.or(device_cfg.and_then(|d| d.chip));
    let slot_size = args.slot_size.or(device_cfg.and_then(|d| d.slot_size));
    let settings = config::device_settings(cfg).for_device_type(device_type.as_str());
    let max_window_log = settings.max_window_log();
    let generation = args
        .agent_generation
        .unwrap_or_else(|| settings.agent_generation());
    let encoding = encoding(&args, generation, max_window_log, &device_type, device_cfg)?;
    if !args.force && args.output.exists() {
        return Err(output::exists(&args.output));
    }

    let key = super::signing_key(args.key.as_deref(), global)?;
    let mut firmware = load_firmware(&args, chip)?;
    let secure_boot_key = args
        .secure_boot_key
        .clone()
        .or(device_cfg.and_then(|d| d.secure_boot_key.clone()));
    if let Some(path) = secure_boot_key {
        firmware = secure_boot(firmware, &path, global)?;
    }
    let version = resolve_version(&firmware, args.version)?;
    let configured = super::configured_trusted_keys(Some(device_type.as_str()), global)?;
    let lockout = if args.allow_lockout {
        LockoutPolicy::Allow
    } else {
        LockoutPolicy::Refuse
    };
    check_trust(
        &firmware,
        key.public_key(),
        &args.next_key,
        &configured,
        lockout,
        global,
    )?;
    if let Some(slot) = slot_size
        && firmware.app_image.len() as u64 > u64::from(slot)
    {
        return Err(PolicyRefusal {
            message: format!(
                "the app image is {} bytes but the device's OTA slot holds {} bytes",
                firmware.app_image.len(),
                slot
            ),
            help: "shrink the firmware or give the device type bigger OTA partitions".to_owned(),
            code: "slot_too_small",
        }
        .into());
    }

    let spec = PackageSpec {
        device_type,
        chip: firmware.chip,
        version,
        security_counter: args
            .security_counter
            .unwrap_or(u64::from(firmware.secure_version)),
        created: creation_time()?,
        encoding,
        max_window_log,
    };
    let bar = Bar::bytes(global, "compressing", firmware.app_image.len() as u64);
    let packaged =
        packaging::package(&firmware.app_image, &spec, &*key, &bar).map_err(PackagingDiagnostic)?;
    bar.finish();
    output::write(&args.output, &packaged.bytes, args.force)?;

    let info = &packaged.info;
    let summary = Summary {
        output: args.output.display().to_string(),
        device_type: info.device_type.to_string(),
        chip: info.chip.to_string(),
        version: info.version.to_string(),
        security_counter: info.security_counter,
        key_id: info.key_id.to_string(),
        input_size: info.image_size,
        payload_size: info.payload_size,
        file_size: packaged.bytes.len(),
        compression: info.compression.to_string(),
        header_sha256: hex::encode(packaged.header_sha256),
        image_sha256: hex::encode(info.image_sha256),
        trusted_key_ids: firmware
            .trusted_keys
            .map(|d| d.keys().iter().map(|k| k.id().to_string()).collect())
            .unwrap_or_default(),
        created: info.created,
        project_name: firmware.project_name.clone(),
        segments: firmware.info.segments().len(),
    };
    global.say(&format!(
        "packaged {} {} for {} ({}) -> {}\n  {} bytes -> {} bytes ({}), signed by key {}",
        summary.device_type,
        summary.version,
        summary.chip,
        summary.compression,
        summary.output,
        summary.input_size,
        summary.file_size,
        ratio(summary.file_size as u64, u64::from(summary.input_size)),
        summary.key_id
    ));
    global.json_result(&summary);
    Ok(())
}

fn parse_generation(s: &str) -> Result<AgentGeneration, String> {
    s.parse::<i64>()
        .ok()
        .and_then(AgentGeneration::from_number)
        .ok_or_else(|| format!("{s:?} is not an agent generation (1 or 2)"))
}

/// The payload encoding for `generation`'s agents, or the refusal of a window they
/// cannot decode.
fn encoding(
    args: &Args,
    generation: AgentGeneration,
    max_window_log: u8,
    device_type: &DeviceType,
    device_cfg: Option<&config::Device>,
) -> Result<PayloadEncoding, Failure> {
    if args.no_compress {
        return Ok(PayloadEncoding::Stored);
    }
    let level = args.zstd_level;
    match generation {
        AgentGeneration::Two => {
            let max = ota_format::FLASH_WINDOW_MAX_LOG;
            match args.zstd_window_log {
                Some(log) if log > max => Err(PolicyRefusal {
                    message: format!(
                        "--zstd-window-log {log}: compression method 2 allows windows up to 2^{max} (32 MiB, beyond any app slot)"
                    ),
                    help: format!("drop --zstd-window-log (the window then covers the image), or give at most {max}"),
                    code: "window_too_large",
                }
                .into()),
                window_log => Ok(PayloadEncoding::ZstdFlashWindow { level, window_log }),
            }
        }
        AgentGeneration::One => {
            let window_log = args.zstd_window_log.unwrap_or(max_window_log);
            if window_log > max_window_log {
                return Err(window_refusal(
                    device_type,
                    window_log,
                    max_window_log,
                    device_cfg,
                ));
            }
            Ok(PayloadEncoding::Zstd { level, window_log })
        }
    }
}

/// Refuses a window the device type's agents cannot decode: every device would refuse
/// the image.
fn window_refusal(
    device_type: &DeviceType,
    window_log: u8,
    max_window_log: u8,
    device_cfg: Option<&config::Device>,
) -> Failure {
    let source = if device_cfg.is_some_and(|d| d.settings.max_window_log.is_some()) {
        format!("`max_window_log` in [device.{device_type}] of ota-sign.toml")
    } else {
        format!(
            "the default: set `max_window_log` in [device.{device_type}] of ota-sign.toml for devices whose firmware accepts more (agents accept at most {})",
            packaging::MAX_WINDOW_LOG
        )
    };
    PolicyRefusal {
        message: format!(
            "--zstd-window-log {window_log} needs a 2^{window_log}-byte window, but generation-1 agents of device type {device_type} decode at most 2^{max_window_log}: they could never install this image"
        ),
        help: format!("drop --zstd-window-log, or give at most {max_window_log}; the limit is {source}"),
        code: "window_too_large",
    }
    .into()
}

fn ratio(out: u64, input: u64) -> String {
    if input == 0 {
        return "-".to_owned();
    }
    format!("{:.1}%", out as f64 * 100.0 / input as f64)
}

fn load_firmware(args: &Args, chip: Option<ChipId>) -> Result<Firmware, Failure> {
    let (path, kind) = match (&args.elf, &args.app_image) {
        (Some(p), _) => (p.as_path(), InputKind::Elf),
        (None, Some(p)) => (p.as_path(), InputKind::AppImage),
        (None, None) => unreachable!("clap requires --elf or --app-image"),
    };
    let elf = ElfOptions {
        flash: espflash::flasher::FlashSettings::new(None, Some(args.flash_size), None),
    };
    input::load(output::read(path)?, kind, chip, &elf).map_err(|e| firmware_failure(path, e))
}

/// Signs an unsigned app image for Secure Boot V2 with the key at `path`, or checks that
/// an already signed one names that key: devices whose eFuses hold another key's digest
/// would refuse to boot it (exit 6, like the lock-out guard).
fn secure_boot(firmware: Firmware, path: &Path, global: &GlobalOpts) -> Result<Firmware, Failure> {
    let key = SecureBootKey::load(path, &crate::passphrase::source())?;
    let digest = key.digest();
    global.detail(&format!(
        "Secure Boot key: {} (digest {digest})",
        path.display()
    ));
    if let Some(sector) = firmware.info.signature_sector {
        if sector.names_key(&digest) {
            return Ok(firmware);
        }
        let found: Vec<String> = sector.blocks().map(|b| b.key_digest.to_string()).collect();
        return Err(PolicyRefusal {
            message: format!(
                "the app image is Secure Boot signed with key digest {}, but the device type's Secure Boot key {} has digest {digest}: its bootloader would refuse it",
                found.join(", "),
                path.display()
            ),
            help: "sign the unsigned image with the fleet's Secure Boot key (or drop the signature sector and pass --secure-boot-key)".to_owned(),
            code: "secure_boot_key",
        }
        .into());
    }
    let origin = ota_keys::KeyOrigin::File(path.to_owned());
    let signed = key.sign_app_image(&firmware.app_image, &origin)?;
    let chip = firmware.chip;
    input::load_app_image(signed, chip).map_err(|e| firmware_failure(path, e))
}

fn resolve_version(firmware: &Firmware, flag: Option<Version>) -> Result<Version, Failure> {
    match flag {
        Some(v) if v != firmware.version => Err(PolicyRefusal {
            message: format!(
                "--version {v} contradicts the firmware's app descriptor, which says {}",
                firmware.version_text
            ),
            help: "set the version where the firmware is built (the app descriptor), or drop --version".to_owned(),
            code: "version_mismatch",
        }
        .into()),
        _ => Ok(firmware.version),
    }
}

/// Refuses firmware that would lock the fleet out of later updates (unless `lockout`
/// allows it), and firmware that trusts a key whose private half is public.
///
/// "Keys you hold" are the signing key, `--next-key` and the device type's
/// `trusted_keys`. A published key (RFC 8032, test keys) never counts among them: it is
/// everyone's key. The one exception is signing with it under `--allow-test-keys`, where
/// the test really does hold it.
fn check_trust(
    firmware: &Firmware,
    signing: [u8; 32],
    next_keys: &[String],
    configured: &[ota_keys::PublicKey],
    lockout: LockoutPolicy,
    global: &GlobalOpts,
) -> Result<(), Failure> {
    super::refuse_published_descriptor_keys(firmware.trusted_keys.as_ref(), global)?;
    let mut declared = Vec::new();
    for spec in next_keys {
        let next = super::public_key(spec, global)?;
        super::refuse_published_key(&next.to_bytes(), "--next-key names", global)?;
        declared.push(next.to_bytes());
    }
    declared.extend(configured.iter().map(|k| k.to_bytes()));
    let signing_counts = global.allow_test_keys || ota_keys::published_key_name(&signing).is_none();
    let held = signing_counts
        .then_some(signing)
        .into_iter()
        .chain(
            declared
                .into_iter()
                .filter(|k| ota_keys::published_key_name(k).is_none()),
        )
        .map(|k| KeyId::of(&k));
    match check_lockout(firmware.trusted_keys.as_ref(), held, lockout) {
        Ok(None) => Ok(()),
        Ok(Some(allowed)) => {
            global.warn(&format!("{allowed} (packaging anyway: --allow-lockout)"));
            Ok(())
        }
        Err(refused) => Err(PolicyRefusal {
            message: refused.to_string(),
            help: "embed your public key in the firmware (`ota-sign pubkey KEY --format rust`), pass --next-key for a planned rotation, or --allow-lockout if this is deliberate".to_owned(),
            code: "lockout",
        }
        .into()),
    }
}

fn creation_time() -> Result<u64, Failure> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            Failure::usage(
                format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"),
                Some("set it to a Unix time, e.g. `git log -1 --format=%ct`".to_owned()),
            )
        }),
        Err(_) => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)),
    }
}
