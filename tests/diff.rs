//! Specs against reality on the shop API (captures/shop_api.py and its captures): the
//! complete spec gives no findings but what the traffic itself shows (Basic credentials in
//! cleartext on the admin routes), the team's spec gives exactly the planted cases of
//! specs/shop-api.expected.tsv, and the Swagger 2.0, OpenAPI 3.0 and 3.1 versions of each
//! give the same findings. Then `ci` exit codes and baselines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::util::*;

fn project(path: &str) -> PathBuf {
    root().join(path)
}

/// An inventory of both shop captures, made once.
fn shop_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let db = temp_path("diff-shop.db");
        let out = specter(&[
            "analyze",
            "--db",
            db.to_str().expect("path"),
            project("captures/shop-api-a.pcap").to_str().expect("path"),
            project("captures/shop-api-b.pcap").to_str().expect("path"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    })
}

/// Runs `specter diff --format json` with extra arguments; returns the exit code and the
/// report.
fn diff_json(spec: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let spec = project(spec);
    let mut args = vec![
        "diff",
        "--db",
        shop_db().to_str().expect("path"),
        "--spec",
        spec.to_str().expect("path"),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = specter(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff json: {e}; stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report)
}

/// `/users/{user_id}` and `/users/{userId}` are the same path: undocumented endpoints
/// have the inventory's parameter names, the expected files the app's.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// A finding as the expected-findings file writes it: kind, method, path, subject.
type Case = (String, String, String, String);

fn case_of(f: &serde_json::Value) -> Case {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let ev = &f["evidence"];
    let subject = ["field", "parameter", "status"]
        .iter()
        .find_map(|k| ev[*k].as_str().map(str::to_string))
        .or_else(|| {
            ev["location"]
                .as_str()
                .map(|l| l.split_once(':').map_or(l, |(_, rest)| rest).to_string())
        })
        .unwrap_or_else(|| "-".into());
    (
        s(&f["kind"]),
        s(&f["method"]),
        shape(&s(&f["path"])),
        subject,
    )
}

fn cases(report: &serde_json::Value) -> BTreeSet<Case> {
    report["findings"]
        .as_array()
        .map(|a| a.iter().map(case_of).collect())
        .unwrap_or_default()
}

/// What the traffic shows whatever the spec says: Basic credentials in cleartext on every
/// route the app protects with Basic (captures/shop-api.routes.tsv, the app's own table).
fn traffic_truths() -> BTreeSet<Case> {
    let routes = std::fs::read_to_string(project("captures/shop-api.routes.tsv")).expect("routes");
    routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() >= 3 && c[2] == "basic").then(|| {
                (
                    "posture".to_string(),
                    c[0].to_string(),
                    shape(c[1]),
                    "-".to_string(),
                )
            })
        })
        .collect()
}

/// The findings a specs/*.expected.tsv file lists.
fn expected(file: &str) -> BTreeSet<Case> {
    let text = std::fs::read_to_string(project(file)).expect("expected findings");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip_while(|l| l.starts_with("kind\t"))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 4, "bad line in shop-api.expected.tsv: {l}");
            (c[0].into(), c[1].into(), shape(c[2]), c[3].into())
        })
        .collect()
}

fn same(found: &BTreeSet<Case>, want: &BTreeSet<Case>, what: &str) {
    let missing: Vec<_> = want.difference(found).collect();
    let extra: Vec<_> = found.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:#?}\nfalse positives {extra:#?}"
    );
}

#[test]
fn the_complete_spec_gives_no_findings_but_what_the_traffic_shows() {
    let mut want = expected("specs/shop-api.full.expected.tsv");
    want.extend(traffic_truths());
    for spec in [
        "specs/shop-api.full.yaml",
        "specs/shop-api.full.swagger.yaml",
        "specs/shop-api.full.oas31.json",
    ] {
        let (code, report) = diff_json(spec, &[]);
        assert_eq!(code, 0, "{spec}");
        same(&cases(&report), &want, spec);
        let s = &report["summary"];
        assert_eq!(s["endpoints"], s["documented"], "{spec}: {s}");
        assert_eq!(s["documented"], 34, "{spec}");
    }
}

#[test]
fn the_team_spec_gives_exactly_the_planted_cases_in_every_version() {
    let mut want = expected("specs/shop-api.expected.tsv");
    want.extend(traffic_truths());
    for spec in [
        "specs/shop-api.yaml",
        "specs/shop-api.swagger.yaml",
        "specs/shop-api.oas31.json",
    ] {
        let (_, report) = diff_json(spec, &[]);
        same(&cases(&report), &want, spec);
        for f in report["findings"].as_array().into_iter().flatten() {
            if f["rule"] == "zombie.retiring" {
                // The app announces a Sunset after the capture was made.
                assert_eq!(
                    f["evidence"]["sunset"], "2027-06-30T23:59:59.000000Z",
                    "{f}"
                );
                assert_eq!(f["evidence"]["called_after_sunset"], false, "{f}");
            }
            assert!(f["id"].as_str().is_some_and(|i| i.len() == 16), "{f}");
            assert!(!f["message"].as_str().unwrap_or_default().is_empty());
            if f["kind"] != "shadow" {
                assert!(
                    f["spec"]["line"].as_u64().unwrap_or(0) > 0,
                    "no spec line: {f}"
                );
            }
        }
    }
}

#[test]
fn a_baseline_suppresses_exactly_what_it_lists() {
    let base = temp_path("diff-baseline.json");
    let base_s = base.to_str().expect("path");
    let (code, all) = diff_json(
        "specs/shop-api.yaml",
        &["--write-baseline", base_s, "--fail-on", "any"],
    );
    assert_eq!(code, 1);
    let total = all["findings"].as_array().map_or(0, Vec::len);
    assert!(total > 5);
    let (code, none) = diff_json(
        "specs/shop-api.yaml",
        &["--baseline", base_s, "--fail-on", "any"],
    );
    assert_eq!(code, 0, "{none}");
    assert_eq!(none["findings"].as_array().map_or(1, Vec::len), 0);
    assert_eq!(none["summary"]["suppressed"], total);
    // Accept all but one: exactly that one comes back.
    let mut b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).expect("baseline")).expect("json");
    let removed = b["findings"].as_array_mut().expect("list").remove(0);
    std::fs::write(&base, b.to_string()).expect("write");
    let (code, one) = diff_json(
        "specs/shop-api.yaml",
        &["--baseline", base_s, "--fail-on", "any"],
    );
    assert_eq!(code, 1);
    let ids: Vec<_> = one["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(ids, [removed["id"].clone()]);
}

#[test]
fn a_broken_baseline_is_an_error_naming_file_and_line() {
    let base = temp_path("diff-bad-baseline.json");
    std::fs::write(&base, "{\n  \"findings\": [\n    oops\n  ]\n}\n").expect("write");
    let spec = project("specs/shop-api.yaml");
    let out = specter(&[
        "diff",
        "--db",
        shop_db().to_str().expect("path"),
        "--spec",
        spec.to_str().expect("path"),
        "--baseline",
        base.to_str().expect("path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("diff-bad-baseline.json"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(out.stdout.is_empty());
}

fn ci(args: &[&str]) -> (i32, String) {
    let mut all = vec!["ci"];
    all.extend_from_slice(args);
    let out = specter(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn ci_exit_codes() {
    let a = project("captures/shop-api-a.pcap");
    let b = project("captures/shop-api-b.pcap");
    let (a, b) = (a.to_str().expect("path"), b.to_str().expect("path"));
    let full = project("specs/shop-api.full.yaml");
    let team = project("specs/shop-api.yaml");
    let (full, team) = (full.to_str().expect("path"), team.to_str().expect("path"));
    let out = temp_path("ci-report.json");
    let out_s = out.to_str().expect("path");
    // The complete spec: no shadow, unobserved, pii or drift (its findings are the zombie
    // the app itself deprecates and Basic in cleartext).
    let (code, err) = ci(&[
        "--spec",
        full,
        "--fail-on",
        "shadow,unobserved,pii,drift",
        "--format",
        "json",
        "-o",
        out_s,
        a,
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(report["summary"]["documented"], 34);
    // ... and the default --fail-on counts the zombie.
    assert_eq!(ci(&["--spec", full, "-o", out_s, a, b]).0, 1);
    // The team's spec: shadow and zombie endpoints fail the build.
    let (code, err) = ci(&["--spec", team, "-o", out_s, a, b]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shadow"), "{err}");
    // --fail-on none never fails.
    assert_eq!(
        ci(&["--spec", team, "--fail-on", "none", "-o", out_s, a, b]).0,
        0
    );
    // Usage and input errors: 2.
    assert_eq!(ci(&["--spec", team, "--fail-on", "ghosts", a]).0, 2);
    assert_eq!(
        ci(&["--spec", "/nonexistent/spec.yaml", "-o", out_s, a]).0,
        2
    );
    let broken = temp_path("ci-broken.pcap");
    std::fs::write(&broken, b"\xd4\xc3\xb2\xa1garbage").expect("write");
    assert_eq!(
        ci(&["--spec", full, "-o", out_s, broken.to_str().expect("path")]).0,
        2
    );
}

#[test]
fn analyze_with_a_spec_ends_with_the_summary() {
    let db = temp_path("diff-analyze.db");
    let team = project("specs/shop-api.yaml");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        "--spec",
        team.to_str().expect("path"),
        project("captures/shop-api-a.pcap").to_str().expect("path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("against the specs:"), "{stderr}");
    assert!(stderr.contains("shadow"), "{stderr}");
    // A broken spec beside it: named with its line, the run goes on, exit 2.
    let broken = temp_path("diff-broken.yaml");
    std::fs::write(&broken, "openapi: 3.0.3\npaths:\n  /x: [\n").expect("write");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        "--spec",
        broken.to_str().expect("path"),
        "--spec",
        team.to_str().expect("path"),
        project("captures/shop-api-b.pcap").to_str().expect("path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("diff-broken.yaml:4:"), "{stderr}");
    assert!(stderr.contains("against the specs:"), "{stderr}");
}

#[test]
fn endpoints_on_hosts_no_spec_serves_are_left_out_unless_asked() {
    // The shop spec serves api.shop.test; an inventory with another host.
    let db = temp_path("diff-hosts.db");
    let other = temp_path("diff-other-host.pcap");
    write_http_pcap(
        &other,
        [(
            b"GET /internal/metrics HTTP/1.1\r\nHost: metrics.corp.test\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        )],
    );
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        other.to_str().expect("path"),
        project("captures/shop-api-a.pcap").to_str().expect("path"),
    ]);
    assert!(out.status.success());
    let full = project("specs/shop-api.full.yaml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "diff",
            "--db",
            db.to_str().expect("path"),
            "--spec",
            full.to_str().expect("path"),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = specter(&args);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    let scoped = run(&[]);
    let notes = scoped["window"]["notes"].to_string();
    assert!(notes.contains("metrics.corp.test"), "{notes}");
    assert!(!cases(&scoped).iter().any(|c| c.2 == "/internal/metrics"));
    let all = run(&["--all-hosts"]);
    assert!(cases(&all)
        .iter()
        .any(|c| c.0 == "shadow" && c.2 == "/internal/metrics"));
}

/// Python 3 with the modules the spec checks need, or None with a printed reason (under
/// CI, .ci/run installs them).
fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = tool("python3")?;
    let probe = std::process::Command::new(&python)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .ok()?;
    if probe.status.success() {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but python3 lacks {modules:?} (.ci/run installs them)");
    }
    eprintln!("skipping: python3 lacks {modules:?}");
    None
}

/// The test data is checked without specter: the complete spec holds for every exchange of
/// the captures (specs/check-traffic.py, with jsonschema, on the captures' tshark view and
/// an in-process replay of the generator for bodies), the planted spec gives the expected
/// cases by that independent reading too, and the generated variants are up to date.
#[test]
fn the_example_specs_are_true_to_the_app_by_an_independent_check() {
    let Some(python) = python_with(&["yaml", "jsonschema", "flask"]) else {
        return;
    };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&python)
            .current_dir(root())
            .args(args)
            .output()
            .expect("run python3");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&["specs/make-variants.py", "--check"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = run(&[
        "specs/check-traffic.py",
        "--spec",
        "specs/shop-api.full.yaml",
        "--expect",
        "specs/shop-api.full.expected.tsv",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("8000 exchanges, 0 failed"), "{text}");
    let (_, text) = run(&[
        "specs/check-traffic.py",
        "--spec",
        "specs/shop-api.yaml",
        "--expect",
        "specs/shop-api.expected.tsv",
    ]);
    assert!(text.contains("expected findings: 0 mismatches"), "{text}");
}

/// Posture from the traffic itself, and no "never seen" claim where nothing reached the
/// spec's host: a small API with a key in the query string and an unsigned JWT, and a
/// second spec for a host that received no traffic.
#[test]
fn posture_from_traffic_and_no_claims_where_the_sensor_was_blind() {
    let pcap = temp_path("diff-posture.pcap");
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"sub":"42","exp":4102444800}"#)
    );
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        .to_vec();
    write_http_pcap(
        &pcap,
        [
            (
                b"GET /v1/reports?api_key=k3y-0123456789abcdef HTTP/1.1\r\nHost: api.small.test\r\n\r\n".to_vec(),
                ok.clone(),
            ),
            (
                format!("GET /v1/me HTTP/1.1\r\nHost: api.small.test\r\nAuthorization: Bearer {unsigned}\r\n\r\n")
                    .into_bytes(),
                ok.clone(),
            ),
            // Undocumented, and past the Sunset its responses announce (the capture is
            // from 2023).
            (
                b"GET /v1/old-export HTTP/1.1\r\nHost: api.small.test\r\n\r\n".to_vec(),
                b"HTTP/1.1 200 OK\r\nDeprecation: true\r\nSunset: Sat, 01 Jan 2022 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ),
        ],
    );
    let small = temp_path("diff-small.yaml");
    std::fs::write(
        &small,
        "openapi: 3.0.3\ninfo: {title: small, version: '1'}\nservers: [{url: 'http://api.small.test/v1'}]\n\
         paths:\n  /reports:\n    get:\n      parameters: [{name: api_key, in: query, schema: {type: string}}]\n      responses: {'200': {description: ok}}\n\
         \x20 /me:\n    get:\n      responses: {'200': {description: ok}}\n",
    )
    .expect("write spec");
    let blind = temp_path("diff-blind.json");
    std::fs::write(
        &blind,
        r#"{"swagger": "2.0", "info": {"title": "blind", "version": "1"}, "host": "api.blind.test",
            "paths": {"/things": {"get": {"responses": {"200": {"description": "ok"}}}}}}"#,
    )
    .expect("write spec");
    // A host-less spec of another service: it serves any host, but none of its operations
    // was seen here, so it says nothing of this traffic.
    let hostless = temp_path("diff-hostless.json");
    std::fs::write(
        &hostless,
        r#"{"swagger": "2.0", "info": {"title": "other", "version": "1"},
            "paths": {"/inventory/{sku}": {"get": {"responses": {"200": {"description": "ok"}}}}}}"#,
    )
    .expect("write spec");
    let out = temp_path("diff-posture.json");
    let (code, err) = ci(&[
        "--spec",
        small.to_str().expect("path"),
        "--spec",
        blind.to_str().expect("path"),
        "--spec",
        hostless.to_str().expect("path"),
        "--format",
        "json",
        "-o",
        out.to_str().expect("path"),
        pcap.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    let rules: BTreeSet<(String, String)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("posture.token_in_query", "/v1/reports"),
        ("posture.jwt_alg_none", "/v1/me"),
        ("zombie.retiring", "/v1/old-export"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rules, want, "{report}");
    let old = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "zombie.retiring")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        old["evidence"]["sunset"], "2022-01-01T00:00:00.000000Z",
        "{old}"
    );
    assert_eq!(old["evidence"]["called_after_sunset"], true, "{old}");
    assert_eq!(old["severity"], "high", "{old}");
    assert_eq!(report["summary"]["operations"], 4);
    assert_eq!(report["summary"]["unobserved"], 0);
    let notes = report["window"]["notes"].to_string();
    assert!(
        notes.contains("no traffic reached api.blind.test"),
        "{notes}"
    );
    // The secret itself is nowhere in the report.
    assert!(!report.to_string().contains("k3y-0123456789abcdef"));
}

/// `/users/{id}` in a spec does not document `/users/{userId}.json`: the extension makes
/// another endpoint, shadow unless the spec has `/users/{id}.json` too.
#[test]
fn paths_with_a_format_extension_match_only_their_own_spec_path() {
    let pcap = temp_path("diff-extensions.pcap");
    write_http_pcap(&pcap, extension_conversations());
    let spec = temp_path("diff-extensions.yaml");
    std::fs::write(
        &spec,
        r#"openapi: 3.0.3
info: {title: orders, version: "1"}
servers: [{url: "http://api.ext.test/api/v1"}]
paths:
  /orders/{id}.json:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {"200": {description: the order}}
  /users/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {"200": {description: the user}}
"#,
    )
    .expect("write spec");
    // With the spec as hints at analysis too: `/users/{id}` does not take `.json` ids.
    let db = temp_path("diff-extensions.db");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        "--spec",
        spec.to_str().expect("path"),
        pcap.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = specter(&[
        "diff",
        "--db",
        db.to_str().expect("path"),
        "--spec",
        spec.to_str().expect("path"),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let found = |kind: &str| -> BTreeSet<String> {
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] == kind)
            .filter_map(|f| f["path"].as_str().map(str::to_string))
            .collect()
    };
    let want = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(report["summary"]["documented"], 1, "{}", report["summary"]);
    assert_eq!(
        found("shadow"),
        want(&[
            "/api/v1/orders/{orderId}",
            "/api/v1/users/{userId}.json",
            "/api/v1/users/{userId}.xml",
        ])
    );
    assert_eq!(found("unobserved"), want(&["/api/v1/users/{id}"]));
}
