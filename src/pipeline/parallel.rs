/*!
`--threads N`: connections spread over N shards on worker threads, one output in order.

A reader thread reads the capture and runs the [`Front`]: it decodes every packet, numbers
the steps, and copies each TCP segment into the batch of the shard its connection hashes
to ([`crate::tcp::shard_of`]); sweeps of idle flows and embedded secrets go to every shard.
Each worker carries out its batches on its own [`Shard`] and reports the exchanges it
finished with its low water (the lowest order it may still produce). The caller's thread
merges the reports in a [`Reorder`] and releases each exchange once every shard's low water
has passed it, so exchanges come out in the same order, with the same content, as on one
thread: every order is decided by the input and the connection alone. The one difference:
each shard holds `1/N` of the flow cap, so when the cap is reached, which flows are evicted
depends on the spread.

Memory stays bounded: each shard has at most [`QUEUED_BATCHES`] batches of at most
[`BATCH_BYTES`] waiting, reports are a bounded queue, and the reorder buffer keeps its cap.

The workers, their batches and the merge are shared with the live sensor's
[`super::engine::Engine`], which runs the front and the merge on one thread.
*/

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::front::{Front, Step};
use super::reorder::Reorder;
use super::shard::{self, Shard, ShardSnapshot};
use super::Config;
use crate::decode::TcpSegment;
use crate::exchange::{Exchange, Order};
use crate::source::{CaptureError, Timestamp};
use crate::stats::Stats;
use crate::tcp::shard_of;
use crate::tls::keylog::{Appended, KeyLog};

/// Payload bytes a batch collects before it is sent.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Steps a batch collects before it is sent.
const BATCH_STEPS: usize = 2048;
/// Steps after which every shard's batch is sent, full or not, so that the low water of
/// a shard with little traffic keeps up with the others.
const FLUSH_STEPS: u64 = 8192;
/// Batches waiting for each worker.
pub const QUEUED_BATCHES: usize = 4;

/// One step, copied out of its packet, or an order for every shard.
enum Item {
    Segment {
        at: u64,
        /// The segment with an empty payload; the payload is `data[start..end]`.
        head: TcpSegment<'static>,
        start: usize,
        end: usize,
    },
    Sweep {
        at: u64,
        ts: Timestamp,
    },
    Secrets {
        kind: u32,
        start: usize,
        end: usize,
    },
    /// Close the least recently active `1/fraction` of the flows (a sensor near its
    /// memory budget).
    Shed {
        at: u64,
        fraction: usize,
        ts: Timestamp,
    },
    /// Lines appended to the key log file, `data[start..end]`.
    KeyLog {
        start: usize,
        end: usize,
        dropped_long_line: bool,
    },
}

/// Steps for one shard, and the position every step before which has been dispatched.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    upto: u64,
    /// The worker sends its counters with the report of this batch.
    snapshot: bool,
}

impl Batch {
    fn copy(&mut self, bytes: &[u8]) -> (usize, usize) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        (start, self.data.len())
    }

    fn full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.items.len() >= BATCH_STEPS
    }
}

/// What a worker tells the merger after each batch.
pub(super) struct Report {
    shard: usize,
    finished: Vec<Exchange>,
    /// `None` once the shard has ended: it will produce nothing more.
    low_water: Option<Order>,
    /// The shard's counters, when the batch asked for them and at the end.
    snapshot: Option<Box<ShardSnapshot>>,
}

/// The sending side: the batch being filled for each shard.
pub(super) struct Dispatch {
    batches: Vec<Batch>,
    queues: Vec<SyncSender<Batch>>,
    /// Emptied batches the workers hand back, reused to spare allocations.
    spares: Receiver<Batch>,
    since_flush: u64,
}

impl Dispatch {
    /// Adds a step to the batch of the shard it belongs to (every shard's for a sweep).
    pub(super) fn step(&mut self, at: u64, step: Step<'_, '_>) {
        match step {
            Step::Sweep(ts) => {
                for b in &mut self.batches {
                    b.items.push(Item::Sweep { at, ts });
                }
            }
            Step::Segment(seg) => {
                let i = shard_of(seg, self.batches.len());
                let b = &mut self.batches[i];
                let (start, end) = b.copy(seg.payload);
                b.items.push(Item::Segment {
                    at,
                    head: TcpSegment {
                        ts: seg.ts,
                        src: seg.src,
                        dst: seg.dst,
                        context: seg.context,
                        seq: seg.seq,
                        ack: seg.ack,
                        flags: seg.flags,
                        payload: &[],
                        missing: seg.missing,
                    },
                    start,
                    end,
                });
                if b.full() {
                    self.since_flush = FLUSH_STEPS;
                }
            }
        }
        self.since_flush += 1;
    }

    /// Sends embedded secrets to every shard.
    pub(super) fn secrets(&mut self, kind: u32, data: &[u8]) {
        for b in &mut self.batches {
            let (start, end) = b.copy(data);
            b.items.push(Item::Secrets { kind, start, end });
        }
    }

    /// Asks every shard to shed `1/fraction` of its flows at position `at`.
    pub(super) fn shed(&mut self, at: u64, fraction: usize, ts: Timestamp) {
        for b in &mut self.batches {
            b.items.push(Item::Shed { at, fraction, ts });
        }
    }

    /// Sends lines appended to the key log file to every shard.
    pub(super) fn keylog(&mut self, appended: &Appended) {
        for b in &mut self.batches {
            let (start, end) = b.copy(&appended.text);
            b.items.push(Item::KeyLog {
                start,
                end,
                dropped_long_line: appended.dropped_long_line,
            });
        }
    }

    /// Sends every shard its batch if one is full or enough steps have passed; returns
    /// whether it did.
    pub(super) fn maybe_flush(&mut self, upto: u64) -> bool {
        let due = self.since_flush >= FLUSH_STEPS;
        if due {
            self.flush(upto, false);
        }
        due
    }

    /// Sends every shard its batch, marked as covering every step before `upto`, and
    /// asking for the shard's counters if `snapshot`.
    pub(super) fn flush(&mut self, upto: u64, snapshot: bool) {
        self.since_flush = 0;
        for (batch, queue) in self.batches.iter_mut().zip(&self.queues) {
            let spare = self.spares.try_recv().unwrap_or_default();
            let mut full = std::mem::replace(batch, spare);
            full.upto = upto;
            full.snapshot = snapshot;
            // A worker that is gone has panicked; joining it reports that.
            let _ = queue.send(full);
        }
    }
}

/// Where the [`Merge`] sends each shard's exchanges back, to be freed on its thread.
pub(super) type Returns = Vec<Sender<Vec<Exchange>>>;

/// The worker threads, each with its shard, the sending side that feeds them, and where
/// the [`Merge`] returns their exchanges.
pub(super) fn spawn_workers(
    config: &Config,
    keylog: Option<Arc<KeyLog>>,
    shards: usize,
    reports: &SyncSender<Report>,
) -> std::io::Result<(Dispatch, Vec<JoinHandle<()>>, Returns)> {
    let shard_config = config.for_shards(shards);
    let (spare_tx, spare_rx) = mpsc::channel();
    let mut queues = Vec::with_capacity(shards);
    let mut returns = Vec::with_capacity(shards);
    let mut workers = Vec::with_capacity(shards);
    for index in 0..shards {
        let (tx, rx) = mpsc::sync_channel(QUEUED_BATCHES);
        queues.push(tx);
        let (return_tx, return_rx) = mpsc::channel();
        returns.push(return_tx);
        let shard = Shard::new(&shard_config, keylog.clone());
        let (spares, reports) = (spare_tx.clone(), reports.clone());
        let ends = Ends {
            index,
            batches: rx,
            spares,
            reports,
            returned: return_rx,
        };
        workers.push(
            std::thread::Builder::new()
                .name(format!("specter-shard-{index}"))
                .spawn(move || work(shard, ends))?,
        );
    }
    let dispatch = Dispatch {
        batches: (0..shards).map(|_| Batch::default()).collect(),
        queues,
        spares: spare_rx,
        since_flush: 0,
    };
    Ok((dispatch, workers, returns))
}

/// Waits for the workers once their queues are closed; a worker's panic goes on here.
pub(super) fn join_workers(workers: Vec<JoinHandle<()>>) {
    for w in workers {
        w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    }
}

/// Carries out one batch's items on a shard.
fn carry_out(shard: &mut Shard, batch: &Batch) {
    for item in &batch.items {
        match item {
            Item::Segment {
                at,
                head,
                start,
                end,
            } => {
                let seg = TcpSegment {
                    payload: &batch.data[*start..*end],
                    ..*head
                };
                shard.step(*at, Step::Segment(&seg));
            }
            Item::Sweep { at, ts } => shard.step(*at, Step::Sweep(*ts)),
            Item::Secrets { kind, start, end } => shard.secrets(*kind, &batch.data[*start..*end]),
            Item::Shed { at, fraction, ts } => {
                shard.shed(*at, *fraction, *ts);
            }
            Item::KeyLog {
                start,
                end,
                dropped_long_line,
            } => shard.add_keylog(&Appended {
                text: batch.data[*start..*end].to_vec(),
                dropped_long_line: *dropped_long_line,
            }),
        }
    }
}

/// A worker's channels.
struct Ends {
    index: usize,
    batches: Receiver<Batch>,
    spares: Sender<Batch>,
    reports: SyncSender<Report>,
    /// Exchanges this shard made, back from the merger once it has passed them on.
    returned: Receiver<Vec<Exchange>>,
}

impl Ends {
    /// Frees the exchanges the merger has sent back. They were allocated on this thread,
    /// and a block freed by the thread that allocated it costs a fraction of one freed by
    /// another (which the allocator must hand back across threads): on the 1 GB HTTP/1
    /// capture, cross-thread frees took a tenth of all CPU time.
    fn free_returned(&self) {
        while let Ok(exchanges) = self.returned.try_recv() {
            drop(exchanges);
        }
    }
}

/// Carries out one shard's batches until its queue closes, then closes its flows.
fn work(mut shard: Shard, ends: Ends) {
    let index = ends.index;
    for mut batch in &ends.batches {
        ends.free_returned();
        carry_out(&mut shard, &batch);
        let mut finished = Vec::new();
        shard.take_finished(&mut finished);
        let report = Report {
            shard: index,
            finished,
            low_water: Some(shard.low_water(batch.upto)),
            snapshot: batch.snapshot.then(|| Box::new(shard.snapshot())),
        };
        if ends.reports.send(report).is_err() {
            return;
        }
        batch.items.clear();
        batch.data.clear();
        let _ = ends.spares.send(batch);
    }
    shard.finish(&mut |finished, low_water| {
        ends.free_returned();
        let _ = ends.reports.send(Report {
            shard: index,
            finished: std::mem::take(finished),
            low_water: Some(low_water),
            snapshot: None,
        });
    });
    let mut finished = Vec::new();
    shard.take_finished(&mut finished);
    let _ = ends.reports.send(Report {
        shard: index,
        finished,
        low_water: None,
        snapshot: Some(Box::new(shard.snapshot())),
    });
}

/// The merger's side: puts the shards' exchanges back in order, hands each on, then sends
/// it back to its shard to be freed; keeps the shards' latest counters.
pub(super) struct Merge {
    reorder: Reorder,
    low_waters: Vec<Option<Order>>,
    /// The latest counters of each shard.
    pub(super) snapshots: Vec<ShardSnapshot>,
    /// Where each shard takes its exchanges back.
    returns: Returns,
    /// Exchanges passed on, by shard, to go back after this release.
    passed: Vec<Vec<Exchange>>,
}

impl Merge {
    pub(super) fn new(config: &Config, returns: Returns) -> Self {
        let shards = returns.len();
        Merge {
            reorder: Reorder::new(config.max_reorder, config.max_reorder_bytes),
            low_waters: vec![Some(Order::default()); shards],
            snapshots: vec![ShardSnapshot::default(); shards],
            returns,
            passed: vec![Vec::new(); shards],
        }
    }

    /// Takes a report; passes to `sink` every exchange all shards have passed.
    pub(super) fn take(&mut self, report: Report, sink: &mut dyn FnMut(&Exchange)) {
        self.reorder.add(report.shard, report.finished);
        self.low_waters[report.shard] = report.low_water;
        if let Some(s) = report.snapshot {
            self.snapshots[report.shard] = *s;
        }
        // Shards that have ended no longer hold anything back.
        let low_water = self.low_waters.iter().flatten().min().copied();
        self.release(low_water, sink);
    }

    fn release(&mut self, low_water: Option<Order>, sink: &mut dyn FnMut(&Exchange)) {
        let passed = &mut self.passed;
        self.reorder.release_from(low_water, &mut |shard, ex| {
            sink(&ex);
            passed[shard].push(ex);
        });
        for (exchanges, back) in self.passed.iter_mut().zip(&self.returns) {
            if !exchanges.is_empty() {
                // A shard that has ended frees nothing more: its exchanges are dropped
                // here instead.
                let _ = back.send(std::mem::take(exchanges));
            }
        }
    }

    /// True once every shard has sent its last report.
    pub(super) fn ended(&self) -> bool {
        self.low_waters.iter().all(Option::is_none)
    }

    /// Releases everything still held (the input has ended).
    pub(super) fn release_all(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        self.release(None, sink);
    }

    /// The counters of the whole pipeline, with the front's.
    pub(super) fn totals(&self, front: &Stats) -> Stats {
        shard::totals(front, &self.snapshots, self.reorder.released_early)
    }
}

/// Reads the capture and dispatches its steps; returns the front's counters.
fn read<R: Read + Send>(
    reader: R,
    config: &Config,
    mut dispatch: Dispatch,
    progress: &AtomicU64,
) -> (Stats, Result<(), CaptureError>) {
    let front = std::cell::RefCell::new(Front::new(config.defrag));
    let dispatch_cell = std::cell::RefCell::new(&mut dispatch);
    let result = crate::source::read_capture(
        reader,
        |p| {
            let mut front = front.borrow_mut();
            let mut d = dispatch_cell.borrow_mut();
            front.packet(p, &mut |at, step| d.step(at, step));
            d.maybe_flush(front.next_at());
        },
        |s| dispatch_cell.borrow_mut().secrets(s.kind, &s.data),
        &mut |n| progress.store(n, AtomicOrdering::Relaxed),
    );
    let front = front.into_inner();
    dispatch.flush(front.next_at(), false);
    (
        front.stats().clone(),
        result.map(|_| ()).map_err(|(_, e)| e),
    )
}

/// Runs one capture over `threads` shards (see the module documentation). Exchanges go to
/// `sink` on the caller's thread, in order; on a broken file, everything before the break
/// is still analysed and the error is returned after.
pub fn run<R: Read + Send>(
    reader: R,
    config: Config,
    keylog: Option<Arc<KeyLog>>,
    threads: usize,
    sink: &mut dyn FnMut(&Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), CaptureError>) {
    let n = threads.max(1);
    let progress = AtomicU64::new(0);
    // Bounded: a merger slower than the shards holds them back rather than their
    // exchanges piling up.
    let (report_tx, report_rx) = mpsc::sync_channel(2 * n);
    let (dispatch, workers, returns) =
        spawn_workers(&config, keylog, n, &report_tx).expect("spawning an analysis thread");
    drop(report_tx);
    std::thread::scope(|scope| {
        let progress = &progress;
        let config = &config;
        let reader = std::thread::Builder::new()
            .name("specter-reader".into())
            .spawn_scoped(scope, move || read(reader, config, dispatch, progress))
            .expect("spawning the reader thread");

        let mut merge = Merge::new(config, returns);
        for report in report_rx {
            merge.take(report, sink);
            on_progress(progress.load(AtomicOrdering::Relaxed));
        }
        merge.release_all(sink);
        let (front, result) = reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        join_workers(workers);
        (merge.totals(&front), result)
    })
}
