//! The diff on hostile specs and hostile traffic: the input is a spec's text, a NUL byte,
//! then a conversation for the passive HTTP/1 parser. The spec's paths become path hints
//! on the inventory's trees and are matched segment by segment against what the traffic
//! made; every report format is then written.
#![no_main]

use std::net::IpAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use specter::diff::{self, Options, Traffic};
use specter::http1::{Config, Connection, Ctx};
use specter::infer::{self, Inventory, Observed};
use specter::report::findings::{self, ReportFormat};
use specter::tcp::{FlowInfo, Side};

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else { return };
    let (text, mut rest) = (&data[..nul], &data[nul + 1..]);
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok((spec, _)) = specter::spec::parse(text, Path::new("fuzz.yaml")) else { return };
    let info = FlowInfo {
        id: 0,
        at: 0,
        addrs: [(IpAddr::from([10, 0, 0, 1]), 40000), (IpAddr::from([10, 0, 0, 2]), 80)],
        context: 0,
        client: Some(Side::A),
        first_ts: 0,
        last_ts: 0,
    };
    let mut ctx = Ctx::new(Config {
        max_body: 8192,
        max_head: 4096,
        probe_limit: 4096,
        max_pending: 16,
        defer_decoding: true,
        ..Config::default()
    });
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
    let mut inv = Inventory::default();
    let mut observed = Observed::default();
    for ex in ctx.out.drain(..) {
        inv.observe(&ex, &cfg, &mut observed);
    }
    let report = diff::diff(
        inv,
        &cfg,
        std::slice::from_ref(&spec),
        Vec::new(),
        &Traffic::default(),
        &Options { all_hosts: true, generated_at: "2026-01-01T00:00:00Z".into() },
    );
    assert!(report.endpoints.len() as u64 <= observed.inventoried);
    for format in [
        ReportFormat::Text,
        ReportFormat::Json,
        ReportFormat::Markdown,
        ReportFormat::Sarif,
        ReportFormat::Junit,
        ReportFormat::Html,
    ] {
        let _ = findings::write(&report, format, &mut std::io::sink(), false);
    }
});
