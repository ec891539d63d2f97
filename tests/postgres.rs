//! A fleet of writers, one inventory: concurrent `analyze` processes into one PostgreSQL
//! database (and one SQLite file) lose nothing, a writer killed in the middle of its
//! transaction leaves none of its batch, `merge` equals a direct analysis and merging
//! twice changes nothing, and bad databases stop with exit 2 and a clear message.
//!
//! The PostgreSQL tests start their own server: `initdb` and `postgres` from PATH or
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package), on 127.0.0.1 and a free
//! port, in a temporary folder, as `nobody` when run as root. It stops when the test
//! process ends. Without a server binary they skip, saying why; with CI=true they fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::*;

const PASSWORD: &str = "fleet-secret-pw";

/// A PostgreSQL server for this test process.
struct Server {
    port: u16,
    /// Closed when the process ends, which stops the server.
    _lifeline: std::process::ChildStdin,
}

fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("initdb"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p.canonicalize().ok()?.parent().map(Path::to_path_buf);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the server's user (`nobody` when we are root: PostgreSQL refuses root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> Result<Server, String> {
    let bin = find_bin().ok_or("no PostgreSQL server binaries (initdb) found")?;
    let dir = std::env::temp_dir().join(format!("specter-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("pw"), PASSWORD).map_err(|e| e.to_string())?;
    if is_root() {
        Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "specter", "-E", "UTF8", "--no-locale"])
        .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
        .arg(format!("--pwfile={}", dir.join("pw").display()))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The server lives as long as this test process: a watcher holds the read end of a
    // pipe whose write end only this process has; when it ends, however, the pipe
    // closes and the watcher stops the server (fast shutdown) and removes its folder.
    let script = format!(
        "{postgres} -D {data} -k {dir} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=50 >{dir}/log 2>&1 </dev/null & pg=$!; \
         cat >/dev/null; kill -INT $pg; wait $pg; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let mut watcher = as_server_user(Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let lifeline = watcher.stdin.take().ok_or("no pipe to the watcher")?;
    let server = Server {
        port,
        _lifeline: lifeline,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match ::postgres::Client::connect(&server.url("postgres"), ::postgres::NoTls) {
            Ok(_) => return Ok(server),
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("server did not start: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl Server {
    fn url(&self, db: &str) -> String {
        format!("postgres://specter:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh database named `name`; its URL.
    fn database(&self, name: &str) -> String {
        let mut c = ::postgres::Client::connect(&self.url("postgres"), ::postgres::NoTls)
            .expect("connect as superuser");
        // Each its own statement: neither may run in a transaction block.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .and_then(|_| c.batch_execute(&format!("CREATE DATABASE {name}")))
            .expect("create database");
        self.url(name)
    }
}

/// The test process's server, or None (with the reason printed) where PostgreSQL is
/// not installed; under CI it must be.
fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL could not be started: {why}");
            }
            eprintln!("skipping: {why}");
            None
        }
    }
}

fn capture(name: &str) -> String {
    root()
        .join("captures")
        .join(name)
        .to_str()
        .expect("path")
        .to_string()
}

/// Four writers' inputs: each analysis gets a different set of captures.
fn four_inputs() -> Vec<Vec<String>> {
    vec![
        vec![capture("shop-api-a.pcap")],
        vec![capture("shop-api-b.pcap")],
        vec![capture("grpc.pcap"), capture("h2c-nghttp.pcap")],
        vec![
            capture("keepalive-curl.pcap"),
            capture("pipelined.pcap"),
            capture("chunked-gzip.pcap"),
            capture("nginx-proxy.pcap"),
        ],
    ]
}

fn analyze_into(db: &str, inputs: &[String]) {
    let mut args = vec!["analyze", "--db", db];
    args.extend(inputs.iter().map(String::as_str));
    let out = specter(&args);
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs analyses at once, one process each.
fn analyze_concurrently(db: &str, inputs: &[Vec<String>]) {
    let children: Vec<_> = inputs
        .iter()
        .map(|files| {
            Command::new(env!("CARGO_BIN_EXE_specter"))
                .args(["analyze", "--db", db])
                .args(files)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn specter")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `specter endpoints --format json` on an inventory file or URL.
fn endpoints(db: &str) -> Vec<serde_json::Value> {
    endpoints_json(Path::new(db))
}

fn assert_same(a: &[serde_json::Value], b: &[serde_json::Value], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: endpoint counts differ");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "{what}: endpoints differ");
    }
}

fn run_count(url: &str) -> i64 {
    let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connect");
    c.query_one("SELECT count(*) FROM runs", &[])
        .expect("count runs")
        .get(0)
}

#[test]
fn four_concurrent_writers_into_postgres_equal_one_sqlite_run() {
    let Some(pg) = server() else { return };
    let url = pg.database("fleet4");
    let inputs = four_inputs();
    analyze_concurrently(&url, &inputs);
    assert_eq!(run_count(&url), 4);
    let fleet = endpoints(&url);
    assert!(fleet.len() > 30, "only {} endpoints", fleet.len());

    // The same batches one after the other into SQLite: exactly equal.
    let seq = temp_path("fleet-sequential.db");
    let seq = seq.to_str().expect("path");
    for files in &inputs {
        analyze_into(seq, files);
    }
    assert_same(
        &fleet,
        &endpoints(seq),
        "PostgreSQL fleet vs sequential SQLite",
    );

    // One analysis over every capture: equal endpoint by endpoint and count by count,
    // and word lists that only the batches together push past the cap folded for the
    // same reason.
    let one = temp_path("fleet-one.db");
    let one = one.to_str().expect("path");
    analyze_into(one, &inputs.concat());
    assert_same(
        &fleet,
        &endpoints(one),
        "PostgreSQL fleet vs one SQLite run",
    );
}

#[test]
fn concurrent_writers_into_one_sqlite_file_lose_nothing() {
    let inputs = four_inputs();
    let shared = temp_path("fleet-concurrent.db");
    let shared = shared.to_str().expect("path");
    analyze_concurrently(shared, &inputs[..3]);
    let seq = temp_path("fleet-concurrent-seq.db");
    let seq = seq.to_str().expect("path");
    for files in &inputs[..3] {
        analyze_into(seq, files);
    }
    assert_same(
        &endpoints(shared),
        &endpoints(seq),
        "concurrent SQLite vs sequential SQLite",
    );
}

/// Starts a writer that pauses inside its transaction, kills it there with SIGKILL,
/// and checks the inventory shows none of its batch; a next writer is not blocked.
fn killed_writer_leaves_nothing(db: &str, marker: &Path) {
    let a = capture("shop-api-a.pcap");
    let b = capture("shop-api-b.pcap");
    analyze_into(db, std::slice::from_ref(&a));
    let before = endpoints(db);
    let _ = std::fs::remove_file(marker);
    let mut child = Command::new(env!("CARGO_BIN_EXE_specter"))
        .args(["analyze", "--db", db, &b])
        .env("SPECTER_TEST_PAUSE_IN_WRITE", marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn specter");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the writer never reached its write"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert_same(
        &endpoints(db),
        &before,
        "after a writer was killed mid-batch",
    );
    // Its lock went with it: the next writer gets through, and the batch now counts.
    analyze_into(db, std::slice::from_ref(&b));
    let after = endpoints(db);
    let total = |v: &[serde_json::Value]| {
        v.iter()
            .map(|e| e["requests"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(total(&after) > total(&before));
}

#[test]
fn a_writer_killed_mid_batch_leaves_all_or_nothing() {
    let file = temp_path("killed.db");
    killed_writer_leaves_nothing(file.to_str().expect("path"), &temp_path("killed.marker"));
    if let Some(pg) = server() {
        let url = pg.database("killed");
        killed_writer_leaves_nothing(&url, &temp_path("killed-pg.marker"));
        assert_eq!(run_count(&url), 2, "the killed writer's run record stayed");
    }
}

fn merge(from: &[&str], into: &str) -> String {
    let mut args = vec!["merge", "--into", into];
    for f in from {
        args.extend(["--from", f]);
    }
    let out = specter(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "merge failed: {stderr}");
    stderr
}

#[test]
fn merge_equals_a_direct_analysis_and_merging_twice_changes_nothing() {
    let (a, b) = (temp_path("merge-a.db"), temp_path("merge-b.db"));
    let (a, b) = (a.to_str().expect("path"), b.to_str().expect("path"));
    analyze_into(a, &[capture("shop-api-a.pcap")]);
    // Callers are counted by salted hashes: the offline inventories share a salt, as
    // docs/deploy.md says to seed them (else a caller seen by both counts twice).
    std::fs::File::create(b).expect("create b");
    assert!(specter(&["endpoints", "--db", b]).status.success());
    let salt: String = rusqlite::Connection::open(a)
        .and_then(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
                r.get(0)
            })
        })
        .expect("a's salt");
    rusqlite::Connection::open(b)
        .and_then(|c| c.execute("UPDATE meta SET value = ?1 WHERE key = 'salt'", [&salt]))
        .expect("seed b's salt");
    analyze_into(b, &[capture("shop-api-b.pcap")]);
    let direct = temp_path("merge-direct.db");
    let direct = direct.to_str().expect("path");
    analyze_into(direct, &[capture("shop-api-a.pcap")]);
    analyze_into(direct, &[capture("shop-api-b.pcap")]);
    let expected = endpoints(direct);

    let mut targets = vec![temp_path("merge-into.db")
        .to_str()
        .expect("path")
        .to_string()];
    if let Some(pg) = server() {
        targets.push(pg.database("merged"));
    }
    for into in &targets {
        merge(&[a, b], into);
        assert_same(&endpoints(into), &expected, "merged vs direct");
        let again = merge(&[b, a], into);
        assert!(again.contains("skipped"), "{again}");
        assert_same(&endpoints(into), &expected, "merged twice vs direct");
        let out = specter(&["diff", "--db", into, "--spec", "specs/shop-api.yaml"]);
        assert!(out.status.code().is_some_and(|c| c < 2));
    }

    // A source analysed further since it was merged cannot be split: refused.
    analyze_into(a, &[capture("grpc.pcap")]);
    let out = specter(&["merge", "--from", a, "--into", &targets[0]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("merged into"));
}

#[test]
fn bad_databases_stop_with_exit_2_and_say_why() {
    let refused = "postgres://specter:pw@127.0.0.1:1/none";
    let out = specter(&["endpoints", "--db", refused]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains(":pw@"), "the password is shown: {stderr}");

    let Some(pg) = server() else { return };
    let url = pg.database("badinput");
    let wrong = url.replace(PASSWORD, "not-the-password");
    let out = specter(&["analyze", "--db", &wrong, &capture("grpc.pcap")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");

    analyze_into(&url, &[capture("grpc.pcap")]);
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connect");
    c.execute("UPDATE specter_schema SET version = 99", &[])
        .expect("bump the schema");
    for args in [
        vec!["endpoints", "--db", &url],
        vec!["analyze", "--db", &url, "captures/grpc.pcap"],
    ] {
        let out = specter(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("newer than this specter"), "{stderr}");
    }
}

#[test]
fn nothing_secret_reaches_the_postgres_tables() {
    let Some(pg) = server() else { return };
    let url = pg.database("secrets");
    analyze_into(
        &url,
        &[capture("shop-api-a.pcap"), capture("shop-api-b.pcap")],
    );
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connect");
    let mut haystack = String::new();
    for table in [
        "meta",
        "runs",
        "nodes",
        "observations",
        "tls_services",
        "hints",
        "endpoints",
    ] {
        for row in c
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .expect("dump")
        {
            haystack.push_str(row.get::<_, &str>(0));
            haystack.push('\n');
        }
    }
    assert!(haystack.len() > 10_000, "the dump is too small");
    let mut secrets = BTreeSet::new();
    for f in ["shop-api-a.secrets.txt", "shop-api-b.secrets.txt"] {
        let text = std::fs::read_to_string(root().join("captures").join(f)).expect("secrets");
        secrets.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 6)
                .map(String::from),
        );
    }
    let leaked: Vec<&String> = secrets.iter().filter(|s| haystack.contains(*s)).collect();
    assert!(leaked.is_empty(), "stored in the clear: {leaked:?}");
}

/// What the sensor does: one `Analysis`, saved every flush interval. Saving a capture in
/// three batches gives the inventory of one analysis over it, and each batch's run.
fn saved_in_batches(db: &str) {
    use specter::analysis::Analysis;
    let (mut analysis, errors) =
        Analysis::open(Path::new(db), None, &[]).expect("open the inventory");
    assert!(errors.is_empty());
    assert_eq!(analysis.endpoints_known(), 0);
    let mut exchanges = Vec::new();
    let file = std::fs::File::open(capture("shop-api-b.pcap")).expect("capture");
    let config = specter::pipeline::Config {
        http: specter::http1::Config {
            defer_decoding: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (stats, result) = specter::pipeline::run_capture(
        file,
        config,
        &mut |ex| exchanges.push(ex.clone()),
        &mut |_| {},
    );
    assert!(result.is_ok());
    let third = exchanges.len() / 3 + 1;
    let mut known = 0;
    for (i, chunk) in exchanges.chunks(third).enumerate() {
        for ex in chunk {
            analysis.observe(ex);
        }
        let batch_stats = if i == 0 {
            stats.clone()
        } else {
            Default::default()
        };
        let saved = analysis
            .save(format!("batch {i}"), Vec::new(), batch_stats)
            .expect("save");
        assert_eq!(saved.observed.exchanges, chunk.len() as u64);
        assert!(
            analysis.inventory.hosts.is_empty(),
            "the batch was not reset"
        );
        assert!(analysis.endpoints_known() >= known);
        known = analysis.endpoints_known();
        assert_eq!(known, saved.endpoints.len() as u64);
    }
    let whole = temp_path("batches-whole.db");
    let whole = whole.to_str().expect("path");
    analyze_into(whole, &[capture("shop-api-b.pcap")]);
    assert_same(&endpoints(db), &endpoints(whole), "three saves vs one");
}

#[test]
fn an_analysis_saved_batch_by_batch_equals_one_save() {
    saved_in_batches(temp_path("batches.db").to_str().expect("path"));
    if let Some(pg) = server() {
        let url = pg.database("batches");
        saved_in_batches(&url);
        assert_eq!(run_count(&url), 3);
    }
}

#[test]
fn prune_deletes_old_runs_and_keeps_the_inventory_and_merged_runs() {
    let mut dbs = vec![temp_path("prune.db").to_str().expect("path").to_string()];
    if let Some(pg) = server() {
        dbs.push(pg.database("prune"));
    }
    let source = temp_path("prune-source.db");
    let source = source.to_str().expect("path");
    analyze_into(source, &[capture("grpc.pcap")]);
    for db in &dbs {
        analyze_into(db, &[capture("shop-api-a.pcap")]);
        merge(&[source], db);
        let before = endpoints(db);
        let out = specter(&["prune", "--db", db, "--runs-before", "9999-01-01"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(": 1 runs"), "{stderr}");
        assert_same(&endpoints(db), &before, "after pruning runs");
        // The merged run stayed: merging the source again still changes nothing.
        assert!(merge(&[source], db).contains("skipped"));
        let out = specter(&["prune", "--db", db, "--runs-before", "yesterday"]);
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn a_save_after_the_connection_was_lost_reconnects_and_keeps_the_batch() {
    use specter::analysis::Analysis;
    let Some(pg) = server() else { return };
    let url = pg.database("reconnect");
    let (mut analysis, _) = Analysis::open(Path::new(&url), None, &[]).expect("open");
    let file = std::fs::File::open(capture("shop-api-b.pcap")).expect("capture");
    let config = specter::pipeline::Config {
        http: specter::http1::Config {
            defer_decoding: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (stats, result) =
        specter::pipeline::run_capture(file, config, &mut |ex| analysis.observe(ex), &mut |_| {});
    assert!(result.is_ok());
    // The server drops every connection to this database, as on a restart.
    let mut admin = ::postgres::Client::connect(&pg.url("postgres"), ::postgres::NoTls)
        .expect("connect as superuser");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'reconnect'",
            &[],
        )
        .expect("terminate");
    let first = analysis.save("lost".into(), Vec::new(), stats.clone());
    if let Err(e) = &first {
        // The batch is kept: the next save retries it on a new connection.
        assert!(e.to_string().contains("reconnect"), "{e}");
        analysis
            .save("retried".into(), Vec::new(), stats)
            .expect("the retry reconnects");
    }
    let whole = temp_path("reconnect-whole.db");
    let whole = whole.to_str().expect("path");
    analyze_into(whole, &[capture("shop-api-b.pcap")]);
    assert_same(&endpoints(&url), &endpoints(whole), "after a reconnect");
    assert_eq!(run_count(&url), 1);
}
