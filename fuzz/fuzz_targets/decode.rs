//! Link, IP, tunnel and fragment decoding of arbitrary frames. The first byte picks the
//! link type, so every decoder is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::decode::Decoder;
use specter::stats::Stats;

const LINKTYPES: [u32; 13] = [0, 1, 12, 14, 101, 105, 108, 113, 127, 228, 229, 239, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let linktype = LINKTYPES[pick as usize % LINKTYPES.len()];
    let mut decoder = Decoder::default();
    let mut stats = Stats::default();
    // Feed the frame twice so fragment sets can complete across packets.
    for ts in [0, 1] {
        decoder.decode(ts, linktype, rest, &mut stats, &mut |seg, _| {
            assert!(seg.payload.len() <= rest.len() + 65_535);
        });
    }
});
