/*!
The front of the pipeline: captured packets to numbered steps for the flow tables.

[`Front`] decodes each packet (link layer, IP with reassembly of fragments, TCP) and gives
every TCP segment a position in the input, inserting a sweep for idle flows every few
seconds of packet time. Flow tables downstream see these steps in order, whether there is
one table or one per thread: the positions and the sweeps are decided here, once, so every
arrangement of tables produces the same [`crate::exchange::Order`]s.
*/

use crate::decode::{defrag, Decoder, TcpSegment};
use crate::source::{Packet, Timestamp};
use crate::stats::Stats;
use crate::tcp::SweepClock;

/// What a flow table is asked to do at one position of the input.
pub enum Step<'s, 'p> {
    /// Close the flows idle for longer than the timeout as of this packet time.
    Sweep(Timestamp),
    /// Take this segment.
    Segment(&'s TcpSegment<'p>),
}

/// How often (packet time) incomplete IP fragment sets are looked at for expiry.
const DEFRAG_EXPIRY_INTERVAL: Timestamp = 5_000_000_000;

/// Packets to numbered steps.
pub struct Front {
    decoder: Decoder,
    /// Counters of the source and decode layers.
    stats: Stats,
    next_at: u64,
    sweep: SweepClock,
    last_expire: Timestamp,
    /// The latest packet time seen.
    now: Timestamp,
}

impl Front {
    /// A front whose fragment reassembly keeps to `limits`.
    pub fn new(limits: defrag::Limits) -> Self {
        Front {
            decoder: Decoder::new(limits),
            stats: Stats::default(),
            next_at: 0,
            sweep: SweepClock::default(),
            last_expire: Timestamp::MIN,
            now: Timestamp::MIN,
        }
    }

    /// Decodes one captured packet; each step it yields goes to `on_step` with its position.
    pub fn packet(&mut self, packet: &Packet<'_>, on_step: &mut dyn FnMut(u64, Step<'_, '_>)) {
        let Front {
            decoder,
            stats,
            next_at,
            sweep,
            ..
        } = self;
        self.now = self.now.max(packet.ts);
        stats.packets += 1;
        stats.bytes += packet.data.len() as u64;
        *stats
            .packets_by_linktype
            .entry(packet.linktype)
            .or_default() += 1;
        decoder.decode(
            packet.ts,
            packet.linktype,
            packet.data,
            stats,
            &mut |seg, _| {
                if sweep.due(seg.ts) {
                    on_step(*next_at, Step::Sweep(seg.ts));
                    *next_at += 1;
                }
                on_step(*next_at, Step::Segment(seg));
                *next_at += 1;
            },
        );
        if packet.ts > self.last_expire.saturating_add(DEFRAG_EXPIRY_INTERVAL) {
            self.last_expire = packet.ts;
            self.decoder.expire(packet.ts, &mut self.stats);
        }
    }

    /// The position the next step will take: every step so far lies before it.
    pub fn next_at(&self) -> u64 {
        self.next_at
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Counters of the source and decode layers.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
