//! The device type a simulated device is built for, taken from the project's
//! `ota-sign.toml` the way `ota-sign` finds it: `--config`, else `$OTA_SIGN_CONFIG`, else
//! `ota-sign.toml` in the current directory or a parent; then `[defaults] device_type`.
//!
//! A real firmware has its device type compiled in; the ESP-IDF project name is not it
//! (a project `thermostat-fw` may ship as device type `thermostat-v2`), so the simulator
//! never guesses from it.

use std::path::{Path, PathBuf};

use ota_format::DeviceType;

/// The file name searched for, as `ota-sign` does.
pub const CONFIG_FILE: &str = "ota-sign.toml";
/// The variable naming the file explicitly, as `ota-sign` reads it.
pub const CONFIG_ENV: &str = "OTA_SIGN_CONFIG";

/// Why the configuration could not give a device type.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or `[defaults] device_type` is not a device type.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The configuration file: `explicit`, else the one `ota-sign` would find from `start`.
pub fn find_config(explicit: Option<&Path>, start: &Path) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV) {
        return Some(PathBuf::from(path));
    }
    start
        .ancestors()
        .map(|dir| dir.join(CONFIG_FILE))
        .find(|candidate| candidate.is_file())
}

/// `[defaults] device_type` of the configuration file at `path`, if it sets one.
pub fn configured_device_type(path: &Path) -> Result<Option<DeviceType>, ProjectError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| ProjectError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    let Some(value) = table.get("defaults").and_then(|d| d.get("device_type")) else {
        return Ok(None);
    };
    let name = value
        .as_str()
        .ok_or_else(|| invalid("[defaults] device_type is not a string".to_owned()))?;
    DeviceType::new(name).map(Some).ok_or_else(|| {
        invalid(format!(
            "[defaults] device_type {name:?} is not a device type"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_type_comes_from_the_defaults_table() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let file = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &file,
            "[defaults]\ndevice_type = \"thermostat-v2\"\n[device.x]\nchip = \"esp32c3\"\n",
        )
        .unwrap();
        assert_eq!(find_config(None, &nested), Some(file.clone()));
        assert_eq!(
            configured_device_type(&file).unwrap().unwrap().as_str(),
            "thermostat-v2"
        );
        std::fs::write(&file, "[defaults]\nchannel = \"stable\"\n").unwrap();
        assert!(configured_device_type(&file).unwrap().is_none());
        std::fs::write(&file, "[defaults]\ndevice_type = \"Not Valid\"\n").unwrap();
        assert!(matches!(
            configured_device_type(&file),
            Err(ProjectError::Invalid { .. })
        ));
    }
}
