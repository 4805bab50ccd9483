//! The ways a [`super::StaticHost`] misbehaves on purpose, and how an answer is written
//! with one of them. Every fault that waits or streams has a bound: its own duration, or
//! the stated limits below.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::Wire;
use super::answer::{Answer, Lookup, answer_damaged};
use super::request::Request;

/// How long [`Fault::EndlessInterim`] keeps sending `100 Continue` at most.
const INTERIM_FOR: Duration = Duration::from_secs(30);
/// How much garbage [`Fault::Endless`] sends after the file at most: 4 MiB.
const ENDLESS_KIB: usize = 4096;

/// How the host answers one request for a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection after this many body bytes.
    DropAfter(usize),
    /// Ignore `Range`: 200 with the whole file.
    IgnoreRange,
    /// Declare the full length but send only this many bytes, then close.
    Truncate(usize),
    /// Send this many extra bytes after the declared body.
    Longer(usize),
    /// Sleep this long between 1 KiB pieces of the body.
    Slow(Duration),
    /// Flip a bit of the byte at this file offset (after the ETag is taken).
    WrongByte(usize),
    /// Answer with this status and an empty body (5xx, 429, ...).
    Status(u16),
    /// Redirect (302) to this absolute URL.
    Redirect(String),
    /// Say nothing at all for this long, then close.
    Silent(Duration),
    /// No `Content-Length`: the file, then 4 MiB of garbage or until the client hangs up.
    Endless,
    /// `100 Continue` heads, one every 2 ms, until the client hangs up (or 30 s pass).
    EndlessInterim,
    /// The answer's head one byte at a time, this far apart, then the body.
    TrickleHead(Duration),
    /// Ignore `Range` (200 with the whole file) and close after this many body bytes.
    IgnoreRangeDropAfter(usize),
}

/// Answers `req` for `file`, misbehaving as `fault` says. Returns the status of the head
/// sent (100 for interim heads only, 0 when nothing was sent) and how writing went.
pub(super) fn respond(
    wire: &mut Wire<'_>,
    req: &Request,
    file: impl FnOnce() -> Lookup,
    fault: Option<&Fault>,
) -> (u16, io::Result<()>) {
    match fault {
        Some(Fault::Status(code)) => {
            return send(wire, &Answer::empty(*code, Vec::new()), req, fault);
        }
        Some(Fault::Redirect(to)) => {
            let redirect = Answer::empty(302, vec![format!("Location: {to}")]);
            return send(wire, &redirect, req, fault);
        }
        Some(Fault::Silent(pause)) => {
            std::thread::sleep(*pause);
            return (0, Ok(()));
        }
        Some(Fault::EndlessInterim) => return (100, endless_interim(wire)),
        _ => {}
    }
    let damage = match fault {
        Some(Fault::WrongByte(at)) => Some(*at),
        _ => None,
    };
    let whole_file;
    let req = match fault {
        Some(Fault::IgnoreRange | Fault::IgnoreRangeDropAfter(_) | Fault::Endless) => {
            whole_file = Request {
                range: None,
                ..req.clone()
            };
            &whole_file
        }
        _ => req,
    };
    let mut answer = answer_damaged(req, file(), damage);
    if fault == Some(&Fault::Endless) && answer.status == 200 {
        answer.declares_length = false;
    }
    send(wire, &answer, req, fault)
}

fn send(
    wire: &mut Wire<'_>,
    answer: &Answer,
    req: &Request,
    fault: Option<&Fault>,
) -> (u16, io::Result<()>) {
    let written = write_head(wire, answer, fault).and_then(|()| {
        if req.method == "HEAD" {
            Ok(())
        } else {
            write_body(wire, answer, fault)
        }
    });
    (answer.status, written.and_then(|()| wire.flush()))
}

fn write_head(wire: &mut Wire<'_>, answer: &Answer, fault: Option<&Fault>) -> io::Result<()> {
    let head = answer.head();
    wire.head_sent += head.len() as u64;
    match fault {
        Some(Fault::TrickleHead(pause)) => {
            for byte in head.bytes() {
                wire.write_all(&[byte])?;
                wire.flush()?;
                std::thread::sleep(*pause);
            }
            Ok(())
        }
        _ => wire.write_all(head.as_bytes()),
    }
}

fn write_body(wire: &mut Wire<'_>, answer: &Answer, fault: Option<&Fault>) -> io::Result<()> {
    let body = &answer.body[..];
    match fault {
        Some(Fault::DropAfter(n) | Fault::Truncate(n) | Fault::IgnoreRangeDropAfter(n)) => {
            wire.write_all(&body[..(*n).min(body.len())])?;
            wire.flush()?;
            wire.close();
            Ok(())
        }
        Some(Fault::Longer(n)) => {
            wire.write_all(body)?;
            wire.write_all(&vec![0xAB; *n])
        }
        Some(Fault::Slow(pause)) => {
            for piece in body.chunks(1024) {
                wire.write_all(piece)?;
                wire.flush()?;
                std::thread::sleep(*pause);
            }
            Ok(())
        }
        Some(Fault::Endless) if !answer.declares_length => {
            wire.write_all(body)?;
            for _ in 0..ENDLESS_KIB {
                wire.write_all(&[0x5A; 1024])?;
            }
            Ok(())
        }
        _ => wire.write_all(body),
    }
}

fn endless_interim(wire: &mut Wire<'_>) -> io::Result<()> {
    let until = Instant::now() + INTERIM_FOR;
    while Instant::now() < until {
        wire.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
