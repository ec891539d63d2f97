/*!
What a path segment looks like: the first half of path templating.

Each segment of a request path is classified by its shape. Shapes that only identifiers
have (numbers, UUIDs, ULIDs, ObjectIds, hashes, long hex or base64 tokens, dates, email
addresses) make the segment a parameter at once; everything else is a *word*, which stays
a literal unless the template tree later learns from cardinality that the position
varies (see `template`).
*/

use serde::{Deserialize, Serialize};

/// The shape of one path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Decimal digits only.
    Int,
    /// 8-4-4-4-12 hexadecimal (RFC 9562).
    Uuid,
    /// 26 characters of Crockford base32, first one 0-7.
    Ulid,
    /// 24 hexadecimal characters (MongoDB ObjectId).
    ObjectId,
    /// Hexadecimal digest: 32, 40, 56, 64, 96 or 128 hex characters.
    Hash,
    /// Other hexadecimal runs of 8 or more with both digits and letters.
    Hex,
    /// Long random-looking tokens: 16+ characters of base64/base64url with digits and
    /// both letter cases.
    Token,
    /// ISO 8601 calendar date, `YYYY-MM-DD`.
    Date,
    /// An email address (`%40` decoded).
    Email,
    /// Anything else: a literal until cardinality says otherwise.
    Word,
}

impl Shape {
    /// Whether the shape alone makes a segment a parameter.
    pub fn is_identifier(self) -> bool {
        self != Shape::Word
    }

    /// The name used in output and in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Int => "int",
            Shape::Uuid => "uuid",
            Shape::Ulid => "ulid",
            Shape::ObjectId => "object_id",
            Shape::Hash => "hash",
            Shape::Hex => "hex",
            Shape::Token => "token",
            Shape::Date => "date",
            Shape::Email => "email",
            Shape::Word => "word",
        }
    }

    /// The OpenAPI schema of a parameter of this shape.
    pub fn openapi_schema(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Shape::Int => json!({"type": "integer"}),
            Shape::Uuid => json!({"type": "string", "format": "uuid"}),
            Shape::Date => json!({"type": "string", "format": "date"}),
            Shape::Email => json!({"type": "string", "format": "email"}),
            Shape::ObjectId => json!({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}),
            Shape::Hash => json!({"type": "string", "pattern": "^[0-9a-fA-F]+$"}),
            _ => json!({"type": "string"}),
        }
    }
}

fn is_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_ulid(b: &[u8]) -> bool {
    b.len() == 26
        && matches!(b[0], b'0'..=b'7')
        && b.iter().all(|c| {
            let c = c.to_ascii_uppercase();
            c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
        })
        // A ULID's 48-bit timestamp makes its first characters digits for centuries; a
        // word of 26 letters is not one.
        && b.iter().filter(|c| c.is_ascii_digit()).count() >= 4
}

fn is_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    matches!((num(0..4), num(5..7), num(8..10)),
        (Some(y), Some(m), Some(d)) if (1000..=2999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
}

fn is_email(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    !local.is_empty()
        && domain.contains(&b'.')
        && !domain.starts_with(b".")
        && !domain.ends_with(b".")
        && domain
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
}

fn is_token(b: &[u8]) -> bool {
    if b.len() < 16
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'='))
    {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    // Random letters show in their case: it flips about every other letter and upper
    // case is close to half, where a CamelCase name (`ListProductsForCategory`) flips
    // once per word, is mostly lower case and rarely has two capitals in a row.
    let letters: Vec<bool> = b
        .iter()
        .filter(|c| c.is_ascii_alphabetic())
        .map(u8::is_ascii_uppercase)
        .collect();
    let flips = letters.windows(2).filter(|w| w[0] != w[1]).count();
    let double_upper = letters.windows(2).filter(|w| w[0] && w[1]).count();
    let uppers = letters.iter().filter(|u| **u).count();
    let lowers = letters.len() - uppers;
    let balanced = uppers * 10 >= letters.len() * 3 && lowers * 10 >= letters.len() * 3;
    let random_case = b.len() >= 20
        && upper
        && lower
        && (flips * 100 >= b.len() * 35 || double_upper >= 3 || balanced);
    (digits >= 2 && upper && lower) || random_case
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` (query components and
/// forms); borrows when there is nothing to decode. Malformed escapes stay as they are.
pub fn percent_decode(s: &str, plus_is_space: bool) -> std::borrow::Cow<'_, [u8]> {
    let b = s.as_bytes();
    let plus = plus_is_space && b.contains(&b'+');
    if !plus && !b.contains(&b'%') {
        return std::borrow::Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// Classifies one path segment (as on the wire, percent-encoded).
pub fn classify(segment: &str) -> Shape {
    // Classified decoded (`jane%40example.com` is an email); literals keep their wire form.
    let b = percent_decode(segment, false);
    let b = b.as_ref();
    if b.is_empty() {
        return Shape::Word;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Shape::Int;
    }
    // Every other identifier shape but an email address is 8 bytes or longer: route
    // words (`api`, `v1`, `users`), most segments of every request, stop here.
    if b.len() < 8 && !b.contains(&b'@') {
        return Shape::Word;
    }
    if is_uuid(b) {
        return Shape::Uuid;
    }
    if is_hex(b) {
        let has_digit = b.iter().any(u8::is_ascii_digit);
        let has_letter = b.iter().any(u8::is_ascii_alphabetic);
        return match b.len() {
            24 => Shape::ObjectId,
            32 | 40 | 56 | 64 | 96 | 128 => Shape::Hash,
            n if n >= 8 && has_digit && has_letter => Shape::Hex,
            _ => Shape::Word,
        };
    }
    if is_date(b) {
        return Shape::Date;
    }
    if is_email(b) {
        return Shape::Email;
    }
    if is_ulid(b) {
        return Shape::Ulid;
    }
    if is_token(b) {
        return Shape::Token;
    }
    Shape::Word
}

/// Longest format extension an identifier may carry (`.json`, `.xml`, `.html`, `.yaml`).
pub const MAX_EXTENSION: usize = 5;

/// Splits an identifier with a format extension (`100000.json`, `42.xml`,
/// `3f2504e0-4f89-11d3-9a0c-0305e82c3301.csv`) into the identifier's shape and the
/// extension with its dot. The extension is 1 to [`MAX_EXTENSION`] ASCII letters and
/// digits starting with a letter, so version-like words (`1.2`, `v1.2`) and dotted names
/// (`index.html`, `foo.bar`) are not ids with an extension: their stem is a word or the
/// extension is a number.
pub fn split_extension(segment: &str) -> Option<(Shape, &str)> {
    let dot = segment.rfind('.')?;
    let (stem, ext) = segment.split_at(dot);
    let e = &ext.as_bytes()[1..];
    if e.is_empty()
        || e.len() > MAX_EXTENSION
        || !e[0].is_ascii_alphabetic()
        || !e.iter().all(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    let shape = classify(stem);
    shape.is_identifier().then_some((shape, ext))
}

/// A masked example of a parameter value: enough to recognise its form, not the value.
pub fn mask_example(value: &str, shape: Shape) -> String {
    let chars: Vec<char> = value.chars().take(64).collect();
    let keep = match shape {
        Shape::Email => 1,
        Shape::Word => (chars.len() / 4).min(3),
        _ => (chars.len() / 4).clamp(1, 4),
    };
    let mut out: String = chars.iter().take(keep).collect();
    for c in chars.iter().skip(keep) {
        out.push(match c {
            '-' | '@' | '.' | '_' => *c,
            _ => '*',
        });
    }
    if value.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Words that name routes, never identifiers: kept literal however many siblings they
/// have. Users add their own with path hints.
pub fn is_reserved_word(segment: &str) -> bool {
    const WORDS: &[&str] = &[
        "api", "me", "self", "current", "new", "search", "count", "all", "latest", "default",
        "bulk", "batch", "export", "import", "login", "logout", "health", "status", "metrics",
        "admin", "auth", "oauth", "token", "config", "settings", "profile", "public", "private",
        "internal", "v1", "v2", "v3",
    ];
    let b = segment.as_bytes();
    // Versions: v1, v2beta, v10.
    let version =
        b.len() >= 2 && matches!(b[0], b'v' | b'V') && b[1].is_ascii_digit() && b.len() <= 8;
    version || WORDS.iter().any(|w| w.eq_ignore_ascii_case(segment))
}

/// A parameter name from the segment before it: `users` gives `userId`, `reports` with
/// a date gives `reportDate`, nothing usable gives `id`.
pub fn param_name(previous: Option<&str>, shape: Shape) -> String {
    let stem = previous
        .filter(|p| !p.is_empty() && !is_reserved_version(p))
        .map(|p| camel(&singular(p)))
        .filter(|s| !s.is_empty() && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()));
    let suffix = match shape {
        Shape::Date => "Date",
        Shape::Email => "Email",
        Shape::Word => "",
        _ => "Id",
    };
    match stem {
        Some(s) if suffix.is_empty() => s,
        Some(s) => format!("{s}{suffix}"),
        None => match shape {
            Shape::Date => "date".into(),
            Shape::Email => "email".into(),
            Shape::Word => "name".into(),
            _ => "id".into(),
        },
    }
}

fn is_reserved_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && matches!(b[0], b'v' | b'V') && b[1..].iter().all(u8::is_ascii_digit)
}

fn singular(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    if let Some(s) = w.strip_suffix("ies") {
        format!("{s}y")
    } else if w.ends_with("sses")
        || w.ends_with("xes")
        || w.ends_with("ches")
        || w.ends_with("shes")
    {
        w[..w.len() - 2].to_string()
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && w.len() > 3 {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

/// `line-items` and `line_items` become `lineItems`; other characters are dropped.
fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if upper && !out.is_empty() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cases = [
            ("8812", Shape::Int),
            ("0", Shape::Int),
            ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", Shape::Uuid),
            ("01ARZ3NDEKTSV4RRFFQ69G5FAV", Shape::Ulid),
            ("507f1f77bcf86cd799439011", Shape::ObjectId),
            ("d41d8cd98f00b204e9800998ecf8427e", Shape::Hash),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Shape::Hash,
            ),
            ("a1b2c3d4e5", Shape::Hex),
            ("2026-11-23", Shape::Date),
            ("jane.doe@example.com", Shape::Email),
            ("jane.doe%40example.com", Shape::Email),
            ("Xk9fQ2LmZp8Rt4VwBn6Yc1Ds", Shape::Token),
            ("UoswLvjAeLdBYNjyiLYMTTfc", Shape::Token),
            ("ydnUtwwDOky_SP_dzjMdwH_X", Shape::Token),
            ("Ahgszz9UQOktYdjd_vPOtbli", Shape::Token),
            ("getHttpResponseCodeValue", Shape::Word),
            ("ListProductsForCategoryV2", Shape::Word),
            ("getUserProfileSettings", Shape::Word),
            ("me", Shape::Word),
            ("search", Shape::Word),
            ("v2", Shape::Word),
            ("quiet-river-guide", Shape::Word),
            ("how-to-install-python-3", Shape::Word),
            ("deadbeef", Shape::Word),
            ("index.html", Shape::Word),
            ("ABCDEFGHJKMNPQRSTVWXYZABCD", Shape::Word),
            ("", Shape::Word),
            ("2026-13-01", Shape::Word),
        ];
        for (s, want) in cases {
            assert_eq!(classify(s), want, "{s}");
        }
    }

    #[test]
    fn identifiers_with_an_extension() {
        let cases = [
            ("100000.json", Some((Shape::Int, ".json"))),
            ("42.xml", Some((Shape::Int, ".xml"))),
            ("42.mp4", Some((Shape::Int, ".mp4"))),
            ("42.yaml", Some((Shape::Int, ".yaml"))),
            (
                "3f2504e0-4f89-11d3-9a0c-0305e82c3301.csv",
                Some((Shape::Uuid, ".csv")),
            ),
            (
                "507f1f77bcf86cd799439011.txt",
                Some((Shape::ObjectId, ".txt")),
            ),
            ("2026-11-23.pdf", Some((Shape::Date, ".pdf"))),
            // Not ids with an extension: the stem is a word, the extension a number,
            // too long, empty or not alphanumeric.
            ("index.html", None),
            ("foo.bar", None),
            ("v1.2", None),
            ("1.2", None),
            ("2.0", None),
            ("42.5x", None),
            ("42.jsonld", None),
            ("42.", None),
            (".json", None),
            ("42.js-on", None),
            ("42", None),
            ("1.2.json", None),
        ];
        for (s, want) in cases {
            assert_eq!(split_extension(s), want, "{s}");
            // The whole segment stays a word: the extension is what makes it one.
            assert_eq!(classify(s) == Shape::Word, s != "42", "{s}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(param_name(Some("users"), Shape::Int), "userId");
        assert_eq!(param_name(Some("orders"), Shape::Uuid), "orderId");
        assert_eq!(param_name(Some("categories"), Shape::Int), "categoryId");
        assert_eq!(param_name(Some("line-items"), Shape::Int), "lineItemId");
        assert_eq!(param_name(Some("reports"), Shape::Date), "reportDate");
        assert_eq!(param_name(Some("articles"), Shape::Word), "article");
        assert_eq!(param_name(Some("status"), Shape::Int), "statusId");
        assert_eq!(param_name(Some("addresses"), Shape::Int), "addressId");
        assert_eq!(param_name(Some("v1"), Shape::Int), "id");
        assert_eq!(param_name(None, Shape::Int), "id");
        assert_eq!(param_name(Some("42"), Shape::Int), "id");
    }

    #[test]
    fn masks_hide_values() {
        assert_eq!(mask_example("8812", Shape::Int), "8***");
        let m = mask_example("3f2504e0-4f89-11d3-9a0c-0305e82c3301", Shape::Uuid);
        assert!(m.starts_with("3f25") && !m.contains("0305e82c3301"), "{m}");
        assert_eq!(
            mask_example("jane@example.com", Shape::Email),
            "j***@*******.***"
        );
        assert!(!mask_example(&"x".repeat(500), Shape::Word).contains("xxxxxxxxx"));
    }

    #[test]
    fn reserved() {
        for w in ["me", "Search", "v2", "v10", "v2beta"] {
            assert!(is_reserved_word(w), "{w}");
        }
        for w in ["users", "alice", "vat"] {
            assert!(!is_reserved_word(w), "{w}");
        }
    }
}
