//! The whole runtime, and the only unsafe code of the harness: no runtime crate, because
//! the harness needs exactly four things from the machine and each is a few instructions.
//!
//! - the entry (`_start`): stack pointer, zeroed `.bss`, a trap vector, then [`crate::main`];
//! - Arm-style semihosting (the RISC-V `slli; ebreak; srai` sequence), which qemu answers
//!   on the host: the input file, the report, the exit status;
//! - `minstret`, the retired-instruction counter (exact under `qemu -icount shift=0`);
//! - stack painting and scanning for the high-water mark, which must touch memory below
//!   the stack pointer that Rust does not own.
//!
//! Unsafe is needed for each (inline asm, raw reads of the stack region, the two large
//! buffers handed out once as `&'static mut`). Single hart, no interrupts: nothing here
//! runs concurrently.
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};

/// What painted stack words hold until something writes them.
const PAINT: u32 = 0xA5A5_A5A5;

global_asm!(
    r#"
    .section .text.start, "ax"
    .global _start
_start:
    .option push
    .option norelax
    la sp, _stack_top
    .option pop
    la t0, _sbss
    la t1, _ebss
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  la t0, __trap
    csrw mtvec, t0
    call __harness_entry
3:  j 3b

    /* Any trap (ebreak without semihosting, an access fault): exit with status 99. */
    .balign 4
__trap:
    li a0, 0x20
    la a1, __trap_exit_block
    call __semihost
4:  j 4b

    /* qemu recognises a semihosting call only as these three uncompressed instructions
       in one page: 16-byte alignment keeps them together. */
    .balign 16
    .global __semihost
__semihost:
    .option push
    .option norvc
    slli zero, zero, 0x1f
    ebreak
    srai zero, zero, 7
    .option pop
    ret

    /* Paints [_stack_bottom, sp) with the pattern; returns sp. Uses no stack itself. */
    .global __paint_stack
__paint_stack:
    la t0, _stack_bottom
    li t1, {paint}
5:  bgeu t0, sp, 6f
    sw t1, 0(t0)
    addi t0, t0, 4
    j 5b
6:  mv a0, sp
    ret

    /* A loop of exactly 1 + 2 * 1000 instructions, to check what minstret counts. */
    .global __calibration_loop
__calibration_loop:
    li t0, 1000
7:  addi t0, t0, -1
    bnez t0, 7b
    ret

    .section .rodata
    .balign 4
__trap_exit_block:
    .word 0x20026, 99
"#,
    paint = const PAINT,
);

unsafe extern "C" {
    fn __semihost(op: usize, arg: usize) -> isize;
    fn __paint_stack() -> usize;
    fn __calibration_loop();
    static _stack_bottom: u32;
}

#[unsafe(no_mangle)]
extern "C" fn __harness_entry() -> ! {
    crate::main()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::report::line(format_args!("result=FAIL panic: {info}"));
    exit(101)
}

const SYS_OPEN: usize = 0x01;
const SYS_CLOSE: usize = 0x02;
const SYS_WRITE0: usize = 0x04;
const SYS_READ: usize = 0x06;
const SYS_FLEN: usize = 0x0C;
const SYS_GET_CMDLINE: usize = 0x15;
const SYS_EXIT_EXTENDED: usize = 0x20;
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

fn semihost(op: usize, args: &[usize]) -> isize {
    // SAFETY: qemu reads (and for reads, writes) only the block and the buffers it names,
    // all of which the caller borrows for the duration of the call.
    unsafe { __semihost(op, args.as_ptr() as usize) }
}

/// Prints a NUL-terminated string on qemu's standard output.
pub fn write0(text: &[u8]) {
    assert_eq!(
        text.last(),
        Some(&0),
        "write0 needs a NUL-terminated string"
    );
    // SAFETY: SYS_WRITE0 reads the string up to its NUL, which the assert guarantees.
    unsafe { __semihost(SYS_WRITE0, text.as_ptr() as usize) };
}

/// Ends qemu with `code` as its exit status.
pub fn exit(code: usize) -> ! {
    semihost(SYS_EXIT_EXTENDED, &[ADP_STOPPED_APPLICATION_EXIT, code]);
    loop {
        core::hint::spin_loop();
    }
}

/// The command line qemu was given (`-semihosting-config ...,arg=...`), into `buf`.
pub fn cmdline(buf: &mut [u8]) -> Option<&str> {
    let block = [buf.as_mut_ptr() as usize, buf.len()];
    if semihost(SYS_GET_CMDLINE, &block) != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&buf[..len]).ok()
}

/// Reads the host file at `path` (NUL-terminated) into `buf`; returns its length.
pub fn read_file<'b>(path: &[u8], buf: &'b mut [u8]) -> Option<&'b mut [u8]> {
    let name_len = path.iter().position(|&b| b == 0)?;
    // Mode 1 is "rb".
    let handle = semihost(SYS_OPEN, &[path.as_ptr() as usize, 1, name_len]);
    if handle < 0 {
        return None;
    }
    let handle = handle as usize;
    let len = usize::try_from(semihost(SYS_FLEN, &[handle])).ok()?;
    let result = (len <= buf.len()).then(|| {
        // SYS_READ returns the number of bytes it did not read.
        semihost(SYS_READ, &[handle, buf.as_mut_ptr() as usize, len]) == 0
    });
    semihost(SYS_CLOSE, &[handle]);
    if result == Some(true) {
        Some(&mut buf[..len])
    } else {
        None
    }
}

/// Retired instructions since reset (64-bit, from `minstreth:minstret`).
#[inline(always)]
pub fn instret() -> u64 {
    loop {
        let (hi, lo, hi2): (u32, u32, u32);
        // SAFETY: reading counter CSRs has no side effect; the harness runs in M-mode.
        unsafe {
            asm!(
                "csrr {0}, minstreth",
                "csrr {1}, minstret",
                "csrr {2}, minstreth",
                out(reg) hi, out(reg) lo, out(reg) hi2,
                options(nomem, nostack),
            )
        };
        if hi == hi2 {
            return (u64::from(hi) << 32) | u64::from(lo);
        }
    }
}

/// Instructions `minstret` counts around a loop of exactly 2,001 instructions, and around
/// nothing: their difference is 2,001 when the counter counts instructions exactly.
pub fn calibrate() -> (u64, u64) {
    let start = instret();
    let empty = instret() - start;
    let start = instret();
    // SAFETY: a leaf routine that only uses t0.
    unsafe { __calibration_loop() };
    (instret() - start, empty)
}

/// Paints the free stack below the caller; returns the stack pointer at the call.
pub fn paint_stack() -> usize {
    // SAFETY: paints only below the current stack pointer, which nothing live uses.
    unsafe { __paint_stack() }
}

/// The lowest stack address written since [`paint_stack`] (the first word that lost its
/// paint, scanning up from the bottom), and whether the bottom word itself was overwritten
/// (the stack may have overflowed).
pub fn stack_low_water(painted_sp: usize) -> (usize, bool) {
    let bottom = core::ptr::addr_of!(_stack_bottom) as usize;
    let mut address = bottom;
    while address < painted_sp {
        // SAFETY: an aligned address inside the stack region, below the stack pointer
        // the painting saw; reading it races with nothing (single hart, no interrupts).
        let word = unsafe { core::ptr::read_volatile(address as *const u32) };
        if word != PAINT {
            break;
        }
        address += 4;
    }
    (address, address == bottom)
}

/// The input file's buffer and the simulated flash: handed out once.
pub struct Buffers {
    /// The whole input file, as if downloaded (the device streams it instead).
    pub input: &'static mut [u8],
    /// The in-RAM NOR flash.
    pub flash: &'static mut [u8],
}

/// Largest input file.
pub const INPUT_CAPACITY: usize = 8 << 20;
/// Size of the simulated flash: two 4 MiB slots.
pub const FLASH_CAPACITY: usize = 8 << 20;

static mut INPUT: [u8; INPUT_CAPACITY] = [0; INPUT_CAPACITY];
static mut FLASH: [u8; FLASH_CAPACITY] = [0; FLASH_CAPACITY];
static mut TAKEN: bool = false;

/// The buffers; `None` after the first call.
pub fn buffers() -> Option<Buffers> {
    // SAFETY: single hart, no interrupts: TAKEN makes the two `&'static mut` unique.
    unsafe {
        if TAKEN {
            return None;
        }
        TAKEN = true;
        Some(Buffers {
            input: &mut *core::ptr::addr_of_mut!(INPUT),
            flash: &mut *core::ptr::addr_of_mut!(FLASH),
        })
    }
}
