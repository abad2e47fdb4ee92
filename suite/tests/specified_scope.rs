//! The specified residence card (07/08) in the suite (issue 16): `rclab run` pairs the
//! reference checker with every specified profile and every pairwise variant of the valid
//! ones, and hands it the card number and the TEST delivery public key in the format each
//! profile names, in-process and over PC/SC; a process checker gets that key's file as
//! `{delivery_key}`; `rclab check` reads specified profiles with `--delivery-key` in any
//! format and refuses a bad one naming the flag and the file; `--card auto` tells a
//! specified card by its 在留AP.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::time::Duration;

use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::verdict::{Reason, VerdictKind};
use rclab_suite::checker::my_number::{checker_pin, has_residence_ap, is_my_number_card};
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::run::adapter::{self, Adapter};
use rclab_suite::run::data::FieldStatus;
use rclab_suite::run::host::{Access, CardChange, CardHost, Vpcd};
use rclab_suite::run::{self, CaseResult, Outcome, Transport, delivery_key, variants};

/// The bundled specified residence profiles (`my-number/valid/specified-*`,
/// `my-number/forged/specified-*`), named as `rclab run` names them.
fn specified_profiles() -> Vec<Profile> {
    let specified: Vec<Profile> = common::all_profiles("")
        .into_iter()
        .filter(|p| p.kind() == ChipKind::SpecifiedResidence)
        .collect();
    assert!(
        specified.len() >= 6,
        "{} specified profiles",
        specified.len()
    );
    specified
}

/// The specified profiles plus the pairwise variants of the valid ones, generated into `dir`.
fn with_variants(dir: &std::path::Path) -> Vec<Profile> {
    let mut profiles = specified_profiles();
    let generated = variants::write_variants(&profiles, dir).unwrap();
    assert!(generated.len() >= 20, "{} variants", generated.len());
    profiles.extend(generated);
    profiles
}

/// Every case passed, none accepted a card it should not, and every genuine card's data
/// match what its profile compiled.
fn assert_all_pass(results: &[CaseResult], profiles: &[Profile]) {
    assert_eq!(results.len(), profiles.len(), "every profile is a case");
    for r in results {
        assert_eq!(r.outcome, Outcome::Pass, "{}: {}", r.profile, r.detail);
        assert!(!r.false_accept && !r.missed_corruption, "{}", r.profile);
        if r.expected.verdict == VerdictKind::Genuine {
            assert!(!r.data_error, "{}: {:?}", r.profile, r.fields);
            // Compared with the 在留AP's EFs: the card number, the type and the images are
            // there, and every field the checker reported is what the chip holds.
            for field in [
                "card_number",
                "card_type",
                "images.face.sha256",
                "images.name.sha256",
            ] {
                assert!(
                    r.fields
                        .iter()
                        .any(|f| f.field == field && f.status == FieldStatus::Right),
                    "{}: {field} not right: {:?}",
                    r.profile,
                    r.fields
                );
            }
            assert!(
                r.fields
                    .iter()
                    .all(|f| matches!(f.status, FieldStatus::Right | FieldStatus::NotReported)),
                "{}: {:?}",
                r.profile,
                r.fields
            );
            // The privacy audit replays the transcript against the same EFs: it names them
            // and knows which the verdict needs.
            let audit = r.audit.as_ref().unwrap();
            assert!(audit.bytes_needed > 0, "{}: {audit:?}", r.profile);
            assert!(
                !audit.efs_read.iter().any(|ef| ef.contains("SFI")),
                "{}: unnamed EFs {:?}",
                r.profile,
                audit.efs_read
            );
            assert!(!audit.card_number_in_clear, "{}", r.profile);
        }
    }
}

#[test]
fn the_runner_pairs_the_reference_checker_with_every_specified_profile_and_variant() {
    let dir = common::temp_dir("specified-scope", "inproc");
    let profiles = with_variants(&dir);
    let mut checkers = vec![Adapter::reference()];
    adapter::set_scope(&mut checkers, &profiles);
    assert_eq!(checkers[0].out_of_scope, 0);
    let config = common::run_config(
        checkers,
        profiles.clone(),
        Transport::Inproc,
        dir.join("out"),
    );
    let results = run::run(&config).unwrap();
    assert_all_pass(&results, &profiles);
    // The forged card holding another delivery key fails key delivery: the runner handed
    // the checker the TEST key, not the card's own.
    let other = results
        .iter()
        .find(|r| r.profile == "my-number/forged/specified-other-delivery-key")
        .unwrap();
    assert_eq!(
        other.actual.map(|a| (a.verdict, a.reason)),
        Some((VerdictKind::Forged, Some(Reason::AuthFailed)))
    );
    // Every delivery-key format a variant names was loaded and read genuine.
    let formats: std::collections::BTreeSet<String> = results
        .iter()
        .filter(|r| r.expected.verdict == VerdictKind::Genuine)
        .filter_map(|r| {
            let p = profiles.iter().find(|p| p.name == r.profile)?;
            let file = delivery_key::test_key_file(&config.repo, p)?;
            Some(file.extension()?.to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(
        formats.into_iter().collect::<Vec<_>>(),
        ["der", "raw", "tlv"]
    );
    // The summary counts nothing out of the reference checker's scope (absent when 0).
    let json: serde_json::Value =
        serde_json::from_str(&run::report::json::document(&config.checkers, &results).unwrap())
            .unwrap();
    assert!(
        json["summary"][0].get("out_of_scope").is_none(),
        "{}",
        json["summary"][0]
    );
    assert_eq!(json["summary"][0]["pass"], profiles.len());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_runner_reads_every_specified_profile_and_variant_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let dir = common::temp_dir("specified-scope", "pcsc");
    let profiles = with_variants(&dir);
    let config = common::run_config(
        vec![Adapter::reference()],
        profiles.clone(),
        Transport::Pcsc,
        dir.join("out"),
    );
    let results = run::run(&config).unwrap();
    assert_all_pass(&results, &profiles);
    std::fs::remove_dir_all(&dir).ok();
}

/// The runner's secret follows the card kind: the card number for residence and specified
/// cards, the PIN for a plain My Number card.
#[test]
fn a_specified_card_is_checked_with_its_card_number_not_its_pin() {
    for p in common::all_profiles("") {
        let pin = checker_pin(&p);
        match p.kind() {
            ChipKind::MyNumber => assert!(pin.is_some(), "{}", p.name),
            ChipKind::Residence | ChipKind::SpecifiedResidence => {
                assert_eq!(pin, None, "{}", p.name)
            }
        }
    }
}

/// A process checker over PC/SC gets `{delivery_key}`: the absolute path of the TEST key
/// in the profile's format for a specified card, empty for a residence card.
#[test]
fn a_process_checker_gets_the_delivery_key_file_as_a_placeholder() {
    if !common::stack_available() {
        return;
    }
    let dir = common::temp_dir("specified-scope", "placeholder");
    let adapter_file = dir.join("echo-key.yaml");
    // The checker reports the file it was given as its detail, and "genuine".
    std::fs::write(
        &adapter_file,
        r#"name: echo-key
command: [sh, -c, 'printf "{\"schema\":\"rclab.verdict/1\",\"verdict\":\"genuine\",\"detail\":\"%s\"}\n" "$1"', sh, "{delivery_key}"]
cards: [residence, specified_residence]
card_change: swap
timeout_ms: 20000
"#,
    )
    .unwrap();
    let checker = Adapter::load(adapter_file.to_str().unwrap()).unwrap();
    let mut profiles: Vec<Profile> = common::all_profiles("")
        .into_iter()
        .filter(|p| p.name == "valid/gen2-residence" || p.name == "my-number/valid/specified-07")
        .collect();
    // A variant whose key format is the DER SubjectPublicKeyInfo.
    let overlay = dir.join("der.yaml");
    std::fs::write(
        &overlay,
        format!(
            "extends: {}\nplatform:\n  residence_delivery_key_format: subject_public_key_info\n",
            common::vectors()
                .join("profiles/my-number/valid/specified-07.yaml")
                .canonicalize()
                .unwrap()
                .display()
        ),
    )
    .unwrap();
    let mut der = profile::load(&overlay).unwrap();
    der.name = "specified-07-der".into();
    profiles.push(der);
    assert_eq!(profiles.len(), 3);
    let config = common::run_config(vec![checker], profiles, Transport::Pcsc, dir.join("out"));
    let results = run::run(&config).unwrap();
    let detail = |name: &str| {
        let r = results.iter().find(|r| r.profile == name).unwrap();
        assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", r.detail);
        r.detail.clone()
    };
    let key = |ext: &str| {
        common::repo()
            .join(format!("vectors/pki/mynumber/delivery.pub.{ext}"))
            .display()
            .to_string()
    };
    assert_eq!(detail("valid/gen2-residence"), "");
    assert_eq!(detail("my-number/valid/specified-07"), key("raw"));
    assert_eq!(detail("specified-07-der"), key("der"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `has_residence_ap` finds the 在留AP on a specified card only, and the check that follows
/// on the same card (its selection changed) still reads it as genuine.
#[test]
fn the_residence_ap_probe_tells_a_specified_card_and_leaves_it_checkable() {
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: common::options(3),
    };
    for p in common::all_profiles("")
        .into_iter()
        .filter(|p| p.name.contains("/valid/") || p.name.starts_with("valid/"))
    {
        let mut card = p.card();
        let specified = has_residence_ap(&mut card);
        assert_eq!(
            specified,
            p.kind() == ChipKind::SpecifiedResidence,
            "{}",
            p.name
        );
        if specified {
            // Its JPKI AP answers too: the 在留AP must be asked first.
            assert!(is_my_number_card(&mut card), "{}", p.name);
        }
        if checker_pin(&p).is_none() {
            let report = checker.check(&mut card, p.card_number.as_str());
            assert_eq!(
                report.verdict.verdict,
                VerdictKind::Genuine,
                "{}: {}",
                p.name,
                report.detail
            );
        }
    }
}

#[test]
fn check_reads_specified_profiles_with_a_delivery_key_in_any_format() {
    let profile = "vectors/profiles/my-number/valid/specified-08.yaml";
    for ext in ["raw", "der", "tlv"] {
        let key = format!("vectors/pki/mynumber/delivery.pub.{ext}");
        let out = common::rclab(&[
            "check",
            "--profile",
            profile,
            "--at",
            "2026-11-25",
            "--delivery-key",
            &key,
        ]);
        assert!(out.status.success(), "{ext}: {}", common::stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["verdict"]["verdict"], "genuine", "{ext}: {report}");
    }
    // Another key: the genuine card refuses the session key.
    let out = common::rclab(&[
        "check",
        "--profile",
        profile,
        "--at",
        "2026-11-25",
        "--delivery-key",
        "vectors/pki/mynumber/text-cv-ca.pub.der",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(report["verdict"]["verdict"], "genuine", "{report}");
}

#[test]
fn check_refuses_a_bad_delivery_key_naming_the_flag_and_the_file() {
    let dir = common::temp_dir("specified-scope", "bad-key");
    let junk = dir.join("junk.pub");
    std::fs::write(&junk, b"not a key").unwrap();
    let cases = [
        (junk.clone(), "not a delivery public key"),
        (dir.join("missing.pub"), "cannot read"),
        (dir.clone(), "not a regular file"),
    ];
    for (file, why) in &cases {
        for mode in [
            &[
                "--profile",
                "vectors/profiles/my-number/valid/specified-07.yaml",
            ][..],
            &["--reader", "no such reader", "--card-number", "X"][..],
        ] {
            let mut args = vec!["check", "--delivery-key", file.to_str().unwrap()];
            args.extend_from_slice(mode);
            let out = common::rclab(&args);
            let stderr = common::stderr(&out);
            assert!(!out.status.success(), "{args:?}");
            assert!(
                stderr.contains("--delivery-key")
                    && stderr.contains(&file.display().to_string())
                    && stderr.contains(why),
                "{args:?}: {stderr}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `rclab check` over the whole catalogue checks the specified profiles too: no skipped
/// kind, every verdict as expected.
#[test]
fn check_over_the_catalogue_skips_no_kind() {
    let out = common::rclab(&["check", "--at", "2026-11-25", "--seed", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("skipped"), "{stderr}");
    for p in specified_profiles() {
        assert!(stdout.contains(&p.name), "{} missing:\n{stdout}", p.name);
    }
}

/// `rclab check --reader --card auto` over PC/SC: a specified card (its 在留AP answers) is
/// read with the card number, though its JPKI AP answers too; without a card number the
/// error says it is a specified card.
#[test]
fn check_reader_auto_reads_a_specified_card_with_its_card_number() {
    if !common::stack_available() {
        return;
    }
    let port = rclab_suite::run::vpcd_ports()
        .last()
        .copied()
        .unwrap_or(rclab_emulator::transport::vpcd::BASE_PORT);
    let mut host = Vpcd::new(rclab_emulator::transport::vpcd::Endpoint::local(port));
    let p = profile::load(&common::vectors().join("profiles/my-number/valid/specified-07.yaml"))
        .unwrap();
    let ((with_number, without), _) = host
        .serve(p.card(), CardChange::Reinsert, |access| {
            let Access::Reader(reader) = access else {
                panic!("a vpcd host hands out a reader")
            };
            rclab_suite::pcsc_channel::wait_for_card(&reader.name(), Duration::from_secs(20))
                .unwrap();
            let name = reader.name();
            let base = [
                "check",
                "--reader",
                &name,
                "--at",
                "2026-11-25",
                "--seed",
                "2",
            ];
            let mut args = base.to_vec();
            args.extend(["--card-number", p.card_number.as_str()]);
            let with_number = common::rclab(&args);
            let without = common::rclab(&base);
            (with_number, without)
        })
        .unwrap();
    assert!(
        with_number.status.success(),
        "{}",
        common::stderr(&with_number)
    );
    let report: serde_json::Value = serde_json::from_slice(&with_number.stdout).unwrap();
    assert_eq!(report["verdict"]["verdict"], "genuine", "{report}");
    assert!(!without.status.success());
    assert!(
        common::stderr(&without).contains("specified residence card: give its --card-number"),
        "{}",
        common::stderr(&without)
    );
}

/// The runner reads its TEST delivery-key file like any named file: missing or not a key,
/// the specified case is a CRASH naming the file and why (never a panic, never a guess);
/// a residence case in the same run needs no key and passes.
#[test]
fn a_missing_or_bad_test_key_file_is_a_crash_naming_the_file() {
    let dir = common::temp_dir("specified-scope", "bad-repo");
    let keys = dir.join("vectors/pki/mynumber");
    std::fs::create_dir_all(&keys).unwrap();
    let profiles: Vec<Profile> = common::all_profiles("")
        .into_iter()
        .filter(|p| p.name == "valid/gen2-residence" || p.name == "my-number/valid/specified-08")
        .collect();
    assert_eq!(profiles.len(), 2);
    for (junk, why) in [
        (None, "cannot read"),
        (Some(&b"junk"[..]), "not a delivery public key"),
    ] {
        if let Some(bytes) = junk {
            std::fs::write(keys.join("delivery.pub.raw"), bytes).unwrap();
        }
        let mut config = common::run_config(
            vec![Adapter::reference()],
            profiles.clone(),
            Transport::Inproc,
            dir.join(format!("out-{}", junk.is_some())),
        );
        config.repo = dir.clone();
        let results = run::run(&config).unwrap();
        let specified = results
            .iter()
            .find(|r| r.profile == "my-number/valid/specified-08")
            .unwrap();
        assert_eq!(specified.outcome, Outcome::Crash, "{}", specified.detail);
        assert!(
            specified
                .detail
                .contains(&keys.join("delivery.pub.raw").display().to_string())
                && specified.detail.contains(why),
            "{}",
            specified.detail
        );
        let residence = results
            .iter()
            .find(|r| r.profile == "valid/gen2-residence")
            .unwrap();
        assert_eq!(residence.outcome, Outcome::Pass, "{}", residence.detail);
    }
    std::fs::remove_dir_all(&dir).ok();
}
