//! Helpers shared by the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/captures`, or None (with a printed reason) when it is absent. Under CI it
/// must be present.
pub fn shared_captures() -> Option<PathBuf> {
    let dir = root().join("../shared/captures");
    if dir.join("MANIFEST.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {} is missing", dir.display());
    }
    eprintln!(
        "skipping: {} not found (the shared real captures)",
        dir.display()
    );
    None
}

/// Runs `specter` with arguments.
pub fn specter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(args)
        .output()
        .expect("run specter")
}

/// Runs `specter exchanges --format jsonl FILE` and parses the lines.
pub fn exchanges(file: &Path) -> Vec<serde_json::Value> {
    let out = specter(&[
        "exchanges",
        "--format",
        "jsonl",
        file.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l}: {e}", file.display()))
        })
        .collect()
}

/// A request as both tools name it: (method, host, target, status).
pub type Row = (String, String, String, String);

/// Counts of rows, a multiset.
pub type Rows = HashMap<Row, usize>;

/// tshark's requests of one protocol from a `*.requests.tsv`.
pub fn tshark_rows(tsv: &Path, proto: &str) -> Rows {
    let text = std::fs::read_to_string(tsv).unwrap_or_default();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name);
    let (p, m, h, u, s) = (
        col("proto"),
        col("method"),
        col("host"),
        col("uri"),
        col("status"),
    );
    let mut rows = Rows::new();
    for line in lines {
        let c: Vec<&str> = line.split('\t').collect();
        let get = |i: Option<usize>| i.and_then(|i| c.get(i)).copied().unwrap_or("").to_string();
        if get(p) != proto || get(m).is_empty() {
            continue;
        }
        *rows
            .entry((get(m), get(h).trim().to_lowercase(), get(u), get(s)))
            .or_default() += 1;
    }
    rows
}

/// Our requests of one protocol, as rows.
pub fn our_rows(lines: &[serde_json::Value], proto: &str) -> Rows {
    let mut rows = Rows::new();
    for e in lines {
        if e["proto"] != proto || e["method"].is_null() {
            continue;
        }
        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let status = e["status"]
            .as_u64()
            .map(|v| v.to_string())
            .unwrap_or_default();
        *rows
            .entry((
                s("method"),
                s("host").trim().to_lowercase(),
                s("target"),
                status,
            ))
            .or_default() += 1;
    }
    rows
}

/// Size of the multiset intersection.
pub fn matched(a: &Rows, b: &Rows) -> usize {
    a.iter()
        .map(|(k, n)| (*n).min(*b.get(k).unwrap_or(&0)))
        .sum()
}

/// Keeps only method and target of every row.
pub fn method_and_target(rows: &Rows) -> Rows {
    let mut out = Rows::new();
    for ((m, _, t, _), n) in rows {
        *out.entry((m.clone(), String::new(), t.clone(), String::new()))
            .or_default() += n;
    }
    out
}

/// Every capture file below `dir`, sorted, skipping the TLS folder (needs keys).
pub fn captures_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The global header of a classic pcap: v2.4, microseconds, snaplen 262144, Ethernet.
pub fn pcap_header() -> Vec<u8> {
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&262_144u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    hdr
}

/// One classic pcap record: the frame captured whole at `usec` microseconds.
pub fn pcap_record(usec: u64, frame: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(16 + frame.len());
    rec.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
    rec.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
    rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    rec.extend_from_slice(frame);
    rec
}

/// Writes a classic pcap (Ethernet) of HTTP conversations over real TCP framing: each
/// conversation is one connection (handshake, the request and response bytes in
/// segments of at most 1400 bytes, FIN) from its own client port to 10.0.0.9:80. Used to
/// feed the whole binary hostile or huge input that no server would produce on demand.
pub fn write_http_pcap(path: &Path, conversations: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = std::io::BufWriter::new(file);
    // Global header: magic, v2.4, snaplen 262144, LINKTYPE_ETHERNET.
    w.write_all(&pcap_header()).expect("write");
    let mut usec: u64 = 1_700_000_000_000_000;
    let mut packet = |w: &mut std::io::BufWriter<std::fs::File>,
                      from_client: bool,
                      port: u16,
                      seq: u32,
                      ack: u32,
                      flags: u8,
                      payload: &[u8]| {
        let (src, dst, sp, dp) = if from_client {
            ([10, 0, 0, 5], [10, 0, 0, 9], port, 80)
        } else {
            ([10, 0, 0, 9], [10, 0, 0, 5], 80, port)
        };
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        let b = match flags {
            0x02 => b.syn(),
            0x12 => b.syn().ack(ack),
            0x11 => b.fin().ack(ack),
            _ => b.psh().ack(ack),
        };
        let mut buf = Vec::with_capacity(payload.len() + 64);
        b.write(&mut buf, payload).expect("build packet");
        usec += 10;
        w.write_all(&pcap_record(usec, &buf)).expect("write");
    };
    for (i, (req, resp)) in conversations.into_iter().enumerate() {
        let port = 1024 + (i % 60_000) as u16;
        let (mut c, mut s) = (1000u32.wrapping_add(i as u32), 5000u32);
        packet(&mut w, true, port, c, 0, 0x02, &[]);
        packet(&mut w, false, port, s, c + 1, 0x12, &[]);
        c += 1;
        s += 1;
        for chunk in req.chunks(1400) {
            packet(&mut w, true, port, c, s, 0x18, chunk);
            c = c.wrapping_add(chunk.len() as u32);
        }
        for chunk in resp.chunks(1400) {
            packet(&mut w, false, port, s, c, 0x18, chunk);
            s = s.wrapping_add(chunk.len() as u32);
        }
        packet(&mut w, true, port, c, s, 0x11, &[]);
        packet(&mut w, false, port, s, c + 1, 0x11, &[]);
    }
    w.flush().expect("flush");
}

/// A fresh temporary path for this test process.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("specter-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Runs `specter endpoints --format json` on an inventory and returns the endpoints.
pub fn endpoints_json(db: &Path) -> Vec<serde_json::Value> {
    let out = specter(&[
        "endpoints",
        "--format",
        "json",
        "--db",
        db.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("endpoints json");
    v["endpoints"].as_array().cloned().unwrap_or_default()
}

/// A system tool's path, or None with a printed reason; under CI it must be installed.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {name} is not installed (.ci/run installs it)");
        }
        eprintln!("skipping: {name} not found");
    }
    found
}

/// Traffic of an API that puts a format extension on ids (Rails, Twitter v1.1):
/// `GET /api/v1/orders/100000.json` ... `100029.json`, two `/api/v1/orders/{n}` without
/// one, `/api/v1/users/{n}.json` and a `.xml`, each answered with a small JSON body.
pub fn extension_conversations() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut targets: Vec<String> = (100_000..100_030)
        .map(|i| format!("/api/v1/orders/{i}.json"))
        .collect();
    targets.extend(["/api/v1/orders/7".into(), "/api/v1/orders/8".into()]);
    targets.extend((1..=5).map(|i| format!("/api/v1/users/{i}.json")));
    targets.push("/api/v1/users/6.xml".into());
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let body = format!("{{\"id\":{i},\"total\":{}.5}}", i * 3);
            (
                format!("GET {t} HTTP/1.1\r\nHost: api.ext.test\r\n\r\n").into_bytes(),
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )
        })
        .collect()
}
