//! The spec loader on real specs and on bad ones: public specs from several sources load
//! with their operation counts, the three versions of one API give one model, openapiv3
//! reads every 3.0 spec as we do, and broken input gives errors and warnings that name
//! the file and line, never a panic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use specter::spec::{
    load_file, parse, Operation, ParamLocation, Spec, SpecError, SpecSet, SpecWarning,
};

use crate::util::root;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/specs")
}

fn load(path: &Path) -> (Spec, Vec<SpecWarning>) {
    match load_file(path) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("specter-specs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes `text` to `dir/name` and gives the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    path
}

/// The file as a JSON value, read without the loader.
fn raw(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read");
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).expect("json")
    } else {
        yaml_serde::from_str(&text).expect("yaml")
    }
}

/// Method keys under `paths`, counted on the raw value.
fn count_operations(v: &Value) -> usize {
    v["paths"]
        .as_object()
        .map(|paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .map(|item| {
                    item.keys()
                        .filter(|k| METHODS.contains(&k.as_str()))
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn public_specs_load_without_errors() {
    // (file, version, operations counted by Python's yaml/json on the file as vendored)
    let expected = [
        ("airflow-2.10.5.openapi30.yaml", "3.0", 89),
        ("airflow-3.3.2.openapi31.yaml", "3.1", 128),
        ("docker-engine-1.41.swagger2.yaml", "2.0", 106),
        ("kubernetes-1.14.swagger2.json", "2.0", 863),
        ("netlify.swagger2.json", "2.0", 181),
        ("scalar-galaxy.openapi31.yaml", "3.1", 9),
    ];
    let dir = fixtures().join("public");
    let set = SpecSet::load(std::slice::from_ref(&dir));
    let errors: Vec<String> = set.errors.iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(set.specs.len(), expected.len());
    for (file, version, ops) in expected {
        let path = dir.join(file);
        let Some(spec) = set.specs.iter().find(|s| s.file == path) else {
            panic!("{file} not loaded");
        };
        assert_eq!(spec.version.as_str(), version, "{file}");
        assert_eq!(
            count_operations(&raw(&path)),
            ops,
            "{file}: counted on the raw file"
        );
        assert_eq!(spec.operations.len(), ops, "{file}");
        assert!(spec.paths_line > 0, "{file}");
        let unlocated = spec.operations.iter().filter(|o| o.line == 0).count();
        assert_eq!(unlocated, 0, "{file}: operations without a line");
    }
    let big = set
        .specs
        .iter()
        .map(|s| s.operations.len())
        .max()
        .unwrap_or(0);
    assert!(big >= 200);
    // The vendored specs are well-formed: every warning is one we can explain.
    for w in &set.warnings {
        assert!(
            w.message.contains("operationId") || w.message.contains("expand too far"),
            "unexpected warning: {w}"
        );
    }
}

#[test]
fn lines_point_at_method_keys() {
    let dir = fixtures().join("public");
    for file in [
        "airflow-2.10.5.openapi30.yaml",
        "airflow-3.3.2.openapi31.yaml",
        "docker-engine-1.41.swagger2.yaml",
        "kubernetes-1.14.swagger2.json",
        "netlify.swagger2.json",
        "scalar-galaxy.openapi31.yaml",
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let (spec, _) = load(&path);
        if lines.len() == 1 {
            // Minified JSON (Kubernetes): everything is on line 1.
            assert!(spec.operations.iter().all(|o| o.line == 1), "{file}");
            continue;
        }
        for op in &spec.operations {
            let line = lines.get(op.line - 1).copied().unwrap_or("");
            let key = line.trim_start().trim_start_matches('"');
            assert!(
                key.starts_with(&op.method.to_lowercase()),
                "{file}:{}: {} {} is on `{:.100}`",
                op.line,
                op.method,
                op.spec_path,
                line
            );
        }
        let paths_line = lines.get(spec.paths_line - 1).copied().unwrap_or("");
        assert!(paths_line
            .trim_start()
            .trim_start_matches('"')
            .starts_with("paths"));
    }
}

/// What must not depend on the version an API is written in.
fn comparable(op: &Operation) -> String {
    let mut op = op.clone();
    op.line = 0;
    serde_json::to_string_pretty(&op).unwrap_or_default()
}

#[test]
fn one_api_in_three_versions_gives_one_model() {
    let dir = fixtures().join("versions");
    let specs: Vec<(Spec, Vec<SpecWarning>)> = [
        "pets.swagger2.yaml",
        "pets.openapi30.yaml",
        "pets.openapi31.yaml",
    ]
    .iter()
    .map(|f| load(&dir.join(f)))
    .collect();
    for (spec, warnings) in &specs {
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            spec.operations.len(),
            5,
            "{}: webhooks are not operations",
            spec.file.display()
        );
        assert_eq!(spec.servers.len(), 1);
        assert_eq!(spec.servers[0].host.as_deref(), Some("api.pets.example"));
        assert_eq!(spec.servers[0].base_path, "/v1");
        assert_eq!(
            spec.security_schemes["basic"].scheme.as_deref(),
            Some("basic")
        );
        assert_eq!(
            spec.security_schemes["api_key"].name.as_deref(),
            Some("X-API-Key")
        );
    }
    let base: Vec<String> = specs[0].0.operations.iter().map(comparable).collect();
    for (spec, _) in &specs[1..] {
        let other: Vec<String> = spec.operations.iter().map(comparable).collect();
        for (a, b) in base.iter().zip(&other) {
            assert_eq!(a, b, "{} differs from 2.0", spec.file.display());
        }
    }
    let list = &specs[0].0.operations[0];
    assert_eq!(
        (list.method.as_str(), list.spec_path.as_str(), list.line),
        ("GET", "/pets", 17)
    );
    assert_eq!(list.security, [vec!["api_key".to_string()]]);
    let pet = list.responses["200"].body.content["application/json"]
        .as_ref()
        .and_then(|s| s.items.as_deref())
        .cloned()
        .unwrap_or_default();
    assert!(pet.required.contains("id") && pet.required.contains("name"));
    assert!(pet.properties["id"].read_only);
    assert!(pet.properties["tag"]
        .types
        .contains(&specter::spec::JsonType::Null));
    assert!(!list.responses["default"].body.content["application/json"]
        .as_ref()
        .is_some_and(|s| s.additional));
}

/// Every 3.0 spec we have, read by openapiv3 and by us: the same operations and
/// parameters.
#[test]
fn openapiv3_reads_every_3_0_spec_as_we_do() {
    let mut files = vec![
        fixtures().join("versions/pets.openapi30.yaml"),
        fixtures().join("public/airflow-2.10.5.openapi30.yaml"),
    ];
    files.extend(
        std::fs::read_dir(root().join("specs"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json")),
    );
    let mut checked = 0;
    for file in files {
        let value = raw(&file);
        if !value["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"))
        {
            continue;
        }
        let theirs: openapiv3::OpenAPI = match serde_json::from_value(value) {
            Ok(o) => o,
            Err(e) => panic!("openapiv3 rejects {}: {e}", file.display()),
        };
        let (ours, _) = load(&file);
        assert_eq!(oracle_ops(&theirs), our_ops(&ours), "{}", file.display());
        checked += 1;
    }
    assert!(checked >= 2);
}

type OpKey = (
    String,
    String,
    Option<String>,
    BTreeSet<(String, String, bool)>,
);

fn our_ops(spec: &Spec) -> BTreeSet<OpKey> {
    spec.operations
        .iter()
        .map(|o| {
            let params = o
                .parameters
                .iter()
                .map(|p| {
                    let loc = match p.location {
                        ParamLocation::Path => "path",
                        ParamLocation::Query => "query",
                        ParamLocation::Header => "header",
                        ParamLocation::Cookie => "cookie",
                    };
                    (p.name.clone(), loc.to_string(), p.required)
                })
                .collect();
            (
                o.method.clone(),
                o.spec_path.clone(),
                o.operation_id.clone(),
                params,
            )
        })
        .collect()
}

fn oracle_ops(api: &openapiv3::OpenAPI) -> BTreeSet<OpKey> {
    use openapiv3::{Parameter, ReferenceOr};
    let resolve = |p: &ReferenceOr<Parameter>| -> Option<(String, String, bool)> {
        let param = match p {
            ReferenceOr::Item(p) => p,
            ReferenceOr::Reference { reference } => {
                let name = reference.strip_prefix("#/components/parameters/")?;
                api.components.as_ref()?.parameters.get(name)?.as_item()?
            }
        };
        let loc = match param {
            Parameter::Query { .. } => "query",
            Parameter::Header { .. } => "header",
            Parameter::Path { .. } => "path",
            Parameter::Cookie { .. } => "cookie",
        };
        let data = param.parameter_data_ref();
        // Path parameters are always required (OpenAPI 3.0.3, Parameter Object).
        Some((
            data.name.clone(),
            loc.to_string(),
            data.required || loc == "path",
        ))
    };
    let mut out = BTreeSet::new();
    for (path, item) in api.paths.iter() {
        let Some(item) = item.as_item() else { continue };
        for (method, op) in item.iter() {
            let mut params: Vec<(String, String, bool)> =
                item.parameters.iter().filter_map(resolve).collect();
            for p in op.parameters.iter().filter_map(resolve) {
                params.retain(|q| (&q.0, &q.1) != (&p.0, &p.1));
                params.push(p);
            }
            out.insert((
                method.to_uppercase(),
                path.clone(),
                op.operation_id.clone(),
                params.into_iter().collect(),
            ));
        }
    }
    out
}

#[test]
fn ref_cycles_across_files_end() {
    let dir = temp_dir("cycle");
    write(&dir, "a.yaml", "openapi: 3.0.0\ninfo: {title: a, version: '1'}\npaths:\n  /loop:\n    $ref: 'b.yaml#/item'\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: 'b.yaml#/S'}\nT: {$ref: 'b.yaml#/S'}\nitem: {$ref: 'b.yaml#/item'}\n");
    write(
        &dir,
        "b.yaml",
        "S: {$ref: 'a.yaml#/T'}\nitem: {$ref: 'a.yaml#/item'}\n",
    );
    let (spec, warnings) = load(&dir.join("a.yaml"));
    assert_eq!(spec.operations.len(), 1);
    let s = spec.operations[0].responses["200"].body.content["application/json"].clone();
    assert!(
        s.is_some_and(|s| s.any),
        "a pure reference cycle matches anything"
    );
    let msgs: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("loops") && m.contains("a.yaml:5:")),
        "{msgs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_file_reference_warns_with_file_and_line() {
    let dir = temp_dir("missing");
    let spec = write(&dir, "s.json", "{\n  \"swagger\": \"2.0\",\n  \"info\": {\"title\": \"s\", \"version\": \"1\"},\n  \"paths\": {\n    \"/p\": {\n      \"post\": {\n        \"parameters\": [\n          {\"in\": \"body\", \"name\": \"b\", \"schema\": {\"$ref\": \"./schemas/gone.json#/Pet\"}}\n        ],\n        \"responses\": {}\n      }\n    }\n  }\n}\n");
    let (spec, warnings) = load(&spec);
    assert_eq!(spec.operations[0].line, 6);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].to_string();
    assert!(
        w.contains("s.json:8: $ref `./schemas/gone.json#/Pet` cannot be followed"),
        "{w}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_yaml_and_unknown_versions_are_errors_with_lines() {
    let e = parse(
        "openapi: 3.0.0\ninfo:\n  title: x\n   bad: indent\npaths: {}\n",
        Path::new("specs/x.yaml"),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.starts_with("specs/x.yaml:4: invalid YAML: "), "{e}");
    let e = parse("info: {}\nopenapi: 4.0\npaths: {}\n", Path::new("x.yaml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        "x.yaml:2: neither \"openapi: 3.x\" nor \"swagger: 2.0\" at the top level (found openapi: 4.0)"
    );
    let e = parse("{\"swagger\": \"1.2\"}", Path::new("old.json"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.ends_with("(found swagger: 1.2)"), "{e}");
}

#[test]
fn duplicate_operation_ids_warn_with_both_lines() {
    let dir = temp_dir("dup");
    let path = write(&dir, "d.yaml", "openapi: 3.1.0\ninfo: {title: d, version: '1'}\npaths:\n  /a:\n    get:\n      operationId: same\n  /b:\n    post:\n      operationId: same\n");
    let (_, warnings) = load(&path);
    assert_eq!(warnings.len(), 1);
    let w = warnings[0].to_string();
    assert!(
        w.contains("d.yaml:8: operationId `same` is used twice"),
        "{w}"
    );
    assert!(w.contains("(line 5)") && w.contains("(line 8)"), "{w}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_spec_in_a_folder_does_not_stop_the_others() {
    let dir = temp_dir("set");
    write(&dir, "svc/api.yaml", "openapi: 3.0.0\ninfo: {title: a, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: 'schemas/pet.yaml'}\n");
    write(
        &dir,
        "svc/schemas/pet.yaml",
        "type: object\nproperties:\n  name: {type: string}\n",
    );
    write(
        &dir,
        "broken.json",
        "{\"openapi\": \"3.0.0\",\n \"paths\": {",
    );
    write(
        &dir,
        "b.yml",
        "swagger: '2.0'\npaths:\n  /b:\n    get: {}\n",
    );
    write(&dir, "notes.txt", "not looked at");
    let set = SpecSet::load(&[dir.clone(), dir.join("missing.yaml")]);
    let files: Vec<String> = set
        .specs
        .iter()
        .map(|s| {
            s.file
                .strip_prefix(&dir)
                .unwrap_or(&s.file)
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(files, ["b.yml", "svc/api.yaml"]);
    let pet = set.specs[1].operations[0].responses["200"].body.content["application/json"].clone();
    assert!(pet.is_some_and(|p| p.properties.contains_key("name")));
    assert_eq!(set.errors.len(), 2, "{:?}", set.errors);
    assert!(matches!(
        &set.errors[0],
        SpecError::Syntax { line: Some(2), .. }
    ));
    assert!(set.errors[0]
        .to_string()
        .contains("broken.json:2: invalid JSON"));
    assert!(matches!(&set.errors[1], SpecError::Read { .. }));
    assert!(set
        .warnings
        .iter()
        .any(|w| w.file.ends_with("schemas/pet.yaml") && w.message.contains("skipped")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A generated 50 MB spec (pretty JSON): loads, every operation found with its line, in
/// bounded time. `cargo test --release --test tests big_spec -- --nocapture` prints the
/// time; docs/specs.md has the measured time and peak memory.
#[test]
fn a_50_mb_spec_loads() {
    use std::fmt::Write;
    let dir = temp_dir("big");
    let path = dir.join("big.json");
    let mut t = String::with_capacity(52 << 20);
    t.push_str("{\n  \"openapi\": \"3.0.3\",\n  \"info\": {\"title\": \"big\", \"version\": \"1\"},\n  \"servers\": [{\"url\": \"https://big.example.com/v1\"}],\n  \"paths\": {\n");
    // About 2.5 KB per path, as in big real specs (long descriptions and examples).
    let filler = "lorem ipsum dolor sit amet ".repeat(80);
    let mut n = 0;
    while t.len() < 50 << 20 {
        if n > 0 {
            t.push_str(",\n");
        }
        let _ = write!(
            t,
            "    \"/r{n}/{{id}}\": {{\n      \"parameters\": [{{\"name\": \"id\", \"in\": \"path\", \"required\": true, \"schema\": {{\"type\": \"integer\"}}}}],\n      \"get\": {{\n        \"operationId\": \"get{n}\",\n        \"description\": \"{filler}\",\n        \"parameters\": [{{\"name\": \"limit\", \"in\": \"query\", \"schema\": {{\"type\": \"integer\"}}}}],\n        \"responses\": {{\"200\": {{\"description\": \"ok\", \"content\": {{\"application/json\": {{\"schema\": {{\"$ref\": \"#/components/schemas/S{}\"}}}}}}}}}}\n      }},\n      \"put\": {{\n        \"operationId\": \"put{n}\",\n        \"requestBody\": {{\"content\": {{\"application/json\": {{\"schema\": {{\"$ref\": \"#/components/schemas/S{}\"}}}}}}}},\n        \"responses\": {{\"204\": {{\"description\": \"done\"}}}}\n      }}\n    }}",
            n % 100,
            (n + 1) % 100
        );
        n += 1;
    }
    t.push_str("\n  },\n  \"components\": {\"schemas\": {\n");
    // Each schema recursive (a tree) and sharing one nested `Owner`.
    for i in 0..100 {
        let _ = writeln!(
            t,
            "    \"S{i}\": {{\"type\": \"object\", \"required\": [\"id\"], \"properties\": {{\"id\": {{\"type\": \"integer\"}}, \"name\": {{\"type\": \"string\"}}, \"children\": {{\"type\": \"array\", \"items\": {{\"$ref\": \"#/components/schemas/S{i}\"}}}}, \"owner\": {{\"$ref\": \"#/components/schemas/Owner\"}}}}}},"
        );
    }
    t.push_str("    \"Owner\": {\"type\": \"object\", \"properties\": {\"email\": {\"type\": \"string\", \"format\": \"email\"}, \"address\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n");
    t.push_str("  }}\n}\n");
    std::fs::write(&path, &t).expect("write");
    let last_get = t
        .rfind("\"get\": {")
        .map(|at| 1 + t[..at].matches('\n').count());
    drop(t);
    let started = std::time::Instant::now();
    let (spec, warnings) = load(&path);
    let took = started.elapsed();
    eprintln!(
        "50 MB spec: {} operations in {took:?}",
        spec.operations.len()
    );
    assert!(
        warnings.is_empty(),
        "{:?}",
        &warnings[..warnings.len().min(3)]
    );
    assert_eq!(spec.operations.len(), 2 * n);
    let last = spec
        .operations
        .iter()
        .find(|o| o.operation_id.as_deref() == Some(&format!("get{}", n - 1)));
    assert_eq!(last.map(|o| o.line), last_get);
    assert!(took.as_secs() < 120, "{took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hints_come_from_full_paths_of_files_and_folders() {
    let texts = |p: &Path| -> BTreeSet<String> {
        match specter::spec::hints(p) {
            Ok(h) => h.into_iter().map(|h| h.text).collect(),
            Err(e) => panic!("{e}"),
        }
    };
    let want: BTreeSet<String> = ["/v1/pets", "/v1/pets/{petId}", "/v1/pets/{petId}/photo"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let dir = fixtures().join("versions");
    assert_eq!(texts(&dir.join("pets.swagger2.yaml")), want);
    assert_eq!(
        texts(&dir),
        want,
        "three versions of one API: the same hints"
    );
    let bad = temp_dir("hints");
    write(&bad, "x.yaml", "openapi: 4.0\n");
    assert!(specter::spec::hints(&bad).is_err_and(|e| e.to_string().contains("found openapi: 4.0")));
    let _ = std::fs::remove_dir_all(&bad);
}
