/*!
Passive HTTP/2 (RFC 9113): both directions of a connection in, one [`Exchange`] per
stream out.

Frames come from a [`frame::Reader`] per direction; header blocks (HEADERS or
PUSH_PROMISE plus CONTINUATION) are decoded with one [`hpack::Decoder`] per direction, as
each side has its own dynamic table. A stream becomes an exchange when the server ends
it (END_STREAM), when either side resets it, or when the connection ends. Pushed streams
(PUSH_PROMISE) are exchanges of their own, noted `server_push`.

Why not the `h2` crate: its HPACK decoder is private, and a desynchronised table (any
connection joined midstream) ends every later header block on that direction as an opaque
protocol error. A passive reader must skip what it cannot resolve and keep reading, so the
frame layer, the HPACK state and its Huffman decoder are ours (loona-hpack's encoder
builds the test inputs).

Bounds: at most [`MAX_STREAMS`] open streams per connection (the oldest is emitted as it
is when more open), header blocks up to [`MAX_HEADER_BLOCK`] bytes across CONTINUATION
frames, decoded lists up to [`hpack::MAX_LIST_SIZE`], bodies kept up to the body limit.
*/

pub mod frame;
pub mod hpack;
pub mod huffman;

use std::collections::BTreeMap;

use crate::exchange::{
    push_note, socket, Body, Exchange, Head, Message, Note, Order, Proto, Span, StartLine,
};
use crate::http1::{body, Ctx};
use crate::source::Timestamp;
use crate::stats::Stats;
use crate::tcp::{FlowEvent, FlowInfo, Side};
use frame::{flag, kind, Event, Reader};

/// Open streams per connection (Suricata's HTTP2_MAX_STREAMS).
pub const MAX_STREAMS: usize = 4096;
/// A header block across HEADERS and CONTINUATION frames.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// A message being collected on one side of a stream.
#[derive(Debug, Default)]
struct Part {
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    wire_len: u64,
    body: Vec<u8>,
    body_cut: bool,
    first_ts: Timestamp,
    last_ts: Timestamp,
    seen: bool,
    grpc: GrpcCounter,
}

/// Counts gRPC messages (a 5-byte prefix: compressed flag and big-endian length, then
/// the message) in a DATA stream, whatever the frame boundaries.
#[derive(Debug, Default, Clone, Copy)]
struct GrpcCounter {
    header: [u8; 5],
    have: u8,
    left: u64,
    messages: u32,
}

impl GrpcCounter {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = (self.left as usize).min(bytes.len());
                self.left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.have as usize).min(bytes.len());
            self.header[self.have as usize..self.have as usize + n].copy_from_slice(&bytes[..n]);
            self.have += n as u8;
            bytes = &bytes[n..];
            if self.have == 5 {
                self.have = 0;
                self.messages += 1;
                let h = self.header;
                self.left = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as u64;
            }
        }
    }
}

#[derive(Debug)]
struct Stream {
    order: Order,
    request: Part,
    response: Part,
    notes: Vec<Note>,
}

/// A header block being assembled on one side.
#[derive(Debug)]
struct Block {
    stream: u32,
    promised: Option<u32>,
    end_stream: bool,
    bytes: Vec<u8>,
    too_large: bool,
}

/// The HTTP/2 state of one TCP connection.
#[derive(Debug)]
pub struct Connection {
    client: Side,
    readers: [Reader; 2],
    decoders: [hpack::Decoder; 2],
    blocks: [Option<Block>; 2],
    streams: BTreeMap<u32, Stream>,
    /// The connection's start (the preface) was not seen: new streams are noted midstream.
    midstream: bool,
}

fn idx(side: Side) -> usize {
    side as usize
}

fn field<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| &v[..])
}

impl Connection {
    /// A connection whose client side is `client`. `midstream` when the start (preface)
    /// was not seen; `upgraded` is the HTTP/1 request of an h2c upgrade (stream 1).
    pub fn new(
        client: Side,
        midstream: bool,
        upgraded: Option<Message>,
        order: Option<Order>,
    ) -> Self {
        let mut readers = [Reader::server(), Reader::server()];
        readers[idx(client)] = if midstream {
            Reader::midstream()
        } else {
            Reader::client()
        };
        if midstream {
            readers[idx(client.other())] = Reader::midstream();
        }
        let mut conn = Connection {
            client,
            readers,
            decoders: [hpack::Decoder::new(), hpack::Decoder::new()],
            blocks: [None, None],
            streams: BTreeMap::new(),
            midstream,
        };
        if let (Some(req), Some(order)) = (upgraded, order) {
            // RFC 9113 section 3.2: the upgraded request is stream 1, half-closed.
            let mut fields = vec![
                (
                    b":method".to_vec(),
                    req.head.method().unwrap_or_default().to_vec(),
                ),
                (
                    b":path".to_vec(),
                    req.head.target().unwrap_or_default().to_vec(),
                ),
            ];
            if let Some(host) = req.head.header("host") {
                fields.push((b":authority".to_vec(), host.to_vec()));
            }
            for (n, v) in req.head.headers() {
                if !n.eq_ignore_ascii_case(b"host") {
                    fields.push((n.to_ascii_lowercase(), v.to_vec()));
                }
            }
            let request = Part {
                fields,
                wire_len: req.body.wire_len,
                first_ts: req.first_ts,
                last_ts: req.last_ts,
                seen: true,
                ..Part::default()
            };
            conn.streams.insert(
                1,
                Stream {
                    order,
                    request,
                    response: Part::default(),
                    notes: vec![Note::UpgradeH2c],
                },
            );
        }
        conn
    }

    /// Handles one flow event.
    pub fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        match event {
            FlowEvent::Data { side, ts, bytes } => self.data(info, side, ts, bytes, ctx),
            FlowEvent::Gap { side, len, .. } => {
                if !self.readers[idx(side)].gap(len) {
                    self.blocks[idx(side)] = None;
                }
                for s in self.streams.values_mut() {
                    push_note(&mut s.notes, Note::Gap);
                }
            }
            FlowEvent::Fin { .. } => {}
            FlowEvent::Close { .. } => self.close(info, ctx),
        }
    }

    /// Feeds bytes of one side.
    pub fn data(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        bytes: &[u8],
        ctx: &mut Ctx,
    ) {
        // Events borrow the reader's buffer, so collect them into owned work first.
        let mut work: Vec<Work> = Vec::new();
        self.readers[idx(side)].feed(bytes, &mut |e| {
            work.push(match e {
                Event::Frame { header, payload } => Work::Frame(header, payload.to_vec()),
                Event::Data {
                    stream,
                    bytes,
                    end_stream,
                } => {
                    // Bytes are needed for bodies and to count gRPC messages.
                    Work::Data(stream, bytes.len(), keep_prefix(bytes), end_stream)
                }
                Event::Skipped { header } => Work::Skipped(header),
                Event::Resync { skipped } => Work::Resync(skipped),
            })
        });
        for w in work {
            match w {
                Work::Frame(h, payload) => self.frame(info, side, ts, h, &payload, ctx),
                Work::Data(stream, len, kept, end) => {
                    self.body(info, side, ts, stream, len, &kept, end, ctx)
                }
                Work::Skipped(h) => {
                    ctx.error("HTTP/2 frame too large");
                    if matches!(
                        h.kind,
                        kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION
                    ) {
                        self.blocks[idx(side)] = None;
                    }
                }
                Work::Resync(skipped) => {
                    ctx.stats.http_resync_bytes += skipped as u64;
                }
            }
        }
    }

    fn frame(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        h: frame::Header,
        payload: &[u8],
        ctx: &mut Ctx,
    ) {
        match h.kind {
            kind::HEADERS => {
                self.blocks[idx(side)] = Some(Block {
                    stream: h.stream,
                    promised: None,
                    end_stream: h.flags & flag::END_STREAM != 0,
                    bytes: payload.to_vec(),
                    too_large: payload.len() > MAX_HEADER_BLOCK,
                });
                if h.flags & flag::END_HEADERS != 0 {
                    self.finish_block(info, side, ts, ctx);
                }
            }
            kind::PUSH_PROMISE => {
                let Some(id) = payload.get(..4) else { return };
                let promised = u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff;
                self.blocks[idx(side)] = Some(Block {
                    stream: h.stream,
                    promised: Some(promised),
                    end_stream: false,
                    bytes: payload[4..].to_vec(),
                    too_large: false,
                });
                if h.flags & flag::END_HEADERS != 0 {
                    self.finish_block(info, side, ts, ctx);
                }
            }
            kind::CONTINUATION => {
                let Some(block) = self.blocks[idx(side)].as_mut() else {
                    ctx.error("HTTP/2 CONTINUATION without HEADERS");
                    return;
                };
                if block.stream != h.stream {
                    ctx.error("HTTP/2 CONTINUATION on another stream");
                    self.blocks[idx(side)] = None;
                    return;
                }
                if block.bytes.len() + payload.len() > MAX_HEADER_BLOCK {
                    // Endless CONTINUATION: stop growing, decode nothing of this block.
                    block.too_large = true;
                } else {
                    block.bytes.extend_from_slice(payload);
                }
                if h.flags & flag::END_HEADERS != 0 {
                    self.finish_block(info, side, ts, ctx);
                }
            }
            kind::RST_STREAM => {
                if let Some(mut s) = self.streams.remove(&h.stream) {
                    push_note(&mut s.notes, Note::Reset);
                    self.emit(info, h.stream, s, ctx);
                }
            }
            _ => {}
        }
    }

    fn finish_block(&mut self, info: &FlowInfo, side: Side, ts: Timestamp, ctx: &mut Ctx) {
        let Some(block) = self.blocks[idx(side)].take() else {
            return;
        };
        if block.too_large {
            ctx.error("HTTP/2 header block too large");
            return;
        }
        let mut fields = Vec::new();
        let mut unknown = false;
        let result =
            self.decoders[idx(side)].decode(&block.bytes, &mut |f| match (f.name, f.value) {
                (Some(n), Some(v)) => fields.push((n, v)),
                _ => unknown = true,
            });
        match result {
            Ok(report) => {
                if report.oversized_updates > 0 {
                    ctx.error("HPACK table size update past the cap");
                }
            }
            Err(hpack::Error::ListTooLarge) => {
                ctx.error("HPACK header list too large");
                unknown = true;
            }
            Err(_) => {
                ctx.error("HPACK decoding error");
                unknown = true;
            }
        }
        if unknown {
            ctx.stats.hpack_desync += 1;
        }
        let client_side = side == self.client;
        let stream_id = block.promised.unwrap_or(block.stream);
        if !self.streams.contains_key(&stream_id) {
            if self.streams.len() >= MAX_STREAMS {
                ctx.error("too many HTTP/2 streams");
                // Stream ids grow (RFC 9113 section 5.1.1), so the lowest is the oldest.
                if let Some((oldest, s)) = self.streams.pop_first() {
                    self.emit(info, oldest, s, ctx);
                }
            }
            ctx.stats.http2_streams += 1;
            let order = ctx.begin(info);
            let mut notes = Vec::new();
            if self.midstream {
                notes.push(Note::Midstream);
            }
            self.streams.insert(
                stream_id,
                Stream {
                    order,
                    request: Part::default(),
                    response: Part::default(),
                    notes,
                },
            );
        }
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if unknown {
            push_note(&mut stream.notes, Note::HpackDesync);
        }
        let is_request = client_side || block.promised.is_some();
        if block.promised.is_some() {
            push_note(&mut stream.notes, Note::ServerPush);
        }
        let part = if is_request {
            &mut stream.request
        } else {
            &mut stream.response
        };
        let status = field(&fields, ":status");
        if !is_request && status.is_some_and(|s| s.first() == Some(&b'1')) && status != Some(b"101")
        {
            push_note(&mut stream.notes, Note::InterimResponse);
        } else if part.seen {
            part.trailers.extend(fields);
            part.last_ts = ts;
        } else {
            part.seen = true;
            part.fields = fields;
            part.first_ts = ts;
            part.last_ts = ts;
            if is_request {
                ctx.stats.http_requests += 1;
            } else {
                ctx.stats.http_responses += 1;
            }
        }
        if block.end_stream && !is_request {
            if let Some(s) = self.streams.remove(&stream_id) {
                self.emit(info, stream_id, s, ctx);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        stream_id: u32,
        len: usize,
        kept: &[u8],
        end: bool,
        ctx: &mut Ctx,
    ) {
        let max_body = ctx.config.max_body;
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let part = if side == self.client {
            &mut stream.request
        } else {
            &mut stream.response
        };
        part.wire_len += len as u64;
        part.last_ts = ts;
        if kept.len() == len {
            part.grpc.feed(kept);
        }
        if part.first_ts == 0 {
            part.first_ts = ts;
        }
        let room = max_body.saturating_sub(part.body.len());
        if max_body > 0 {
            if room < kept.len() || kept.len() < len {
                // Past the limit, or a DATA piece longer than what was copied.
                part.body_cut = true;
            }
            part.body.extend_from_slice(&kept[..room.min(kept.len())]);
        }
        if end && side != self.client {
            if let Some(s) = self.streams.remove(&stream_id) {
                self.emit(info, stream_id, s, ctx);
            }
        }
    }

    fn close(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        // A header block still open (an endless CONTINUATION flood) was never decoded;
        // say so rather than dropping it unseen.
        for block in self.blocks.iter_mut().filter_map(Option::take) {
            ctx.error(if block.too_large {
                "HTTP/2 header block too large"
            } else {
                "HTTP/2 header block never ended"
            });
        }
        let mut rest: Vec<(u32, Stream)> = std::mem::take(&mut self.streams).into_iter().collect();
        rest.sort_by_key(|(_, s)| s.order);
        for (id, mut s) in rest {
            push_note(&mut s.notes, Note::Incomplete);
            self.emit(info, id, s, ctx);
        }
    }

    fn emit(&self, info: &FlowInfo, id: u32, stream: Stream, ctx: &mut Ctx) {
        let mut ex = Exchange {
            order: stream.order,
            proto: Proto::H2,
            client: socket(info.addr(self.client)),
            server: socket(info.addr(self.client.other())),
            stream: Some(id),
            request: None,
            response: None,
            notes: Vec::new(),
            tls: None,
            grpc_messages: None,
            websocket: None,
        };
        let max_body = ctx.config.max_body;
        let counts = (stream.request.grpc.messages, stream.response.grpc.messages);
        let defer = ctx.config.defer_decoding;
        ex.request = message(stream.request, true, max_body, defer, &mut ctx.stats);
        ex.response = message(stream.response, false, max_body, defer, &mut ctx.stats);
        ex.grpc_messages = Some(counts);
        // A request whose :method or :path were lost with the HPACK table stays None:
        // a path is never invented.
        for n in stream.notes {
            ex.note(n);
        }
        let truncated = [&ex.request, &ex.response]
            .iter()
            .any(|m| m.as_ref().is_some_and(|m| m.body.truncated));
        if truncated && max_body > 0 {
            ex.note(Note::TruncatedBody);
        }
        ctx.emit(ex);
    }
}

enum Work {
    Frame(frame::Header, Vec<u8>),
    Data(u32, usize, Vec<u8>, bool),
    Skipped(frame::Header),
    Resync(usize),
}

/// DATA bytes are copied only as far as any body limit could want them.
fn keep_prefix(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(1 << 20)].to_vec()
}

/// Builds a message from a stream part: pseudo-header fields give the start line, all
/// fields (pseudo ones included, so `:authority` is kept) become header fields.
fn message(
    part: Part,
    request: bool,
    max_body: usize,
    defer_decoding: bool,
    stats: &mut Stats,
) -> Option<Message> {
    if !part.seen {
        return None;
    }
    let mut raw = Vec::new();
    let push = |raw: &mut Vec<u8>, b: &[u8]| -> Span {
        let at = raw.len() as u32;
        raw.extend_from_slice(b);
        (at, raw.len() as u32)
    };
    let start = if request {
        let method = field(&part.fields, ":method")?.to_vec();
        let target = match field(&part.fields, ":path") {
            Some(p) => p.to_vec(),
            // CONNECT names its target in :authority (RFC 9113 section 8.5).
            None if method == b"CONNECT" => field(&part.fields, ":authority")?.to_vec(),
            None => return None,
        };
        let m = push(&mut raw, &method);
        raw.push(b' ');
        let t = push(&mut raw, &target);
        raw.push(b' ');
        let v = push(&mut raw, b"HTTP/2");
        raw.extend_from_slice(b"\r\n");
        StartLine::Request {
            method: m,
            target: t,
            version: v,
        }
    } else {
        let status = field(&part.fields, ":status")?;
        let code = std::str::from_utf8(status).ok()?.parse::<u16>().ok()?;
        let v = push(&mut raw, b"HTTP/2");
        raw.push(b' ');
        push(&mut raw, status);
        raw.extend_from_slice(b"\r\n");
        let end = raw.len() as u32;
        StartLine::Response {
            version: v,
            status: code,
            reason: (end, end),
        }
    };
    let mut headers = Vec::with_capacity(part.fields.len());
    for (n, v) in part.fields.iter().chain(part.trailers.iter()) {
        let ns = push(&mut raw, n);
        raw.extend_from_slice(b": ");
        let vs = push(&mut raw, v);
        raw.extend_from_slice(b"\r\n");
        headers.push((ns, vs));
    }
    let head = Head::new(raw, start, headers);
    let mut data = part.body;
    let mut truncated = part.body_cut;
    let mut encoded = false;
    if max_body > 0 && !data.is_empty() {
        match body::parse_codings(head.header_all("content-encoding")) {
            Some(codings) if !codings.is_empty() && defer_decoding => encoded = true,
            Some(codings) if !codings.is_empty() => {
                let (out, issue) = body::decode(&data, &codings, max_body, part.body_cut);
                data = out;
                match issue {
                    Some(body::DecodeIssue::Truncated) => truncated = true,
                    Some(body::DecodeIssue::Invalid) => stats.bodies_undecodable += 1,
                    None => {}
                }
            }
            Some(_) => {}
            None => stats.bodies_undecodable += 1,
        }
    }
    if truncated && max_body > 0 {
        stats.bodies_truncated += 1;
    }
    Some(Message {
        head,
        body: Body {
            wire_len: part.wire_len,
            data,
            truncated,
            encoded,
        },
        first_ts: part.first_ts,
        last_ts: part.last_ts,
    })
}

#[cfg(test)]
mod tests;
