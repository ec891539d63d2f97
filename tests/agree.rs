//! Agreement with tshark: `specter exchanges` against tshark's view of the same files
//! (`*.requests.tsv`). Every file matches exactly except those listed in
//! docs/tshark-differences.md, where tshark misses or misreads something; for those we
//! still require every request tshark found.

use std::path::Path;

use crate::util::*;

/// Files where we knowingly differ from tshark in HTTP/1 rows, with the reason
/// (docs/tshark-differences.md).
const KNOWN_H1_DIFFERENCES: &[(&str, &str)] = &[
    (
        "tcp/gap-in-body.pcap",
        "tshark gives no status to the response whose body has a gap",
    ),
    (
        "tcp/out-of-order-range.pcap",
        "tshark loses the first 206 among reordered segments",
    ),
    (
        "tcp/pipeline-with-gaps.pcap",
        "tshark gives no status to responses with lost segments",
    ),
    (
        "tcp/rst-after-gap-snaplen.pcap",
        "tshark gives no status to a response cut by a gap",
    ),
    (
        "formats/bigendian-fuzzed-mms.pcap",
        "fuzzed bytes: we read requests tshark skips; tshark cuts a Host at a NUL byte",
    ),
    (
        "http2/grpc-node-two-servers.pcap",
        "tshark is told port 8888 is HTTP/2 and misses its CONNECT",
    ),
    (
        "encap/ipv6-atomic-fragment.pcap",
        "HTTP/0.9 requests; tshark skips records out of time order",
    ),
    (
        "pipelined.pcap",
        "tshark pairs only the first of pipelined requests sent in one segment",
    ),
    (
        "expect-100-continue.pcap",
        "tshark waits for an upload body that is never sent",
    ),
];

/// The same for HTTP/2 rows.
const KNOWN_H2_DIFFERENCES: &[(&str, &str)] = &[
    (
        "http2/h2c-upgrade-deflate.pcap",
        "tshark shows the upgraded stream 1 without its request",
    ),
    (
        "http2/h2c-upgrade-mixed-h1.pcap",
        "tshark shows the upgraded stream 1 without its request",
    ),
    (
        "http2/nghttp2-null-linktype.pcap",
        "tshark cannot decode the client's HEADERS of stream 13",
    ),
];

fn known(file: &Path, proto: &str) -> bool {
    let p = file.to_string_lossy();
    let list = if proto == "h1" {
        KNOWN_H1_DIFFERENCES
    } else {
        KNOWN_H2_DIFFERENCES
    };
    list.iter().any(|(name, _)| p.ends_with(name))
}

/// Totals over a set of captures.
#[derive(Debug, Default)]
struct Totals {
    /// tshark's requests, ours, and both, over every file.
    tshark: usize,
    ours: usize,
    matched: usize,
    /// Ours and both, over files without a documented tshark shortcoming.
    ours_clean: usize,
    matched_clean: usize,
}

/// Compares every capture below `dir` for one protocol.
fn compare_all(dir: &Path, proto: &str) -> Totals {
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    for cap in captures_below(dir) {
        // TLS captures need decryption (tshark's view is with the keys): a later issue.
        if cap.components().any(|c| c.as_os_str() == "tls") || cap.with_extension("keylog").exists()
        {
            continue;
        }
        let tsv = cap.with_extension("requests.tsv");
        if !tsv.exists() {
            continue;
        }
        let theirs = tshark_rows(&tsv, proto);
        let ours = our_rows(&exchanges(&cap), proto);
        let (t, o, m) = (
            theirs.values().sum::<usize>(),
            ours.values().sum::<usize>(),
            matched(&theirs, &ours),
        );
        totals.tshark += t;
        totals.ours += o;
        totals.matched += m;
        if !known(&cap, proto) {
            totals.ours_clean += o;
            totals.matched_clean += m;
        }
        if known(&cap, proto) {
            let (ts, os) = (method_and_target(&theirs), method_and_target(&ours));
            if matched(&ts, &os) != t {
                failures.push(format!(
                    "{}: a request tshark found is missing",
                    cap.display()
                ));
            }
        } else if m != t || m != o {
            failures.push(format!(
                "{}: tshark {t} ours {o} matched {m}\n  tshark: {theirs:?}\n  ours: {ours:?}",
                cap.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    totals
}

/// Checks the agreement figures of one protocol over the shared captures.
fn check_shared(proto: &str, min_requests: usize) {
    let Some(dir) = shared_captures() else { return };
    let totals = compare_all(&dir, proto);
    let recall = totals.matched as f64 / totals.tshark as f64;
    let precision = totals.matched as f64 / totals.ours as f64;
    let precision_clean = totals.matched_clean as f64 / totals.ours_clean as f64;
    eprintln!(
        "{proto} agreement: recall {recall:.4} precision {precision:.4} (without files where tshark is known to miss: {precision_clean:.4}) over {} tshark requests",
        totals.tshark
    );
    assert!(
        totals.tshark >= min_requests,
        "too few {proto} requests in the corpus: {totals:?}"
    );
    assert!(recall >= 0.99, "recall {recall}");
    // Where tshark misses requests (MANIFEST caveats, docs/tshark-differences.md) its view
    // cannot confirm ours; everywhere else it must.
    assert!(precision_clean >= 0.99, "precision {precision_clean}");
}

#[test]
fn http1_agrees_with_tshark_on_shared_captures() {
    check_shared("h1", 1000);
}

#[test]
fn http2_agrees_with_tshark_on_shared_captures() {
    check_shared("h2", 10);
}

#[test]
fn agrees_with_tshark_on_own_captures() {
    let dir = root().join("captures");
    for proto in ["h1", "h2"] {
        let totals = compare_all(&dir, proto);
        eprintln!("own captures, {proto}: {totals:?}");
        assert!(
            totals.tshark > 0,
            "the project's captures hold {proto} requests: {totals:?}"
        );
    }
}
