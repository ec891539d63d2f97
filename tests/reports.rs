//! The report formats end to end: every format written to a file as `specter diff -o`
//! does, then read back by something other than the writer: the JSON against
//! docs/report.schema.json, the SARIF against the official OASIS schema, the JUnit by an
//! XML parser, and the HTML page by headless Chromium, which runs its script.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use specter::report::findings::{self, sample, ReportFormat};

use crate::util::{endpoints_json, root, specter, temp_path, tool};

/// Writes the sample report in `format` to `dir/report.EXT` and returns the path.
fn write_file(dir: &Path, format: ReportFormat) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the output folder");
    let path = dir.join(format!("report.{}", format.extension()));
    let mut file = std::fs::File::create(&path).expect("create the report file");
    findings::write(&sample::report(), format, &mut file, false).expect("write the report");
    path
}

fn out_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Schema errors of the JSON file at `instance` against the schema at `schema`.
fn schema_errors(schema: &Path, instance: &Path) -> Vec<String> {
    let read = |p: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&read(schema))
        .expect("a valid schema");
    validator
        .iter_errors(&read(instance))
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn json_report_validates_against_its_documented_schema() {
    let file = write_file(&out_dir("reports-json"), ReportFormat::Json);
    let errors = schema_errors(&root().join("docs/report.schema.json"), &file);
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The sample's endpoints are written by hand; these are the inventory's own, from the
/// project's capture of a real API (parameters, query, JWT, PII detail filled in), each
/// given the spec fields an undocumented endpoint has in a diff report.
#[test]
fn real_endpoints_fit_the_report_schema() {
    let db = temp_path("reports-schema.db");
    let capture = root().join("captures/shop-api-a.pcap");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        capture.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut endpoints = endpoints_json(&db);
    assert!(endpoints.len() > 5, "{} endpoints", endpoints.len());
    for e in &mut endpoints {
        for key in ["spec_path", "operation_id", "spec"] {
            e[key] = serde_json::Value::Null;
        }
        e["documented"] = false.into();
        e["deprecated"] = false.into();
    }
    let file = write_file(&out_dir("reports-real"), ReportFormat::Json);
    let text = std::fs::read_to_string(&file).expect("read");
    let mut report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    report["endpoints"] = endpoints.into();
    std::fs::write(&file, report.to_string()).expect("write");
    let errors = schema_errors(&root().join("docs/report.schema.json"), &file);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let file = write_file(&out_dir("reports-sarif"), ReportFormat::Sarif);
    let schema = root().join("tests/fixtures/schemas/sarif-schema-2.1.0.json");
    let errors = schema_errors(&schema, &file);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn junit_is_well_formed_xml_with_a_case_per_endpoint() {
    let file = write_file(&out_dir("reports-junit"), ReportFormat::Junit);
    let xml = std::fs::read_to_string(&file).expect("read");
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().check_end_names = true;
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => panic!(
                "{}: not XML at {}: {e}",
                file.display(),
                reader.buffer_position()
            ),
        }
    }
    assert_eq!((cases, failures), (5, 5));
}

#[test]
fn every_format_writes_a_file() {
    let dir = out_dir("reports-all");
    for f in ReportFormat::value_variants() {
        let f = *f;
        let path = write_file(&dir, f);
        let len = std::fs::metadata(&path).expect("written").len();
        assert!(len > 200, "{}: {len} bytes", path.display());
    }
}

/// Runs headless Chromium with `args` and the page's URL, killing it after a minute.
fn run_chromium(bin: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait for chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn html_report_renders_in_headless_chromium() {
    // Debian's package; .ci/run installs it.
    let Some(bin) = tool("chromium") else {
        return;
    };
    let dir = out_dir("reports-html");
    let file = write_file(&dir, ReportFormat::Html);
    let url = format!("file://{}", file.display());
    let profile = dir.join("chromium-profile");

    let dom = run_chromium(&bin, &profile, &["--dump-dom"], &url);
    assert!(dom.contains("data-ready=\"1\""), "the script ran: {dom}");
    assert_eq!(dom.matches("<tr data-kind=").count(), 7);
    assert!(dom.contains("7 of 7 findings shown"), "the filter ran");
    // The hostile path is text in its cell, not an element.
    assert!(dom.contains("/search/&lt;script&gt;alert(\"x\")&lt;/script&gt;"));
    assert_eq!(dom.matches("<script").count(), 1, "no injected script");

    // The filter read from the URL: two shadow findings, the other rows hidden.
    let filtered = run_chromium(
        &bin,
        &profile,
        &["--dump-dom"],
        &format!("{url}#kind=shadow"),
    );
    assert!(filtered.contains("2 of 7 findings shown"), "{filtered}");
    assert_eq!(filtered.matches("<tr data-kind=").count(), 7);
    let hidden = filtered
        .split("<tr data-kind=")
        .skip(1)
        .filter(|row| {
            row.split('>')
                .next()
                .is_some_and(|tag| tag.contains("hidden"))
        })
        .count();
    assert_eq!(hidden, 5, "{filtered}");

    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &bin,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    if std::env::var_os("SPECTER_UPDATE_SCREENSHOT").is_some() {
        let docs = root().join("docs/img/report.png");
        std::fs::create_dir_all(docs.parent().expect("docs/img")).expect("mkdir docs/img");
        std::fs::copy(&shot, &docs).expect("update docs/img/report.png");
    }
}

/// A real diff (the shop captures against the team's planted spec) in JSON and SARIF,
/// each validated against its schema; the SARIF results are the JSON findings, located
/// at the spec lines the JSON gives.
#[test]
fn a_real_diff_validates_in_json_and_sarif() {
    let db = temp_path("reports-real-diff.db");
    let out = specter(&[
        "analyze",
        "--db",
        db.to_str().expect("path"),
        root()
            .join("captures/shop-api-a.pcap")
            .to_str()
            .expect("path"),
        root()
            .join("captures/shop-api-b.pcap")
            .to_str()
            .expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = out_dir("reports-real-diff");
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |format: &str| {
        let file = dir.join(format!("report.{format}"));
        let out = Command::new(env!("CARGO_BIN_EXE_specter"))
            .current_dir(root())
            .args(["diff", "--db", db.to_str().expect("path")])
            .args(["--spec", "specs/shop-api.yaml", "--format", format, "-o"])
            .arg(&file)
            .output()
            .expect("run specter");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        file
    };
    let json = write("json");
    let errors = schema_errors(&root().join("docs/report.schema.json"), &json);
    assert!(errors.is_empty(), "{errors:#?}");
    let sarif = write("sarif");
    let schema = root().join("tests/fixtures/schemas/sarif-schema-2.1.0.json");
    let errors = schema_errors(&schema, &sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
    };
    let (report, log) = (read(&json), read(&sarif));
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let results = log["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(findings.len() > 10);
    assert_eq!(findings.len(), results.len());
    for (f, r) in findings.iter().zip(&results) {
        assert_eq!(f["rule"], r["ruleId"], "{r}");
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "specs/shop-api.yaml", "{r}");
        if let Some(line) = f["spec"]["line"].as_u64().filter(|l| *l > 0) {
            assert_eq!(loc["region"]["startLine"], line, "{r}");
        }
    }
}
