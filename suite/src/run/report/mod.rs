//! Reports of a run, one module per format over the same typed figures ([`Summary`],
//! [`data::DataSummary`]) and results: Markdown ([`mod@markdown`]), self-contained HTML
//! ([`html`]), JUnit XML ([`mod@junit`]), JSON ([`json`]) and the console summary
//! ([`console`]). No format reads another's output. Markdown and JUnit carry no timings or
//! dates, so a re-run with the same results writes the same files; the HTML shows per-APDU
//! timings.

pub mod console;
pub mod data;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;

use std::path::Path;

use serde::Serialize;

use rclab_emulator::verdict::WrongAccept;

use super::adapter::Adapter;
use super::{CaseResult, Outcome};

pub use junit::document as junit;
pub use markdown::document as markdown;

/// Every outcome, in the order reports list them.
const OUTCOMES: [Outcome; 6] = [
    Outcome::Pass,
    Outcome::Fail,
    Outcome::NotApplicable,
    Outcome::Crash,
    Outcome::Timeout,
    Outcome::BadOutput,
];

/// The `schema` of `results.json`.
pub const REPORT_SCHEMA: &str = "rclab.report/1";

/// Writes `report.md`, `report.html`, `junit.xml` and `results.json` into `dir`. Every
/// error names the file it concerns. `report.html` shows no card images (see
/// [`write_all_with_cards`]).
pub fn write_all(dir: &Path, checkers: &[Adapter], results: &[CaseResult]) -> std::io::Result<()> {
    write_all_with_cards(dir, checkers, results, &super::render::Cards::default())
}

/// [`write_all`], with each profile's card (rendered images, chip fields) in `report.html`.
pub fn write_all_with_cards(
    dir: &Path,
    checkers: &[Adapter],
    results: &[CaseResult],
    cards: &super::render::Cards,
) -> std::io::Result<()> {
    let named = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{path}: {e}"))
    };
    std::fs::create_dir_all(dir).map_err(named(dir))?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(named(&path))
    };
    write("report.md", markdown::document(checkers, results))?;
    write("report.html", html::page(checkers, results, cards))?;
    write("junit.xml", junit::document(results))?;
    let json = json::document(checkers, results)
        .map_err(std::io::Error::other)
        .map_err(named(&dir.join("results.json")))?;
    write("results.json", json)
}

/// Long APDUs as their first 32 bytes, the byte count and a SHA-256 prefix: reports stay
/// small and reviewable, and equal bytes still show as equal.
pub fn shorten(hex: &str) -> String {
    use sha2::Digest;
    if hex.len() <= 96 {
        return hex.to_owned();
    }
    let digest = sha2::Sha256::digest(hex::decode(hex).unwrap_or_default());
    format!(
        "{}… ({} bytes, sha256 {})",
        &hex[..64],
        hex.len() / 2,
        &hex::encode(digest)[..16]
    )
}

/// Profiles in first-seen order, with their expected verdict (from the first checker).
pub(super) fn profiles(results: &[CaseResult]) -> Vec<(&str, &CaseResult)> {
    let mut seen = Vec::new();
    for r in results {
        if !seen.iter().any(|(p, _)| *p == r.profile.as_str()) {
            seen.push((r.profile.as_str(), r));
        }
    }
    seen
}

/// One checker's counts: the same numbers in every report format.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The checker's name.
    pub checker: String,
    /// Cases per outcome, in `OUTCOMES` order (PASS, FAIL, N/A, CRASH, TIMEOUT, BAD-OUTPUT).
    #[serde(skip)]
    pub outcomes: [usize; 6],
    /// PASS cases.
    pub pass: usize,
    /// FAIL cases.
    pub fail: usize,
    /// Forgery vectors (`threat: forgery`) called genuine.
    pub false_accepts: usize,
    /// Corrupted or misbehaving cards that are no forgery vector called genuine.
    pub missed_corruptions: usize,
    /// Genuine cards (valid profiles, variants) not called genuine.
    pub false_rejects: usize,
    /// N/A cases.
    pub not_applicable: usize,
    /// CRASH cases.
    pub crash: usize,
    /// TIMEOUT cases.
    pub timeout: usize,
    /// BAD-OUTPUT cases.
    pub bad_output: usize,
    /// Cases the reference checker missed within a declared limitation (LIMITATION);
    /// absent from `results.json` when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    pub limitations: usize,
    /// Profiles of the run of a card kind the checker does not check (`cards:`): no case,
    /// counted here only; absent from `results.json` when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    pub out_of_scope: usize,
}

/// [`summary`] of `checker`, with the profiles out of its scope.
pub fn checker_summary(results: &[CaseResult], checker: &Adapter) -> Summary {
    Summary {
        out_of_scope: checker.out_of_scope,
        ..summary(results, &checker.name)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The counts of `checker` over `results`.
pub fn summary(results: &[CaseResult], checker: &str) -> Summary {
    let mut s = Summary {
        checker: checker.to_owned(),
        ..Summary::default()
    };
    for r in results.iter().filter(|r| r.checker == checker) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == r.outcome) {
            s.outcomes[i] += 1;
        }
        if r.outcome == Outcome::Limitation {
            s.limitations += 1;
        }
        if r.false_reject {
            s.false_rejects += 1;
        }
        match r.wrong_accept() {
            Some(WrongAccept::FalseAccept) => s.false_accepts += 1,
            Some(WrongAccept::MissedCorruption) => s.missed_corruptions += 1,
            None => {}
        }
    }
    [
        s.pass,
        s.fail,
        s.not_applicable,
        s.crash,
        s.timeout,
        s.bad_output,
    ] = s.outcomes;
    s
}

/// Text for HTML and XML: markup characters as entities, and characters XML 1.0 cannot
/// carry at all (control characters such as a checker's ANSI colours, U+FFFE, U+FFFF) as
/// visible `\u{..}` escapes, so that the file stays well-formed whatever a name or detail
/// holds. Tabs and newlines stay.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rclab_emulator::verdict::{Reason, Threat, Verdict, VerdictKind};

    use super::*;

    fn case(profile: &str, threat: Threat, false_accept: bool, missed: bool) -> CaseResult {
        CaseResult {
            actual: Some(Verdict::GENUINE),
            outcome: Outcome::Fail,
            false_accept,
            missed_corruption: missed,
            ..CaseResult::pending(
                "reference",
                profile,
                2,
                Verdict::with(VerdictKind::Unreadable, Reason::MalformedData),
                Some(threat),
            )
        }
    }

    #[test]
    fn false_rejects_have_their_own_count_in_every_format_and_name_the_knob_values() {
        let mut base = case("valid/gen1-residence", Threat::Forgery, false, false);
        base.threat = None;
        base.expected = Verdict::GENUINE;
        base.outcome = Outcome::Pass;
        let mut variant = base.clone();
        variant.profile = "variants/gen1-residence/v03".into();
        variant.outcome = Outcome::Fail;
        variant.actual = Some(Verdict::with(
            VerdictKind::Unreadable,
            Reason::MalformedData,
        ));
        variant.false_reject = true;
        variant.variant_of = Some("valid/gen1-residence".into());
        variant.knobs = vec!["knobs.image_layout=full".into()];
        let results = [base, variant];
        let checkers = [Adapter::reference()];
        let s = summary(&results, "reference");
        assert_eq!((s.fail, s.false_rejects, s.false_accepts), (1, 1, 0));
        let md = markdown(&checkers, &results);
        assert!(
            md.contains("| reference | test_ca | 1 | 1 | 0 | 0 | 1 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "suspects: knobs.image_layout=full (it reads valid/gen1-residence as genuine)"
            ),
            "{md}"
        );
        assert!(
            md.contains("- **reference**: `knobs.image_layout=full` (1 variant(s))"),
            "{md}"
        );
        let xml = junit(&results);
        assert!(
            xml.contains("<property name=\"false_rejects\" value=\"1\"/>"),
            "{xml}"
        );
        assert_eq!(xml.matches("type=\"FALSE REJECT\"").count(), 1);
        let page = html::page(&checkers, &results, &super::super::render::Cards::default());
        assert_eq!(page.matches("class=\"c FR\"").count(), 1);
        assert!(page.contains("data-k=\"false-rejects\">1</td>"), "{page}");
        let json: serde_json::Value =
            serde_json::from_str(&json::document(&checkers, &results).unwrap()).unwrap();
        assert_eq!(json["summary"][0]["false_rejects"], 1);
        assert_eq!(json["results"][1]["false_reject"], true);
        assert_eq!(json["results"][1]["knobs"][0], "knobs.image_layout=full");
        assert!(json["results"][0].get("false_reject").is_none());
        let console = console::summary(&checkers, &results, Path::new("out"));
        assert!(console.contains("## False rejects"), "{console}");
    }

    #[test]
    fn false_accepts_and_missed_corruptions_are_counted_apart_in_every_format() {
        let results = [
            case(
                "corrupted/gen2-duplicated-face",
                Threat::Forgery,
                true,
                false,
            ),
            case(
                "corrupted/gen2-garbage-text",
                Threat::Corruption,
                false,
                true,
            ),
            case("corrupted/gen2-stall", Threat::Transport, false, true),
        ];
        let checkers = [Adapter::reference()];
        let s = summary(&results, "reference");
        assert_eq!((s.fail, s.false_accepts, s.missed_corruptions), (3, 1, 2));
        let md = markdown(&checkers, &results);
        assert!(
            md.contains("| reference | test_ca | 0 | 3 | 1 | 2 |"),
            "{md}"
        );
        let (fa, rest) = md.split_once("## Missed corruptions").unwrap();
        let mc = rest.split("## Matrix").next().unwrap();
        assert!(fa.contains("`corrupted/gen2-duplicated-face` (forgery)"));
        assert!(mc.contains("`corrupted/gen2-stall` (transport)"));
        assert!(!mc.contains("duplicated-face"));
        let xml = junit(&results);
        assert!(xml.contains("<property name=\"false_accepts\" value=\"1\"/>"));
        assert!(xml.contains("<property name=\"missed_corruptions\" value=\"2\"/>"));
        assert_eq!(xml.matches("type=\"MISSED CORRUPTION\"").count(), 2);
        assert_eq!(xml.matches("type=\"FALSE ACCEPT\"").count(), 1);
        let page = html::page(&checkers, &results, &super::super::render::Cards::default());
        assert_eq!(page.matches("class=\"c MC\"").count(), 2);
        assert_eq!(page.matches("class=\"c FA\"").count(), 1);
        assert!(page.contains("data-k=\"false-accepts\">1</td>"), "{page}");
        assert!(
            page.contains("data-k=\"missed-corruptions\">2</td>"),
            "{page}"
        );
    }
}
