/*!
Path templating: millions of concrete paths in, the short list of templates out.

Every host has one prefix tree of path segments. A segment whose shape is an identifier
(see `segment`) goes to its node's single *parameter* child at once; a word goes to a
literal child. Two rules then turn words into parameters:

- **Cap (at insert time).** When a node has more than `max_literals` foldable word
  children, they are all *folded* into the parameter child and later words at that
  position follow them. This is what bounds memory under an enumeration scan. Whether a
  node is folded depends only on how many distinct words it saw, so it does not depend on
  the order captures are read.
- **Learning (at query time).** When a node has at least `fold_min_distinct` foldable
  words whose subtrees look alike (same methods, same children; `fold_homogeneity`) and
  that are each requested rarely (on average at most `fold_max_avg_requests` times),
  the position varies: the words are shown as one parameter. The tree keeps the words,
  so more traffic can change the decision either way.

Reserved route words (`me`, `search`, `v2`...) and literals named in path hints are never
folded. Hints can also force a parameter (`/files/{path*}` takes the rest of the path).
A node budget (`max_nodes`) folds where it is hit, the only rule whose outcome can depend
on input order; it is reported. docs/templating.md explains the thresholds.

Statistics hang off the nodes, per method, as any mergeable type `T`.
*/

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::segment::{self, Shape};
use super::sketch::{stable_hash, Examples, Sketch};

/// Statistics kept per endpoint: mergeable, order-independent.
pub trait Mergeable: Clone + Default {
    /// Adds another summary into this one.
    fn merge(&mut self, other: &Self);
    /// Requests counted.
    fn requests(&self) -> u64;
}

/// The thresholds of templating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Word children a node keeps before folding them (enumeration guard).
    pub max_literals: usize,
    /// Nodes per host tree; where it is hit, new words fold.
    pub max_nodes: usize,
    /// Segments kept; the rest of a deeper path becomes one `{rest}` parameter.
    pub max_depth: usize,
    /// Distinct words at a position before learning may fold them.
    pub fold_min_distinct: usize,
    /// Largest average requests per word for learning to fold (ids are rarely repeated,
    /// route names are).
    pub fold_max_avg_requests: f64,
    /// Share of words whose subtrees must look alike for learning to fold.
    pub fold_homogeneity: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_literals: 256,
            max_nodes: 50_000,
            max_depth: 32,
            fold_min_distinct: 16,
            fold_max_avg_requests: 4.0,
            fold_homogeneity: 0.9,
        }
    }
}

/// Why words at a position became a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fold {
    /// More distinct words than `max_literals`.
    Cap,
    /// The tree's node budget was reached here.
    Budget,
    /// A path hint forces a parameter here.
    Hint,
    /// Learnt from cardinality at query time.
    Learned,
}

impl Fold {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Fold::Cap => "cap",
            Fold::Budget => "budget",
            Fold::Hint => "hint",
            Fold::Learned => "learned",
        }
    }
}

/// One node of a host's tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<T> {
    pub literals: BTreeMap<String, Node<T>>,
    pub param: Option<Box<Param<T>>>,
    /// Parameter children whose values carry a format extension (`42.json`), by the
    /// extension with its dot: `/users/{id}.json` is not the endpoint `/users/{id}`.
    pub suffixed: BTreeMap<String, Param<T>>,
    /// Set when words at this position go to the parameter.
    pub fold: Option<Fold>,
    /// Statistics of the endpoints ending here, by method.
    pub methods: BTreeMap<String, T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literals: BTreeMap::new(),
            param: None,
            suffixed: BTreeMap::new(),
            fold: None,
            methods: BTreeMap::new(),
        }
    }
}

/// The parameter child of a node, with the evidence for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Param<T> {
    pub node: Node<T>,
    /// Requests per value shape.
    pub shapes: BTreeMap<Shape, u64>,
    /// Distinct values.
    pub values: Sketch,
    /// Masked examples.
    pub examples: Examples,
    /// The name a hint gave it.
    pub name: Option<String>,
    /// Whether it takes the rest of the path (`{path*}` hints and the depth limit).
    pub rest: bool,
}

impl<T> Default for Param<T> {
    fn default() -> Self {
        Param {
            node: Node::default(),
            shapes: BTreeMap::new(),
            values: Sketch::default(),
            examples: Examples::default(),
            name: None,
            rest: false,
        }
    }
}

impl<T: Mergeable> Param<T> {
    fn record(&mut self, value: &str, shape: Shape, requests: u64) {
        *self.shapes.entry(shape).or_default() += requests;
        let h = stable_hash(value.as_bytes());
        self.values.insert(h);
        self.examples
            .offer(h, || segment::mask_example(value, shape));
    }

    fn merge(&mut self, other: Param<T>, hints: &[Hint], path: &mut Vec<Seg>) {
        for (s, n) in other.shapes {
            *self.shapes.entry(s).or_default() += n;
        }
        self.values.merge(&other.values);
        self.examples.merge(&other.examples);
        self.name = self.name.take().or(other.name);
        self.rest |= other.rest;
        path.push(Seg::Param);
        self.node.merge(other.node, hints, path);
        path.pop();
    }
}

/// A position in a tree path, for hint matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Literal(String),
    Param,
}

/// One segment of a path hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HintSeg {
    Literal(String),
    /// `{name}`: always a parameter.
    Param(String),
    /// `{name*}`: the rest of the path is one parameter.
    Rest(String),
}

/// A path hint from the user's hints file: `/files/{path*}`, `/users/{userId}`, `/users/new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub text: String,
    pub segs: Vec<HintSeg>,
}

/// A hint that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("path hint `{text}`: {why}")]
pub struct HintError {
    pub text: String,
    pub why: &'static str,
}

impl Hint {
    /// Reads one hint: a path starting with `/`; `{name}` segments are parameters and a
    /// final `{name*}` takes the rest of the path.
    pub fn parse(text: &str) -> Result<Hint, HintError> {
        let err = |why| HintError {
            text: text.to_string(),
            why,
        };
        let path = text.trim();
        let Some(rest) = path.strip_prefix('/') else {
            return Err(err("must start with /"));
        };
        let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let mut segs = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if let Some(inner) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (name, rest) = match inner.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err("a parameter name is letters, digits and _"));
                }
                if rest && i + 1 != parts.len() {
                    return Err(err("{name*} must be the last segment"));
                }
                segs.push(if rest {
                    HintSeg::Rest(name.to_string())
                } else {
                    HintSeg::Param(name.to_string())
                });
            } else if p.contains('{') || p.contains('}') {
                return Err(err("a segment is either a literal or a whole {parameter}"));
            } else {
                segs.push(HintSeg::Literal(p.to_string()));
            }
        }
        Ok(Hint {
            text: path.to_string(),
            segs,
        })
    }

    /// Whether the hint's first `path.len()` segments match a tree path.
    fn matches_prefix(&self, path: &[Seg]) -> bool {
        path.len() <= self.segs.len()
            && path.iter().zip(&self.segs).all(|(p, h)| match (p, h) {
                (Seg::Literal(a), HintSeg::Literal(b)) => a == b,
                (Seg::Param, HintSeg::Literal(_)) => false,
                (_, HintSeg::Param(_) | HintSeg::Rest(_)) => true,
            })
    }

    /// What the hint says about the position after `path`, if it matches there.
    fn at<'h>(&'h self, path: &[Seg]) -> Option<&'h HintSeg> {
        if self.matches_prefix(path) {
            self.segs.get(path.len())
        } else {
            None
        }
    }
}

/// Reads a hints file: one hint per line, `#` comments and blank lines ignored.
pub fn parse_hints(text: &str) -> Result<Vec<Hint>, HintError> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(Hint::parse)
        .collect()
}

fn forced_param<'h>(hints: &'h [Hint], path: &[Seg]) -> Option<&'h HintSeg> {
    hints
        .iter()
        .filter_map(|h| h.at(path))
        .find(|s| matches!(s, HintSeg::Param(_) | HintSeg::Rest(_)))
}

fn protected(hints: &[Hint], path: &[Seg], literal: &str) -> bool {
    hints
        .iter()
        .any(|h| matches!(h.at(path), Some(HintSeg::Literal(l)) if l == literal))
}

/// Whether a word child may be folded into a parameter.
fn foldable(hints: &[Hint], path: &[Seg], literal: &str) -> bool {
    !segment::is_reserved_word(literal) && !protected(hints, path, literal)
}

impl<T: Mergeable> Node<T> {
    /// Requests of every endpoint in this subtree.
    pub fn requests(&self) -> u64 {
        let here: u64 = self.methods.values().map(Mergeable::requests).sum();
        here + self.literals.values().map(Node::requests).sum::<u64>()
            + self.param.as_ref().map_or(0, |p| p.node.requests())
            + self
                .suffixed
                .values()
                .map(|p| p.node.requests())
                .sum::<u64>()
    }

    /// Nodes in this subtree, itself included.
    pub fn count(&self) -> usize {
        1 + self.literals.values().map(Node::count).sum::<usize>()
            + self.param.as_ref().map_or(0, |p| p.node.count())
            + self
                .suffixed
                .values()
                .map(|p| p.node.count())
                .sum::<usize>()
    }

    /// Merges another subtree (same position) into this one.
    pub fn merge(&mut self, other: Node<T>, hints: &[Hint], path: &mut Vec<Seg>) {
        for (m, s) in other.methods {
            self.methods.entry(m).or_default().merge(&s);
        }
        if let Some(p) = other.param {
            match &mut self.param {
                Some(mine) => mine.merge(*p, hints, path),
                None => self.param = Some(p),
            }
        }
        for (ext, p) in other.suffixed {
            match self.suffixed.get_mut(&ext) {
                Some(mine) => mine.merge(p, hints, path),
                None => {
                    self.suffixed.insert(ext, p);
                }
            }
        }
        for (k, child) in other.literals {
            match self.literals.get_mut(&k) {
                Some(mine) => {
                    path.push(Seg::Literal(k));
                    mine.merge(child, hints, path);
                    path.pop();
                }
                None => {
                    self.literals.insert(k, child);
                }
            }
        }
        match (self.fold, other.fold) {
            (None, Some(f)) => self.fold_words(f, hints, path),
            (Some(f), _) => self.fold_words(f, hints, path),
            (None, None) => {}
        }
    }

    /// Folds, with [`Fold::Cap`], every position below that holds more foldable words than
    /// `max` (as insertion does when the word past the cap arrives); `capped` gets where.
    fn fold_over_cap(
        &mut self,
        max: usize,
        hints: &[Hint],
        trail: &mut Vec<Seg>,
        shown: &mut Vec<String>,
        capped: &mut Vec<String>,
    ) {
        if self.fold.is_none()
            && self.literals.len() > max
            && self
                .literals
                .keys()
                .filter(|k| foldable(hints, trail, k))
                .count()
                > max
        {
            self.fold_words(Fold::Cap, hints, trail);
            capped.push(shown_text(shown, &[]));
        }
        for (k, child) in self.literals.iter_mut() {
            trail.push(Seg::Literal(k.clone()));
            shown.push(k.clone());
            child.fold_over_cap(max, hints, trail, shown, capped);
            shown.pop();
            trail.pop();
        }
        if let Some(p) = self.param.as_mut() {
            trail.push(Seg::Param);
            shown.push("{}".into());
            p.node.fold_over_cap(max, hints, trail, shown, capped);
            shown.pop();
            trail.pop();
        }
        for (ext, p) in self.suffixed.iter_mut() {
            trail.push(Seg::Param);
            shown.push(format!("{{}}{ext}"));
            p.node.fold_over_cap(max, hints, trail, shown, capped);
            shown.pop();
            trail.pop();
        }
    }

    /// Moves every foldable word child into the parameter child.
    pub fn fold_words(&mut self, why: Fold, hints: &[Hint], path: &mut Vec<Seg>) {
        self.fold = Some(self.fold.map_or(why, |f| f.min(why)));
        let words: Vec<String> = self
            .literals
            .keys()
            .filter(|k| foldable(hints, path, k))
            .cloned()
            .collect();
        if words.is_empty() {
            return;
        }
        let param = self.param.get_or_insert_with(Default::default);
        for w in words {
            if let Some(child) = self.literals.remove(&w) {
                let n = child.requests();
                param.record(&w, Shape::Word, n);
                path.push(Seg::Param);
                param.node.merge(child, hints, path);
                path.pop();
            }
        }
    }
}

/// A host's tree with its limits and hints.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree<T> {
    pub root: Node<T>,
    /// Nodes in the tree (kept up to date by `insert`).
    pub nodes: usize,
    /// Where a limit folded words, for the run's report.
    pub folds: Vec<(String, Fold)>,
    /// A fold moved subtrees: `nodes` is counted again on the next insert.
    dirty: bool,
}

impl<T> Default for Tree<T> {
    fn default() -> Self {
        Tree {
            root: Node::default(),
            nodes: 1,
            folds: Vec::new(),
            dirty: false,
        }
    }
}

/// Splits a request path into segments: empty ones (`//`, a trailing `/`) are dropped.
pub fn split_path(path: &str) -> impl Iterator<Item = &str> {
    // A byte loop: segments are short, and `str::split` pays a searcher's setup for each.
    let mut rest = path;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let (seg, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        if !seg.is_empty() {
            return Some(seg);
        }
    })
}

/// A tree position as reports show it: `path` with `{}` for parameters, and `exts` the
/// extensions of the suffixed ones, by index.
fn shown_text<S: AsRef<str>>(path: &[S], exts: &[(usize, &str)]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut s = String::new();
    for (i, p) in path.iter().enumerate() {
        s.push('/');
        s.push_str(p.as_ref());
        if let Some((_, ext)) = exts.iter().find(|(at, _)| *at == i) {
            s.push_str(ext);
        }
    }
    s
}

impl<T: Mergeable> Tree<T> {
    /// Walks (and grows) the tree along a request path and returns the endpoint's
    /// statistics for `method`; the caller counts the request in them.
    pub fn insert(&mut self, path: &str, method: &str, hints: &[Hint], limits: &Limits) -> &mut T {
        if self.dirty {
            self.nodes = self.root.count();
            self.dirty = false;
        }
        // Segments already walked are overwritten with `{}` where they went to a
        // parameter (and their extension noted in `exts`): `segs[..i]` is then the
        // position as shown in reports.
        let mut segs: Vec<&str> = split_path(path).collect();
        let mut exts: Vec<(usize, &str)> = Vec::new();
        // The trail (owned segments) is only needed to match hints: without hints it stays
        // empty, and every request is spared an allocation per segment.
        let track = !hints.is_empty();
        let mut trail: Vec<Seg> = Vec::new();
        let mut node = &mut self.root;
        let mut i = 0;
        while i < segs.len() {
            let seg = segs[i];
            let at_depth_limit = i + 1 >= limits.max_depth && i + 1 < segs.len();
            let hint = forced_param(hints, &trail);
            let rest = at_depth_limit || matches!(hint, Some(HintSeg::Rest(_)));
            let shape = segment::classify(seg);
            let keep = protected(hints, &trail, seg);
            // An id with a format extension (`42.json`) goes to the parameter child for
            // that extension, whatever the words at this position do: a `{name}` hint
            // (`/users/{id}`, from a spec) names the parameter without the extension.
            let suffixed = if keep || rest || shape.is_identifier() {
                None
            } else {
                segment::split_extension(seg)
            };
            if let Some((shape, ext)) = suffixed {
                if !node.suffixed.contains_key(ext) {
                    self.nodes += 1;
                    node.suffixed.insert(ext.to_string(), Param::default());
                }
                let Some(param) = node.suffixed.get_mut(ext) else {
                    break; // inserted just above
                };
                param.record(&seg[..seg.len() - ext.len()], shape, 1);
                segs[i] = "{}";
                exts.push((i, ext));
                i += 1;
                if track {
                    trail.push(Seg::Param);
                }
                node = &mut param.node;
                continue;
            }
            // A literal a hint names stays literal; then hints, shapes and folds decide.
            let to_param = !keep
                && (rest
                    || hint.is_some()
                    || shape.is_identifier()
                    || (node.fold.is_some()
                        && !node.literals.contains_key(seg)
                        && foldable(hints, &trail, seg)));
            if to_param {
                if hint.is_some() && node.fold.is_none() {
                    node.fold_words(Fold::Hint, hints, &mut trail);
                    self.folds.push((shown_text(&segs[..i], &exts), Fold::Hint));
                    self.dirty = true;
                }
                if node.param.is_none() {
                    self.nodes += 1;
                }
                let param = node.param.get_or_insert_with(Default::default);
                if let Some(HintSeg::Param(n) | HintSeg::Rest(n)) = hint {
                    param.name.get_or_insert_with(|| n.clone());
                }
                if rest {
                    param.rest = true;
                    let value = segs[i..].join("/");
                    param.record(&value, Shape::Word, 1);
                    i = segs.len();
                } else {
                    param.record(seg, shape, 1);
                    segs[i] = "{}";
                    i += 1;
                }
                if track {
                    trail.push(Seg::Param);
                }
                node = &mut param.node;
                continue;
            }
            if !node.literals.contains_key(seg) {
                let budget_hit = self.nodes >= limits.max_nodes;
                let cap_hit = node.literals.len() >= limits.max_literals
                    && node
                        .literals
                        .keys()
                        .filter(|k| foldable(hints, &trail, k))
                        .count()
                        >= limits.max_literals;
                if (budget_hit || cap_hit) && foldable(hints, &trail, seg) {
                    let why = if cap_hit { Fold::Cap } else { Fold::Budget };
                    node.fold_words(why, hints, &mut trail);
                    self.folds.push((shown_text(&segs[..i], &exts), why));
                    self.dirty = true;
                    continue; // now folded: the segment goes to the parameter
                }
                self.nodes += 1;
                node.literals.insert(seg.to_string(), Node::default());
            }
            if track {
                trail.push(Seg::Literal(seg.to_string()));
            }
            // One lookup on the common path (the word is known): the miss was handled
            // above. (A single `get_mut`-or-insert does not pass today's borrow checker.)
            match node.literals.get_mut(seg) {
                Some(next) => node = next,
                None => break, // inserted just above
            }
            i += 1;
        }
        node.methods.entry(method.to_string()).or_default()
    }

    /// Merges another host tree into this one. Where the two together hold more words at
    /// a position than `limits.max_literals`, the words fold as one pass over both
    /// trees' traffic would have folded them (the cap is a property of the words seen,
    /// not of the order they came in).
    pub fn merge(&mut self, other: Tree<T>, hints: &[Hint], limits: &Limits) {
        self.root.merge(other.root, hints, &mut Vec::new());
        self.folds.extend(other.folds);
        let mut capped = Vec::new();
        self.root.fold_over_cap(
            limits.max_literals,
            hints,
            &mut Vec::new(),
            &mut Vec::new(),
            &mut capped,
        );
        for place in capped {
            if !self.folds.contains(&(place.clone(), Fold::Cap)) {
                self.folds.push((place, Fold::Cap));
            }
        }
        self.nodes = self.root.count();
    }

    /// Applies hints to what the tree already holds: positions hints make parameters
    /// fold their words.
    pub fn apply_hints(&mut self, hints: &[Hint]) {
        fn walk<T: Mergeable>(node: &mut Node<T>, hints: &[Hint], trail: &mut Vec<Seg>) {
            if node.fold.is_none() && forced_param(hints, trail).is_some() {
                node.fold_words(Fold::Hint, hints, trail);
            }
            let keys: Vec<String> = node.literals.keys().cloned().collect();
            for k in keys {
                if let Some(child) = node.literals.get_mut(&k) {
                    trail.push(Seg::Literal(k));
                    walk(child, hints, trail);
                    trail.pop();
                }
            }
            let params = node.param.as_deref_mut().into_iter();
            for p in params.chain(node.suffixed.values_mut()) {
                trail.push(Seg::Param);
                walk(&mut p.node, hints, trail);
                trail.pop();
            }
        }
        if hints.is_empty() {
            return;
        }
        walk(&mut self.root, hints, &mut Vec::new());
        self.nodes = self.root.count();
    }
}

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TemplateSeg {
    Literal(String),
    Param(ParamEvidence),
}

/// What a template's parameter is based on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamEvidence {
    pub name: String,
    /// The most frequent shape of its values.
    pub shape: Shape,
    /// Every shape seen, with requests.
    pub shapes: BTreeMap<Shape, u64>,
    /// Distinct values (estimated above `Sketch::K`).
    pub distinct: u64,
    pub distinct_exact: bool,
    /// Masked examples.
    pub examples: Vec<String>,
    /// Why words were folded into it, if they were.
    pub fold: Option<Fold>,
    pub rest: bool,
    /// The format extension its values carry, with the dot (`.json` in `/users/{id}.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// How sure the templating is that this position is a parameter, 0..=1.
    pub confidence: f64,
}

/// An endpoint as the tree shows it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Template<T> {
    pub method: String,
    pub segments: Vec<TemplateSeg>,
    pub stats: T,
}

impl<T> Template<T> {
    /// The path with parameters written `{name}`.
    pub fn path(&self) -> String {
        let mut s = String::new();
        for seg in &self.segments {
            s.push('/');
            match seg {
                TemplateSeg::Literal(l) => s.push_str(l),
                TemplateSeg::Param(p) => {
                    s.push('{');
                    s.push_str(&p.name);
                    s.push('}');
                    s.push_str(p.suffix.as_deref().unwrap_or_default());
                }
            }
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    /// The parameters, in path order.
    pub fn params(&self) -> impl Iterator<Item = &ParamEvidence> {
        self.segments.iter().filter_map(|s| match s {
            TemplateSeg::Param(p) => Some(p),
            TemplateSeg::Literal(_) => None,
        })
    }

    /// The least confident parameter's confidence (1 with no parameter).
    pub fn confidence(&self) -> f64 {
        self.params().map(|p| p.confidence).fold(1.0, f64::min)
    }
}

/// The shape of a subtree, compared between sibling words by learning.
fn signature<T: Mergeable>(n: &Node<T>) -> String {
    let mut s: String = n.methods.keys().map(|m| format!("{m},")).collect();
    s.push('|');
    if n.param.is_some() {
        s.push('p');
    }
    for ext in n.suffixed.keys() {
        s.push('p');
        s.push_str(ext);
    }
    for k in n.literals.keys() {
        s.push('/');
        s.push_str(k);
    }
    s
}

fn should_learn_fold<T: Mergeable>(node: &Node<T>, words: &[&String], limits: &Limits) -> bool {
    if words.len() < limits.fold_min_distinct {
        return false;
    }
    let mut sigs: BTreeMap<String, usize> = BTreeMap::new();
    let mut requests = 0u64;
    for w in words {
        if let Some(child) = node.literals.get(*w) {
            *sigs.entry(signature(child)).or_default() += 1;
            requests += child.requests();
        }
    }
    let most = sigs.values().copied().max().unwrap_or(0);
    let alike = most as f64 / words.len() as f64 >= limits.fold_homogeneity;
    let rare = requests as f64 / words.len() as f64 <= limits.fold_max_avg_requests;
    alike && rare
}

fn confidence(p: &Param<impl Mergeable>, shape: Shape, fold: Option<Fold>) -> f64 {
    let d = p.values.distinct();
    match (fold, shape) {
        (Some(Fold::Hint), _) => 1.0,
        (Some(Fold::Cap | Fold::Budget), _) => 0.95,
        (Some(Fold::Learned), _) => (0.7 + 0.01 * d as f64).min(0.95),
        (
            None,
            Shape::Uuid | Shape::Ulid | Shape::ObjectId | Shape::Hash | Shape::Email | Shape::Date,
        ) => {
            if d >= 2 {
                1.0
            } else {
                0.9
            }
        }
        (None, _) => match d {
            0 | 1 => 0.6,
            2 => 0.75,
            3..=9 => 0.9,
            _ => 1.0,
        },
    }
}

impl<T: Mergeable> Tree<T> {
    /// Every endpoint, with learning applied. Deterministic: sorted by path then method.
    pub fn templates(&self, hints: &[Hint], limits: &Limits) -> Vec<Template<T>> {
        let mut out = Vec::new();
        let mut trail = Vec::new();
        let mut segs = Vec::new();
        walk_templates(&self.root, hints, limits, &mut trail, &mut segs, &mut out);
        out.sort_by(|a, b| a.path().cmp(&b.path()).then(a.method.cmp(&b.method)));
        out
    }
}

fn walk_templates<T: Mergeable>(
    node: &Node<T>,
    hints: &[Hint],
    limits: &Limits,
    trail: &mut Vec<Seg>,
    segs: &mut Vec<TemplateSeg>,
    out: &mut Vec<Template<T>>,
) {
    for (m, s) in &node.methods {
        out.push(Template {
            method: m.clone(),
            segments: segs.clone(),
            stats: s.clone(),
        });
    }
    let words: Vec<&String> = node
        .literals
        .keys()
        .filter(|k| foldable(hints, trail, k))
        .collect();
    let learned = node.fold.is_none() && should_learn_fold(node, &words, limits);
    // With learning, the folded words join the parameter in a copy of this level.
    let folded_param: Option<Param<T>> = if learned {
        let mut p: Param<T> = node.param.as_deref().cloned().unwrap_or_default();
        for w in &words {
            if let Some(child) = node.literals.get(*w) {
                p.record(w, Shape::Word, child.requests());
                trail.push(Seg::Param);
                p.node.merge(child.clone(), hints, trail);
                trail.pop();
            }
        }
        Some(p)
    } else {
        None
    };
    for (k, child) in &node.literals {
        if learned && foldable(hints, trail, k) {
            continue;
        }
        trail.push(Seg::Literal(k.clone()));
        segs.push(TemplateSeg::Literal(k.clone()));
        walk_templates(child, hints, limits, trail, segs, out);
        segs.pop();
        trail.pop();
    }
    let param = folded_param.as_ref().or(node.param.as_deref());
    if let Some(p) = param {
        let fold = if learned {
            Some(Fold::Learned)
        } else {
            node.fold
        };
        walk_param(p, fold, None, hints, limits, trail, segs, out);
    }
    for (ext, p) in &node.suffixed {
        walk_param(p, None, Some(ext), hints, limits, trail, segs, out);
    }
}

/// Walks a parameter child: its evidence as a template segment, then its subtree.
#[allow(clippy::too_many_arguments)]
fn walk_param<T: Mergeable>(
    p: &Param<T>,
    fold: Option<Fold>,
    suffix: Option<&String>,
    hints: &[Hint],
    limits: &Limits,
    trail: &mut Vec<Seg>,
    segs: &mut Vec<TemplateSeg>,
    out: &mut Vec<Template<T>>,
) {
    let shape = p
        .shapes
        .iter()
        .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
        .map(|(s, _)| *s)
        .unwrap_or(Shape::Word);
    let previous = segs.iter().rev().find_map(|s| match s {
        TemplateSeg::Literal(l) => Some(l.as_str()),
        TemplateSeg::Param(_) => None,
    });
    let previous = match segs.last() {
        Some(TemplateSeg::Literal(_)) => previous,
        _ => None,
    };
    let mut name = p.name.clone().unwrap_or_else(|| {
        if p.rest {
            "path".into()
        } else {
            segment::param_name(previous, shape)
        }
    });
    let taken = |n: &str| {
        segs.iter()
            .any(|s| matches!(s, TemplateSeg::Param(q) if q.name == n))
    };
    if taken(&name) {
        let base = name.clone();
        let mut k = 2;
        while taken(&name) {
            name = format!("{base}{k}");
            k += 1;
        }
    }
    let evidence = ParamEvidence {
        name,
        shape,
        shapes: p.shapes.clone(),
        distinct: p.values.distinct(),
        distinct_exact: p.values.is_exact(),
        examples: p.examples.values().map(str::to_string).collect(),
        fold,
        rest: p.rest,
        suffix: suffix.cloned(),
        confidence: confidence(p, shape, fold),
    };
    trail.push(Seg::Param);
    segs.push(TemplateSeg::Param(evidence));
    walk_templates(&p.node, hints, limits, trail, segs, out);
    segs.pop();
    trail.pop();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Count(u64);
    impl Mergeable for Count {
        fn merge(&mut self, other: &Self) {
            self.0 += other.0;
        }
        fn requests(&self) -> u64 {
            self.0
        }
    }

    fn tree(paths: &[(&str, &str)], hints: &[Hint], limits: &Limits) -> Tree<Count> {
        let mut t: Tree<Count> = Tree::default();
        for (m, p) in paths {
            t.insert(p, m, hints, limits).0 += 1;
        }
        t
    }

    fn list(t: &Tree<Count>, hints: &[Hint], limits: &Limits) -> Vec<String> {
        t.templates(hints, limits)
            .iter()
            .map(|e| format!("{} {} {}", e.method, e.path(), e.stats.0))
            .collect()
    }

    #[test]
    fn split_path_drops_empty_segments() {
        let split = |p| split_path(p).collect::<Vec<_>>();
        assert_eq!(split("//a/b//c/"), ["a", "b", "c"]);
        assert_eq!(split("/caf\u{e9}/x"), ["caf\u{e9}", "x"]);
        assert!(split("").is_empty() && split("/").is_empty() && split("///").is_empty());
        assert_eq!(split("a"), ["a"]);
    }

    #[test]
    fn ids_become_parameters_and_route_words_stay() {
        let l = Limits::default();
        let t = tree(
            &[
                ("GET", "/users/8812/orders/1"),
                ("GET", "/users/17/orders/9"),
                ("GET", "/users/me"),
                ("GET", "/users/search"),
                ("DELETE", "/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
            ],
            &[],
            &l,
        );
        assert_eq!(
            list(&t, &[], &l),
            [
                "GET /users/me 1",
                "GET /users/search 1",
                "DELETE /users/{userId} 1",
                "GET /users/{userId}/orders/{orderId} 2",
            ]
        );
    }

    #[test]
    fn ids_with_an_extension_are_one_endpoint_per_extension() {
        let l = Limits::default();
        let owned: Vec<String> = (100_000..100_040)
            .map(|i| format!("/api/v1/orders/{i}.json"))
            .collect();
        let mut paths: Vec<(&str, &str)> = owned.iter().map(|s| ("GET", s.as_str())).collect();
        paths.extend([
            ("GET", "/api/v1/orders/7"),
            ("GET", "/api/v1/orders/8"),
            ("GET", "/api/v1/orders/9.xml"),
            ("GET", "/api/v1/orders/9.json/items"),
            ("GET", "/api/v1/orders/index.html"),
            ("GET", "/api/v1.2/orders"),
        ]);
        let t = tree(&paths, &[], &l);
        assert_eq!(
            list(&t, &[], &l),
            [
                "GET /api/v1.2/orders 1",
                "GET /api/v1/orders/index.html 1",
                "GET /api/v1/orders/{orderId} 2",
                "GET /api/v1/orders/{orderId}.json 40",
                "GET /api/v1/orders/{orderId}.json/items 1",
                "GET /api/v1/orders/{orderId}.xml 1",
            ]
        );
        let e = t.templates(&[], &l);
        let p = e[3]
            .params()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("no param"));
        assert_eq!(
            (p.shape, p.suffix.as_deref(), p.distinct),
            (Shape::Int, Some(".json"), 41)
        );
        assert_eq!(t.nodes, t.root.count());
        // Merged halves give the same tree, and a folded position still keeps ids with
        // an extension apart.
        let (a, b) = paths.split_at(20);
        let mut ta = tree(a, &[], &l);
        ta.merge(tree(b, &[], &l), &[], &l);
        assert_eq!(ta.root, t.root);
        let small = Limits {
            max_literals: 2,
            ..Limits::default()
        };
        let t = tree(
            &[
                ("GET", "/f/alpha"),
                ("GET", "/f/beta"),
                ("GET", "/f/gamma"),
                ("GET", "/f/12.json"),
            ],
            &[],
            &small,
        );
        assert_eq!(
            list(&t, &[], &small),
            ["GET /f/{fId}.json 1", "GET /f/{f} 3"]
        );
    }

    #[test]
    fn many_rare_alike_words_are_learned_as_a_parameter() {
        let l = Limits::default();
        let verbs = ["cook", "swim", "read", "sing", "draw"];
        let owned: Vec<String> = (0..40)
            .map(|i| format!("/articles/how-to-{}{}", verbs[i % 5], "x".repeat(i / 5)))
            .collect();
        let paths: Vec<(&str, &str)> = owned.iter().map(|s| ("GET", s.as_str())).collect();
        let t = tree(&paths, &[], &l);
        let got = list(&t, &[], &l);
        assert_eq!(got, ["GET /articles/{article} 40"]);
        // Few words, each requested often: routes, not ids.
        let mut many = Vec::new();
        for r in ["users", "orders", "products", "carts", "files", "reports"] {
            for _ in 0..20 {
                many.push(format!("/api/{r}"));
            }
        }
        let t = tree(
            &many.iter().map(|p| ("GET", p.as_str())).collect::<Vec<_>>(),
            &[],
            &l,
        );
        assert_eq!(t.templates(&[], &l).len(), 6);
    }

    #[test]
    fn enumeration_folds_at_the_cap_and_memory_stays_bounded() {
        let l = Limits::default();
        let mut t: Tree<Count> = Tree::default();
        for i in 0..100_000 {
            let p = format!("/files/name{}x{}", i % 977, i);
            t.insert(&p, "GET", &[], &l).0 += 1;
        }
        t.insert("/files/me", "GET", &[], &l).0 += 1;
        assert!(t.nodes < 10, "nodes {}", t.nodes);
        assert_eq!(t.folds, [("/files".to_string(), Fold::Cap)]);
        let got = list(&t, &[], &l);
        assert_eq!(got, ["GET /files/me 1", "GET /files/{file} 100000"]);
        let e = t.templates(&[], &l);
        let p = e[1]
            .params()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("no param"));
        assert!(p.distinct > 50_000 && !p.distinct_exact, "{}", p.distinct);
    }

    #[test]
    fn merged_trees_fold_at_the_cap_as_one_pass_does() {
        let l = Limits {
            max_literals: 20,
            ..Limits::default()
        };
        let paths: Vec<String> = (0..30).map(|i| format!("/tags/word{i}/items")).collect();
        let mut whole: Tree<Count> = Tree::default();
        let mut a: Tree<Count> = Tree::default();
        let mut b: Tree<Count> = Tree::default();
        for (i, p) in paths.iter().enumerate() {
            whole.insert(p, "GET", &[], &l).0 += 1;
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            half.insert(p, "GET", &[], &l).0 += 1;
        }
        assert!(
            a.folds.is_empty() && b.folds.is_empty(),
            "each half is under the cap"
        );
        a.merge(b, &[], &l);
        assert_eq!(whole.folds, [("/tags".to_string(), Fold::Cap)]);
        assert_eq!(a.folds, whole.folds);
        assert_eq!(list(&a, &[], &l), list(&whole, &[], &l));
        assert_eq!(a.templates(&[], &l), whole.templates(&[], &l));
    }

    #[test]
    fn result_does_not_depend_on_order() {
        let l = Limits {
            max_literals: 20,
            ..Limits::default()
        };
        let mut paths: Vec<String> = Vec::new();
        for i in 0..60 {
            paths.push(format!("/u/user{}/x", i % 30));
            paths.push(format!("/a/{i}/b/word{}", i % 7));
        }
        let fwd = tree(
            &paths
                .iter()
                .map(|p| ("GET", p.as_str()))
                .collect::<Vec<_>>(),
            &[],
            &l,
        );
        let rev = tree(
            &paths
                .iter()
                .rev()
                .map(|p| ("GET", p.as_str()))
                .collect::<Vec<_>>(),
            &[],
            &l,
        );
        assert_eq!(fwd.root, rev.root);
        // and in two halves merged either way
        let (a, b) = paths.split_at(45);
        let ta = tree(
            &a.iter().map(|p| ("GET", p.as_str())).collect::<Vec<_>>(),
            &[],
            &l,
        );
        let tb = tree(
            &b.iter().map(|p| ("GET", p.as_str())).collect::<Vec<_>>(),
            &[],
            &l,
        );
        let mut ab = ta.clone();
        ab.merge(tb.clone(), &[], &l);
        let mut ba = tb;
        ba.merge(ta, &[], &l);
        assert_eq!(ab.root, ba.root);
        assert_eq!(ab.root, fwd.root);
    }

    #[test]
    fn hints_force_and_protect() {
        let l = Limits::default();
        let hints = parse_hints("# test\n/files/{path*}\n/users/new\n/teams/{team}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let t = tree(
            &[
                ("GET", "/files/a/b/c.txt"),
                ("GET", "/files/readme"),
                ("POST", "/users/new"),
                ("GET", "/teams/core"),
                ("GET", "/teams/web"),
            ],
            &hints,
            &l,
        );
        assert_eq!(
            list(&t, &hints, &l),
            [
                "GET /files/{path} 2",
                "GET /teams/{team} 2",
                "POST /users/new 1"
            ]
        );
        assert!(Hint::parse("files/x").is_err());
        assert!(Hint::parse("/files/{a*}/x").is_err());
        assert!(Hint::parse("/files/x{a}").is_err());
    }

    #[test]
    fn a_parameter_hint_does_not_take_ids_with_an_extension() {
        let l = Limits::default();
        let hints = parse_hints("/users/{id}\n").unwrap_or_default();
        let t = tree(
            &[
                ("GET", "/users/42.json"),
                ("GET", "/users/alice"),
                ("GET", "/users/43"),
            ],
            &hints,
            &l,
        );
        assert_eq!(
            list(&t, &hints, &l),
            ["GET /users/{id} 2", "GET /users/{userId}.json 1"]
        );
    }

    #[test]
    fn hints_apply_to_what_was_already_learnt() {
        let l = Limits::default();
        let mut t = tree(&[("GET", "/teams/core"), ("GET", "/teams/web")], &[], &l);
        assert_eq!(t.templates(&[], &l).len(), 2);
        let hints = parse_hints("/teams/{team}").unwrap_or_default();
        t.apply_hints(&hints);
        assert_eq!(list(&t, &hints, &l), ["GET /teams/{team} 2"]);
    }

    #[test]
    fn deep_paths_end_in_a_rest_parameter() {
        let l = Limits {
            max_depth: 4,
            ..Limits::default()
        };
        let deep = format!("/{}", vec!["a"; 100].join("/"));
        let t = tree(&[("GET", deep.as_str())], &[], &l);
        assert_eq!(list(&t, &[], &l), ["GET /a/a/a/{path} 1"]);
    }
}
