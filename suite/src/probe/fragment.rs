//! A [`Report`] as a profile fragment: the decided knobs as YAML in the form the variant
//! overlays use (`knobs:`, `text_encoding:`, `signature:`, `reader:` …), each value with its
//! evidence as a comment line above it, undecided knobs as comments only (`unknown` is no
//! value a profile takes, so the fragment stays loadable under `extends:`), and a header
//! saying what was sent and what was kept.

use std::fmt::Write as _;

use rclab_emulator::card::knobs::{KNOBS, knob};

use super::battery::PROBES;
use super::{Decision, Finding, Report};

/// One comment line: no line break can escape it.
fn comment(indent: &str, text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{indent}# {flat}\n")
}

fn evidence_text(f: &Finding) -> String {
    let seen: Vec<String> = f.evidence.iter().map(|s| s.line()).collect();
    seen.join("; ")
}

/// The lines one finding gives at `indent` under its key `key`.
fn finding_lines(indent: &str, key: &str, f: &Finding) -> (bool, String) {
    let mut out = String::new();
    let evidence = evidence_text(f);
    match &f.decision {
        Decision::Value(v) => {
            out += &comment(indent, &format!("{}: {evidence}", f.why));
            // As the knob table types it (`true` a boolean, `52 43 4C 42` a string).
            let scalar = knob(f.path)
                .and_then(|k| k.scalar(v))
                .and_then(|s| serde_yaml_ng::to_string(&s).ok())
                .map_or_else(|| (*v).to_owned(), |s| s.trim_end().to_owned());
            let _ = writeln!(out, "{indent}{key}: {scalar}");
            (true, out)
        }
        Decision::NotShown(why) => {
            out += &comment(indent, &format!("{key}: not shown — {why}. {evidence}"));
            (false, out)
        }
        Decision::Unknown(why) => {
            out += &comment(indent, &format!("{key}: unknown — {why}. {evidence}"));
            (false, out)
        }
        Decision::NotProbed(why) => {
            out += &comment(indent, &format!("{key}: unknown — not probed: {why}"));
            (false, out)
        }
    }
}

/// The fragment: header, then the findings grouped by their top-level key in the knob
/// table's order, then the reader's ATR under `reader:`.
pub fn render(report: &Report) -> String {
    let mut out = header(report);
    // Top-level key → (any value written, body lines or the scalar's lines).
    let mut sections: Vec<(&str, bool, String)> = Vec::new();
    for k in KNOBS {
        let Some(f) = report.finding(k.path) else {
            continue;
        };
        let (top, rest) = match k.path.split_once('.') {
            Some((top, rest)) => (top, Some(rest)),
            None => (k.path, None),
        };
        let (written, lines) = match rest {
            Some(rest) => finding_lines("  ", rest, f),
            None => finding_lines("", top, f),
        };
        match sections.iter_mut().find(|(t, _, _)| *t == top) {
            Some((_, any, body)) => {
                *any |= written;
                body.push_str(&lines);
            }
            None => sections.push((top, written, lines)),
        }
    }
    if let Some(atr) = &report.atr {
        let lines = format!(
            "{}  atr: \"{atr}\"\n",
            comment("  ", "the ATR the reader reported")
        );
        match sections.iter_mut().find(|(t, _, _)| *t == "reader") {
            Some((_, any, body)) => {
                *any = true;
                body.push_str(&lines);
            }
            None => sections.push(("reader", true, lines)),
        }
    }
    for (top, written, body) in sections {
        let nested =
            KNOBS.iter().any(|k| k.path.starts_with(&format!("{top}."))) || top == "reader";
        if !nested {
            out.push_str(&body);
        } else if written {
            let _ = writeln!(out, "{top}:");
            out.push_str(&body);
        } else {
            // A section with no value would be `null`, which would replace the values a
            // profile under `extends:` has: comments only.
            out += &comment("", &format!("{top}: nothing decided"));
            out.push_str(&body);
        }
    }
    out
}

fn header(report: &Report) -> String {
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    out += &comment(
        "",
        &format!(
            "rclab probe {version}: the open behaviours of the card in {}, as a profile \
             fragment. Use it in a profile that `extends:` a valid one.",
            report.target
        ),
    );
    let card = match (report.generation, report.card_type) {
        (Some(g), Some(t)) if t.is_specified() => {
            format!("generation {g}, {t:?} (C1 in the 在留AP): a specified card")
        }
        (Some(g), Some(t)) => format!("generation {g}, {t:?} (MF/EF02 C1)"),
        _ => "card type not read: every knob unknown".into(),
    };
    out += &comment("", &format!("Card: {card}."));
    for probe in PROBES {
        let run = report.probes.iter().find(|p| p.name == probe.name);
        let state = match run {
            Some(r) => match (&r.apdus, &r.skipped) {
                (Some(n), _) => format!("ran, {n} APDUs"),
                (None, Some(why)) => format!("not run: {why}"),
                (None, None) => "not run".into(),
            },
            None => "not run".into(),
        };
        out += &comment(
            "",
            &format!(
                "Probe {} ({}; {state}): sent {}.",
                probe.name,
                probe.risk.label(),
                probe.sends
            ),
        );
    }
    out += &comment(
        "",
        &format!(
            "{} APDUs in all, each probe from a fresh power-up. Kept: status words, lengths \
             and layouts only — no file contents, no card number, no names or dates, no UID.",
            report.apdus()
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Seen;

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            target: "reader \"x\"\nnew line".into(),
            generation: Some(1),
            card_type: None,
            atr: Some("3B 80 80 01 01".into()),
            with_card_number: false,
            probes: Vec::new(),
            findings,
        }
    }

    #[test]
    fn values_are_yaml_and_everything_else_is_comment() {
        let seen = Seen {
            sent: "00 B0".into(),
            status: "62 82".into(),
            length: 6,
        };
        let text = render(&report(vec![
            Finding {
                path: "knobs.read_past_end",
                decision: Decision::Value("wrong_le"),
                evidence: vec![seen.clone()],
                why: "w".into(),
            },
            Finding {
                path: "knobs.failed_verify_drops_session",
                decision: Decision::NotProbed("no flag".into()),
                evidence: Vec::new(),
                why: String::new(),
            },
            Finding {
                path: "text_encoding",
                decision: Decision::Unknown("odd".into()),
                evidence: vec![seen],
                why: String::new(),
            },
        ]));
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(doc["knobs"]["read_past_end"].as_str(), Some("wrong_le"));
        assert!(doc.get("text_encoding").is_none(), "{text}");
        assert_eq!(doc["reader"]["atr"].as_str(), Some("3B 80 80 01 01"));
        assert!(
            text.contains("# failed_verify_drops_session: unknown"),
            "{text}"
        );
        // The target's line break stays inside the comment.
        assert!(
            text.lines()
                .all(|l| l.is_empty() || l.trim_start().starts_with('#') || l.contains(':')),
            "{text}"
        );
    }

    #[test]
    fn a_section_without_values_is_not_written_as_null() {
        let text = render(&Report {
            atr: None,
            ..report(vec![Finding {
                path: "knobs.read_past_end",
                decision: Decision::Unknown("x".into()),
                evidence: Vec::new(),
                why: String::new(),
            }])
        });
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert!(doc.is_null() || doc.get("knobs").is_none(), "{text}");
    }
}
