//! The passive HTTP/2 parser (frame reader, HPACK, streams) on arbitrary conversations,
//! in the same chunked two-sided format as the http1 target: first byte picks the mode
//! (prior knowledge or joined midstream), then control bytes split sides and gaps.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Ctx};
use specter::http2::Connection;
use specter::tcp::{FlowEvent, FlowInfo, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let info = FlowInfo {
        id: 0,
        at: 0,
        addrs: [(IpAddr::from([10, 0, 0, 1]), 40000), (IpAddr::from([10, 0, 0, 2]), 80)],
        context: 0,
        client: Some(Side::A),
        first_ts: 0,
        last_ts: 0,
    };
    let config = Config { max_body: if mode & 2 == 0 { 0 } else { 4096 }, ..Config::default() };
    let mut ctx = Ctx::new(config);
    let mut conn = Connection::new(Side::A, mode & 1 == 1, None, None);
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = ((ctl & 0x3f) as usize + 1).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        let side = if ctl & 0x80 == 0 { Side::A } else { Side::B };
        ts += 1;
        if ctl & 0x40 != 0 && chunk.first().is_some_and(|b| *b < 8) {
            conn.on_event(&info, FlowEvent::Gap { side, ts, len: chunk.len() as u64 }, &mut ctx);
        } else {
            conn.data(&info, side, ts, chunk, &mut ctx);
        }
    }
    conn.on_event(&info, FlowEvent::Close { ts, reason: specter::tcp::CloseReason::EndOfInput }, &mut ctx);
    assert!(ctx.open.is_empty(), "every stream is emitted");
});
