/*!
`--format markdown`: a GitHub pull-request comment. A heading with the verdict, what the
window can claim, a summary table, a findings table and the evidence folded in `<details>`.

GitHub cuts comments at 65,536 characters; this stays under [`LIMIT`] by leaving out the
least severe rows and evidence first and saying how many it left out. Text from traffic is
escaped so that it cannot close a table cell, open a link or inject HTML.
*/

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{
    by_severity, escape_markup, evidence_text, health_notes, kind_counts, severity_counts,
    spec_status, truncate, verdict, window_line,
};
use crate::diff::model::{Finding, Report, Severity};

/// The most characters written, with room below GitHub's 65,536.
pub const LIMIT: usize = 65_000;
/// Room kept for the notes on what was left out and the closing lines.
const RESERVE: usize = 1_000;
/// The longest message in a table cell; the evidence has the rest.
const MAX_CELL: usize = 300;
/// The most specs or notes listed in the heading.
const MAX_LIST: usize = 20;
/// The longest evidence shown for one finding.
const MAX_EVIDENCE: usize = 2_000;

/// `s` safe inside a table cell and inline text: Markdown punctuation and `|` escaped with
/// a backslash, `<`, `>` and `&` as entities, line breaks as spaces.
pub(crate) fn escape(s: &str) -> String {
    escape_markup(s, |c, out| match c {
        '\\' | '`' | '|' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
            out.push('\\');
            out.push(c);
        }
        '\n' | '\r' | '\t' => out.push(' '),
        c if c.is_control() => out.push('\u{fffd}'),
        c => out.push(c),
    })
}

/// At most [`MAX_LIST`] items, each escaped and cut to [`MAX_CELL`], then how many more
/// there were: spec warnings and notes must not crowd the findings out of the comment.
fn capped(items: Vec<String>, what: &str) -> Vec<String> {
    let more = items.len().saturating_sub(MAX_LIST);
    let mut v: Vec<String> = items
        .iter()
        .take(MAX_LIST)
        .map(|i| escape(&truncate(i, MAX_CELL)))
        .collect();
    if more > 0 {
        v.push(format!("and {more} more {what} (see the JSON report)"));
    }
    v
}

fn icon(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🟣",
        Severity::High => "🔴",
        Severity::Medium => "🟠",
        Severity::Low => "🟡",
        Severity::Info => "⚪",
    }
}

/// A fenced code block whose fence is longer than any run of backticks in `body`.
fn fenced(lang: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

fn head(report: &Report) -> String {
    let mut s = String::new();
    let mark = if report.findings.is_empty() {
        "✅"
    } else {
        "❌"
    };
    let _ = writeln!(s, "## {mark} specter: {}\n", verdict(report));
    let specs: Vec<String> = capped(
        report
            .spec_details
            .iter()
            .map(|sp| format!("{} ({})", sp.file, spec_status(sp)))
            .collect(),
        "specs",
    );
    let _ = writeln!(
        s,
        "specter {} · {} · specs: {}\n",
        escape(&report.specter_version),
        escape(&report.generated_at),
        if specs.is_empty() {
            "none".to_string()
        } else {
            specs.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "**Traffic window:** {}\n",
        escape(&window_line(&report.window))
    );
    let mut notes = health_notes(&report.window);
    for sp in &report.spec_details {
        notes.extend(
            sp.warnings
                .iter()
                .map(|w| format!("{}: warning: {w}", sp.file)),
        );
    }
    for n in capped(notes, "notes") {
        let _ = writeln!(s, "> {n}");
    }
    s.push('\n');
    s
}

fn summary(report: &Report) -> String {
    let mut s = String::from("### Summary\n\n| | count |\n|---|---:|\n");
    let sm = &report.summary;
    for (label, n) in [
        ("observed endpoints", sm.endpoints),
        ("documented endpoints", sm.documented),
        ("documented operations", sm.operations),
    ] {
        let _ = writeln!(s, "| {label} | {n} |");
    }
    for (k, n) in kind_counts(&report.findings) {
        let _ = writeln!(s, "| {} findings | {n} |", k.as_str());
    }
    for (sev, n) in severity_counts(&report.findings) {
        let _ = writeln!(s, "| {} {} | {n} |", icon(sev), sev.as_str());
    }
    if sm.suppressed > 0 {
        let _ = writeln!(s, "| suppressed by the baseline | {} |", sm.suppressed);
    }
    s.push('\n');
    s
}

fn row(f: &Finding) -> String {
    let spec = f
        .spec
        .as_ref()
        .map(|l| {
            if l.line > 0 {
                format!("{}:{}", escape(&l.file), l.line)
            } else {
                escape(&l.file)
            }
        })
        .unwrap_or_else(|| "-".into());
    format!(
        "| {} {} | {} | {} {} | {} | {} | {} |\n",
        icon(f.severity),
        f.severity.as_str(),
        f.kind.as_str(),
        escape(&f.method),
        escape(&format!("{}{}", f.host, f.path)),
        f.requests,
        escape(&truncate(&f.message, MAX_CELL)),
        spec
    )
}

fn evidence(f: &Finding) -> String {
    let mut s = format!(
        "**{} {} {}** · `{}` · {} · id {}\n\n",
        f.severity.as_str(),
        escape(&f.method),
        escape(&f.path),
        f.rule.replace('`', ""),
        escape(&f.host),
        escape(&f.id)
    );
    if f.message.chars().count() > MAX_CELL {
        let _ = writeln!(s, "{}\n", escape(&f.message));
    }
    s.push_str(&fenced("json", &evidence_text(f, MAX_EVIDENCE)));
    s.push('\n');
    s
}

/// Writes the comment.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

/// The comment as a string, at most [`LIMIT`] characters.
pub fn render(report: &Report) -> String {
    let mut s = head(report);
    s.push_str(&summary(report));
    if report.findings.is_empty() {
        return s;
    }
    let findings = by_severity(&report.findings);
    let mut used = s.chars().count();
    let budget = LIMIT - RESERVE;

    let mut table =
        String::from("### Findings\n\n| severity | kind | endpoint | requests | message | spec |\n|---|---|---|---:|---|---|\n");
    used += table.chars().count();
    let mut shown = 0;
    for f in &findings {
        let r = row(f);
        let n = r.chars().count();
        // Keep at least a quarter of the room for evidence.
        if used + n > budget - budget / 4 {
            break;
        }
        used += n;
        table.push_str(&r);
        shown += 1;
    }
    s.push_str(&table);
    if shown < findings.len() {
        let left = findings.len() - shown;
        let _ = writeln!(
            s,
            "\n_{left} more finding{} left out to fit a comment: see the JSON, SARIF or HTML report._",
            super::plural(left as u64)
        );
    }

    let open = "\n<details><summary>Evidence</summary>\n\n";
    let close = "</details>\n";
    used += open.len() + close.len();
    let mut details = String::new();
    let mut with_evidence = 0;
    for f in &findings[..shown] {
        let e = evidence(f);
        let n = e.chars().count();
        if used + n > budget {
            break;
        }
        used += n;
        details.push_str(&e);
        with_evidence += 1;
    }
    s.push_str(open);
    s.push_str(&details);
    if with_evidence < shown {
        let left = shown - with_evidence;
        let _ = writeln!(
            s,
            "_Evidence of {left} more finding{} left out to fit a comment._\n",
            super::plural(left as u64)
        );
    }
    s.push_str(close);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;

    /// Table rows (not header or separator) of the table under `heading`.
    fn rows<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
        md.lines()
            .skip_while(|l| *l != heading)
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .collect()
    }

    /// Cells of a row, splitting on `|` not escaped with a backslash.
    fn cells(row: &str) -> usize {
        let mut n = 0;
        let mut prev = ' ';
        for c in row.chars() {
            if c == '|' && prev != '\\' {
                n += 1;
            }
            prev = c;
        }
        n - 1
    }

    #[test]
    fn heading_tables_and_evidence() {
        let md = render(&sample::report());
        assert!(
            md.starts_with("## ❌ specter: 7 findings: 1 critical"),
            "{md}"
        );
        let findings = rows(&md, "### Findings");
        assert_eq!(findings.len(), 7);
        for r in &findings {
            assert_eq!(cells(r), 6, "hostile text broke the row: {r}");
        }
        assert!(findings[0].contains("critical"));
        assert_eq!(rows(&md, "### Summary").len(), 3 + 6 + 5 + 1);
        assert_eq!(md.matches("<details>").count(), 1);
        let fences = md.lines().filter(|l| *l == "```json").count();
        assert_eq!(fences, 6, "one evidence block has a longer fence");
        assert!(md.contains("````json"));
        assert!(md.contains("specs/petstore.yaml:22"));
        assert!(md.contains("> 1 capture file could not be read in full"));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let md = render(&sample::report());
        // Outside code blocks (where GitHub shows markup as text), no markup from traffic.
        let mut fence: Option<String> = None;
        for line in md.lines() {
            let ticks: String = line.chars().take_while(|c| *c == '`').collect();
            match &fence {
                Some(f) if line == f.as_str() => fence = None,
                Some(_) => {}
                None if ticks.len() >= 3 => fence = Some(ticks),
                None => assert!(!line.contains("<script") && !line.contains("<b>"), "{line}"),
            }
        }
        assert!(fence.is_none(), "every fence closed");
        assert!(
            md.contains("\"fence\": \"```\""),
            "evidence inside a longer fence"
        );
        assert!(md.contains("&lt;script&gt;"));
        assert!(md.contains("\\`search\\`"));
        assert_eq!(escape("a|b\nc`"), "a\\|b c\\`");
    }

    #[test]
    fn long_reports_are_cut_with_a_note() {
        let mut r = sample::report();
        let one = r.findings[1].clone();
        for i in 0..2000 {
            let mut f = one.clone();
            f.path = format!("/v1/generated/{i}/{}", "x".repeat(40));
            r.findings.push(f);
        }
        let md = render(&r);
        assert!(md.chars().count() <= LIMIT, "{}", md.chars().count());
        let shown = rows(&md, "### Findings").len();
        assert!(shown > 100 && shown < 2007, "{shown}");
        let note = format!("_{} more findings left out", 2007 - shown);
        assert!(md.contains(&note), "{note}");
        assert!(md.contains("left out to fit a comment._"));
        assert!(md.trim_end().ends_with("</details>"));
    }

    #[test]
    fn many_warnings_do_not_crowd_out_findings() {
        let mut r = sample::report();
        r.spec_details[0].warnings = (0..5000)
            .map(|i| format!("warning {i} {}", "w".repeat(500)))
            .collect();
        let md = render(&r);
        assert!(md.chars().count() <= LIMIT);
        assert!(
            md.contains("and 4984 more notes (see the JSON report)"),
            "{md}"
        );
        assert_eq!(rows(&md, "### Findings").len(), 7);
    }

    #[test]
    fn a_clean_report_has_no_findings_table() {
        let md = render(&sample::empty());
        assert!(md.starts_with("## ✅ specter: no findings"));
        assert!(!md.contains("### Findings"));
    }
}
