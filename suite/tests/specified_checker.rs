//! The reference checker on the specified residence card (types 07/08, spec notes Part A):
//! every specified profile meets its expectation; every value of every `platform.residence_*`
//! knob reads as genuine, with what the card took reported; the TEST delivery key is taken
//! in each of its file formats; a plain My Number card and a residence card keep their
//! verdicts; a wrong card number and a foreign delivery key get theirs; no answer of a
//! hostile 在留AP makes the checker panic.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

mod common;

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use rclab_emulator::card::knobs::KNOBS;
use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::key_delivery::{DeliveryPublicKey, PublicKeyFormat};
use rclab_emulator::transport::{Channel, Tap, TransportError};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};
use rclab_suite::checker::{Checker, Options, Report, TrustStore};

fn load(name: &str) -> Profile {
    profile::load(&common::vectors().join(format!("profiles/{name}.yaml")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `base` (under `profiles/my-number/`) with `yaml` added, from a scratch file.
fn overlay(base: &str, yaml: &str, tag: &str) -> Profile {
    let dir = common::temp_dir("specified-checker", tag);
    let file = dir.join("variant.yaml");
    let base = common::vectors().join(format!("profiles/my-number/{base}.yaml"));
    std::fs::write(&file, format!("extends: {}\n{yaml}", base.display())).unwrap();
    profile::load(&file).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn check_with(channel: &mut dyn Channel, number: &str, options: Options) -> Report {
    let trust = TrustStore::embedded_test_roots();
    Checker {
        trust: &trust,
        options,
    }
    .check(channel, number)
}

fn check(channel: &mut dyn Channel, number: &str, seed: u64) -> Report {
    check_with(channel, number, common::options(seed))
}

fn specified_profiles() -> Vec<Profile> {
    common::all_profiles("my-number")
        .into_iter()
        .filter(|p| p.kind() == ChipKind::SpecifiedResidence)
        .collect()
}

#[test]
fn every_specified_profile_meets_its_expectation() {
    let profiles = specified_profiles();
    assert!(profiles.len() >= 6, "{} specified profiles", profiles.len());
    for p in &profiles {
        let report = check(&mut p.card(), p.card_number.as_str(), 3);
        assert_eq!(
            report.verdict, p.expect.verdict,
            "{}: {}",
            p.name, report.detail
        );
    }
}

#[test]
fn a_genuine_specified_card_reports_its_data_and_what_the_ap_took() {
    let p = load("my-number/valid/specified-07");
    let report = check(&mut p.card(), p.card_number.as_str(), 1);
    assert_eq!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    assert!(
        report.detail.contains("在留AP took a session key"),
        "{}",
        report.detail
    );
    let data = &report.data;
    assert_eq!(data.card_type.as_deref(), Some("07"));
    assert_eq!(data.generation, Some(2));
    assert_eq!(data.card_number.as_deref(), Some(p.card_number.as_str()));
    assert!(data.certificate.as_ref().unwrap().trusted_root.is_some());
    let took = serde_json::to_value(data.residence_ap.as_ref().unwrap()).unwrap();
    assert_eq!(
        took,
        serde_json::json!({
            "oaep_digest": "sha256", "key_template": "encryption_key", "sm": "counter_iv",
            "verify_p2": "gen2_86", "df_select": "plain", "le_do": "two_byte"
        })
    );
    // The special permanent resident certificate: no work-permission entries, no DF2 EF01.
    let p = load("my-number/valid/specified-08");
    let report = check(&mut p.card(), p.card_number.as_str(), 1);
    assert_eq!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    assert_eq!(report.data.card_type.as_deref(), Some("08"));
}

/// Every value of every `platform.residence_*` knob, on both card types: genuine, and the
/// report names the value the card took.
#[test]
fn every_residence_knob_value_reads_as_genuine_and_is_reported() {
    let mut runs = 0;
    for knob in KNOBS
        .iter()
        .filter(|k| k.path.starts_with("platform.residence_"))
    {
        for value in knob.values {
            let yaml = serde_yaml_ng::to_string(&knob.setting(value).unwrap()).unwrap();
            for base in ["valid/specified-07", "valid/specified-08"] {
                let tag = format!("{}-{value}-{}", knob.path, base.replace('/', "-"));
                let p = overlay(base, &yaml, &tag);
                let report = check(&mut p.card(), p.card_number.as_str(), runs);
                assert_eq!(report.verdict, Verdict::GENUINE, "{tag}: {}", report.detail);
                let took =
                    serde_json::to_value(report.data.residence_ap.as_ref().unwrap()).unwrap();
                let field = knob.path.trim_start_matches("platform.residence_");
                if let Some(reported) = took.get(field) {
                    // The CMAC SM has no Le DO: its le_do is never learned.
                    assert_eq!(reported, value, "{tag}: {took}");
                }
                runs += 1;
            }
        }
    }
    assert!(runs >= 36, "{runs}");
}

#[test]
fn the_delivery_key_is_taken_in_each_file_format() {
    let p = load("my-number/valid/specified-07");
    let dir = common::vectors().join("pki/mynumber");
    for (file, format) in [
        ("delivery.pub.raw", PublicKeyFormat::RawModulus),
        ("delivery.pub.der", PublicKeyFormat::SubjectPublicKeyInfo),
        ("delivery.pub.tlv", PublicKeyFormat::PlatformTlv),
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let (key, found) = DeliveryPublicKey::parse_any(&bytes).unwrap();
        assert_eq!(found, format);
        let options = Options {
            delivery_key: Some(key),
            ..common::options(5)
        };
        let report = check_with(&mut p.card(), p.card_number.as_str(), options);
        assert_eq!(
            report.verdict,
            Verdict::GENUINE,
            "{file}: {}",
            report.detail
        );
    }
    // The checker given another key than the card's: the card refuses every form, with
    // 6A 80 or, for a cryptogram above its own modulus, 6F 00 (seeds reach both).
    for seed in 0..8 {
        let options = Options {
            delivery_key: Some(other_public_key()),
            ..common::options(seed)
        };
        let report = check_with(&mut p.card(), p.card_number.as_str(), options);
        assert_eq!(
            report.verdict,
            Verdict::with(VerdictKind::Forged, Reason::AuthFailed),
            "seed {seed}: {}",
            report.detail
        );
    }
}

fn other_public_key() -> DeliveryPublicKey {
    use rsa::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(
        Path::new(&common::vectors()).join("pki/mynumber/other-delivery.key.pem"),
    )
    .unwrap();
    let key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    DeliveryPublicKey(key.to_public_key())
}

#[test]
fn a_wrong_card_number_a_plain_my_number_card_and_a_residence_card() {
    let p = load("my-number/valid/specified-07");
    let report = check(&mut p.card(), "AA00000000AA", 1);
    assert_eq!(
        report.verdict,
        Verdict::new(VerdictKind::WrongCardNumber, None),
        "{}",
        report.detail
    );
    // With the tries-left knob the answer is 63 Cx: still a wrong number.
    let limited = overlay(
        "valid/specified-07",
        "platform:\n  residence_wrong_number: tries_left\n",
        "tries",
    );
    let report = check(&mut limited.card(), "AA00000000AA", 1);
    assert_eq!(report.verdict.verdict, VerdictKind::WrongCardNumber);
    assert!(report.detail.contains("9 tries left"), "{}", report.detail);
    // A My Number card without the 在留AP is no residence card of any kind.
    let plain = load("my-number/valid/adult");
    let report = check(&mut plain.card(), "AA00000000AA", 1);
    assert_eq!(
        report.verdict,
        Verdict::new(VerdictKind::NotResidenceCard, None),
        "{}",
        report.detail
    );
    assert!(
        report.detail.contains("SELECT 在留AP: 6A 82"),
        "{}",
        report.detail
    );
    // A residence card is read as before: the 在留AP is never tried on it.
    let residence = load("valid/gen2-residence");
    let mut tap = Tap::new(residence.card());
    let report = check(&mut tap, residence.card_number.as_str(), 1);
    assert_eq!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    assert!(report.data.residence_ap.is_none());
    let aid = hex::encode_upper(rclab_emulator::my_number::residence_ap::RESIDENCE_AP_AID);
    assert!(tap.transcript().iter().all(|e| !e.command.contains(&aid)));
}

/// A 在留AP that answers random bytes after its card type: the checker ends with a verdict.
struct Hostile {
    inner: rclab_emulator::fault::SimCard,
    rng: ChaCha20Rng,
    after: usize,
    sent: usize,
}

impl Channel for Hostile {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent += 1;
        let real = self.inner.transmit(apdu)?;
        if self.sent <= self.after {
            return Ok(real);
        }
        let len = self.rng.random_range(0..40);
        let mut answer: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        if self.rng.random_bool(0.5) {
            answer.extend_from_slice(&[0x90, 0x00]);
        }
        Ok(answer)
    }
}

#[test]
fn random_answers_after_any_command_end_in_a_verdict_never_genuine() {
    let p = load("my-number/valid/specified-07");
    for seed in 0..200u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let after = rng.random_range(1..12);
        let mut card = Hostile {
            inner: p.card(),
            rng,
            after,
            sent: 0,
        };
        let report = check(&mut card, p.card_number.as_str(), seed);
        assert_ne!(
            report.verdict,
            Verdict::GENUINE,
            "seed {seed}: {}",
            report.detail
        );
    }
}

/// The least likely readings of every open question at once: the checker still finds its
/// way (a Le DO learned after the card destroyed its session, then opened again with a DF
/// SELECT under SM).
#[test]
fn the_least_likely_readings_together_read_as_genuine() {
    for (tag, yaml) in [
        (
            "counter",
            "platform:\n  residence_oaep_digest: sha1\n  residence_key_template: encryption_and_mac_key\n  residence_le_do: three_byte\n  residence_verify_p2: sfi81\n  residence_df_select: secure_messaging\n  residence_wrong_number: tries_left\n  residence_common_data: also_after_df\n  residence_delivery_key_format: platform_tlv\n",
        ),
        (
            "cmac",
            "platform:\n  residence_oaep_digest: sha1\n  residence_sm: cmac\n  residence_verify_p2: sfi81\n  residence_df_select: secure_messaging\n",
        ),
    ] {
        for base in ["valid/specified-07", "valid/specified-08"] {
            let p = overlay(base, yaml, &format!("{tag}-{}", base.replace('/', "-")));
            let report = check(&mut p.card(), p.card_number.as_str(), 9);
            assert_eq!(
                report.verdict,
                Verdict::GENUINE,
                "{tag} {base}: {}",
                report.detail
            );
            let took = serde_json::to_value(report.data.residence_ap.as_ref().unwrap()).unwrap();
            assert_eq!(took["oaep_digest"], "sha1", "{took}");
            assert_eq!(took["verify_p2"], "sfi81", "{took}");
            assert_eq!(took["df_select"], "secure_messaging", "{took}");
            if tag == "counter" {
                assert_eq!(took["le_do"], "three_byte", "{took}");
                assert_eq!(took["sm"], "counter_iv", "{took}");
            } else {
                assert_eq!(took["sm"], "cmac", "{took}");
            }
        }
    }
}

/// The two corrupted cards of the protocol say what went wrong: a counter one ahead is told
/// from a card that does not hold the key (its answer opens at the next counter), a session
/// cleared behind the reader's back is a lost session, not a forgery.
#[test]
fn a_desynchronised_counter_and_a_cleared_session_are_named() {
    let unreadable = Verdict::with(VerdictKind::Unreadable, Reason::SmError);
    let p = load("my-number/corrupted/specified-counter-desync");
    let report = check(&mut p.card(), p.card_number.as_str(), 1);
    assert_eq!(report.verdict, unreadable, "{}", report.detail);
    assert!(
        report
            .detail
            .contains("sealed under message counter 3, not 2")
            && report.detail.contains("out of step"),
        "{}",
        report.detail
    );
    let p = load("my-number/corrupted/specified-session-cleared");
    let report = check(&mut p.card(), p.card_number.as_str(), 1);
    assert_eq!(report.verdict, unreadable, "{}", report.detail);
    assert!(
        report.detail.contains("lost its session"),
        "{}",
        report.detail
    );
    // The same answers under a key the card never agreed: no counter opens them, a forgery.
    let p = load("my-number/valid/specified-07");
    let mut card = WrongKeyAfterVerify {
        inner: p.card(),
        verified: false,
    };
    let report = check(&mut card, p.card_number.as_str(), 1);
    assert_eq!(
        report.verdict,
        Verdict::with(VerdictKind::Forged, Reason::SmError),
        "{}",
        report.detail
    );
}

/// After VERIFY, every SM answer's cryptogram has its bytes flipped: it opens under no
/// counter of the session key.
struct WrongKeyAfterVerify {
    inner: rclab_emulator::fault::SimCard,
    verified: bool,
}

impl Channel for WrongKeyAfterVerify {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut answer = self.inner.transmit(apdu)?;
        if self.verified && apdu.first() == Some(&0x08) && answer.len() > 5 {
            let end = answer.len() - 2;
            // DO 86 L 01 ‖ cryptogram: flip every cryptogram byte after the header.
            for b in &mut answer[4..end] {
                *b ^= 0x5A;
            }
        }
        if apdu.first() == Some(&0x08) && apdu.get(1) == Some(&0x20) {
            self.verified = true;
        }
        Ok(answer)
    }
}

/// A generation-2 residence chip answering `C1 07` at its MF (C1 is not signed): a specified
/// card holds its type only in the 在留AP, so the relabelled chip is a forgery, never a
/// genuine specified card.
#[test]
fn a_residence_chip_relabelled_07_at_its_mf_is_forged() {
    struct Relabel(rclab_emulator::fault::SimCard);
    impl Channel for Relabel {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            let mut answer = self.0.transmit(apdu)?;
            if apdu.starts_with(&[0x00, 0xB0, 0x8A]) {
                let n = answer.len();
                if let Some(i) = answer[..n.saturating_sub(2)]
                    .windows(2)
                    .position(|w| w == b"05")
                {
                    answer[i + 1] = b'7';
                }
            }
            Ok(answer)
        }
    }
    let p = load("valid/gen2-residence");
    let unchanged = check(&mut p.card(), p.card_number.as_str(), 1);
    assert_eq!(unchanged.verdict, Verdict::GENUINE, "{}", unchanged.detail);
    let report = check(&mut Relabel(p.card()), p.card_number.as_str(), 1);
    assert_eq!(report.data.card_type.as_deref(), Some("07"));
    assert_eq!(
        report.verdict,
        Verdict::with(VerdictKind::Forged, Reason::MalformedData),
        "{}",
        report.detail
    );
    assert!(report.detail.contains("在留AP"), "{}", report.detail);
}
