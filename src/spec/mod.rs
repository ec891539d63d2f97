/*!
OpenAPI and Swagger specs: Swagger 2.0, OpenAPI 3.0 and 3.1, JSON or YAML, read into one
[`model`] ([`Spec`] with its [`Operation`]s), with `$ref`s resolved, servers expanded and
the line of each operation kept for reports. See docs/specs.md for what is read from each
version and where the limits are.

- `read.rs`: text to `serde_json::Value`, errors with the line;
- `lines.rs`: the line of `paths` and of each operation, by a text scan;
- `refs.rs`: `$ref` targets, local and in relative files;
- `load.rs` and `ops.rs`: the value to the model, one walker for all three versions;
- `schema.rs`: schema objects to [`SpecSchema`], bounded on recursive schemas;
- `servers.rs`: server URLs and 2.0 host/basePath to [`Server`]s.

No crate reads all three versions (see STYLE.md): openapiv3 reads 3.0 only, and is used
in the tests as an independent check of this reader on 3.0 specs.
*/

use std::path::{Path, PathBuf};

use serde_json::Value;

mod lines;
mod load;
pub mod model;
mod ops;
mod read;
mod refs;
mod schema;
mod servers;

pub use model::{
    Body, JsonType, Operation, ParamLocation, Parameter, Requirement, Response, SecurityScheme,
    Server, Spec, SpecSchema, SpecVersion, SpecWarning,
};

use crate::infer::template::Hint;

/// Where an error is: `file` or `file:line`.
fn at(path: &Path, line: &Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

/// A spec that could not be used. The message names the file, the line when known, and
/// what was expected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Neither JSON nor YAML.
    #[error("{}: invalid {format}: {why}", at(path, line))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        /// `JSON` or `YAML`: what the text was read as.
        format: &'static str,
        why: String,
    },
    /// No `openapi` or `swagger` key at the top level: not a spec at all.
    #[error("{}: neither \"openapi: 3.x\" nor \"swagger: 2.0\" at the top level", path.display())]
    NotASpec { path: PathBuf },
    /// A version this reader does not know.
    #[error(
        "{}: neither \"openapi: 3.x\" nor \"swagger: 2.0\" at the top level (found {found})",
        at(path, line)
    )]
    Version {
        path: PathBuf,
        line: Option<usize>,
        /// As written: `openapi: 4.0`, `swagger: 1.2`.
        found: String,
    },
    /// A path that cannot be used as a path hint.
    #[error("{}: path `{template}`: {why}", path.display())]
    BadPath {
        path: PathBuf,
        template: String,
        why: String,
    },
}

impl SpecError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            SpecError::Read { path, .. }
            | SpecError::Syntax { path, .. }
            | SpecError::NotASpec { path }
            | SpecError::Version { path, .. }
            | SpecError::BadPath { path, .. } => path,
        }
    }
}

/// Several specs loaded at once: what loaded, what could not, and the warnings.
#[derive(Debug, Default)]
pub struct SpecSet {
    pub specs: Vec<Spec>,
    pub errors: Vec<SpecError>,
    pub warnings: Vec<SpecWarning>,
}

/// Folders are searched this deep at most.
const MAX_FOLDER_DEPTH: usize = 16;

/// Spec files under `dir`: `*.json`, `*.yaml`, `*.yml`, recursively, sorted; symbolic
/// links to folders are not followed.
fn spec_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, errors: &mut Vec<SpecError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            errors.push(SpecError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    let mut paths: Vec<(PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    paths.sort();
    for (p, is_dir) in paths {
        if is_dir {
            if depth < MAX_FOLDER_DEPTH {
                spec_files(&p, depth + 1, out, errors);
            }
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            out.push(p);
        }
    }
}

impl SpecSet {
    /// Loads spec files and folders of specs. A file that fails is recorded in `errors`
    /// and the others still load; a file found in a folder that is not a spec at all (no
    /// `openapi` or `swagger` key: a shared schema file, a config) is skipped with a
    /// warning.
    pub fn load(paths: &[PathBuf]) -> SpecSet {
        SpecSet::load_with(paths, true)
    }

    /// [`SpecSet::load`], with schemas read or not.
    fn load_with(paths: &[PathBuf], schemas: bool) -> SpecSet {
        let mut set = SpecSet::default();
        for p in paths {
            if p.is_dir() {
                let mut files = Vec::new();
                spec_files(p, 0, &mut files, &mut set.errors);
                files.sort();
                for f in files {
                    match load_file_with(&f, schemas) {
                        Ok((spec, w)) => {
                            set.specs.push(spec);
                            set.warnings.extend(w);
                        }
                        Err(SpecError::NotASpec { path }) => set.warnings.push(SpecWarning {
                            file: path,
                            line: 0,
                            message: "not an OpenAPI or Swagger spec; skipped".to_string(),
                        }),
                        Err(e) => set.errors.push(e),
                    }
                }
            } else {
                match load_file_with(p, schemas) {
                    Ok((spec, w)) => {
                        set.specs.push(spec);
                        set.warnings.extend(w);
                    }
                    Err(e) => set.errors.push(e),
                }
            }
        }
        set
    }
}

/// Loads one spec file.
pub fn load_file(path: &Path) -> Result<(Spec, Vec<SpecWarning>), SpecError> {
    load_file_with(path, true)
}

fn load_file_with(path: &Path, schemas: bool) -> Result<(Spec, Vec<SpecWarning>), SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load::load(&text, path, schemas)
}

/// Reads spec text as if it were the file `path`: errors and warnings name it, and
/// relative `$ref`s resolve against its folder.
pub fn parse(text: &str, path: &Path) -> Result<(Spec, Vec<SpecWarning>), SpecError> {
    load::load(text, path, true)
}

/// Reads a spec file into a JSON value (JSON or YAML), without looking at its content.
pub fn read(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read::parse_text(&text, path)
}

/// A documented full path as a path hint: whole-segment parameters keep their names (made
/// of letters, digits and `_`), and a parameter inside a segment (`/files/{name}.json`)
/// cannot be a hint, so that segment is kept as the word it is written as.
pub fn hint_for(template: &str) -> Result<Hint, crate::infer::template::HintError> {
    Hint::parse(template).or_else(|_| {
        let cleaned: Vec<String> = template
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
    })
}

/// A spec's templates as path hints: `{param}` segments force parameters named as the
/// spec names them, literal segments of documented paths stay literal (see [`hint_for`]).
///
/// `path` may be a folder of specs (see [`SpecSet::load`]); the first spec that fails to
/// load is the error.
pub fn hints(path: &Path) -> Result<Vec<Hint>, SpecError> {
    let set = SpecSet::load_with(&[path.to_path_buf()], false);
    if let Some(e) = set.errors.into_iter().next() {
        return Err(e);
    }
    let mut seen = std::collections::HashSet::new();
    let templates: Vec<String> = set
        .specs
        .iter()
        .flat_map(|s| s.operations.iter())
        .flat_map(Operation::full_paths)
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let mut out = Vec::new();
    for t in templates {
        let hint = hint_for(&t);
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
mod tests;
