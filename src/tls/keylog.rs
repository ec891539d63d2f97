/*!
TLS session keys in the NSS key log format, the file browsers, curl, OpenSSL, Go and Java
agents write when `SSLKEYLOGFILE` is set, and the secrets a pcapng Decryption Secrets Block
carries (`editcap --inject-secrets tls,FILE` writes the same lines into the capture).

One line per secret: `LABEL <client random, 64 hex> <secret, hex>`. Lines starting with
`#` are comments. The labels read are `CLIENT_RANDOM` (TLS 1.2 master secret, 48 bytes) and
the TLS 1.3 ones (`CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
`CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`, `EXPORTER_SECRET`); other labels
(`RSA`, early secrets) are counted and ignored. A line that does not parse is counted with
its line number and skipped: a bad line never stops the others.

[`KeyLog`] is the index by client random. Parsing is sans-IO ([`KeyLog::add_text`]);
[`KeyLog::open`] and [`KeyLog::refresh`] add the file reading, and `refresh` picks up
complete lines appended since the last call, for a sensor whose clients keep writing.
*/

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bad lines remembered with their number (all are counted).
pub const MAX_BAD_LINES_KEPT: usize = 32;

/// A partial last line longer than this is dropped as bad (no key log line is near it).
pub const MAX_LINE: usize = 4096;

/// A client random: the key log's index.
pub type ClientRandom = [u8; 32];

/// Every secret known for one client random.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 (and older): the 48-byte master secret.
    pub master: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_TRAFFIC_SECRET_0`.
    pub client_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `EXPORTER_SECRET` (kept for completeness; not needed to decrypt).
    pub exporter: Option<Vec<u8>>,
}

/// Why a line was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    /// Not three fields.
    Fields,
    /// The client random is not 64 hex digits.
    ClientRandom,
    /// The secret is not hex, or has a length no label uses.
    Secret,
    /// Longer than [`MAX_LINE`], or not text.
    TooLong,
}

impl BadLine {
    /// A short name for counters and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            BadLine::Fields => "fields",
            BadLine::ClientRandom => "client_random",
            BadLine::Secret => "secret",
            BadLine::TooLong => "too_long",
        }
    }
}

/// Which secret a label names.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Master,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic,
    ServerTraffic,
    Exporter,
}

/// A growing key log file and where it was read up to: hands out the complete lines
/// appended since the last read, for a sensor whose clients keep writing.
#[derive(Debug, Clone)]
pub struct KeyLogFile {
    path: PathBuf,
    offset: u64,
    /// Bytes of an incomplete last line, kept until its newline arrives.
    partial: Vec<u8>,
}

/// What [`KeyLogFile::read_appended`] found.
#[derive(Debug, Default)]
pub struct Appended {
    /// Complete lines, each with its newline.
    pub text: Vec<u8>,
    /// An incomplete last line grew past [`MAX_LINE`] and was dropped.
    pub dropped_long_line: bool,
}

impl KeyLogFile {
    /// A reader of `path` from its start.
    pub fn new(path: &Path) -> Self {
        KeyLogFile {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines appended to the file since the last read. A file that shrank
    /// (rotated, truncated) is read again from its start.
    pub fn read_appended(&mut self) -> std::io::Result<Appended> {
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut new = Vec::new();
        f.take(len - self.offset).read_to_end(&mut new)?;
        self.offset += new.len() as u64;
        let mut text = std::mem::take(&mut self.partial);
        text.extend_from_slice(&new);
        // Only complete lines: the writer may be in the middle of one.
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let rest = text.split_off(complete);
        let dropped_long_line = rest.len() > MAX_LINE;
        if !dropped_long_line {
            self.partial = rest;
        }
        Ok(Appended {
            text,
            dropped_long_line,
        })
    }
}

/// The index of session secrets by client random.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    map: HashMap<ClientRandom, Secrets>,
    /// Lines read (comments and blank lines included).
    pub lines: u64,
    /// Secrets stored.
    pub secrets: u64,
    /// Lines with a label this reader does not use (`RSA`, early traffic secrets).
    pub ignored: u64,
    /// Lines that did not parse.
    pub bad: u64,
    /// The first [`MAX_BAD_LINES_KEPT`] bad lines: (line number, why).
    pub bad_lines: Vec<(u64, BadLine)>,
    file: Option<KeyLogFile>,
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits (an even number of them).
pub fn hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(hex_nibble(p[0])? << 4 | hex_nibble(p[1])?))
        .collect()
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Reads a key log file, and remembers it so [`KeyLog::refresh`] can read what is
    /// appended later.
    pub fn open(path: &Path) -> std::io::Result<KeyLog> {
        let mut log = KeyLog {
            file: Some(KeyLogFile::new(path)),
            ..KeyLog::default()
        };
        log.refresh()?;
        Ok(log)
    }

    /// Reads the complete lines appended to the file since the last read; returns how many
    /// secrets were added. A file that shrank (rotated, truncated) is read again from its
    /// start. Without a file, does nothing.
    pub fn refresh(&mut self) -> std::io::Result<u64> {
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let appended = file.read_appended()?;
        Ok(self.add_appended(&appended))
    }

    /// Adds what a [`KeyLogFile`] read; returns how many secrets were added.
    pub fn add_appended(&mut self, appended: &Appended) -> u64 {
        let added = self.add_text(&appended.text);
        if appended.dropped_long_line {
            self.lines += 1;
            self.bad_line(BadLine::TooLong);
        }
        added
    }

    /// Takes the file this log reads from, leaving a log of what was read so far: a
    /// pipeline reads appended lines once and hands them to each of its flow tables.
    pub fn take_file(&mut self) -> Option<KeyLogFile> {
        self.file.take()
    }

    /// Adds key log text (whole lines; a last line without newline is read too). Returns
    /// how many secrets were added.
    pub fn add_text(&mut self, text: &[u8]) -> u64 {
        let before = self.secrets;
        if text.is_empty() {
            return 0;
        }
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        for line in body.split(|&b| b == b'\n') {
            self.lines += 1;
            if let Err(why) = self.add_line(line) {
                self.bad_line(why);
            }
        }
        self.secrets - before
    }

    fn bad_line(&mut self, why: BadLine) {
        self.bad += 1;
        if self.bad_lines.len() < MAX_BAD_LINES_KEPT {
            self.bad_lines.push((self.lines, why));
        }
    }

    fn add_line(&mut self, line: &[u8]) -> Result<(), BadLine> {
        if line.len() > MAX_LINE {
            return Err(BadLine::TooLong);
        }
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            return Ok(());
        }
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(BadLine::Fields);
        };
        let random: ClientRandom = hex(random)
            .and_then(|r| r.try_into().ok())
            .ok_or(BadLine::ClientRandom)?;
        let secret = hex(secret).ok_or(BadLine::Secret)?;
        let slot = match label {
            b"CLIENT_RANDOM" => Slot::Master,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Slot::ClientHandshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Slot::ServerHandshake,
            b"CLIENT_TRAFFIC_SECRET_0" => Slot::ClientTraffic,
            b"SERVER_TRAFFIC_SECRET_0" => Slot::ServerTraffic,
            b"EXPORTER_SECRET" => Slot::Exporter,
            _ => {
                self.ignored += 1;
                return Ok(());
            }
        };
        // The master secret is 48 bytes; TLS 1.3 secrets are as long as the suite's hash
        // (SHA-256 or SHA-384).
        let fits = match slot {
            Slot::Master => secret.len() == 48,
            _ => secret.len() == 32 || secret.len() == 48,
        };
        if !fits {
            return Err(BadLine::Secret);
        }
        let entry = self.map.entry(random).or_default();
        *match slot {
            Slot::Master => &mut entry.master,
            Slot::ClientHandshake => &mut entry.client_handshake,
            Slot::ServerHandshake => &mut entry.server_handshake,
            Slot::ClientTraffic => &mut entry.client_traffic,
            Slot::ServerTraffic => &mut entry.server_traffic,
            Slot::Exporter => &mut entry.exporter,
        } = Some(secret);
        self.secrets += 1;
        Ok(())
    }

    /// The secrets of a client random.
    pub fn get(&self, random: &ClientRandom) -> Option<&Secrets> {
        self.map.get(random)
    }

    /// Client randoms known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no secret is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The keys a pipeline run can use: a key log shared by every capture of the run
/// (`--keylog`), and the secrets embedded in the capture being read (pcapng DSB).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// From `--keylog`; shared, not copied, between captures.
    pub file: Option<Arc<KeyLog>>,
    /// From Decryption Secrets Blocks of the current capture.
    pub embedded: KeyLog,
}

impl Keys {
    /// Keys from a shared key log.
    pub fn with_file(file: Option<Arc<KeyLog>>) -> Self {
        Keys {
            file,
            embedded: KeyLog::new(),
        }
    }

    /// The secrets of a client random, embedded ones first.
    pub fn get(&self, random: &ClientRandom) -> Option<&Secrets> {
        self.embedded
            .get(random)
            .or_else(|| self.file.as_ref().and_then(|f| f.get(random)))
    }

    /// Adds lines appended to the run's key log file (a sensor's clients keep writing).
    /// The log is copied first if another run still shares it.
    pub fn add_appended(&mut self, appended: &Appended) -> u64 {
        Arc::make_mut(self.file.get_or_insert_with(Default::default)).add_appended(appended)
    }

    /// True when no secret at all is known.
    pub fn is_empty(&self) -> bool {
        self.embedded.is_empty() && self.file.as_ref().is_none_or(|f| f.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    fn line(label: &str, secret_len: usize) -> String {
        format!("{label} {CR} {}\n", "ab".repeat(secret_len))
    }

    #[test]
    fn reads_every_label() {
        let mut log = KeyLog::new();
        let text = [
            "# comment\n".to_string(),
            "\n".to_string(),
            line("CLIENT_RANDOM", 48),
            line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 32),
            line("SERVER_HANDSHAKE_TRAFFIC_SECRET", 32),
            line("CLIENT_TRAFFIC_SECRET_0", 48),
            line("SERVER_TRAFFIC_SECRET_0", 48),
            line("EXPORTER_SECRET", 32),
            line("CLIENT_EARLY_TRAFFIC_SECRET", 32),
        ]
        .concat();
        assert_eq!(log.add_text(text.as_bytes()), 6);
        assert_eq!((log.lines, log.ignored, log.bad), (9, 1, 0));
        let s = log.get(&[1; 32]).expect("indexed");
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert!(s.client_handshake.is_some() && s.server_traffic.is_some());
        assert!(s.exporter.is_some());
    }

    #[test]
    fn bad_lines_are_counted_with_their_number() {
        let mut log = KeyLog::new();
        let text = format!(
            "{}CLIENT_RANDOM zz {}\nCLIENT_RANDOM {CR}\n{}CLIENT_RANDOM {CR} abc\n{}",
            line("CLIENT_RANDOM", 48),
            "00".repeat(48),
            line("CLIENT_RANDOM", 47),
            line("SERVER_TRAFFIC_SECRET_0", 32),
        );
        log.add_text(text.as_bytes());
        assert_eq!(log.bad, 4);
        assert_eq!(
            log.bad_lines,
            vec![
                (2, BadLine::ClientRandom),
                (3, BadLine::Fields),
                (4, BadLine::Secret),
                (5, BadLine::Secret)
            ]
        );
        assert_eq!(log.secrets, 2);
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let mut log = KeyLog::new();
        let text = line("CLIENT_RANDOM", 48);
        assert_eq!(log.add_text(text.trim_end().as_bytes()), 1);
        assert_eq!(log.lines, 1);
    }

    #[test]
    fn refresh_reads_appended_complete_lines() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("specter-keylog-{}", std::process::id()));
        let full = line("CLIENT_RANDOM", 48);
        std::fs::write(&path, &full[..40]).expect("write");
        let mut log = KeyLog::open(&path).expect("open");
        assert!(log.is_empty(), "half a line is not read yet");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        f.write_all(&full.as_bytes()[40..]).expect("append");
        assert_eq!(log.refresh().expect("refresh"), 1);
        assert_eq!(log.refresh().expect("refresh"), 0);
        assert_eq!((log.lines, log.bad), (1, 0));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn keys_prefer_embedded_secrets() {
        let mut file = KeyLog::new();
        file.add_text(line("CLIENT_RANDOM", 48).as_bytes());
        let mut keys = Keys::with_file(Some(Arc::new(file)));
        assert!(keys.get(&[1; 32]).is_some_and(|s| s.master.is_some()));
        keys.embedded
            .add_text(line("SERVER_TRAFFIC_SECRET_0", 32).as_bytes());
        assert!(keys.get(&[1; 32]).is_some_and(|s| s.master.is_none()));
        assert!(keys.get(&[2; 32]).is_none());
    }
}
