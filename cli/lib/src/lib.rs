//! The library under `ota-sign`: everything the commands do that is not arguments,
//! progress display or messages, so tests, the demo and other tools can call it.
//!
//! | module        | job                                                                  |
//! |---------------|----------------------------------------------------------------------|
//! | [`input`]     | firmware input: an ELF or app image loaded as a checked app image    |
//! | [`packaging`] | a loaded firmware signed into an OTA image (and checked as devices do) |
//! | [`trust`]     | a signed image or manifest checked as a device would check it        |
//! | [`flash`]     | first install: partition table, bootloader, writes (serial or file)  |
//! | [`repo`]      | the local release tree: file names, channel manifests, index         |
//! | [`publish`]   | uploading a release tree to a directory, S3 or GitHub Releases      |
//! | [`fleet`]     | the fleet's state from the hosts' access logs and download counts   |
//! | [`progress`]  | the progress callbacks long jobs report through                      |
//! | [`interrupt`] | files removed on Ctrl-C/SIGTERM while a job writes them              |
//! | [`devices`]   | what each device type decodes: agent generation, zstd window         |
//! | [`delta`]     | signed deltas from a running image to a new one, self-checked        |
//!
//! Errors are typed (`thiserror`) and deliberately not `#[non_exhaustive]`: the binary
//! maps every variant to a diagnostic and an exit code without a wildcard, so a new
//! variant does not build until someone decides what it means to a script.
#![forbid(unsafe_code)]

pub mod flash;
pub mod input;
pub mod interrupt;
pub mod packaging;
pub mod progress;
// Reads access logs from S3 and download counts from GitHub: the publish hosts' clients.
pub mod delta;
pub mod devices;
#[cfg(feature = "publish")]
pub mod fleet;
#[cfg(feature = "publish")]
pub mod publish;
pub mod repo;
pub mod trust;
