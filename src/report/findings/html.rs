/*!
`--format html`: one self-contained page (inline CSS and script, no external resource), to
open offline or attach to a ticket. Summary cards, the traffic window and what limited it,
the specs, a findings table sortable by its headers and filterable by text, kind and
severity (the filter lives in the URL's `#q=...&kind=...&severity=...`, so a filtered
view can be shared), evidence folded under each message, and the endpoints table.

Every row is written by the server side of this module, escaped, so the page reads without
script too; the script only sorts and hides rows, through `textContent` and attributes,
never markup. Hosts, paths, messages and evidence come from traffic and are hostile.
*/

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{
    escape_markup, evidence_text, health_notes, kind_counts, plural, spec_status, verdict,
    window_line,
};
use crate::diff::model::{Finding, Kind, Report, ReportEndpoint, Severity};

/// The longest evidence shown for one finding.
const MAX_EVIDENCE: usize = 20_000;

/// `s` escaped for HTML text and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    escape_markup(s, |c, out| match c {
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        '\0' => out.push('\u{fffd}'),
        c => out.push(c),
    })
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --bg:#f6f7f9; --card:#fff; --line:#dde1e8;
  --critical:#7b1fa2; --high:#c62828; --medium:#e07b00; --low:#00838f; --info:#6b7280; }
* { box-sizing: border-box; }
body { margin:0; padding:24px 32px; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:17px; margin:28px 0 10px; }
.meta, .muted { color:var(--muted); }
.verdict { font-size:16px; font-weight:600; margin:4px 0; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin-top:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:112px; }
.card b { display:block; font-size:22px; } .card span { color:var(--muted); }
.card.sev { border-top:4px solid var(--sevc); }
.notes li { margin:2px 0; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef0f4; position:sticky; top:0; white-space:nowrap; }
table.sortable th { cursor:pointer; user-select:none; }
th[aria-sort=ascending]::after { content:" ▲"; } th[aria-sort=descending]::after { content:" ▼"; }
td.path, td.host, td.spec { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; }
td.path { overflow-wrap:anywhere; } td.host, td.spec { white-space:nowrap; }
td.num { text-align:right; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; color:#fff; font-size:12px; font-weight:600;
  background:var(--sevc); }
.s-critical { --sevc:var(--critical); } .s-high { --sevc:var(--high); } .s-medium { --sevc:var(--medium); }
.s-low { --sevc:var(--low); } .s-info { --sevc:var(--info); }
.kind { font-weight:600; }
details summary { cursor:pointer; }
pre { white-space:pre-wrap; word-break:break-all; background:#f0f2f5; padding:8px; border-radius:6px; margin:6px 0; max-height:360px; overflow:auto; }
.controls { display:flex; gap:8px; align-items:center; margin-bottom:8px; flex-wrap:wrap; }
.controls input { flex:1; min-width:220px; padding:6px 8px; }
.controls select, .controls input { font:inherit; border:1px solid var(--line); border-radius:6px; padding:5px 8px; }
.error { color:var(--high); } .warning { color:var(--medium); }
"#;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  function sortable(table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var num = th.getAttribute("data-type") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(row) {
          var cell = row.cells[col];
          var v = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
          return num ? parseFloat(v) || 0 : v.toLowerCase();
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var c = x < y ? -1 : x > y ? 1 : 0;
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);

  var q = document.getElementById("q"), kind = document.getElementById("kind"),
      sev = document.getElementById("severity"), count = document.getElementById("count"),
      none = document.getElementById("none"), table = document.getElementById("findings");
  if (table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    q.value = params.get("q") || "";
    kind.value = params.get("kind") || "";
    sev.value = params.get("severity") || "";
    var apply = function () {
      var text = q.value.trim().toLowerCase(), shown = 0;
      rows.forEach(function (r) {
        var ok = (!kind.value || r.getAttribute("data-kind") === kind.value) &&
                 (!sev.value || r.getAttribute("data-severity") === sev.value) &&
                 (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
        r.hidden = !ok;
        if (ok) shown++;
      });
      count.textContent = shown + " of " + rows.length + " findings shown";
      none.hidden = shown > 0;
      var p = new URLSearchParams();
      if (q.value) p.set("q", q.value);
      if (kind.value) p.set("kind", kind.value);
      if (sev.value) p.set("severity", sev.value);
      var h = p.toString();
      if (history.replaceState) history.replaceState(null, "", h ? "#" + h : location.pathname);
    };
    [q, kind, sev].forEach(function (el) { el.addEventListener("input", apply); });
    apply();
  }
  document.body.setAttribute("data-ready", "1");
})();
"##;

fn card(s: &mut String, class: &str, n: u64, label: &str) {
    let _ = writeln!(
        s,
        "<div class=\"card{class}\"><b>{n}</b><span>{}</span></div>",
        escape(label)
    );
}

fn header(s: &mut String, report: &Report) {
    let _ = writeln!(s, "<header>\n<h1>specter diff report</h1>");
    let _ = writeln!(s, "<p class=\"verdict\">{}</p>", escape(&verdict(report)));
    let _ = writeln!(
        s,
        "<p class=\"meta\">specter {} · generated {}</p>\n</header>",
        escape(&report.specter_version),
        escape(&report.generated_at)
    );
    s.push_str("<section class=\"cards\" id=\"cards\">\n");
    for sev in Severity::ALL.into_iter().rev() {
        let n = report.findings.iter().filter(|f| f.severity == sev).count() as u64;
        card(s, &format!(" sev s-{}", sev.as_str()), n, sev.as_str());
    }
    let sm = &report.summary;
    card(s, "", sm.endpoints, "observed endpoints");
    card(s, "", sm.documented, "documented endpoints");
    card(s, "", sm.operations, "documented operations");
    for (k, n) in kind_counts(&report.findings) {
        card(s, "", n, k.as_str());
    }
    if sm.suppressed > 0 {
        card(s, "", sm.suppressed, "suppressed by the baseline");
    }
    s.push_str("</section>\n");
}

fn context(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "<h2>Traffic window</h2>\n<p>{}</p>",
        escape(&window_line(&report.window))
    );
    let notes = health_notes(&report.window);
    if !notes.is_empty() {
        s.push_str("<ul class=\"notes\">\n");
        for n in notes {
            let _ = writeln!(s, "<li>{}</li>", escape(&n));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("<h2>Specs</h2>\n<table id=\"specs\"><thead><tr><th>file</th><th>status</th><th>warnings</th></tr></thead><tbody>\n");
    for sp in &report.spec_details {
        let class = if sp.error.is_some() {
            " class=\"error\""
        } else {
            ""
        };
        let warnings: Vec<String> = sp
            .warnings
            .iter()
            .map(|w| format!("<div class=\"warning\">{}</div>", escape(w)))
            .collect();
        let _ = writeln!(
            s,
            "<tr><td class=\"path\">{}</td><td{class}>{}</td><td>{}</td></tr>",
            escape(&sp.file),
            escape(&spec_status(sp)),
            warnings.join("")
        );
    }
    s.push_str("</tbody></table>\n");
}

fn options<'a>(s: &mut String, id: &str, all: &str, values: impl Iterator<Item = &'a str>) {
    let _ = write!(
        s,
        "<select id=\"{id}\" aria-label=\"{all}\"><option value=\"\">{all}</option>"
    );
    for v in values {
        let _ = write!(s, "<option value=\"{v}\">{v}</option>");
    }
    s.push_str("</select>\n");
}

fn finding_row(s: &mut String, f: &Finding) {
    let spec = match &f.spec {
        Some(l) if l.line > 0 => format!("{}:{}", l.file, l.line),
        Some(l) => l.file.clone(),
        None => String::new(),
    };
    let sev = f.severity.as_str();
    let _ = writeln!(
        s,
        "<tr data-kind=\"{kind}\" data-severity=\"{sev}\" data-id=\"{id}\">\
<td data-sort=\"{rank}\"><span class=\"badge s-{sev}\">{sev}</span></td>\
<td class=\"kind\">{kind}</td><td>{method}</td><td class=\"host\">{host}</td>\
<td class=\"path\">{path}</td><td class=\"num\" data-sort=\"{requests}\">{requests}</td>\
<td><details><summary>{message}</summary><div class=\"muted\">{rule} · id {id}{seen}</div>\
<pre>{evidence}</pre></details></td><td class=\"spec\">{spec}</td></tr>",
        kind = f.kind.as_str(),
        id = escape(&f.id),
        rank = f.severity as u8,
        method = escape(&f.method),
        host = escape(&f.host),
        path = escape(&f.path),
        requests = f.requests,
        message = escape(&f.message),
        rule = escape(&f.rule),
        seen = match (&f.first_seen, &f.last_seen) {
            (Some(a), Some(b)) => format!(" · seen {} to {}", escape(a), escape(b)),
            _ => String::new(),
        },
        evidence = escape(&evidence_text(f, MAX_EVIDENCE)),
        spec = escape(&spec),
    );
}

fn findings(s: &mut String, report: &Report) {
    s.push_str("<h2>Findings</h2>\n<div class=\"controls\">\n<input id=\"q\" type=\"search\" placeholder=\"Filter findings: path, host, message, evidence…\" aria-label=\"filter\">\n");
    options(s, "kind", "all kinds", Kind::ALL.iter().map(|k| k.as_str()));
    options(
        s,
        "severity",
        "all severities",
        Severity::ALL.iter().rev().map(|k| k.as_str()),
    );
    let n = report.findings.len();
    let _ = writeln!(
        s,
        "<span id=\"count\" class=\"muted\">{n} finding{}</span>\n</div>",
        plural(n as u64)
    );
    s.push_str(
        "<table id=\"findings\" class=\"sortable\"><thead><tr>\
<th data-type=\"num\">severity</th><th>kind</th><th>method</th><th>host</th><th>path</th>\
<th data-type=\"num\">requests</th><th>message and evidence</th><th>spec</th>\
</tr></thead><tbody>\n",
    );
    for f in &report.findings {
        finding_row(s, f);
    }
    s.push_str("</tbody></table>\n<p id=\"none\" class=\"muted\" hidden>No finding matches the filter.</p>\n");
}

fn endpoint_row(s: &mut String, e: &ReportEndpoint) {
    let v = &e.view;
    let status: Vec<String> = v.status.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let documented = match (&e.spec_path, e.deprecated) {
        (Some(p), true) => format!("{p} (deprecated)"),
        (Some(p), false) => p.clone(),
        (None, _) => "no".into(),
    };
    let _ = writeln!(
        s,
        "<tr><td class=\"host\">{}</td><td>{}</td><td class=\"path\">{}</td>\
<td class=\"num\" data-sort=\"{req}\">{req}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td>\
<td>{}</td><td>{}</td></tr>",
        escape(&v.host),
        escape(&v.method),
        escape(&v.path),
        escape(&status.join(" ")),
        escape(&v.auth.join(", ")),
        escape(&v.pii.join(", ")),
        escape(&documented),
        escape(e.operation_id.as_deref().unwrap_or("")),
        escape(&v.last_seen),
        req = v.requests,
    );
}

fn endpoints(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "<h2>Endpoints <span class=\"muted\">({} observed)</span></h2>",
        report.endpoints.len()
    );
    s.push_str(
        "<table id=\"endpoints\" class=\"sortable\"><thead><tr><th>host</th><th>method</th><th>path</th>\
<th data-type=\"num\">requests</th><th>status</th><th>auth</th><th>pii</th><th>spec path</th>\
<th>operation</th><th>last seen</th></tr></thead><tbody>\n",
    );
    for e in &report.endpoints {
        endpoint_row(s, e);
    }
    s.push_str("</tbody></table>\n");
}

/// The page as a string.
pub fn render(report: &Report) -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        s,
        "<title>specter: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&verdict(report))
    );
    header(&mut s, report);
    context(&mut s, report);
    findings(&mut s, report);
    endpoints(&mut s, report);
    let _ = writeln!(s, "<script>{SCRIPT}</script>\n</body>\n</html>");
    s
}

/// Writes the page.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;

    #[test]
    fn hostile_text_is_escaped() {
        let html = render(&sample::report());
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(!html.contains("<b>endpoint"));
        assert!(html
            .contains("/search/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;|&#39;&amp;`q`"));
        assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)"));
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn self_contained() {
        let html = render(&sample::report());
        for needle in ["src=", "<link", "@import", "url(", "http://", "https://"] {
            assert!(!html.contains(needle), "external resource: {needle}");
        }
    }

    #[test]
    fn rows_cards_and_controls() {
        let html = render(&sample::report());
        assert_eq!(html.matches("<tr data-kind=").count(), 7);
        assert_eq!(html.matches("data-kind=\"shadow\"").count(), 2);
        // 4 endpoint rows, in the endpoints table.
        let endpoints = html
            .split("id=\"endpoints\"")
            .nth(1)
            .expect("endpoints table");
        assert_eq!(endpoints.matches("<tr><td").count(), 4);
        assert!(html.contains("<option value=\"unobserved\">unobserved</option>"));
        assert!(html.contains("<option value=\"critical\">critical</option>"));
        assert!(html.contains("<b>1</b><span>critical</span>"));
        assert!(html.contains("specs/petstore.yaml:22"));
        assert!(html.contains("class=\"error\">failed: line 3"));
        assert!(html.contains("<title>specter: 7 findings: 1 critical"));
    }
}
