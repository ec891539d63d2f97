//! Criterion benchmarks, one group per pipeline layer, on real captures held in memory:
//! the project's `captures/load-wrk.pcap` (wrk against a JSON API, keep-alive) and, when
//! present, `BENCH_CAPTURE` (e.g. the first 20 MB of the capture `benches/make-capture.sh`
//! makes). Throughput is in bytes of capture per second.
//!
//! The `source` group also reads the same bytes with pcap-file 2.0, the alternative to
//! pcap-parser that issue 3 asked to measure.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use specter::decode::Decoder;
use specter::pipeline::{run_capture, Config};
use specter::source::read_capture;
use specter::stats::Stats;
use specter::tcp::{FlowEvent, FlowInfo, FlowTable, Limits, StreamApp};

fn inputs() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let own = root.join("captures/load-wrk.pcap");
    if let Ok(bytes) = std::fs::read(&own) {
        out.push(("load-wrk".to_string(), bytes));
    }
    if let Some(path) = std::env::var_os("BENCH_CAPTURE") {
        if let Ok(bytes) = std::fs::read(&path) {
            let mut bytes = bytes;
            bytes.truncate(64 << 20);
            out.push(("bench-capture".to_string(), bytes));
        }
    }
    out
}

/// Counts bytes only: the TCP layer's cost without HTTP.
#[derive(Default)]
struct CountBytes;

impl StreamApp for CountBytes {
    type Ctx = u64;
    fn on_event(&mut self, _: &FlowInfo, event: FlowEvent<'_>, ctx: &mut u64) {
        if let FlowEvent::Data { bytes, .. } = event {
            *ctx += bytes.len() as u64;
        }
    }
}

fn layers(c: &mut Criterion) {
    for (name, bytes) in inputs() {
        let mut g = c.benchmark_group(format!("layers/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.sample_size(10);

        g.bench_function("source/pcap-parser", |b| {
            b.iter(|| {
                let mut n = 0u64;
                let _ = read_capture(
                    &bytes[..],
                    |p| n += p.data.len() as u64,
                    |_| {},
                    &mut |_| {},
                );
                black_box(n)
            })
        });
        g.bench_function("source/pcap-file", |b| {
            b.iter(|| {
                let mut n = 0u64;
                if let Ok(mut r) = pcap_file::pcap::PcapReader::new(&bytes[..]) {
                    while let Some(Ok(p)) = r.next_packet() {
                        n += p.data.len() as u64;
                    }
                }
                black_box(n)
            })
        });
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut d = Decoder::default();
                let mut stats = Stats::default();
                let mut n = 0u64;
                let _ = read_capture(
                    &bytes[..],
                    |p| {
                        d.decode(p.ts, p.linktype, p.data, &mut stats, &mut |s, _| {
                            n += s.payload.len() as u64
                        })
                    },
                    |_| {},
                    &mut |_| {},
                );
                black_box(n)
            })
        });
        g.bench_function("tcp", |b| {
            b.iter(|| {
                let mut d = Decoder::default();
                let mut stats = Stats::default();
                let mut table: FlowTable<CountBytes> = FlowTable::new(Limits::default());
                let mut n = 0u64;
                let _ = read_capture(
                    &bytes[..],
                    |p| {
                        d.decode(p.ts, p.linktype, p.data, &mut stats, &mut |s, _| {
                            table.segment(s, &mut n)
                        })
                    },
                    |_| {},
                    &mut |_| {},
                );
                table.finish(&mut n);
                black_box(n)
            })
        });
        g.bench_function("http1 (exchanges)", |b| {
            b.iter(|| {
                let mut n = 0u64;
                let config = Config {
                    http: specter::http1::Config {
                        max_body: 0,
                        ..Default::default()
                    },
                    ..Config::default()
                };
                let _ = run_capture(&bytes[..], config, &mut |_| n += 1, &mut |_| {});
                black_box(n)
            })
        });
        g.bench_function("http1 with bodies (64 KiB kept, decoded)", |b| {
            b.iter(|| {
                let mut n = 0u64;
                let _ = run_capture(&bytes[..], Config::default(), &mut |_| n += 1, &mut |_| {});
                black_box(n)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, layers);
criterion_main!(benches);
