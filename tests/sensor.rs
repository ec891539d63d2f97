//! The live sensor (`specter sensor`) on real traffic: network namespaces joined by a veth
//! pair, a real HTTP server in one and real clients in the other, the sensor capturing on
//! the veth; captures replayed with tcpreplay; SIGTERM and kill -9 in the middle of
//! traffic; bad input. The live tests need root, `ip`, libpcap-dev (the binary is built
//! once with `--features live` into target/live, or taken from $SPECTER_LIVE_BIN) and
//! tcpreplay/curl/python3: without them they print why and skip, and fail under CI=true.
//! The stream tests (`-r`) run everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{
    captures_below, endpoints_json, pcap_header, pcap_record, root, shared_captures, specter,
    temp_path, tool,
};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips with a reason, or fails under CI.
fn skip(why: &str) -> Option<PathBuf> {
    if in_ci() {
        panic!("CI=true but the live sensor test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// The sensor binary built with libpcap, or None (with why).
fn live_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SPECTER_LIVE_BIN") {
            return Ok(PathBuf::from(p));
        }
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not root (live capture and network namespaces need it)".into());
        }
        if !Path::new("/usr/include/pcap.h").exists()
            && !Path::new("/usr/include/pcap/pcap.h").exists()
        {
            return Err("libpcap-dev is not installed".into());
        }
        let target = root().join("target/live");
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--features",
                "live",
                "--bin",
                "specter",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(root())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "cargo build --features live failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(target.join("release/specter"))
    });
    match r {
        Ok(p) => Some(p.clone()),
        Err(why) => skip(why),
    }
}

/// Everything a live test needs, or None.
fn live_setup(tools: &[&str]) -> Option<PathBuf> {
    let bin = live_bin()?;
    for t in ["ip"].iter().chain(tools) {
        tool(t)?;
    }
    Some(bin)
}

/// Two network namespaces joined by a veth pair: `srv` (10.77.N.1) and `cli` (10.77.N.2).
/// Removed on drop.
struct Veth {
    srv: String,
    cli: String,
    /// The server side's interface (in `srv`), where the sensor captures.
    srv_if: String,
    cli_if: String,
    srv_ip: String,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Veth {
    fn new() -> Veth {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let v = Veth {
            srv: format!("spsrv{tag}"),
            cli: format!("spcli{tag}"),
            srv_if: format!("sps{tag}"),
            cli_if: format!("spc{tag}"),
            srv_ip: format!("10.77.{}.1", n % 250),
        };
        let cli_ip = format!("10.77.{}.2", n % 250);
        sh(&["ip", "netns", "add", &v.srv]);
        sh(&["ip", "netns", "add", &v.cli]);
        sh(&[
            "ip", "link", "add", &v.srv_if, "netns", &v.srv, "type", "veth", "peer", "name",
            &v.cli_if, "netns", &v.cli,
        ]);
        for (ns, ifname, ip) in [(&v.srv, &v.srv_if, &v.srv_ip), (&v.cli, &v.cli_if, &cli_ip)] {
            // Loopback captures hold frames up to 64 KiB: let them through when replayed.
            sh(&["ip", "-n", ns, "link", "set", ifname, "mtu", "65535"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                ifname,
            ]);
            sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        v
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.srv])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.cli])
            .status();
    }
}

/// A child killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the sensor in `ns` on `iface`; returns once it has opened the interface.
fn start_sensor(
    bin: &Path,
    veth: &Veth,
    ns: &str,
    iface: &str,
    db: &Path,
    extra: &[&str],
) -> Guard {
    let mut cmd = veth.exec(
        ns,
        &[
            bin.to_str().expect("path"),
            "sensor",
            "-i",
            iface,
            "--db",
            db.to_str().expect("path"),
        ],
    );
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start sensor");
    // The first log line is written once every interface is open.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut all = String::new();
        while let Some(Ok(l)) = lines.next() {
            if l.contains("sensor starting") {
                let _ = tx.send(Ok(()));
            }
            all.push_str(&l);
            all.push('\n');
        }
        let _ = tx.send(Err(all));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => {}
        Ok(Err(all)) => panic!("the sensor did not start: {all}"),
        Err(_) => panic!("the sensor did not start within 20 s"),
    }
    Guard(child)
}

fn signal(child: &Child, sig: &str) {
    sh(&["kill", &format!("-{sig}"), &child.id().to_string()]);
}

/// Waits for the sensor to exit; returns its exit code.
fn wait_exit(g: &mut Guard, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(st) = g.0.try_wait().expect("wait") {
            return st.code();
        }
        assert!(
            start.elapsed() < limit,
            "the sensor did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/api/v1/users/{user_id}` and `/api/v1/users/{id}` are the same route.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Total requests in an inventory.
fn requests(db: &Path) -> u64 {
    endpoints_json(db)
        .iter()
        .map(|e| e["requests"].as_u64().unwrap_or(0))
        .sum()
}

/// Serves a directory with `python3 -m http.server` in the server namespace.
fn http_server(veth: &Veth, port: u16) -> Guard {
    let dir = temp_path(&format!("www-{}", veth.srv));
    std::fs::create_dir_all(&dir).expect("www");
    for i in 0..5 {
        std::fs::write(
            dir.join(format!("item{i}.json")),
            format!("{{\"id\": {i}}}"),
        )
        .expect("write");
    }
    let child = veth
        .exec(
            &veth.srv,
            &[
                "python3",
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                &veth.srv_ip,
                "--directory",
            ],
        )
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    wait_port(veth, port);
    Guard(child)
}

fn wait_port(veth: &Veth, port: u16) {
    let url = format!("http://{}:{port}/", veth.srv_ip);
    for _ in 0..100 {
        let ok = veth
            .exec(
                &veth.cli,
                &["curl", "-s", "-o", "/dev/null", "--max-time", "1", &url],
            )
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server on {url} did not come up");
}

/// One curl request from the client namespace.
fn curl(veth: &Veth, url: &str) {
    let st = veth
        .exec(
            &veth.cli,
            &["curl", "-s", "-o", "/dev/null", "--max-time", "5", url],
        )
        .status()
        .expect("curl");
    assert!(st.success(), "curl {url}");
}

#[test]
fn live_the_shop_api_called_through_a_veth_is_inventoried() {
    let Some(bin) = live_setup(&["python3", "curl"]) else {
        return;
    };
    if Command::new("python3")
        .args(["-c", "import flask"])
        .status()
        .map_or(true, |s| !s.success())
    {
        skip("python3 flask is not installed");
        return;
    }
    let veth = Veth::new();
    let db = temp_path("live-shop.db");
    let mut sensor = start_sensor(
        &bin,
        &veth,
        &veth.srv,
        &veth.srv_if,
        &db,
        &["--flush-interval", "1s"],
    );
    let port = 18_400;
    let app = root().join("captures");
    let code = format!(
        "import sys; sys.path.insert(0, {app:?}); import shop_api; shop_api.ADDR = {ip:?}; shop_api.serve({port})",
        app = app.display().to_string(),
        ip = veth.srv_ip
    );
    let _server = Guard(
        veth.exec(&veth.srv, &["python3", "-c", &code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("shop api"),
    );
    wait_port(&veth, port);
    // The app's own traffic generator, 700 requests over every route.
    let secrets = temp_path("live-shop.secrets");
    let client = format!(
        "import sys; sys.path.insert(0, {app:?}); import shop_api; shop_api.ADDR = {ip:?}; shop_api.client_main({port}, 7, 700, {s:?})",
        app = app.display().to_string(),
        ip = veth.srv_ip,
        s = secrets.display().to_string()
    );
    let out = veth
        .exec(&veth.cli, &["python3", "-c", &client])
        .output()
        .expect("client");
    let client_err = String::from_utf8_lossy(&out.stderr);
    assert!(client_err.contains("700 requests"), "{client_err}");
    signal(&sensor.0, "TERM");
    assert_eq!(wait_exit(&mut sensor, Duration::from_secs(20)), Some(0));

    let routes: BTreeSet<(String, String)> =
        std::fs::read_to_string(app.join("shop-api.routes.tsv"))
            .expect("routes")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), shape(f.get(1)?)))
            })
            .collect();
    let found: BTreeMap<(String, String), u64> = endpoints_json(&db)
        .iter()
        .map(|e| {
            (
                (
                    e["method"].as_str().unwrap_or("").to_string(),
                    shape(e["path"].as_str().unwrap_or("")),
                ),
                e["requests"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let missing: Vec<_> = routes.iter().filter(|r| !found.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "routes called but not inventoried: {missing:?}\nfound: {found:?}"
    );
    // 700 from the generator and one from waiting for the server (GET /).
    assert_eq!(found.values().sum::<u64>(), 701, "{found:?}");
}

/// The captures the replay test uses: recorded on loopback (Ethernet framing), HTTP/1 and
/// HTTP/2.
const REPLAYED: [&str; 4] = [
    "shop-api-a.pcap",
    "keepalive-curl.pcap",
    "h2c-nghttp.pcap",
    "chunked-gzip.pcap",
];

/// The endpoints without what depends on capture time: first/last seen (a replay happens
/// now) and what bodies were sampled (an exchange's sampling level hashes its time,
/// src/infer/endpoint.rs), so the sensitive data found in those samples too.
fn timeless(db: &Path) -> Vec<serde_json::Value> {
    let mut v = endpoints_json(db);
    for e in &mut v {
        if let Some(o) = e.as_object_mut() {
            o.remove("first_seen");
            o.remove("last_seen");
            o.remove("bodies_sampled");
            o.remove("pii");
            o.remove("pii_detail");
        }
    }
    v
}

#[test]
fn live_replayed_captures_give_the_inventory_analyze_gives() {
    let Some(bin) = live_setup(&["tcpreplay"]) else {
        return;
    };
    let veth = Veth::new();
    let db = temp_path("live-replay.db");
    let mut sensor = start_sensor(
        &bin,
        &veth,
        &veth.srv,
        &veth.srv_if,
        &db,
        &["--flush-interval", "1s"],
    );
    let files: Vec<PathBuf> = REPLAYED
        .iter()
        .map(|f| root().join("captures").join(f))
        .collect();
    for f in &files {
        let out = veth
            .exec(
                &veth.cli,
                &["tcpreplay", "--pps", "3000", "-i", &veth.cli_if],
            )
            .arg(f)
            .output()
            .expect("tcpreplay");
        assert!(
            out.status.success(),
            "tcpreplay {}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    signal(&sensor.0, "TERM");
    assert_eq!(wait_exit(&mut sensor, Duration::from_secs(20)), Some(0));

    let offline = temp_path("live-replay-offline.db");
    let mut args = vec!["analyze", "--db", offline.to_str().expect("path")];
    args.extend(files.iter().map(|f| f.to_str().expect("path")));
    assert!(specter(&args).status.success());
    let (live, off) = (timeless(&db), timeless(&offline));
    assert!(!off.is_empty());
    assert_eq!(live.len(), off.len(), "endpoint counts differ");
    for (l, o) in live.iter().zip(&off) {
        assert_eq!(l, o);
    }
}

/// A client making `n` numbered requests to the server.
fn requests_to(veth: &Veth, port: u16, from: usize, n: usize) {
    for i in from..from + n {
        curl(
            veth,
            &format!("http://{}:{port}/item{}.json?n={i}", veth.srv_ip, i % 5),
        );
    }
}

#[test]
fn live_sigterm_in_the_middle_of_traffic_loses_nothing_seen_before() {
    let Some(bin) = live_setup(&["python3", "curl"]) else {
        return;
    };
    let veth = Veth::new();
    let port = 18_401;
    let _server = http_server(&veth, port);
    let db = temp_path("live-sigterm.db");
    // A long interval: only the flush at SIGTERM writes.
    let mut sensor = start_sensor(
        &bin,
        &veth,
        &veth.srv,
        &veth.srv_if,
        &db,
        &["--flush-interval", "1h"],
    );
    requests_to(&veth, port, 0, 30);
    signal(&sensor.0, "TERM");
    // Traffic goes on while the sensor stops.
    requests_to(&veth, port, 30, 10);
    assert_eq!(wait_exit(&mut sensor, Duration::from_secs(20)), Some(0));
    let n = requests(&db);
    assert!(
        (30..=40).contains(&n),
        "{n} requests inventoried, 30 were made before SIGTERM"
    );
}

#[test]
fn live_kill_9_loses_at_most_one_flush_interval() {
    let Some(bin) = live_setup(&["python3", "curl"]) else {
        return;
    };
    let veth = Veth::new();
    let port = 18_402;
    let _server = http_server(&veth, port);
    let db = temp_path("live-kill9.db");
    let mut sensor = start_sensor(
        &bin,
        &veth,
        &veth.srv,
        &veth.srv_if,
        &db,
        &["--flush-interval", "1s"],
    );
    requests_to(&veth, port, 0, 30);
    // More than one interval passes: those 30 must be on disk.
    std::thread::sleep(Duration::from_millis(2500));
    requests_to(&veth, port, 30, 5);
    signal(&sensor.0, "KILL");
    let _ = wait_exit(&mut sensor, Duration::from_secs(10));
    let n = requests(&db);
    assert!(
        (30..=35).contains(&n),
        "{n} requests inventoried after kill -9, 30 were made more than one interval before"
    );

    // A restarted sensor carries on with the same inventory.
    let mut again = start_sensor(
        &bin,
        &veth,
        &veth.srv,
        &veth.srv_if,
        &db,
        &["--flush-interval", "1s"],
    );
    requests_to(&veth, port, 100, 10);
    signal(&again.0, "INT");
    assert_eq!(wait_exit(&mut again, Duration::from_secs(20)), Some(0));
    assert_eq!(requests(&db), n + 10);
}

#[test]
fn live_bad_interface_and_filter_are_named_and_exit_2() {
    let Some(bin) = live_setup(&[]) else { return };
    let db = temp_path("live-bad.db");
    let db = db.to_str().expect("path");
    let out = Command::new(&bin)
        .args(["sensor", "-i", "nosuchif0", "--db", db])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nosuchif0"), "{err}");
    let out = Command::new(&bin)
        .args([
            "sensor",
            "-i",
            "lo",
            "--filter",
            "tcp port banana",
            "--db",
            db,
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("lo") && err.contains("tcp port banana"),
        "{err}"
    );
}

// Streams (`-r`): the same sensor loop without libpcap.

#[test]
fn a_stream_gives_the_inventory_analyze_gives() {
    let file = root().join("captures/shop-api-a.pcap");
    let file = file.to_str().expect("path");
    let (live, off) = (temp_path("stream.db"), temp_path("stream-offline.db"));
    let out = specter(&["sensor", "-r", file, "--db", live.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        specter(&["analyze", "--db", off.to_str().expect("path"), file])
            .status
            .success()
    );
    assert_eq!(endpoints_json(&live), endpoints_json(&off));
    // A restarted sensor continues the same inventory: the same as analysing twice.
    assert!(
        specter(&["sensor", "-r", file, "--db", live.to_str().expect("path")])
            .status
            .success()
    );
    assert!(
        specter(&["analyze", "--db", off.to_str().expect("path"), file])
            .status
            .success()
    );
    assert_eq!(endpoints_json(&live), endpoints_json(&off));
}

#[test]
fn bad_input_is_named_and_exits_2() {
    let db = temp_path("bad.db");
    let db = db.to_str().expect("path");
    // A link type the decoder does not know (LINKTYPE_USER0).
    let user0 = temp_path("user0.pcap");
    let mut head = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    head.extend([0; 8]);
    head.extend(65535u32.to_le_bytes());
    head.extend(147u32.to_le_bytes());
    std::fs::write(&user0, &head).expect("write");
    for (args, names) in [
        (vec!["-r", user0.to_str().expect("path")], "link type 147"),
        (vec!["-r", "/nonexistent/x.pcap"], "/nonexistent/x.pcap"),
        (vec!["-r", "-", "--max-memory", "lots"], "--max-memory"),
        (vec!["-r", "-", "--max-memory", "1M"], "--max-memory"),
        (
            vec!["-r", "-", "--flush-interval", "0s"],
            "--flush-interval",
        ),
        (vec![], "-i IFACE"),
        // Without the live feature: says how to get it; with it: no such interface.
        (vec!["-i", "nosuchif0"], "nosuchif0"),
    ] {
        let mut a = vec!["sensor", "--db", db];
        a.extend(args);
        let out = Command::new(env!("CARGO_BIN_EXE_specter"))
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(names), "{a:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A pcap of `n` SYNs from distinct clients and `n` garbage frames, interleaved.
fn flood_pcap(path: &Path, n: u32) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    w.write_all(&pcap_header()).expect("write");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in 0..n {
        let src = (0x0a00_0000u32 + i).to_be_bytes();
        let mut syn = Vec::with_capacity(64);
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, [10, 255, 0, 1], 64)
            .tcp((i % 60_000) as u16 + 1024, 80, i, 65535)
            .syn()
            .write(&mut syn, &[])
            .expect("build");
        let mut junk = vec![0u8; 60 + (i % 200) as usize];
        for b in &mut junk {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            *b = rng as u8;
        }
        for (k, frame) in [syn, junk].iter().enumerate() {
            let usec = 1_700_000_000_000_000u64 + u64::from(i) * 20 + k as u64 * 10;
            w.write_all(&pcap_record(usec, frame)).expect("write");
        }
    }
    w.flush().expect("flush");
}

#[test]
fn a_syn_and_garbage_flood_is_counted_in_flat_memory() {
    let pcap = temp_path("flood.pcap");
    flood_pcap(&pcap, 400_000);
    let db = temp_path("flood.db");
    let out = specter(&[
        "sensor",
        "-r",
        pcap.to_str().expect("path"),
        "--db",
        db.to_str().expect("path"),
        "--max-memory",
        "64M",
        "--stats",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let summary = err
        .lines()
        .find(|l| l.starts_with("specter: sensor done"))
        .expect("summary line");
    let num = |before: &str| -> u64 {
        let i = summary
            .find(before)
            .unwrap_or_else(|| panic!("{before} in {summary}"));
        summary[..i]
            .split_whitespace()
            .last()
            .and_then(|w| w.parse().ok())
            .expect("number")
    };
    assert_eq!(num(" packets"), 800_000, "{summary}");
    assert_eq!(num(" flows,"), 400_000, "{summary}");
    // The flow table's cap at this budget is far below 400 000: most were evicted.
    assert!(num(" flows evicted") > 300_000, "{summary}");
    // The garbage is counted as undecodable, by reason (--stats).
    let undecodable: u64 = err
        .lines()
        .filter(|l| l.trim_start().starts_with("undecodable:"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert!(undecodable > 0, "{err}");
    let peak = num(" MiB of 64 MiB");
    assert!(
        peak <= 64,
        "peak {peak} MiB over the 64 MiB budget: {summary}"
    );
}

/// `specter sensor -r -` with `args`, its standard input a pipe: (the child, the pipe).
fn sensor_reading_stdin(args: &[&std::ffi::OsStr]) -> (Child, std::process::ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(["sensor", "-r", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let stdin = child.stdin.take().expect("stdin");
    (child, stdin)
}

#[test]
fn sighup_reopens_the_log_and_sigterm_stops_a_blocked_stream() {
    let dir = temp_path("hup");
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("sensor.log");
    let db = dir.join("hup.db");
    let (child, mut stdin) = sensor_reading_stdin(&[
        "--flush-interval".as_ref(),
        "1s".as_ref(),
        "--log-file".as_ref(),
        log.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    let pcap = std::fs::read(root().join("captures/keepalive-curl.pcap")).expect("read");
    stdin.write_all(&pcap).expect("write");
    stdin.flush().expect("flush");
    // Stdin stays open: the stream source is blocked reading it.
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("inventory flushed")
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no flush logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::rename(&log, dir.join("sensor.log.1")).expect("rotate");
    sh(&["kill", "-HUP", &child.id().to_string()]);
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("inventory flushed")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing logged to the reopened file"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let mut g = Guard(child);
    assert_eq!(wait_exit(&mut g, Duration::from_secs(10)), Some(0));
    drop(stdin);
    assert!(requests(&db) > 0);
}

/// `sensor -r FILE --threads N --stats`: the inventory, and the counters (standard error
/// without the log lines and the closing summary, which carry times and memory).
fn stream_with_threads(
    file: &Path,
    threads: usize,
    name: &str,
) -> (Vec<serde_json::Value>, String) {
    let db = temp_path(&format!("{name}.t{threads}.db"));
    let n = threads.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(["sensor", "--stats", "--threads", &n, "--db"])
        .arg(&db)
        .arg("-r")
        .arg(file)
        .output()
        .expect("run sensor");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{}: {err}", file.display());
    let counters = err
        .lines()
        .filter(|l| !l.starts_with("20") && !l.starts_with("specter: sensor done"))
        .collect::<Vec<_>>()
        .join("\n");
    (endpoints_json(&db), counters)
}

#[test]
fn the_sensor_gives_the_same_inventory_and_counters_on_any_number_of_threads() {
    let mut files = captures_below(&root().join("captures"));
    if let Some(shared) = shared_captures() {
        files.extend(captures_below(&shared));
    }
    for (i, file) in files.iter().enumerate() {
        let name = format!("sensor-threads-{i}");
        let one = stream_with_threads(file, 1, &name);
        // Every packet `analyze` reads, the stream reads too (pcapng streams once read
        // none: both thread counts agreed on an empty inventory).
        let offline = specter(&[
            "analyze",
            "--stats",
            "--db",
            temp_path(&format!("{name}.offline.db"))
                .to_str()
                .expect("path"),
            file.to_str().expect("path"),
        ]);
        let packets = |text: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with("packets "))
                .map(str::to_owned)
        };
        let offline = String::from_utf8_lossy(&offline.stderr).into_owned();
        assert_eq!(packets(&one.1), packets(&offline), "{}", file.display());
        let three = stream_with_threads(file, 3, &name);
        assert!(one.0 == three.0, "{}: inventories differ", file.display());
        assert_eq!(one.1, three.1, "{}: counters differ", file.display());
    }
}

/// The `connections decrypted` counter of a `--stats` table.
fn decrypted_count(stats: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("connections decrypted"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("counter printed")
}

/// `sensor -r -` fed `capture` whole with an empty `--keylog`, the keys appended to it
/// only after every connection has closed: (its inventory, `connections decrypted`).
fn sensor_with_late_keys(
    capture: &Path,
    keys: &[u8],
    threads: &str,
) -> (Vec<serde_json::Value>, u64) {
    let name = capture.file_stem().and_then(|n| n.to_str()).expect("name");
    let dir = temp_path(&format!("late-keys-{name}-{threads}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let keylog = dir.join("keys.log");
    std::fs::write(&keylog, b"").expect("empty key log");
    let db = dir.join("inv.db");
    let (child, mut stdin) = sensor_reading_stdin(&[
        "--stats".as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
        "--keylog".as_ref(),
        keylog.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    stdin
        .write_all(&std::fs::read(capture).expect("read capture"))
        .expect("write capture");
    stdin.flush().expect("flush");
    // Every handshake and every close has been read before the client's lines are in
    // the file; the sensor reads the file again each second.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&keylog, keys).expect("append keys");
    std::thread::sleep(Duration::from_millis(2500));
    drop(stdin);
    let out = child.wait_with_output().expect("sensor ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    (timeless(&db), decrypted_count(&err))
}

#[test]
fn key_log_lines_appended_after_the_handshakes_still_decrypt_them() {
    for name in ["tls12-nginx", "tls13-nginx"] {
        let capture = root().join(format!("captures/{name}.pcap"));
        let keylog = root().join(format!("captures/{name}.keylog"));
        let offline = temp_path(&format!("late-keys-{name}-offline.db"));
        let out = specter(&[
            "analyze",
            "--stats",
            "--db",
            offline.to_str().expect("path"),
            "--keylog",
            keylog.to_str().expect("path"),
            capture.to_str().expect("path"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let expected = timeless(&offline);
        assert!(!expected.is_empty(), "{name} decrypts offline");
        let keys = std::fs::read(&keylog).expect("keylog");
        for threads in ["1", "2"] {
            let (inventory, decrypted) = sensor_with_late_keys(&capture, &keys, threads);
            assert!(
                decrypted > 0,
                "{name}, {threads} threads: nothing decrypted"
            );
            assert_eq!(
                decrypted,
                decrypted_count(&err),
                "{name}, {threads} threads"
            );
            assert_eq!(inventory, expected, "{name}, {threads} threads");
        }
        // Without the lines, the same connections stay opaque.
        let (_, none) = sensor_with_late_keys(&capture, b"", "2");
        assert_eq!(none, 0, "{name}");
    }
}

#[test]
fn pcapng_streams_are_read_with_their_embedded_keys_as_analyze_reads_them() {
    for name in ["tls12-nginx-dsb.pcapng", "tls13-nginx-dsb.pcapng"] {
        let capture = root().join("captures").join(name);
        let offline = temp_path(&format!("dsb-{name}-offline.db"));
        let out = specter(&[
            "analyze",
            "--stats",
            "--db",
            offline.to_str().expect("path"),
            capture.to_str().expect("path"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let expected = decrypted_count(&err);
        assert!(expected > 0, "{name}: analyze decrypts it");
        for threads in ["1", "2"] {
            let db = temp_path(&format!("dsb-{name}-{threads}.db"));
            // Through standard input: a pipe hands the stream over in pieces.
            let (child, mut stdin) = sensor_reading_stdin(&[
                "--stats".as_ref(),
                "--threads".as_ref(),
                threads.as_ref(),
                "--db".as_ref(),
                db.as_os_str(),
            ]);
            stdin
                .write_all(&std::fs::read(&capture).expect("read capture"))
                .expect("write capture");
            drop(stdin);
            let out = child.wait_with_output().expect("sensor ends");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            assert_eq!(
                decrypted_count(&err),
                expected,
                "{name}, {threads} threads\n{err}"
            );
            assert_eq!(
                timeless(&db),
                timeless(&offline),
                "{name}, {threads} threads"
            );
        }
    }
}
