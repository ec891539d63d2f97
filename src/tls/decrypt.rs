/*!
The decrypting half of a TLS connection (sans-IO): given the suite, both randoms and the
secrets from the key log, it takes whole records of either direction and gives back the
application data in them.

TLS 1.2: the key block comes from the master secret (RFC 5246 §6.3); each direction turns
encrypted after its ChangeCipherSpec, with sequence numbers from zero. TLS 1.3 (RFC 8446
§7): each direction starts under its handshake traffic secret right after the ServerHello,
moves to its application traffic secret after its Finished, and to the next generation
after a KeyUpdate; the content type is the last non-zero byte of the inner plaintext. The
decrypted handshake is read for the ALPN in EncryptedExtensions.
*/

use std::ops::Range;

use super::cipher::{OpenError, Protection, Suite};
use super::handshake::Messages;
use super::kdf;
use super::keylog::Secrets;
use super::record::Header;

/// Why a connection is not (or no longer) decrypted; the name shown on its opaque line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// No secret for this client random.
    NoKey,
    /// A resumed session (session id, ticket or PSK) and no secret for it.
    ResumedNoKey,
    /// A cipher suite this reader does not decrypt (CBC, stream ciphers, SSL).
    UnsupportedSuite,
    /// The secrets do not fit the suite (wrong length).
    BadKey,
    /// A record's tag did not verify: wrong key, or the bytes were changed.
    BadTag,
    /// A record longer than the protocol allows.
    RecordTooLong,
    /// The handshake was not captured (joined midstream).
    Midstream,
    /// Bytes were missing: record boundaries and sequence numbers are lost.
    Gap,
}

impl Why {
    /// The name used in output and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::NoKey => "no_key",
            Why::ResumedNoKey => "resumed_no_key",
            Why::UnsupportedSuite => "unsupported_suite",
            Why::BadKey => "bad_key",
            Why::BadTag => "bad_tag",
            Why::RecordTooLong => "record_too_long",
            Why::Midstream => "midstream",
            Why::Gap => "gap",
        }
    }
}

/// TLS 1.3 state of one direction.
#[derive(Debug)]
struct Dir13 {
    /// The traffic secret in use once the handshake is over (generation 0, then each
    /// KeyUpdate's).
    app_secret: Vec<u8>,
    /// The handshake of this direction is over (Finished sent).
    finished: bool,
    messages: Messages,
}

/// One direction's keys.
#[derive(Debug)]
struct Dir {
    /// Protection in use; `None` while this direction is plaintext.
    active: Option<Protection>,
    /// TLS 1.2: the keys that take over at this direction's ChangeCipherSpec.
    pending: Option<Protection>,
    tls13: Option<Dir13>,
}

/// What one record gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Not protected: a plaintext record (handshake, ChangeCipherSpec, alert).
    Plaintext,
    /// Decrypted; not application data (handshake, alert).
    Control,
    /// Application data at this range of the record buffer.
    Data(Range<usize>),
}

/// The keys of both directions of one connection.
#[derive(Debug)]
pub struct Session {
    suite: Suite,
    /// Client to server, server to client.
    dirs: [Dir; 2],
    /// ALPN read from EncryptedExtensions (TLS 1.3).
    pub alpn: Option<String>,
}

fn tls13_dir(suite: Suite, handshake: &[u8], app: &[u8]) -> Result<Dir, Why> {
    Ok(Dir {
        active: Some(Protection::tls13(suite, handshake).ok_or(Why::BadKey)?),
        pending: None,
        tls13: Some(Dir13 {
            app_secret: app.to_vec(),
            finished: false,
            messages: Messages::default(),
        }),
    })
}

impl Session {
    /// Keys for a connection, or why there are none.
    pub fn new(
        suite: Suite,
        secrets: &Secrets,
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Result<Session, Why> {
        let dirs = if suite.tls13 {
            let (Some(ch), Some(sh), Some(ca), Some(sa)) = (
                &secrets.client_handshake,
                &secrets.server_handshake,
                &secrets.client_traffic,
                &secrets.server_traffic,
            ) else {
                return Err(Why::NoKey);
            };
            [tls13_dir(suite, ch, ca)?, tls13_dir(suite, sh, sa)?]
        } else {
            let master = secrets.master.as_deref().ok_or(Why::NoKey)?;
            let dir = |client| -> Result<Dir, Why> {
                Ok(Dir {
                    active: None,
                    pending: Some(
                        Protection::tls12(suite, master, client_random, server_random, client)
                            .ok_or(Why::BadKey)?,
                    ),
                    tls13: None,
                })
            };
            [dir(true)?, dir(false)?]
        };
        Ok(Session {
            suite,
            dirs,
            alpn: None,
        })
    }

    /// One whole record (header included) of direction `dir` (0: from the client).
    /// Decrypts it in place when this direction is protected.
    pub fn record(&mut self, dir: usize, header: Header, record: &mut [u8]) -> Result<Opened, Why> {
        let suite = self.suite;
        let Some(d) = self.dirs.get_mut(dir) else {
            return Ok(Opened::Plaintext);
        };
        if header.kind == 20 {
            // ChangeCipherSpec is never encrypted; in TLS 1.2 the keys change after it.
            if d.tls13.is_none() {
                if let Some(p) = d.pending.take() {
                    d.active = Some(p);
                }
            }
            return Ok(Opened::Plaintext);
        }
        let Some(p) = d.active.as_mut() else {
            return Ok(Opened::Plaintext);
        };
        if d.tls13.is_some() && header.kind != 23 {
            // TLS 1.3 protected records are all typed application data; an alert sent
            // in the clear (before the peer had keys) is not.
            return Ok(Opened::Plaintext);
        }
        let range = match p.open(record) {
            Ok(r) => r,
            Err(OpenError::BadTag | OpenError::TooShort) => return Err(Why::BadTag),
        };
        let Some(t13) = d.tls13.as_mut() else {
            return Ok(match header.kind {
                23 => Opened::Data(range),
                _ => Opened::Control,
            });
        };
        // TLS 1.3 inner plaintext: content, content type, zero padding.
        let inner = &record[range.clone()];
        let Some(type_at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(Why::BadTag);
        };
        let content = range.start..range.start + type_at;
        match inner[type_at] {
            23 => Ok(Opened::Data(content)),
            22 => {
                let mut finished = false;
                let mut key_update = false;
                let mut alpn = None;
                t13.messages
                    .push(&record[content], &mut |kind, body| match kind {
                        8 => alpn = encrypted_extensions_alpn(body),
                        20 => finished = true,
                        24 => key_update = true,
                        _ => {}
                    });
                if alpn.is_some() {
                    self.alpn = alpn;
                }
                if finished && !t13.finished {
                    t13.finished = true;
                    d.active = Some(Protection::tls13(suite, &t13.app_secret).ok_or(Why::BadKey)?);
                } else if key_update && t13.finished {
                    let next = kdf::expand_label(
                        suite.hash,
                        &t13.app_secret,
                        b"traffic upd",
                        b"",
                        suite.hash.output_len(),
                    )
                    .ok_or(Why::BadKey)?;
                    d.active = Some(Protection::tls13(suite, &next).ok_or(Why::BadKey)?);
                    t13.app_secret = next;
                }
                Ok(Opened::Control)
            }
            _ => Ok(Opened::Control),
        }
    }
}

/// The protocol chosen in an EncryptedExtensions body (extension 16).
pub fn encrypted_extensions_alpn(body: &[u8]) -> Option<String> {
    let len = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut exts = body.get(2..2 + len)?;
    while exts.len() >= 4 {
        let kind = u16::from_be_bytes([exts[0], exts[1]]);
        let n = u16::from_be_bytes([exts[2], exts[3]]) as usize;
        let data = exts.get(4..4 + n)?;
        if kind == 16 {
            // protocol_name_list: u16 length, then one u8-length name.
            let name_len = *data.get(2)? as usize;
            let name = data.get(3..3 + name_len)?;
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        exts = &exts[4 + n..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::cipher::suite;

    #[test]
    fn alpn_from_encrypted_extensions() {
        // server_name (empty), then ALPN "h2".
        let body = [0, 13, 0, 0, 0, 0, 0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
        assert_eq!(encrypted_extensions_alpn(&body).as_deref(), Some("h2"));
        assert_eq!(encrypted_extensions_alpn(&body[..9]), None);
        assert_eq!(encrypted_extensions_alpn(&[0, 0]), None);
    }

    #[test]
    fn tls13_without_traffic_secrets_has_no_key() {
        let s = Secrets {
            client_handshake: Some(vec![1; 32]),
            ..Secrets::default()
        };
        let suite = suite(0x1301).expect("suite");
        assert_eq!(
            Session::new(suite, &s, &[0; 32], &[0; 32]).err(),
            Some(Why::NoKey)
        );
    }

    #[test]
    fn tls12_keys_take_over_at_change_cipher_spec() {
        let s = Secrets {
            master: Some(vec![3; 48]),
            ..Secrets::default()
        };
        let suite = suite(0xc02f).expect("suite");
        let mut session = Session::new(suite, &s, &[1; 32], &[2; 32]).expect("keys");
        let h = |kind, len| Header {
            kind,
            version: 0x0303,
            len,
        };
        let mut plain = [22, 3, 3, 0, 1, 0];
        assert_eq!(
            session.record(0, h(22, 1), &mut plain),
            Ok(Opened::Plaintext)
        );
        let mut ccs = [20, 3, 3, 0, 1, 1];
        assert_eq!(session.record(0, h(20, 1), &mut ccs), Ok(Opened::Plaintext));
        let mut junk = [22, 3, 3, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0]
            .into_iter()
            .chain([0; 40 - 8])
            .collect::<Vec<u8>>();
        assert_eq!(session.record(0, h(22, 40), &mut junk), Err(Why::BadTag));
        // The server direction is still plaintext.
        assert_eq!(
            session.record(1, h(22, 1), &mut plain),
            Ok(Opened::Plaintext)
        );
    }
}
