//! The body of the final answer: the bytes read past the head first, then the
//! connection, delimited by `Content-Length`, chunked coding, or the server closing.

use super::Connection;
use super::head::Framing;
use super::stream::Stream;
use crate::http::{HttpBody, HttpError};

/// Longest chunk-size line or trailer line accepted; real ones are a few bytes.
const MAX_LINE: usize = 256;
/// Trailer lines accepted after the last chunk.
const MAX_TRAILERS: usize = 16;
/// A chunk size has at most this many hex digits (64 bits).
const MAX_SIZE_DIGITS: usize = 16;

#[derive(Clone, Copy, Debug)]
enum State {
    Length(u64),
    UntilClose,
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk, this many bytes left.
    ChunkData(u64),
    Done,
}

/// A response body borrowing the client's connection (and TLS session).
pub struct Http1Body<'c, C: Connection> {
    stream: Stream<'c, C>,
    /// Body bytes that arrived with the head.
    pending: &'c [u8],
    state: State,
}

impl<'c, C: Connection> Http1Body<'c, C> {
    pub(super) fn new(stream: Stream<'c, C>, pending: &'c [u8], framing: Framing) -> Self {
        let state = match framing {
            Framing::Length(n) => State::Length(n),
            Framing::UntilClose => State::UntilClose,
            Framing::Chunked => State::ChunkSize,
        };
        Http1Body {
            stream,
            pending,
            state,
        }
    }

    /// Raw bytes, `Ok(0)` when the server closed.
    async fn raw(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            return Ok(n);
        }
        self.stream.read(buf).await
    }

    /// One byte of framing; the connection ending here truncates the body.
    async fn byte(&mut self) -> Result<u8, HttpError> {
        let mut b = [0u8; 1];
        match self.raw(&mut b).await? {
            0 => Err(HttpError::ConnectionLost),
            _ => Ok(b[0]),
        }
    }

    /// Reads one CRLF-terminated line, returning its chunk size when `size` is set (hex
    /// digits up to `;` or the end), else the number of bytes before the line end.
    async fn line(&mut self, size: bool) -> Result<u64, HttpError> {
        let mut value: u64 = 0;
        let mut digits = 0;
        let mut in_ext = false;
        let mut read = 0;
        let mut content = 0u64;
        loop {
            let b = self.byte().await?;
            if b == b'\n' {
                break;
            }
            read += 1;
            if read > MAX_LINE {
                return Err(HttpError::Protocol);
            }
            if b == b'\r' {
                continue;
            }
            content += 1;
            if !size || in_ext {
                continue;
            }
            match (b as char).to_digit(16) {
                Some(d) if digits < MAX_SIZE_DIGITS => {
                    value = (value << 4) | u64::from(d);
                    digits += 1;
                }
                None if b == b';' || b == b' ' || b == b'\t' => in_ext = true,
                _ => return Err(HttpError::Protocol),
            }
        }
        if size && digits == 0 {
            return Err(HttpError::Protocol);
        }
        Ok(if size { value } else { content })
    }

    async fn read_chunked(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        loop {
            match self.state {
                State::ChunkSize => {
                    let size = self.line(true).await?;
                    if size == 0 {
                        let mut trailers = 0;
                        while self.line(false).await? > 0 {
                            trailers += 1;
                            if trailers > MAX_TRAILERS {
                                return Err(HttpError::Protocol);
                            }
                        }
                        self.state = State::Done;
                        return Ok(0);
                    }
                    self.state = State::ChunkData(size);
                }
                State::ChunkData(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.raw(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(HttpError::ConnectionLost);
                    }
                    let left = left - n as u64;
                    self.state = State::ChunkData(left);
                    if left == 0 {
                        // The CRLF that ends the chunk's data.
                        if self.line(false).await? > 0 {
                            return Err(HttpError::Protocol);
                        }
                        self.state = State::ChunkSize;
                    }
                    return Ok(n);
                }
                _ => return Ok(0),
            }
        }
    }
}

impl<C: Connection> HttpBody for Http1Body<'_, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.state {
            State::Length(0) | State::Done => Ok(0),
            State::Length(left) => {
                // Never more than declared: what follows is not this body's.
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                match self.raw(&mut buf[..want]).await? {
                    0 => Err(HttpError::ConnectionLost),
                    n => {
                        self.state = State::Length(left - n as u64);
                        Ok(n)
                    }
                }
            }
            State::UntilClose => {
                let n = self.raw(buf).await?;
                if n == 0 {
                    self.state = State::Done;
                }
                Ok(n)
            }
            State::ChunkSize | State::ChunkData(_) => self.read_chunked(buf).await,
        }
    }
}
