//! The terminal side of passphrases: `$OTA_SIGN_PASSPHRASE` first, then a prompt on the
//! terminal, never a prompt when stdin is not a terminal (CI, pipes), where it would
//! hang or read the wrong input.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use ota_keys::{
    EnvPassphrase, KeyError, KeyOrigin, PassphraseRequest, PassphraseSource, Zeroizing,
};

/// The source every command uses.
pub fn source() -> EnvPassphrase<TerminalPrompt> {
    EnvPassphrase::or(TerminalPrompt)
}

/// Asks on the terminal with echo off; a new passphrase is asked twice.
#[derive(Debug, Clone, Copy)]
pub struct TerminalPrompt;

impl PassphraseSource for TerminalPrompt {
    fn passphrase(&self, request: PassphraseRequest<'_>) -> Result<Zeroizing<String>, KeyError> {
        if !io::stdin().is_terminal() {
            return Err(request.unavailable());
        }
        match request {
            PassphraseRequest::Unlock(origin) => prompt(&format!("Passphrase for {origin}: ")),
            PassphraseRequest::Protect(path) => {
                let first = prompt(&format!("New passphrase for {}: ", path.display()))?;
                if first.is_empty() {
                    return Err(KeyError::EmptyPassphrase);
                }
                let second = prompt("Repeat the passphrase: ")?;
                if *first != *second {
                    return Err(KeyError::PassphraseMismatch);
                }
                Ok(first)
            }
        }
    }
}

fn prompt(text: &str) -> Result<Zeroizing<String>, KeyError> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|source| KeyError::Io {
            origin: KeyOrigin::File(PathBuf::from("/dev/tty")),
            source,
        })
}
