/*!
The pipeline of a live sensor: one [`Analyzer`] on the caller's thread for `--threads 1`,
an [`Engine`] over worker shards for more, behind one interface, with the run's key log
file read once for all shards.
*/

use std::sync::Arc;

use super::engine::Engine;
use super::{Analyzer, Config};
use crate::exchange::Exchange;
use crate::source::Packet;
use crate::stats::Stats;
use crate::tls::keylog::{KeyLog, KeyLogFile};

enum Inner {
    One(Box<Analyzer>),
    Sharded(Box<Engine>),
}

/// Packets to exchanges for a sensor, on one thread or several.
pub struct Live {
    inner: Inner,
    /// Read every tick for lines the clients appended.
    keylog_file: Option<KeyLogFile>,
}

impl Live {
    /// A pipeline with the caps of `config` on `threads` analysis threads and the key log
    /// read so far (its file is re-read at every [`Live::refresh_keys`]).
    pub fn new(config: Config, keylog: Option<KeyLog>, threads: usize) -> std::io::Result<Live> {
        let (keylog, keylog_file) = match keylog {
            Some(mut log) => {
                let file = log.take_file();
                (Some(Arc::new(log)), file)
            }
            None => (None, None),
        };
        let inner = if threads > 1 {
            Inner::Sharded(Box::new(Engine::new(config, keylog, threads)?))
        } else {
            Inner::One(Box::new(Analyzer::with_keys(config, keylog)))
        };
        Ok(Live { inner, keylog_file })
    }

    /// Feeds one captured packet; finished exchanges go to `sink`.
    pub fn packet(&mut self, packet: &Packet<'_>, sink: &mut dyn FnMut(&Exchange)) {
        match &mut self.inner {
            Inner::One(a) => a.packet(packet, sink),
            Inner::Sharded(e) => e.packet(packet, sink),
        }
    }

    /// Takes secrets embedded in a capture stream (a pcapng Decryption Secrets Block), in
    /// their place among its packets.
    pub fn secrets(&mut self, kind: u32, data: &[u8]) {
        match &mut self.inner {
            Inner::One(a) => a.secrets(kind, data),
            Inner::Sharded(e) => e.secrets(kind, data),
        }
    }

    /// Brings the counters up to date and takes what the threads finished; call it about
    /// once a second.
    pub fn tick(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        if let Inner::Sharded(e) = &mut self.inner {
            e.tick(sink);
        }
    }

    /// Reads the lines appended to the key log file since the last call and gives them to
    /// every flow table. Connections still waiting for their keys (see
    /// [`crate::http1::Config::key_wait_bytes`]) find them at their next record.
    pub fn refresh_keys(&mut self) -> std::io::Result<()> {
        let Some(file) = self.keylog_file.as_mut() else {
            return Ok(());
        };
        let appended = file.read_appended()?;
        if appended.text.is_empty() && !appended.dropped_long_line {
            return Ok(());
        }
        match &mut self.inner {
            Inner::One(a) => a.add_keylog(&appended),
            Inner::Sharded(e) => e.add_keylog(&appended),
        }
        Ok(())
    }

    /// Closes the least recently active `1/fraction` of the flows (over the memory
    /// budget); what they held goes to `sink`.
    pub fn shed(&mut self, fraction: usize, sink: &mut dyn FnMut(&Exchange)) {
        match &mut self.inner {
            Inner::One(a) => {
                a.shed(fraction, sink);
            }
            Inner::Sharded(e) => e.shed(fraction, sink),
        }
    }

    /// Connections tracked (with several threads, as of the last tick).
    pub fn open_flows(&self) -> usize {
        match &self.inner {
            Inner::One(a) => a.open_flows(),
            Inner::Sharded(e) => e.open_flows(),
        }
    }

    /// Counters so far (with several threads, the flow tables' as of the last tick).
    pub fn stats(&self) -> Stats {
        match &self.inner {
            Inner::One(a) => a.stats(),
            Inner::Sharded(e) => e.stats(),
        }
    }

    /// Ends the input: closes every flow and releases every exchange.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&Exchange)) {
        match &mut self.inner {
            Inner::One(a) => a.finish(sink),
            Inner::Sharded(e) => e.finish(sink),
        }
    }
}
