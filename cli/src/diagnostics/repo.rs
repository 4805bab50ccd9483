//! Release-tree errors as diagnostics: a stable code, a line of help and an exit code.

use std::fmt;

use miette::Diagnostic;
use ota_sign_lib::repo::RepoError;

use super::{format_error_name, format_exit_code, install_error_name, install_exit_code};
use crate::exit::{self, ExitStatus};

/// A release-tree error with a stable code, a line of help and an exit code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RepoDiagnostic(pub RepoError);

impl Diagnostic for RepoDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match &self.0 {
            RepoError::Io { .. } => "io".to_owned(),
            RepoError::BadImage { source, .. } => {
                format!("bad_image::{}", format_error_name(source))
            }
            RepoError::BadManifest { source, .. } => {
                format!("bad_manifest::{}", format_error_name(source))
            }
            RepoError::NotInstallable { source, .. } => {
                format!("not_installable::{}", install_error_name(source))
            }
            RepoError::DuplicateDeviceType(_) => "duplicate_device_type".to_owned(),
            RepoError::CounterRollback { .. } => "counter_rollback".to_owned(),
            RepoError::Downgrade { .. } => "downgrade".to_owned(),
            RepoError::VersionReused { .. } => "version_reused".to_owned(),
            RepoError::ImageNameCollision(_) => "image_name_collision".to_owned(),
            RepoError::SequenceExhausted(_) => "sequence_exhausted".to_owned(),
            RepoError::BadName(_) => "bad_name".to_owned(),
            RepoError::SignerFailed | RepoError::Signer(_) => "signer".to_owned(),
            RepoError::BadRollout => "bad_rollout".to_owned(),
            RepoError::AgentCannotDecode { .. } => "agent_cannot_decode".to_owned(),
            RepoError::Delta { .. } => "delta".to_owned(),
            RepoError::AgentGenerationUnset { .. } => "agent_generation_unset".to_owned(),
        };
        exit::diagnostic_code("release", code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match &self.0 {
            RepoError::BadImage {
                source: ota_format::FormatError::UnknownKey,
                ..
            } => {
                "the image is signed by another key; package it with this --key, or pass --trust with the key that signed it"
            }
            RepoError::BadImage { .. } => {
                "the image is damaged or was changed after signing: do not release it"
            }
            RepoError::NotInstallable {
                declared_window_log: Some(_),
                source:
                    ota_agent::install::InstallError::Decompress(
                        ota_agent::zstd::DecompressError::WindowTooLarge { .. },
                    ),
                ..
            } => {
                "its zstd frames need a larger window than the header declares or the device type accepts (`max_window_log` in ota-sign.toml): package it again"
            }
            RepoError::NotInstallable { .. } => {
                "`ota-sign verify` explains the refusal; package the firmware again"
            }
            RepoError::BadManifest {
                source: ota_format::FormatError::UnknownKey,
                ..
            } => {
                "the channel's current manifest is signed by another key; after a key rotation pass --trust OLD.pub"
            }
            RepoError::BadManifest { .. } => {
                "the tree's manifest is damaged; restore the tree from the host or a backup"
            }
            RepoError::DuplicateDeviceType(_) => "release one image per device type at a time",
            RepoError::CounterRollback { .. } => {
                "package the image with a security counter at least the current one"
            }
            RepoError::Downgrade { .. } => {
                "pass --allow-downgrade to roll the channel back deliberately"
            }
            RepoError::VersionReused { .. } => {
                "give the new build a new version (e.g. 1.2.4 or 1.2.3-fix.1) and package it again"
            }
            RepoError::ImageNameCollision(_) => {
                "a different build of this version already sits in the tree; give the new build a new version"
            }
            RepoError::SignerFailed | RepoError::Signer(_) => {
                "check the signing key or signer backend"
            }
            RepoError::Delta { .. } => {
                "`ota-sign delta` makes the same delta by hand and says more; --deltas 0 releases without deltas"
            }
            RepoError::AgentCannotDecode { .. } => {
                "package the firmware with `--agent-generation 1` (compression method 1, window in RAM); set `agent_generation = 2` only once every device of the type runs the new agent"
            }
            RepoError::AgentGenerationUnset { .. } => {
                "set `agent_generation` in the device type's [device.NAME] table of ota-sign.toml: 1 to keep devices on the old agent updating (then package with --agent-generation 1), 2 if the whole fleet runs the new agent"
            }
            RepoError::Io { .. }
            | RepoError::SequenceExhausted(..)
            | RepoError::BadName(..)
            | RepoError::BadRollout => return None,
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for RepoDiagnostic {
    fn exit_code(&self) -> u8 {
        repo_exit_code(&self.0)
    }
}

/// The exit code of a release-tree error.
pub fn repo_exit_code(e: &RepoError) -> u8 {
    match e {
        RepoError::Io { .. } => exit::IO,
        RepoError::BadImage { source, .. } => format_exit_code(source),
        RepoError::NotInstallable {
            source,
            declared_window_log,
            ..
        } => install_exit_code(source, *declared_window_log),
        RepoError::BadManifest { .. } => exit::INVALID_SIGNATURE,
        RepoError::DuplicateDeviceType(_) | RepoError::BadRollout => exit::USAGE,
        RepoError::CounterRollback { .. }
        | RepoError::Downgrade { .. }
        | RepoError::VersionReused { .. }
        | RepoError::AgentCannotDecode { .. }
        | RepoError::AgentGenerationUnset { .. } => exit::POLICY,
        RepoError::ImageNameCollision(_) => exit::CONFLICT,
        RepoError::Signer(e) => exit::key_exit_code(e),
        RepoError::Delta {
            source: ota_sign_lib::delta::DeltaError::Signing(e),
            ..
        } => exit::key_exit_code(e),
        RepoError::Delta { .. } => exit::FAILURE,
        RepoError::SequenceExhausted(_) | RepoError::BadName(_) | RepoError::SignerFailed => {
            exit::FAILURE
        }
    }
}

crate::exit::failure_via!(RepoError => RepoDiagnostic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_policy_codes() {
        let e = RepoError::Downgrade {
            channel: "a.stable".into(),
            new: ota_format::Version::parse("1.0.0").unwrap(),
            current: ota_format::Version::parse("2.0.0").unwrap(),
        };
        assert_eq!(repo_exit_code(&e), exit::POLICY);
        let e = RepoError::CounterRollback {
            channel: "a.stable".into(),
            new: 1,
            current: 2,
        };
        assert_eq!(repo_exit_code(&e), exit::POLICY);
        assert_eq!(
            repo_exit_code(&RepoError::ImageNameCollision("x.ota".into())),
            exit::CONFLICT
        );
    }
}
