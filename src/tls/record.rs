/*!
TLS records of one direction put back together across TCP segments (sans-IO).

Bytes go in with [`Records::push`]; each complete record comes out whole (header and
payload in one buffer) through a callback, or, in skip mode, only its header is looked at
and its payload counted past without being copied. At most one record is buffered:
[`MAX_RECORD`] payload bytes plus the header.
*/

/// The largest record payload accepted: 2^14 + 256, the TLS 1.3 ciphertext limit
/// (RFC 8446 §5.2), which every AEAD record of TLS 1.2 also keeps (2^14 plaintext plus an
/// 8-byte explicit nonce and a 16-byte tag).
pub const MAX_RECORD: usize = (1 << 14) + 256;

/// The record header length.
pub const HEADER: usize = 5;

/// What became of the bytes pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A record announced a payload longer than [`MAX_RECORD`]; the reader switched to
    /// skip mode.
    TooLong,
}

/// One direction's record reader.
#[derive(Debug, Default)]
pub struct Records {
    /// The record being assembled (header first).
    buf: Vec<u8>,
    /// Skip mode: payloads are counted, not kept.
    skipping: bool,
    /// Payload bytes still to skip in the current record.
    skip: usize,
}

/// A record header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub version: u16,
    pub len: usize,
}

impl Header {
    /// Reads the 5-byte header at the start of `b`.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h = b.get(..HEADER)?;
        Some(Header {
            kind: h[0],
            version: u16::from_be_bytes([h[1], h[2]]),
            len: u16::from_be_bytes([h[3], h[4]]) as usize,
        })
    }
}

impl Records {
    /// A reader that keeps whole records.
    pub fn new() -> Self {
        Records::default()
    }

    /// Stops keeping payloads (the connection will not be decrypted): later records only
    /// have their header reported. A record in progress is finished in skip mode.
    pub fn skip_payloads(&mut self) {
        if self.skipping {
            return;
        }
        self.skipping = true;
        if let Some(h) = Header::parse(&self.buf) {
            self.skip = h.len.saturating_sub(self.buf.len() - HEADER);
            self.buf.clear();
        }
    }

    /// True in skip mode.
    pub fn skipping(&self) -> bool {
        self.skipping
    }

    /// Bytes of an unfinished record held (a record cut short when the stream ends).
    pub fn pending(&self) -> usize {
        self.buf.len() + self.skip
    }

    /// Drops what is held (after a gap, the record boundaries are lost).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skip = 0;
    }

    /// Feeds in-order bytes. `on_record` gets each complete record (header and payload;
    /// in skip mode the header only, payload not included) and may change the mode through
    /// the reader it is handed back. Returns a problem met, if any; reading goes on in skip
    /// mode after it.
    pub fn push(
        &mut self,
        mut input: &[u8],
        on_record: &mut dyn FnMut(&mut Records, Header, &mut [u8]),
    ) -> Option<Problem> {
        let mut problem = None;
        while !input.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                continue;
            }
            if self.buf.len() < HEADER {
                let n = (HEADER - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..n]);
                input = &input[n..];
                if self.buf.len() < HEADER {
                    break;
                }
            }
            let Some(header) = Header::parse(&self.buf) else {
                break;
            };
            if !self.skipping && header.len > MAX_RECORD {
                problem = Some(Problem::TooLong);
                self.skipping = true;
            }
            if self.skipping {
                self.skip = header.len;
                let mut head = std::mem::take(&mut self.buf);
                on_record(self, header, &mut head);
                head.clear();
                self.buf = head;
                continue;
            }
            let want = HEADER + header.len - self.buf.len();
            let n = want.min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            input = &input[n..];
            if n < want {
                break;
            }
            let mut record = std::mem::take(&mut self.buf);
            on_record(self, header, &mut record);
            record.clear();
            self.buf = record;
        }
        problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn collect(r: &mut Records, input: &[u8], chunk: usize) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            r.push(c, &mut |_, h, rec| out.push((h.kind, rec.to_vec())));
        }
        out
    }

    #[test]
    fn records_across_segments_in_odd_chunks() {
        let stream = [record(22, b"hello"), record(23, &[9; 300]), record(21, b"")].concat();
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut r = Records::new();
            let got = collect(&mut r, &stream, chunk);
            assert_eq!(got.len(), 3, "chunk {chunk}");
            assert_eq!(got[1].1.len(), 305);
            assert_eq!(got[2], (21, record(21, b"")));
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn too_long_switches_to_skipping() {
        let mut big = vec![23, 3, 3];
        big.extend_from_slice(&((MAX_RECORD + 1) as u16).to_be_bytes());
        big.extend_from_slice(&vec![0; MAX_RECORD + 1]);
        let stream = [big, record(23, b"after")].concat();
        let mut r = Records::new();
        let mut heads = Vec::new();
        let p = r.push(&stream, &mut |_, h, _| heads.push(h.len));
        assert_eq!(p, Some(Problem::TooLong));
        assert_eq!(heads, vec![MAX_RECORD + 1, 5]);
        assert!(r.skipping());
    }

    #[test]
    fn truncated_record_is_pending() {
        let mut r = Records::new();
        let rec = record(23, &[1; 50]);
        let got = collect(&mut r, &rec[..30], 4);
        assert!(got.is_empty());
        assert_eq!(r.pending(), 30);
        r.skip_payloads();
        assert_eq!(r.pending(), 25, "the rest of the payload is skipped");
    }
}
