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
use ota_format::esp::{
    AppImageInfo, AppImageValidator, DigestPolicy, SignatureSectorPolicy, ValidateOptions,
};

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
    scan_slot(flash, region, chip, buf, SignatureSectorPolicy::Accept)?.signature_sector
}

/// The app image in `region` as installed: its length (with a Secure Boot signature
/// sector, to the sector's end) and the SHA-256 of those bytes, which is what a signed
/// `.ota` header binds as the installed-image digest (and a delta as its base). `None`
/// when the slot holds no valid app image for `chip`. Reads the image and the sector
/// after it, and without a signature sector the image again.
pub fn slot_app_image<F: ReadNorFlash>(
    flash: &mut F,
    region: Region,
    chip: ChipId,
    buf: &mut [u8],
) -> Option<AppImageInfo> {
    // With a sector, the installed image ends with it; without one, what follows the
    // image in the slot (erased flash, an older image's rest) is not part of it, and
    // the first pass refuses it as trailing bytes.
    scan_slot(flash, region, chip, buf, SignatureSectorPolicy::Accept).or_else(|| {
        scan_slot(
            flash,
            region,
            chip,
            buf,
            SignatureSectorPolicy::StopAtImageEnd,
        )
    })
}

fn scan_slot<F: ReadNorFlash>(
    flash: &mut F,
    region: Region,
    chip: ChipId,
    buf: &mut [u8],
    signature_sector: SignatureSectorPolicy,
) -> Option<AppImageInfo> {
    let mut v = AppImageValidator::new(ValidateOptions {
        chip: Some(chip),
        digest: DigestPolicy::Required,
        max_len: region.size,
        signature_sector,
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
    v.finish().ok()
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

#[cfg(test)]
mod tests {
    extern crate std;

    use ota_flash_sim::SimFlash as TestFlash;
    use ota_format::esp::validate;
    use ota_testkit::fixture::{app_image, chip};
    use ota_testkit::{secure_boot_key_digest, secure_boot_signed};

    use super::*;

    const SLOT: Region = Region::new(0x10000, 0x20000);

    fn sector_of(image: &[u8]) -> SignatureSector {
        validate(image, ValidateOptions::default())
            .unwrap()
            .signature_sector
            .unwrap()
    }

    /// A slot holding `bytes`, the rest erased.
    fn slot_with(bytes: &[u8]) -> TestFlash {
        let mut flash = TestFlash::strict(0x30000);
        let at = SLOT.offset as usize;
        flash.bytes_mut()[at..at + bytes.len()].copy_from_slice(bytes);
        flash
    }

    fn scan(flash: &mut TestFlash) -> Option<SignatureSector> {
        slot_signature_sector(flash, SLOT, chip(), &mut [0u8; 1024])
    }

    #[test]
    fn the_running_slot_s_sector_is_found_whatever_follows_it() {
        let signed = secure_boot_signed(&app_image("1.0.0", 20_000), 1);
        let mut bytes = signed.clone();
        bytes.extend_from_slice(&[0x42; 8192]);
        assert_eq!(scan(&mut slot_with(&bytes)), Some(sector_of(&signed)));
    }

    #[test]
    fn an_unsigned_running_image_has_no_sector_even_over_an_old_one() {
        let unsigned = app_image("1.0.0", 20_000);
        assert_eq!(scan(&mut slot_with(&unsigned)), None);
        // An older, longer signed image left its sector where a sector of this image
        // would be: it signs other bytes, so it is not this image's.
        let old = secure_boot_signed(&app_image("0.9.0", 20_000), 1);
        let mut bytes = old.clone();
        bytes[..unsigned.len()].copy_from_slice(&unsigned);
        assert_eq!(scan(&mut slot_with(&bytes)), None);
    }

    #[test]
    fn a_new_image_passes_when_any_of_its_blocks_names_a_running_key() {
        let app = app_image("1.1.0", 10_000);
        let running = sector_of(&secure_boot_signed(&app_image("1.0.0", 10_000), 1));
        let new_same = sector_of(&secure_boot_signed(&app, 1));
        let new_other = sector_of(&secure_boot_signed(&app, 2));
        assert_eq!(check_new_image(Some(&new_same), Some(&running)), Ok(()));
        assert_eq!(check_new_image(Some(&new_other), None), Ok(()));
        assert_eq!(check_new_image(None, None), Ok(()));
        assert_eq!(
            check_new_image(Some(&new_other), Some(&running)),
            Err(InstallError::SecureBootKeyNotTrusted {
                new: secure_boot_key_digest(2),
                running: secure_boot_key_digest(1),
            })
        );
        assert_eq!(
            check_new_image(None, Some(&running)),
            Err(InstallError::SecureBootSignatureMissing)
        );
        // Two blocks, the second with the running key (a key rotation in progress).
        let mut two = secure_boot_signed(&app, 2);
        let one = secure_boot_signed(&app, 1);
        let start = two.len() - 4096;
        let block = 1216;
        two[start + block..start + 2 * block].copy_from_slice(&one[start..start + block]);
        let rotated = sector_of(&two);
        assert_eq!(rotated.blocks().count(), 2);
        assert_eq!(check_new_image(Some(&rotated), Some(&running)), Ok(()));
    }
}
