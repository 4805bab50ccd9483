//! What a device requires of the bytes it installs, wherever they are checked: read back
//! from its slot ([`crate::install::read_back_slot`]), or decoded on a build machine
//! ([`check_payload`], which `ota-sign verify`, `package` and `release` run). One rule set
//! for both, so a release passes the host's checks exactly when a device installs it.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use ota_format::diff::{DiffPatcher, SliceSource, control_offset};
use ota_format::esp::secure_boot::SignatureSector;
use ota_format::esp::{
    AppImageError, AppImageValidator, DigestPolicy, SignatureSectorPolicy, ValidateOptions,
};
use ota_format::{
    ChipId, Compression, DescriptorScanner, ImageHeader, TrustedKeyDescriptor, Version,
};
use ota_format::{DeltaEncoding, DeltaInfo};
use ota_zstd::SliceOutput;

use crate::zstd::DecompressError;

use crate::install::InstallError;
use crate::zstd::{FrameDecoder, MAX_WINDOW_LOG, decoder_config};

/// What the bytes written to a slot say about themselves, once read back from flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotContents {
    /// The app descriptor's version, when it has one and it is semver.
    pub app_version: Option<Version>,
    /// The keys the new firmware will trust, when it carries a well-formed descriptor.
    pub trusted_keys: Option<TrustedKeyDescriptor>,
    /// The Secure Boot V2 signature sector after the app image, when there is one.
    pub signature_sector: Option<SignatureSector>,
}

/// Firmware a device may switch to: its version is the signed one and it trusts a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptedFirmware {
    /// Version in the app image's descriptor (equal to the signed header's).
    pub app_version: Version,
    /// The keys the new firmware trusts.
    pub trusted_keys: TrustedKeyDescriptor,
}

impl SlotContents {
    /// The last rules before a switch. The header's device type and chip were matched
    /// by the verifier and the app image's chip id by [`ContentCheck`]; the app
    /// descriptor has no device-type field (its project name is the build's crate name),
    /// so the version is what remains to tie the running image to what was signed.
    pub fn accept(self, header: &ImageHeader) -> Result<AcceptedFirmware, InstallError> {
        let app_version = self.app_version.ok_or(InstallError::NoAppVersion)?;
        let signed = header.info.version;
        if app_version != signed {
            return Err(InstallError::AppVersionMismatch {
                signed,
                installed: app_version,
            });
        }
        let trusted_keys = self.trusted_keys.ok_or(InstallError::NoTrustedKeys)?;
        Ok(AcceptedFirmware {
            app_version,
            trusted_keys,
        })
    }
}

/// Checks the installed bytes as they pass in pieces: their SHA-256 must be the signed
/// installed digest, and they must form exactly one valid app image for the chip. The
/// same pass finds the app version and the trusted-key descriptor. The bytes are hashed
/// once: the app-image validator's SHA-256 covers everything installed (the image, and a
/// Secure Boot signature sector with its padding), which is the installed digest.
pub struct ContentCheck {
    validator: AppImageValidator,
    keys: DescriptorScanner,
    size: u32,
    seen: u32,
}

impl ContentCheck {
    /// A check of `size` bytes meant for `chip`.
    pub fn new(chip: ChipId, size: u32) -> Self {
        ContentCheck {
            validator: AppImageValidator::new(ValidateOptions {
                chip: Some(chip),
                digest: DigestPolicy::Required,
                max_len: size,
                // What the device installs is what its bootloader checks: the signature
                // sector of a Secure Boot V2 image is part of it, and nothing else after
                // the image.
                signature_sector: SignatureSectorPolicy::Accept,
            }),
            keys: DescriptorScanner::new(),
            size,
            seen: 0,
        }
    }

    /// The next installed bytes.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), InstallError> {
        self.keys.update(bytes)?;
        let used = self.validator.update(bytes)?;
        if used < bytes.len() {
            return Err(AppImageError::TrailingBytes {
                len: self.size - self.seen - used as u32,
            }
            .into());
        }
        self.seen += bytes.len() as u32;
        Ok(())
    }

    /// Ends the check against the signed header.
    pub fn finish(self, header: &ImageHeader) -> Result<SlotContents, InstallError> {
        let info = self.validator.finish()?;
        header.check_installed_digest(&info.image_sha256)?;
        let app_version = info
            .app_descriptor()
            .ok()
            .and_then(|d| Version::parse(d.version()));
        Ok(SlotContents {
            app_version,
            trusted_keys: self.keys.finish()?,
            signature_sector: info.signature_sector,
        })
    }
}

/// Refuses decompressed output beyond the signed installed size, as it grows.
pub(crate) fn check_output_len(total: u64, image_size: u32) -> Result<(), InstallError> {
    if total > u64::from(image_size) {
        return Err(InstallError::OutputTooLong);
    }
    Ok(())
}

/// A payload that passed every rule a device applies after the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedPayload {
    /// The installed image (the ESP-IDF app image a device writes to its slot).
    pub app_image: Vec<u8>,
    /// What the device would switch to.
    pub firmware: AcceptedFirmware,
}

/// Decodes the payload of a verified image with the device's decoder and applies every
/// rule a device with a `2^max_window_log` window applies before switching to it
/// (zstd frame rules, output length, installed digest, app image for `chip`, app version,
/// trusted keys). For hosts: it holds the whole installed image in memory.
pub fn check_payload(
    header: &ImageHeader,
    payload: &[u8],
    chip: ChipId,
    max_window_log: u8,
) -> Result<CheckedPayload, InstallError> {
    if max_window_log > MAX_WINDOW_LOG {
        return Err(InstallError::WindowLogAboveAgents(max_window_log));
    }
    let size = header.info.image_size;
    let app_image = decode_payload(header.info.compression, payload, &[], size, max_window_log)?;
    if app_image.len() as u64 != u64::from(size) {
        return Err(InstallError::OutputTooShort);
    }
    let mut check = ContentCheck::new(chip, size);
    check.update(&app_image)?;
    let firmware = check.finish(header)?.accept(header)?;
    Ok(CheckedPayload {
        app_image,
        firmware,
    })
}

/// Decodes `payload` (compressed with `compression`) as a device with a method-1 window
/// limit of `2^max_window_log` does, with the output in RAM instead of a slot; `prefix` is
/// a delta's base image (empty for a full image). For hosts: `ota-sign` checks images and
/// makes deltas with this, so it refuses exactly what devices refuse while decoding.
pub fn decode_payload(
    compression: Compression,
    payload: &[u8],
    prefix: &[u8],
    size: u32,
    max_window_log: u8,
) -> Result<Vec<u8>, InstallError> {
    let Some(config) = decoder_config(compression, max_window_log, prefix.len() as u64) else {
        check_output_len(payload.len() as u64, size)?;
        return Ok(payload.to_vec());
    };
    // A frame writing past the signed size fills the buffer (`OutputTooLong`).
    let mut out = vec![0u8; size as usize];
    // Boxed: the decoder holds its ring and block buffer inline (~22 KB).
    let mut decoder = Box::new(FrameDecoder::new(config));
    let mut sink = SliceOutput::with_prefix(prefix, &mut out);
    decoder.feed(payload, &mut sink)?;
    // As a device does after each piece (output still in the ring counts).
    check_output_len(decoder.produced(), size)?;
    let len = decoder.finish(&mut sink)?;
    out.truncate(len as usize);
    Ok(out)
}

/// Decodes a delta's payload against `base` as a device does (the agent's decoder and
/// limits, the difference stream applied by the same [`DiffPatcher`]), with the output in
/// RAM. `image_size` is the target header's. For hosts: `ota-sign` checks every delta it
/// makes with this.
pub fn decode_delta_payload(
    info: &DeltaInfo,
    payload: &[u8],
    base: &[u8],
    image_size: u32,
) -> Result<Vec<u8>, InstallError> {
    let compression = info.compression();
    match info.encoding {
        DeltaEncoding::PatchFrom => {
            decode_payload(compression, payload, base, image_size, MAX_WINDOW_LOG)
        }
        DeltaEncoding::Difference { stream_size } => {
            let stream = decode_payload(compression, payload, &[], stream_size, MAX_WINDOW_LOG)?;
            if stream.len() != stream_size as usize {
                return Err(InstallError::OutputTooShort);
            }
            let corrupt = InstallError::Decompress(DecompressError::Corrupt);
            let base_size = u32::try_from(base.len()).map_err(|_| corrupt)?;
            let mut patcher =
                DiffPatcher::new(image_size, base_size, stream_size).map_err(|_| corrupt)?;
            let mut source = SliceSource {
                stream: &stream,
                base,
                control_offset: control_offset(image_size),
            };
            let mut out = vec![0u8; image_size as usize];
            patcher.fill(&mut source, &mut out).map_err(|_| corrupt)?;
            patcher.finish().map_err(|_| corrupt)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use ota_flash_sim::SimFlash as TestFlash;
    use ota_format::{Compression, Expectations, Manifest, TrustedKeys, verify_image};
    use ota_testkit::fixture::{self as ts, Spec};
    use ota_testkit::release::{
        Release, build_with_payload, compress, skippable_frame, with_dictionary_id,
    };

    use super::*;
    use crate::install::Installer;
    use crate::install::tests::{Buffers, target};
    use crate::zstd::DecompressError;

    /// What a device does with the release: the whole install, into flash.
    fn on_device(release: &Release) -> Result<(), InstallError> {
        let keys = ts::trusted();
        let manifest = Manifest::verify(&release.manifest, &TrustedKeys::new(&keys)).unwrap();
        let mut buffers = Buffers::default();
        let mut flash = TestFlash::strict(0x40000);
        let mut installer = Installer::<TestFlash>::new(
            TrustedKeys::new(&keys),
            &manifest,
            target(),
            buffers.install(),
        )?;
        for piece in release.ota.chunks(4096) {
            installer.feed(&mut flash, piece)?;
        }
        installer.finish(&mut flash).map(drop)
    }

    /// What a host does with it, for devices like [`target`].
    fn on_host(release: &Release) -> Result<(), InstallError> {
        let keys = ts::trusted();
        let header = verify_image(
            &release.ota,
            TrustedKeys::new(&keys),
            Expectations::default(),
        )?
        .header;
        let payload = &release.ota[header.header_len()..];
        check_payload(&header, payload, ts::chip(), target().max_window_log).map(drop)
    }

    /// The release of `app` built from the default spec after `change`.
    fn release_with(app: Vec<u8>, change: impl FnOnce(&mut Spec)) -> Release {
        let mut spec = Spec::default();
        change(&mut spec);
        ts::release(&spec, app)
    }

    fn zstd(app: Vec<u8>, payload: Vec<u8>) -> Release {
        build_with_payload(
            &Spec::default(),
            app,
            payload,
            Compression::Zstd { window_log: 12 },
        )
    }

    #[test]
    fn host_and_device_refuse_the_same_payloads() {
        let app = ts::app_image("1.1.0", 20_000);
        let frame = compress(&app, 12);
        let signed_len = app.len() as u32;
        let cases: Vec<(&str, Release, Result<(), InstallError>)> = std::vec![
            ("valid", release_with(app.clone(), |_| {}), Ok(())),
            (
                "small frame above the declared window",
                release_with(ts::app_image("1.1.0", 6_000), |s| {
                    s.window_log = Some(14);
                    s.declared_window_log = Some(12);
                }),
                Err(DecompressError::WindowTooLarge {
                    requested: 0,
                    allowed: 4096,
                }
                .into()),
            ),
            (
                "frame above the device's window",
                release_with(ts::app_image("1.1.0", 40_000), |s| s.window_log = Some(16)),
                Err(DecompressError::WindowTooLarge {
                    requested: 0,
                    allowed: 16384,
                }
                .into()),
            ),
            (
                "skippable frame after the data",
                zstd(app.clone(), [frame.clone(), skippable_frame(b"x")].concat()),
                Err(DecompressError::BadFrameMagic.into()),
            ),
            (
                "compressed block above 8 KiB",
                build_with_payload(
                    &Spec::default(),
                    app.clone(),
                    {
                        // Incompressible enough that 16 KiB blocks stay above 8 KiB.
                        let mut x = 7u32;
                        let data: Vec<u8> = (0..30_000)
                            .map(|_| {
                                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                                (x >> 24) as u8 & 0x3F
                            })
                            .collect();
                        ota_testkit::release::compress_blocks(&data, 14, 128 * 1024)
                    },
                    Compression::Zstd { window_log: 14 }
                ),
                Err(DecompressError::BlockTooLarge { size: 0, max: 8192 }.into()),
            ),
            (
                "skippable frame first",
                zstd(app.clone(), [skippable_frame(b"x"), frame.clone()].concat()),
                Err(DecompressError::BadFrameMagic.into()),
            ),
            (
                "dictionary id",
                zstd(app.clone(), with_dictionary_id(&frame, 1)),
                Err(DecompressError::Dictionary.into()),
            ),
            (
                "reserved frame header bit",
                zstd(app.clone(), {
                    let mut f = frame.clone();
                    f[4] |= 0x08;
                    f
                }),
                Err(DecompressError::BadHeader.into()),
            ),
            (
                "reserved block type",
                zstd(app.clone(), {
                    // The first block header follows the 6-byte frame header (magic,
                    // descriptor, window) and the frame content size; type bits 1-2 = 3.
                    let mut f = frame.clone();
                    let at = 6 + [0, 2, 4, 8][usize::from(f[4] >> 6)];
                    f[at] |= 0x06;
                    f
                }),
                Err(DecompressError::BadHeader.into()),
            ),
            (
                "bytes after the last frame",
                zstd(app.clone(), [frame.clone(), std::vec![0; 8]].concat()),
                Err(DecompressError::BadFrameMagic.into()),
            ),
            (
                "frame cut short",
                zstd(app.clone(), frame[..frame.len() - 5].to_vec()),
                Err(DecompressError::Truncated.into()),
            ),
            (
                "output longer than signed",
                release_with(app.clone(), |s| {
                    s.declared_image_size = Some(signed_len - 1)
                }),
                Err(InstallError::OutputTooLong),
            ),
            (
                "output shorter than signed",
                release_with(app.clone(), |s| {
                    s.declared_image_size = Some(signed_len + 1)
                }),
                Err(InstallError::OutputTooShort),
            ),
            (
                "not an app image",
                release_with(std::vec![0x5A; 5000], |s| s.window_log = None),
                Err(AppImageError::BadMagic { found: 0x5A }.into()),
            ),
            (
                "app version other than signed",
                release_with(ts::app_image("1.0.0", 20_000), |_| {}),
                Err(InstallError::AppVersionMismatch {
                    signed: Version::parse("1.1.0").unwrap(),
                    installed: Version::parse("1.0.0").unwrap(),
                }),
            ),
        ];
        for (name, release, expected) in cases {
            let host = on_host(&release);
            assert_eq!(host, on_device(&release), "{name}: host and device differ");
            // The requested window depends on the encoder; the rule is what matters.
            let kind = |r: Result<(), InstallError>| match r {
                Err(InstallError::Decompress(DecompressError::WindowTooLarge {
                    allowed, ..
                })) => Err(DecompressError::WindowTooLarge {
                    requested: 0,
                    allowed,
                }
                .into()),
                Err(InstallError::Decompress(DecompressError::BlockTooLarge { max, .. })) => {
                    Err(DecompressError::BlockTooLarge { size: 0, max }.into())
                }
                r => r,
            };
            assert_eq!(kind(host), expected, "{name}");
        }
    }

    #[test]
    fn host_refuses_a_window_no_agent_accepts() {
        let release = ts::release(&Spec::default(), ts::app_image("1.1.0", 5_000));
        let keys = ts::trusted();
        let header = verify_image(
            &release.ota,
            TrustedKeys::new(&keys),
            Expectations::default(),
        )
        .unwrap()
        .header;
        let payload = &release.ota[header.header_len()..];
        assert!(check_payload(&header, payload, ts::chip(), MAX_WINDOW_LOG).is_ok());
        assert!(matches!(
            check_payload(&header, payload, ts::chip(), MAX_WINDOW_LOG + 1),
            Err(InstallError::WindowLogAboveAgents(log)) if log == MAX_WINDOW_LOG + 1
        ));
    }
}
