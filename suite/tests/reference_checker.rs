//! The reference checker against the bundled valid profiles, in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use rclab_emulator::profile::Profile;
use rclab_emulator::protocol::Status;
use rclab_emulator::transport::Tap;
use rclab_emulator::verdict::{Verdict, VerdictKind};
use rclab_suite::checker::{Checker, Report, TrustStore};
use rclab_suite::run::report;
use serde::Serialize;

fn check(
    profile: &Profile,
    number: &str,
    trust: &TrustStore,
    max_response: Option<usize>,
) -> Report {
    let mut options = common::options(7);
    options.max_response = max_response;
    Checker { trust, options }.check(&mut profile.card(), number)
}

#[test]
fn every_valid_profile_is_genuine() {
    let trust = TrustStore::embedded_test_roots();
    let profiles = common::profiles("valid");
    assert!(profiles.len() >= 5);
    for p in &profiles {
        let report = check(p, p.card_number.as_str(), &trust, None);
        assert_eq!(
            report.verdict,
            Verdict::GENUINE,
            "{}: {}",
            p.name,
            report.detail
        );
        let cert = report.data.certificate.expect("certificate read");
        assert!(cert.trusted_root.is_some(), "{}", p.name);
    }
}

#[test]
fn wrong_card_number_is_reported_as_such() {
    let trust = TrustStore::embedded_test_roots();
    for p in common::profiles("valid") {
        let report = check(&p, "ZZ00000000ZZ", &trust, None);
        assert_eq!(
            report.verdict.verdict,
            VerdictKind::WrongCardNumber,
            "{}",
            p.name
        );
    }
}

#[test]
fn empty_trust_store_gives_untrusted_certificate() {
    let empty = TrustStore::default();
    for p in common::profiles("valid") {
        let report = check(&p, p.card_number.as_str(), &empty, None);
        assert_eq!(
            report.verdict.verdict,
            VerdictKind::UntrustedCertificate,
            "{}",
            p.name
        );
    }
}

#[test]
fn trust_folder_of_the_repository_matches_the_embedded_roots() {
    let dir = TrustStore::from_dir(&common::vectors().join("pki/trust")).unwrap();
    let embedded = TrustStore::embedded_test_roots();
    let ders = |t: &TrustStore| {
        t.roots
            .iter()
            .map(|(_, c)| c.der.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ders(&dir), ders(&embedded));
}

#[test]
fn chunked_reads_give_the_same_data_as_whole_ef_reads() {
    let trust = TrustStore::embedded_test_roots();
    for p in common::profiles("valid") {
        let whole = check(&p, p.card_number.as_str(), &trust, None);
        for cap in [1693, 700, 256] {
            let mut tap = Tap::new(p.card());
            let mut options = common::options(7);
            options.max_response = Some(cap);
            let chunked = Checker {
                trust: &trust,
                options,
            }
            .check(&mut tap, p.card_number.as_str());
            assert_eq!(
                chunked.verdict,
                Verdict::GENUINE,
                "{} cap {cap}: {}",
                p.name,
                chunked.detail
            );
            assert_eq!(chunked.data, whole.data, "{} cap {cap}", p.name);
            for exchange in tap.transcript() {
                let response = exchange.response.as_ref().unwrap();
                assert!(
                    response.len() / 2 <= cap,
                    "{} cap {cap}: {} bytes",
                    p.name,
                    response.len() / 2
                );
            }
        }
    }
}

/// What the snapshot of one case holds: the verdict, the data and the APDU transcript
/// (long responses shortened to their head and a SHA-256 so the file stays reviewable).
#[derive(Serialize)]
struct CaseSnapshot {
    profile: String,
    report: Report,
    transcript: Vec<ShortExchange>,
}

#[derive(Serialize)]
struct ShortExchange {
    command: String,
    response: String,
    status: String,
    micros: u64,
}

#[test]
fn transcripts_and_verdicts_are_stable() {
    let trust = TrustStore::embedded_test_roots();
    for p in common::profiles("valid") {
        let mut tap = Tap::new(p.card());
        let report = Checker {
            trust: &trust,
            options: common::options(7),
        }
        .check(&mut tap, p.card_number.as_str());
        let transcript = tap
            .transcript()
            .iter()
            .map(|e| {
                let raw = e.response.clone().unwrap_or_default();
                let split = raw.len().saturating_sub(4);
                let status = u16::from_str_radix(&raw[split..], 16)
                    .map(Status::from_sw)
                    .unwrap_or(Status::Other(0));
                ShortExchange {
                    command: report::shorten(&e.command),
                    response: report::shorten(&raw[..split]),
                    status: status.to_string(),
                    micros: e.micros,
                }
            })
            .collect();
        let name = p.name.replace('/', "-");
        assert_case_snapshot!(
            name.as_str(),
            CaseSnapshot {
                profile: p.name.clone(),
                report,
                transcript
            }
        );
    }
}
