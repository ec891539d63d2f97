/*!
`--format text`: what a terminal shows. First what the report can claim (specs, the traffic
window and what limited it), then the counts, then one table row per finding, most severe
first, the message wrapped under its column.

Paths and messages come from traffic: control characters (an ANSI escape in a URL would
otherwise reach the terminal) are written as `\u{..}` escapes.
*/

use std::io::{self, Write};

use super::{
    by_severity, health_notes, kind_counts, plural, severity_counts, spec_status, truncate,
    verdict, window_line,
};
use crate::diff::model::{Finding, Report, Severity};

/// The table's target width; the message column takes what the others leave.
const WIDTH: usize = 120;
/// The narrowest message column; with less room, messages go under their rows.
const MIN_MESSAGE: usize = 40;
/// Longer paths are cut (the JSON report has them whole).
const MAX_PATH: usize = 60;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "\x1b[1;35m",
        Severity::High => "\x1b[1;31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
        Severity::Info => "\x1b[2m",
    }
}

/// `s` with control characters (newlines included) made visible and harmless: newlines
/// and tabs become spaces, the rest `\u{1b}` style escapes.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// Word-wraps `s` to lines of at most `width` characters, splitting words longer than that.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let mut chars: Vec<char> = word.chars().collect();
        while !chars.is_empty() {
            let room = if len == 0 {
                width
            } else {
                width.saturating_sub(len + 1)
            };
            if chars.len() <= room {
                if len > 0 {
                    line.push(' ');
                    len += 1;
                }
                line.extend(chars.iter());
                len += chars.len();
                chars.clear();
            } else if len > 0 {
                lines.push(std::mem::take(&mut line));
                len = 0;
            } else {
                let rest = chars.split_off(width);
                lines.push(chars.iter().collect());
                chars = rest;
            }
        }
    }
    if len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

struct Painter {
    colour: bool,
}

impl Painter {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.colour {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    }
}

/// Writes the summary and the findings table.
pub fn write(report: &Report, out: &mut dyn Write, colour: bool) -> io::Result<()> {
    let p = Painter { colour };
    writeln!(
        out,
        "{} {}: {}",
        p.paint(BOLD, "specter"),
        clean(&report.specter_version),
        p.paint(BOLD, &verdict(report))
    )?;
    write_context(report, out, &p)?;
    writeln!(out)?;
    write_counts(report, out, &p)?;
    if !report.findings.is_empty() {
        writeln!(out)?;
        write_table(report, out, &p)?;
    }
    Ok(())
}

fn write_context(report: &Report, out: &mut dyn Write, p: &Painter) -> io::Result<()> {
    writeln!(out, "generated {}", clean(&report.generated_at))?;
    for s in &report.spec_details {
        let status = clean(&spec_status(s));
        let status = if s.error.is_some() {
            p.paint(severity_colour(Severity::High), &status)
        } else {
            status
        };
        writeln!(out, "spec {}: {status}", clean(&s.file))?;
        for w in &s.warnings {
            writeln!(
                out,
                "  {} {}",
                p.paint(severity_colour(Severity::Medium), "warning:"),
                clean(w)
            )?;
        }
    }
    writeln!(out, "window {}", clean(&window_line(&report.window)))?;
    for note in health_notes(&report.window) {
        writeln!(out, "  {} {}", p.paint(DIM, "note:"), clean(&note))?;
    }
    Ok(())
}

fn write_counts(report: &Report, out: &mut dyn Write, p: &Painter) -> io::Result<()> {
    let s = &report.summary;
    let mut line = format!(
        "endpoints: {} observed, {} documented; {} documented operation{}",
        s.endpoints,
        s.documented,
        s.operations,
        plural(s.operations)
    );
    if s.suppressed > 0 {
        line.push_str(&format!(
            "; {} finding(s) suppressed by the baseline",
            s.suppressed
        ));
    }
    writeln!(out, "{line}")?;
    let kinds: Vec<String> = kind_counts(&report.findings)
        .iter()
        .map(|(k, n)| format!("{} {n}", k.as_str()))
        .collect();
    writeln!(out, "by kind:     {}", kinds.join("  "))?;
    let sevs: Vec<String> = severity_counts(&report.findings)
        .iter()
        .map(|(sev, n)| p.paint(severity_colour(*sev), &format!("{} {n}", sev.as_str())))
        .collect();
    if !sevs.is_empty() {
        writeln!(out, "by severity: {}", sevs.join("  "))?;
    }
    Ok(())
}

fn write_table(report: &Report, out: &mut dyn Write, p: &Painter) -> io::Result<()> {
    let findings = by_severity(&report.findings);
    let hosts: std::collections::BTreeSet<&str> =
        findings.iter().map(|f| f.host.as_str()).collect();
    let with_host = hosts.len() > 1;
    let mut header = vec!["SEVERITY", "KIND"];
    if with_host {
        header.push("HOST");
    }
    header.extend(["METHOD", "PATH", "REQS", "MESSAGE"]);
    let row = |f: &Finding| -> Vec<String> {
        let mut r = vec![f.severity.as_str().to_string(), f.kind.as_str().to_string()];
        if with_host {
            r.push(truncate(&clean(&f.host), 40));
        }
        r.extend([
            truncate(&clean(&f.method), 10),
            truncate(&clean(&f.path), MAX_PATH),
            f.requests.to_string(),
        ]);
        r
    };
    let rows: Vec<(Vec<String>, &Finding)> = findings.iter().map(|f| (row(f), *f)).collect();
    // Widths of every column but the message.
    let mut widths: Vec<usize> = header[..header.len() - 1].iter().map(|h| h.len()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let columns: usize = widths.iter().map(|w| w + 2).sum();
    // The message in its own column when there is room, else under its row, wrapped
    // from the KIND column on.
    let inline = WIDTH.saturating_sub(columns) >= MIN_MESSAGE;
    let (indent, message_width) = if inline {
        (columns, WIDTH - columns)
    } else {
        let first = widths[0] + 2;
        (first, WIDTH - first)
    };
    let pad = |s: &str, w: usize| " ".repeat(w - s.chars().count() + 2);

    let mut head = String::new();
    for (h, w) in header.iter().zip(&widths) {
        head.push_str(h);
        head.push_str(&pad(h, *w));
    }
    if inline {
        head.push_str("MESSAGE");
    }
    writeln!(out, "{}", p.paint(BOLD, head.trim_end()))?;
    for (cells, f) in &rows {
        let mut line = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                line.push_str(&p.paint(severity_colour(f.severity), c));
            } else {
                line.push_str(c);
            }
            line.push_str(&pad(c, *w));
        }
        let message = wrap(&clean(&f.message), message_width);
        let mut lines = message.iter();
        if inline {
            if let Some(first) = lines.next() {
                line.push_str(first);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
        for more in lines {
            writeln!(out, "{}{more}", " ".repeat(indent))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;

    fn text(r: &Report, colour: bool) -> String {
        let mut out = Vec::new();
        write(r, &mut out, colour).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn summary_then_table_most_severe_first() {
        let t = text(&sample::report(), false);
        assert!(t.starts_with("specter "), "{t}");
        assert!(t.contains("7 findings: 1 critical, 2 high, 2 medium, 1 low, 1 info"));
        assert!(t.contains("spec specs/broken.yaml: failed: line 3, column 1"));
        assert!(t.contains("warning: line 40: duplicate operationId `listPets`"));
        assert!(t.contains("note: TLS not looked into (connections): auth.example.com (12)"));
        assert!(t.contains("note: the window is 1 h 0 min long"));
        assert!(t.contains("by kind:     shadow 2  zombie 1  unobserved 1  pii 1  drift 1"));
        assert!(t.contains("1 finding(s) suppressed"));
        let table: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("SEVERITY"))
            .collect();
        assert!(table[0].contains("HOST"), "two hosts, so a host column");
        let sev: Vec<&str> = table[1..]
            .iter()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(
            sev,
            ["critical", "high", "high", "medium", "medium", "low", "info"]
        );
        assert!(!t.contains('\x1b'), "no colour asked, none given");
    }

    #[test]
    fn lines_fit_and_hostile_text_is_neutralised() {
        let t = text(&sample::report(), false);
        let table: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("SEVERITY"))
            .collect();
        for l in &table {
            assert!(l.chars().count() <= WIDTH, "{l}");
        }
        assert!(
            !table[0].contains("MESSAGE"),
            "the long path leaves no room"
        );
        assert_eq!(table[2], "          E-mail addresses in the query string of 12 requests (ü, 日本語), over cleartext HTTP");
        assert!(t.contains("\\u{1b}[31m"), "escape shown, not obeyed");
        assert!(t.contains("second line"));
        assert!(t.contains("日本語"));
    }

    #[test]
    fn messages_in_a_column_when_there_is_room() {
        let mut r = sample::report();
        r.findings.retain(|f| f.host == "api.example.com");
        let t = text(&r, false);
        let table: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("SEVERITY"))
            .collect();
        assert!(table[0].ends_with("MESSAGE"), "{}", table[0]);
        assert!(!table[0].contains("HOST"), "one host, no host column");
        let at = table[0].find("MESSAGE").expect("header");
        assert!(
            table[1].contains("  E-mail addresses in the query"),
            "{}",
            table[1]
        );
        assert!(table[2].starts_with(&" ".repeat(at)));
        for l in &table {
            assert!(l.chars().count() <= WIDTH, "{l}");
        }
    }

    #[test]
    fn colour_only_when_asked() {
        let t = text(&sample::report(), true);
        assert!(t.contains("\x1b[1;35mcritical\x1b[0m"));
        // The only raw escapes are ours: the message's own became text.
        assert!(!t.contains("\x1b[31m"));
    }

    #[test]
    fn an_empty_report_says_so() {
        let t = text(&sample::empty(), false);
        assert!(t.contains("no findings"));
        assert!(!t.contains("SEVERITY"));
        assert!(t.contains("window no traffic (0 s, 0 exchanges, 0 runs)"));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), [""]);
        assert_eq!(wrap("x abcdef", 4), ["x", "abcd", "ef"]);
    }
}
