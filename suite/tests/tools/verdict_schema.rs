//! `suite/schema/rclab.verdict.v2.json` and the runner's typed parser accept and refuse the
//! same documents: every example under `suite/schema/examples/{accept,reject}` goes through
//! both, the parser here and the schema through an independent JSON Schema validator
//! (Python's `jsonschema`, Draft 2020-12).

use std::path::{Path, PathBuf};
use std::process::Command;

use rclab_suite::run::adapter::parse_json_verdict_with_data;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema")
}

fn examples(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(schema_dir().join("examples").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "too few {kind} examples");
    files
}

/// The schema's decision on each file, from Python's `jsonschema`.
fn schema_accepts(files: &[PathBuf]) -> Vec<bool> {
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1], encoding="utf-8"))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
for path in sys.argv[2:]:
    print("accept" if validator.is_valid(json.load(open(path, encoding="utf-8"))) else "reject")
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(schema_dir().join("rclab.verdict.v2.json"))
        .args(files)
        .output()
        .expect("python3 runs (with python3-jsonschema, which .ci/run installs)");
    assert!(
        output.status.success(),
        "the schema check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "accept")
        .collect()
}

#[test]
fn schema_file_and_parser_agree() {
    for (kind, want) in [("accept", true), ("reject", false)] {
        let files = examples(kind);
        let by_schema = schema_accepts(&files);
        assert_eq!(by_schema.len(), files.len());
        for (file, schema) in files.iter().zip(by_schema) {
            let text = std::fs::read_to_string(file).unwrap();
            let parser = parse_json_verdict_with_data(&text);
            assert_eq!(schema, want, "{}: the schema says {schema}", file.display());
            assert_eq!(
                parser.is_ok(),
                want,
                "{}: the parser says {parser:?}",
                file.display()
            );
        }
    }
}

#[test]
fn version_1_lines_still_parse_and_carry_no_data() {
    let line = r#"{"schema":"rclab.verdict/1","verdict":"genuine","data":{"nickname":1}}"#;
    let (verdict, _, data) = parse_json_verdict_with_data(line).unwrap();
    assert_eq!(verdict.to_string(), "genuine");
    assert!(data.is_none(), "v1 ignores other fields, as it promised");
}

#[test]
fn a_full_example_parses_into_its_fields() {
    let text =
        std::fs::read_to_string(schema_dir().join("examples/accept/gen2-full.json")).unwrap();
    let (_, _, data) = parse_json_verdict_with_data(&text).unwrap();
    let flat = data.unwrap().flat();
    assert_eq!(flat["birth_date"], "1995-07-07");
    assert_eq!(flat["sex"], "male");
    assert_eq!(flat["individual_permission_granted"], "true");
    assert_eq!(flat["images.name.sha256"].len(), 64);
}
