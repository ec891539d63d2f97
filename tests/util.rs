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
