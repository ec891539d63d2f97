/*!
Where things are in a spec's text: the line of the top-level `paths` key, of each path
key, of each method key under it, and of the `openapi`/`swagger` key. JSON readers and
yaml_serde keep no positions, so this is a text scan that follows nesting:

- JSON and flow YAML (text starting with `{`): a tokenizer that tracks brackets, strings
  (double- and single-quoted) and which scalars are keys.
- Block YAML: a scan by indentation. `paths` is a key at the document's top indentation;
  path keys are the next indentation below it, method keys the next below each path.
  Block scalars, comments and deeper lines are skipped by their indentation. A path item
  written in flow style on its path's line gives its methods that line.

Lines are 1-based. Anything not found is simply absent; callers fall back to a coarser
line (the path key's, then `paths`'s) or 0.
*/

use std::collections::HashMap;

/// Lines found in one file.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// The top-level `paths` key.
    pub paths: usize,
    /// The top-level `openapi` or `swagger` key.
    pub version: usize,
    /// Each path key under `paths`.
    pub path_items: HashMap<String, usize>,
    /// Each key directly under a path item, by (path, key as written).
    pub ops: HashMap<(String, String), usize>,
}

impl Lines {
    /// The line of `method` under `path`, else of the path key, else 0.
    pub fn op(&self, path: &str, method: &str) -> usize {
        self.ops
            .get(&(path.to_string(), method.to_string()))
            .or_else(|| self.path_items.get(path))
            .copied()
            .unwrap_or(0)
    }

    /// Records a key found at nesting `keys` (the enclosing keys, outermost first).
    fn key(&mut self, outer: &[String], key: &str, line: usize) {
        match outer {
            [] if key == "paths" => self.paths = line,
            [] if key == "openapi" || key == "swagger" => self.version = line,
            [p] if p == "paths" => {
                self.path_items.entry(key.to_string()).or_insert(line);
            }
            [p, item] if p == "paths" => {
                self.ops
                    .entry((item.clone(), key.to_string()))
                    .or_insert(line);
            }
            _ => {}
        }
    }
}

/// The 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count()
}

/// Scans a spec's text.
pub(crate) fn scan(text: &str) -> Lines {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines::default();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('%') && *l != "---");
    if first.is_some_and(|l| l.starts_with('{')) {
        let start = text.find('{').unwrap_or(0);
        flow(text, start, line_of(text, start), &[], &mut lines);
    } else {
        block(text, &mut lines);
    }
    lines
}

/// Block YAML, by indentation.
fn block(text: &str, out: &mut Lines) {
    let mut top: Option<usize> = None;
    let mut in_paths = false;
    let mut path_indent: Option<usize> = None;
    let mut method_indent: Option<usize> = None;
    let mut current: Option<String> = None;
    let mut offset = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let here = offset;
        offset += raw.len() + 1;
        let line = i + 1;
        let body = raw.trim_start_matches(' ');
        let indent = raw.len() - body.len();
        let trimmed = body.trim_end();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if top.is_none() && (trimmed.starts_with('%') || trimmed.starts_with("---")) {
            continue;
        }
        // Explicit keys (`? /long/path` then `: get: ...`), as some generators write
        // long path keys.
        if in_paths && path_indent == Some(indent) {
            if let Some(k) = trimmed.strip_prefix("? ") {
                let k = k.trim();
                let key = match k.as_bytes().first() {
                    Some(q @ (b'"' | b'\'')) => quoted(k, 0, *q).map(|(s, _)| s),
                    _ => Some(k.to_string()),
                };
                if let Some(key) = key {
                    out.key(&["paths".to_string()], &key, line);
                    current = Some(key);
                    method_indent = None;
                }
                continue;
            }
            if let Some(v) = trimmed.strip_prefix(": ") {
                let content = v.trim_start_matches(' ');
                method_indent = Some(indent + trimmed.len() - content.len());
                if let (Some((key, _)), Some(p)) = (block_key(content), &current) {
                    out.key(&["paths".to_string(), p.clone()], &key, line);
                }
                continue;
            }
        }
        let Some((key, rest)) = block_key(trimmed) else {
            if top.is_some_and(|t| indent <= t) {
                in_paths = false;
            }
            continue;
        };
        let top_indent = *top.get_or_insert(indent);
        if indent <= top_indent {
            in_paths = key == "paths";
            path_indent = None;
            current = None;
            out.key(&[], &key, line);
            continue;
        }
        if !in_paths {
            continue;
        }
        let pi = *path_indent.get_or_insert(indent);
        if indent < pi {
            continue;
        }
        if indent == pi {
            out.key(&["paths".to_string()], &key, line);
            method_indent = None;
            let rest = rest.trim_start();
            if rest.starts_with('{') {
                // A flow path item: its methods are found by the flow scanner.
                let at = here + (raw.len() - rest.len());
                let outer = ["paths".to_string(), key.clone()];
                flow(text, at, line, &outer, out);
            }
            current = Some(key);
            continue;
        }
        let mi = *method_indent.get_or_insert(indent);
        if indent == mi {
            if let Some(p) = &current {
                out.key(&["paths".to_string(), p.clone()], &key, line);
            }
        }
    }
}

/// The key of a block mapping line (`key: ...`, `"key": ...`, `'key': ...`) and the text
/// after its colon; `None` for sequence items and lines that are not keys.
fn block_key(line: &str) -> Option<(String, &str)> {
    let b = line.as_bytes();
    match b.first()? {
        b'-' if b.get(1).is_none_or(|c| *c == b' ') => None,
        b'?' | b'{' | b'[' | b'|' | b'>' | b'&' | b'*' | b'!' => None,
        q @ (b'"' | b'\'') => {
            let (key, used) = quoted(line, 0, *q)?;
            let rest = line[used..].trim_start_matches(' ');
            rest.strip_prefix(':').map(|r| (key, r))
        }
        _ => {
            let mut search = 0;
            loop {
                let at = search + line[search..].find(':')?;
                let after = line.as_bytes().get(at + 1);
                if after.is_none_or(|c| *c == b' ' || *c == b'\t') {
                    let key = line[..at].trim_end();
                    if key.contains(" #") {
                        return None;
                    }
                    return Some((key.to_string(), &line[at + 1..]));
                }
                search = at + 1;
            }
        }
    }
}

/// A quoted scalar starting at `start` (the quote), decoded, and the offset after it.
fn quoted(text: &str, start: usize, q: u8) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let mut i = start + 1;
    let mut escaped = false;
    while i < b.len() {
        let c = b[i];
        if q == b'"' {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                let raw = &text[start..=i];
                let s = serde_json::from_str::<String>(raw)
                    .unwrap_or_else(|_| raw[1..raw.len() - 1].to_string());
                return Some((s, i + 1));
            }
        } else if c == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some((text[start + 1..i].replace("''", "'"), i + 1));
        }
        i += 1;
    }
    None
}

/// One open bracket in the flow scanner.
struct Frame {
    is_object: bool,
    want_key: bool,
    last_key: String,
}

/// JSON or flow YAML from the `{` at `start` (on line `line`) to its matching `}`; keys
/// are reported below the enclosing keys `outer`.
fn flow(text: &str, start: usize, mut line: usize, outer: &[String], out: &mut Lines) {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut names: Vec<String> = outer.to_vec();
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n),
            b'{' | b'[' => {
                let name = match stack.last() {
                    Some(f) if f.is_object => f.last_key.clone(),
                    Some(_) => "[]".to_string(),
                    None => String::new(),
                };
                if !stack.is_empty() {
                    names.push(name);
                }
                stack.push(Frame {
                    is_object: c == b'{',
                    want_key: c == b'{',
                    last_key: String::new(),
                });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                if stack.is_empty() {
                    return;
                }
                names.pop();
                i += 1;
            }
            b',' => {
                if let Some(f) = stack.last_mut() {
                    f.want_key = f.is_object;
                }
                i += 1;
            }
            b':' => {
                if let Some(f) = stack.last_mut() {
                    f.want_key = false;
                }
                i += 1;
            }
            _ => {
                let (scalar, next, lines_in) = if c == b'"' || c == b'\'' {
                    match quoted(text, i, c) {
                        Some((s, n)) => {
                            let nl = memchr::memchr_iter(b'\n', &b[i..n]).count();
                            (s, n, nl)
                        }
                        None => return,
                    }
                } else {
                    let n = plain_end(b, i);
                    (text.get(i..n).unwrap_or("").trim_end().to_string(), n, 0)
                };
                if let Some(f) = stack.last_mut() {
                    if f.is_object && f.want_key {
                        out.key(&names, &scalar, line);
                        f.last_key = scalar;
                    }
                }
                line += lines_in;
                i = next.max(i + 1);
            }
        }
    }
    // Unbalanced text ends here: the YAML or JSON reader reports it.
}

/// The end of a plain (unquoted) flow scalar starting at `i`.
fn plain_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b',' | b'{' | b'}' | b'[' | b']' | b'\n' => return i,
            b':' if b
                .get(i + 1)
                .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}' | b']')) =>
            {
                return i
            }
            b'#' if i > 0 && b[i - 1] == b' ' => return i,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "\
# comment
openapi: 3.0.0
info:
  title: x
  description: |
    paths:
      /fake:
        get: no
paths:
  /pets:
    summary: all pets
    get:
      responses: {}
    'post':
      description: >
        get: not a key
  \"/pets/{id}\":
    parameters: []
    delete: {}
  /flow: {get: {}, put: {}}
  ? /explicit/{key}
  : parameters: []
    get: {}
components: {}
";

    #[test]
    fn block_yaml() {
        let l = scan(BLOCK);
        assert_eq!(l.version, 2);
        assert_eq!(l.paths, 9);
        assert_eq!(l.op("/pets", "get"), 12);
        assert_eq!(l.op("/pets", "post"), 14);
        assert_eq!(l.op("/pets/{id}", "delete"), 19);
        assert_eq!(l.op("/flow", "put"), 20);
        assert_eq!(l.op("/explicit/{key}", "get"), 23);
        assert_eq!(l.op("/explicit/{key}", "parameters"), 22);
        assert_eq!(l.op("/fake", "get"), 0);
        assert_eq!(l.op("/pets", "patch"), 10, "falls back to the path's line");
    }

    #[test]
    fn pretty_and_minified_json() {
        let v = serde_json::json!({
            "openapi": "3.0.0",
            "info": {"title": "t", "x": [{"paths": {"/no": {"get": {}}}}]},
            "paths": {"/a\\/b": {"get": {"x": "}{"}, "post": {}}, "/c": {"put": {}}}
        });
        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
        let l = scan(&pretty);
        let find = |s: &str| line_of(&pretty, pretty.rfind(s).unwrap_or(0));
        assert_eq!(l.paths, find("\"paths\": {\n"));
        assert_eq!(l.op("/a\\/b", "get"), find("\"get\": {\n        \"x\""));
        assert_eq!(l.op("/c", "put"), find("\"put\""));
        assert_eq!(l.op("/no", "get"), 0);
        let mini = serde_json::to_string(&v).unwrap_or_default();
        let l = scan(&mini);
        assert_eq!((l.paths, l.op("/c", "put")), (1, 1));
        let bom = format!("\u{feff}{pretty}");
        assert_eq!(scan(&bom).op("/c", "put"), find("\"put\""));
    }

    #[test]
    fn flow_yaml() {
        let t = "{openapi: 3.1.0, # c\n paths: {\n  '/it''s': {get: {}},\n  \"/u/{id}\": {\n   delete: {description: 'a: b'}}}}\n";
        let l = scan(t);
        assert_eq!(l.paths, 2);
        assert_eq!(l.op("/it's", "get"), 3);
        assert_eq!(l.op("/u/{id}", "delete"), 5);
    }
}
