//! Agreement with tshark: `specter exchanges` against tshark's view of the same files
//! (`*.requests.tsv`). Every file matches exactly except those listed in
//! docs/tshark-differences.md, where tshark misses or misreads something; for those we
//! still require every request tshark found.

use std::path::Path;

use crate::util::*;

/// Files where we knowingly differ from tshark, with the reason (docs/tshark-differences.md).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("tcp/gap-in-body.pcap", "tshark gives no status to the response whose body has a gap"),
    ("tcp/out-of-order-range.pcap", "tshark loses the first 206 among reordered segments"),
    ("tcp/pipeline-with-gaps.pcap", "tshark gives no status to responses with lost segments"),
    ("tcp/rst-after-gap-snaplen.pcap", "tshark gives no status to a response cut by a gap"),
    ("formats/bigendian-fuzzed-mms.pcap", "fuzzed bytes: we read requests tshark skips; tshark cuts a Host at a NUL byte"),
    ("http2/grpc-node-two-servers.pcap", "tshark is told port 8888 is HTTP/2 and misses its CONNECT"),
    ("pipelined.pcap", "tshark pairs only the first of pipelined requests sent in one segment"),
    ("expect-100-continue.pcap", "tshark waits for an upload body that is never sent"),
];

fn known(file: &Path) -> bool {
    let p = file.to_string_lossy();
    KNOWN_DIFFERENCES.iter().any(|(name, _)| p.ends_with(name))
}

/// Compares every capture below `dir`; returns (tshark total, ours total, matched).
fn compare_all(dir: &Path) -> (usize, usize, usize) {
    let (mut t_all, mut o_all, mut m_all) = (0, 0, 0);
    let mut failures = Vec::new();
    for cap in captures_below(dir) {
        if cap.components().any(|c| c.as_os_str() == "tls") {
            continue;
        }
        let tsv = cap.with_extension("requests.tsv");
        if !tsv.exists() {
            continue;
        }
        let theirs = tshark_rows(&tsv, "h1");
        let ours = our_rows(&exchanges(&cap), "h1");
        let (t, o, m) = (theirs.values().sum::<usize>(), ours.values().sum::<usize>(), matched(&theirs, &ours));
        t_all += t;
        o_all += o;
        m_all += m;
        if known(&cap) {
            let (ts, os) = (method_and_target(&theirs), method_and_target(&ours));
            if matched(&ts, &os) != t {
                failures.push(format!("{}: a request tshark found is missing", cap.display()));
            }
        } else if m != t || m != o {
            failures.push(format!("{}: tshark {t} ours {o} matched {m}\n  tshark: {theirs:?}\n  ours: {ours:?}", cap.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    (t_all, o_all, m_all)
}

#[test]
fn http1_agrees_with_tshark_on_shared_captures() {
    let Some(dir) = shared_captures() else { return };
    let (t, o, m) = compare_all(&dir);
    let recall = m as f64 / t as f64;
    let precision = m as f64 / o as f64;
    eprintln!("h1 agreement: recall {recall:.4} precision {precision:.4} ({t} tshark requests)");
    assert!(t > 1000, "the corpus should hold over 1000 HTTP/1 requests, found {t}");
    assert!(recall >= 0.99, "recall {recall}");
    assert!(precision >= 0.99, "precision {precision}");
}

#[test]
fn http1_agrees_with_tshark_on_own_captures() {
    let dir = root().join("captures");
    let (t, o, m) = compare_all(&dir);
    assert!(t > 300, "the project's captures should hold over 300 requests, found {t}");
    eprintln!("own captures: tshark {t} ours {o} matched {m}");
}
