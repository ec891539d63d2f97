/*!
One path item to its [`Operation`]s: servers, merged parameters, request body, responses
and security, for every version.

Swagger 2.0's `in: body` parameter becomes the request body (media types from `consumes`,
else `application/json`), its `formData` parameters an object schema under the form
media types; responses take `produces` (else `application/json`) as their media types.
*/

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::lines::Lines;
use super::load::{Ctx, METHODS};
use super::model::{
    Body, JsonType, Operation, ParamLocation, Parameter, Requirement, Response, Server, SpecSchema,
    SpecVersion,
};
use super::servers;

const FORM: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data";
const JSON: &str = "application/json";

/// A parameter as written, before the 2.0 body and form ones are turned into a body.
#[derive(Clone)]
enum Param {
    Plain(Parameter),
    /// 2.0 `in: body`.
    Body {
        schema: SpecSchema,
        required: bool,
    },
    /// 2.0 `in: formData`.
    Form {
        name: String,
        schema: SpecSchema,
        required: bool,
        file: bool,
    },
}

impl Param {
    fn key(&self) -> (String, &'static str) {
        match self {
            Param::Plain(p) => (p.name.clone(), loc_name(p.location)),
            Param::Body { .. } => (String::new(), "body"),
            Param::Form { name, .. } => (name.clone(), "formData"),
        }
    }
}

fn loc_name(l: ParamLocation) -> &'static str {
    match l {
        ParamLocation::Path => "path",
        ParamLocation::Query => "query",
        ParamLocation::Header => "header",
        ParamLocation::Cookie => "cookie",
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The operations of the path item `item` (in document `doc`) at `path`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn path_item(
    cx: &mut Ctx<'_>,
    root: &Value,
    spec_servers: &[Server],
    path: &str,
    doc: usize,
    item: &Value,
    lines: &Lines,
) -> Vec<Operation> {
    let v3 = cx.version != SpecVersion::Swagger2;
    let item_servers = if v3 {
        servers::list(item.get("servers"))
    } else {
        None
    };
    let item_line = lines.path_items.get(path).copied().unwrap_or(0);
    let shared = params(cx, doc, item.get("parameters"), item_line);
    let mut out = Vec::new();
    for m in METHODS {
        let Some(op) = item.get(m).filter(|o| o.is_object()) else {
            continue;
        };
        let line = lines.op(path, m);
        let servers = if v3 {
            servers::list(op.get("servers"))
                .or_else(|| item_servers.clone())
                .unwrap_or_else(|| spec_servers.to_vec())
        } else if op.get("schemes").is_some() {
            servers::swagger2(root, op.get("schemes"))
        } else {
            spec_servers.to_vec()
        };
        let mut all = shared.clone();
        for p in params(cx, doc, op.get("parameters"), line) {
            let key = p.key();
            all.retain(|q| q.key() != key);
            all.push(p);
        }
        let media = |key: &str| -> Vec<String> {
            let list = op
                .get(key)
                .or_else(|| root.get(key))
                .and_then(Value::as_array);
            let v: Vec<String> = list
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            v
        };
        let (parameters, body2) = split_params(all, &media("consumes"));
        let request_body = if v3 {
            op.get("requestBody")
                .and_then(|rb| cx.follow(doc, rb, body))
        } else {
            body2
        };
        let produces = media("produces");
        let mut responses = BTreeMap::new();
        if let Some(rs) = op.get("responses").and_then(Value::as_object) {
            for (code, r) in rs {
                let got = cx.follow(doc, r, |cx, d, r| response(cx, d, r, &produces));
                responses.insert(code.clone(), got.unwrap_or_default());
            }
        }
        out.push(Operation {
            method: m.to_ascii_uppercase(),
            spec_path: path.to_string(),
            operation_id: text(op, "operationId"),
            summary: text(op, "summary"),
            deprecated: flag(op, "deprecated"),
            line,
            servers,
            parameters,
            request_body,
            responses,
            security: security(op.get("security").or_else(|| root.get("security"))),
            tags: op
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        });
    }
    out
}

/// A `parameters` list; `line` is where warnings about it point.
fn params(cx: &mut Ctx<'_>, doc: usize, list: Option<&Value>, line: usize) -> Vec<Param> {
    let mut out = Vec::new();
    for p in list.and_then(Value::as_array).into_iter().flatten() {
        if let Some(Some(p)) = cx.follow(doc, p, |cx, d, p| param(cx, d, p, line)) {
            out.push(p);
        }
    }
    out
}

fn param(cx: &mut Ctx<'_>, doc: usize, p: &Value, line: usize) -> Option<Param> {
    let name = text(p, "name").unwrap_or_default();
    let required = flag(p, "required");
    let location = match p.get("in").and_then(Value::as_str).unwrap_or("") {
        "path" => ParamLocation::Path,
        "query" => ParamLocation::Query,
        "header" => ParamLocation::Header,
        "cookie" => ParamLocation::Cookie,
        "body" if cx.version == SpecVersion::Swagger2 => {
            let schema = match p.get("schema") {
                Some(s) => cx.top_schema(doc, s),
                None => super::schema::any(),
            };
            return Some(Param::Body { schema, required });
        }
        "formData" if cx.version == SpecVersion::Swagger2 => {
            let file = p.get("type").and_then(Value::as_str) == Some("file");
            let mut schema = cx.top_schema(doc, p);
            if file {
                schema.format = Some("binary".to_string());
            }
            return Some(Param::Form {
                name,
                schema,
                required,
                file,
            });
        }
        other => {
            cx.warn(
                0,
                line,
                format!("parameter `{name}` has unknown location `in: {other}`; ignored"),
            );
            return None;
        }
    };
    let schema = if cx.version == SpecVersion::Swagger2 {
        Some(cx.top_schema(doc, p))
    } else if let Some(s) = p.get("schema") {
        Some(cx.top_schema(doc, s))
    } else {
        let first = p
            .get("content")
            .and_then(Value::as_object)
            .and_then(|c| c.values().next())
            .and_then(|m| m.get("schema"));
        first.map(|s| cx.top_schema(doc, s))
    };
    Some(Param::Plain(Parameter {
        name,
        location,
        required: required || location == ParamLocation::Path,
        deprecated: flag(p, "deprecated"),
        schema,
    }))
}

/// Plain parameters, and the 2.0 request body made of the body or form parameters.
fn split_params(all: Vec<Param>, consumes: &[String]) -> (Vec<Parameter>, Option<Body>) {
    let mut plain = Vec::new();
    let mut body: Option<Body> = None;
    let mut form = SpecSchema {
        additional: true,
        ..SpecSchema::default()
    };
    let (mut has_form, mut has_file, mut form_required) = (false, false, false);
    for p in all {
        match p {
            Param::Plain(p) => plain.push(p),
            Param::Body { schema, required } => {
                let types: Vec<String> = if consumes.is_empty() {
                    vec![JSON.to_string()]
                } else {
                    consumes.to_vec()
                };
                body = Some(Body {
                    content: types
                        .into_iter()
                        .map(|t| (t, Some(schema.clone())))
                        .collect(),
                    required,
                });
            }
            Param::Form {
                name,
                schema,
                required,
                file,
            } => {
                has_form = true;
                has_file |= file;
                form_required |= required;
                if required {
                    form.required.insert(name.clone());
                }
                form.properties.insert(name, schema);
            }
        }
    }
    if has_form && body.is_none() {
        form.types.insert(JsonType::Object);
        let mut types: Vec<String> = consumes
            .iter()
            .filter(|c| c.starts_with(FORM) || c.starts_with(MULTIPART))
            .cloned()
            .collect();
        if types.is_empty() {
            types.push(if has_file { MULTIPART } else { FORM }.to_string());
        }
        body = Some(Body {
            content: types.into_iter().map(|t| (t, Some(form.clone()))).collect(),
            required: form_required,
        });
    }
    (plain, body)
}

/// A 3.x request body or response `content` map.
fn content(
    cx: &mut Ctx<'_>,
    doc: usize,
    c: Option<&Value>,
) -> BTreeMap<String, Option<SpecSchema>> {
    let mut out = BTreeMap::new();
    for (media, m) in c.and_then(Value::as_object).into_iter().flatten() {
        let schema = m.get("schema").map(|s| cx.top_schema(doc, s));
        out.insert(media.clone(), schema);
    }
    out
}

/// A 3.x request body.
fn body(cx: &mut Ctx<'_>, doc: usize, rb: &Value) -> Body {
    Body {
        content: content(cx, doc, rb.get("content")),
        required: flag(rb, "required"),
    }
}

/// A response of any version; `produces` gives 2.0 its media types.
fn response(cx: &mut Ctx<'_>, doc: usize, r: &Value, produces: &[String]) -> Response {
    let headers: BTreeSet<String> = r
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    let body = if cx.version == SpecVersion::Swagger2 {
        let mut content = BTreeMap::new();
        if let Some(s) = r.get("schema") {
            let schema = cx.top_schema(doc, s);
            if produces.is_empty() {
                content.insert(JSON.to_string(), Some(schema));
            } else {
                for m in produces {
                    content.insert(m.clone(), Some(schema.clone()));
                }
            }
        }
        Body {
            content,
            required: false,
        }
    } else {
        Body {
            content: content(cx, doc, r.get("content")),
            required: false,
        }
    };
    Response { body, headers }
}

/// A `security` list: one requirement per alternative, scheme names sorted.
fn security(v: Option<&Value>) -> Vec<Requirement> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|alt| alt.keys().cloned().collect())
        .collect()
}
