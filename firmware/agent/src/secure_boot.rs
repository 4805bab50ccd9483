//! Refusing what a Secure Boot V2 bootloader would refuse, before otadata points at it.
//!
//! On a device with Secure Boot V2, the bootloader only starts an app whose signature
//! sector has a block signed by a key whose digest is burned in eFuse. ESP-IDF's own OTA
//! (`esp_ota_end` with `CONFIG_SECURE_SIGNED_ON_UPDATE`) checks a new image against the
//! key digests named by the *running* app's signature blocks, since the running app was
//! necessarily signed with a key the eFuses accept. The agent does the same, so a
//! release signed with the wrong Secure Boot key is refused at install time instead of
//! failing at the next boot:
//!
//! * the running image has no signature sector: Secure Boot is off here, nothing to check;
//! * it has one: the new image must carry one too, and one of its blocks must name a key
//!   digest that a running block names.
//!
//! The agent compares key digests; it does not verify the RSA-PSS / ECDSA signature
//! itself (the bootloader does, in hardware; every image is also Ed25519-signed). See
//! `ota_format::esp::secure_boot` for the sector's layout.

use embedded_storage::nor_flash::ReadNorFlash;
use ota_format::ChipId;
use ota_format::esp::secure_boot::{
    SIGNATURE_SECTOR_LEN, SecureBootKeyDigest, SignatureSector, signature_sector_offset,
};
use ota_format::esp::{AppImageValidator, DigestPolicy, SignatureSectorPolicy, ValidateOptions};

use crate::geometry::Region;
use crate::install::InstallError;

/// The signature sector of the app image in `region`, when it carries a well-formed
/// one. Reads the image and at most the sector after it (never the stale rest of the
/// slot); anything unreadable or malformed counts as "no sector".
pub fn slot_signature_sector<F: ReadNorFlash>(
    flash: &mut F,
    region: Region,
    chip: ChipId,
    buf: &mut [u8],
) -> Option<SignatureSector> {
    let mut v = AppImageValidator::new(ValidateOptions {
        chip: Some(chip),
        digest: DigestPolicy::Required,
        max_len: region.size,
        signature_sector: SignatureSectorPolicy::Accept,
    });
    let mut limit = region.size;
    let mut at = 0u32;
    while at < limit && !v.is_done() {
        if let Some(len) = v.image_len() {
            let end = signature_sector_offset(len)?.checked_add(SIGNATURE_SECTOR_LEN)?;
            limit = limit.min(end);
        }
        let n = (limit - at).min(buf.len() as u32) as usize;
        // An image that ends inside this chunk leaves at most 8 KiB to its sector's end,
        // more than a chunk: the limit above is never overshot.
        flash.read(region.offset + at, &mut buf[..n]).ok()?;
        let used = v.update(&buf[..n]).ok()?;
        at += used as u32;
        if used < n {
            break;
        }
    }
    v.finish().ok()?.signature_sector
}

/// Whether the new image's signature sector `new` passes a bootloader that accepts the
/// keys the running image's sector `running` names.
pub fn check_new_image(
    new: Option<&SignatureSector>,
    running: Option<&SignatureSector>,
) -> Result<(), InstallError> {
    let Some(running) = running else {
        return Ok(());
    };
    let trusted = running.blocks().next().map(|b| b.key_digest);
    let Some(new) = new else {
        return Err(InstallError::SecureBootSignatureMissing);
    };
    if new.blocks().any(|b| running.names_key(&b.key_digest)) {
        return Ok(());
    }
    Err(InstallError::SecureBootKeyNotTrusted {
        new: new
            .blocks()
            .next()
            .map_or(SecureBootKeyDigest([0; 32]), |b| b.key_digest),
        running: trusted.unwrap_or(SecureBootKeyDigest([0; 32])),
    })
}
