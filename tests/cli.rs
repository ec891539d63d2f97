//! The command line as a user meets it: broken files in a batch, folders, stdin, formats,
//! counters.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn a_cut_short_file_is_reported_with_its_offset_and_the_batch_goes_on() {
    let Some(dir) = shared_captures() else { return };
    let broken = dir.join("damaged/cut-short-nsec.pcap");
    let good = dir.join("http1/get-simple.pcap");
    let out = specter(&[
        "exchanges",
        "--format",
        "jsonl",
        broken.to_str().expect("path"),
        good.to_str().expect("path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("cut-short-nsec.pcap"), "{stderr}");
    assert!(stderr.contains("byte offset"), "{stderr}");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), 1, "the good file's exchange is still printed");
    assert!(lines[0].contains("/download/CHANGES.bro-aux.txt"));
}

#[test]
fn garbage_and_missing_files_are_errors_not_crashes() {
    let tmp = std::env::temp_dir().join(format!("specter-garbage-{}", std::process::id()));
    std::fs::write(&tmp, b"this is not a capture file at all").expect("write");
    let out = specter(&[
        "exchanges",
        tmp.to_str().expect("path"),
        "/nonexistent/file.pcap",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("not a capture file"), "{stderr}");
    assert!(stderr.contains("/nonexistent/file.pcap"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    let _ = std::fs::remove_file(tmp);
}

#[test]
fn stdin_and_folders_are_inputs() {
    let Some(dir) = shared_captures() else { return };
    let file = dir.join("http1/pipelined-requests.pcap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(["exchanges", "--format", "jsonl", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = std::fs::read(&file).expect("read");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let from_stdin = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(from_stdin, 5);

    let folder = specter(&[
        "exchanges",
        "--format",
        "jsonl",
        dir.join("http1").to_str().expect("path"),
    ]);
    assert!(folder.status.success());
    let from_folder = String::from_utf8_lossy(&folder.stdout).lines().count();
    assert!(
        from_folder > 1000,
        "the http1 folder holds over 1000 exchanges, got {from_folder}"
    );
}

#[test]
fn jsonl_lines_follow_the_contract_and_come_in_request_order() {
    let Some(dir) = shared_captures() else { return };
    let lines = exchanges(&dir.join("http1/keepalive-1000-requests.pcap"));
    assert_eq!(lines.len(), 1000);
    let keys = [
        "ts",
        "proto",
        "client",
        "server",
        "stream",
        "method",
        "host",
        "target",
        "status",
        "req_content_type",
        "resp_content_type",
        "req_body_bytes",
        "resp_body_bytes",
        "duration_ms",
        "notes",
    ];
    for l in &lines {
        let obj = l.as_object().expect("object");
        for k in keys {
            assert!(obj.contains_key(k), "missing {k} in {l}");
        }
        assert_eq!(obj.len(), keys.len());
    }
    let ts: Vec<&str> = lines
        .iter()
        .map(|l| l["ts"].as_str().expect("ts"))
        .collect();
    let mut sorted = ts.clone();
    sorted.sort();
    assert_eq!(
        ts, sorted,
        "exchanges are in the order their requests began"
    );
    let unanswered = lines.iter().filter(|l| l["status"].is_null()).count();
    assert_eq!(unanswered, 1, "the trace drops exactly one response");
}

#[test]
fn table_and_stats_are_readable() {
    let Some(dir) = shared_captures() else { return };
    let out = specter(&[
        "exchanges",
        "--stats",
        dir.join("tcp/gap-in-body.pcap").to_str().expect("path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("TIME"), "{stdout}");
    assert!(
        stdout.contains("/2") && stdout.contains("[gap]"),
        "{stdout}"
    );
    assert!(
        stderr.contains("gaps") && stderr.contains("exchanges"),
        "{stderr}"
    );
}

#[test]
fn help_explains_each_command() {
    let out = specter(&["exchanges", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--format") && help.contains("--stats") && help.contains("standard input")
    );
}
