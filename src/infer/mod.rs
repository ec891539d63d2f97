/*!
Inference: from exchanges to what an API is. Path templates, parameters, JSON schemas,
authentication schemes and sensitive data, each learnt from traffic and kept as
mergeable, order-independent summaries (see docs/inventory.md and docs/templating.md).

[`Inventory`] is the whole model: one template tree per host whose nodes carry
[`endpoint::EndpointStats`] per method, and the TLS services that could not be looked
into. It is built by [`Inventory::observe`] from exchanges and combined with
[`Inventory::merge`]; both give the same result whatever order their input comes in.
*/

pub mod auth;
pub mod endpoint;
pub mod pii;
pub mod schema;
pub mod segment;
pub mod sketch;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::exchange::{Exchange, Note, Proto};
use endpoint::{EndpointStats, Observation};
use template::{Hint, Template, Tree};

/// Everything inference is allowed to keep, and the user's hints.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub template: template::Limits,
    pub endpoint: endpoint::Limits,
    pub hints: Vec<Hint>,
    /// Salt for identity hashes (per inventory, stored in it).
    pub salt: Vec<u8>,
}

/// A TLS service the sensor could not look into: who talks to it and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsService {
    pub server: String,
    pub sni: Option<String>,
    pub alpn: BTreeSet<String>,
    pub versions: BTreeSet<String>,
    pub connections: u64,
    /// Application bytes client to server and back.
    pub bytes: [u64; 2],
    pub first_seen: i64,
    pub last_seen: i64,
    /// JA4 fingerprints of clients (the smallest few).
    pub ja4: BTreeSet<String>,
    /// Certificate subject, when the server sent it in the clear (TLS 1.2 and older).
    pub certificate: Option<String>,
}

impl TlsService {
    fn merge(&mut self, o: &TlsService) {
        self.alpn.extend(o.alpn.iter().cloned());
        self.versions.extend(o.versions.iter().cloned());
        self.connections += o.connections;
        self.bytes[0] += o.bytes[0];
        self.bytes[1] += o.bytes[1];
        self.first_seen = match (self.first_seen, o.first_seen) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        self.last_seen = self.last_seen.max(o.last_seen);
        self.ja4.extend(o.ja4.iter().cloned());
        while self.ja4.len() > 8 {
            self.ja4.pop_last();
        }
        if o.certificate < self.certificate || self.certificate.is_none() {
            self.certificate = o.certificate.clone().or(self.certificate.take());
        }
    }
}

/// The inventory model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub hosts: BTreeMap<String, Tree<EndpointStats>>,
    /// Opaque TLS services by `server|sni`.
    pub tls: BTreeMap<String, TlsService>,
}

/// What one run fed to the inventory and what it left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub exchanges: u64,
    pub inventoried: u64,
    pub tls_connections: u64,
    /// Exchanges left out, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// `String::from_utf8_lossy`, without its slower walk when the bytes are valid UTF-8 (as
/// nearly all request-targets and header values are).
pub(crate) fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `s` lower-cased (ASCII letters) into `buf`, or `None` when it does not fit: the scans
/// that run on every request compare names and hosts this way, without allocating.
pub(crate) fn lower_in<'b>(s: &[u8], buf: &'b mut [u8]) -> Option<&'b mut [u8]> {
    let out = buf.get_mut(..s.len())?;
    for (d, c) in out.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    Some(out)
}

/// Longest host name kept (RFC 1035's limit on a name's text form).
const HOST_MAX: usize = 255;

/// The host an exchange is filed under, as [`normalize_host`] writes it, borrowed from
/// `buf` in the common case (a Host or `:authority` of printable ASCII): this runs on
/// every request and the host is nearly always one the inventory already has.
fn host_key<'b>(ex: &Exchange, buf: &'b mut [u8; HOST_MAX]) -> std::borrow::Cow<'b, str> {
    let fast = ex.host().filter(|h| {
        !h.is_empty() && h.len() <= HOST_MAX && h.iter().all(|&c| c.is_ascii_graphic() && c != b'/')
    });
    let Some(out) = fast.and_then(|h| lower_in(h, buf)) else {
        return normalize_host(ex).into();
    };
    let out: &[u8] = match out.strip_suffix(b":80") {
        Some(bare) if ex.server.port() == 80 => bare,
        _ => out,
    };
    match std::str::from_utf8(out) {
        Ok(s) => s.into(),
        Err(_) => normalize_host(ex).into(),
    }
}

fn normalize_host(ex: &Exchange) -> String {
    let raw = ex
        .host()
        .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
        .filter(|h| {
            !h.is_empty() && h.len() <= 255 && !h.contains(|c: char| c.is_whitespace() || c == '/')
        });
    match raw {
        Some(h) => match h.strip_suffix(":80") {
            Some(bare) if ex.server.port() == 80 => bare.to_string(),
            _ => h,
        },
        None => ex.server.to_string(),
    }
}

/// Files one exchange under its endpoint in a host's tree.
fn record_in(tree: &mut Tree<EndpointStats>, o: &Observation<'_>, method: &str, config: &Config) {
    tree.insert(o.path, method, &config.hints, &config.template)
        .record(o, &config.endpoint);
}

/// Splits a request-target into path and query; absolute-form targets lose their
/// scheme and authority.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let t = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        return None;
    };
    // Byte loops: targets are short, and `str::split` sets up a searcher for each call.
    let find = |s: &str, c: u8| s.bytes().position(|b| b == c);
    let t = find(t, b'#').map_or(t, |i| &t[..i]);
    Some(match find(t, b'?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    })
}

fn valid_method(m: &[u8]) -> Option<&str> {
    if m.is_empty() || m.len() > 24 {
        return None;
    }
    if !m
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
    {
        return None;
    }
    std::str::from_utf8(m).ok()
}

impl Inventory {
    /// Adds one exchange. Returns whether it reached an endpoint; `observed` says why not.
    pub fn observe(&mut self, ex: &Exchange, config: &Config, observed: &mut Observed) -> bool {
        observed.exchanges += 1;
        let mut skip = |why: &str| {
            *observed.skipped.entry(why.to_string()).or_default() += 1;
            false
        };
        if ex.proto == Proto::Tls {
            observed.exchanges -= 1;
            observed.tls_connections += 1;
            self.observe_tls(ex);
            return false;
        }
        let Some(req) = &ex.request else {
            return skip("response_without_request");
        };
        if ex.notes.contains(&Note::UpgradeH2c) && ex.status() == Some(101) {
            return skip("h2c_upgrade_counted_on_its_stream");
        }
        if ex.notes.contains(&Note::Tunnel) {
            return skip("connect_tunnel");
        }
        let Some(method) = req.head.method().and_then(valid_method) else {
            return skip("invalid_method");
        };
        let target = lossy(req.head.target().unwrap_or_default());
        let Some((path, query)) = split_target(&target) else {
            return skip("target_not_a_path");
        };
        let query = endpoint::parse_query(query, 64);
        let o = Observation {
            exchange: ex,
            request: req,
            query: &query,
            path,
            salt: &config.salt,
        };
        let mut buf = [0u8; HOST_MAX];
        let host = host_key(ex, &mut buf);
        // Looked up by `&str` first: the host String is made only for a new host.
        match self.hosts.get_mut(&*host) {
            Some(tree) => record_in(tree, &o, method, config),
            None => record_in(
                self.hosts.entry(host.into_owned()).or_default(),
                &o,
                method,
                config,
            ),
        }
        observed.inventoried += 1;
        true
    }

    fn observe_tls(&mut self, ex: &Exchange) {
        let Some(t) = &ex.tls else { return };
        let sni = t.client_hello.as_ref().and_then(|c| c.sni.clone());
        let server = ex.server.to_string();
        let key = format!("{server}|{}", sni.as_deref().unwrap_or(""));
        let mut s = TlsService {
            server,
            sni,
            connections: 1,
            bytes: t.bytes,
            first_seen: t.first_ts,
            last_seen: t.last_ts,
            ..Default::default()
        };
        if let Some(sh) = &t.server_hello {
            s.versions.insert(crate::exchange::tls_version(sh.version));
            s.alpn.extend(sh.alpn.clone());
        } else if let Some(ch) = &t.client_hello {
            s.alpn.extend(ch.alpn.iter().cloned());
        }
        if let Some(ch) = &t.client_hello {
            s.ja4.insert(ch.ja4.clone());
        }
        s.certificate = t.certificate.as_ref().map(|c| c.subject.clone());
        match self.tls.get_mut(&key) {
            Some(mine) => mine.merge(&s),
            None => {
                self.tls.insert(key, s);
            }
        }
    }

    /// Adds another inventory (from another capture or sensor).
    pub fn merge(&mut self, other: Inventory, config: &Config) {
        for (h, t) in other.hosts {
            match self.hosts.get_mut(&h) {
                Some(mine) => mine.merge(t, &config.hints, &config.template),
                None => {
                    self.hosts.insert(h, t);
                }
            }
        }
        for (k, s) in other.tls {
            match self.tls.get_mut(&k) {
                Some(mine) => mine.merge(&s),
                None => {
                    self.tls.insert(k, s);
                }
            }
        }
    }

    /// Applies the hints to what is already known (hints are applied on the next run).
    pub fn apply_hints(&mut self, config: &Config) {
        for t in self.hosts.values_mut() {
            t.apply_hints(&config.hints);
        }
    }

    /// Every endpoint with its host, as templating shows it now.
    pub fn endpoints(&self, config: &Config) -> Vec<(String, Template<EndpointStats>)> {
        let mut out = Vec::new();
        for (h, t) in &self.hosts {
            for e in t.templates(&config.hints, &config.template) {
                out.push((h.clone(), e));
            }
        }
        out
    }
}
