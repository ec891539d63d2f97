/*!
A spec's JSON value to the [`Spec`] model: one walker for Swagger 2.0, OpenAPI 3.0 and
3.1, so the three versions of one API give one model (see docs/specs.md).

[`Ctx`] carries what a walk needs across the spec: its documents (for `$ref`s), the
warnings, and the schema expansion state used by [`super::schema`]. The parts of an
operation (parameters, bodies, responses, security) are read in [`super::ops`].
*/

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::lines::{scan, Lines};
use super::model::{SecurityScheme, Spec, SpecSchema, SpecVersion, SpecWarning};
use super::read::parse_text;
use super::refs::{Docs, Target};
use super::{servers, SpecError};

/// `$ref`s to `$ref`s followed at most for one parameter, response, body or path item.
const MAX_HOPS: usize = 32;

/// The methods a path item may hold, in the order operations are listed.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// State of one spec's walk.
pub(crate) struct Ctx<'t> {
    pub docs: Docs<'t>,
    pub version: SpecVersion,
    pub warnings: Vec<SpecWarning>,
    warned: HashSet<String>,
    /// References being expanded, innermost last.
    pub stack: Vec<(usize, String)>,
    /// Expanded references whose cuts do not depend on where they were reached, with the
    /// nodes each took to build and the levels it nests below its root.
    pub memo: HashMap<(usize, String), (SpecSchema, usize, usize)>,
    /// The deepest schema level reached in the expansion under way.
    pub deepest: usize,
    /// The outermost reference stack level a cut in the expansion under way went back
    /// to (`usize::MAX`: nothing was cut; 0 for depth and budget cuts).
    pub cut: usize,
    pub nodes: usize,
    pub total_nodes: usize,
    /// Whether schemas are read (path hints need only paths and servers).
    pub schemas: bool,
}

impl Ctx<'_> {
    /// Records a warning about document `doc` (once per distinct message).
    pub(crate) fn warn(&mut self, doc: usize, line: usize, message: String) {
        let file = self
            .docs
            .docs
            .get(doc)
            .map(|d| d.path.clone())
            .unwrap_or_default();
        let key = format!("{}:{line}:{message}", file.display());
        if self.warned.insert(key) {
            self.warnings.push(SpecWarning {
                file,
                line,
                message,
            });
        }
    }

    /// Resolves a reference, or warns (naming where it is written) and gives `None`.
    pub(crate) fn resolve_or_warn(&mut self, doc: usize, r: &str) -> Option<Target> {
        match self.docs.resolve(doc, r) {
            Ok(t) => Some(t),
            Err(why) => {
                let line = self.docs.line_of_ref(doc, r);
                self.warn(
                    doc,
                    line,
                    format!("$ref `{r}` cannot be followed: {why}; it matches anything"),
                );
                None
            }
        }
    }

    /// Calls `f` on `v`, or on what its `$ref` (chain) points to, with the document that
    /// holds it; `None` when a reference cannot be followed.
    pub(crate) fn follow<R>(
        &mut self,
        doc: usize,
        v: &Value,
        f: impl FnOnce(&mut Self, usize, &Value) -> R,
    ) -> Option<R> {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return Some(f(self, doc, v));
        };
        let mut t = self.resolve_or_warn(doc, r)?;
        for _ in 0..MAX_HOPS {
            let next = t.get()?.get("$ref").and_then(Value::as_str);
            match next.map(str::to_string) {
                Some(r) => t = self.resolve_or_warn(t.doc, &r)?,
                None => return Some(f(self, t.doc, t.get()?)),
            }
        }
        let line = self.docs.line_of_ref(doc, r);
        self.warn(doc, line, format!("$ref `{r}` loops; ignored"));
        None
    }

    /// Warns once that schemas were cut short by the budgets.
    pub(crate) fn budget_note(&mut self, doc: usize) {
        self.warn(
            doc,
            0,
            "schemas nest too deep or expand too far; the rest match anything".to_string(),
        );
    }
}

/// The version a spec declares, or why it is not one.
fn version(root: &Value, path: &Path, lines: &Lines) -> Result<SpecVersion, SpecError> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bad = |found: String| SpecError::Version {
        path: path.to_path_buf(),
        line: Some(lines.version).filter(|l| *l > 0),
        found,
    };
    if let Some(v) = root.get("openapi") {
        let t = text(v);
        return match t.split('.').take(2).collect::<Vec<_>>().as_slice() {
            ["3", "0"] => Ok(SpecVersion::OpenApi30),
            ["3", "1"] | ["3", "2"] => Ok(SpecVersion::OpenApi31),
            _ => Err(bad(format!("openapi: {t}"))),
        };
    }
    if let Some(v) = root.get("swagger") {
        let t = text(v);
        return match t.as_str() {
            "2.0" | "2" => Ok(SpecVersion::Swagger2),
            _ => Err(bad(format!("swagger: {t}"))),
        };
    }
    Err(SpecError::NotASpec {
        path: path.to_path_buf(),
    })
}

/// Reads spec text into the model; `path` names the file in errors and warnings, and
/// relative `$ref`s are resolved against its folder.
///
/// Without `schemas`, every schema is `any`: what path hints need, at a fraction of the
/// memory.
pub(crate) fn load(
    text: &str,
    path: &Path,
    schemas: bool,
) -> Result<(Spec, Vec<SpecWarning>), SpecError> {
    let root = parse_text(text, path)?;
    if !root.is_object() {
        return Err(SpecError::NotASpec {
            path: path.to_path_buf(),
        });
    }
    let lines = scan(text);
    let version = version(&root, path, &lines)?;
    let docs = Docs::new(path, text, root);
    let root = docs.root();
    let mut cx = Ctx {
        docs,
        version,
        warnings: Vec::new(),
        warned: HashSet::new(),
        stack: Vec::new(),
        memo: HashMap::new(),
        cut: usize::MAX,
        nodes: 0,
        total_nodes: 0,
        deepest: 0,
        schemas,
    };
    if version == SpecVersion::OpenApi31
        && root
            .get("openapi")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("3.2"))
    {
        cx.warn(
            0,
            lines.version,
            "OpenAPI 3.2 is read as 3.1 (what matching needs is the same)".to_string(),
        );
    }
    let spec_servers = if version == SpecVersion::Swagger2 {
        servers::swagger2(&root, None)
    } else {
        servers::list(root.get("servers")).unwrap_or_else(|| vec![servers::open()])
    };
    let security_schemes = security_schemes(&mut cx, &root);
    let mut spec = Spec {
        file: path.to_path_buf(),
        version,
        title: info(&root, "title"),
        api_version: info(&root, "version"),
        servers: spec_servers,
        operations: Vec::new(),
        security_schemes,
        paths_line: lines.paths,
    };
    if let Some(paths) = root.get("paths").and_then(Value::as_object) {
        for (p, item) in paths {
            let item_line = lines.path_items.get(p).copied().unwrap_or(0);
            let ops = cx.follow(0, item, |cx, doc, item| {
                super::ops::path_item(cx, &root, &spec.servers, p, doc, item, &lines)
            });
            if ops.is_none() {
                cx.warn(0, item_line, format!("path `{p}` left out"));
            }
            spec.operations.extend(ops.unwrap_or_default());
        }
    }
    duplicate_ids(&mut cx, &spec);
    Ok((spec, cx.warnings))
}

fn info(root: &Value, key: &str) -> String {
    match root.get("info").and_then(|i| i.get(key)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// `securityDefinitions` (2.0) or `components.securitySchemes` (3.x).
fn security_schemes(cx: &mut Ctx<'_>, root: &Value) -> BTreeMap<String, SecurityScheme> {
    let defs = root
        .get("securityDefinitions")
        .or_else(|| {
            root.get("components")
                .and_then(|c| c.get("securitySchemes"))
        })
        .and_then(Value::as_object);
    let mut out = BTreeMap::new();
    for (name, def) in defs.into_iter().flatten() {
        let scheme = cx.follow(0, def, |_, _, d| {
            let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
            let kind = s("type").unwrap_or_default();
            SecurityScheme {
                scheme: if kind == "basic" {
                    Some("basic".to_string())
                } else {
                    s("scheme").map(|x| x.to_ascii_lowercase())
                },
                location: s("in"),
                name: s("name"),
                kind,
            }
        });
        if let Some(scheme) = scheme {
            out.insert(name.clone(), scheme);
        }
    }
    out
}

/// Warns about every `operationId` used more than once, naming both lines.
fn duplicate_ids(cx: &mut Ctx<'_>, spec: &Spec) {
    let mut seen: HashMap<&str, &super::model::Operation> = HashMap::new();
    for op in &spec.operations {
        let Some(id) = op.operation_id.as_deref() else {
            continue;
        };
        match seen.get(id) {
            Some(first) => cx.warn(
                0,
                op.line,
                format!(
                    "operationId `{id}` is used twice: {} {} (line {}) and {} {} (line {})",
                    first.method, first.spec_path, first.line, op.method, op.spec_path, op.line
                ),
            ),
            None => {
                seen.insert(id, op);
            }
        }
    }
}
