//! The passive HTTP/1 parser on arbitrary conversations: the input is split into chunks,
//! each for one side (client or server), some of them gaps, so pipelining, framing,
//! resynchronisation and gap handling all see hostile input.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Connection, Ctx};
use specter::tcp::{FlowInfo, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let info = FlowInfo {
        id: 0,
        at: 0,
        addrs: [(IpAddr::from([10, 0, 0, 1]), 40000), (IpAddr::from([10, 0, 0, 2]), 80)],
        context: 0,
        client: if mode & 1 == 0 { Some(Side::A) } else { None },
        first_ts: 0,
        last_ts: 0,
    };
    let config = Config {
        max_body: if mode & 2 == 0 { 0 } else { 4096 },
        max_head: 1024,
        probe_limit: 2048,
        max_pending: 8,
        defer_decoding: mode & 4 != 0,
        ..Config::default()
    };
    let mut ctx = Ctx::new(config);
    let mut conn = Connection::new();
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = ((ctl & 0x3f) as usize + 1).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        let side = if ctl & 0x80 == 0 { Side::A } else { Side::B };
        ts += 1;
        if ctl & 0x40 != 0 && chunk.first().is_some_and(|b| *b < 8) {
            conn.gap(&info, side, chunk.len() as u64, &mut ctx);
        } else {
            conn.data(&info, side, ts, chunk, &mut ctx);
        }
        assert!(ctx.out.len() as u64 <= ctx.stats.http_requests + ctx.stats.http_responses);
    }
    conn.close(&info, &mut ctx);
    assert!(ctx.open.is_empty(), "every begun message is finished or released");
});
