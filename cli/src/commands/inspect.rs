//! `ota-sign inspect`: what a file claims to be, without trusting it.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args as ClapArgs;
use ota_format::esp::{self, ValidateOptions};
use ota_format::{Manifest, TrustedKeyDescriptor, inspect_header};
use serde::Serialize;

use crate::cli::GlobalOpts;
use crate::diagnostics::{FirmwareDiagnostic, FormatDiagnostic};
use crate::exit::Failure;
use crate::output;
use ota_sign_lib::input;

pub const ABOUT: &str = "\
Show what a file claims to be: a signed image (.ota), a delta (.otad: its own fields, then
the target image header it carries), a release manifest, an ESP-IDF app
image, a full flash image (`ota-sign flash --output`) or an ESP ELF. Times are ISO 8601
(UTC). Signatures are NOT checked (use `ota-sign verify` for that); the
signer's key id is shown so you can tell which key to verify with. Firmware inputs show
their app descriptor and the keys their trusted-key descriptor lists.

Examples:
  ota-sign inspect app.ota
  ota-sign inspect --json thermostat.stable.manifest
  ota-sign inspect app-1.1.0.ota.0123456789abcdef.otad
  ota-sign inspect target/riscv32imc-unknown-none-elf/release/app";

/// Show the contents of an image, manifest, app image or ELF (unverified)
#[derive(ClapArgs, Debug)]
#[command(long_about = ABOUT)]
pub struct Args {
    /// The file to inspect
    pub file: PathBuf,
}

/// What a file is. Fields are in the order a person reads them (what, which version,
/// for what, by whom, when, then sizes and digests); text output keeps that order.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Report {
    Image {
        device_type: String,
        version: String,
        chip: String,
        security_counter: u64,
        key_id: String,
        verified: bool,
        created: String,
        created_unix: u64,
        compression: String,
        image_size: u32,
        payload_size: u32,
        file_size: usize,
        complete: bool,
        header_len: usize,
        image_sha256: String,
        payload_sha256: String,
    },
    Delta {
        device_type: String,
        chip: String,
        key_id: String,
        verified: bool,
        /// What the target header says (device type and chip agree when it verifies).
        target_version: Option<String>,
        target_security_counter: Option<u64>,
        target_compression: Option<String>,
        target_image_size: Option<u32>,
        target_key_id: Option<String>,
        encoding: String,
        base_size: u32,
        base_sha256: String,
        /// The suffix a device running the base asks for beside the full image.
        name_suffix: String,
        payload_size: u32,
        file_size: usize,
        complete: bool,
        header_len: usize,
        target_header_len: Option<usize>,
        target_header_sha256: String,
        payload_sha256: String,
    },
    Manifest {
        device_type: String,
        channel: String,
        version: String,
        chip: String,
        security_counter: u64,
        sequence: u64,
        key_id: String,
        verified: bool,
        created: String,
        created_unix: u64,
        expires: Option<String>,
        not_after: Option<u64>,
        rollout_percent: f64,
        allow_downgrade: bool,
        min_running_version: Option<String>,
        image_name: String,
        image_file_size: u32,
        image_size: u32,
        image_header_sha256: String,
    },
    AppImage {
        #[serde(flatten)]
        descriptor: Option<Descriptor>,
        chip: String,
        trusted_key_ids: Option<Vec<String>>,
        size: u32,
        segments: usize,
        sha256: String,
        /// Key digests the Secure Boot V2 signature blocks name; `None` when unsigned.
        secure_boot_key_digests: Option<Vec<String>>,
    },
    Elf {
        #[serde(flatten)]
        descriptor: Option<Descriptor>,
        chips: Vec<String>,
        trusted_key_ids: Option<Vec<String>>,
    },
    FlashImage {
        flash_size: usize,
        boots: Option<String>,
        #[serde(flatten)]
        descriptor: Option<Descriptor>,
        partitions: Vec<String>,
    },
}

/// The ESP-IDF app descriptor (`esp_app_desc_t`) of a firmware.
#[derive(Serialize)]
struct Descriptor {
    project_name: String,
    version: String,
    secure_version: u32,
    idf_version: String,
    built: String,
}

impl Descriptor {
    fn of(desc: &esp::AppDescriptor) -> Self {
        Descriptor {
            project_name: desc.project_name().to_owned(),
            version: desc.version().to_owned(),
            secure_version: desc.secure_version(),
            idf_version: desc.idf_ver().to_owned(),
            built: format!("{} {}", desc.date(), desc.time()).trim().to_owned(),
        }
    }
}

/// Where ESP-IDF puts the partition table; a full flash image (`flash --output`) has one.
const PARTITION_TABLE_AT: usize = 0x8000;

fn iso_time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
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
            created: iso_time(info.created),
            created_unix: info.created,
            image_size: info.image_size,
            payload_size: info.payload_size,
            compression: info.compression.to_string(),
            payload_sha256: hex::encode(info.payload_sha256),
            image_sha256: hex::encode(info.image_sha256),
            key_id: info.key_id.to_string(),
            header_len,
            file_size: bytes.len(),
            complete: bytes.len() as u64 == header_len as u64 + u64::from(info.payload_size),
        }
    } else if bytes.starts_with(&ota_format::DELTA_MAGIC) {
        let (d, header_len) = ota_format::inspect_delta_header(&bytes)
            .map_err(|e| FormatDiagnostic::new(format!("delta {name}"), e))?;
        let target = inspect_header(&bytes[header_len..]).ok();
        let t = target.as_ref().map(|(info, _)| info);
        let target_header_len = target.as_ref().map(|(_, len)| *len);
        Report::Delta {
            verified: false,
            device_type: d.device_type.to_string(),
            chip: d.chip.to_string(),
            key_id: d.key_id.to_string(),
            target_version: t.map(|t| t.version.to_string()),
            target_security_counter: t.map(|t| t.security_counter),
            target_compression: t.map(|t| t.compression.to_string()),
            target_image_size: t.map(|t| t.image_size),
            target_key_id: t.map(|t| t.key_id.to_string()),
            encoding: format!(
                "{}: {}, {}",
                ota_sign_lib::delta::encoding_name(d.encoding),
                d.compression(),
                match d.encoding {
                    ota_format::DeltaEncoding::PatchFrom => "the base as prefix".to_owned(),
                    ota_format::DeltaEncoding::Difference { stream_size } =>
                        format!("decoding to a {stream_size}-byte difference stream"),
                }
            ),
            base_size: d.base_size,
            base_sha256: hex::encode(d.base_sha256),
            name_suffix: ota_sign_lib::delta::delta_name_suffix(&d.base_sha256),
            payload_size: d.payload_size,
            file_size: bytes.len(),
            complete: target_header_len.is_some_and(|t| {
                bytes.len() as u64 == (header_len + t) as u64 + u64::from(d.payload_size)
            }),
            header_len,
            target_header_len,
            target_header_sha256: hex::encode(d.target_header_sha256),
            payload_sha256: hex::encode(d.payload_sha256),
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
            created: iso_time(m.created),
            created_unix: m.created,
            expires: m.not_after.map(iso_time),
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
    } else if let Some(report) = flash_image(&bytes) {
        report
    } else if bytes.first() == Some(&esp::IMAGE_MAGIC) {
        let diag = |error| FirmwareDiagnostic {
            path: name.clone(),
            error: ota_sign_lib::input::FirmwareError::AppImage(error),
        };
        let info = esp::validate(&bytes, ValidateOptions::default()).map_err(diag)?;
        Report::AppImage {
            descriptor: info.app_descriptor().ok().as_ref().map(Descriptor::of),
            chip: info.chip().to_string(),
            size: info.installed_len,
            segments: info.segments().len(),
            sha256: hex::encode(info.image_sha256),
            trusted_key_ids: key_ids(&bytes),
            secure_boot_key_digests: info
                .signature_sector
                .map(|sector| sector.blocks().map(|b| b.key_digest.to_string()).collect()),
        }
    } else if bytes.starts_with(b"\x7fELF") {
        let chips = input::detect_elf_chips(&bytes).map_err(|error| FirmwareDiagnostic {
            path: name.clone(),
            error,
        })?;
        // The descriptor as the app image espflash makes for the likeliest chip has it.
        let descriptor = chips
            .first()
            .and_then(|chip| input::load_elf(&bytes, *chip, &Default::default()).ok())
            .and_then(|fw| esp::AppDescriptor::find_in_image(&fw.app_image).ok())
            .as_ref()
            .map(Descriptor::of);
        Report::Elf {
            descriptor,
            chips: chips.iter().map(|c| c.to_string()).collect(),
            trusted_key_ids: key_ids(&bytes),
        }
    } else {
        return Err(Failure::new(
            crate::exit::INVALID_SIGNATURE,
            crate::exit::Message::new(
                format!("{name}: not a kind of file ota-sign knows"),
                Some(
                    "expected a signed image (starts with OTAI), a release manifest (OTAM), an \
                     ESP-IDF app image (0xE9), a full flash image (partition table at 0x8000) \
                     or an ELF file"
                        .to_owned(),
                ),
                "ota_sign::inspect::unknown_file",
            ),
        ));
    };
    global.payload(&render(&name, &report));
    global.json_result(&report);
    Ok(())
}

/// A full flash image as `ota-sign flash --output` writes it: a partition table at
/// 0x8000; reports the partitions and the app the stock bootloader starts while otadata
/// is blank (factory, else ota_0).
fn flash_image(bytes: &[u8]) -> Option<Report> {
    let table = bytes
        .get(PARTITION_TABLE_AT..PARTITION_TABLE_AT + ota_sign_lib::flash::table::MAX_BINARY_LEN)?;
    if !table.starts_with(&[0xAA, 0x50]) {
        return None;
    }
    let parts = ota_sign_lib::flash::table::parse_binary(table).ok()?;
    let app = |subtype: esp_idf_part::AppType| {
        parts.iter().find(|p| {
            p.ty() == esp_idf_part::Type::App && p.subtype() == esp_idf_part::SubType::App(subtype)
        })
    };
    let boot = app(esp_idf_part::AppType::Factory).or_else(|| app(esp_idf_part::AppType::Ota_0));
    let descriptor = boot
        .and_then(|p| {
            bytes.get(p.offset() as usize..(p.offset() as u64 + u64::from(p.size())) as usize)
        })
        .and_then(|region| esp::AppDescriptor::find_in_image(region).ok())
        .as_ref()
        .map(Descriptor::of);
    Some(Report::FlashImage {
        flash_size: bytes.len(),
        boots: boot.map(|p| p.name()),
        descriptor,
        partitions: parts
            .iter()
            .map(|p| {
                format!(
                    "{} {}/{} at {:#x} ({:#x} bytes)",
                    p.name(),
                    p.ty(),
                    p.subtype(),
                    p.offset(),
                    p.size()
                )
            })
            .collect(),
    })
}

fn key_ids(bytes: &[u8]) -> Option<Vec<String>> {
    TrustedKeyDescriptor::find_in(bytes)
        .ok()
        .flatten()
        .map(|d| d.keys().iter().map(|k| k.id().to_string()).collect())
}

/// The report as aligned `key: value` lines in field order (its JSON form, so both stay
/// in step); `*_unix` twins of the ISO-8601 times are for scripts only.
fn render(name: &str, report: &Report) -> String {
    let text = serde_json::to_string(report).unwrap_or_default();
    let fields: Vec<(String, serde_json::Value)> = serde_json::from_str::<InOrder>(&text)
        .map(|o| o.0)
        .unwrap_or_default();
    let fields: Vec<_> = fields
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_unix") && k != "not_after")
        .collect();
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{name}\n");
    for (k, v) in &fields {
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
    if matches!(
        report,
        Report::Image { .. } | Report::Manifest { .. } | Report::Delta { .. }
    ) {
        out.push_str("  (signature not checked: use `ota-sign verify --pubkey KEY FILE`)\n");
    }
    out
}

/// A JSON object's fields in the order they were written (serde_json's `Map` sorts them).
struct InOrder(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<InOrder, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(InOrder(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}
