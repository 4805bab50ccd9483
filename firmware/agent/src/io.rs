//! Reading and writing otadata sectors. Every write path used by this crate
//! goes through here, so the flash-operation pattern is in one place:
//! a full rewrite is "erase the 4 KiB sector, then write the 32-byte entry"
//! (ESP-IDF's `rewrite_ota_seq` / the bootloader's `write_otadata`); a word
//! update writes one aligned 4-byte word that only clears bits (on flash whose write
//! unit is wider, the unit holding it, the other bytes rewritten unchanged).

use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlash, ReadNorFlash};

use crate::geometry::Geometry;
use crate::otadata::{ENTRY_LEN, OtaSelectEntry, SECTOR_SIZE};

/// Whether a flash's read/write/erase granularity fits otadata: entries are
/// read and written as 32 bytes at a sector start, words are updated through
/// write units that tile the entry, and a sector is erased as one 4 KiB range.
pub(crate) const fn flash_fits<F: NorFlash>() -> bool {
    F::READ_SIZE != 0
        && ENTRY_LEN.is_multiple_of(F::READ_SIZE)
        && F::WRITE_SIZE != 0
        && ENTRY_LEN.is_multiple_of(F::WRITE_SIZE)
        && F::ERASE_SIZE != 0
        && (SECTOR_SIZE as usize).is_multiple_of(F::ERASE_SIZE)
}

pub(crate) fn read_entries<F: ReadNorFlash>(
    flash: &mut F,
    geometry: &Geometry,
) -> Result<[OtaSelectEntry; 2], F::Error> {
    let mut out = [OtaSelectEntry::ERASED; 2];
    for (index, entry) in out.iter_mut().enumerate() {
        let mut buf = [0u8; ENTRY_LEN];
        flash.read(geometry.otadata_sector(index), &mut buf)?;
        *entry = OtaSelectEntry::from_bytes(&buf);
    }
    Ok(out)
}

/// Erase sector `index`, then write `entry` at its start.
pub(crate) fn rewrite_entry<F: NorFlash>(
    flash: &mut F,
    geometry: &Geometry,
    index: usize,
    entry: &OtaSelectEntry,
) -> Result<(), F::Error> {
    let at = geometry.otadata_sector(index);
    flash.erase(at, at + SECTOR_SIZE)?;
    flash.write(at, &entry.to_bytes())
}

/// Write the 4-byte word at `word_offset` within entry `index`. The caller
/// guarantees the new value only clears bits of the stored one. A flash that
/// writes wider units gets the whole unit holding the word, its other bytes as
/// stored: re-programming a byte with its own value changes no bit, even torn.
pub(crate) fn write_entry_word<F: MultiwriteNorFlash>(
    flash: &mut F,
    geometry: &Geometry,
    index: usize,
    word_offset: usize,
    value: [u8; 4],
) -> Result<(), F::Error> {
    debug_assert!(word_offset.is_multiple_of(4) && word_offset + 4 <= ENTRY_LEN);
    let entry = geometry.otadata_sector(index);
    if F::WRITE_SIZE <= 4 {
        return flash.write(entry + word_offset as u32, &value);
    }
    // flash_fits: the unit divides the entry, so the one holding the word lies inside it.
    let unit_start = word_offset / F::WRITE_SIZE * F::WRITE_SIZE;
    let mut unit = [0u8; ENTRY_LEN];
    let unit = &mut unit[..F::WRITE_SIZE];
    flash.read(entry + unit_start as u32, unit)?;
    let at = word_offset - unit_start;
    unit[at..at + 4].copy_from_slice(&value);
    flash.write(entry + unit_start as u32, unit)
}

/// Erase both sectors (ESP-IDF's "boot factory": format otadata).
pub(crate) fn erase_otadata<F: NorFlash>(
    flash: &mut F,
    geometry: &Geometry,
) -> Result<(), F::Error> {
    let r = geometry.otadata();
    // Erase exactly the whole partition like ESP-IDF when it is sector sized;
    // Geometry guarantees the offset is sector aligned and size >= 2 sectors.
    let end = r.offset + (r.size / SECTOR_SIZE) * SECTOR_SIZE;
    flash.erase(r.offset, end)
}

#[cfg(test)]
mod tests {
    use ota_flash_sim::SimNorFlash;

    use super::*;
    use crate::geometry::Region;
    use crate::otadata::{LABEL_OFFSET, OtaState};

    /// Writes an entry, then clears the first bit of its label's second word (how trial
    /// boots are counted): on flash written in `W`-byte units, only that bit changes.
    fn word_update<const W: usize>() {
        let otadata = Region::new(0x1000, 0x2000);
        let geometry = Geometry::new(otadata, None, &[Region::new(0x10000, 0x10000)]).unwrap();
        assert!(flash_fits::<SimNorFlash<W, 4096>>(), "{W}-byte words");
        let mut flash = SimNorFlash::<W, 4096>::strict(0x20000)
            .require_erase_outside(otadata.offset..otadata.offset + otadata.size);
        let entry = OtaSelectEntry::new(7, OtaState::Valid);
        rewrite_entry(&mut flash, &geometry, 1, &entry).unwrap();
        let word = LABEL_OFFSET + 4;
        write_entry_word(&mut flash, &geometry, 1, word, [0xFE, 0xFF, 0xFF, 0xFF]).unwrap();

        let mut expected = entry.to_bytes();
        expected[word] &= 0xFE;
        let at = geometry.otadata_sector(1) as usize;
        assert_eq!(
            flash.bytes()[at..at + ENTRY_LEN],
            expected,
            "{W}-byte words"
        );
        assert_eq!(
            read_entries(&mut flash, &geometry).unwrap()[1].to_bytes(),
            expected
        );
        // One erase, the entry, the word's unit.
        assert_eq!(flash.operations(), 3, "{W}-byte words");
    }

    #[test]
    fn a_word_update_changes_only_its_word_whatever_the_write_unit() {
        word_update::<1>();
        word_update::<4>();
        word_update::<8>();
        word_update::<32>();
    }

    #[test]
    fn write_units_wider_than_an_entry_do_not_fit() {
        assert!(!flash_fits::<SimNorFlash<64, 4096>>());
        assert!(!flash_fits::<SimNorFlash<12, 4096>>());
    }
}
