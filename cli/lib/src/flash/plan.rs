//! What a first install writes where, and the full flash image it amounts to.
//!
//! The serial path and `--output` write the same [`Write`]s: the bootloader, the
//! partition table, blank otadata (so the stock bootloader starts the app partition),
//! a blank `ota_state` (so the agent starts from a clean state even on a reused board),
//! and the app. Everything else of a full image is 0xFF, as after an erase.

use espflash::flasher::FlashSize;
use espflash::target::XtalFrequency;
use ota_format::ChipId;
use serde::Serialize;

use super::FlashError;
use super::bootloader::bootloader;
use super::partitions::{CheckedTable, PARTITION_TABLE_OFFSET};
use crate::progress::Progress;

/// What [`Plan::image`] reports progress on: the bytes placed in the image.
pub const PROGRESS_IMAGE: &str = "flash image";

/// One contiguous write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Absolute flash offset.
    pub offset: u32,
    /// What it is, for people.
    pub what: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Everything a first install writes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The chip.
    pub chip: ChipId,
    /// The checked partition table.
    pub partitions: CheckedTable,
    /// The writes, by offset.
    pub writes: Vec<Write>,
}

/// The inputs of a plan.
pub struct PlanInput<'a> {
    /// The chip.
    pub chip: ChipId,
    /// Flash size.
    pub flash_size: FlashSize,
    /// Crystal, when known (serial).
    pub xtal: Option<XtalFrequency>,
    /// The checked partition table.
    pub partitions: CheckedTable,
    /// The app image (already validated for `chip`).
    pub app: &'a [u8],
    /// How the app is described in the plan, e.g. "app thermostat 1.4.0".
    pub app_label: String,
}

impl Plan {
    /// Lays out the writes; refuses an app larger than its partition.
    pub fn new(input: PlanInput<'_>) -> Result<Plan, FlashError> {
        let partitions = input.partitions;
        let boot = &partitions.boot;
        if input.app.len() as u64 > u64::from(boot.size()) {
            return Err(FlashError::AppTooLarge {
                app: input.app.len(),
                partition: boot.name(),
                size: boot.size(),
            });
        }
        let (boot_addr, bootloader) = bootloader(input.chip, input.flash_size, input.xtal)?;
        let table = partitions
            .table
            .to_bin()
            .map_err(|e| FlashError::InvalidTable {
                origin: "partition table".to_owned(),
                error: e.to_string(),
            })?;
        let blank = |size: u32| vec![0xFF; size as usize];
        let mut writes = vec![
            Write {
                offset: boot_addr,
                what: "bootloader (ESP-IDF, from espflash)".to_owned(),
                bytes: bootloader,
            },
            Write {
                offset: PARTITION_TABLE_OFFSET,
                what: format!(
                    "partition table ({} partitions, MD5)",
                    partitions.table.partitions().len()
                ),
                bytes: table,
            },
            Write {
                offset: partitions.otadata.offset(),
                what: format!(
                    "{} (blank: boot {})",
                    partitions.otadata.name(),
                    boot.name()
                ),
                bytes: blank(partitions.otadata.size()),
            },
            Write {
                offset: partitions.state.offset(),
                what: format!("{} (blank: fresh agent state)", partitions.state.name()),
                bytes: blank(partitions.state.size()),
            },
            Write {
                offset: boot.offset(),
                what: format!("{} -> {}", input.app_label, boot.name()),
                bytes: input.app.to_vec(),
            },
        ];
        writes.sort_by_key(|w| w.offset);
        // The table checks make these impossible; a plan that broke them would
        // silently corrupt the device, so check once more.
        for pair in writes.windows(2) {
            let end = u64::from(pair[0].offset) + pair[0].bytes.len() as u64;
            assert!(end <= u64::from(pair[1].offset), "writes overlap: {pair:?}");
        }
        if let Some(last) = writes.last() {
            let end = u64::from(last.offset) + last.bytes.len() as u64;
            assert!(
                end <= u64::from(partitions.flash_size),
                "write past the flash"
            );
        }
        Ok(Plan {
            chip: input.chip,
            partitions,
            writes,
        })
    }

    /// Total bytes written.
    pub fn bytes(&self) -> u64 {
        self.writes.iter().map(|w| w.bytes.len() as u64).sum()
    }

    /// The full flash image: erased flash (0xFF) with every write in place.
    /// `progress` gets the bytes placed so far, as one piece of work.
    pub fn image(&self, progress: &dyn Progress) -> Vec<u8> {
        let mut image = vec![0xFF; self.partitions.flash_size as usize];
        progress.start(PROGRESS_IMAGE, self.bytes());
        let mut done = 0;
        for w in &self.writes {
            let at = w.offset as usize;
            image[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
            done += w.bytes.len() as u64;
            progress.advance(PROGRESS_IMAGE, done);
        }
        progress.finish(PROGRESS_IMAGE);
        image
    }

    /// The plan for people, one line per write.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "flash plan for {} ({} bytes of flash):\n",
            self.chip, self.partitions.flash_size
        );
        for w in &self.writes {
            text.push_str(&format!(
                "  {:#08x}  {:>8} bytes  {}\n",
                w.offset,
                w.bytes.len(),
                w.what
            ));
        }
        text.push_str("partitions:\n");
        for p in self.partitions.table.partitions() {
            text.push_str(&format!(
                "  {:#08x}  {:>8} bytes  {} ({}, {})\n",
                p.offset(),
                p.size(),
                p.name(),
                p.ty(),
                subtype_name(p)
            ));
        }
        text
    }

    /// The plan as data, for `--json`.
    pub fn summary(&self) -> PlanSummary {
        PlanSummary {
            chip: self.chip.to_string(),
            flash_size: self.partitions.flash_size,
            app_partition: self.partitions.boot.name(),
            writes: self
                .writes
                .iter()
                .map(|w| WriteSummary {
                    offset: w.offset,
                    size: w.bytes.len(),
                    what: w.what.clone(),
                    sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&w.bytes)),
                })
                .collect(),
            partitions: self
                .partitions
                .table
                .partitions()
                .iter()
                .map(|p| PartitionSummary {
                    name: p.name(),
                    r#type: p.ty().to_string(),
                    subtype: subtype_name(p),
                    offset: p.offset(),
                    size: p.size(),
                })
                .collect(),
        }
    }
}

fn subtype_name(p: &esp_idf_part::Partition) -> String {
    p.subtype().to_string()
}

/// [`Plan`] as JSON.
#[derive(Serialize)]
pub struct PlanSummary {
    /// The chip.
    pub chip: String,
    /// Flash size in bytes.
    pub flash_size: u32,
    /// Partition the app goes into.
    pub app_partition: String,
    /// The writes.
    pub writes: Vec<WriteSummary>,
    /// The partition table.
    pub partitions: Vec<PartitionSummary>,
}

/// One write as JSON.
#[derive(Serialize)]
pub struct WriteSummary {
    /// Offset.
    pub offset: u32,
    /// Size.
    pub size: usize,
    /// What.
    pub what: String,
    /// SHA-256 of the bytes.
    pub sha256: String,
}

/// One partition as JSON.
#[derive(Serialize)]
pub struct PartitionSummary {
    /// Name.
    pub name: String,
    /// app or data.
    pub r#type: String,
    /// Subtype name.
    pub subtype: String,
    /// Offset.
    pub offset: u32,
    /// Size.
    pub size: u32,
}
