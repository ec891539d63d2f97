//! TCP reassembly under arbitrary segment streams: the input is read as a list of
//! segments (side, flags, sequence number, length) carving payload from the input itself.
//! Checks that buffered bytes stay under the cap and delivered bytes never exceed sent.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use specter::decode::TcpSegment;
use specter::tcp::{FlowEvent, FlowInfo, FlowTable, Limits, StreamApp};

#[derive(Default)]
struct Count;

impl StreamApp for Count {
    type Ctx = (u64, u64);
    fn on_event(&mut self, _info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut (u64, u64)) {
        match event {
            FlowEvent::Data { bytes, .. } => ctx.0 += bytes.len() as u64,
            FlowEvent::Gap { len, .. } => ctx.1 += len,
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_flows: 4, max_buffer_per_direction: 4096, ..Limits::default() };
    let mut table: FlowTable<Count> = FlowTable::new(limits);
    let mut ctx = (0u64, 0u64);
    let mut sent = 0u64;
    let mut at = 0;
    let mut ts = 0i64;
    while at + 8 <= data.len() {
        let h = &data[at..at + 8];
        at += 8;
        let len = (h[6] as usize) * 4;
        let payload = &data[at.min(data.len())..(at + len).min(data.len())];
        at += payload.len();
        let client = (IpAddr::from([10, 0, 0, 1]), 1000 + (h[0] & 3) as u16);
        let server = (IpAddr::from([10, 0, 0, 2]), 80);
        let (src, dst) = if h[0] & 0x80 != 0 { (server, client) } else { (client, server) };
        let seq = u32::from_be_bytes([h[2], h[3], h[4], h[5]]).wrapping_mul(0x0101);
        ts += h[7] as i64 * 1_000_000_000;
        sent += payload.len() as u64;
        let seg = TcpSegment {
            ts,
            src,
            dst,
            context: 0,
            seq,
            ack: seq.rotate_left(7),
            flags: h[1] & 0x17,
            payload,
            missing: (h[7] & 0x0f) as u32,
        };
        table.segment(&seg, &mut ctx);
        assert!(table.len() <= 4);
    }
    table.finish(&mut ctx);
    assert!(ctx.0 <= sent);
});
