/*!
The pipeline: packets in, exchanges out in the order their first message began.

Three stages, each a state machine of its own module:
- [`front`] decodes packets (link, IP and its fragments, TCP) into numbered steps;
- a [`shard`] is one flow table with the HTTP/1, HTTP/2 and TLS state of its connections;
- [`reorder`] releases each finished [`Exchange`] as soon as no earlier-starting one can
  still be in progress.

[`Analyzer`] chains one of each on the caller's thread (the live sensor, `--threads 1`);
[`parallel`] runs the front on a reader thread and spreads connections over shards on
worker threads, with the same output. Memory stays bounded: every table and buffer has a
cap in [`Config`], and the reorder buffer releases its oldest entries past
[`Config::max_reorder`] even if that bends the order.
*/

pub mod engine;
pub mod front;
pub mod live;
pub mod parallel;
pub mod reorder;
pub mod shard;

use std::cell::RefCell;
use std::sync::Arc;

use crate::decode::defrag;
use crate::exchange::Exchange;
use crate::http1;
use crate::source::Packet;
use crate::stats::Stats;
use crate::tcp;
use crate::tls::keylog::{Appended, KeyLog};
use front::Front;
use reorder::Reorder;
use shard::Shard;

/// The secrets type of a pcapng Decryption Secrets Block holding an NSS key log.
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;

/// Every limit of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub defrag: defrag::Limits,
    pub tcp: tcp::Limits,
    pub http: http1::Config,
    /// Finished exchanges held back waiting for an earlier one to finish; 0 does not
    /// order at all (a sensor: exchanges go out as they finish, none counted as early).
    pub max_reorder: usize,
    /// Bytes of heads and bodies those exchanges may hold.
    pub max_reorder_bytes: usize,
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
    /// The caps derived from one memory budget in bytes (`--max-memory`).
    ///
    /// A quarter of the budget is left to what does not scale with traffic (code, the
    /// SQLite page cache, the inventory, allocator slack). Of the rest:
    /// - a third is the flow table: `max_flows` = share / [`FLOW_BYTES`];
    /// - a third is data held inside flows, assuming at most one flow in 64 holds data at
    ///   once: half of it out-of-order bytes (per direction share / (max_flows / 64) / 2,
    ///   between 4 KiB and 256 KiB), half heads, kept bodies and waiting messages of all
    ///   connections together (`max_held_total`, at most 32 MiB; a body kept up to share /
    ///   (max_flows / 64),
    ///   between 4 KiB and 64 KiB);
    /// - a sixth is finished exchanges waiting to be ordered (`max_reorder_bytes`, and
    ///   `max_reorder` of [`EXCHANGE_BYTES`] each), a sixth IP fragment sets
    ///   (`max_datagrams`, 64 KiB each).
    ///
    /// Every cap grows with the budget and none passes the defaults of [`Config::default`];
    /// [`Config::memory_estimate`] adds them back up and stays within the budget. The live
    /// sensor also measures its resident memory and sheds the oldest flows when it nears
    /// the budget. Budgets below [`MIN_MEMORY_BUDGET`] are raised to it.
    pub fn with_memory_budget(bytes: u64) -> Config {
        let d = Config::default();
        let budget = bytes.max(MIN_MEMORY_BUDGET);
        let avail = budget - budget / 4;
        let third = avail / 3;
        let sixth = avail / 6;
        let max_flows = (third / FLOW_BYTES).clamp(1024, d.tcp.max_flows as u64);
        let busy = (max_flows / 64).max(1);
        let max_buffer = (third / 2 / busy / 2).clamp(4096, d.tcp.max_buffer_per_direction as u64);
        let max_held_total = (third / 2).min(d.http.max_held_total as u64);
        let max_body = (third / 2 / busy).clamp(4096, d.http.max_body as u64);
        let max_reorder_bytes = sixth.min(d.max_reorder_bytes as u64);
        let max_reorder = (sixth / EXCHANGE_BYTES).clamp(64, d.max_reorder as u64);
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
                max_held_total: max_held_total as usize,
                // Requests waiting for responses, each with a kept body: pipelining
                // depth in real traffic stays far below this.
                max_pending: d.http.max_pending.min(64),
                ..d.http
            },
            max_reorder: max_reorder as usize,
            max_reorder_bytes: max_reorder_bytes as usize,
        }
    }

    /// The caps of one of `shards` flow tables: the flow table's share of this budget.
    /// The other caps are per flow (buffers, bodies) or belong to the single front
    /// (fragments) and reorder buffer.
    pub fn for_shards(&self, shards: usize) -> Config {
        let mut c = *self;
        c.tcp.max_flows = (self.tcp.max_flows / shards.max(1)).max(1);
        c.http.max_held_total = self.http.max_held_total / shards.max(1);
        c
    }

    /// What these caps allow the pipeline to hold, in bytes, under the assumptions of
    /// [`Config::with_memory_budget`] (one flow in 64 holding data).
    pub fn memory_estimate(&self) -> u64 {
        let flows = self.tcp.max_flows as u64;
        let busy = (flows / 64).max(1);
        let out_of_order = busy * self.tcp.max_buffer_per_direction as u64 * 2;
        let held = self.http.max_held_total as u64;
        let reorder = (self.max_reorder as u64 * EXCHANGE_BYTES).max(self.max_reorder_bytes as u64);
        let frags = self.defrag.max_datagrams as u64 * DATAGRAM_BYTES;
        flows * FLOW_BYTES + out_of_order + held + reorder + frags
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            defrag: defrag::Limits::default(),
            tcp: tcp::Limits::default(),
            http: http1::Config::default(),
            max_reorder: 100_000,
            max_reorder_bytes: 32 << 20,
        }
    }
}

/// Packets to exchanges on the caller's thread: one [`Front`], one [`Shard`], one
/// [`Reorder`]. A live sensor and every single-threaded run use it.
pub struct Analyzer {
    front: Front,
    shard: Shard,
    reorder: Reorder,
}

impl Analyzer {
    /// A fresh analyzer.
    pub fn new(config: Config) -> Self {
        Analyzer::with_keys(config, None)
    }

    /// A fresh analyzer with the key log of the run (`--keylog`).
    pub fn with_keys(config: Config, keylog: Option<Arc<KeyLog>>) -> Self {
        Analyzer {
            front: Front::new(config.defrag),
            shard: Shard::new(&config, keylog),
            reorder: Reorder::new(config.max_reorder, config.max_reorder_bytes),
        }
    }

    /// Feeds one captured packet; finished exchanges go to `sink` in order.
    pub fn packet(&mut self, packet: &Packet<'_>, sink: &mut dyn FnMut(&Exchange)) {
        let shard = &mut self.shard;
        self.front
            .packet(packet, &mut |at, step| shard.step(at, step));
        self.release(sink, false);
    }

    /// Adds lines appended to the run's key log file (a sensor's clients keep writing).
    pub fn add_keylog(&mut self, appended: &Appended) {
        self.shard.add_keylog(appended);
    }

    /// Takes secrets embedded in the capture (a pcapng Decryption Secrets Block); other
    /// secret types than a TLS key log are ignored.
    pub fn secrets(&mut self, kind: u32, data: &[u8]) {
        self.shard.secrets(kind, data);
    }

    /// Closes the least recently active `1/fraction` of the flows to give memory back
    /// (a live sensor over its budget); what they held is released as exchanges, and
    /// each counts as evicted and shed. Returns how many flows were closed.
    pub fn shed(&mut self, fraction: usize, sink: &mut dyn FnMut(&Exchange)) -> usize {
        // Shedding is a step of its own, after every step so far.
        let at = self.front.next_at();
        let closed = self.shard.shed(at, fraction, self.front.now());
        self.release(sink, false);
        closed
    }

    /// Connections tracked now.
    pub fn open_flows(&self) -> usize {
        self.shard.open_flows()
    }

    /// Ends the input: closes every flow and releases every exchange.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        let Analyzer { shard, reorder, .. } = self;
        // Flows close a chunk at a time, each chunk's exchanges released before the next:
        // a hundred thousand flows closed at once would hold all theirs together.
        shard.finish(&mut |finished, low_water| {
            reorder.extend(finished.drain(..));
            reorder.release(Some(low_water), &mut |ex| sink(&ex));
        });
        self.release(sink, true);
    }

    fn release(&mut self, sink: &mut dyn FnMut(&Exchange), all: bool) {
        self.shard.take_finished(&mut self.reorder);
        let low_water = (!all).then(|| self.shard.low_water(self.front.next_at()));
        self.reorder.release(low_water, &mut |ex| sink(&ex));
    }

    /// Counters so far, the flow table's included.
    pub fn stats(&self) -> Stats {
        shard::totals(
            self.front.stats(),
            [&self.shard.snapshot()],
            self.reorder.released_early,
        )
    }
}

/// Reads one capture stream through a fresh analyzer. Exchanges go to `sink`; on a broken
/// file, everything before the break is still analysed and the error is returned after.
pub fn run_capture<R: std::io::Read + Send>(
    reader: R,
    config: Config,
    sink: &mut dyn FnMut(&Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), crate::source::CaptureError>) {
    run_capture_with_keys(reader, config, None, 1, sink, on_progress)
}

/// [`run_capture`] with a TLS key log (`--keylog`) shared by every capture of a run, on
/// `threads` analysis threads (the output is the same for any number; more than one
/// spreads connections over [`parallel`] shards). Secrets embedded in the capture
/// (pcapng) are used with or without a key log.
pub fn run_capture_with_keys<R: std::io::Read + Send>(
    reader: R,
    config: Config,
    keylog: Option<Arc<KeyLog>>,
    threads: usize,
    sink: &mut dyn FnMut(&Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), crate::source::CaptureError>) {
    let (mut stats, result) = if threads > 1 {
        parallel::run(reader, config, keylog, threads, sink, on_progress)
    } else {
        let analyzer = Analyzer::with_keys(config, keylog);
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
        (analyzer.stats(), result.map(|_| ()).map_err(|(_, e)| e))
    };
    stats.files = 1;
    if result.is_err() {
        stats.files_failed = 1;
    }
    (stats, result)
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
