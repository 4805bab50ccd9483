//! RAM of the whole update path, measured: the agent, its buffers, the `check` future
//! (every local that lives across an await: installer, verifier, downloader) and the
//! heap peak during a complete zstd install, counted by this binary's global allocator
//! (the agent allocates nothing; the peak proves it). One test only, so nothing else
//! allocates meanwhile.
//!
//! The budget, 32 KiB for every window and image size: the buffers are ota-zstd's
//! decoder (21,792 B: a 4 KiB ring that is also the sector buffer, an 8 KiB compressed
//! block that is also the read-back buffer, 9 KiB of Huffman and FSE tables) plus the
//! receive buffer (1 KiB), the manifest and the URL; the agent and the check future hold
//! the verifier, the installer (SHA-256 states, the app-image validator) and the
//! downloader. The window costs flash reads, not RAM.

use core::cell::Cell;

use ota_agent::agent::{
    Agent, AgentConfig, BootOutcome, DEFAULT_WINDOW_LOG, Firmware, MAX_WINDOW_LOG, UpdateBuffers,
    UpdateMemory,
};
use ota_agent::boot::BootConfig;
use ota_agent::download::RetryPolicy;
use ota_agent::geometry::{BootTarget, Geometry, Region};
use ota_agent::http::{HttpClient, HttpError, Request, ResponseHead};
use ota_agent::status::{CheckResult, UpdateVia};
use ota_format::{Channel, TrustedKeyDescriptor, Version};

mod common;

use common::heap_peak::{Counting, heap_peak_of};
use common::http::{NoDelay, SliceBody, Ticks};
use ota_flash_sim::SimFlash;
use ota_testkit::fixture::{self as ts, Spec};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Flash operations the simulator's log has room for before a measurement.
const LOGGED_OPERATIONS: usize = 4096;

const MANIFEST_URL: &str = "http://host/fw/sensor.stable.manifest";

/// Serves one manifest, one image and optionally one delta from memory, without
/// allocating per request; any other delta is a 404.
struct Host {
    manifest: Vec<u8>,
    image: Vec<u8>,
    delta: Option<(String, Vec<u8>)>,
}

impl HttpClient for Host {
    type Body<'c> = SliceBody<'c>;

    async fn get<'c>(
        &'c mut self,
        req: &Request<'_>,
    ) -> Result<(ResponseHead, SliceBody<'c>), HttpError> {
        let bytes = if req.url == MANIFEST_URL {
            &self.manifest
        } else if req.url.ends_with(".otad") {
            match &self.delta {
                Some((name, delta)) if req.url.ends_with(name.as_str()) => delta,
                _ => {
                    let head = ResponseHead {
                        status: 404,
                        ..ResponseHead::of_file(0, None, None)
                    };
                    return Ok((head, SliceBody(&[])));
                }
            }
        } else {
            &self.image
        };
        let head = ResponseHead::of_file(bytes.len() as u64, req.range_from, None);
        let from = req.range_from.unwrap_or(0) as usize;
        Ok((head, SliceBody(&bytes[from..])))
    }
}

/// A delta's payload encoding.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    /// 2: zstd against the base as its prefix.
    PatchFrom,
    /// 3: a difference stream, applied in place after decoding.
    Difference,
}

/// Runs one complete zstd update with `window_log` (method 2 when `flash_window`), from
/// a delta when `delta` says its encoding, and returns `(agent, check future, heap peak)`
/// in bytes.
fn measure(
    window_log: u8,
    flash_window: bool,
    delta: Option<Encoding>,
    buffers: UpdateBuffers<'_>,
) -> (usize, usize, usize) {
    let geometry = Geometry::new(
        Region::new(0xD000, 0x2000),
        None,
        &[
            Region::new(0x10000, 0x100000),
            Region::new(0x110000, 0x100000),
        ],
    )
    .unwrap();
    let mut flash = SimFlash::new(0x210000).require_erase_outside(0xD000..0xF000);
    // The simulator logs every operation; room made now keeps its log out of the heap
    // peak (checked below).
    flash.reserve_log(LOGGED_OPERATIONS);
    // A 600 KiB firmware: the RAM must not depend on the image size.
    let old = ts::app_image("1.0.0", 600_000);
    flash.bytes_mut()[0x10000..0x10000 + old.len()].copy_from_slice(&old);
    let spec = Spec {
        window_log: Some(window_log),
        flash_window,
        ..Spec::default()
    };
    let release = ts::release(&spec, ts::app_image("1.1.0", 600_000));
    let keys = TrustedKeyDescriptor::find_in(&old).unwrap().unwrap();
    let delta = delta.map(|encoding| {
        let build = match encoding {
            Encoding::PatchFrom => ota_testkit::delta::build_delta,
            Encoding::Difference => ota_testkit::delta::build_difference_delta,
        };
        let d = build(&old, &release, ota_testkit::release::SIGNER);
        (d.name, d.file)
    });
    let via = if delta.is_some() {
        UpdateVia::Delta
    } else {
        UpdateVia::Full
    };
    let host = Host {
        manifest: release.manifest,
        image: release.ota,
        delta,
    };
    let config = AgentConfig {
        manifest_url: MANIFEST_URL,
        device_id: b"device-1",
        channel: Channel::new("stable").unwrap(),
        geometry,
        state_region: Region::new(0xB000, 0x2000),
        boot: BootConfig::counting(3),
        retry: RetryPolicy::default(),
        max_window_log: window_log.min(MAX_WINDOW_LOG),
        generation: Default::default(),
        security_counter_floor: 0,
        identify: Default::default(),
    };
    let firmware = Firmware {
        device_type: ts::device_type(),
        chip: ts::chip(),
        version: Version::parse("1.0.0").unwrap(),
        trusted_keys: keys.keys(),
        running: BootTarget::Ota(0),
    };
    let mut sink = ();
    let ticks = Ticks(Cell::new(0));
    let (mut agent, outcome) = Agent::start(
        config, firmware, &mut flash, host, NoDelay, &ticks, buffers, &mut sink,
    )
    .unwrap();
    assert_eq!(outcome, BootOutcome::Normal);

    let fut = agent.check();
    let future = size_of_val(&fut);
    let (result, heap) = heap_peak_of(|| embassy_futures::block_on(fut));
    assert_eq!(
        result,
        Ok(CheckResult::Installed {
            version: Version::parse("1.1.0").unwrap()
        })
    );
    assert_eq!(agent.status().last_update.map(|u| u.via), Some(via));
    drop(agent);
    assert!(
        flash.log().len() <= LOGGED_OPERATIONS,
        "{} flash operations: the log grew inside the measurement",
        flash.log().len()
    );
    let agent = size_of::<Agent<'static, &mut SimFlash, Host, NoDelay, &Ticks>>();
    (agent, future, heap)
}

/// Measures the whole update path with `memory` and a `window_log` frame, prints its
/// parts and returns the total in bytes.
fn update_path_bytes(
    memory: &mut UpdateMemory,
    window_log: u8,
    flash_window: bool,
    delta: Option<Encoding>,
) -> usize {
    let buffers = size_of::<UpdateMemory>();
    let (agent, future, heap) = measure(window_log, flash_window, delta, memory.buffers());
    let total = agent + buffers + future + heap;
    let method = match (delta, flash_window) {
        (Some(Encoding::PatchFrom), _) => "delta (encoding 2)",
        (Some(Encoding::Difference), _) => "delta (encoding 3)",
        (None, true) => "method 2",
        (None, false) => "method 1",
    };
    eprintln!(
        "{method}, window 2^{window_log}: agent {agent} + buffers {buffers} + check future {future} + heap peak {heap} = {total} bytes"
    );
    total
}

#[test]
fn update_path_fits_32_kib_whatever_the_window() {
    let mut memory = Box::new(UpdateMemory::new());
    let mut totals = Vec::new();
    // The full image after a 404 for the delta, and a delta of each encoding (decoded
    // against the running slot, its window spanning base and target, 2^21 here; or
    // decoded alone, then applied in place).
    for (window_log, flash_window, delta) in [
        (DEFAULT_WINDOW_LOG, false, None),
        (MAX_WINDOW_LOG, false, None),
        (16, true, None),
        (20, true, None),
        (23, true, None),
        (20, true, Some(Encoding::PatchFrom)),
        (20, true, Some(Encoding::Difference)),
    ] {
        let total = update_path_bytes(&mut memory, window_log, flash_window, delta);
        assert!(
            total <= 32 * 1024,
            "window 2^{window_log}: update path needs {total} bytes"
        );
        totals.push(total);
    }
    // Constant: the window costs flash reads, not RAM.
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
}
