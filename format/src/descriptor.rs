//! The trusted-key descriptor: the keys a firmware trusts, embedded in the firmware
//! itself so that tools and the device can read them out of an ELF or an app image.
//!
//! | offset | size | field                                                     |
//! |-------:|-----:|-----------------------------------------------------------|
//! | 0      | 16   | magic [`DESCRIPTOR_MAGIC`]                                |
//! | 16     | 1    | descriptor version, `1`                                   |
//! | 17     | 1    | key count `n`, `1..=8`                                    |
//! | 18     | 2    | reserved, zero                                            |
//! | 20     | 256  | 8 slots of 32-byte raw Ed25519 public keys; slots `n..8` zero |
//!
//! The descriptor is not signed on its own: it sits inside an app image whose digest the
//! signed image header binds. Like ESP-IDF's `esp_app_desc_t`, it is found by its magic;
//! the 16-byte magic is long and random enough that a false match in code or data is not
//! a practical concern, and a reader that finds two different descriptors reports it.

use crate::error::FormatError;
use crate::key::TrustedKey;

/// The 16 bytes that start a trusted-key descriptor: `"OTAKEYS!"` followed by 8 fixed
/// random bytes.
pub const DESCRIPTOR_MAGIC: [u8; 16] = [
    b'O', b'T', b'A', b'K', b'E', b'Y', b'S', b'!', 0x9c, 0x5e, 0x12, 0xd0, 0x7b, 0x33, 0xa1, 0x6e,
];
/// Total encoded size of a descriptor.
pub const DESCRIPTOR_LEN: usize = 20 + MAX_TRUSTED_KEYS * 32;
/// The most keys one firmware can trust.
pub const MAX_TRUSTED_KEYS: usize = 8;
const DESCRIPTOR_VERSION: u8 = 1;

/// The decoded descriptor: up to [`MAX_TRUSTED_KEYS`] trusted public keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrustedKeyDescriptor {
    keys: [TrustedKey; MAX_TRUSTED_KEYS],
    count: u8,
}

impl TrustedKeyDescriptor {
    /// A descriptor over the given raw public keys. Fails at compile time (in a `const`)
    /// or panics when there are no keys or more than [`MAX_TRUSTED_KEYS`].
    pub const fn new(keys: &[[u8; 32]]) -> Self {
        assert!(!keys.is_empty(), "a firmware must trust at least one key");
        assert!(keys.len() <= MAX_TRUSTED_KEYS, "at most 8 trusted keys");
        let mut slots = [TrustedKey::new([0; 32]); MAX_TRUSTED_KEYS];
        let mut i = 0;
        while i < keys.len() {
            slots[i] = TrustedKey::new(keys[i]);
            i += 1;
        }
        TrustedKeyDescriptor {
            keys: slots,
            count: keys.len() as u8,
        }
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys[..self.count as usize]
    }

    /// Encodes the descriptor; usable in a `const` so firmware can embed it as a static.
    pub const fn to_bytes(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut out = [0u8; DESCRIPTOR_LEN];
        let mut i = 0;
        while i < 16 {
            out[i] = DESCRIPTOR_MAGIC[i];
            i += 1;
        }
        out[16] = DESCRIPTOR_VERSION;
        out[17] = self.count;
        let mut k = 0;
        while k < self.count as usize {
            let mut j = 0;
            while j < 32 {
                out[20 + k * 32 + j] = self.keys[k].public_key[j];
                j += 1;
            }
            k += 1;
        }
        out
    }

    /// Decodes a descriptor that starts at `bytes[0]` (the magic included).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let bytes = bytes.get(..DESCRIPTOR_LEN).ok_or(FormatError::Truncated)?;
        if bytes[..16] != DESCRIPTOR_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if bytes[16] != DESCRIPTOR_VERSION {
            return Err(FormatError::UnsupportedVersion);
        }
        let count = bytes[17] as usize;
        if count == 0 || count > MAX_TRUSTED_KEYS || bytes[18..20] != [0, 0] {
            return Err(FormatError::BadDescriptor);
        }
        let mut keys = [TrustedKey::new([0; 32]); MAX_TRUSTED_KEYS];
        for (i, slot) in bytes[20..].chunks_exact(32).enumerate() {
            if i < count {
                let mut k = [0u8; 32];
                k.copy_from_slice(slot);
                keys[i] = TrustedKey::new(k);
            } else if slot.iter().any(|&b| b != 0) {
                return Err(FormatError::BadDescriptor);
            }
        }
        Ok(TrustedKeyDescriptor {
            keys,
            count: count as u8,
        })
    }

    /// Finds the descriptor inside a firmware file (an ELF or an app image).
    ///
    /// Returns `Ok(None)` when no well-formed descriptor is present, and an error when two
    /// different descriptors are present (a firmware must say unambiguously whom it
    /// trusts). A magic not followed by a well-formed descriptor is skipped: firmware that
    /// calls [`Self::parse`] carries a bare copy of the magic for the comparison. A
    /// damaged descriptor therefore reads as "no descriptor", which `package` refuses.
    pub fn find_in(firmware: &[u8]) -> Result<Option<Self>, FormatError> {
        let mut scanner = DescriptorScanner::new();
        scanner.update(firmware)?;
        scanner.finish()
    }
}

/// [`TrustedKeyDescriptor::find_in`] over a firmware fed in chunks of any size, in
/// constant memory: a device reads its freshly written slot once, and hashes, validates
/// and scans it in the same pass.
#[derive(Clone, Debug)]
pub struct DescriptorScanner {
    /// Stream bytes not yet ruled out as the start of a descriptor. Candidates are
    /// examined only once the whole descriptor after them is here, so a descriptor that
    /// straddles two chunks is read like any other.
    window: [u8; SCAN_WINDOW],
    filled: usize,
    found: Option<TrustedKeyDescriptor>,
}

const SCAN_WINDOW: usize = 2 * DESCRIPTOR_LEN;

impl DescriptorScanner {
    /// A scanner at the start of a firmware.
    pub const fn new() -> Self {
        DescriptorScanner {
            window: [0; SCAN_WINDOW],
            filled: 0,
            found: None,
        }
    }

    /// Scans the next bytes of the firmware. Fails as soon as a second, different
    /// descriptor is seen.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), FormatError> {
        while !data.is_empty() {
            let take = data.len().min(SCAN_WINDOW - self.filled);
            self.window[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == SCAN_WINDOW {
                // Every start in the first half has its whole descriptor in the window.
                self.scan(DESCRIPTOR_LEN)?;
                self.window.copy_within(DESCRIPTOR_LEN.., 0);
                self.filled = DESCRIPTOR_LEN;
            }
        }
        Ok(())
    }

    /// The descriptor found, if any. A magic too close to the end to be followed by a
    /// whole descriptor is not one.
    pub fn finish(mut self) -> Result<Option<TrustedKeyDescriptor>, FormatError> {
        if let Some(starts) = self.filled.checked_sub(DESCRIPTOR_LEN - 1) {
            self.scan(starts)?;
        }
        Ok(self.found)
    }

    /// Examines the candidates starting at `window[..starts]`; the caller guarantees
    /// that each has [`DESCRIPTOR_LEN`] bytes after it in the window.
    fn scan(&mut self, starts: usize) -> Result<(), FormatError> {
        let mut from = 0;
        while let Some(pos) = find_magic(&self.window[from..starts + DESCRIPTOR_MAGIC.len() - 1]) {
            let at = from + pos;
            // The magic has no period shorter than itself, so matches never overlap.
            from = at + DESCRIPTOR_MAGIC.len();
            let Ok(desc) = TrustedKeyDescriptor::parse(&self.window[at..at + DESCRIPTOR_LEN])
            else {
                continue;
            };
            match self.found {
                Some(prev) if prev != desc => return Err(FormatError::AmbiguousDescriptor),
                _ => self.found = Some(desc),
            }
            if from >= starts {
                break;
            }
        }
        Ok(())
    }
}

impl Default for DescriptorScanner {
    fn default() -> Self {
        Self::new()
    }
}

fn find_magic(haystack: &[u8]) -> Option<usize> {
    haystack
        .windows(DESCRIPTOR_MAGIC.len())
        .position(|w| w == DESCRIPTOR_MAGIC)
}
