//! Killing `ota-device-sim` (the real binary) at any moment of a save leaves a flash file
//! that loads and boots: the simulator keeps its flash the way real flash keeps its
//! contents across a power cut.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ota_device_sim::SimFlash;
use support::sim_run;

/// Kills, spread evenly over the time a save takes.
const KILLS: u32 = 24;
const FLASH_SIZE: &str = "4194304";
/// Never fetched: the runs stop before their first check.
const UNUSED_MANIFEST_URL: &str = "http://127.0.0.1:9/sensor.stable.manifest";

/// One run that boots, makes no check, saves the flash and exits: its one line of output
/// (`boot running ...`) comes just before the save.
fn boot_and_save(dir: &Path) -> Command {
    let mut command = sim_run(dir, FLASH_SIZE, UNUSED_MANIFEST_URL);
    command.args(["--device-id", "dev-1", "--max-checks", "0"]);
    command
}

/// Starts [`boot_and_save`] and returns once it printed its boot line, that is when it
/// is about to save.
fn start_until_saving(dir: &Path) -> (std::process::Child, Instant) {
    let mut child = boot_and_save(dir).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("boot running"), "{line:?}");
    (child, Instant::now())
}

fn assert_loads_and_boots(dir: &Path, after: &str) {
    if let Err(e) = SimFlash::load(&dir.join("flash.bin")) {
        panic!("{after}: the flash file no longer loads: {e}");
    }
    let out = boot_and_save(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("boot running ota_0 version 1.0.0"),
        "{after}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killed_while_saving_the_flash_file_still_loads_and_boots() {
    let dir = tempfile::tempdir().unwrap();
    let created = boot_and_save(dir.path()).output().unwrap();
    assert!(created.status.success(), "creating the flash: {created:?}");
    // How long a save takes, from the boot line to the exit.
    let (mut clean, saving) = start_until_saving(dir.path());
    assert!(clean.wait().unwrap().success());
    let save_time = saving.elapsed().max(Duration::from_millis(1));
    for kill in 0..KILLS {
        let after = save_time * kill / KILLS;
        let (mut child, saving) = start_until_saving(dir.path());
        std::thread::sleep(after.saturating_sub(saving.elapsed()));
        let _ = child.kill();
        child.wait().unwrap();
        assert_loads_and_boots(
            dir.path(),
            &format!("killed {after:?} into a save of {save_time:?}"),
        );
    }
    // A killed save leaves at most its one temporary file beside the flash and the app.
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(files <= 3, "{files} files");
}
