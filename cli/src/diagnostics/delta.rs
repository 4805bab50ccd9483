//! Delta errors as diagnostics: a stable code, a line of help and an exit code.

use std::fmt;

use miette::Diagnostic;
use ota_sign_lib::delta::DeltaError;

use crate::exit::{self, ExitStatus};

/// A delta error with a stable code, a line of help and an exit code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DeltaDiagnostic(pub DeltaError);

impl Diagnostic for DeltaDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match &self.0 {
            DeltaError::Mismatch { .. } => "mismatch",
            DeltaError::Compression(_) => "compression",
            DeltaError::TooLarge(_) => "too_large",
            DeltaError::Header(_) => "header",
            DeltaError::Signing(_) => "signing",
            DeltaError::SelfCheck(_) => "self_check",
            DeltaError::Decode(_) => "decode",
            DeltaError::Matcher(_) => "matcher",
        };
        exit::diagnostic_code("delta", code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match &self.0 {
            DeltaError::Mismatch { .. } => {
                "a device only installs a delta from the image it runs: give --from an image of the same device type and chip"
            }
            DeltaError::Signing(_) | DeltaError::SelfCheck(_) => {
                "check the signing key or signer backend"
            }
            DeltaError::Decode(_) | DeltaError::Matcher(_) => {
                "this is a bug in ota-sign, libzstd or bsdiff: please report it; --encoding patch-from avoids the difference matcher"
            }
            DeltaError::Compression(_) | DeltaError::TooLarge(_) | DeltaError::Header(_) => {
                return None;
            }
        };
        Some(Box::new(help))
    }
}

impl ExitStatus for DeltaDiagnostic {
    fn exit_code(&self) -> u8 {
        match &self.0 {
            DeltaError::Mismatch { .. } => exit::POLICY,
            DeltaError::Signing(e) => exit::key_exit_code(e),
            DeltaError::Compression(_)
            | DeltaError::TooLarge(_)
            | DeltaError::Header(_)
            | DeltaError::SelfCheck(_)
            | DeltaError::Decode(_)
            | DeltaError::Matcher(_) => exit::FAILURE,
        }
    }
}

crate::exit::failure_via!(DeltaError => DeltaDiagnostic);
