//! The loader on small specs written here: each version's peculiarities, `$ref`s,
//! servers, lines, warnings and errors.

use std::path::Path;

use super::*;

fn load(text: &str) -> (Spec, Vec<SpecWarning>) {
    match parse(text, Path::new("t.yaml")) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    }
}

fn op<'a>(spec: &'a Spec, method: &str, path: &str) -> &'a Operation {
    match spec
        .operations
        .iter()
        .find(|o| o.method == method && o.spec_path == path)
    {
        Some(o) => o,
        None => panic!("no {method} {path}"),
    }
}

fn body_schema(b: &Option<Body>, media: &str) -> SpecSchema {
    b.as_ref()
        .and_then(|b| b.content.get(media).cloned().flatten())
        .unwrap_or_default()
}

#[test]
fn swagger2_basics() {
    let (spec, w) = load(
        r##"swagger: 2.0
info: {title: T, version: '1'}
basePath: /api
consumes: [application/xml]
paths:
  /u/{id}:
    parameters:
      - {name: id, in: path, type: integer}
      - {name: q, in: query, type: string}
    put:
      schemes: [http]
      parameters:
        - {name: q, in: query, type: boolean, required: true}
        - {name: b, in: body, schema: {type: object}}
      responses: {'200': {description: ok, schema: {type: string}}}
"##,
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(spec.version, SpecVersion::Swagger2);
    assert_eq!(
        spec.servers,
        [Server {
            host: None,
            base_path: "/api".into(),
            scheme: None
        }]
    );
    let put = op(&spec, "PUT", "/u/{id}");
    assert_eq!(put.line, 10);
    assert_eq!(put.servers.len(), 1);
    assert_eq!(put.servers[0].scheme.as_deref(), Some("http"));
    let names: Vec<(&str, bool)> = put
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.required))
        .collect();
    assert_eq!(names, [("id", true), ("q", true)], "the operation's q wins");
    let q = &put.parameters[1];
    assert!(q
        .schema
        .as_ref()
        .is_some_and(|s| s.types.contains(&JsonType::Boolean)));
    assert_eq!(
        body_schema(&put.request_body, "application/xml").types,
        [JsonType::Object].into()
    );
    assert!(put.responses["200"]
        .body
        .content
        .contains_key("application/json"));
    assert_eq!(put.full_paths(), ["/api/u/{id}"]);
}

#[test]
fn openapi_servers_override_and_variables() {
    let (spec, _) = load(
        r##"openapi: 3.0.1
info: {title: T, version: '1'}
servers:
  - url: https://{env}.example.com/v2
    variables: {env: {default: Prod}}
  - url: /rel
paths:
  /a:
    servers: [{url: 'http://item.example.com:8080/i/'}]
    get:
      responses: {}
    post:
      servers: [{url: '{tenant}.example.com/o', variables: {tenant: {enum: [x]}}}]
      responses: {}
  /b:
    get: {responses: {}}
"##,
    );
    let hosts = |o: &Operation| -> Vec<(Option<String>, String)> {
        o.servers
            .iter()
            .map(|s| (s.host.clone(), s.base_path.clone()))
            .collect()
    };
    assert_eq!(
        hosts(op(&spec, "GET", "/b")),
        [
            (Some("prod.example.com".into()), "/v2".into()),
            (None, "/rel".into())
        ]
    );
    assert_eq!(
        hosts(op(&spec, "GET", "/a")),
        [(Some("item.example.com:8080".into()), "/i".into())]
    );
    assert_eq!(op(&spec, "GET", "/b").full_paths(), ["/v2/b", "/rel/b"]);
    assert_eq!(hosts(op(&spec, "POST", "/a"))[0].0, None);
}

#[test]
fn schemas_nullable_composition_and_cycles() {
    let (spec, w) = load(
        r##"openapi: 3.1.0
info: {title: T, version: '1'}
paths:
  /n:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                a: {type: [integer, "null"]}
                b: {oneOf: [{type: string, format: email}, {type: "null"}]}
                c: {anyOf: [{$ref: '#/components/schemas/Node'}, {type: integer}]}
                d: {enum: [1, "x"]}
                e: {type: string, writeOnly: true, deprecated: true}
                m: {type: object, additionalProperties: {type: integer}}
      responses: {}
components:
  schemas:
    Node:
      type: object
      required: [next]
      properties:
        next: {$ref: '#/components/schemas/Node'}
"##,
    );
    assert!(w.is_empty(), "{w:?}");
    let s = body_schema(&op(&spec, "POST", "/n").request_body, "application/json");
    assert!(!s.additional);
    let p = &s.properties;
    assert_eq!(p["a"].types, [JsonType::Null, JsonType::Integer].into());
    assert_eq!(p["b"].types, [JsonType::Null, JsonType::String].into());
    assert_eq!(p["b"].format, None, "a union keeps only a shared format");
    assert_eq!(p["c"].types, [JsonType::Integer, JsonType::Object].into());
    assert!(
        p["c"].required.is_empty(),
        "required only where every branch requires"
    );
    // The cycle: Node.next is Node, being expanded: cut to `any`.
    assert!(p["c"].properties["next"].any);
    assert_eq!(p["d"].enum_values, ["1", "\"x\""]);
    assert_eq!(p["d"].types, [JsonType::Integer, JsonType::String].into());
    assert!(p["e"].write_only && p["e"].deprecated);
    let m = p["m"]
        .additional_schema
        .as_deref()
        .cloned()
        .unwrap_or_default();
    assert_eq!(m.types, [JsonType::Integer].into());
}

#[test]
fn mutually_recursive_refs_in_many_places_stay_bounded() {
    // Ten schemas each referring to all others: exponential if expanded naively.
    let mut t = String::from(
        "openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/S0'}\ncomponents:\n  schemas:\n",
    );
    for i in 0..10 {
        t.push_str(&format!("    S{i}:\n      properties:\n"));
        for j in 0..10 {
            t.push_str(&format!(
                "        p{j}: {{$ref: '#/components/schemas/S{j}'}}\n"
            ));
        }
    }
    let started = std::time::Instant::now();
    let (spec, w) = load(&t);
    assert!(started.elapsed().as_secs() < 20);
    assert_eq!(spec.operations.len(), 1);
    assert!(
        w.iter().any(|w| w.message.contains("expand too far")),
        "{w:?}"
    );
}

#[test]
fn missing_refs_warn_with_the_line() {
    let (spec, w) = load(
        r##"openapi: 3.0.0
info: {title: T, version: '1'}
paths:
  /a:
    get:
      parameters:
        - $ref: '#/components/parameters/nope'
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: 'no-such-file.yaml#/X'}
"##,
    );
    let a = op(&spec, "GET", "/a");
    assert!(a.parameters.is_empty());
    let s = a.responses["200"].body.content["application/json"].clone();
    assert!(s.is_some_and(|s| s.any));
    let lines: Vec<usize> = w.iter().map(|w| w.line).collect();
    assert_eq!(lines, [7, 13], "{w:?}");
    assert!(w[1]
        .to_string()
        .starts_with("t.yaml:13: $ref `no-such-file.yaml#/X` cannot be followed: cannot read"));
}

#[test]
fn duplicate_operation_ids_name_both_lines() {
    let (_, w) = load(
        "openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths:\n  /a:\n    get: {operationId: x, responses: {}}\n  /b:\n    get: {operationId: x, responses: {}}\n",
    );
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].line, 7);
    assert!(
        w[0].message.contains("line 5") && w[0].message.contains("line 7"),
        "{}",
        w[0]
    );
}

#[test]
fn versions_and_not_specs() {
    let e = |t: &str| parse(t, Path::new("x.json")).err().map(|e| e.to_string());
    assert_eq!(
        e("{\"openapi\": \"4.0\", \"paths\": {}}").as_deref(),
        Some("x.json:1: neither \"openapi: 3.x\" nor \"swagger: 2.0\" at the top level (found openapi: 4.0)")
    );
    assert!(e("info: {}\nswagger: '1.2'\n")
        .is_some_and(|m| m.starts_with("x.json:2: ") && m.ends_with("(found swagger: 1.2)")));
    assert!(matches!(
        parse("a: 1", Path::new("y")),
        Err(SpecError::NotASpec { .. })
    ));
    assert!(matches!(
        parse("- 1", Path::new("y")),
        Err(SpecError::NotASpec { .. })
    ));
    assert!(parse("openapi: 3.2.0\npaths: {}", Path::new("y"))
        .is_ok_and(|(s, w)| s.version == SpecVersion::OpenApi31 && w.len() == 1));
}

#[test]
fn path_item_refs_and_hint_paths() {
    let (spec, w) = load(
        "openapi: 3.0.0\ninfo: {title: T, version: '1'}\nservers: [{url: /api/}]\npaths:\n  /a/{id}.json:\n    $ref: '#/x-items/a'\nx-items:\n  a:\n    get: {responses: {}}\n",
    );
    assert!(w.is_empty(), "{w:?}");
    let a = op(&spec, "GET", "/a/{id}.json");
    assert_eq!(
        a.line, 5,
        "the path key's line when the method is elsewhere"
    );
    assert_eq!(a.full_paths(), ["/api/a/{id}.json"]);
}

/// Levels of a schema tree.
fn height(s: &SpecSchema) -> usize {
    let children = s
        .properties
        .values()
        .chain(s.items.as_deref())
        .chain(s.additional_schema.as_deref());
    1 + children.map(height).max().unwrap_or(0)
}

#[test]
fn cached_expansions_do_not_nest_past_the_depth_limit() {
    // A chain A0 -> A1 -> ... -> A299, used from its tail first, so that each cached
    // expansion could be built on the previous one.
    let mut t = String::from("openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths:\n");
    for i in 0..300 {
        t.push_str(&format!(
            "  /p{i:03}:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/A{}'}}\n",
            299 - i
        ));
    }
    t.push_str("components:\n  schemas:\n");
    for i in 0..300 {
        t.push_str(&format!(
            "    A{i}:\n      type: object\n      properties:\n        next: {{$ref: '#/components/schemas/A{}'}}\n",
            (i + 1).min(299)
        ));
    }
    let (spec, _) = load(&t);
    let deepest = spec
        .operations
        .iter()
        .filter_map(|o| o.responses["200"].body.content["application/json"].as_ref())
        .map(height)
        .max()
        .unwrap_or(0);
    assert!(deepest <= schema::MAX_DEPTH + 2, "{deepest} levels");
    assert!(deepest > 20, "{deepest} levels");
}
