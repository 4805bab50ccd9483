//! The byte stream an answer is read from: the connection itself, or a TLS session over
//! it. Either way the connection is let go of ([`Connection::close`]) when the stream is
//! dropped. Every read and write goes through [`Io`], which gives it what is left of
//! the request's time ([`Limits`]): a TLS session that loops over records inside one
//! `read` is bounded by the same deadline as a plain body.

use core::cell::Cell;

use super::Connection;
use crate::http::HttpError;

/// How long the current request's operations may take, on the connection's clock.
#[derive(Debug, Default)]
pub struct Limits {
    /// Longest single operation.
    op_timeout_ms: Cell<u32>,
    /// Nothing runs past this time (the head's deadline until the head is in, then the
    /// request's).
    until_ms: Cell<u64>,
}

impl Limits {
    /// A new request: `op_timeout_ms` per operation, everything done by `until_ms`.
    pub fn start(&self, op_timeout_ms: u32, until_ms: u64) {
        self.op_timeout_ms.set(op_timeout_ms);
        self.until_ms.set(until_ms);
    }

    /// Moves the end of what runs now (never later than `until_ms` was).
    pub fn until(&self, until_ms: u64) {
        self.until_ms.set(until_ms);
    }

    /// What the next operation may take from `now_ms`: [`HttpError::Timeout`] once
    /// the time is up.
    pub fn timeout_at(&self, now_ms: u64) -> Result<u32, HttpError> {
        let left = self.until_ms.get().saturating_sub(now_ms);
        if left == 0 {
            return Err(HttpError::Timeout);
        }
        let op = u64::from(self.op_timeout_ms.get().max(1));
        Ok(left.min(op) as u32)
    }
}

/// The connection as the stream (and the TLS session) borrows it.
pub struct Io<'c, C: Connection> {
    connection: &'c mut C,
    limits: &'c Limits,
}

impl<'c, C: Connection> Io<'c, C> {
    pub fn new(connection: &'c mut C, limits: &'c Limits) -> Self {
        Io { connection, limits }
    }

    /// What has arrived, within the time left.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        let timeout = self.limits.timeout_at(self.connection.now_ms())?;
        self.connection.read(buf, timeout).await
    }

    /// Writes all of `bytes`, within the time left.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        let timeout = self.limits.timeout_at(self.connection.now_ms())?;
        self.connection.write_all(bytes, timeout).await
    }
}

impl<C: Connection> Drop for Io<'_, C> {
    fn drop(&mut self) {
        self.connection.close();
    }
}

/// One answer's stream.
// One lives at a time, inside the body being read; boxing the TLS session would take an
// allocator the update path otherwise does without.
#[allow(clippy::large_enum_variant)]
pub enum Stream<'c, C: Connection> {
    Plain(Io<'c, C>),
    #[cfg(feature = "tls")]
    Tls(super::tls::Session<'c, C>),
}

impl<C: Connection> Stream<'_, C> {
    /// What has arrived, waiting for at least one byte; `Ok(0)` once the peer closed.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        match self {
            Stream::Plain(io) => io.read(buf).await,
            #[cfg(feature = "tls")]
            Stream::Tls(session) => super::tls::read(session, buf).await,
        }
    }

    /// Writes all of `bytes` (a TLS session may hold them until [`Self::flush`]).
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        match self {
            Stream::Plain(io) => io.write_all(bytes).await,
            #[cfg(feature = "tls")]
            Stream::Tls(session) => super::tls::write_all(session, bytes).await,
        }
    }

    /// Sends what is written so far.
    pub async fn flush(&mut self) -> Result<(), HttpError> {
        match self {
            Stream::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(session) => super::tls::flush(session).await,
        }
    }
}

#[cfg(feature = "tls")]
mod io_traits {
    //! embedded-io-async over a [`Connection`], for embedded-tls.

    use super::{Connection, HttpError, Io};

    /// An [`HttpError`] travelling through embedded-io.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    #[error(transparent)]
    pub struct IoError(pub HttpError);

    impl embedded_io_async::Error for IoError {
        fn kind(&self) -> embedded_io_async::ErrorKind {
            use embedded_io_async::ErrorKind;
            // Exhaustive, so that a new error decides its kind here instead of falling
            // into "reset" unseen.
            match self.0 {
                HttpError::Timeout => ErrorKind::TimedOut,
                HttpError::InvalidUrl
                | HttpError::UnsupportedScheme
                | HttpError::Dns
                | HttpError::Connect
                | HttpError::ConnectionLost
                | HttpError::Protocol
                | HttpError::TooManyRedirects
                | HttpError::BadRedirect
                | HttpError::Tls
                | HttpError::BodyTooLong
                | HttpError::TooManyInterimResponses => ErrorKind::ConnectionReset,
            }
        }
    }

    impl<C: Connection> embedded_io_async::ErrorType for Io<'_, C> {
        type Error = IoError;
    }

    impl<C: Connection> embedded_io_async::Read for Io<'_, C> {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
            Io::read(self, buf).await.map_err(IoError)
        }
    }

    impl<C: Connection> embedded_io_async::Write for Io<'_, C> {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
            Io::write_all(self, buf).await.map_err(IoError)?;
            Ok(buf.len())
        }

        async fn flush(&mut self) -> Result<(), IoError> {
            // `write_all` hands everything to the connection already.
            Ok(())
        }
    }
}
