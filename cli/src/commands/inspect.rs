//! `ota-sign inspect`: what a file claims to be, without trusting it.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use ota_format::esp::{self, ValidateOptions};
use ota_format::{Compression, Manifest, TrustedKeyDescriptor, inspect_header};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::diagnostics::{FirmwareDiagnostic, FormatDiagnostic};
use crate::exit::Failure;
use crate::firmware;
use crate::output;

pub const ABOUT: &str = "\
Show what a file claims to be: a signed image (.ota), a release manifest, an ESP-IDF app
image or an ESP ELF. Signatures are NOT checked (use `ota-sign verify` for that); the
signer's key id is shown so you can tell which key to verify with. Firmware inputs show
their app descriptor and the keys their trusted-key descriptor lists.

Examples:
  ota-sign inspect app.ota
  ota-sign inspect --json thermostat.stable.manifest
  ota-sign inspect target/riscv32imc-unknown-none-elf/release/app";

/// Show the contents of an image, manifest, app image or ELF (unverified)
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// The file to inspect
    pub file: PathBuf,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Report {
    Image {
        verified: bool,
        device_type: String,
        chip: String,
        version: String,
        security_counter: u64,
        created: u64,
        image_size: u32,
        payload_size: u32,
        compression: String,
        payload_sha256: String,
        image_sha256: String,
        key_id: String,
        header_len: usize,
        file_size: usize,
        complete: bool,
    },
    Manifest {
        verified: bool,
        device_type: String,
        chip: String,
        channel: String,
        version: String,
        security_counter: u64,
        sequence: u64,
        created: u64,
        not_after: Option<u64>,
        rollout_percent: f64,
        allow_downgrade: bool,
        min_running_version: Option<String>,
        image_name: String,
        image_file_size: u32,
        image_size: u32,
        image_header_sha256: String,
        key_id: String,
    },
    AppImage {
        chip: String,
        size: u32,
        segments: usize,
        sha256: String,
        version: Option<String>,
        project_name: Option<String>,
        secure_version: Option<u32>,
        trusted_key_ids: Option<Vec<String>>,
        /// Key digests the Secure Boot V2 signature blocks name; `None` when unsigned.
        secure_boot_key_digests: Option<Vec<String>>,
    },
    Elf {
        chips: Vec<String>,
        trusted_key_ids: Option<Vec<String>>,
    },
}

pub fn run(args: Args, global: &GlobalOpts) -> Result<(), Failure> {
    let bytes = output::read(&args.file)?;
    let name = args.file.display().to_string();
    let report = if bytes.starts_with(&ota_format::IMAGE_MAGIC) {
        let (info, header_len) = inspect_header(&bytes)
            .map_err(|e| FormatDiagnostic::new(format!("image {name}"), e))?;
        Report::Image {
            verified: false,
            device_type: info.device_type.to_string(),
            chip: info.chip.to_string(),
            version: info.version.to_string(),
            security_counter: info.security_counter,
            created: info.created,
            image_size: info.image_size,
            payload_size: info.payload_size,
            compression: match info.compression {
                Compression::None => "none".to_owned(),
                Compression::Zstd { window_log } => format!("zstd, window 2^{window_log}"),
            },
            payload_sha256: hex::encode(info.payload_sha256),
            image_sha256: hex::encode(info.image_sha256),
            key_id: info.key_id.to_string(),
            header_len,
            file_size: bytes.len(),
            complete: bytes.len() as u64 == header_len as u64 + u64::from(info.payload_size),
        }
    } else if bytes.starts_with(&ota_format::MANIFEST_MAGIC) {
        let m = Manifest::inspect(&bytes)
            .map_err(|e| FormatDiagnostic::new(format!("manifest {name}"), e))?;
        Report::Manifest {
            verified: false,
            device_type: m.device_type.to_string(),
            chip: m.chip.to_string(),
            channel: m.channel.to_string(),
            version: m.version.to_string(),
            security_counter: m.security_counter,
            sequence: m.sequence,
            created: m.created,
            not_after: m.not_after,
            rollout_percent: f64::from(m.rollout) / 100.0,
            allow_downgrade: m.allow_downgrade,
            min_running_version: m.min_running_version.map(|v| v.to_string()),
            image_name: m.image_name.to_string(),
            image_file_size: m.image_file_size,
            image_size: m.image_size,
            image_header_sha256: hex::encode(m.image_header_sha256),
            key_id: m.key_id.to_string(),
        }
    } else if bytes.first() == Some(&esp::IMAGE_MAGIC) {
        let diag = |error| FirmwareDiagnostic {
            path: name.clone(),
            error: firmware::FirmwareError::AppImage(error),
        };
        let info = esp::validate(&bytes, ValidateOptions::default()).map_err(diag)?;
        let desc = info.app_descriptor().ok();
        Report::AppImage {
            chip: info.chip().to_string(),
            size: info.installed_len,
            segments: info.segments().len(),
            sha256: hex::encode(info.image_sha256),
            version: desc.as_ref().map(|d| d.version().to_owned()),
            project_name: desc.as_ref().map(|d| d.project_name().to_owned()),
            secure_version: desc.as_ref().map(|d| d.secure_version()),
            trusted_key_ids: key_ids(&bytes),
            secure_boot_key_digests: info
                .signature_sector
                .map(|sector| sector.blocks().map(|b| b.key_digest.to_string()).collect()),
        }
    } else if bytes.starts_with(b"\x7fELF") {
        let chips = firmware::detect_elf_chips(&bytes).map_err(|error| FirmwareDiagnostic {
            path: name.clone(),
            error,
        })?;
        Report::Elf {
            chips: chips.iter().map(|c| c.to_string()).collect(),
            trusted_key_ids: key_ids(&bytes),
        }
    } else {
        return Err(FormatDiagnostic::new(name, ota_format::FormatError::BadMagic).into());
    };
    global.payload(&render(&name, &report));
    global.json_result(&report);
    Ok(())
}

fn key_ids(bytes: &[u8]) -> Option<Vec<String>> {
    TrustedKeyDescriptor::find_in(bytes)
        .ok()
        .flatten()
        .map(|d| d.keys().iter().map(|k| k.id().to_string()).collect())
}

/// The report as aligned `key: value` lines, from its JSON form so both stay in step.
fn render(name: &str, report: &Report) -> String {
    let value = serde_json::to_value(report).unwrap_or_default();
    let mut out = format!("{name}\n");
    if let Some(map) = value.as_object() {
        let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k:<width$}  {text}\n"));
        }
    }
    if matches!(report, Report::Image { .. } | Report::Manifest { .. }) {
        out.push_str("  (signature not checked: use `ota-sign verify --pubkey KEY FILE`)\n");
    }
    out
}
