//! The whole path through the real binaries: `ota-sign keygen`, `package`, `flash
//! --output`, `release`, `publish` to a directory behind nginx, to s3s-fs and to the GitHub
//! fake; `ota-device-sim` devices booted from the flash image update from each host, and
//! their status says so. The real ESP32-C3 firmware ELF goes the same way when built.

use std::time::Duration;

use ota_e2e::firmware::{app, real_elf, test_key_pem};
use ota_e2e::{LiveDevice, Work, parse_hex32};
use ota_test_servers::github::FakeGitHub;
use ota_test_servers::nginx::Nginx;
use ota_test_servers::s3::{self, S3sFs};

const DT: &str = "e2e-node";
const MANIFEST: &str = "e2e-node.stable.manifest";

fn lines_contain(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

fn slot_versions(w: &Work, flash: &str) -> Vec<Option<String>> {
    w.flash_status(flash)["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["version"].as_str().map(str::to_owned))
        .collect()
}

struct Hosts {
    nginx: Nginx,
    s3: S3sFs,
    s3_front: Nginx,
    github: FakeGitHub,
}

impl Hosts {
    fn start(w: &Work) -> Option<Hosts> {
        let nginx = w.serve_www()?;
        let s3 = S3sFs::start(&["firmware"])?;
        // Devices read the bucket the way a CDN in front of it would: plain GETs of the
        // stored objects (s3s-fs keeps each object as a file), never through the S3 API.
        let s3_front = Nginx::serve(&s3.bucket_dir("firmware"))?;
        let github = FakeGitHub::start("acme", "fw", "t0k");
        Some(Hosts {
            nginx,
            s3,
            s3_front,
            github,
        })
    }

    fn publish(&self, w: &Work, tag: &str) {
        w.publish("repo", "www", &[], &[]);
        w.publish(
            "repo",
            "s3://firmware/prod",
            &[
                "--s3-endpoint",
                &self.s3.endpoint,
                "--s3-region",
                s3::REGION,
            ],
            &[
                ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
                ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
            ],
        );
        let github = [
            "--github-api-url",
            &self.github.api_url,
            "--github-tag",
            tag,
            // GitHub's pacing (1 s between writes) has its own test in the CLI.
            "--github-write-interval",
            "0s",
        ];
        w.publish(
            "repo",
            "github://acme/fw",
            &github,
            &[("GITHUB_TOKEN", "t0k")],
        );
    }

    /// (name, manifest URL) of each host.
    fn urls(&self) -> [(&'static str, String); 3] {
        [
            ("nginx", format!("{}/{MANIFEST}", self.nginx.url)),
            ("s3", format!("{}/prod/{MANIFEST}", self.s3_front.url)),
            ("github", self.github.latest_download_url(MANIFEST)),
        ]
    }
}

#[test]
fn devices_update_from_nginx_s3_and_github() {
    let w = Work::new();
    let Some(hosts) = Hosts::start(&w) else {
        return;
    };
    let pk = w.keygen("release");
    for v in ["1.0.0", "2.0.0"] {
        std::fs::write(w.path(&format!("{v}.bin")), app(DT, v, &[pk], None)).unwrap();
        let (app_file, out) = (format!("{v}.bin"), format!("{v}.ota"));
        w.package("release.key", DT, &app_file, &out, &[]);
    }
    w.flash_image("1.0.0.ota", "release.pub", "flash.bin");
    assert_eq!(slot_versions(&w, "flash.bin")[0].as_deref(), Some("1.0.0"));

    w.release("release.key", "repo", &["1.0.0.ota"]);
    hosts.publish(&w, "e2e-1");
    for (host, url) in hosts.urls() {
        let flash = format!("flash-{host}.bin");
        std::fs::copy(w.path("flash.bin"), w.path(&flash)).unwrap();
        let out = w.run_device(&flash, &url, 1);
        assert!(
            lines_contain(&out, r#"check {"result":"up_to_date"}"#),
            "{host}: {out:?}"
        );
    }

    w.release("release.key", "repo", &["2.0.0.ota"]);
    hosts.publish(&w, "e2e-2");
    for (host, url) in hosts.urls() {
        let flash = format!("flash-{host}.bin");
        let out = w.run_device(&flash, &url, 2);
        assert!(
            lines_contain(&out, r#"check {"result":"installed","version":"2.0.0"}"#),
            "{host}: {out:?}"
        );
        assert!(
            lines_contain(&out, "boot running ota_1 version 2.0.0"),
            "{host}: {out:?}"
        );
        let status = w.flash_status(&flash);
        assert_eq!(status["slots"][1]["version"], "2.0.0", "{host}: {status:#}");
        assert_eq!(status["slots"][0]["version"], "1.0.0", "{host}: {status:#}");
        assert_eq!(status["agent_state"]["pending"], serde_json::Value::Null);
        // The newest otadata entry points at ota_1 and the trial was confirmed.
        let entries = status["otadata"].as_array().unwrap();
        let newest = entries
            .iter()
            .filter(|e| e["crc_ok"] == true)
            .max_by_key(|e| e["seq"].as_u64())
            .unwrap();
        assert_eq!(newest["seq"], 2, "{host}: {status:#}");
        assert_eq!(newest["state"], "valid", "{host}: {status:#}");
    }

    // A device running in the background reports the update on its status endpoint.
    std::fs::copy(w.path("flash.bin"), w.path("flash-live.bin")).unwrap();
    let live = LiveDevice::start(&w, "flash-live.bin", &hosts.urls()[0].1, "0.2");
    let status = live.wait_for(Duration::from_secs(60), |s| {
        s["installed_version"] == "2.0.0" && s["update"]["state"] == "idle"
    });
    assert_eq!(status["running"]["slot"], "ota_1", "{status:#}");
    assert_eq!(status["device_type"], DT, "{status:#}");
    assert_eq!(status["trusted_keys"][0].as_str().map(str::len), Some(16));
}

#[test]
fn the_real_esp32c3_firmware_is_packaged_released_and_installed() {
    let Some(elf) = real_elf() else {
        return;
    };
    let w = Work::new();
    std::fs::write(w.path("test.key"), test_key_pem()).unwrap();
    let test_pk = parse_hex32(w.sign(&["pubkey", "--format", "hex", "test.key"]).trim());
    let elf_bytes = std::fs::read(&elf).unwrap();
    let descriptor = ota_format::TrustedKeyDescriptor::find_in(&elf_bytes)
        .expect("readable key descriptor")
        .expect("the firmware embeds a key descriptor");
    if !descriptor.keys().iter().any(|k| k.public_key == test_pk) {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI builds the firmware with the test key, but {} trusts other keys",
            elf.display()
        );
        eprintln!(
            "note: {} trusts other keys (OTA_TRUSTED_KEYS); skipped",
            elf.display()
        );
        return;
    }
    let device_type = "ota-esp32c3";
    // The test key's private half is public: ota-sign refuses it without the flag.
    w.sign(&[
        "package",
        "--allow-test-keys",
        "--key",
        "test.key",
        "--device-type",
        device_type,
        "--chip",
        "esp32c3",
        "--elf",
        &elf.display().to_string(),
        "-o",
        "real.ota",
    ]);
    let json = w.sign(&["--json", "inspect", "real.ota"]);
    let summary: serde_json::Value = serde_json::from_str(&json).expect("inspect --json");
    assert_eq!(summary["device_type"], device_type);
    assert_eq!(summary["chip"], "esp32c3");
    let version = summary["version"].as_str().expect("version").to_owned();
    w.sign(&["verify", "--pubkey", "test.key", "real.ota"]);

    // A device of the same type on a synthesized 0.0.1 that trusts the test key.
    std::fs::write(
        w.path("old.bin"),
        app(device_type, "0.0.1", &[test_pk], None),
    )
    .unwrap();
    w.sign(&[
        "flash",
        "--allow-test-keys",
        "--app-image",
        "old.bin",
        "--chip",
        "esp32c3",
        "--output",
        "flash.bin",
    ]);
    w.release("test.key", "repo", &["real.ota"]);
    std::fs::create_dir_all(w.path("www")).unwrap();
    w.publish("repo", "www", &[], &[]);
    let Some(nginx) = Nginx::serve(&w.path("www")) else {
        return;
    };
    let url = format!("{}/{device_type}.stable.manifest", nginx.url);
    let out = w.run_device("flash.bin", &url, 2);
    assert!(
        out.iter()
            .any(|l| l.contains(&format!(r#""result":"installed","version":"{version}""#))),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l == &format!("boot running ota_1 version {version}")),
        "{out:?}"
    );
    let status = w.flash_status("flash.bin");
    assert_eq!(
        status["slots"][1]["version"],
        version.as_str(),
        "{status:#}"
    );
    assert_eq!(status["slots"][1]["bootable"], true, "{status:#}");
}
