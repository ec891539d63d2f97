//! The whole pipeline on arbitrary bytes read as a capture, on one thread and on three:
//! the exchanges and the counters must be the same (`--threads` promises it). The same
//! again packet by packet, as the live sensor drives it: one `Analyzer` against an
//! `Engine` over three shards, ticked every few packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::exchange::Exchange;
use specter::pipeline::engine::Engine;
use specter::pipeline::{run_capture_with_keys, Analyzer, Config};
use specter::source::{read_capture, Packet};

fn run(data: &[u8], threads: usize) -> (Vec<Exchange>, String, bool) {
    let mut out = Vec::new();
    let (stats, result) = run_capture_with_keys(
        data,
        Config::default(),
        None,
        threads,
        &mut |ex| out.push(ex.clone()),
        &mut |_| {},
    );
    (out, stats.to_string(), result.is_ok())
}

/// Packets fed one at a time to `packet`; `tick` after every `every` of them.
fn live(
    data: &[u8],
    every: usize,
    mut packet: impl FnMut(&Packet<'_>, &mut dyn FnMut(&Exchange)),
    mut tick: impl FnMut(&mut dyn FnMut(&Exchange)),
) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut n = 0;
    let _ = read_capture(
        data,
        |p| {
            packet(p, &mut |ex| out.push(ex.clone()));
            n += 1;
            if n % every == 0 {
                tick(&mut |ex| out.push(ex.clone()));
            }
        },
        |_| {},
        &mut |_| {},
    );
    out
}

fuzz_target!(|data: &[u8]| {
    let one = run(data, 1);
    let three = run(data, 3);
    assert!(one == three, "one thread and three differ");

    let every = data.first().map_or(1, |b| usize::from(*b % 64) + 1);
    let mut analyzer = Analyzer::new(Config::default());
    let mut want = live(data, every, |p, sink| analyzer.packet(p, sink), |_| {});
    analyzer.finish(&mut |ex| want.push(ex.clone()));
    let Ok(mut engine) = Engine::new(Config::default(), None, 3) else {
        return;
    };
    let mut got = {
        let engine = std::cell::RefCell::new(&mut engine);
        live(
            data,
            every,
            |p, sink| engine.borrow_mut().packet(p, sink),
            |sink| engine.borrow_mut().tick(sink),
        )
    };
    engine.finish(&mut |ex| got.push(ex.clone()));
    assert!(want == got, "an analyzer and an engine differ");
    assert_eq!(analyzer.stats().to_string(), engine.stats().to_string());
});
