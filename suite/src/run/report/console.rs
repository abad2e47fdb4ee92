//! What `rclab run` prints when it is done: the summary sections of `report.md` (counts,
//! wrong `genuine` verdicts, declared limitations, data read) and where the reports are.

use std::path::Path;

use super::super::CaseResult;
use super::super::adapter::Adapter;
use super::markdown::summary_sections;

/// The console summary of a run whose reports are in `out`.
pub fn summary(checkers: &[Adapter], results: &[CaseResult], out: &Path) -> String {
    format!(
        "{}\nreports: {}/report.md, report.html, junit.xml, results.json\n",
        summary_sections(checkers, results),
        out.display()
    )
}
