//! The inventory on the project's own captures of a real Flask API (captures/shop_api.py):
//! the endpoints it finds are the app's route table, sensitive data is found where the app
//! puts it and nowhere else, nothing secret is stored, and the order of captures does not
//! matter. Then hostile input: deep JSON, a 50 MB body, invalid UTF-8, an enumeration scan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::*;

/// The Host header the traffic generator sends (captures/shop_api.py).
const SHOP_HOST: &str = "api.shop.test";

fn shop(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

fn analyze(db: &Path, inputs: &[&Path], extra: &[&str]) -> String {
    let mut args = vec!["analyze", "--db", db.to_str().expect("path")];
    args.extend_from_slice(extra);
    for i in inputs {
        args.push(i.to_str().expect("path"));
    }
    let out = specter(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "analyze failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// `/api/v1/users/{user_id}` and `/api/v1/users/{userId}` are the same route.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

struct Route {
    auth: String,
    pii: BTreeSet<String>,
}

/// The route table the app prints from its own url_map (`shop_api.py routes`).
fn routes() -> BTreeMap<(String, String), Route> {
    let text = std::fs::read_to_string(shop("shop-api.routes.tsv")).expect("routes table");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let pii = match f.get(3).copied().unwrap_or("-") {
                "-" | "" => BTreeSet::new(),
                p => p.split(',').map(|s| s.trim().to_string()).collect(),
            };
            (
                (f[0].to_string(), shape(f[1])),
                Route {
                    auth: f.get(2).copied().unwrap_or("none").to_string(),
                    pii,
                },
            )
        })
        .collect()
}

fn shop_endpoints(db: &Path) -> BTreeMap<(String, String), serde_json::Value> {
    endpoints_json(db)
        .into_iter()
        .filter(|e| e["host"] == SHOP_HOST)
        .map(|e| {
            let key = (
                e["method"].as_str().unwrap_or("").to_string(),
                shape(e["path"].as_str().unwrap_or("")),
            );
            (key, e)
        })
        .collect()
}

fn strings(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_endpoints_found_are_the_apps_route_table() {
    let db = temp_path("routes.db");
    analyze(
        &db,
        &[&shop("shop-api-a.pcap"), &shop("shop-api-b.pcap")],
        &[],
    );
    let found = shop_endpoints(&db);
    let table = routes();
    let ours: BTreeSet<&(String, String)> = found.keys().collect();
    let theirs: BTreeSet<&(String, String)> = table.keys().collect();
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes not found: {missing:?}\nendpoints not in the app: {extra:?}"
    );
    assert!(table.len() >= 20, "the app has {} routes", table.len());
    let mut wrong = Vec::new();
    for (key, route) in &table {
        let e = &found[key];
        let auth = strings(&e["auth"]);
        if !auth.contains(&route.auth) {
            wrong.push(format!(
                "{key:?}: auth {auth:?}, the app requires {}",
                route.auth
            ));
        }
        let pii = strings(&e["pii"]);
        if pii != route.pii {
            wrong.push(format!(
                "{key:?}: pii {pii:?}, the app carries {:?}",
                route.pii
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nothing_secret_reaches_the_inventory_or_its_reports() {
    let db = temp_path("secrets.db");
    analyze(
        &db,
        &[&shop("shop-api-a.pcap"), &shop("shop-api-b.pcap")],
        &[],
    );
    let export = specter(&["export-openapi", "--db", db.to_str().expect("path")]);
    let listing = specter(&[
        "endpoints",
        "--format",
        "json",
        "--db",
        db.to_str().expect("path"),
    ]);
    let mut haystack = std::fs::read(&db).expect("db");
    if let Ok(wal) = std::fs::read(db.with_extension("db-wal")) {
        haystack.extend_from_slice(&wal);
    }
    haystack.extend_from_slice(&export.stdout);
    haystack.extend_from_slice(&listing.stdout);
    let mut secrets = BTreeSet::new();
    for f in ["shop-api-a.secrets.txt", "shop-api-b.secrets.txt"] {
        let text = std::fs::read_to_string(shop(f)).expect("secrets list");
        secrets.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 6)
                .map(String::from),
        );
    }
    assert!(secrets.len() > 20, "only {} secrets listed", secrets.len());
    let leaked: Vec<&String> = secrets
        .iter()
        .filter(|s| memchr::memmem::find(&haystack, s.as_bytes()).is_some())
        .collect();
    assert!(leaked.is_empty(), "stored in the clear: {leaked:?}");
}

#[test]
fn capture_order_does_not_matter_and_rerunning_changes_counts_only() {
    let (a, b) = (shop("shop-api-a.pcap"), shop("shop-api-b.pcap"));
    let (ab, ba) = (temp_path("ab.db"), temp_path("ba.db"));
    analyze(&ab, &[&a], &[]);
    analyze(&ab, &[&b], &[]);
    analyze(&ba, &[&b], &[]);
    analyze(&ba, &[&a], &[]);
    let (x, y) = (endpoints_json(&ab), endpoints_json(&ba));
    assert_eq!(x.len(), y.len());
    for (e, f) in x.iter().zip(&y) {
        assert_eq!(e, f, "the inventories differ");
    }
    analyze(&ab, &[&a], &[]);
    let again = endpoints_json(&ab);
    let key = |e: &serde_json::Value| {
        (
            e["host"].to_string(),
            e["method"].to_string(),
            e["path"].to_string(),
        )
    };
    let before: Vec<_> = x.iter().map(key).collect();
    let after: Vec<_> = again.iter().map(key).collect();
    assert_eq!(
        before, after,
        "re-reading a capture changed the endpoint set"
    );
    let total = |v: &[serde_json::Value]| {
        v.iter()
            .map(|e| e["requests"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(total(&again) > total(&x));
}

#[test]
fn the_exported_openapi_document_passes_an_independent_validator() {
    let db = temp_path("export.db");
    analyze(
        &db,
        &[&shop("shop-api-a.pcap"), &shop("shop-api-b.pcap")],
        &[],
    );
    let file = temp_path("export.json");
    let out = specter(&[
        "export-openapi",
        "--db",
        db.to_str().expect("path"),
        "-o",
        file.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("export")).expect("json");
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/api/v1/users/{userId}/orders/{orderId}"),
        "{:?}",
        paths.keys()
    );
    let login = &doc["paths"]["/api/v1/auth/login"]["post"];
    assert!(
        login["requestBody"]["content"]["application/json"]["schema"]["properties"]["password"]
            .is_object(),
        "{login}"
    );
    assert!(doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT");
    let Some(validator) = tool("openapi-spec-validator") else {
        return;
    };
    let v = std::process::Command::new(validator)
        .arg(&file)
        .output()
        .expect("run validator");
    assert!(
        v.status.success(),
        "openapi-spec-validator rejects the export:\n{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn path_hints_force_parameters_and_apply_to_what_is_known() {
    let db = temp_path("hints.db");
    analyze(&db, &[&shop("shop-api-b.pcap")], &[]);
    let hints = temp_path("hints.txt");
    std::fs::write(
        &hints,
        "# files are addressed by their whole path\n/api/v1/files/{path*}\n",
    )
    .expect("write");
    analyze(
        &db,
        &[&shop("shop-api-a.pcap")],
        &["--hints", hints.to_str().expect("path")],
    );
    let eps = endpoints_json(&db);
    let files: Vec<&str> = eps
        .iter()
        .filter_map(|e| e["path"].as_str())
        .filter(|p| p.starts_with("/api/v1/files/"))
        .collect();
    assert_eq!(files, ["/api/v1/files/{path}"]);
}

// Hostile input, through the whole binary.

fn response(body: &[u8], ctype: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn deep_json_huge_bodies_and_invalid_utf8_are_survived() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let nested = format!("{}\"x\"{}", "{\"a\":".repeat(100), "}".repeat(100)).into_bytes();
    let mut huge = b"{\"items\":[".to_vec();
    while huge.len() < 50 << 20 {
        huge.extend_from_slice(b"{\"email\":\"someone@example.com\",\"n\":12345},");
    }
    huge.extend_from_slice(b"{}]}");
    let mut bad_utf8 = b"GET /caf\xe9/\xff\xfe/items?q=\xc3\x28 HTTP/1.1\r\nHost: h\xffost\r\nX-Note: \xf0\x28\x8c\x28\r\n\r\n".to_vec();
    bad_utf8.extend_from_slice(b"");
    let conversations = vec![
        (b"GET /deep HTTP/1.1\r\nHost: api\r\n\r\n".to_vec(), response(&deep, "application/json")),
        (b"GET /nested HTTP/1.1\r\nHost: api\r\n\r\n".to_vec(), response(&nested, "application/json")),
        (
            format!("POST /upload HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", huge.len())
                .into_bytes()
                .into_iter()
                .chain(huge.iter().copied())
                .collect(),
            response(b"{\"ok\":true}", "application/json"),
        ),
        (bad_utf8, response(b"{\"n\":\"\xff\xfe\"}", "application/json")),
    ];
    let pcap = temp_path("hostile.pcap");
    write_http_pcap(&pcap, conversations);
    let db = temp_path("hostile.db");
    analyze(&db, &[&pcap], &[]);
    let eps = endpoints_json(&db);
    let paths: BTreeSet<&str> = eps.iter().filter_map(|e| e["path"].as_str()).collect();
    for p in ["/deep", "/nested", "/upload"] {
        assert!(paths.contains(p), "{p} missing from {paths:?}");
    }
    assert_eq!(eps.len(), 4, "{paths:?}");
    let export = specter(&["export-openapi", "--db", db.to_str().expect("path")]);
    assert!(export.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&export.stdout).expect("json");
    let text = doc["paths"]["/nested"].to_string();
    assert!(
        text.matches("properties").count() <= 10,
        "depth not bounded: {text}"
    );
}

#[test]
fn an_enumeration_scan_folds_instead_of_growing() {
    // A million requests for distinct word paths under one prefix, pipelined on 100
    // connections, each answered 404.
    let word = |mut n: u32| {
        let mut s = String::new();
        for _ in 0..5 {
            s.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
        }
        s
    };
    let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let conversations = (0..100u32).map(|c| {
        let mut req = Vec::new();
        let mut res = Vec::new();
        for i in 0..10_000u32 {
            req.extend_from_slice(
                format!(
                    "GET /scan/{} HTTP/1.1\r\nHost: victim\r\n\r\n",
                    word(c * 10_000 + i)
                )
                .as_bytes(),
            );
            res.extend_from_slice(resp);
        }
        (req, res)
    });
    let pcap = temp_path("scan.pcap");
    write_http_pcap(&pcap, conversations);
    let db = temp_path("scan.db");
    let stderr = analyze(&db, &[&pcap], &[]);
    assert!(
        stderr.contains("/scan: words folded into one parameter (cap)"),
        "{stderr}"
    );
    let eps = endpoints_json(&db);
    assert_eq!(eps.len(), 1, "{eps:?}");
    assert_eq!(eps[0]["path"], "/scan/{scan}");
    assert_eq!(eps[0]["requests"], 1_000_000);
    let distinct = eps[0]["params"][0]["distinct"].as_u64().unwrap_or(0);
    assert!(distinct > 600_000, "distinct estimate {distinct}");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    assert!(size < 2 << 20, "inventory of {size} bytes for one endpoint");
}

#[test]
fn a_spec_s_templates_are_matched_first_and_name_the_parameters() {
    let db = temp_path("spec.db");
    let spec = root().join("specs/shop-api.yaml");
    analyze(
        &db,
        &[&shop("shop-api-a.pcap"), &shop("shop-api-b.pcap")],
        &["--spec", spec.to_str().expect("path")],
    );
    let eps = endpoints_json(&db);
    let paths: BTreeSet<String> = eps
        .iter()
        .filter_map(|e| e["path"].as_str().map(String::from))
        .collect();
    // Documented: the spec's names under its /api base path.
    for p in [
        "/api/v1/users/{user_id}/orders/{order_id}",
        "/api/v1/articles/{slug}",
        "/api/v1/files/{file_hash}",
        "/api/v1/reports/{report_date}",
        "/api/v1/users/me",
    ] {
        assert!(paths.contains(p), "{p} not in {paths:?}");
    }
    // Undocumented: templated from the traffic alone.
    assert!(paths.contains("/api/v1/sessions/{sessionId}"), "{paths:?}");
    assert!(paths.contains("/api/v1/admin/users/{userId}"), "{paths:?}");
    // The same endpoints as without a spec: only names change.
    let ours: BTreeSet<(String, String)> = eps
        .iter()
        .map(|e| {
            let m = e["method"].as_str().unwrap_or("").to_string();
            (m, shape(e["path"].as_str().unwrap_or("")))
        })
        .collect();
    let theirs: BTreeSet<(String, String)> = routes().into_keys().collect();
    assert_eq!(ours, theirs);
}

#[test]
fn ids_with_a_format_extension_are_one_endpoint_per_extension() {
    let pcap = temp_path("extensions.pcap");
    write_http_pcap(&pcap, extension_conversations());
    let db = temp_path("extensions.db");
    analyze(&db, &[&pcap], &[]);
    let eps = endpoints_json(&db);
    let got: Vec<(String, u64)> = eps
        .iter()
        .map(|e| {
            (
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap_or("?"),
                    e["path"].as_str().unwrap_or("?")
                ),
                e["requests"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want = [
        ("GET /api/v1/orders/{orderId}", 2),
        ("GET /api/v1/orders/{orderId}.json", 30),
        ("GET /api/v1/users/{userId}.json", 5),
        ("GET /api/v1/users/{userId}.xml", 1),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(p, n)| (p.to_string(), *n)).collect();
    assert_eq!(got, want);
    let orders = &eps[1]["params"][0];
    assert_eq!(orders["suffix"], ".json", "{orders}");
    assert_eq!(orders["shape"], "int", "{orders}");
    // Read back from the inventory a second run merges into, the same endpoints.
    analyze(&db, &[&pcap], &[]);
    assert_eq!(endpoints_json(&db).len(), 4);
    // The export declares the parameter of the path with an extension.
    let export = specter(&["export-openapi", "--db", db.to_str().expect("path")]);
    assert!(export.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&export.stdout).expect("json");
    let op = &doc["paths"]["/api/v1/orders/{orderId}.json"]["get"];
    let params = op["parameters"].to_string();
    assert!(
        params.contains("\"name\":\"orderId\"") && params.contains("\"in\":\"path\""),
        "{op}"
    );
    assert!(doc["paths"]["/api/v1/orders/{orderId}"]["get"].is_object());
}
