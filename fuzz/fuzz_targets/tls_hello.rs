//! The TLS handshake parsers (ClientHello with JA4, ServerHello, Certificate) on arbitrary
//! bodies, and the TLS connection reader on arbitrary record streams from both sides.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::http1::{Config, Ctx};
use specter::tcp::Side;
use specter::tls::{hello, Connection};

fuzz_target!(|data: &[u8]| {
    let _ = hello::client_hello(data);
    let _ = hello::server_hello(data);
    let _ = hello::certificate(data);
    let mut ctx = Ctx::new(Config::default());
    let mut conn = Connection::new(Side::A, 0, &mut ctx);
    let half = data.len() / 2;
    conn.data(Side::A, 1, &data[..half]);
    conn.data(Side::B, 2, &data[half..]);
});
