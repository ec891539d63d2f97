/*!
Where a spec's operations are served: 3.x `servers` (URLs with `{variables}`) and 2.0
`schemes` × `host` + `basePath`, as [`Server`]s.

A server URL's variables are replaced by their defaults. `https://api.example.com/v2`
gives host `api.example.com` and base path `/v2`; a relative URL (`/api`) gives no host
(any host matches). A host that still holds a variable (none had a default) is left open
too. Hosts are lower-cased and keep an explicit port; base paths lose their trailing `/`.
*/

use serde_json::Value;

use super::model::Server;

/// The open server: any host, no base path.
pub(crate) fn open() -> Server {
    Server {
        host: None,
        base_path: String::new(),
        scheme: None,
    }
}

/// A base path without trailing `/`, with a leading one when not empty.
fn clean_base(path: &str) -> String {
    let p = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// A host as matched: lower-case, port kept, no user info; `None` when empty or when it
/// holds an unresolved variable.
fn clean_host(authority: &str) -> Option<String> {
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() || host.contains('{') {
        None
    } else {
        Some(host.to_ascii_lowercase())
    }
}

/// A 3.x server object.
pub(crate) fn from_object(server: &Value) -> Option<Server> {
    let url = server.get("url")?.as_str()?;
    let vars = server.get("variables").and_then(Value::as_object);
    let mut expanded = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        expanded.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        match vars
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
        {
            Some(Value::String(d)) => expanded.push_str(d),
            Some(d @ Value::Number(_)) => expanded.push_str(&d.to_string()),
            _ => expanded.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    expanded.push_str(rest);
    Some(from_url(&expanded))
}

/// A server URL with its variables already expanded.
pub(crate) fn from_url(url: &str) -> Server {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if !s.is_empty() && !s.contains(['/', '{']) => {
            (Some(s.to_ascii_lowercase()), Some(r))
        }
        _ => (None, url.strip_prefix("//")),
    };
    match rest {
        Some(r) => {
            let end = r.find(['/', '?', '#']).unwrap_or(r.len());
            Server {
                host: clean_host(&r[..end]),
                base_path: clean_base(&r[end..]),
                scheme,
            }
        }
        None => Server {
            host: None,
            base_path: clean_base(url),
            scheme: None,
        },
    }
}

/// A 3.x `servers` list; `None` when absent or empty (the caller inherits).
pub(crate) fn list(v: Option<&Value>) -> Option<Vec<Server>> {
    let mut out: Vec<Server> = Vec::new();
    for s in v?.as_array()?.iter().filter_map(from_object) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// 2.0: each of `schemes` (or none) with `host` and `basePath`.
pub(crate) fn swagger2(root: &Value, schemes: Option<&Value>) -> Vec<Server> {
    let host = root
        .get("host")
        .and_then(Value::as_str)
        .and_then(clean_host);
    let base_path = clean_base(root.get("basePath").and_then(Value::as_str).unwrap_or(""));
    let schemes: Vec<Option<String>> = schemes
        .or_else(|| root.get("schemes"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| Some(s.to_ascii_lowercase()))
                .collect()
        })
        .filter(|v: &Vec<Option<String>>| !v.is_empty())
        .unwrap_or_else(|| vec![None]);
    schemes
        .into_iter()
        .map(|scheme| Server {
            host: host.clone(),
            base_path: base_path.clone(),
            scheme,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(host: Option<&str>, base: &str, scheme: Option<&str>) -> Server {
        Server {
            host: host.map(str::to_string),
            base_path: base.to_string(),
            scheme: scheme.map(str::to_string),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            from_url("https://API.Example.com/v2/"),
            s(Some("api.example.com"), "/v2", Some("https"))
        );
        assert_eq!(
            from_url("http://api.example.com:8443"),
            s(Some("api.example.com:8443"), "", Some("http"))
        );
        assert_eq!(from_url("/api"), s(None, "/api", None));
        assert_eq!(from_url("/"), s(None, "", None));
        assert_eq!(from_url("//h.io/x?y"), s(Some("h.io"), "/x", None));
    }

    #[test]
    fn variables() {
        let v = json!({"url": "{scheme}://{region}.example.com:{port}/{base}",
            "variables": {"scheme": {"default": "https"}, "region": {"default": "EU"},
                          "port": {"default": "443"}, "base": {"default": "v1"}}});
        assert_eq!(
            from_object(&v),
            Some(s(Some("eu.example.com:443"), "/v1", Some("https")))
        );
        let open = json!({"url": "https://{host}/api", "variables": {"host": {"enum": ["a"]}}});
        assert_eq!(from_object(&open), Some(s(None, "/api", Some("https"))));
        let both = json!([{"url": "/a"}, {"url": "/a/"}, {"x": 1}]);
        assert_eq!(list(Some(&both)), Some(vec![s(None, "/a", None)]));
        assert_eq!(list(Some(&json!([]))), None);
    }

    #[test]
    fn swagger2_servers() {
        let root = json!({"host": "Pets.io", "basePath": "/v1/", "schemes": ["https", "http"]});
        assert_eq!(
            swagger2(&root, None),
            [
                s(Some("pets.io"), "/v1", Some("https")),
                s(Some("pets.io"), "/v1", Some("http"))
            ]
        );
        assert_eq!(
            swagger2(&json!({"basePath": "/"}), None),
            [s(None, "", None)]
        );
        assert_eq!(
            swagger2(&root, Some(&json!(["wss"]))),
            [s(Some("pets.io"), "/v1", Some("wss"))]
        );
    }
}
