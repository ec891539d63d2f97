/*!
Handshake messages of one direction put back together across records (sans-IO), plaintext
or decrypted alike. Messages up to [`MAX_MESSAGE`] bytes are handed out whole; a larger one
(a long certificate chain) is skipped past, its type still reported, so the message
boundaries that follow stay right.
*/

/// The largest handshake message kept whole.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One direction's handshake message stream.
#[derive(Debug, Default)]
pub struct Messages {
    buf: Vec<u8>,
    /// Body bytes of an oversized message still to skip.
    skip: usize,
}

impl Messages {
    /// Feeds record payload bytes; `on_message(type, body)` gets each message (an
    /// oversized one with an empty body).
    pub fn push(&mut self, mut input: &[u8], on_message: &mut dyn FnMut(u8, &[u8])) {
        while !input.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                continue;
            }
            // Take only what the current message needs, so the buffer stays small.
            let need = if self.buf.len() < 4 {
                4 - self.buf.len()
            } else {
                4 + body_len(&self.buf) - self.buf.len()
            };
            let n = need.min(input.len());
            self.buf.extend_from_slice(&input[..n]);
            input = &input[n..];
            if self.buf.len() < 4 {
                return;
            }
            let len = body_len(&self.buf);
            if len > MAX_MESSAGE {
                on_message(self.buf[0], &[]);
                self.skip = len - (self.buf.len() - 4);
                self.buf.clear();
                continue;
            }
            if self.buf.len() == 4 + len {
                on_message(self.buf[0], &self.buf[4..]);
                self.buf.clear();
            }
        }
    }
}

fn body_len(b: &[u8]) -> usize {
    u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_across_records_and_oversized_skipped() {
        let mut stream = vec![1, 0, 0, 3, b'a', b'b', b'c', 2, 0, 0, 0];
        let big = MAX_MESSAGE + 10;
        stream.extend_from_slice(&[11, (big >> 16) as u8, (big >> 8) as u8, big as u8]);
        stream.extend(std::iter::repeat_n(0u8, big));
        stream.extend_from_slice(&[20, 0, 0, 1, 9]);
        for chunk in [1, 5, 4096] {
            let mut m = Messages::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                m.push(c, &mut |t, b| got.push((t, b.to_vec())));
            }
            assert_eq!(
                got,
                vec![
                    (1, b"abc".to_vec()),
                    (2, vec![]),
                    (11, vec![]),
                    (20, vec![9])
                ]
            );
        }
    }
}
