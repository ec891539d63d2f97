/*!
`--format json`: the report itself, as DESIGN.md's contract names its fields. The schema in
`docs/report.schema.json` describes it; a test holds the two together.
*/

use std::io::{self, Write};

use crate::diff::model::Report;

/// Writes the report as indented JSON and a final newline.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;

    fn json(r: &Report) -> serde_json::Value {
        let mut out = Vec::new();
        write(r, &mut out).expect("write");
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn contract_fields_and_round_trip() {
        let v = json(&sample::report());
        for key in [
            "specter_version",
            "generated_at",
            "specs",
            "summary",
            "endpoints",
            "findings",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let f = &v["findings"][4];
        assert_eq!(f["kind"], "shadow");
        assert_eq!(f["severity"], "medium");
        assert_eq!(f["path"], sample::HOSTILE_PATH);
        assert!(f.get("spec").is_none(), "no location, no key");
        assert_eq!(v["findings"][0]["spec"]["line"], 22);
        // The endpoint's view is flattened into the object, spec fields beside it.
        let e = &v["endpoints"][2];
        assert_eq!(e["path"], "/v1/pets/{petId}");
        assert_eq!(e["operation_id"], "showPetById");
        assert_eq!(e["status"]["404"], 2);
        assert_eq!(e["documented"], true);
    }

    #[test]
    fn validates_against_the_documented_schema() {
        for r in [sample::report(), sample::empty()] {
            let errors = sample::schema_errors("docs/report.schema.json", &json(&r));
            assert!(errors.is_empty(), "{errors:#?}");
        }
    }

    #[test]
    fn the_schema_rejects_what_it_should() {
        let mut v = json(&sample::report());
        v["findings"][0]["kind"] = "ghost".into();
        v["summary"]["extra"] = 1.into();
        let errors = sample::schema_errors("docs/report.schema.json", &v);
        assert!(errors.len() >= 2, "{errors:#?}");
    }
}
