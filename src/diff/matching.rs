/*!
Which documented operation an observed endpoint is: host against the operation's
servers, method, then path segment by segment with OpenAPI's precedence (a concrete
segment beats a parameter, earlier segments first), percent-decoded, trailing slash
ignored.
*/

use crate::infer::segment::percent_decode;
use crate::spec::model::{Operation, Server, Spec};

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A literal, percent-decoded.
    Lit(String),
    /// A whole-segment parameter `{name}`.
    Param(String),
    /// A parameter inside literal text (`{name}.json`, `v{major}`): the text before and
    /// after it.
    Mixed { prefix: String, suffix: String },
}

/// Splits a template (`/users/{id}/`) into segments; empty segments (a trailing or
/// doubled slash) are dropped.
pub fn segments(path: &str) -> Vec<Seg> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let open = s.find('{');
            let close = s.rfind('}');
            match (open, close) {
                (Some(0), Some(c)) if c == s.len() - 1 && !s[1..c].contains(['{', '}']) => {
                    Seg::Param(s[1..c].to_string())
                }
                (Some(o), Some(c)) if o < c => Seg::Mixed {
                    prefix: decode(&s[..o]),
                    suffix: decode(&s[c + 1..]),
                },
                _ => Seg::Lit(decode(s)),
            }
        })
        .collect()
}

fn decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s, false)).into_owned()
}

/// How well a spec template fits an observed one, position by position: 2 for a literal
/// that equals, 2 for a parameter with the same text around it (`{id}.json` and
/// `{orderId}.json`), 1 for any other parameter. Larger is a better (more concrete) match.
///
/// A parameter with a format extension is another endpoint than the parameter alone:
/// the inventory keeps `/users/{userId}.json` and `/users/{userId}` apart, so a spec's
/// `/users/{id}` does not document the first and its `/users/{id}.json` not the second.
pub fn fit(spec: &[Seg], seen: &[Seg]) -> Option<Vec<u8>> {
    if spec.len() != seen.len() {
        return None;
    }
    spec.iter()
        .zip(seen)
        .map(|(s, o)| match (s, o) {
            (Seg::Lit(a), Seg::Lit(b)) if a == b => Some(2),
            (Seg::Param(_), Seg::Mixed { .. }) => None,
            (Seg::Param(_), _) => Some(1),
            (Seg::Mixed { prefix, suffix }, Seg::Lit(b))
                if b.len() > prefix.len() + suffix.len()
                    && b.starts_with(prefix.as_str())
                    && b.ends_with(suffix.as_str()) =>
            {
                Some(1)
            }
            (
                Seg::Mixed { prefix, suffix },
                Seg::Mixed {
                    prefix: p,
                    suffix: s,
                },
            ) if p.starts_with(prefix.as_str()) && s.ends_with(suffix.as_str()) => {
                Some(if p == prefix && s == suffix { 2 } else { 1 })
            }
            _ => None,
        })
        .collect()
}

/// A host split from its port (`[::1]:8080` gives `[::1]` and `8080`).
fn bare_host(h: &str) -> (&str, Option<&str>) {
    if let Some(rest) = h.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => (&h[..end + 2], h[end + 2..].strip_prefix(':')),
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((name, port))
            if !name.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (name, Some(port))
        }
        _ => (h, None),
    }
}

/// Whether a server serves the observed host: a server without a host serves any; a
/// host without a port matches any port; the default ports are the same as none.
pub fn serves(server: &Server, host: &str) -> bool {
    let Some(want) = &server.host else {
        return true;
    };
    let (wn, wp) = bare_host(want);
    let (hn, hp) = bare_host(host);
    if !wn.eq_ignore_ascii_case(hn) {
        return false;
    }
    let default = |p: Option<&str>| matches!(p, None | Some("80") | Some("443"));
    match (wp, hp) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(a), None) => default(Some(a)),
    }
}

/// A documented operation's place: spec index, operation index, and one of its full
/// paths as segments.
#[derive(Debug, Clone)]
pub struct Entry {
    pub spec: usize,
    pub op: usize,
    pub full_path: String,
    pub segs: Vec<Seg>,
}

/// Every operation of every spec under each of its full paths.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
}

/// What an observed endpoint matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub entry: usize,
    /// The observed method was HEAD and the spec documents only GET there (servers
    /// answer HEAD for every GET route).
    pub head_as_get: bool,
}

impl Index {
    /// Indexes the operations of the specs.
    pub fn new(specs: &[Spec]) -> Index {
        let mut entries = Vec::new();
        for (si, s) in specs.iter().enumerate() {
            for (oi, op) in s.operations.iter().enumerate() {
                for full_path in op.full_paths() {
                    entries.push(Entry {
                        spec: si,
                        op: oi,
                        segs: segments(&full_path),
                        full_path,
                    });
                }
            }
        }
        Index { entries }
    }

    fn op<'a>(&self, specs: &'a [Spec], e: &Entry) -> &'a Operation {
        &specs[e.spec].operations[e.op]
    }

    /// Whether any spec serves this host (a spec without hosts serves every host).
    pub fn covers(&self, specs: &[Spec], host: &str) -> bool {
        self.entries
            .iter()
            .any(|e| self.op(specs, e).servers.iter().any(|s| serves(s, host)))
            || specs
                .iter()
                .any(|s| s.operations.is_empty() && s.servers.iter().any(|v| serves(v, host)))
    }

    /// The best operation for an observed endpoint, by OpenAPI precedence.
    pub fn find(&self, specs: &[Spec], host: &str, method: &str, path: &str) -> Option<Match> {
        let seen = segments(path);
        let best = |m: &str| {
            let mut best: Option<(Vec<u8>, usize)> = None;
            for (i, e) in self.entries.iter().enumerate() {
                let op = self.op(specs, e);
                if op.method != m || !op.servers.iter().any(|s| serves(s, host)) {
                    continue;
                }
                if let Some(score) = fit(&e.segs, &seen) {
                    if best.as_ref().is_none_or(|(b, _)| score > *b) {
                        best = Some((score, i));
                    }
                }
            }
            best.map(|(_, i)| i)
        };
        if let Some(entry) = best(method) {
            return Some(Match {
                entry,
                head_as_get: false,
            });
        }
        if method == "HEAD" {
            return best("GET").map(|entry| Match {
                entry,
                head_as_get: true,
            });
        }
        None
    }

    /// For an endpoint no spec documents: a documented operation with the same method
    /// and the same path except a higher version segment (`/v1/users/{id}` called while
    /// `/v2/users/{id}` is documented). Returns the entry and the two versions.
    pub fn successor(
        &self,
        specs: &[Spec],
        host: &str,
        method: &str,
        path: &str,
    ) -> Option<(usize, String, String)> {
        let seen = segments(path);
        let mut best: Option<(u64, usize, String, String)> = None;
        for (i, seg) in seen.iter().enumerate() {
            let Seg::Lit(v) = seg else { continue };
            let Some(old) = version(v) else { continue };
            for (ei, e) in self.entries.iter().enumerate() {
                let op = self.op(specs, e);
                if op.method != method
                    || e.segs.len() != seen.len()
                    || !op.servers.iter().any(|s| serves(s, host))
                {
                    continue;
                }
                let Seg::Lit(w) = &e.segs[i] else { continue };
                let Some(new) = version(w) else { continue };
                if new <= old {
                    continue;
                }
                let mut rest_spec = e.segs.clone();
                let mut rest_seen = seen.clone();
                rest_spec.remove(i);
                rest_seen.remove(i);
                if fit(&rest_spec, &rest_seen).is_some()
                    && best.as_ref().is_none_or(|(b, ..)| new < *b)
                {
                    best = Some((new, ei, v.clone(), w.clone()));
                }
            }
        }
        best.map(|(_, e, old, new)| (e, old, new))
    }
}

/// The number of a version segment: `v2` is 2, `V10` is 10; anything else is not one.
pub fn version(seg: &str) -> Option<u64> {
    let digits = seg.strip_prefix(['v', 'V'])?;
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::{Server, SpecVersion};
    use std::collections::BTreeMap;

    fn op(method: &str, path: &str, host: Option<&str>, base: &str) -> Operation {
        Operation {
            method: method.into(),
            spec_path: path.into(),
            operation_id: None,
            summary: None,
            deprecated: false,
            line: 1,
            servers: vec![Server {
                host: host.map(str::to_string),
                base_path: base.into(),
                scheme: None,
            }],
            parameters: vec![],
            request_body: None,
            responses: BTreeMap::new(),
            security: vec![],
            tags: vec![],
        }
    }

    fn spec(ops: Vec<Operation>) -> Spec {
        Spec {
            file: "s.yaml".into(),
            version: SpecVersion::OpenApi30,
            title: "t".into(),
            api_version: "1".into(),
            servers: vec![],
            operations: ops,
            security_schemes: BTreeMap::new(),
            paths_line: 1,
        }
    }

    #[test]
    fn concrete_segments_win_over_parameters() {
        let specs = [spec(vec![
            op("GET", "/users/{id}", Some("api.x.com"), "/v1"),
            op("GET", "/users/me", Some("api.x.com"), "/v1"),
            op("GET", "/{any}/me", Some("api.x.com"), "/v1"),
        ])];
        let ix = Index::new(&specs);
        let path_of = |p: &str| {
            ix.find(&specs, "api.x.com", "GET", p)
                .map(|m| ix.entries[m.entry].full_path.clone())
        };
        assert_eq!(path_of("/v1/users/me").as_deref(), Some("/v1/users/me"));
        assert_eq!(path_of("/v1/users/me/").as_deref(), Some("/v1/users/me"));
        assert_eq!(
            path_of("/v1/users/{userId}").as_deref(),
            Some("/v1/users/{id}")
        );
        assert_eq!(path_of("/v1/users/42").as_deref(), Some("/v1/users/{id}"));
        assert_eq!(path_of("/v1/groups/me").as_deref(), Some("/v1/{any}/me"));
        assert_eq!(path_of("/v2/users/42"), None);
        assert_eq!(path_of("/v1/users/42/x"), None);
        assert!(ix
            .find(&specs, "api.x.com", "POST", "/v1/users/42")
            .is_none());
        assert!(ix
            .find(&specs, "other.com", "GET", "/v1/users/42")
            .is_none());
        let head = ix.find(&specs, "api.x.com", "HEAD", "/v1/users/me");
        assert!(head.is_some_and(|m| m.head_as_get));
    }

    #[test]
    fn hosts_ports_and_open_servers() {
        let s = |h: Option<&str>| Server {
            host: h.map(str::to_string),
            base_path: String::new(),
            scheme: None,
        };
        assert!(serves(&s(None), "anything:8080"));
        assert!(serves(&s(Some("api.x.com")), "API.x.com:8443"));
        assert!(serves(&s(Some("api.x.com:443")), "api.x.com"));
        assert!(!serves(&s(Some("api.x.com:8443")), "api.x.com:9443"));
        assert!(!serves(&s(Some("api.x.com")), "x.com"));
        assert!(serves(&s(Some("[::1]:8080")), "[::1]:8080"));
    }

    #[test]
    fn segments_decode_and_mixed_parameters() {
        assert_eq!(
            segments("/files/{name}.json/a%20b/"),
            [
                Seg::Lit("files".into()),
                Seg::Mixed {
                    prefix: String::new(),
                    suffix: ".json".into()
                },
                Seg::Lit("a b".into())
            ]
        );
        let spec = segments("/files/{name}.json");
        assert!(fit(&spec, &segments("/files/report.json")).is_some());
        assert!(fit(&spec, &segments("/files/.json")).is_none());
        assert!(fit(&spec, &segments("/files/report.xml")).is_none());
    }

    #[test]
    fn parameters_with_an_extension() {
        let seen = segments("/users/{userId}.json");
        let plain = segments("/users/{userId}");
        let by_ext = segments("/users/{id}.json");
        let whole = segments("/users/{id}");
        // Documented with its extension: a fit, better than any other parameter.
        let exact = fit(&by_ext, &seen);
        assert_eq!(exact, Some(vec![2, 2]));
        assert!(exact > fit(&segments("/users/{id}.{format}"), &seen));
        // `/users/{id}` does not document `/users/{userId}.json`, nor `.xml` `.json`.
        assert_eq!(fit(&whole, &seen), None);
        assert_eq!(fit(&segments("/users/{id}.xml"), &seen), None);
        assert_eq!(fit(&by_ext, &plain), None);
        assert_eq!(fit(&whole, &plain), Some(vec![2, 1]));
        let specs = [spec(vec![
            op("GET", "/users/{id}.json", None, ""),
            op("GET", "/users/{id}", None, ""),
            op("GET", "/orders/{id}", None, ""),
        ])];
        let ix = Index::new(&specs);
        let path_of = |p: &str| {
            ix.find(&specs, "h", "GET", p)
                .map(|m| ix.entries[m.entry].full_path.clone())
        };
        assert_eq!(
            path_of("/users/{userId}.json").as_deref(),
            Some("/users/{id}.json")
        );
        assert_eq!(path_of("/users/{userId}").as_deref(), Some("/users/{id}"));
        assert_eq!(path_of("/orders/{orderId}.json"), None);
        assert_eq!(
            path_of("/users/42.json").as_deref(),
            Some("/users/{id}.json")
        );
    }

    #[test]
    fn successor_versions() {
        let specs = [spec(vec![
            op("GET", "/v2/users/{user_id}", None, "/api"),
            op("GET", "/v3/users/{user_id}", None, "/api"),
            op("GET", "/v1/users", None, "/api"),
        ])];
        let ix = Index::new(&specs);
        let got = ix.successor(&specs, "h", "GET", "/api/v1/users/{userId}");
        let (e, old, new) = got.unwrap_or_default();
        assert_eq!((old.as_str(), new.as_str()), ("v1", "v2"));
        assert_eq!(ix.entries[e].full_path, "/api/v2/users/{user_id}");
        assert!(ix
            .successor(&specs, "h", "DELETE", "/api/v1/users/{id}")
            .is_none());
        assert!(ix
            .successor(&specs, "h", "GET", "/api/v4/users/{id}")
            .is_none());
        assert_eq!(version("v12"), Some(12));
        assert_eq!(version("video"), None);
    }
}
