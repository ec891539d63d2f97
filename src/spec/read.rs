/*!
Spec text to a JSON value, with errors that name the line.

JSON documents start with `{`; they are read by serde_json, and if that fails by the YAML
reader (flow YAML also starts with `{`). Everything else is YAML (yaml_serde). YAML merge
keys (`<<: *base`) are applied when the text holds any, through `yaml_serde::Value`.
*/

use std::path::Path;

use serde_json::Value;

use super::SpecError;

/// Reads spec text (JSON or YAML) into a JSON value; the error names `path` and the line.
pub(crate) fn parse_text(text: &str, path: &Path) -> Result<Value, SpecError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let looks_json = text.trim_start().starts_with('{');
    if looks_json {
        let json_err = match serde_json::from_str::<Value>(text) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Ok(v) = yaml(text) {
            return Ok(v);
        }
        let is_yaml_name = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !is_yaml_name {
            return Err(SpecError::Syntax {
                path: path.to_path_buf(),
                line: Some(json_err.line()).filter(|l| *l > 0),
                format: "JSON",
                why: strip_location(&json_err.to_string()),
            });
        }
    }
    yaml(text).map_err(|e| SpecError::Syntax {
        path: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        format: "YAML",
        why: strip_location(&e.to_string()),
    })
}

/// YAML to JSON, with merge keys applied when there may be some.
fn yaml(text: &str) -> Result<Value, yaml_serde::Error> {
    if text.contains("<<") {
        let mut v: yaml_serde::Value = yaml_serde::from_str(text)?;
        if v.apply_merge().is_ok() {
            if let Ok(j) = serde_json::to_value(v) {
                return Ok(j);
            }
        }
    }
    yaml_serde::from_str::<Value>(text)
}

/// Drops the ` at line 3 column 5` both readers append: the error shows the line itself.
fn strip_location(msg: &str) -> String {
    let cut = [" at line ", ", line "]
        .iter()
        .filter_map(|m| msg.rfind(m))
        .min()
        .unwrap_or(msg.len());
    msg[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, name: &str) -> String {
        match parse_text(text, Path::new(name)) {
            Ok(v) => panic!("parsed: {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn json_and_yaml_read() {
        let j = parse_text("{\"openapi\": \"3.0.0\"}", Path::new("a.json"));
        assert_eq!(
            j.ok().and_then(|v| v.get("openapi").cloned()),
            Some("3.0.0".into())
        );
        let y = parse_text("\u{feff}openapi: 3.1.0\npaths: {}\n", Path::new("a.yaml"));
        assert!(y.is_ok_and(|v| v["paths"].is_object()));
        // Flow YAML: starts like JSON, is not JSON.
        let f = parse_text("{openapi: 3.0.0, paths: {}}", Path::new("a.yaml"));
        assert!(f.is_ok_and(|v| v["openapi"] == "3.0.0"));
    }

    #[test]
    fn merge_keys_are_applied() {
        let t = "base: &b {type: string}\nx:\n  <<: *b\n  format: email\n";
        let v = parse_text(t, Path::new("m.yaml")).unwrap_or_default();
        assert_eq!(v["x"]["type"], "string");
        assert_eq!(v["x"]["format"], "email");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = err("openapi: 3.0.0\npaths:\n  /a: x: y\n", "specs/x.yaml");
        assert!(e.starts_with("specs/x.yaml:3: invalid YAML: "), "{e}");
        assert!(!e.contains("column"), "{e}");
        let e = err("{\n \"openapi\": \"3.0.0\",\n \"paths\": {,}\n}", "x.json");
        assert!(e.starts_with("x.json:3: invalid JSON: "), "{e}");
    }
}
