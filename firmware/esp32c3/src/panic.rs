//! Any panic resets the chip. esp-backtrace's handler would print and then spin with
//! interrupts off forever: a device that panicked over https (a hostile TLS record, say)
//! would stay dead until someone power-cycled it. Here the report is printed (message and
//! backtrace addresses, as esp-backtrace prints them) and the chip resets at once; the
//! next boot counts as a trial attempt if this was a trial boot. Exceptions (illegal
//! instruction, stack overflow, ...) reach this handler too: esp-hal turns them into
//! panics. If printing itself panics, the second panic resets without printing.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use esp_println::println;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn reset_on_panic(info: &PanicInfo) -> ! {
    // Single core, and no atomic swap on this target: a load and a store suffice.
    if !PANICKING.load(Ordering::Relaxed) {
        PANICKING.store(true, Ordering::Relaxed);
        println!("\n====================== PANIC: resetting ======================");
        println!("{info}");
        println!("Backtrace:");
        for frame in esp_backtrace::Backtrace::capture().frames() {
            println!("0x{:x}", frame.program_counter());
        }
    }
    esp_hal::system::software_reset()
}
