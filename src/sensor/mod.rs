/*!
The live sensor: packets from interfaces (or capture streams) through the same pipeline as
`specter analyze`, into the same inventory, for weeks.

One capture thread per source pushes owned packets into one bounded queue; the capture
loop (this module, on the calling thread) feeds them to one pipeline ([`Live`]) and the
exchanges to one [`Analysis`]. With `--threads N` the pipeline spreads connections over N
flow-table shards on worker threads by a hash of their addresses; the loop decodes and
infers. One pipeline fed from every interface, rather than one per interface, because a
mirror often splits a connection's two directions across two ports (two SPAN sessions, a
TAP's two halves): the hash sends both to the same shard, which puts the exchange back
together. It also keeps one memory budget in one place. When the loop falls
behind, the queue fills, the capture threads block, and the kernel drops and counts: every
loss shows in libpcap's counters, none is silent inside the sensor.

Every `flush_interval` the inventory is written in one transaction (so a crash loses at
most one interval); SIGINT and SIGTERM stop the capture, drain what the kernel already
holds, close every flow, write and return; SIGHUP calls back to reopen the log. Once a
second the loop measures its resident memory and, near the budget, sheds the least
recently active quarter of the flows (counted in `flows_evicted` and `flows_shed`).
*/

#[cfg(feature = "live")]
pub mod capture;
pub mod log;
pub mod queue;
pub mod signals;
pub mod source;
pub mod status;
pub mod units;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analysis::{Analysis, OpenError};
use crate::pipeline::{self, live::Live};
use crate::stats::Stats;
use crate::store::StoreError;
use crate::tls::keylog::KeyLog;

use queue::Queue;
use signals::Signals;
use source::{Captured, Counters, PacketSource};
use status::{Meter, Rates, Snapshot};

/// How a sensor runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory.
    pub db: PathBuf,
    /// Path hints file, stored with the inventory.
    pub hints: Option<PathBuf>,
    /// Specs whose templates are matched first.
    pub specs: Vec<PathBuf>,
    /// Time between writes of the inventory.
    pub flush_interval: Duration,
    /// The memory budget in bytes.
    pub max_memory: u64,
    /// The largest packet a source delivers (the snap length), to bound the queue.
    pub snaplen: u32,
    /// The NSS key log to decrypt TLS with, re-read every tick for appended lines.
    pub keylog: Option<PathBuf>,
    /// Analysis threads (flow-table shards); 1 runs the pipeline on the loop's thread.
    pub threads: usize,
    /// How the run is recorded in the inventory (the command line).
    pub command: String,
}

/// How a sensor run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The last counters.
    pub snapshot: Snapshot,
    /// The pipeline's counters over the whole run.
    pub stats: Stats,
    /// Sources that ended with an error, with it.
    pub source_errors: Vec<String>,
    /// True when SIGINT or SIGTERM ended the run (false: every source ended).
    pub stopped: bool,
}

/// Why a sensor could not run or could not write its inventory at the end.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--max-memory {budget}: {why}")]
    Budget { budget: u64, why: String },
    #[error("--keylog {}: {source}", path.display())]
    Keylog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {threads} analysis threads: {source}")]
    Threads {
        threads: usize,
        source: std::io::Error,
    },
}

enum Msg {
    Captured(Captured),
    End {
        source: String,
        error: Option<String>,
    },
}

/// How often the status is refreshed and memory measured.
const TICK: Duration = Duration::from_secs(1);
/// How long a stopping sensor waits for its sources to drain.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Resident memory past this share of the budget sheds flows.
const SHED_AT_PERCENT: u64 = 90;
/// The share of flows shed at a time (1/N).
const SHED_FRACTION: usize = 4;
/// Bytes of records a TLS connection keeps while its keys may still be appended to
/// `--keylog` (all connections together stay within the shared held-bytes cap).
const KEY_WAIT_BYTES: usize = 256 * 1024;

/// Packets the queue between capture threads and the loop holds: a thirty-second of the
/// budget in full-size packets, at least 256 (the loop holds as many again while it works
/// through the batch it took: a sixteenth in all).
pub fn queue_capacity(max_memory: u64, snaplen: u32) -> usize {
    let per = u64::from(snaplen.max(1500)) + 64;
    (max_memory / 32 / per).clamp(256, 16_384) as usize
}

/// The one place the sensor touches the inventory store: writes what was observed with a
/// run record of this interval's counters, in one transaction. Returns the number of
/// endpoints the inventory holds.
fn flush(
    analysis: &mut Analysis,
    command: &str,
    inputs: &[(String, String)],
    interval: Stats,
) -> Result<usize, StoreError> {
    let saved = analysis.save(command.to_string(), inputs.to_vec(), interval)?;
    Ok(saved.endpoints.len())
}

/// Runs the sensor until every source ends or SIGINT/SIGTERM. `on_tick` gets the status
/// about once a second; `on_hup` is called on SIGHUP.
pub fn run(
    sources: Vec<Box<dyn PacketSource>>,
    opts: &Options,
    signals: &Signals,
    on_tick: &mut dyn FnMut(&Snapshot, Rates),
    on_hup: &mut dyn FnMut(),
) -> Result<Summary, SensorError> {
    if opts.max_memory < pipeline::MIN_MEMORY_BUDGET {
        return Err(SensorError::Budget {
            budget: opts.max_memory,
            why: format!(
                "below the smallest budget the sensor follows traffic with ({} MiB)",
                pipeline::MIN_MEMORY_BUDGET >> 20
            ),
        });
    }
    let (mut analysis, spec_errors) = Analysis::open(&opts.db, opts.hints.as_deref(), &opts.specs)?;
    for e in &spec_errors {
        tracing::warn!("{e}");
    }
    let mut config = pipeline::Config::with_memory_budget(opts.max_memory);
    // Only sampled bodies are decoded, by inference (as `analyze` does).
    config.http.defer_decoding = true;
    // The inventory does not depend on the order exchanges arrive in, and a live link
    // has connections idle for hours in the middle of a message: release at once.
    config.max_reorder = 0;
    // Clients write their key log lines as they finish a handshake, and the file is read
    // once a second: a connection without keys keeps its first records for a while.
    if opts.keylog.is_some() {
        config.http.key_wait_bytes = KEY_WAIT_BYTES;
    }
    let keylog = match &opts.keylog {
        Some(path) => Some(KeyLog::open(path).map_err(|source| SensorError::Keylog {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let threads = opts.threads.max(1);
    let mut analyzer = Live::new(config, keylog, threads)
        .map_err(|source| SensorError::Threads { threads, source })?;
    tracing::info!(
        threads,
        max_flows = config.tcp.max_flows,
        buffer_per_direction = config.tcp.max_buffer_per_direction,
        max_body = config.http.max_body,
        budget_mib = opts.max_memory >> 20,
        "sensor starting"
    );

    let queue = Arc::new(Queue::<Msg>::new(queue_capacity(
        opts.max_memory,
        opts.snaplen,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let mut counters: Vec<Arc<Counters>> = Vec::new();
    let mut inputs: Vec<(String, String)> = Vec::new();
    let mut running = 0usize;
    for src in sources {
        let name = src.name();
        counters.push(src.counters());
        inputs.push((name.clone(), "ok".into()));
        let queue = Arc::clone(&queue);
        let stop = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name(format!("capture {name}"))
            .spawn(move || {
                let result = src.run(&mut |c| queue.push(Msg::Captured(c)), &stop);
                queue.push(Msg::End {
                    source: name,
                    error: result.err(),
                });
            });
        match spawned {
            Ok(_) => running += 1,
            Err(e) => tracing::error!("cannot start a capture thread: {e}"),
        }
    }

    let started = Instant::now();
    let mut next_tick = started + TICK;
    let mut next_flush = started + opts.flush_interval;
    let mut stop_deadline: Option<Instant> = None;
    let mut meter = Meter::default();
    let mut source_errors = Vec::new();
    let mut endpoints = usize::try_from(analysis.endpoints_known()).unwrap_or(usize::MAX);
    let mut flushes = 0u64;
    let mut failed_writes = 0u64;
    let mut flushed = Stats::default();
    let mut peak_rss = None;

    let totals = |analyzer: &Live, failed: usize| {
        let mut s = analyzer.stats();
        s.files = counters.len() as u64;
        s.files_failed = failed as u64;
        s.capture_dropped = counters
            .iter()
            .map(|c| {
                let (_, k, i) = c.read();
                k + i
            })
            .sum();
        s
    };
    let snapshot = |analyzer: &Live,
                    s: &Stats,
                    endpoints: usize,
                    (flushes, failed_writes): (u64, u64),
                    peak: &mut Option<u64>| {
        let (rss, hwm) = status::memory();
        *peak = hwm.or(*peak);
        let (mut kernel, mut iface) = (0, 0);
        for c in &counters {
            let (_, k, i) = c.read();
            kernel += k;
            iface += i;
        }
        Snapshot {
            uptime: started.elapsed(),
            packets: s.packets,
            bytes: s.bytes,
            flows_open: analyzer.open_flows(),
            flows: s.flows,
            exchanges: s.exchanges,
            endpoints,
            kernel_dropped: kernel,
            interface_dropped: iface,
            flows_evicted: s.flows_evicted,
            flows_shed: s.flows_shed,
            rss,
            peak_rss: *peak,
            budget: opts.max_memory,
            flushes,
            failed_writes,
        }
    };

    let mut batch = Vec::new();
    while running > 0 {
        queue.take(Duration::from_millis(100), &mut batch);
        for msg in batch.drain(..) {
            match msg {
                Msg::Captured(Captured::Packet(p)) => {
                    analyzer.packet(&p.as_packet(), &mut |ex| analysis.observe(ex));
                }
                Msg::Captured(Captured::Secrets { kind, data }) => analyzer.secrets(kind, &data),
                Msg::End { source, error } => {
                    running -= 1;
                    match error {
                        Some(e) => {
                            tracing::error!("{e}");
                            if let Some(slot) = inputs.iter_mut().find(|(n, _)| *n == source) {
                                slot.1 = e.clone();
                            }
                            source_errors.push(e);
                        }
                        None => tracing::info!(source, "input ended"),
                    }
                }
            }
        }
        let now = Instant::now();
        if now < next_tick && now < next_flush && !signals.stop_requested() {
            continue;
        }
        if signals.take_hup() {
            on_hup();
        }
        if stop_deadline.is_none() && signals.stop_requested() {
            tracing::info!("stop requested: draining the capture, then writing the inventory");
            stop.store(true, Ordering::Relaxed);
            stop_deadline = Some(now + STOP_WAIT);
        }
        if stop_deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_tick {
            next_tick = now + TICK;
            analyzer.tick(&mut |ex| analysis.observe(ex));
            // Clients append to the key log as they connect.
            if let Err(e) = analyzer.refresh_keys() {
                tracing::warn!("--keylog: {e}");
            }
            let s = totals(&analyzer, source_errors.len());
            let snap = snapshot(
                &analyzer,
                &s,
                endpoints,
                (flushes, failed_writes),
                &mut peak_rss,
            );
            if snap
                .rss
                .is_some_and(|rss| rss > opts.max_memory / 100 * SHED_AT_PERCENT)
            {
                analyzer.shed(SHED_FRACTION, &mut |ex| analysis.observe(ex));
                tracing::warn!(
                    rss_mib = snap.rss.unwrap_or(0) >> 20,
                    budget_mib = opts.max_memory >> 20,
                    flows_open = snap.flows_open,
                    shed_fraction = format!("1/{SHED_FRACTION}"),
                    "near the memory budget: shed the least recently active flows"
                );
            }
            let rates = meter.sample(&snap);
            on_tick(&snap, rates);
        }
        if now >= next_flush && stop_deadline.is_none() {
            next_flush = now + opts.flush_interval;
            // Every shard's exchanges and counters up to now go into this write.
            analyzer.tick(&mut |ex| analysis.observe(ex));
            let s = totals(&analyzer, source_errors.len());
            match flush(&mut analysis, &opts.command, &inputs, s.since(&flushed)) {
                Ok(n) => {
                    endpoints = n;
                    flushes += 1;
                    failed_writes = 0;
                    flushed = s;
                    let snap = snapshot(
                        &analyzer,
                        &flushed,
                        endpoints,
                        (flushes, failed_writes),
                        &mut peak_rss,
                    );
                    log_status(&snap, meter.sample(&snap));
                }
                // Kept in memory and written with the next flush.
                Err(e) => {
                    failed_writes += 1;
                    tracing::error!(
                        failed_writes,
                        "writing the inventory: {e}; kept, retried at the next flush"
                    );
                }
            }
        }
    }

    let stopped = signals.stop_requested();
    stop.store(true, Ordering::Relaxed);
    queue.close();
    analyzer.finish(&mut |ex| analysis.observe(ex));
    let s = totals(&analyzer, source_errors.len());
    endpoints = flush(&mut analysis, &opts.command, &inputs, s.since(&flushed))?;
    flushes += 1;
    let snap = snapshot(
        &analyzer,
        &s,
        endpoints,
        (flushes, failed_writes),
        &mut peak_rss,
    );
    log_status(&snap, meter.sample(&snap));
    Ok(Summary {
        snapshot: snap,
        stats: s,
        source_errors,
        stopped,
    })
}

/// The structured status line written at each flush.
fn log_status(s: &Snapshot, r: Rates) {
    tracing::info!(
        packets = s.packets,
        pkt_per_s = r.packets.round() as u64,
        mbit_per_s = (r.mbit * 10.0).round() / 10.0,
        flows_open = s.flows_open,
        flows = s.flows,
        exchanges = s.exchanges,
        ex_per_s = r.exchanges.round() as u64,
        endpoints = s.endpoints,
        kernel_dropped = s.kernel_dropped,
        interface_dropped = s.interface_dropped,
        flows_evicted = s.flows_evicted,
        flows_shed = s.flows_shed,
        rss_mib = s.rss.unwrap_or(0) >> 20,
        peak_rss_mib = s.peak_rss.unwrap_or(0) >> 20,
        budget_mib = s.budget >> 20,
        flushes = s.flushes,
        failed_writes = s.failed_writes,
        "inventory flushed"
    );
}
