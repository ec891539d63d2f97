/*!
`$ref` targets: the documents a spec is spread over and JSON pointers into them.

A reference is `[file]#pointer`. An empty file part means the document the reference is
written in; otherwise the file part must be a relative path, taken relative to that
document's folder (`other.yaml#/X`, `./schemas/pet.json`, `../common.yaml#/Y`). Absolute
paths and URLs are refused: nothing is fetched and no file is read that a relative path
in the spec does not name. The pointer is percent-decoded, then read with RFC 6901
escapes (`~1` is `/`, `~0` is `~`).

Each file is read once and kept; at most [`MAX_FILES`] files per spec.
*/

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::Value;

use super::read::parse_text;

/// Most files one spec may reference (itself included).
pub(crate) const MAX_FILES: usize = 256;

/// One document of a spec.
pub(crate) struct Doc<'t> {
    pub path: PathBuf,
    /// The text, kept for the lines of warnings (borrowed for the spec's own file).
    pub text: Cow<'t, str>,
    pub value: Rc<Value>,
}

/// The documents of one spec; index 0 is the spec itself.
pub(crate) struct Docs<'t> {
    pub docs: Vec<Doc<'t>>,
    by_path: HashMap<PathBuf, usize>,
}

/// A resolved reference: the document it lands in and the pointer into it.
pub(crate) struct Target {
    pub doc: usize,
    pub value: Rc<Value>,
    pub pointer: String,
}

impl Target {
    /// The referenced value.
    pub fn get(&self) -> Option<&Value> {
        self.value.pointer(&self.pointer)
    }

    /// A key naming the target across documents (for cycle checks and caches).
    pub fn key(&self) -> (usize, String) {
        (self.doc, self.pointer.clone())
    }
}

impl<'t> Docs<'t> {
    /// The spec's own document.
    pub fn new(path: &Path, text: &'t str, value: Value) -> Docs<'t> {
        let mut by_path = HashMap::new();
        if let Ok(p) = std::fs::canonicalize(path) {
            by_path.insert(p, 0);
        }
        Docs {
            docs: vec![Doc {
                path: path.to_path_buf(),
                text: Cow::Borrowed(text),
                value: Rc::new(value),
            }],
            by_path,
        }
    }

    /// The spec's own document.
    pub fn root(&self) -> Rc<Value> {
        self.docs
            .first()
            .map_or_else(|| Rc::new(Value::Null), |d| Rc::clone(&d.value))
    }

    /// Where `reference`, written in document `from`, points; the error says why it
    /// cannot be followed.
    pub fn resolve(&mut self, from: usize, reference: &str) -> Result<Target, String> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = if file.is_empty() {
            from
        } else {
            self.open(from, file)?
        };
        let pointer =
            String::from_utf8_lossy(&crate::infer::segment::percent_decode(fragment, false))
                .into_owned();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!("`#{fragment}` is not a JSON pointer"));
        }
        let value = self
            .docs
            .get(doc)
            .map(|d| Rc::clone(&d.value))
            .ok_or_else(|| "no such document".to_string())?;
        let t = Target {
            doc,
            value,
            pointer,
        };
        if t.get().is_none() {
            let name = self.docs.get(doc).map(|d| d.path.display().to_string());
            return Err(format!(
                "`#{}` not found in {}",
                t.pointer,
                name.unwrap_or_default()
            ));
        }
        Ok(t)
    }

    /// The document a relative file reference names, read on first use.
    fn open(&mut self, from: usize, file: &str) -> Result<usize, String> {
        let decoded = String::from_utf8_lossy(&crate::infer::segment::percent_decode(file, false))
            .into_owned();
        let rel = Path::new(&decoded);
        if decoded.contains("://") || rel.is_absolute() || decoded.starts_with(['/', '\\']) {
            return Err(format!(
                "`{file}` is not a relative file path (only those are followed)"
            ));
        }
        let base = self
            .docs
            .get(from)
            .and_then(|d| d.path.parent())
            .unwrap_or(Path::new(""));
        let joined = base.join(rel);
        let key = std::fs::canonicalize(&joined).unwrap_or_else(|_| joined.clone());
        if let Some(&i) = self.by_path.get(&key) {
            return Ok(i);
        }
        if self.docs.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} referenced files"));
        }
        let text = std::fs::read_to_string(&joined)
            .map_err(|e| format!("cannot read {}: {e}", joined.display()))?;
        let value = parse_text(&text, &joined).map_err(|e| e.to_string())?;
        self.docs.push(Doc {
            path: joined,
            text: Cow::Owned(text),
            value: Rc::new(value),
        });
        let i = self.docs.len() - 1;
        self.by_path.insert(key, i);
        Ok(i)
    }

    /// The line in document `doc` where `reference` is written (its first occurrence), or
    /// 0 when it cannot be found.
    pub fn line_of_ref(&self, doc: usize, reference: &str) -> usize {
        let Some(d) = self.docs.get(doc) else {
            return 0;
        };
        d.text
            .find(reference)
            .map_or(0, |at| super::lines::line_of(&d.text, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pointers_with_escapes() {
        let v = serde_json::json!({"paths": {"/a/{b}": {"get": 1}}, "x~y": {"p q": 2}});
        let mut d = Docs::new(Path::new("s.json"), "", v);
        let t = d.resolve(0, "#/paths/~1a~1%7Bb%7D/get");
        assert_eq!(t.ok().and_then(|t| t.get().cloned()), Some(1.into()));
        let t = d.resolve(0, "#/x~0y/p%20q");
        assert_eq!(t.ok().and_then(|t| t.get().cloned()), Some(2.into()));
        assert!(d
            .resolve(0, "#/nope")
            .is_err_and(|e| e.contains("not found")));
        assert!(d.resolve(0, "#nope").is_err());
    }

    #[test]
    fn files_relative_to_the_referring_document() {
        let dir = std::env::temp_dir().join(format!("specter-refs-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("schemas"));
        let _ = std::fs::write(
            dir.join("schemas/pet.yaml"),
            "Pet:\n  $ref: '../common.json#/Id'\n",
        );
        let _ = std::fs::write(dir.join("common.json"), "{\"Id\": {\"type\": \"integer\"}}");
        let mut d = Docs::new(&dir.join("spec.yaml"), "", serde_json::json!({}));
        let pet = d.resolve(0, "./schemas/pet.yaml#/Pet").ok();
        let inner = pet
            .as_ref()
            .and_then(|t| t.get())
            .and_then(|v| v["$ref"].as_str());
        assert_eq!(inner, Some("../common.json#/Id"));
        let doc = pet.map_or(0, |t| t.doc);
        let id = d.resolve(doc, "../common.json#/Id").ok();
        assert_eq!(
            id.and_then(|t| t.get().cloned()),
            Some(serde_json::json!({"type": "integer"}))
        );
        assert!(d
            .resolve(0, "missing.yaml#/X")
            .is_err_and(|e| e.contains("cannot read")));
        assert!(d
            .resolve(0, "/etc/passwd#/x")
            .is_err_and(|e| e.contains("relative")));
        assert!(d.resolve(0, "https://example.com/x.yaml").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
