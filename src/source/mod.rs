/*!
Capture sources: pcap and pcapng files (or any byte stream, such as stdin) turned into
packets with their capture timestamp and link type.

Reading is pure Rust (pcap-parser), streams in bounded memory and never needs libpcap.
A file that breaks in the middle still yields every packet before the break; the break is
reported as a [`CaptureError`] naming the byte offset and what was expected there.
*/

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

/// Nanoseconds since the Unix epoch, as written by the capture.
pub type Timestamp = i64;

/// Initial read buffer; grown on demand for large records.
const READ_BUFFER: usize = 1 << 20;
/// The largest record we accept. pcap's own limit for snaplen is 256 KiB; pcapng allows
/// larger blocks (and some writers use them for big jumbo/TSO frames), so allow 16 MiB.
pub const MAX_RECORD: usize = 16 << 20;

/// One captured packet, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// LINKTYPE_* value of the interface the packet came from.
    pub linktype: u32,
    /// The captured bytes (possibly cut short by the snap length).
    pub data: &'a [u8],
    /// The length of the packet on the wire.
    pub orig_len: u32,
}

/// Secrets embedded in a pcapng file (Decryption Secrets Block), kept for TLS decryption.
#[derive(Debug, Clone)]
pub struct EmbeddedSecrets {
    /// Secrets type (0x544c534b = TLS key log).
    pub kind: u32,
    /// The raw secrets, e.g. NSS key log lines.
    pub data: Vec<u8>,
}

/// What can go wrong reading a capture. Every variant carries the byte offset of the
/// record where reading stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The stream is empty.
    #[error("empty input: expected a pcap or pcapng file header")]
    Empty,
    /// The first bytes are neither a pcap nor a pcapng header.
    #[error("not a capture file: expected a pcap magic (a1b2c3d4, a1b23c4d) or a pcapng section header (0a0d0d0a) at byte 0")]
    NotACapture,
    /// The stream ended in the middle of a record.
    #[error("file cut short at byte offset {offset}: expected the rest of a packet record ({needed} more bytes at least)")]
    Truncated { offset: u64, needed: usize },
    /// A record could not be parsed.
    #[error("malformed record at byte offset {offset}: {what}")]
    Malformed { offset: u64, what: String },
    /// A record is larger than we are willing to buffer.
    #[error("record at byte offset {offset} is larger than the {max}-byte limit")]
    RecordTooLarge { offset: u64, max: usize },
    /// Reading the underlying stream failed.
    #[error("read error at byte offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Counts of what a source saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceSummary {
    /// Packet records read.
    pub packets: u64,
    /// Bytes of the file consumed.
    pub bytes: u64,
    /// Packets on an interface we had no description for (pcapng EPB with a bad id).
    pub unknown_interface: u64,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Units per second.
    resolution: u64,
    offset_secs: i64,
}

/// A `Read` wrapper that remembers the first I/O error, because pcap-parser flattens
/// read errors into a bare `ReadError`.
struct ErrorKeepingReader<R> {
    inner: R,
    error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
}

impl<R: Read> Read for ErrorKeepingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = std::io::Error::new(e.kind(), e.to_string());
                    if let Ok(mut slot) = self.error.lock() {
                        slot.get_or_insert(copy);
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }
}

/// A reader whose first `read` hands over the capture's whole first block (a legacy pcap
/// header, or a pcapng section header): pcap_parser's `create_reader` reads once and
/// refuses what it cannot parse, while a pipe or a chained reader may return only part of
/// it (`sensor -r -` gave "not a capture file" on every pcapng stream).
struct WholeFirstBlock<R> {
    inner: R,
    first: bool,
}

/// A legacy pcap header; the smallest pcapng section header is 28 bytes.
const FIRST_BLOCK_MIN: usize = 24;

/// How many bytes the first block needs, from what has been read of it.
fn first_block_len(head: &[u8]) -> usize {
    match head {
        [0x0a, 0x0d, 0x0d, 0x0a, l0, l1, l2, l3, 0x4d, 0x3c, 0x2b, 0x1a, ..] => {
            u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize
        }
        [0x0a, 0x0d, 0x0d, 0x0a, l0, l1, l2, l3, 0x1a, 0x2b, 0x3c, 0x4d, ..] => {
            u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize
        }
        _ => FIRST_BLOCK_MIN,
    }
}

impl<R: Read> Read for WholeFirstBlock<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !std::mem::take(&mut self.first) {
            return self.inner.read(buf);
        }
        let mut got = 0;
        while got
            < first_block_len(&buf[..got])
                .max(FIRST_BLOCK_MIN)
                .min(buf.len())
        {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if got == 0 => return Err(e),
                // What was read goes first; the error comes again at the next read.
                Err(_) => break,
            }
        }
        Ok(got)
    }
}

/// Reads every packet of a pcap or pcapng stream and hands it to `on_packet`.
///
/// `on_progress` is called now and then with the number of bytes consumed so far.
/// Embedded decryption secrets are handed to `on_secrets`.
/// Returns what was read; on error, everything before the error has been delivered.
pub fn read_capture<R, F, S>(
    reader: R,
    mut on_packet: F,
    mut on_secrets: S,
    on_progress: &mut dyn FnMut(u64),
) -> Result<SourceSummary, (SourceSummary, CaptureError)>
where
    R: Read + Send,
    F: FnMut(&Packet<'_>),
    S: FnMut(EmbeddedSecrets),
{
    let error_slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let reader = ErrorKeepingReader {
        inner: WholeFirstBlock {
            inner: reader,
            first: true,
        },
        error: error_slot.clone(),
    };
    let mut summary = SourceSummary::default();
    let take_io_error = |offset: u64| -> CaptureError {
        let source = error_slot
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| std::io::Error::other("read failed"));
        CaptureError::Io { offset, source }
    };
    let mut pcap = match create_reader(READ_BUFFER, reader) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err((summary, CaptureError::Empty)),
        Err(PcapError::Incomplete(n)) => {
            return Err((
                summary,
                CaptureError::Truncated {
                    offset: 0,
                    needed: n,
                },
            ))
        }
        Err(PcapError::ReadError) => return Err((summary, take_io_error(0))),
        Err(_) => return Err((summary, CaptureError::NotACapture)),
    };

    // Legacy pcap state.
    let mut legacy_linktype = 0u32;
    let mut legacy_nanos = false;
    // pcapng: interfaces of the current section.
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut offset: u64 = 0;
    let mut buffer_size = READ_BUFFER;
    let mut last_progress = 0u64;

    loop {
        match pcap.next() {
            Ok((consumed, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_linktype = h.network.0 as u32;
                        legacy_nanos = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => {
                        summary.packets += 1;
                        let frac = if legacy_nanos {
                            b.ts_usec as i64
                        } else {
                            b.ts_usec as i64 * 1000
                        };
                        on_packet(&Packet {
                            ts: b.ts_sec as i64 * 1_000_000_000 + frac,
                            linktype: legacy_linktype,
                            data: b.data,
                            orig_len: b.origlen,
                        });
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push(Interface {
                            linktype: idb.linktype.0 as u32,
                            resolution: idb.ts_resolution().unwrap_or(1_000_000),
                            offset_secs: idb.ts_offset(),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        summary.packets += 1;
                        match interfaces.get(epb.if_id as usize) {
                            Some(iface) => {
                                let ts = ng_timestamp(epb.ts_high, epb.ts_low, iface);
                                on_packet(&Packet {
                                    ts,
                                    linktype: iface.linktype,
                                    data: epb.data,
                                    orig_len: epb.origlen,
                                });
                            }
                            None => summary.unknown_interface += 1,
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        summary.packets += 1;
                        // SPBs belong to interface 0 and carry no timestamp.
                        match interfaces.first() {
                            Some(iface) => on_packet(&Packet {
                                ts: 0,
                                linktype: iface.linktype,
                                data: spb.data,
                                orig_len: spb.origlen,
                            }),
                            None => summary.unknown_interface += 1,
                        }
                    }
                    PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                        on_secrets(EmbeddedSecrets {
                            kind: dsb.secrets_type.0,
                            data: dsb.data.to_vec(),
                        });
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                offset += consumed as u64;
                summary.bytes = offset;
                // Without shifting: the buffer is compacted once per refill, not per record.
                pcap.consume_noshift(consumed);
                if offset - last_progress >= (4 << 20) {
                    last_progress = offset;
                    on_progress(offset);
                }
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = pcap.refill() {
                    let err = match e {
                        PcapError::ReadError => take_io_error(offset),
                        _ => CaptureError::Malformed {
                            offset,
                            what: format!("{e:?}"),
                        },
                    };
                    return Err((summary, err));
                }
            }
            Err(PcapError::BufferTooSmall) => {
                if buffer_size >= MAX_RECORD || !pcap.grow(buffer_size * 2) {
                    return Err((
                        summary,
                        CaptureError::RecordTooLarge {
                            offset,
                            max: buffer_size,
                        },
                    ));
                }
                buffer_size *= 2;
                if let Err(e) = pcap.refill() {
                    return Err((
                        summary,
                        CaptureError::Malformed {
                            offset,
                            what: format!("{e:?}"),
                        },
                    ));
                }
            }
            Err(PcapError::UnexpectedEof) => {
                let needed = 1;
                return Err((summary, CaptureError::Truncated { offset, needed }));
            }
            Err(PcapError::ReadError) => return Err((summary, take_io_error(offset))),
            Err(e) => {
                let what = match e {
                    PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                        format!("invalid block ({kind:?})")
                    }
                    other => format!("{other:?}"),
                };
                return Err((summary, CaptureError::Malformed { offset, what }));
            }
        }
    }
    on_progress(offset);
    Ok(summary)
}

fn ng_timestamp(high: u32, low: u32, iface: &Interface) -> Timestamp {
    let raw = ((high as u64) << 32) | low as u64;
    let res = iface.resolution.max(1);
    let secs = (raw / res) as i64 + iface.offset_secs;
    let frac = raw % res;
    let nanos = if res >= 1_000_000_000 {
        (frac / (res / 1_000_000_000)) as i64
    } else {
        (frac as u128 * 1_000_000_000 / res as u128) as i64
    };
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_bytes(nanos: bool, big_endian: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut out = Vec::new();
        let put32 = |out: &mut Vec<u8>, v: u32| {
            if big_endian {
                out.extend_from_slice(&v.to_be_bytes())
            } else {
                out.extend_from_slice(&v.to_le_bytes())
            }
        };
        let put16 = |out: &mut Vec<u8>, v: u16| {
            if big_endian {
                out.extend_from_slice(&v.to_be_bytes())
            } else {
                out.extend_from_slice(&v.to_le_bytes())
            }
        };
        put32(&mut out, magic);
        put16(&mut out, 2);
        put16(&mut out, 4);
        put32(&mut out, 0);
        put32(&mut out, 0);
        put32(&mut out, 65535);
        put32(&mut out, 1);
        for (sec, frac, data) in records {
            put32(&mut out, *sec);
            put32(&mut out, *frac);
            put32(&mut out, data.len() as u32);
            put32(&mut out, data.len() as u32);
            out.extend_from_slice(data);
        }
        out
    }

    type Collected = (
        Vec<(Timestamp, Vec<u8>)>,
        Result<SourceSummary, CaptureError>,
    );

    fn collect(bytes: &[u8]) -> Collected {
        let mut got = Vec::new();
        let res = read_capture(
            bytes,
            |p| got.push((p.ts, p.data.to_vec())),
            |_| {},
            &mut |_| {},
        );
        (got, res.map_err(|(_, e)| e))
    }

    #[test]
    fn reads_micro_and_nano_in_both_byte_orders() {
        for big in [false, true] {
            let micro = pcap_bytes(false, big, &[(10, 5, b"abc"), (11, 6, b"de")]);
            let (got, res) = collect(&micro);
            assert!(res.is_ok());
            assert_eq!(got[0], (10_000_005_000, b"abc".to_vec()));
            assert_eq!(got[1].0, 11_000_006_000);
            let nano = pcap_bytes(true, big, &[(10, 5, b"abc")]);
            let (got, _) = collect(&nano);
            assert_eq!(got[0].0, 10_000_000_005);
        }
    }

    #[test]
    fn truncated_file_reports_offset_and_keeps_earlier_packets() {
        let mut bytes = pcap_bytes(false, false, &[(1, 0, b"first"), (2, 0, b"second")]);
        bytes.truncate(bytes.len() - 3);
        let (got, res) = collect(&bytes);
        assert_eq!(got.len(), 1);
        match res {
            Err(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, 24 + 16 + 5),
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_not_a_capture() {
        let (_, res) = collect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(res, Err(CaptureError::NotACapture)));
        let (_, res) = collect(b"");
        assert!(matches!(res, Err(CaptureError::Empty)));
    }

    #[test]
    fn pcapng_resolution_is_applied() {
        let iface = Interface {
            linktype: 1,
            resolution: 1_000_000,
            offset_secs: 0,
        };
        assert_eq!(ng_timestamp(0, 1_500_000, &iface), 1_500_000_000);
        let nanos = Interface {
            resolution: 1_000_000_000,
            ..iface
        };
        assert_eq!(ng_timestamp(0, 7, &nanos), 7);
    }

    /// A reader that hands over at most `n` bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// (packets, secrets blocks) of a capture.
    fn count<R: Read + Send>(reader: R, name: &str) -> (usize, usize) {
        let (mut packets, mut secrets) = (0, 0);
        let result = read_capture(reader, |_| packets += 1, |_| secrets += 1, &mut |_| {});
        assert!(result.is_ok(), "{name}");
        (packets, secrets)
    }

    #[test]
    fn a_stream_that_trickles_reads_like_the_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        for name in ["tls13-nginx-dsb.pcapng", "shop-api-a.pcap"] {
            let data = std::fs::read(root.join(name)).expect("capture");
            let whole = count(&data[..], name);
            assert!(whole.0 > 0, "{name}");
            for n in [1, 7, 24, 100] {
                assert_eq!(
                    count(Trickle(&data, n), name),
                    whole,
                    "{name}, {n} bytes a read"
                );
            }
        }
    }
}
