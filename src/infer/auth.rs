/*!
How a request authenticates: the scheme, never the secret.

A request may carry several credentials (a session cookie and an API key); each is
reported as a scheme key:

| key                         | seen as                                              |
|-----------------------------|------------------------------------------------------|
| `basic`                     | `Authorization: Basic`                               |
| `bearer`                    | `Authorization: Bearer` (a JWT's header and claims are read: `alg`, `iss`, `aud`, whether `exp` is set) |
| `digest`, `negotiate`, `ntlm`, `aws_sigv4`, `authorization:<scheme>` | other `Authorization` schemes |
| `api_key:header:<name>`     | a header whose name says it carries a key or token   |
| `api_key:query:<name>`      | a query parameter so named (`api_key`, `access_token`...) |
| `cookie:<name>`             | a session-like cookie                                |
| `none`                      | none of the above                                    |

Identities are the credential's subject (Basic user name, JWT `iss`+`sub`) or, for opaque
tokens and keys, the token itself, given to the caller only to be hashed with the
inventory's salt: the inventory counts distinct callers without storing who they are.
*/

use std::borrow::Cow;
use std::rc::Rc;

use base64::Engine;

use super::sketch::stable_hash;
use serde::{Deserialize, Serialize};

use crate::exchange::Head;

/// What a JWT's header and claims say, without its signature or subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtInfo {
    pub alg: String,
    pub iss: Option<String>,
    pub aud: Vec<String>,
    pub has_exp: bool,
}

/// One credential found on a request. Built for every request: the common keys are
/// static, the identity is already reduced to a hash, a JWT's information is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The scheme key (see the module doc).
    pub key: Cow<'static, str>,
    /// An unsalted 64-bit hash of what identifies the caller (never the material itself);
    /// the inventory salts it again before keeping it.
    pub identity: Option<u64>,
    /// For bearer tokens that are JWTs.
    pub jwt: Option<Rc<JwtInfo>>,
}

fn id_of(material: &[u8]) -> Option<u64> {
    Some(stable_hash(material))
}

/// Whether a header name says it carries a key or token. Runs on every header of every
/// request: names are lower-cased on the stack (a longer name than any header a client
/// sends is copied) and settled by one `match`.
pub fn is_key_header(n: &[u8]) -> bool {
    // Every key header begins with one of these letters: most names stop here.
    if !matches!(
        n.first().map(u8::to_ascii_lowercase),
        Some(b'x' | b'a' | b'o' | b'p')
    ) {
        return false;
    }
    let mut buf = [0u8; 64];
    let lower: Cow<'_, [u8]> = match super::lower_in(n, &mut buf) {
        Some(b) => Cow::Borrowed(b),
        None => Cow::Owned(n.to_ascii_lowercase()),
    };
    is_key_header_lower(&lower)
}

/// [`is_key_header`] on a lower-cased name.
fn is_key_header_lower(n: &[u8]) -> bool {
    let contains = |needle: &[u8]| n.windows(needle.len()).any(|w| w == needle);
    match n {
        b"x-api-key"
        | b"api-key"
        | b"apikey"
        | b"x-apikey"
        | b"x-api-token"
        | b"x-auth-token"
        | b"x-access-token"
        | b"x-token"
        | b"x-key"
        | b"ocp-apim-subscription-key"
        | b"x-goog-api-key"
        | b"x-functions-key"
        | b"x-amz-security-token"
        | b"private-token"
        | b"x-vault-token" => true,
        [b'x', b'-', _, ..] => {
            contains(b"api-key") || contains(b"apikey") || (n.len() > 6 && n.ends_with(b"-token"))
        }
        _ => false,
    }
}

/// Whether a query parameter name says it carries a key or token.
pub fn is_key_param(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "api_key"
            | "apikey"
            | "api-key"
            | "key"
            | "access_token"
            | "token"
            | "auth"
            | "auth_token"
            | "client_secret"
            | "sig"
            | "signature"
            | "x-amz-signature"
    )
}

/// Whether a cookie name looks like a session or auth cookie.
pub fn is_session_cookie(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("session")
        || n.contains("sess")
        || n == "sid"
        || n.ends_with("_sid")
        || n.contains("auth")
        || n.contains("token")
        || n.contains("jwt")
        || n == "connect.sid"
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    if s.len() > 16 * 1024 {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// A JWT's information and the hash of its `iss` and `sub`.
type JwtRead = Option<(Rc<JwtInfo>, Option<u64>)>;

thread_local! {
    /// Tokens already read: a client sends the same token on request after request, and
    /// decoding it (base64, then JSON twice) was a tenth of the inventory's cost.
    static JWT_SEEN: std::cell::RefCell<std::collections::HashMap<u64, JwtRead>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Tokens remembered by `read_jwt` before the memory is cleared.
const JWT_SEEN_MAX: usize = 4096;

/// Reads a JWT's header and claims (the signature is neither checked nor kept).
/// Returns the information and the identity material (`iss` and `sub`).
pub fn read_jwt(token: &str) -> JwtRead {
    // Most bearer tokens are not JWTs and each is new: they are not worth remembering.
    if memchr::memchr_iter(b'.', token.as_bytes()).count() != 2 {
        return None;
    }
    let key = stable_hash(token.as_bytes());
    if let Some(hit) = JWT_SEEN.with(|m| m.borrow().get(&key).cloned()) {
        return hit;
    }
    let read = parse_jwt(token);
    JWT_SEEN.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= JWT_SEEN_MAX {
            m.clear();
        }
        m.insert(key, read.clone());
    });
    read
}

fn parse_jwt(token: &str) -> JwtRead {
    let mut parts = token.split('.');
    let (h, c) = (parts.next()?, parts.next()?);
    parts.next()?;
    let header: serde_json::Value = serde_json::from_slice(&b64url(h)?).ok()?;
    let alg = header.get("alg")?.as_str()?.chars().take(16).collect();
    let claims: serde_json::Value = serde_json::from_slice(&b64url(c)?).ok()?;
    let short = |v: &serde_json::Value| v.as_str().map(|s| s.chars().take(128).collect::<String>());
    let aud = match claims.get("aud") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(short).take(4).collect(),
        Some(v) => short(v).into_iter().collect(),
        None => Vec::new(),
    };
    let iss = claims.get("iss").and_then(short);
    let sub = claims.get("sub").map(|s| s.to_string());
    let identity =
        sub.map(|s| stable_hash(format!("{}\u{0}{s}", iss.as_deref().unwrap_or("")).as_bytes()));
    Some((
        Rc::new(JwtInfo {
            alg,
            iss,
            aud,
            has_exp: claims.get("exp").is_some(),
        }),
        identity,
    ))
}

fn authorization(value: &[u8]) -> Credential {
    let text = super::lossy(value);
    let text = text.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    // The scheme is lower-cased on the stack: this runs on most requests.
    let mut buf = [0u8; 24];
    let lower = match super::lower_in(scheme.as_bytes(), &mut buf).map(|b| std::str::from_utf8(b)) {
        Some(Ok(b)) => Cow::Borrowed(b),
        _ => Cow::Owned(scheme.to_ascii_lowercase()),
    };
    match &*lower {
        "basic" => {
            let user = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|d| id_of(d.split(|&b| b == b':').next().unwrap_or_default()));
            Credential {
                key: "basic".into(),
                identity: user,
                jwt: None,
            }
        }
        "bearer" => match read_jwt(rest) {
            Some((jwt, identity)) => Credential {
                key: "bearer".into(),
                identity: identity.or_else(|| id_of(rest.as_bytes())),
                jwt: Some(jwt),
            },
            None => Credential {
                key: "bearer".into(),
                identity: id_of(rest.as_bytes()),
                jwt: None,
            },
        },
        "digest" | "negotiate" | "ntlm" => Credential {
            key: lower.into_owned().into(),
            identity: None,
            jwt: None,
        },
        "aws4-hmac-sha256" => Credential {
            key: "aws_sigv4".into(),
            identity: rest
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .and_then(|k| id_of(k.as_bytes())),
            jwt: None,
        },
        _ => {
            let name: String = lower
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(32)
                .collect();
            Credential {
                key: format!("authorization:{name}").into(),
                identity: id_of(rest.as_bytes()),
                jwt: None,
            }
        }
    }
}

/// Every credential on a request: its headers and its query parameters (name, value).
pub fn credentials(head: &Head, query: &[super::endpoint::QueryPair<'_>]) -> Vec<Credential> {
    let mut out = Vec::new();
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case(b"authorization") {
            out.push(authorization(value));
        } else if name.eq_ignore_ascii_case(b"cookie") {
            for pair in value.split(|&b| b == b';') {
                let pair = super::lossy(pair);
                let (n, v) = pair.split_once('=').unwrap_or((&pair, ""));
                let n = n.trim();
                if is_session_cookie(n) {
                    out.push(Credential {
                        key: format!("cookie:{}", n.to_ascii_lowercase()).into(),
                        identity: id_of(v.trim().as_bytes()),
                        jwt: read_jwt(v.trim()).map(|(j, _)| j),
                    });
                }
            }
        } else if is_key_header(name) {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            out.push(Credential {
                key: format!("api_key:header:{}", name.to_ascii_lowercase()).into(),
                identity: id_of(value),
                jwt: std::str::from_utf8(value)
                    .ok()
                    .and_then(read_jwt)
                    .map(|(j, _)| j),
            });
        }
    }
    for (n, v) in query {
        if is_key_param(n) && !v.is_empty() {
            out.push(Credential {
                key: format!("api_key:query:{}", n.to_ascii_lowercase()).into(),
                identity: id_of(v.as_bytes()),
                jwt: read_jwt(v).map(|(j, _)| j),
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// The scheme part of a key: `api_key:header:x-api-key` is `api_key`.
pub fn scheme_of(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::StartLine;

    fn head(headers: &[(&str, &str)]) -> Head {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        let mut spans = Vec::new();
        for (n, v) in headers {
            let ns = raw.len() as u32;
            raw.extend_from_slice(n.as_bytes());
            let ne = raw.len() as u32;
            raw.extend_from_slice(b": ");
            let vs = raw.len() as u32;
            raw.extend_from_slice(v.as_bytes());
            let ve = raw.len() as u32;
            raw.extend_from_slice(b"\r\n");
            spans.push(((ns, ne), (vs, ve)));
        }
        Head::new(
            raw,
            StartLine::Request {
                method: (0, 3),
                target: (4, 5),
                version: (6, 14),
            },
            spans,
        )
    }

    fn jwt(header: &str, claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2lnbmF0dXJl", e(header), e(claims))
    }

    #[test]
    fn schemes() {
        let token = jwt(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"iss":"https://id.example.com","aud":["shop"],"sub":"u-17","exp":1900000000}"#,
        );
        let bearer = format!("Bearer {token}");
        let h = head(&[
            ("Authorization", &bearer),
            ("Cookie", "theme=dark; session=abc123; _ga=1"),
            ("X-API-Key", "k-123"),
        ]);
        let creds = credentials(
            &h,
            &[("api_key".into(), "q".into()), ("page".into(), "2".into())],
        );
        let keys: Vec<&str> = creds.iter().map(|c| c.key.as_ref()).collect();
        assert_eq!(
            keys,
            [
                "api_key:header:x-api-key",
                "api_key:query:api_key",
                "bearer",
                "cookie:session"
            ]
        );
        let b = &creds[2];
        let j = b.jwt.clone().unwrap_or_default();
        assert_eq!(j.alg, "HS256");
        assert_eq!(j.iss.as_deref(), Some("https://id.example.com"));
        assert_eq!(j.aud, ["shop"]);
        assert!(j.has_exp);
        // The identity is the JWT's issuer and subject, not the token.
        assert_eq!(
            b.identity,
            Some(stable_hash(b"https://id.example.com\0\"u-17\""))
        );
    }

    #[test]
    fn basic_identity_is_the_user_name_only() {
        let h = head(&[("authorization", "Basic YWxpY2U6czNjcjN0")]); // alice:s3cr3t
        let c = credentials(&h, &[]);
        assert_eq!(c[0].key, "basic");
        assert_eq!(c[0].identity, Some(stable_hash(b"alice")));
    }

    #[test]
    fn odd_input_never_panics() {
        for v in [
            "",
            "Bearer",
            "Basic !!!",
            "Bearer a.b.c",
            "Bearer eyJ.eyJ.",
            "AWS4-HMAC-SHA256 Credential=AKID/2026",
            "Token abc",
        ] {
            let h = head(&[("Authorization", v)]);
            let _ = credentials(&h, &[]);
        }
        let none = jwt(r#"{"alg":"none"}"#, r#"{"sub":1}"#);
        assert_eq!(
            read_jwt(&none).map(|(j, _)| j.alg.clone()),
            Some("none".into())
        );
    }
}
