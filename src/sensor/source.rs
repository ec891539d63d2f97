/*!
Where a sensor's packets come from. Each [`PacketSource`] runs in its own thread and pushes
owned packets to the capture loop; a live interface (libpcap, cargo feature `live`) and a
capture stream (a pcap or pcapng file, or `-` for standard input) are both sources, so the
whole sensor (flushes, signals, budget, status) runs the same way with or without libpcap.
*/

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::decode::link::{self, LinkError};

/// A captured packet, copied out of the capture's buffer to cross threads.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts: i64,
    /// LINKTYPE_* of the interface.
    pub linktype: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

impl OwnedPacket {
    /// The packet as the pipeline takes it.
    pub fn as_packet(&self) -> crate::source::Packet<'_> {
        crate::source::Packet {
            ts: self.ts,
            linktype: self.linktype,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// What a source hands the capture loop.
#[derive(Debug, Clone)]
pub enum Captured {
    /// A packet.
    Packet(OwnedPacket),
    /// Secrets embedded in the stream (a pcapng Decryption Secrets Block), in their place
    /// among the packets: the TLS keys of the connections after them.
    Secrets { kind: u32, data: Vec<u8> },
}

/// What a source counts beside the packets it delivers; read by the status line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets the source delivered.
    pub delivered: AtomicU64,
    /// Packets the kernel dropped because its buffer was full (libpcap `ps_drop`).
    pub kernel_dropped: AtomicU64,
    /// Packets the interface or driver dropped (libpcap `ps_ifdrop`).
    pub interface_dropped: AtomicU64,
}

impl Counters {
    /// (delivered, kernel drops, interface drops).
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.kernel_dropped.load(Ordering::Relaxed),
            self.interface_dropped.load(Ordering::Relaxed),
        )
    }
}

/// A producer of packets, run on its own thread.
pub trait PacketSource: Send {
    /// How the source is named in messages (`eth1`, `<stdin>`, a file).
    fn name(&self) -> String;

    /// The counters the source keeps while it runs.
    fn counters(&self) -> Arc<Counters>;

    /// Reads until the input ends, `stop` is set (a live source then drains what the
    /// kernel already holds), or `out` returns false (the loop is gone). An error ends
    /// the source and is reported by name.
    fn run(
        self: Box<Self>,
        out: &mut dyn FnMut(Captured) -> bool,
        stop: &AtomicBool,
    ) -> Result<(), String>;
}

/// Whether the decoder understands a LINKTYPE.
pub fn linktype_supported(linktype: u32) -> bool {
    !matches!(
        link::strip(linktype, &[]),
        Err(LinkError::UnsupportedLinkType(_))
    )
}

/// A pcap or pcapng byte stream: a file, a pipe, or standard input.
pub struct StreamSource {
    name: String,
    reader: Box<dyn Read + Send>,
    counters: Arc<Counters>,
}

impl StreamSource {
    /// Opens `path` (`-` is standard input). A legacy pcap header is read at once, so an
    /// unreadable stream or a link type the decoder does not know is refused before the
    /// sensor starts; pcapng interfaces are checked as they come.
    pub fn open(path: &std::path::Path) -> Result<StreamSource, String> {
        let (name, mut reader): (String, Box<dyn Read + Send>) = if path.as_os_str() == "-" {
            ("<stdin>".to_string(), Box::new(std::io::stdin()))
        } else {
            let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            (path.display().to_string(), Box::new(f))
        };
        let mut head = [0u8; 24];
        let mut got = 0;
        while got < head.len() {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
        if got == 0 {
            return Err(format!(
                "{name}: empty input: expected a pcap or pcapng file header"
            ));
        }
        if got == head.len() {
            let lt = match head[..4] {
                [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => {
                    Some(u32::from_le_bytes([head[20], head[21], head[22], head[23]]))
                }
                [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => {
                    Some(u32::from_be_bytes([head[20], head[21], head[22], head[23]]))
                }
                _ => None,
            };
            // The low 16 bits are the link type; the rest are FCS flags.
            if let Some(lt) = lt.map(|lt| lt & 0xffff) {
                if !linktype_supported(lt) {
                    return Err(format!(
                        "{name}: link type {lt} cannot be decoded (supported: Ethernet, Linux cooked v1/v2, BSD loopback, raw IP, 802.11, NFLOG)"
                    ));
                }
            }
        }
        let head = head[..got].to_vec();
        Ok(StreamSource {
            name,
            reader: Box::new(std::io::Cursor::new(head).chain(reader)),
            counters: Arc::default(),
        })
    }

    /// A source over any reader (tests).
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> StreamSource {
        StreamSource {
            name: name.to_string(),
            reader,
            counters: Arc::default(),
        }
    }
}

impl PacketSource for StreamSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    fn run(
        self: Box<Self>,
        out: &mut dyn FnMut(Captured) -> bool,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let StreamSource {
            name,
            reader,
            counters,
        } = *self;
        let open = std::cell::Cell::new(true);
        let out = std::cell::RefCell::new(out);
        // After a stop, the rest of the stream is read and dropped: a blocking reader
        // cannot be interrupted, and the loop no longer waits for it.
        let send = |item: Captured| {
            if open.get() && !stop.load(Ordering::Relaxed) {
                open.set((out.borrow_mut())(item));
            }
        };
        let result = crate::source::read_capture(
            reader,
            |p| {
                if open.get() && !stop.load(Ordering::Relaxed) {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                send(Captured::Packet(OwnedPacket {
                    ts: p.ts,
                    linktype: p.linktype,
                    orig_len: p.orig_len,
                    data: p.data.to_vec(),
                }));
            },
            |s| {
                send(Captured::Secrets {
                    kind: s.kind,
                    data: s.data,
                })
            },
            &mut |_| {},
        );
        result.map(|_| ()).map_err(|(_, e)| format!("{name}: {e}"))
    }
}

/// What to read: interfaces and streams, as named on the command line.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Live interfaces (`-i`).
    pub interfaces: Vec<String>,
    /// Capture streams (`-r`).
    pub streams: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linktypes() {
        assert!(linktype_supported(1));
        assert!(linktype_supported(276));
        assert!(!linktype_supported(147));
    }

    #[test]
    fn a_pcap_of_an_unknown_link_type_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("specter-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("user0.pcap");
        let mut head = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        head.extend([0; 8]);
        head.extend(65535u32.to_le_bytes());
        head.extend(147u32.to_le_bytes());
        std::fs::write(&path, &head).unwrap();
        let err = StreamSource::open(&path).err().unwrap();
        assert!(
            err.contains("user0.pcap") && err.contains("link type 147"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_ends_the_stream_with_its_name() {
        let src = Box::new(StreamSource::from_reader(
            "junk",
            Box::new(std::io::Cursor::new(b"not a capture at all, no".to_vec())),
        ));
        let stop = AtomicBool::new(false);
        let err = src.run(&mut |_| true, &stop).unwrap_err();
        assert!(err.starts_with("junk: "), "{err}");
    }
}
