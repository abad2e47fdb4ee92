//! The privacy audit of a specified residence card (07/08, `run::audit::audit_specified`),
//! over transcripts of real reads: a reader that follows the profile's knobs (as in the
//! emulator's `my_number_specified` tests) talks to the profile's card through a `Tap`, and
//! the audit replays what it recorded. One read takes exactly what a residence verdict
//! needs; another also reads DF2 and the JPKI token info, which the audit lists as unneeded.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

mod common;

use rand::SeedableRng;
use rclab_emulator::fault::SimCard;
use rclab_emulator::my_number::MyNumberKnobs;
use rclab_emulator::my_number::residence_ap::{RESIDENCE_AP_AID, ResidenceDfSelect, ResidenceSm};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::counter_sm::{ReaderCmacSm, ReaderCounterSm};
use rclab_emulator::protocol::key_delivery::{self, DeliveryPublicKey, PublicKeyFormat};
use rclab_emulator::protocol::layout::{Df, EfId, Element, Layout};
use rclab_emulator::transport::{Channel, Exchange, Tap};
use rclab_suite::run::audit::{PrivacyAudit, audit_specified};

fn load(name: &str) -> Profile {
    let path = common::vectors().join(format!("profiles/my-number/{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `valid/specified-07` with `platform:` knobs laid over it.
fn with_knobs(platform: &str, tag: &str) -> Profile {
    let dir = common::temp_dir("specified-audit", tag);
    let file = dir.join(format!("{tag}.yaml"));
    let base = common::vectors().join("profiles/my-number/valid/specified-07.yaml");
    std::fs::write(
        &file,
        format!("extends: {}\nplatform:\n{platform}", base.display()),
    )
    .unwrap();
    profile::load(&file).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn h(text: &str) -> Vec<u8> {
    let cleaned: String = text.split_whitespace().collect();
    hex::decode(&cleaned).unwrap()
}

type Card = Tap<SimCard>;

fn send(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, String) {
    let mut r = card.transmit(apdu).unwrap();
    let sw = r.split_off(r.len() - 2);
    (r, hex::encode_upper(sw))
}

fn ok(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    let (data, status) = send(card, apdu);
    assert_eq!(status, "9000", "{}", hex::encode_upper(apdu));
    data
}

fn select_aid(aid: &[u8]) -> Vec<u8> {
    [&[0x00, 0xA4, 0x04, 0x0C, aid.len() as u8][..], aid].concat()
}

fn knobs(profile: &Profile) -> MyNumberKnobs {
    profile.my_number.as_ref().unwrap().knobs.clone()
}

fn layout(profile: &Profile) -> &'static Layout {
    profile
        .my_number
        .as_ref()
        .unwrap()
        .residence_ap
        .as_ref()
        .unwrap()
        .data
        .layout
}

/// The reader's SM session, in the variant the knob names.
enum Sm {
    Counter(ReaderCounterSm),
    Cmac(ReaderCmacSm),
}

/// A checker's reader of the 在留AP configured like the card (the official specification's
/// settings, whatever they are).
struct Reader {
    knobs: MyNumberKnobs,
    sm: Sm,
}

impl Reader {
    /// JPKI AP selected first (how a reader tells a My Number card), then the 在留AP, C1 and
    /// C0, key delivery under the TEST delivery key, and VERIFY of the card number under SM.
    fn open(card: &mut Card, profile: &Profile) -> Reader {
        ok(card, &h("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
        ok(card, &select_aid(&RESIDENCE_AP_AID));
        let c1 = ok(card, &h("00 B0 8A 00 00"));
        assert_eq!(&c1[2..], layout(profile).code.as_bytes());
        ok(card, &h("00 B0 8B 00 00"));
        let raw = std::fs::read(common::vectors().join("pki/mynumber/delivery.pub.raw")).unwrap();
        let key = DeliveryPublicKey::parse(PublicKeyFormat::RawModulus, &raw).unwrap();
        let knobs = knobs(profile);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let (apdu, keys) =
            key_delivery::build(&key, knobs.residence_key_delivery(), &mut rng).unwrap();
        ok(card, &apdu);
        let sm = match knobs.residence_sm {
            ResidenceSm::CounterIv => {
                Sm::Counter(ReaderCounterSm::new(keys.kenc, knobs.residence_le_form()))
            }
            ResidenceSm::Cmac => Sm::Cmac(ReaderCmacSm::new(keys.kenc, keys.kmac.unwrap())),
        };
        let mut reader = Reader { knobs, sm };
        let p2 = reader.knobs.residence_verify_p2();
        let number = profile.card_number.as_str().as_bytes().to_vec();
        assert_eq!(
            reader.command(card, [0x08, 0x20, 0x00, p2], &number),
            "9000"
        );
        reader
    }

    /// One SM command carrying `plain` (VERIFY, SELECT); its status word.
    fn command(&mut self, card: &mut Card, header: [u8; 4], plain: &[u8]) -> String {
        let apdu = match &mut self.sm {
            Sm::Counter(sm) => {
                sm.cryptogram_command(header[1], header[2], header[3], plain)
                    .unwrap()
                    .0
            }
            Sm::Cmac(sm) => {
                let header = [0x0C, header[1], header[2], header[3]];
                sm.command(header, plain, None).unwrap().0
            }
        };
        send(card, &apdu).1
    }

    /// SELECT of a DF of the 在留AP (in clear, or under SM when the knob says so), or the
    /// AP level itself (a plain SELECT of the 在留AP would clear the session: not done).
    fn select(&mut self, card: &mut Card, df: Df) {
        let aid = df.aid().unwrap();
        if self.knobs.residence_df_select == ResidenceDfSelect::SecureMessaging {
            assert_eq!(self.command(card, [0x08, 0xA4, 0x04, 0x0C], &aid), "9000");
        } else {
            ok(card, &select_aid(&aid));
        }
    }

    /// The whole EF: SM for DF1 and DF3, in clear for DF2 (after VERIFY).
    fn read(&mut self, card: &mut Card, id: EfId) -> Vec<u8> {
        let p1 = 0x80 | id.sfi;
        if id.df == Df::Df2 {
            return ok(card, &[0x00, 0xB0, p1, 0x00, 0x00]);
        }
        match &mut self.sm {
            Sm::Counter(sm) => {
                let (apdu, pending) = sm.read_binary(p1, 0, 0);
                let data = ok(card, &apdu);
                sm.open_response(&pending, &data).unwrap()
            }
            Sm::Cmac(sm) => {
                let (apdu, pending) = sm
                    .command([0x0C, 0xB0, p1, 0x00], &[], Some(&[0x00, 0x00]))
                    .unwrap();
                let data = ok(card, &apdu);
                sm.open_response(&pending, &data).unwrap().0
            }
        }
    }
}

/// Reads exactly the EFs a residence verdict needs (C1 and C0 at the AP level on opening;
/// the others DF by DF), then `extra` EFs of DF2; returns the transcript.
fn read_card(profile: &Profile, extra: &[EfId]) -> Vec<Exchange> {
    let mut card = Tap::new(profile.card());
    let mut reader = Reader::open(&mut card, profile);
    let mut wanted: Vec<EfId> = layout(profile)
        .needed()
        .map(|row| row.id)
        .filter(|id| id.df != Df::Mf)
        .chain(extra.iter().copied())
        .collect();
    wanted.sort_by_key(|id| (df_order(id.df), id.sfi));
    let image = &profile
        .my_number
        .as_ref()
        .unwrap()
        .residence_ap
        .as_ref()
        .unwrap()
        .data;
    let mut here = None;
    for id in wanted {
        if here != Some(id.df) {
            reader.select(&mut card, id.df);
            here = Some(id.df);
        }
        assert_eq!(reader.read(&mut card, id), image.file(id).unwrap().content);
    }
    card.into_parts().1
}

/// The order a reader visits the 在留AP: its own level (C1 on opening), DF1, DF2, DF3.
fn df_order(df: Df) -> u8 {
    match df {
        Df::Mf => 0,
        Df::Df1 => 1,
        Df::Df2 => 2,
        Df::Df3 => 3,
    }
}

fn audit(profile: &Profile, transcript: &[Exchange]) -> PrivacyAudit {
    audit_specified(
        profile.my_number.as_ref().unwrap(),
        profile.card_number.as_str(),
        transcript,
    )
}

/// The names of the needed EFs, in the order [`read_card`] reads them.
fn needed_names(profile: &Profile) -> Vec<String> {
    let image = &profile
        .my_number
        .as_ref()
        .unwrap()
        .residence_ap
        .as_ref()
        .unwrap()
        .data;
    let mut ids: Vec<EfId> = layout(profile).needed().map(|row| row.id).collect();
    ids.sort_by_key(|id| (df_order(id.df), id.sfi));
    ids.iter()
        .map(|&id| image.file(id).unwrap().name.clone())
        .collect()
}

#[test]
fn a_read_of_exactly_what_is_needed_has_no_unneeded_efs() {
    let profiles = [
        ("default", load("valid/specified-07")),
        ("08", load("valid/specified-08")),
        (
            "sm-select",
            with_knobs("  residence_df_select: secure_messaging\n", "sm-select"),
        ),
        (
            "cmac-sm-select",
            with_knobs(
                "  residence_sm: cmac\n  residence_df_select: secure_messaging\n",
                "cmac",
            ),
        ),
    ];
    for (tag, profile) in &profiles {
        let transcript = read_card(profile, &[]);
        let audit = audit(profile, &transcript);
        assert_eq!(audit.efs_read, needed_names(profile), "{tag}: {audit:?}");
        assert!(audit.unneeded_efs.is_empty(), "{tag}: {audit:?}");
        // The residence rule needs the check code and the signed fields, the face among them.
        let face = layout(profile).holding_element(Element::FaceImage).unwrap();
        assert!(face.0.needed, "{tag}");
        assert!(audit.face_image_read, "{tag}: {audit:?}");
        assert_eq!(audit.verify, 1, "{tag}");
        assert_eq!(audit.mutual_authenticate, 0, "{tag}");
        assert!(!audit.card_number_in_clear, "{tag}");
        assert!(audit.bytes_needed > 5_000, "{tag}: {audit:?}");
        assert!(audit.bytes_read >= audit.bytes_needed, "{tag}: {audit:?}");
    }
}

#[test]
fn reading_df2_and_the_jpki_token_info_is_listed_as_unneeded() {
    let profile = load("valid/specified-07");
    let needed: Vec<EfId> = layout(&profile).needed().map(|row| row.id).collect();
    let df2: Vec<EfId> = layout(&profile)
        .files
        .iter()
        .map(|row| row.id)
        .filter(|id| id.df == Df::Df2 && !needed.contains(id))
        .collect();
    assert!(!df2.is_empty());
    let mut transcript = read_card(&profile, &df2);
    // Then the JPKI token info (free, and no part of a residence verdict).
    let mut card = Tap::new(profile.card());
    ok(
        &mut card,
        &h("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"),
    );
    ok(&mut card, &h("00 A4 02 0C 02 00 06"));
    ok(&mut card, &h("00 B0 00 00 00"));
    transcript.extend(card.into_parts().1);
    let audit = audit(&profile, &transcript);
    let image = &profile
        .my_number
        .as_ref()
        .unwrap()
        .residence_ap
        .as_ref()
        .unwrap()
        .data;
    let mut unneeded: Vec<String> = df2
        .iter()
        .map(|&id| image.file(id).unwrap().name.clone())
        .collect();
    unneeded.push("JPKI/0006 token info".to_owned());
    assert_eq!(audit.unneeded_efs, unneeded, "{audit:?}");
    assert_eq!(
        audit.efs_read.len(),
        needed_names(&profile).len() + unneeded.len(),
        "{audit:?}"
    );
}

#[test]
fn the_card_number_in_clear_is_reported() {
    let profile = load("valid/specified-07");
    let mut card = Tap::new(profile.card());
    ok(&mut card, &select_aid(&RESIDENCE_AP_AID));
    let number = profile.card_number.as_str().as_bytes();
    let plain_verify = [&[0x00, 0x20, 0x00, 0x86, number.len() as u8][..], number].concat();
    // The card refuses it (the number travels only under SM), but it was sent in clear.
    assert_eq!(send(&mut card, &plain_verify).1, "6982");
    let audit = audit(&profile, card.transcript());
    assert!(audit.card_number_in_clear, "{audit:?}");
    assert_eq!(audit.verify, 1);
}

/// A transcript the audit cannot follow (a SET SESSION KEY it cannot open, an SM SELECT the
/// card accepted): the EFs read in that DF are named as such, read and not judged.
#[test]
fn a_df_selected_under_sm_the_audit_cannot_open_is_said_so() {
    let profile = load("valid/specified-07");
    let exchange = |command: &str, response: &str| Exchange {
        command: command.split_whitespace().collect(),
        response: Ok(response.split_whitespace().collect()),
        micros: 0,
    };
    let aid: String = hex::encode_upper(RESIDENCE_AP_AID);
    let transcript = [
        exchange(&format!("00A4040C10{aid}"), "9000"),
        exchange("00B08A0000", "C1023037 9000"),
        exchange(&format!("80AE00000001 00{}", "00".repeat(256)), "9000"),
        exchange(&format!("08A4040C13 8611 01{}", "AB".repeat(16)), "9000"),
        exchange("08B0810004 96020000 00", "8611 01 00112233 9000"),
    ];
    let audit = audit(&profile, &transcript);
    assert_eq!(audit.efs_read.len(), 2, "{audit:?}");
    assert_eq!(
        audit.efs_read[1], "在留AP DF selected under SM/SFI 01",
        "{audit:?}"
    );
    assert!(audit.unneeded_efs.is_empty(), "read, not judged: {audit:?}");
}
