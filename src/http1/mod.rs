/*!
Passive HTTP/1.x: both directions of one TCP connection in, [`Exchange`]s out.

Each direction is a small state machine (waiting for a message, reading a head, reading a
body, resynchronising, or opaque). Requests queue up in arrival order and responses are
paired with them first-in first-out, which is what HTTP/1.1 pipelining guarantees. The
parser never trusts the input: heads and chunk lines are bounded, bodies are kept only up
to the limit, garbage is skipped to the next plausible message start, and a gap in the
capture ends the message it hits with a note instead of derailing the connection.

Roles come from the TCP handshake when it was seen; otherwise from the first message each
side sends (a request line or a status line).
*/

pub mod body;
pub mod head;

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::exchange::{push_note, socket, Body, Exchange, Head, Message, Note, Order, Proto};
use crate::source::Timestamp;
use crate::stats::Stats;
use crate::tcp::{FlowEvent, FlowInfo, Side, StreamApp};
use body::{Coding, Framing, Step};
use head::StartKind;

/// Limits of the HTTP/1 parser.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Largest head (start line and fields) accepted; larger ones are skipped as garbage.
    pub max_head: usize,
    /// Body bytes kept (and decoded) per message; 0 keeps none (lengths are still counted).
    pub max_body: usize,
    /// Bytes scanned for a first message start on a connection caught midstream before
    /// it is declared not HTTP.
    pub probe_limit: usize,
    /// Requests waiting for their responses on one connection.
    pub max_pending: usize,
    /// Keep content-coded bodies as they are (`Body::encoded`) instead of decoding every
    /// one: inference decodes only the bodies it samples.
    pub defer_decoding: bool,
    /// Bytes all connections together may hold in unfinished heads, kept bodies and
    /// messages waiting for their peer. Each connection is capped on its own, but a
    /// hundred thousand connections each holding a 48 KB head are 4.8 GB: past this
    /// total, a head that grows is dropped (`head dropped: shared buffer cap`) and a body
    /// stops being kept (truncated, `body cut: shared buffer cap`).
    pub max_held_total: usize,
    /// Bytes of records a TLS connection without keys at its ServerHello keeps while
    /// the key log may still bring them (a sensor re-reading `--keylog`); 0 looks the
    /// keys up once (offline: every key is known before the first packet).
    pub key_wait_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // nginx and Apache refuse heads past 8-64 KiB; 64 KiB keeps every real one.
            max_head: 64 * 1024,
            max_body: 64 * 1024,
            probe_limit: 64 * 1024,
            max_pending: 1024,
            defer_decoding: false,
            max_held_total: 32 << 20,
            key_wait_bytes: 0,
        }
    }
}

/// What the parser shares across connections: configuration, counters, the finished
/// exchanges, and the orders of messages begun but not yet finished (so output can be
/// released in order of each exchange's first byte).
#[derive(Debug, Default)]
pub struct Ctx {
    pub config: Config,
    /// TLS session keys (key log file, pcapng secrets) for decrypting connections.
    pub keys: crate::tls::keylog::Keys,
    pub stats: Stats,
    /// Finished exchanges, not yet ordered.
    pub out: Vec<Exchange>,
    /// Orders of messages in progress.
    pub open: BTreeSet<Order>,
    /// Bytes every connection holds (heads, kept bodies, waiting messages), against
    /// [`Config::max_held_total`]; each connection adds its share and takes it back when
    /// it is dropped, whatever path drops it.
    pub held: Arc<AtomicUsize>,
    /// TLS connections closed while waiting for keys (a live sensor's key log).
    pub parked: Vec<crate::tls::Parked>,
    /// The step and flow of the last order given, and how many it was given there.
    last: (u64, u64),
    given: u32,
}

impl Ctx {
    /// A context with the given limits.
    pub fn new(config: Config) -> Self {
        Ctx {
            config,
            ..Ctx::default()
        }
    }

    /// Reserves the order of a message that `info`'s flow begins now.
    pub(crate) fn begin(&mut self, info: &FlowInfo) -> Order {
        // A flow's messages of one step are begun together, so counting them per
        // (step, flow) needs no per-flow state.
        if self.last != (info.at, info.id) {
            self.last = (info.at, info.id);
            self.given = 0;
        }
        let order = Order {
            at: info.at,
            flow: info.id,
            n: self.given,
        };
        self.given += 1;
        self.open.insert(order);
        order
    }

    pub(crate) fn release(&mut self, order: Order) {
        self.open.remove(&order);
    }

    pub(crate) fn emit(&mut self, exchange: Exchange) {
        self.open.remove(&exchange.order);
        self.stats.exchanges += 1;
        self.out.push(exchange);
    }

    pub(crate) fn error(&mut self, what: &'static str) {
        Stats::bump(&mut self.stats.http_errors, what);
    }

    /// True when the connections together hold more than [`Config::max_held_total`].
    pub(crate) fn over_held_cap(&self) -> bool {
        self.held.load(Ordering::Relaxed) > self.config.max_held_total
    }
}

/// One connection's share of [`Ctx::held`], given back when the connection is dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    pool: Option<Arc<AtomicUsize>>,
    bytes: usize,
}

impl Charge {
    pub(crate) fn set(&mut self, pool: &Arc<AtomicUsize>, bytes: usize) {
        if bytes == self.bytes {
            return;
        }
        let pool = self.pool.get_or_insert_with(|| Arc::clone(pool));
        if bytes > self.bytes {
            pool.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            pool.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a line start, expecting a message; `buf` holds the start of its first line.
    Start,
    /// Reading a head whose first line was recognised.
    Head,
    /// Reading a body.
    Body,
    /// Skipping to the next line that starts a message.
    Resync { at_line_start: bool },
    /// Not HTTP/1 (or no longer): bytes are only counted.
    Opaque,
}

/// A message being read.
#[derive(Debug)]
struct Building {
    order: Order,
    kind: StartKind,
    first_ts: Timestamp,
    last_ts: Timestamp,
    head: Option<Head>,
    framing: Framing,
    raw_body: Vec<u8>,
    wire_len: u64,
    body_cut: bool,
    /// The body stopped being kept because the connections together hold too much.
    shared_cut: bool,
    codings: Option<Vec<Coding>>,
    notes: Vec<Note>,
    /// What the connection becomes after this message.
    after: After,
}

impl Building {
    /// A message whose start line was just recognised.
    fn start(
        order: Order,
        kind: StartKind,
        first_ts: Timestamp,
        last_ts: Timestamp,
        notes: Vec<Note>,
    ) -> Box<Building> {
        Box::new(Building {
            order,
            kind,
            first_ts,
            last_ts,
            head: None,
            framing: Framing::None,
            raw_body: Vec::new(),
            wire_len: 0,
            body_cut: false,
            shared_cut: false,
            codings: None,
            notes,
            after: After::Continue,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Continue,
    Upgrade(Note),
    Tunnel,
}

#[derive(Debug)]
struct Dir {
    role: Option<StartKind>,
    state: State,
    buf: Vec<u8>,
    cur: Option<Box<Building>>,
    first_ts: Timestamp,
    /// Bytes skipped since the last message start was found.
    skipped: usize,
    /// A gap hit this direction; the next message carries the note.
    gap: bool,
    /// Message starts recognised on this direction.
    messages: u64,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            role: None,
            state: State::Start,
            buf: Vec::new(),
            cur: None,
            first_ts: 0,
            skipped: 0,
            gap: false,
            messages: 0,
        }
    }
}

#[derive(Debug)]
struct Pending {
    order: Order,
    method_head: bool,
    method_connect: bool,
    request: Option<Message>,
    request_done: bool,
    response: Option<Message>,
    notes: Vec<Note>,
}

/// The connection turns out to speak HTTP/2: what the HTTP/2 parser needs to take over.
#[derive(Debug)]
pub struct Switch {
    /// The side that acts as client.
    pub client: Side,
    /// `Upgrade: h2c` accepted with 101: the upgraded request, which becomes stream 1.
    pub upgraded: Option<Message>,
    /// Bytes each side had sent that the HTTP/1 parser held (the start of the preface).
    pub buffered: [Vec<u8>; 2],
    /// The connection was joined midstream: frame boundaries must be found.
    pub midstream: bool,
    /// Not HTTP/2 but TLS: hand the connection to the TLS reader instead.
    pub tls: bool,
}

/// Frames and bytes one side sent on a WebSocket (RFC 6455), counted not parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebSocketCounts {
    /// Frames of any kind.
    pub frames: u64,
    /// Complete messages (data frames with FIN).
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// One direction's frame counter: reads the frame headers, skips the payloads.
#[derive(Debug, Default)]
struct WsDirection {
    header: Vec<u8>,
    skip: u64,
    counts: WebSocketCounts,
}

impl WsDirection {
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(input.len() as u64) as usize;
                self.skip -= n as u64;
                input = &input[n..];
                continue;
            }
            self.header.push(input[0]);
            input = &input[1..];
            let h = &self.header;
            if h.len() < 2 {
                continue;
            }
            let masked = h[1] & 0x80 != 0;
            let len7 = (h[1] & 0x7f) as usize;
            let ext = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let need = 2 + ext + if masked { 4 } else { 0 };
            if h.len() < need {
                continue;
            }
            let len = match ext {
                0 => len7 as u64,
                2 => u16::from_be_bytes([h[2], h[3]]) as u64,
                _ => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            };
            let fin = h[0] & 0x80 != 0;
            let opcode = h[0] & 0x0f;
            self.counts.frames += 1;
            self.counts.bytes = self.counts.bytes.saturating_add(len);
            if fin && opcode < 8 {
                self.counts.messages += 1;
            }
            self.skip = len;
            self.header.clear();
        }
    }
}

/// A connection upgraded to WebSocket: the upgrade exchange waits for the counts.
#[derive(Debug)]
struct WebSocket {
    order: Order,
    client: Side,
    dirs: [WsDirection; 2],
}

/// The HTTP/1 state of one TCP connection.
#[derive(Debug)]
pub struct Connection {
    switch: Option<Box<Switch>>,
    websocket: Option<Box<WebSocket>>,
    client: Option<Side>,
    dirs: [Dir; 2],
    pending: VecDeque<Pending>,
    /// Pending entries (a prefix) that already have their final response.
    answered: usize,
    counted_opaque: bool,
    /// What this connection holds, counted in [`Ctx::held`].
    charge: Charge,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

/// How many bytes of `input` complete the head that `buf` begins (a head end may
/// straddle the two), or None when the head does not end within `input`.
fn head_end_across(buf: &[u8], input: &[u8]) -> Option<usize> {
    let tail = &buf[buf.len().saturating_sub(3)..];
    let mut seam = [0u8; 6];
    let head = input.len().min(3);
    seam[..tail.len()].copy_from_slice(tail);
    seam[tail.len()..tail.len() + head].copy_from_slice(&input[..head]);
    if let Some(e) = head::head_end(&seam[..tail.len() + head]) {
        if e > tail.len() {
            return Some(e - tail.len());
        }
    }
    head::head_end(input)
}

fn idx(side: Side) -> usize {
    side as usize
}

fn content_length(head: &Head) -> Result<Option<u64>, ()> {
    let mut found: Option<u64> = None;
    for value in head.header_all("content-length") {
        for part in value.split(|b| *b == b',') {
            let t = part.trim_ascii();
            if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n = t.iter().fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
            if found.is_some_and(|f| f != n) {
                return Err(());
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn is_chunked(head: &Head) -> bool {
    head.header_all("transfer-encoding")
        .filter_map(|v| v.split(|b| *b == b',').next_back())
        .last()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The body framing a head declares: chunked, else Content-Length, else `otherwise`.
/// An invalid or conflicting Content-Length is noted and treated as absent.
fn declared_framing(
    head: &Head,
    otherwise: Framing,
    notes: &mut Vec<Note>,
    ctx: &mut Ctx,
) -> Framing {
    if is_chunked(head) {
        return Framing::Chunked(body::ChunkState::Size(Vec::new()));
    }
    match content_length(head) {
        Ok(Some(n)) => Framing::Length(n),
        Ok(None) => otherwise,
        Err(()) => {
            ctx.error("bad content-length");
            notes.push(Note::Malformed);
            otherwise
        }
    }
}

fn upgrade_note(head: &Head) -> Note {
    match head
        .header("upgrade")
        .map(|v| v.trim_ascii().to_ascii_lowercase())
    {
        Some(v) if v.starts_with(b"websocket") => Note::UpgradeWebsocket,
        Some(v) if v.starts_with(b"h2c") => Note::UpgradeH2c,
        _ => Note::Upgrade,
    }
}

impl Connection {
    /// A connection in its initial state.
    pub fn new() -> Connection {
        Connection {
            switch: None,
            websocket: None,
            client: None,
            dirs: [Dir::new(), Dir::new()],
            pending: VecDeque::new(),
            answered: 0,
            counted_opaque: false,
            charge: Charge::default(),
        }
    }

    /// Bytes this connection holds on the heap in buffers, kept bodies and messages
    /// waiting for their peer.
    fn held_bytes(&self) -> usize {
        let dirs: usize = self
            .dirs
            .iter()
            .map(|d| d.buf.capacity() + d.cur.as_ref().map_or(0, |c| c.raw_body.capacity()))
            .sum();
        let pending: usize = self
            .pending
            .iter()
            .flat_map(|p| [p.request.as_ref(), p.response.as_ref()])
            .flatten()
            .map(Message::heap_bytes)
            .sum();
        dirs + pending
    }

    /// Brings this connection's share of [`Ctx::held`] up to date.
    fn recharge(&mut self, ctx: &Ctx) {
        let bytes = self.held_bytes();
        self.charge.set(&ctx.held, bytes);
    }

    fn set_client(&mut self, client: Side) {
        if self.client.is_none() {
            self.client = Some(client);
            self.dirs[idx(client)].role = Some(StartKind::Request);
            self.dirs[idx(client.other())].role = Some(StartKind::Response);
        }
    }

    fn exchange(&self, info: &FlowInfo, order: Order) -> Exchange {
        let client = self.client.unwrap_or(Side::A);
        let mut ex = Exchange {
            order,
            proto: Proto::H1,
            client: socket(info.addr(client)),
            server: socket(info.addr(client.other())),
            stream: None,
            request: None,
            response: None,
            notes: Vec::new(),
            tls: None,
            grpc_messages: None,
            websocket: None,
        };
        if info.client.is_none() {
            ex.note(Note::Midstream);
        }
        ex
    }

    /// The hand-over to HTTP/2, once the connection showed it speaks HTTP/2.
    pub fn take_switch(&mut self) -> Option<Switch> {
        self.switch.take().map(|s| *s)
    }

    /// Hands in-order bytes of one side to the parser. Returns how many were used: all of
    /// them, unless the connection switched to HTTP/2 (see [`Connection::take_switch`]),
    /// in which case the rest belongs to the HTTP/2 parser.
    pub fn data(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        input: &[u8],
        ctx: &mut Ctx,
    ) -> usize {
        if let Some(ws) = self.websocket.as_mut() {
            ws.dirs[idx(side)].feed(input);
            return input.len();
        }
        if let Some(client) = info.client {
            self.set_client(client);
        }
        let total = input.len();
        let mut input = input;
        while !input.is_empty() {
            if self.switch.is_some() {
                return total - input.len();
            }
            let used = match self.dirs[idx(side)].state {
                State::Opaque => input.len(),
                State::Start => self.on_start(info, side, ts, input, ctx),
                State::Head => self.on_head(info, side, ts, input, ctx),
                State::Body => self.on_body(info, side, ts, input, ctx),
                State::Resync { at_line_start } => {
                    self.on_resync(info, side, input, at_line_start, ctx)
                }
            };
            input = &input[used.min(input.len())..];
        }
        self.recharge(ctx);
        total - input.len()
    }

    /// Hands the connection to the HTTP/2 parser.
    fn switch_to_h2(&mut self, client: Side, upgraded: Option<Message>, midstream: bool) {
        let buffered = [
            std::mem::take(&mut self.dirs[0].buf),
            std::mem::take(&mut self.dirs[1].buf),
        ];
        for d in &mut self.dirs {
            d.state = State::Opaque;
        }
        self.switch = Some(Box::new(Switch {
            client,
            upgraded,
            buffered,
            midstream,
            tls: false,
        }));
    }

    /// Marks the connection as not (or no longer) HTTP/1.
    fn go_opaque(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        for d in &mut self.dirs {
            d.state = State::Opaque;
            d.buf = Vec::new();
        }
        let any_http = self.dirs.iter().any(|d| d.messages > 0);
        if !any_http && !self.counted_opaque {
            self.counted_opaque = true;
            let server = self.client.map_or_else(
                || info.addrs[0].1.min(info.addrs[1].1),
                |c| info.addr(c.other()).1,
            );
            *ctx.stats.non_http_flows_by_port.entry(server).or_default() += 1;
        }
    }

    fn on_start(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        input: &[u8],
        ctx: &mut Ctx,
    ) -> usize {
        let dir = &mut self.dirs[idx(side)];
        if dir.buf.is_empty() {
            // Blank lines between messages are allowed (RFC 9112 section 2.2).
            let blank = input
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            if blank > 0 {
                return blank;
            }
            dir.first_ts = ts;
        }
        let take = match memchr::memchr(b'\n', input) {
            Some(i) => i + 1,
            None => input.len(),
        };
        let line_done = take <= input.len() && input[..take].ends_with(b"\n");
        if !line_done && ctx.over_held_cap() {
            // Too much is held across connections to start buffering another line.
            ctx.error("head dropped: shared buffer cap");
            dir.buf = Vec::new();
            dir.state = State::Resync {
                at_line_start: false,
            };
            return take;
        }
        if dir.buf.len() + take > ctx.config.max_head {
            ctx.error("start line too long");
            dir.buf = Vec::new();
            dir.state = State::Resync {
                at_line_start: false,
            };
            return take;
        }
        dir.buf.extend_from_slice(&input[..take]);
        let expect = dir.role;
        if !line_done {
            if head::could_start(&dir.buf, expect) {
                return take;
            }
        } else if head::first_line(&dir.buf) == Some(head::H2_PREFACE_LINE) {
            // HTTP/2 with prior knowledge.
            self.switch_to_h2(side, None, false);
            return take;
        } else if let Some(kind) = head::first_line(&dir.buf).and_then(head::classify_start) {
            if expect.is_none_or(|e| e == kind) {
                if dir.role.is_none() {
                    let client = if kind == StartKind::Request {
                        side
                    } else {
                        side.other()
                    };
                    self.set_client(client);
                }
                let dir = &mut self.dirs[idx(side)];
                dir.messages += 1;
                let order = ctx.begin(info);
                let notes = if std::mem::take(&mut dir.gap) {
                    vec![Note::Gap]
                } else {
                    Vec::new()
                };
                dir.skipped = 0;
                dir.cur = Some(Building::start(order, kind, dir.first_ts, ts, notes));
                dir.state = State::Head;
                return take;
            }
        }
        // Not a message start.
        let never_http = self.dirs.iter().all(|d| d.messages == 0);
        if never_http {
            let dir = &self.dirs[idx(side)];
            let server_settings = crate::http2::frame::Header::parse(&dir.buf)
                .is_some_and(|h| h.kind == crate::http2::frame::kind::SETTINGS && h.plausible());
            if server_settings && info.client.is_some_and(|c| c != side) {
                // An HTTP/2 server speaks first (its SETTINGS) before the client's preface.
                self.switch_to_h2(side.other(), None, false);
                return take;
            }
            if crate::tls::looks_like_tls(&dir.buf) {
                // A TLS handshake: its sender is the client unless the handshake said.
                let client = info.client.unwrap_or(side);
                self.switch_to_h2(client, None, false);
                if let Some(sw) = self.switch.as_mut() {
                    sw.tls = true;
                }
                return take;
            }
            if info.client.is_none() && crate::http2::frame::looks_like_frames(&dir.buf) {
                // Joined midstream, and the bytes are HTTP/2 frames.
                let client = self.client.unwrap_or(Side::A);
                self.switch_to_h2(client, None, true);
                return take;
            }
        }
        if never_http && info.client.is_some() {
            // The stream's beginning was seen and it is not HTTP/1 (TLS, SSH, a database).
            self.go_opaque(info, ctx);
            return input.len();
        }
        ctx.error("not a message start");
        let dir = &mut self.dirs[idx(side)];
        let dir_skipped = dir.buf.len();
        ctx.stats.http_resync_bytes += dir_skipped as u64;
        dir.skipped += dir_skipped;
        dir.buf = Vec::new();
        dir.state = State::Resync {
            at_line_start: line_done,
        };
        self.check_probe(info, side, ctx);
        take
    }

    /// Gives up on connections that show no HTTP within the probe budget.
    fn check_probe(&mut self, info: &FlowInfo, side: Side, ctx: &mut Ctx) {
        let never_http = self.dirs.iter().all(|d| d.messages == 0);
        if never_http && self.dirs[idx(side)].skipped > ctx.config.probe_limit {
            self.go_opaque(info, ctx);
        }
    }

    fn on_resync(
        &mut self,
        info: &FlowInfo,
        side: Side,
        input: &[u8],
        at_line_start: bool,
        ctx: &mut Ctx,
    ) -> usize {
        let dir = &mut self.dirs[idx(side)];
        let mut at = 0;
        if !at_line_start {
            match memchr::memchr(b'\n', input) {
                Some(i) => at = i + 1,
                None => {
                    dir.skipped += input.len();
                    ctx.stats.http_resync_bytes += input.len() as u64;
                    self.check_probe(info, side, ctx);
                    return input.len();
                }
            }
        }
        // Look for a start line among the complete lines we have.
        let found = head::find_start(input, at, dir.role);
        let resume = match found {
            Some((pos, _)) => pos,
            None => {
                // Resume at the last line start: its line may be incomplete.
                let last = memchr::memrchr(b'\n', &input[at..]).map_or(at, |i| at + i + 1);
                if last < input.len() && head::could_start(&input[last..], dir.role) {
                    last
                } else {
                    dir.skipped += input.len();
                    ctx.stats.http_resync_bytes += input.len() as u64;
                    dir.state = State::Resync {
                        at_line_start: input.ends_with(b"\n"),
                    };
                    self.check_probe(info, side, ctx);
                    return input.len();
                }
            }
        };
        dir.skipped += resume;
        ctx.stats.http_resync_bytes += resume as u64;
        dir.state = State::Start;
        self.check_probe(info, side, ctx);
        resume
    }

    fn on_head(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        input: &[u8],
        ctx: &mut Ctx,
    ) -> usize {
        let dir = &mut self.dirs[idx(side)];
        let old = dir.buf.len();
        let room = ctx.config.max_head.saturating_sub(old);
        let take = input.len().min(room + 4);
        // Only the head's own bytes are copied: copying all of `input` made every head
        // of a pipelined segment keep (and copy) the rest of the segment, up to 64 KiB
        // each, which the held requests then pinned in memory.
        let end = match head_end_across(&dir.buf, &input[..take]) {
            Some(used) => {
                dir.buf.extend_from_slice(&input[..used]);
                Some(old + used)
            }
            None => {
                dir.buf.extend_from_slice(&input[..take]);
                None
            }
        };
        let Some(end) = end else {
            let shared = ctx.over_held_cap();
            if dir.buf.len() > ctx.config.max_head || shared {
                ctx.error(if shared {
                    "head dropped: shared buffer cap"
                } else {
                    "head too large"
                });
                self.abandon(side, ctx);
                let dir = &mut self.dirs[idx(side)];
                dir.state = State::Resync {
                    at_line_start: false,
                };
                return take;
            }
            if let Some(cur) = dir.cur.as_mut() {
                cur.last_ts = ts;
            }
            return take;
        };
        let used = end - old;
        // The head's bytes become the Head's storage; what followed it is read again
        // from `input` by the caller.
        let mut raw = std::mem::take(&mut dir.buf);
        raw.truncate(end);
        self.complete_head(info, side, ts, raw, ctx);
        used
    }

    /// A head is complete: parse it, set up body framing, pair responses with requests.
    fn complete_head(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        raw: Vec<u8>,
        ctx: &mut Ctx,
    ) {
        let dir = &mut self.dirs[idx(side)];
        let Some(mut cur) = dir.cur.take() else {
            dir.state = State::Start;
            return;
        };
        let Some((head, lenient)) = head::parse_head(raw, cur.kind) else {
            ctx.error("unparsable head");
            ctx.release(cur.order);
            dir.state = State::Resync {
                at_line_start: true,
            };
            return;
        };
        if lenient {
            ctx.error("lenient header fields");
            cur.notes.push(Note::Malformed);
        }
        cur.last_ts = cur.last_ts.max(ts);
        match cur.kind {
            StartKind::Request => {
                ctx.stats.http_requests += 1;
                // A request without a length has no body (RFC 9112 section 6.3).
                cur.framing = declared_framing(&head, Framing::None, &mut cur.notes, ctx);
                let method = head.method().unwrap_or_default();
                if self.pending.len() >= ctx.config.max_pending {
                    ctx.error("too many pipelined requests");
                    self.flush_front(info, ctx);
                }
                self.pending.push_back(Pending {
                    order: cur.order,
                    method_head: method.eq_ignore_ascii_case(b"HEAD"),
                    method_connect: method.eq_ignore_ascii_case(b"CONNECT"),
                    request: None,
                    request_done: false,
                    response: None,
                    notes: Vec::new(),
                });
            }
            StartKind::Response => {
                ctx.stats.http_responses += 1;
                let status = head.status().unwrap_or(0);
                let target = self.pending.get(self.answered);
                if (100..200).contains(&status) && status != 101 {
                    // Interim response: note it on the request it answers, read on.
                    ctx.release(cur.order);
                    if let Some(p) = self.pending.get_mut(self.answered) {
                        p.notes.push(Note::InterimResponse);
                    }
                    let dir = &mut self.dirs[idx(side)];
                    dir.state = State::Start;
                    return;
                }
                let (is_head, is_connect) =
                    target.map_or((false, false), |p| (p.method_head, p.method_connect));
                if let Some(p) = target {
                    // The exchange takes the request's place in the output order.
                    ctx.release(cur.order);
                    cur.order = p.order;
                    self.answered += 1;
                }
                cur.framing = if status == 101 {
                    cur.after = After::Upgrade(upgrade_note(&head));
                    Framing::None
                } else if is_connect && (200..300).contains(&status) {
                    cur.after = After::Tunnel;
                    Framing::None
                } else if is_head || status == 204 || status == 304 || (100..200).contains(&status)
                {
                    Framing::None
                } else {
                    // A response without a length runs until the connection closes.
                    declared_framing(&head, Framing::UntilClose, &mut cur.notes, ctx)
                };
            }
        }
        cur.codings = if ctx.config.max_body > 0 {
            body::parse_codings(head.header_all("content-encoding"))
        } else {
            Some(Vec::new())
        };
        cur.head = Some(head);
        let dir = &mut self.dirs[idx(side)];
        if cur.framing == Framing::None {
            dir.cur = Some(cur);
            self.finish_message(info, side, ctx);
        } else {
            dir.cur = Some(cur);
            dir.state = State::Body;
        }
    }

    fn on_body(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        input: &[u8],
        ctx: &mut Ctx,
    ) -> usize {
        let max_body = ctx.config.max_body;
        let dir = &mut self.dirs[idx(side)];
        let Some(cur) = dir.cur.as_mut() else {
            dir.state = State::Start;
            return 0;
        };
        cur.last_ts = ts;
        match cur.framing.step(input) {
            Step::Progress { consumed, data } => {
                keep_body(cur, &input[data.0..data.1], max_body, ctx);
                consumed
            }
            Step::Done { consumed, data } => {
                keep_body(cur, &input[data.0..data.1], max_body, ctx);
                self.finish_message(info, side, ctx);
                consumed
            }
            Step::Error(what) => {
                ctx.error(what);
                cur.notes.push(Note::Malformed);
                cur.body_cut = true;
                self.finish_message(info, side, ctx);
                let dir = &mut self.dirs[idx(side)];
                if dir.state != State::Opaque {
                    dir.state = State::Resync {
                        at_line_start: false,
                    };
                }
                0
            }
        }
    }

    /// The current message of `side` is complete (or as complete as it will get).
    fn finish_message(&mut self, info: &FlowInfo, side: Side, ctx: &mut Ctx) {
        let dir = &mut self.dirs[idx(side)];
        dir.state = State::Start;
        let Some(cur) = dir.cur.take() else {
            return;
        };
        let Some(head) = cur.head else {
            ctx.release(cur.order);
            return;
        };
        let mut notes = cur.notes;
        let mut data = Vec::new();
        let mut truncated = cur.body_cut;
        let mut encoded = false;
        let defer =
            ctx.config.defer_decoding && cur.codings.as_ref().is_some_and(|c| !c.is_empty());
        if defer {
            encoded = !cur.raw_body.is_empty();
            data = cur.raw_body;
        } else if ctx.config.max_body > 0 && !cur.raw_body.is_empty() {
            match &cur.codings {
                Some(codings) if !codings.is_empty() => {
                    let (out, issue) =
                        body::decode(&cur.raw_body, codings, ctx.config.max_body, cur.body_cut);
                    data = out;
                    match issue {
                        Some(body::DecodeIssue::Truncated) => truncated = true,
                        Some(body::DecodeIssue::Invalid) => {
                            ctx.stats.bodies_undecodable += 1;
                            notes.push(Note::UndecodableBody);
                        }
                        None => {}
                    }
                }
                Some(_) => data = cur.raw_body,
                None => {
                    ctx.stats.bodies_undecodable += 1;
                    notes.push(Note::UndecodableBody);
                    data = cur.raw_body;
                }
            }
        }
        if ctx.config.max_body > 0
            && cur.wire_len > data.len() as u64
            && cur.codings.as_ref().is_some_and(|c| c.is_empty())
        {
            truncated = true;
        }
        if truncated && ctx.config.max_body > 0 {
            ctx.stats.bodies_truncated += 1;
            notes.push(Note::TruncatedBody);
        }
        let message = Message {
            head,
            body: Body {
                wire_len: cur.wire_len,
                data,
                truncated,
                encoded,
            },
            first_ts: cur.first_ts,
            last_ts: cur.last_ts,
        };
        match cur.kind {
            StartKind::Request => {
                if let Some(p) = self.pending.iter_mut().find(|p| p.order == cur.order) {
                    p.request = Some(message);
                    p.request_done = true;
                    p.notes.extend(notes);
                }
            }
            StartKind::Response => {
                if let Some(p) = self.pending.iter_mut().find(|p| p.order == cur.order) {
                    p.response = Some(message);
                    p.notes.extend(notes);
                } else {
                    let mut ex = self.exchange(info, cur.order);
                    ex.response = Some(message);
                    for n in notes {
                        ex.note(n);
                    }
                    ctx.emit(ex);
                }
            }
        }
        if cur.after != After::Continue {
            let note = match cur.after {
                After::Upgrade(n) => n,
                _ => Note::Tunnel,
            };
            let mut upgraded = None;
            if let Some(p) = self.pending.iter_mut().find(|p| p.order == cur.order) {
                p.notes.push(note);
                if note == Note::UpgradeH2c {
                    upgraded = p.request.clone();
                }
            }
            ctx.stats.upgrades += 1;
            if note == Note::UpgradeH2c {
                let client = self.client.unwrap_or(side.other());
                self.emit_ready(info, ctx);
                self.flush_all(info, ctx);
                self.switch_to_h2(client, upgraded, false);
                return;
            }
            if note == Note::UpgradeWebsocket {
                // The exchange stays open until the connection ends, counting frames.
                let client = self.client.unwrap_or(side.other());
                self.websocket = Some(Box::new(WebSocket {
                    order: cur.order,
                    client,
                    dirs: Default::default(),
                }));
                for d in &mut self.dirs {
                    d.state = State::Opaque;
                    d.buf = Vec::new();
                }
                return;
            }
            self.emit_ready(info, ctx);
            self.flush_all(info, ctx);
            for d in &mut self.dirs {
                d.state = State::Opaque;
                d.buf = Vec::new();
            }
            return;
        }
        self.emit_ready(info, ctx);
    }

    /// Emits exchanges at the front of the queue that are complete.
    fn emit_ready(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.request_done && p.response.is_some())
        {
            self.flush_front(info, ctx);
        }
    }

    /// Emits the oldest pending exchange as it is.
    fn flush_front(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        if self.answered > 0 {
            self.answered -= 1;
        }
        let mut ex = self.exchange(info, p.order);
        let incomplete = !p.request_done;
        ex.request = p.request;
        ex.response = p.response;
        if let Some(ws) = self.websocket.as_ref().filter(|w| w.order == p.order) {
            let c = ws.client as usize;
            ex.websocket = Some([ws.dirs[c].counts, ws.dirs[1 - c].counts]);
        }
        for n in p.notes {
            ex.note(n);
        }
        if incomplete {
            ex.note(Note::Incomplete);
        }
        ctx.emit(ex);
    }

    fn flush_all(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        while !self.pending.is_empty() {
            self.flush_front(info, ctx);
        }
    }

    /// Drops the message in progress on `side` (its head never completed).
    fn abandon(&mut self, side: Side, ctx: &mut Ctx) {
        let dir = &mut self.dirs[idx(side)];
        // Freed, not cleared: a dropped head's capacity would stay held.
        dir.buf = Vec::new();
        if let Some(cur) = dir.cur.take() {
            ctx.release(cur.order);
        }
    }

    /// `len` bytes of `side` are missing from the capture here.
    pub fn gap(&mut self, info: &FlowInfo, side: Side, len: u64, ctx: &mut Ctx) {
        let dir = &mut self.dirs[idx(side)];
        match dir.state {
            State::Opaque => {}
            State::Start
                if !dir.buf.is_empty()
                    && dir.role != Some(StartKind::Response)
                    && head::partial_request_line(&dir.buf) =>
            {
                // The request line was cut inside its version: keep method and target.
                let mut raw = std::mem::take(&mut dir.buf);
                raw.extend_from_slice(b"\r\n\r\n");
                if dir.role.is_none() {
                    self.set_client(side);
                }
                let dir = &mut self.dirs[idx(side)];
                dir.messages += 1;
                let order = ctx.begin(info);
                let notes = vec![Note::Gap, Note::Incomplete];
                let mut cur =
                    Building::start(order, StartKind::Request, dir.first_ts, dir.first_ts, notes);
                cur.body_cut = true;
                dir.cur = Some(cur);
                self.complete_head(info, side, 0, raw, ctx);
                let dir = &mut self.dirs[idx(side)];
                if dir.state == State::Body {
                    self.finish_message(info, side, ctx);
                }
                let dir = &mut self.dirs[idx(side)];
                dir.gap = true;
                dir.state = State::Resync {
                    at_line_start: false,
                };
            }
            State::Start | State::Resync { .. } => {
                dir.buf = Vec::new();
                dir.gap = true;
                dir.state = State::Resync {
                    at_line_start: false,
                };
            }
            State::Head => {
                // Keep what the head had, if its first line made it.
                self.salvage_head(info, side, true, ctx);
                let dir = &mut self.dirs[idx(side)];
                dir.state = State::Resync {
                    at_line_start: false,
                };
            }
            State::Body => {
                let Some(cur) = dir.cur.as_mut() else {
                    dir.state = State::Resync {
                        at_line_start: false,
                    };
                    return;
                };
                push_note(&mut cur.notes, Note::Gap);
                cur.body_cut = true;
                match cur.framing.skip(len) {
                    Some(false) => cur.wire_len += len,
                    Some(true) => {
                        cur.wire_len += len;
                        self.finish_message(info, side, ctx);
                    }
                    None => {
                        self.finish_message(info, side, ctx);
                        let dir = &mut self.dirs[idx(side)];
                        if dir.state != State::Opaque {
                            dir.state = State::Resync {
                                at_line_start: false,
                            };
                        }
                    }
                }
            }
        }
    }

    /// A head cut by a gap (or by the end of the stream): keep its complete lines as the
    /// head, and say so.
    fn salvage_head(&mut self, info: &FlowInfo, side: Side, gap: bool, ctx: &mut Ctx) {
        let dir = &mut self.dirs[idx(side)];
        let complete = memchr::memrchr(b'\n', &dir.buf).map(|i| i + 1);
        let Some(complete) = complete else {
            self.abandon(side, ctx);
            return;
        };
        let mut raw = dir.buf[..complete].to_vec();
        raw.extend_from_slice(b"\r\n");
        dir.buf = Vec::new();
        if let Some(cur) = dir.cur.as_mut() {
            if gap {
                push_note(&mut cur.notes, Note::Gap);
            }
            push_note(&mut cur.notes, Note::Incomplete);
        }
        self.complete_head(info, side, 0, raw, ctx);
        // Whatever framing the head announced, its body is lost with the gap.
        let dir = &mut self.dirs[idx(side)];
        if dir.state == State::Body {
            if let Some(cur) = dir.cur.as_mut() {
                cur.body_cut = true;
            }
            self.finish_message(info, side, ctx);
        }
    }

    /// `side` closed its direction.
    pub fn fin(&mut self, info: &FlowInfo, side: Side, ctx: &mut Ctx) {
        let dir = &mut self.dirs[idx(side)];
        if dir.state == State::Body {
            if let Some(cur) = dir.cur.as_mut() {
                if cur.framing != Framing::UntilClose {
                    push_note(&mut cur.notes, Note::Incomplete);
                    cur.body_cut = true;
                }
            }
            self.finish_message(info, side, ctx);
        } else if dir.state == State::Head {
            self.salvage_head(info, side, false, ctx);
        }
        let dir = &mut self.dirs[idx(side)];
        dir.buf = Vec::new();
        if dir.state != State::Opaque {
            dir.state = State::Resync {
                at_line_start: true,
            };
        }
    }

    /// The connection is gone: finish what can be finished and emit everything.
    pub fn close(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        for side in [Side::A, Side::B] {
            if self.dirs[idx(side)].state != State::Opaque {
                self.fin(info, side, ctx);
            }
        }
        // Messages that never got a head are dropped; their order is released.
        for side in [Side::A, Side::B] {
            self.abandon(side, ctx);
        }
        self.flush_all(info, ctx);
        self.recharge(ctx);
    }
}

fn keep_body(cur: &mut Building, data: &[u8], max_body: usize, ctx: &mut Ctx) {
    cur.wire_len += data.len() as u64;
    if max_body == 0 {
        return;
    }
    if !data.is_empty() && !cur.shared_cut && ctx.over_held_cap() {
        ctx.error("body cut: shared buffer cap");
        cur.shared_cut = true;
        cur.body_cut = true;
    }
    let room = if cur.shared_cut {
        0
    } else {
        max_body.saturating_sub(cur.raw_body.len())
    };
    if room < data.len() {
        cur.body_cut = true;
    }
    cur.raw_body
        .extend_from_slice(&data[..room.min(data.len())]);
}

impl StreamApp for Connection {
    type Ctx = Ctx;

    fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        match event {
            FlowEvent::Data { side, ts, bytes } => {
                self.data(info, side, ts, bytes, ctx);
            }
            FlowEvent::Gap { side, len, .. } => self.gap(info, side, len, ctx),
            FlowEvent::Fin { side, .. } => self.fin(info, side, ctx),
            FlowEvent::Close { .. } => self.close(info, ctx),
        }
    }
}

#[cfg(test)]
mod tests;
