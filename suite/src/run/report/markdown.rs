//! `report.md`: the summary, the wrong `genuine` verdicts, the declared limitations, the
//! data read, the matrix, the privacy audit and the checkers.

use std::fmt::Write as _;

use rclab_emulator::verdict::WrongAccept;

use super::super::adapter::{Adapter, TrustMode};
use super::super::{CaseResult, Outcome};
use super::{data, profiles, summary};

fn cell(r: &CaseResult) -> String {
    match (r.outcome, r.actual) {
        (Outcome::Pass, _) => "PASS".into(),
        (Outcome::Fail, Some(actual)) if r.false_accept => {
            format!("**FAIL** (false accept): {actual}")
        }
        (Outcome::Fail, Some(actual)) if r.missed_corruption => {
            format!("FAIL (missed corruption): {actual}")
        }
        (Outcome::Fail, Some(actual)) if r.false_reject => {
            format!("**FAIL** (false reject): {actual}")
        }
        (Outcome::Fail, Some(actual)) => format!("FAIL: {actual}"),
        (Outcome::NotApplicable, _) => "N/A".into(),
        (Outcome::Limitation, Some(actual)) => format!("LIMITATION: {actual}"),
        (outcome, _) => outcome.as_str().into(),
    }
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

/// Genuine cards a checker did not call genuine, each with its detail (for a variant: the
/// knob values it differs from its valid card by, the suspects when the same checker reads
/// the valid card).
fn false_reject_list(md: &mut String, results: &[CaseResult]) {
    md.push_str("\n## False rejects\n\nGenuine cards (valid profiles and their variants) a checker did not call genuine. For a variant, the knob values that differ from its valid card are the suspects when the same checker reads that valid card as genuine.\n\n");
    let listed: Vec<_> = results.iter().filter(|r| r.false_reject).collect();
    if listed.is_empty() {
        md.push_str("None.\n");
    }
    let implicated = super::super::variants::implicated(results);
    if !implicated.is_empty() {
        md.push_str("\nKnob values that broke a checker (every variant setting it rejected, its valid card read as genuine):\n\n");
        for (checker, knob, n) in &implicated {
            let _ = writeln!(
                md,
                "- **{}**: `{}` ({n} variant(s))",
                md_text(checker),
                md_text(knob)
            );
        }
        md.push('\n');
    }
    for r in listed {
        let actual = r.actual.map(|a| a.to_string()).unwrap_or_default();
        let suspects = match super::super::variants::knob_values_of(results, r) {
            Some(line) => format!(" — {}", md_text(&line)),
            None => String::new(),
        };
        let _ = writeln!(
            md,
            "- **{}** × `{}`: said {actual}{suspects}",
            md_text(&r.checker),
            md_text(&r.profile),
        );
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

/// The top of `report.md` up to the matrix: the title, the counts, the wrong `genuine`
/// verdicts, the declared limitations and the data read. Also what `rclab run` prints.
pub fn summary_sections(checkers: &[Adapter], results: &[CaseResult]) -> String {
    let mut md = String::from("# rclab conformance report\n\n");
    let _ = writeln!(
        md,
        "{} cases: {} checker(s) × {} profile(s).\n",
        results.len(),
        checkers.len(),
        profiles(results).len()
    );
    md.push_str("## Summary\n\n| checker | trust | PASS | FAIL | false accepts | missed corruptions | false rejects | N/A | CRASH | TIMEOUT | BAD-OUTPUT |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in checkers {
        let sum = summary(results, &c.name);
        let (n, fa, mc, fr) = (
            sum.outcomes,
            sum.false_accepts,
            sum.missed_corruptions,
            sum.false_rejects,
        );
        let trust = match c.trust {
            TrustMode::TestCa => "test_ca",
            TrustMode::Pinned => "pinned",
        };
        let _ = writeln!(
            md,
            "| {} | {trust} | {} | {} | {fa} | {mc} | {fr} | {} | {} | {} | {} |",
            md_text(&c.name),
            n[0],
            n[1],
            n[2],
            n[3],
            n[4],
            n[5]
        );
    }
    let out_of_scope: Vec<String> = checkers
        .iter()
        .filter(|c| c.out_of_scope > 0)
        .map(|c| format!("{} {}", md_text(&c.name), c.out_of_scope))
        .collect();
    if !out_of_scope.is_empty() {
        let _ = writeln!(
            md,
            "
Out of scope (profiles of a card kind the checker's `cards:` does not name; no case): {}.",
            out_of_scope.join(", ")
        );
    }
    wrong_accept_lists(&mut md, results);
    false_reject_list(&mut md, results);
    limitation_list(&mut md, results);
    md.push_str(&data::markdown(checkers, results, md_text));
    md
}

/// The whole of `report.md`.
pub fn document(checkers: &[Adapter], results: &[CaseResult]) -> String {
    let mut md = summary_sections(checkers, results);
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

/// Text for one Markdown table cell or list item: on one line, control characters as
/// `\u{..}`, and `|` escaped so that it cannot open a new column.
pub(super) fn md_text(text: &str) -> String {
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
