/*!
The live sensor's `--threads N`: connections spread over N shards on worker threads, fed
one packet at a time.

[`Engine`] has the [`super::Analyzer`]'s incremental interface on top of the workers of
[`super::parallel`]: the caller's thread decodes each packet in the [`Front`], copies its
segments into the batches of their shards, and merges what the shards report, all inside
[`Engine::packet`]. Batches go out when full, after enough steps, and at every
[`Engine::tick`] (so a quiet link still sees its exchanges within a tick); counters come
back with the reports of a tick's batches, so [`Engine::stats`] is as of the last tick.
Shedding flows and key-log lines go to every shard as items of their batches, in the
order of the input.

No deadlock, no unbounded queue: the caller drains every report after each send; between
two drains each shard has at most [`super::parallel::QUEUED_BATCHES`] batches queued,
one in hand and one more being sent, so a report queue of `shards × (QUEUED_BATCHES + 2)`
never fills while the caller is blocked sending.
*/

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::front::Front;
use super::parallel::{self, Dispatch, Merge, Report, QUEUED_BATCHES};
use super::Config;
use crate::exchange::Exchange;
use crate::source::Packet;
use crate::stats::Stats;
use crate::tls::keylog::{Appended, KeyLog};

/// Packets to exchanges over worker shards, driven one packet at a time.
pub struct Engine {
    front: Front,
    /// `None` once finished: the queues are closed.
    dispatch: Option<Dispatch>,
    reports: Receiver<Report>,
    workers: Vec<JoinHandle<()>>,
    merge: Merge,
}

impl Engine {
    /// Starts `shards` worker threads (at least one) with the caps of `config` split
    /// between them and the run's key log.
    pub fn new(
        config: Config,
        keylog: Option<Arc<KeyLog>>,
        shards: usize,
    ) -> std::io::Result<Engine> {
        let n = shards.max(1);
        let (report_tx, reports) = mpsc::sync_channel(n * (QUEUED_BATCHES + 2));
        let (dispatch, workers, returns) = parallel::spawn_workers(&config, keylog, n, &report_tx)?;
        Ok(Engine {
            front: Front::new(config.defrag),
            dispatch: Some(dispatch),
            reports,
            workers,
            merge: Merge::new(&config, returns),
        })
    }

    /// Feeds one captured packet; exchanges the shards finished go to `sink`.
    pub fn packet(&mut self, packet: &Packet<'_>, sink: &mut dyn FnMut(&Exchange)) {
        let Some(dispatch) = self.dispatch.as_mut() else {
            return;
        };
        self.front
            .packet(packet, &mut |at, step| dispatch.step(at, step));
        if dispatch.maybe_flush(self.front.next_at()) {
            self.drain(sink);
        }
    }

    /// Sends every shard what it has so far and asks for its counters; takes whatever
    /// the shards reported. Call it regularly (a sensor does, every second).
    pub fn tick(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        if let Some(d) = self.dispatch.as_mut() {
            d.flush(self.front.next_at(), true);
        }
        self.drain(sink);
    }

    /// Asks every shard to close the least recently active `1/fraction` of its flows
    /// (a live sensor over its budget); each counts as evicted and shed, in the counters
    /// of the next tick.
    pub fn shed(&mut self, fraction: usize, sink: &mut dyn FnMut(&Exchange)) {
        if let Some(d) = self.dispatch.as_mut() {
            // Shedding is a step of its own, after every step so far.
            d.shed(self.front.next_at(), fraction, self.front.now());
        }
        self.tick(sink);
    }

    /// Takes secrets embedded in the capture (a pcapng Decryption Secrets Block): every
    /// shard gets them after the packets fed so far.
    pub fn secrets(&mut self, kind: u32, data: &[u8]) {
        if let Some(d) = self.dispatch.as_mut() {
            d.secrets(kind, data);
        }
    }

    /// Adds lines appended to the run's key log file in every shard, after the packets
    /// fed so far.
    pub fn add_keylog(&mut self, appended: &Appended) {
        if let Some(d) = self.dispatch.as_mut() {
            d.keylog(appended);
        }
    }

    /// Connections tracked, as of the last tick.
    pub fn open_flows(&self) -> usize {
        self.merge.snapshots.iter().map(|s| s.open_flows).sum()
    }

    /// Counters: the front's now, the shards' as of the last tick.
    pub fn stats(&self) -> Stats {
        self.merge.totals(self.front.stats())
    }

    /// Ends the input: every shard closes its flows; every exchange is released; the
    /// worker threads end.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        let Some(mut dispatch) = self.dispatch.take() else {
            return;
        };
        dispatch.flush(self.front.next_at(), false);
        // Closing the queues ends the workers once they have carried out their batches.
        drop(dispatch);
        while !self.merge.ended() {
            match self.reports.recv() {
                Ok(report) => self.merge.take(report, sink),
                Err(_) => break,
            }
        }
        self.merge.release_all(sink);
        parallel::join_workers(std::mem::take(&mut self.workers));
    }

    /// Takes every report waiting, without blocking.
    fn drain(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        while let Ok(report) = self.reports.try_recv() {
            self.merge.take(report, sink);
        }
    }
}

impl Drop for Engine {
    /// An engine dropped without [`Engine::finish`] still closes its queues and waits for
    /// its workers, discarding what they report.
    fn drop(&mut self) {
        if self.dispatch.take().is_some() {
            while self.reports.recv().is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Analyzer;
    use std::path::Path;

    /// Every exchange of a capture through `feed`, which gets each packet and the sink.
    fn exchanges_of(
        file: &Path,
        mut feed: impl FnMut(&Packet<'_>, &mut dyn FnMut(&Exchange)),
    ) -> Vec<Exchange> {
        let mut out = Vec::new();
        let data = std::fs::read(file).expect("capture");
        let result = crate::source::read_capture(
            &data[..],
            |p| feed(p, &mut |ex| out.push(ex.clone())),
            |_| {},
            &mut |_| {},
        );
        assert!(result.is_ok(), "{}", file.display());
        out
    }

    #[test]
    fn an_engine_gives_what_one_analyzer_gives_ticked_or_not() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        for name in ["shop-api-a.pcap", "pipelined.pcap", "h2c-nghttp.pcap"] {
            let file = root.join(name);
            let config = Config::default();
            let mut one = Analyzer::new(config);
            let mut want = exchanges_of(&file, |p, sink| one.packet(p, sink));
            one.finish(&mut |ex| want.push(ex.clone()));
            assert!(!want.is_empty(), "{name}");
            for shards in [1, 3] {
                let mut engine = Engine::new(config, None, shards).expect("threads");
                let mut n = 0;
                let mut got = exchanges_of(&file, |p, sink| {
                    engine.packet(p, sink);
                    // A tick now and then, as a sensor's loop does.
                    n += 1;
                    if n % 97 == 0 {
                        engine.tick(sink);
                    }
                });
                engine.finish(&mut |ex| got.push(ex.clone()));
                assert!(got == want, "{name}: {shards} shards");
                assert_eq!(engine.stats().exchanges, one.stats().exchanges, "{name}");
                assert_eq!(engine.open_flows(), 0, "{name}");
            }
        }
    }
}
