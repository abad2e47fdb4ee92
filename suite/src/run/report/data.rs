//! The "data read" parts of the reports: per checker, how the fields it reported compare
//! with the chip, and the cases where a genuine card was read wrong ("data errors").

use std::fmt::Write as _;

use super::super::adapter::Adapter;
use super::super::data::{FieldStatus, tally};
use super::super::{CaseResult, Outcome};

/// Per checker: cases with `data`, field counts (right, wrong, not reported, not on chip)
/// and data errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSummary {
    /// Cases where the checker reported card data.
    pub cases_with_data: usize,
    /// Field checks per [`crate::run::data::FieldStatus`], in its declaration order.
    pub fields: [usize; 4],
    /// Cases whose reported data did not parse.
    pub data_errors: usize,
}

/// The data counts of `checker` over `results`.
pub fn summary(results: &[CaseResult], checker: &str) -> DataSummary {
    let mut s = DataSummary::default();
    for r in results.iter().filter(|r| r.checker == checker) {
        if r.data.is_some() {
            s.cases_with_data += 1;
        }
        let n = tally(&r.fields);
        for (total, n) in s.fields.iter_mut().zip(n) {
            *total += n;
        }
        s.data_errors += usize::from(r.data_error);
    }
    s
}

/// Markdown section `## Data read`: a table per checker, then each data error with the
/// wrong fields and both values.
pub fn markdown(
    checkers: &[Adapter],
    results: &[CaseResult],
    md_text: fn(&str) -> String,
) -> String {
    let mut md = String::from(
        "\n## Data read\n\nFields a checker reported (`rclab.verdict/2` `data`) against what the chip holds. A *data error* is a card that should read as genuine, called genuine, with a field read wrong: its own class, apart from FAIL. A checker that reports no `data` is *not reported*, never a failure.\n\n| checker | cases with data | fields right | wrong | not reported | not on chip | data errors |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in checkers {
        let s = summary(results, &c.name);
        if s.cases_with_data == 0 {
            let _ = writeln!(md, "| {} | 0 | not reported | | | | 0 |", md_text(&c.name));
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_text(&c.name),
            s.cases_with_data,
            s.fields[0],
            s.fields[1],
            s.fields[2],
            s.fields[3],
            s.data_errors
        );
    }
    let errors: Vec<&CaseResult> = results.iter().filter(|r| r.data_error).collect();
    md.push_str("\n### Data errors\n\n");
    if errors.is_empty() {
        md.push_str("None.\n");
    }
    for r in errors {
        let wrong: Vec<String> = r
            .fields
            .iter()
            .filter(|f| f.status == FieldStatus::Wrong)
            .map(|f| {
                format!(
                    "`{}` read {:?}, chip holds {:?}",
                    f.field,
                    md_text(f.reported.as_deref().unwrap_or_default()),
                    md_text(f.chip.as_deref().unwrap_or_default())
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "- **{}** × `{}`: {}",
            md_text(&r.checker),
            md_text(&r.profile),
            wrong.join("; ")
        );
    }
    md
}

/// JUnit: a data error on a passing case, as a `<failure type="DATA ERROR">`; `None` when
/// the case has none (or already failed on its verdict).
pub fn junit_failure(r: &CaseResult, escape: fn(&str) -> String) -> Option<String> {
    if !r.data_error || r.outcome != Outcome::Pass {
        return None;
    }
    let wrong: Vec<String> = r
        .fields
        .iter()
        .filter(|f| f.status == FieldStatus::Wrong)
        .map(|f| {
            format!(
                "{}: read {:?}, chip holds {:?}",
                f.field,
                f.reported.as_deref().unwrap_or_default(),
                f.chip.as_deref().unwrap_or_default()
            )
        })
        .collect();
    Some(format!(
        "<failure type=\"DATA ERROR\" message=\"{}\">{}</failure>",
        escape(&format!("{} field(s) read wrong", wrong.len())),
        escape(&wrong.join("\n"))
    ))
}
