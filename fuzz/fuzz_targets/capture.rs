//! Whole pipeline on arbitrary bytes read as a capture file: pcap/pcapng reading,
//! decoding, reassembly and HTTP/1, all at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::pipeline::{run_capture, Config};

fuzz_target!(|data: &[u8]| {
    let mut n = 0usize;
    let (_stats, _result) = run_capture(data, Config::default(), &mut |_ex| n += 1, &mut |_| {});
});
