/*!
Cipher suites this reader can decrypt, and the record protection of one direction: an
AEAD key, its IV and the record sequence number.

Supported: TLS 1.3's three common suites, and TLS 1.2 AEAD suites with RSA, DHE or ECDHE
key exchange (the key exchange does not matter once the master secret is known) using
AES-128/256-GCM (RFC 5288, an 8-byte explicit nonce in each record) or ChaCha20-Poly1305
(RFC 7905, the nonce is the IV xor the sequence number). CBC and stream ciphers are not
supported: their connections stay opaque, with the reason.
*/

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;

use super::kdf::{self, Hash};

/// Length of an AEAD tag (all supported algorithms).
pub const TAG_LEN: usize = 16;

/// AEAD algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }
}

/// What a cipher suite number means for decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub aead: Aead,
    pub hash: Hash,
    /// A TLS 1.3 suite.
    pub tls13: bool,
}

/// The suite a number names, if supported.
pub fn suite(id: u16) -> Option<Suite> {
    use Aead::*;
    use Hash::*;
    let (aead, hash, tls13) = match id {
        0x1301 => (Aes128Gcm, Sha256, true),
        0x1302 => (Aes256Gcm, Sha384, true),
        0x1303 => (ChaCha20Poly1305, Sha256, true),
        // RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA with AES-GCM (RFC 5288, RFC 5289).
        0x009c | 0x009e | 0xc02b | 0xc02f => (Aes128Gcm, Sha256, false),
        0x009d | 0x009f | 0xc02c | 0xc030 => (Aes256Gcm, Sha384, false),
        // ECDHE_RSA, ECDHE_ECDSA, DHE_RSA with ChaCha20-Poly1305 (RFC 7905).
        0xcca8..=0xccaa => (ChaCha20Poly1305, Sha256, false),
        _ => return None,
    };
    Some(Suite { aead, hash, tls13 })
}

#[derive(Clone)]
enum Key {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    fn new(aead: Aead, key: &[u8]) -> Option<Key> {
        Some(match aead {
            Aead::Aes128Gcm => Key::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Aead::Aes256Gcm => Key::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Aead::ChaCha20Poly1305 => {
                Key::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        })
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        let (nonce, tag) = (
            GenericArray::from_slice(nonce),
            GenericArray::from_slice(tag),
        );
        match self {
            Key::Aes128(k) => k.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
            Key::Aes256(k) => k.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
            Key::ChaCha(k) => k.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
        }
    }
}

/// Why a record did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its explicit nonce and tag.
    TooShort,
    /// The tag did not verify: wrong key, or the bytes were changed.
    BadTag,
}

/// One direction's record protection: key, IV, sequence number.
#[derive(Debug, Clone)]
pub struct Protection {
    key: Key,
    /// 12 bytes (TLS 1.3, ChaCha20) or the 4-byte salt (TLS 1.2 GCM).
    iv: Vec<u8>,
    /// Sequence number of the next record.
    pub seq: u64,
    /// TLS 1.2 GCM: an 8-byte explicit nonce starts each record.
    explicit_nonce: bool,
    tls13: bool,
}

impl Protection {
    /// TLS 1.2: this direction's keys from the key block (`client` says which half).
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8],
        server_random: &[u8],
        client: bool,
    ) -> Option<Protection> {
        let key_len = suite.aead.key_len();
        let iv_len = match suite.aead {
            Aead::ChaCha20Poly1305 => 12,
            _ => 4,
        };
        let seed = [server_random, client_random].concat();
        let block = kdf::prf(
            suite.hash,
            master,
            b"key expansion",
            &seed,
            2 * (key_len + iv_len),
        );
        let (keys, ivs) = block.split_at(2 * key_len);
        let (key, iv) = if client {
            (&keys[..key_len], &ivs[..iv_len])
        } else {
            (&keys[key_len..], &ivs[iv_len..])
        };
        Some(Protection {
            key: Key::new(suite.aead, key)?,
            iv: iv.to_vec(),
            seq: 0,
            explicit_nonce: iv_len == 4,
            tls13: false,
        })
    }

    /// TLS 1.3: keys from a traffic secret.
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<Protection> {
        let key = kdf::expand_label(suite.hash, secret, b"key", b"", suite.aead.key_len())?;
        let iv = kdf::expand_label(suite.hash, secret, b"iv", b"", 12)?;
        Some(Protection {
            key: Key::new(suite.aead, &key)?,
            iv,
            seq: 0,
            explicit_nonce: false,
            tls13: true,
        })
    }

    /// Decrypts one record in place. `record` is the whole record, header included; on
    /// success returns the plaintext's range in it (TLS 1.3: the inner plaintext, content
    /// type and padding still at its end). The sequence number advances either way.
    pub fn open(&mut self, record: &mut [u8]) -> Result<std::ops::Range<usize>, OpenError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let explicit = if self.explicit_nonce { 8 } else { 0 };
        if record.len() < 5 + explicit + TAG_LEN {
            return Err(OpenError::TooShort);
        }
        let mut nonce = [0u8; 12];
        if self.explicit_nonce {
            nonce[..4].copy_from_slice(&self.iv[..4]);
            nonce[4..].copy_from_slice(&record[5..13]);
        } else {
            nonce.copy_from_slice(&self.iv[..12]);
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
        }
        let start = 5 + explicit;
        let end = record.len() - TAG_LEN;
        let mut aad = [0u8; 13];
        let aad: &[u8] = if self.tls13 {
            aad[..5].copy_from_slice(&record[..5]);
            &aad[..5]
        } else {
            aad[..8].copy_from_slice(&seq.to_be_bytes());
            aad[8..11].copy_from_slice(&record[..3]);
            aad[11..].copy_from_slice(&((end - start) as u16).to_be_bytes());
            &aad[..]
        };
        let (head, tag) = record.split_at_mut(end);
        if self.key.open(&nonce, aad, &mut head[start..], tag) {
            Ok(start..end)
        } else {
            Err(OpenError::BadTag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::keylog::hex;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex(s.as_bytes()).expect("hex")
    }

    /// RFC 8448 §3: the server's first application record (after the handshake), sealed
    /// with the server application traffic secret, a NewSessionTicket.
    #[test]
    fn rfc8448_new_session_ticket_record() {
        let secret = h("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32
            82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43");
        let suite = suite(0x1301).expect("supported");
        let mut p = Protection::tls13(suite, &secret).expect("keys");
        let mut record = h("17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5
            13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6 b5 80 dc f3 d1
            1d 63 c7 58 db 28 9a 01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88
            91 a3 8e fb cf 57 53 ad 8e f1 70 ad 3c 73 53 d1 6d 9d a7 73 b9
            ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0 9c 30 ba 1e 62 97 2a c4
            6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15 13 98 91 d5 e4
            c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77 f8 1b
            5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa
            c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51
            37 12 1c 74 bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86
            96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b f1 59 85 68 4f");
        let range = p.open(&mut record).expect("tag verifies");
        let plain = &record[range];
        // NewSessionTicket (4), then the inner content type: handshake (22).
        assert_eq!(plain[0], 4);
        assert_eq!(plain.last(), Some(&22));
        assert_eq!(p.seq, 1);
    }

    #[test]
    fn a_changed_byte_fails_the_tag() {
        let suite = suite(0x1303).expect("supported");
        let mut p = Protection::tls13(suite, &[7; 32]).expect("keys");
        let mut record = vec![23, 3, 3, 0, 20];
        record.extend_from_slice(&[0; 20]);
        assert_eq!(p.open(&mut record), Err(OpenError::BadTag));
        assert_eq!(p.open(&mut record[..10]), Err(OpenError::TooShort));
    }

    #[test]
    fn unsupported_suites() {
        assert!(suite(0x002f).is_none(), "RSA_WITH_AES_128_CBC_SHA");
        assert!(suite(0xc02f).is_some_and(|s| !s.tls13 && s.aead == Aead::Aes128Gcm));
    }
}
