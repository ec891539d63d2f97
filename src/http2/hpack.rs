/*!
A passive HPACK decoder (RFC 7541) that survives a dynamic table it never saw filled.

A sensor that joins a connection midstream has missed the header blocks that filled the
peer's dynamic table. A conventional decoder fails on the first reference to such an
entry and loses the rest of the block. This one keeps only the entries it saw added: the
newest entries sit at the lowest dynamic indexes (62, 63...), so those it knows keep their
right index even when older, unseen ones exist beyond them. A reference past the known
entries yields an unknown field (counted as a desync) and decoding goes on with the next
field, so literal `:path` values are still read. Huffman strings are decoded by
[`super::huffman`].

Bounds: the dynamic table size is capped at [`MAX_TABLE_SIZE`] whatever size updates ask
for, and a block decodes to at most [`MAX_LIST_SIZE`] bytes of fields.
*/

use std::collections::VecDeque;

/// Largest dynamic table we keep (Suricata's HTTP2_MAX_TABLESIZE).
pub const MAX_TABLE_SIZE: usize = 65_536;
/// Largest decoded header list per block (name + value + 32 per field, as RFC 7541 counts).
pub const MAX_LIST_SIZE: usize = 256 * 1024;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// A decoded field; `name` is None when it referred to an entry we never saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// What went wrong in a block. Decoding stops at such errors (the encoding itself is
/// broken), unlike unknown references, which only skip one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An integer or string runs past the end of the block.
    Truncated,
    /// An integer larger than any sane size.
    Overflow,
    /// Invalid Huffman code.
    Huffman,
    /// The block decodes to more than [`MAX_LIST_SIZE`].
    ListTooLarge,
}

/// Counts of one block's oddities.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockReport {
    /// Fields whose name or value referred to an unseen dynamic entry.
    pub unknown: u32,
    /// Table size updates above our cap (clamped).
    pub oversized_updates: u32,
}

/// One direction's decoding context.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            // The protocol's initial SETTINGS_HEADER_TABLE_SIZE.
            max_size: 4096,
        }
    }
}

fn integer(buf: &[u8], at: &mut usize, prefix_bits: u8) -> Result<usize, Error> {
    let first = *buf.get(*at).ok_or(Error::Truncated)?;
    *at += 1;
    let mask = (1u16 << prefix_bits) as u8 - 1;
    let mut value = (first & mask) as usize;
    if value < mask as usize {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let b = *buf.get(*at).ok_or(Error::Truncated)?;
        *at += 1;
        if shift > 28 {
            return Err(Error::Overflow);
        }
        value += ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

fn string(buf: &[u8], at: &mut usize) -> Result<Vec<u8>, Error> {
    let huffman = buf.get(*at).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = integer(buf, at, 7)?;
    let raw = buf
        .get(*at..at.saturating_add(len))
        .ok_or(Error::Truncated)?;
    *at += len;
    if huffman {
        super::huffman::decode(raw).map_err(|_| Error::Huffman)
    } else {
        Ok(raw.to_vec())
    }
}

impl Decoder {
    /// A decoder with the initial table size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries currently known.
    pub fn known_entries(&self) -> usize {
        self.table.len()
    }

    fn entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match index {
            0 => None,
            1..=61 => STATIC_TABLE.get(index - 1).map(|(n, v)| (*n, *v)),
            _ => self.table.get(index - 62).map(|(n, v)| (&n[..], &v[..])),
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let cost = name.len() + value.len() + 32;
        if cost > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - cost);
        self.size += cost;
        self.table.push_front((name, value));
    }

    /// Decodes one complete header block, calling `out` for every field in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        out: &mut dyn FnMut(Field),
    ) -> Result<BlockReport, Error> {
        let mut report = BlockReport::default();
        let mut at = 0;
        let mut list_size = 0usize;
        while at < block.len() {
            let b = block[at];
            let field = if b & 0x80 != 0 {
                // Indexed field.
                let index = integer(block, &mut at, 7)?;
                match self.entry(index) {
                    Some((n, v)) if !n.is_empty() => Field {
                        name: Some(n.to_vec()),
                        value: Some(v.to_vec()),
                    },
                    Some((_, v)) => Field {
                        name: None,
                        value: Some(v.to_vec()),
                    },
                    None => Field {
                        name: None,
                        value: None,
                    },
                }
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update.
                let size = integer(block, &mut at, 5)?;
                if size > MAX_TABLE_SIZE {
                    report.oversized_updates += 1;
                }
                self.max_size = size.min(MAX_TABLE_SIZE);
                self.evict_to(self.max_size);
                continue;
            } else {
                // Literal: with incremental indexing (01), without (0000) or never (0001).
                let (indexing, prefix) = if b & 0xc0 == 0x40 {
                    (true, 6)
                } else {
                    (false, 4)
                };
                let name_index = integer(block, &mut at, prefix)?;
                let name = if name_index == 0 {
                    Some(string(block, &mut at)?)
                } else {
                    self.entry(name_index)
                        .filter(|(n, _)| !n.is_empty())
                        .map(|(n, _)| n.to_vec())
                };
                let value = string(block, &mut at)?;
                if indexing {
                    // An entry whose name we could not resolve is kept with an empty name
                    // (it resolves to an unknown field) so later entries keep their index.
                    // Its true size is unknown; counting the value only may evict late.
                    self.insert(name.clone().unwrap_or_default(), value.clone());
                }
                Field {
                    name,
                    value: Some(value),
                }
            };
            if field.name.is_none() {
                report.unknown += 1;
            }
            list_size += field.name.as_ref().map_or(0, Vec::len)
                + field.value.as_ref().map_or(0, Vec::len)
                + 32;
            if list_size > MAX_LIST_SIZE {
                return Err(Error::ListTooLarge);
            }
            out(field);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(d: &mut Decoder, block: &[u8]) -> (Vec<(String, String)>, BlockReport) {
        let mut fields = Vec::new();
        let report = d
            .decode(block, &mut |f| {
                let s = |b: Option<Vec<u8>>| {
                    b.map_or("?".to_string(), |b| {
                        String::from_utf8_lossy(&b).into_owned()
                    })
                };
                fields.push((s(f.name), s(f.value)))
            })
            .expect("decodes");
        (fields, report)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// RFC 7541 C.3: requests without Huffman, sharing the dynamic table.
    #[test]
    fn rfc7541_c3_requests() {
        let mut d = Decoder::new();
        let c31 = [
            0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p',
            b'l', b'e', b'.', b'c', b'o', b'm',
        ];
        assert_eq!(
            decode(&mut d, &c31).0,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        let c32 = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, b'n', b'o', b'-', b'c', b'a', b'c', b'h', b'e',
        ];
        assert_eq!(
            decode(&mut d, &c32).0,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
    }

    /// RFC 7541 C.4.1: the same with Huffman coding.
    #[test]
    fn rfc7541_c4_huffman() {
        let mut d = Decoder::new();
        let c41 = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            decode(&mut d, &c41).0,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
    }

    #[test]
    fn midstream_unknown_entries_are_skipped_and_literals_still_read() {
        let mut d = Decoder::new();
        // Indexed 70 (never seen), then a literal :path (static name 4) without indexing.
        let block = [0x80 | 70, 0x04, 0x06, b'/', b'u', b's', b'e', b'r', b's'];
        let (fields, report) = decode(&mut d, &block);
        assert_eq!(fields, pairs(&[("?", "?"), (":path", "/users")]));
        assert_eq!(report.unknown, 1);
    }

    #[test]
    fn table_size_updates_are_capped_and_bad_input_is_an_error() {
        let mut d = Decoder::new();
        // Size update to 2^21 (an HPACK bomb's first step).
        let block = [0x3f, 0xe1, 0xff, 0x7f];
        let (_, report) = decode(&mut d, &block);
        assert_eq!(report.oversized_updates, 1);
        assert!(d.max_size <= MAX_TABLE_SIZE);
        assert_eq!(d.decode(&[0x41, 0x7f], &mut |_| {}), Err(Error::Truncated));
        assert_eq!(d.decode(&[0xff, 0xff], &mut |_| {}), Err(Error::Truncated));
        assert_eq!(d.decode(&[0xff; 7], &mut |_| {}), Err(Error::Overflow));
        assert_eq!(
            d.decode(
                &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                &mut |_| {}
            ),
            Err(Error::Overflow)
        );
    }

    #[test]
    fn eviction_keeps_the_table_within_its_size() {
        let mut d = Decoder::new();
        for i in 0..1000u32 {
            let v = format!("value-{i:04}-{}", "x".repeat(100));
            let mut block = vec![0x40, 0x03, b'k', b'e', b'y', v.len() as u8];
            block.extend_from_slice(v.as_bytes());
            decode(&mut d, &block);
            assert!(d.size <= 4096);
        }
        assert!(d.known_entries() < 40);
    }
}
