/*!
A sampled JSON body read in one pass, without building a document: every value goes
straight into the schema ([`Schema::observe`] would give the same schema from the parsed
document) and every string, with where it was (`$.items[].email`), to a callback that looks
for sensitive data.

Building a `serde_json::Value` first, then walking it twice, allocated a map and a string
for every member of every sampled body and freed them all again: about half of what a
body cost. Here only the names the schema keeps are allocated.

A document must be checked whole first ([`is_json`], which allocates nothing): one that
breaks halfway would leave what came before the break observed. Members whose name repeats within one object are each observed
(a parsed document would have kept the last).
*/

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{add, Ctx, Limits, Path, Schema};

/// Strings deeper than this are not handed to the callback.
const MAX_STRING_DEPTH: usize = 16;

/// What is done with each string: called with the string's location, the name of the
/// member it belongs to (for an array's items, the array's), that name again when it
/// borrows from the body (so a cache can keep it), and the string.
pub type EachString<'f, 'de> = &'f mut dyn FnMut(&str, Option<&str>, Option<&'de str>, &str);

/// Where a string was and what to do with it.
pub struct Strings<'f, 'de> {
    /// Strings still to hand over; none once it reaches zero.
    pub budget: usize,
    pub each: EachString<'f, 'de>,
    path: String,
}

impl<'f, 'de> Strings<'f, 'de> {
    /// At most `budget` strings go to `each`.
    pub fn new(budget: usize, each: EachString<'f, 'de>) -> Self {
        Strings {
            budget,
            each,
            path: String::from("$"),
        }
    }

    fn wanted(&self, depth: usize) -> bool {
        self.budget > 0 && depth <= MAX_STRING_DEPTH
    }
}

/// Whether `data` is one JSON document (and nothing after it but whitespace). Skipping
/// over strings does not check their UTF-8, so the whole body is checked first.
pub fn is_json(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| serde_json::from_str::<IgnoredAny>(text).is_ok())
}

/// Observes the JSON document `data`, which [`is_json`] accepted, into `schema` and hands
/// its strings to `strings`.
pub fn observe_json<'de>(
    data: &'de [u8],
    schema: &mut Schema,
    limits: &Limits,
    strings: &mut Strings<'_, 'de>,
) {
    let mut de = serde_json::Deserializer::from_slice(data);
    let node = Node {
        schema: Some(schema),
        depth: 0,
        at: &Path::ROOT,
        name: None,
        borrowed: None,
        strings,
        ctx: Ctx::new(limits),
    };
    // Only a document `is_json` refused can fail here, and it was checked.
    let _ = node.deserialize(&mut de);
}

/// A member name, borrowed from the body when it has no escapes.
enum Name<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Name<'_> {
    fn as_str(&self) -> &str {
        match self {
            Name::Borrowed(s) => s,
            Name::Owned(s) => s,
        }
    }
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Name<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Name<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
        Ok(Name::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
        Ok(Name::Owned(v.to_owned()))
    }
}

/// One value of the document: the schema position it goes to (`None` past the depth or
/// property caps: it is still read for its strings), and where it is.
struct Node<'a, 'f, 'de> {
    schema: Option<&'a mut Schema>,
    depth: usize,
    at: &'a Path<'a>,
    name: Option<&'a str>,
    borrowed: Option<&'de str>,
    strings: &'a mut Strings<'f, 'de>,
    ctx: Ctx,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Node<'_, '_, 'de> {
    fn count(self, field: fn(&mut Schema) -> &mut u64) {
        if let Some(s) = self.schema {
            add(field(s), 1);
        }
    }

    fn string(self, v: &str) {
        if let Some(s) = self.schema {
            s.observe_str(v, self.at, false, self.ctx);
        }
        let strings = self.strings;
        if strings.wanted(self.depth) {
            strings.budget -= 1;
            (strings.each)(&strings.path, self.name, self.borrowed, v);
        }
    }
}

impl<'de> Visitor<'de> for Node<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.count(|s| &mut s.null);
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.count(|s| &mut s.boolean);
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.count(|s| &mut s.integer);
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.count(|s| &mut s.integer);
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.count(|s| &mut s.number);
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.string(v);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.string(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node {
            schema,
            depth,
            at,
            name,
            borrowed,
            strings,
            ctx,
        } = self;
        let walked = strings.wanted(depth + 1);
        let len = strings.path.len();
        if walked {
            strings.path.push_str("[]");
        }
        let mut items_seen = 0u64;
        let mut each = |seq: &mut A, schema: Option<&mut Schema>| {
            seq.next_element_seed(Node {
                schema,
                depth: depth + 1,
                at,
                name,
                borrowed,
                strings: &mut *strings,
                ctx,
            })
        };
        match schema {
            Some(s) if depth < ctx.max_depth => {
                add(&mut s.array, 1);
                // An empty array makes no item position.
                let existed = s.items.is_some();
                let items = s.items.get_or_insert_with(Box::default);
                while each(&mut seq, Some(&mut **items))?.is_some() {
                    items_seen += 1;
                }
                if items_seen == 0 && !existed {
                    s.items = None;
                }
            }
            Some(s) => {
                add(&mut s.array, 1);
                while each(&mut seq, None)?.is_some() {
                    items_seen += 1;
                }
                // Only a non-empty array is cut at the depth limit.
                if items_seen > 0 {
                    s.cut = true;
                }
            }
            None => while each(&mut seq, None)?.is_some() {},
        }
        if walked {
            strings.path.truncate(len);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Node {
            mut schema,
            depth,
            at,
            strings,
            ctx,
            ..
        } = self;
        if let Some(s) = schema.as_deref_mut() {
            add(&mut s.object, 1);
        }
        let walked = strings.wanted(depth + 1);
        let mut first = true;
        while let Some(key) = map.next_key_seed(NameSeed)? {
            let name = key.as_str();
            if first {
                first = false;
                // Only a non-empty object is cut at the depth limit.
                if depth >= ctx.max_depth {
                    if let Some(s) = schema.take() {
                        s.cut = true;
                    }
                }
            }
            let child = match schema.as_deref_mut() {
                Some(s) => s.property(name, ctx),
                None => None,
            };
            let len = strings.path.len();
            if walked {
                strings.path.push('.');
                strings.path.push_str(&name[..char_floor(name, 64)]);
            }
            let here = Path {
                name: Some(name),
                parent: Some(at),
            };
            let borrowed = match key {
                Name::Borrowed(s) => Some(s),
                Name::Owned(_) => None,
            };
            map.next_value_seed(Node {
                schema: child,
                depth: depth + 1,
                at: &here,
                name: Some(name),
                borrowed,
                strings,
                ctx,
            })?;
            strings.path.truncate(len);
        }
        Ok(())
    }
}

/// The largest char boundary at or below `max`.
fn char_floor(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The strings a walk over the parsed document finds, in document order.
    fn walk(v: &Value, path: &mut String, key: Option<&str>, depth: usize, out: &mut Vec<String>) {
        if depth > MAX_STRING_DEPTH {
            return;
        }
        match v {
            Value::String(s) => out.push(format!("{path} {key:?} {s}")),
            Value::Array(a) => {
                let len = path.len();
                path.push_str("[]");
                for x in a {
                    walk(x, path, key, depth + 1, out);
                }
                path.truncate(len);
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let len = path.len();
                    path.push('.');
                    path.push_str(&k[..char_floor(k, 64)]);
                    walk(x, path, Some(k), depth + 1, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn documents() -> Vec<Value> {
        let deep = (0..40).fold(json!("bottom"), |v, i| json!({ format!("l{i}"): [v] }));
        let wide: serde_json::Map<String, Value> =
            (0..80).map(|i| (format!("k{i:02}"), json!(i))).collect();
        vec![
            json!(null),
            json!(true),
            json!(-3),
            json!(18446744073709551615u64),
            json!(2.5),
            json!("alice@example.com"),
            json!([]),
            json!([[]]),
            json!([[], [1]]),
            json!({}),
            json!({"a": {}, "b": []}),
            json!({"id": 7, "email": "bob@example.com", "tags": ["x", "y"], "card": "4111 1111 1111 1111"}),
            json!([{"id": 1, "name": "a"}, {"id": 2}, {"id": 3, "name": null, "extra": {"k": [1, 2.5, "z"]}}]),
            json!({"status": "active", "nested": {"status": "paused", "when": "2024-01-02T03:04:05Z"}}),
            json!({"é\"q": "quoted \"name\"", "ü": ["ä"]}),
            json!({ "x".repeat(300): 1, "y": "2" }),
            deep,
            Value::Object(wide),
        ]
    }

    fn limits_list() -> Vec<Limits> {
        vec![
            Limits::default(),
            Limits {
                max_depth: 2,
                max_properties: 3,
                max_enum: 2,
            },
            Limits {
                max_depth: 0,
                max_properties: 0,
                max_enum: 0,
            },
        ]
    }

    #[test]
    fn one_pass_gives_the_schema_and_strings_of_the_parsed_document() {
        for limits in limits_list() {
            let mut by_value = Schema::default();
            let mut by_stream = Schema::default();
            for doc in documents() {
                let text = serde_json::to_vec(&doc).expect("serializes");
                assert!(is_json(&text));
                by_value.observe(&doc, &limits);
                let mut seen = Vec::new();
                let mut each = |p: &str, k: Option<&str>, _: Option<&str>, s: &str| {
                    seen.push(format!("{p} {k:?} {s}"))
                };
                let mut strings = Strings::new(usize::MAX, &mut each);
                observe_json(&text, &mut by_stream, &limits, &mut strings);
                let mut expected = Vec::new();
                walk(&doc, &mut String::from("$"), None, 0, &mut expected);
                // The parsed document's members are sorted; the body is read in its order.
                seen.sort();
                expected.sort();
                assert_eq!(seen, expected, "strings of {doc}");
                assert_eq!(by_stream, by_value, "schema after {doc} with {limits:?}");
            }
        }
    }

    #[test]
    fn the_string_budget_and_broken_documents() {
        let text = br#"{"a": ["1", "2", "3"], "b": "4"}"#;
        let mut n = 0;
        let mut each = |_: &str, _: Option<&str>, _: Option<&str>, _: &str| n += 1;
        let mut strings = Strings::new(2, &mut each);
        observe_json(
            text,
            &mut Schema::default(),
            &Limits::default(),
            &mut strings,
        );
        assert_eq!(n, 2);
        for broken in [
            &b"{\"a\": 1"[..],
            b"[1, 2] x",
            b"",
            b"{\"a\" 1}",
            b"\xff",
            b"{\"email\":\"a@example.c\xe9om\"}",
        ] {
            assert!(!is_json(broken), "{broken:?}");
        }
    }

    #[test]
    fn names_without_escapes_are_lent_for_caching() {
        let text = br#"{"plain": "v", "esc\u0061ped": "w"}"#;
        let mut lent = Vec::new();
        let mut each = |_: &str, k: Option<&str>, cached: Option<&str>, _: &str| {
            lent.push((k.map(str::to_owned), cached.is_some()))
        };
        let mut strings = Strings::new(10, &mut each);
        observe_json(
            text,
            &mut Schema::default(),
            &Limits::default(),
            &mut strings,
        );
        assert_eq!(
            lent,
            vec![
                (Some("plain".to_owned()), true),
                (Some("escaped".to_owned()), false)
            ]
        );
    }
}
