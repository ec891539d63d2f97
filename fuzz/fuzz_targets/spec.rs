//! What users hand to `analyze`: path hints files and OpenAPI/Swagger specs (JSON or
//! YAML). Either is read from the same bytes; neither may panic, and every hint a spec
//! yields must parse back from its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::infer::template::{parse_hints, Hint};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(hints) = parse_hints(&text) {
        for h in hints {
            assert_eq!(Hint::parse(&h.text).ok().map(|p| p.segs), Some(h.segs));
        }
    }
    let dir = std::env::temp_dir().join(format!("specter-fuzz-spec-{}", std::process::id()));
    if std::fs::write(&dir, data).is_ok() {
        let _ = specter::spec::hints(&dir);
    }
});
