//! Streaming verification of an `.ota` image in constant memory.

use sha2::{Digest, Sha256};

use crate::error::{FormatError, MismatchedField};
use crate::image::{self, HeaderBuffer, ImageHeader};
use crate::key::TrustedKeys;
use crate::manifest::VerifiedManifest;
use crate::{ChipId, DeviceType};

/// What the image must be, beyond carrying a valid signature.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expectations<'m> {
    /// The verified manifest that named this image: the header must be exactly the one it
    /// binds, and agree with it field by field.
    pub manifest: Option<&'m VerifiedManifest>,
    /// The device type the image must be for.
    pub device_type: Option<DeviceType>,
    /// The chip the image must be for.
    pub chip: Option<ChipId>,
}

/// Verifies an image fed in chunks of any size, holding at most one header in memory.
///
/// The header is checked (magic and version from the first bytes, then signature and
/// expectations once complete) before a single payload byte is handed out. Payload bytes
/// are handed back to the caller as they arrive, to be decompressed into an *inactive*
/// slot; they are trustworthy only once [`ImageVerifier::finish`] has confirmed the
/// payload digest, so nothing may point at that slot before then.
pub struct ImageVerifier<'k, 'm> {
    keys: TrustedKeys<'k>,
    expect: Expectations<'m>,
    header_buf: HeaderBuffer,
    header: Option<ImageHeader>,
    payload: PayloadDigest,
    failed: Option<FormatError>,
}

/// The result of a complete, successful verification.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedImage {
    /// The verified header.
    pub header: ImageHeader,
}

impl<'k, 'm> ImageVerifier<'k, 'm> {
    /// A verifier accepting signatures from `keys` and checking `expect`.
    pub fn new(keys: TrustedKeys<'k>, expect: Expectations<'m>) -> Self {
        ImageVerifier {
            keys,
            expect,
            header_buf: HeaderBuffer::new(),
            header: None,
            payload: PayloadDigest::new(),
            failed: None,
        }
    }

    /// The verified header, once the first `header_len` bytes have been fed.
    pub fn header(&self) -> Option<&ImageHeader> {
        self.header.as_ref()
    }

    /// Payload bytes fed so far.
    pub fn payload_seen(&self) -> u32 {
        self.payload.seen()
    }

    /// Feeds the next bytes of the file and returns the part of `data` that is payload.
    ///
    /// After an error the verifier stays failed and returns that error again.
    pub fn feed<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], FormatError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.feed_inner(data);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn feed_inner<'d>(&mut self, mut data: &'d [u8]) -> Result<&'d [u8], FormatError> {
        if self.header.is_none() {
            data = self.fill_header(data)?;
            if self.header.is_none() {
                return Ok(&[]);
            }
        }
        let header = self.header.as_ref().ok_or(FormatError::Truncated)?;
        self.payload.take(data, header.info.payload_size)
    }

    /// Copies header bytes in; returns what is left of `data` after the header.
    ///
    /// Never inlined: the signature check below takes ~7 KiB of stack (Ed25519's tables
    /// and field temporaries). Inlined into `feed`, that frame would be reserved on every
    /// payload chunk too, on top of the decompressor the caller runs beside the verifier;
    /// out of line, only the calls that complete the header pay for it.
    #[inline(never)]
    fn fill_header<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], FormatError> {
        let (rest, complete) = self.header_buf.fill(data, image::check_prefix)?;
        if let Some(bytes) = complete {
            let header = image::decode_header(bytes, &self.keys)?;
            check_expectations(&header, &self.expect)?;
            self.header = Some(header);
        }
        Ok(rest)
    }

    /// Completes verification: the whole payload arrived and matches its signed digest.
    pub fn finish(self) -> Result<VerifiedImage, FormatError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let header = self.header.ok_or(FormatError::Truncated)?;
        self.payload
            .finish(header.info.payload_size, &header.info.payload_sha256)?;
        Ok(VerifiedImage { header })
    }
}

/// The payload of a streamed object (image or delta): counted against its declared size
/// and hashed, to be compared with its signed digest at the end.
pub(crate) struct PayloadDigest {
    seen: u32,
    hash: Sha256,
}

impl PayloadDigest {
    pub(crate) fn new() -> Self {
        PayloadDigest {
            seen: 0,
            hash: Sha256::new(),
        }
    }

    /// Payload bytes taken so far.
    pub(crate) fn seen(&self) -> u32 {
        self.seen
    }

    /// Takes `data` as payload, or refuses it whole if it runs past the `declared` size
    /// (trailing bytes are refused as they arrive, before any digest is known).
    pub(crate) fn take<'d>(
        &mut self,
        data: &'d [u8],
        declared: u32,
    ) -> Result<&'d [u8], FormatError> {
        let remaining = declared - self.seen;
        let len = u32::try_from(data.len()).map_err(|_| FormatError::TrailingBytes)?;
        if len > remaining {
            return Err(FormatError::TrailingBytes);
        }
        self.hash.update(data);
        self.seen += len;
        Ok(data)
    }

    /// The whole `declared` payload arrived and hashes to `expected`.
    pub(crate) fn finish(self, declared: u32, expected: &[u8; 32]) -> Result<(), FormatError> {
        if self.seen != declared {
            return Err(FormatError::Truncated);
        }
        let digest: [u8; 32] = self.hash.finalize().into();
        if &digest != expected {
            return Err(FormatError::PayloadDigestMismatch);
        }
        Ok(())
    }
}

/// Step 11 of header validation: what the caller expects of the image.
pub(crate) fn check_expectations(
    header: &ImageHeader,
    expect: &Expectations<'_>,
) -> Result<(), FormatError> {
    let info = &header.info;
    if let Some(t) = expect.device_type
        && info.device_type != t
    {
        return Err(FormatError::WrongDeviceType);
    }
    if let Some(c) = expect.chip
        && info.chip != c
    {
        return Err(FormatError::WrongChip);
    }
    if let Some(m) = expect.manifest {
        let m = m.manifest();
        if header.header_sha256() != &m.image_header_sha256
            || header.file_size() != m.image_file_size
        {
            return Err(FormatError::ManifestImageMismatch);
        }
        let mismatch = |f| Err(FormatError::ManifestFieldMismatch(f));
        if info.device_type != m.device_type {
            return mismatch(MismatchedField::DeviceType);
        }
        if info.chip != m.chip {
            return mismatch(MismatchedField::Chip);
        }
        if info.version != m.version {
            return mismatch(MismatchedField::Version);
        }
        if info.security_counter != m.security_counter {
            return mismatch(MismatchedField::SecurityCounter);
        }
        if info.image_size != m.image_size {
            return mismatch(MismatchedField::ImageSize);
        }
    }
    Ok(())
}

/// Verifies a complete image held in memory.
pub fn verify_image(
    bytes: &[u8],
    keys: TrustedKeys<'_>,
    expect: Expectations<'_>,
) -> Result<VerifiedImage, FormatError> {
    let mut v = ImageVerifier::new(keys, expect);
    v.feed(bytes)?;
    v.finish()
}
