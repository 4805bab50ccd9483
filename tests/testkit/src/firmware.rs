//! The firmware description shared by the ELF and the app-image renderers.

use ota_format::TrustedKeyDescriptor;
use ota_format::esp::AppDescriptor;

use crate::chip::Chip;
use crate::filler::filler;

/// A synthetic firmware: what goes where, before it is rendered as ELF or app image.
///
/// ```
/// # use ota_testkit::{Chip, TestFirmware};
/// let fw = TestFirmware::new(Chip::Esp32c3)
///     .version("1.2.0")
///     .trusted_keys(&[[7; 32]])
///     .payload_size(200_000)
///     .seed(7);
/// let elf = fw.elf();
/// let image = fw.app_image();
/// # assert!(elf.len() > 200_000 && image.len() > 200_000);
/// ```
#[derive(Clone, Debug)]
pub struct TestFirmware {
    chip: Chip,
    version: String,
    project_name: String,
    secure_version: u32,
    keys: Vec<[u8; 32]>,
    payload_size: usize,
    seed: u64,
    app_descriptor: bool,
    metadata: bool,
    markers: Vec<Vec<u8>>,
}

/// One allocated section of the firmware, at its run address.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TestSection {
    /// Section name, as a linker would call it.
    pub name: &'static str,
    /// Run address.
    pub addr: u32,
    /// Contents (a multiple of 4 bytes long).
    pub data: Vec<u8>,
    /// Executable (code) rather than data.
    pub exec: bool,
    /// Writable (RAM data).
    pub write: bool,
}

const DATA_LEN: usize = 1024;
const RWTEXT_LEN: usize = 512;

impl TestFirmware {
    /// A firmware for `chip`: version `0.1.0`, project `ota-test-app`, 64 KiB payload,
    /// seed 0, with an app descriptor and esp-hal build metadata, without trusted keys.
    pub fn new(chip: Chip) -> Self {
        TestFirmware {
            chip,
            version: "0.1.0".into(),
            project_name: "ota-test-app".into(),
            secure_version: 0,
            keys: Vec::new(),
            payload_size: 64 * 1024,
            seed: 0,
            app_descriptor: true,
            metadata: true,
            markers: Vec::new(),
        }
    }

    /// The version string in the app descriptor (at most 31 bytes; not checked for semver
    /// so that tests can build bad ones).
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    /// The project name in the app descriptor (at most 31 bytes).
    pub fn project_name(mut self, name: &str) -> Self {
        self.project_name = name.into();
        self
    }

    /// ESP-IDF secure version in the app descriptor.
    pub fn secure_version(mut self, secure_version: u32) -> Self {
        self.secure_version = secure_version;
        self
    }

    /// Embeds a trusted-key descriptor with these raw Ed25519 public keys (1 to 8).
    pub fn trusted_keys(mut self, keys: &[[u8; 32]]) -> Self {
        self.keys = keys.to_vec();
        self
    }

    /// Bytes of code and read-only data filler (split 60/40 between `.text` and
    /// `.rodata`).
    pub fn payload_size(mut self, size: usize) -> Self {
        self.payload_size = size;
        self
    }

    /// Seed of the filler.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Embeds `text` as a NUL-terminated string in `.rodata`, right after the key
    /// descriptor and before the filler, the way a `static` string would land there.
    /// Tests use it to mark an image (e.g. the simulator's `OTA-SIM-BEHAVIOUR:hang`)
    /// without patching bytes into a built image; may be called more than once.
    pub fn marker(mut self, text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.markers.push(bytes);
        self
    }

    /// Leaves out the app descriptor, as in a firmware built without
    /// `esp_app_desc!()`.
    pub fn without_app_descriptor(mut self) -> Self {
        self.app_descriptor = false;
        self
    }

    /// Leaves out the `.espressif.metadata` section esp-hal adds (ESP-IDF C builds have
    /// none), so the chip can only be told from the ELF header and addresses.
    pub fn without_build_metadata(mut self) -> Self {
        self.metadata = false;
        self
    }

    /// The chip.
    pub fn chip(&self) -> Chip {
        self.chip
    }

    /// Whether `.espressif.metadata` is emitted.
    pub fn has_build_metadata(&self) -> bool {
        self.metadata
    }

    /// The entry point: the start of `.text`, as in esp-hal.
    pub fn entry(&self) -> u32 {
        self.chip.layout().irom
    }

    /// The app descriptor bytes, if the firmware has one.
    ///
    /// # Panics
    /// When the version or project name does not fit the descriptor.
    pub fn app_descriptor(&self) -> Option<[u8; 256]> {
        if !self.app_descriptor {
            return None;
        }
        let desc = AppDescriptor::new(&self.version, &self.project_name)
            .and_then(|d| d.with_build_time("00:00:00", "Jan  1 2025"))
            .and_then(|d| d.with_idf_ver("0.0.0"))
            .expect("version and project name fit esp_app_desc_t")
            .with_secure_version(self.secure_version)
            .with_mmu_page_size(16);
        Some(desc.to_bytes())
    }

    /// The encoded trusted-key descriptor, if keys were given.
    pub fn key_descriptor(&self) -> Option<Vec<u8>> {
        if self.keys.is_empty() {
            return None;
        }
        Some(TrustedKeyDescriptor::new(&self.keys).to_bytes().to_vec())
    }

    /// The allocated sections, flash first (descriptor first of all), then RAM.
    pub fn sections(&self) -> Vec<TestSection> {
        let layout = self.chip.layout();
        let mut sections = Vec::new();
        let mut rodata_addr = layout.drom;
        if let Some(desc) = self.app_descriptor() {
            sections.push(TestSection {
                name: ".flash.appdesc",
                addr: layout.drom,
                data: desc.to_vec(),
                exec: false,
                write: false,
            });
            rodata_addr += desc.len() as u32;
        }
        let rodata_len = align4(self.payload_size * 2 / 5);
        let text_len = align4(self.payload_size - self.payload_size * 2 / 5);
        let mut rodata = self.key_descriptor().unwrap_or_default();
        for m in &self.markers {
            rodata.extend_from_slice(m);
        }
        rodata.extend(filler(rodata_len, self.seed.wrapping_add(1)));
        rodata.resize(align4(rodata.len()), 0);
        sections.push(TestSection {
            name: ".rodata",
            addr: rodata_addr,
            data: rodata,
            exec: false,
            write: false,
        });
        sections.push(TestSection {
            name: ".text",
            addr: layout.irom,
            data: filler(text_len, self.seed.wrapping_add(2)),
            exec: true,
            write: false,
        });
        sections.push(TestSection {
            name: ".data",
            addr: layout.dram,
            data: filler(DATA_LEN, self.seed.wrapping_add(3)),
            exec: false,
            write: true,
        });
        sections.push(TestSection {
            name: ".rwtext",
            addr: layout.iram,
            data: filler(RWTEXT_LEN, self.seed.wrapping_add(4)),
            exec: true,
            write: false,
        });
        sections
    }

    /// The firmware as an ELF executable (see [`crate::elf`] for its shape).
    pub fn elf(&self) -> Vec<u8> {
        crate::elf::write(self)
    }

    /// The firmware as an ESP-IDF app image with a valid checksum and SHA-256.
    pub fn app_image(&self) -> Vec<u8> {
        crate::image::build(self)
    }
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}
