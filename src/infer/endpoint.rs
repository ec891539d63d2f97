/*!
What the inventory knows about one endpoint (a path in a host's tree, with a method):
counts, status codes, query parameters, content types, authentication, sensitive data
and the shapes of bodies.

Every field merges commutatively (sums, minimums and maximums, unions of sets truncated
to their smallest members, bottom-k sketches), so an endpoint learnt from captures A and
B is the same whichever was read first, or on which sensor.

Bodies are sampled, so their cost grows with traffic and not with traffic times body
size, and sampled so the choice does not depend on order either: each exchange has a
*level*, the trailing zero bits of a hash of its identity (addresses, stream and time),
so half the exchanges have level 0, a quarter level 1... An endpoint inspects the bodies
of exchanges at or above its current minimum level and keeps what it learns per level;
when more than `body_samples` exchanges are at or above the minimum, the minimum rises
and the lowest level's summary is dropped. What remains always describes exactly the
exchanges whose level is at least the minimum the whole traffic implies, whatever the
order it came in. About `body_samples * log2(requests)` bodies are read per endpoint.
*/

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::auth::{self, Credential};
use super::pii::{self, PiiKind};
use super::schema::{self, Schema};
use super::sketch::{stable_hash, Examples, Sketch};
use super::template::Mergeable;
use crate::exchange::{Exchange, Head, Message};

/// Limits of what one endpoint keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Exchanges whose bodies are summarised at a time (see the module doc).
    pub body_samples: u64,
    /// Query parameter names kept (the smallest names, then `query_more`).
    pub max_query_params: usize,
    /// Sensitive-data entries (kind and place) kept.
    pub max_pii: usize,
    /// Content types, JWT issuers and audiences kept.
    pub max_set: usize,
    /// Strings scanned for sensitive data per body.
    pub max_body_strings: usize,
    /// Bytes a sampled body is decoded to (gzip, deflate, br).
    pub max_body: usize,
    pub schema: schema::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_samples: 8,
            max_query_params: 32,
            max_pii: 64,
            max_set: 8,
            max_body_strings: 512,
            max_body: 64 * 1024,
            schema: schema::Limits::default(),
        }
    }
}

/// A query parameter's presence and value types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryParam {
    pub count: u64,
    /// Requests per value type: integer, number, boolean, uuid, empty, string.
    pub types: BTreeMap<String, u64>,
}

/// What bearer JWTs said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtSummary {
    pub tokens: u64,
    pub with_exp: u64,
    pub algs: BTreeSet<String>,
    pub issuers: BTreeSet<String>,
    pub audiences: BTreeSet<String>,
}

/// One kind of sensitive data at one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiStat {
    pub kind: PiiKind,
    /// `path`, `query:<name>`, `request_header:<name>`, `response_header:<name>`,
    /// `request_body:<field path>`, `response_body:<field path>`.
    pub location: String,
    pub count: u64,
    /// Masked samples.
    pub samples: Examples,
}

/// Body summaries of the exchanges at one sampling level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub exchanges: u64,
    /// Request bodies that were read (JSON, form or multipart).
    pub request_bodies: u64,
    pub response_bodies: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Schema>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<u16, Schema>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pii: BTreeMap<String, PiiStat>,
    /// Bodies that were cut by the body limit or a gap and could not be read whole.
    #[serde(default)]
    pub truncated: u64,
}

/// Sampled body summaries, by level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bodies {
    pub min_level: u8,
    pub levels: BTreeMap<u8, Level>,
}

/// Everything known about one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub requests: u64,
    /// Capture time of the first and last request, ns since the epoch.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Responses by status code; 0 counts requests without a response.
    pub status: BTreeMap<u16, u64>,
    /// Requests per protocol (h1, h2, grpc).
    pub protos: BTreeMap<String, u64>,
    pub query: BTreeMap<String, QueryParam>,
    #[serde(default)]
    pub query_more: bool,
    pub request_types: BTreeMap<String, u64>,
    pub response_types: BTreeMap<String, u64>,
    /// Requests per authentication scheme key (see `auth`).
    pub auth: BTreeMap<String, u64>,
    /// Distinct callers (salted hashes of credential subjects).
    pub identities: Sketch,
    pub jwt: JwtSummary,
    /// Sensitive data in URLs and headers (every request), by `kind@location`.
    pub pii: BTreeMap<String, PiiStat>,
    #[serde(default)]
    pub pii_more: bool,
    /// Responses carrying `Deprecation` or `Sunset` headers.
    pub deprecated_responses: u64,
    /// The latest date a `Sunset` header (RFC 8594, an HTTP-date) announced, in capture
    /// timestamp units (nanoseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<i64>,
    /// 2xx responses to requests that carried no credential.
    pub unauthenticated_2xx: u64,
    pub bodies: Bodies,
    /// Requests read from TLS connections decrypted with their session keys; the others
    /// crossed the wire in cleartext. (Absent from inventories stored before decryption:
    /// everything was cleartext then.)
    #[serde(default)]
    pub decrypted: u64,
}

/// Counts one more under `key`, allocating the key only the first time (this runs
/// several times per request).
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn min_nonzero(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (x, y) => x.min(y),
    }
}

fn add_counts<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
    for (k, n) in b {
        *a.entry(k.clone()).or_default() += n;
    }
}

/// Keeps the `max` smallest keys; returns whether any were dropped.
fn truncate_map<K: Ord + Clone, V>(m: &mut BTreeMap<K, V>, max: usize) -> bool {
    if m.len() <= max {
        return false;
    }
    if let Some(k) = m.keys().nth(max).cloned() {
        m.split_off(&k);
    }
    true
}

fn truncate_set(s: &mut BTreeSet<String>, max: usize) {
    while s.len() > max {
        s.pop_last();
    }
}

fn merge_pii(a: &mut BTreeMap<String, PiiStat>, b: &BTreeMap<String, PiiStat>) {
    for (k, p) in b {
        match a.get_mut(k) {
            Some(mine) => {
                mine.count += p.count;
                mine.samples.merge(&p.samples);
            }
            None => {
                a.insert(k.clone(), p.clone());
            }
        }
    }
}

impl Level {
    fn merge(&mut self, o: &Level, limits: &schema::Limits) {
        self.exchanges += o.exchanges;
        self.request_bodies += o.request_bodies;
        self.response_bodies += o.response_bodies;
        self.truncated += o.truncated;
        match (&mut self.request, &o.request) {
            (Some(a), Some(b)) => a.merge(b, limits),
            (None, Some(b)) => self.request = Some(b.clone()),
            _ => {}
        }
        for (s, sch) in &o.responses {
            self.responses.entry(*s).or_default().merge(sch, limits);
        }
        merge_pii(&mut self.pii, &o.pii);
    }
}

impl Bodies {
    /// Drops the lowest levels while more than `budget` exchanges are sampled.
    fn settle(&mut self, budget: u64) {
        self.levels.retain(|l, _| *l >= self.min_level);
        loop {
            let sampled: u64 = self.levels.values().map(|l| l.exchanges).sum();
            if sampled <= budget || self.min_level >= 63 {
                break;
            }
            self.levels.remove(&self.min_level);
            self.min_level += 1;
        }
    }

    fn merge(&mut self, o: &Bodies, limits: &Limits) {
        self.min_level = self.min_level.max(o.min_level);
        for (l, lv) in &o.levels {
            if *l >= self.min_level {
                self.levels.entry(*l).or_default().merge(lv, &limits.schema);
            }
        }
        self.settle(limits.body_samples);
    }

    /// The request schema over every kept level.
    pub fn request(&self, limits: &schema::Limits) -> Option<Schema> {
        let mut out: Option<Schema> = None;
        for l in self.levels.values() {
            if let Some(s) = &l.request {
                out.get_or_insert_with(Schema::default).merge(s, limits);
            }
        }
        out
    }

    /// Response schemas by status over every kept level.
    pub fn responses(&self, limits: &schema::Limits) -> BTreeMap<u16, Schema> {
        let mut out: BTreeMap<u16, Schema> = BTreeMap::new();
        for l in self.levels.values() {
            for (s, sch) in &l.responses {
                out.entry(*s).or_default().merge(sch, limits);
            }
        }
        out
    }

    /// Sensitive data found in the sampled bodies.
    pub fn pii(&self) -> BTreeMap<String, PiiStat> {
        let mut out = BTreeMap::new();
        for l in self.levels.values() {
            merge_pii(&mut out, &l.pii);
        }
        out
    }

    /// Exchanges whose bodies are summarised.
    pub fn sampled(&self) -> u64 {
        self.levels.values().map(|l| l.exchanges).sum()
    }
}

impl EndpointStats {
    /// Merges with explicit limits (the `Mergeable` impl uses the defaults).
    pub fn merge_with(&mut self, o: &EndpointStats, limits: &Limits) {
        if o.requests == 0 && o.status.is_empty() {
            return;
        }
        self.requests += o.requests;
        self.first_seen = min_nonzero(self.first_seen, o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        add_counts(&mut self.status, &o.status);
        add_counts(&mut self.protos, &o.protos);
        for (k, q) in &o.query {
            let mine = self.query.entry(k.clone()).or_default();
            mine.count += q.count;
            add_counts(&mut mine.types, &q.types);
        }
        self.query_more |= o.query_more | truncate_map(&mut self.query, limits.max_query_params);
        add_counts(&mut self.request_types, &o.request_types);
        truncate_map(&mut self.request_types, limits.max_set);
        add_counts(&mut self.response_types, &o.response_types);
        truncate_map(&mut self.response_types, limits.max_set);
        add_counts(&mut self.auth, &o.auth);
        self.identities.merge(&o.identities);
        let j = &mut self.jwt;
        j.tokens += o.jwt.tokens;
        j.with_exp += o.jwt.with_exp;
        j.algs.extend(o.jwt.algs.iter().cloned());
        j.issuers.extend(o.jwt.issuers.iter().cloned());
        j.audiences.extend(o.jwt.audiences.iter().cloned());
        truncate_set(&mut j.algs, limits.max_set);
        truncate_set(&mut j.issuers, limits.max_set);
        truncate_set(&mut j.audiences, limits.max_set);
        merge_pii(&mut self.pii, &o.pii);
        self.pii_more |= o.pii_more | truncate_map(&mut self.pii, limits.max_pii);
        self.deprecated_responses += o.deprecated_responses;
        self.sunset = self.sunset.max(o.sunset);
        self.unauthenticated_2xx += o.unauthenticated_2xx;
        self.decrypted += o.decrypted;
        self.bodies.merge(&o.bodies, limits);
    }

    /// Every sensitive-data entry: URL and headers plus sampled bodies.
    pub fn all_pii(&self) -> BTreeMap<String, PiiStat> {
        let mut all = self.pii.clone();
        merge_pii(&mut all, &self.bodies.pii());
        all
    }

    /// The kinds of sensitive data seen, sorted.
    pub fn pii_kinds(&self) -> Vec<PiiKind> {
        let kinds: BTreeSet<PiiKind> = self.all_pii().values().map(|p| p.kind).collect();
        kinds.into_iter().collect()
    }

    /// The authentication schemes seen (`bearer`, `api_key`, ..., `none`), sorted.
    pub fn auth_schemes(&self) -> Vec<String> {
        let s: BTreeSet<String> = self
            .auth
            .keys()
            .map(|k| auth::scheme_of(k).to_string())
            .collect();
        s.into_iter().collect()
    }
}

impl Mergeable for EndpointStats {
    fn merge(&mut self, other: &Self) {
        self.merge_with(other, &Limits::default());
    }
    fn requests(&self) -> u64 {
        self.requests
    }
}

/// The media type of a message, lower-cased and without parameters.
pub fn media_type(m: &Message) -> Option<String> {
    let mut buf = [0u8; MEDIA_TYPE_MAX];
    media_type_in(m, &mut buf).map(str::to_string)
}

/// Longest media type kept.
const MEDIA_TYPE_MAX: usize = 100;

/// `media_type` written into a caller's buffer: runs twice per request, allocates nothing.
fn media_type_in<'b>(m: &Message, buf: &'b mut [u8; MEDIA_TYPE_MAX]) -> Option<&'b str> {
    let v = m.head.header("content-type")?;
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    let t = v[..end].trim_ascii();
    let out = super::lower_in(t, buf).filter(|_| !t.is_empty())?;
    std::str::from_utf8(out).ok()
}

fn value_type(v: &str) -> &'static str {
    if v.is_empty() {
        "empty"
    } else if v.parse::<i64>().is_ok() {
        "integer"
    } else if v.parse::<f64>().is_ok_and(f64::is_finite) {
        "number"
    } else if v == "true" || v == "false" {
        "boolean"
    } else if super::segment::classify(v) == super::segment::Shape::Uuid {
        "uuid"
    } else {
        "string"
    }
}

/// The largest char boundary of `s` at or below `max`.
fn char_floor(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A decoded query parameter (name, value), borrowed from the request-target when it
/// had nothing to decode.
pub type QueryPair<'q> = (Cow<'q, str>, Cow<'q, str>);

/// Decodes `%XX` and `+` of a query component; borrows when there is nothing to decode.
pub fn query_decode(s: &str) -> Cow<'_, str> {
    match super::segment::percent_decode(s, true) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        Cow::Owned(b) => Cow::Owned(super::lossy(&b).into_owned()),
    }
}

/// Splits a query string into decoded (name, value) pairs, at most `max`; names are cut
/// to 64 bytes. Allocates only for components with escapes.
pub fn parse_query(q: &str, max: usize) -> Vec<QueryPair<'_>> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .take(max)
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            let n = match query_decode(n) {
                Cow::Borrowed(n) => Cow::Borrowed(&n[..char_floor(n, 64)]),
                Cow::Owned(mut n) => {
                    n.truncate(char_floor(&n, 64));
                    Cow::Owned(n)
                }
            };
            (n, query_decode(v))
        })
        .collect()
}

/// Header names [`scanned_header`] lower-cases to compare with its lists (whose longest
/// names have 28 bytes); longer names are scanned unless they name a key.
const KNOWN_HEADER_MAX: usize = 40;

/// Whether a header's value is scanned for personal data. Not pseudo-headers; not
/// standard headers whose values are protocol data (lengths, types, dates, caches,
/// negotiation); not credentials, which are reported as auth. Runs on every header of
/// every exchange: one lower-case copy on the stack and one `match`.
fn scanned_header(name: &[u8]) -> bool {
    if name.first() == Some(&b':') {
        return false;
    }
    let mut buf = [0u8; KNOWN_HEADER_MAX];
    let Some(lower) = super::lower_in(name, &mut buf) else {
        return !auth::is_key_header(name);
    };
    match &*lower {
        // Protocol data.
        b"host"
        | b"content-length"
        | b"content-type"
        | b"content-encoding"
        | b"transfer-encoding"
        | b"connection"
        | b"keep-alive"
        | b"accept"
        | b"accept-encoding"
        | b"accept-language"
        | b"accept-ranges"
        | b"cache-control"
        | b"pragma"
        | b"expires"
        | b"age"
        | b"date"
        | b"etag"
        | b"last-modified"
        | b"if-none-match"
        | b"if-modified-since"
        | b"if-match"
        | b"vary"
        | b"server"
        | b"user-agent"
        | b"upgrade"
        | b"te"
        | b"trailer"
        | b"range"
        | b"content-range"
        | b"origin"
        | b"access-control-allow-origin"
        | b"access-control-allow-methods"
        | b"access-control-allow-headers"
        | b"sec-fetch-mode"
        | b"sec-fetch-site"
        | b"sec-fetch-dest"
        | b"x-content-type-options"
        | b"x-frame-options"
        | b"strict-transport-security"
        | b"content-security-policy"
        | b"x-xss-protection"
        | b"referrer-policy"
        | b"grpc-encoding"
        | b"grpc-accept-encoding"
        | b"grpc-status"
        | b"grpc-message"
        | b"grpc-timeout"
        | b"expect"
        | b"sec-websocket-key"
        | b"sec-websocket-accept"
        | b"sec-websocket-version"
        | b"sec-websocket-extensions"
        | b"http2-settings"
        | b"alt-svc" => false,
        // Credentials.
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie" => false,
        _ => !auth::is_key_header(name),
    }
}

fn add_pii(
    map: &mut BTreeMap<String, PiiStat>,
    kind: PiiKind,
    location: &str,
    value: &str,
    limits: &Limits,
) -> bool {
    let key = format!("{}@{}", kind.as_str(), location);
    if !map.contains_key(&key) && map.len() >= limits.max_pii {
        // Keep the smallest keys, like a merge would.
        match map.keys().next_back() {
            Some(last) if *last > key => {
                let last = last.clone();
                map.remove(&last);
            }
            _ => return true,
        }
    }
    let e = map.entry(key).or_insert_with(|| PiiStat {
        kind,
        location: location.to_string(),
        count: 0,
        samples: Examples::default(),
    });
    e.count += 1;
    e.samples
        .offer(stable_hash(value.as_bytes()), || pii::mask(kind, value));
    false
}

/// A body that could be read.
enum ParsedBody<'a> {
    /// A JSON document (decoded): read once, straight into the level's schema and past
    /// the sensitive-data scan (`schema::stream`).
    Json(std::borrow::Cow<'a, [u8]>),
    /// An urlencoded form: its schema and its fields.
    Form(Schema, Vec<(String, String)>),
    /// A multipart form: its schema.
    Multipart(Schema),
}

/// Reads a sampled body; `inflated` is set when its content coding inflates past
/// [`Limits::max_body`] (a decompression bomb), which the body's own `truncated` does not
/// say because the wire bytes were kept whole.
fn parse_body<'a>(m: &'a Message, limits: &Limits, inflated: &mut bool) -> Option<ParsedBody<'a>> {
    if m.body.data.is_empty() {
        return None;
    }
    // Decoding was deferred to here, so only sampled bodies pay for it.
    let (decoded, truncated) = crate::http1::body::content(&m.head, &m.body, limits.max_body)?;
    if truncated {
        *inflated = !m.body.truncated;
        return None;
    }
    let data: &[u8] = &decoded;
    let mut buf = [0u8; MEDIA_TYPE_MAX];
    let media = media_type_in(m, &mut buf).unwrap_or_default();
    let looks_json = media == "application/json"
        || media.ends_with("+json")
        || (media.is_empty()
            && data
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{' || *b == b'['));
    if looks_json {
        return schema::stream::is_json(&decoded).then_some(ParsedBody::Json(decoded));
    }
    if media == "application/x-www-form-urlencoded" {
        return Some(ParsedBody::Form(
            schema::from_form(data, &limits.schema),
            parse_query(&String::from_utf8_lossy(data), 256)
                .into_iter()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
        ));
    }
    if media == "multipart/form-data" {
        let ct = String::from_utf8_lossy(m.head.header("content-type")?).into_owned();
        let boundary = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()?
            .trim_matches('"')
            .to_string();
        return Some(ParsedBody::Multipart(schema::from_multipart(
            data,
            &boundary,
            &limits.schema,
        )));
    }
    None
}

/// What one exchange contributes to its endpoint.
pub struct Observation<'a> {
    pub exchange: &'a Exchange,
    pub request: &'a Message,
    pub query: &'a [QueryPair<'a>],
    pub path: &'a str,
    pub salt: &'a [u8],
}

/// An HTTP-date (`Wed, 30 Jun 2027 23:59:59 GMT`) as nanoseconds since the epoch.
fn http_date(v: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(v).ok()?;
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()?
        .timestamp_nanos_opt()
}

impl EndpointStats {
    /// Counts one exchange into the endpoint.
    pub fn record(&mut self, o: &Observation<'_>, limits: &Limits) {
        let ex = o.exchange;
        let ts = ex.ts();
        self.requests += 1;
        if ex.notes.contains(&crate::exchange::Note::Decrypted) {
            self.decrypted += 1;
        }
        self.first_seen = min_nonzero(self.first_seen, ts);
        self.last_seen = self.last_seen.max(ts);
        let status = ex.status().unwrap_or(0);
        *self.status.entry(status).or_default() += 1;
        let proto = if ex.grpc_messages.is_some() && is_grpc(o.request) {
            "grpc"
        } else {
            ex.proto.as_str()
        };
        bump(&mut self.protos, proto);
        for (n, v) in o.query {
            let n: &str = n;
            if !self.query.contains_key(n) {
                if self.query.len() >= limits.max_query_params {
                    self.query_more = true;
                    match self.query.keys().next_back() {
                        Some(last) if last.as_str() > n => {
                            let last = last.clone();
                            self.query.remove(&last);
                        }
                        _ => continue,
                    }
                }
                // The name String is made only for a parameter new to the endpoint.
                self.query.insert(n.to_string(), QueryParam::default());
            }
            if let Some(q) = self.query.get_mut(n) {
                q.count += 1;
                bump(&mut q.types, value_type(v));
            }
        }
        let mut buf = [0u8; MEDIA_TYPE_MAX];
        if let Some(t) = media_type_in(o.request, &mut buf) {
            bump(&mut self.request_types, t);
            truncate_map(&mut self.request_types, limits.max_set);
        }
        if let Some(t) = ex
            .response
            .as_ref()
            .and_then(|r| media_type_in(r, &mut buf))
        {
            bump(&mut self.response_types, t);
            truncate_map(&mut self.response_types, limits.max_set);
        }
        self.record_auth(o, status, limits);
        if let Some(r) = &ex.response {
            // One pass over the response's fields for both names.
            let mut retiring = false;
            for (n, v) in r.head.headers() {
                if n.eq_ignore_ascii_case(b"sunset") {
                    retiring = true;
                    self.sunset = self.sunset.max(http_date(v));
                } else if n.eq_ignore_ascii_case(b"deprecation") {
                    retiring = true;
                }
            }
            if retiring {
                self.deprecated_responses += 1;
            }
        }
        self.record_visible_pii(o, limits);
        self.record_bodies(o, status, limits);
    }

    fn record_auth(&mut self, o: &Observation<'_>, status: u16, limits: &Limits) {
        let creds: Vec<Credential> = auth::credentials(&o.request.head, o.query);
        if creds.is_empty() {
            bump(&mut self.auth, "none");
            if (200..300).contains(&status) {
                self.unauthenticated_2xx += 1;
            }
            return;
        }
        for c in creds {
            bump(&mut self.auth, &c.key);
            if let Some(id) = c.identity {
                self.identities
                    .insert(identity_hash(o.salt, &c.key, &id.to_le_bytes()));
            }
            if let Some(info) = c.jwt {
                let j = &mut self.jwt;
                j.tokens += 1;
                j.with_exp += u64::from(info.has_exp);
                // Clone strings only when new: the same issuer comes on every request.
                if !j.algs.contains(&info.alg) {
                    j.algs.insert(info.alg.clone());
                }
                if let Some(iss) = &info.iss {
                    if !j.issuers.contains(iss) {
                        j.issuers.insert(iss.clone());
                    }
                }
                for aud in &info.aud {
                    if !j.audiences.contains(aud) {
                        j.audiences.insert(aud.clone());
                    }
                }
                truncate_set(&mut j.algs, limits.max_set);
                truncate_set(&mut j.issuers, limits.max_set);
                truncate_set(&mut j.audiences, limits.max_set);
            }
        }
    }

    fn record_visible_pii(&mut self, o: &Observation<'_>, limits: &Limits) {
        // Locations are only written out when something is found: this runs on every
        // request.
        let mut found: Vec<(PiiKind, String, String)> = Vec::new();
        for seg in super::template::split_path(o.path) {
            // A path segment is not a query component: `+` stays `+`.
            let seg: std::borrow::Cow<'_, str> = if seg.contains('%') {
                String::from_utf8_lossy(&super::segment::percent_decode(seg, false))
                    .into_owned()
                    .into()
            } else {
                seg.into()
            };
            pii::scan_text(&seg, &mut |k, v| {
                found.push((k, "path".into(), v.to_string()))
            });
        }
        for (n, v) in o.query {
            pii::scan_field(n, v, &mut |k, m| {
                found.push((k, format!("query:{n}"), m.to_string()))
            });
        }
        let mut headers = |head: &Head, side: &str| {
            for (n, v) in head.headers() {
                if !scanned_header(n) {
                    continue;
                }
                let (Ok(n), Ok(v)) = (std::str::from_utf8(n), std::str::from_utf8(v)) else {
                    continue;
                };
                pii::scan_text(v, &mut |k, m| {
                    found.push((
                        k,
                        format!("{side}_header:{}", n.to_ascii_lowercase()),
                        m.to_string(),
                    ))
                });
            }
        };
        headers(&o.request.head, "request");
        if let Some(r) = &o.exchange.response {
            headers(&r.head, "response");
        }
        for (k, loc, v) in found {
            self.pii_more |= add_pii(&mut self.pii, k, &loc, &v, limits);
        }
    }

    fn record_bodies(&mut self, o: &Observation<'_>, status: u16, limits: &Limits) {
        let ex = o.exchange;
        let level = sample_level(ex);
        let b = &mut self.bodies;
        if level < b.min_level {
            return;
        }
        b.levels.entry(level).or_default().exchanges += 1;
        b.settle(limits.body_samples);
        let Some(lv) = b.levels.get_mut(&level) else {
            return; // this exchange's level was just dropped
        };
        let sides = [
            (Some(o.request), "request"),
            (ex.response.as_ref(), "response"),
        ];
        for (m, side) in sides {
            let Some(m) = m else { continue };
            if m.body.truncated && !m.body.data.is_empty() {
                lv.truncated += 1;
            }
            let mut inflated = false;
            let Some(parsed) = parse_body(m, limits, &mut inflated) else {
                // A bomb is counted with the bodies that could not be read whole.
                lv.truncated += u64::from(inflated);
                continue;
            };
            let schema = if side == "request" {
                lv.request_bodies += 1;
                lv.request.get_or_insert_with(Schema::default)
            } else {
                lv.response_bodies += 1;
                lv.responses.entry(status).or_default()
            };
            let mut found: Vec<(PiiKind, String, String)> = Vec::new();
            match &parsed {
                ParsedBody::Json(data) => {
                    let mut names = pii::FieldNames::default();
                    let mut each = |p: &str, key: Option<&str>, cached, s: &str| {
                        // The location is written out only for a finding: this runs for
                        // every string of every sampled body.
                        let mut hit = |kind, m: &str| {
                            found.push((kind, format!("{side}_body:{p}"), m.to_string()))
                        };
                        match (cached, key) {
                            (Some(k), _) => names.scan_field(k, s, &mut hit),
                            (None, Some(k)) => pii::scan_field(k, s, &mut hit),
                            (None, None) => pii::scan_text(s, &mut hit),
                        }
                    };
                    let mut strings =
                        schema::stream::Strings::new(limits.max_body_strings, &mut each);
                    schema::stream::observe_json(data, schema, &limits.schema, &mut strings);
                }
                ParsedBody::Form(form_schema, form) => {
                    schema.merge(form_schema, &limits.schema);
                    for (n, v) in form {
                        let loc = format!("{side}_body:{n}");
                        pii::scan_field(n, v, &mut |kind, m| {
                            found.push((kind, loc.clone(), m.to_string()))
                        });
                    }
                }
                ParsedBody::Multipart(part_schema) => schema.merge(part_schema, &limits.schema),
            }
            for (k, loc, v) in found {
                add_pii(&mut lv.pii, k, &loc, &v, limits);
            }
        }
    }
}

/// A caller's identity as stored: a 64-bit hash of the inventory's salt, the scheme and
/// the credential's subject, kept only inside a bottom-k sketch. The salt lives in the
/// same file, so no hash would stop someone holding the file from testing guessed user
/// names; what the salt and the 64-bit width do give is that a token cannot be read back
/// (a 200-byte token has countless preimages) and hashes do not match across
/// inventories. It was SHA-256 first: a tenth of the inventory's cost for nothing more.
fn identity_hash(salt: &[u8], key: &str, id: &[u8]) -> u64 {
    // Written on the stack when it fits (it nearly always does: a 16-byte salt, a key,
    // an 8-byte id): this runs for every credential of every request.
    let parts = [salt, key.as_bytes(), &[0], id];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut buf = [0u8; 256];
    let mut heap = Vec::new();
    let material = match buf.get_mut(..len) {
        Some(b) => b,
        None => {
            heap.resize(len, 0);
            &mut heap[..]
        }
    };
    let mut at = 0;
    for p in parts {
        material[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    stable_hash(material)
}

/// The sampling level of an exchange: trailing zero bits of a hash of what identifies it
/// (addresses, stream, time), so the same exchange always gets the same level.
fn sample_level(ex: &Exchange) -> u8 {
    let mut id = [0u8; 64];
    let mut n = 0;
    for addr in [ex.client, ex.server] {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v) => v.octets(),
        };
        id[n..n + 16].copy_from_slice(&ip);
        id[n + 16..n + 18].copy_from_slice(&addr.port().to_be_bytes());
        n += 18;
    }
    id[n..n + 4].copy_from_slice(&ex.stream.unwrap_or(0).to_be_bytes());
    id[n + 4..n + 12].copy_from_slice(&ex.ts().to_be_bytes());
    n += 12;
    stable_hash(&id[..n]).trailing_zeros().min(63) as u8
}

fn is_grpc(m: &Message) -> bool {
    m.head
        .header("content-type")
        .is_some_and(|c| c.starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Body;
    use crate::http1::head::{parse_head, StartKind};
    use std::io::Write;

    #[test]
    fn a_body_inflating_past_the_limit_is_reported() {
        // 50 KB of gzip on the wire, 50 MB once inflated: kept whole, so only decoding
        // can tell that it was not read (it used to be skipped without a count).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 50 << 20]).unwrap();
        let data = gz.finish().unwrap();
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n\r\n";
        let (head, _) = parse_head(raw.to_vec(), StartKind::Response).unwrap();
        let m = Message {
            head,
            body: Body {
                wire_len: data.len() as u64,
                data,
                truncated: false,
                encoded: true,
            },
            first_ts: 0,
            last_ts: 0,
        };
        let mut inflated = false;
        assert!(parse_body(&m, &Limits::default(), &mut inflated).is_none());
        assert!(inflated);
    }
}
