//! HTTP/2 connections fed as real peers would send them (frames built here, header
//! blocks from loona-hpack's encoder), in odd chunk sizes, and hostile variants.

use std::net::IpAddr;

use super::frame::{flag, kind, PREFACE};
use super::*;
use crate::http1::Config;
use crate::tcp::{FlowInfo, Side};

const C: Side = Side::A;
const S: Side = Side::B;

fn info() -> FlowInfo {
    FlowInfo {
        id: 0,
        at: 0,
        addrs: [
            (IpAddr::from([10, 0, 0, 1]), 40000),
            (IpAddr::from([10, 0, 0, 2]), 8080),
        ],
        context: 0,
        client: Some(Side::A),
        first_ts: 0,
        last_ts: 0,
    }
}

fn frame(k: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, k, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

struct Peer {
    enc: loona_hpack::Encoder<'static>,
}

impl Peer {
    fn new() -> Self {
        Peer {
            enc: loona_hpack::Encoder::new(),
        }
    }
    fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let block = self
            .enc
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        frame(kind::HEADERS, flags, stream, &block)
    }
}

fn run(steps: &[(Side, Vec<u8>)], chunk: usize, config: Config) -> (Vec<Exchange>, Ctx) {
    let info = info();
    let mut ctx = Ctx::new(config);
    let mut conn = Connection::new(C, false, None, None);
    let mut ts = 0;
    for (side, bytes) in steps {
        for piece in bytes.chunks(chunk) {
            ts += 1_000;
            conn.data(&info, *side, ts, piece, &mut ctx);
        }
    }
    conn.close(&info, &mut ctx);
    assert!(ctx.open.is_empty());
    let mut out = std::mem::take(&mut ctx.out);
    out.sort_by_key(|e| e.order);
    (out, ctx)
}

fn lines(ex: &[Exchange]) -> Vec<String> {
    ex.iter()
        .map(|e| {
            let l = e.to_line();
            format!(
                "{} {} {} {} {} {}",
                l.stream.unwrap_or(0),
                l.method.unwrap_or_default(),
                l.host.unwrap_or_default(),
                l.target.unwrap_or_default(),
                l.status.map_or("-".into(), |s| s.to_string()),
                l.resp_body_bytes
            )
        })
        .collect()
}

fn conversation() -> Vec<(Side, Vec<u8>)> {
    let (mut c, mut s) = (Peer::new(), Peer::new());
    let mut client = PREFACE.to_vec();
    client.extend(frame(kind::SETTINGS, 0, 0, &[]));
    client.extend(c.headers(
        1,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "api.test"),
            (":path", "/v1/users/1"),
        ],
        true,
    ));
    client.extend(c.headers(
        3,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "api.test"),
            (":path", "/v1/users"),
            ("content-type", "application/json"),
        ],
        false,
    ));
    client.extend(frame(
        kind::DATA,
        flag::END_STREAM,
        3,
        b"{\"name\":\"bob\"}",
    ));
    let mut server = frame(kind::SETTINGS, 0, 0, &[]);
    server.extend(s.headers(
        3,
        &[(":status", "201"), ("content-type", "application/json")],
        false,
    ));
    server.extend(s.headers(1, &[(":status", "200")], false));
    server.extend(frame(kind::DATA, 0, 1, b"{\"id\":1"));
    server.extend(frame(kind::DATA, flag::END_STREAM, 1, b"}"));
    server.extend(frame(
        kind::DATA,
        flag::END_STREAM | flag::PADDED,
        3,
        &[2, b'{', b'}', 0, 0],
    ));
    vec![(C, client), (S, server)]
}

#[test]
fn concurrent_streams_pair_in_any_chunking() {
    for chunk in [1, 2, 3, 5, 8, 13, 64, usize::MAX] {
        let (ex, _) = run(&conversation(), chunk, Config::default());
        assert_eq!(
            lines(&ex),
            vec![
                "1 GET api.test /v1/users/1 200 8",
                "3 POST api.test /v1/users 201 2"
            ],
            "chunk {chunk}"
        );
        let req = ex[1].to_line();
        assert_eq!(req.req_body_bytes, 14);
        assert_eq!(req.req_content_type.as_deref(), Some("application/json"));
        assert_eq!(req.proto, "h2");
    }
}

#[test]
fn continuation_frames_join_one_block() {
    let mut c = Peer::new();
    let block = c.enc.encode([
        (&b":method"[..], &b"GET"[..]),
        (b":path", b"/split"),
        (b":authority", b"a.test"),
        (b"x-long", &[b'v'; 300][..]),
    ]);
    let (a, b) = block.split_at(20);
    let mut client = PREFACE.to_vec();
    client.extend(frame(kind::HEADERS, flag::END_STREAM, 1, a));
    client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, b));
    let server = Peer::new().headers(1, &[(":status", "204")], true);
    let (ex, _) = run(&[(C, client), (S, server)], 7, Config::default());
    assert_eq!(lines(&ex), vec!["1 GET a.test /split 204 0"]);
}

#[test]
fn reset_and_push_and_trailers() {
    let (mut c, mut s) = (Peer::new(), Peer::new());
    let mut client = PREFACE.to_vec();
    client.extend(c.headers(
        1,
        &[
            (":method", "POST"),
            (":path", "/pkg.Svc/Call"),
            (":authority", "g"),
            ("content-type", "application/grpc"),
        ],
        false,
    ));
    client.extend(frame(
        kind::DATA,
        flag::END_STREAM,
        1,
        &[0, 0, 0, 0, 2, 8, 1],
    ));
    client.extend(c.headers(
        3,
        &[
            (":method", "GET"),
            (":path", "/cancelled"),
            (":authority", "g"),
        ],
        true,
    ));
    client.extend(frame(kind::RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    let mut server = s.headers(
        1,
        &[(":status", "200"), ("content-type", "application/grpc")],
        false,
    );
    let promise = s.enc.encode([
        (&b":method"[..], &b"GET"[..]),
        (b":path", b"/pushed.css"),
        (b":authority", b"g"),
    ]);
    let mut pp = 2u32.to_be_bytes().to_vec();
    pp.extend(promise);
    server.extend(frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &pp));
    server.extend(frame(kind::DATA, 0, 1, &[0, 0, 0, 0, 1, 7]));
    server.extend(s.headers(
        1,
        &[("grpc-status", "5"), ("grpc-message", "not found")],
        true,
    ));
    server.extend(s.headers(2, &[(":status", "200")], true));
    let (ex, _) = run(&[(C, client), (S, server)], 5, Config::default());
    assert_eq!(
        lines(&ex),
        vec![
            "1 POST g /pkg.Svc/Call 200 6",
            "3 GET g /cancelled - 0",
            "2 GET g /pushed.css 200 0"
        ]
    );
    assert!(ex[1].notes.contains(&Note::Reset));
    assert!(ex[2].notes.contains(&Note::ServerPush));
    let resp = ex[0].response.as_ref().expect("response");
    assert_eq!(resp.head.header("grpc-status"), Some(&b"5"[..]));
}

#[test]
fn joined_midstream_recovers_literal_paths_and_never_invents_one() {
    // The client's earlier blocks put `:authority: hidden.test` at dynamic index 62, in
    // blocks we never saw; this block refers to it, then sends :path as a literal.
    let later = [0x82, 0xbe, 0x04, 0x05, b'/', b's', b'e', b'e', b'n'];
    let mut client = b"tail of an earlier DATA frame".to_vec();
    client.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        7,
        &later,
    ));
    client.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    let server = Peer::new().headers(7, &[(":status", "200")], true);
    let info = info();
    let mut ctx = Ctx::new(Config::default());
    let mut conn = Connection::new(C, true, None, None);
    conn.data(&info, C, 1, &client, &mut ctx);
    // The server side starts at a frame boundary here; a real midstream reader resyncs.
    let mut server_bytes = frame(kind::PING, 0, 0, &[0; 8]);
    server_bytes.extend(server);
    conn.data(&info, S, 2, &server_bytes, &mut ctx);
    conn.close(&info, &mut ctx);
    let ex = std::mem::take(&mut ctx.out);
    assert_eq!(ex.len(), 1);
    let l = ex[0].to_line();
    assert_eq!(l.target.as_deref(), Some("/seen"));
    assert_eq!(
        l.host, None,
        "the :authority was a reference to an unseen entry"
    );
    assert!(ex[0].notes.contains(&Note::HpackDesync));
    assert!(ex[0].notes.contains(&Note::Midstream));
    assert_eq!(ctx.stats.hpack_desync, 1);
}

#[test]
fn endless_continuation_and_a_hpack_bomb_stay_bounded() {
    let mut client = PREFACE.to_vec();
    client.extend(frame(kind::HEADERS, 0, 1, &[0x82]));
    for _ in 0..400 {
        client.extend(frame(kind::CONTINUATION, 0, 1, &[0x40; 1024]));
    }
    client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[]));
    // A table size update far past the cap, then literal fields filling it.
    let mut bomb = vec![0x3f, 0xe1, 0xff, 0x7f];
    for i in 0..2000u32 {
        let v = format!("{i:0>60}");
        bomb.extend([0x40, 0x01, b'x', v.len() as u8]);
        bomb.extend(v.as_bytes());
    }
    bomb.extend([0x82, 0x84]);
    client.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &bomb,
    ));
    let (ex, ctx) = run(&[(C, client)], 4096, Config::default());
    assert_eq!(
        ctx.stats.http_errors.get("HTTP/2 header block too large"),
        Some(&1)
    );
    assert_eq!(
        ctx.stats
            .http_errors
            .get("HPACK table size update past the cap"),
        Some(&1)
    );
    assert_eq!(lines(&ex), vec!["3 GET  / - 0"]);
}

#[test]
fn a_hundred_thousand_streams_and_ids_going_backwards() {
    let mut c = Peer::new();
    let mut client = PREFACE.to_vec();
    for i in 0..100_000u32 {
        let id = if i % 2 == 0 {
            2 * i + 1
        } else {
            2 * (100_000 - i) + 1
        };
        client.extend(c.headers(
            id,
            &[(":method", "GET"), (":path", "/s"), (":authority", "a")],
            true,
        ));
    }
    let (ex, ctx) = run(&[(C, client)], 1 << 16, Config::default());
    assert_eq!(ex.len(), 100_000);
    assert!(ctx
        .stats
        .http_errors
        .get("too many HTTP/2 streams")
        .is_some_and(|n| *n > 90_000));
}

#[test]
fn oversized_frames_are_skipped() {
    let mut client = PREFACE.to_vec();
    let len = frame::MAX_FRAME;
    client.extend([
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        kind::HEADERS,
        flag::END_HEADERS,
        0,
        0,
        0,
        1,
    ]);
    client.extend(vec![0u8; len as usize]);
    client.extend(Peer::new().headers(
        3,
        &[(":method", "GET"), (":path", "/after"), (":authority", "a")],
        true,
    ));
    let (ex, ctx) = run(&[(C, client)], 1 << 16, Config::default());
    assert_eq!(
        ctx.stats.http_errors.get("HTTP/2 frame too large"),
        Some(&1)
    );
    assert_eq!(lines(&ex), vec!["3 GET a /after - 0"]);
}

#[test]
fn an_endless_continuation_flood_is_counted() {
    // HEADERS without END_HEADERS, then 1 MB of CONTINUATION that never ends the block:
    // it used to vanish at the end of the connection without a count.
    let mut client = PREFACE.to_vec();
    client.extend(frame(kind::SETTINGS, 0, 0, b""));
    client.extend(frame(kind::HEADERS, 0, 1, b"\x82\x86\x84"));
    for _ in 0..256 {
        client.extend(frame(kind::CONTINUATION, 0, 1, &[0xbe; 4096]));
    }
    let (_, ctx) = run(&[(C, client)], 65_536, Config::default());
    assert_eq!(
        ctx.stats.http_errors.get("HTTP/2 header block too large"),
        Some(&1)
    );
    // A short block cut by the end of the capture is counted too.
    let mut client = PREFACE.to_vec();
    client.extend(frame(kind::HEADERS, 0, 1, b"\x82\x86\x84"));
    let (_, ctx) = run(&[(C, client)], 7, Config::default());
    assert_eq!(
        ctx.stats.http_errors.get("HTTP/2 header block never ended"),
        Some(&1)
    );
}
