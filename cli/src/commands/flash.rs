//! `ota-sign flash`: the first install of a device, over a serial port or into a full
//! flash image file.

use std::path::PathBuf;

use clap::{ArgGroup, Args as ClapArgs};
use espflash::flasher::{FlashSettings, FlashSize};
use ota_format::{ChipId, DeviceType};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::config::{self, Config};
use crate::diagnostics::firmware_failure;
use crate::exit::Failure;
use crate::output;
use crate::progress::Bar;
#[cfg(feature = "serial")]
use crate::progress::Bars;
use ota_sign_lib::flash::bootloader::flash_size_of;
use ota_sign_lib::flash::partitions::{default_table, parse_table};
use ota_sign_lib::flash::{CheckedTable, FlashError, Plan, PlanInput, PlanSummary};
use ota_sign_lib::input::{self, ElfOptions, Firmware, FirmwareError, InputKind};

/// The long help of `ota-sign flash`.
pub const ABOUT: &str = "\
Install a device for the first time: the ESP-IDF bootloader for its chip, a partition
table with two OTA slots, blank otadata, a blank `ota_state` partition for the update
agent, and the app in the partition the bootloader starts (`ota_0`, or `factory` when
the table has one). Over a serial port with --port (espflash), or into a full flash
image with --output (erased bytes are 0xFF; the same bytes at the same offsets).

The firmware comes as an ELF (converted with espflash for --chip), an ESP-IDF app image,
or a signed image (.ota), which is verified first (signature, digests, app image) with
--pubkey: nothing is written unless it verifies.

The partition table comes from --partition-table, else `partition_table` in the
[device.NAME] table of ota-sign.toml, else the default for --flash-size: nvs, ota_state,
otadata, phy_init, [factory,] ota_0, ota_1. A table must have otadata, ota_0 and ota_1,
and an `ota_state` data partition of at least 8 KiB (the update agent keeps its state
there and does not run without it); partitions must be aligned, inside the flash, after
0x9000 and not overlap.

The plan (offset, size, what) is printed before anything is written.

Exit codes: 0 written; 6 refused (firmware for another chip or device type, app larger
than its partition, a table without otadata, two OTA slots or ota_state, device with
less flash); 3 the signed image does not verify; 1 invalid partition table, firmware or
serial failure; 2 usage; 4 unreadable input, unwritable output or serial port; 7 the
output exists.

Examples:
  ota-sign flash --elf build/app.elf --chip esp32c3 --port /dev/ttyACM0
  ota-sign flash --image thermostat-1.4.0.ota --pubkey release.pub \\
      --output flash.bin
  ota-sign flash --app-image app.bin --partition-table parts.csv \\
      --flash-size 8MB --output flash.bin --json";

/// Install bootloader, partition table and firmware on a new device
#[derive(ClapArgs, Debug)]
#[command(
    long_about = ABOUT,
    group(ArgGroup::new("input").required(true).args(["elf", "app_image", "image"])),
    group(ArgGroup::new("target").required(true).args(["port", "output", "dry_run"])),
)]
pub struct Args {
    /// ELF file of the firmware build (needs --chip or `chip` in ota-sign.toml)
    #[arg(long, value_name = "FILE")]
    pub elf: Option<PathBuf>,

    /// ESP-IDF app image (the .bin an ESP-IDF build or `espflash save-image` writes)
    #[arg(long, value_name = "FILE")]
    pub app_image: Option<PathBuf>,

    /// Signed image (.ota), verified with --pubkey before anything is written
    #[arg(long, value_name = "FILE.ota")]
    pub image: Option<PathBuf>,

    /// Trusted public key for --image: a .pub or .key file, or 64 hex digits (repeatable)
    /// [default: `trusted_keys` of the device type in ota-sign.toml]
    #[arg(long, value_name = "PUBKEY", requires = "image")]
    pub pubkey: Vec<String>,

    /// Chip of the device (esp32, esp32c3, esp32c6, esp32s3, ...) [default: from ota-sign.toml, or the image]
    #[arg(long, value_parser = crate::args::parse_chip)]
    pub chip: Option<ChipId>,

    /// Device type: selects [device.NAME] in ota-sign.toml; a signed image must be for it
    #[arg(long, value_parser = config::parse_device_type)]
    pub device_type: Option<DeviceType>,

    /// Serial port of the device (e.g. /dev/ttyACM0, /dev/ttyUSB0, COM3)
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Baud rate for writing over --port (connection starts at 115200)
    #[arg(long, value_name = "N", requires = "port")]
    pub baud: Option<u32>,

    /// Write a full flash image file instead of a device (never overwritten unless --force)
    #[arg(short, long, value_name = "FLASH.bin")]
    pub output: Option<PathBuf>,

    /// Replace the --output file if it exists
    #[arg(long, requires = "output")]
    pub force: bool,

    /// Print the plan and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Flash size (1MB, 2MB, 4MB, 8MB, 16MB, 32MB) [default: detected over --port, else 4MB]
    #[arg(long, value_parser = crate::args::parse_flash_size)]
    pub flash_size: Option<FlashSize>,

    /// ESP-IDF partition table, CSV or binary [default: `partition_table` in ota-sign.toml, else the default layout]
    #[arg(long, value_name = "CSV")]
    pub partition_table: Option<PathBuf>,

    /// Add a factory app partition to the default layout (the app is installed there)
    #[arg(long, conflicts_with = "partition_table")]
    pub factory: bool,
}

#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    plan: PlanSummary,
    /// "port", "output" or "dry-run".
    target: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    written: bool,
    device_type: String,
    version: String,
    app_size: usize,
    app_sha256: String,
}

/// The app to install and what it says about itself.
struct App {
    firmware: Firmware,
    device_type: String,
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    if let Some(out) = &args.output
        && !args.force
        && out.exists()
    {
        return Err(output::exists(out));
    }
    let cfg = global.config()?;
    let app = load_app(&args, cfg, global)?;
    super::refuse_published_descriptor_keys(app.firmware.trusted_keys.as_ref(), global)?;
    let chip = app.firmware.chip;
    let device_cfg = cfg.and_then(|c| c.device(&app.device_type));

    let Connected {
        device,
        xtal,
        flash_size,
    } = connect(&args, chip)?;

    let table_path = args
        .partition_table
        .clone()
        .or_else(|| device_cfg.and_then(|d| d.partition_table.clone()));
    if args.factory && table_path.is_some() {
        return Err(Failure::usage(
            "--factory changes the default layout, but a partition table is configured",
            Some("add a factory partition to the table instead".to_owned()),
        ));
    }
    let table = match &table_path {
        Some(path) => parse_table(&output::read(path)?, &path.display().to_string())?,
        None => default_table(flash_size.size(), args.factory)?,
    };
    let layout = CheckedTable::check(table, flash_size.size())?;
    for slot in &layout.slots {
        if app.firmware.app_image.len() as u64 > u64::from(slot.size()) {
            global.warn(&format!(
                "{} holds {} bytes, less than this app's {}: an update of this size could not be installed there",
                slot.name(),
                slot.size(),
                app.firmware.app_image.len()
            ));
        }
    }
    let plan = Plan::new(PlanInput {
        chip,
        flash_size,
        xtal,
        partitions: layout,
        app: &app.firmware.app_image,
        app_label: format!(
            "app {} {}",
            app.firmware.project_name, app.firmware.version_text
        ),
    })?;
    global.say(plan.describe().trim_end());

    let (target, written) = if args.dry_run {
        ("dry-run", false)
    } else if let Some(out) = &args.output {
        let bar = Bar::bytes(global, "placing", plan.bytes());
        let image = plan.image(&bar);
        bar.finish();
        output::write(out, &image, args.force)?;
        global.say(&format!("wrote {} ({} bytes)", out.display(), image.len()));
        ("output", true)
    } else if let Some(device) = device {
        write_serial(device, &plan, global)?;
        ("port", true)
    } else {
        unreachable!("clap requires --port, --output or --dry-run")
    };

    global.json_result(&Summary {
        plan: plan.summary(),
        target,
        port: args.port.clone(),
        output: args.output.as_ref().map(|p| p.display().to_string()),
        written,
        device_type: app.device_type,
        version: app.firmware.version.to_string(),
        app_size: app.firmware.app_image.len(),
        app_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            &app.firmware.app_image,
        )),
    });
    Ok(())
}

#[cfg(feature = "serial")]
type Device = ota_sign_lib::flash::serial::SerialDevice;
/// Without serial support there is never a device.
#[cfg(not(feature = "serial"))]
type Device = std::convert::Infallible;

/// Where the plan goes and what is known about the flash there.
struct Connected {
    device: Option<Device>,
    xtal: Option<espflash::target::XtalFrequency>,
    flash_size: FlashSize,
}

/// Connects to `--port` (the flash size defaults to what the chip reports), or settles
/// the flash size of an image file.
fn connect(args: &Args, chip: ChipId) -> Result<Connected, Failure> {
    let Some(port) = &args.port else {
        return Ok(Connected {
            device: None,
            xtal: None,
            flash_size: args.flash_size.unwrap_or(FlashSize::_4Mb),
        });
    };
    #[cfg(not(feature = "serial"))]
    {
        let _ = (port, chip);
        Err(Failure::usage(
            "this ota-sign was built without serial support",
            Some(
                "write a flash image with --output, or rebuild with the `serial` feature"
                    .to_owned(),
            ),
        ))
    }
    #[cfg(feature = "serial")]
    {
        let mut device = Device::connect(port, args.baud, chip)?;
        let (detected, crystal) = device.probe()?;
        let flash_size = match args.flash_size {
            Some(planned) if planned.size() > detected => {
                return Err(FlashError::DeviceFlashTooSmall {
                    port: port.clone(),
                    detected,
                    planned: planned.size(),
                }
                .into());
            }
            Some(planned) => planned,
            None => flash_size_of(detected).unwrap_or(FlashSize::_4Mb),
        };
        Ok(Connected {
            device: Some(device),
            xtal: Some(crystal),
            flash_size,
        })
    }
}

/// Writes the plan over the serial port, one progress bar per region.
#[cfg(feature = "serial")]
fn write_serial(mut device: Device, plan: &Plan, global: &GlobalOpts) -> Result<(), Failure> {
    device.write(&plan.writes, &Bars::new(global, None))?;
    global.say(&format!("flashed {} over {}", plan.chip, device.port()));
    Ok(())
}

#[cfg(not(feature = "serial"))]
fn write_serial(device: Device, _: &Plan, _: &GlobalOpts) -> Result<(), Failure> {
    match device {}
}

/// Where the expected chip comes from, for messages.
fn expected_chip(
    args: &Args,
    cfg: Option<&Config>,
    device_type: Option<&str>,
) -> Option<(ChipId, String)> {
    if let Some(chip) = args.chip {
        return Some((chip, "--chip".to_owned()));
    }
    let name = device_type?;
    let chip = cfg?.device(name)?.chip?;
    Some((chip, format!("[device.{name}] in ota-sign.toml")))
}

fn check_chip(image: ChipId, expected: Option<&(ChipId, String)>) -> Result<(), FlashError> {
    match expected {
        Some((chip, from)) if *chip != image => Err(FlashError::wrong_chip(image, *chip, from)),
        _ => Ok(()),
    }
}

fn load_app(args: &Args, cfg: Option<&Config>, global: &GlobalOpts) -> Result<App, Failure> {
    let named_type = config::device_type(args.device_type, cfg)?;
    if let Some(path) = &args.image {
        let (verified, app) =
            crate::checks::load_verified_image(path, &args.pubkey, args.device_type, global)?;
        let info = verified.header.info;
        let device_type = info.device_type.to_string();
        check_chip(
            info.chip,
            expected_chip(args, cfg, Some(&device_type)).as_ref(),
        )?;
        let firmware = input::inspect(app, info.chip).map_err(|e| firmware_failure(path, e))?;
        return Ok(App {
            firmware,
            device_type,
        });
    }
    let device_type = named_type.map(|t| t.to_string());
    let expected = expected_chip(args, cfg, device_type.as_deref());
    let (path, kind) = match (&args.elf, &args.app_image) {
        (Some(p), _) => (p, InputKind::Elf),
        (None, Some(p)) => (p, InputKind::AppImage),
        (None, None) => unreachable!("clap requires one input"),
    };
    let bytes = output::read(path)?;
    let chip = match kind {
        InputKind::Elf => expected.as_ref().map(|(chip, _)| *chip),
        // An app image names its chip: flashing it onto another is a flash refusal.
        InputKind::AppImage => {
            let chip = input::app_image_chip(&bytes).map_err(|e| firmware_failure(path, e))?;
            check_chip(chip, expected.as_ref())?;
            Some(chip)
        }
    };
    let elf = ElfOptions {
        flash: FlashSettings::new(None, Some(args.flash_size.unwrap_or(FlashSize::_4Mb)), None),
    };
    let firmware = input::load(bytes, kind, chip, &elf).map_err(|e| match (e, &expected) {
        (FirmwareError::ElfChipMismatch { elf, .. }, Some((chip, from))) => FlashError::WrongChip {
            image: elf,
            expected: chip.to_string(),
            expected_from: from.clone(),
        }
        .into(),
        (FirmwareError::ElfArchMismatch { arch, .. }, Some((chip, from))) => {
            FlashError::WrongChip {
                image: format!("a {arch} chip"),
                expected: chip.to_string(),
                expected_from: from.clone(),
            }
            .into()
        }
        (e, _) => firmware_failure(path, e),
    })?;
    let device_type = device_type.unwrap_or_else(|| firmware.project_name.clone());
    Ok(App {
        firmware,
        device_type,
    })
}
