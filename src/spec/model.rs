/*!
What a spec says, in one model for Swagger 2.0, OpenAPI 3.0 and OpenAPI 3.1: the
operations with their full paths, parameters, bodies, responses and security, each with
the line it starts on in its file, so that reports can point at it.

The loader ([`super::load_file`], [`super::SpecSet`]) resolves `$ref`s, merges path-level parameters into each
operation, expands server base paths and turns the three versions' ways of writing types
(`type: [string, "null"]`, `nullable: true`, `x-nullable`) into one [`SpecSchema`].
*/

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

/// Which dialect a spec is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SpecVersion {
    /// `swagger: "2.0"`.
    Swagger2,
    /// `openapi: 3.0.x`.
    OpenApi30,
    /// `openapi: 3.1.x`.
    OpenApi31,
}

impl SpecVersion {
    /// How reports name the version: `2.0`, `3.0`, `3.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::Swagger2 => "2.0",
            SpecVersion::OpenApi30 => "3.0",
            SpecVersion::OpenApi31 => "3.1",
        }
    }
}

/// One place an API is served: a host (or any host) and a base path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Server {
    /// Lower-case host with the port if one is written (`api.example.com`,
    /// `api.example.com:8443`); `None` when the spec leaves the host open (a relative
    /// server URL, a Swagger 2.0 spec without `host`, or a host made of a server variable
    /// without a default), which matches any host.
    pub host: Option<String>,
    /// Path prefix of every operation, without a trailing slash (`/v2`, or empty). Server
    /// variables are replaced by their defaults.
    pub base_path: String,
    /// `http`, `https`, `ws`, `wss` when written.
    pub scheme: Option<String>,
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

/// A documented path, query, header or cookie parameter (body parameters of Swagger 2.0
/// become [`Operation::request_body`], `formData` ones its form fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub deprecated: bool,
    pub schema: Option<SpecSchema>,
}

/// A JSON type as specs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    /// The type a name (as specs and the inventory write it) stands for.
    pub fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }

    /// The name as written in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }
}

/// A schema with references resolved and composition flattened, as far as comparing it
/// with observed JSON needs: which types a position may hold, its properties, items and
/// which properties are required.
///
/// `allOf` merges its parts; `oneOf` and `anyOf` take the union of their branches' types
/// and properties (a value may be any branch, so nothing a branch allows is drift).
/// A schema that says nothing about types (`{}`, an unresolvable or cyclic `$ref` past the
/// depth limit, `not`) has `any` set: everything matches it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpecSchema {
    /// Allowed types; empty with `any` set means unconstrained. `integer` values satisfy
    /// `number`; `nullable: true` (3.0) and `x-nullable` (2.0) add `null`.
    pub types: BTreeSet<JsonType>,
    /// Nothing is known about this position: every value matches.
    pub any: bool,
    /// `format` when given (`email`, `uuid`, `date-time`...).
    pub format: Option<String>,
    /// `enum` values written as JSON text, when given.
    pub enum_values: Vec<String>,
    /// Declared properties of an object.
    pub properties: BTreeMap<String, SpecSchema>,
    /// Properties listed in `required`.
    pub required: BTreeSet<String>,
    /// Whether properties beyond `properties` are allowed: true unless
    /// `additionalProperties: false`. (Undeclared properties are still reported as drift
    /// when the schema declares some properties; this says whether the spec forbids them.)
    pub additional: bool,
    /// Schema of `additionalProperties` when it is a schema (a map).
    pub additional_schema: Option<Box<SpecSchema>>,
    /// Schema of array items.
    pub items: Option<Box<SpecSchema>>,
    pub deprecated: bool,
    /// `writeOnly` (request only) and `readOnly` (response only) markers.
    pub write_only: bool,
    pub read_only: bool,
}

/// A request or response body: its media types and the schema of each.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Body {
    /// Media type (`application/json`, `application/x-www-form-urlencoded`,
    /// `multipart/form-data`, `*/*`) to its schema (`None` when not given).
    pub content: BTreeMap<String, Option<SpecSchema>>,
    pub required: bool,
}

/// A documented response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Response {
    pub body: Body,
    /// Header names it declares, lower-case.
    pub headers: BTreeSet<String>,
}

/// A security scheme from `components.securitySchemes` or `securityDefinitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityScheme {
    /// `http` (3.x), `basic` (2.0), `apiKey`, `oauth2`, `openIdConnect`, `mutualTLS`.
    pub kind: String,
    /// For `http`: `basic`, `bearer`, `digest`... (lower-case); 2.0 `basic` gives `basic`.
    pub scheme: Option<String>,
    /// For `apiKey`: where (`header`, `query`, `cookie`) and its name.
    pub location: Option<String>,
    pub name: Option<String>,
}

/// A security requirement: every scheme named in one alternative must be satisfied.
pub type Requirement = Vec<String>;

/// One documented operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// The path as written under `paths` (`/pets/{petId}`).
    pub spec_path: String,
    pub operation_id: Option<String>,
    pub summary: Option<String>,
    pub deprecated: bool,
    /// 1-based line of the operation's method key in its file (0 when unknown).
    pub line: usize,
    /// Where the operation is served: its own `servers`, else its path item's, else the
    /// spec's (3.x); host and basePath (2.0).
    pub servers: Vec<Server>,
    /// Path-level and operation-level parameters merged (the operation's win), `$ref`s
    /// resolved.
    pub parameters: Vec<Parameter>,
    pub request_body: Option<Body>,
    /// Status code as written (`200`, `2XX`, `default`) to the response.
    pub responses: BTreeMap<String, Response>,
    /// Effective security: the operation's `security`, else the spec's. An empty list
    /// means none is required (`security: []`); each inner list is one alternative.
    pub security: Vec<Requirement>,
    pub tags: Vec<String>,
}

impl Operation {
    /// The full paths this operation is called at: each server's base path followed by
    /// the spec path (`/v2` + `/pets/{petId}`), deduplicated.
    pub fn full_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.servers {
            let p = format!("{}{}", s.base_path, self.spec_path);
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            out.push(self.spec_path.clone());
        }
        out
    }
}

/// One spec file, loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    /// The file as the user named it (or as found in a folder).
    pub file: PathBuf,
    pub version: SpecVersion,
    pub title: String,
    /// `info.version`.
    pub api_version: String,
    /// The spec-level servers (3.x `servers`; 2.0 `schemes` × `host` + `basePath`). A spec
    /// without any has one server with no host and an empty base path.
    pub servers: Vec<Server>,
    pub operations: Vec<Operation>,
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// 1-based line of the top-level `paths` key (0 when unknown): where findings that
    /// belong to the spec but to no operation (a shadow endpoint) are located.
    pub paths_line: usize,
}

/// Something in a spec that was accepted but looks wrong: a duplicate `operationId`, a
/// `$ref` that could not be resolved (the schema then matches anything), webhooks that
/// are not matched against traffic, an unknown parameter location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecWarning {
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for SpecWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}
