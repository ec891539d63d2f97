//! The TLS handshake parsers (ClientHello with JA4, ServerHello, Certificate) on arbitrary
//! bodies, and the TLS connection reader on arbitrary record streams from both sides.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Ctx};
use specter::tcp::{FlowInfo, Side};
use specter::tls::{hello, Connection};

fuzz_target!(|data: &[u8]| {
    let _ = hello::client_hello(data);
    let _ = hello::server_hello(data);
    let _ = hello::certificate(data);
    let mut ctx = Ctx::new(Config::default());
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
    let half = data.len() / 2;
    conn.data(&info, Side::A, 1, &data[..half], &mut ctx);
    conn.data(&info, Side::B, 2, &data[half..], &mut ctx);
});
