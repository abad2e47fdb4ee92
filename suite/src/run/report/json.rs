//! `results.json`: the checkers, each one's counts ([`Summary`]) and every result, with long
//! APDUs shortened ([`shorten`]).

use serde::Serialize;

use super::super::CaseResult;
use super::super::adapter::Adapter;
use super::{REPORT_SCHEMA, Summary, checker_summary, shorten};

/// The whole of `results.json`.
pub fn document(checkers: &[Adapter], results: &[CaseResult]) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Json<'a> {
        schema: &'static str,
        checkers: &'a [Adapter],
        summary: Vec<Summary>,
        results: &'a [CaseResult],
    }
    let shortened: Vec<CaseResult> = results
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for e in &mut r.transcript {
                e.command = shorten(&e.command);
                e.response = e
                    .response
                    .as_ref()
                    .map(|h| shorten(h))
                    .map_err(Clone::clone);
            }
            r
        })
        .collect();
    let json = serde_json::to_string_pretty(&Json {
        schema: REPORT_SCHEMA,
        checkers,
        summary: checkers
            .iter()
            .map(|c| checker_summary(results, c))
            .collect(),
        results: &shortened,
    })?;
    Ok(json + "\n")
}
