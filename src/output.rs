/*!
Writing exchanges for people (an aligned table) and for machines (JSON lines).
*/

use std::io::{self, Write};

use crate::exchange::{format_ts, Exchange};

/// Output formats of `specter exchanges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (the exchange-line contract).
    Jsonl,
    /// An aligned table for reading in a terminal.
    Table,
}

/// Writes exchanges one by one in the chosen format.
pub struct ExchangeWriter<W: Write> {
    out: W,
    format: Format,
    header_done: bool,
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl<W: Write> ExchangeWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W, format: Format) -> Self {
        ExchangeWriter {
            out,
            format,
            header_done: false,
        }
    }

    /// Writes one exchange.
    pub fn write(&mut self, ex: &Exchange) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, &ex.to_line())?;
                self.out.write_all(b"\n")
            }
            Format::Table => {
                if !self.header_done {
                    self.header_done = true;
                    writeln!(
                        self.out,
                        "{:<27} {:<5} {:<22} {:<22} {:<8} {:>6} {:>9} {:<24} TARGET  [NOTES]",
                        "TIME", "PROTO", "CLIENT", "SERVER", "METHOD", "STATUS", "MS", "HOST"
                    )?;
                }
                let line = ex.to_line();
                // What the target column shows: the request target, or for a TLS
                // connection what its handshake said.
                let target = match &line.tls {
                    Some(t) => format!(
                        "(tls {} {} ja4 {})",
                        t.version.as_deref().unwrap_or("?"),
                        match &t.alpn {
                            Some(chosen) => format!("alpn {chosen}"),
                            None => format!("offers {}", t.alpn_offered.join(",")),
                        },
                        t.ja4.as_deref().unwrap_or("-")
                    ),
                    None => line.target.clone().unwrap_or_else(|| "-".to_string()),
                };
                let grpc = line
                    .grpc
                    .as_ref()
                    .and_then(|g| g.status)
                    .map_or(String::new(), |s| format!(" grpc-status {s}"));
                let notes = if line.notes.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", line.notes.join(","))
                };
                writeln!(
                    self.out,
                    "{:<27} {:<5} {} {} {} {:>6} {:>9} {} {}{}{}",
                    format_ts(ex.ts()),
                    line.proto,
                    clip(&line.client, 22),
                    clip(&line.server, 22),
                    clip(line.method.as_deref().unwrap_or("-"), 8),
                    line.status.map_or("-".to_string(), |s| s.to_string()),
                    line.duration_ms
                        .map_or("-".to_string(), |d| format!("{d:.1}")),
                    clip(line.host.as_deref().unwrap_or("-"), 24),
                    target,
                    grpc,
                    notes
                )
            }
        }
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
