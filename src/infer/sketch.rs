/*!
Bottom-k sketches: how many distinct values a position has seen, and a few examples,
in constant space and independent of the order values arrive in.

A sketch keeps the `k` smallest 64-bit hashes of the values it saw. Below `k` distinct
values the count is exact; above, `(k - 1) / (k-th smallest hash / 2^64)` estimates it
(Bar-Yossef et al., "Counting distinct elements in a data stream", 2002). Two sketches
merge by keeping the `k` smallest of their union, which is what one sketch fed every
value would hold: the inventory can be built from captures in any order, or on several
sensors, and come out the same.
*/

use serde::{Deserialize, Serialize};

/// Hashes a value with a fixed, platform-independent hash, so sketches stored by one run
/// are comparable with the next: eight bytes at a time (rotate, xor, multiply by the
/// golden-ratio constant, as FxHash does), then the length, then splitmix64's finaliser
/// so every output bit (the low ones too: sampling levels count trailing zeros) depends
/// on every input bit. It runs on every request (tokens, paths), so it has to be cheap;
/// it is not a cryptographic hash.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h = (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K);
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The k smallest distinct hashes seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sketch {
    hashes: Vec<u64>,
}

impl Sketch {
    /// Hashes kept: exact counts up to this many distinct values, about 12% error above.
    pub const K: usize = 64;

    /// Adds a hash; returns true when it is now among the kept ones (a new example).
    pub fn insert(&mut self, h: u64) -> bool {
        match self.hashes.binary_search(&h) {
            Ok(_) => false,
            Err(at) if at < Self::K => {
                self.hashes.insert(at, h);
                self.hashes.truncate(Self::K);
                true
            }
            Err(_) => false,
        }
    }

    /// Adds everything another sketch saw.
    pub fn merge(&mut self, other: &Sketch) {
        for &h in &other.hashes {
            self.insert(h);
        }
    }

    /// Whether `h` is among the kept hashes.
    pub fn contains(&self, h: u64) -> bool {
        self.hashes.binary_search(&h).is_ok()
    }

    /// Distinct values seen: exact below `K`, estimated above.
    pub fn distinct(&self) -> u64 {
        if self.hashes.len() < Self::K {
            return self.hashes.len() as u64;
        }
        let kth = self.hashes[Self::K - 1].max(1) as f64;
        ((Self::K as f64 - 1.0) * (u64::MAX as f64 / kth)).round() as u64
    }

    /// Whether the count is exact.
    pub fn is_exact(&self) -> bool {
        self.hashes.len() < Self::K
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// A few examples chosen by smallest hash, so the same ones are kept whatever the order.
/// Values are stored as given: callers mask them first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Examples {
    kept: Vec<(u64, String)>,
}

impl Examples {
    /// Examples kept.
    pub const K: usize = 3;

    /// Offers an example with its hash.
    pub fn offer(&mut self, h: u64, value: impl FnOnce() -> String) {
        match self.kept.binary_search_by_key(&h, |(k, _)| *k) {
            Ok(_) => {}
            Err(at) if at < Self::K => {
                self.kept.insert(at, (h, value()));
                self.kept.truncate(Self::K);
            }
            Err(_) => {}
        }
    }

    /// Adds another set's examples.
    pub fn merge(&mut self, other: &Examples) {
        for (h, v) in &other.kept {
            self.offer(*h, || v.clone());
        }
    }

    /// The examples, in hash order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.kept.iter().map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_k_and_close_above() {
        let mut s = Sketch::default();
        for i in 0..40u32 {
            s.insert(stable_hash(&i.to_le_bytes()));
            s.insert(stable_hash(&i.to_le_bytes()));
        }
        assert_eq!(s.distinct(), 40);
        assert!(s.is_exact());
        let mut big = Sketch::default();
        for i in 0..100_000u32 {
            big.insert(stable_hash(&i.to_le_bytes()));
        }
        let d = big.distinct() as f64;
        assert!((d - 100_000.0).abs() / 100_000.0 < 0.35, "estimate {d}");
        assert!(!big.is_exact());
    }

    #[test]
    fn hash_spreads_short_and_similar_inputs() {
        // Sampling levels are trailing zero bits: about half the hashes of similar inputs
        // must have level 0, a quarter level 1.
        let mut levels = [0u32; 4];
        for i in 0..40_000u32 {
            let h = stable_hash(format!("10.0.0.5:{}|10.0.0.9:80|{i}", i % 7).as_bytes());
            let l = h.trailing_zeros().min(3) as usize;
            levels[l] += 1;
        }
        assert!((18_000..22_000).contains(&levels[0]), "{levels:?}");
        assert!((8_500..11_500).contains(&levels[1]), "{levels:?}");
        assert_ne!(stable_hash(b""), stable_hash(b"\0"));
        assert_ne!(stable_hash(b"ab"), stable_hash(b"ab\0"));
    }

    #[test]
    fn merge_is_order_independent() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for i in 0..500u32 {
            let h = stable_hash(format!("v{i}").as_bytes());
            if i % 3 == 0 {
                a.insert(h);
            } else {
                b.insert(h);
            }
            all.insert(h);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab, all);
    }

    #[test]
    fn examples_keep_smallest_hashes() {
        let mut e1 = Examples::default();
        let mut e2 = Examples::default();
        let vals: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        for v in &vals {
            e1.offer(stable_hash(v.as_bytes()), || v.clone());
        }
        for v in vals.iter().rev() {
            e2.offer(stable_hash(v.as_bytes()), || v.clone());
        }
        assert_eq!(e1, e2);
        assert_eq!(e1.values().count(), 3);
    }
}
