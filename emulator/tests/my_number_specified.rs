//! The specified residence card (types 07/08, spec notes Part A) through the profile's card:
//! the JPKI AP still answers; the 在留AP's free EFs, key delivery under the TEST delivery
//! key, VERIFY of the card number under SM, DF1–DF3 — read by a reader written once over
//! every setting of every `platform.residence_*` knob; the A8 known answer of the counter
//! variant; re-selection clearing the session; the forged profiles; the session faults
//! (`reselect_residence_ap`, `skip_sm_counter`) and their corrupted profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rclab_emulator::card::knobs::KNOBS;
use rclab_emulator::chip::ChipKind;
use rclab_emulator::fault::SimCard;
use rclab_emulator::my_number::MyNumberKnobs;
use rclab_emulator::my_number::residence_ap::{
    RESIDENCE_AP_AID, ResidenceDfSelect, ResidenceSm, ResidenceWrongNumber,
};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::counter_sm::{ReaderCmacSm, ReaderCounterSm};
use rclab_emulator::protocol::key_delivery::{
    self, DeliveryPublicKey, KeyMaterial, OaepDigest, PublicKeyFormat,
};
use rclab_emulator::protocol::layout::{Df, EfId};
use rclab_emulator::transport::Channel;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

fn load(name: &str) -> Profile {
    let path = vectors().join(format!("profiles/my-number/{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `base` with `yaml` added, loaded from a scratch file.
fn overlay(base: &str, yaml: &str, tag: &str) -> Profile {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join(format!("{tag}.yaml"));
    let base = vectors().join(format!("profiles/my-number/{base}.yaml"));
    std::fs::write(&file, format!("extends: {}\n{yaml}", base.display())).unwrap();
    profile::load(&file).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn h(text: &str) -> Vec<u8> {
    let cleaned: String = text.split_whitespace().collect();
    hex::decode(&cleaned).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn send(card: &mut SimCard, apdu: &[u8]) -> (Vec<u8>, String) {
    let mut r = Channel::transmit(card, apdu).unwrap();
    let sw = r.split_off(r.len() - 2);
    (r, hex::encode_upper(sw))
}

fn sw(card: &mut SimCard, apdu: &str) -> String {
    send(card, &h(apdu)).1
}

fn select_ap() -> Vec<u8> {
    [&h("00 A4 04 0C 10")[..], &RESIDENCE_AP_AID[..]].concat()
}

fn select_df(df: Df) -> Vec<u8> {
    [&h("00 A4 04 0C 10")[..], &df.aid().unwrap()[..]].concat()
}

fn delivery_key() -> DeliveryPublicKey {
    let raw = std::fs::read(vectors().join("pki/mynumber/delivery.pub.raw")).unwrap();
    DeliveryPublicKey::parse(PublicKeyFormat::RawModulus, &raw).unwrap()
}

fn knobs(profile: &Profile) -> MyNumberKnobs {
    profile.my_number.as_ref().unwrap().knobs.clone()
}

/// The bytes the profile compiled for an EF of the 在留AP.
fn compiled(profile: &Profile, id: EfId) -> Option<Vec<u8>> {
    let image = profile.my_number.as_ref()?.residence_ap.as_ref()?;
    image.data.file(id).map(|f| f.content.clone())
}

/// A reader of the 在留AP that follows the profile's knobs (what a checker holding the
/// official specification would be configured to do).
enum Sm {
    Counter(ReaderCounterSm),
    Cmac(ReaderCmacSm),
}

struct Reader {
    knobs: MyNumberKnobs,
    sm: Sm,
    /// The encryption key delivered (for opening an answer under another counter).
    kenc: [u8; 16],
}

impl Reader {
    /// SELECT the 在留AP, read C1/C0 plain, deliver a session key.
    fn open(card: &mut SimCard, knobs: MyNumberKnobs, seed: u64) -> (Reader, Vec<u8>) {
        assert_eq!(send(card, &select_ap()).1, "9000");
        let (c1, status) = send(card, &h("00 B0 8A 00 00"));
        assert_eq!(status, "9000");
        assert_eq!(send(card, &h("00 B0 8B 00 00")).1, "9000");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let (apdu, keys) =
            key_delivery::build(&delivery_key(), knobs.residence_key_delivery(), &mut rng).unwrap();
        assert_eq!(send(card, &apdu).1, "9000", "SET SESSION KEY");
        let sm = match knobs.residence_sm {
            ResidenceSm::CounterIv => {
                Sm::Counter(ReaderCounterSm::new(keys.kenc, knobs.residence_le_form()))
            }
            ResidenceSm::Cmac => Sm::Cmac(ReaderCmacSm::new(keys.kenc, keys.kmac.unwrap())),
        };
        (
            Reader {
                knobs,
                sm,
                kenc: keys.kenc,
            },
            c1,
        )
    }

    /// One SM command with plain data; returns the opened answer data and the SW.
    fn command(&mut self, card: &mut SimCard, header: [u8; 4], plain: &[u8]) -> (Vec<u8>, String) {
        match &mut self.sm {
            Sm::Counter(sm) => {
                let (apdu, _) = sm
                    .cryptogram_command(header[1], header[2], header[3], plain)
                    .unwrap();
                send(card, &apdu)
            }
            Sm::Cmac(sm) => {
                let (apdu, pending) = sm.command(header, plain, None).unwrap();
                let (data, status) = send(card, &apdu);
                if data.is_empty() {
                    return (data, status);
                }
                let (plain, inner) = sm.open_response(&pending, &data).unwrap();
                assert_eq!(hex::encode_upper(inner.sw().to_be_bytes()), status);
                (plain, status)
            }
        }
    }

    fn verify(&mut self, card: &mut SimCard, number: &str) -> String {
        let p2 = self.knobs.residence_verify_p2();
        self.command(card, [0x08, 0x20, 0x00, p2], number.as_bytes())
            .1
    }

    fn select(&mut self, card: &mut SimCard, df: Df) -> String {
        if self.knobs.residence_df_select == ResidenceDfSelect::SecureMessaging {
            self.command(card, [0x08, 0xA4, 0x04, 0x0C], &df.aid().unwrap())
                .1
        } else {
            send(card, &select_df(df)).1
        }
    }

    fn read_sm(&mut self, card: &mut SimCard, sfi: u8) -> Result<Vec<u8>, String> {
        match &mut self.sm {
            Sm::Counter(sm) => {
                let (apdu, pending) = sm.read_binary(0x80 | sfi, 0, 0);
                let (data, status) = send(card, &apdu);
                if status != "9000" {
                    return Err(status);
                }
                Ok(sm.open_response(&pending, &data).unwrap())
            }
            Sm::Cmac(sm) => {
                let (apdu, pending) = sm
                    .command([0x0C, 0xB0, 0x80 | sfi, 0x00], &[], Some(&[0x00, 0x00]))
                    .unwrap();
                let (data, status) = send(card, &apdu);
                if status != "9000" {
                    return Err(status);
                }
                Ok(sm.open_response(&pending, &data).unwrap().0)
            }
        }
    }
}

/// Reads the card plain in chunks of 256 (DF2/DF3 after VERIFY).
fn read_plain(card: &mut SimCard, sfi: u8) -> Result<Vec<u8>, String> {
    let (first, status) = send(card, &[0x00, 0xB0, 0x80 | sfi, 0x00, 0x00]);
    if status != "9000" {
        return Err(status);
    }
    Ok(first)
}

/// The whole read a checker makes, every byte compared with what the profile compiled.
fn full_read(profile: &Profile, seed: u64) {
    let mut card = profile.card();
    // LJ-style detection first: the JPKI AP answers, so the card is a My Number card.
    assert_eq!(
        sw(&mut card, "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"),
        "9000"
    );
    let knobs = knobs(profile);
    let (mut reader, c1) = Reader::open(&mut card, knobs, seed);
    assert_eq!(Some(c1), compiled(profile, EfId::new(Df::Mf, 0x0A)));
    let number = profile.card_number.as_str().to_owned();
    assert_eq!(reader.verify(&mut card, &number), "9000");
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    for sfi in [0x01, 0x03, 0x04, 0x06] {
        let id = EfId::new(Df::Df1, sfi);
        // DF1 is SM only.
        assert_eq!(read_plain(&mut card, sfi), Err("6982".into()), "{sfi:02X}");
        assert_eq!(reader.read_sm(&mut card, sfi).ok(), compiled(profile, id));
    }
    let has_df2 = compiled(profile, EfId::new(Df::Df2, 0x01)).is_some();
    assert_eq!(reader.select(&mut card, Df::Df2), "9000");
    for sfi in [0x01, 0x02, 0x03] {
        let id = EfId::new(Df::Df2, sfi);
        match compiled(profile, id) {
            Some(bytes) => assert_eq!(
                read_plain(&mut card, sfi).unwrap(),
                bytes[..bytes.len().min(256)]
            ),
            None => assert_eq!(read_plain(&mut card, sfi), Err("6A82".into())),
        }
    }
    assert_eq!(has_df2, profile.card_type.code(profile.generation) == "07");
    assert_eq!(reader.select(&mut card, Df::Df3), "9000");
    let df3 = compiled(profile, EfId::new(Df::Df3, 0x02)).unwrap();
    assert_eq!(reader.read_sm(&mut card, 0x02).unwrap(), df3);
}

#[test]
fn the_valid_specified_cards_read_whole_at_the_default_knobs() {
    for name in ["valid/specified-07", "valid/specified-08"] {
        let profile = load(name);
        assert_eq!(profile.kind(), ChipKind::SpecifiedResidence);
        assert!(
            profile.residence_image().is_err(),
            "the residence runner skips it"
        );
        full_read(&profile, 1);
    }
    // The JPKI and text APs of the platform are there as on a plain My Number card.
    let profile = load("valid/specified-07");
    let mut card = profile.card();
    assert_eq!(
        sw(&mut card, "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"),
        "9000"
    );
    assert_eq!(sw(&mut card, "00 20 00 91 04 31 32 33 34"), "9000");
}

/// Every value of every `platform.residence_*` knob: a reader configured the same way
/// reads the whole card.
#[test]
fn every_residence_knob_value_reads_the_card() {
    let mut runs = 0;
    for knob in KNOBS
        .iter()
        .filter(|k| k.path.starts_with("platform.residence_"))
    {
        for value in knob.values {
            let spec = knob.setting(value).unwrap();
            let yaml = serde_yaml_ng::to_string(&spec).unwrap();
            for base in ["valid/specified-07", "valid/specified-08"] {
                let tag = format!("{}-{value}-{}", knob.path, base.replace('/', "-"));
                let profile = overlay(base, &yaml, &tag);
                full_read(&profile, runs);
                runs += 1;
            }
        }
    }
    assert!(runs >= 36, "{runs}");
}

#[test]
fn reselecting_the_ap_clears_the_session_and_wrong_numbers_answer_per_knob() {
    let profile = load("valid/specified-07");
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 2);
    assert_eq!(reader.verify(&mut card, "AA00000000AA"), "6300");
    assert_eq!(reader.verify(&mut card, "AA00000000AA"), "6300");
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    // The session key is gone: SM answers 69 82, DF2 is closed again.
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "6982"
    );
    assert_eq!(send(&mut card, &select_df(Df::Df2)).1, "9000");
    assert_eq!(read_plain(&mut card, 0x01), Err("6982".into()));
    // Plain VERIFY is refused: the number only travels under SM.
    assert_eq!(
        sw(
            &mut card,
            "00 20 00 86 0C 41 41 30 30 30 30 30 30 30 30 41 41"
        ),
        "6982"
    );
    // With the tries-left knob: 63 Cx down to 63 C0, then 69 84.
    let profile = overlay(
        "valid/specified-07",
        "platform:\n  residence_wrong_number: tries_left\n",
        "tries",
    );
    assert_eq!(
        knobs(&profile).residence_wrong_number,
        ResidenceWrongNumber::TriesLeft
    );
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 3);
    for left in (0..10).rev() {
        assert_eq!(
            reader.verify(&mut card, "AA00000000AA"),
            format!("63C{left:X}")
        );
    }
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "6984"
    );
    // A 在留AP DF outside the AP, or the AP on a plain My Number card: not found.
    let mut card = profile.card();
    assert_eq!(send(&mut card, &select_df(Df::Df1)).1, "6A82");
    let mut plain = load("valid/adult").card();
    assert_eq!(send(&mut plain, &select_ap()).1, "6A82");
}

/// A8's derived vector for the specified card's VERIFY (counter variant, N = 1, Kenc
/// `00 01 … 0F`, card number AA12345678BB), sent byte for byte to the card.
#[test]
fn a8_known_answer_counter_variant() {
    let profile = overlay(
        "valid/specified-07",
        "card:\n  number: AA12345678BB\n",
        "a8",
    );
    let mut card = profile.card();
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    let material = KeyMaterial {
        encryption: core::array::from_fn(|i| i as u8),
        mac: None,
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let cryptogram = key_delivery::encrypt(
        &delivery_key(),
        OaepDigest::Sha256,
        &material.encode(),
        &mut rng,
    )
    .unwrap();
    let apdu = [&h("80 AE 00 00 00 01 00")[..], &cryptogram[..]].concat();
    assert_eq!(send(&mut card, &apdu).1, "9000");
    let verify = h("08 20 00 86 13 86 11 01 56 4A A1 5A 55 13 2F AE C2 9D 95 D3 82 68 F7 FF");
    // The reader half produces exactly these bytes, and the card accepts them.
    let mut reader = ReaderCounterSm::new(
        core::array::from_fn(|i| i as u8),
        knobs(&profile).residence_le_form(),
    );
    assert_eq!(reader.verify(0x86, b"AA12345678BB").unwrap().0, verify);
    assert_eq!(send(&mut card, &verify).1, "9000");
}

/// The CMAC variant with fixed keys (no public vector exists for it, A8): the card accepts
/// a VERIFY made from `Kenc = 00…0F`, `Kmac = 20…2F`, and a replay of it is refused.
#[test]
fn cmac_variant_with_fixed_keys() {
    let profile = overlay(
        "valid/specified-07",
        "platform:\n  residence_sm: cmac\n",
        "cmac-fixed",
    );
    let mut card = profile.card();
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    let material = KeyMaterial {
        encryption: core::array::from_fn(|i| i as u8),
        mac: Some(core::array::from_fn(|i| 0x20 + i as u8)),
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let cryptogram = key_delivery::encrypt(
        &delivery_key(),
        OaepDigest::Sha256,
        &material.encode(),
        &mut rng,
    )
    .unwrap();
    let apdu = [&h("80 AE 00 00 00 01 00")[..], &cryptogram[..]].concat();
    assert_eq!(send(&mut card, &apdu).1, "9000");
    let keys = material.session_keys();
    let mut reader = ReaderCmacSm::new(keys.kenc, keys.kmac.unwrap());
    let (verify, _) = reader
        .command(
            [0x0C, 0x20, 0x00, 0x86],
            profile.card_number.as_str().as_bytes(),
            None,
        )
        .unwrap();
    assert_eq!(send(&mut card, &verify).1, "9000");
    // The same bytes again (counter 1 where 2 is due): the MAC does not verify.
    assert_eq!(send(&mut card, &verify).1, "6988");
    // An encryption-only template is refused under the CMAC variant.
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    let only_enc = KeyMaterial {
        encryption: [7; 32],
        mac: None,
    };
    let cryptogram = key_delivery::encrypt(
        &delivery_key(),
        OaepDigest::Sha256,
        &only_enc.encode(),
        &mut rng,
    )
    .unwrap();
    let apdu = [&h("80 AE 00 00 00 01 00")[..], &cryptogram[..]].concat();
    assert_eq!(send(&mut card, &apdu).1, "6A80");
}

#[test]
fn the_forged_specified_cards_fail_where_they_should() {
    // Another delivery key: the TEST one's cryptogram does not decrypt.
    let profile = load("forged/specified-other-delivery-key");
    let mut card = profile.card();
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
    let (apdu, _) = key_delivery::build(
        &delivery_key(),
        knobs(&profile).residence_key_delivery(),
        &mut rng,
    )
    .unwrap();
    let status = send(&mut card, &apdu).1;
    assert!(status == "6A80" || status == "6F00", "{status}");
    // C1 says 05.
    let profile = load("forged/specified-claims-05");
    let mut card = profile.card();
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    let (c1, status) = send(&mut card, &h("00 B0 8A 00 00"));
    assert_eq!((c1, status.as_str()), (h("C1 02 30 35"), "9000"));
    // No DF2 on a 07 card.
    let profile = load("forged/specified-07-without-df2");
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 7);
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(reader.select(&mut card, Df::Df2), "6A82");
    assert_eq!(reader.select(&mut card, Df::Df3), "9000");
    // The look-alike CA2: DF3 holds another certificate than the valid card's.
    let valid = compiled(&load("valid/specified-07"), EfId::new(Df::Df3, 0x02));
    let lookalike = compiled(
        &load("forged/specified-lookalike-ca2"),
        EfId::new(Df::Df3, 0x02),
    );
    assert_ne!(valid, lookalike);
    full_read(&load("forged/specified-lookalike-ca2"), 8);
}

#[test]
fn specified_profile_errors_name_the_field() {
    let cases = [
        ("card:\n  type: residence_card\n", "card.type"),
        ("card:\n  generation: 1\n", "generation"),
        (
            "residence_ap:\n  delivery_key: /nonexistent.pem\n",
            "residence_ap.delivery_key",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (i, (yaml, field)) in cases.into_iter().enumerate() {
        let file = dir.join(format!("case{i}.yaml"));
        let base = vectors().join("profiles/my-number/valid/specified-07.yaml");
        std::fs::write(&file, format!("extends: {}\n{yaml}", base.display())).unwrap();
        let err = profile::load(&file).unwrap_err().to_string();
        assert!(err.contains(field), "{yaml}: {err}");
    }
    // A residence-kind profile cannot claim 07.
    let file = dir.join("residence.yaml");
    let base = vectors().join("profiles/valid/gen2-residence.yaml");
    std::fs::write(
        &file,
        format!(
            "extends: {}\ncard:\n  type: specified_residence_card\n",
            base.display()
        ),
    )
    .unwrap();
    let err = profile::load(&file).unwrap_err().to_string();
    assert!(err.contains("card.type"), "{err}");
}

/// A command a reader might send to the 在留AP or the text AP: near-valid SM and key
/// delivery headers (short and extended), or bytes.
fn command() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let near = (
        0usize..4,
        0usize..6,
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(c, i, p1, p2, data, extended)| {
            let cla = [0x00, 0x08, 0x0C, 0x80][c];
            let ins = [0xA4, 0xB0, 0x20, 0xAE, 0x2A, 0x86][i];
            let mut apdu = vec![cla, ins, p1, p2];
            if extended {
                apdu.push(0);
                apdu.extend(u16::try_from(data.len()).unwrap().to_be_bytes());
                apdu.extend(data);
                apdu.extend([0, 0]);
            } else {
                if !data.is_empty() {
                    apdu.push(u8::try_from(data.len()).unwrap());
                    apdu.extend(data);
                }
                apdu.push(0);
            }
            apdu
        });
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..24),
        6 => near,
        1 => Just(select_ap()),
        1 => Just(select_df(Df::Df1)),
        1 => Just(h("00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08")),
        1 => Just(h("00 20 00 91 04 31 32 33 34")),
    ]
}

static SPECIFIED: std::sync::LazyLock<Profile> =
    std::sync::LazyLock::new(|| load("valid/specified-07"));
static SPECIFIED_CMAC: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(|| {
    overlay(
        "valid/specified-07",
        "platform:\n  residence_sm: cmac\n  residence_df_select: secure_messaging\n",
        "proptest-cmac",
    )
});

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]
    /// After a session is opened on the 在留AP (counter or CMAC variant) or on the text AP,
    /// any sequence of APDUs gets a status word, data only with 90 00; the card never panics.
    #[test]
    fn the_specified_card_answers_every_sequence(
        which in 0usize..3,
        steps in proptest::collection::vec(command(), 1..30)
    ) {
        let profile: &Profile = if which == 1 { &SPECIFIED_CMAC } else { &SPECIFIED };
        let mut card = profile.card();
        if which == 2 {
            assert_eq!(sw(&mut card, "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"), "9000");
            assert_eq!(sw(&mut card, "00 20 00 91 04 31 32 33 34"), "9000");
        } else {
            let _ = Reader::open(&mut card, knobs(profile), 9);
        }
        for apdu in steps {
            let reply = Channel::transmit(&mut card, &apdu).unwrap();
            proptest::prop_assert!(reply.len() >= 2);
            let sw = &reply[reply.len() - 2..];
            proptest::prop_assert!(sw == [0x90, 0x00] || reply.len() == 2, "{:02X?}", reply);
        }
    }
}

/// The 在留AP holds generation 2's data byte for byte: a specified card written with the
/// data of `valid/gen2-residence` has that card's DF1, DF2 and DF3 — check code and CA2
/// certificate included (ECDSA P-384 here is deterministic, RFC 6979) — and differs at the
/// AP level only in C1 (`07` for `05`).
#[test]
fn the_ap_holds_generation_2s_data_byte_for_byte() {
    let gen2 = profile::load(&vectors().join("profiles/valid/gen2-residence.yaml")).unwrap();
    let doc =
        std::fs::read_to_string(vectors().join("profiles/valid/gen2-residence.yaml")).unwrap();
    // The data sections of the gen-2 profile, paths made absolute.
    let data: String = doc
        .lines()
        .skip_while(|l| !l.starts_with("images:"))
        .take_while(|l| !l.starts_with("expect:"))
        .map(|l| l.replace("../../", &format!("{}/", vectors().display())))
        .collect::<Vec<_>>()
        .join("\n");
    let yaml = format!("card:\n  number: EF24681357GH\n  spec_version: \"0002\"\n{data}\n");
    let specified = overlay("valid/specified-07", &yaml, "gen2-data");
    let ap = &specified
        .my_number
        .as_ref()
        .unwrap()
        .residence_ap
        .as_ref()
        .unwrap()
        .data;
    let mut compared = 0;
    for file in &gen2.image.files {
        let mine = ap.file(file.id).unwrap();
        if file.id == EfId::new(Df::Mf, 0x0A) {
            assert_eq!(mine.content, h("C1 02 30 37"));
            assert_eq!(file.content, h("C1 02 30 35"));
        } else {
            assert_eq!(mine.content, file.content, "{}", file.name);
            compared += 1;
        }
    }
    assert_eq!(compared, gen2.image.files.len() - 1);
    full_read(&specified, 13);
}

/// The status an SM command gets once the session is gone, read from a valid card the reader
/// re-selects itself (the behaviour the `reselect_residence_ap` fault must reproduce).
fn status_after_a_real_reselection(profile: &Profile) -> String {
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(profile), 20);
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(send(&mut card, &select_ap()).1, "9000");
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    reader.read_sm(&mut card, 0x01).unwrap_err()
}

#[test]
fn the_reselect_fault_clears_the_session_right_after_verify() {
    let valid = load("valid/specified-07");
    let cleared = status_after_a_real_reselection(&valid);
    assert_eq!(
        cleared,
        hex::encode_upper(knobs(&valid).sm_without_session.status().to_bytes())
    );
    // Without the fault, the same conversation reads DF1.
    let mut card = valid.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&valid), 21);
    assert_eq!(reader.verify(&mut card, valid.card_number.as_str()), "9000");
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert_eq!(
        reader.read_sm(&mut card, 0x01).ok(),
        compiled(&valid, EfId::new(Df::Df1, 0x01))
    );

    let profile = load("corrupted/specified-session-cleared");
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 21);
    assert_eq!(card.fired(), [0]);
    // The VERIFY itself is answered as the card answered it; the session goes after it.
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(card.fired(), [1]);
    // The AP is still selected (DF1 selects), but the session is that of a fresh selection:
    // the SM READ of DF1 gets what it gets after a real re-selection, and DF2 is closed.
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert_eq!(reader.read_sm(&mut card, 0x01), Err(cleared.clone()));
    assert_eq!(reader.select(&mut card, Df::Df2), "9000");
    assert_eq!(read_plain(&mut card, 0x01), Err("6982".into()));
    assert_eq!(card.fired(), [1], "it acts once per power-up");
    // A reset starts the count again: a reader that retries meets the same card.
    card.reset();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 22);
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert_eq!(reader.read_sm(&mut card, 0x01), Err(cleared.clone()));
    assert_eq!(card.fired(), [2]);

    // `nth: 2`: a wrong number (63 00) does not count, the first right one passes, the
    // second right one clears the session.
    let second = overlay(
        "valid/specified-07",
        "faults:\n  - reselect_residence_ap: { after: verify, nth: 2 }\n",
        "reselect-nth",
    );
    let mut card = second.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&second), 23);
    assert_eq!(reader.verify(&mut card, "AA00000000AA"), "6300");
    assert_eq!(
        reader.verify(&mut card, second.card_number.as_str()),
        "9000"
    );
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert!(reader.read_sm(&mut card, 0x01).is_ok());
    assert_eq!(card.fired(), [0]);
    assert_eq!(
        reader.verify(&mut card, second.card_number.as_str()),
        "9000"
    );
    assert_eq!(card.fired(), [1]);
    assert_eq!(reader.read_sm(&mut card, 0x01), Err(cleared));

    // Under the CMAC variant with SM SELECT of the DFs, the same: no session after VERIFY.
    let cmac = overlay(
        "corrupted/specified-session-cleared",
        "platform:\n  residence_sm: cmac\n  residence_df_select: secure_messaging\n",
        "reselect-cmac",
    );
    let mut card = cmac.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&cmac), 24);
    assert_eq!(reader.verify(&mut card, cmac.card_number.as_str()), "9000");
    assert_eq!(
        reader.select(&mut card, Df::Df1),
        hex::encode_upper(knobs(&cmac).sm_without_session.status().to_bytes())
    );
}

#[test]
fn the_counter_fault_puts_the_card_one_ahead_after_verify() {
    use rclab_emulator::protocol::counter_sm::{self, MessageCounter};
    let profile = load("corrupted/specified-counter-desync");
    let ef01 = compiled(&profile, EfId::new(Df::Df1, 0x01)).unwrap();
    let df3 = compiled(&profile, EfId::new(Df::Df3, 0x02)).unwrap();
    let mut card = profile.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&profile), 30);
    assert_eq!(
        reader.verify(&mut card, profile.card_number.as_str()),
        "9000"
    );
    assert_eq!(card.fired(), [1]);
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    let Sm::Counter(sm) = &mut reader.sm else {
        panic!("the default knob is the counter variant")
    };
    let (apdu, pending) = sm.read_binary(0x81, 0, 0);
    assert_eq!(pending.counter(), MessageCounter(2), "the reader's counter");
    let (data, status) = send(&mut card, &apdu);
    assert_eq!(status, "9000");
    // Under the reader's counter the answer does not open to the file (a wrong IV garbles
    // the first block, or the padding fails); under counter + 1 it is the file exactly.
    assert_ne!(sm.open_response(&pending, &data).ok(), Some(ef01.clone()));
    let ahead = MessageCounter(pending.counter().0 + 1);
    assert_eq!(counter_sm::open(&reader.kenc, ahead, &data).unwrap(), ef01);
    // It stays one ahead (the fault acts once): the next read opens under its counter + 1.
    assert_eq!(reader.select(&mut card, Df::Df3), "9000");
    let Sm::Counter(sm) = &mut reader.sm else {
        unreachable!()
    };
    let (apdu, pending) = sm.read_binary(0x82, 0, 0);
    let (data, _) = send(&mut card, &apdu);
    assert_ne!(sm.open_response(&pending, &data).ok(), Some(df3.clone()));
    let ahead = MessageCounter(pending.counter().0 + 1);
    assert_eq!(counter_sm::open(&reader.kenc, ahead, &data).unwrap(), df3);
    assert_eq!(card.fired(), [1]);

    // Without the fault the read opens under the reader's counter.
    let valid = load("valid/specified-07");
    let mut card = valid.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&valid), 30);
    assert_eq!(reader.verify(&mut card, valid.card_number.as_str()), "9000");
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert_eq!(reader.read_sm(&mut card, 0x01).unwrap(), ef01);

    // An SM SELECT of a DF after the skip: the 16-byte AID is two blocks with its padding,
    // and a wrong IV garbles only the first, so the card opens it to another AID and finds
    // no such DF (a property of CBC, see `counter_sm`).
    let sm_select = overlay(
        "corrupted/specified-counter-desync",
        "platform:\n  residence_df_select: secure_messaging\n",
        "desync-sm-select",
    );
    let mut card = sm_select.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&sm_select), 31);
    assert_eq!(
        reader.verify(&mut card, sm_select.card_number.as_str()),
        "9000"
    );
    assert_eq!(reader.select(&mut card, Df::Df1), "6A82");

    // Under the CMAC variant the MAC of the next command does not verify.
    let cmac = overlay(
        "corrupted/specified-counter-desync",
        "platform:\n  residence_sm: cmac\n",
        "desync-cmac",
    );
    let mut card = cmac.card();
    let (mut reader, _) = Reader::open(&mut card, knobs(&cmac), 32);
    assert_eq!(reader.verify(&mut card, cmac.card_number.as_str()), "9000");
    assert_eq!(reader.select(&mut card, Df::Df1), "9000");
    assert_eq!(reader.read_sm(&mut card, 0x01), Err("6988".into()));
    assert_eq!(card.fired(), [1]);
}

/// The session faults need the 在留AP: on a residence card or a plain My Number card the
/// profile is refused, naming the fault; a bad `nth` is refused too.
#[test]
fn session_faults_are_refused_without_the_residence_ap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bases = [
        (
            "profiles/valid/gen2-residence.yaml",
            "`residence` card has no 在留AP",
        ),
        (
            "profiles/my-number/valid/adult.yaml",
            "`my_number` card has no 在留AP",
        ),
    ];
    for (i, (base, message)) in bases.into_iter().enumerate() {
        for fault in ["reselect_residence_ap", "skip_sm_counter"] {
            let file = dir.join(format!("{fault}-{i}.yaml"));
            std::fs::write(
                &file,
                format!(
                    "extends: {}\nfaults:\n  - delay: {{ ms: 1 }}\n  - {fault}: {{ after: verify }}\n",
                    vectors().join(base).display()
                ),
            )
            .unwrap();
            let err = profile::load(&file).unwrap_err().to_string();
            assert!(err.contains("faults[1]") && err.contains(message), "{err}");
            assert!(
                err.contains(&format!("{fault}-{i}.yaml:")),
                "located: {err}"
            );
        }
    }
    let file = dir.join("nth-zero.yaml");
    std::fs::write(
        &file,
        format!(
            "extends: {}\nfaults:\n  - skip_sm_counter: {{ after: verify, nth: 0 }}\n",
            vectors()
                .join("profiles/my-number/valid/specified-07.yaml")
                .display()
        ),
    )
    .unwrap();
    let err = profile::load(&file).unwrap_err().to_string();
    assert!(err.contains("faults"), "{err}");
}
