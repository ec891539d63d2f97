//! The adversarial captures of `benches/adversarial.py` (issue 8), written small: every
//! one runs through `analyze` and `exchanges` with exit 0, no panic, the child's peak
//! RSS under the 150 MB target, and the counters that show which cap stopped the attack.
//! Needs python3 (skips with a reason without it, fails under CI=true).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{root, temp_path, tool};

/// The target of issue 8 for every capture.
const MAX_RSS_KB: i64 = 150 * 1024;

struct Run {
    code: i32,
    stderr: String,
    /// Peak resident set size of the child, in KiB (Linux `ru_maxrss`).
    max_rss_kb: i64,
}

impl Run {
    /// The value of the first `--stats` line that begins with `label` (after
    /// `parse errors: ` for those), or 0 when absent.
    fn stat(&self, label: &str) -> u64 {
        let error = format!("parse errors: {label}");
        self.stderr
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(label) || l.starts_with(&error))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Runs specter and measures its peak RSS by waiting for it with `wait4`.
// wait4 reaps the child (std's wait gives no resource usage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run specter");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned, which std
    // has not waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Run {
        code,
        stderr: reader.join().expect("stderr reader"),
        max_rss_kb: usage.ru_maxrss,
    }
}

/// Writes the captures into `dir`: all at scale 0.01, and the ones whose cap needs more
/// input to be reached (the flow table, the shared head cap, the out-of-order pieces) a
/// little larger.
fn generate(dir: &Path) -> bool {
    let python = match tool("python3") {
        Some(p) => p,
        None => return false,
    };
    let script = root().join("benches/adversarial.py");
    for (scale, only) in [
        ("0.01", None),
        ("0.15", Some("million-syns")),
        ("0.05", Some("fat-half-open,ooo-tiny")),
    ] {
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(dir).args(["--scale", scale]);
        if let Some(only) = only {
            cmd.args(["--only", only]);
        }
        let out = cmd.output().expect("run adversarial.py");
        assert!(
            out.status.success(),
            "adversarial.py --scale {scale}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    true
}

#[test]
fn adversarial_captures_stay_bounded_and_say_what_they_cut() {
    let dir: PathBuf = temp_path("adversarial");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    if !generate(&dir) {
        return;
    }
    let mut runs: HashMap<(String, &'static str), Run> = HashMap::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read scratch dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".pcap").map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names.len(), 11, "{names:?}");
    for name in &names {
        let pcap = dir.join(format!("{name}.pcap"));
        let pcap = pcap.to_str().expect("utf-8 path");
        let db = dir.join(format!("{name}.db"));
        let db = db.to_str().expect("utf-8 path");
        let analyze = run(&["analyze", "--db", db, "--stats", pcap]);
        let exchanges = run(&["exchanges", "--stats", pcap]);
        for (what, r) in [("analyze", &analyze), ("exchanges", &exchanges)] {
            assert_eq!(r.code, 0, "{what} {name}: {}", r.stderr);
            assert!(
                !r.stderr.contains("panicked"),
                "{what} {name}: {}",
                r.stderr
            );
            assert!(
                r.max_rss_kb <= MAX_RSS_KB,
                "{what} {name}: peak RSS {} KiB",
                r.max_rss_kb
            );
            eprintln!("{what} {name}: peak RSS {} KiB", r.max_rss_kb);
        }
        runs.insert((name.clone(), "analyze"), analyze);
        runs.insert((name.clone(), "exchanges"), exchanges);
    }
    let get = |name: &str, what: &'static str| &runs[&(name.to_string(), what)];

    // 150 000 SYNs: the table stays at its cap.
    let syns = get("million-syns", "exchanges");
    assert_eq!(syns.stat("flows"), 150_000);
    // The default budget (256M) caps the table at 32 768 flows, shared by the threads.
    assert!(syns.stat("flows evicted") >= 150_000 - 32_768);
    // Holes before partial heads: held, then given up at the end.
    let half = get("half-open", "exchanges");
    assert_eq!(half.stat("flows"), 10_000);
    assert_eq!(half.stat("gaps"), 5_000);
    // 1 000 heads of 48 KB: past the shared cap, heads are dropped and counted.
    let fat = get("fat-half-open", "analyze");
    assert!(
        fat.stat("head dropped: shared buffer cap") > 100,
        "{}",
        fat.stderr
    );
    // 1-byte pieces ahead of 1-byte holes: the buffer cap gives holes up.
    let ooo = get("ooo-tiny", "exchanges");
    assert!(ooo.stat("buffer overflows") > 0, "{}", ooo.stderr);
    // The HPACK bomb: header lists cut, table size abuse refused.
    let hpack = get("hpack-bomb", "exchanges");
    assert!(
        hpack.stat("HPACK header list too large") > 0,
        "{}",
        hpack.stderr
    );
    assert!(hpack.stat("HPACK table size update past the cap") > 0);
    // The CONTINUATION flood never ends its block: counted at the end.
    assert_eq!(hpack.stat("HTTP/2 header block too large"), 1);
    // The endless chunked body is cut at the body limit; the endless size line is an
    // error, not a buffer.
    let chunked = get("endless-chunked", "analyze");
    assert!(
        chunked.stat("bodies truncated by the limit") >= 2,
        "{}",
        chunked.stderr
    );
    assert_eq!(chunked.stat("chunk size line too long"), 1);
    // Deep and wide JSON past the body limit is kept in part.
    assert!(get("deep-json", "analyze").stat("bodies truncated by the limit") > 0);
    // Endless heads and pipelining without responses.
    let head = get("huge-head", "exchanges");
    assert_eq!(head.stat("start line too long"), 1, "{}", head.stderr);
    assert_eq!(head.stat("head too large"), 1);
    assert!(head.stat("too many pipelined requests") > 0);
    // Every path distinct: the template tree folds them.
    let paths = get("million-paths", "analyze");
    assert!(
        paths
            .stderr
            .contains("words folded into one parameter (cap)"),
        "{}",
        paths.stderr
    );
    assert_eq!(paths.stat("exchanges"), 10_000);
    let _ = std::fs::remove_dir_all(&dir);
}
