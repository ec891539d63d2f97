/*!
TLS connections: what can be seen in the clear, and what is inside when the session keys
are known.

A connection is recognised by its first bytes (a handshake record, on any port). Records
are reassembled per direction ([`record`]); the plaintext handshake is read for the
inventory's view of it (server, SNI, ALPN, versions, client fingerprint, certificate).
When the key log ([`keylog`]) has secrets for the ClientHello's random and the suite is
one [`cipher`] supports, [`decrypt`] opens each record and the application data goes to
the HTTP/1 or HTTP/2 parser (chosen by the negotiated ALPN, else by its bytes): its
exchanges come out like cleartext ones, with the note `decrypted`. Otherwise, or when
decryption fails later (a tag that does not verify, a record too long, a gap), one
[`Exchange`] with `proto: tls` carries the metadata at the end of the connection, with the
reason it was not looked into.

Keys looked up at the ServerHello may not be there yet: a client writes its key log line
as it finishes the handshake, and a live sensor re-reads the file once a second. With
[`crate::http1::Config::key_wait_bytes`] set (the sensor with `--keylog`), a connection
without keys keeps its records (up to that many bytes, for at most [`KEY_WAIT`] of packet
time, within the shared held-bytes cap) and looks again at each record; when the keys
come, the kept records are decrypted in order and the connection goes on as if they had
been there all along.
*/

pub mod cipher;
pub mod decrypt;
pub mod handshake;
pub mod hello;
pub mod kdf;
pub mod keylog;
pub mod record;

use crate::app;
use crate::exchange::{push_note, socket, Exchange, Note, Order, Proto};
use crate::http1::{Charge, Ctx};
use crate::http2;
use crate::source::Timestamp;
use crate::tcp::{CloseReason, FlowEvent, FlowInfo, Side};

use decrypt::{Opened, Session, Why};
use record::{Header, Records};

/// What one TLS connection showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    pub client_hello: Option<hello::ClientHello>,
    pub server_hello: Option<hello::ServerHello>,
    pub certificate: Option<hello::CertificateInfo>,
    /// Application bytes (record payloads) each way, client to server first.
    pub bytes: [u64; 2],
    /// Records each way.
    pub records: [u64; 2],
    /// Why the connection was not looked into (`no_key`, `unsupported_suite`...).
    pub not_decrypted: Option<&'static str>,
    #[serde(skip)]
    pub first_ts: Timestamp,
    #[serde(skip)]
    pub last_ts: Timestamp,
}

/// Whether bytes at the start of a stream are a TLS handshake record (SSL 3.0 to TLS 1.3).
pub fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4
}

/// `ServerHello.random` of a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

#[derive(Debug, Default)]
struct Direction {
    records: Records,
    /// Plaintext handshake messages.
    handshake: handshake::Messages,
    /// The plaintext part is over.
    encrypted: bool,
}

/// How long (packet time) a connection keeps its records waiting for keys.
pub const KEY_WAIT: Timestamp = 10_000_000_000;

/// Records kept since the ServerHello, while the keys may still come.
#[derive(Debug)]
struct Waiting {
    /// Why there are no keys yet (`no_key` or `resumed_no_key`).
    why: Why,
    /// Time of the first record kept.
    since: Option<Timestamp>,
    /// Each record whole, header included, with its direction (0: from the client),
    /// side and time, in the order they came.
    records: Vec<(usize, Side, Timestamp, Header, Vec<u8>)>,
    bytes: usize,
    /// Its share of the bytes all connections hold.
    charge: Charge,
}

/// A connection that closed while waiting for its keys.
#[derive(Debug)]
pub struct Parked {
    info: FlowInfo,
    closed: Timestamp,
    reason: CloseReason,
    conn: Box<Connection>,
}

/// Looks the keys of parked connections up again (new key log lines came): those that
/// have them now are decrypted and their exchanges emitted; those whose wait is over at
/// `now` (`Timestamp::MAX` at the end of the input) are emitted opaque.
pub fn retry_parked(ctx: &mut Ctx, now: Timestamp) {
    if ctx.parked.is_empty() {
        return;
    }
    for mut p in std::mem::take(&mut ctx.parked) {
        p.conn.look_again(&p.info, now, ctx);
        match p.conn.decrypt {
            Decrypt::Waiting(_) => ctx.parked.push(p),
            _ => {
                let close = FlowEvent::Close {
                    ts: p.closed,
                    reason: p.reason,
                };
                p.conn.pass_inner(&p.info, close, ctx);
                p.conn.close(&p.info, ctx);
            }
        }
    }
}

/// Where decryption stands.
#[derive(Debug)]
enum Decrypt {
    /// The ServerHello has not been seen yet.
    Undecided,
    /// No keys at the ServerHello: records are kept while they may still come.
    Waiting(Box<Waiting>),
    /// Keys found: records are opened.
    On(Box<Session>),
    /// Not decrypted (the reason is in `TlsInfo::not_decrypted`).
    Off,
}

/// What the handshake said that decryption needs.
#[derive(Debug, Default)]
struct Hellos {
    client_random: Option<[u8; 32]>,
    client_session_id: Vec<u8>,
    server_random: Option<[u8; 32]>,
    server_session_id: Vec<u8>,
    /// The server accepted a pre-shared key (TLS 1.3 resumption).
    server_psk: bool,
}

/// One TLS connection.
#[derive(Debug)]
pub struct Connection {
    client: Side,
    dirs: [Direction; 2],
    info: TlsInfo,
    order: Order,
    /// The opaque line's order is still reserved in the context.
    order_open: bool,
    notes: Vec<Note>,
    hellos: Hellos,
    decrypt: Decrypt,
    /// The parser of the decrypted application data.
    inner: Option<Box<app::Connection>>,
}

/// Random and session id at the start of a hello body.
fn random_and_session(body: &[u8]) -> Option<([u8; 32], Vec<u8>)> {
    let random: [u8; 32] = body.get(2..34)?.try_into().ok()?;
    let len = *body.get(34)? as usize;
    Some((random, body.get(35..35 + len)?.to_vec()))
}

/// Whether a ServerHello body carries the pre_shared_key extension (41).
fn server_hello_has_psk(body: &[u8]) -> bool {
    let Some(sid_len) = body.get(34) else {
        return false;
    };
    // random, session id, suite (2), compression (1), extensions length (2).
    let at = 35 + *sid_len as usize + 3;
    let Some(mut exts) = body.get(at + 2..) else {
        return false;
    };
    while exts.len() >= 4 {
        let kind = u16::from_be_bytes([exts[0], exts[1]]);
        let n = u16::from_be_bytes([exts[2], exts[3]]) as usize;
        if kind == 41 {
            return true;
        }
        exts = exts.get(4 + n..).unwrap_or_default();
    }
    false
}

impl Connection {
    /// A connection whose client is `client`, started at `ts`.
    pub fn new(info: &FlowInfo, client: Side, ts: Timestamp, ctx: &mut Ctx) -> Self {
        ctx.stats.tls_connections += 1;
        Connection {
            client,
            dirs: [Direction::default(), Direction::default()],
            info: TlsInfo {
                first_ts: ts,
                last_ts: ts,
                ..TlsInfo::default()
            },
            order: ctx.begin(info),
            order_open: true,
            notes: Vec::new(),
            hellos: Hellos::default(),
            decrypt: Decrypt::Undecided,
            inner: None,
        }
    }

    /// Handles one flow event.
    pub fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        match event {
            FlowEvent::Data { side, ts, bytes } => self.data(info, side, ts, bytes, ctx),
            FlowEvent::Gap { side, .. } => {
                let d = &mut self.dirs[side as usize];
                d.encrypted = true;
                d.records.reset();
                push_note(&mut self.notes, Note::Gap);
                if matches!(self.decrypt, Decrypt::On(_) | Decrypt::Waiting(_)) {
                    self.stop(Why::Gap, ctx);
                }
                self.pass_inner(info, event, ctx);
            }
            FlowEvent::Fin { .. } => self.pass_inner(info, event, ctx),
            FlowEvent::Close { ts, reason } => {
                for d in &self.dirs {
                    if !d.records.skipping() && d.records.pending() > 0 {
                        ctx.stats.tls_truncated_records += 1;
                    }
                }
                self.pass_inner(info, event, ctx);
                if !self.park(info, ts, reason, ctx) {
                    self.close(info, ctx);
                }
            }
        }
    }

    /// A connection that closes while waiting for keys, with records kept, waits on in
    /// [`Ctx::parked`] (a short HTTPS call is over before the key log is read again).
    /// Returns whether it did; what stays behind is an empty shell.
    fn park(&mut self, info: &FlowInfo, ts: Timestamp, reason: CloseReason, ctx: &mut Ctx) -> bool {
        let Decrypt::Waiting(w) = &self.decrypt else {
            return false;
        };
        if w.records.is_empty() {
            return false;
        }
        let conn = Connection {
            client: self.client,
            dirs: std::mem::take(&mut self.dirs),
            info: std::mem::take(&mut self.info),
            order: self.order,
            order_open: self.order_open,
            notes: std::mem::take(&mut self.notes),
            hellos: std::mem::take(&mut self.hellos),
            decrypt: std::mem::replace(&mut self.decrypt, Decrypt::Off),
            inner: self.inner.take(),
        };
        self.order_open = false;
        ctx.parked.push(Parked {
            info: info.clone(),
            closed: ts,
            reason,
            conn: Box::new(conn),
        });
        true
    }

    /// Passes an event to the decrypted stream's parser, marking what it emits.
    fn pass_inner(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let first = ctx.out.len();
        crate::tcp::StreamApp::on_event(inner.as_mut(), info, event, ctx);
        for ex in ctx.out.iter_mut().skip(first) {
            ex.note(Note::Decrypted);
        }
    }

    /// Gives up decrypting: the connection is shown opaque, with the reason.
    fn stop(&mut self, why: Why, ctx: &mut Ctx) {
        if matches!(self.decrypt, Decrypt::Off) {
            return;
        }
        Stats::bump(&mut ctx.stats.tls_not_decrypted, why.as_str());
        self.decrypt = Decrypt::Off;
        self.info.not_decrypted = Some(why.as_str());
        for d in &mut self.dirs {
            if d.encrypted {
                d.records.skip_payloads();
            }
        }
    }

    /// Feeds bytes of one side.
    pub fn data(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        input: &[u8],
        ctx: &mut Ctx,
    ) {
        self.info.last_ts = ts;
        let i = side as usize;
        let mut records = std::mem::take(&mut self.dirs[i].records);
        let problem = records.push(input, &mut |records, header, record| {
            self.record(info, side, ts, header, record, ctx);
            let off = matches!(self.decrypt, Decrypt::Off);
            if off && self.dirs[i].encrypted {
                records.skip_payloads();
            }
        });
        self.dirs[i].records = records;
        if problem == Some(record::Problem::TooLong) {
            ctx.stats.tls_records_too_long += 1;
            self.stop(Why::RecordTooLong, ctx);
            self.dirs[i].encrypted = true;
            self.dirs[i].records.skip_payloads();
        }
    }

    /// One record (in skip mode, its header only).
    fn record(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        header: Header,
        record: &mut [u8],
        ctx: &mut Ctx,
    ) {
        let from_client = side == self.client;
        let count = if from_client { 0 } else { 1 };
        self.info.records[count] += 1;
        self.info.bytes[count] += header.len as u64;
        if record.len() < record::HEADER + header.len {
            return; // skip mode
        }
        if matches!(self.decrypt, Decrypt::Waiting(_)) {
            self.look_again(info, ts, ctx);
        }
        let Some(opened) = self.open(count, side, header, record, ctx) else {
            return;
        };
        match opened {
            Opened::Plaintext => self.plaintext(side, header, &record[record::HEADER..], ctx),
            Opened::Control => {}
            Opened::Data(range) => {
                ctx.stats.tls_decrypted_bytes += range.len() as u64;
                self.application_data(info, side, ts, &record[range], ctx);
            }
        }
        if let Decrypt::Waiting(w) = &mut self.decrypt {
            w.since.get_or_insert(ts);
            w.bytes += record.len();
            w.records.push((count, side, ts, header, record.to_vec()));
            w.charge.set(&ctx.held, w.bytes);
        }
    }

    /// Opens one whole record with the session's keys, if there are keys; `None` when
    /// it fails (decryption stops).
    fn open(
        &mut self,
        count: usize,
        side: Side,
        header: Header,
        record: &mut [u8],
        ctx: &mut Ctx,
    ) -> Option<Opened> {
        let Decrypt::On(session) = &mut self.decrypt else {
            return Some(Opened::Plaintext);
        };
        match session.record(count, header, record) {
            Ok(o) => {
                if let Some(alpn) = session.alpn.take() {
                    if let Some(sh) = self.info.server_hello.as_mut() {
                        sh.alpn = Some(alpn);
                    }
                }
                Some(o)
            }
            Err(why) => {
                if why == Why::BadTag {
                    ctx.stats.tls_bad_records += 1;
                }
                self.dirs[side as usize].encrypted = true;
                self.stop(why, ctx);
                None
            }
        }
    }

    /// Waiting for keys, at a new record: decrypts what was kept if they came; gives up
    /// when the wait is over (time, bytes, or the shared cap).
    fn look_again(&mut self, info: &FlowInfo, now: Timestamp, ctx: &mut Ctx) {
        let Decrypt::Waiting(w) = &self.decrypt else {
            return;
        };
        let why = w.why;
        let expired = w.since.is_some_and(|t| now.saturating_sub(t) > KEY_WAIT)
            || w.bytes > ctx.config.key_wait_bytes
            || ctx.over_held_cap();
        match self.session(ctx) {
            Ok(session) => {
                let Decrypt::Waiting(w) =
                    std::mem::replace(&mut self.decrypt, Decrypt::On(Box::new(session)))
                else {
                    return;
                };
                self.keys_found(ctx);
                for (count, side, ts, header, mut record) in w.records {
                    // Plaintext records were read when they came.
                    match self.open(count, side, header, &mut record, ctx) {
                        None => return,
                        Some(Opened::Data(range)) => {
                            ctx.stats.tls_decrypted_bytes += range.len() as u64;
                            self.application_data(info, side, ts, &record[range], ctx);
                        }
                        Some(_) => {}
                    }
                }
            }
            Err(Why::NoKey | Why::ResumedNoKey) if !expired => {}
            Err(Why::NoKey | Why::ResumedNoKey) => self.stop(why, ctx),
            Err(other) => self.stop(other, ctx),
        }
    }

    /// A record that is not protected: read the handshake.
    fn plaintext(&mut self, side: Side, header: Header, payload: &[u8], ctx: &mut Ctx) {
        let d = &mut self.dirs[side as usize];
        if header.kind == 20 || header.kind == 23 {
            d.encrypted = true;
        }
        if header.kind != 22 || d.encrypted {
            return;
        }
        let mut messages = std::mem::take(&mut d.handshake);
        let mut got = Vec::new();
        messages.push(payload, &mut |kind, body| got.push((kind, body.to_vec())));
        self.dirs[side as usize].handshake = messages;
        for (kind, body) in got {
            self.handshake_message(side, kind, &body, ctx);
        }
    }

    fn handshake_message(&mut self, side: Side, kind: u8, msg: &[u8], ctx: &mut Ctx) {
        let from_client = side == self.client;
        match (kind, from_client) {
            (1, true) => {
                self.info.client_hello = hello::client_hello(msg);
                if let Some((random, sid)) = random_and_session(msg) {
                    self.hellos.client_random = Some(random);
                    self.hellos.client_session_id = sid;
                }
            }
            (2, false) => {
                let Some((random, sid)) = random_and_session(msg) else {
                    return;
                };
                if random == HELLO_RETRY_REQUEST {
                    // Another ClientHello follows, then the real ServerHello.
                    return;
                }
                self.hellos.server_random = Some(random);
                self.hellos.server_session_id = sid;
                self.hellos.server_psk = server_hello_has_psk(msg);
                self.info.server_hello = hello::server_hello(msg);
                let tls13 = self
                    .info
                    .server_hello
                    .as_ref()
                    .is_some_and(|h| h.version == 0x0304);
                if tls13 {
                    // TLS 1.3: everything after the ServerHello is encrypted.
                    for d in &mut self.dirs {
                        d.encrypted = true;
                    }
                }
                self.decide(ctx);
            }
            (11, false) => self.info.certificate = hello::certificate(msg),
            _ => {}
        }
    }

    /// The session keys from what the hellos said and the key log, or why there are none.
    fn session(&self, ctx: &Ctx) -> Result<Session, Why> {
        let sh = self.info.server_hello.as_ref().ok_or(Why::Midstream)?;
        let (Some(cr), Some(sr)) = (self.hellos.client_random, self.hellos.server_random) else {
            return Err(Why::Midstream);
        };
        let suite = cipher::suite(sh.cipher_suite)
            .filter(|s| s.tls13 == (sh.version == 0x0304) && sh.version >= 0x0303)
            .ok_or(Why::UnsupportedSuite)?;
        let resumed = self.hellos.server_psk
            || (!self.hellos.client_session_id.is_empty()
                && self.hellos.client_session_id == self.hellos.server_session_id
                && !suite.tls13);
        let no_key = if resumed {
            Why::ResumedNoKey
        } else {
            Why::NoKey
        };
        let secrets = ctx.keys.get(&cr).ok_or(no_key)?;
        Session::new(suite, secrets, &cr, &sr).map_err(|w| if w == Why::NoKey { no_key } else { w })
    }

    /// After the ServerHello: look the keys up.
    fn decide(&mut self, ctx: &mut Ctx) {
        if !matches!(self.decrypt, Decrypt::Undecided) {
            return;
        }
        match self.session(ctx) {
            Ok(session) => {
                self.decrypt = Decrypt::On(Box::new(session));
                self.keys_found(ctx);
            }
            Err(why @ (Why::NoKey | Why::ResumedNoKey)) if ctx.config.key_wait_bytes > 0 => {
                self.decrypt = Decrypt::Waiting(Box::new(Waiting {
                    why,
                    since: None,
                    records: Vec::new(),
                    bytes: 0,
                    charge: Charge::default(),
                }));
            }
            Err(why) => self.stop(why, ctx),
        }
    }

    /// Decryption is on: the connection's exchanges will carry its place in the output.
    fn keys_found(&mut self, ctx: &mut Ctx) {
        if self.order_open {
            ctx.release(self.order);
            self.order_open = false;
        }
    }

    /// Decrypted application data: to the HTTP parser.
    fn application_data(
        &mut self,
        info: &FlowInfo,
        side: Side,
        ts: Timestamp,
        bytes: &[u8],
        ctx: &mut Ctx,
    ) {
        if self.inner.is_none() {
            ctx.stats.tls_decrypted += 1;
            let h2 = self
                .info
                .server_hello
                .as_ref()
                .and_then(|h| h.alpn.as_deref())
                == Some("h2");
            let inner = if h2 {
                ctx.stats.h2_connections += 1;
                app::Connection::Http2(Box::new(http2::Connection::new(
                    self.client,
                    false,
                    None,
                    None,
                )))
            } else {
                app::Connection::default()
            };
            self.inner = Some(Box::new(inner));
        }
        self.pass_inner(info, FlowEvent::Data { side, ts, bytes }, ctx);
    }

    fn close(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
        if matches!(self.decrypt, Decrypt::On(_)) {
            // Its exchanges stand for it (none if it ended before any application data).
            return;
        }
        if let Decrypt::Waiting(w) = &self.decrypt {
            let why = w.why;
            self.stop(why, ctx);
        }
        if matches!(self.decrypt, Decrypt::Undecided) {
            let why = if self.info.client_hello.is_none() {
                Why::Midstream
            } else if self.notes.contains(&Note::Gap) {
                Why::Gap
            } else {
                Why::NoKey
            };
            self.stop(why, ctx);
        }
        if !self.order_open {
            // Its place was given up when keys were found, and later exchanges may have
            // gone out since: it takes its place now, where decryption stopped being of
            // use (the same place however connections are spread over threads).
            self.order = ctx.begin(info);
        }
        let mut ex = Exchange {
            order: self.order,
            proto: Proto::Tls,
            client: socket(info.addr(self.client)),
            server: socket(info.addr(self.client.other())),
            stream: None,
            request: None,
            response: None,
            notes: Vec::new(),
            tls: Some(Box::new(std::mem::take(&mut self.info))),
            grpc_messages: None,
            websocket: None,
        };
        if ex.tls.as_ref().is_some_and(|t| t.client_hello.is_none()) {
            ex.note(Note::Midstream);
        }
        for n in self.notes.drain(..) {
            ex.note(n);
        }
        ctx.emit(ex);
    }
}

use crate::stats::Stats;
