//! Progress bars for long work, on stderr, only when a person is watching: the
//! indicatif side of the library's [`Progress`] callbacks.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use ota_sign_lib::progress::Progress;

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

/// One job of known size on one bar (packaging, a flash image file).
impl Progress for Bar {
    fn advance(&self, _what: &str, done: u64) {
        self.set(done);
    }
}

/// One bar per piece of work (an upload, a flash region), named after it; drawn at once
/// and kept ticking, so work the host cannot report on (one S3 or GitHub request) still
/// shows what is on its way and for how long.
pub struct Bars<'a> {
    global: &'a GlobalOpts,
    current: RefCell<Option<(Bar, u64)>>,
    finished: Option<&'static str>,
}

impl<'a> Bars<'a> {
    /// Bars for `global`; with `finished` (e.g. "uploaded") each finished piece is also
    /// reported with `-v`.
    pub fn new(global: &'a GlobalOpts, finished: Option<&'static str>) -> Self {
        Bars {
            global,
            current: RefCell::new(None),
            finished,
        }
    }
}

impl Progress for Bars<'_> {
    fn start(&self, what: &str, total: u64) {
        let bar = Bar::bytes(self.global, what, total);
        bar.keep_drawing();
        *self.current.borrow_mut() = Some((bar, total));
    }

    fn advance(&self, _what: &str, done: u64) {
        if let Some((bar, _)) = self.current.borrow().as_ref() {
            bar.set(done);
        }
    }

    fn finish(&self, what: &str) {
        if let Some((bar, total)) = self.current.borrow_mut().take() {
            bar.set(total);
            bar.finish();
        }
        if let Some(verb) = self.finished {
            self.global.detail(&format!("{verb} {what}"));
        }
    }
}
