//! Device side of ota-sign: the update agent and the parts of it that live next to
//! the ESP-IDF boot flow.
//!
//! * [`otadata`]: the two-sector `otadata` partition, byte-exact with ESP-IDF.
//! * [`geometry`] and [`partition_table`]: where otadata and the app slots live.
//! * [`boot`]: the application's view (switch slot, confirm, roll back, count
//!   trial boots) generic over `embedded-storage` NOR flash. Switching takes the
//!   proof an install returns ([`boot::VerifiedSlot`], from [`install::InstalledImage`]);
//!   [`unverified`] is the explicit way round it for hosts and simulators.
//! * [`bootloader`]: the stock ESP-IDF second-stage bootloader's otadata rules,
//!   so a simulator (or a test) can reproduce what the real bootloader does.
//! * [`agent`]: an explicit state machine (its phase is [`status::UpdateState`]):
//!   trial handling at boot, then check → decide → [`download`] → [`install`] → switch,
//!   with the persistent [`state`], the [`status`] report (R6) and its [`error`], over
//!   the [`http`] trait,
//!   which [`http1`] implements over any byte-stream connection (with the `tls`
//!   feature, `https://` too: TLS 1.3 by embedded-tls).
//! * [`watchdog`]: when the firmware may feed the chip's watchdog (trial verdict and
//!   update-loop deadlines).
//! * [`contents`]: the rules the installed bytes must pass before a switch, shared
//!   with `ota-sign` so the host refuses exactly what devices refuse.
//!
//! Everything is `no_std`. The boot-slot modules never allocate and use caller-owned
//! stack buffers of at most 64 bytes. The update path works in caller-provided
//! buffers ([`agent::UpdateBuffers`]) too, and allocates nothing: the zstd decoder
//! ([`zstd`], ota-zstd) keeps 4 KiB of its window in RAM and reads the rest back from
//! flash, so the path's RAM is the same for every window and image size. `tests/ram.rs`
//! measures it (bound: 32 KiB). `alloc` is only used by host-side helpers
//! ([`contents::check_payload`]).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot;
pub mod bootloader;
pub mod crc;
pub mod geometry;
mod io;
pub mod otadata;
pub mod partition_table;
// agent: the update path
extern crate alloc;
pub mod agent;
pub mod contents;
pub mod download;
pub mod error;
pub mod http;
pub mod http1;
pub mod identity;
pub mod install;
pub mod release_retry;
pub mod secure_boot;
pub mod sntp;
pub mod state;
pub mod status;
pub mod unverified;
pub mod url;
pub mod watchdog;
pub mod zstd;

pub use boot::{BootAttempt, BootConfig, BootError, BootState, BootloaderMode};
pub use geometry::{BootTarget, Geometry, GeometryError, Region};
pub use otadata::{OtaSelectEntry, OtaState};
