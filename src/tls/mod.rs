/*!
TLS connections without keys: what can be seen in the clear, so the inventory can say
where it is blind (server, SNI, ALPN, versions, client fingerprint, certificate) instead of
pretending the traffic is not there.

A connection is recognised by its first bytes (a handshake record, on any port). Records
are reassembled per direction until the handshake turns encrypted (ChangeCipherSpec,
application data, or after the ServerHello in TLS 1.3), keeping at most
[`MAX_HANDSHAKE`] bytes; after that only bytes and records are counted. At the end of the
connection one [`Exchange`] with `proto: tls` carries it all.
*/

pub mod hello;

use crate::exchange::{push_note, socket, Exchange, Note, Proto};
use crate::http1::Ctx;
use crate::source::Timestamp;
use crate::tcp::{FlowEvent, FlowInfo, Side};

/// Handshake bytes buffered per direction before giving up on the plaintext part.
pub const MAX_HANDSHAKE: usize = 64 * 1024;

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
    #[serde(skip)]
    pub first_ts: Timestamp,
    #[serde(skip)]
    pub last_ts: Timestamp,
}

/// Whether bytes at the start of a stream are a TLS handshake record (SSL 3.0 to TLS 1.3).
pub fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4
}

#[derive(Debug, Default)]
struct Direction {
    /// Partial record bytes.
    record: Vec<u8>,
    /// Handshake message bytes (across records).
    handshake: Vec<u8>,
    /// The plaintext part is over (or too large to follow).
    encrypted: bool,
    /// Remaining payload bytes of the record being skipped.
    skip: usize,
}

/// One TLS connection.
#[derive(Debug)]
pub struct Connection {
    client: Side,
    dirs: [Direction; 2],
    info: TlsInfo,
    order: u64,
    notes: Vec<Note>,
}

impl Connection {
    /// A connection whose client is `client`, started at `ts`.
    pub fn new(client: Side, ts: Timestamp, ctx: &mut Ctx) -> Self {
        ctx.stats.tls_connections += 1;
        Connection {
            client,
            dirs: [Direction::default(), Direction::default()],
            info: TlsInfo {
                first_ts: ts,
                last_ts: ts,
                ..TlsInfo::default()
            },
            order: ctx.begin(),
            notes: Vec::new(),
        }
    }

    /// Handles one flow event.
    pub fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        match event {
            FlowEvent::Data { side, ts, bytes } => self.data(side, ts, bytes),
            FlowEvent::Gap { side, .. } => {
                let d = &mut self.dirs[side as usize];
                d.encrypted = true;
                d.record.clear();
                push_note(&mut self.notes, Note::Gap);
            }
            FlowEvent::Fin { .. } => {}
            FlowEvent::Close { .. } => self.close(info, ctx),
        }
    }

    /// Feeds bytes of one side.
    pub fn data(&mut self, side: Side, ts: Timestamp, mut input: &[u8]) {
        self.info.last_ts = ts;
        let from_client = side == self.client;
        let dir_index = side as usize;
        let count = if from_client { 0 } else { 1 };
        while !input.is_empty() {
            let d = &mut self.dirs[dir_index];
            if d.skip > 0 {
                let n = d.skip.min(input.len());
                d.skip -= n;
                input = &input[n..];
                continue;
            }
            if d.record.len() < 5 {
                let n = (5 - d.record.len()).min(input.len());
                d.record.extend_from_slice(&input[..n]);
                input = &input[n..];
                if d.record.len() < 5 {
                    return;
                }
                // A record is counted once, when its header is complete.
                self.info.records[count] += 1;
                self.info.bytes[count] += u16::from_be_bytes([d.record[3], d.record[4]]) as u64;
            }
            let kind = d.record[0];
            let len = u16::from_be_bytes([d.record[3], d.record[4]]) as usize;
            if kind != 22 || d.encrypted || d.handshake.len() + len > MAX_HANDSHAKE {
                if kind == 20 || kind == 23 || d.handshake.len() + len > MAX_HANDSHAKE {
                    d.encrypted = true;
                }
                d.record.clear();
                d.skip = len;
                continue;
            }
            // A handshake record: collect its payload.
            let have = d.record.len() - 5;
            let n = (len - have).min(input.len());
            d.record.extend_from_slice(&input[..n]);
            input = &input[n..];
            if d.record.len() - 5 < len {
                return;
            }
            let payload = d.record.split_off(5);
            d.record.clear();
            d.handshake.extend_from_slice(&payload);
            self.handshake_messages(side);
        }
    }

    fn handshake_messages(&mut self, side: Side) {
        let from_client = side == self.client;
        loop {
            let d = &mut self.dirs[side as usize];
            if d.handshake.len() < 4 {
                return;
            }
            let kind = d.handshake[0];
            let len =
                u32::from_be_bytes([0, d.handshake[1], d.handshake[2], d.handshake[3]]) as usize;
            if d.handshake.len() < 4 + len {
                return;
            }
            let msg: Vec<u8> = d.handshake.drain(..4 + len).skip(4).collect();
            match (kind, from_client) {
                (1, true) => self.info.client_hello = hello::client_hello(&msg),
                (2, false) => {
                    self.info.server_hello = hello::server_hello(&msg);
                    if self
                        .info
                        .server_hello
                        .as_ref()
                        .is_some_and(|h| h.version == 0x0304)
                    {
                        // TLS 1.3: everything after the ServerHello is encrypted.
                        self.dirs[side as usize].encrypted = true;
                        self.dirs[side.other() as usize].encrypted = true;
                        return;
                    }
                }
                (11, false) => self.info.certificate = hello::certificate(&msg),
                _ => {}
            }
        }
    }

    fn close(&mut self, info: &FlowInfo, ctx: &mut Ctx) {
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
