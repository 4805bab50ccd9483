//! TLS 1.3 over a [`Connection`] with embedded-tls: ECDHE on P-256, AES-128-GCM, and no
//! certificate check. The agent trusts signatures, never the transport (R4): TLS is here
//! because some hosts serve only https, and it keeps a passive listener from reading
//! what a device fetches. An active attacker can still impersonate the host, and gains
//! nothing from it the plain-HTTP threat tests do not already cover.

use embedded_tls::{
    Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, TlsError, UnsecureProvider,
};
use rand_core::CryptoRngCore;

use super::Connection;
use super::stream::Io;
use crate::http::HttpError;

/// A TLS session over the connection, on the client's record buffers.
pub type Session<'c, C> = TlsConnection<'c, Io<'c, C>, Aes128GcmSha256>;

/// Performs the handshake with `host` (sent as SNI, which virtual hosts and CDNs need).
pub async fn open<'c, C: Connection>(
    io: Io<'c, C>,
    host: &str,
    read_record: &'c mut [u8],
    write_record: &'c mut [u8],
    random: &mut dyn CryptoRngCore,
) -> Result<Session<'c, C>, HttpError> {
    let mut session = TlsConnection::new(io, read_record, write_record);
    // RSA signature schemes too: many hosts still present RSA certificates, and the
    // handshake must agree on a scheme even though the certificate is not checked.
    let config = TlsConfig::new()
        .with_server_name(host)
        .enable_rsa_signatures();
    session
        .open(TlsContext::new(
            &config,
            UnsecureProvider::new::<Aes128GcmSha256>(random),
        ))
        .await
        .map_err(error)?;
    Ok(session)
}

pub async fn read<C: Connection>(
    session: &mut Session<'_, C>,
    buf: &mut [u8],
) -> Result<usize, HttpError> {
    match session.read(buf).await {
        Ok(n) => Ok(n),
        // close_notify: the server ended the stream properly.
        Err(TlsError::ConnectionClosed) => Ok(0),
        Err(e) => Err(error(e)),
    }
}

pub async fn write_all<C: Connection>(
    session: &mut Session<'_, C>,
    mut bytes: &[u8],
) -> Result<(), HttpError> {
    while !bytes.is_empty() {
        let n = session.write(bytes).await.map_err(error)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

pub async fn flush<C: Connection>(session: &mut Session<'_, C>) -> Result<(), HttpError> {
    session.flush().await.map_err(error)
}

fn error(e: TlsError) -> HttpError {
    match e {
        TlsError::Io(embedded_io_async::ErrorKind::TimedOut) => HttpError::Timeout,
        // The transport failed, or ended in the middle of a record.
        TlsError::Io(_) | TlsError::IoError => HttpError::ConnectionLost,
        _ => HttpError::Tls,
    }
}
