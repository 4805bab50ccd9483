//! The device's install pipeline (verify, zstd decode, NOR flash writes) built for the
//! ESP32-C3's instruction set (RV32IMC) and run under `qemu-system-riscv32 -machine virt`,
//! to count what an install costs the chip: retired instructions per installed byte,
//! stack high-water mark, heap (none: no allocator is linked) and the pipeline's state.
//!
//! The input file (from `firmware/install-cost/inputs`) comes in through semihosting;
//! the report goes out as `key=value` lines; the exit status is 0 for an accepted install,
//! 1 for a refused one. `scripts/install-cost.sh` builds, runs and checks it.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod flash;
mod input;
mod pipeline;
mod report;
mod rt;

use core::mem::size_of;

use ota_format::{ImageVerifier, TrustedKey};

use crate::flash::RamFlash;
use crate::input::Input;
use crate::pipeline::{CHUNK, Failure, InstallDecoder, READBACK};
use crate::report::value;

/// The key the generator signs with: test vector key A, whose private half is public.
const TRUSTED_KEY_HEX: &str =
    include_str!("../../../../format/tests/vectors/keys/TEST-ONLY-key-a.public.hex");

fn main() -> ! {
    match run() {
        Ok(()) => {
            value("result", "ok");
            rt::exit(0)
        }
        Err(failure) => {
            report::line(format_args!("result=FAIL {failure}"));
            rt::exit(1)
        }
    }
}

fn run() -> Result<(), Failure> {
    let mut cmdline = [0u8; 512];
    let path = rt::cmdline(&mut cmdline)
        .and_then(|line| line.split_ascii_whitespace().last())
        .ok_or(Failure::Input(
            "usage: ota-install-cost INPUT (semihosting arguments)",
        ))?;
    let mut path_z = [0u8; 400];
    let path_z = path_z
        .get_mut(..path.len() + 1)
        .ok_or(Failure::Input("input path too long"))?;
    path_z[..path.len()].copy_from_slice(path.as_bytes());
    path_z[path.len()] = 0;

    let buffers = rt::buffers().ok_or(Failure::Input("buffers taken twice"))?;
    let file =
        rt::read_file(path_z, buffers.input).ok_or(Failure::Input("cannot read the input file"))?;
    let input = Input::parse(file)?;
    let keys = [TrustedKey::new(parse_key(TRUSTED_KEY_HEX)?)];
    let mut flash = RamFlash::new(buffers.flash);

    let (loop_count, empty) = rt::calibrate();
    value("counter_check", loop_count - empty);
    value("counter_overhead", empty);

    // Pass 1: the totals and the stack, nothing metered inside the flash driver.
    let painted_sp = rt::paint_stack();
    let cost = pipeline::install(&input, &mut flash, &keys, false)?;
    let (low_water, overflowed) = rt::stack_low_water(painted_sp);
    if overflowed {
        return Err(Failure::Input("the stack overflowed its 128 KiB region"));
    }
    // Pass 2: the same install again, with the flash driver's share of decoding (and of a
    // difference delta's patch pass) metered.
    let meter = pipeline::install(&input, &mut flash, &keys, true)?;

    value(
        "kind",
        match input {
            Input::Full { .. } => "full",
            Input::Delta(_) => "delta",
            Input::Difference { .. } => "difference",
        },
    );
    value("fed_bytes", cost.fed);
    value("decoded_bytes", cost.decoded);
    value("installed_bytes", cost.installed);
    value("instret_total", cost.total);
    value("instret_header", cost.header);
    value("instret_payload_sha", cost.payload_sha);
    value("instret_decode", cost.decode);
    value("instret_readback", cost.readback);
    value("instret_flash_write", meter.flash.write);
    value("instret_flash_read", meter.flash.read);
    value("flash_read_calls", meter.flash.read_calls);
    value("flash_read_bytes", meter.flash.read_bytes);
    // A difference delta's pass 2 (zero for the other kinds).
    value("instret_patch", cost.patch);
    value("instret_patch_flash_write", meter.patch_flash.write);
    value("instret_patch_flash_read", meter.patch_flash.read);
    value("patch_flash_read_calls", meter.patch_flash.read_calls);
    value("patch_flash_read_bytes", meter.patch_flash.read_bytes);
    value("stack_high_water", painted_sp - low_water);
    value(
        "state_verifier",
        size_of::<ImageVerifier<'static, 'static>>(),
    );
    value("state_decoder", size_of::<InstallDecoder>());
    value("state_chunk", CHUNK);
    value("state_readback", READBACK);
    // No global allocator is linked: anything that allocated would not build.
    value("heap_peak", 0);
    Ok(())
}

fn parse_key(hex: &str) -> Result<[u8; 32], Failure> {
    const BAD: Failure = Failure::Input("the trusted key is not 64 hex digits");
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return Err(BAD);
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        let text = core::str::from_utf8(pair).map_err(|_| BAD)?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| BAD)?;
    }
    Ok(key)
}
