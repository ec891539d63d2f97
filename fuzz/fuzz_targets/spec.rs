//! What users hand to `analyze` and `diff`: path hints files and OpenAPI/Swagger specs
//! (JSON or YAML). Either is read from the same bytes; neither may panic, every hint a
//! spec yields must parse back from its own text, and a loaded spec's lines must lie in
//! its text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use specter::infer::template::{parse_hints, Hint};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(hints) = parse_hints(&text) {
        for h in hints {
            assert_eq!(Hint::parse(&h.text).ok().map(|p| p.segs), Some(h.segs));
        }
    }
    // A folder that does not exist: relative `$ref`s to files fail (with a warning)
    // instead of reading whatever lies beside the fuzzer.
    let path = Path::new("/nonexistent-specter-fuzz/spec.yaml");
    if let Ok((spec, warnings)) = specter::spec::parse(&text, path) {
        let lines = text.lines().count().max(1);
        assert!(spec.paths_line <= lines);
        for op in &spec.operations {
            assert!(op.line <= lines, "line {} of {lines}", op.line);
            assert!(!op.full_paths().is_empty());
        }
        for w in &warnings {
            assert!(w.line <= lines);
        }
    }
    let dir = std::env::temp_dir().join(format!("specter-fuzz-spec-{}", std::process::id()));
    if std::fs::write(&dir, data).is_ok() {
        let _ = specter::spec::hints(&dir);
    }
});
