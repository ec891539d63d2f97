//! The HTTP/1 parser fed conversations in every chunk size from 1 byte up, as TCP may
//! deliver them, in the style of rustls' `transfer()` tests.

use std::io::Write;
use std::net::IpAddr;

use super::*;
use crate::tcp::{FlowInfo, Side};

const C: Side = Side::A;
const S: Side = Side::B;

fn info(handshake: bool) -> FlowInfo {
    FlowInfo {
        id: 0,
        at: 0,
        addrs: [
            (IpAddr::from([10, 0, 0, 1]), 40000),
            (IpAddr::from([10, 0, 0, 2]), 8080),
        ],
        context: 0,
        client: handshake.then_some(Side::A),
        first_ts: 0,
        last_ts: 0,
    }
}

enum Step<'a> {
    Data(Side, &'a [u8]),
    Gap(Side, u64),
    Fin(Side),
}

fn run_with(
    steps: &[Step<'_>],
    chunk: usize,
    handshake: bool,
    config: Config,
) -> (Vec<Exchange>, Ctx) {
    let info = info(handshake);
    let mut ctx = Ctx::new(config);
    let mut conn = Connection::new();
    let mut ts = 0;
    for step in steps {
        match step {
            Step::Data(side, bytes) => {
                for piece in bytes.chunks(chunk) {
                    ts += 1_000_000;
                    conn.data(&info, *side, ts, piece, &mut ctx);
                }
            }
            Step::Gap(side, len) => conn.gap(&info, *side, *len, &mut ctx),
            Step::Fin(side) => conn.fin(&info, *side, &mut ctx),
        }
    }
    conn.close(&info, &mut ctx);
    assert!(ctx.open.is_empty(), "orders left open: {:?}", ctx.open);
    let mut out = std::mem::take(&mut ctx.out);
    out.sort_by_key(|e| e.order);
    (out, ctx)
}

fn run(steps: &[Step<'_>], chunk: usize) -> Vec<Exchange> {
    run_with(steps, chunk, true, Config::default()).0
}

/// (method, target, status, request body bytes, response body bytes) per exchange.
fn summary(ex: &[Exchange]) -> Vec<(String, String, Option<u16>, u64, u64)> {
    ex.iter()
        .map(|e| {
            let l = e.to_line();
            (
                l.method.unwrap_or_default(),
                l.target.unwrap_or_default(),
                l.status,
                l.req_body_bytes,
                l.resp_body_bytes,
            )
        })
        .collect()
}

fn s(
    m: &str,
    t: &str,
    st: Option<u16>,
    rq: u64,
    rs: u64,
) -> (String, String, Option<u16>, u64, u64) {
    (m.into(), t.into(), st, rq, rs)
}

/// Runs `steps` in chunk sizes 1..=9 and whole, and checks every run gives `expected`.
fn check(
    steps: &[Step<'_>],
    expected: &[(String, String, Option<u16>, u64, u64)],
) -> Vec<Exchange> {
    for chunk in (1..=9).chain([usize::MAX]) {
        assert_eq!(summary(&run(steps, chunk)), expected, "chunk size {chunk}");
    }
    run(steps, usize::MAX)
}

#[test]
fn keep_alive_with_content_length() {
    let ex = check(
        &[
            Step::Data(C, b"GET /a HTTP/1.1\r\nHost: api.example\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            ),
            Step::Data(
                C,
                b"POST /b HTTP/1.1\r\nHost: api.example\r\nContent-Length: 5\r\n\r\nhello",
            ),
            Step::Data(S, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ],
        &[
            s("GET", "/a", Some(200), 0, 2),
            s("POST", "/b", Some(201), 5, 0),
        ],
    );
    assert_eq!(
        ex[0].response.as_ref().map(|r| r.body.data.clone()),
        Some(b"{}".to_vec())
    );
    assert_eq!(ex[0].to_line().host.as_deref(), Some("api.example"));
    assert_eq!(
        ex[0].to_line().resp_content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(ex[0].client.to_string(), "10.0.0.1:40000");
}

#[test]
fn pipelined_requests_pair_in_order() {
    check(
        &[
            Step::Data(C, b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!",
            ),
        ],
        &[s("GET", "/1", Some(200), 0, 1), s("HEAD", "/2", Some(200), 0, 0), s("GET", "/3", Some(404), 0, 3)],
    );
}

#[test]
fn chunked_with_trailers_and_gzip_is_decoded() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"user":"alice@example.com"}"#)
        .expect("write");
    let gz = gz.finish().expect("gzip");
    let (a, b) = gz.split_at(10);
    let mut resp =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    resp.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
    resp.extend_from_slice(a);
    resp.extend_from_slice(format!("\r\n{:x};ext=1\r\n", b.len()).as_bytes());
    resp.extend_from_slice(b);
    resp.extend_from_slice(b"\r\n0\r\nX-Checksum: 1\r\n\r\n");
    let steps = [
        Step::Data(C, b"GET /u HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"),
        Step::Data(S, &resp),
    ];
    let ex = check(&steps, &[s("GET", "/u", Some(200), 0, gz.len() as u64)]);
    let body = &ex[0].response.as_ref().expect("response").body;
    assert_eq!(body.data, br#"{"user":"alice@example.com"}"#);
    assert!(!body.truncated);
}

#[test]
fn expect_100_continue_then_final_response() {
    let ex = check(
        &[
            Step::Data(
                C,
                b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
            ),
            Step::Data(S, b"HTTP/1.1 100 Continue\r\n\r\n"),
            Step::Data(C, b"data"),
            Step::Data(S, b"HTTP/1.1 204 No Content\r\n\r\n"),
        ],
        &[s("POST", "/up", Some(204), 4, 0)],
    );
    assert!(ex[0].notes.contains(&Note::InterimResponse));
}

#[test]
fn upgrade_to_websocket_stops_http_parsing() {
    let ex = check(
        &[
            Step::Data(
                C,
                b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            ),
            Step::Data(
                S,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
            ),
            Step::Data(C, b"\x81\x85\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n"),
        ],
        &[s("GET", "/chat", Some(101), 0, 0)],
    );
    assert!(ex[0].notes.contains(&Note::UpgradeWebsocket));
}

#[test]
fn connect_tunnel_is_not_parsed() {
    let ex = check(
        &[
            Step::Data(
                C,
                b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n",
            ),
            Step::Data(
                S,
                b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x00\x05hello",
            ),
            Step::Data(C, b"\x16\x03\x01\x02\x00GET / HTTP/1.1\r\n\r\n"),
        ],
        &[s("CONNECT", "api.example:443", Some(200), 0, 0)],
    );
    assert!(ex[0].notes.contains(&Note::Tunnel));
}

#[test]
fn close_delimited_body_ends_at_fin() {
    check(
        &[
            Step::Data(C, b"GET /old HTTP/1.0\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
            ),
            Step::Fin(S),
        ],
        &[s("GET", "/old", Some(200), 0, 13)],
    );
}

#[test]
fn no_body_statuses_and_head() {
    check(
        &[
            Step::Data(C, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nHEAD /c HTTP/1.1\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            ),
        ],
        &[s("GET", "/a", Some(204), 0, 0), s("GET", "/b", Some(304), 0, 0), s("HEAD", "/c", Some(200), 0, 0)],
    );
}

#[test]
fn request_without_response_and_response_without_request() {
    let steps = [Step::Data(C, b"GET /lonely HTTP/1.1\r\n\r\n")];
    assert_eq!(
        summary(&run(&steps, usize::MAX)),
        vec![s("GET", "/lonely", None, 0, 0)]
    );
    let steps = [Step::Data(
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )];
    let ex = run_with(&steps, usize::MAX, false, Config::default()).0;
    assert_eq!(summary(&ex), vec![s("", "", Some(200), 0, 2)]);
    assert!(ex[0].notes.contains(&Note::Midstream));
}

#[test]
fn midstream_capture_resynchronises_on_the_next_message() {
    // The capture starts inside a response body and inside a request's headers.
    let steps = [
        Step::Data(S, b"tail of an earlier body\r\nmore\r\n"),
        Step::Data(C, b"ost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: api\r\n\r\n"),
        Step::Data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    for chunk in [1, 3, 7, usize::MAX] {
        let ex = run_with(&steps, chunk, false, Config::default()).0;
        assert_eq!(
            summary(&ex),
            vec![s("GET", "/next", Some(200), 0, 0)],
            "chunk {chunk}"
        );
        assert_eq!(ex[0].client.to_string(), "10.0.0.1:40000");
    }
}

#[test]
fn a_gap_in_a_body_keeps_the_exchange_and_the_next_one() {
    let ex = run(
        &[
            Step::Data(C, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            Step::Data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012"),
            Step::Gap(S, 4),
            Step::Data(S, b"789HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
        ],
        5,
    );
    assert_eq!(
        summary(&ex),
        vec![
            s("GET", "/1", Some(200), 0, 10),
            s("GET", "/2", Some(200), 0, 1)
        ]
    );
    assert!(ex[0].notes.contains(&Note::Gap));
    assert!(!ex[1].notes.contains(&Note::Gap));
}

#[test]
fn a_gap_in_chunked_framing_resynchronises() {
    let ex = run(
        &[
            Step::Data(C, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            ),
            Step::Gap(S, 30),
            Step::Data(
                S,
                b"junk\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            ),
        ],
        usize::MAX,
    );
    let got = summary(&ex);
    assert_eq!(got[0].2, Some(200));
    assert_eq!(got[1], s("GET", "/2", Some(201), 0, 0));
}

#[test]
fn garbage_between_messages_is_skipped() {
    check(
        &[
            Step::Data(C, b"GET /1 HTTP/1.1\r\n\r\n\x00\x01\x02 binary junk\nGET/ bad\r\nGET /2 HTTP/1.1\r\n\r\n"),
            Step::Data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        &[s("GET", "/1", Some(200), 0, 0), s("GET", "/2", Some(200), 0, 0)],
    );
}

#[test]
fn a_megabyte_header_line_is_skipped_without_growing_memory() {
    let mut huge = b"GET /big HTTP/1.1\r\nX-Junk: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
    let steps = [
        Step::Data(C, &huge),
        Step::Data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    let (ex, ctx) = run_with(&steps, 1460, true, Config::default());
    assert_eq!(summary(&ex), vec![s("GET", "/after", Some(200), 0, 0)]);
    assert_eq!(ctx.stats.http_errors.get("head too large"), Some(&1));
}

#[test]
fn bodies_are_kept_only_up_to_the_limit_and_bombs_are_cut() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'0'; 20 << 20]).expect("write");
    let bomb = gz.finish().expect("gzip");
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    resp.extend_from_slice(&bomb);
    let config = Config {
        max_body: 4096,
        ..Config::default()
    };
    let steps = [
        Step::Data(C, b"GET /bomb HTTP/1.1\r\n\r\n"),
        Step::Data(S, &resp),
    ];
    let (ex, ctx) = run_with(&steps, 1460, true, config);
    let body = &ex[0].response.as_ref().expect("response").body;
    assert_eq!(body.wire_len, bomb.len() as u64);
    assert!(body.data.len() <= 4096);
    assert!(body.truncated);
    assert!(ex[0].notes.contains(&Note::TruncatedBody));
    assert_eq!(ctx.stats.bodies_truncated, 1);
}

#[test]
fn bogus_lengths_do_not_derail() {
    check(
        &[
            Step::Data(C, b"POST /x HTTP/1.1\r\nContent-Length: -5\r\n\r\nGET /y HTTP/1.1\r\n\r\n"),
            Step::Data(S, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        &[s("POST", "/x", Some(400), 0, 0), s("GET", "/y", Some(200), 0, 0)],
    );
    let ex = run(
        &[
            Step::Data(C, b"GET /z HTTP/1.1\r\n\r\n"),
            Step::Data(
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
            ),
        ],
        usize::MAX,
    );
    assert!(ex[0].notes.contains(&Note::Malformed));
}

#[test]
fn non_http_streams_become_opaque_at_once() {
    let steps = [
        Step::Data(C, b"SSH-2.0-OpenSSH_9.2\r\n"),
        Step::Data(S, b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n\x00\x00\x05\xdc"),
    ];
    let (ex, ctx) = run_with(&steps, usize::MAX, true, Config::default());
    assert!(ex.is_empty());
    assert_eq!(ctx.stats.non_http_flows_by_port.get(&8080), Some(&1));
    // A TLS handshake is handed to the TLS reader.
    let flow = info(true);
    let mut ctx = Ctx::new(Config::default());
    let mut conn = Connection::new();
    conn.data(
        &flow,
        C,
        1,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        &mut ctx,
    );
    assert!(conn.take_switch().is_some_and(|s| s.tls && s.client == C));
    // The HTTP/2 preface hands the connection over, with the bytes held so far.
    let info = flow;
    let mut ctx = Ctx::new(Config::default());
    let mut conn = Connection::new();
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let used = conn.data(&info, C, 1, preface, &mut ctx);
    let switch = conn.take_switch().expect("switch to HTTP/2");
    assert_eq!(switch.client, C);
    assert_eq!(&switch.buffered[0][..], &preface[..used]);
    assert!(ctx.out.is_empty());
}

#[test]
fn pipelined_heads_hold_only_their_own_bytes() {
    // 1 000 requests in one 45 KB segment: each head used to copy (and keep) the rest of
    // the segment, so 1 024 requests waiting for responses pinned 64 MiB.
    let one = b"GET /pipelined HTTP/1.1\r\nHost: a.example\r\n\r\n";
    let segment = one.repeat(1000);
    let info = info(true);
    let mut ctx = Ctx::new(Config::default());
    let mut conn = Connection::new();
    conn.data(&info, C, 1, &segment, &mut ctx);
    assert_eq!(conn.pending.len(), 1000);
    let held: usize = conn
        .pending
        .iter()
        .filter_map(|p| p.request.as_ref())
        .map(|m| m.head.raw_capacity())
        .sum();
    assert!(
        held <= 2 * segment.len(),
        "{held} bytes held for {}",
        segment.len()
    );
    // A head end split across two deliveries, at every split point, is still found.
    for cut in 1..one.len() {
        let mut ctx = Ctx::new(Config::default());
        let mut conn = Connection::new();
        conn.data(&info, C, 1, &one[..cut], &mut ctx);
        conn.data(&info, C, 2, &one[cut..], &mut ctx);
        conn.data(&info, C, 3, b"GET /next HTTP/1.1\r\n\n", &mut ctx);
        assert_eq!(conn.pending.len(), 2, "cut at {cut}");
        let first = conn.pending[0].request.as_ref().map(|m| m.head.raw().len());
        assert_eq!(first, Some(one.len()), "cut at {cut}");
    }
}

#[test]
fn partial_heads_of_many_connections_stay_within_the_shared_cap() {
    // Each connection holds a 48 KB head that never ends (under the 64 KiB head limit):
    // 200 of them held 9.6 MB whatever the per-connection caps said.
    let config = Config {
        max_held_total: 1 << 20,
        ..Config::default()
    };
    let info = info(true);
    let mut ctx = Ctx::new(config);
    let mut head = b"POST /fat HTTP/1.1\r\nHost: a.example\r\nX-Pad: ".to_vec();
    head.resize(48 * 1024, b'f');
    let mut conns: Vec<Connection> = (0..200).map(|_| Connection::new()).collect();
    for conn in &mut conns {
        for piece in head.chunks(1460) {
            conn.data(&info, C, 1, piece, &mut ctx);
        }
    }
    let held = ctx.held.load(Ordering::Relaxed);
    let all: usize = conns.iter().map(Connection::held_bytes).sum();
    assert_eq!(held, all);
    assert!(held <= (1 << 20) + 2 * 64 * 1024, "{held} bytes held");
    assert!(ctx.stats.http_errors["head dropped: shared buffer cap"] > 150);
    // Dropping the connections gives their share back.
    drop(conns);
    assert_eq!(ctx.held.load(Ordering::Relaxed), 0);

    // Bodies stop being kept past the cap, and say so.
    let mut ctx = Ctx::new(config);
    let body = vec![b'b'; 60 * 1024];
    let mut request = format!(
        "POST /big HTTP/1.1\r\nHost: a.example\r\nContent-Length: {}\r\n\r\n",
        body.len() * 2
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut conns: Vec<Connection> = (0..100).map(|_| Connection::new()).collect();
    for conn in &mut conns {
        conn.data(&info, C, 1, &request, &mut ctx);
    }
    assert!(ctx.held.load(Ordering::Relaxed) <= (1 << 20) + 2 * 64 * 1024);
    assert!(ctx.stats.http_errors["body cut: shared buffer cap"] > 50);
    for conn in &mut conns {
        conn.close(&info, &mut ctx);
    }
    assert!(ctx.stats.bodies_truncated > 50);
    assert_eq!(ctx.held.load(Ordering::Relaxed), 0);
}
