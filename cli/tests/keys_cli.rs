//! `ota-sign keygen` and `ota-sign pubkey` run as real processes, with OpenSSL 3 as the
//! other side of every interoperability check.
//!
//! Longer than 500 lines on purpose: one binary for both key commands, whose scenarios
//! share the OpenSSL and exit-code helpers at the top.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use ota_keys::{KeyLocation, KeyMaterial, NoPassphrase, PublicKey};

mod common;

use common::{CONFLICT, IO, KEY, Scratch as Run, USAGE, run_tool};

/// OpenSSL as the other side of every interoperability check.
trait OpenSsl {
    fn openssl(&self, args: &[&str]) -> Output;
    fn openssl_ok(&self, args: &[&str]) -> Vec<u8>;
}

impl OpenSsl for Run {
    fn openssl(&self, args: &[&str]) -> Output {
        Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl 3 must be installed for the interop tests")
    }

    fn openssl_ok(&self, args: &[&str]) -> Vec<u8> {
        run_tool(
            Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path()),
        )
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32, stderr_contains: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert!(
        stderr(o).contains(stderr_contains),
        "expected {stderr_contains:?} in stderr: {}",
        stderr(o)
    );
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

fn public_of(path: &Path) -> PublicKey {
    KeyLocation::File(path.to_path_buf())
        .load(&NoPassphrase)
        .unwrap()
        .value
        .public_key()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_0600_key_and_a_public_key() {
    let r = Run::new();
    let o = r.run(&["keygen", "release", "--no-encrypt"]);
    assert_ok(&o);
    let key = fs::read_to_string(r.path("release.key")).unwrap();
    let public = fs::read_to_string(r.path("release.pub")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&r.path("release.key")), 0o600);
        // 0644 less whatever the umask removes; the owner can always read it.
        assert_eq!(mode(&r.path("release.pub")) & !0o644, 0);
        assert_ne!(mode(&r.path("release.pub")) & 0o400, 0);
    }
    let id = public_of(&r.path("release.pub")).key_id().to_string();
    assert!(stdout(&o).contains(&id), "{}", stdout(&o));
    assert!(stdout(&o).contains("release.key"));
    assert!(stderr(&o).contains("not encrypted"));
}

#[test]
fn keygen_json_names_files_and_key_id() {
    let r = Run::new();
    let o = r.output_env(
        &["keygen", "k", "--encrypt", "--json"],
        &[("OTA_SIGN_PASSPHRASE", "pw")],
    );
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let public = public_of(&r.path("k.pub"));
    assert_eq!(v["key_id"], public.key_id().to_string());
    assert_eq!(v["public_key"], public.to_hex());
    assert_eq!(v["private_key_file"], "k.key");
    assert_eq!(v["public_key_file"], "k.pub");
    assert_eq!(v["encrypted"], true);
}

#[test]
fn keygen_refuses_to_overwrite_and_leaves_files_unchanged() {
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let key_before = fs::read(r.path("k.key")).unwrap();
    let pub_before = fs::read(r.path("k.pub")).unwrap();
    assert_exit(
        &r.run(&["keygen", "k", "--no-encrypt"]),
        CONFLICT,
        "already exists",
    );
    assert_eq!(fs::read(r.path("k.key")).unwrap(), key_before);
    assert_eq!(fs::read(r.path("k.pub")).unwrap(), pub_before);

    // Only the .pub is in the way: no .key may be left behind either.
    fs::write(r.path("other.pub"), "mine").unwrap();
    assert_exit(
        &r.run(&["keygen", "other", "--no-encrypt"]),
        CONFLICT,
        "other.pub already exists",
    );
    assert!(!r.path("other.key").exists());
    assert_eq!(fs::read_to_string(r.path("other.pub")).unwrap(), "mine");
}

#[test]
fn keygen_without_terminal_or_passphrase_must_choose() {
    let r = Run::new();
    assert_exit(&r.run(&["keygen", "k"]), USAGE, "--no-encrypt");
    assert!(!r.path("k.key").exists() && !r.path("k.pub").exists());
    assert_exit(
        &r.run(&["keygen", "k", "--encrypt"]),
        KEY,
        "set OTA_SIGN_PASSPHRASE",
    );
    assert!(!r.path("k.key").exists() && !r.path("k.pub").exists());
}

#[test]
fn keygen_where_the_key_directory_cannot_be_made_is_io() {
    // A missing directory is created (new_user_cli.rs); one that cannot be is an I/O error.
    let r = Run::new();
    fs::write(r.path("blocker"), b"a file, not a directory").unwrap();
    assert_exit(
        &r.run(&["keygen", "blocker/keys/k", "--no-encrypt"]),
        IO,
        "blocker/keys",
    );
}

#[test]
fn keygen_encrypts_by_default_when_a_passphrase_is_set() {
    let r = Run::new();
    assert_ok(&r.output_env(&["keygen", "k"], &[("OTA_SIGN_PASSPHRASE", "pw")]));
    let key = fs::read_to_string(r.path("k.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
}

#[test]
fn openssl_reads_our_plain_key_and_derives_our_public_key() {
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let pubout = r.openssl_ok(&["pkey", "-in", "k.key", "-pubout"]);
    assert_eq!(pubout, fs::read(r.path("k.pub")).unwrap());
    // OpenSSL re-encodes the private key byte for byte as we wrote it (PKCS#8 v1).
    let reencoded = r.openssl_ok(&["pkey", "-in", "k.key"]);
    assert_eq!(reencoded, fs::read(r.path("k.key")).unwrap());
    // And reads the public key file itself.
    r.openssl_ok(&["pkey", "-pubin", "-in", "k.pub", "-noout"]);
}

#[test]
fn openssl_reads_our_encrypted_key_with_the_passphrase_only() {
    let r = Run::new();
    assert_ok(&r.output_env(
        &["keygen", "k", "--encrypt"],
        &[("OTA_SIGN_PASSPHRASE", "s3cret pass")],
    ));
    let pubout = r.openssl_ok(&[
        "pkey",
        "-in",
        "k.key",
        "-passin",
        "pass:s3cret pass",
        "-pubout",
    ]);
    assert_eq!(pubout, fs::read(r.path("k.pub")).unwrap());
    let wrong = r.openssl(&["pkey", "-in", "k.key", "-passin", "pass:nope", "-pubout"]);
    assert!(!wrong.status.success());
}

/// The release default (scrypt log_n 14), not the test override: OpenSSL 3 caps scrypt at
/// 32 MiB, and this proves the default stays under it.
#[test]
fn openssl_reads_a_key_encrypted_at_the_default_cost() {
    let r = Run::new();
    let o = r
        .cmd(&["keygen", "k", "--encrypt"])
        .env_remove("OTA_SIGN_TEST_SCRYPT_LOG_N")
        .env("OTA_SIGN_PASSPHRASE", "pw")
        .output()
        .unwrap();
    assert_ok(&o);
    let der = r.openssl_ok(&["asn1parse", "-in", "k.key"]);
    let der = String::from_utf8(der).unwrap();
    assert!(
        der.contains(":scrypt") && der.contains("INTEGER           :4000"),
        "{der}"
    );
    let pubout = r.openssl_ok(&["pkey", "-in", "k.key", "-passin", "pass:pw", "-pubout"]);
    assert_eq!(pubout, fs::read(r.path("k.pub")).unwrap());
}

#[test]
fn openssl_key_is_read_and_signs_like_openssl() {
    let r = Run::new();
    r.openssl_ok(&["genpkey", "-algorithm", "ed25519", "-out", "ossl.key"]);
    let o = r.run(&["pubkey", "ossl.key"]);
    assert_ok(&o);
    let expected = r.openssl_ok(&["pkey", "-in", "ossl.key", "-pubout"]);
    assert_eq!(o.stdout, expected);

    fs::write(r.path("msg"), b"firmware header bytes").unwrap();
    let openssl_sig = r.openssl_ok(&[
        "pkeyutl", "-sign", "-inkey", "ossl.key", "-rawin", "-in", "msg",
    ]);
    let ours = match KeyLocation::File(r.path("ossl.key"))
        .load(&NoPassphrase)
        .unwrap()
        .value
    {
        KeyMaterial::Private { key, .. } => key.sign(b"firmware header bytes"),
        KeyMaterial::Public(_) => panic!("expected a private key"),
    };
    assert_eq!(openssl_sig, ours.to_vec());

    // And OpenSSL verifies a signature made with a key we generated.
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let our_key = match KeyLocation::File(r.path("k.key"))
        .load(&NoPassphrase)
        .unwrap()
        .value
    {
        KeyMaterial::Private { key, .. } => key,
        KeyMaterial::Public(_) => panic!("expected a private key"),
    };
    fs::write(r.path("sig"), our_key.sign(b"firmware header bytes")).unwrap();
    r.openssl_ok(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", "k.pub", "-rawin", "-in", "msg", "-sigfile",
        "sig",
    ]);
}

#[test]
fn openssl_encrypted_keys_are_read() {
    let r = Run::new();
    r.openssl_ok(&["genpkey", "-algorithm", "ed25519", "-out", "plain.key"]);
    // OpenSSL's default PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and its scrypt variant.
    r.openssl_ok(&[
        "pkey",
        "-in",
        "plain.key",
        "-aes-256-cbc",
        "-passout",
        "pass:pw",
        "-out",
        "pbkdf2.key",
    ]);
    r.openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-in",
        "plain.key",
        "-scrypt",
        "-passout",
        "pass:pw",
        "-out",
        "scrypt.key",
    ]);
    let expected = r.openssl_ok(&["pkey", "-in", "plain.key", "-pubout"]);
    for file in ["pbkdf2.key", "scrypt.key"] {
        let o = r.output_env(&["pubkey", file], &[("OTA_SIGN_PASSPHRASE", "pw")]);
        assert_ok(&o);
        assert_eq!(o.stdout, expected, "{file}");
    }
}

#[test]
fn wrong_passphrase_is_a_key_error() {
    let r = Run::new();
    assert_ok(&r.output_env(
        &["keygen", "k", "--encrypt"],
        &[("OTA_SIGN_PASSPHRASE", "right")],
    ));
    let o = r.output_env(&["pubkey", "k.key"], &[("OTA_SIGN_PASSPHRASE", "wrong")]);
    assert_exit(&o, KEY, "k.key: wrong passphrase");
    assert!(o.stdout.is_empty());
}

#[test]
fn encrypted_key_without_terminal_names_the_variable() {
    let r = Run::new();
    assert_ok(&r.output_env(
        &["keygen", "k", "--encrypt"],
        &[("OTA_SIGN_PASSPHRASE", "pw")],
    ));
    assert_exit(
        &r.run(&["pubkey", "k.key"]),
        KEY,
        "key is encrypted: set OTA_SIGN_PASSPHRASE",
    );
}

#[test]
fn corrupt_pem_is_a_key_error() {
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let text = fs::read_to_string(r.path("k.key")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "!!!! not base64 !!!!";
    fs::write(r.path("bad.key"), lines.join("\n")).unwrap();
    assert_exit(&r.run(&["pubkey", "bad.key"]), KEY, "corrupt PEM");

    fs::write(r.path("text.key"), "hello\n").unwrap();
    assert_exit(&r.run(&["pubkey", "text.key"]), KEY, "is not a PEM key");
}

#[test]
fn rsa_and_p256_keys_are_named_and_refused() {
    let r = Run::new();
    r.openssl_ok(&[
        "genpkey",
        "-algorithm",
        "rsa",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        "rsa.key",
    ]);
    r.openssl_ok(&[
        "genpkey",
        "-algorithm",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "p256.key",
    ]);
    r.openssl_ok(&["pkey", "-in", "p256.key", "-pubout", "-out", "p256.pub"]);
    assert_exit(
        &r.run(&["pubkey", "rsa.key"]),
        KEY,
        "this is an RSA key; ota-sign needs Ed25519",
    );
    for file in ["p256.key", "p256.pub"] {
        let o = r.run(&["pubkey", file]);
        assert_exit(
            &o,
            KEY,
            "this is a P-256 (ECDSA) key; ota-sign needs Ed25519",
        );
    }
}

#[test]
fn missing_key_file_is_io() {
    let r = Run::new();
    assert_exit(&r.run(&["pubkey", "nope.key"]), IO, "nope.key");
}

#[test]
fn key_from_environment() {
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let pem = fs::read_to_string(r.path("k.key")).unwrap();
    let o = r.output_env(&["pubkey"], &[("OTA_SIGN_KEY", &pem)]);
    assert_ok(&o);
    assert_eq!(o.stdout, fs::read(r.path("k.pub")).unwrap());

    assert_ok(&r.output_env(
        &["keygen", "e", "--encrypt"],
        &[("OTA_SIGN_PASSPHRASE", "pw")],
    ));
    let enc = fs::read_to_string(r.path("e.key")).unwrap();
    let o = r.output_env(
        &["pubkey", "--format", "hex"],
        &[("OTA_SIGN_KEY", &enc), ("OTA_SIGN_PASSPHRASE", "pw")],
    );
    assert_ok(&o);
    assert_eq!(
        stdout(&o),
        format!("{}\n", public_of(&r.path("e.pub")).to_hex())
    );

    let o = r.output_env(&["pubkey"], &[("OTA_SIGN_KEY", "garbage")]);
    assert_exit(&o, KEY, "$OTA_SIGN_KEY is not a PEM key");
}

#[test]
fn no_key_anywhere_is_a_usage_error() {
    let r = Run::new();
    assert_exit(&r.run(&["pubkey"]), USAGE, "no key given");
}

#[test]
fn key_precedence_flag_env_config() {
    let r = Run::new();
    for name in ["flag", "env", "conf"] {
        assert_ok(&r.run(&["keygen", name, "--no-encrypt"]));
    }
    fs::create_dir(r.path("sub")).unwrap();
    fs::write(r.path("ota-sign.toml"), "[defaults]\nkey = \"conf.key\"\n").unwrap();
    let env_pem = fs::read_to_string(r.path("env.key")).unwrap();
    let hex = |n: &str| format!("{}\n", public_of(&r.path(&format!("{n}.pub"))).to_hex());

    let mut c = r.cmd(&["pubkey", "-f", "hex"]);
    c.current_dir(r.path("sub"));
    let o = c.output().unwrap();
    assert_ok(&o);
    assert_eq!(
        stdout(&o),
        hex("conf"),
        "found upward, path relative to the file"
    );

    let o = r.output_env(&["pubkey", "-f", "hex"], &[("OTA_SIGN_KEY", &env_pem)]);
    assert_eq!(stdout(&o), hex("env"));

    let o = r.output_env(
        &["pubkey", "flag.key", "-f", "hex"],
        &[("OTA_SIGN_KEY", &env_pem)],
    );
    assert_eq!(stdout(&o), hex("flag"));
}

#[test]
fn broken_config_is_a_usage_error_with_its_line() {
    let r = Run::new();
    fs::write(
        r.path("ota-sign.toml"),
        "[defaults]\nkey = \"k.key\"\nchanel = \"x\"\n",
    )
    .unwrap();
    assert_exit(&r.run(&["pubkey"]), USAGE, "ota-sign.toml:3:");
    // An explicit key does not need the configuration at all.
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    assert_ok(&r.run(&["pubkey", "k.pub"]));
    // --config naming a missing file is an I/O error.
    assert_exit(
        &r.run(&["pubkey", "--config", "missing.toml"]),
        IO,
        "missing.toml",
    );
}

#[test]
fn pubkey_formats() {
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    let public = public_of(&r.path("k.pub"));
    let id = public.key_id().to_string();

    // PEM from the private key equals the .pub file; the key id goes to stderr.
    let o = r.run(&["pubkey", "k.key"]);
    assert_eq!(o.stdout, fs::read(r.path("k.pub")).unwrap());
    assert!(stderr(&o).contains(&id));

    let o = r.run(&["pubkey", "k.pub", "--format", "hex"]);
    assert_eq!(stdout(&o), format!("{}\n", public.to_hex()));

    let rust = stdout(&r.run(&["pubkey", "k.pub", "--format", "rust"]));
    let name = format!("OTA_KEY_{}", id.to_uppercase());
    assert!(
        rust.contains(&format!("pub const {name}: [u8; 32] = [")),
        "{rust}"
    );
    assert!(rust.contains(&format!(
        "ota_format::TrustedKeyDescriptor::new(&[{name}]).to_bytes();"
    )));
    assert!(rust.contains("static OTA_TRUSTED_KEYS: [u8; ota_format::DESCRIPTOR_LEN] ="));
    assert!(rust.contains(&id));
    assert_eq!(array_bytes(&rust), public.to_bytes().to_vec());

    let c = stdout(&r.run(&["pubkey", "k.pub", "--format", "c"]));
    // The whole trusted-key descriptor, kept by the linker (cli/tests/c_firmware_cli.rs
    // cross-compiles it into an ESP32-C3 ELF that `package` accepts).
    assert!(c.contains("const uint8_t ota_trusted_keys[276] = {"), "{c}");
    assert!(c.contains("section(\".rodata_custom_desc\"), used"), "{c}");
    assert!(c.contains(&format!("key id {id}")));
    assert_eq!(
        array_bytes(&c),
        ota_format::TrustedKeyDescriptor::new(&[public.to_bytes()]).to_bytes()
    );
    fs::write(r.path("key.c"), &c).unwrap();
    // A C compiler is needed to check the C export.
    run_tool(
        Command::new("cc")
            .args([
                "-std=c11",
                "-Wall",
                "-Wno-unused-const-variable",
                "-Werror",
                "-c",
                "key.c",
                "-o",
                "key.o",
            ])
            .current_dir(r.dir.path()),
    );

    assert_exit(
        &r.run(&["pubkey", "k.pub", "--format", "json"]),
        USAGE,
        "expected pem, hex, rust or c",
    );

    // Several keys: one descriptor over all of them for rust and c; pem and hex print one.
    assert_ok(&r.run(&["keygen", "next", "--no-encrypt"]));
    let next = public_of(&r.path("next.pub"));
    let c = stdout(&r.run(&["pubkey", "k.pub", "next.pub", "--format", "c"]));
    assert_eq!(
        array_bytes(&c),
        ota_format::TrustedKeyDescriptor::new(&[public.to_bytes(), next.to_bytes()]).to_bytes()
    );
    let rust = stdout(&r.run(&["pubkey", "k.pub", "next.pub", "--format", "rust"]));
    assert!(rust.contains(&format!(
        "OTA_KEY_{}",
        next.key_id().to_string().to_uppercase()
    )));
    let o = r.run(&["pubkey", "k.pub", "next.pub", "--format", "hex"]);
    assert_exit(&o, USAGE, "--format hex prints one key; 2 were given");
    let o = r.run(&["pubkey", "k.pub", "k.key", "--format", "c"]);
    assert_exit(&o, KEY, "listed twice");
    let o = r.run(&["pubkey", "k.pub", "next.pub", "--format", "c", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["keys"][1]["key_id"], next.key_id().to_string());
    assert_eq!(v["key_id"], id);

    let o = r.run(&["pubkey", "k.pub", "--format", "hex", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["key_id"], id);
    assert_eq!(v["public_key"], public.to_hex());
    assert_eq!(v["format"], "hex");
}

/// The bytes of the first `0x..` array in generated source.
fn array_bytes(src: &str) -> Vec<u8> {
    src.split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|t| t.strip_prefix("0x"))
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

#[cfg(unix)]
#[test]
fn readable_private_key_warns() {
    use std::os::unix::fs::PermissionsExt;
    let r = Run::new();
    assert_ok(&r.run(&["keygen", "k", "--no-encrypt"]));
    fs::set_permissions(r.path("k.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let o = r.run(&["pubkey", "k.key"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("warning: private key k.key is readable by other users"));
    let o = r.run(&["pubkey", "k.key", "-q"]);
    assert_ok(&o);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn json_errors_go_to_stdout_too() {
    let r = Run::new();
    let o = r.run(&["pubkey", "nope.key", "--json"]);
    assert_eq!(o.status.code(), Some(IO));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["exit_code"], IO);
    assert_eq!(v["code"], "ota_sign::key::io");
    assert!(v["error"].as_str().unwrap().contains("nope.key"));
}

#[test]
fn help_teaches_with_examples() {
    let r = Run::new();
    let top = stdout(&r.run(&["--help"]));
    assert!(top.contains("ota-sign keygen keys/release"), "{top}");
    assert!(top.contains("Exit codes"));
    let keygen = stdout(&r.run(&["keygen", "--help"]));
    assert!(keygen.contains("--no-encrypt") && keygen.contains("OTA_SIGN_PASSPHRASE"));
    assert!(keygen.contains("Examples:"));
    let pubkey = stdout(&r.run(&["pubkey", "--help"]));
    assert!(pubkey.contains("--format rust"));
    let o = r.run(&["keygen"]);
    assert_eq!(o.status.code(), Some(USAGE));
    let o = r.run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(USAGE));
}
