/*!
`--format junit`: JUnit XML, as CI systems show test results. One test suite per host, one
test case per endpoint: the observed endpoints and the documented operations that findings
name (unobserved ones above all). `classname` is the host, `name` is `METHOD path`. An
endpoint with findings fails: one `<failure>` (most JUnit readers take one per case) whose
`type` is the rule of its most severe finding, whose `message` is that finding's message
(with the count of the others), and whose text lists every finding with its evidence.
*/

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{escape_markup, evidence_text, health_notes, plural};
use crate::diff::model::{Finding, Report};

/// The longest evidence written for one finding.
const MAX_EVIDENCE: usize = 4_000;

/// `s` escaped for an XML attribute value (line breaks kept as character references, which
/// attribute normalisation would otherwise turn into spaces). Characters XML 1.0 cannot
/// carry at all (most control characters) become U+FFFD.
pub(crate) fn escape(s: &str) -> String {
    escape_xml(s, true)
}

/// `s` escaped for XML element text: line breaks and tabs stay as they are.
fn escape_text(s: &str) -> String {
    escape_xml(s, false)
}

fn escape_xml(s: &str, attribute: bool) -> String {
    escape_markup(s, |c, out| match c {
        '"' if attribute => out.push_str("&quot;"),
        '\'' if attribute => out.push_str("&apos;"),
        '\n' if attribute => out.push_str("&#10;"),
        '\r' if attribute => out.push_str("&#13;"),
        '\t' if attribute => out.push_str("&#9;"),
        '\n' | '\t' => out.push(c),
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
        c => out.push(c),
    })
}

/// An endpoint with its findings.
#[derive(Default)]
struct Case<'a> {
    requests: u64,
    findings: Vec<&'a Finding>,
}

/// Cases by host, then by `METHOD path`.
type Cases<'a> = BTreeMap<&'a str, BTreeMap<(&'a str, &'a str), Case<'a>>>;

fn cases(report: &Report) -> Cases<'_> {
    let mut hosts: Cases = BTreeMap::new();
    for e in &report.endpoints {
        let v = &e.view;
        let case = hosts
            .entry(v.host.as_str())
            .or_default()
            .entry((v.path.as_str(), v.method.as_str()))
            .or_default();
        case.requests += v.requests;
    }
    for f in &report.findings {
        hosts
            .entry(f.host.as_str())
            .or_default()
            .entry((f.path.as_str(), f.method.as_str()))
            .or_default()
            .findings
            .push(f);
    }
    hosts
}

fn failure(findings: &[&Finding]) -> String {
    let mut sorted = findings.to_vec();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let Some(worst) = sorted.first() else {
        return String::new();
    };
    let mut message = worst.message.clone();
    if sorted.len() > 1 {
        let _ = write!(message, " (and {} more)", sorted.len() - 1);
    }
    let mut text = String::new();
    for f in &sorted {
        let _ = writeln!(
            text,
            "[{}] {} {}: {}",
            f.severity.as_str(),
            f.rule,
            f.id,
            f.message
        );
        if let Some(l) = &f.spec {
            let _ = writeln!(text, "  spec: {}:{}", l.file, l.line);
        }
        for line in evidence_text(f, MAX_EVIDENCE).lines() {
            let _ = writeln!(text, "  {line}");
        }
    }
    format!(
        "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
        escape(&worst.rule),
        escape(&message),
        escape_text(&text)
    )
}

/// The XML document as a string.
pub fn render(report: &Report) -> String {
    let hosts = cases(report);
    let total: usize = hosts.values().map(BTreeMap::len).sum();
    let failed = |cs: &BTreeMap<_, Case>| cs.values().filter(|c| !c.findings.is_empty()).count();
    let failures: usize = hosts.values().map(failed).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"specter diff\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" time=\"0\" timestamp=\"{}\">",
        escape(&report.generated_at)
    );
    for (host, cs) in &hosts {
        let classname = if host.is_empty() { "(any host)" } else { host };
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\">",
            escape(classname),
            cs.len(),
            failed(cs)
        );
        let _ = writeln!(s, "    <properties>");
        let mut props = vec![("specter_version", report.specter_version.clone())];
        props.extend(report.specs.iter().map(|sp| ("spec", sp.clone())));
        props.extend(
            health_notes(&report.window)
                .into_iter()
                .map(|n| ("window_note", n)),
        );
        for (name, value) in props {
            let _ = writeln!(
                s,
                "      <property name=\"{name}\" value=\"{}\"/>",
                escape(&value)
            );
        }
        let _ = writeln!(s, "    </properties>");
        for ((path, method), case) in cs {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
                escape(classname),
                escape(&format!("{method} {path}"))
            );
            if case.findings.is_empty() {
                let _ = writeln!(s, "{open}/>");
            } else {
                let _ = writeln!(s, "{open}>");
                s.push_str(&failure(&case.findings));
                let _ = writeln!(
                    s,
                    "      <system-out>{} request{} in the window</system-out>",
                    case.requests,
                    plural(case.requests)
                );
                let _ = writeln!(s, "    </testcase>");
            }
        }
        let _ = writeln!(s, "  </testsuite>");
    }
    s.push_str("</testsuites>\n");
    s
}

/// Writes the XML document.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;
    use quick_xml::events::Event;

    #[derive(Debug, Default)]
    struct Parsed {
        suites: usize,
        cases: Vec<(String, String)>,
        failures: Vec<(String, String, String)>,
        totals: (String, String),
    }

    fn attr(e: &quick_xml::events::BytesStart, name: &str) -> String {
        e.try_get_attribute(name)
            .expect("well-formed attribute")
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("unescapes")
                    .into_owned()
            })
            .unwrap_or_default()
    }

    /// Parses the document strictly, collecting suites, cases and failures.
    fn parse(xml: &str) -> Parsed {
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut p = Parsed::default();
        let mut in_failure = false;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    b"testsuites" => p.totals = (attr(&e, "tests"), attr(&e, "failures")),
                    b"testsuite" => p.suites += 1,
                    b"testcase" => p.cases.push((attr(&e, "classname"), attr(&e, "name"))),
                    b"failure" => {
                        in_failure = true;
                        p.failures
                            .push((attr(&e, "type"), attr(&e, "message"), String::new()));
                    }
                    _ => {}
                },
                Event::Text(t) if in_failure => {
                    let text = t.decode().expect("utf-8").into_owned();
                    let text = quick_xml::escape::unescape(&text)
                        .expect("unescapes")
                        .into_owned();
                    if let Some(last) = p.failures.last_mut() {
                        last.2.push_str(&text);
                    }
                }
                Event::GeneralRef(r) if in_failure => {
                    let name = r.decode().expect("utf-8");
                    let text = quick_xml::escape::unescape(&format!("&{name};"))
                        .expect("known entity")
                        .into_owned();
                    if let Some(last) = p.failures.last_mut() {
                        last.2.push_str(&text);
                    }
                }
                Event::End(e) if e.name().as_ref() == b"failure" => in_failure = false,
                Event::Eof => break,
                _ => {}
            }
        }
        p
    }

    #[test]
    fn one_case_per_endpoint_failures_where_findings_are() {
        let xml = render(&sample::report());
        let p = parse(&xml);
        assert_eq!(p.suites, 2, "one per host");
        // 4 observed endpoints and the unobserved POST /v1/pets.
        assert_eq!(p.cases.len(), 5, "{:#?}", p.cases);
        assert_eq!(p.totals, ("5".to_string(), "5".to_string()));
        assert!(p
            .cases
            .contains(&("api.example.com".into(), "POST /v1/pets".into())));
        assert!(p.cases.contains(&(
            "evil.example.com".into(),
            format!("GET {}", sample::HOSTILE_PATH)
        )));
        // GET /v1/pets/{petId} has three findings in one failure, the worst first.
        let (kind, message, text) = p
            .failures
            .iter()
            .find(|f| f.0 == "pii.url")
            .expect("pii failure");
        assert_eq!(kind, "pii.url");
        assert!(message.ends_with("(and 2 more)"), "{message}");
        assert!(message.contains("日本語"));
        assert_eq!(text.matches("\n[").count() + 1, 3, "{text}");
        assert!(text.contains("[info] drift.status"));
        assert!(text.contains("spec: specs/petstore.yaml:22"));
        let hostile = p
            .failures
            .iter()
            .find(|f| f.1.contains("search"))
            .expect("hostile failure");
        assert!(hostile
            .1
            .contains("<b>endpoint</b> & \"quoted\" 'text'\nsecond line"));
        assert!(hostile.2.contains("</script><script>"));
    }

    #[test]
    fn a_clean_report_is_an_empty_suite_set() {
        let p = parse(&render(&sample::empty()));
        assert_eq!(p.cases.len(), 0);
        assert_eq!(p.totals, ("0".to_string(), "0".to_string()));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a\n<'\"\r"), "a\n&lt;'\"\u{fffd}");
        assert_eq!(
            escape("<a href='x'>&\"\u{1b}\n"),
            "&lt;a href=&apos;x&apos;&gt;&amp;&quot;\u{fffd}&#10;"
        );
    }
}
