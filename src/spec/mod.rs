/*!
OpenAPI and Swagger specs, as far as inventory building needs them: the documented path
templates with their server base paths, so that `analyze --spec` matches traffic to the
spec's templates first and names parameters as the spec does.

Specs are read as JSON or YAML (yaml_serde) into `serde_json::Value` and the version is
told by the `swagger` (2.0) or `openapi` (3.x) field; no crate reads all three versions
(see STYLE.md). The diff against specs (issue 6) builds on this module.
*/

use std::path::{Path, PathBuf};

use serde_json::Value;

pub mod model;

use crate::infer::template::Hint;

/// A spec that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON or YAML: {why}")]
    Syntax { path: PathBuf, why: String },
    #[error("{path}: neither `openapi: 3.x` nor `swagger: \"2.0\"` at the top level")]
    NotASpec { path: PathBuf },
    #[error("{path}: path `{template}`: {why}")]
    BadPath {
        path: PathBuf,
        template: String,
        why: String,
    },
}

/// Reads a spec file into a JSON value (JSON first, then YAML).
pub fn read(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(v);
    }
    yaml_serde::from_str::<Value>(&text).map_err(|e| SpecError::Syntax {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// The path part of a server URL (`https://api.example.com/v1` gives `/v1`); server
/// variables are not expanded, so a templated base path is ignored.
fn base_path(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, r)) => r.find('/').map_or("", |i| &r[i..]),
        None => url,
    };
    if rest.contains('{') {
        return String::new();
    }
    rest.trim_end_matches('/').to_string()
}

/// The full path templates a spec documents: each path under each base path.
pub fn templates(spec: &Value, path: &Path) -> Result<Vec<String>, SpecError> {
    let bases: Vec<String> = if spec.get("swagger").is_some() {
        vec![spec
            .get("basePath")
            .and_then(Value::as_str)
            .map(base_path)
            .unwrap_or_default()]
    } else if spec.get("openapi").is_some() {
        let servers: Vec<String> = spec
            .get("servers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("url").and_then(Value::as_str))
                    .map(base_path)
                    .collect()
            })
            .unwrap_or_default();
        if servers.is_empty() {
            vec![String::new()]
        } else {
            servers
        }
    } else {
        return Err(SpecError::NotASpec {
            path: path.to_path_buf(),
        });
    };
    let mut out = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for p in paths.keys() {
            for b in &bases {
                let full = format!("{b}{p}");
                if !out.contains(&full) {
                    out.push(full);
                }
            }
        }
    }
    Ok(out)
}

/// A spec's templates as path hints: `{param}` segments force parameters named as the
/// spec names them, literal segments of documented paths stay literal.
pub fn hints(path: &Path) -> Result<Vec<Hint>, SpecError> {
    let spec = read(path)?;
    let mut out = Vec::new();
    for t in templates(&spec, path)? {
        // Hints take whole-segment parameters only; `/files/{name}.json` keeps its
        // literal form (the segment is matched as a word).
        let hint = Hint::parse(&t).or_else(|_| {
            let cleaned: Vec<String> = t
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with('{') && s.ends_with('}') {
                        let name: String = s[1..s.len() - 1]
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                            .collect();
                        format!("{{{name}}}")
                    } else {
                        s.replace(['{', '}'], "")
                    }
                })
                .collect();
            Hint::parse(&format!("/{}", cleaned.join("/")))
        });
        match hint {
            Ok(h) => out.push(h),
            Err(e) => {
                return Err(SpecError::BadPath {
                    path: path.to_path_buf(),
                    template: t,
                    why: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_of_both_versions_with_base_paths() {
        let v3: Value = serde_json::json!({
            "openapi": "3.0.3",
            "servers": [{"url": "https://api.example.com/v1/"}, {"url": "/internal"}],
            "paths": {"/pets/{petId}": {}, "/pets": {}}
        });
        let got = templates(&v3, Path::new("x")).unwrap_or_default();
        assert_eq!(
            got,
            [
                "/v1/pets",
                "/internal/pets",
                "/v1/pets/{petId}",
                "/internal/pets/{petId}"
            ]
        );
        let v2: Value = yaml_serde::from_str(
            "swagger: '2.0'\nbasePath: /api\npaths:\n  /users/{id}:\n    get: {}\n",
        )
        .unwrap_or_default();
        assert_eq!(
            templates(&v2, Path::new("x")).unwrap_or_default(),
            ["/api/users/{id}"]
        );
        let none = serde_json::json!({"paths": {}});
        assert!(matches!(
            templates(&none, Path::new("x")),
            Err(SpecError::NotASpec { .. })
        ));
    }
}
