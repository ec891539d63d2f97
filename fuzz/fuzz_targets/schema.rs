//! Body shape inference on arbitrary bytes: as JSON (when it parses), as a form body and as
//! a multipart body. Checks that merging is order-independent (observing the elements of a
//! top-level array in one schema equals merging any split of them, either way round), that
//! the stored form reads back equal, and that the OpenAPI output and field list never panic.
//! The one-pass JSON reader (`schema::stream`) must agree with the parser on what is JSON
//! and give the parsed document's schema. The first byte picks the limits and the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use specter::infer::schema::{from_form, from_multipart, stream, Limits, Schema};

fn check(s: &Schema) {
    let out = s.to_openapi();
    assert!(out.is_object());
    let fields = s.fields();
    assert_eq!(fields.is_empty(), s.samples() == 0);
    let text = serde_json::to_string(s).expect("a schema serializes");
    let back: Schema = serde_json::from_str(&text).expect("a stored schema reads back");
    assert_eq!(&back, s);
}

fn merged(a: &Schema, b: &Schema, limits: &Limits) -> Schema {
    let mut m = a.clone();
    m.merge(b, limits);
    m
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let limits = match mode & 3 {
        0 => Limits::default(),
        1 => Limits {
            max_depth: 2,
            max_properties: 3,
            max_enum: 2,
        },
        2 => Limits {
            max_depth: 0,
            max_properties: 0,
            max_enum: 0,
        },
        _ => Limits {
            max_depth: usize::MAX,
            max_properties: 1,
            max_enum: 1,
        },
    };

    let mut json = Schema::default();
    let parsed = serde_json::from_slice::<Value>(body);
    assert_eq!(stream::is_json(body), parsed.is_ok(), "is_json agrees with the parser");
    if let Ok(v) = parsed {
        json = Schema::from_value(&v, &limits);
        check(&json);
        // The one-pass reading of a body gives the parsed document's schema (read from the
        // document written out again: the body may repeat a member name, which the
        // document does not keep).
        let mut one_pass = Schema::default();
        let mut count = |_: &str, _: Option<&str>, _: Option<&str>, _: &str| {};
        let mut strings = stream::Strings::new(64, &mut count);
        stream::observe_json(body, &mut one_pass, &limits, &mut strings);
        let written = serde_json::to_vec(&v).expect("a document writes out");
        let mut canonical = Schema::default();
        let mut strings = stream::Strings::new(64, &mut count);
        stream::observe_json(&written, &mut canonical, &limits, &mut strings);
        assert_eq!(canonical, json, "one pass equals the parsed document");
        let elements: Vec<&Value> = match &v {
            Value::Array(list) => list.iter().collect(),
            other => vec![other, other],
        };
        let split = usize::from(mode >> 2) % (elements.len() + 1);
        let mut whole = Schema::default();
        let mut a = Schema::default();
        let mut b = Schema::default();
        for (i, e) in elements.iter().enumerate() {
            whole.observe(e, &limits);
            if i < split {
                a.observe(e, &limits)
            } else {
                b.observe(e, &limits)
            }
        }
        let ab = merged(&a, &b, &limits);
        assert_eq!(ab, merged(&b, &a, &limits), "merge(a, b) == merge(b, a)");
        assert_eq!(ab, whole, "a split merged equals one pass");
        // Observing the rest of the elements into `a` in reverse order changes nothing.
        for e in elements[split..].iter().rev() {
            a.observe(e, &limits);
        }
        assert_eq!(a, whole, "observation order");
        check(&whole);
    }

    let form = from_form(body, &limits);
    check(&form);
    // A fixed boundary, and the one a body starting with a delimiter line announces.
    let fixed = from_multipart(body, "XyZ", &limits);
    check(&fixed);
    let announced = body
        .strip_prefix(b"--")
        .and_then(|rest| rest.split(|b| *b == b'\r' || *b == b'\n').next())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .and_then(|b| std::str::from_utf8(b).ok());
    let multipart = match announced {
        Some(boundary) => from_multipart(body, boundary, &limits),
        None => fixed,
    };
    check(&multipart);

    // Merging different bodies' schemas is order-independent too, in any grouping.
    let left = merged(&merged(&json, &form, &limits), &multipart, &limits);
    let right = merged(&json, &merged(&multipart, &form, &limits), &limits);
    assert_eq!(
        left, right,
        "associative and commutative across kinds of body"
    );
    check(&left);
});
