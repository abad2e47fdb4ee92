//! The My Number card's 券面事項入力補助AP (spec notes B5, A4, A5) through the profile's card:
//! a reader-side session (key delivery and counter SM written once in
//! `rclab_emulator::protocol`) reads the files under SM and their integrity record verifies
//! under the CV certificate; the access matrix; the SM's failure modes; the forged profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rclab_emulator::fault::SimCard;
use rclab_emulator::my_number::cv_cert::CvCertificate;
use rclab_emulator::my_number::individual_number::NumberDigits;
use rclab_emulator::my_number::text_ap::{
    IntegrityError, IntegrityRecord, Sex, parse_basic_info_ef, parse_delivery_key_ef,
    parse_number_ef,
};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::counter_sm::{LeDoForm, ReaderCounterSm};
use rclab_emulator::protocol::key_delivery::{self, KeyDeliveryConfig};
use rclab_emulator::transport::Channel;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha2::{Digest, Sha256};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

fn my_number(name: &str) -> Profile {
    let path = vectors().join(format!("profiles/my-number/{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn h(text: &str) -> Vec<u8> {
    let cleaned: String = text.split_whitespace().collect();
    hex::decode(&cleaned).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Sends raw bytes; returns (data, SW as 4 hex digits).
fn send_raw(card: &mut SimCard, apdu: &[u8]) -> (Vec<u8>, String) {
    let mut r = Channel::transmit(card, apdu).unwrap();
    let sw = r.split_off(r.len() - 2);
    (r, hex::encode_upper(sw))
}

fn send(card: &mut SimCard, apdu: &str) -> (Vec<u8>, String) {
    send_raw(card, &h(apdu))
}

fn sw(card: &mut SimCard, apdu: &str) -> String {
    send(card, apdu).1
}

const SELECT_TEXT: &str = "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08";
const SELECT_JPKI: &str = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01";
/// VERIFY of the adult profile's text PIN `1234` (EF 0011 by SFI).
const VERIFY_PIN: &str = "00 20 00 91 04 31 32 33 34";

/// The TEST CV CA's public key (vectors/pki/mynumber/text-cv-ca.pub.der).
fn cv_ca() -> PublicKey {
    let der = std::fs::read(vectors().join("pki/mynumber/text-cv-ca.pub.der")).unwrap();
    PublicKey::from_public_key_der(&der).unwrap()
}

/// Reads an EF in clear: SELECT by FID, then READ BINARY chunks of 256.
fn read_plain(card: &mut SimCard, fid: u16) -> Result<Vec<u8>, String> {
    let status = sw(card, &format!("00 A4 02 0C 02 {fid:04X}"));
    assert_eq!(status, "9000");
    let mut out = Vec::new();
    loop {
        let (chunk, status) = send(card, &format!("00 B0 {:04X} 00", out.len()));
        match status.as_str() {
            "9000" => {
                let n = chunk.len();
                out.extend(chunk);
                if n < 256 {
                    return Ok(out);
                }
            }
            "6B00" if !out.is_empty() => return Ok(out),
            other => return Err(other.to_owned()),
        }
    }
}

/// A reader's SM session on the text AP: SELECT, PIN in clear, SET SESSION KEY with the
/// public key read from EF 0006.
fn open_session(card: &mut SimCard, seed: u64) -> ReaderCounterSm {
    assert_eq!(sw(card, SELECT_TEXT), "9000");
    assert_eq!(sw(card, VERIFY_PIN), "9000");
    let key = parse_delivery_key_ef(&read_plain(card, 0x0006).unwrap()).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let (apdu, keys) = key_delivery::build(&key, KeyDeliveryConfig::default(), &mut rng).unwrap();
    assert_eq!(apdu.len(), 263, "80 AE 00 00 00 01 00 + 256 bytes");
    assert_eq!(send_raw(card, &apdu).1, "9000");
    ReaderCounterSm::new(keys.kenc, LeDoForm::ThreeByte)
}

/// SM SELECT EF then SM READ BINARY of the whole file.
fn read_sm(card: &mut SimCard, sm: &mut ReaderCounterSm, fid: u16) -> Vec<u8> {
    let (apdu, _) = sm.select_ef(fid).unwrap();
    assert_eq!(send_raw(card, &apdu).1, "9000", "SM SELECT {fid:04X}");
    let (apdu, pending) = sm.read_binary(0, 0, 0);
    let (data, status) = send_raw(card, &apdu);
    assert_eq!(status, "9000", "SM READ {fid:04X}");
    sm.open_response(&pending, &data).unwrap()
}

#[test]
fn a_reader_session_reads_the_files_under_sm_and_the_integrity_record_verifies() {
    let profile = my_number("valid/adult");
    let mut card = profile.card();
    let mut sm = open_session(&mut card, 7);
    let ef_0001 = read_sm(&mut card, &mut sm, 0x0001);
    let ef_0002 = read_sm(&mut card, &mut sm, 0x0002);
    let ef_0003 = read_sm(&mut card, &mut sm, 0x0003);
    // The same bytes in clear.
    assert_eq!(read_plain(&mut card, 0x0001).unwrap(), ef_0001);
    assert_eq!(read_plain(&mut card, 0x0002).unwrap(), ef_0002);
    assert_eq!(read_plain(&mut card, 0x0003).unwrap(), ef_0003);
    let number = parse_number_ef(&ef_0001).unwrap().checked().unwrap();
    assert_eq!(number.as_str(), "987654321093");
    let info = parse_basic_info_ef(&ef_0002).unwrap();
    assert_eq!(info.name, "試験\u{3000}花子");
    assert_eq!(info.sex, Sex::Female);
    // The integrity record verifies under the key the CV certificate (EF 0004) vouches for,
    // and the certificate under the TEST CV CA.
    let cert = CvCertificate::parse(&read_plain(&mut card, 0x0004).unwrap()).unwrap();
    cert.verify(&cv_ca()).unwrap();
    let record = IntegrityRecord::parse(&ef_0003).unwrap();
    record.verify(&ef_0001, &ef_0002, &cert.holder_key).unwrap();
    // The self-signature (no credential) is made with the same key.
    let digest_info = [
        &h("3031300d060960864801650304020105000420")[..],
        &Sha256::digest(b"challenge")[..],
    ]
    .concat();
    let (signature, status) = send(
        &mut card,
        &format!("80 2A 00 00 33 {} 00", hex::encode(&digest_info)),
    );
    assert_eq!(status, "9000");
    cert.holder_key
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"challenge"),
            &signature,
        )
        .unwrap();
}

#[test]
fn the_sm_answers_the_a8_shapes_and_the_session_ends_with_the_selection() {
    let profile = my_number("valid/adult");
    let mut card = profile.card();
    let mut sm = open_session(&mut card, 8);
    // SM VERIFY of the PIN (N = 1) answers a bare 90 00.
    let (apdu, _) = sm.verify(0x91, b"1234").unwrap();
    assert_eq!(&apdu[..5], &h("08 20 00 91 13")[..]);
    assert_eq!(send_raw(&mut card, &apdu), (Vec::new(), "9000".into()));
    // CLA 0C is refused without spending the counter.
    assert_eq!(sw(&mut card, "0C A4 02 0C 02 00 01"), "6987");
    let data = read_sm(&mut card, &mut sm, 0x0001);
    assert_eq!(data.len(), 17);
    // Leaving the AP ends the session: back in it, SM has no key.
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
    let (apdu, _) = sm.select_ef(0x0002).unwrap();
    assert_eq!(send_raw(&mut card, &apdu).1, "6982");
    // SET SESSION KEY on the JPKI AP: no key delivery there.
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    let mut cryptogram = vec![0x80, 0xAE, 0x00, 0x00, 0x00, 0x01, 0x00];
    cryptogram.extend([0x11; 256]);
    assert_eq!(send_raw(&mut card, &cryptogram).1, "66F1");
}

#[test]
fn key_delivery_needs_the_pin_in_clear() {
    let profile = my_number("valid/adult");
    let mut card = profile.card();
    assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
    let key = parse_delivery_key_ef(&{
        assert_eq!(
            sw(
                &mut card,
                "00 20 00 94 0C 39 38 37 36 35 34 33 32 31 30 39 33"
            ),
            "9000"
        );
        read_plain(&mut card, 0x0006).unwrap()
    })
    .unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let (apdu, _) = key_delivery::build(&key, KeyDeliveryConfig::default(), &mut rng).unwrap();
    // 照合番号A alone: 69 82 (B5).
    assert_eq!(send_raw(&mut card, &apdu).1, "6982");
    // A wrong PIN in clear: still 69 82; the right one opens it.
    assert_eq!(sw(&mut card, "00 20 00 91 04 30 30 30 30"), "63C2");
    assert_eq!(send_raw(&mut card, &apdu).1, "6982");
    assert_eq!(sw(&mut card, VERIFY_PIN), "9000");
    assert_eq!(send_raw(&mut card, &apdu).1, "9000");
    // A cryptogram under another key: 6A 80 (OAEP fails), and the session is gone.
    let other = rsa::PrivateKey::new(&mut rng, 2048)
        .unwrap()
        .to_public_key();
    let (bad, _) = key_delivery::build(
        &key_delivery::DeliveryPublicKey(other),
        KeyDeliveryConfig::default(),
        &mut rng,
    )
    .unwrap();
    let status = send_raw(&mut card, &bad).1;
    assert!(status == "6A80" || status == "6F00", "{status}");
}

#[test]
fn a_wrong_counter_is_6988_then_every_sm_command_69fc() {
    let profile = my_number("valid/adult");
    let mut card = profile.card();
    let mut sm = open_session(&mut card, 9);
    // The reader skips a counter value (a command lost on the way).
    let _lost = sm.select_ef(0x0001).unwrap();
    let (apdu, _) = sm.select_ef(0x0001).unwrap();
    assert_eq!(send_raw(&mut card, &apdu).1, "6988");
    let (apdu, _) = sm.read_binary(0, 0, 0);
    assert_eq!(send_raw(&mut card, &apdu).1, "69FC");
    let (apdu, _) = sm.verify(0x91, b"1234").unwrap();
    assert_eq!(send_raw(&mut card, &apdu).1, "69FC");
    // Plain commands still work; a new key delivery starts a new session.
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 04"), "9000");
    let mut sm = {
        let key = parse_delivery_key_ef(&read_plain(&mut card, 0x0006).unwrap()).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
        let (apdu, keys) =
            key_delivery::build(&key, KeyDeliveryConfig::default(), &mut rng).unwrap();
        assert_eq!(send_raw(&mut card, &apdu).1, "9000");
        ReaderCounterSm::new(keys.kenc, LeDoForm::ThreeByte)
    };
    assert_eq!(read_sm(&mut card, &mut sm, 0x0001).len(), 17);
}

/// One row of the access matrix: credential name, its VERIFY, EFs opened, EFs closed.
type AccessRow = (
    &'static str,
    Option<&'static str>,
    &'static [u16],
    &'static [u16],
);

/// B5's measured access matrix, as data: which credential opens which EF.
#[test]
fn the_access_matrix_is_b5s() {
    // (credential VERIFY, EFs it opens, EFs it leaves at 69 82)
    let pin = VERIFY_PIN;
    let a = "00 20 00 94 0C 39 38 37 36 35 34 33 32 31 30 39 33";
    // 照合番号B: 和暦 DOB (Heisei 2 = 1990) 020301 ‖ 2035 ‖ 4821.
    let b = "00 20 00 95 0E 30 32 30 33 30 31 32 30 33 35 34 38 32 31";
    let table: [AccessRow; 4] = [
        ("none", None, &[4, 5], &[1, 2, 3, 6, 7]),
        ("PIN", Some(pin), &[1, 2, 3, 4, 5, 6, 7], &[]),
        ("A", Some(a), &[1, 3, 4, 5, 6, 7], &[2]),
        ("B", Some(b), &[2, 4, 5], &[1, 3, 6, 7]),
    ];
    let profile = my_number("valid/adult");
    for (name, credential, opens, closed) in table {
        let mut card = profile.card();
        assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
        if let Some(verify) = credential {
            assert_eq!(sw(&mut card, verify), "9000", "{name}");
        }
        for &fid in opens {
            assert!(read_plain(&mut card, fid).is_ok(), "{name} opens {fid:04X}");
        }
        for &fid in closed {
            assert_eq!(
                read_plain(&mut card, fid),
                Err("6982".into()),
                "{name} leaves {fid:04X} closed"
            );
        }
    }
    // 0012 is delivered blocked; the check numbers have ten tries by default.
    let mut card = profile.card();
    assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
    assert_eq!(sw(&mut card, "00 20 00 92"), "63C0");
    assert_eq!(sw(&mut card, "00 20 00 92 04 31 32 33 34"), "6984");
    assert_eq!(sw(&mut card, "00 20 00 95"), "63CA");
    assert_eq!(sw(&mut card, "00 20 00 94"), "63CA");
    assert_eq!(sw(&mut card, "00 20 00 91"), "63C3");
}

#[test]
fn the_forged_profiles_fail_exactly_where_they_should() {
    let read = |name: &str| {
        let profile = my_number(name);
        let mut card = profile.card();
        assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
        assert_eq!(sw(&mut card, VERIFY_PIN), "9000");
        let files: Vec<Vec<u8>> = [1, 2, 3, 4]
            .into_iter()
            .map(|fid| read_plain(&mut card, fid).unwrap())
            .collect();
        files
    };
    // Name changed after signing: DF32 no longer matches.
    let f = read("forged/text-name-changed");
    let cert = CvCertificate::parse(&f[3]).unwrap();
    cert.verify(&cv_ca()).unwrap();
    let record = IntegrityRecord::parse(&f[2]).unwrap();
    assert_eq!(
        record.verify(&f[0], &f[1], &cert.holder_key),
        Err(IntegrityError::BasicInfoHash)
    );
    assert_ne!(parse_basic_info_ef(&f[1]).unwrap().name, "試験\u{3000}花子");
    // Wrong check digit, re-signed: the record verifies, only the check digit tells.
    let f = read("forged/text-wrong-check-digit");
    let cert = CvCertificate::parse(&f[3]).unwrap();
    let record = IntegrityRecord::parse(&f[2]).unwrap();
    record.verify(&f[0], &f[1], &cert.holder_key).unwrap();
    let digits: NumberDigits = parse_number_ef(&f[0]).unwrap();
    assert!(digits.checked().is_err());
}

#[test]
fn text_ap_profile_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = vectors().join("profiles/my-number/valid/adult.yaml");
    let cases = [
        (
            "text_ap:\n  individual_number: \"987654321094\"\n",
            "text_ap.individual_number",
        ),
        (
            "text_ap:\n  wrong_check_digit: true\n",
            "text_ap.wrong_check_digit",
        ),
        ("text_ap:\n  pin: \"12345\"\n", "text_ap.pin"),
        ("text_ap:\n  pin_tries_left: 4\n", "text_ap.pin_tries_left"),
        (
            "text_ap:\n  birth_date: \"18600101\"\n",
            "text_ap.birth_date",
        ),
        (
            "text_ap:\n  card_key: /nonexistent.pem\n",
            "text_ap.card_key",
        ),
    ];
    for (i, (yaml, field)) in cases.into_iter().enumerate() {
        let file = dir.join(format!("case{i}.yaml"));
        std::fs::write(&file, format!("extends: {}\n{yaml}", base.display())).unwrap();
        let err = profile::load(&file).unwrap_err().to_string();
        assert!(err.contains(field), "{yaml}: {err}");
    }
    // A residence profile may not carry the section.
    let file = dir.join("residence.yaml");
    let residence = vectors().join("profiles/valid");
    let first = std::fs::read_dir(&residence)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "yaml"))
        .unwrap();
    std::fs::write(
        &file,
        format!("extends: {}\ntext_ap:\n  pin: \"1234\"\n", first.display()),
    )
    .unwrap();
    let err = profile::load(&file).unwrap_err().to_string();
    assert!(err.contains("text_ap"), "{err}");
}

/// A8's derived vector chain, sent byte for byte: a card holding the JPKI test card's
/// individual number (EF 0001 `FF100C353337363836363737313838FFFF`), a session key
/// delivered as `00 01 … 1F` (Kenc `00 … 0F`), then VERIFY PIN `1234` (N = 1), SELECT EF
/// 0001 (N = 2) and READ BINARY of the whole file (N = 3), whose answer is A8's exactly.
#[test]
fn a8_known_answers_through_the_card() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("a8.yaml");
    let base = vectors().join("profiles/my-number/valid/adult.yaml");
    std::fs::write(
        &file,
        format!(
            "extends: {}\ntext_ap:\n  individual_number: \"537686677188\"\n",
            base.display()
        ),
    )
    .unwrap();
    let profile = profile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let mut card = profile.card();
    assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
    assert_eq!(sw(&mut card, VERIFY_PIN), "9000");
    let key = parse_delivery_key_ef(&read_plain(&mut card, 0x0006).unwrap()).unwrap();
    let material = key_delivery::KeyMaterial {
        encryption: core::array::from_fn(|i| i as u8),
        mac: None,
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let cryptogram = key_delivery::encrypt(
        &key,
        key_delivery::OaepDigest::Sha256,
        &material.encode(),
        &mut rng,
    )
    .unwrap();
    let apdu = [&h("80 AE 00 00 00 01 00")[..], &cryptogram[..]].concat();
    assert_eq!(send_raw(&mut card, &apdu).1, "9000");
    assert_eq!(
        sw(
            &mut card,
            "08 20 00 91 13 86 11 01 B8 D4 93 49 A0 BF E2 72 EA 90 02 30 65 2D AA EF"
        ),
        "9000"
    );
    assert_eq!(
        sw(
            &mut card,
            "08 A4 02 0C 13 86 11 01 46 D4 CA AC 31 3B 21 DA 35 E3 FE 7C 43 5C 31 50"
        ),
        "9000"
    );
    let (data, status) = send(&mut card, "08 B0 00 00 00 00 05 96 03 00 00 00 00 00");
    assert_eq!(status, "9000");
    assert_eq!(
        data,
        h(
            "86 21 01 C7 6A 26 8C 18 FA 81 4B 8C 6A 33 3E CC 84 68 67 96 AA 27 B6 0C BA 7F 02 01 97 67 F7 16 7C E1 39"
        )
    );
}

/// `platform.text_failed_key_delivery`: a failing SET SESSION KEY ends the open session by
/// default; with `keeps_session` the old session still reads.
#[test]
fn a_failed_key_delivery_drops_or_keeps_the_session_per_knob() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = vectors().join("profiles/my-number/valid/adult.yaml");
    for (value, after) in [("drops_session", "6982"), ("keeps_session", "9000")] {
        let file = dir.join(format!("{value}.yaml"));
        std::fs::write(
            &file,
            format!(
                "extends: {}\nplatform:\n  text_failed_key_delivery: {value}\n",
                base.display()
            ),
        )
        .unwrap();
        let profile = profile::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut card = profile.card();
        let mut sm = open_session(&mut card, 12);
        // A cryptogram the card cannot decrypt (not below the modulus: 6F 00).
        let mut bad = h("80 AE 00 00 00 01 00");
        bad.extend([0xFF; 256]);
        assert_eq!(send_raw(&mut card, &bad).1, "6F00");
        let (apdu, _) = sm.select_ef(0x0001).unwrap();
        assert_eq!(send_raw(&mut card, &apdu).1, after, "{value}");
    }
}

/// `text_ap::check_files`, the checker's whole judgement of the text AP, over the valid and
/// the forged profiles: genuine data pass; a changed name fails the integrity record; a
/// wrong check digit fails only the digit; another CA key does not vouch for `0004`.
#[test]
fn check_files_judges_the_valid_and_forged_text_aps() {
    use rclab_emulator::my_number::text_ap::{TextApCheckError, check_files};
    let files = |name: &str| -> Vec<Vec<u8>> {
        let mut card = my_number(name).card();
        assert_eq!(sw(&mut card, SELECT_TEXT), "9000");
        assert_eq!(sw(&mut card, VERIFY_PIN), "9000");
        [1, 2, 3, 4]
            .into_iter()
            .map(|fid| read_plain(&mut card, fid).unwrap())
            .collect()
    };
    let f = files("valid/adult");
    let checked = check_files(&f[0], &f[1], &f[2], &f[3], &cv_ca()).unwrap();
    assert_eq!(checked.number.as_str(), "987654321093");
    assert_eq!(checked.basic_info.address, "東京都千代田区試験町１－２－３");
    // Another key than the TEST CV CA's: 0004 is not vouched for.
    let other = CvCertificate::parse(&f[3]).unwrap().holder_key;
    assert_eq!(
        check_files(&f[0], &f[1], &f[2], &f[3], &other),
        Err(TextApCheckError::UntrustedCvCertificate)
    );
    let f = files("forged/text-name-changed");
    assert_eq!(
        check_files(&f[0], &f[1], &f[2], &f[3], &cv_ca()),
        Err(TextApCheckError::Integrity(IntegrityError::BasicInfoHash))
    );
    let f = files("forged/text-wrong-check-digit");
    assert!(matches!(
        check_files(&f[0], &f[1], &f[2], &f[3], &cv_ca()),
        Err(TextApCheckError::CheckDigit(_))
    ));
    // Garbage in any file is a structure error naming it, never a panic.
    assert!(matches!(
        check_files(&f[0], &f[1], b"\xFF\x30\x01", &f[3], &cv_ca()),
        Err(TextApCheckError::Structure { fid: 0x0003, .. })
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
    /// `check_files` over arbitrary bytes (a hostile card's files) returns an error, never
    /// panics.
    #[test]
    fn check_files_never_panics(
        files in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), 4)
    ) {
        let _ = rclab_emulator::my_number::text_ap::check_files(
            &files[0], &files[1], &files[2], &files[3], &cv_ca(),
        );
    }
}
