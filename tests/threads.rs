//! `--threads N` and `--max-memory` on offline runs: the output does not depend on the
//! number of threads, exchange by exchange and counter by counter.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::util::{
    captures_below, pcap_header, pcap_record, root, shared_captures, specter, temp_path,
};

/// `specter exchanges --format jsonl --stats` with `--threads n`: (stdout, stderr).
fn exchanges_with(files: &[PathBuf], threads: usize, extra: &[&str]) -> (Vec<u8>, String) {
    let n = threads.to_string();
    let mut args = vec!["exchanges", "--format", "jsonl", "--stats", "--threads", &n];
    args.extend_from_slice(extra);
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.to_str().expect("utf-8 path"))
        .collect();
    args.extend(names);
    let out = specter(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.stdout, stderr)
}

/// Every capture of the repository and of the shared set, and one the `threads` fuzz
/// target found: a TLS connection whose decryption fails after its keys were found
/// (its line took the place it had before decryption, after later exchanges had gone out).
fn all_captures() -> Vec<PathBuf> {
    let mut files = captures_below(&root().join("captures"));
    files.push(root().join("tests/fixtures/threads-tls-gives-up-keys.pcapng"));
    if let Some(shared) = shared_captures() {
        files.extend(captures_below(&shared));
    }
    files
}

#[test]
fn every_capture_gives_the_same_exchanges_and_counters_on_one_two_and_four_threads() {
    for file in all_captures() {
        let one = exchanges_with(std::slice::from_ref(&file), 1, &[]);
        assert!(!one.0.is_empty() || one.1.contains("exchanges"), "{file:?}");
        for threads in [2, 4] {
            let many = exchanges_with(std::slice::from_ref(&file), threads, &[]);
            assert!(
                one.0 == many.0,
                "{}: exchanges differ with {threads} threads",
                file.display()
            );
            assert_eq!(
                one.1,
                many.1,
                "{}: counters, {threads} threads",
                file.display()
            );
        }
    }
}

/// A small deterministic generator (xorshift), so the capture below is the same each run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One connection of the interleaved capture: its packets, in order.
struct Conn {
    packets: Vec<(bool, u8, Vec<u8>)>,
    next: usize,
    client_seq: u32,
    server_seq: u32,
    port: u16,
}

/// Writes a capture of `conns` HTTP/1.1 connections whose packets are interleaved at
/// random: keep-alive and pipelined requests, heads split over segments, some
/// connections reset, some never closed, some silent for longer than the idle timeout
/// (5 minutes) before they go on, and client ports reused by later connections.
fn write_interleaved(path: &Path, conns: usize, seed: u64) {
    const SYN: u8 = 0x02;
    const SYN_ACK: u8 = 0x12;
    const DATA: u8 = 0x18;
    const FIN: u8 = 0x11;
    const RST: u8 = 0x04;
    let mut rng = Rng(seed);
    let mut all: Vec<Conn> = (0..conns)
        .map(|i| {
            let mut packets = vec![(true, SYN, vec![]), (false, SYN_ACK, vec![])];
            let requests = 1 + rng.below(4);
            let pipelined = rng.below(4) == 0;
            let mut pending = Vec::new();
            for r in 0..requests {
                let req = format!(
                    "GET /api/v1/users/{}/orders?page={r} HTTP/1.1\r\nHost: shop.test\r\n\r\n",
                    rng.below(1000)
                )
                .into_bytes();
                let split = 1 + rng.below(req.len() as u64 - 1) as usize;
                packets.push((true, DATA, req[..split].to_vec()));
                packets.push((true, DATA, req[split..].to_vec()));
                let body = format!("{{\"id\":{i},\"n\":{r}}}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes();
                if pipelined {
                    pending.push(resp);
                } else {
                    packets.push((false, DATA, resp));
                }
            }
            for resp in pending {
                packets.push((false, DATA, resp));
            }
            match rng.below(5) {
                0 => packets.push((true, RST, vec![])),
                1 => {}
                _ => {
                    packets.push((true, FIN, vec![]));
                    packets.push((false, FIN, vec![]));
                }
            }
            Conn {
                packets,
                next: 0,
                client_seq: rng.next() as u32,
                server_seq: rng.next() as u32,
                // Few ports: later connections reuse earlier ones' (port reuse).
                port: 40_000 + rng.below(conns as u64 / 3 + 1) as u16,
            }
        })
        .collect();

    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    out.write_all(&pcap_header()).expect("write");

    let mut usec: u64 = 1_700_000_000_000_000;
    // Connections start in order, a few at a time, and go on interleaved.
    let mut active: Vec<usize> = Vec::new();
    let mut started = 0;
    loop {
        while started < all.len() && (active.len() < 12 || rng.below(3) == 0) {
            active.push(started);
            started += 1;
        }
        if active.is_empty() {
            break;
        }
        let pick = rng.below(active.len() as u64) as usize;
        let c = &mut all[active[pick]];
        let (from_client, flags, payload) = c.packets[c.next].clone();
        c.next += 1;
        // Now and then the whole capture goes quiet for six minutes: open
        // connections time out, and those that go on afterwards start anew (midstream).
        usec += if rng.below(400) == 0 {
            360_000_000
        } else {
            1 + rng.below(2000)
        };
        let (src, dst, sp, dp) = if from_client {
            ([10, 1, 0, 5], [10, 2, 0, 9], c.port, 80)
        } else {
            ([10, 2, 0, 9], [10, 1, 0, 5], 80, c.port)
        };
        let (seq, ack) = if from_client {
            (c.client_seq, c.server_seq)
        } else {
            (c.server_seq, c.client_seq)
        };
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        let b = match flags {
            SYN => b.syn(),
            SYN_ACK => b.syn().ack(ack.wrapping_add(1)),
            FIN => b.fin().ack(ack),
            RST => b.rst(),
            _ => b.psh().ack(ack),
        };
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).expect("build packet");
        let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            c.client_seq = c.client_seq.wrapping_add(advance);
        } else {
            c.server_seq = c.server_seq.wrapping_add(advance);
        }
        out.write_all(&pcap_record(usec, &frame)).expect("write");
        if c.next == c.packets.len() {
            active.swap_remove(pick);
        }
    }
    out.flush().expect("flush");
}

#[test]
fn interleaved_connections_with_idle_timeouts_come_out_the_same_on_any_number_of_threads() {
    let file = temp_path("interleaved.pcap");
    write_interleaved(&file, 3000, 0x5eed);
    let (one, stats) = exchanges_with(std::slice::from_ref(&file), 1, &[]);
    let lines = one.iter().filter(|&&b| b == b'\n').count();
    assert!(lines > 5000, "{lines} exchanges");
    // The capture does what it is for: flows time out, ports are reused.
    let counter = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
    };
    assert!(counter("flows timed out") > 0, "{stats}");
    assert!(counter("flows caught midstream (no SYN)") > 0, "{stats}");
    for threads in [2, 3, 7] {
        let (many, many_stats) = exchanges_with(std::slice::from_ref(&file), threads, &[]);
        assert!(one == many, "exchanges differ with {threads} threads");
        assert_eq!(stats, many_stats, "{threads} threads");
    }
}

#[test]
fn the_inventory_is_the_same_on_one_and_two_threads() {
    // Two inventories with the same salt: one made, then copied.
    let one = temp_path("threads-one.db");
    let two = temp_path("threads-two.db");
    let seed = root().join("captures/websocket.pcap");
    let out = specter(&[
        "analyze",
        "--db",
        one.to_str().expect("path"),
        seed.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(&one, &two).expect("copy inventory");
    let files = all_captures();
    for (db, threads) in [(&one, "1"), (&two, "2")] {
        let mut args = vec![
            "analyze",
            "--db",
            db.to_str().expect("path"),
            "--threads",
            threads,
        ];
        args.extend(files.iter().map(|f| f.to_str().expect("path")));
        let out = specter(&args);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for view in [
        vec!["endpoints", "--format", "json"],
        vec!["export-openapi"],
    ] {
        let show = |db: &Path| {
            let mut args = view.clone();
            args.extend(["--db", db.to_str().expect("path")]);
            let out = specter(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let (a, b) = (show(&one), show(&two));
        assert!(a.len() > 10_000, "{view:?}: {} bytes", a.len());
        assert!(a == b, "{view:?} differs between 1 and 2 threads");
    }
}

#[test]
fn max_memory_bounds_an_offline_run_and_is_checked() {
    let file = root().join("captures/load-wrk.pcap");
    let (plain, _) = exchanges_with(std::slice::from_ref(&file), 2, &[]);
    let (bounded, stats) = exchanges_with(std::slice::from_ref(&file), 2, &["--max-memory", "32M"]);
    // 300 requests on 8 connections fit in the smallest budget.
    assert!(plain == bounded, "{stats}");
    for (value, why) in [("1M", "at least 32 MiB"), ("lots", "--max-memory")] {
        let out = specter(&[
            "exchanges",
            "--max-memory",
            value,
            file.to_str().expect("path"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{value}: {stderr}");
    }
    let out = specter(&["exchanges", "--threads", "0", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
}
