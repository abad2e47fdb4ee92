//! `junit.xml`: one test suite per checker, one test case per profile; data errors on
//! passing cases are failures too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rclab_emulator::verdict::WrongAccept;

use super::super::{CaseResult, Outcome};
use super::{data, escape};

/// The whole of `junit.xml`.
pub fn document(results: &[CaseResult]) -> String {
    let mut by_checker: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by_checker.entry(&r.checker).or_default().push(r);
    }
    let count =
        |rs: &[&CaseResult], f: fn(Outcome) -> bool| rs.iter().filter(|r| f(r.outcome)).count();
    // Data errors on passing cases are failures too (`type="DATA ERROR"`).
    let data_errors = |rs: &[&CaseResult]| {
        rs.iter()
            .filter(|r| data::junit_failure(r, escape).is_some())
            .count()
    };
    let failures = |o: Outcome| matches!(o, Outcome::Fail | Outcome::BadOutput);
    let errors = |o: Outcome| matches!(o, Outcome::Crash | Outcome::Timeout);
    // A declared limitation is a known shortfall, reported as skipped with its reason.
    let skipped = |o: Outcome| matches!(o, Outcome::NotApplicable | Outcome::Limitation);
    let all: Vec<&CaseResult> = results.iter().collect();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rclab\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
        all.len(),
        count(&all, failures) + data_errors(&all),
        count(&all, errors),
        count(&all, skipped)
    );
    for (checker, rs) in by_checker {
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape(checker),
            rs.len(),
            count(&rs, failures) + data_errors(&rs),
            count(&rs, errors),
            count(&rs, skipped)
        );
        let wrong = |kind| rs.iter().filter(|r| r.wrong_accept() == Some(kind)).count();
        let _ = writeln!(
            x,
            "    <properties><property name=\"false_accepts\" value=\"{}\"/><property name=\"missed_corruptions\" value=\"{}\"/><property name=\"false_rejects\" value=\"{}\"/></properties>",
            wrong(WrongAccept::FalseAccept),
            wrong(WrongAccept::MissedCorruption),
            rs.iter().filter(|r| r.false_reject).count()
        );
        for r in rs {
            let _ = write!(
                x,
                "    <testcase classname=\"rclab.{}\" name=\"{}\">",
                escape(checker),
                escape(&r.profile)
            );
            let actual = r
                .actual
                .map(|a| a.to_string())
                .unwrap_or_else(|| "none".into());
            let message = escape(&format!("expected {}, got {actual}", r.expected));
            match r.outcome {
                Outcome::Pass => {
                    if let Some(failure) = data::junit_failure(r, escape) {
                        x.push_str(&failure);
                    }
                }
                Outcome::NotApplicable | Outcome::Limitation => {
                    let _ = write!(x, "<skipped message=\"{}\"/>", escape(&r.detail));
                }
                o if failures(o) => {
                    let kind = r
                        .wrong_accept()
                        .map(|w| w.as_str().to_uppercase())
                        .or_else(|| r.false_reject.then(|| "FALSE REJECT".to_owned()))
                        .unwrap_or_else(|| o.as_str().to_owned());
                    let _ = write!(
                        x,
                        "<failure type=\"{kind}\" message=\"{message}\">{}</failure>",
                        escape(&r.detail)
                    );
                }
                o => {
                    let _ = write!(
                        x,
                        "<error type=\"{}\" message=\"{message}\">{}</error>",
                        o.as_str(),
                        escape(&r.detail)
                    );
                }
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
