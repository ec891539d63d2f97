//! The decrypting TLS connection on hostile record streams: the input starts with a key log
//! (u16 length, then its text; bit 15 of the length: the keys come late, as to a sensor
//! re-reading its key log, at the first chunk with bit 5 set or after the close), then
//! chunks for either side (control byte: bit 7 the side, bit 6 a gap; then a u16 length). Seeds are real TLS 1.2 and 1.3 connections with their
//! keys, so mutations reach the record layer, the key schedule, the decrypted handshake
//! (EncryptedExtensions, Finished, KeyUpdate) and the HTTP parsers behind it.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Ctx};
use specter::tcp::{CloseReason, FlowEvent, FlowInfo, Side};
use specter::tls::{retry_parked, Connection};

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let len = u16::from_be_bytes(*len);
    let late = len & 0x8000 != 0;
    let (keylog, mut rest) = rest.split_at(((len & 0x7fff) as usize).min(rest.len()));
    let mut ctx = Ctx::new(Config {
        max_body: 4096,
        key_wait_bytes: if late { 64 * 1024 } else { 0 },
        ..Config::default()
    });
    let mut keys_in = !late;
    if keys_in {
        ctx.keys.embedded.add_text(keylog);
    }
    let info = FlowInfo {
        id: 0,
        at: 0,
        addrs: [(IpAddr::from([10, 0, 0, 1]), 40000), (IpAddr::from([10, 0, 0, 2]), 443)],
        context: 0,
        client: Some(Side::A),
        first_ts: 0,
        last_ts: 0,
    };
    let mut conn = Connection::new(&info, Side::A, 0, &mut ctx);
    let mut ts = 0;
    while let Some((&[ctl, hi, lo], tail)) = rest.split_first_chunk::<3>() {
        let n = (u16::from_be_bytes([hi, lo]) as usize).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        let side = if ctl & 0x80 == 0 { Side::A } else { Side::B };
        ts += 1;
        let event = if ctl & 0x40 != 0 {
            FlowEvent::Gap { side, ts, len: n as u64 }
        } else {
            FlowEvent::Data { side, ts, bytes: chunk }
        };
        conn.on_event(&info, event, &mut ctx);
        if !keys_in && ctl & 0x20 != 0 {
            keys_in = true;
            ctx.keys.embedded.add_text(keylog);
            retry_parked(&mut ctx, 0);
        }
    }
    conn.on_event(&info, FlowEvent::Close { ts, reason: CloseReason::Fin }, &mut ctx);
    if !keys_in {
        ctx.keys.embedded.add_text(keylog);
        retry_parked(&mut ctx, 0);
    }
    retry_parked(&mut ctx, i64::MAX);
    assert!(ctx.parked.is_empty(), "no connection waits past the end");
    assert!(ctx.open.is_empty(), "every begun exchange is finished or released");
});
