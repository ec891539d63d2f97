/*!
HTTP/1 bodies: framing (Content-Length, chunked with trailers, until close) and content
decoding (gzip, deflate, br, stacked), both bounded.

The framing state machine only counts and forwards; bytes are kept (raw, up to the body
limit) by [`Collector`], which decodes the Content-Encoding once the body is complete,
stopping at the limit so a decompression bomb costs at most the limit.
*/

use std::io::Read;

/// How a body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(ChunkState),
    /// Until the sender closes the connection.
    UntilClose,
}

/// Position inside a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkState {
    /// Reading a chunk-size line (bytes so far).
    Size(Vec<u8>),
    /// Inside chunk data; this many bytes remain.
    Data(u64),
    /// After chunk data: expecting CRLF (how many of its bytes were seen).
    DataEnd(u8),
    /// After the last chunk: reading trailer lines (bytes so far of the current line,
    /// and whether any trailer field was seen).
    Trailers(Vec<u8>),
}

/// Longest chunk-size line (with extensions) we accept.
const MAX_CHUNK_LINE: usize = 4096;
/// Longest trailer section we accept.
const MAX_TRAILERS: usize = 64 * 1024;

/// What a step of body framing produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// `consumed` input bytes, of which the byte range `data` is body content.
    Progress {
        consumed: usize,
        data: (usize, usize),
    },
    /// The body ended after `consumed` bytes.
    Done {
        consumed: usize,
        data: (usize, usize),
    },
    /// The framing is broken at this point.
    Error(&'static str),
}

impl Framing {
    /// Advances over `input`; returns how much was used and which part is content.
    /// Call again with the rest while it returns `Progress` with bytes left.
    pub fn step(&mut self, input: &[u8]) -> Step {
        match self {
            Framing::None => Step::Done {
                consumed: 0,
                data: (0, 0),
            },
            Framing::UntilClose => Step::Progress {
                consumed: input.len(),
                data: (0, input.len()),
            },
            Framing::Length(remaining) => {
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                if *remaining == 0 {
                    Step::Done {
                        consumed: n,
                        data: (0, n),
                    }
                } else {
                    Step::Progress {
                        consumed: n,
                        data: (0, n),
                    }
                }
            }
            Framing::Chunked(state) => chunk_step(state, input),
        }
    }

    /// Tells the framing that `len` bytes are missing here. Returns whether the body is
    /// now complete, or None when framing cannot survive the gap (the body's end can no
    /// longer be found).
    pub fn skip(&mut self, len: u64) -> Option<bool> {
        match self {
            Framing::Length(remaining) if len <= *remaining => {
                *remaining -= len;
                Some(*remaining == 0)
            }
            Framing::Chunked(ChunkState::Data(remaining)) if len <= *remaining => {
                *remaining -= len;
                if *remaining == 0 {
                    *self = Framing::Chunked(ChunkState::DataEnd(0));
                }
                Some(false)
            }
            Framing::UntilClose => Some(false),
            _ => None,
        }
    }
}

fn chunk_step(state: &mut ChunkState, input: &[u8]) -> Step {
    match state {
        ChunkState::Size(line) => {
            let Some(nl) = memchr::memchr(b'\n', input) else {
                if line.len() + input.len() > MAX_CHUNK_LINE {
                    return Step::Error("chunk size line too long");
                }
                line.extend_from_slice(input);
                return Step::Progress {
                    consumed: input.len(),
                    data: (0, 0),
                };
            };
            line.extend_from_slice(&input[..=nl]);
            let Some(size) = parse_chunk_size(line) else {
                return Step::Error("bad chunk size");
            };
            *state = if size == 0 {
                ChunkState::Trailers(Vec::new())
            } else {
                ChunkState::Data(size)
            };
            Step::Progress {
                consumed: nl + 1,
                data: (0, 0),
            }
        }
        ChunkState::Data(remaining) => {
            let n = (*remaining).min(input.len() as u64) as usize;
            *remaining -= n as u64;
            if *remaining == 0 {
                *state = ChunkState::DataEnd(0);
            }
            Step::Progress {
                consumed: n,
                data: (0, n),
            }
        }
        ChunkState::DataEnd(seen) => {
            let mut i = 0;
            while i < input.len() {
                match (input[i], *seen) {
                    (b'\r', 0) => *seen = 1,
                    (b'\n', _) => {
                        *state = ChunkState::Size(Vec::new());
                        return Step::Progress {
                            consumed: i + 1,
                            data: (0, 0),
                        };
                    }
                    _ => return Step::Error("chunk data not followed by CRLF"),
                }
                i += 1;
            }
            Step::Progress {
                consumed: input.len(),
                data: (0, 0),
            }
        }
        ChunkState::Trailers(line) => {
            let mut i = 0;
            while i < input.len() {
                let Some(nl) = memchr::memchr(b'\n', &input[i..]) else {
                    if line.len() + input.len() - i > MAX_TRAILERS {
                        return Step::Error("trailer section too long");
                    }
                    line.extend_from_slice(&input[i..]);
                    return Step::Progress {
                        consumed: input.len(),
                        data: (0, 0),
                    };
                };
                let end = i + nl;
                let empty = line.is_empty() && input[i..end].iter().all(|b| *b == b'\r');
                let only_cr = line.iter().all(|b| *b == b'\r') && input[i..end].is_empty();
                if empty || only_cr {
                    return Step::Done {
                        consumed: end + 1,
                        data: (0, 0),
                    };
                }
                if line.len() + (end - i) > MAX_TRAILERS {
                    return Step::Error("trailer section too long");
                }
                // A trailer field: keep nothing but the fact of a line; start the next.
                line.clear();
                i = end + 1;
            }
            Step::Progress {
                consumed: input.len(),
                data: (0, 0),
            }
        }
    }
}

/// Reads the hex size of a chunk-size line (extensions and whitespace ignored).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    if let Ok(httparse::Status::Complete((_, size))) = httparse::parse_chunk_size(line) {
        return Some(size);
    }
    // Lenient: leading whitespace, or whitespace before `;`.
    let text = line.split(|b| *b == b';').next()?;
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()
}

/// A content coding we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

/// Parses a Content-Encoding value into the codings applied, in the order applied.
/// Returns None when a coding is unknown.
pub fn parse_codings<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<Vec<Coding>> {
    let mut out = Vec::new();
    for value in values {
        for token in value.split(|b| *b == b',') {
            let t = token.trim_ascii();
            if t.is_empty() || t.eq_ignore_ascii_case(b"identity") {
                continue;
            }
            out.push(
                if t.eq_ignore_ascii_case(b"gzip") || t.eq_ignore_ascii_case(b"x-gzip") {
                    Coding::Gzip
                } else if t.eq_ignore_ascii_case(b"deflate") {
                    Coding::Deflate
                } else if t.eq_ignore_ascii_case(b"br") {
                    Coding::Brotli
                } else {
                    return None;
                },
            );
        }
    }
    Some(out)
}

/// Why content decoding stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeIssue {
    /// The output reached the limit (or the input was already cut).
    Truncated,
    /// The data is not valid for its coding.
    Invalid,
}

fn read_bounded(mut r: impl Read, limit: usize) -> Result<(Vec<u8>, bool), Vec<u8>> {
    let mut out = Vec::new();
    match r.by_ref().take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) => {
            let over = out.len() > limit;
            out.truncate(limit);
            Ok((out, over))
        }
        Err(_) => Err(out),
    }
}

/// Undoes `codings` (applied in order) on `data`, producing at most `limit` bytes.
/// `input_cut` says the raw body was already incomplete, so a decoder running out of
/// input is truncation rather than corruption.
pub fn decode(
    data: &[u8],
    codings: &[Coding],
    limit: usize,
    input_cut: bool,
) -> (Vec<u8>, Option<DecodeIssue>) {
    let mut current = data.to_vec();
    let mut truncated = false;
    for coding in codings.iter().rev() {
        let result = match coding {
            Coding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(&current[..]), limit),
            Coding::Deflate => {
                // "deflate" is meant to be zlib (RFC 9110), but servers send raw deflate too.
                let zlib = current.first().is_some_and(|b| b & 0x0f == 8)
                    && current.len() >= 2
                    && (u16::from_be_bytes([current[0], current[1]]) % 31 == 0);
                if zlib {
                    read_bounded(flate2::read::ZlibDecoder::new(&current[..]), limit)
                } else {
                    read_bounded(flate2::read::DeflateDecoder::new(&current[..]), limit)
                }
            }
            Coding::Brotli => read_bounded(brotli::Decompressor::new(&current[..], 4096), limit),
        };
        match result {
            Ok((out, over)) => {
                truncated |= over;
                current = out;
            }
            Err(partial) => {
                let issue = if input_cut || truncated {
                    DecodeIssue::Truncated
                } else {
                    DecodeIssue::Invalid
                };
                return (partial, Some(issue));
            }
        }
    }
    (current, truncated.then_some(DecodeIssue::Truncated))
}

/// A message's body content: decoded now if decoding was deferred (`Body::encoded`),
/// borrowed otherwise. Returns the bytes, whether they are less than the whole body, and
/// whether the coding could not be undone (then None).
pub fn content<'a>(
    head: &crate::exchange::Head,
    body: &'a crate::exchange::Body,
    limit: usize,
) -> Option<(std::borrow::Cow<'a, [u8]>, bool)> {
    if !body.encoded {
        return Some((std::borrow::Cow::Borrowed(&body.data), body.truncated));
    }
    let codings = parse_codings(head.header_all("content-encoding"))?;
    let (out, issue) = decode(&body.data, &codings, limit, body.truncated);
    match issue {
        Some(DecodeIssue::Invalid) => None,
        Some(DecodeIssue::Truncated) => Some((out.into(), true)),
        None => Some((out.into(), body.truncated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run(framing: &mut Framing, chunks: &[&[u8]]) -> (Vec<u8>, bool, Option<&'static str>) {
        let mut body = Vec::new();
        for chunk in chunks {
            let mut input: &[u8] = chunk;
            loop {
                match framing.step(input) {
                    Step::Progress { consumed, data } => {
                        body.extend_from_slice(&input[data.0..data.1]);
                        input = &input[consumed..];
                        if input.is_empty() {
                            break;
                        }
                    }
                    Step::Done { data, .. } => {
                        body.extend_from_slice(&input[data.0..data.1]);
                        return (body, true, None);
                    }
                    Step::Error(e) => return (body, false, Some(e)),
                }
            }
        }
        (body, false, None)
    }

    #[test]
    fn chunked_with_extensions_and_trailers_in_odd_pieces() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for piece in 1..8 {
            let chunks: Vec<&[u8]> = wire.chunks(piece).collect();
            let mut f = Framing::Chunked(ChunkState::Size(Vec::new()));
            let (body, done, err) = run(&mut f, &chunks);
            assert_eq!(err, None);
            assert!(done, "piece size {piece}");
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        }
    }

    #[test]
    fn bad_chunk_sizes_are_errors() {
        let mut f = Framing::Chunked(ChunkState::Size(Vec::new()));
        assert_eq!(run(&mut f, &[b"zz\r\n"]).2, Some("bad chunk size"));
        let mut f = Framing::Chunked(ChunkState::Size(Vec::new()));
        let long = vec![b'1'; 5000];
        assert_eq!(run(&mut f, &[&long]).2, Some("chunk size line too long"));
        let mut f = Framing::Chunked(ChunkState::Size(Vec::new()));
        assert_eq!(
            run(&mut f, &[b"fffffffffffffffffff\r\n"]).2,
            Some("bad chunk size")
        );
    }

    #[test]
    fn content_length_and_gaps() {
        let mut f = Framing::Length(10);
        assert_eq!(
            run(&mut f, &[b"0123", b"456789xx"]),
            (b"0123456789".to_vec(), true, None)
        );
        let mut f = Framing::Length(10);
        assert_eq!(f.skip(4), Some(false));
        assert_eq!(f.skip(6), Some(true));
        let mut f = Framing::Length(3);
        assert_eq!(f.skip(4), None);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let once = gzip(b"{\"a\":1}");
        let twice = gzip(&once);
        let codings = parse_codings([&b"identity, gzip"[..], b"gzip"].into_iter()).expect("known");
        assert_eq!(codings, vec![Coding::Gzip, Coding::Gzip]);
        assert_eq!(
            decode(&twice, &codings, 1024, false),
            (b"{\"a\":1}".to_vec(), None)
        );
        assert_eq!(parse_codings([&b"compress"[..]].into_iter()), None);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100_000);
        let (out, issue) = decode(&bomb, &[Coding::Gzip], 1 << 20, false);
        assert_eq!(out.len(), 1 << 20);
        assert_eq!(issue, Some(DecodeIssue::Truncated));
    }

    #[test]
    fn brotli_and_deflate_variants() {
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(b"hello brotli").expect("write");
        }
        assert_eq!(
            decode(&br, &[Coding::Brotli], 100, false).0,
            b"hello brotli"
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib").expect("write");
        let z = z.finish().expect("finish");
        assert_eq!(decode(&z, &[Coding::Deflate], 100, false).0, b"zlib");
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(b"raw").expect("write");
        let r = r.finish().expect("finish");
        assert_eq!(decode(&r, &[Coding::Deflate], 100, false).0, b"raw");
        assert_eq!(
            decode(b"not gzip", &[Coding::Gzip], 100, false).1,
            Some(DecodeIssue::Invalid)
        );
    }
}
