//! Fleet-report errors as diagnostics: a stable code, a line of help and an exit code.

use std::fmt;

use miette::Diagnostic;
use ota_sign_lib::fleet::{FailureKind, FleetError};

use crate::exit::{self, ExitStatus};

/// A fleet-report error with a stable code, a line of help and an exit code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FleetDiagnostic(pub FleetError);

impl ExitStatus for FleetDiagnostic {
    fn exit_code(&self) -> u8 {
        match self.0.kind() {
            FailureKind::Io => exit::IO,
            FailureKind::NotFound => exit::NOT_FOUND,
            FailureKind::Credentials => exit::CREDENTIALS,
            FailureKind::Network => exit::NETWORK,
        }
    }
}

impl Diagnostic for FleetDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(match &self.0 {
            FleetError::Read { .. } => "ota_sign::fleet::read",
            FleetError::S3 { .. } => "ota_sign::fleet::s3",
            FleetError::NoCredentials { .. } => "ota_sign::fleet::no_credentials",
            FleetError::Github { .. } => "ota_sign::fleet::github",
        }))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let text = match (&self.0, self.0.kind()) {
            (FleetError::S3 { .. } | FleetError::NoCredentials { .. }, _) => {
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION and the bucket name"
            }
            (FleetError::Github { .. }, FailureKind::Credentials) => {
                "set GITHUB_TOKEN to a token that can read the repository"
            }
            (FleetError::Github { .. }, FailureKind::NotFound) => {
                "check OWNER/REPO; a private repository needs GITHUB_TOKEN"
            }
            (FleetError::Github { .. } | FleetError::Read { .. }, _) => return None,
        };
        Some(Box::new(text))
    }
}

crate::exit::failure_via!(FleetError => FleetDiagnostic);
