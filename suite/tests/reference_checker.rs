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

/// Loads `base` with one knob set to `value`, through an overlay profile written to `dir`
/// (as the variant generator writes them).
fn with_knob(
    base: &Profile,
    knob: &rclab_emulator::card::KnobSpec,
    value: &str,
    dir: &std::path::Path,
) -> Profile {
    let overlay = knob
        .overlay(&base.path.display().to_string(), value)
        .expect("a value of the table");
    let file = dir.join(format!("{}-{value}.yaml", knob.path.replace('.', "-")));
    std::fs::write(&file, overlay).expect("write overlay");
    rclab_emulator::profile::load(&file)
        .unwrap_or_else(|e| panic!("{} = {value} over {}: {e}", knob.path, base.name))
}

/// A new folder of its own (a random name: never one left by an earlier run).
fn scratch(name: &str) -> std::path::PathBuf {
    let prefix = format!("rclab-{name}-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .unwrap()
        .keep()
}

/// Every value of every knob (`KNOBS`), over every valid profile of the knob's
/// generations, compiles and still reads as genuine with the reference checker: the open
/// behaviours are the card's choice, not a forgery.
#[test]
fn every_knob_value_over_every_valid_profile_is_genuine() {
    let trust = TrustStore::embedded_test_roots();
    let dir = scratch("knob-variants");
    let mut checked = 0;
    for knob in rclab_emulator::card::KNOBS {
        for base in common::profiles("valid") {
            if !knob.applies_to_profile(base.kind(), base.generation) {
                continue;
            }
            for value in knob.values {
                let variant = with_knob(&base, knob, value, &dir);
                let report = check(&variant, base.card_number.as_str(), &trust, None);
                assert_eq!(
                    report.verdict,
                    Verdict::GENUINE,
                    "{} = {value} over {}: {}",
                    knob.path,
                    base.name,
                    report.detail
                );
                checked += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(checked >= 30, "{checked}");
}

/// Generation 1 stores images exact-length by default (`D0 82 <len> <image>`, zero fill
/// after the TLV) or full-length with `knobs.image_layout: full` (`D0 82 1B 58`); the EF
/// is 7 004 / 3 004 bytes either way, and the reference checker reads the same image and
/// verifies the same check code from both.
#[test]
fn gen1_images_read_alike_in_the_exact_and_full_layouts() {
    use rclab_emulator::card::{Df, EfId};
    let trust = TrustStore::embedded_test_roots();
    let knob = rclab_emulator::card::knobs::knob("knobs.image_layout").expect("knob");
    let dir = scratch("image-layouts");
    let gen1: Vec<Profile> = common::profiles("valid")
        .into_iter()
        .filter(|p| p.generation == rclab_emulator::protocol::Generation::First)
        .collect();
    assert!(gen1.len() >= 2);
    for base in &gen1 {
        let exact = with_knob(base, knob, "exact", &dir);
        let full = with_knob(base, knob, "full", &dir);
        let front = |p: &Profile| {
            p.image
                .file(EfId::new(Df::Df1, 0x05))
                .expect("DF1/EF01")
                .content
                .clone()
        };
        let face = |p: &Profile| {
            p.image
                .file(EfId::new(Df::Df1, 0x06))
                .expect("DF1/EF02")
                .content
                .clone()
        };
        // The default is exact.
        assert_eq!(front(base), front(&exact), "{}", base.name);
        for (p, head, face_head) in [
            (&exact, None, None),
            (
                &full,
                Some([0xD0, 0x82, 0x1B, 0x58]),
                Some([0xD1, 0x82, 0x0B, 0xB8]),
            ),
        ] {
            let (fr, fa) = (front(p), face(p));
            assert_eq!((fr.len(), fa.len()), (7004, 3004), "{}", base.name);
            match head {
                Some(h) => assert_eq!(fr[..4], h),
                None => {
                    let len = usize::from(u16::from_be_bytes([fr[2], fr[3]]));
                    assert_eq!(fr[..2], [0xD0, 0x82]);
                    assert!(len < 7000 && fr[4 + len..].iter().all(|&b| b == 0));
                }
            }
            if let Some(h) = face_head {
                assert_eq!(fa[..4], h);
            }
        }
        let (a, b) = (
            check(&exact, base.card_number.as_str(), &trust, None),
            check(&full, base.card_number.as_str(), &trust, None),
        );
        assert_eq!(a.verdict, Verdict::GENUINE, "{}: {}", base.name, a.detail);
        assert_eq!(b.verdict, Verdict::GENUINE, "{}: {}", base.name, b.detail);
        let lengths = |r: &Report| {
            let d = &r.data;
            (
                d.front_image.as_ref().map(|i| (i.length, i.format)),
                d.face_image.as_ref().map(|i| (i.length, i.format)),
            )
        };
        assert_eq!(lengths(&a), lengths(&b), "{}", base.name);
        // The check code is over the values padded to 7 000 / 3 000 (spec §7.1): the
        // same in both layouts, and RSA PKCS#1 v1.5 signs deterministically.
        let df3 = |p: &Profile| {
            p.image
                .file(EfId::new(Df::Df3, 0x02))
                .map(|f| f.content.clone())
        };
        assert_eq!(df3(&exact), df3(&full), "{}", base.name);
    }
    std::fs::remove_dir_all(&dir).ok();
}
