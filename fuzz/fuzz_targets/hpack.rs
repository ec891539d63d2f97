//! The tolerant HPACK decoder on arbitrary header blocks, several blocks in a row so the
//! dynamic table carries state between them; decoded lists stay under the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::http2::hpack::{Decoder, MAX_LIST_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    for block in std::iter::once(data).chain(data.chunks(97)) {
        let mut total = 0usize;
        let _ = decoder.decode(block, &mut |f| {
            total += f.name.map_or(0, |n| n.len()) + f.value.map_or(0, |v| v.len()) + 32;
        });
        assert!(total <= MAX_LIST_SIZE + 70_000);
    }
});
