/*!
Observed JSON positions against a spec's schema: whether a field the traffic carries is
declared, and whether the types seen there are ones the spec allows.

Observed positions are written as the inventory writes them (`$`, `$.user.email`,
`$.items[].id`, `$["a b"]`; form fields by bare name).
*/

use crate::spec::model::{JsonType, SpecSchema};

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Prop(String),
    Items,
}

/// Parses an observed position; a bare name (a form field) is one property.
pub fn parse_path(path: &str) -> Vec<Step> {
    let Some(mut rest) = path.strip_prefix('$') else {
        return vec![Step::Prop(path.to_string())];
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[]") {
            out.push(Step::Items);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("[\"") {
            // A quoted name runs to the next `"]` that is not escaped.
            let mut end = None;
            let bytes = r.as_bytes();
            let mut i = 0;
            while i + 1 < bytes.len() {
                if bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if bytes[i] == b'"' && bytes[i + 1] == b']' {
                    end = Some(i);
                    break;
                }
                i += 1;
            }
            let Some(end) = end else {
                out.push(Step::Prop(r.to_string()));
                break;
            };
            let name = serde_json::from_str::<String>(&format!("\"{}\"", &r[..end]))
                .unwrap_or_else(|_| r[..end].to_string());
            out.push(Step::Prop(name));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out.push(Step::Prop(r[..end].to_string()));
            rest = &r[end..];
        } else {
            out.push(Step::Prop(rest.to_string()));
            break;
        }
    }
    out
}

/// What a spec schema says of one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup<'a> {
    /// Declared, with this schema.
    Declared(&'a SpecSchema),
    /// The schema does not constrain this position (free-form object, no items, `{}`).
    Open,
    /// Not declared: the parent declares properties and this is not one of them.
    Undeclared,
}

/// Follows a position into a schema.
pub fn lookup<'a>(schema: &'a SpecSchema, steps: &[Step]) -> Lookup<'a> {
    let mut at = schema;
    for step in steps {
        if at.any {
            return Lookup::Open;
        }
        match step {
            Step::Prop(name) => {
                if let Some(s) = at.properties.get(name) {
                    at = s;
                } else if let Some(s) = &at.additional_schema {
                    at = s;
                } else if at.properties.is_empty() {
                    return Lookup::Open;
                } else {
                    return Lookup::Undeclared;
                }
            }
            Step::Items => match &at.items {
                Some(s) => at = s,
                None => return Lookup::Open,
            },
        }
    }
    if at.any {
        Lookup::Open
    } else {
        Lookup::Declared(at)
    }
}

/// Observed type names (`null|string`) the schema does not allow. `integer` fits
/// `number`; a schema without types allows everything; `lenient_text` (form bodies,
/// whose values are all text) lets numbers stand for strings.
pub fn disallowed(schema: &SpecSchema, observed: &str, lenient_text: bool) -> Vec<String> {
    if schema.any || schema.types.is_empty() {
        return Vec::new();
    }
    let allows = |t: JsonType| {
        schema.types.contains(&t)
            || (t == JsonType::Integer && schema.types.contains(&JsonType::Number))
            || (lenient_text
                && matches!(t, JsonType::Integer | JsonType::Number)
                && schema.types.contains(&JsonType::String))
    };
    observed
        .split('|')
        .filter(|name| JsonType::parse(name).is_some_and(|t| !allows(t)))
        .map(str::to_string)
        .collect()
}

/// A difference between observed fields and a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldDrift {
    /// A field the schema does not declare (only the outermost one of a subtree).
    Undeclared { path: String },
    /// Types seen that the schema does not allow.
    Type {
        path: String,
        seen: Vec<String>,
        documented: Vec<String>,
    },
}

/// Compares observed fields (`Schema::fields()`) with a schema.
pub fn compare(
    schema: &SpecSchema,
    fields: &[(String, String)],
    lenient_text: bool,
) -> Vec<FieldDrift> {
    let mut out = Vec::new();
    let mut undeclared: Vec<String> = Vec::new();
    for (path, types) in fields {
        let inside = |u: &String| {
            path.strip_prefix(u.as_str())
                .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        if undeclared.iter().any(inside) {
            continue;
        }
        match lookup(schema, &parse_path(path)) {
            Lookup::Undeclared => {
                undeclared.push(path.clone());
                out.push(FieldDrift::Undeclared { path: path.clone() });
            }
            Lookup::Declared(s) => {
                let seen = disallowed(s, types, lenient_text);
                if !seen.is_empty() {
                    out.push(FieldDrift::Type {
                        path: path.clone(),
                        seen,
                        documented: s.types.iter().map(|t| t.as_str().to_string()).collect(),
                    });
                }
            }
            Lookup::Open => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn typed(ts: &[JsonType]) -> SpecSchema {
        SpecSchema {
            types: ts.iter().copied().collect::<BTreeSet<_>>(),
            additional: true,
            ..Default::default()
        }
    }

    fn object(props: &[(&str, SpecSchema)]) -> SpecSchema {
        let mut s = typed(&[JsonType::Object]);
        for (n, p) in props {
            s.properties.insert(n.to_string(), p.clone());
        }
        s
    }

    #[test]
    fn paths_parse_like_the_inventory_writes_them() {
        use Step::*;
        assert_eq!(
            parse_path("$.data[].contact.email"),
            [
                Prop("data".into()),
                Items,
                Prop("contact".into()),
                Prop("email".into())
            ]
        );
        assert_eq!(
            parse_path("$[\"a b\"].c"),
            [Prop("a b".into()), Prop("c".into())]
        );
        assert_eq!(parse_path("$[\"q\\\"]\"]"), [Prop("q\"]".into())]);
        assert_eq!(parse_path("client_secret"), [Prop("client_secret".into())]);
        assert!(parse_path("$").is_empty());
    }

    #[test]
    fn undeclared_fields_and_wrong_types_are_found_once() {
        let mut list = typed(&[JsonType::Array]);
        list.items = Some(Box::new(object(&[("id", typed(&[JsonType::String]))])));
        let schema = object(&[
            ("data", list),
            ("total", typed(&[JsonType::Number])),
            (
                "meta",
                SpecSchema {
                    any: true,
                    ..Default::default()
                },
            ),
        ]);
        let fields: Vec<(String, String)> = [
            ("$", "object"),
            ("$.data", "array"),
            ("$.data[]", "object"),
            ("$.data[].id", "integer"),
            ("$.data[].card", "object"),
            ("$.data[].card.number", "string"),
            ("$.total", "integer"),
            ("$.meta", "object"),
            ("$.meta.x", "string"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let got = compare(&schema, &fields, false);
        assert_eq!(
            got,
            [
                FieldDrift::Type {
                    path: "$.data[].id".into(),
                    seen: vec!["integer".into()],
                    documented: vec!["string".into()]
                },
                FieldDrift::Undeclared {
                    path: "$.data[].card".into()
                },
            ]
        );
        assert!(compare(&schema, &fields[3..4], true).is_empty());
    }
}
