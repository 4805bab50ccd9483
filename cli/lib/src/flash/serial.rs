//! Writing a plan to a device over a serial port: a thin layer over espflash's
//! [`Flasher`], which does the protocol, the stub, compression and verification.
//! Nothing here can be tested without a board; everything it writes comes from a
//! [`super::Plan`], which the `--output` path writes (and the tests check) byte by byte.

use std::borrow::Cow;

use espflash::connection::{Connection, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::Flasher;
use espflash::image_format::Segment;
use espflash::target::{ProgressCallbacks, XtalFrequency};
use ota_format::ChipId;
use serialport::{FlowControl, SerialPortType, UsbPortInfo};

use super::FlashError;
use super::bootloader::esp_chip;
use super::plan::Write;
use crate::progress::Progress;

/// The ROM bootloader always starts at this rate; espflash raises it afterwards.
const CONNECT_BAUD: u32 = 115_200;

/// A chip in download mode behind a serial port.
pub struct SerialDevice {
    flasher: Flasher,
    port: String,
}

impl SerialDevice {
    /// Opens `port`, resets the chip into download mode and checks it is `chip`.
    pub fn connect(port: &str, baud: Option<u32>, chip: ChipId) -> Result<Self, FlashError> {
        let fail = |e: espflash::Error| FlashError::Serial {
            port: port.to_owned(),
            reason: e.to_string(),
        };
        let esp = esp_chip(chip).ok_or_else(|| FlashError::Bootloader {
            chip: chip.to_string(),
            reason: "espflash does not know this chip".into(),
        })?;
        let serial = serialport::new(port, CONNECT_BAUD)
            .flow_control(FlowControl::None)
            .open_native()
            .map_err(|e| FlashError::Port {
                port: port.to_owned(),
                reason: e.to_string(),
            })?;
        let connection = Connection::new(
            serial,
            usb_info(port),
            ResetAfterOperation::HardReset,
            ResetBeforeOperation::DefaultReset,
            CONNECT_BAUD,
        );
        // verify = true: espflash compares an MD5 of each region after writing it.
        let flasher =
            Flasher::connect(connection, true, true, false, Some(esp), baud).map_err(fail)?;
        Ok(SerialDevice {
            flasher,
            port: port.to_owned(),
        })
    }

    fn fail(&self, e: espflash::Error) -> FlashError {
        FlashError::Serial {
            port: self.port.clone(),
            reason: e.to_string(),
        }
    }

    /// The flash size the chip reports, and its crystal.
    pub fn probe(&mut self) -> Result<(u32, XtalFrequency), FlashError> {
        let info = self.flasher.device_info().map_err(|e| self.fail(e))?;
        Ok((info.flash_size.size(), info.crystal_frequency))
    }

    /// Writes every region, then resets the chip into the new firmware.
    pub fn write(&mut self, writes: &[Write], progress: &dyn Progress) -> Result<(), FlashError> {
        let segments: Vec<Segment<'_>> = writes
            .iter()
            .map(|w| Segment {
                addr: w.offset,
                data: Cow::Borrowed(&w.bytes),
            })
            .collect();
        self.flasher
            .write_bins_to_flash(&segments, &mut Regions::new(progress))
            .map_err(|e| self.fail(e))
    }

    /// The port name.
    pub fn port(&self) -> &str {
        &self.port
    }
}

/// espflash's progress reports as [`Progress`], one piece of work per region, named by
/// its offset (`0x10000`).
struct Regions<'a> {
    progress: &'a dyn Progress,
    current: Option<String>,
}

impl<'a> Regions<'a> {
    fn new(progress: &'a dyn Progress) -> Self {
        Regions {
            progress,
            current: None,
        }
    }
}

impl ProgressCallbacks for Regions<'_> {
    fn init(&mut self, addr: u32, total: usize) {
        let region = format!("{addr:#x}");
        self.progress.start(&region, total as u64);
        self.current = Some(region);
    }

    fn update(&mut self, current: usize) {
        if let Some(region) = &self.current {
            self.progress.advance(region, current as u64);
        }
    }

    fn verifying(&mut self) {}

    fn finish(&mut self, _skipped: bool) {
        if let Some(region) = self.current.take() {
            self.progress.finish(&region);
        }
    }
}

/// USB ids of the port when the system knows them: espflash resets chips on their
/// built-in USB-Serial-JTAG (ESP32-C3, -C6, -S3, ...) differently from a USB-UART bridge.
fn usb_info(port: &str) -> UsbPortInfo {
    let unknown = UsbPortInfo {
        vid: 0,
        pid: 0,
        serial_number: None,
        manufacturer: None,
        product: None,
    };
    // serialport's Linux scan panics when /sys/class/tty is missing (some containers).
    if cfg!(target_os = "linux") && !std::path::Path::new("/sys/class/tty").is_dir() {
        return unknown;
    }
    serialport::available_ports()
        .ok()
        .into_iter()
        .flatten()
        .find(|p| p.port_name == port)
        .and_then(|p| match p.port_type {
            SerialPortType::UsbPort(info) => Some(info),
            _ => None,
        })
        .unwrap_or(unknown)
}
