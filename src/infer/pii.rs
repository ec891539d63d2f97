/*!
Sensitive data detectors: which strings seen in traffic (URL path segments, query values,
header values, JSON string values, form fields) are personal data or secrets, and how to
keep a hint of them without keeping them.

# Detectors

Every detector is a hand-written scanner over the bytes of the text. Everything it matches
is ASCII, so a match begins and ends on ASCII bytes and slicing the `str` there is always at
a char boundary, whatever multi-byte characters surround it. One pass walks the text word
by word (a word is a run of `[A-Za-z0-9_]`) and tries only the detectors whose first byte
fits where a word or a `+`, `(` or `-` begins; e-mail addresses are found apart from
`memchr` hits on `@`. The no-match path allocates nothing, and only the first
[`MAX_SCAN`] bytes are scanned (a match must begin there).

What the detectors accept, and the false positives each rule is there to avoid:

- **Email**: `local@domain.tld`, local part `[A-Za-z0-9._+-]` (at most 64, no leading,
  trailing or doubled dot), at least two domain labels and an alphabetic TLD of 2+ letters.
  Not `icon@2x.png` (file extensions are not TLDs), not `user:pass@host` after `://` (URL
  user info), not `git@github.com:org/repo` (SSH remotes).
- **Phone**: `+` then 8–15 digits in groups joined by single spaces, dashes, dots or
  parentheses (`+1 (555) 123-4567`, `+44 20 7946 0958`); or North-American `(555) 123-4567`,
  `555-123-4567`, `555.123.4567`, optionally after `1-`, with an area code that does not
  begin with 0 or 1. A phone is a whole token: never inside a longer run of digits, letters
  or dash/dot-joined numbers, so dates, versions, IPv4 addresses, timestamps and decimals
  (`+48.8566140`, one dot) are not phones. Bare digits count only in a field named like a
  phone ([`scan_field`]).
- **CardNumber**: 13–19 digits, contiguous, or grouped by single spaces or dashes in the
  printed layouts (fours with a shorter last group, or Amex/Diners 4-6-5 and 4-6-4); Luhn
  valid *and* in an issuer range with that issuer's lengths (Visa, Mastercard, Amex,
  Discover, JCB, Diners, UnionPay). Maestro (50, 56–69, 12–19 digits) is left out: it would
  make nearly every Luhn-valid run starting with 5 or 6 a card. Never part of a longer digit
  run or a decimal number.
- **Ssn**: `AAA-GG-SSSS` as a whole token, area not 000, 666 or 900–999, group not 00,
  serial not 0000.
- **Iban**: two uppercase letters, two check digits (02–98), then the BBAN, contiguous or in
  space-separated groups of four; the total length must be the length the SWIFT registry
  gives for that country (countries not in the table are not IBANs: without a known length,
  one in 97 upper-case hex or id tokens would pass the checksum), and mod 97 must be 1.
- **Jwt**: `header.payload.signature` in base64url, the signature possibly empty (`alg:
  none`), the header starting `eyJ` and decoding to a JSON object with an `"alg"` key. A JWE
  (five parts) or a token inside a longer base64url run is not reported. [`jwt_parts`] and
  [`base64url_decode`] are the same checks, for the authentication inference.
- **AwsAccessKey**: `AKIA`/`ASIA`/`ABIA`/`ACCA` and 16 `[A-Z0-9]`, as a whole word.
- **GithubToken**: `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 36 alphanumerics, or `github_pat_` +
  82 `[A-Za-z0-9_]`, as a whole word.
- **SlackToken**: `xoxb-`/`xoxa-`/`xoxp-`/`xoxr-`/`xoxs-` then digit/letter groups joined by
  dashes (10+ characters, the first a digit), and `hooks.slack.com/services/T…/B…/…` webhook
  URLs.
- **StripeKey**: `sk_live_`, `rk_live_`, `sk_test_`, `rk_test_` + 24+ alphanumerics.
  Publishable `pk_` keys are meant to be public and are not reported.
- **PrivateKey**: a PEM `-----BEGIN [RSA |EC |DSA |OPENSSH |ENCRYPTED ]PRIVATE KEY-----`
  header followed by a base64 body (16+ characters; raw or JSON-escaped line breaks), up to
  its footer. A header alone (documentation, an error message) is not a key.
- **Password**, **AwsSecretKey**, **DateOfBirth**, and SSNs or phones as bare digits: only
  from a field's name, see [`scan_field`].

# Masks

The inventory must never hold the data it warns about (DESIGN.md, "the sensor is not a
leak"), yet a finding needs enough of a hint for a human to recognise it. [`mask`] keeps
only what is public or needed to tell findings apart: a token's documented prefix (`ghp_`,
`sk_live_`, `AKIA`, `eyJ`, the PEM header), an e-mail's first letter and TLD, the last four
digits of a card (what PCI DSS allows to display), the last two digits of a phone, SSN or
IBAN and the IBAN's country. Never more than four characters of the value besides those
prefixes, so a mask cannot be reversed, and never the value itself.
*/

use serde::{Deserialize, Serialize};

/// Only the first 64 KiB of a text are scanned: inference samples bodies, and a finding
/// that exists at all nearly always shows up early. Bounds the cost per string.
pub const MAX_SCAN: usize = 64 * 1024;

/// The shortest text any detector of [`scan_text`] matches: an e-mail address
/// (`a@b.cc`); phones, SSNs, cards and tokens are longer. Shorter texts (most path
/// segments: `api`, `v1`, `users`) are settled without scanning.
pub const MIN_MATCH: usize = 6;

/// [`base64url_decode`] refuses longer inputs: JWT headers and claims are a few hundred
/// bytes, and the cap bounds what a hostile token can make us allocate.
pub const MAX_BASE64: usize = 16 * 1024;

/// A JWT part longer than this is not considered (same bound as [`MAX_BASE64`]), so the
/// scan past [`MAX_SCAN`] for a token that starts before it stays bounded.
const MAX_JWT_PART: usize = MAX_BASE64;

/// Longest PEM body followed after a private key header (an 8192-bit RSA key is ~6.5 KB).
const MAX_PEM_BODY: usize = 16 * 1024;

/// Only the last 256 bytes of a field name are looked at: the meaningful word is the last.
const MAX_NAME: usize = 256;

/// Kinds of sensitive data. Names (as_str / serde) are part of the output contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number (international `+` form, North-American layout, or by field name).
    Phone,
    /// A payment card number (Luhn-valid, in a known issuer range).
    CardNumber,
    /// A US social security number.
    Ssn,
    /// An international bank account number.
    Iban,
    /// A JSON Web Token (signed or `alg: none`).
    Jwt,
    /// An AWS access key id.
    AwsAccessKey,
    /// An AWS secret access key (known only by its field name).
    AwsSecretKey,
    /// A GitHub personal access, OAuth, app or refresh token.
    GithubToken,
    /// A Slack API token or incoming-webhook URL.
    SlackToken,
    /// A Stripe secret or restricted key.
    StripeKey,
    /// A PEM private key.
    PrivateKey,
    /// A password or client secret (known only by its field name).
    Password,
    /// A date of birth (known only by its field name).
    DateOfBirth,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 14] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CardNumber,
        PiiKind::Ssn,
        PiiKind::Iban,
        PiiKind::Jwt,
        PiiKind::AwsAccessKey,
        PiiKind::AwsSecretKey,
        PiiKind::GithubToken,
        PiiKind::SlackToken,
        PiiKind::StripeKey,
        PiiKind::PrivateKey,
        PiiKind::Password,
        PiiKind::DateOfBirth,
    ];

    /// The kind's name in outputs and the inventory (the same as its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CardNumber => "card_number",
            PiiKind::Ssn => "ssn",
            PiiKind::Iban => "iban",
            PiiKind::Jwt => "jwt",
            PiiKind::AwsAccessKey => "aws_access_key",
            PiiKind::AwsSecretKey => "aws_secret_key",
            PiiKind::GithubToken => "github_token",
            PiiKind::SlackToken => "slack_token",
            PiiKind::StripeKey => "stripe_key",
            PiiKind::PrivateKey => "private_key",
            PiiKind::Password => "password",
            PiiKind::DateOfBirth => "date_of_birth",
        }
    }

    /// The kind named `s` (as written by [`PiiKind::as_str`]), for reading the inventory
    /// and baseline files back.
    pub fn from_name(s: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the kind is a credential (key, token, password), as opposed to personal
    /// data: a leaked credential is an incident by itself, personal data a privacy finding.
    pub fn is_secret(self) -> bool {
        match self {
            PiiKind::Jwt
            | PiiKind::AwsAccessKey
            | PiiKind::AwsSecretKey
            | PiiKind::GithubToken
            | PiiKind::SlackToken
            | PiiKind::StripeKey
            | PiiKind::PrivateKey
            | PiiKind::Password => true,
            PiiKind::Email
            | PiiKind::Phone
            | PiiKind::CardNumber
            | PiiKind::Ssn
            | PiiKind::Iban
            | PiiKind::DateOfBirth => false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Byte helpers

const fn word_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_';
        i += 1;
    }
    t
}

/// `[A-Za-z0-9_]`: the bytes a word is made of.
static WORD: [bool; 256] = word_table();

/// [`CLASS`] bits: a word byte; a word byte a detector can start with (digits, capitals,
/// and `e` `g` `h` `r` `s` `x` for `eyJ`, `ghp_`, `hooks.`, `rk_`, `sk_`, `xoxb-`); the
/// other bytes a detector can start with.
const C_WORD: u8 = 1;
const C_START: u8 = 2;
const C_PUNCT: u8 = 4;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[i] = C_WORD;
        }
        if c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || matches!(c, b'e' | b'g' | b'h' | b'r' | b's' | b'x')
        {
            t[i] |= C_START;
        }
        if matches!(c, b'+' | b'(' | b'-') {
            t[i] = C_PUNCT;
        }
        i += 1;
    }
    t
}

/// Byte classes for the scan loop.
static CLASS: [u8; 256] = class_table();

const INVALID: u8 = 0xff;

const fn base64url_table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
}

/// base64url digit values, [`INVALID`] for other bytes.
static BASE64URL: [u8; 256] = base64url_table();

fn is_word(c: u8) -> bool {
    WORD[c as usize]
}

fn is_b64url(c: u8) -> bool {
    BASE64URL[c as usize] != INVALID
}

fn is_upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// The byte at `i`, or 0 (neither a word byte nor a separator) past the end.
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte before `i`, or 0 at the start.
fn before(b: &[u8], i: usize) -> u8 {
    i.checked_sub(1).map_or(0, |j| at(b, j))
}

/// The end of the run of bytes matching `f` from `s`, looking at no more than `max + 1`
/// bytes (so a run longer than `max` is seen as such without walking it all).
fn run_end(b: &[u8], s: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
    let stop = b.len().min(s.saturating_add(max).saturating_add(1));
    let mut i = s;
    while i < stop && f(b[i]) {
        i += 1;
    }
    i
}

fn digits_end(b: &[u8], s: usize, max: usize) -> usize {
    run_end(b, s, max, |c| c.is_ascii_digit())
}

fn word_end(b: &[u8], s: usize, max: usize) -> usize {
    run_end(b, s, max, is_word)
}

fn all(b: &[u8], s: usize, e: usize, f: impl Fn(u8) -> bool) -> bool {
    b.get(s..e).is_some_and(|r| r.iter().all(|&c| f(c)))
}

fn starts_with(b: &[u8], s: usize, p: &[u8]) -> bool {
    b.get(s..).is_some_and(|r| r.starts_with(p))
}

/// The value of the digits in `b[s..e]` (at most 9 of them).
fn number(b: &[u8], s: usize, e: usize) -> u32 {
    b.get(s..e)
        .unwrap_or_default()
        .iter()
        .fold(0, |n, &c| n * 10 + u32::from(c.wrapping_sub(b'0')))
}

/// Whether a number-like token may begin at `s`: not inside a word, not after a dot
/// (decimals, versions, addresses), not after a dash that follows a digit (dates, ids).
fn number_starts(b: &[u8], s: usize) -> bool {
    let p = before(b, s);
    !(is_word(p) || p == b'.' || (p == b'-' && before(b, s - 1).is_ascii_digit()))
}

/// Whether a number-like token may end at `e`: not followed by a word byte, nor by a dot
/// or dash and a digit (a longer dotted or dashed number).
fn number_ends(b: &[u8], e: usize) -> bool {
    let n = at(b, e);
    !(is_word(n) || ((n == b'.' || n == b'-') && at(b, e + 1).is_ascii_digit()))
}

// ---------------------------------------------------------------------------------------
// Scanning

/// Scans free text; calls `out(kind, matched_substring)` for each finding
/// (`matched_substring` borrows `text`).
///
/// Findings do not overlap, except that an e-mail address may contain another finding
/// (`+15551234567@sms.example.com`). They come grouped (e-mail addresses last), not in
/// text order. Only matches that begin in the first
/// [`MAX_SCAN`] bytes are reported. Text is taken as it is: percent-encoded or
/// JSON-escaped input should be decoded first.
pub fn scan_text<'a>(text: &'a str, out: &mut dyn FnMut(PiiKind, &'a str)) {
    let b = text.as_bytes();
    if b.len() < MIN_MATCH {
        return;
    }
    let limit = b.len().min(MAX_SCAN);
    let mut emit = |kind: PiiKind, s: usize, e: usize| {
        if let Some(m) = text.get(s..e) {
            out(kind, m);
        }
    };
    // Word by word: a word is tried once at its start (if a detector can start with its
    // first byte) and then skipped in a tight loop; between words only `+`, `(` and `-`
    // are tried.
    let mut i = 0;
    while i < limit {
        let c = CLASS[usize::from(b[i])];
        let found = if c & C_START != 0 {
            word_at(b, i)
        } else if c & C_PUNCT != 0 {
            punct_at(b, i)
        } else {
            None
        };
        if let Some((kind, e)) = found {
            emit(kind, i, e);
            // Matches end at a word's end by construction; were one not to, the rest of
            // its word is still no word start.
            i = e.max(i + 1);
            if is_word(before(b, i)) {
                i = word_end(b, i, limit.saturating_sub(i));
            }
            continue;
        }
        i += 1;
        if c & C_WORD != 0 {
            i = word_end(b, i, limit.saturating_sub(i));
        }
    }
    emails(b, limit, &mut emit);
}

/// Detectors that begin at `+`, `(` or `-`.
fn punct_at(b: &[u8], s: usize) -> Option<(PiiKind, usize)> {
    match at(b, s) {
        b'+' => phone_e164(b, s).map(|e| (PiiKind::Phone, e)),
        b'(' => phone_paren(b, s).map(|e| (PiiKind::Phone, e)),
        b'-' => private_key(b, s).map(|e| (PiiKind::PrivateKey, e)),
        _ => None,
    }
}

/// Detectors that begin at the start of a word, chosen by its first byte.
fn word_at(b: &[u8], s: usize) -> Option<(PiiKind, usize)> {
    match at(b, s) {
        b'0'..=b'9' => {
            if !number_starts(b, s) {
                return None;
            }
            card(b, s)
                .map(|e| (PiiKind::CardNumber, e))
                .or_else(|| ssn(b, s).map(|e| (PiiKind::Ssn, e)))
                .or_else(|| phone_nanp(b, s).map(|e| (PiiKind::Phone, e)))
        }
        b'A'..=b'Z' => aws_access_key(b, s)
            .map(|e| (PiiKind::AwsAccessKey, e))
            .or_else(|| iban(b, s).map(|e| (PiiKind::Iban, e))),
        b'e' => jwt(b, s).map(|(_, _, e)| (PiiKind::Jwt, e)),
        b'g' => github(b, s).map(|e| (PiiKind::GithubToken, e)),
        b's' | b'r' => stripe(b, s).map(|e| (PiiKind::StripeKey, e)),
        b'x' => slack_token(b, s).map(|e| (PiiKind::SlackToken, e)),
        b'h' => slack_webhook(b, s).map(|e| (PiiKind::SlackToken, e)),
        _ => None,
    }
}

// --- cards ------------------------------------------------------------------------------

/// The longest card number (ISO/IEC 7812).
const CARD_MAX: usize = 19;
const CARD_MIN: usize = 13;

fn card(b: &[u8], s: usize) -> Option<usize> {
    let e = digits_end(b, s, CARD_MAX);
    let n = e - s;
    let sep = at(b, e);
    if n == 4 && (sep == b' ' || sep == b'-') && at(b, e + 1).is_ascii_digit() {
        return card_grouped(b, s, sep);
    }
    if !(CARD_MIN..=CARD_MAX).contains(&n) || !number_ends(b, e) {
        return None;
    }
    let digits = b.get(s..e)?;
    card_valid(digits).then_some(e)
}

/// Grouped card numbers, `4242 4242 4242 4242` or `3782-822463-10005`. With dashes the
/// whole dashed token must be the card; with spaces the longest run of leading groups that
/// is a valid card is taken (`4242 4242 4242 4242 12/34` is a card and an expiry).
fn card_grouped(b: &[u8], s: usize, sep: u8) -> Option<usize> {
    const MAX_GROUPS: usize = 6;
    let mut lens = [0usize; MAX_GROUPS];
    let mut ends = [0usize; MAX_GROUPS];
    let mut k = 0;
    let mut pos = s;
    let mut clean = true;
    // The caller saw four digits and a separator before a digit, so one group at least.
    loop {
        let e = digits_end(b, pos, 7);
        let len = e - pos;
        if len == 0 || len > 6 || is_word(at(b, e)) {
            clean = false;
            break;
        }
        lens[k] = len;
        ends[k] = e;
        k += 1;
        if at(b, e) != sep || !at(b, e + 1).is_ascii_digit() {
            break;
        }
        if k == MAX_GROUPS {
            clean = false;
            break;
        }
        pos = e + 1;
    }
    let take = |kk: usize| -> Option<usize> {
        let lens = &lens[..kk];
        let total: usize = lens.iter().sum();
        if !(CARD_MIN..=CARD_MAX).contains(&total) || !card_layout(lens) {
            return None;
        }
        let mut digits = [0u8; CARD_MAX];
        let mut n = 0;
        for (len, end) in lens.iter().zip(&ends) {
            for &c in b.get(end - len..*end)? {
                *digits.get_mut(n)? = c;
                n += 1;
            }
        }
        card_valid(&digits[..n]).then_some(ends[kk - 1])
    };
    if sep == b'-' {
        if !clean || !number_ends(b, ends[k - 1]) {
            return None;
        }
        return take(k);
    }
    // Spaces: the last group read must end cleanly to count; earlier ones are followed by
    // a space and another group, which is fine.
    let last_ok = clean && number_ends(b, ends[k - 1]);
    (2..=k).rev().filter(|&kk| kk < k || last_ok).find_map(take)
}

/// The printed layouts: fours with a shorter or equal last group, or 4-6-5 (Amex) and
/// 4-6-4 (Diners).
fn card_layout(lens: &[usize]) -> bool {
    match lens.split_last() {
        Some((&last, init)) if !init.is_empty() && init.iter().all(|&l| l == 4) => {
            (1..=4).contains(&last)
        }
        _ => lens == [4, 6, 5] || lens == [4, 6, 4],
    }
}

fn card_valid(digits: &[u8]) -> bool {
    card_issuer(digits) && luhn(digits)
}

/// Issuer prefix ranges and the lengths each issuer uses.
fn card_issuer(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| number(d, 0, k);
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let visa = d.first() == Some(&b'4') && matches!(n, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16;
    let amex = (p2 == 34 || p2 == 37) && n == 15;
    let long = (16..=19).contains(&n);
    let discover = (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && long;
    let jcb = (3528..=3589).contains(&p4) && long;
    let diners = ((300..=305).contains(&p3) || p2 == 36 || p2 == 38) && (14..=19).contains(&n);
    let unionpay = p2 == 62 && long;
    visa || mastercard || amex || discover || jcb || diners || unionpay
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &c) in digits.iter().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

// --- SSN --------------------------------------------------------------------------------

fn ssn(b: &[u8], s: usize) -> Option<usize> {
    let digit = |i: usize| at(b, s + i).is_ascii_digit();
    let shape = (0..3).all(digit)
        && at(b, s + 3) == b'-'
        && (4..6).all(digit)
        && at(b, s + 6) == b'-'
        && (7..11).all(digit);
    if !shape || !number_ends(b, s + 11) {
        return None;
    }
    ssn_valid(
        number(b, s, s + 3),
        number(b, s + 4, s + 6),
        number(b, s + 7, s + 11),
    )
    .then_some(s + 11)
}

/// SSA rules: area 000, 666 and 900–999 are never issued, nor group 00 or serial 0000.
fn ssn_valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

// --- phones -----------------------------------------------------------------------------

/// `+` and 8–15 digits (E.164 allows 15) in groups.
fn phone_e164(b: &[u8], s: usize) -> Option<usize> {
    if is_word(before(b, s)) || !matches!(at(b, s + 1), b'1'..=b'9') {
        return None;
    }
    let mut p = s + 1;
    let mut end = p;
    let mut digits = 0;
    let mut lens = [0usize; 4];
    let mut groups = 0;
    let mut dots = 0;
    let mut pending_dot = false;
    loop {
        let paren = at(b, p) == b'(';
        let q = p + usize::from(paren);
        let e = digits_end(b, q, 15);
        let len = e - q;
        if len == 0 || (paren && at(b, e) != b')') {
            break;
        }
        digits += len;
        if digits > 15 {
            return None;
        }
        if let Some(l) = lens.get_mut(groups) {
            *l = len;
        }
        groups += 1;
        dots += usize::from(pending_dot);
        end = e + usize::from(paren);
        p = end;
        let c = at(b, p);
        let next = at(b, p + 1);
        pending_dot = false;
        if matches!(c, b' ' | b'-' | b'.') && (next.is_ascii_digit() || next == b'(') {
            pending_dot = c == b'.';
            p += 1;
        } else if !(c == b'(' || (paren && c.is_ascii_digit())) {
            break;
        }
    }
    let date = groups == 3 && lens[..3] == [4, 2, 2];
    let ipv4 = groups == 4 && dots == 3 && lens.iter().all(|&l| l <= 3);
    let ok = (8..=15).contains(&digits) && dots != 1 && !date && !ipv4 && number_ends(b, end);
    ok.then_some(end)
}

/// `555-123-4567`, `555.123.4567`, `1-555-123-4567`.
fn phone_nanp(b: &[u8], s: usize) -> Option<usize> {
    let mut p = s;
    if at(b, p) == b'1' && matches!(at(b, p + 1), b'-' | b'.') && at(b, p + 2).is_ascii_digit() {
        p += 2;
    }
    let sep = at(b, p + 3);
    if !matches!(sep, b'-' | b'.') || (p > s && at(b, s + 1) != sep) {
        return None;
    }
    let ok = nanp_area(b, p)
        && at(b, p + 3) == sep
        && all(b, p + 4, p + 7, |c| c.is_ascii_digit())
        && at(b, p + 7) == sep
        && all(b, p + 8, p + 12, |c| c.is_ascii_digit())
        && number_ends(b, p + 12);
    ok.then_some(p + 12)
}

/// `(555) 123-4567`, `(555)123-4567`, `(555) 123 4567`, `(555) 123.4567`.
fn phone_paren(b: &[u8], s: usize) -> Option<usize> {
    if is_word(before(b, s)) || !nanp_area(b, s + 1) || at(b, s + 4) != b')' {
        return None;
    }
    let p = s + 5 + usize::from(at(b, s + 5) == b' ');
    let ok = all(b, p, p + 3, |c| c.is_ascii_digit())
        && matches!(at(b, p + 3), b'-' | b'.' | b' ')
        && all(b, p + 4, p + 8, |c| c.is_ascii_digit())
        && number_ends(b, p + 8);
    ok.then_some(p + 8)
}

/// A North-American area code: three digits, the first 2–9.
fn nanp_area(b: &[u8], s: usize) -> bool {
    matches!(at(b, s), b'2'..=b'9') && all(b, s + 1, s + 3, |c| c.is_ascii_digit())
}

// --- IBAN -------------------------------------------------------------------------------

/// IBAN lengths from the SWIFT IBAN registry. Territories (Åland, Réunion, Jersey...) use
/// their parent's code.
#[rustfmt::skip]
const IBAN_LENGTHS: &[([u8; 2], u8)] = &[
    (*b"AD", 24), (*b"AE", 23), (*b"AL", 28), (*b"AT", 20), (*b"AZ", 28), (*b"BA", 20),
    (*b"BE", 16), (*b"BG", 22), (*b"BH", 22), (*b"BI", 27), (*b"BR", 29), (*b"BY", 28),
    (*b"CH", 21), (*b"CR", 22), (*b"CY", 28), (*b"CZ", 24), (*b"DE", 22), (*b"DJ", 27),
    (*b"DK", 18), (*b"DO", 28), (*b"EE", 20), (*b"EG", 29), (*b"ES", 24), (*b"FI", 18),
    (*b"FK", 18), (*b"FO", 18), (*b"FR", 27), (*b"GB", 22), (*b"GE", 22), (*b"GI", 23),
    (*b"GL", 18), (*b"GR", 27), (*b"GT", 28), (*b"HN", 28), (*b"HR", 21), (*b"HU", 28),
    (*b"IE", 22), (*b"IL", 23), (*b"IQ", 23), (*b"IS", 26), (*b"IT", 27), (*b"JO", 30),
    (*b"KW", 30), (*b"KZ", 20), (*b"LB", 28), (*b"LC", 32), (*b"LI", 21), (*b"LT", 20),
    (*b"LU", 20), (*b"LV", 21), (*b"LY", 25), (*b"MC", 27), (*b"MD", 24), (*b"ME", 22),
    (*b"MK", 19), (*b"MN", 20), (*b"MR", 27), (*b"MT", 31), (*b"MU", 30), (*b"NI", 28),
    (*b"NL", 18), (*b"NO", 15), (*b"OM", 23), (*b"PK", 24), (*b"PL", 28), (*b"PS", 29),
    (*b"PT", 25), (*b"QA", 29), (*b"RO", 24), (*b"RS", 22), (*b"RU", 33), (*b"SA", 24),
    (*b"SC", 31), (*b"SD", 18), (*b"SE", 24), (*b"SI", 19), (*b"SK", 24), (*b"SM", 27),
    (*b"SO", 23), (*b"ST", 25), (*b"SV", 28), (*b"TL", 23), (*b"TN", 24), (*b"TR", 26),
    (*b"UA", 29), (*b"VA", 22), (*b"VG", 24), (*b"XK", 20), (*b"YE", 30),
];

/// The longest IBAN (ISO 13616).
const IBAN_MAX: usize = 34;

fn iban(b: &[u8], s: usize) -> Option<usize> {
    let cc = [at(b, s), at(b, s + 1)];
    if !cc[0].is_ascii_uppercase()
        || !cc[1].is_ascii_uppercase()
        || !all(b, s + 2, s + 4, |c| c.is_ascii_digit())
    {
        return None;
    }
    let len = usize::from(IBAN_LENGTHS.iter().find(|(c, _)| *c == cc)?.1);
    let mut buf = [0u8; IBAN_MAX];
    let w = word_end(b, s, IBAN_MAX);
    let end = if w - s == len && all(b, s, w, is_upper_alnum) {
        buf.get_mut(..len)?.copy_from_slice(b.get(s..w)?);
        w
    } else if w - s == 4 && at(b, w) == b' ' {
        // Printed form: groups of four separated by single spaces, the last one shorter.
        buf.get_mut(..4)?.copy_from_slice(b.get(s..w)?);
        let mut n = 4;
        let mut p = w;
        while n < len {
            let want = (len - n).min(4);
            let g = p + 1;
            let ge = word_end(b, g, 4);
            if at(b, p) != b' ' || ge - g != want || !all(b, g, ge, is_upper_alnum) {
                return None;
            }
            buf.get_mut(n..n + want)?.copy_from_slice(b.get(g..ge)?);
            n += want;
            p = ge;
        }
        p
    } else {
        return None;
    };
    iban_valid(buf.get(..len)?).then_some(end)
}

/// Check digits 02–98 and ISO 7064 mod 97-10 over the rearranged IBAN.
fn iban_valid(iban: &[u8]) -> bool {
    let (Some(head), Some(tail)) = (iban.get(..4), iban.get(4..)) else {
        return false;
    };
    if !(2..=98).contains(&number(head, 2, 4)) {
        return false;
    }
    let mut r = 0u32;
    for &c in tail.iter().chain(head) {
        r = match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (r * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    r == 1
}

// --- tokens and keys --------------------------------------------------------------------

const AWS_PREFIXES: [&[u8]; 4] = [b"AKIA", b"ASIA", b"ABIA", b"ACCA"];

fn aws_access_key(b: &[u8], s: usize) -> Option<usize> {
    if !AWS_PREFIXES.iter().any(|p| starts_with(b, s, p)) {
        return None;
    }
    let e = word_end(b, s, 20);
    (e - s == 20 && all(b, s + 4, e, is_upper_alnum)).then_some(e)
}

const GITHUB_PREFIXES: [&[u8]; 5] = [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"];
const GITHUB_PAT: &[u8] = b"github_pat_";

fn github(b: &[u8], s: usize) -> Option<usize> {
    if starts_with(b, s, GITHUB_PAT) {
        let e = word_end(b, s, GITHUB_PAT.len() + 82);
        return (e - s == GITHUB_PAT.len() + 82).then_some(e);
    }
    if !GITHUB_PREFIXES.iter().any(|p| starts_with(b, s, p)) {
        return None;
    }
    let e = word_end(b, s, 40);
    (e - s == 40 && all(b, s + 4, e, |c| c.is_ascii_alphanumeric())).then_some(e)
}

const STRIPE_PREFIXES: [&[u8]; 4] = [b"sk_live_", b"rk_live_", b"sk_test_", b"rk_test_"];
/// Stripe keys run to about a hundred characters; longer words are something else.
const STRIPE_MAX: usize = 255;

fn stripe(b: &[u8], s: usize) -> Option<usize> {
    if !STRIPE_PREFIXES.iter().any(|p| starts_with(b, s, p)) {
        return None;
    }
    let e = word_end(b, s, STRIPE_MAX);
    let body = s + 8;
    let ok =
        e - s <= STRIPE_MAX && e >= body + 24 && all(b, body, e, |c| c.is_ascii_alphanumeric());
    ok.then_some(e)
}

/// Slack tokens are under 100 characters; cap what we walk.
const SLACK_MAX: usize = 255;

fn slack_token(b: &[u8], s: usize) -> Option<usize> {
    if !starts_with(b, s, b"xox")
        || !matches!(at(b, s + 3), b'b' | b'a' | b'p' | b'r' | b's')
        || at(b, s + 4) != b'-'
    {
        return None;
    }
    let body = s + 5;
    let e = run_end(b, body, SLACK_MAX, |c| {
        c.is_ascii_alphanumeric() || c == b'-'
    });
    let part = b.get(body..e)?;
    let ok = part.len() >= 10
        && part.len() <= SLACK_MAX
        && part.first().is_some_and(u8::is_ascii_digit)
        && part.contains(&b'-')
        && part.last() != Some(&b'-')
        && !part.windows(2).any(|w| w == b"--")
        && !is_word(at(b, e));
    ok.then_some(e)
}

const SLACK_HOOK: &[u8] = b"hooks.slack.com/services/";
const HTTPS_SLACK_HOOK: &[u8] = b"https://hooks.slack.com/services/";

fn slack_webhook(b: &[u8], s: usize) -> Option<usize> {
    let mut p = if starts_with(b, s, HTTPS_SLACK_HOOK) {
        s + HTTPS_SLACK_HOOK.len()
    } else if starts_with(b, s, SLACK_HOOK) {
        s + SLACK_HOOK.len()
    } else {
        return None;
    };
    for (lead, min) in [(b'T', 6), (b'B', 6)] {
        let e = run_end(b, p + 1, 64, is_upper_alnum);
        if at(b, p) != lead || e - (p + 1) < min || at(b, e) != b'/' {
            return None;
        }
        p = e + 1;
    }
    let e = run_end(b, p, 64, |c| c.is_ascii_alphanumeric());
    (e - p >= 16 && !is_word(at(b, e))).then_some(e)
}

/// The PEM labels of private keys.
const PEM_LABELS: [&[u8]; 6] = [
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"DSA PRIVATE KEY",
    b"OPENSSH PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
];
const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_DASHES: &[u8] = b"-----";

/// The label and end of a private key PEM header at `s`.
fn pem_header(b: &[u8], s: usize) -> Option<(&'static [u8], usize)> {
    if !starts_with(b, s, PEM_BEGIN) {
        return None;
    }
    let l = s + PEM_BEGIN.len();
    let label = PEM_LABELS
        .into_iter()
        .find(|label| starts_with(b, l, label) && starts_with(b, l + label.len(), PEM_DASHES))?;
    Some((label, l + label.len() + PEM_DASHES.len()))
}

fn private_key(b: &[u8], s: usize) -> Option<usize> {
    let (label, header_end) = pem_header(b, s)?;
    let stop = b.len().min(header_end + MAX_PEM_BODY);
    let mut p = header_end;
    let mut body = 0;
    let mut last = header_end;
    while p < stop {
        let c = b[p];
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') {
            body += 1;
            p += 1;
            last = p;
        } else if c.is_ascii_whitespace() {
            p += 1;
        } else if c == b'\\' && matches!(at(b, p + 1), b'n' | b'r' | b't') {
            // A JSON-escaped line break, when a raw body is scanned.
            p += 2;
        } else if matches!(c, b':' | b',' | b'-') && !starts_with(b, p, PEM_DASHES) {
            // `Proc-Type: 4,ENCRYPTED` and `DEK-Info: AES-128-CBC,...` in legacy PEM.
            p += 1;
            last = p;
        } else {
            break;
        }
    }
    if body < 16 {
        return None;
    }
    if starts_with(b, p, b"-----END ")
        && starts_with(b, p + 9, label)
        && starts_with(b, p + 9 + label.len(), PEM_DASHES)
    {
        return Some(p + 9 + label.len() + PEM_DASHES.len());
    }
    Some(last)
}

// --- JWT --------------------------------------------------------------------------------

/// A JWT at `s`: the ends of its header, payload and signature.
fn jwt(b: &[u8], s: usize) -> Option<(usize, usize, usize)> {
    let p = before(b, s);
    if !starts_with(b, s, b"eyJ") || is_b64url(p) || p == b'.' {
        return None;
    }
    let part = |from: usize| {
        let e = run_end(b, from, MAX_JWT_PART, is_b64url);
        (e - from <= MAX_JWT_PART && (e - from) % 4 != 1).then_some(e)
    };
    let h = part(s)?;
    if at(b, h) != b'.' {
        return None;
    }
    let pl = part(h + 1)?;
    if pl - (h + 1) < 2 || at(b, pl) != b'.' {
        return None;
    }
    let sig = part(pl + 1)?;
    if at(b, sig) == b'.' && is_b64url(at(b, sig + 1)) {
        return None; // five parts: a JWE, or something else
    }
    jwt_header_ok(b.get(s..h)?).then_some((h, pl, sig))
}

/// Decodes base64url `s` (no padding) and passes each byte to `f`; false on a bad digit.
fn b64_each(s: &[u8], mut f: impl FnMut(u8)) -> bool {
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        let v = BASE64URL[c as usize];
        if v == INVALID {
            return false;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            f((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    true
}

/// A JOSE header: decodes to a JSON object (`{` ... `}`, no control bytes) with `"alg"`.
fn jwt_header_ok(part: &[u8]) -> bool {
    let mut window = 0u64;
    let mut alg = false;
    let mut control = false;
    let mut last = 0u8;
    let decoded = b64_each(part, |c| {
        window = (window << 8) | u64::from(c);
        alg |= window & 0xff_ffff_ffff == u64::from_be_bytes(*b"\0\0\0\"alg\"");
        control |= c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r');
        if !c.is_ascii_whitespace() {
            last = c;
        }
    });
    // "eyJ" always decodes to `{"`.
    decoded && alg && !control && last == b'}'
}

/// Splits a JWT into its header, payload and signature (still base64url-encoded), if
/// `token` is exactly one JWT by the rules the detector uses (three parts, header a JSON
/// object with `"alg"`, signature possibly empty). For the authentication inference, which
/// decodes the header and claims with [`base64url_decode`].
pub fn jwt_parts(token: &str) -> Option<(&str, &str, &str)> {
    let (h, p, s) = jwt(token.as_bytes(), 0)?;
    if s != token.len() {
        return None;
    }
    Some((token.get(..h)?, token.get(h + 1..p)?, token.get(p + 1..)?))
}

/// Decodes base64url (RFC 4648 §5), padded or not. `None` on a bad character, an
/// impossible length, or an input over [`MAX_BASE64`] bytes.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > MAX_BASE64 {
        return None;
    }
    let b = s.as_bytes();
    let data = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    let padded = data.len() != b.len();
    if data.len() % 4 == 1 || (padded && b.len() % 4 != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    b64_each(data, |c| out.push(c)).then_some(out)
}

// --- e-mail -----------------------------------------------------------------------------

/// RFC 5321 limits: 64 for the local part, 253 for the domain, 63 per label.
const EMAIL_LOCAL_MAX: usize = 64;
const EMAIL_DOMAIN_MAX: usize = 253;
const EMAIL_LABEL_MAX: usize = 63;

/// File extensions, which follow `@` in asset names (`icon@2x.png`) but are not TLDs.
#[rustfmt::skip]
const FILE_EXTENSIONS: [&[u8]; 24] = [
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"bmp", b"css", b"js", b"mjs",
    b"json", b"html", b"htm", b"xml", b"txt", b"pdf", b"map", b"ts", b"tsx", b"jsx", b"ttf",
    b"mp4", b"mp3",
];

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-')
}

fn emails(b: &[u8], limit: usize, emit: &mut impl FnMut(PiiKind, usize, usize)) {
    let mut done = 0;
    for a in memchr::memchr_iter(b'@', b.get(..limit).unwrap_or_default()) {
        if a < done {
            continue;
        }
        if let Some((s, e)) = email_at(b, a) {
            emit(PiiKind::Email, s, e);
            done = e;
        }
    }
}

/// The e-mail address around the `@` at `a`.
fn email_at(b: &[u8], a: usize) -> Option<(usize, usize)> {
    // Local part, leftwards.
    let mut s = a;
    while s > 0 && a - s <= EMAIL_LOCAL_MAX && is_local(b[s - 1]) {
        s -= 1;
    }
    if a - s > EMAIL_LOCAL_MAX {
        return None;
    }
    while s < a && b[s] == b'.' {
        s += 1;
    }
    let local = b.get(s..a)?;
    if local.is_empty() || local.last() == Some(&b'.') || local.windows(2).any(|w| w == b"..") {
        return None;
    }
    if url_userinfo(b, s) {
        return None;
    }
    // Domain, rightwards.
    let d = a + 1;
    let mut e = run_end(b, d, EMAIL_DOMAIN_MAX, |c| {
        c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
    });
    if e - d > EMAIL_DOMAIN_MAX {
        return None;
    }
    while e > d && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    if is_word(at(b, e)) || (at(b, e) == b':' && is_word(at(b, e + 1))) {
        return None; // `_` glued on, or an SSH remote `git@host:path`
    }
    let domain = b.get(d..e)?;
    let mut labels = 0;
    let mut tld: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        if label.is_empty()
            || label.len() > EMAIL_LABEL_MAX
            || label.first() == Some(&b'-')
            || label.last() == Some(&b'-')
        {
            return None;
        }
        labels += 1;
        tld = label;
    }
    let ok = labels >= 2
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
        && !(tld.len() <= 4 && FILE_EXTENSIONS.iter().any(|x| tld.eq_ignore_ascii_case(x)));
    ok.then_some((s, e))
}

/// Whether the local part starting at `s` is the user info of a URL (`scheme://user@` or
/// `scheme://user:password@`): walking back over the token, `://` comes before any `/`,
/// `?` or `#`.
fn url_userinfo(b: &[u8], s: usize) -> bool {
    let mut i = s;
    let floor = s.saturating_sub(256);
    while i > floor {
        let c = b[i - 1];
        if c == b'/' {
            return i >= 3 && b[i - 2] == b'/' && b[i - 3] == b':';
        }
        if matches!(c, b'?' | b'#' | b'@' | b'"' | b'\'' | b'<' | b'>') || c.is_ascii_whitespace() {
            return false;
        }
        i -= 1;
    }
    false
}

// ---------------------------------------------------------------------------------------
// Fields

/// A named field with its value (JSON key, form field, query parameter name): as
/// [`scan_text`] on the value, plus what is known only by the name:
/// - passwords: names ending in password, passwd, pwd, pass, passphrase, passcode or secret
///   (`client_secret`, `newPassword`, `password_confirmation`), a non-empty value that is
///   not an already masked `****` or a `true`/`false`/`null` literal;
/// - AWS secret keys: `aws_secret_access_key`, `secretAccessKey`, `aws_secret_key` with a
///   40-character `[A-Za-z0-9/+]` value (any other value of such a field is a password);
/// - dates of birth: `dob`, `birth_date`, `birthdate`, `date_of_birth`, `birthday` (also as
///   the end of a longer name) whose value is a date: `YYYY-MM-DD`, `YYYY/MM/DD`,
///   `DD/MM/YYYY`, `MM/DD/YYYY` (and `DD.MM.YYYY`), optionally followed by a time;
/// - SSNs as 9 bare digits when the name says ssn;
/// - phones as bare digits (7–15, optionally `+`, spaces, dashes, dots, parentheses) when
///   the name says phone, mobile, tel, telephone or msisdn (`phoneNumber`, `mobile_no`).
///
/// Names are matched case-insensitively, and `_`, `-`, `.` and camelCase are all word
/// breaks (`dateOfBirth` == `date_of_birth`). Names starting with a flag word (`is`, `has`,
/// `show`, `require`...) are about the thing, not the thing: `has_password` is not one.
pub fn scan_field<'a>(name: &str, value: &'a str, out: &mut dyn FnMut(PiiKind, &'a str)) {
    scan_named(value, || NameInfo::of(name), out);
}

/// What field names say, remembered: the bodies of one endpoint repeat the same few names
/// (every item of an array has them), and reading a name costs more than scanning most
/// values. [`FieldNames::scan_field`] gives what [`scan_field`] gives.
#[derive(Debug, Default)]
pub struct FieldNames<'k> {
    known: std::collections::HashMap<&'k str, NameInfo, foldhash::fast::RandomState>,
}

impl<'k> FieldNames<'k> {
    /// Names remembered at most; past it names are read each time (a body of data-keyed
    /// objects must not grow the cache without bound).
    const MAX: usize = 256;

    /// [`scan_field`], with `name` read once per cache.
    pub fn scan_field<'a>(
        &mut self,
        name: &'k str,
        value: &'a str,
        out: &mut dyn FnMut(PiiKind, &'a str),
    ) {
        scan_named(
            value,
            || match self.known.get(name) {
                Some(info) => *info,
                None => {
                    let info = NameInfo::of(name);
                    if self.known.len() < Self::MAX {
                        self.known.insert(name, info);
                    }
                    info
                }
            },
            out,
        );
    }
}

/// [`scan_field`] with the name's meaning computed only when the value needs it.
fn scan_named<'a>(
    value: &'a str,
    name: impl FnOnce() -> NameInfo,
    out: &mut dyn FnMut(PiiKind, &'a str),
) {
    let mut phone = false;
    let mut ssn = false;
    scan_text(value, &mut |kind, m| {
        phone |= kind == PiiKind::Phone;
        ssn |= kind == PiiKind::Ssn;
        out(kind, m);
    });
    let v = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if v.is_empty() {
        return;
    }
    let name = name();
    if name.aws_secret {
        if v.len() == 40
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+')
        {
            out(PiiKind::AwsSecretKey, v);
        } else if !placeholder(v) {
            out(PiiKind::Password, v);
        }
    } else if name.password && !placeholder(v) {
        out(PiiKind::Password, v);
    }
    if name.dob {
        if let Some(date) = date_prefix(v.as_bytes()).and_then(|n| v.get(..n)) {
            out(PiiKind::DateOfBirth, date);
        }
    }
    if name.ssn && !ssn && bare_ssn(v.as_bytes()) {
        out(PiiKind::Ssn, v);
    }
    if name.phone && !phone && bare_phone(v.as_bytes()) {
        out(PiiKind::Phone, v);
    }
}

/// Whether a field name says its value is a secret or sensitive personal data
/// (password-like names, token, api_key, secret, private/access/signing keys, session
/// ids, cookies, authorization, OTPs, CVVs, card numbers, SSNs): used elsewhere to never
/// keep example or enum values of such fields. Same name rules as [`scan_field`]:
/// `token_type` or `has_token` are not sensitive, `accessToken` and `X-API-Key` are.
pub fn is_sensitive_name(name: &str) -> bool {
    NameInfo::of(name).sensitive
}

/// A value that is already masked, or a literal that cannot be a password.
fn placeholder(v: &str) -> bool {
    v.chars().all(|c| c == '*' || c == '\u{2022}')
        || ["true", "false", "null", "undefined", "none"]
            .iter()
            .any(|l| v.eq_ignore_ascii_case(l))
}

fn bare_ssn(v: &[u8]) -> bool {
    v.len() == 9
        && v.iter().all(u8::is_ascii_digit)
        && ssn_valid(number(v, 0, 3), number(v, 3, 5), number(v, 5, 9))
}

/// A phone field's value: optional `+`, then 7–15 digits with single separators.
fn bare_phone(v: &[u8]) -> bool {
    let mut digits = 0;
    let mut nonzero = false;
    let mut sep = true; // no separator first
    let mut open = false;
    for (i, &c) in v.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                nonzero |= c != b'0';
                sep = false;
            }
            b'+' if i == 0 => {}
            b' ' | b'-' | b'.' if !sep => sep = true,
            b'(' if !open => open = true,
            b')' if open && !sep => {
                open = false;
                sep = false;
            }
            _ => return false,
        }
    }
    (7..=15).contains(&digits) && nonzero && !sep && !open
}

/// The length of the date at the start of `v`, if `v` is a date, possibly with a time.
fn date_prefix(v: &[u8]) -> Option<usize> {
    let n1 = digits_end(v, 0, 4);
    let sep = at(v, n1);
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let s2 = n1 + 1;
    let n2 = digits_end(v, s2, 2);
    if at(v, n2) != sep {
        return None;
    }
    let s3 = n2 + 1;
    let n3 = digits_end(v, s3, 4);
    let (l1, l2, l3) = (n1, n2 - s2, n3 - s3);
    let (a, bb, c) = (number(v, 0, n1), number(v, s2, n2), number(v, s3, n3));
    let ok = if l1 == 4 {
        // YYYY-MM-DD, YYYY/MM/DD
        (1..=2).contains(&l2) && (1..=2).contains(&l3) && sep != b'.' && valid_date(a, bb, c)
    } else {
        // DD/MM/YYYY, MM/DD/YYYY, DD.MM.YYYY, DD-MM-YYYY
        (1..=2).contains(&l1)
            && (1..=2).contains(&l2)
            && l3 == 4
            && (valid_date(c, bb, a) || (sep != b'.' && valid_date(c, a, bb)))
    };
    if !ok {
        return None;
    }
    let rest = v.get(n3..).unwrap_or_default();
    let time =
        matches!(rest.first(), Some(b'T' | b' ')) && rest.get(1).is_some_and(u8::is_ascii_digit);
    (rest.is_empty() || time).then_some(n3)
}

/// A calendar date in the range a birth date can have.
fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1880..=2100).contains(&year) && (1..=days).contains(&day)
}

/// What a field name says about its value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct NameInfo {
    password: bool,
    aws_secret: bool,
    dob: bool,
    ssn: bool,
    phone: bool,
    sensitive: bool,
}

/// What a (lowercased) word of a field name can be; bits of [`word_kind`].
const W_FLAG: u16 = 1 << 0;
const W_PASSWORD: u16 = 1 << 1;
const W_TRAILER: u16 = 1 << 2;
const W_PHONE: u16 = 1 << 3;
const W_NUMBER: u16 = 1 << 4;
const W_SENSITIVE: u16 = 1 << 5;
const W_KEY_QUALIFIER: u16 = 1 << 6;
const W_KEY: u16 = 1 << 7;
const W_ID: u16 = 1 << 8;
const W_SESSION: u16 = 1 << 9;

/// The longest word [`word_kind`] knows.
const WORD_MAX: usize = 16;

/// The kinds of a lowercased word.
fn word_kind(w: &[u8]) -> u16 {
    match w {
        // First words that make a name a flag or a setting about the thing, not the thing.
        b"is" | b"has" | b"have" | b"show" | b"hide" | b"require" | b"requires" | b"required"
        | b"need" | b"needs" | b"must" | b"allow" | b"allows" | b"enable" | b"enabled"
        | b"disable" | b"disabled" | b"use" | b"can" | b"should" | b"forgot" | b"min" | b"max" => {
            W_FLAG
        }
        b"password" | b"passwd" | b"pwd" | b"pass" | b"passphrase" | b"passcode" => {
            W_PASSWORD | W_SENSITIVE
        }
        b"secret" => W_PASSWORD | W_SENSITIVE | W_KEY_QUALIFIER,
        // After a password word, still the password (`password_confirmation`).
        b"confirmation" | b"confirm" | b"again" | b"repeat" | b"repeated" | b"verify"
        | b"verification" | b"new" | b"old" | b"current" | b"plain" | b"plaintext" | b"clear"
        | b"cleartext" | b"value" | b"text" | b"input" | b"1" | b"2" => W_TRAILER,
        b"phone" | b"mobile" | b"tel" | b"telephone" | b"cellphone" | b"msisdn"
        | b"phonenumber" | b"mobilenumber" => W_PHONE,
        b"number" | b"no" | b"num" | b"nr" => W_NUMBER,
        b"secrets" | b"token" | b"tokens" | b"apikey" | b"authorization" | b"bearer"
        | b"credential" | b"credentials" | b"cookie" | b"cookies" | b"jwt" | b"otp" | b"totp"
        | b"pin" | b"cvv" | b"cvc" | b"cvv2" | b"cvc2" | b"ssn" | b"csrf" | b"xsrf" => W_SENSITIVE,
        b"auth" => W_SENSITIVE | W_KEY_QUALIFIER,
        b"session" => W_KEY_QUALIFIER | W_SESSION,
        // Before `key`, make it a credential (`api_key`), unlike a `key` in a key/value list.
        b"api" | b"access" | b"private" | b"signing" | b"encryption" | b"master" | b"client"
        | b"license" | b"app" | b"subscription" | b"shared" => W_KEY_QUALIFIER,
        b"key" => W_KEY,
        b"id" => W_ID,
        _ => 0,
    }
}

/// [`word_kind`] of a word as written (any case).
fn word_kind_of(w: Option<&[u8]>) -> u16 {
    let Some(w) = w.filter(|w| w.len() <= WORD_MAX) else {
        return 0;
    };
    let mut buf = [0u8; WORD_MAX];
    let lower = buf.get_mut(..w.len()).unwrap_or_default();
    for (l, c) in lower.iter_mut().zip(w) {
        *l = c.to_ascii_lowercase();
    }
    word_kind(lower)
}

/// What the end of a glued, lowercased name says; bits of [`NAME_ENDS`].
const E_PASSWORD: u8 = 1 << 0;
const E_DOB: u8 = 1 << 1;
const E_SSN: u8 = 1 << 2;
const E_PHONE: u8 = 1 << 3;
const E_SENSITIVE: u8 = 1 << 4;

/// Ends of names with separators dropped, for names written all in one case
/// (`newpassword`, `clientsecret`, `BIRTHDATE`) and multi-word names (`date_of_birth`).
#[rustfmt::skip]
const NAME_ENDS: &[(&[u8], u8)] = &[
    (b"password", E_PASSWORD), (b"passwd", E_PASSWORD), (b"passphrase", E_PASSWORD),
    (b"secret", E_PASSWORD), (b"pwd", E_PASSWORD),
    (b"dateofbirth", E_DOB), (b"birthdate", E_DOB), (b"birthday", E_DOB), (b"dob", E_DOB),
    (b"ssn", E_SSN), (b"socialsecuritynumber", E_SSN), (b"socialsecurityno", E_SSN),
    (b"socialsecurity", E_SSN),
    (b"phone", E_PHONE), (b"phonenumber", E_PHONE), (b"mobilenumber", E_PHONE),
    (b"apikey", E_SENSITIVE), (b"accesskey", E_SENSITIVE), (b"secretkey", E_SENSITIVE),
    (b"privatekey", E_SENSITIVE), (b"token", E_SENSITIVE), (b"sessionid", E_SENSITIVE),
    (b"cardnumber", E_SENSITIVE), (b"creditcard", E_SENSITIVE), (b"ccnumber", E_SENSITIVE),
];

/// Glued names of the AWS secret access key.
const AWS_SECRET_NAMES: [&[u8]; 3] = [b"awssecretaccesskey", b"secretaccesskey", b"awssecretkey"];

/// The last alphanumeric bytes of a name, lowercased, separators dropped.
struct Compact {
    buf: [u8; 64],
    start: usize,
}

impl Compact {
    fn of(name: &[u8]) -> Compact {
        let mut c = Compact {
            buf: [0; 64],
            start: 64,
        };
        for &x in name.iter().rev().filter(|x| x.is_ascii_alphanumeric()) {
            if c.start == 0 {
                break;
            }
            c.start -= 1;
            c.buf[c.start] = x.to_ascii_lowercase();
        }
        c
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// The [`NAME_ENDS`] bits of the name.
    fn ends(&self) -> u8 {
        let b = self.bytes();
        let last = b.last();
        NAME_ENDS
            .iter()
            .filter(|(end, _)| end.last() == last && b.ends_with(end))
            .fold(0, |bits, (_, e)| bits | e)
    }
}

/// The words of a name: split on non-alphanumerics and camelCase humps (`APIKey` is `API`,
/// `Key`); digits stay with the word before them (`cvv2`).
struct Words<'n> {
    b: &'n [u8],
    i: usize,
}

impl<'n> Iterator for Words<'n> {
    type Item = &'n [u8];

    fn next(&mut self) -> Option<&'n [u8]> {
        let b = self.b;
        let mut i = self.i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= b.len() {
            self.i = i;
            return None;
        }
        let s = i;
        i += 1;
        while i < b.len() {
            let (p, c) = (b[i - 1], b[i]);
            let hump = c.is_ascii_uppercase()
                && (p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && at(b, i + 1).is_ascii_lowercase()));
            if !c.is_ascii_alphanumeric() || hump {
                break;
            }
            i += 1;
        }
        self.i = i;
        b.get(s..i)
    }
}

impl NameInfo {
    fn of(name: &str) -> NameInfo {
        let b = name.as_bytes();
        let b = b
            .get(b.len().saturating_sub(MAX_NAME)..)
            .unwrap_or_default();
        let (mut first, mut second, mut last) = (None, None, None);
        let mut count = 0;
        for w in (Words { b, i: 0 }) {
            first = first.or(Some(w));
            second = last;
            last = Some(w);
            count += 1;
        }
        if count == 0 || (count > 1 && word_kind_of(first) & W_FLAG != 0) {
            return NameInfo::default();
        }
        let (second, last) = (word_kind_of(second), word_kind_of(last));
        let compact = Compact::of(b);
        let ends = compact.ends();
        let password = last & W_PASSWORD != 0
            || (second & W_PASSWORD != 0 && last & W_TRAILER != 0)
            || ends & E_PASSWORD != 0;
        let aws_secret = AWS_SECRET_NAMES.contains(&compact.bytes());
        let ssn = ends & E_SSN != 0;
        let phone = last & W_PHONE != 0
            || (last & W_NUMBER != 0 && second & W_PHONE != 0)
            || ends & E_PHONE != 0;
        let sensitive = password
            || aws_secret
            || ssn
            || last & W_SENSITIVE != 0
            || (last & W_KEY != 0 && second & W_KEY_QUALIFIER != 0)
            || (last & W_ID != 0 && second & W_SESSION != 0)
            || ends & E_SENSITIVE != 0;
        NameInfo {
            password,
            aws_secret,
            dob: ends & E_DOB != 0,
            ssn,
            phone,
            sensitive,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Masks

/// Masks a matched value for storage. Never reversible and never longer than needed: the
/// kind's public prefix (`ghp_`, `sk_live_`, `AKIA`, `eyJ`, the PEM header), an e-mail's
/// first character and TLD, and at most the last four digits of a card or the last two of
/// a phone, SSN or IBAN (with its country code). What is unknown becomes `***`.
///
/// | kind | example |
/// |---|---|
/// | email | `j***@***.com` |
/// | card_number | `****1111` |
/// | phone | `***67` |
/// | ssn | `***-**-**89` |
/// | iban | `DE***00` |
/// | jwt | `eyJ***` |
/// | aws_access_key | `AKIA***` |
/// | github_token | `ghp_***` |
/// | slack_token | `xoxb-***` |
/// | stripe_key | `sk_live_***` |
/// | private_key | `-----BEGIN RSA PRIVATE KEY-----***` |
/// | password, aws_secret_key | `***` |
/// | date_of_birth | `****-**-**` |
pub fn mask(kind: PiiKind, value: &str) -> String {
    let b = value.as_bytes();
    match kind {
        PiiKind::Email => {
            let first = b
                .first()
                .filter(|c| c.is_ascii_alphanumeric())
                .map_or('*', |&c| char::from(c));
            let tld = value
                .rsplit_once('@')
                .and_then(|(_, domain)| domain.rsplit_once('.'))
                .map(|(_, tld)| tld)
                .filter(|t| {
                    (2..=10).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_alphabetic())
                })
                .unwrap_or("***");
            format!("{first}***@***.{tld}")
        }
        PiiKind::CardNumber => {
            let mut m = String::from("****");
            if let Some(d) = last_digits::<4>(b, 12) {
                m.extend(d.iter().map(|&c| char::from(c)));
            }
            m
        }
        PiiKind::Phone => {
            let mut m = String::from("***");
            if let Some(d) = last_digits::<2>(b, 7) {
                m.extend(d.iter().map(|&c| char::from(c)));
            }
            m
        }
        PiiKind::Ssn => {
            let mut m = String::from("***-**-**");
            match last_digits::<2>(b, 9) {
                Some(d) => m.extend(d.iter().map(|&c| char::from(c))),
                None => m.push_str("**"),
            }
            m
        }
        PiiKind::Iban => {
            let mut m = String::with_capacity(7);
            match b.get(..2) {
                Some(cc) if cc.iter().all(u8::is_ascii_uppercase) => {
                    m.extend(cc.iter().map(|&c| char::from(c)))
                }
                _ => m.push_str("**"),
            }
            m.push_str("***");
            let mut tail = b.iter().rev().filter(|c| c.is_ascii_alphanumeric());
            if b.iter().filter(|c| c.is_ascii_alphanumeric()).count() >= 15 {
                if let (Some(&y), Some(&x)) = (tail.next(), tail.next()) {
                    m.push(char::from(x));
                    m.push(char::from(y));
                }
            }
            m
        }
        PiiKind::Jwt => prefixed(value, &[b"eyJ"]),
        PiiKind::AwsAccessKey => prefixed(value, &AWS_PREFIXES),
        PiiKind::GithubToken if b.starts_with(GITHUB_PAT) => prefixed(value, &[GITHUB_PAT]),
        PiiKind::GithubToken => prefixed(value, &GITHUB_PREFIXES),
        PiiKind::SlackToken => {
            let token = b.len() > 5
                && starts_with(b, 0, b"xox")
                && matches!(at(b, 3), b'b' | b'a' | b'p' | b'r' | b's')
                && at(b, 4) == b'-';
            if token {
                format!("{}***", value.get(..5).unwrap_or("xox?-"))
            } else {
                prefixed(value, &[HTTPS_SLACK_HOOK, SLACK_HOOK])
            }
        }
        PiiKind::StripeKey => prefixed(value, &STRIPE_PREFIXES),
        PiiKind::PrivateKey => match pem_header(b, 0).and_then(|(_, e)| value.get(..e)) {
            Some(header) => format!("{header}***"),
            None => String::from("***"),
        },
        PiiKind::Password | PiiKind::AwsSecretKey => String::from("***"),
        PiiKind::DateOfBirth => String::from("****-**-**"),
    }
}

/// The first of `prefixes` that `value` starts with, then `***`; `***` alone if none does
/// or nothing follows the prefix.
fn prefixed(value: &str, prefixes: &[&[u8]]) -> String {
    let b = value.as_bytes();
    let p = prefixes
        .iter()
        .find(|p| b.len() > p.len() && b.starts_with(p))
        .and_then(|p| value.get(..p.len()))
        .unwrap_or("");
    format!("{p}***")
}

/// The last `N` digits of `b`, if it has at least `min` digits.
fn last_digits<const N: usize>(b: &[u8], min: usize) -> Option<[u8; N]> {
    if b.iter().filter(|c| c.is_ascii_digit()).count() < min.max(N) {
        return None;
    }
    let mut d = [0u8; N];
    for (slot, &c) in d
        .iter_mut()
        .rev()
        .zip(b.iter().rev().filter(|c| c.is_ascii_digit()))
    {
        *slot = c;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(PiiKind, String)> {
        let mut v = Vec::new();
        scan_text(text, &mut |k, m| v.push((k, m.to_string())));
        v
    }

    fn field(name: &str, value: &str) -> Vec<(PiiKind, String)> {
        let mut v = Vec::new();
        scan_field(name, value, &mut |k, m| v.push((k, m.to_string())));
        v
    }

    /// `text` yields exactly one finding, of `kind`, matching `expected`.
    #[track_caller]
    fn one(text: &str, kind: PiiKind, expected: &str) {
        assert_eq!(
            found(text),
            vec![(kind, expected.to_string())],
            "in {text:?}"
        );
    }

    #[track_caller]
    fn none(text: &str) {
        assert_eq!(found(text), vec![], "in {text:?}");
    }

    /// Unpadded base64url, to build tokens.
    fn b64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                s.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        s
    }

    fn luhn_complete(prefix: &str) -> String {
        (0..10)
            .map(|d| format!("{prefix}{d}"))
            .find(|s| luhn(s.as_bytes()))
            .unwrap()
    }

    #[test]
    fn kind_names() {
        for k in PiiKind::ALL {
            assert_eq!(PiiKind::from_name(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            assert_eq!(
                serde_json::from_str::<PiiKind>(&format!("\"{}\"", k.as_str())).unwrap(),
                k
            );
        }
        assert_eq!(PiiKind::from_name("Email"), None);
        assert!(PiiKind::Password.is_secret() && PiiKind::Jwt.is_secret());
        assert!(!PiiKind::Email.is_secret() && !PiiKind::CardNumber.is_secret());
    }

    #[test]
    fn emails() {
        one(
            "mail john.doe+tag@example.co.uk today",
            PiiKind::Email,
            "john.doe+tag@example.co.uk",
        );
        one("mailto:a@b.io", PiiKind::Email, "a@b.io");
        one(
            "<jane_d@corp-mail.example.com>.",
            PiiKind::Email,
            "jane_d@corp-mail.example.com",
        );
        one(
            "/users/jane@example.org/orders",
            PiiKind::Email,
            "jane@example.org",
        );
        one(
            "?next=/x&email=jane@example.org",
            PiiKind::Email,
            "jane@example.org",
        );
        one("...john@example.com.", PiiKind::Email, "john@example.com");
        for text in [
            "icon@2x.png",
            "logo@3x.webp",
            "lodash@4.17.21",
            "user@localhost",
            "@scope/pkg",
            "a@b.c",
            "foo@bar..com",
            "foo.@bar.com",
            "foo@-bar.com",
            "https://user:pass@host.example.com/path",
            "https://john@example.com/",
            "git@github.com:org/repo.git",
            "name@example.c0m",
            "me@example.com_x",
            "@@@",
        ] {
            none(text);
        }
    }

    #[test]
    fn phones() {
        for (text, m) in [
            ("call +1 (555) 123-4567 now", "+1 (555) 123-4567"),
            ("+44 20 7946 0958", "+44 20 7946 0958"),
            ("tel:+14155552671", "+14155552671"),
            ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
            ("+33.1.23.45.67.89", "+33.1.23.45.67.89"),
            ("(555) 123-4567", "(555) 123-4567"),
            ("(555)123-4567", "(555)123-4567"),
            ("call 555-123-4567.", "555-123-4567"),
            ("555.123.4567", "555.123.4567"),
            ("1-800-555-1234", "1-800-555-1234"),
        ] {
            one(text, PiiKind::Phone, m);
        }
        for text in [
            "2024-01-15",
            "2024-01-15T10:30:00+01:00",
            "1.2.3.4",
            "10.100.200.3000",
            "+192.168.100.200",
            "192.168.100.200",
            "2001:db8::8a2e:370:7334",
            "+48.8566140",
            "lat=+48.8566140",
            "1700000000",
            "1700000000123",
            "+2024-01-15",
            "123-456-7890",
            "055-123-4567",
            "555-123-45678",
            "1555-123-4567",
            "x555-123-4567",
            "555-123-4567-89",
            "9.555.123.4567",
            "+1 555",
            "1e+10",
            "a+12345678901",
            "+1234567890123456",
            "v1.2.3",
            "10:30:15",
            "(123) 456-7890",
            "5551234567",
        ] {
            none(text);
        }
    }

    #[test]
    fn cards() {
        for (text, m) in [
            ("4242 4242 4242 4242", "4242 4242 4242 4242"),
            ("card=4111111111111111&x", "4111111111111111"),
            ("378282246310005", "378282246310005"),
            ("3782 822463 10005", "3782 822463 10005"),
            ("3782-822463-10005", "3782-822463-10005"),
            ("5555555555554444", "5555555555554444"),
            ("2223003122003222", "2223003122003222"),
            ("4242-4242-4242-4242", "4242-4242-4242-4242"),
            ("6011111111111117", "6011111111111117"),
            ("3566002020360505", "3566002020360505"),
            ("30569309025904", "30569309025904"),
            ("6200000000000005", "6200000000000005"),
            ("/cards/4111111111111111/", "4111111111111111"),
            ("pay 4242 4242 4242 4242 12/34 123", "4242 4242 4242 4242"),
            ("\"4111111111111111\"", "4111111111111111"),
        ] {
            one(text, PiiKind::CardNumber, m);
        }
        let not_an_issuer = luhn_complete("999999999999999");
        let amex_16 = luhn_complete("378282246310005");
        for text in [
            "4111111111111112",
            "4242 4242 4242 4241",
            "12344111111111111111",
            "41111111111111110000",
            "4242-4242-4242-4242-4242",
            "4242 4242 4242 4242abc",
            "0.4111111111111111",
            "4111111111111111.5",
            "1-4111111111111111",
            "order_4111111111111111",
            "x4111111111111111",
            "1700000000000",
            "1700000000000000000",
            "550e8400-e29b-41d4-a716-446655440000",
            "4242 42424242 4242",
            &not_an_issuer,
            &amex_16,
        ] {
            none(text);
        }
    }

    #[test]
    fn ssns() {
        one("ssn 123-45-6789.", PiiKind::Ssn, "123-45-6789");
        one("078-05-1120", PiiKind::Ssn, "078-05-1120");
        for text in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "1123-45-6789",
            "123-45-67890",
            "123-45-6789-1",
            "1.123-45-6789",
            "a123-45-6789",
            "123456789",
            "123 45 6789",
        ] {
            none(text);
        }
    }

    #[test]
    fn ibans() {
        for iban in [
            "GB82WEST12345698765432",
            "DE89370400440532013000",
            "NL91ABNA0417164300",
            "FR1420041010050500013M02606",
            "BE68539007547034",
            "CH9300762011623852957",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
        ] {
            one(&format!("iban: {iban}."), PiiKind::Iban, iban);
        }
        one(
            "DE89 3704 0044 0532 0130 00 EUR",
            PiiKind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
        one(
            "GB82 WEST 1234 5698 7654 32",
            PiiKind::Iban,
            "GB82 WEST 1234 5698 7654 32",
        );
        for text in [
            "GB83WEST12345698765432",
            "DE8937040044053201300",
            "DE893704004405320130001",
            "XX89370400440532013000",
            "de89370400440532013000",
            "GB82WEST12345698765432X",
            "GB82WESt12345698765432",
            "DE89 3704 0044 0532 0130 001",
            "DE89  3704 0044 0532 0130 00",
            "AB12CDEF0123456789ABCDEF01234567",
        ] {
            none(text);
        }
    }

    fn jwt_io() -> &'static str {
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    }

    #[test]
    fn jwts() {
        let t = jwt_io();
        one(&format!("Bearer {t}"), PiiKind::Jwt, t);
        let header = b64(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let payload = b64(br#"{"sub":"u-1","email":"x","exp":1700000000}"#);
        let signed = format!("{header}.{payload}.{}", b64(&[7u8; 256]));
        one(
            &format!("{{\"id_token\":\"{signed}\"}}"),
            PiiKind::Jwt,
            &signed,
        );
        let none_alg = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(br#"{"admin":true}"#)
        );
        one(&format!("token={none_alg} end"), PiiKind::Jwt, &none_alg);
        one(&format!("session={none_alg}"), PiiKind::Jwt, &none_alg);

        let no_alg = format!("{}.{}.c2ln", b64(br#"{"foo":"bar"}"#), b64(br#"{"x":1}"#));
        let jwe = format!("{header}.{payload}.aXY.Y2lwaGVy.dGFn");
        let not_json = format!("{}.{}.c2ln", b64(b"{\"alg\":\"x\"\x01}"), b64(b"x"));
        for text in [
            no_alg.as_str(),
            &jwe,
            &not_json,
            &header,
            &format!("{header}{payload}"),
            &format!("x{t}"),
            &format!("ab-{t}"),
            &format!("{t}.abc"),
            "dGhpcyBpcyBub3QgYSBqd3Q.dGVzdA.c2ln",
            "eyJ.eyJ.x",
            "eyJhbGciOiJIUzI1NiJ9.e.sig",
        ] {
            none(text);
        }

        assert_eq!(
            jwt_parts(t),
            Some((
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
                "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
            ))
        );
        let (h, p, s) = jwt_parts(&none_alg).unwrap();
        assert_eq!(base64url_decode(h).unwrap(), br#"{"alg":"none"}"#);
        assert_eq!(base64url_decode(p).unwrap(), br#"{"admin":true}"#);
        assert_eq!(s, "");
        assert_eq!(jwt_parts(&format!(" {t}")), None);
        assert_eq!(jwt_parts(&format!("{t} ")), None);
        assert_eq!(jwt_parts(&no_alg), None);
    }

    #[test]
    fn base64url() {
        assert_eq!(base64url_decode("").unwrap(), b"");
        assert_eq!(base64url_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64url_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64url_decode("aA==").unwrap(), b"h");
        assert_eq!(base64url_decode("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in [
            "a", "aGk==", "aGk+", "aG/k", "a=b=", "aGk=x", "====", "aA=", "é",
        ] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
        assert_eq!(
            base64url_decode(&"A".repeat(MAX_BASE64)).map(|v| v.len()),
            Some(MAX_BASE64 / 4 * 3)
        );
        assert_eq!(base64url_decode(&"A".repeat(MAX_BASE64 + 4)), None);
    }

    #[test]
    fn aws_keys() {
        one(
            "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n",
            PiiKind::AwsAccessKey,
            "AKIAIOSFODNN7EXAMPLE",
        );
        one(
            "\"ASIAY34FZKBOKMUTVV7A\"",
            PiiKind::AwsAccessKey,
            "ASIAY34FZKBOKMUTVV7A",
        );
        for text in [
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAIOSFODNN7EXAMPL",
            "AKIAiosfodnn7example",
            "XAKIAIOSFODNN7EXAMPLE",
            "AKIA_IOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLE_1",
            "AXIAIOSFODNN7EXAMPLE",
        ] {
            none(text);
        }
    }

    #[test]
    fn github_tokens() {
        let classic = format!("ghp_{}", "aB3".repeat(12));
        one(&format!("token {classic}"), PiiKind::GithubToken, &classic);
        let server = format!("ghs_{}", "Z9".repeat(18));
        one(&server, PiiKind::GithubToken, &server);
        let pat = format!("github_pat_11ABCDEFG0{}", "x_Y".repeat(24));
        assert_eq!(pat.len(), 93);
        one(
            &format!("Authorization: token {pat}"),
            PiiKind::GithubToken,
            &pat,
        );
        for text in [
            format!("ghp_{}", "a".repeat(35)),
            format!("ghp_{}", "a".repeat(37)),
            format!("ghx_{}", "a".repeat(36)),
            format!("ghp_{}_", "a".repeat(35)),
            format!("xghp_{}", "a".repeat(36)),
            format!("github_pat_{}", "a".repeat(81)),
        ] {
            none(&text);
        }
    }

    #[test]
    fn slack_tokens() {
        let bot = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
        one(&format!("token: {bot}"), PiiKind::SlackToken, bot);
        let user = "xoxp-4956821376-4956821388-5102733910240-f6a1b2c3d4e5f60718293a4b5c6d7e8f";
        one(user, PiiKind::SlackToken, user);
        let hook = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
        one(&format!("url={hook}&x=1"), PiiKind::SlackToken, hook);
        one(&hook[8..], PiiKind::SlackToken, &hook[8..]);
        for text in [
            "xoxb-123",
            "xoxq-17653672481-19874698323-pdFZKVeTuE8sk7",
            "xoxb-abcdefghijk-19874698323",
            "xoxb-17653672481",
            "xoxb-17653672481--19874698323",
            "xoxb-17653672481-19874698323-",
            "https://hooks.slack.com/services/",
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "https://hooks.slack.com/workflows/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ] {
            none(text);
        }
    }

    #[test]
    fn stripe_keys() {
        let live = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
        one(&format!("Bearer {live}"), PiiKind::StripeKey, &live);
        let restricted = format!("rk_test_{}", "51H8aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
        one(&restricted, PiiKind::StripeKey, &restricted);
        for text in [
            "sk_live_short".to_string(),
            format!("sk_live_{}", "a".repeat(23)),
            format!("pk_live_{}", "a".repeat(40)),
            format!("pk_test_{}", "a".repeat(40)),
            format!("sk_live_{}_{}", "a".repeat(12), "b".repeat(12)),
            format!("ask_live_{}", "a".repeat(30)),
            format!("sk_live_{}", "a".repeat(300)),
        ] {
            none(&text);
        }
    }

    const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n";

    #[test]
    fn private_keys() {
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "DSA PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            let pem = format!("-----BEGIN {label}-----\n{PEM_BODY}-----END {label}-----");
            one(&format!("key: {pem}\n"), PiiKind::PrivateKey, &pem);
        }
        // JSON-escaped, as in a raw body; the footer is kept when it follows the body.
        let escaped = format!(
            "-----BEGIN RSA PRIVATE KEY-----\\n{}\\n-----END RSA PRIVATE KEY-----",
            PEM_BODY.replace('\n', "\\n").trim_end_matches("\\n")
        );
        one(
            &format!("{{\"key\":\"{escaped}\"}}"),
            PiiKind::PrivateKey,
            &escaped,
        );
        // Legacy encrypted PEM headers; a cut key (no footer) still counts.
        let legacy = format!("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n{}", PEM_BODY.trim_end());
        one(&legacy, PiiKind::PrivateKey, &legacy);
        // Scanning stops at the end of the key: nothing inside is reported.
        let with_card = format!(
            "-----BEGIN PRIVATE KEY-----\n{PEM_BODY}4111111111111111\n-----END PRIVATE KEY-----"
        );
        assert_eq!(found(&with_card).len(), 1);
        for text in [
            "-----BEGIN PRIVATE KEY-----".to_string(),
            "expected -----BEGIN PRIVATE KEY----- in the file".to_string(),
            format!("-----BEGIN PUBLIC KEY-----\n{PEM_BODY}-----END PUBLIC KEY-----"),
            format!("-----BEGIN CERTIFICATE-----\n{PEM_BODY}-----END CERTIFICATE-----"),
            format!("-----BEGIN PRIVATE KEY----\n{PEM_BODY}"),
        ] {
            none(&text);
        }
    }

    #[test]
    fn negatives_mixed() {
        for text in [
            "550e8400-e29b-41d4-a716-446655440000",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "version 1.2.3.4 build 20240115",
            "2024-01-15T10:20:30.123456Z",
            "ORD-2024-000123",
            "order 20240115000123",
            "1700000000",
            "ts=1717171717171",
            "SGVsbG8sIFdvcmxkIQ==",
            "dGhpcyBpcyBzb21lIGJhc2U2NCB0aGF0IGlzIG5vdCBhIGp3dA",
            "d41d8cd98f00b204e9800998ecf8427e",
            "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
            "/api/v1/users/12345/orders/67890",
            "price=1234.5678&qty=3",
            "\"amount\": 4111111111.11",
        ] {
            none(text);
        }
    }

    #[test]
    fn fields_passwords() {
        for name in [
            "password",
            "Password",
            "PASSWORD",
            "user_password",
            "userPassword",
            "newPassword",
            "new-password",
            "password_confirmation",
            "passwordConfirm",
            "passwd",
            "pwd",
            "db_pass",
            "passphrase",
            "secret",
            "client_secret",
            "clientSecret",
            "clientsecret",
            "webhookSecret",
            "x-api-secret",
        ] {
            assert_eq!(
                field(name, "hunter2!"),
                vec![(PiiKind::Password, "hunter2!".to_string())],
                "{name}"
            );
        }
        for name in [
            "has_password",
            "isSecret",
            "password_hash",
            "passwordHash",
            "password_policy",
            "passwordLength",
            "min_password_length",
            "forgot_password",
            "bypass",
            "compass",
            "passenger",
            "passport",
            "username",
            "secret_question_id",
        ] {
            assert_eq!(field(name, "hunter2!"), vec![], "{name}");
        }
        for value in ["", "   ", "********", "true", "null"] {
            assert_eq!(field("password", value), vec![], "{value:?}");
        }
        // What the value is still counts.
        assert_eq!(field("password", "john@example.com").len(), 2);
    }

    #[test]
    fn fields_aws_secret() {
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        for name in [
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "secretAccessKey",
            "SecretAccessKey",
        ] {
            assert_eq!(
                field(name, key),
                vec![(PiiKind::AwsSecretKey, key.to_string())],
                "{name}"
            );
        }
        assert_eq!(
            field("aws_secret_access_key", "short"),
            vec![(PiiKind::Password, "short".to_string())]
        );
        assert_eq!(field("description", key), vec![]);
        none(key);
    }

    #[test]
    fn fields_dates_of_birth() {
        for (name, value, date) in [
            ("dob", "1990-05-12", "1990-05-12"),
            ("DOB", "05/31/1990", "05/31/1990"),
            ("dateOfBirth", "12/05/1990", "12/05/1990"),
            ("date_of_birth", "1990/05/12", "1990/05/12"),
            ("birth_date", "31.12.1985", "31.12.1985"),
            ("birthDate", "1990-05-12T00:00:00Z", "1990-05-12"),
            ("birthdate", " 2000-02-29 ", "2000-02-29"),
            ("customer_birthday", "1-2-1970", "1-2-1970"),
        ] {
            assert_eq!(
                field(name, value),
                vec![(PiiKind::DateOfBirth, date.to_string())],
                "{name}"
            );
        }
        for (name, value) in [
            ("dob", "not a date"),
            ("dob", "1990-13-01"),
            ("dob", "1990-02-30"),
            ("dob", "1900-02-29"),
            ("dob", "31/31/1990"),
            ("dob", "1990-05-12x"),
            ("dob", "1990.05.12"),
            ("dob", "0990-05-12"),
            ("dob", "19900512"),
            ("created_at", "1990-05-12"),
            ("birth_place", "1990-05-12"),
            ("is_dob_verified", "1990-05-12"),
        ] {
            assert_eq!(field(name, value), vec![], "{name}={value}");
        }
    }

    #[test]
    fn fields_ssn_and_phone() {
        assert_eq!(
            field("ssn", "123456789"),
            vec![(PiiKind::Ssn, "123456789".to_string())]
        );
        assert_eq!(
            field("customerSSN", "123-45-6789"),
            vec![(PiiKind::Ssn, "123-45-6789".to_string())]
        );
        assert_eq!(
            field("social_security_number", "078051120"),
            vec![(PiiKind::Ssn, "078051120".to_string())]
        );
        for (name, value) in [
            ("ssn", "000123456"),
            ("ssn", "12345678"),
            ("ssn", "1234567890"),
            ("ssn_last4", "6789"),
            ("id", "123456789"),
        ] {
            assert_eq!(field(name, value), vec![], "{name}={value}");
        }
        for (name, value) in [
            ("phone", "5551234567"),
            ("phoneNumber", "07700900123"),
            ("mobile_no", "0612345678"),
            ("tel", "+3361234567"),
            ("home_phone", "020 7946 0958"),
            ("msisdn", "447700900123"),
            ("contactphone", "(020) 7946-0958"),
        ] {
            assert_eq!(
                field(name, value),
                vec![(PiiKind::Phone, value.to_string())],
                "{name}"
            );
        }
        // Found by scan_text already: reported once.
        assert_eq!(field("mobile", "+447700900123").len(), 1);
        for (name, value) in [
            ("hotel", "5551234567"),
            ("phone_verified", "1234567890"),
            ("phone_id", "1234567890"),
            ("phone", "12345"),
            ("phone", "0000000000"),
            ("phone", "555-1234-"),
            ("phone", "555--1234567"),
            ("phone", "call me"),
            ("phone", "1234567890123456"),
        ] {
            assert_eq!(field(name, value), vec![], "{name}={value}");
        }
    }

    #[test]
    fn sensitive_names() {
        for name in [
            "password",
            "Password",
            "client_secret",
            "X-API-Key",
            "x-api-key",
            "apiKey",
            "APIKey",
            "api_key",
            "access_token",
            "refreshToken",
            "id_token",
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "session_id",
            "sessionId",
            "private_key",
            "privateKey",
            "signingKey",
            "aws_secret_access_key",
            "cvv",
            "CVC2",
            "csrf_token",
            "csrfmiddlewaretoken",
            "X-CSRF-Token",
            "X-Amz-Security-Token",
            "Ocp-Apim-Subscription-Key",
            "otp",
            "pin",
            "card_number",
            "ssn",
            "credentials",
            "jwt",
            "tokens",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in [
            "token_type",
            "tokenType",
            "has_password",
            "is_secret",
            "expires_in",
            "tokenExpiry",
            "username",
            "email",
            "key",
            "monkey",
            "keys",
            "turkey",
            "bypass",
            "passenger",
            "pinned",
            "spinner",
            "session",
            "author",
            "content-type",
            "id",
            "",
        ] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn name_words() {
        let words = |n: &str| {
            Words {
                b: n.as_bytes(),
                i: 0,
            }
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect::<Vec<_>>()
        };
        assert_eq!(words("dateOfBirth"), ["date", "Of", "Birth"]);
        assert_eq!(words("date_of_birth"), ["date", "of", "birth"]);
        assert_eq!(words("APIKey"), ["API", "Key"]);
        assert_eq!(words("X-API-Key"), ["X", "API", "Key"]);
        assert_eq!(words("cvv2Code"), ["cvv2", "Code"]);
        assert_eq!(words("__ é __"), Vec::<String>::new());
        assert_eq!(NameInfo::of("dateOfBirth"), NameInfo::of("date_of_birth"));
        assert_eq!(NameInfo::of("phoneNumber"), NameInfo::of("phone-number"));
    }

    fn samples() -> Vec<(PiiKind, String)> {
        let mut v = vec![
            (PiiKind::Email, "john.doe@example.com".to_string()),
            (PiiKind::Phone, "+1 (555) 123-4567".to_string()),
            (PiiKind::CardNumber, "4242 4242 4242 4242".to_string()),
            (PiiKind::Ssn, "123-45-6789".to_string()),
            (PiiKind::Iban, "DE89370400440532013000".to_string()),
            (PiiKind::Jwt, jwt_io().to_string()),
            (PiiKind::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE".to_string()),
            (
                PiiKind::AwsSecretKey,
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
            ),
            (PiiKind::GithubToken, format!("ghp_{}", "aB3".repeat(12))),
            (
                PiiKind::SlackToken,
                "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy".to_string(),
            ),
            (
                PiiKind::SlackToken,
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
                    .to_string(),
            ),
            (
                PiiKind::StripeKey,
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_string(),
            ),
            (
                PiiKind::PrivateKey,
                format!("-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"),
            ),
            (
                PiiKind::Password,
                "correct horse battery staple".to_string(),
            ),
            (PiiKind::DateOfBirth, "1990-05-12".to_string()),
        ];
        v.push((
            PiiKind::GithubToken,
            format!("github_pat_{}", "A".repeat(82)),
        ));
        v
    }

    #[test]
    fn masks() {
        let expected = [
            "j***@***.com",
            "***67",
            "****4242",
            "***-**-**89",
            "DE***00",
            "eyJ***",
            "AKIA***",
            "***",
            "ghp_***",
            "xoxb-***",
            "https://hooks.slack.com/services/***",
            "sk_live_***",
            "-----BEGIN RSA PRIVATE KEY-----***",
            "***",
            "****-**-**",
            "github_pat_***",
        ];
        for ((kind, value), want) in samples().iter().zip(expected) {
            assert_eq!(mask(*kind, value), want, "{kind:?}");
        }
        assert_eq!(
            mask(PiiKind::Iban, "GB82 WEST 1234 5698 7654 32"),
            "GB***32"
        );
        assert_eq!(mask(PiiKind::CardNumber, "378282246310005"), "****0005");
        assert_eq!(mask(PiiKind::Email, "x@example.museum"), "x***@***.museum");
        assert_eq!(
            mask(PiiKind::Email, "_x@host.example.verylongtld"),
            "****@***.***"
        );
    }

    #[test]
    fn masks_never_hold_the_value() {
        for (kind, value) in samples() {
            assert!(value.len() >= 8);
            let m = mask(kind, &value);
            assert!(!m.contains(&value), "{kind:?}: {m}");
            // At most four characters of the value besides the public prefix / TLD.
            let hidden = m.matches('*').count();
            assert!(hidden >= 3, "{kind:?}: {m}");
        }
        // Whatever the input, masks stay short and never echo a long input.
        for kind in PiiKind::ALL {
            for value in [
                "",
                "a",
                "é",
                "12345678901234567890",
                "eyJ",
                "-----BEGIN PRIVATE KEY-----",
                "@@@@.....",
                "日本語のテキスト@例え.jp",
            ] {
                let m = mask(kind, value);
                assert!(m.len() <= 40, "{kind:?} {value:?} {m}");
                assert!(m.contains("***"), "{kind:?} {value:?} {m}");
                if value.len() >= 8 && value != "-----BEGIN PRIVATE KEY-----" {
                    assert!(!m.contains(value), "{kind:?} {value:?} {m}");
                }
            }
        }
    }

    #[test]
    fn odd_utf8_never_panics() {
        let pieces = [
            "é4111111111111111é",
            "日本john@example.com本",
            "🦀+1 (555) 123-4567🦀",
            "ÄGB82WEST12345698765432Ö",
            "ßAKIAIOSFODNN7EXAMPLEß",
            "\u{feff}eyJhbGciOiJub25lIn0.eyJhIjoxfQ.\u{200b}",
            "—123-45-6789—",
            "«-----BEGIN PRIVATE KEY-----»",
            "\0\u{7f}\u{80}\u{10ffff}",
            "€@€.€ a@€.com a@b.€ @é.com",
            "(5\u{301}55) 1",
        ];
        let all = pieces.concat();
        for text in pieces.iter().copied().chain([all.as_str()]) {
            for (i, _) in text.char_indices().chain([(text.len(), ' ')]) {
                for part in [&text[..i], &text[i..]] {
                    for (k, m) in found(part) {
                        assert!(part.contains(&m), "{k:?} {m:?}");
                        let _ = mask(k, &m);
                    }
                    for name in [
                        "password",
                        "dateOfBirth",
                        "ssn",
                        "phone",
                        "aws_secret_access_key",
                        "é",
                        part,
                    ] {
                        let _ = field(name, part);
                        let _ = is_sensitive_name(name);
                    }
                    let _ = jwt_parts(part);
                    let _ = base64url_decode(part);
                }
            }
        }
        // Multi-byte characters right next to matches do not hide them.
        assert_eq!(
            found("é4111111111111111é"),
            vec![(PiiKind::CardNumber, "4111111111111111".to_string())]
        );
        assert_eq!(
            found("日本john@example.com本"),
            vec![(PiiKind::Email, "john@example.com".to_string())]
        );
    }

    #[test]
    fn scan_limit() {
        let pad = " ".repeat(MAX_SCAN - 10);
        // Begins in the first 64 KiB: reported, even though it ends past it.
        one(
            &format!("{pad}4111111111111111"),
            PiiKind::CardNumber,
            "4111111111111111",
        );
        one(
            &format!("{pad}a@example.com"),
            PiiKind::Email,
            "a@example.com",
        );
        // A 20-digit id across the limit is still one id.
        none(&format!("{pad}12344111111111111111"));
        // Begins after: not scanned.
        let pad = " ".repeat(MAX_SCAN);
        none(&format!("{pad}4111111111111111 a@example.com"));
        // A huge word is skipped without trouble.
        none(&"a".repeat(3 * MAX_SCAN));
        none(&"1".repeat(3 * MAX_SCAN));
        none(&format!("eyJ{}", "A".repeat(3 * MAX_SCAN)));
    }

    #[test]
    fn several_findings() {
        let text = "{\"email\":\"a@example.com\",\"card\":\"4111111111111111\",\"ssn\":\"123-45-6789\",\"key\":\"AKIAIOSFODNN7EXAMPLE\"}";
        let mut kinds: Vec<PiiKind> = found(text).into_iter().map(|(k, _)| k).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                PiiKind::Email,
                PiiKind::CardNumber,
                PiiKind::Ssn,
                PiiKind::AwsAccessKey
            ]
        );
    }
}
