//! `ota-sign publish` to a directory as real processes: publishers racing for one channel
//! (exactly one wins, the other exits 7 and changes nothing), Ctrl-C and SIGTERM
//! mid-upload (no temporary file, no lock left, the host unchanged), progress bars only
//! on a terminal, and a `--repo` that is not a release tree.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Test hook of the directory writer: milliseconds to pause after each 64 KiB, so a
/// publish can be caught mid-file.
const WRITE_DELAY: &str = "OTA_SIGN_TEST_WRITE_DELAY_MS";
/// The publish lock a directory publish holds.
const LOCK: &str = ".ota-publish.lock";
/// How temporary files start.
const TEMP: &str = ".ota-tmp-";

/// Packages lamp at `version` and releases it to stable into the tree `tree`.
fn release_into(s: &Scratch, pk: [u8; 32], tree: &str, version: &str, seed: u64) {
    let out = format!("lamp-{version}.ota");
    s.package("release", pk, &Build::new("lamp", version).seed(seed), &out);
    s.ok(&[
        "release",
        "--key",
        "release.key",
        "--repo",
        tree,
        "--channel",
        "stable",
        &out,
    ]);
}

fn publish_cmd(s: &Scratch, tree: &str, to: &str, delay_ms: u64) -> Command {
    let mut c = s.cmd(&["publish", "--repo", tree, "--to", to, "-q"]);
    c.env(WRITE_DELAY, delay_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits (bounded) for `child` to end and returns its output.
fn finish(child: Child) -> Output {
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let start = Instant::now();
    while !waiter.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "publish {pid} did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// Name and bytes of every file in `dir`, sorted.
fn contents(s: &Scratch, dir: &str) -> Vec<(String, Vec<u8>)> {
    s.listing(dir)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(s.path(dir).join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn racing_publishers_to_one_directory_exactly_one_wins() {
    // Two trees that each moved lamp/stable to sequence 1, with different releases.
    let s = Scratch::new();
    let pk = s.keygen("release");
    release_into(&s, pk, "tree-a", "1.0.0", 1);
    release_into(&s, pk, "tree-b", "1.1.0", 2);
    const PAIRS: usize = 6;
    for pair in 0..PAIRS {
        let www = format!("www{pair}");
        // Writes slowed to 100 ms a file, so the two overlap whichever starts first.
        let a = publish_cmd(&s, "tree-a", &www, 100).spawn().unwrap();
        let b = publish_cmd(&s, "tree-b", &www, 100).spawn().unwrap();
        let (a, b) = (finish(a), finish(b));
        let codes = [a.status.code(), b.status.code()];
        let (winner, loser) = match codes {
            [Some(0), Some(CONFLICT)] => ("tree-a", &b),
            [Some(CONFLICT), Some(0)] => ("tree-b", &a),
            _ => panic!(
                "pair {pair}: exit codes {codes:?}, want one 0 and one 7\n{}\n{}",
                String::from_utf8_lossy(&a.stderr),
                String::from_utf8_lossy(&b.stderr)
            ),
        };
        let said = String::from_utf8_lossy(&loser.stderr);
        assert!(
            said.contains("another publish is running")
                || said.contains("moved this channel ahead"),
            "{said}"
        );
        // Exactly the winner's release is served, and nothing of the loser's.
        assert_eq!(contents(&s, &www), contents(&s, winner), "pair {pair}");
    }
}

#[test]
fn interrupted_directory_publish_leaves_no_temporary_file_nor_lock() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    release_into(&s, pk, TREE, "1.0.0", 1);
    s.ok(&["publish", "--repo", TREE, "--to", "www", "-q"]);
    let before = contents(&s, "www");
    release_into(&s, pk, TREE, "1.1.0", 2);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        // Each 64 KiB then waits a minute: the signal lands mid-image.
        let child = publish_cmd(&s, TREE, "www", 60_000).spawn().unwrap();
        wait_until("the publish writes its first temporary file", || {
            s.listing("www").iter().any(|n| n.starts_with(TEMP))
        });
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = finish(child);
        assert_eq!(out.status.code(), Some(code), "SIG{signal}");
        assert_eq!(
            contents(&s, "www"),
            before,
            "SIG{signal}: the host is unchanged"
        );
        assert!(!s.path("www").join(LOCK).exists());
    }
}

#[test]
fn a_repo_that_is_not_a_release_tree_is_refused() {
    let s = Scratch::new();
    std::fs::create_dir(s.path("empty")).unwrap();
    std::fs::create_dir(s.path("notes")).unwrap();
    s.write("notes/README.md", b"not a release");
    for repo in ["empty", "notes"] {
        let err = s.fails(&["publish", "--repo", repo, "--to", "www"], USAGE);
        assert!(err.contains("not a release tree"), "{err}");
        assert!(err.contains(".manifest"), "says what a tree holds: {err}");
    }
    assert_absent(&s.path("www"));
}

/// Runs `args` under a pseudo-terminal (`script`), as a person at a terminal would, and
/// returns what the terminal showed.
fn on_terminal(s: &Scratch, args: &[&str], delay_ms: u64) -> String {
    let command = std::iter::once(BIN)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(s.path(""))
        .env(WRITE_DELAY, delay_ms.to_string())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux runs commands under a terminal");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn upload_progress_is_drawn_on_a_terminal_only() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    release_into(&s, pk, TREE, "1.0.0", 1);
    let image = s
        .listing(TREE)
        .into_iter()
        .find(|n| n.ends_with(".ota"))
        .unwrap();

    // A second per 64 KiB: the bar is drawn, and redrawn, while the image is on its way.
    let shown = on_terminal(&s, &["publish", "--repo", TREE, "--to", "www1"], 1_000);
    assert!(shown.contains("KiB/"), "bytes done of total: {shown}");
    // The bar's first draw says the size ("0 B/12.07 KiB"); the upload then shows it
    // written while the file is still on its way, again at every redraw, not only once
    // at the end.
    let bar = &shown[shown
        .find(&format!("{image} ["))
        .expect("a bar for the image")..];
    let total = bar
        .split("0 B/")
        .nth(1)
        .unwrap()
        .split(' ')
        .take(2)
        .collect::<Vec<_>>();
    let written = format!("{0}/{0}", total.join(" "));
    let draws = shown.matches(&written).count();
    assert!(draws >= 3, "{draws} draws of {written}: {shown:?}");

    let json = on_terminal(
        &s,
        &["publish", "--repo", TREE, "--to", "www2", "--json"],
        100,
    );
    assert!(!json.contains("KiB/"), "--json prints data only: {json}");

    let publish = ["publish", "--repo", TREE, "--to", "www3"];
    let (_, stderr) = s.run_env(&publish, &[(WRITE_DELAY, "100")], 0);
    assert!(stderr.is_empty(), "not a terminal: nothing extra\n{stderr}");
}

#[test]
fn a_lock_left_by_a_dead_publish_is_taken_over_and_reported() {
    let s = Scratch::new();
    let pk = s.keygen("release");
    release_into(&s, pk, TREE, "1.0.0", 1);
    std::fs::create_dir(s.path("www")).unwrap();
    // What a publish killed with SIGKILL on this machine leaves: its lock, its pid gone.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead = format!(
        "pid 4294967295\nhost {}\nsince 2026-01-01T00:00:00Z\ntoken dead\n",
        host.trim()
    );
    s.write(&format!("www/{LOCK}"), dead.as_bytes());
    let out = s.run(&["publish", "--repo", TREE, "--to", "www"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("took over the publish lock of pid 4294967295")
            && said.contains("its process is gone"),
        "{said}"
    );
    assert_eq!(contents(&s, "www"), contents(&s, TREE));
}
