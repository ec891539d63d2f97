/*!
HTTP/1 message heads: finding where a head ends, reading the start line leniently (as
passive tools must: real traffic has `GET / HTTP/1.` and bare `OPTIONS`), and the header
fields with httparse, falling back to a tolerant line splitter when httparse refuses them.
*/

use std::sync::LazyLock;

use crate::exchange::{Head, Span, StartLine};
use memchr::memmem::Finder;

/// Methods we recognise anywhere, even with a malformed request line: RFC 9110, WebDAV
/// (RFC 4918, 3253, 3648, 3744, 4791, 5323, 5842), PATCH (RFC 5789), SSDP and common
/// extensions. Unknown tokens count as methods only in a well-formed request line.
pub const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKCALENDAR",
    b"ACL",
    b"BIND",
    b"UNBIND",
    b"REBIND",
    b"ORDERPATCH",
    b"CHECKOUT",
    b"CHECKIN",
    b"UNCHECKOUT",
    b"MKWORKSPACE",
    b"UPDATE",
    b"LABEL",
    b"MERGE",
    b"BASELINE-CONTROL",
    b"MKACTIVITY",
    b"VERSION-CONTROL",
    b"MKREDIRECTREF",
    b"UPDATEREDIRECTREF",
    b"PURGE",
    b"LINK",
    b"UNLINK",
    b"M-SEARCH",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"QUERY",
];

/// Longest method token we accept.
const MAX_METHOD: usize = 32;
/// Header fields kept per head (more are ignored and counted as malformed).
pub const MAX_HEADERS: usize = 256;

/// The HTTP/2 connection preface's first line (RFC 9113 section 3.4).
pub const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0";

/// Reads the first line of a head cut short by a gap: accepted only when the target is
/// whole (a space follows it), so a cut never invents a path.
pub fn partial_request_line(line: &[u8]) -> bool {
    let Some(((_, m1), (t0, t1), _)) = parse_request_line(line) else {
        return false;
    };
    let method = &line[..m1 as usize];
    t1 > t0 && (t1 as usize) < line.len() && KNOWN_METHODS.contains(&method)
}

/// What kind of message start a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    Request,
    Response,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Position of the first byte after the head (after the empty line), if complete.
/// Accepts CRLF and bare LF line ends.
///
/// Two vectorised substring searches, `\n\r\n` and then `\n\n` before it, instead of
/// one `memchr` per line: heads have a dozen lines, and this runs for every message.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    static CRLF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));
    static LF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
    let crlf = CRLF.find(buf);
    // A bare-LF empty line counts if its first `\n` comes before the CRLF one's.
    let before = crlf.map_or(buf, |i| &buf[..i + 1]);
    match LF.find(before) {
        Some(j) => Some(j + 2),
        None => crlf.map(|i| i + 3),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first line of `buf` (without its line end), if complete.
pub fn first_line(buf: &[u8]) -> Option<&[u8]> {
    memchr::memchr(b'\n', buf).map(|i| trim_cr(&buf[..i]))
}

fn is_http_version(v: &[u8]) -> bool {
    v.len() >= 8
        && v[..5].eq_ignore_ascii_case(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

/// Splits a request line into method, target and version spans (relative to `line`).
pub fn parse_request_line(line: &[u8]) -> Option<(Span, Span, Span)> {
    let sp = memchr::memchr(b' ', line);
    let method_end = sp.unwrap_or(line.len());
    let method = &line[..method_end];
    if method.is_empty() || method.len() > MAX_METHOD || !method.iter().all(|b| is_tchar(*b)) {
        return None;
    }
    let known = KNOWN_METHODS.contains(&method);
    let Some(sp) = sp else {
        // A bare method: only a known one (tshark reads `OPTIONS\n` as a request too).
        return known.then_some((
            (0, method_end as u32),
            (method_end as u32, method_end as u32),
            (method_end as u32, method_end as u32),
        ));
    };
    let mut t0 = sp + 1;
    while line.get(t0) == Some(&b' ') {
        t0 += 1;
    }
    let t1 = memchr::memchr(b' ', &line[t0..]).map_or(line.len(), |i| t0 + i);
    let mut v0 = t1;
    while line.get(v0) == Some(&b' ') {
        v0 += 1;
    }
    let mut v1 = line.len();
    while v1 > v0 && line[v1 - 1] == b' ' {
        v1 -= 1;
    }
    let version = &line[v0..v1];
    let looks_versioned = version.len() >= 5 && version[..5].eq_ignore_ascii_case(b"HTTP/");
    // An unknown method in a line without a version still counts when it looks like one
    // (upper case) and the target looks like a path: tshark reads `CCM_POST /x` too.
    let looks_like_path = line.get(t0) == Some(&b'/');
    let method_like = method
        .iter()
        .all(|b| b.is_ascii_uppercase() || *b == b'_' || *b == b'-');
    if !(known || looks_versioned || (method_like && looks_like_path)) {
        return None;
    }
    if line[t0..t1].iter().any(|b| b.is_ascii_control()) {
        return None;
    }
    Some((
        (0, method_end as u32),
        (t0 as u32, t1 as u32),
        (v0 as u32, v1 as u32),
    ))
}

/// Splits a status line into version, status code and reason spans.
pub fn parse_status_line(line: &[u8]) -> Option<(Span, u16, Span)> {
    if !is_http_version(line) {
        return None;
    }
    let vend = memchr::memchr(b' ', line)?;
    let mut s0 = vend + 1;
    while line.get(s0) == Some(&b' ') {
        s0 += 1;
    }
    let code = line.get(s0..s0 + 3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if line.get(s0 + 3).is_some_and(|b| *b != b' ') {
        return None;
    }
    let status = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + (d - b'0') as u16);
    let r0 = (s0 + 4).min(line.len());
    Some(((0, vend as u32), status, (r0 as u32, line.len() as u32)))
}

/// What a line looks like as the start of a message.
pub fn classify_start(line: &[u8]) -> Option<StartKind> {
    if parse_status_line(line).is_some() {
        Some(StartKind::Response)
    } else if parse_request_line(line).is_some() {
        Some(StartKind::Request)
    } else {
        None
    }
}

/// Whether the bytes so far could still become a message start of `kind` (used to decide
/// early that a stream is not HTTP without waiting for a whole line).
pub fn could_start(prefix: &[u8], kind: Option<StartKind>) -> bool {
    let p = &prefix[..prefix.len().min(MAX_METHOD + 1)];
    let resp = {
        let n = p.len().min(5);
        p[..n].eq_ignore_ascii_case(&b"HTTP/"[..n])
    };
    let req = {
        let tok_end = p.iter().position(|b| !is_tchar(*b)).unwrap_or(p.len());
        tok_end > 0
            && (tok_end == p.len()
                || p[tok_end] == b' '
                || p[tok_end] == b'\r'
                || p[tok_end] == b'\n')
    };
    match kind {
        Some(StartKind::Response) => resp,
        Some(StartKind::Request) => req,
        None => resp || req,
    }
}

/// Finds the next plausible message start of `kind` (or any kind) at a line start in
/// `buf`, starting the search at `from`. Returns its offset and kind.
pub fn find_start(buf: &[u8], from: usize, kind: Option<StartKind>) -> Option<(usize, StartKind)> {
    let mut at = from;
    loop {
        if at >= buf.len() {
            return None;
        }
        if at == 0 || buf[at - 1] == b'\n' {
            if let Some(line) = first_line(&buf[at..]) {
                if let Some(k) = classify_start(line) {
                    if kind.is_none_or(|want| want == k) {
                        return Some((at, k));
                    }
                }
            }
        }
        at = match memchr::memchr(b'\n', &buf[at..]) {
            Some(i) => at + i + 1,
            None => return None,
        };
    }
}

/// Parses a complete head (`raw` ends with the empty line). `kind` says which start line
/// is expected. Returns the head and whether the header block needed the lenient parser.
pub fn parse_head(raw: Vec<u8>, kind: StartKind) -> Option<(Head, bool)> {
    let line_end = memchr::memchr(b'\n', &raw)?;
    let line = trim_cr(&raw[..line_end]);
    let start = match kind {
        StartKind::Request => {
            let (method, target, version) = parse_request_line(line)?;
            StartLine::Request {
                method,
                target,
                version,
            }
        }
        StartKind::Response => {
            let (version, status, reason) = parse_status_line(line)?;
            StartLine::Response {
                version,
                status,
                reason,
            }
        }
    };
    let block_start = line_end + 1;
    let (headers, lenient) = parse_fields(&raw, block_start);
    let mut raw = raw;
    // RFC 9110 section 5.5: NUL in a field value is replaced with SP. Heads almost never
    // hold one, so one vectorised search of the block comes first (a byte loop over every
    // value took 4 % of `analyze`'s instructions on HTTP/1 traffic).
    let has_nul = raw
        .get(block_start..)
        .is_some_and(|block| memchr::memchr(0, block).is_some());
    for (_, (v0, v1)) in headers.iter().filter(|_| has_nul) {
        for b in &mut raw[*v0 as usize..*v1 as usize] {
            if *b == 0 {
                *b = b' ';
            }
        }
    }
    Some((Head::new(raw, start, headers), lenient))
}

/// Header fields of `raw[from..]` as spans into `raw`.
fn parse_fields(raw: &[u8], from: usize) -> (Vec<(Span, Span)>, bool) {
    let block = &raw[from..];
    let base = raw.as_ptr() as usize;
    let spans = |fields: &[httparse::Header<'_>]| -> Vec<(Span, Span)> {
        let span = |s: &[u8]| {
            let at = s.as_ptr() as usize - base;
            (at as u32, (at + s.len()) as u32)
        };
        fields
            .iter()
            .map(|h| (span(h.name.as_bytes()), span(h.value)))
            .collect()
    };
    // Most heads have few fields: try a small array first (cheap to set up), then a
    // large one.
    let mut small = [httparse::EMPTY_HEADER; 24];
    match httparse::parse_headers(block, &mut small) {
        Ok(httparse::Status::Complete((_, fields))) => return (spans(fields), false),
        Err(httparse::Error::TooManyHeaders) => {
            let mut large = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            if let Ok(httparse::Status::Complete((_, fields))) =
                httparse::parse_headers(block, &mut large)
            {
                return (spans(fields), false);
            }
        }
        _ => {}
    }
    (lenient_fields(raw, from), true)
}

/// Tolerant header splitting: `name: value` lines, obsolete folding appended to the
/// previous value's span only when contiguous, junk lines skipped.
fn lenient_fields(raw: &[u8], from: usize) -> Vec<(Span, Span)> {
    let mut out: Vec<(Span, Span)> = Vec::new();
    let mut at = from;
    while at < raw.len() && out.len() < MAX_HEADERS {
        let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |i| at + i);
        let line = trim_cr(&raw[at..end]);
        if line.is_empty() {
            break;
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            let mut n1 = colon;
            while n1 > 0 && (line[n1 - 1] == b' ' || line[n1 - 1] == b'\t') {
                n1 -= 1;
            }
            let mut v0 = colon + 1;
            while v0 < line.len() && (line[v0] == b' ' || line[v0] == b'\t') {
                v0 += 1;
            }
            let mut v1 = line.len();
            while v1 > v0 && (line[v1 - 1] == b' ' || line[v1 - 1] == b'\t') {
                v1 -= 1;
            }
            if n1 > 0 && !(line[0] == b' ' || line[0] == b'\t') {
                out.push((
                    (at as u32, (at + n1) as u32),
                    ((at + v0) as u32, (at + v1) as u32),
                ));
            }
        }
        at = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> Option<(String, String, String)> {
        let l = line.as_bytes();
        parse_request_line(l).map(|(m, t, v)| {
            let s = |s: Span| String::from_utf8_lossy(&l[s.0 as usize..s.1 as usize]).into_owned();
            (s(m), s(t), s(v))
        })
    }

    #[test]
    fn request_lines_as_tshark_reads_them() {
        let t = |a: &str, b: &str, c: &str| Some((a.into(), b.into(), c.into()));
        assert_eq!(req("GET /a?b=1 HTTP/1.1"), t("GET", "/a?b=1", "HTTP/1.1"));
        assert_eq!(req("OPTIONS * HTTP/1.1"), t("OPTIONS", "*", "HTTP/1.1"));
        assert_eq!(req("OPTIONS HTTP/1.1"), t("OPTIONS", "HTTP/1.1", ""));
        assert_eq!(req("OPTIONS"), t("OPTIONS", "", ""));
        assert_eq!(req("GET / HTTP/1."), t("GET", "/", "HTTP/1."));
        assert_eq!(req("CCM_POST / HTTP/1."), t("CCM_POST", "/", "HTTP/1."));
        assert_eq!(req("CCM_POST /HTTP/1.1"), t("CCM_POST", "/HTTP/1.1", ""));
        assert_eq!(req("220 mail.example.com ESMTP"), None);
        assert!(partial_request_line(b"GET /images/sf.net_box.gif HTT"));
        assert!(!partial_request_line(b"GET /images/sf.ne"));
        assert_eq!(req("GET/ HTTP/1.1"), None);
        assert_eq!(req("OPTIONSHTTP/1.1"), None);
        assert_eq!(req("\u{c3}\u{82} / HTTP/1.1"), None);
        assert_eq!(req("HELLO world"), None);
        assert_eq!(req(""), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK").map(|s| s.1),
            Some(200)
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 404").map(|s| s.1), Some(404));
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1"), None);
    }

    /// The line-by-line search `head_end` replaced, as the reference.
    fn head_end_by_lines(buf: &[u8]) -> Option<usize> {
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
            let at = from + i;
            match buf.get(at + 1) {
                Some(b'\n') => return Some(at + 2),
                Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
                Some(_) => from = at + 1,
                None => return None,
            }
        }
        None
    }

    #[test]
    fn head_end_agrees_with_a_line_by_line_search_on_mixed_line_ends() {
        // Every buffer of up to 9 bytes over `a`, CR and LF.
        for len in 0..=9u32 {
            for mut n in 0..3u32.pow(len) {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = [b'a', b'\r', b'\n'][(n % 3) as usize];
                        n /= 3;
                        b
                    })
                    .collect();
                assert_eq!(head_end(&buf), head_end_by_lines(&buf), "{buf:?}");
            }
        }
    }

    #[test]
    fn head_end_with_crlf_and_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nbody"), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn heads_parse_with_strict_and_lenient_fields() {
        let raw = b"GET /x HTTP/1.1\r\nHost: a.example\r\nX-A:  1 \r\n\r\n".to_vec();
        let (h, lenient) = parse_head(raw, StartKind::Request).expect("head");
        assert!(!lenient);
        assert_eq!(h.header("host"), Some(&b"a.example"[..]));
        assert_eq!(h.header("x-a"), Some(&b"1"[..]));
        let raw = b"HTTP/1.1 200 OK\r\nbad line\r\nContent Type : x\r\nHost: h\r\n\r\n".to_vec();
        let (h, lenient) = parse_head(raw, StartKind::Response).expect("head");
        assert!(lenient);
        assert_eq!(h.status(), Some(200));
        assert_eq!(h.header("host"), Some(&b"h"[..]));
    }

    #[test]
    fn nul_in_a_field_value_becomes_a_space_and_only_there() {
        let raw = b"GET /a HTTP/1.1\r\nX-A: a\0b\r\nHost: h\r\n\r\n".to_vec();
        let (h, _) = parse_head(raw, StartKind::Request).expect("head");
        assert_eq!(h.header("x-a"), Some(&b"a b"[..]));
        assert_eq!(h.header("host"), Some(&b"h"[..]));
        let raw = b"GET /a HTTP/1.1\r\nX-A: ab\r\n\r\n".to_vec();
        let (h, _) = parse_head(raw, StartKind::Request).expect("head");
        assert_eq!(h.header("x-a"), Some(&b"ab"[..]));
    }

    #[test]
    fn finds_message_starts_at_line_starts() {
        let buf = b"garbage\r\nmore HTTP/1.1 200 OK\r\nHTTP/1.1 204 No Content\r\n";
        assert_eq!(find_start(buf, 0, None), Some((31, StartKind::Response)));
        assert_eq!(
            find_start(b"x\nGET / HTTP/1.1\n", 0, Some(StartKind::Request)),
            Some((2, StartKind::Request))
        );
        assert!(could_start(b"GE", None));
        assert!(could_start(b"HTT", Some(StartKind::Response)));
        assert!(!could_start(b"\x16\x03\x01", None));
    }
}
