//! Inference on hostile exchanges: arbitrary conversations go through the passive HTTP/1
//! parser (bodies kept, decoding deferred), every exchange into an inventory, and the
//! inventory out as endpoints and an OpenAPI document. Targets what inference reads from
//! the wire: targets and query strings, Authorization, cookies and key headers (JWTs),
//! header values, JSON, form and multipart bodies.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Connection, Ctx};
use specter::infer::{self, Inventory, Observed};
use specter::report::{endpoints, openapi};
use specter::tcp::{FlowInfo, Side};

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
    let config = Config {
        max_body: 8192,
        max_head: 4096,
        probe_limit: 4096,
        max_pending: 16,
        defer_decoding: mode & 1 != 0,
        ..Config::default()
    };
    let mut ctx = Ctx::new(config);
    let mut conn = Connection::new();
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = ((ctl & 0x7f) as usize + 1).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        let side = if ctl & 0x80 == 0 { Side::A } else { Side::B };
        ts += 1;
        conn.data(&info, side, ts, chunk, &mut ctx);
    }
    conn.close(&info, &mut ctx);
    let mut cfg = infer::Config::default();
    cfg.template.max_literals = 4;
    cfg.endpoint.body_samples = 2;
    if mode & 2 != 0 {
        cfg.hints = infer::template::parse_hints("/a/{x*}\n/b/{y}\n/c/new").unwrap_or_default();
    }
    let mut inv = Inventory::default();
    let mut observed = Observed::default();
    for ex in ctx.out.drain(..) {
        inv.observe(&ex, &cfg, &mut observed);
    }
    let views = endpoints::views(&inv, &cfg, &endpoints::Filter::default());
    assert!(views.len() as u64 <= observed.inventoried);
    let _ = serde_json::to_string(&views);
    let _ = openapi::document(&inv, &cfg, None);
});
