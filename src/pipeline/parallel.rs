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
*/

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use super::front::{Front, Step};
use super::reorder::Reorder;
use super::shard::Shard;
use super::Config;
use crate::decode::TcpSegment;
use crate::exchange::{Exchange, Order};
use crate::source::{CaptureError, Timestamp};
use crate::stats::Stats;
use crate::tcp::shard_of;
use crate::tls::keylog::KeyLog;

/// Payload bytes a batch collects before it is sent.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Steps a batch collects before it is sent.
const BATCH_STEPS: usize = 2048;
/// Steps after which every shard's batch is sent, full or not, so that the low water of
/// a shard with little traffic keeps up with the others.
const FLUSH_STEPS: u64 = 8192;
/// Batches waiting for each worker.
pub const QUEUED_BATCHES: usize = 4;

/// One step, copied out of its packet.
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
}

/// Steps for one shard, and the position every step before which has been dispatched.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    upto: u64,
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
struct Report {
    shard: usize,
    finished: Vec<Exchange>,
    /// `None` once the shard has ended: it will produce nothing more.
    low_water: Option<Order>,
}

/// The reader's side: the batch being filled for each shard.
struct Dispatch {
    batches: Vec<Batch>,
    queues: Vec<SyncSender<Batch>>,
    /// Emptied batches the workers hand back, reused to spare allocations.
    spares: Receiver<Batch>,
    since_flush: u64,
}

impl Dispatch {
    fn step(&mut self, at: u64, step: Step<'_, '_>) {
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

    fn secrets(&mut self, kind: u32, data: &[u8]) {
        for b in &mut self.batches {
            let (start, end) = b.copy(data);
            b.items.push(Item::Secrets { kind, start, end });
        }
    }

    /// Sends every shard its batch if one is full or enough steps have passed.
    fn maybe_flush(&mut self, upto: u64) {
        if self.since_flush >= FLUSH_STEPS {
            self.flush(upto);
        }
    }

    /// Sends every shard its batch, marked as covering every step before `upto`.
    fn flush(&mut self, upto: u64) {
        self.since_flush = 0;
        for (batch, queue) in self.batches.iter_mut().zip(&self.queues) {
            let spare = self.spares.try_recv().unwrap_or_default();
            let mut full = std::mem::replace(batch, spare);
            full.upto = upto;
            // A worker that is gone has panicked; joining it reports that.
            let _ = queue.send(full);
        }
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
    dispatch.flush(front.next_at());
    (
        front.stats().clone(),
        result.map(|_| ()).map_err(|(_, e)| e),
    )
}

/// Carries out one shard's batches; returns its counters and its unreadable embedded
/// key lines.
fn work(
    index: usize,
    mut shard: Shard,
    batches: Receiver<Batch>,
    spares: Sender<Batch>,
    reports: SyncSender<Report>,
) -> (Stats, u64) {
    for mut batch in batches {
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
                Item::Secrets { kind, start, end } => {
                    shard.secrets(*kind, &batch.data[*start..*end])
                }
            }
        }
        let mut finished = Vec::new();
        shard.take_finished(&mut finished);
        let low_water = Some(shard.low_water(batch.upto));
        if reports
            .send(Report {
                shard: index,
                finished,
                low_water,
            })
            .is_err()
        {
            break;
        }
        batch.items.clear();
        batch.data.clear();
        let _ = spares.send(batch);
    }
    shard.finish(&mut |finished, low_water| {
        let _ = reports.send(Report {
            shard: index,
            finished: std::mem::take(finished),
            low_water: Some(low_water),
        });
    });
    let mut finished = Vec::new();
    shard.take_finished(&mut finished);
    let _ = reports.send(Report {
        shard: index,
        finished,
        low_water: None,
    });
    (shard.stats(), shard.embedded_bad_lines())
}

/// The result of a thread; its panic goes on in the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs one capture over `threads` shards (see the module documentation). Exchanges go to
/// `sink` on the caller's thread, in order; on a broken file, everything before the break
/// is still analysed and the error is returned after.
pub fn run<R: Read + Send>(
    reader: R,
    config: Config,
    keylog: Option<Arc<KeyLog>>,
    threads: usize,
    sink: &mut dyn FnMut(Exchange),
    on_progress: &mut dyn FnMut(u64),
) -> (Stats, Result<(), CaptureError>) {
    let n = threads.max(1);
    let shard_config = config.for_shards(n);
    let progress = AtomicU64::new(0);
    let (spare_tx, spare_rx) = mpsc::channel();
    let (report_tx, report_rx) = mpsc::sync_channel(2 * n);
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for index in 0..n {
            let (tx, rx) = mpsc::sync_channel(QUEUED_BATCHES);
            queues.push(tx);
            let shard = Shard::new(&shard_config, keylog.clone());
            let (spares, reports) = (spare_tx.clone(), report_tx.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("specter-shard-{index}"))
                    .spawn_scoped(scope, move || work(index, shard, rx, spares, reports))
                    .expect("spawning an analysis thread"),
            );
        }
        drop((spare_tx, report_tx));
        let dispatch = Dispatch {
            batches: (0..n).map(|_| Batch::default()).collect(),
            queues,
            spares: spare_rx,
            since_flush: 0,
        };
        let progress = &progress;
        let config = &config;
        let reader = std::thread::Builder::new()
            .name("specter-reader".into())
            .spawn_scoped(scope, move || read(reader, config, dispatch, progress))
            .expect("spawning the reader thread");

        let mut reorder = Reorder::new(config.max_reorder, config.max_reorder_bytes);
        let mut low_waters: Vec<Option<Order>> = vec![Some(Order::default()); n];
        for report in report_rx {
            reorder.extend(report.finished);
            low_waters[report.shard] = report.low_water;
            // Shards that have ended no longer hold anything back.
            let low_water = low_waters.iter().flatten().min().copied();
            reorder.release(low_water, sink);
            on_progress(progress.load(AtomicOrdering::Relaxed));
        }
        reorder.release(None, sink);
        let released_early = reorder.released_early;

        let (mut stats, result) = join(reader);
        let mut embedded_bad = 0;
        for w in workers {
            let (s, bad) = join(w);
            stats.merge(&s);
            // Every shard read the same embedded secrets.
            embedded_bad = bad;
        }
        stats.tls_keylog_bad_lines += embedded_bad;
        stats.exchanges_released_early += released_early;
        (stats, result)
    })
}
