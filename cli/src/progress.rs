//! Progress bars for long work, on stderr, only when a person is watching.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::GlobalOpts;

/// A byte-counting progress bar; hidden with `--quiet`, `--json` or when stderr is not a
/// terminal, so scripts and logs stay clean.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar for `total` bytes of work described by `what`.
    pub fn bytes(global: &GlobalOpts, what: &str, total: u64) -> Self {
        let visible = !global.quiet && !global.json && std::io::stderr().is_terminal();
        let bar = if visible {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Bar(bar)
    }

    /// Redraws on its own from now on (elapsed time, rate), so a bar whose work reports
    /// no progress until the end still shows it is alive.
    pub fn keep_drawing(&self) {
        self.0
            .enable_steady_tick(std::time::Duration::from_millis(250));
    }

    /// Sets the position.
    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ota_sign_lib::packaging::Progress for Bar {
    fn advance(&self, done: u64, _total: u64) {
        self.set(done);
    }
}
