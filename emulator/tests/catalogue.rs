//! The profile catalogue (`vectors/profiles/`): the rules every profile follows, and the
//! generated `vectors/profiles/README.md`, which must match the files.
//!
//! After adding or changing a profile, rewrite the README with
//! `RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-emulator --test catalogue`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::verdict::{Threat, VerdictKind};

fn profiles_dir() -> PathBuf {
    common::vectors_dir().join("profiles")
}

fn catalogue() -> Vec<Profile> {
    profile::load_dir(&profiles_dir()).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Every flag a profile may carry, with what it marks.
const FLAGS: &[(&str, &str)] = &[
    ("Valid", "a card as issued"),
    ("MissingFace", "no face image (infant, or removed)"),
    (
        "Control",
        "changed or unusual, yet genuine: shows what the check code does not cover",
    ),
    ("UnsignedData", "only data outside the check code changed"),
    ("Clone", "genuine data on another chip"),
    ("TamperedImage", "an image changed after signing"),
    (
        "TamperedPrintedEntry",
        "a printed entry changed after signing",
    ),
    (
        "WrongKey",
        "check code made with a key that is not the certificate's",
    ),
    (
        "SignatureTarget",
        "check code made over other bytes than the specified ones",
    ),
    ("MissingSignature", "no check code"),
    (
        "LookalikeCa",
        "signer under a CA with a trusted root's exact name and another key",
    ),
    (
        "UnknownIssuer",
        "certificate issued under a name no trusted root has",
    ),
    ("Expired", "certificate outside its validity period"),
    ("ExpiredRoot", "chain ends at an expired root"),
    ("MalformedCertificate", "certificate that cannot be parsed"),
    (
        "ChipNumber",
        "chip keyed to another card number than the printed one",
    ),
    (
        "CardNumberField",
        "C2 differs from the number the chip is keyed to",
    ),
    ("CardType", "C1 names the other generation"),
    (
        "ChipAuth",
        "MUTUAL AUTHENTICATE answer that does not verify",
    ),
    ("NotResidenceCard", "not a residence-card chip"),
    ("Removal", "the card leaves the field"),
    ("Delay", "slow answers"),
    (
        "Slow",
        "takes seconds on a real stack (in-process the time is simulated): quick runs may skip it",
    ),
    (
        "Stall",
        "silent past ISO 14443-4's longest frame waiting time",
    ),
    ("TruncatedFrame", "an answer cut short"),
    ("StatusWord", "an error status word instead of the answer"),
    ("GetResponse", "61 xx, data through GET RESPONSE"),
    ("WrongLe", "6C xx, data with the exact Le"),
    ("ExtraBytes", "bytes added to an answer"),
    ("MissingBytes", "bytes missing from an answer"),
    ("PlainInsteadOfSm", "clear answer where SM is due"),
    ("SmPadding", "SM answer badly padded"),
    ("SmIndicator", "SM padding indicator other than 01"),
    ("SmKey", "SM answer under the wrong key"),
    ("LyingLength", "a TLV length longer than the EF"),
    ("MissingTag", "a required data object missing"),
    ("DuplicateTag", "a data object present twice"),
    (
        "NonMinimalLength",
        "a TLV length in a longer form than needed",
    ),
    ("BadText", "text with NUL inside or not in its encoding"),
    ("TruncatedEf", "an EF shorter than its objects say"),
    (
        "DerCheckCode",
        "generation-2 check code as DER instead of raw r‖s",
    ),
    ("BerCertificate", "certificate in BER, not DER"),
    (
        "PaddedCertificate",
        "certificate zero-padded inside its TLV",
    ),
    (
        "Tolerate",
        "a deviation a correct checker accepts: the verdict is genuine",
    ),
    (
        "MyNumber",
        "a My Number card (`my-number/`), not a residence card",
    ),
    (
        "NoSignatureCertificate",
        "a My Number card without a JPKI signature certificate (holder under 15)",
    ),
    (
        "SelectAnything",
        "answers 90 00 to a SELECT of an application it does not hold",
    ),
    ("PinBlocked", "the PIN that unlocks the key is blocked"),
    (
        "TextDataChanged",
        "text-AP data changed after its integrity record was signed",
    ),
    (
        "WrongCheckDigit",
        "an individual number whose check digit is wrong",
    ),
    (
        "SpecifiedCard",
        "a specified residence card (07/08) on the My Number platform",
    ),
    (
        "DeliveryKey",
        "SET SESSION KEY under the published delivery key fails",
    ),
    ("MissingDf", "a DF its card type holds is missing"),
    (
        "SessionCleared",
        "the 在留AP's SM session is cleared mid-read (re-selected behind the reader's back)",
    ),
    (
        "SmCounter",
        "the card's SM message counter runs ahead of the reader's",
    ),
];

const HEADER: &str = r#"# Card profiles

<!-- GENERATED by `cargo test -p rclab-emulator --test catalogue` from the profile files;
     do not edit by hand. After adding or changing a profile run
     RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-emulator --test catalogue -->

Every card rclab emulates, with the verdict a correct checker must give (checked against
the reference checker by `cargo test -p rclab-suite --test catalogue` and `rclab check`,
at a fixed date of 2026-11-25 in the tests). Forged and corrupted cards are small diffs of a
valid one (`extends: ../valid/…`): `tamper:` changes data after the check code was made
(fields, or byte edits of the EFs), `signature:` changes how it was made, `faults:` makes
the card misbehave (see the README's Profiles section).

- `valid/` — cards as issued.
- `forged/` — cards a forger made or altered. None may be called genuine, except the
  `Clone` (a chip holds no key of its own, so a copy is indistinguishable) and the
  `Control` cards, which change only what the check code does not cover and so show what
  a genuine verdict does **not** prove.
- `corrupted/` — damaged or misbehaving cards. A checker must not crash, must not accept
  what it could not verify, and says what went wrong; deviations marked `Tolerate` are
  allowed by ISO 7816-4 or by the specification's open questions and cost no assurance, so
  the card is genuine.
- `my-number/{valid,forged,corrupted}/` — My Number cards (`card: {kind: my_number}`,
  gen `MN` below), under the same rules. Genuine means: the JPKI authentication
  certificate chains to the JPKI TEST root (`vectors/pki/jpki/auth-ca.crt`), both valid at
  the time of the check, and the card signs a fresh challenge with that certificate's key
  after the authentication PIN, and (`text_ap:`) the text-support AP's integrity record
  and CV certificate verify under the TEST CV CA and the individual number's check digit
  is right. Residence-card checkers do not run on them. Gen `MN 07` / `MN 08`: specified
  residence cards (`card: {kind: specified_residence}`), a My Number card with the 在留AP;
  genuine adds that the 在留AP accepts a session key under the TEST delivery key
  (`vectors/pki/mynumber/delivery.pub.*`) and its generation-2 data verify as a
  generation-2 card's do.

How verdicts are decided:

| verdict | when |
|---|---|
| `genuine` | the check code verifies over the specified data with a certificate that chains to a trusted root, both valid at the time of the check |
| `forged{reason}` | evidence against the card: the check code is missing or does not verify (`missing_signature`, `signature_mismatch`); the certificate bears a trusted root's name but no trusted key signed it (`unknown_signer`), cannot be parsed (`malformed_certificate`) or has expired, or its root has (`certificate_expired`); the chip fails a step only the card-number key passes (`auth_failed`), or its SM answers are not padded correctly under the session key it agreed (`sm_error`); or it contradicts itself after authenticating (`malformed_data`: C2 is not the number it opened with, C1 names the other generation's cryptography) |
| `untrusted_certificate` | the check code verifies, but the certificate's issuer is not the name of any trusted root: another PKI, not provably forged, not genuine |
| `wrong_card_number` | the number entered (the printed one) does not open the chip in either generation's cryptography; a chip keyed to another number cannot be told from a typing error |
| `not_residence_card` | the card-type EF or the residence-card applications (DF1–DF3 AIDs) are not there |
| `unreadable{reason}` | the conversation broke before anything was proven: removal, timeout, a frame without status word, an unexpected status word, a malformed DO `86` (`sm_error`), malformed or ambiguous TLVs or text (`malformed_data`) — damage to the form is no evidence of forgery, but never genuine either |

What a card threatens if a checker calls it genuine (`expect.threat`, set on every forged
and corrupted card, with the reason as a comment beside it) decides how `rclab run` counts
that mistake:

| threat | the card | called genuine, it counts as |
|---|---|---|
| `forgery` | made or altered to pass for what it is not — every `forged/` card, and the corrupted cards whose form is a forgery vector (a duplicated `D1` lets a checker verify one photo and show another; SM answers not under the agreed session key) | a **false accept** |
| `corruption` | damaged or malformed data or SM form: data quality, nothing a forger gains | a **missed corruption** |
| `transport` | the conversation misbehaves: removal, timing, frames, status words | a **missed corruption** |

Valid cards have none.

The trust store is the TEST roots of `vectors/pki/trust/`, including the expired
generation-1 root (as the MoJ still publishes its expired 2015 root). A `limitation` after
a verdict marks a case the reference checker knowingly gets otherwise.

Flags:

"#;

fn markdown(profiles: &[Profile]) -> String {
    let mut out = HEADER.to_owned();
    out.push_str("| flag | marks |\n|---|---|\n");
    for (flag, meaning) in FLAGS {
        out.push_str(&format!("| `{flag}` | {meaning} |\n"));
    }
    out.push_str(&format!(
        "\n## The {} profiles\n\n| profile | gen | expected | threat | flags | why |\n|---|---|---|---|---|---|\n",
        profiles.len()
    ));
    for p in profiles {
        let mut expected = format!("`{}`", p.expect.verdict);
        if let Some(limitation) = &p.expect.limitation {
            expected.push_str(&format!(" (limitation: {limitation})"));
        }
        out.push_str(&format!(
            "| [{name}]({name}.yaml) | {gen} | {expected} | {threat} | {flags} | {why} |\n",
            name = p.name,
            gen = match p.kind() {
                ChipKind::Residence => p.generation.number().to_string(),
                ChipKind::MyNumber => "MN".to_owned(),
                ChipKind::SpecifiedResidence => format!("MN {}", p.card_type.code(p.generation)),
            },
            threat = p.expect.threat.map_or("", |t| t.as_str()),
            flags = p.expect.flags.join(", "),
            why = p.expect.why.replace('|', "\\|"),
        ));
    }
    out
}

#[test]
fn catalogue_readme_matches_the_profiles() {
    let path = profiles_dir().join("README.md");
    let generated = markdown(&catalogue());
    if std::env::var_os("RCLAB_UPDATE_CATALOGUE").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != generated {
        let line = current
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                current.lines().count().min(generated.lines().count()),
                |i| i,
            )
            + 1;
        panic!(
            "{} is out of date (first difference at line {line}); rewrite it with\n  \
             RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-emulator --test catalogue",
            path.display()
        );
    }
}

#[test]
fn catalogue_profiles_follow_the_rules() {
    let profiles = catalogue();
    // `my-number/valid/…` follows the rules of `valid/…`.
    let folder = |p: &Profile| {
        let name = p.name.strip_prefix("my-number/").unwrap_or(&p.name);
        name.split('/').next().unwrap_or_default().to_owned()
    };
    let count = |f: &str| profiles.iter().filter(|p| folder(p) == f).count();
    assert!(count("forged") >= 12 && count("corrupted") >= 12);
    let known: BTreeSet<&str> = FLAGS.iter().map(|(f, _)| *f).collect();
    let mut used = BTreeSet::new();
    for p in &profiles {
        let name = &p.name;
        let expect = &p.expect;
        assert!(
            matches!(folder(p).as_str(), "valid" | "forged" | "corrupted"),
            "{name}: unknown folder"
        );
        assert!(
            !expect.why.contains('\n') && (20..=260).contains(&expect.why.chars().count()),
            "{name}: `why` must be one line of plain words"
        );
        assert!(!expect.flags.is_empty(), "{name}: no flags");
        for flag in &expect.flags {
            assert!(
                known.contains(flag.as_str()),
                "{name}: flag {flag} is not documented"
            );
            used.insert(flag.clone());
        }
        if matches!(
            expect.verdict.verdict,
            VerdictKind::Forged | VerdictKind::Unreadable
        ) {
            assert!(expect.verdict.reason.is_some(), "{name}: give the reason");
        }
        let genuine = expect.verdict.verdict == VerdictKind::Genuine;
        let flagged = |f: &str| expect.flags.iter().any(|x| x == f);
        match (folder(p).as_str(), expect.threat) {
            ("valid", None) => {}
            ("valid", Some(_)) => panic!("{name}: a valid card threatens nothing"),
            ("forged", Some(Threat::Forgery)) | ("corrupted", Some(_)) => {}
            (_, threat) => panic!("{name}: threat {threat:?} does not fit its folder"),
        }
        if folder(p) != "valid" {
            let text = std::fs::read_to_string(&p.path).unwrap();
            assert!(
                text.lines().any(|l| l.trim_start().starts_with("threat:")
                    && l.split_once('#')
                        .is_some_and(|(_, why)| why.trim().len() >= 10)),
                "{name}: give the threat's reason as a comment on its line"
            );
        }
        match folder(p).as_str() {
            "valid" => assert!(genuine && flagged("Valid"), "{name}"),
            "forged" if genuine => assert!(
                flagged("Clone") || flagged("Control"),
                "{name}: a forged card expected genuine must be the Clone or a Control"
            ),
            "corrupted" if genuine => {
                assert!(flagged("Tolerate"), "{name}: genuine needs Tolerate")
            }
            _ => {}
        }
        if folder(p) != "valid" {
            let text = std::fs::read_to_string(&p.path).unwrap();
            let parent = text
                .lines()
                .find_map(|l| l.strip_prefix("extends: ../valid/"))
                .unwrap_or_else(|| panic!("{name}: must extend a valid profile"));
            let valid = p.path.parent().unwrap().join("../valid");
            let parent =
                profile::load(&valid.join(parent.trim())).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                *p.image != *parent.image
                    || p.my_number != parent.my_number
                    || !p.faults.is_empty(),
                "{name}: the same card as {}",
                parent.name
            );
        }
        if expect.flags.iter().any(|f| f == "Slow") {
            assert!(p.faults.iter().any(|f| matches!(
                f,
                rclab_emulator::fault::Fault::Delay { ms, .. } if *ms >= 1_000
            )));
        }
    }
    let unused: Vec<_> = known.iter().filter(|f| !used.contains(**f)).collect();
    assert!(
        unused.is_empty(),
        "documented flags no profile uses: {unused:?}"
    );
}
