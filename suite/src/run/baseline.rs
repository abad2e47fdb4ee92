//! `--baseline`: the `results.json` of an earlier run, read and checked before the first
//! case runs, so that a wrong file is an error at once instead of a silent pass after the
//! whole run.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use rclab_emulator::files::read_bounded;

use super::Outcome;
use super::report::REPORT_SCHEMA;

/// Largest baseline read (a report of a dozen checkers is a few MiB: transcripts are
/// shortened there).
pub const MAX_BASELINE: u64 = 256 << 20;

/// The parts of `results.json` a baseline needs; other fields are ignored.
#[derive(Deserialize)]
struct ReportFile {
    schema: String,
    results: Vec<BaselineResult>,
}

#[derive(Deserialize)]
struct BaselineResult {
    checker: String,
    profile: String,
    outcome: Outcome,
}

/// The cases that passed in the baseline.
#[derive(Debug)]
pub struct Baseline {
    passed: HashSet<(String, String)>,
}

/// A baseline that cannot be used; the message names the file (and position).
#[derive(Debug, thiserror::Error)]
#[error("--baseline {file}: {message}")]
pub struct BaselineError {
    /// The baseline file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl Baseline {
    /// Reads `path` (a `results.json`), which must share at least one case (checker ×
    /// profile) with `cases`, or it could never flag a regression.
    pub fn load(path: &Path, cases: &[(String, String)]) -> Result<Baseline, BaselineError> {
        let err = |message: String| BaselineError {
            file: path.display().to_string(),
            message,
        };
        let bytes =
            read_bounded(path, MAX_BASELINE).map_err(|e| err(format!("cannot read: {e}")))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(err(format!(
                "not a JSON object (a baseline is the results.json of an earlier run: {{\"schema\": \"{REPORT_SCHEMA}\", \"results\": [...]}})"
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let report: ReportFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            let at = if inner.line() > 0 {
                format!("line {} column {}: ", inner.line(), inner.column())
            } else {
                String::new()
            };
            let field = e.path().to_string();
            let field = if field == "." {
                String::new()
            } else {
                format!("field `{field}`: ")
            };
            let mut what = inner.to_string();
            // serde_json appends its own " at line L column C".
            if let Some(i) = what.find(" at line ") {
                what.truncate(i);
            }
            err(format!(
                "{at}{field}{what} (a baseline is the results.json of an earlier run: {{\"schema\": \"{REPORT_SCHEMA}\", \"results\": [...]}})"
            ))
        })?;
        if report.schema != REPORT_SCHEMA {
            return Err(err(format!(
                "field `schema`: {:?}, expected {REPORT_SCHEMA:?}",
                super::printable(&report.schema, 60)
            )));
        }
        let wanted: HashSet<&(String, String)> = cases.iter().collect();
        let mut shared = false;
        let mut passed = HashSet::new();
        for r in report.results {
            let key = (r.checker, r.profile);
            if wanted.contains(&key) {
                shared = true;
                if r.outcome.meets_expectation() {
                    passed.insert(key);
                }
            }
        }
        if !shared {
            return Err(err(
                "none of its results is a case of this run (other checkers or profiles): it could never flag a regression".into(),
            ));
        }
        Ok(Baseline { passed })
    }

    /// True when `checker` × `profile` passed in the baseline.
    pub fn passed(&self, checker: &str, profile: &str) -> bool {
        self.passed
            .contains(&(checker.to_owned(), profile.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases() -> Vec<(String, String)> {
        vec![
            ("reference".into(), "valid/a".into()),
            ("reference".into(), "valid/b".into()),
            ("reference".into(), "valid/c".into()),
        ]
    }

    /// `text` as a baseline file, loaded against [`cases`].
    fn load(name: &str, text: &str) -> (String, Result<Baseline, BaselineError>) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = Baseline::load(&path, &cases());
        (path.display().to_string(), loaded)
    }

    #[test]
    fn a_malformed_result_is_refused_with_its_file_position_and_field() {
        let (file, loaded) = load(
            "bad-outcome.json",
            r#"{"schema": "rclab.report/1", "results": [
  {"checker": "reference", "profile": "valid/a", "outcome": "PASS"},
  {"checker": "reference", "profile": "valid/b", "outcome": "MAYBE"}]}"#,
        );
        let e = loaded.unwrap_err();
        assert_eq!(e.file, file);
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("--baseline {file}: line 3 column ")),
            "{message}"
        );
        assert!(
            message.contains("field `results[1].outcome`: unknown variant `MAYBE`"),
            "{message}"
        );

        let (file, loaded) = load(
            "no-profile.json",
            r#"{"schema": "rclab.report/1", "results": [{"checker": "reference", "outcome": "PASS"}]}"#,
        );
        let message = loaded.unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("--baseline {file}: line 1 column ")),
            "{message}"
        );
        assert!(
            message.contains("field `results[0]`: missing field `profile`"),
            "{message}"
        );

        let (_, loaded) = load("old.json", r#"{"schema": "rclab.report/0", "results": []}"#);
        let message = loaded.unwrap_err().to_string();
        assert!(
            message.contains("field `schema`: \"rclab.report/0\""),
            "{message}"
        );
    }

    #[test]
    fn pass_and_limitation_count_as_passed_other_outcomes_do_not() {
        let (_, loaded) = load(
            "good.json",
            r#"{"schema": "rclab.report/1", "checkers": [], "results": [
  {"checker": "reference", "profile": "valid/a", "outcome": "PASS", "detail": "ignored"},
  {"checker": "reference", "profile": "valid/b", "outcome": "LIMITATION"},
  {"checker": "reference", "profile": "valid/c", "outcome": "FAIL"},
  {"checker": "other", "profile": "valid/a", "outcome": "PASS"}]}"#,
        );
        let baseline = loaded.unwrap();
        assert!(baseline.passed("reference", "valid/a"));
        assert!(baseline.passed("reference", "valid/b"));
        assert!(!baseline.passed("reference", "valid/c"));
        assert!(
            !baseline.passed("other", "valid/a"),
            "not a case of this run"
        );
    }
}
