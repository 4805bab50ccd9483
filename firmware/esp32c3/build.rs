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

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("build_config.rs"), config.to_rust()).expect("write build_config.rs");
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
