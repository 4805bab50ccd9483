//! `include/ota_format.h` is what cbindgen generates from this crate: regenerated here and
//! compared, so a change to the API that forgot the header fails.

use std::path::Path;

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("capi/cbindgen.toml parses");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = crate_dir.join("include/ota_format.h");
    if std::env::var_os("OTA_REGENERATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/ota_format.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "capi/include/ota_format.h is stale; regenerate it with\n  \
         OTA_REGENERATE_HEADER=1 cargo test -p ota-format-c --test header"
    );
}
