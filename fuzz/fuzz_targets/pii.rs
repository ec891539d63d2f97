//! The sensitive data detectors on arbitrary text: `scan_text`, `scan_field` under names
//! that turn on every name rule (and under a name taken from the input), `mask` on every
//! finding, `jwt_parts` and `base64url_decode`. Every match must borrow the input, and the
//! mask of a value of 8+ bytes must not contain it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use specter::infer::pii::{self, PiiKind};

const NAMES: [&str; 8] = [
    "password",
    "dateOfBirth",
    "customer_ssn",
    "phoneNumber",
    "aws_secret_access_key",
    "X-API-Key",
    "description",
    "",
];

fn check(input: &str, kind: PiiKind, m: &str) {
    let (base, p) = (input.as_ptr() as usize, m.as_ptr() as usize);
    assert!(
        p >= base && p + m.len() <= base + input.len(),
        "{kind:?} {m:?} is not a part of the input"
    );
    let masked = pii::mask(kind, m);
    if m.len() >= 8 {
        assert!(
            !masked.contains(m),
            "{kind:?}: mask {masked:?} contains {m:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    pii::scan_text(text, &mut |k, m| check(text, k, m));
    for name in NAMES {
        pii::scan_field(name, text, &mut |k, m| check(text, k, m));
    }
    if let Some((name, value)) = text.split_once('=') {
        pii::scan_field(name, value, &mut |k, m| check(value, k, m));
        let _ = pii::is_sensitive_name(name);
    }
    if let Some((h, p, s)) = pii::jwt_parts(text) {
        assert_eq!(format!("{h}.{p}.{s}"), text);
        let _ = pii::base64url_decode(h);
    }
    if let Some(decoded) = pii::base64url_decode(text) {
        assert!(decoded.len() <= text.len() * 3 / 4);
    }
    for kind in PiiKind::ALL {
        let _ = pii::mask(kind, text);
    }
});
