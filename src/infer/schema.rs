/*!
Body shapes: what was seen at each position of the JSON, form and multipart bodies of an
endpoint, kept as a summary that merges.

The inventory merges summaries from many captures and many sensors, so a [`Schema`] must
not depend on the order it learnt things in: observing values a, b, c in any order, or
building one `Schema` per value and merging them in any grouping, gives equal (`==`)
schemas. Every part of a `Schema` is therefore either a count, a flag, a set, or a map of
child schemas, and every merge rule is commutative and associative:

- **Counts** (values of each JSON type, strings of each format) add, saturating at
  `u64::MAX`; `min(min(a + b, M) + c, M) = min(a + b + c, M)`, so saturation keeps both laws.
- **Flags** (properties dropped by the cap, contents cut by the depth limit, not an enum)
  are ORed: each means "some sample showed this", true in a part means true in the whole.
- **Enum candidates** are a set unioned; when the union exceeds [`Limits::max_enum`], or
  any value at the position is not a candidate, the set is emptied and the position is
  marked not-an-enum for good. A part over the cap means the whole is over it (the union
  only grows), so the outcome is "the set of all candidates, or over", whatever the order.
- **Properties** are a map of name to child schema, merged per name. At most
  [`Limits::max_properties`] names are kept: the lexicographically smallest ones, and a flag
  records that more existed. This is order-independent and loses no counts on the names
  kept: if a name is among the K smallest of all names seen, then in any part that saw it,
  fewer names sort before it, so it was among that part's K smallest too and was never
  dropped there; its child schema has seen every value. The K smallest of the union of the
  parts' kept names are then exactly the K smallest of all names seen.
  Names longer than 128 bytes are never kept and count as names past the cap; being a
  property of the name alone, this filter does not depend on order either.
- **Depth**: a container at depth [`Limits::max_depth`] (the root being depth 0) is counted
  by type only and its schema records that its contents were cut. Observe and merge apply
  the same rule, so a schema never holds positions deeper than the limit. The walk is
  recursive but bounded by that limit (itself capped at [`MAX_DEPTH`]), so a value nested
  10 000 deep costs no more stack than one nested 8 deep.

Nothing raw is stored but the names of properties and the enum candidates, which are short
word-like strings (`active`, `suspended`) of positions whose property name does not look
secret or personal (nor below such a property: the items of `emails`, the fields of
`address`). Numbers, ids, emails and free text are reduced to their type and format. An
object used as a map keyed by data (`{"ann@example.com": {...}}`) still has its keys kept
as property names, up to the cap and 128 bytes each.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod stream;

/// Hard ceiling on [`Limits::max_depth`]. The walks over values and schemas recurse once per
/// level, and a stored schema of depth D is about 2·D + 2 levels of JSON, which must stay
/// under serde_json's parsing limit of 128 for the inventory to read it back.
pub const MAX_DEPTH: usize = 32;

/// Longest string (in bytes) kept as an enum candidate: statuses and kinds are short words.
const MAX_ENUM_LEN: usize = 32;

/// Longest property name (in bytes) kept. Longer "names" are data: the keys of a map keyed by
/// text, or the content of a body that is not really a form. They count as properties past
/// the cap (`additionalProperties`) and are never stored.
const MAX_NAME_LEN: usize = 128;

/// Bounds on what one [`Schema`] describes. All sensors and merges of one inventory must use
/// the same limits for merges to be order-independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Container levels described below the root; a container at this depth is counted by
    /// type only and marked as cut. Values above [`MAX_DEPTH`] act as `MAX_DEPTH`.
    pub max_depth: usize,
    /// Properties kept per object position (the lexicographically smallest names).
    pub max_properties: usize,
    /// Distinct enum candidates kept per position before it is declared not an enum.
    pub max_enum: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_properties: 64,
            max_enum: 8,
        }
    }
}

/// What was seen at one position of a JSON document across all samples: how many values of
/// each type, the formats of its strings, its enum candidates, and the schemas of its
/// properties and array items. Merges commutatively and associatively (see the module doc).
///
/// Serialized compactly for the inventory, with zero counts and empty parts left out, e.g.
/// `{"obj":3,"props":{"id":{"int":3},"status":{"str":3,"enum":["active"]}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schema {
    #[serde(rename = "null", skip_serializing_if = "is_zero")]
    null: u64,
    #[serde(rename = "bool", skip_serializing_if = "is_zero")]
    boolean: u64,
    #[serde(rename = "int", skip_serializing_if = "is_zero")]
    integer: u64,
    #[serde(rename = "num", skip_serializing_if = "is_zero")]
    number: u64,
    #[serde(rename = "str", skip_serializing_if = "is_zero")]
    string: u64,
    #[serde(rename = "arr", skip_serializing_if = "is_zero")]
    array: u64,
    #[serde(rename = "obj", skip_serializing_if = "is_zero")]
    object: u64,
    /// Strings of each recognised format (and, for form bodies, of numeric text).
    #[serde(rename = "fmt", skip_serializing_if = "Formats::is_empty")]
    formats: Formats,
    /// Enum candidates; empty once `not_enum` is set.
    #[serde(rename = "enum", skip_serializing_if = "BTreeSet::is_empty")]
    enum_values: BTreeSet<String>,
    /// Some string here was not a candidate, or there were more than `max_enum`.
    #[serde(rename = "noenum", skip_serializing_if = "is_false")]
    not_enum: bool,
    /// Child schema per property name; a child's sample count is how many objects had it.
    #[serde(rename = "props", skip_serializing_if = "BTreeMap::is_empty")]
    properties: BTreeMap<String, Schema>,
    /// More property names were seen than `max_properties`.
    #[serde(rename = "more", skip_serializing_if = "is_false")]
    more_properties: bool,
    /// Schema of the elements of every array seen here; `None` while no element was seen.
    #[serde(rename = "items", skip_serializing_if = "Option::is_none")]
    items: Option<Box<Schema>>,
    /// Some container here was at the depth limit and its contents were not described.
    #[serde(rename = "cut", skip_serializing_if = "is_false")]
    cut: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn add(count: &mut u64, n: u64) {
    *count = count.saturating_add(n);
}

/// String formats recognised, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Email,
    Uuid,
    DateTime,
    Date,
    Uri,
    Ipv4,
    Ipv6,
    /// A multipart file part (or a non-UTF-8 part): never seen in JSON.
    Binary,
}

impl Format {
    const ALL: [Format; 8] = [
        Format::Email,
        Format::Uuid,
        Format::DateTime,
        Format::Date,
        Format::Uri,
        Format::Ipv4,
        Format::Ipv6,
        Format::Binary,
    ];

    /// The OpenAPI `format` value.
    fn name(self) -> &'static str {
        match self {
            Format::Email => "email",
            Format::Uuid => "uuid",
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Uri => "uri",
            Format::Ipv4 => "ipv4",
            Format::Ipv6 => "ipv6",
            Format::Binary => "binary",
        }
    }
}

/// Counts of strings per format at one position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct Formats {
    #[serde(skip_serializing_if = "is_zero")]
    email: u64,
    #[serde(skip_serializing_if = "is_zero")]
    uuid: u64,
    #[serde(rename = "date-time", skip_serializing_if = "is_zero")]
    date_time: u64,
    #[serde(skip_serializing_if = "is_zero")]
    date: u64,
    #[serde(skip_serializing_if = "is_zero")]
    uri: u64,
    #[serde(skip_serializing_if = "is_zero")]
    ipv4: u64,
    #[serde(skip_serializing_if = "is_zero")]
    ipv6: u64,
    #[serde(skip_serializing_if = "is_zero")]
    binary: u64,
    /// Form values that are integer text (`42`): such a field is an integer when all are.
    #[serde(rename = "int", skip_serializing_if = "is_zero")]
    int_text: u64,
    /// Form values that are non-integer number text (`4.2`, `1e3`).
    #[serde(rename = "num", skip_serializing_if = "is_zero")]
    num_text: u64,
}

impl Formats {
    fn is_empty(&self) -> bool {
        *self == Formats::default()
    }

    fn slot(&mut self, f: Format) -> &mut u64 {
        match f {
            Format::Email => &mut self.email,
            Format::Uuid => &mut self.uuid,
            Format::DateTime => &mut self.date_time,
            Format::Date => &mut self.date,
            Format::Uri => &mut self.uri,
            Format::Ipv4 => &mut self.ipv4,
            Format::Ipv6 => &mut self.ipv6,
            Format::Binary => &mut self.binary,
        }
    }

    fn get(&self, f: Format) -> u64 {
        match f {
            Format::Email => self.email,
            Format::Uuid => self.uuid,
            Format::DateTime => self.date_time,
            Format::Date => self.date,
            Format::Uri => self.uri,
            Format::Ipv4 => self.ipv4,
            Format::Ipv6 => self.ipv6,
            Format::Binary => self.binary,
        }
    }

    fn merge(&mut self, other: &Formats) {
        for f in Format::ALL {
            add(self.slot(f), other.get(f));
        }
        add(&mut self.int_text, other.int_text);
        add(&mut self.num_text, other.num_text);
    }

    /// The format every one of `strings` strings had, if they all had the same one.
    fn common(&self, strings: u64) -> Option<Format> {
        if strings == 0 {
            return None;
        }
        Format::ALL.into_iter().find(|f| self.get(*f) == strings)
    }
}

/// The limits of one walk, with the depth capped.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    max_depth: usize,
    max_properties: usize,
    max_enum: usize,
}

impl Ctx {
    fn new(limits: &Limits) -> Ctx {
        Ctx {
            max_depth: limits.max_depth.min(MAX_DEPTH),
            max_properties: limits.max_properties,
            max_enum: limits.max_enum,
        }
    }
}

/// Counts per kind after folding the numeric text of form fields into numbers: a form field
/// whose values were all integer text is an integer, all number text a number.
#[derive(Debug, Clone, Copy)]
struct Kinds {
    null: u64,
    boolean: u64,
    integer: u64,
    number: u64,
    string: u64,
    array: u64,
    object: u64,
}

/// The property names from the root down to a position, kept on the stack during a walk.
/// Array items share their array's name (`emails` covers the items of `emails`).
struct Path<'a> {
    name: Option<&'a str>,
    parent: Option<&'a Path<'a>>,
}

impl Path<'_> {
    const ROOT: Path<'static> = Path {
        name: None,
        parent: None,
    };

    /// Whether this position or one above it has a name that looks secret or personal.
    fn sensitive(&self) -> bool {
        let mut at = Some(self);
        while let Some(p) = at {
            if p.name.is_some_and(sensitive_name) {
                return true;
            }
            at = p.parent;
        }
        false
    }
}

/// One value of a form or multipart field.
enum FieldValue {
    Text(String),
    /// A file part, or a part whose content is not text.
    File,
}

impl Schema {
    /// Adds one value seen at this position (the root of a body, usually).
    pub fn observe(&mut self, v: &serde_json::Value, limits: &Limits) {
        self.observe_at(v, 0, &Path::ROOT, Ctx::new(limits));
    }

    /// The schema of a single value.
    pub fn from_value(v: &serde_json::Value, limits: &Limits) -> Schema {
        let mut s = Schema::default();
        s.observe(v, limits);
        s
    }

    /// Adds everything `other` saw. Commutative and associative: the result does not depend
    /// on the order of merges and observations (see the module doc).
    pub fn merge(&mut self, other: &Schema, limits: &Limits) {
        self.merge_at(other, 0, Ctx::new(limits));
    }

    /// How many values were observed at this position.
    pub fn samples(&self) -> u64 {
        [
            self.null,
            self.boolean,
            self.integer,
            self.number,
            self.string,
            self.array,
            self.object,
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// An OpenAPI 3.0 Schema Object describing what was seen.
    ///
    /// One JSON type gives its schema (`integer` and `number` together give `number`); null
    /// with it adds `nullable: true` (and `null` to an `enum`); two or more non-null types
    /// give a `oneOf` of one schema per type, the first of them nullable when null was seen
    /// (OAS 3.0.3: `nullable` acts only beside a `type`, and on one branch only so that
    /// `oneOf` stays exclusive). Null alone gives `{"nullable": true}`, nothing seen `{}`.
    /// `format` appears when every string had that format, `enum` when the strings were a
    /// small set seen repeatedly, `required` for properties every object had, and
    /// `additionalProperties: true` when properties were dropped by the cap.
    pub fn to_openapi(&self) -> serde_json::Value {
        let kinds = self.kinds();
        let mut branches: Vec<Map<String, Value>> = Vec::new();
        if kinds.boolean > 0 {
            branches.push(typed("boolean"));
        }
        if kinds.number > 0 {
            branches.push(typed("number"));
        } else if kinds.integer > 0 {
            branches.push(typed("integer"));
        }
        if kinds.string > 0 {
            branches.push(self.string_openapi());
        }
        if kinds.array > 0 {
            let mut m = typed("array");
            let items = match &self.items {
                Some(items) => items.to_openapi(),
                None => Value::Object(Map::new()),
            };
            m.insert("items".into(), items);
            branches.push(m);
        }
        if kinds.object > 0 {
            branches.push(self.object_openapi());
        }
        if kinds.null > 0 {
            if let Some(first) = branches.first_mut() {
                first.insert("nullable".into(), Value::Bool(true));
                if let Some(Value::Array(values)) = first.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
        }
        let mut out = match branches.len() {
            0 if kinds.null > 0 => {
                let mut m = Map::new();
                m.insert("nullable".into(), Value::Bool(true));
                m
            }
            0 => Map::new(),
            1 => branches.pop().unwrap_or_default(),
            _ => {
                let mut m = Map::new();
                let list = branches.into_iter().map(Value::Object).collect();
                m.insert("oneOf".into(), Value::Array(list));
                m
            }
        };
        if self.cut {
            out.insert(
                "description".into(),
                Value::String(
                    "Contents nested deeper than the inference depth limit were not described."
                        .into(),
                ),
            );
        }
        Value::Object(out)
    }

    /// Every position seen, as a path (`$`, `$.user.email`, `$.items[].id`, `$["a b"]`) and
    /// the JSON types seen there joined by `|` in the order null, boolean, integer, number,
    /// string, array, object (e.g. `string|null` is written `null|string`); form fields
    /// whose values were all numeric text are `integer` or `number`, as in
    /// [`Schema::to_openapi`]. Parents come before their children, properties in name order
    /// before array items.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.collect_fields("$".to_owned(), &mut out);
        out
    }

    fn observe_at(&mut self, v: &Value, depth: usize, path: &Path<'_>, ctx: Ctx) {
        match v {
            Value::Null => add(&mut self.null, 1),
            Value::Bool(_) => add(&mut self.boolean, 1),
            Value::Number(n) if n.is_i64() || n.is_u64() => add(&mut self.integer, 1),
            Value::Number(_) => add(&mut self.number, 1),
            Value::String(s) => self.observe_str(s, path, false, ctx),
            Value::Array(list) => {
                add(&mut self.array, 1);
                if list.is_empty() {
                    return;
                }
                if depth >= ctx.max_depth {
                    self.cut = true;
                    return;
                }
                let items = self.items.get_or_insert_with(Box::default);
                for x in list {
                    items.observe_at(x, depth + 1, path, ctx);
                }
            }
            Value::Object(map) => {
                add(&mut self.object, 1);
                if map.is_empty() {
                    return;
                }
                if depth >= ctx.max_depth {
                    self.cut = true;
                    return;
                }
                for (name, x) in map {
                    if let Some(child) = self.property(name, ctx) {
                        let path = Path {
                            name: Some(name),
                            parent: Some(path),
                        };
                        child.observe_at(x, depth + 1, &path, ctx);
                    }
                }
            }
        }
    }

    /// The child schema of property `name`, made room for under the cap; `None` when the
    /// name is not among the `max_properties` smallest seen here or is too long to be a name
    /// (the flag is set then, as it is when a kept name is evicted by a smaller one).
    fn property(&mut self, name: &str, ctx: Ctx) -> Option<&mut Schema> {
        if name.len() > MAX_NAME_LEN {
            self.more_properties = true;
            return None;
        }
        if !self.properties.contains_key(name) {
            if self.properties.len() >= ctx.max_properties {
                self.more_properties = true;
                match self.properties.last_key_value() {
                    Some((last, _)) if name < last.as_str() => {
                        self.properties.pop_last();
                    }
                    _ => return None,
                }
            }
            self.properties.insert(name.to_owned(), Schema::default());
        }
        self.properties.get_mut(name)
    }

    fn observe_str(&mut self, s: &str, path: &Path<'_>, form: bool, ctx: Ctx) {
        add(&mut self.string, 1);
        let format = detect_format(s);
        if let Some(f) = format {
            add(self.formats.slot(f), 1);
        }
        if form {
            if integer_text(s) {
                add(&mut self.formats.int_text, 1);
            } else if number_text(s) {
                add(&mut self.formats.num_text, 1);
            }
        }
        let candidate = format.is_none() && enum_word(s);
        self.note_enum(candidate.then_some(s), path, ctx);
    }

    fn observe_file(&mut self) {
        add(&mut self.string, 1);
        add(&mut self.formats.binary, 1);
        self.set_not_enum();
    }

    /// Records one string for the enum: a candidate joins the set (over the cap, the set is
    /// given up for good); anything else makes the position not an enum, and so does a
    /// sensitive name on the path. Sensitivity belongs to the position, so it is checked
    /// only while the set is empty: once a value is in, the position is known not to be.
    fn note_enum(&mut self, candidate: Option<&str>, path: &Path<'_>, ctx: Ctx) {
        if self.not_enum {
            return;
        }
        match candidate {
            Some(s) if self.enum_values.contains(s) => {}
            Some(_) if self.enum_values.is_empty() && path.sensitive() => self.set_not_enum(),
            Some(s) if self.enum_values.len() < ctx.max_enum => {
                self.enum_values.insert(s.to_owned());
            }
            _ => self.set_not_enum(),
        }
    }

    fn set_not_enum(&mut self) {
        self.not_enum = true;
        self.enum_values.clear();
    }

    fn has_children(&self) -> bool {
        !self.properties.is_empty() || self.more_properties || self.items.is_some()
    }

    fn merge_at(&mut self, other: &Schema, depth: usize, ctx: Ctx) {
        add(&mut self.null, other.null);
        add(&mut self.boolean, other.boolean);
        add(&mut self.integer, other.integer);
        add(&mut self.number, other.number);
        add(&mut self.string, other.string);
        add(&mut self.array, other.array);
        add(&mut self.object, other.object);
        self.formats.merge(&other.formats);

        if other.not_enum {
            self.set_not_enum();
        } else if !self.not_enum {
            self.enum_values.extend(other.enum_values.iter().cloned());
            if self.enum_values.len() > ctx.max_enum {
                self.set_not_enum();
            }
        }

        self.cut |= other.cut;
        if depth >= ctx.max_depth {
            // Only schemas made under other limits have children here; cut them the way
            // observe would have.
            if self.has_children() || other.has_children() {
                self.cut = true;
                self.properties.clear();
                self.more_properties = false;
                self.items = None;
            }
            return;
        }

        self.more_properties |= other.more_properties;
        for (name, theirs) in &other.properties {
            if name.len() > MAX_NAME_LEN {
                self.more_properties = true;
                continue;
            }
            match self.properties.get_mut(name) {
                Some(mine) => mine.merge_at(theirs, depth + 1, ctx),
                None => {
                    let mut mine = Schema::default();
                    mine.merge_at(theirs, depth + 1, ctx);
                    self.properties.insert(name.clone(), mine);
                }
            }
        }
        while self.properties.len() > ctx.max_properties {
            self.properties.pop_last();
            self.more_properties = true;
        }

        if let Some(theirs) = &other.items {
            let mine = self.items.get_or_insert_with(Box::default);
            mine.merge_at(theirs, depth + 1, ctx);
        }
    }

    fn kinds(&self) -> Kinds {
        let mut k = Kinds {
            null: self.null,
            boolean: self.boolean,
            integer: self.integer,
            number: self.number,
            string: self.string,
            array: self.array,
            object: self.object,
        };
        let f = &self.formats;
        if k.string > 0 && f.int_text == k.string {
            add(&mut k.integer, k.string);
            k.string = 0;
        } else if k.string > 0 && f.int_text.saturating_add(f.num_text) == k.string {
            add(&mut k.number, k.string);
            k.string = 0;
        }
        k
    }

    /// Enum values are given only for a small set seen repeatedly: each value three times
    /// on average, so that a handful of ids or names seen once each are never listed.
    fn enum_shown(&self) -> bool {
        let distinct = self.enum_values.len() as u64;
        !self.not_enum && distinct > 0 && self.string >= distinct.saturating_mul(3)
    }

    fn string_openapi(&self) -> Map<String, Value> {
        let mut m = typed("string");
        if let Some(f) = self.formats.common(self.string) {
            m.insert("format".into(), Value::String(f.name().into()));
        }
        if self.enum_shown() {
            let values = self
                .enum_values
                .iter()
                .cloned()
                .map(Value::String)
                .collect();
            m.insert("enum".into(), Value::Array(values));
        }
        m
    }

    fn object_openapi(&self) -> Map<String, Value> {
        let mut m = typed("object");
        if !self.properties.is_empty() {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (name, child) in &self.properties {
                properties.insert(name.clone(), child.to_openapi());
                if child.samples() >= self.object {
                    required.push(Value::String(name.clone()));
                }
            }
            m.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                m.insert("required".into(), Value::Array(required));
            }
        }
        if self.more_properties {
            m.insert("additionalProperties".into(), Value::Bool(true));
        }
        m
    }

    fn collect_fields(&self, path: String, out: &mut Vec<(String, String)>) {
        if self.samples() == 0 {
            return;
        }
        let k = self.kinds();
        let names = [
            (k.null, "null"),
            (k.boolean, "boolean"),
            (k.integer, "integer"),
            (k.number, "number"),
            (k.string, "string"),
            (k.array, "array"),
            (k.object, "object"),
        ];
        let types: Vec<&str> = names
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(_, name)| name)
            .collect();
        out.push((path.clone(), types.join("|")));
        for (name, child) in &self.properties {
            let step = if !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                format!("{path}.{name}")
            } else {
                format!("{path}[{}]", Value::String(name.clone()))
            };
            child.collect_fields(step, out);
        }
        if let Some(items) = &self.items {
            items.collect_fields(format!("{path}[]"), out);
        }
    }

    /// One form or multipart body: an object whose properties are the field names; a name
    /// given several times is an array of its values.
    fn observe_fields(&mut self, fields: &BTreeMap<String, Vec<FieldValue>>, ctx: Ctx) {
        add(&mut self.object, 1);
        if fields.is_empty() {
            return;
        }
        if ctx.max_depth == 0 {
            self.cut = true;
            return;
        }
        for (name, values) in fields {
            let Some(child) = self.property(name, ctx) else {
                continue;
            };
            let path = Path {
                name: Some(name),
                parent: None,
            };
            match values.as_slice() {
                [one] => child.observe_field(one, &path, ctx),
                many => {
                    add(&mut child.array, 1);
                    if ctx.max_depth <= 1 {
                        child.cut = true;
                        continue;
                    }
                    let items = child.items.get_or_insert_with(Box::default);
                    for v in many {
                        items.observe_field(v, &path, ctx);
                    }
                }
            }
        }
    }

    fn observe_field(&mut self, v: &FieldValue, path: &Path<'_>, ctx: Ctx) {
        match v {
            FieldValue::Text(s) => self.observe_str(s, path, true, ctx),
            FieldValue::File => self.observe_file(),
        }
    }
}

fn typed(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(name.into()));
    m
}

/// application/x-www-form-urlencoded body: an object schema whose properties are the field
/// names. Values are strings; a field whose values were all integer text is an `integer`,
/// all number text a `number` (in [`Schema::to_openapi`] and [`Schema::fields`]). A name
/// repeated in one body (`tag=a&tag=b`) is an array, as OpenAPI describes exploded form
/// arrays.
pub fn from_form(body: &[u8], limits: &Limits) -> Schema {
    let body = body.trim_ascii();
    let mut fields: BTreeMap<String, Vec<FieldValue>> = BTreeMap::new();
    for pair in body.split(|b| *b == b'&') {
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = percent_decode(name);
        if name.is_empty() {
            continue;
        }
        let value = percent_decode(value);
        fields
            .entry(name)
            .or_default()
            .push(FieldValue::Text(value));
    }
    let mut s = Schema::default();
    s.observe_fields(&fields, Ctx::new(limits));
    s
}

/// Decodes one form name or value: `+` is a space, `%XX` a byte; malformed escapes stay as
/// they are, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| {
                    let hi = (h[0] as char).to_digit(16)?;
                    let lo = (h[1] as char).to_digit(16)?;
                    Some((hi * 16 + lo) as u8)
                });
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// multipart/form-data body (RFC 7578) with the boundary from its Content-Type: an object
/// schema of the part names. File parts (`filename=` or `filename*=`) and parts that are not
/// UTF-8 text are `type: string, format: binary`; text parts are typed like form values, and
/// a name given to several parts is an array.
///
/// A body cut short keeps every part whose headers were complete, except a text part whose
/// content was cut (its value is unknown); a cut file part still counts, its content does
/// not matter. A body without a single delimiter line is not multipart: nothing is observed.
pub fn from_multipart(body: &[u8], boundary: &str, limits: &Limits) -> Schema {
    let mut s = Schema::default();
    let boundary = boundary.trim().trim_matches('"');
    if boundary.is_empty() {
        return s;
    }
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary.as_bytes());
    let finder = memmem::Finder::new(&delimiter);

    let Some((_, mut at)) = next_delimiter(body, 0, &finder) else {
        return s;
    };
    let mut fields: BTreeMap<String, Vec<FieldValue>> = BTreeMap::new();
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            break; // the close delimiter
        }
        // Transport padding up to the end of the delimiter line.
        let Some(eol) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let Some((part, content_start)) = part_headers(body, at + eol + 1) else {
            break;
        };
        match next_delimiter(body, content_start, &finder) {
            Some((content_end, next)) => {
                if let Some(name) = part.name {
                    let content = body.get(content_start..content_end).unwrap_or_default();
                    let value = match (part.file, std::str::from_utf8(content)) {
                        (false, Ok(text)) => FieldValue::Text(text.to_owned()),
                        _ => FieldValue::File,
                    };
                    fields.entry(name).or_default().push(value);
                }
                at = next;
            }
            None => {
                if let (Some(name), true) = (part.name, part.file) {
                    fields.entry(name).or_default().push(FieldValue::File);
                }
                break;
            }
        }
    }
    s.observe_fields(&fields, Ctx::new(limits));
    s
}

/// The next delimiter line at or after `from`: a `--boundary` at the start of a line and
/// followed by `--`, white space or the end. Returns where the content before it ends (its
/// line break excluded) and the index just after the boundary.
fn next_delimiter(body: &[u8], from: usize, finder: &memmem::Finder<'_>) -> Option<(usize, usize)> {
    let mut search = from;
    loop {
        let i = search + finder.find(body.get(search..)?)?;
        let after = i + finder.needle().len();
        let line_start = i == 0 || body.get(i - 1) == Some(&b'\n');
        let ends = match body.get(after) {
            None => true,
            Some(b) => matches!(b, b'-' | b'\r' | b'\n' | b' ' | b'\t'),
        };
        if line_start && ends {
            // The line break before the delimiter belongs to it, not to the content.
            let mut end = i.saturating_sub(1).max(from);
            if end > from && body.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            return Some((end, after));
        }
        search = i + 1;
    }
}

/// What a part's headers say.
struct PartHead {
    name: Option<String>,
    file: bool,
}

/// Reads a part's header lines from `start` up to the empty line. Returns the headers and
/// where the content begins, or `None` when the body ends first.
fn part_headers(body: &[u8], start: usize) -> Option<(PartHead, usize)> {
    let mut head = PartHead {
        name: None,
        file: false,
    };
    let mut at = start;
    loop {
        let rest = body.get(at..)?;
        let eol = memchr::memchr(b'\n', rest)?;
        let line = rest[..eol].strip_suffix(b"\r").unwrap_or(&rest[..eol]);
        at += eol + 1;
        if line.is_empty() {
            return Some((head, at));
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
        {
            parse_disposition(&line[colon + 1..], &mut head);
        }
    }
}

/// `form-data; name="field"; filename="a.png"`: the name, and whether a file name is given.
fn parse_disposition(value: &[u8], head: &mut PartHead) {
    let mut rest = match memchr::memchr(b';', value) {
        Some(i) => &value[i + 1..],
        None => return,
    };
    while !rest.is_empty() {
        rest = rest.trim_ascii_start();
        let key_end = rest
            .iter()
            .position(|b| *b == b'=' || *b == b';')
            .unwrap_or(rest.len());
        let key = rest[..key_end].trim_ascii();
        rest = &rest[key_end..];
        let mut val = Vec::new();
        if let Some(after) = rest.strip_prefix(b"=") {
            rest = after.trim_ascii_start();
            if let Some(quoted) = rest.strip_prefix(b"\"") {
                let mut i = 0;
                while let Some(&b) = quoted.get(i) {
                    match b {
                        b'"' => break,
                        b'\\' if i + 1 < quoted.len() => {
                            val.push(quoted[i + 1]);
                            i += 2;
                            continue;
                        }
                        _ => val.push(b),
                    }
                    i += 1;
                }
                rest = quoted.get(i + 1..).unwrap_or_default();
            } else {
                let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
                val.extend_from_slice(rest[..end].trim_ascii());
                rest = &rest[end..];
            }
        }
        if key.eq_ignore_ascii_case(b"name") {
            head.name = Some(String::from_utf8_lossy(&val).into_owned());
        } else if key.eq_ignore_ascii_case(b"filename") || key.eq_ignore_ascii_case(b"filename*") {
            head.file = true;
        }
        // Skip to the next parameter.
        match memchr::memchr(b';', rest) {
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
}

/// Whether a property name looks like it holds a secret or personal data, whose values must
/// never be kept (not even as enum candidates). Substring match on the name lowercased with
/// everything but letters and digits removed, so `user_Password`, `x-api-key` and
/// `DateOfBirth` all match; false positives only cost an enum.
fn sensitive_name(name: &str) -> bool {
    const WORDS: [&str; 19] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
        "pin",
        "ssn",
        "card",
        "cvv",
        "iban",
        "email",
        "phone",
        "name",
        "address",
        "birth",
        "dob",
    ];
    // Names reaching here are at most MAX_NAME_LEN bytes; anything longer counts as sensitive.
    let mut buf = [0u8; MAX_NAME_LEN];
    let mut len = 0;
    for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
        let Some(slot) = buf.get_mut(len) else {
            return true;
        };
        *slot = b.to_ascii_lowercase();
        len += 1;
    }
    let normalized = &buf[..len];
    WORDS
        .iter()
        .any(|w| normalized.windows(w.len()).any(|x| x == w.as_bytes()))
}

/// Whether a string may be an enum value: a short word (`active`, `in_progress`, `v1.2`),
/// not a number, not an id (hex-like, or letters mixed with many digits) and without format.
fn enum_word(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_ENUM_LEN {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return false;
    }
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if letters == 0 {
        return false;
    }
    let hex_like = b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
        && digits > 0
        && letters + digits >= 6;
    let mixed_id = digits >= 4 && b.len() >= 10;
    !hex_like && !mixed_id
}

/// The format of a string, if it has one of those recognised (cheap checks first, each
/// linear in the string).
fn detect_format(s: &str) -> Option<Format> {
    let b = s.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_digit() {
        if is_date(b) {
            return Some(Format::Date);
        }
        if is_date_time(b) {
            return Some(Format::DateTime);
        }
    }
    if is_uuid(b) {
        return Some(Format::Uuid);
    }
    if b.len() <= 15 && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return s.parse::<Ipv4Addr>().is_ok().then_some(Format::Ipv4);
    }
    if b.len() <= 45 && b.contains(&b':') && s.parse::<Ipv6Addr>().is_ok() {
        return Some(Format::Ipv6);
    }
    if is_uri(b) {
        return Some(Format::Uri);
    }
    if is_email(b) {
        return Some(Format::Email);
    }
    None
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD` with a real month and day (RFC 3339 full-date).
fn is_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..])) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 date-time: `2026-01-01T12:00:00Z`, with optional fraction and numeric offset.
fn is_date_time(b: &[u8]) -> bool {
    if b.len() < 20 || !is_date(&b[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let time = &b[11..];
    if time.len() < 9 || time[2] != b':' || time[5] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(s)) =
        (digits(&time[..2]), digits(&time[3..5]), digits(&time[6..8]))
    else {
        return false;
    };
    if h > 23 || m > 59 || s > 60 {
        return false;
    }
    let mut rest = &time[8..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            matches!((digits(&[*h1, *h2]), digits(&[*m1, *m2])), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An absolute http or https URI with a host and no white space or control characters.
fn is_uri(b: &[u8]) -> bool {
    let rest = if b.len() > 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        &b[7..]
    } else if b.len() > 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        &b[8..]
    } else {
        return false;
    };
    let host_end = rest
        .iter()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    host_end > 0 && rest.iter().all(|c| c.is_ascii_graphic() || *c >= 0x80)
}

/// `local@domain.tld` with the characters RFC 5321 allows unquoted.
fn is_email(b: &[u8]) -> bool {
    if b.len() < 5 || b.len() > 254 {
        return false;
    }
    let Some(at) = memchr::memchr(b'@', b) else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && local
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(c));
    if !local_ok {
        return false;
    }
    let mut labels = 0;
    for label in domain.split(|c| *c == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-');
        if !ok {
            return false;
        }
        labels += 1;
    }
    let tld_alpha = domain
        .rsplit(|c| *c == b'.')
        .next()
        .is_some_and(|tld| tld.iter().any(u8::is_ascii_alphabetic));
    labels >= 2 && tld_alpha
}

/// `42`, `-7`, `0`: an integer without leading zeros (`007` is a code, not a number) that
/// fits in 64 bits.
fn integer_text(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s).as_bytes();
    !d.is_empty()
        && d.iter().all(u8::is_ascii_digit)
        && (d[0] != b'0' || d.len() == 1)
        && s.parse::<i64>().is_ok()
}

/// A JSON number that is not an integer: `4.2`, `-0.5`, `1e3`.
fn number_text(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return false;
    }
    let mut i = usize::from(b[0] == b'-');
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if int_digits == 0 || (b[i] == b'0' && int_digits > 1) {
        return false;
    }
    i += int_digits;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TIGHT: Limits = Limits {
        max_depth: 2,
        max_properties: 3,
        max_enum: 2,
    };

    fn observe_all(values: &[Value], limits: &Limits) -> Schema {
        let mut s = Schema::default();
        for v in values {
            s.observe(v, limits);
        }
        s
    }

    fn openapi(values: &[Value]) -> Value {
        let s = observe_all(values, &Limits::default());
        let out = s.to_openapi();
        check_oas(&out);
        out
    }

    /// Structural check of an OAS 3.0 Schema Object as this module writes them.
    fn check_oas(v: &Value) {
        const KEYS: [&str; 11] = [
            "type",
            "format",
            "properties",
            "required",
            "items",
            "nullable",
            "enum",
            "oneOf",
            "additionalProperties",
            "description",
            "x-unused",
        ];
        let m = v.as_object().expect("a schema is an object");
        for k in m.keys() {
            assert!(KEYS.contains(&k.as_str()), "unexpected key {k} in {v}");
        }
        if let Some(t) = m.get("type") {
            let t = t.as_str().expect("type is a string");
            assert!(
                ["boolean", "integer", "number", "string", "array", "object"].contains(&t),
                "{t}"
            );
            assert_eq!(
                t == "array",
                m.contains_key("items"),
                "items iff array: {v}"
            );
            assert!(!m.contains_key("oneOf"));
        }
        if let Some(f) = m.get("format") {
            assert!(f.is_string());
            assert_eq!(m["type"], "string");
        }
        if let Some(n) = m.get("nullable") {
            assert_eq!(n, &Value::Bool(true));
        }
        if let Some(e) = m.get("enum") {
            let e = e.as_array().expect("enum is an array");
            assert!(!e.is_empty());
            if m.get("nullable").is_some() {
                assert!(e.contains(&Value::Null), "a nullable enum lists null: {v}");
            }
        }
        if let Some(p) = m.get("properties") {
            for child in p.as_object().expect("properties is an object").values() {
                check_oas(child);
            }
        }
        if let Some(r) = m.get("required") {
            let r = r.as_array().expect("required is an array");
            assert!(!r.is_empty(), "OAS 3.0: required has at least one name");
            let props = m["properties"]
                .as_object()
                .expect("required with properties");
            let mut seen = BTreeSet::new();
            for name in r {
                let name = name.as_str().expect("required names are strings");
                assert!(props.contains_key(name));
                assert!(seen.insert(name), "required names are unique");
            }
        }
        if let Some(i) = m.get("items") {
            check_oas(i);
        }
        if let Some(a) = m.get("additionalProperties") {
            assert!(a.is_boolean() || a.is_object());
            assert_eq!(m["type"], "object");
        }
        if let Some(one) = m.get("oneOf") {
            let one = one.as_array().expect("oneOf is an array");
            assert!(one.len() >= 2);
            for b in one {
                check_oas(b);
            }
            let nullable = one.iter().filter(|b| b.get("nullable").is_some()).count();
            assert!(nullable <= 1, "null matches one branch only: {v}");
        }
    }

    fn fields_of(values: &[Value]) -> Vec<(String, String)> {
        observe_all(values, &Limits::default()).fields()
    }

    fn f(path: &str, types: &str) -> (String, String) {
        (path.to_owned(), types.to_owned())
    }

    #[test]
    fn nested_objects_and_arrays() {
        let v = json!({
            "user": {"id": 7, "email": "ann@example.com", "roles": ["admin", "dev"]},
            "items": [{"id": 1, "price": 9.5}, {"id": 2, "price": 3}],
            "first name": "Ann",
        });
        assert_eq!(
            fields_of(std::slice::from_ref(&v)),
            vec![
                f("$", "object"),
                f("$[\"first name\"]", "string"),
                f("$.items", "array"),
                f("$.items[]", "object"),
                f("$.items[].id", "integer"),
                f("$.items[].price", "integer|number"),
                f("$.user", "object"),
                f("$.user.email", "string"),
                f("$.user.id", "integer"),
                f("$.user.roles", "array"),
                f("$.user.roles[]", "string"),
            ]
        );
        let out = openapi(&[v]);
        assert_eq!(
            out["properties"]["user"]["properties"]["email"]["format"],
            "email"
        );
        assert_eq!(
            out["properties"]["items"]["items"]["properties"]["price"]["type"],
            "number"
        );
        assert_eq!(
            out["properties"]["items"]["items"]["required"],
            json!(["id", "price"])
        );
        assert_eq!(
            out["properties"]["user"]["properties"]["roles"]["items"]["type"],
            "string"
        );
        assert_eq!(
            Schema::from_value(&json!([[]]), &Limits::default()).to_openapi()["items"]["items"],
            json!({})
        );
    }

    #[test]
    fn optional_and_required() {
        let out = openapi(&[
            json!({"id": 1, "nick": "a"}),
            json!({"id": 2}),
            json!({"id": 3, "nick": null}),
        ]);
        assert_eq!(out["required"], json!(["id"]));
        assert_eq!(
            out["properties"]["nick"],
            json!({"type": "string", "nullable": true})
        );
        // An empty object at the position makes every property optional.
        let out = openapi(&[json!({"a": {"x": 1}}), json!({"a": {}})]);
        assert_eq!(out["required"], json!(["a"]));
        assert!(out["properties"]["a"].get("required").is_none());
        assert_eq!(out["properties"]["a"]["properties"]["x"]["type"], "integer");
    }

    #[test]
    fn integer_and_number() {
        assert_eq!(
            openapi(&[json!(1), json!(-2), json!(u64::MAX)]),
            json!({"type": "integer"})
        );
        assert_eq!(openapi(&[json!(1), json!(2.5)]), json!({"type": "number"}));
        assert_eq!(openapi(&[json!(1.0)]), json!({"type": "number"}));
        assert_eq!(
            fields_of(&[json!(1), json!(2.5)]),
            vec![f("$", "integer|number")]
        );
    }

    #[test]
    fn nullable_and_null_alone() {
        assert_eq!(
            openapi(&[json!(true), json!(null)]),
            json!({"type": "boolean", "nullable": true})
        );
        assert_eq!(
            openapi(&[json!(null), json!(null)]),
            json!({"nullable": true})
        );
        assert_eq!(openapi(&[]), json!({}));
        assert_eq!(
            fields_of(&[json!(null), json!("x")]),
            vec![f("$", "null|string")]
        );
        assert!(fields_of(&[]).is_empty());
    }

    #[test]
    fn one_of_per_kind() {
        let out = openapi(&[
            json!(1),
            json!("a"),
            json!([true]),
            json!({"k": 1}),
            json!(null),
            json!(2.5),
        ]);
        assert_eq!(
            out,
            json!({"oneOf": [
                {"type": "number", "nullable": true},
                {"type": "string"},
                {"type": "array", "items": {"type": "boolean"}},
                {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
            ]})
        );
    }

    #[test]
    fn formats() {
        let cases = [
            ("ann.lee+tag@mail.example.co.uk", "email"),
            ("123e4567-e89b-12d3-a456-426614174000", "uuid"),
            ("2026-01-31T23:59:60Z", "date-time"),
            ("2026-01-31t10:00:00.123456+05:30", "date-time"),
            ("2024-02-29", "date"),
            ("https://api.example.com/v1/pets?limit=5#x", "uri"),
            ("HTTP://example.com", "uri"),
            ("192.168.0.1", "ipv4"),
            ("2001:db8::8a2e:370:7334", "ipv6"),
            ("::1", "ipv6"),
        ];
        for (s, format) in cases {
            let out = openapi(&[json!(s), json!(s)]);
            assert_eq!(out["format"], format, "{s}");
        }
        let none = [
            "2023-02-29",
            "2026-13-01",
            "2026-01-01 10:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00",
            "2026-01-01T10:00:00.Z",
            "ann@localhost",
            "@example.com",
            "ann@@example.com",
            "ftp://example.com",
            "https://",
            "https://exa mple.com",
            "256.1.1.1",
            "01.2.3.4",
            "12:30",
            "123e4567e89b12d3a456426614174000",
            "",
            "hello",
        ];
        for s in none {
            assert!(openapi(&[json!(s)]).get("format").is_none(), "{s}");
        }
        // A format only when every string has it.
        let out = openapi(&[json!("ann@example.com"), json!("n/a")]);
        assert!(out.get("format").is_none());
        let out = openapi(&[json!("2026-01-01"), json!("2026-01-01T00:00:00Z")]);
        assert!(out.get("format").is_none());
        // Non-strings do not count against it.
        let out = openapi(&[json!("2026-01-01"), json!(null)]);
        assert_eq!(
            out,
            json!({"type": "string", "format": "date", "nullable": true})
        );
    }

    fn statuses(name: &str, values: &[&str]) -> Vec<Value> {
        values.iter().map(|v| json!({ name: v })).collect()
    }

    #[test]
    fn enums() {
        let seen = [
            "active",
            "suspended",
            "active",
            "active",
            "suspended",
            "suspended",
        ];
        let out = openapi(&statuses("status", &seen));
        assert_eq!(
            out["properties"]["status"],
            json!({"type": "string", "enum": ["active", "suspended"]})
        );

        // Nullable enums list null (OAS 3.0.3).
        let mut docs = statuses("state", &["on", "off", "on", "off", "on", "off"]);
        docs.push(json!({"state": null}));
        let out = openapi(&docs);
        assert_eq!(
            out["properties"]["state"]["enum"],
            json!(["off", "on", null])
        );

        // Seen once each: not "seen repeatedly".
        let out = openapi(&statuses("kind", &["cat", "dog", "fish"]));
        assert!(out["properties"]["kind"].get("enum").is_none());
        let s = observe_all(
            &statuses("kind", &["cat", "dog", "fish"]),
            &Limits::default(),
        );
        assert_eq!(
            s.properties["kind"].enum_values.len(),
            3,
            "kept as candidates still"
        );

        // Ids, numbers and codes are no candidates.
        for id in [
            "a3f9c2d1",
            "0042",
            "12345",
            "cus_9s6XKzkNRiz8i3",
            "01H8XK3QY5ZQ0M7V9P6R2T4W8N",
            "1.5",
            "",
        ] {
            let docs = statuses("ref", &[id, id, id, id]);
            let s = observe_all(&docs, &Limits::default());
            assert!(s.properties["ref"].not_enum, "{id}");
            assert!(
                s.to_openapi()["properties"]["ref"].get("enum").is_none(),
                "{id}"
            );
        }
        // Long or non-word strings neither.
        let long = "a".repeat(33);
        for v in [long.as_str(), "hello world", "é", "a/b"] {
            let s = observe_all(&statuses("status", &[v, v, v]), &Limits::default());
            assert!(s.properties["status"].not_enum, "{v}");
        }
        // Sensitive names never keep values, also below them.
        for name in [
            "password",
            "userPassword",
            "api_key",
            "Auth-Token",
            "card_type",
            "first_name",
            "DateOfBirth",
            "pin",
        ] {
            let docs = statuses(name, &["hunter", "hunter", "hunter"]);
            let s = observe_all(&docs, &Limits::default());
            assert!(s.properties[name].enum_values.is_empty(), "{name}");
            assert!(s.properties[name].not_enum, "{name}");
        }
        let v = json!({"credentials": {"kind": "basic"}, "address": [{"type": "home"}]});
        let s = observe_all(&[v.clone(), v.clone(), v], &Limits::default());
        assert!(s.properties["credentials"].properties["kind"].not_enum);
        let items = s.properties["address"].items.as_ref().expect("items");
        assert!(items.properties["type"].not_enum);

        // Over the cap is for good, in any order.
        let limits = Limits {
            max_enum: 2,
            ..Limits::default()
        };
        let mut s = Schema::default();
        for v in ["a", "b", "c", "a", "a", "a", "a", "a", "a"] {
            s.observe(&json!(v), &limits);
        }
        assert!(s.not_enum && s.enum_values.is_empty());
        assert!(s.to_openapi().get("enum").is_none());
        let mut t = Schema::from_value(&json!("c"), &limits);
        t.merge(&Schema::from_value(&json!("a"), &limits), &limits);
        t.merge(&Schema::from_value(&json!("b"), &limits), &limits);
        assert!(t.not_enum);
    }

    #[test]
    fn no_raw_values_stored() {
        let v = json!({
            "email": "ann@example.com", "password": "hunter2-secret", "note": "call me at noon",
            "id": "usr_8f3kd92jd0", "count": 123456789, "owner": {"phone": "+33612345678"},
            "token": "eyJhbGciOiJIUzI1NiJ9", "status": "active",
        });
        let s = observe_all(&[v.clone(), v.clone(), v], &Limits::default());
        let text = serde_json::to_string(&s).unwrap();
        for raw in [
            "ann@",
            "hunter2",
            "noon",
            "usr_8f3",
            "123456789",
            "612345678",
            "eyJ",
        ] {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
        assert!(
            text.contains("\"active\""),
            "enum candidates are the exception"
        );
    }

    #[test]
    fn sensitive_names() {
        for n in [
            "password",
            "Passwd",
            "pwd",
            "client_secret",
            "access-token",
            "apiKey",
            "Authorization",
            "credentials",
            "PIN",
            "ssn",
            "cardNumber",
            "cvv",
            "IBAN",
            "e-mail",
            "phone_number",
            "last.name",
            "billingAddress",
            "birthdate",
            "dob",
        ] {
            assert!(sensitive_name(n), "{n}");
        }
        for n in [
            "status", "type", "currency", "role", "state", "kind", "plan", "count",
        ] {
            assert!(!sensitive_name(n), "{n}");
        }
        assert!(
            sensitive_name(&"x".repeat(MAX_NAME_LEN + 1)),
            "too long to check: kept out"
        );
    }

    #[test]
    fn property_cap_keeps_the_smallest_names() {
        let limits = Limits {
            max_properties: 3,
            ..Limits::default()
        };
        let docs = [
            json!({"m": 1, "z": 1, "q": 1}),
            json!({"b": 1, "y": 1}),
            json!({"d": 1, "a": "x", "b": 2}),
            json!({"c": [1], "b": 3}),
        ];
        let forward = observe_all(&docs, &limits);
        let mut reversed = docs.to_vec();
        reversed.reverse();
        assert_eq!(forward, observe_all(&reversed, &limits));
        let names: Vec<&str> = forward.properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(forward.more_properties);
        assert_eq!(
            forward.properties["b"].samples(),
            3,
            "counts of kept names are complete"
        );
        let out = forward.to_openapi();
        assert_eq!(out["additionalProperties"], true);
        check_oas(&out);

        // One object with more names than the cap, in any key order.
        let wide: Map<String, Value> = (0..100)
            .rev()
            .map(|i| (format!("k{i:03}"), json!(i)))
            .collect();
        let s = Schema::from_value(&Value::Object(wide), &limits);
        let names: Vec<&str> = s.properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["k000", "k001", "k002"]);
        // Names too long to be names are dropped like names past the cap.
        let long = "k".repeat(MAX_NAME_LEN + 1);
        let s = Schema::from_value(&json!({ long.as_str(): 1, "a": 1 }), &Limits::default());
        assert_eq!(s.properties.keys().collect::<Vec<_>>(), ["a"]);
        assert!(s.more_properties);
        let zero = Limits {
            max_properties: 0,
            ..Limits::default()
        };
        let s = Schema::from_value(&json!({"a": 1}), &zero);
        assert!(s.properties.is_empty() && s.more_properties);
        check_oas(&s.to_openapi());
    }

    /// Builds `[[[...]]]` (or `{"a":{"a":...}}`) `depth` levels deep without recursion.
    fn deep(depth: usize, object: bool) -> Value {
        let mut v = json!("leaf");
        for _ in 0..depth {
            // Not json!: it would copy `v` through a recursive serialization.
            v = if object {
                let mut m = Map::new();
                m.insert("a".to_owned(), v);
                Value::Object(m)
            } else {
                Value::Array(vec![v])
            };
        }
        v
    }

    /// Takes a deep value apart one level at a time: serde_json's recursive Drop would
    /// overflow the stack on it.
    fn dismantle(mut v: Value) {
        loop {
            v = match v {
                Value::Array(mut list) => list.pop().unwrap_or(Value::Null),
                Value::Object(mut map) => map.remove("a").unwrap_or(Value::Null),
                _ => return,
            };
        }
    }

    #[test]
    fn depth_cut_on_a_very_deep_value() {
        for object in [false, true] {
            let v = deep(10_000, object);
            let limits = Limits::default();
            let s = Schema::from_value(&v, &limits);
            let fields = s.fields();
            assert_eq!(fields.len(), limits.max_depth + 1, "{fields:?}");
            let last = fields.last().expect("fields");
            let expected = if object {
                "$.a.a.a.a.a.a.a.a"
            } else {
                "$[][][][][][][][]"
            };
            assert_eq!(last.0, expected);
            let out = s.to_openapi();
            check_oas(&out);
            let mut node = &out;
            for _ in 0..limits.max_depth {
                node = if object {
                    &node["properties"]["a"]
                } else {
                    &node["items"]
                };
            }
            assert!(node["description"]
                .as_str()
                .is_some_and(|d| d.contains("depth limit")));
            // Merging and serializing stay bounded too.
            let mut m = s.clone();
            m.merge(&Schema::from_value(&v, &limits), &limits);
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), m);
            // A limit above MAX_DEPTH acts as MAX_DEPTH.
            let huge = Limits {
                max_depth: usize::MAX,
                ..Limits::default()
            };
            let s = Schema::from_value(&v, &huge);
            assert_eq!(s.fields().len(), MAX_DEPTH + 1);
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(
                serde_json::from_str::<Schema>(&text).unwrap(),
                s,
                "readable back"
            );
            dismantle(v);
        }
        // Empty containers at the limit are not cut.
        let limits = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        let s = Schema::from_value(&json!({"a": {}, "b": []}), &limits);
        assert!(!s.properties["a"].cut && !s.properties["b"].cut);
        let s = Schema::from_value(&json!({"a": {"x": 1}}), &limits);
        assert!(s.properties["a"].cut);
        // Depth 0: the root only.
        let zero = Limits {
            max_depth: 0,
            ..Limits::default()
        };
        let s = Schema::from_value(&json!({"a": 1}), &zero);
        assert_eq!(s.fields(), vec![f("$", "object")]);
        assert!(s.cut);
    }

    #[test]
    fn form_bodies() {
        let limits = Limits::default();
        let mut s = from_form(
            b"age=42&name=Ann+Lee&ratio=1.5&tag=a&tag=b&status=active",
            &limits,
        );
        s.merge(
            &from_form(b"age=7&name=Bob&ratio=2&status=active\r\n", &limits),
            &limits,
        );
        s.merge(
            &from_form(
                b"age=-1&name=&status=active&e%2Dmail=x%40y.org&&=x",
                &limits,
            ),
            &limits,
        );
        let out = s.to_openapi();
        check_oas(&out);
        let p = &out["properties"];
        assert_eq!(p["age"], json!({"type": "integer"}));
        assert_eq!(p["ratio"], json!({"type": "number"}));
        assert_eq!(p["name"], json!({"type": "string"}));
        assert_eq!(p["status"], json!({"type": "string", "enum": ["active"]}));
        assert_eq!(
            p["tag"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert_eq!(p["e-mail"], json!({"type": "string", "format": "email"}));
        assert_eq!(out["required"], json!(["age", "name", "status"]));
        assert!(s.fields().contains(&f("$.age", "integer")));
        // Integer only when every value is; codes with leading zeros are text.
        let mut s = from_form(b"n=1", &limits);
        s.merge(&from_form(b"n=x", &limits), &limits);
        assert_eq!(s.to_openapi()["properties"]["n"], json!({"type": "string"}));
        let s = from_form(
            b"zip=01234&big=99999999999999999999&e=1e3&bad=1.&nan=NaN",
            &limits,
        );
        let p = &s.to_openapi()["properties"];
        assert_eq!(p["zip"]["type"], "string");
        assert_eq!(
            p["big"]["type"], "number",
            "past 64 bits, as JSON would read it"
        );
        assert_eq!(p["e"]["type"], "number");
        assert_eq!(p["bad"]["type"], "string");
        assert_eq!(p["nan"]["type"], "string");
        // Odd escapes and bytes.
        let s = from_form(b"a%=%zz&b%ff=%C3%A9&%2=1", &limits);
        let names: Vec<&str> = s.properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["%2", "a%", "b\u{fffd}"]);
        assert_eq!(
            from_form(b"", &limits).to_openapi(),
            json!({"type": "object"})
        );
    }

    const MULTIPART: &[u8] = b"preamble\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"title\"\r\n\
\r\n\
Holiday\r\n\
--XyZ\r\n\
content-disposition: form-data; name=\"count\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
3\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"photo\"; filename=\"a \\\"b\\\".png\"\r\n\
Content-Type: image/png\r\n\
\r\n\
\x89PNG\r\n\x1a\n--XyZnot a delimiter\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"blob\"\r\n\
\r\n\
\xff\xfe\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\
\r\n\
\r\n\
--XyZ--\r\n\
epilogue";

    #[test]
    fn multipart_bodies() {
        let limits = Limits::default();
        let s = from_multipart(MULTIPART, "XyZ", &limits);
        let out = s.to_openapi();
        check_oas(&out);
        let p = &out["properties"];
        assert_eq!(p["title"], json!({"type": "string"}));
        assert_eq!(p["count"], json!({"type": "integer"}));
        assert_eq!(p["photo"], json!({"type": "string", "format": "binary"}));
        assert_eq!(p["blob"], json!({"type": "string", "format": "binary"}));
        assert_eq!(p["empty"], json!({"type": "string"}));
        assert_eq!(out["required"].as_array().map(Vec::len), Some(5));
        assert_eq!(
            from_multipart(MULTIPART, "\"XyZ\"", &limits),
            s,
            "quoted boundary"
        );
        // LF line breaks only.
        let lf: Vec<u8> = MULTIPART.iter().copied().filter(|b| *b != b'\r').collect();
        let p = from_multipart(&lf, "XyZ", &limits).to_openapi()["properties"].clone();
        assert_eq!(p["count"], json!({"type": "integer"}));
        assert_eq!(p["photo"]["format"], "binary");

        // Cut short: complete parts stay, a cut text part goes, a cut file part stays.
        let at = MULTIPART
            .windows(4)
            .position(|w| w == b"\x89PNG")
            .expect("file content")
            + 2;
        let s = from_multipart(&MULTIPART[..at], "XyZ", &limits);
        let names: Vec<&str> = s.properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["count", "photo", "title"]);
        let at = MULTIPART
            .windows(7)
            .position(|w| w == b"Holiday")
            .expect("title")
            + 3;
        let s = from_multipart(&MULTIPART[..at], "XyZ", &limits);
        assert!(s.properties.is_empty());
        assert_eq!(s.samples(), 1);
        for cut in 0..MULTIPART.len() {
            let s = from_multipart(&MULTIPART[..cut], "XyZ", &limits);
            check_oas(&s.to_openapi());
        }
        // Not multipart at all: nothing observed.
        assert_eq!(
            from_multipart(b"{\"a\": 1}", "XyZ", &limits),
            Schema::default()
        );
        assert_eq!(from_multipart(MULTIPART, "", &limits), Schema::default());
        assert_eq!(from_multipart(MULTIPART, "Xy", &limits).samples(), 0);
        // Closed at once: an empty form.
        assert_eq!(
            from_multipart(b"--XyZ--\r\n", "XyZ", &limits).to_openapi(),
            json!({"type": "object"})
        );
    }

    #[test]
    fn serde_form_is_compact_and_stable() {
        let docs = [
            json!({"id": 1, "status": "active", "tags": ["a"], "at": "2026-01-01"}),
            json!({"id": 2, "status": "active", "tags": [], "at": null}),
            json!({"id": 3.5, "status": "active", "more": {"x": true}}),
        ];
        let s = observe_all(
            &docs,
            &Limits {
                max_properties: 4,
                ..Limits::default()
            },
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"obj":3,"props":{"at":{"null":1,"str":1,"fmt":{"date":1},"noenum":true},"id":{"int":2,"num":1},"more":{"obj":1,"props":{"x":{"bool":1}}},"status":{"str":3,"enum":["active"]}},"more":true}"#
        );
        assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), s);
        assert_eq!(serde_json::to_string(&Schema::default()).unwrap(), "{}");
        assert_eq!(
            serde_json::from_str::<Schema>("{}").unwrap(),
            Schema::default()
        );
    }

    /// Real-looking documents with nulls, optional and capped properties, enums, formats,
    /// mixed types and depth.
    fn corpus() -> Vec<Value> {
        vec![
            json!({"data": [{"id": 1, "email": "ann@example.com", "status": "active",
                "created_at": "2026-01-01T10:00:00Z", "tags": ["admin"],
                "profile": {"bio": null, "site": "https://ann.example.com/"}}],
                "next": "https://api.example.com/v1/users?page=2", "total": 41}),
            json!({"data": [{"id": 2, "email": "bob@example.org", "status": "suspended",
                "created_at": "2025-12-31T23:59:59.5+01:00", "tags": [],
                "profile": {"bio": "Hi", "avatar": {"w": 64, "h": 64.5}}},
                {"id": "u-3", "status": "active", "uuid": "123e4567-e89b-12d3-a456-426614174000"}],
                "next": null, "total": 43}),
            json!({"error": {"code": "not_found", "message": "No such user",
                "details": [{"field": "id", "reason": "missing"}, {"field": "x", "reason": "bad"}]}}),
            json!([1, "two", {"three": 3, "status": "active"}, [4, [5, [6]]], null, true, 2.5]),
            json!({"event": "login", "ip": "203.0.113.7", "ip6": "2001:db8::1", "day": "2024-02-29",
                "a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}},
                "password": "hunter2", "k1": 1, "k2": 2, "k3": 3, "status": "suspended", "data": []}),
            json!("plain"),
            json!(null),
            json!({"data": {"id": 9}, "status": 3, "total": "many"}),
        ]
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    /// Every way of merging `leaves` in this order as a binary tree.
    fn merge_trees(leaves: &[Schema], limits: &Limits) -> Vec<Schema> {
        if leaves.len() == 1 {
            return vec![leaves[0].clone()];
        }
        let mut out = Vec::new();
        for split in 1..leaves.len() {
            for left in merge_trees(&leaves[..split], limits) {
                for right in merge_trees(&leaves[split..], limits) {
                    let mut m = left.clone();
                    m.merge(&right, limits);
                    out.push(m);
                }
            }
        }
        out
    }

    #[test]
    fn order_independent_over_permutations_and_merge_trees() {
        let corpus = corpus();
        let limits_set = [
            Limits::default(),
            TIGHT,
            Limits {
                max_depth: 0,
                ..TIGHT
            },
        ];
        for limits in &limits_set {
            // Windows of five documents: all 120 orders observed in a row.
            for start in 0..corpus.len() {
                let docs: Vec<Value> = (0..5)
                    .map(|i| corpus[(start + i) % corpus.len()].clone())
                    .collect();
                let reference = observe_all(&docs, limits);
                for p in permutations(docs.len()) {
                    let ordered: Vec<Value> = p.iter().map(|&i| docs[i].clone()).collect();
                    assert_eq!(
                        observe_all(&ordered, limits),
                        reference,
                        "order {p:?} {limits:?}"
                    );
                }
                // Merge trees over some orders, with single documents and observed pairs as leaves.
                for p in permutations(4).iter().step_by(5) {
                    let leaves: Vec<Schema> = p
                        .iter()
                        .map(|&i| Schema::from_value(&docs[i], limits))
                        .collect();
                    let mut leaves5 = leaves.clone();
                    leaves5[0].observe(&docs[4], limits);
                    for tree in merge_trees(&leaves5, limits) {
                        assert_eq!(tree, reference, "tree over {p:?}");
                    }
                }
                // Merging is idempotent on the empty schema and round-trips through serde.
                let mut with_empty = reference.clone();
                with_empty.merge(&Schema::default(), limits);
                assert_eq!(with_empty, reference);
                let text = serde_json::to_string(&reference).unwrap();
                assert_eq!(serde_json::from_str::<Schema>(&text).unwrap(), reference);
                check_oas(&reference.to_openapi());
            }
        }
    }

    /// xorshift64*: reproducible randomness without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        const KEYS: [&str; 10] = [
            "id", "name", "status", "items", "a", "b", "c", "meta", "email", "zz",
        ];
        const STRINGS: [&str; 10] = [
            "active",
            "suspended",
            "ann@example.com",
            "2026-01-01",
            "x",
            "y",
            "a3f9c2d1e5",
            "10.0.0.1",
            "https://example.com/",
            "free text here",
        ];
        let kind = if depth >= 5 {
            rng.below(4)
        } else {
            rng.below(7)
        };
        match kind {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => {
                if rng.below(2) == 0 {
                    json!(rng.below(100))
                } else {
                    json!(rng.below(100) as f64 / 7.0)
                }
            }
            3 => json!(STRINGS[rng.below(STRINGS.len())]),
            4 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(5))
                    .map(|_| {
                        (
                            match rng.below(KEYS.len() + 1) {
                                i if i < KEYS.len() => KEYS[i].to_owned(),
                                _ => "long".repeat(MAX_NAME_LEN / 4 + 1),
                            },
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Merges `parts` in a random tree shape.
    fn random_merge(rng: &mut Rng, mut parts: Vec<Schema>, limits: &Limits) -> Schema {
        while parts.len() > 1 {
            let i = rng.below(parts.len());
            let a = parts.swap_remove(i);
            let j = rng.below(parts.len());
            parts[j].merge(&a, limits);
        }
        parts.pop().unwrap_or_default()
    }

    #[test]
    fn order_independent_on_random_documents() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for round in 0..400 {
            let limits = if round % 2 == 0 {
                Limits::default()
            } else {
                TIGHT
            };
            let docs: Vec<Value> = (0..1 + rng.below(7))
                .map(|_| random_value(&mut rng, 0))
                .collect();
            let reference = observe_all(&docs, &limits);
            let mut shuffled = docs.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i + 1));
            }
            assert_eq!(observe_all(&shuffled, &limits), reference);
            // Random groups observed together, then merged in a random shape.
            let mut groups: Vec<Schema> = Vec::new();
            for d in &shuffled {
                if groups.is_empty() || rng.below(2) == 0 {
                    groups.push(Schema::default());
                }
                if let Some(g) = groups.last_mut() {
                    g.observe(d, &limits);
                }
            }
            assert_eq!(
                random_merge(&mut rng, groups, &limits),
                reference,
                "round {round}"
            );
            check_oas(&reference.to_openapi());
        }
    }

    #[test]
    fn openapi_output_is_valid_for_several_documents() {
        let corpus = corpus();
        for limits in [Limits::default(), TIGHT] {
            for d in &corpus {
                check_oas(&Schema::from_value(d, &limits).to_openapi());
            }
            check_oas(&observe_all(&corpus, &limits).to_openapi());
        }
        let out = openapi(&corpus);
        let kinds: Vec<&Value> = out["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| &b["type"])
            .collect();
        assert_eq!(kinds, ["string", "array", "object"], "{out}");
        assert!(out["oneOf"][0]["nullable"] == true);
    }
}
