//! Instructions per byte of SHA-256 on RV32IMC, as the ESP32-C3 firmware hashes (sha2
//! 0.11, rolled-up rounds, 4 KiB updates): the difference between hashing 64 KiB and
//! 4 KiB, read from `minstret`, which qemu counts exactly with `-icount`. Prints over the
//! virt machine's UART and exits through its test device.
#![no_std]
#![no_main]

use core::arch::asm;

use sha2::{Digest, Sha256};

/// qemu virt: 16550 UART data register, and the SiFive test device (0x5555: exit 0).
const UART: *mut u8 = 0x1000_0000 as *mut u8;
const TEST_DEVICE: *mut u32 = 0x10_0000 as *mut u32;

const LEN: usize = 65536;
const CHUNK: usize = 4096;

fn put(s: &[u8]) {
    for &b in s {
        // SAFETY: the UART's data register on qemu's virt machine; writes only send a byte.
        unsafe { UART.write_volatile(b) }
    }
}

fn put_num(mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&buf[i..]);
}

fn instret() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reads two counter CSRs, no memory access.
    unsafe { asm!("csrr {0}, minstret", "csrr {1}, minstreth", out(reg) lo, out(reg) hi) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Instructions to hash `data` in `CHUNK`-sized updates and finish.
fn count(data: &[u8]) -> u64 {
    let start = instret();
    let mut hasher = Sha256::new();
    for chunk in data.chunks(CHUNK) {
        hasher.update(chunk);
    }
    let digest = hasher.finalize();
    let end = instret();
    core::hint::black_box(digest);
    end - start
}

#[riscv_rt::entry]
fn main() -> ! {
    let mut data = [0u8; LEN];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i * 7 + (i >> 8)) as u8;
    }
    let data = core::hint::black_box(&data);
    let small = count(&data[..CHUNK]);
    let large = count(data);
    put(b"SHA-256 of 4096 B: ");
    put_num(small);
    put(b" instructions\nSHA-256 of 65536 B: ");
    put_num(large);
    put(b" instructions\nper byte (difference): ");
    let milli = (large - small) * 1000 / (LEN - CHUNK) as u64;
    put_num(milli / 1000);
    put(b".");
    put_num(milli % 1000 / 100);
    put(b"\n");
    // SAFETY: the test device's register; this write ends qemu with status 0.
    unsafe { TEST_DEVICE.write_volatile(0x5555) };
    halt()
}

/// Never reached once the test device is written.
fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    put(b"panic\n");
    // SAFETY: as above; 0x3333 ends qemu with a failure status.
    unsafe { TEST_DEVICE.write_volatile(0x3333) };
    halt()
}
