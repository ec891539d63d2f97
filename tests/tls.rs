//! TLS decryption: `specter exchanges --keylog` against tshark's view with the same keys
//! (`*.requests.tsv`, saved by captures/groundtruth.sh with `-o tls.keylog_file:`), the
//! same captures with the keys embedded in pcapng, and what happens without keys or with
//! bad ones: the opaque line with its reason, counters, never a panic.

use std::path::{Path, PathBuf};

use crate::util::*;

/// `specter exchanges --format jsonl [--keylog K] FILE` as parsed lines, and stderr.
fn run(file: &Path, keylog: Option<&Path>, stats: bool) -> (Vec<serde_json::Value>, String) {
    let mut args = vec!["exchanges", "--format", "jsonl"];
    if let Some(k) = keylog {
        args.extend(["--keylog", k.to_str().expect("utf-8 path")]);
    }
    if stats {
        args.push("--stats");
    }
    args.push(file.to_str().expect("utf-8 path"));
    let out = specter(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{}: {stderr}", file.display());
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    (lines, stderr)
}

/// The project's TLS captures with their key logs.
fn own() -> Vec<(PathBuf, PathBuf)> {
    let dir = root().join("captures");
    ["tls-alpn", "tls12-nginx", "tls13-nginx"]
        .iter()
        .map(|n| {
            (
                dir.join(format!("{n}.pcap")),
                dir.join(format!("{n}.keylog")),
            )
        })
        .collect()
}

/// Agreement of one capture with its saved tshark view: (tshark, ours, matched).
fn agreement(cap: &Path, tsv: &Path, keylog: Option<&Path>) -> (usize, usize, usize) {
    let (lines, _) = run(cap, keylog, false);
    let (mut t, mut o, mut m) = (0, 0, 0);
    for proto in ["h1", "h2"] {
        let theirs = tshark_rows(tsv, proto);
        let ours = our_rows(&lines, proto);
        t += theirs.values().sum::<usize>();
        o += ours.values().sum::<usize>();
        m += matched(&theirs, &ours);
    }
    for l in lines.iter().filter(|l| l["proto"] != "tls") {
        let notes = l["notes"].as_array().expect("notes");
        assert!(
            notes.iter().any(|n| n == "decrypted"),
            "{}: an exchange from TLS without the decrypted note: {l}",
            cap.display()
        );
    }
    (t, o, m)
}

fn check_agreement(name: &str, (t, o, m): (usize, usize, usize)) {
    eprintln!("{name}: tshark {t} ours {o} matched {m}");
    assert!(t > 0, "{name}: tshark saw no request");
    assert!(m as f64 >= 0.99 * t as f64, "{name}: recall {m}/{t}");
    assert!(m as f64 >= 0.99 * o as f64, "{name}: precision {m}/{o}");
}

#[test]
fn keylog_decryption_agrees_with_tshark_on_own_captures() {
    for (cap, keylog) in own() {
        let tsv = cap.with_extension("requests.tsv");
        check_agreement(
            &cap.display().to_string(),
            agreement(&cap, &tsv, Some(&keylog)),
        );
    }
}

#[test]
fn keylog_decryption_agrees_with_tshark_on_public_captures() {
    let Some(dir) = shared_captures() else { return };
    for name in ["https-tls12-keylog", "https-tls12-single"] {
        let cap = dir.join(format!("tls/{name}.pcap"));
        let keylog = dir.join(format!("tls/{name}.keylog"));
        let tsv = dir.join(format!("tls/{name}.requests.tsv"));
        check_agreement(name, agreement(&cap, &tsv, Some(&keylog)));
    }
    // Secrets in the file itself (pcapng Decryption Secrets Block): no flag needed.
    let cap = dir.join("tls/h2-tls-with-dsb.pcap");
    let tsv = dir.join("tls/h2-tls-with-dsb.requests.tsv");
    check_agreement("h2-tls-with-dsb", agreement(&cap, &tsv, None));
}

#[test]
fn embedded_secrets_give_the_same_output_as_the_keylog() {
    for (cap, keylog) in own().into_iter().skip(1) {
        let dsb = cap.with_file_name(format!(
            "{}-dsb.pcapng",
            cap.file_stem().and_then(|s| s.to_str()).expect("name")
        ));
        let (with_flag, _) = run(&cap, Some(&keylog), false);
        let (embedded, _) = run(&dsb, None, false);
        assert!(!with_flag.is_empty());
        assert_eq!(with_flag, embedded, "{}", dsb.display());
    }
}

/// Reasons on the opaque lines.
fn reasons(lines: &[serde_json::Value]) -> Vec<String> {
    let mut r: Vec<String> = lines
        .iter()
        .filter(|l| l["proto"] == "tls")
        .map(|l| {
            l["tls"]["not_decrypted"]
                .as_str()
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    r.sort();
    r.dedup();
    r
}

#[test]
fn without_keys_connections_stay_opaque_with_the_reason() {
    for (name, connections) in [("tls12-nginx", 9), ("tls13-nginx", 8)] {
        let cap = root().join(format!("captures/{name}.pcap"));
        let (lines, stderr) = run(&cap, None, true);
        assert_eq!(lines.len(), connections, "{name}: one opaque line each");
        assert!(lines.iter().all(|l| l["proto"] == "tls"), "{name}");
        // s_client resumed sessions: the reason says so.
        assert_eq!(reasons(&lines), ["no_key", "resumed_no_key"], "{name}");
        assert!(stderr.contains("not decrypted: no_key"), "{stderr}");
    }
}

#[test]
fn bad_keylog_lines_are_counted_and_the_rest_still_decrypts() {
    let (cap, keylog) = own().remove(1);
    let mut text = String::from("CLIENT_RANDOM nothex 00\nthis is not a key log line\n");
    text.push_str(&std::fs::read_to_string(&keylog).expect("keylog"));
    let bad = temp_path("bad-lines.keylog");
    std::fs::write(&bad, text).expect("write");
    let (lines, stderr) = run(&cap, Some(&bad), true);
    assert!(
        stderr.contains("2 lines not read (the first at line 1: client_random)"),
        "{stderr}"
    );
    assert!(stderr.contains("bad key log lines"), "{stderr}");
    assert_eq!(lines.len(), 19);
    assert!(lines.iter().all(|l| l["proto"] != "tls"));
}

/// Every secret with one hex digit changed.
fn corrupt(keylog: &Path) -> PathBuf {
    let text = std::fs::read_to_string(keylog).expect("keylog");
    let out: String = text
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            if let Some(s) = f.get_mut(2) {
                let flipped = if s.starts_with('0') { "1" } else { "0" };
                s.replace_range(0..1, flipped);
            }
            f.join(" ") + "\n"
        })
        .collect();
    let p = temp_path(&format!(
        "wrong-{}",
        keylog.file_name().and_then(|n| n.to_str()).expect("name")
    ));
    std::fs::write(&p, out).expect("write");
    p
}

#[test]
fn a_wrong_key_fails_the_tag_and_falls_back_to_opaque() {
    for (cap, keylog) in own().into_iter().skip(1) {
        let (lines, stderr) = run(&cap, Some(&corrupt(&keylog)), true);
        assert!(
            lines.iter().all(|l| l["proto"] == "tls"),
            "{}",
            cap.display()
        );
        assert_eq!(reasons(&lines), ["bad_tag"], "{}", cap.display());
        assert!(stderr.contains("records failing their tag"), "{stderr}");
    }
}

/// A TLS-looking stream: a handshake record, then what follows.
fn tls_stream(rest: &[u8]) -> Vec<u8> {
    let mut s = vec![22, 3, 1, 0, 4, 1, 0, 0, 0];
    s.extend_from_slice(rest);
    s
}

fn stat(stderr: &str, name: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {stderr}"))
}

#[test]
fn oversized_and_truncated_records_are_counted_never_a_panic() {
    let too_long = tls_stream(&[&[23u8, 3, 3, 0x48, 0x00][..], &[0u8; 3000]].concat());
    let truncated = tls_stream(&[22, 3, 3, 0, 200, 2, 0, 0]);
    let pcap = temp_path("tls-bad-records.pcap");
    write_http_pcap(&pcap, [(too_long, Vec::new()), (Vec::new(), truncated)]);
    let (lines, stderr) = run(&pcap, None, true);
    assert_eq!(stat(&stderr, "records too long"), 1, "{stderr}");
    assert_eq!(stat(&stderr, "records cut short"), 1, "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l["tls"]["not_decrypted"] == "record_too_long"),
        "{lines:?}"
    );
}

#[test]
fn decrypted_exchanges_are_inventoried() {
    let (cap, keylog) = own().remove(2);
    let db = temp_path("tls.db");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        "--keylog",
        keylog.to_str().expect("path"),
        cap.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endpoints = endpoints_json(&db);
    assert!(
        endpoints.iter().any(|e| e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/api/v1/users"))),
        "{endpoints:?}"
    );
}

/// Posture findings about Basic auth for the endpoint the TLS captures call with Basic.
fn basic_findings(cap: &Path, keylog: Option<&Path>, name: &str) -> usize {
    let db = temp_path(name);
    let mut args = vec!["analyze", "--db", db.to_str().expect("path")];
    if let Some(k) = keylog {
        args.extend(["--keylog", k.to_str().expect("path")]);
    }
    args.push(cap.to_str().expect("path"));
    let out = specter(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen_basic = endpoints_json(&db)
        .iter()
        .any(|e| e.to_string().contains("\"basic\""));
    assert!(seen_basic, "{}: Basic auth inventoried", cap.display());
    let spec = root().join("specs/shop-api.yaml");
    let out = specter(&[
        "diff",
        "--db",
        db.to_str().expect("path"),
        "--spec",
        spec.to_str().expect("path"),
        "--all-hosts",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["kind"] == "posture" && f["message"].as_str().is_some_and(|m| m.contains("Basic"))
        })
        .count()
}

#[test]
fn basic_auth_inside_tls_is_not_a_cleartext_finding() {
    for (cap, keylog) in own().into_iter().skip(1) {
        let name = cap.file_stem().and_then(|s| s.to_str()).expect("name");
        assert_eq!(
            basic_findings(&cap, Some(&keylog), &format!("{name}-basic.db")),
            0,
            "{name}: Basic seen only inside TLS"
        );
    }
}
