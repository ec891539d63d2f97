/*!
Schema objects (2.0, 3.0 and 3.1 alike) to [`SpecSchema`].

`$ref`s are followed through [`Ctx`]; a reference already being expanded (a recursive
schema) or nested deeper than [`MAX_REF_DEPTH`] becomes `any`, as does anything nested
deeper than [`MAX_DEPTH`] or past the node budgets, so no spec can loop, blow the stack
or expand exponentially. A reference's expansion is cached when what was cut in it does
not depend on where it was reached from (only cycles back to itself or deeper).

`allOf` parts are merged (types intersected, properties and `required` joined); `oneOf` and
`anyOf` branches are united (types and properties joined, only what every branch requires
stays required). `nullable: true` (3.0), `x-nullable: true` (2.0) and `null` in a 3.1 type
array all add [`JsonType::Null`].
*/

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::load::Ctx;
use super::model::{JsonType, SpecSchema};

/// References expanded inside one another at most (deeper ones match anything).
pub(crate) const MAX_REF_DEPTH: usize = 32;
/// Schema nesting (properties, items, compositions) followed at most.
pub(crate) const MAX_DEPTH: usize = 64;
/// Schema nodes built for one top-level schema (a body, a parameter) at most.
pub(crate) const MAX_NODES: usize = 20_000;
/// Schema nodes built for one spec at most.
pub(crate) const MAX_TOTAL_NODES: usize = 4_000_000;

/// A schema matching anything.
pub(crate) fn any() -> SpecSchema {
    SpecSchema {
        any: true,
        additional: true,
        ..SpecSchema::default()
    }
}

fn json_type(name: &str) -> Option<JsonType> {
    match name {
        // 2.0 form parameters.
        "file" => Some(JsonType::String),
        _ => JsonType::parse(name),
    }
}

fn type_of(v: &Value) -> JsonType {
    match v {
        Value::Null => JsonType::Null,
        Value::Bool(_) => JsonType::Boolean,
        Value::Number(n) if n.is_f64() => JsonType::Number,
        Value::Number(_) => JsonType::Integer,
        Value::String(_) => JsonType::String,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

fn flag(o: &Map<String, Value>, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

impl Ctx<'_> {
    /// The schema `v`, written in document `doc`, as a top-level schema (its own budget).
    pub(crate) fn top_schema(&mut self, doc: usize, v: &Value) -> SpecSchema {
        if !self.schemas {
            return any();
        }
        self.nodes = 0;
        self.schema(doc, v, 0)
    }

    /// The schema `v` at nesting `depth`.
    pub(crate) fn schema(&mut self, doc: usize, v: &Value, depth: usize) -> SpecSchema {
        self.nodes += 1;
        self.total_nodes += 1;
        self.deepest = self.deepest.max(depth);
        if depth > MAX_DEPTH || self.nodes > MAX_NODES || self.total_nodes > MAX_TOTAL_NODES {
            self.cut = 0;
            self.budget_note(doc);
            return any();
        }
        let o = match v {
            Value::Object(o) => o,
            // 3.1 boolean schemas: `false` matches nothing.
            Value::Bool(false) => {
                return SpecSchema {
                    additional: true,
                    ..SpecSchema::default()
                }
            }
            _ => return any(),
        };
        let nullable = flag(o, "nullable") || flag(o, "x-nullable");
        let mut s = match o.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let referenced = self.schema_ref(doc, r, depth);
                if o.keys().any(|k| is_structural(k)) {
                    let own = self.own(doc, o, depth);
                    merge(referenced, own)
                } else {
                    referenced
                }
            }
            None => self.own(doc, o, depth),
        };
        s.read_only |= flag(o, "readOnly");
        s.write_only |= flag(o, "writeOnly");
        s.deprecated |= flag(o, "deprecated");
        if nullable && !s.any {
            s.types.insert(JsonType::Null);
        }
        s
    }

    /// A referenced schema: from the cache, expanded, or `any` on a cycle, past the depth
    /// limit or when it cannot be resolved (with a warning).
    fn schema_ref(&mut self, doc: usize, r: &str, depth: usize) -> SpecSchema {
        let Some(t) = self.resolve_or_warn(doc, r) else {
            return any();
        };
        let key = t.key();
        // A cached expansion is used where it keeps the tree within MAX_DEPTH (copies
        // must not nest deeper than a fresh expansion could); otherwise it is expanded
        // afresh, and cut where it goes too deep.
        if let Some((s, n, height)) = self
            .memo
            .get(&key)
            .filter(|(_, _, h)| depth + 1 + h <= MAX_DEPTH)
        {
            // A copy costs what building it did: the budgets bound copies too.
            self.nodes += n;
            self.total_nodes += n;
            if self.nodes > MAX_NODES || self.total_nodes > MAX_TOTAL_NODES {
                self.cut = 0;
                self.budget_note(doc);
                return any();
            }
            self.deepest = self.deepest.max(depth + 1 + height);
            return s.clone();
        }
        if let Some(at) = self.stack.iter().position(|k| *k == key) {
            // A recursive schema: cut here. What is cut depends on the references
            // from `at` on, so those expansions can still be cached.
            self.cut = self.cut.min(at);
            return any();
        }
        if self.stack.len() >= MAX_REF_DEPTH {
            self.cut = 0;
            return any();
        }
        let Some(v) = t.get() else {
            return any();
        };
        let outer_cut = std::mem::replace(&mut self.cut, usize::MAX);
        let level = self.stack.len();
        let built_before = self.total_nodes;
        let outer_deepest = std::mem::replace(&mut self.deepest, depth + 1);
        self.stack.push(key.clone());
        let s = self.schema(t.doc, v, depth + 1);
        self.stack.pop();
        if self.cut >= level {
            let n = self.total_nodes - built_before;
            let height = self.deepest - (depth + 1);
            self.memo.insert(key, (s.clone(), n, height));
        }
        self.cut = self.cut.min(outer_cut);
        self.deepest = self.deepest.max(outer_deepest);
        s
    }

    /// The schema's own keywords, compositions included, without its `$ref`.
    fn own(&mut self, doc: usize, o: &Map<String, Value>, depth: usize) -> SpecSchema {
        let mut s = SpecSchema {
            additional: true,
            ..SpecSchema::default()
        };
        match o.get("type") {
            Some(Value::String(t)) => s.types.extend(json_type(t)),
            Some(Value::Array(ts)) => {
                s.types
                    .extend(ts.iter().filter_map(Value::as_str).filter_map(json_type));
            }
            _ => {}
        }
        s.format = o.get("format").and_then(Value::as_str).map(str::to_string);
        let values: Vec<&Value> = match (o.get("enum"), o.get("const")) {
            (Some(Value::Array(e)), _) => e.iter().collect(),
            (_, Some(c)) => vec![c],
            _ => Vec::new(),
        };
        for e in values {
            let text = serde_json::to_string(e).unwrap_or_default();
            if !s.enum_values.contains(&text) {
                s.enum_values.push(text);
            }
        }
        if let Some(Value::Object(props)) = o.get("properties") {
            for (name, p) in props {
                let ps = self.schema(doc, p, depth + 1);
                s.properties.insert(name.clone(), ps);
            }
        }
        if let Some(Value::Array(req)) = o.get("required") {
            s.required
                .extend(req.iter().filter_map(Value::as_str).map(str::to_string));
        }
        match o.get("additionalProperties") {
            Some(Value::Bool(false)) => s.additional = false,
            Some(a @ Value::Object(_)) => {
                s.additional_schema = Some(Box::new(self.schema(doc, a, depth + 1)));
            }
            _ => {}
        }
        let mut items: Option<SpecSchema> = None;
        for key in ["items", "prefixItems"] {
            match o.get(key) {
                Some(Value::Array(tuple)) => {
                    for t in tuple {
                        let ts = self.schema(doc, t, depth + 1);
                        items = Some(unite(items, ts));
                    }
                }
                Some(i @ (Value::Object(_) | Value::Bool(_))) => {
                    let is = self.schema(doc, i, depth + 1);
                    items = Some(unite(items, is));
                }
                _ => {}
            }
        }
        s.items = items.map(Box::new);
        if s.types.is_empty() {
            if !s.properties.is_empty() || s.additional_schema.is_some() || !s.additional {
                s.types.insert(JsonType::Object);
            } else if s.items.is_some() {
                s.types.insert(JsonType::Array);
            } else if let Some(Value::Array(e)) = o.get("enum") {
                s.types.extend(e.iter().map(type_of));
            } else if let Some(c) = o.get("const") {
                s.types.insert(type_of(c));
            }
        }
        s.any = s.types.is_empty();
        if let Some(Value::Array(parts)) = o.get("allOf") {
            for p in parts {
                let ps = self.schema(doc, p, depth + 1);
                s = merge(s, ps);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = o.get(key) {
                let mut u: Option<SpecSchema> = None;
                for b in branches {
                    let bs = self.schema(doc, b, depth + 1);
                    u = Some(unite(u, bs));
                }
                if let Some(u) = u {
                    s = merge(s, u);
                }
            }
        }
        s
    }
}

/// Keywords that constrain a schema beside a `$ref` (3.1 allows them; merged as `allOf`).
fn is_structural(key: &str) -> bool {
    matches!(
        key,
        "type"
            | "properties"
            | "items"
            | "prefixItems"
            | "required"
            | "additionalProperties"
            | "allOf"
            | "oneOf"
            | "anyOf"
            | "enum"
            | "const"
            | "format"
    )
}

/// Types both sides allow; an `integer` side narrows `number`.
fn intersect_types(a: &SpecSchema, b: &SpecSchema) -> std::collections::BTreeSet<JsonType> {
    let mut out = std::collections::BTreeSet::new();
    for t in &a.types {
        if b.types.contains(t) {
            out.insert(*t);
        } else if (*t == JsonType::Integer && b.types.contains(&JsonType::Number))
            || (*t == JsonType::Number && b.types.contains(&JsonType::Integer))
        {
            out.insert(JsonType::Integer);
        }
    }
    out
}

/// Properties of both sides; one declared on both is `join`ed.
fn join_properties(
    mut a: BTreeMap<String, SpecSchema>,
    b: BTreeMap<String, SpecSchema>,
    join: fn(SpecSchema, SpecSchema) -> SpecSchema,
) -> BTreeMap<String, SpecSchema> {
    for (k, v) in b {
        let joined = match a.remove(&k) {
            Some(prev) => join(prev, v),
            None => v,
        };
        a.insert(k, joined);
    }
    a
}

/// `acc` united with `s`.
fn unite(acc: Option<SpecSchema>, s: SpecSchema) -> SpecSchema {
    match acc {
        Some(prev) => union(prev, s),
        None => s,
    }
}

/// `allOf`: a value satisfies both.
pub(crate) fn merge(a: SpecSchema, b: SpecSchema) -> SpecSchema {
    let types = match (a.any, b.any) {
        (true, true) => Default::default(),
        (true, false) => b.types.clone(),
        (false, true) => a.types.clone(),
        (false, false) => {
            let both = intersect_types(&a, &b);
            // Contradictory parts: keep what either allows rather than report everything.
            if both.is_empty() {
                a.types.union(&b.types).copied().collect()
            } else {
                both
            }
        }
    };
    let properties = join_properties(a.properties, b.properties, merge);
    SpecSchema {
        any: a.any && b.any,
        types,
        format: a.format.or(b.format),
        enum_values: if a.enum_values.is_empty() {
            b.enum_values
        } else {
            a.enum_values
        },
        properties,
        required: a.required.union(&b.required).cloned().collect(),
        additional: a.additional && b.additional,
        additional_schema: match (a.additional_schema, b.additional_schema) {
            (Some(x), Some(y)) => Some(Box::new(merge(*x, *y))),
            (x, y) => x.or(y),
        },
        items: match (a.items, b.items) {
            (Some(x), Some(y)) => Some(Box::new(merge(*x, *y))),
            (x, y) => x.or(y),
        },
        deprecated: a.deprecated || b.deprecated,
        write_only: a.write_only || b.write_only,
        read_only: a.read_only || b.read_only,
    }
}

/// `oneOf`/`anyOf`: a value satisfies either.
pub(crate) fn union(a: SpecSchema, b: SpecSchema) -> SpecSchema {
    let properties = join_properties(a.properties, b.properties, union);
    let any = a.any || b.any;
    SpecSchema {
        any,
        types: if any {
            Default::default()
        } else {
            a.types.union(&b.types).copied().collect()
        },
        format: if a.format == b.format { a.format } else { None },
        enum_values: if a.enum_values.is_empty() || b.enum_values.is_empty() {
            Vec::new()
        } else {
            let mut e = a.enum_values;
            for v in b.enum_values {
                if !e.contains(&v) {
                    e.push(v);
                }
            }
            e
        },
        properties,
        required: a.required.intersection(&b.required).cloned().collect(),
        additional: a.additional || b.additional,
        additional_schema: match (a.additional_schema, b.additional_schema) {
            (Some(x), Some(y)) => Some(Box::new(union(*x, *y))),
            _ => None,
        },
        items: match (a.items, b.items) {
            (Some(x), Some(y)) => Some(Box::new(union(*x, *y))),
            (x, y) => x.or(y),
        },
        deprecated: a.deprecated && b.deprecated,
        write_only: a.write_only && b.write_only,
        read_only: a.read_only && b.read_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(types: &[JsonType]) -> SpecSchema {
        SpecSchema {
            types: types.iter().copied().collect(),
            additional: true,
            ..SpecSchema::default()
        }
    }

    #[test]
    fn merge_intersects_types_and_joins_properties() {
        let mut a = typed(&[JsonType::Number, JsonType::Null]);
        a.required.insert("x".into());
        a.properties.insert("x".into(), typed(&[JsonType::String]));
        let mut b = typed(&[JsonType::Integer]);
        b.required.insert("y".into());
        b.additional = false;
        b.properties.insert("x".into(), any());
        let m = merge(a.clone(), b);
        assert_eq!(
            m.types,
            [JsonType::Integer].into(),
            "integer narrows number"
        );
        assert_eq!(m.required, ["x".to_string(), "y".to_string()].into());
        assert_eq!(m.properties["x"].types, [JsonType::String].into());
        assert!(!m.additional);
        // `any` takes the other side; contradictions keep both rather than nothing.
        assert_eq!(merge(any(), a.clone()).types, a.types);
        let c = merge(typed(&[JsonType::String]), typed(&[JsonType::Object]));
        assert_eq!(c.types, [JsonType::String, JsonType::Object].into());
    }

    #[test]
    fn union_joins_types_and_keeps_what_all_require() {
        let mut a = typed(&[JsonType::Object]);
        a.required.extend(["id".to_string(), "a".to_string()]);
        a.enum_values.push("1".into());
        let mut b = typed(&[JsonType::Null]);
        b.required.insert("id".into());
        let u = union(a.clone(), b);
        assert_eq!(u.types, [JsonType::Null, JsonType::Object].into());
        assert_eq!(u.required, ["id".to_string()].into());
        assert!(u.enum_values.is_empty(), "one branch is not an enum");
        assert!(union(a, any()).any);
    }
}
