/*!
HTTP/2 frames (RFC 9113 section 4): a sans-IO reader per direction.

Bytes go in as TCP delivers them; complete control and header frames come out whole,
DATA payloads come out in pieces as they arrive (never buffered), so a 16 MiB frame costs
nothing. Padding and priority fields are stripped. After a gap, or when a connection is
joined midstream, the reader looks for a plausible frame header (known type, sane length,
stream id allowed for the type, flags allowed for the type) followed by another plausible
one before it trusts the stream again.
*/

/// The client connection preface (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types.
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Flag bits.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// The largest frame payload the protocol allows (2^24 - 1).
pub const MAX_FRAME: u32 = (1 << 24) - 1;
/// Control and header frames larger than this are skipped, not buffered.
pub const MAX_BUFFERED_FRAME: usize = 1 << 20;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Header {
    /// Reads the 9-byte frame header.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..9)?;
        Some(Header {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Whether this header could start a real frame (used to resynchronise).
    pub fn plausible(&self) -> bool {
        // Real peers rarely exceed the default 16 KiB; allow 64 KiB when guessing.
        let len_ok = self.len <= 65_535;
        let stream_rule = match self.kind {
            kind::SETTINGS | kind::PING | kind::GOAWAY => self.stream == 0,
            kind::WINDOW_UPDATE => true,
            kind::DATA
            | kind::HEADERS
            | kind::PRIORITY
            | kind::RST_STREAM
            | kind::PUSH_PROMISE
            | kind::CONTINUATION => self.stream != 0,
            _ => false,
        };
        let fixed_len = match self.kind {
            kind::PRIORITY => self.len == 5,
            kind::RST_STREAM | kind::WINDOW_UPDATE => self.len == 4,
            kind::PING => self.len == 8,
            kind::SETTINGS => self.len % 6 == 0,
            kind::GOAWAY => self.len >= 8,
            _ => true,
        };
        let flags_ok = match self.kind {
            kind::DATA => self.flags & !(flag::END_STREAM | flag::PADDED) == 0,
            kind::HEADERS => {
                self.flags & !(flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY)
                    == 0
            }
            kind::SETTINGS | kind::PING => self.flags & !flag::ACK == 0,
            kind::PUSH_PROMISE => self.flags & !(flag::END_HEADERS | flag::PADDED) == 0,
            kind::CONTINUATION => self.flags & !flag::END_HEADERS == 0,
            _ => self.flags == 0,
        };
        len_ok && stream_rule && fixed_len && flags_ok
    }
}

/// What the reader produces.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete non-DATA frame, padding and priority removed from HEADERS and
    /// PUSH_PROMISE payloads.
    Frame { header: Header, payload: &'a [u8] },
    /// A piece of a DATA frame's content (padding removed). `end_stream` is set on the
    /// frame's last piece when the frame ends the stream.
    Data {
        stream: u32,
        bytes: &'a [u8],
        end_stream: bool,
    },
    /// A frame that was not buffered because it is too large.
    Skipped { header: Header },
    /// The reader lost the frame boundaries and skipped this many bytes to find them.
    Resync { skipped: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the client preface; this many of its bytes matched.
    Preface(usize),
    /// Expecting a frame header.
    Header,
    /// Inside a DATA frame: content bytes left, then padding bytes left.
    Data {
        header: Header,
        content: u32,
        padding: u32,
        pad_len_pending: bool,
    },
    /// Buffering a control/header frame payload.
    Payload { header: Header },
    /// Skipping a frame too large to buffer.
    Skip { header: Header, left: u32 },
    /// Looking for a plausible frame header.
    Resync,
}

/// One direction's frame reader.
#[derive(Debug)]
pub struct Reader {
    state: State,
    buf: Vec<u8>,
    resync_skipped: usize,
}

fn strip_padding_and_priority(h: &Header, payload: &[u8]) -> Option<Vec<u8>> {
    let mut start = 0;
    let mut end = payload.len();
    if h.flags & flag::PADDED != 0 && matches!(h.kind, kind::HEADERS | kind::PUSH_PROMISE) {
        let pad = *payload.first()? as usize;
        start = 1;
        end = end.checked_sub(pad)?;
    }
    if h.kind == kind::HEADERS && h.flags & flag::PRIORITY != 0 {
        start += 5;
    }
    if start > end {
        return None;
    }
    Some(payload[start..end].to_vec())
}

impl Reader {
    /// A reader for the client side: the stream starts with the connection preface.
    pub fn client() -> Reader {
        Reader {
            state: State::Preface(0),
            buf: Vec::new(),
            resync_skipped: 0,
        }
    }

    /// A reader for the server side: the stream starts with a frame.
    pub fn server() -> Reader {
        Reader {
            state: State::Header,
            buf: Vec::new(),
            resync_skipped: 0,
        }
    }

    /// A reader that joined midstream: it must find a frame boundary first.
    pub fn midstream() -> Reader {
        Reader {
            state: State::Resync,
            buf: Vec::new(),
            resync_skipped: 0,
        }
    }

    /// Bytes are missing here: the frame boundaries are lost (unless inside DATA content).
    pub fn gap(&mut self, len: u64) -> bool {
        if let State::Data {
            header,
            content,
            padding,
            pad_len_pending: false,
        } = self.state
        {
            if len <= content as u64 {
                self.state = State::Data {
                    header,
                    content: content - len as u32,
                    padding,
                    pad_len_pending: false,
                };
                if content as u64 == len && padding == 0 {
                    self.state = State::Header;
                }
                return true;
            }
        }
        self.buf.clear();
        self.state = State::Resync;
        false
    }

    /// Feeds bytes; calls `out` for every event.
    pub fn feed(&mut self, mut input: &[u8], out: &mut dyn FnMut(Event<'_>)) {
        while !input.is_empty() {
            match self.state {
                State::Preface(matched) => {
                    let want = &PREFACE[matched..];
                    let n = want.len().min(input.len());
                    if input[..n] == want[..n] {
                        input = &input[n..];
                        self.state = if matched + n == PREFACE.len() {
                            State::Header
                        } else {
                            State::Preface(matched + n)
                        };
                    } else {
                        // Not the preface after all: find frames.
                        self.state = State::Resync;
                    }
                }
                State::Header => {
                    let need = 9 - self.buf.len();
                    let n = need.min(input.len());
                    self.buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.buf.len() < 9 {
                        return;
                    }
                    let Some(h) = Header::parse(&self.buf) else {
                        return;
                    };
                    self.buf.clear();
                    self.start_frame(h, out);
                }
                State::Data {
                    header,
                    content,
                    padding,
                    pad_len_pending,
                } => {
                    if pad_len_pending {
                        let pad = input[0] as u32;
                        input = &input[1..];
                        let body = content.saturating_sub(pad);
                        self.state = State::Data {
                            header,
                            content: body,
                            padding: content - body,
                            pad_len_pending: false,
                        };
                        if body == 0 && content - body == 0 {
                            self.end_data(header, out);
                        }
                        continue;
                    }
                    if content > 0 {
                        let n = (content as usize).min(input.len());
                        let left = content - n as u32;
                        let last = left == 0 && padding == 0;
                        out(Event::Data {
                            stream: header.stream,
                            bytes: &input[..n],
                            end_stream: last && header.flags & flag::END_STREAM != 0,
                        });
                        input = &input[n..];
                        self.state = State::Data {
                            header,
                            content: left,
                            padding,
                            pad_len_pending: false,
                        };
                        if last {
                            self.state = State::Header;
                        }
                    } else {
                        let n = (padding as usize).min(input.len());
                        input = &input[n..];
                        let left = padding - n as u32;
                        self.state = State::Data {
                            header,
                            content: 0,
                            padding: left,
                            pad_len_pending: false,
                        };
                        if left == 0 {
                            self.end_data(header, out);
                        }
                    }
                }
                State::Payload { header } => {
                    let need = header.len as usize - self.buf.len();
                    let n = need.min(input.len());
                    self.buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.buf.len() == header.len as usize {
                        let payload = std::mem::take(&mut self.buf);
                        self.state = State::Header;
                        match header.kind {
                            kind::HEADERS | kind::PUSH_PROMISE => {
                                match strip_padding_and_priority(&header, &payload) {
                                    Some(p) => out(Event::Frame {
                                        header,
                                        payload: &p,
                                    }),
                                    None => out(Event::Skipped { header }),
                                }
                            }
                            _ => out(Event::Frame {
                                header,
                                payload: &payload,
                            }),
                        }
                    }
                }
                State::Skip { header, left } => {
                    let n = (left as usize).min(input.len());
                    input = &input[n..];
                    let left = left - n as u32;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Skip { header, left }
                    };
                }
                State::Resync => {
                    self.buf
                        .extend_from_slice(&input[..input.len().min(64 * 1024)]);
                    let consumed = input.len().min(64 * 1024);
                    input = &input[consumed..];
                    match find_frame(&self.buf) {
                        Some(at) => {
                            self.resync_skipped += at;
                            out(Event::Resync {
                                skipped: self.resync_skipped,
                            });
                            self.resync_skipped = 0;
                            let rest = self.buf.split_off(at);
                            self.buf.clear();
                            self.state = State::Header;
                            self.feed(&rest, out);
                        }
                        None => {
                            // Keep the last 8 bytes: a header may straddle the pieces.
                            let keep = self.buf.len().min(8);
                            let drop = self.buf.len() - keep;
                            self.resync_skipped += drop;
                            self.buf.drain(..drop);
                        }
                    }
                }
            }
        }
    }

    fn start_frame(&mut self, h: Header, out: &mut dyn FnMut(Event<'_>)) {
        if h.kind == kind::DATA {
            let padded = h.flags & flag::PADDED != 0;
            let content = if padded {
                h.len.saturating_sub(1)
            } else {
                h.len
            };
            self.state = State::Data {
                header: h,
                content,
                padding: 0,
                pad_len_pending: padded && h.len > 0,
            };
            if h.len == 0 {
                self.end_data(h, out);
            }
        } else if h.len as usize > MAX_BUFFERED_FRAME {
            out(Event::Skipped { header: h });
            self.state = State::Skip {
                header: h,
                left: h.len,
            };
        } else if h.len == 0 {
            self.state = State::Header;
            out(Event::Frame {
                header: h,
                payload: &[],
            });
        } else {
            self.state = State::Payload { header: h };
        }
    }

    fn end_data(&mut self, h: Header, out: &mut dyn FnMut(Event<'_>)) {
        self.state = State::Header;
        out(Event::Data {
            stream: h.stream,
            bytes: &[],
            end_stream: h.flags & flag::END_STREAM != 0,
        });
    }
}

/// Whether `buf` holds HTTP/2 frames somewhere: two plausible frame headers in a row,
/// the second exactly where the first frame ends. Used to recognise HTTP/2 on a
/// connection joined midstream.
pub fn looks_like_frames(buf: &[u8]) -> bool {
    let mut at = 0;
    while at + 9 <= buf.len() {
        if let Some(h) = Header::parse(&buf[at..]).filter(Header::plausible) {
            let next = at + 9 + h.len as usize;
            if buf
                .get(next..next + 9)
                .and_then(Header::parse)
                .is_some_and(|n| n.plausible())
            {
                return true;
            }
        }
        at += 1;
    }
    false
}

/// Offset of the first position where a plausible frame header is followed by another
/// plausible one (or by the end of the buffer, when the first frame reaches past it).
fn find_frame(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 9 <= buf.len() {
        if let Some(h) = Header::parse(&buf[at..]).filter(Header::plausible) {
            let next = at + 9 + h.len as usize;
            match buf.get(next..next + 9).and_then(Header::parse) {
                Some(n) if n.plausible() => return Some(at),
                None if next + 9 > buf.len() && h.kind != kind::DATA && h.len > 0 => {
                    return Some(at)
                }
                _ => {}
            }
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn events(r: &mut Reader, input: &[u8], chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            r.feed(piece, &mut |e| {
                out.push(match e {
                    Event::Frame { header, payload } => {
                        format!("F{}:{}:{}", header.kind, header.stream, payload.len())
                    }
                    Event::Data {
                        stream,
                        bytes,
                        end_stream,
                    } => format!(
                        "D{stream}:{}{}",
                        bytes.len(),
                        if end_stream { "!" } else { "" }
                    ),
                    Event::Skipped { header } => format!("S{}", header.kind),
                    Event::Resync { skipped } => format!("R{skipped}"),
                })
            });
        }
        // Merge consecutive DATA pieces of one frame for comparison.
        let mut merged: Vec<String> = Vec::new();
        for e in out {
            if let (Some(last), true) = (merged.last_mut(), e.starts_with('D')) {
                if last.starts_with('D')
                    && !last.ends_with('!')
                    && !last.ends_with(":0")
                    && last.split(':').next() == e.split(':').next()
                {
                    let a: usize = last
                        .split(':')
                        .nth(1)
                        .unwrap_or("0")
                        .trim_end_matches('!')
                        .parse()
                        .unwrap_or(0);
                    let b: usize = e
                        .split(':')
                        .nth(1)
                        .unwrap_or("0")
                        .trim_end_matches('!')
                        .parse()
                        .unwrap_or(0);
                    let bang = if e.ends_with('!') { "!" } else { "" };
                    *last = format!("{}:{}{}", e.split(':').next().unwrap_or(""), a + b, bang);
                    continue;
                }
            }
            merged.push(e);
        }
        merged
    }

    #[test]
    fn preface_frames_padding_and_data_in_any_chunking() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        wire.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::PADDED | flag::PRIORITY,
            1,
            &[2, 0, 0, 0, 0, 16, 0x82, 0x84, 0, 0],
        ));
        wire.extend(frame(
            kind::DATA,
            flag::PADDED | flag::END_STREAM,
            1,
            &[3, b'a', b'b', 0, 0, 0],
        ));
        for chunk in 1..12 {
            let mut r = Reader::client();
            assert_eq!(
                events(&mut r, &wire, chunk),
                vec!["F4:0:6", "F1:1:2", "D1:2!"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn midstream_resynchronises_on_plausible_headers() {
        let mut wire = b"\x00\x13garbage-from-the-middle-of-a-frame".to_vec();
        wire.extend(frame(kind::HEADERS, flag::END_HEADERS, 3, &[0x82, 0x84]));
        wire.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
        let mut r = Reader::midstream();
        let ev = events(&mut r, &wire, usize::MAX);
        assert_eq!(ev[1..], ["F1:3:2".to_string(), "F8:0:4".to_string()]);
        assert!(ev[0].starts_with('R'));
    }

    #[test]
    fn huge_frames_are_skipped_not_buffered() {
        let mut wire = frame(
            kind::HEADERS,
            flag::END_HEADERS,
            1,
            &vec![0u8; MAX_BUFFERED_FRAME + 1],
        );
        wire.extend(frame(kind::PING, 0, 0, &[0; 8]));
        let mut r = Reader::server();
        assert_eq!(events(&mut r, &wire, 4096), vec!["S1", "F6:0:8"]);
        assert!(r.buf.capacity() < 64 * 1024);
    }

    #[test]
    fn data_gap_keeps_framing() {
        let mut r = Reader::server();
        let f = frame(kind::DATA, 0, 1, &[7; 100]);
        let mut got = 0;
        r.feed(&f[..50], &mut |e| {
            if let Event::Data { bytes, .. } = e {
                got += bytes.len()
            }
        });
        assert!(r.gap(30));
        r.feed(&f[80..], &mut |e| {
            if let Event::Data { bytes, .. } = e {
                got += bytes.len()
            }
        });
        assert_eq!(got, 41 + 29);
        let ev = events(&mut r, &frame(kind::PING, 0, 0, &[0; 8]), 3);
        assert_eq!(ev, vec!["F6:0:8"]);
    }
}
