/*!
The pipeline: packets in, exchanges out in the order their first message began.

[`Analyzer`] owns one decoder, one flow table of HTTP/1 connections and the reorder buffer.
It is fed packets one at a time (from a file or, later, a live interface) and pushes each
finished [`Exchange`] to a sink as soon as no earlier-starting exchange can still be in
progress. Memory stays bounded: the reorder buffer releases its oldest entries past
[`Config::max_reorder`] even if that bends the order.
*/

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::app::Connection;
use crate::decode::{defrag, Decoder};
use crate::exchange::Exchange;
use crate::http1;
use crate::source::Packet;
use crate::stats::Stats;
use crate::tcp::{self, FlowTable};
use crate::tls::keylog::{KeyLog, Keys};

/// The secrets type of a pcapng Decryption Secrets Block holding an NSS key log.
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;

/// Every limit of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub defrag: defrag::Limits,
    pub tcp: tcp::Limits,
    pub http: http1::Config,
    /// Finished exchanges held back waiting for an earlier one to finish.
    pub max_reorder: usize,
}

/// Bytes one tracked connection costs when it holds no data: the boxed flow, its table
/// entry and its HTTP state (measured: a million SYNs peak at ~70 MB for 100 000 flows,
/// docs/performance.md; doubled for connections that have spoken HTTP).
pub const FLOW_BYTES: u64 = 2 * 1024;
/// Bytes a finished exchange costs without its bodies (head fields, names, timings).
pub const EXCHANGE_BYTES: u64 = 2 * 1024;
/// The largest IP datagram a fragment set can rebuild.
const DATAGRAM_BYTES: u64 = 64 * 1024;
/// The smallest budget [`Config::with_memory_budget`] honours; below it the caps would
/// be too small to follow real traffic.
pub const MIN_MEMORY_BUDGET: u64 = 32 << 20;

impl Config {
    /// The caps derived from one memory budget in bytes (`specter sensor --max-memory`).
    ///
    /// A quarter of the budget is left to what does not scale with traffic (code, the
    /// SQLite page cache, the inventory, allocator slack). Of the rest:
    /// - a third is the flow table: `max_flows` = share / [`FLOW_BYTES`];
    /// - a third is data held inside flows (out-of-order bytes and kept bodies), assuming
    ///   at most one flow in 64 holds data at once: per direction, and per body kept,
    ///   share / (max_flows / 64) / 2, between 4 KiB and the defaults (256 KiB, 64 KiB);
    /// - a sixth is finished exchanges waiting to be ordered (`max_reorder`, each counted
    ///   with two full bodies), a sixth IP fragment sets (`max_datagrams`, 64 KiB each).
    ///
    /// Every cap grows with the budget and none passes the defaults of [`Config::default`];
    /// [`Config::memory_estimate`] adds them back up and stays within the budget. The worst
    /// case (every flow holding full buffers at once) can exceed this share: the live
    /// sensor measures its resident memory and sheds the oldest flows when it nears the
    /// budget. Budgets below [`MIN_MEMORY_BUDGET`] are raised to it.
    pub fn with_memory_budget(bytes: u64) -> Config {
        let d = Config::default();
        let budget = bytes.max(MIN_MEMORY_BUDGET);
        let avail = budget - budget / 4;
        let third = avail / 3;
        let sixth = avail / 6;
        let max_flows = (third / FLOW_BYTES).clamp(1024, d.tcp.max_flows as u64);
        let busy = (max_flows / 64).max(1);
        let per_busy_flow = third / busy / 2;
        let max_buffer = per_busy_flow.clamp(4096, d.tcp.max_buffer_per_direction as u64);
        let max_body = per_busy_flow.clamp(4096, d.http.max_body as u64);
        let max_reorder = (sixth / (EXCHANGE_BYTES + 2 * max_body)).clamp(64, d.max_reorder as u64);
        let max_datagrams = (sixth / DATAGRAM_BYTES).clamp(16, d.defrag.max_datagrams as u64);
        Config {
            defrag: defrag::Limits {
                max_datagrams: max_datagrams as usize,
                ..d.defrag
            },
            tcp: tcp::Limits {
                max_flows: max_flows as usize,
                max_buffer_per_direction: max_buffer as usize,
                ..d.tcp
            },
            http: http1::Config {
                max_body: max_body as usize,
                // Requests waiting for responses, each with a kept body: pipelining
                // depth in real traffic stays far below this.
                max_pending: d.http.max_pending.min(64),
                ..d.http
            },
            max_reorder: max_reorder as usize,
        }
    }

    /// What these caps allow the pipeline to hold, in bytes, under the assumptions of
    /// [`Config::with_memory_budget`] (one flow in 64 holding data).
    pub fn memory_estimate(&self) -> u64 {
        let flows = self.tcp.max_flows as u64;
        let busy = (flows / 64).max(1);
        let per_busy =
            (self.tcp.max_buffer_per_direction as u64).max(self.http.max_body as u64) * 2;
        let reorder = self.max_reorder as u64 * (EXCHANGE_BYTES + 2 * self.http.max_body as u64);
        let frags = self.defrag.max_datagrams as u64 * DATAGRAM_BYTES;
        flows * FLOW_BYTES + busy * per_busy + reorder + frags
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            defrag: defrag::Limits::default(),
            tcp: tcp::Limits::default(),
            http: http1::Config::default(),
            max_reorder: 100_000,
        }
    }
}

struct Ordered(Exchange);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.0.order == other.0.order
    }
}
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.order.cmp(&other.0.order)
    }
}

/// Packets to exchanges.
pub struct Analyzer {
    config: Config,
    decoder: Decoder,
    flows: FlowTable<Connection>,
    ctx: http1::Ctx,
    held: BinaryHeap<Reverse<Ordered>>,
    last_expire: i64,
    /// Counters of the source and decode layers.
    decode_stats: Stats,
    /// Flows closed by [`Analyzer::shed`].
    shed: u64,
    /// The latest packet time seen.
    now: i64,
}

impl Analyzer {
    /// A fresh analyzer.
    pub fn new(config: Config) -> Self {
        Analyzer {
            config,
            decoder: Decoder::new(config.defrag),
            flows: FlowTable::new(config.tcp),
            ctx: http1::Ctx::new(config.http),
            held: BinaryHeap::new(),
            last_expire: i64::MIN,
            decode_stats: Stats::default(),
            shed: 0,
            now: i64::MIN,
        }
    }

    /// Feeds one captured packet; finished exchanges go to `sink` in order.
    pub fn packet(&mut self, packet: &Packet<'_>, sink: &mut dyn FnMut(Exchange)) {
        let Analyzer {
            decoder,
            flows,
            ctx,
            decode_stats,
            ..
        } = self;
        self.now = self.now.max(packet.ts);
        decode_stats.packets += 1;
        decode_stats.bytes += packet.data.len() as u64;
        *decode_stats
            .packets_by_linktype
            .entry(packet.linktype)
            .or_default() += 1;
        // The decoder counts into its own Stats; the layers above into the context's.
        decoder.decode(
            packet.ts,
            packet.linktype,
            packet.data,
            decode_stats,
            &mut |seg, _| flows.segment(seg, ctx),
        );
        if packet.ts > self.last_expire.saturating_add(5_000_000_000) {
            self.last_expire = packet.ts;
            self.decoder.expire(packet.ts, &mut self.decode_stats);
        }
        self.release(sink, false);
    }

    /// The TLS session keys used to decrypt (a sensor refreshes the key log through it).
    pub fn keys_mut(&mut self) -> &mut Keys {
        &mut self.ctx.keys
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

    /// Closes the least recently active `1/fraction` of the flows to give memory back
    /// (a live sensor over its budget); what they held is released as exchanges, and
    /// each counts as evicted and shed. Returns how many flows were closed.
    pub fn shed(&mut self, fraction: usize, sink: &mut dyn FnMut(Exchange)) -> usize {
        let n = self.flows.len() / fraction.max(1);
        let closed = self.flows.shed(n, self.now, &mut self.ctx);
        self.shed += closed as u64;
        self.release(sink, false);
        closed
    }

    /// Connections tracked now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Ends the input: closes every flow and releases every exchange.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Exchange)) {
        self.flows.finish(&mut self.ctx);
        self.release(sink, true);
    }

    fn release(&mut self, sink: &mut dyn FnMut(Exchange), all: bool) {
        for ex in self.ctx.out.drain(..) {
            self.held.push(Reverse(Ordered(ex)));
        }
        let low_water = if all {
            None
        } else {
            self.ctx.open.first().copied()
        };
        while let Some(Reverse(Ordered(top))) = self.held.peek() {
            let ready = low_water.is_none_or(|lw| top.order < lw)
                || self.held.len() > self.config.max_reorder;
            if !ready {
                break;
            }
            if let Some(Reverse(Ordered(ex))) = self.held.pop() {
                sink(ex);
            }
        }
    }

    /// Counters so far, the flow table's included.
    pub fn stats(&self) -> Stats {
        let mut s = self.ctx.stats.clone();
        s.merge(&self.decode_stats);
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
        s.tls_keylog_bad_lines += self.ctx.keys.embedded.bad;
        s
    }
}

/// Reads one capture stream through a fresh analyzer. Exchanges go to `sink`; on a broken
/// file, everything before the break is still analysed and the error is returned after.
pub fn run_capture<R: std::io::Read + Send>(
    reader: R,
    config: Config,
    sink: &mut dyn FnMut(Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), crate::source::CaptureError>) {
    run_capture_with_keys(reader, config, None, sink, on_progress)
}

/// [`run_capture`] with a TLS key log (`--keylog`) shared by every capture of a run.
/// Secrets embedded in the capture (pcapng) are used with or without it.
pub fn run_capture_with_keys<R: std::io::Read + Send>(
    reader: R,
    config: Config,
    keylog: Option<Arc<KeyLog>>,
    sink: &mut dyn FnMut(Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), crate::source::CaptureError>) {
    let mut analyzer = Analyzer::new(config);
    analyzer.ctx.keys = Keys::with_file(keylog);
    // Packets and secrets come from one reader, interleaved as in the file.
    let cell = RefCell::new(analyzer);
    let result = crate::source::read_capture(
        reader,
        |p| cell.borrow_mut().packet(p, sink),
        |secrets| cell.borrow_mut().secrets(secrets.kind, &secrets.data),
        on_progress,
    );
    let mut analyzer = cell.into_inner();
    analyzer.finish(sink);
    let mut stats = analyzer.stats();
    stats.files = 1;
    match result {
        Ok(_) => (stats, Ok(())),
        Err((_, e)) => {
            stats.files_failed = 1;
            (stats, Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn budget_caps_grow_with_the_budget_and_stay_within_it() {
        let mut last = Config::with_memory_budget(0);
        for budget in [32, 64, 128, 256, 512, 1024, 4096, 16384, 65536].map(|m| m * MIB) {
            let c = Config::with_memory_budget(budget);
            assert!(
                c.memory_estimate() <= budget,
                "{budget}: {}",
                c.memory_estimate()
            );
            assert!(c.tcp.max_flows >= last.tcp.max_flows);
            assert!(c.tcp.max_buffer_per_direction >= last.tcp.max_buffer_per_direction);
            assert!(c.http.max_body >= last.http.max_body);
            assert!(c.max_reorder >= last.max_reorder);
            assert!(c.defrag.max_datagrams >= last.defrag.max_datagrams);
            last = c;
        }
    }

    #[test]
    fn budget_never_passes_the_defaults() {
        let d = Config::default();
        let c = Config::with_memory_budget(u64::MAX / 2);
        assert_eq!(c.tcp.max_flows, d.tcp.max_flows);
        assert_eq!(
            c.tcp.max_buffer_per_direction,
            d.tcp.max_buffer_per_direction
        );
        assert_eq!(c.http.max_body, d.http.max_body);
        assert_eq!(c.max_reorder, d.max_reorder);
        assert_eq!(c.defrag.max_datagrams, d.defrag.max_datagrams);
    }

    #[test]
    fn the_default_sensor_budget_follows_tens_of_thousands_of_flows() {
        let c = Config::with_memory_budget(256 * MIB);
        assert!(c.tcp.max_flows >= 30_000, "{}", c.tcp.max_flows);
        assert!(c.tcp.max_buffer_per_direction >= 16 * 1024);
        // A tiny budget is raised to the minimum rather than giving useless caps.
        assert_eq!(
            Config::with_memory_budget(1).tcp.max_flows,
            Config::with_memory_budget(MIN_MEMORY_BUDGET).tcp.max_flows
        );
    }
}
