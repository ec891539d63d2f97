//! The NSS key log reader on arbitrary text, and the TLS record and handshake message
//! reassembly and record decryption on the same bytes: nothing may panic, bad lines are
//! counted, no record longer than the limit is handed out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::tls::cipher::{suite, Protection};
use specter::tls::handshake::Messages;
use specter::tls::keylog::{KeyLog, MAX_BAD_LINES_KEPT};
use specter::tls::record::{Records, HEADER, MAX_RECORD};

fuzz_target!(|data: &[u8]| {
    let mut log = KeyLog::new();
    let added = log.add_text(data);
    assert!(log.bad_lines.len() <= MAX_BAD_LINES_KEPT);
    assert!(log.bad <= log.lines && added <= log.lines);
    assert!(log.len() as u64 <= added);

    let mut records = Records::new();
    let mut count = 0;
    for chunk in data.chunks(7) {
        records.push(chunk, &mut |r, h, rec| {
            assert!(rec.len() <= HEADER + MAX_RECORD);
            count += 1;
            if count == 3 {
                r.skip_payloads();
            }
            let _ = h;
        });
    }
    let mut messages = Messages::default();
    messages.push(data, &mut |_, body| assert!(body.len() <= 64 * 1024));

    for id in [0x1301, 0x1302, 0x1303, 0xc02f, 0xc030, 0xcca8] {
        let Some(s) = suite(id) else { continue };
        let key = [7u8; 48];
        let p = if s.tls13 {
            Protection::tls13(s, &key[..s.hash.output_len()])
        } else {
            Protection::tls12(s, &key, &[1; 32], &[2; 32], true)
        };
        if let Some(mut p) = p {
            let mut record = data.to_vec();
            let _ = p.open(&mut record);
        }
    }
});
