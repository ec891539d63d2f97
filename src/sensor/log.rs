/*!
A log file that can be reopened: `--log-file` writes here, and SIGHUP reopens the path so
logrotate can move the old file away (as nginx and Suricata do).
*/

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A shared handle on an append-only log file.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_append(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Opens the path again: later lines go to the file now at that path.
    pub fn reopen(&self) -> io::Result<()> {
        let new = open_append(&self.path)?;
        if let Ok(mut f) = self.file.lock() {
            *f = new;
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("specter-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sensor.log");
        let mut log = LogFile::open(&path).unwrap();
        writeln!(log, "one").unwrap();
        std::fs::rename(&path, dir.join("sensor.log.1")).unwrap();
        writeln!(log, "two").unwrap();
        log.reopen().unwrap();
        writeln!(log, "three").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("sensor.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
