//! The reference checker against every profile of the catalogue (`vectors/profiles/`),
//! residence, My Number and specified residence cards (the profile's kind picks the checker), in-process, at the fixed date and seed of `common::options`: each meets its expectation
//! (or is a declared limitation that is still no false accept), every listed fault acts
//! during the check, phone-sized reads reach the same verdicts, and the whole verdict table
//! is one snapshot (`snapshots/catalogue__catalogue_verdicts.snap`).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use rclab_emulator::profile::Profile;
use rclab_emulator::verdict::{Verdict, VerdictKind};
use rclab_suite::checker::{CardSecret, Checker, Report, TrustStore};
use rclab_suite::judgement::{self, Judgement};
use rclab_suite::run::adapter::Adapter;
use serde::Serialize;

/// Every bundled profile of a kind the reference checker checks, by the rule `rclab run`
/// pairs checkers with profiles (`Adapter::checks`): every kind, the specified residence
/// cards (07/08) included, which it reads with their card number over the 在留AP.
fn catalogue() -> Vec<Profile> {
    let reference = Adapter::reference();
    common::all_profiles("")
        .into_iter()
        .filter(|p| reference.checks(p.kind()))
        .collect()
}

/// Runs the reference checker on a fresh card of `p`; returns the report and how often
/// each of the card's faults acted.
fn check(p: &Profile, max_response: Option<usize>) -> (Report, Vec<usize>) {
    let trust = TrustStore::embedded_test_roots();
    let mut options = common::options(7);
    options.max_response = max_response;
    let mut card = p.card();
    let (pin, number) = common::secret(p);
    let secret = match &pin {
        Some(pin) => CardSecret::Pin(pin),
        None => CardSecret::CardNumber(&number),
    };
    let report = Checker {
        trust: &trust,
        options,
    }
    .check_card(&mut card, secret);
    (report, card.fired().to_vec())
}

/// A genuine verdict for a card that is not expected to be genuine.
fn false_accept(p: &Profile, actual: &Verdict) -> bool {
    actual.verdict == VerdictKind::Genuine && p.expect.verdict.verdict != VerdictKind::Genuine
}

/// Checks one verdict against the profile's expectation (or its declared limitation), by
/// the rule `rclab check` and `rclab run` apply; a limitation the checker no longer needs
/// is an error too.
fn judge(p: &Profile, report: &Report, how: &str) -> Result<(), String> {
    let expected = p.expect.verdict;
    let actual = report.verdict;
    let limitation = p.expect.limitation.as_deref();
    match judgement::judge(&expected, &actual, p.expect.threat, limitation) {
        Judgement::Pass if limitation.is_some() => Err(format!(
            "{} ({how}): gives {actual} as expected; remove its `limitation`",
            p.name
        )),
        Judgement::Pass | Judgement::Limitation => Ok(()),
        Judgement::Fail(_) if false_accept(p, &actual) => {
            let kind = rclab_emulator::verdict::wrong_accept(p.expect.threat, &expected, &actual)
                .map_or("GENUINE", |w| w.as_str());
            Err(format!(
                "{} ({how}): {}, expected {expected}: {}",
                p.name,
                kind.to_uppercase(),
                report.detail
            ))
        }
        Judgement::Fail(_) | Judgement::FalseReject => Err(format!(
            "{} ({how}): expected {expected}, got {actual}: {}",
            p.name, report.detail
        )),
    }
}

#[test]
fn every_catalogue_profile_meets_its_expectation() {
    let profiles = catalogue();
    assert!(profiles.len() >= 5 + 24, "{} profiles", profiles.len());
    let failures: Vec<String> = profiles
        .iter()
        .filter_map(|p| judge(p, &check(p, None).0, "whole-EF reads").err())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn phone_sized_reads_reach_the_same_verdicts() {
    let failures: Vec<String> = catalogue()
        .iter()
        .filter_map(|p| judge(p, &check(p, Some(1693)).0, "1693-byte reads").err())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_listed_fault_acts_during_the_check() {
    for p in catalogue().iter().filter(|p| !p.faults.is_empty()) {
        let (report, fired) = check(p, None);
        for (fault, count) in p.faults.iter().zip(&fired) {
            assert!(
                *count > 0,
                "{}: {fault:?} never acted ({})",
                p.name,
                report.detail
            );
        }
    }
}

#[test]
fn no_forged_card_is_called_genuine_except_the_clone_and_the_controls() {
    for p in catalogue() {
        let folder = p.name.split('/').next().unwrap_or_default();
        let expected_genuine = p.expect.verdict.verdict == VerdictKind::Genuine;
        if folder == "forged" && expected_genuine {
            assert!(
                p.expect
                    .flags
                    .iter()
                    .any(|f| f == "Clone" || f == "Control"),
                "{}",
                p.name
            );
        }
        let (report, _) = check(&p, None);
        assert!(
            !false_accept(&p, &report.verdict),
            "{}: {}",
            p.name,
            report.detail
        );
    }
}

#[derive(Serialize)]
struct Row {
    profile: String,
    expected: String,
    actual: String,
    detail: String,
}

#[test]
fn catalogue_verdicts() {
    let rows: Vec<Row> = catalogue()
        .iter()
        .map(|p| {
            let (report, _) = check(p, None);
            Row {
                profile: p.name.clone(),
                expected: p.expect.verdict.to_string(),
                actual: report.verdict.to_string(),
                detail: report.detail,
            }
        })
        .collect();
    insta::assert_yaml_snapshot!("catalogue_verdicts", rows);
}
