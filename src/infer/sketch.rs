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

/// Hashes a value with a fixed, platform-independent hash (FNV-1a then a 64-bit
/// finaliser), so sketches stored by one run are comparable with the next.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser: FNV alone leaves the low bits poorly mixed.
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
