//! Streaming XXH64 (seed 0), the content checksum of RFC 8878 §3.1.1.
//!
//! Written here rather than taken from a crate: it is 60 lines, and the decoder feeds it
//! from its output ring in pieces, so only the streaming form is needed.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

const STRIPE: usize = 32;

#[derive(Clone, Debug)]
pub(crate) struct Xxh64 {
    lanes: [u64; 4],
    pending: [u8; STRIPE],
    pending_len: usize,
    total_len: u64,
}

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(acc: u64, lane: u64) -> u64 {
    (acc ^ round(0, lane)).wrapping_mul(P1).wrapping_add(P4)
}

fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

impl Xxh64 {
    pub(crate) const fn new() -> Self {
        Self {
            lanes: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)],
            pending: [0; STRIPE],
            pending_len: 0,
            total_len: 0,
        }
    }

    fn stripe(&mut self, stripe: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(stripe.chunks_exact(8)) {
            *lane = round(*lane, le64(word));
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.total_len += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (STRIPE - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < STRIPE {
                return;
            }
            let stripe = self.pending;
            self.stripe(&stripe);
            self.pending_len = 0;
        }
        let mut stripes = bytes.chunks_exact(STRIPE);
        for stripe in &mut stripes {
            self.stripe(stripe);
        }
        let rest = stripes.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    pub(crate) fn digest(&self) -> u64 {
        let [v1, v2, v3, v4] = self.lanes;
        let mut hash = if self.total_len >= STRIPE as u64 {
            let mut acc = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for lane in self.lanes {
                acc = merge(acc, lane);
            }
            acc
        } else {
            P5
        };
        hash = hash.wrapping_add(self.total_len);
        let mut tail = &self.pending[..self.pending_len];
        while tail.len() >= 8 {
            hash ^= round(0, le64(tail));
            hash = hash.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            tail = &tail[8..];
        }
        if tail.len() >= 4 {
            let word = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
            hash ^= u64::from(word).wrapping_mul(P1);
            hash = hash.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            tail = &tail[4..];
        }
        for &byte in tail {
            hash ^= u64::from(byte).wrapping_mul(P5);
            hash = hash.rotate_left(11).wrapping_mul(P1);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(P2);
        hash ^= hash >> 29;
        hash = hash.wrapping_mul(P3);
        hash ^= hash >> 32;
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::Xxh64;

    fn oneshot(bytes: &[u8]) -> u64 {
        let mut hasher = Xxh64::new();
        hasher.update(bytes);
        hasher.digest()
    }

    #[test]
    fn known_digests() {
        // Reference values of XXH64 with seed 0 (xxhash's own test vectors).
        assert_eq!(oneshot(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(oneshot(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(oneshot(b"abc"), 0x44BC_2CF5_AD77_0999);
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let data: [u8; 200] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for split in [0, 1, 5, 31, 32, 33, 64, 100, 199, 200] {
            let mut hasher = Xxh64::new();
            hasher.update(&data[..split]);
            hasher.update(&data[split..]);
            assert_eq!(hasher.digest(), oneshot(&data), "split at {split}");
        }
    }
}
