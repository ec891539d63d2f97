//! The whole pipeline on arbitrary bytes read as a capture, on one thread and on three:
//! the exchanges and the counters must be the same (`--threads` promises it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::exchange::Exchange;
use specter::pipeline::{run_capture_with_keys, Config};

fn run(data: &[u8], threads: usize) -> (Vec<Exchange>, String, bool) {
    let mut out = Vec::new();
    let (stats, result) = run_capture_with_keys(
        data,
        Config::default(),
        None,
        threads,
        &mut |ex| out.push(ex),
        &mut |_| {},
    );
    (out, stats.to_string(), result.is_ok())
}

fuzz_target!(|data: &[u8]| {
    let one = run(data, 1);
    let three = run(data, 3);
    assert!(one == three, "one thread and three differ");
});
