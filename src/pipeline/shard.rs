/*!
A shard: one flow table with its HTTP and TLS state, fed the [`Step`]s of its connections.

A single-threaded run has one shard that sees every step; `--threads N` spreads the
connections over N shards by a hash of their addresses ([`crate::tcp::shard_of`]), each on
its own thread. Sweeps reach every shard. A shard hands out finished exchanges unordered,
with the lowest [`Order`] it may still produce (its low water), and [`super::reorder`]
puts them back in order.
*/

use std::sync::Arc;

use super::front::Step;
use super::{Config, DSB_TLS_KEY_LOG};
use crate::app::Connection;
use crate::exchange::{Exchange, Order};
use crate::http1;
use crate::source::Timestamp;
use crate::stats::Stats;
use crate::tcp::FlowTable;
use crate::tls;
use crate::tls::keylog::{Appended, KeyLog, Keys};

/// Flows closed at a time at the end of the input.
const FINISH_CHUNK: usize = 4096;

/// See [`Shard::low_water`].
fn low_water(ctx: &http1::Ctx, next_at: u64) -> Order {
    let next = Order {
        at: next_at,
        flow: 0,
        n: 0,
    };
    ctx.open.first().copied().map_or(next, |o| o.min(next))
}

/// One flow table and its application state.
pub struct Shard {
    flows: FlowTable<Connection>,
    ctx: http1::Ctx,
    /// Flows closed by [`Shard::shed`].
    shed: u64,
}

impl Shard {
    /// An empty shard with the caps of `config` and the key log of the run.
    pub fn new(config: &Config, keylog: Option<Arc<KeyLog>>) -> Self {
        let mut ctx = http1::Ctx::new(config.http);
        ctx.keys = Keys::with_file(keylog);
        Shard {
            flows: FlowTable::new(config.tcp),
            ctx,
            shed: 0,
        }
    }

    /// Carries out the step at position `at`.
    pub fn step(&mut self, at: u64, step: Step<'_, '_>) {
        match step {
            Step::Sweep(ts) => {
                self.flows.expire(at, ts, &mut self.ctx);
                tls::retry_parked(&mut self.ctx, ts);
            }
            Step::Segment(seg) => self.flows.segment_at(at, seg, &mut self.ctx),
        }
    }

    /// Takes secrets embedded in the capture (a pcapng Decryption Secrets Block); other
    /// secret types than a TLS key log are ignored.
    pub fn secrets(&mut self, kind: u32, data: &[u8]) {
        if kind == DSB_TLS_KEY_LOG {
            // The block is padded to 32 bits with zero bytes.
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            self.ctx.keys.embedded.add_text(&data[..end]);
        }
    }

    /// Adds lines appended to the run's key log file (see [`crate::tls::keylog::KeyLogFile`]):
    /// connections whose handshake comes later can be decrypted.
    pub fn add_keylog(&mut self, appended: &Appended) {
        self.ctx.keys.add_appended(appended);
        tls::retry_parked(&mut self.ctx, Timestamp::MIN);
    }

    /// Moves the exchanges finished so far to `out`, in no particular order.
    pub fn take_finished(&mut self, out: &mut impl Extend<Exchange>) {
        out.extend(self.ctx.out.drain(..));
    }

    /// The lowest order this shard may still give an exchange, once every step before
    /// `next_at` has been carried out: that of its oldest unfinished message, or the
    /// next position.
    pub fn low_water(&self, next_at: u64) -> Order {
        low_water(&self.ctx, next_at)
    }

    /// Closes the least recently active `1/fraction` of the flows as part of the step at
    /// `at` (a live sensor over its budget); each counts as evicted and shed. Returns how
    /// many flows were closed.
    pub fn shed(&mut self, at: u64, fraction: usize, now: Timestamp) -> usize {
        let n = self.flows.len() / fraction.max(1);
        let closed = self.flows.shed(at, n, now, &mut self.ctx);
        self.shed += closed as u64;
        closed
    }

    /// Connections tracked now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Ends the input: closes every flow, [`FINISH_CHUNK`] at a time; after each chunk
    /// `after` gets the exchanges finished so far and the low water.
    pub fn finish(&mut self, after: &mut dyn FnMut(&mut Vec<Exchange>, Order)) {
        self.flows
            .finish_in_chunks(FINISH_CHUNK, &mut self.ctx, &mut |ctx: &mut http1::Ctx| {
                // Messages begun while closing take the last position.
                let low_water = low_water(ctx, u64::MAX);
                after(&mut ctx.out, low_water);
            });
        // Connections closed while waiting for keys wait no more.
        tls::retry_parked(&mut self.ctx, Timestamp::MAX);
        let low_water = low_water(&self.ctx, u64::MAX);
        after(&mut self.ctx.out, low_water);
    }

    /// Its counters and size now.
    pub fn snapshot(&self) -> ShardSnapshot {
        let mut s = self.ctx.stats.clone();
        let t = self.flows.totals();
        s.flows = t.flows;
        s.flows_midstream = t.midstream;
        s.flows_evicted = t.evicted;
        s.flows_shed = self.shed;
        s.flows_timed_out = t.timed_out;
        s.tcp_retransmissions = t.assembler.retransmissions;
        s.tcp_out_of_order = t.assembler.out_of_order;
        s.tcp_gaps = t.assembler.gaps;
        s.tcp_gap_bytes = t.assembler.gap_bytes;
        s.tcp_buffer_overflows = t.assembler.overflows;
        s.tcp_overlap_conflicts = t.assembler.conflicts;
        s.tcp_payload_bytes = t.assembler.delivered;
        ShardSnapshot {
            stats: s,
            open_flows: self.flows.len(),
            embedded_bad_lines: self.ctx.keys.embedded.bad,
        }
    }
}

/// A shard's counters at one point, as it reports them to whoever merges the shards.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    /// Counters of the flow table and the layers above it (not the embedded key lines:
    /// every shard reads the same ones).
    pub stats: Stats,
    /// Connections tracked.
    pub open_flows: usize,
    /// Lines of embedded secrets (pcapng) that could not be read.
    pub embedded_bad_lines: u64,
}

/// The counters of a whole pipeline: its front's, every shard's, and the exchanges its
/// reorder buffer let out early. Embedded key lines are counted once: every shard read the
/// same ones.
pub fn totals<'a>(
    front: &Stats,
    shards: impl IntoIterator<Item = &'a ShardSnapshot>,
    released_early: u64,
) -> Stats {
    let mut s = front.clone();
    let mut embedded_bad = 0;
    for shard in shards {
        s.merge(&shard.stats);
        embedded_bad = embedded_bad.max(shard.embedded_bad_lines);
    }
    s.tls_keylog_bad_lines += embedded_bad;
    s.exchanges_released_early += released_early;
    s
}
