//! Turns the build-time configuration (environment variables, see `build/config.rs` and
//! README.md) into `$OUT_DIR/build_config.rs`.

use std::env;
use std::fs;
use std::path::PathBuf;

#[path = "build/config.rs"]
mod config;

use config::{Config, VARIABLES};

fn main() {
    for var in VARIABLES {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/config.rs");
    println!("cargo:rerun-if-changed=partitions.csv");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let config = match Config::from_vars(var) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("firmware configuration error: {message}");
            eprintln!("(the build-time variables are listed in firmware/esp32c3/README.md)");
            std::process::exit(1);
        }
    };
    for warning in &config.warnings {
        println!("cargo:warning={warning}");
    }

    let build_time = match build_unix_time() {
        Ok(unix) => unix,
        Err(message) => {
            eprintln!("firmware configuration error: {message}");
            std::process::exit(1);
        }
    };
    let mut rust = config.to_rust();
    // The wall clock refuses SNTP times before this (ota_agent::sntp::ClockSanity).
    rust.push_str(&format!("pub const BUILD_UNIX_TIME: u64 = {build_time};\n"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("build_config.rs"), rust).expect("write build_config.rs");
}

/// `SOURCE_DATE_EPOCH` (reproducible builds) or else now: the earliest time the firmware
/// can be running at. A time from before a rebuild of this script is still a true floor.
fn build_unix_time() -> Result<u64, String> {
    match var("SOURCE_DATE_EPOCH") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH {v:?} is not Unix seconds")),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| "the build machine's clock is before 1970".to_owned()),
    }
}

/// An environment variable that is set and not blank.
fn var(name: &str) -> Option<String> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        Ok(_) => None,
        Err(env::VarError::NotPresent) => None,
        Err(env::VarError::NotUnicode(_)) => panic!("{name} is not valid UTF-8"),
    }
}
