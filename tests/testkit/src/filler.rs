//! Seeded payload that compresses like real firmware: about half of it.
//!
//! Code and data in a firmware image are neither random nor constant. The generator
//! mixes what a compressor sees in practice: instruction-like words with few distinct
//! opcodes, repeats of earlier bytes (inlined code, tables), text, zero runs, and some
//! incompressible noise (keys, calibration data, already-compressed assets).

/// `len` bytes of firmware-like filler, the same for the same `seed`.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 256);
    const WORDS: [&str; 16] = [
        "wifi ",
        "connect ",
        "error: ",
        "timeout ",
        "ota ",
        "slot ",
        "manifest ",
        "sensor ",
        "temperature ",
        "retry ",
        "partition ",
        "flash ",
        "ok\n",
        "failed\n",
        "http ",
        "%d ",
    ];
    const OPCODES: [u32; 8] = [
        0x0000_0013,
        0x0000_0093,
        0x0000_0513,
        0x0000_8067,
        0x0000_2023,
        0x0000_2083,
        0x0000_0317,
        0x0000_00ef,
    ];
    while out.len() < len {
        match rng.next() % 10 {
            0..=2 => {
                for _ in 0..(4 + rng.next() % 12) {
                    let op = OPCODES[(rng.next() % 8) as usize];
                    let word = op | ((rng.next() as u32 & 0x3FF) << 15);
                    out.extend_from_slice(&word.to_le_bytes());
                }
            }
            3 | 4 if out.len() > 64 => {
                let dist = 1 + (rng.next() as usize % out.len().min(32 * 1024));
                let count = 16 + rng.next() as usize % 112;
                let start = out.len() - dist;
                for i in 0..count {
                    let b = out[start + i % dist];
                    out.push(b);
                }
            }
            5 | 6 => {
                for _ in 0..(1 + rng.next() % 6) {
                    out.extend_from_slice(WORDS[(rng.next() % 16) as usize].as_bytes());
                }
            }
            7 => out.resize(out.len() + 4 + (rng.next() % 28) as usize, 0),
            _ => {
                for _ in 0..(2 + rng.next() % 14) {
                    out.extend_from_slice(&(rng.next() as u32).to_le_bytes());
                }
            }
        }
    }
    out.truncate(len);
    out
}

/// xorshift64*: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
