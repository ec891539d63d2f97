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
