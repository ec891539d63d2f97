/*!
A bounded IP fragment pool.

etherparse's `IpDefragBuf` puts one datagram's fragments together (and rejects overlaps
that conflict); this pool around it keeps at most [`Limits::max_datagrams`] datagrams in
flight and drops sets older than [`Limits::timeout`], because etherparse's own pool is not
safe against memory exhaustion (a flood of first fragments that never complete).
*/

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber, LaxIpSlice, LaxIpv6Slice};

use crate::source::Timestamp;
use crate::stats::Stats;

/// Caps of the pool.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Datagrams being reassembled at once; the oldest is dropped past this.
    pub max_datagrams: usize,
    /// How long (packet time) a set may wait for its missing fragments.
    pub timeout: Timestamp,
}

impl Default for Limits {
    fn default() -> Self {
        // RFC 791 suggests 15 s, Linux uses 30 s (ipfrag_time); at most 64 KiB each,
        // 1024 datagrams bound the pool at 64 MiB in the worst case.
        Limits {
            max_datagrams: 1024,
            timeout: 30_000_000_000,
        }
    }
}

/// What identifies the fragments of one datagram (RFC 791 / RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    context: u64,
}

impl Key {
    /// The key of a fragmented packet, or None when the IPv6 fragment header is missing.
    pub fn of(ip: &LaxIpSlice<'_>, context: u64) -> Option<Key> {
        let id = match ip {
            LaxIpSlice::Ipv4(v4) => v4.header().identification() as u32,
            LaxIpSlice::Ipv6(v6) => ipv6_fragment_id(v6)?,
        };
        Some(Key {
            src: ip.source_addr(),
            dst: ip.destination_addr(),
            id,
            context,
        })
    }
}

fn ipv6_fragment_header<'a>(
    v6: &LaxIpv6Slice<'a>,
) -> Option<etherparse::Ipv6FragmentHeaderSlice<'a>> {
    v6.extensions()
        .clone()
        .into_iter()
        .find_map(|ext| match ext {
            etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
            _ => None,
        })
}

fn ipv6_fragment_id(v6: &LaxIpv6Slice<'_>) -> Option<u32> {
    ipv6_fragment_header(v6).map(|f| f.identification())
}

/// Offset and more-fragments flag of an IPv6 fragment.
pub fn ipv6_fragment(v6: &LaxIpv6Slice<'_>) -> Option<(IpFragOffset, bool)> {
    ipv6_fragment_header(v6).map(|f| (f.fragment_offset(), f.more_fragments()))
}

#[derive(Debug)]
struct Pending {
    buf: IpDefragBuf,
    first_seen: Timestamp,
}

/// The pool of datagrams being reassembled.
#[derive(Debug)]
pub struct Pool {
    limits: Limits,
    pending: HashMap<Key, Pending>,
    spare: Vec<Vec<u8>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(limits: Limits) -> Self {
        Pool {
            limits,
            pending: HashMap::new(),
            spare: Vec::new(),
        }
    }

    /// Adds a fragment; returns the whole payload once the datagram is complete.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        now: Timestamp,
        key: Key,
        proto: IpNumber,
        offset: IpFragOffset,
        more: bool,
        payload: &[u8],
        stats: &mut Stats,
    ) -> Option<Vec<u8>> {
        if !self.pending.contains_key(&key) && self.pending.len() >= self.limits.max_datagrams {
            self.drop_oldest(stats);
        }
        let spare = self.spare.pop().unwrap_or_default();
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            buf: IpDefragBuf::new(proto, spare, Vec::new()),
            first_seen: now,
        });
        if entry.buf.add(offset, more, payload).is_err() {
            stats.ip_fragments_dropped += 1;
            if let Some(p) = self.pending.remove(&key) {
                self.spare.push(p.buf.take_bufs().0);
            }
            return None;
        }
        if entry.buf.is_complete() {
            let done = self.pending.remove(&key)?;
            return Some(done.buf.take_bufs().0);
        }
        None
    }

    /// Gives a finished payload buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 16 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn drop_oldest(&mut self, stats: &mut Stats) {
        if let Some(key) = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.first_seen)
            .map(|(k, _)| *k)
        {
            self.pending.remove(&key);
            stats.ip_fragments_dropped += 1;
        }
    }

    /// Drops sets that waited longer than the timeout.
    pub fn expire(&mut self, now: Timestamp, stats: &mut Stats) {
        let timeout = self.limits.timeout;
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now.saturating_sub(p.first_seen) <= timeout);
        stats.ip_fragments_dropped += (before - self.pending.len()) as u64;
    }

    /// Datagrams waiting for fragments.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> Key {
        Key {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            id,
            context: 0,
        }
    }

    fn off(units: u16) -> IpFragOffset {
        IpFragOffset::try_new(units).expect("small offset")
    }

    #[test]
    fn a_flood_of_first_fragments_stays_bounded() {
        let mut pool = Pool::new(Limits {
            max_datagrams: 8,
            timeout: 1_000,
        });
        let mut stats = Stats::default();
        for id in 0..10_000 {
            let got = pool.add(
                id as i64,
                key(id),
                etherparse::ip_number::TCP,
                off(0),
                true,
                &[0; 8],
                &mut stats,
            );
            assert!(got.is_none());
            assert!(pool.len() <= 8);
        }
        assert!(stats.ip_fragments_dropped >= 9_992);
        pool.expire(1_000_000, &mut stats);
        assert!(pool.is_empty());
    }
}
