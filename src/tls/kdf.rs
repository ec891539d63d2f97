/*!
Key derivation: the TLS 1.2 PRF (RFC 5246 §5) that turns a master secret into the key
block, and TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) that turns a traffic secret into a
record key and IV, and into the next generation's secret after a KeyUpdate.
*/

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// The hash a cipher suite names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            // HMAC takes keys of any length: new_from_slice cannot fail.
            match Hmac::<$h>::new_from_slice(key) {
                Ok(mut m) => {
                    for p in parts {
                        m.update(p);
                    }
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }};
    }
    match hash {
        Hash::Sha256 => run!(Sha256),
        Hash::Sha384 => run!(Sha384),
    }
}

/// TLS 1.2 PRF: `P_hash(secret, label + seed)` cut to `len` bytes.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut a = hmac(hash, secret, &[label, seed]);
    while out.len() < len {
        out.extend_from_slice(&hmac(hash, secret, &[&a, label, seed]));
        a = hmac(hash, secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// TLS 1.3 HKDF-Expand-Label(secret, label, context, len); `None` when the secret is
/// shorter than the hash (not a secret of this suite).
pub fn expand_label(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full_len = 6 + label.len();
    let mut info = Vec::with_capacity(4 + full_len + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(u8::try_from(full_len).ok()?);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::keylog::hex;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex(s.as_bytes()).expect("hex")
    }

    /// RFC 8448 §3 (simple 1-RTT handshake): the server's handshake traffic secret and
    /// the key and IV derived from it, and the client's application traffic secret.
    #[test]
    fn rfc8448_traffic_keys() {
        let server_hs = h("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4
            e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38");
        assert_eq!(
            expand_label(Hash::Sha256, &server_hs, b"key", b"", 16),
            Some(h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc"))
        );
        assert_eq!(
            expand_label(Hash::Sha256, &server_hs, b"iv", b"", 12),
            Some(h("5d 31 3e b2 67 12 76 ee 13 00 0b 30"))
        );
        let server_app = h("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32
            82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43");
        assert_eq!(
            expand_label(Hash::Sha256, &server_app, b"key", b"", 16),
            Some(h("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"))
        );
        assert_eq!(
            expand_label(Hash::Sha256, &server_app, b"iv", b"", 12),
            Some(h("cf 78 2b 88 dd 83 54 9a ad f1 e9 84"))
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert_eq!(expand_label(Hash::Sha384, &[0; 32], b"key", b"", 32), None);
    }

    /// The TLS 1.2 PRF with SHA-256 test vector published on the IETF TLS list
    /// (https://mailarchive.ietf.org/arch/msg/tls/fzVCzk-z3FShgGJ6DOXqM1ydxms/).
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = prf(Hash::Sha256, &secret, b"test label", &seed, 100);
        let want = h("e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53
            c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
            6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af
            0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
            4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba
            a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
            87 34 7b 66");
        assert_eq!(out, want);
    }
}
