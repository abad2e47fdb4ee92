//! Reports of a run: Markdown matrix, self-contained HTML, JUnit XML and JSON.
//! Markdown and JUnit carry no timings or dates, so a re-run with the same results writes
//! the same files; the HTML shows per-APDU timings (see [`super::report_html`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use rclab_emulator::verdict::WrongAccept;

use super::adapter::Adapter;
use super::{CaseResult, Outcome, report_data};

/// Every outcome, in the order reports list them.
pub(super) const OUTCOMES: [Outcome; 6] = [
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
    write("report.md", markdown(checkers, results))?;
    write(
        "report.html",
        super::report_html::page(checkers, results, cards),
    )?;
    write("junit.xml", junit(results))?;
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
        summary: checkers.iter().map(|c| summary(results, &c.name)).collect(),
        results: &shortened,
    })
    .map_err(std::io::Error::other)
    .map_err(named(&dir.join("results.json")))?;
    write("results.json", json + "\n")
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
fn profiles(results: &[CaseResult]) -> Vec<(&str, &CaseResult)> {
    let mut seen = Vec::new();
    for r in results {
        if !seen.iter().any(|(p, _)| *p == r.profile.as_str()) {
            seen.push((r.profile.as_str(), r));
        }
    }
    seen
}

fn cell(r: &CaseResult) -> String {
    match (r.outcome, r.actual) {
        (Outcome::Pass, _) => "PASS".into(),
        (Outcome::Fail, Some(actual)) if r.false_accept => {
            format!("**FAIL** (false accept): {actual}")
        }
        (Outcome::Fail, Some(actual)) if r.missed_corruption => {
            format!("FAIL (missed corruption): {actual}")
        }
        (Outcome::Fail, Some(actual)) => format!("FAIL: {actual}"),
        (Outcome::NotApplicable, _) => "N/A".into(),
        (Outcome::Limitation, Some(actual)) => format!("LIMITATION: {actual}"),
        (outcome, _) => outcome.as_str().into(),
    }
}

/// One checker's counts: the same numbers in every report format.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub checker: String,
    /// Cases per outcome, in `OUTCOMES` order (PASS, FAIL, N/A, CRASH, TIMEOUT, BAD-OUTPUT).
    #[serde(skip)]
    pub outcomes: [usize; 6],
    pub pass: usize,
    pub fail: usize,
    /// Forgery vectors (`threat: forgery`) called genuine.
    pub false_accepts: usize,
    /// Corrupted or misbehaving cards that are no forgery vector called genuine.
    pub missed_corruptions: usize,
    pub not_applicable: usize,
    pub crash: usize,
    pub timeout: usize,
    pub bad_output: usize,
    /// Cases the reference checker missed within a declared limitation (LIMITATION);
    /// absent from `results.json` when there are none.
    #[serde(skip_serializing_if = "is_zero")]
    pub limitations: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

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

/// The two lists of wrong `genuine` verdicts, as Markdown sections.
fn wrong_accept_lists(md: &mut String, results: &[CaseResult]) {
    for (kind, title, what) in [
        (
            WrongAccept::FalseAccept,
            "False accepts",
            "Forgery vectors a checker called genuine: forged cards, and corrupted ones whose profile marks them `threat: forgery`.",
        ),
        (
            WrongAccept::MissedCorruption,
            "Missed corruptions",
            "Other corrupted or misbehaving cards (`threat: corruption` or `transport`) a checker called genuine.",
        ),
    ] {
        let _ = write!(md, "\n## {title}\n\n{what}\n\n");
        let listed: Vec<_> = results
            .iter()
            .filter(|r| r.wrong_accept() == Some(kind))
            .collect();
        if listed.is_empty() {
            md.push_str("None.\n");
        }
        for r in listed {
            let threat = r.threat.map_or("", |t| t.as_str());
            let _ = writeln!(
                md,
                "- **{}** × `{}` ({threat}): expected {}, said genuine",
                md_text(&r.checker),
                md_text(&r.profile),
                r.expected
            );
        }
    }
}

/// Cases excused by a declared limitation (outcome LIMITATION), as a Markdown section;
/// nothing when there are none.
fn limitation_list(md: &mut String, results: &[CaseResult]) {
    let listed: Vec<_> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Limitation)
        .collect();
    if listed.is_empty() {
        return;
    }
    md.push_str("\n## Limitations\n\nCases the reference checker misses within the limitation its profile declares (`expect.limitation`): no failure, as in `rclab check`.\n\n");
    for r in listed {
        let actual = r.actual.map(|a| a.to_string()).unwrap_or_default();
        let _ = writeln!(
            md,
            "- **{}** × `{}`: expected {}, said {actual}: {}",
            md_text(&r.checker),
            md_text(&r.profile),
            r.expected,
            md_text(&r.detail)
        );
    }
}

pub fn markdown(checkers: &[Adapter], results: &[CaseResult]) -> String {
    let mut md = String::from("# rclab conformance report\n\n");
    let _ = writeln!(
        md,
        "{} cases: {} checker(s) × {} profile(s).\n",
        results.len(),
        checkers.len(),
        profiles(results).len()
    );
    md.push_str("## Summary\n\n| checker | trust | PASS | FAIL | false accepts | missed corruptions | N/A | CRASH | TIMEOUT | BAD-OUTPUT |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in checkers {
        let sum = summary(results, &c.name);
        let (n, fa, mc) = (sum.outcomes, sum.false_accepts, sum.missed_corruptions);
        let trust = match c.trust {
            super::adapter::TrustMode::TestCa => "test_ca",
            super::adapter::TrustMode::Pinned => "pinned",
        };
        let _ = writeln!(
            md,
            "| {} | {trust} | {} | {} | {fa} | {mc} | {} | {} | {} | {} |",
            md_text(&c.name),
            n[0],
            n[1],
            n[2],
            n[3],
            n[4],
            n[5]
        );
    }
    wrong_accept_lists(&mut md, results);
    limitation_list(&mut md, results);
    md.push_str(&report_data::markdown(checkers, results, md_text));
    md.push_str("\n## Matrix\n\n| profile | expected |");
    for c in checkers {
        let _ = write!(md, " {} |", md_text(&c.name));
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(checkers.len()));
    md.push('\n');
    for (profile, first) in profiles(results) {
        let _ = write!(md, "| `{}` | {} |", md_text(profile), first.expected);
        for c in checkers {
            let r = results
                .iter()
                .find(|r| r.profile == profile && r.checker == c.name);
            let _ = write!(md, " {} |", r.map(cell).unwrap_or_default());
        }
        md.push('\n');
    }
    md.push_str("\n## Privacy audit\n\nFrom the emulator's transcript of each case. *Unneeded* EFs are personal data a verdict does not need (address, permissions, the card-number EF).\n\n| checker | cases read | read the face image | read unneeded EFs | max MUTUAL AUTH | max VERIFY | card number in clear | bytes read / needed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in checkers {
        let audits: Vec<_> = results
            .iter()
            .filter(|r| r.checker == c.name)
            .filter_map(|r| r.audit.as_ref())
            .filter(|a| a.bytes_read > 0)
            .collect();
        let read: usize = audits.iter().map(|a| a.bytes_read).sum();
        let needed: usize = audits.iter().map(|a| a.bytes_needed).sum();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            md_text(&c.name),
            audits.len(),
            audits.iter().filter(|a| a.face_image_read).count(),
            audits.iter().filter(|a| !a.unneeded_efs.is_empty()).count(),
            audits
                .iter()
                .map(|a| a.mutual_authenticate)
                .max()
                .unwrap_or(0),
            audits.iter().map(|a| a.verify).max().unwrap_or(0),
            audits.iter().filter(|a| a.card_number_in_clear).count(),
            read,
            needed
        );
    }
    md.push_str("\n## Checkers\n\n");
    for c in checkers {
        let _ = writeln!(
            md,
            "- **{}**: {}",
            md_text(&c.name),
            md_text(&c.description)
        );
    }
    md
}

/// Text for HTML and XML: markup characters as entities, and characters XML 1.0 cannot
/// carry at all (control characters such as a checker's ANSI colours, U+FFFE, U+FFFF) as
/// visible `\u{..}` escapes, so that the file stays well-formed whatever a name or detail
/// holds. Tabs and newlines stay.
pub(super) fn escape(text: &str) -> String {
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

/// Text for one Markdown table cell or list item: on one line, control characters as
/// `\u{..}`, and `|` escaped so that it cannot open a new column.
fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '`' => out.push('\''),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

pub fn junit(results: &[CaseResult]) -> String {
    let mut by_checker: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by_checker.entry(&r.checker).or_default().push(r);
    }
    let count =
        |rs: &[&CaseResult], f: fn(Outcome) -> bool| rs.iter().filter(|r| f(r.outcome)).count();
    // Data errors on passing cases are failures too (`type="DATA ERROR"`).
    let data_errors = |rs: &[&CaseResult]| {
        rs.iter()
            .filter(|r| report_data::junit_failure(r, escape).is_some())
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
            "    <properties><property name=\"false_accepts\" value=\"{}\"/><property name=\"missed_corruptions\" value=\"{}\"/></properties>",
            wrong(WrongAccept::FalseAccept),
            wrong(WrongAccept::MissedCorruption)
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
                    if let Some(failure) = report_data::junit_failure(r, escape) {
                        x.push_str(&failure);
                    }
                }
                Outcome::NotApplicable | Outcome::Limitation => {
                    let _ = write!(x, "<skipped message=\"{}\"/>", escape(&r.detail));
                }
                o if failures(o) => {
                    let kind = r
                        .wrong_accept()
                        .map_or_else(|| o.as_str().to_owned(), |w| w.as_str().to_uppercase());
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

#[cfg(test)]
mod tests {
    use rclab_emulator::verdict::{Reason, Threat, Verdict, VerdictKind};

    use super::*;

    fn case(profile: &str, threat: Threat, false_accept: bool, missed: bool) -> CaseResult {
        CaseResult {
            checker: "reference".into(),
            profile: profile.into(),
            generation: 2,
            expected: Verdict::with(VerdictKind::Unreadable, Reason::MalformedData),
            actual: Some(Verdict::GENUINE),
            outcome: Outcome::Fail,
            threat: Some(threat),
            false_accept,
            missed_corruption: missed,
            detail: String::new(),
            millis: 0,
            audit: None,
            transcript: Vec::new(),
            data: None,
            fields: Vec::new(),
            data_error: false,
        }
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
        let page = super::super::report_html::page(
            &checkers,
            &results,
            &super::super::render::Cards::default(),
        );
        assert_eq!(page.matches("class=\"c MC\"").count(), 2);
        assert_eq!(page.matches("class=\"c FA\"").count(), 1);
        assert!(page.contains("data-k=\"false-accepts\">1</td>"), "{page}");
        assert!(
            page.contains("data-k=\"missed-corruptions\">2</td>"),
            "{page}"
        );
    }
}
