//! The one way long jobs report progress: packaging (bytes compressed), publishing (bytes
//! uploaded per file) and flashing (bytes placed in a flash image or written over a serial
//! port). Every method has a no-op default, so a caller implements only what it shows;
//! [`NoProgress`] shows nothing. (espflash's `ProgressCallbacks` is the model.)

/// Progress of a job made of named pieces of work counted in bytes.
pub trait Progress {
    /// Work on `what` (a file name, a flash region) starts; `total` bytes are to be done.
    fn start(&self, what: &str, total: u64) {
        let _ = (what, total);
    }

    /// `done` of the `total` bytes of `what` are done.
    fn advance(&self, what: &str, done: u64) {
        let _ = (what, done);
    }

    /// Work on `what` is finished.
    fn finish(&self, what: &str) {
        let _ = what;
    }
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
