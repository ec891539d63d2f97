/*!
TLS handshake messages seen in the clear: ClientHello (SNI, ALPN offered, versions,
cipher suites, extensions, signature algorithms, and a JA4 fingerprint), ServerHello
(chosen version, cipher and ALPN) and, for TLS 1.2 and older, the server's Certificate
(subject, SANs, expiry, parsed with x509-parser).

Every parser reads through a bounds-checked cursor; malformed input is an error value,
never a panic.
*/

use sha2::{Digest, Sha256};

/// A bounds-checked reader over a byte slice (after rustls' `codec::Reader`).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }
    /// A sub-reader over a length-prefixed vector (`len_bytes` of length).
    fn vec(&mut self, len_bytes: usize) -> Option<Reader<'a>> {
        let len = match len_bytes {
            1 => self.u8()? as usize,
            2 => self.u16()? as usize,
            _ => self.u24()?,
        };
        self.take(len).map(Reader::new)
    }
    fn rest(&self) -> usize {
        self.buf.len().saturating_sub(self.at)
    }
}

/// GREASE values (RFC 8701) are ignored by fingerprints.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// What a ClientHello says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_versions: Vec<u16>,
    pub cipher_suites: Vec<u16>,
    pub extensions: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
    pub ja4: String,
}

/// What a ServerHello says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerHello {
    /// The negotiated version (supported_versions when present, else legacy_version).
    pub version: u16,
    pub cipher_suite: u16,
    pub alpn: Option<String>,
}

/// The server certificate's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub sans: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
}

/// Parses a ClientHello handshake body (after the 4-byte handshake header).
pub fn client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader::new(body);
    let mut hello = ClientHello {
        legacy_version: r.u16()?,
        ..Default::default()
    };
    r.take(32)?; // random
    r.vec(1)?; // session id
    let mut suites = r.vec(2)?;
    while suites.rest() >= 2 {
        hello.cipher_suites.push(suites.u16()?);
    }
    r.vec(1)?; // compression methods
    if r.rest() >= 2 {
        let mut exts = r.vec(2)?;
        while exts.rest() >= 4 {
            let kind = exts.u16()?;
            let mut data = exts.vec(2)?;
            hello.extensions.push(kind);
            match kind {
                0 => {
                    // server_name: list of (type, name); type 0 is host_name.
                    let mut list = data.vec(2)?;
                    while list.rest() >= 3 {
                        let name_type = list.u8()?;
                        let name = list.vec(2)?;
                        if name_type == 0 && hello.sni.is_none() {
                            hello.sni = Some(String::from_utf8_lossy(name.buf).into_owned());
                        }
                    }
                }
                16 => {
                    let mut list = data.vec(2)?;
                    while list.rest() >= 1 {
                        let proto = list.vec(1)?;
                        hello
                            .alpn
                            .push(String::from_utf8_lossy(proto.buf).into_owned());
                    }
                }
                43 => {
                    let mut list = data.vec(1)?;
                    while list.rest() >= 2 {
                        hello.supported_versions.push(list.u16()?);
                    }
                }
                13 => {
                    let mut list = data.vec(2)?;
                    while list.rest() >= 2 {
                        hello.signature_algorithms.push(list.u16()?);
                    }
                }
                _ => {}
            }
        }
    }
    hello.ja4 = ja4(&hello);
    Some(hello)
}

/// Parses a ServerHello handshake body.
pub fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader::new(body);
    let mut hello = ServerHello {
        version: r.u16()?,
        ..Default::default()
    };
    r.take(32)?;
    r.vec(1)?;
    hello.cipher_suite = r.u16()?;
    r.u8()?; // compression
    if r.rest() >= 2 {
        let mut exts = r.vec(2)?;
        while exts.rest() >= 4 {
            let kind = exts.u16()?;
            let mut data = exts.vec(2)?;
            match kind {
                43 => hello.version = data.u16()?,
                16 => {
                    let mut list = data.vec(2)?;
                    let proto = list.vec(1)?;
                    hello.alpn = Some(String::from_utf8_lossy(proto.buf).into_owned());
                }
                _ => {}
            }
        }
    }
    Some(hello)
}

/// Parses a (TLS 1.2) Certificate handshake body: the first certificate's identity.
pub fn certificate(body: &[u8]) -> Option<CertificateInfo> {
    let mut r = Reader::new(body);
    let mut list = r.vec(3)?;
    let der = list.vec(3)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.buf).ok()?;
    let subject = cert.subject().to_string();
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        Some(format!("{ip:02x?}"))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertificateInfo {
        subject,
        sans,
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".to_string();
    }
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn hex_list(v: &[u16]) -> String {
    v.iter()
        .map(|x| format!("{x:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The JA4 TLS client fingerprint (FoxIO, https://github.com/FoxIO-LLC/ja4), for TCP.
pub fn ja4(h: &ClientHello) -> String {
    let version = h
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(h.legacy_version);
    let sni = if h.sni.is_some() { 'd' } else { 'i' };
    let ciphers: Vec<u16> = h
        .cipher_suites
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = h
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let alpn = match h.alpn.first().map(|a| a.as_bytes()) {
        Some([]) | None => "00".to_string(),
        Some(a) => {
            let (first, last) = (a[0], a[a.len() - 1]);
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", first as char, last as char)
            } else {
                let hex_first = format!("{first:02x}");
                let hex_last = format!("{last:02x}");
                format!("{}{}", &hex_first[..1], &hex_last[1..])
            }
        }
    };
    let a = format!(
        "t{}{}{:02}{:02}{}",
        version_code(version),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        alpn
    );
    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let b = hash12(&hex_list(&sorted_ciphers));
    let mut sorted_exts: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|e| *e != 0 && *e != 16)
        .collect();
    sorted_exts.sort_unstable();
    let sigs: Vec<u16> = h
        .signature_algorithms
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    let c_input = if sigs.is_empty() {
        hex_list(&sorted_exts)
    } else {
        format!("{}_{}", hex_list(&sorted_exts), hex_list(&sigs))
    };
    let c = if sorted_exts.is_empty() {
        "000000000000".to_string()
    } else {
        hash12(&c_input)
    };
    format!("{a}_{b}_{c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with SNI, ALPN, supported_versions, signature algorithms and GREASE.
    pub(crate) fn sample_client_hello() -> Vec<u8> {
        let mut exts = Vec::new();
        let mut ext = |kind: u16, data: &[u8]| {
            exts.extend_from_slice(&kind.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        ext(0x0a0a, &[]);
        let name = b"api.example.com";
        let mut sni = vec![0, (name.len() + 3) as u8, 0, 0, name.len() as u8];
        sni.extend_from_slice(name);
        ext(0, &sni);
        ext(
            16,
            &[
                0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
            ],
        );
        ext(43, &[4, 0x03, 0x04, 0x03, 0x03]);
        ext(13, &[0, 4, 0x04, 0x03, 0x08, 0x04]);
        ext(10, &[0, 2, 0, 0x1d]);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 8, 0x1a, 0x1a, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        body
    }

    #[test]
    fn client_hello_fields_and_ja4() {
        let h = client_hello(&sample_client_hello()).expect("parses");
        assert_eq!(h.sni.as_deref(), Some("api.example.com"));
        assert_eq!(h.alpn, vec!["h2", "http/1.1"]);
        assert_eq!(h.supported_versions, vec![0x0304, 0x0303]);
        assert_eq!(h.cipher_suites, vec![0x1a1a, 0x1301, 0x1302, 0xc02f]);
        // Independently: ciphers "1301,1302,c02f"; extensions without SNI/ALPN sorted
        // "000a,000d,002b", then "_0403,0804" (sha256 via Python's hashlib).
        assert_eq!(h.ja4, "t13d0305h2_40b44b994229_fbabbea27ee8");
    }

    #[test]
    fn truncated_hellos_are_none_not_panics() {
        let full = sample_client_hello();
        for n in 0..full.len() {
            let _ = client_hello(&full[..n]);
            let _ = server_hello(&full[..n]);
            let _ = certificate(&full[..n]);
        }
        assert!(client_hello(&full[..10]).is_none());
    }

    #[test]
    fn server_hello_prefers_supported_versions() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[1; 32]);
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        let exts = [0, 43, 0, 2, 0x03, 0x04, 0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let h = server_hello(&body).expect("parses");
        assert_eq!(
            h,
            ServerHello {
                version: 0x0304,
                cipher_suite: 0x1301,
                alpn: Some("h2".into())
            }
        );
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }
}
