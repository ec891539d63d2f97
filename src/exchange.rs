/*!
The `Exchange`: one HTTP request with its response, the value every later stage consumes.

Heads keep their bytes as received plus ranges into them, so parsing a head allocates once
and the accessors borrow. Bodies are kept only up to the configured limit, decoded
(Content-Encoding) and counted; what was cut or could not be seen is said in `notes`.
*/

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::source::Timestamp;

/// A byte range in a head's buffer.
pub type Span = (u32, u32);

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD target HTTP/1.x`.
    Request {
        method: Span,
        target: Span,
        version: Span,
    },
    /// `HTTP/1.x status reason`.
    Response {
        version: Span,
        status: u16,
        reason: Span,
    },
}

/// A message head: start line and header fields, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    raw: Vec<u8>,
    start: StartLine,
    headers: Vec<(Span, Span)>,
}

fn slice(raw: &[u8], s: Span) -> &[u8] {
    raw.get(s.0 as usize..s.1 as usize).unwrap_or_default()
}

impl Head {
    /// Builds a head from its bytes, start line and header spans.
    pub fn new(raw: Vec<u8>, start: StartLine, headers: Vec<(Span, Span)>) -> Head {
        Head {
            raw,
            start,
            headers,
        }
    }

    /// The start line.
    pub fn start(&self) -> &StartLine {
        &self.start
    }

    /// The request method, for a request.
    pub fn method(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { method, .. } => Some(slice(&self.raw, method)),
            StartLine::Response { .. } => None,
        }
    }

    /// The request-target exactly as on the wire, for a request.
    pub fn target(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { target, .. } => Some(slice(&self.raw, target)),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The protocol version token (`HTTP/1.1`).
    pub fn version(&self) -> &[u8] {
        match self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                slice(&self.raw, version)
            }
        }
    }

    /// All header fields in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (slice(&self.raw, *n), slice(&self.raw, *v)))
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        // Spans of another length are passed over without slicing: inference looks up
        // several headers in every message.
        self.headers
            .iter()
            .filter(|(n, _)| n.1.wrapping_sub(n.0) as usize == name.len())
            .find(|(n, _)| slice(&self.raw, *n).eq_ignore_ascii_case(name))
            .map(|(_, v)| slice(&self.raw, *v))
    }

    /// All values of a header, by case-insensitive name.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The raw head bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Bytes the head holds on the heap for its raw bytes (tests of memory bounds).
    #[cfg(test)]
    pub(crate) fn raw_capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Bytes the head holds on the heap: its raw bytes and its field spans.
    pub fn heap_bytes(&self) -> usize {
        self.raw.capacity() + self.headers.capacity() * std::mem::size_of::<(Span, Span)>()
    }
}

/// A message body as far as it was kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// Body length on the wire after transfer decoding (chunks removed), before
    /// content decoding: what Content-Length would say.
    pub wire_len: u64,
    /// The body content-decoded (gzip, deflate, br), up to the body limit.
    pub data: Vec<u8>,
    /// True when `data` holds less than the whole body (limit, gap or bomb).
    pub truncated: bool,
    /// True when `data` is still content-coded because decoding was deferred
    /// (`http1::Config::defer_decoding`): `http1::body::content` decodes it on demand.
    pub encoded: bool,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub head: Head,
    pub body: Body,
    /// Time of the first and of the last packet carrying the message.
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
}

impl Message {
    /// Bytes the message holds on the heap (its head and its kept body).
    pub fn heap_bytes(&self) -> usize {
        self.head.heap_bytes() + self.body.data.capacity()
    }
}

/// Application protocol of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
    /// A TLS connection that could not be looked into.
    Tls,
}

impl Proto {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::H1 => "h1",
            Proto::H2 => "h2",
            Proto::Tls => "tls",
        }
    }
}

/// Something partial or unusual about an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Note {
    /// The connection was caught after it began (no handshake seen).
    Midstream,
    /// Bytes of the exchange were missing from the capture.
    Gap,
    /// A body was kept only in part (limit, gap, decompression bomb).
    TruncatedBody,
    /// The connection ended before the message was complete.
    Incomplete,
    /// An interim 1xx response preceded the final one.
    InterimResponse,
    /// The connection switched to WebSocket.
    UpgradeWebsocket,
    /// The connection switched to HTTP/2 (h2c).
    UpgradeH2c,
    /// The connection switched to another protocol.
    Upgrade,
    /// CONNECT: the connection became a tunnel.
    Tunnel,
    /// The Content-Encoding could not be decoded.
    UndecodableBody,
    /// The message had framing errors that were worked around.
    Malformed,
    /// HTTP/2: header fields referred to HPACK table entries never seen (joined
    /// midstream or after a gap); they are missing.
    HpackDesync,
    /// HTTP/2: the stream was reset (RST_STREAM).
    Reset,
    /// HTTP/2: the server pushed this exchange (PUSH_PROMISE).
    ServerPush,
    /// The exchange was read from a TLS connection decrypted with its session keys.
    Decrypted,
}

impl Note {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Note::Midstream => "midstream",
            Note::Gap => "gap",
            Note::TruncatedBody => "truncated_body",
            Note::Incomplete => "incomplete",
            Note::InterimResponse => "interim_response",
            Note::UpgradeWebsocket => "upgrade_websocket",
            Note::UpgradeH2c => "upgrade_h2c",
            Note::Upgrade => "upgrade",
            Note::Tunnel => "tunnel",
            Note::UndecodableBody => "undecodable_body",
            Note::Malformed => "malformed",
            Note::HpackDesync => "hpack_desync",
            Note::Reset => "reset",
            Note::ServerPush => "server_push",
            Note::Decrypted => "decrypted",
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Adds a note to a list being collected before an exchange exists, once.
pub fn push_note(notes: &mut Vec<Note>, n: Note) {
    if !notes.contains(&n) {
        notes.push(n);
    }
}

/// Where an exchange's first message began in the input, the key output is sorted by.
///
/// `at` is the position of the input step (a TCP segment, or a sweep for idle flows) being
/// handled when the message began, `flow` the connection's id, `n` counts the messages the
/// flow began at that step. Each part depends only on the input and on the flow itself, so
/// the order is the same however flows are spread over threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Order {
    pub at: u64,
    pub flow: u64,
    pub n: u32,
}

/// One request/response pair (either side may be missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Position of the exchange's first message in the input; output is sorted by it.
    pub order: Order,
    pub proto: Proto,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// HTTP/2 stream id.
    pub stream: Option<u32>,
    pub request: Option<Message>,
    pub response: Option<Message>,
    /// Sorted, without duplicates.
    pub notes: Vec<Note>,
    /// For `proto: tls`: what the handshake showed.
    pub tls: Option<Box<crate::tls::TlsInfo>>,
    /// HTTP/2: length-prefixed gRPC messages each way (request, response), counted for
    /// every stream and reported for gRPC exchanges.
    pub grpc_messages: Option<(u32, u32)>,
    /// After an accepted WebSocket upgrade: frames counted each way (client first).
    pub websocket: Option<[crate::http1::WebSocketCounts; 2]>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Formats a timestamp as RFC 3339 UTC with microseconds.
pub fn format_ts(ts: Timestamp) -> String {
    let secs = ts.div_euclid(1_000_000_000);
    let nanos = ts.rem_euclid(1_000_000_000) as u32;
    use chrono::{Datelike, Timelike};
    match chrono::DateTime::from_timestamp(secs, nanos) {
        // Written by hand: strftime-style formatting was a tenth of `exchanges`' time.
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            nanos / 1000
        ),
        None => String::from("invalid"),
    }
}

fn content_type(m: Option<&Message>) -> Option<String> {
    m.and_then(|m| m.head.header("content-type")).map(text)
}

impl Exchange {
    /// Bytes its messages hold on the heap (heads and kept bodies): what holding it back
    /// for ordering costs.
    pub fn heap_bytes(&self) -> usize {
        let m = |m: &Option<Message>| m.as_ref().map_or(0, Message::heap_bytes);
        std::mem::size_of::<Exchange>() + m(&self.request) + m(&self.response)
    }

    /// Adds a note once.
    pub fn note(&mut self, n: Note) {
        if let Err(at) = self.notes.binary_search(&n) {
            self.notes.insert(at, n);
        }
    }

    /// Time of the first packet of the request (or of the response when it is alone).
    pub fn ts(&self) -> Timestamp {
        self.request
            .as_ref()
            .or(self.response.as_ref())
            .map(|m| m.first_ts)
            .or(self.tls.as_ref().map(|t| t.first_ts))
            .unwrap_or(0)
    }

    /// The Host header (`:authority` for HTTP/2, or its Host header when it has none).
    pub fn host(&self) -> Option<&[u8]> {
        if let Some(sni) = self
            .tls
            .as_ref()
            .and_then(|t| t.client_hello.as_ref())
            .and_then(|h| h.sni.as_ref())
        {
            return Some(sni.as_bytes());
        }
        let head = &self.request.as_ref()?.head;
        head.header(":authority").or_else(|| head.header("host"))
    }

    /// The final status code.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().and_then(|r| r.head.status())
    }

    /// Milliseconds from the request's first packet to the response's last.
    pub fn duration_ms(&self) -> Option<f64> {
        if let Some(t) = &self.tls {
            return Some((t.last_ts - t.first_ts).max(0) as f64 / 1e6);
        }
        let (req, resp) = (self.request.as_ref()?, self.response.as_ref()?);
        Some((resp.last_ts - req.first_ts).max(0) as f64 / 1e6)
    }

    /// The exchange line of the `exchanges --format jsonl` contract.
    pub fn to_line(&self) -> ExchangeLine {
        let req = self.request.as_ref();
        let resp = self.response.as_ref();
        ExchangeLine {
            ts: format_ts(self.ts()),
            proto: self.proto.as_str(),
            client: self.client.to_string(),
            server: self.server.to_string(),
            stream: self.stream,
            method: req.and_then(|r| r.head.method()).map(text),
            host: self.host().map(text),
            target: req.and_then(|r| r.head.target()).map(text),
            status: self.status(),
            req_content_type: content_type(req),
            resp_content_type: content_type(resp),
            req_body_bytes: req.map_or(0, |r| r.body.wire_len),
            resp_body_bytes: resp.map_or(0, |r| r.body.wire_len),
            duration_ms: self.duration_ms().map(|d| (d * 1000.0).round() / 1000.0),
            notes: self.notes.iter().map(|n| n.as_str()).collect(),
            tls: self.tls.as_deref().map(TlsLine::from),
            grpc: self.grpc(),
            websocket: self
                .websocket
                .map(|[client, server]| WebSocketLine { client, server }),
        }
    }

    /// gRPC details, for requests whose content type is `application/grpc*`.
    pub fn grpc(&self) -> Option<GrpcLine> {
        let req = &self.request.as_ref()?.head;
        let ct = req.header("content-type")?;
        if !ct.starts_with(b"application/grpc") {
            return None;
        }
        let path = String::from_utf8_lossy(req.target()?).into_owned();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((&path, ""));
        let status = self
            .response
            .as_ref()
            .and_then(|r| r.head.header("grpc-status"))
            .and_then(|s| std::str::from_utf8(s).ok()?.trim().parse().ok());
        let message = self
            .response
            .as_ref()
            .and_then(|r| r.head.header("grpc-message"))
            .map(text);
        let (requests, responses) = self.grpc_messages.unwrap_or((0, 0));
        Some(GrpcLine {
            service: service.to_string(),
            method: method.to_string(),
            status,
            message,
            request_messages: requests,
            response_messages: responses,
        })
    }
}

/// The serialised form of an exchange (field names are a contract: see DESIGN.md).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ExchangeLine {
    pub ts: String,
    pub proto: &'static str,
    pub client: String,
    pub server: String,
    pub stream: Option<u32>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub target: Option<String>,
    pub status: Option<u16>,
    pub req_content_type: Option<String>,
    pub resp_content_type: Option<String>,
    pub req_body_bytes: u64,
    pub resp_body_bytes: u64,
    pub duration_ms: Option<f64>,
    pub notes: Vec<&'static str>,
    /// Only on `proto: tls` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsLine>,
    /// Only on gRPC exchanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcLine>,
    /// Only on accepted WebSocket upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket: Option<WebSocketLine>,
}

/// WebSocket frames after the upgrade, each way.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct WebSocketLine {
    pub client: crate::http1::WebSocketCounts,
    pub server: crate::http1::WebSocketCounts,
}

/// A gRPC call: service and method from `:path`, the `grpc-status` trailer, messages.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct GrpcLine {
    pub service: String,
    pub method: String,
    /// The `grpc-status` code (0 is OK); null when the trailer was not seen.
    pub status: Option<u32>,
    pub message: Option<String>,
    pub request_messages: u32,
    pub response_messages: u32,
}

/// What a TLS line says about the connection it could not look into.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct TlsLine {
    pub sni: Option<String>,
    pub alpn_offered: Vec<String>,
    /// The protocol the server chose.
    pub alpn: Option<String>,
    /// Negotiated version: `1.3`, `1.2`...
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    pub ja4: Option<String>,
    pub cert_subject: Option<String>,
    pub cert_sans: Vec<String>,
    pub cert_not_after: Option<String>,
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// Why the connection was not looked into: `no_key`, `resumed_no_key`,
    /// `unsupported_suite`, `bad_key`, `bad_tag`, `record_too_long`, `midstream`, `gap`.
    pub not_decrypted: Option<&'static str>,
}

/// A TLS version number as people write it (`1.3`).
pub fn tls_version(v: u16) -> String {
    match v {
        0x0304 => "1.3".into(),
        0x0303 => "1.2".into(),
        0x0302 => "1.1".into(),
        0x0301 => "1.0".into(),
        0x0300 => "ssl3".into(),
        other => format!("0x{other:04x}"),
    }
}

impl From<&crate::tls::TlsInfo> for TlsLine {
    fn from(t: &crate::tls::TlsInfo) -> Self {
        let ch = t.client_hello.as_ref();
        let sh = t.server_hello.as_ref();
        let cert = t.certificate.as_ref();
        TlsLine {
            sni: ch.and_then(|h| h.sni.clone()),
            alpn_offered: ch.map(|h| h.alpn.clone()).unwrap_or_default(),
            alpn: sh.and_then(|h| h.alpn.clone()),
            version: sh.map(|h| tls_version(h.version)),
            cipher_suite: sh.map(|h| format!("0x{:04x}", h.cipher_suite)),
            ja4: ch.map(|h| h.ja4.clone()),
            cert_subject: cert.map(|c| c.subject.clone()),
            cert_sans: cert.map(|c| c.sans.clone()).unwrap_or_default(),
            cert_not_after: cert.map(|c| format_ts(c.not_after.saturating_mul(1_000_000_000))),
            client_bytes: t.bytes[0],
            server_bytes: t.bytes[1],
            not_decrypted: t.not_decrypted,
        }
    }
}

/// A socket address from the flow's parts.
pub fn socket(addr: (IpAddr, u16)) -> SocketAddr {
    SocketAddr::new(addr.0, addr.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_micro() {
        assert_eq!(
            format_ts(1_362_692_526_939_527_000),
            "2013-03-07T21:42:06.939527Z"
        );
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn notes_are_kept_sorted_and_unique() {
        let mut e = Exchange {
            order: Order::default(),
            proto: Proto::H1,
            client: "10.0.0.1:1".parse().expect("addr"),
            server: "10.0.0.2:80".parse().expect("addr"),
            stream: None,
            request: None,
            response: None,
            notes: vec![],
            tls: None,
            grpc_messages: None,
            websocket: None,
        };
        e.note(Note::Gap);
        e.note(Note::Midstream);
        e.note(Note::Gap);
        assert_eq!(e.notes, vec![Note::Midstream, Note::Gap]);
    }
}
