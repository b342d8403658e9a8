//! Deterministic randomness: SplitMix64, and a stateless hash so that any
//! mailbox's attributes can be recomputed from (seed, index) without storing
//! them. No external crate, so a seed means the same incident forever.

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_F42D_4C95_7F2D)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stateless hash of (seed, salt, index) to [0, 1).
pub(crate) fn unit(seed: u64, salt: u64, index: u64) -> f64 {
    (mix(seed ^ mix(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index)) >> 11) as f64
        / (1u64 << 53) as f64
}

/// Stateless hash of (seed, salt, index) to 0..n.
pub(crate) fn pick(seed: u64, salt: u64, index: u64, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        mix(seed ^ mix(salt.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ index)) % n
    }
}
