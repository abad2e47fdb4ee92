//! The My Number reference checker (`rclab_suite::checker::my_number`): every My Number
//! profile meets its expectation in-process and over PC/SC with no false accept; the PIN
//! is never spent down to a blocked card; a wrong PIN, a residence card and a hostile card
//! get their verdicts; the challenge is fresh per seed; the trust store carries the JPKI
//! TEST root.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::{Channel, Tap, TransportError};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};
use rclab_suite::checker::my_number::{is_my_number_card, profile_pin};
use rclab_suite::checker::{Checker, Report, TrustStore};
use rclab_suite::judgement::{Judgement, judge};
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::{self, Outcome, Transport};

/// The My Number profiles the My Number checker reads (with their PIN): the specified
/// residence cards beside them are read by the residence checker with their card number
/// over the 在留AP (`tests/specified_scope.rs`).
fn my_number_profiles() -> Vec<Profile> {
    common::all_profiles("my-number")
        .into_iter()
        .filter(|p| p.kind() == ChipKind::MyNumber)
        .collect()
}

fn adult() -> Profile {
    profile::load(&common::vectors().join("profiles/my-number/valid/adult.yaml")).unwrap()
}

fn check(channel: &mut dyn Channel, pin: &str, seed: u64) -> Report {
    let trust = TrustStore::embedded_test_roots();
    Checker {
        trust: &trust,
        options: common::options(seed),
    }
    .check_my_number(channel, pin)
}

/// Sent C-APDUs (hex) of a tapped check.
fn commands(tap: &Tap<impl Channel>) -> Vec<String> {
    tap.transcript().iter().map(|e| e.command.clone()).collect()
}

#[test]
fn every_my_number_profile_meets_its_expectation_in_process_without_false_accepts() {
    let profiles = my_number_profiles();
    assert!(profiles.len() >= 8, "{} My Number profiles", profiles.len());
    for p in &profiles {
        let pin = profile_pin(p).expect("a My Number profile states its PIN");
        let report = check(&mut p.card(), &pin, 7);
        let judgement = judge(
            &p.expect.verdict,
            &report.verdict,
            p.expect.threat,
            p.expect.limitation.as_deref(),
        );
        assert_eq!(
            judgement,
            Judgement::Pass,
            "{}: expected {}, got {}: {}",
            p.name,
            p.expect.verdict,
            report.verdict,
            report.detail
        );
        assert!(judgement.wrong_accept().is_none(), "{}", p.name);
    }
}

#[test]
fn the_genuine_check_reads_only_what_it_needs_and_signs_a_fresh_challenge() {
    let p = adult();
    let mut tap = Tap::new(p.card());
    let report = check(&mut tap, "1234", 7);
    assert_eq!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    let data = report.data.my_number.unwrap();
    assert!(data.signature_verified);
    assert_eq!(data.pin_tries_left, Some(3));
    assert_eq!(data.token_label.as_deref(), Some("JPKIAPICCTOKEN2"));
    assert_eq!(data.signature_certificate_present, Some(true));
    let sent = commands(&tap);
    // The case-1 VERIFY comes before the VERIFY with the PIN, and the signature follows.
    let query = sent.iter().position(|c| c == "00200080").unwrap();
    let verify = sent
        .iter()
        .position(|c| c.starts_with("0020008004"))
        .unwrap();
    let sign = sent.iter().position(|c| c.starts_with("802A0080")).unwrap();
    assert!(query < verify && verify < sign, "{sent:?}");
    // In the JPKI AP, never the signature certificate (0001) or the signature CA (0002);
    // the text AP's 0001/0002 (the number, the attributes) come after its own SELECT.
    let text_ap = sent
        .iter()
        .position(|c| c == "00A4040C0AD3921000310001010408")
        .unwrap();
    assert!(sign < text_ap, "{sent:?}");
    assert!(
        !sent[..text_ap]
            .iter()
            .any(|c| c == "00A4020C020001" || c == "00A4020C020002"),
        "{sent:?}"
    );
    // The audit agrees: nothing unneeded.
    let audit = run::audit::audit_my_number(p.my_number.as_deref().unwrap(), tap.transcript());
    assert!(audit.unneeded_efs.is_empty(), "{audit:?}");
    // Four JPKI files and the text AP's four checked ones.
    assert_eq!(audit.efs_read.len(), 8, "{audit:?}");

    // Another seed, another challenge; the same seed, the same bytes.
    let signed = |seed| {
        let mut tap = Tap::new(p.card());
        check(&mut tap, "1234", seed);
        commands(&tap)
            .into_iter()
            .find(|c| c.starts_with("802A0080"))
            .unwrap()
    };
    assert_eq!(signed(7), signed(7));
    assert_ne!(signed(7), signed(8));
}

#[test]
fn a_wrong_pin_is_wrong_pin_and_the_last_try_is_never_spent() {
    let p = adult();
    let mut card = p.card();
    let first = check(&mut card, "9999", 1);
    assert_eq!(
        first.verdict,
        Verdict::new(VerdictKind::WrongPin, None),
        "{}",
        first.detail
    );
    let second = check(&mut card, "9999", 1);
    assert_eq!(second.verdict.verdict, VerdictKind::WrongPin);
    // One try left: the checker asks, and stops before a VERIFY that could block the card.
    for _ in 0..3 {
        let mut tap = Tap::new(&mut card);
        let report = check(&mut tap, "9999", 1);
        assert_eq!(
            report.verdict,
            Verdict::with(VerdictKind::Unreadable, Reason::PinLastTry),
            "{}",
            report.detail
        );
        assert_eq!(report.data.my_number.unwrap().pin_tries_left, Some(1));
        assert!(
            !commands(&tap).iter().any(|c| c.starts_with("0020008004")),
            "a VERIFY with data was sent at one try left"
        );
    }
}

#[test]
fn a_profile_with_one_try_left_is_reported_not_spent() {
    let dir = common::temp_dir("mn-checker", "last-try");
    let adult = common::vectors().join("profiles/my-number/valid/adult.yaml");
    let path = dir.join("last-try.yaml");
    std::fs::write(
        &path,
        format!(
            "extends: {}\ndescription: one try left\njpki:\n  auth_pin_tries_left: 1\n\
             expect:\n  verdict: unreadable\n  reason: pin_last_try\n  why: one try left\n",
            adult.display()
        ),
    )
    .unwrap();
    let p = profile::load(&path).unwrap();
    let report = check(&mut p.card(), "1234", 1);
    assert_eq!(
        report.verdict,
        Verdict::with(VerdictKind::Unreadable, Reason::PinLastTry),
        "{}",
        report.detail
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_residence_card_is_not_a_my_number_card_and_detection_tells_them_apart() {
    let residence = common::profiles("valid").into_iter().next().unwrap();
    let report = check(&mut residence.card(), "1234", 1);
    assert_eq!(
        report.verdict,
        Verdict::new(VerdictKind::NotMyNumberCard, None),
        "{}",
        report.detail
    );
    assert!(!is_my_number_card(&mut residence.card()));
    assert!(is_my_number_card(&mut adult().card()));
    // A residence card stays readable after the probe: its own check is unchanged.
    let mut card = residence.card();
    assert!(!is_my_number_card(&mut card));
    let trust = TrustStore::embedded_test_roots();
    let after = Checker {
        trust: &trust,
        options: common::options(1),
    }
    .check(&mut card, residence.card_number.as_str());
    assert_eq!(after.verdict, Verdict::GENUINE, "{}", after.detail);
}

/// A card answering random bytes (status words included): never a panic, never genuine.
struct Hostile(ChaCha20Rng);

impl Channel for Hostile {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let len = (self.0.next_u32() % 300) as usize;
        let mut out = vec![0u8; len];
        self.0.fill_bytes(&mut out);
        // Often a plausible status word, so that the check gets past its first steps.
        if len >= 2 && self.0.next_u32() % 10 < 7 {
            let sw: [u8; 2] = match self.0.next_u32() % 4 {
                0 => [0x90, 0x00],
                1 => [0x63, 0xC3],
                2 => [0x6A, 0x82],
                _ => [0x6B, 0x00],
            };
            out[len - 2..].copy_from_slice(&sw);
        }
        Ok(out)
    }
}

#[test]
fn a_hostile_card_never_panics_the_checker_nor_passes_it() {
    for seed in 0..400 {
        let report = check(&mut Hostile(ChaCha20Rng::seed_from_u64(seed)), "1234", seed);
        assert_ne!(report.verdict, Verdict::GENUINE, "seed {seed}");
    }
}

#[test]
fn the_trust_store_carries_the_jpki_test_authentication_root() {
    let vectors = common::vectors().join("pki");
    assert_eq!(
        std::fs::read(vectors.join("trust/jpki-auth-ca.crt")).unwrap(),
        std::fs::read(vectors.join("jpki/auth-ca.crt")).unwrap(),
        "trust/jpki-auth-ca.crt must be a copy of jpki/auth-ca.crt"
    );
}

#[test]
fn the_reference_checker_meets_the_my_number_catalogue_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let out = common::temp_dir("mn-checker", "pcsc");
    let config = common::run_config(
        vec![Adapter::reference()],
        my_number_profiles(),
        Transport::Pcsc,
        out.join("run"),
    );
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), config.profiles.len());
    for r in &results {
        assert_eq!(
            r.outcome,
            Outcome::Pass,
            "{} × {}: {}",
            r.checker,
            r.profile,
            r.detail
        );
        assert!(!r.false_accept && !r.missed_corruption, "{}", r.profile);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// True when OpenSC's tools are installed; fails under `RCLAB_REQUIRE_PCSC` otherwise.
fn opensc_available() -> bool {
    let found = ["opensc-tool", "pkcs15-tool", "pkcs11-tool", "openssl"]
        .iter()
        .all(|tool| {
            std::process::Command::new(tool)
                .arg("--version")
                .output()
                .is_ok()
        });
    if !found {
        let message = "OpenSC is not installed: `apt-get install opensc` (scripts/pcsc-up does)";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_PCSC").is_none(),
            "{message} (RCLAB_REQUIRE_PCSC is set)"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}

#[test]
fn the_opensc_example_checker_meets_the_my_number_catalogue_over_pcsc() {
    if !common::stack_available() || !opensc_available() {
        return;
    }
    let out = common::temp_dir("mn-checker", "opensc");
    let opensc = Adapter::load(
        common::repo()
            .join("suite/adapters/opensc-jpki.yaml")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    // The whole catalogue: the adapter's `cards: [my_number]` pairs it with the My
    // Number profiles only, and the summary counts the others as out of its scope.
    let mut checkers = vec![opensc];
    let profiles = common::all_profiles("");
    run::adapter::set_scope(&mut checkers, &profiles);
    let my_number = profiles
        .iter()
        .filter(|p| p.kind() == ChipKind::MyNumber)
        .count();
    assert_eq!(checkers[0].out_of_scope, profiles.len() - my_number);
    let config = common::run_config(checkers, profiles, Transport::Pcsc, out.join("run"));
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), my_number, "only My Number cases are paired");
    // OpenSC has no driver for the text-support AP, so a checker built on it cannot see
    // rewritten attributes or an invented number: those two forgeries are its false
    // accepts (a finding the example report shows), every other case passes.
    let text_ap_forgeries = [
        "my-number/forged/text-name-changed",
        "my-number/forged/text-wrong-check-digit",
    ];
    for r in &results {
        assert!(r.profile.starts_with("my-number/"), "{}", r.profile);
        let blind_spot = text_ap_forgeries.contains(&r.profile.as_str());
        assert_eq!(
            (r.outcome, r.false_accept),
            if blind_spot {
                (Outcome::Fail, true)
            } else {
                (Outcome::Pass, false)
            },
            "{} × {}: {}",
            r.checker,
            r.profile,
            r.detail
        );
        assert!(!r.missed_corruption, "{}", r.profile);
    }
    let summary = run::report::checker_summary(&results, &config.checkers[0]);
    assert_eq!(summary.out_of_scope, config.profiles.len() - my_number);
    let markdown = run::report::markdown(&config.checkers, &results);
    assert!(
        markdown.contains(&format!("opensc-jpki {}", summary.out_of_scope)),
        "{markdown}"
    );
    let page = run::report::html::page(&config.checkers, &results, &run::render::Cards::default());
    assert!(
        page.contains(&format!("opensc-jpki {}.</p>", summary.out_of_scope)),
        "the HTML summary counts the profiles out of scope"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_residence_only_checker_is_paired_with_residence_profiles_only() {
    let dir = common::temp_dir("mn-checker", "scope");
    let path = dir.join("residence-only.yaml");
    std::fs::write(
        &path,
        "name: residence-only\nkind: reference\ncards: [residence]\n",
    )
    .unwrap();
    let mut checkers = vec![
        Adapter::reference(),
        Adapter::load(path.to_str().unwrap()).unwrap(),
    ];
    let profiles = common::all_profiles("");
    run::adapter::set_scope(&mut checkers, &profiles);
    let my_number = profiles.iter().filter(|p| p.my_number.is_some()).count();
    let specified = profiles
        .iter()
        .filter(|p| p.kind() == ChipKind::SpecifiedResidence)
        .count();
    assert!(my_number >= 8);
    assert!(specified >= 2);
    assert_eq!(
        checkers[0].out_of_scope, 0,
        "the reference checks residence, My Number and specified residence cards"
    );
    assert_eq!(checkers[1].out_of_scope, my_number);
    let config = common::run_config(checkers, profiles, Transport::Inproc, dir.join("run"));
    let results = run::run(&config).unwrap();
    let mine = |name: &str| results.iter().filter(|r| r.checker == name).count();
    assert_eq!(mine("reference"), config.profiles.len());
    assert_eq!(mine("residence-only"), config.profiles.len() - my_number);
    assert!(
        results
            .iter()
            .all(|r| r.outcome == Outcome::Pass && !r.false_accept),
        "every paired case passes"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run::report::json::document(&config.checkers, &results).unwrap())
            .unwrap();
    // Absent when there are none.
    assert!(json["summary"][0].get("out_of_scope").is_none());
    assert_eq!(json["summary"][1]["out_of_scope"], my_number);
    // A checker whose every profile is out of scope ran nothing, and the run says why.
    let mut idle = config.checkers[1].clone();
    idle.out_of_scope = config.profiles.len();
    let why = run::idle_checkers(&[idle], &[]);
    assert!(
        why[0].1.contains("card kinds its `cards:` does not name"),
        "{why:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_privacy_audit_calls_reading_the_signature_certificate_over_reading() {
    let p = adult();
    let mut tap = Tap::new(p.card());
    let report = check(&mut tap, "1234", 3);
    assert_eq!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    // A checker that also reads the signature CA (free) and, after the password, the
    // signature certificate with the holder's name, address and birth date.
    for apdu in [
        // Back to the JPKI AP (the check ended in the text AP).
        "00A4040C0AD392F000260100000001",
        "00A4020C020002",
        "00B0000000",
        "00A4020C02001B",
        "0020008009544553545041535331",
        "00A4020C020001",
        "00B0000000",
    ] {
        let answer = tap.transmit(&hex::decode(apdu).unwrap()).unwrap();
        assert_eq!(answer[answer.len() - 2..], [0x90, 0x00], "{apdu}");
    }
    let audit = run::audit::audit_my_number(p.my_number.as_deref().unwrap(), tap.transcript());
    assert_eq!(
        audit.unneeded_efs,
        [
            "JPKI/0002 signature CA certificate",
            "JPKI/0001 signature certificate"
        ],
        "{audit:?}"
    );
    // The checker's case-1 and real VERIFY of the auth PIN and of the text PIN, then the
    // password.
    assert_eq!(audit.verify, 5, "{audit:?}");
}

/// A card that accepts every SELECT but the foreign one and sends full 256-byte chunks
/// forever: the checker stops at 32 KiB, never sends READ BINARY in the SFI form (P1 bit
/// 8), and calls the endless file no certificate.
struct Endless {
    reads: usize,
    sfi_form: bool,
}

impl Channel for Endless {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(match apdu {
            // SELECT of the residence DF1 (16-byte AID): not here.
            [0x00, 0xA4, 0x04, _, 0x10, ..] => vec![0x6A, 0x82],
            [0x00, 0xA4, ..] => vec![0x90, 0x00],
            [0x00, 0xB0, p1, ..] => {
                self.reads += 1;
                self.sfi_form |= p1 & 0x80 != 0;
                let mut chunk = vec![0x30; 256];
                chunk.extend_from_slice(&[0x90, 0x00]);
                chunk
            }
            _ => vec![0x6D, 0x00],
        })
    }
}

#[test]
fn an_endless_file_is_read_to_32_kib_in_the_offset_form_only() {
    let mut card = Endless {
        reads: 0,
        sfi_form: false,
    };
    let report = check(&mut card, "1234", 1);
    assert_ne!(report.verdict, Verdict::GENUINE, "{}", report.detail);
    assert!(
        !card.sfi_form,
        "a READ BINARY at offset 8000 became the SFI form"
    );
    // Token info, certificate map: 32 KiB each before the certificate fails to parse.
    assert!(card.reads <= 3 * 128, "{} reads", card.reads);
}

#[test]
fn rclab_check_reads_my_number_profiles_with_their_pin_or_pin_flag() {
    let table = common::rclab(&["check", "--profiles", "vectors/profiles/my-number"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}{}", common::stderr(&table));
    // Every kind is checked: the specified cards with their card number.
    assert!(
        text.contains("18 profile(s), 0 unexpected verdict(s)"),
        "{text}"
    );
    assert!(
        !common::stderr(&table).contains("skipped"),
        "{}",
        common::stderr(&table)
    );
    let wrong = common::rclab(&[
        "check",
        "--profile",
        "vectors/profiles/my-number/valid/adult.yaml",
        "--pin",
        "9999",
        "--seed",
        "1",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(report["verdict"]["verdict"], "wrong_pin", "{report}");
    assert_eq!(report["data"]["my_number"]["pin_tries_left"], 3, "{report}");
    let bad = common::rclab(&["check", "--pin", "12a4"]);
    assert_eq!(bad.status.code(), Some(2));
    let message = common::stderr(&bad);
    assert!(
        message.contains("--pin") && message.contains("exactly 4 digits"),
        "{message}"
    );
}
