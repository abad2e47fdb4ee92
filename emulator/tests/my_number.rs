//! The My Number card (spec notes Part B): the platform's selection rules, the JPKI AP's
//! files, PINs and signatures, byte for byte as the public clients expect them, through the
//! profile's card (fault layer and reader layer included) as every transport serves it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a failure is the report

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rclab_emulator::chip::ChipKind;
use rclab_emulator::fault::SimCard;
use rclab_emulator::my_number::JPKI_ATR;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::Channel;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

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

/// Sends `apdu` (hex) and returns (data, SW as 4 hex digits).
fn send(card: &mut SimCard, apdu: &str) -> (Vec<u8>, String) {
    let mut r = Channel::transmit(card, &h(apdu)).unwrap();
    let sw = r.split_off(r.len() - 2);
    (r, hex::encode_upper(sw))
}

fn sw(card: &mut SimCard, apdu: &str) -> String {
    send(card, apdu).1
}

const SELECT_JPKI: &str = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01";

/// Reads an EF the way OpenSC does: 4-byte DER header, then chunks of at most 256 bytes.
fn read_like_opensc(card: &mut SimCard, fid: &str) -> Vec<u8> {
    assert_eq!(sw(card, &format!("00 A4 02 0C 02 {fid}")), "9000");
    let (head, status) = send(card, "00 B0 00 00 04");
    assert_eq!(status, "9000");
    let size = usize::from(u16::from_be_bytes([head[2], head[3]])) + 4;
    let mut out = Vec::new();
    while out.len() < size {
        let n = (size - out.len()).min(256);
        let (chunk, status) = send(card, &format!("00 B0 {:04X} {:02X}", out.len(), n % 256));
        assert_eq!(status, "9000");
        out.extend(chunk);
    }
    out
}

#[test]
fn the_profile_kind_is_parsed_and_the_atr_is_opensc_jpki_entry() {
    let p = my_number("valid/adult");
    assert_eq!(p.kind(), ChipKind::MyNumber);
    assert!(p.residence_image().is_err());
    assert!(
        p.image.files.is_empty(),
        "no residence EF on a My Number chip"
    );
    let card = p.card();
    assert_eq!(card.reader().atr, JPKI_ATR);
    assert_eq!(
        rclab_emulator::transport::vpcd::VirtualCard::atr(&card),
        h("3B E0 00 FF 81 31 FE 45 14")
    );
}

#[test]
fn power_on_state_is_the_issuer_security_domain() {
    let mut card = my_number("valid/adult").card();
    assert_eq!(
        sw(&mut card, "00 A4 00 00"),
        "6A86",
        "SELECT MF right after reset"
    );
    assert_eq!(sw(&mut card, "00 A4 00 00 02 3F 00"), "6A82");
    assert_eq!(
        sw(&mut card, "00 A4 02 0C 02 00 0A"),
        "6A82",
        "no EF before an AP"
    );
    assert_eq!(sw(&mut card, "00 B0 00 00 04"), "6986");
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(
        sw(&mut card, "00 A4 00 00"),
        "9000",
        "a no-op once an AP is selected"
    );
    assert_eq!(
        sw(&mut card, "00 A4 02 0C 02 00 0A"),
        "9000",
        "the AP is still current"
    );
    assert_eq!(sw(&mut card, "00 A4 04 0C 07 A0 00 00 01 51 00 00"), "9000");
    assert_eq!(
        sw(&mut card, "00 A4 02 0C 02 00 0A"),
        "6A82",
        "the ISD has no EF"
    );
}

#[test]
fn unknown_aids_classes_instructions_and_channels_are_refused() {
    let mut card = my_number("valid/adult").card();
    // What other OpenSC drivers probe for (PIV, OpenPGP, a truncated JPKI AID).
    assert_eq!(
        sw(&mut card, "00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"),
        "6A82"
    );
    assert_eq!(sw(&mut card, "00 A4 04 00 06 D2 76 00 01 24 01 00"), "6A82");
    assert_eq!(
        sw(&mut card, "00 A4 04 0C 09 D3 92 F0 00 26 01 00 00 00"),
        "6A82"
    );
    assert_eq!(sw(&mut card, "00 CA 00 66 00"), "6D00");
    assert_eq!(sw(&mut card, "00 2A 00 80 01 00 00"), "6D00");
    assert_eq!(
        sw(&mut card, "B0 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"),
        "6E00"
    );
    assert_eq!(
        sw(&mut card, "01 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"),
        "6881"
    );
    assert_eq!(
        sw(&mut card, "00 A4 04 0C 0B D3 92 F0 00 26 01 00 00 00 01"),
        "6700"
    );
    assert_eq!(sw(&mut card, "00 A4"), "6700");
    for aid in [
        "D3 92 10 00 31 00 01 01 04 08",
        "D3 92 10 00 31 00 01 01 04 02",
        "D3 92 10 00 31 00 01 01 01 00",
        "D3 92 10 00 31 00 01 01 04 01",
    ] {
        assert_eq!(
            sw(&mut card, &format!("00 A4 04 0C 0A {aid}")),
            "9000",
            "{aid}"
        );
    }
}

#[test]
fn certificates_token_info_and_map_read_as_opensc_reads_them() {
    let p = my_number("valid/adult");
    let mut card = p.card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    let auth = read_like_opensc(&mut card, "00 0A");
    assert_eq!(
        auth,
        std::fs::read(vectors().join("pki/jpki/auth.crt")).unwrap()
    );
    let auth_ca = read_like_opensc(&mut card, "00 0B");
    assert_eq!(
        auth_ca,
        std::fs::read(vectors().join("pki/jpki/auth-ca.crt")).unwrap()
    );
    let sign_ca = read_like_opensc(&mut card, "00 02");
    assert_eq!(
        sign_ca,
        std::fs::read(vectors().join("pki/jpki/sign-ca.crt")).unwrap()
    );
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 06"), "9000");
    let (token, status) = send(&mut card, "00 B0 00 00 00");
    assert_eq!(status, "9000");
    assert_eq!(token.len(), 160);
    assert_eq!(&token[..32], b"JPKIAPICCTOKEN2                 ");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 08"), "9000");
    assert_eq!(send(&mut card, "00 B0 00 00 00").0, h("8F 8F 00"));
    // Short at the end, 6B00 past it, the SFI form for the first 256 bytes.
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 0A"), "9000");
    let len = auth.len();
    let (tail, status) = send(&mut card, &format!("00 B0 {:04X} 00", len - 10));
    assert_eq!(
        (tail.as_slice(), status.as_str()),
        (&auth[len - 10..], "9000")
    );
    assert_eq!(sw(&mut card, &format!("00 B0 {len:04X} 01")), "6B00");
    assert_eq!(sw(&mut card, "00 B0 80 00 01"), "6A82", "no EF with SFI 0");
    let (first, status) = send(&mut card, "00 B0 8A 00 00");
    assert_eq!((first.as_slice(), status.as_str()), (&auth[..256], "9000"));
    assert_eq!(sw(&mut card, "00 B0 00 00 00 00 04"), "6700", "extended Le");
    assert_eq!(sw(&mut card, "00 B0 00 00"), "6700", "no Le");
}

#[test]
fn the_signature_certificate_needs_the_password() {
    let mut card = my_number("valid/adult").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 01"), "9000");
    assert_eq!(sw(&mut card, "00 B0 00 00 04"), "6982");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 1B"), "9000");
    let password = hex::encode(b"TESTPASS1");
    assert_eq!(sw(&mut card, &format!("00 20 00 80 09 {password}")), "9000");
    let sign = read_like_opensc(&mut card, "00 01");
    assert_eq!(
        sign,
        std::fs::read(vectors().join("pki/jpki/sign.crt")).unwrap()
    );
    // Selecting another AP and coming back clears it.
    assert_eq!(
        sw(&mut card, "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"),
        "9000"
    );
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 01"), "9000");
    assert_eq!(sw(&mut card, "00 B0 00 00 04"), "6982");
}

#[test]
fn verify_counts_down_blocks_and_never_answers_9000_to_an_empty_verify() {
    let mut card = my_number("valid/adult").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 18"), "9000");
    assert_eq!(sw(&mut card, "00 20 00 80"), "63C3");
    assert_eq!(sw(&mut card, "00 20 00 80 04 30 30 30 30"), "63C2");
    assert_eq!(
        sw(&mut card, "00 20 00 80"),
        "63C2",
        "a query spends no try"
    );
    assert_eq!(sw(&mut card, "00 20 00 80 04 31 32 33 34"), "9000");
    assert_eq!(
        sw(&mut card, "00 20 00 80"),
        "63C3",
        "success resets the counter"
    );
    assert_eq!(sw(&mut card, "00 20 00 80 04 30 30 30 30"), "63C2");
    assert_eq!(sw(&mut card, "00 20 00 80 04 30 30 30 30"), "63C1");
    assert_eq!(
        sw(&mut card, "00 20 00 80 04 30 30 30 30"),
        "63C0",
        "the exhausting try"
    );
    assert_eq!(
        sw(&mut card, "00 20 00 80 04 31 32 33 34"),
        "6984",
        "blocked: even the right PIN"
    );
    assert_eq!(sw(&mut card, "00 20 00 80"), "63C0");
    // The counter is non-volatile: a reset does not unblock.
    rclab_emulator::transport::vpcd::VirtualCard::reset(&mut card);
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(
        sw(&mut card, "00 20 00 98"),
        "63C0",
        "P2 80|SFI names the PIN"
    );
    // The password by SFI, without SELECT.
    assert_eq!(sw(&mut card, "00 20 00 9B"), "63C5");
    assert_eq!(sw(&mut card, "00 20 01 80"), "6A86");
    assert_eq!(sw(&mut card, "00 20 00 00"), "6A86");
}

#[test]
fn compute_digital_signature_is_pkcs1_v15_over_the_digest_info_after_the_pin() {
    let p = my_number("valid/adult");
    let mut card = p.card();
    let digest = Sha256::digest(b"a fresh challenge");
    let mut digest_info = h("30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20");
    digest_info.extend_from_slice(&digest);
    let sign_apdu = format!("80 2A 00 80 33 {} 00", hex::encode(&digest_info));
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 17"), "9000");
    assert_eq!(sw(&mut card, &sign_apdu), "6982", "no PIN yet");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 18"), "9000");
    assert_eq!(sw(&mut card, "00 20 00 80 04 31 32 33 34"), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 17"), "9000");
    let (signature, status) = send(&mut card, &sign_apdu);
    assert_eq!(status, "9000");
    assert_eq!(signature.len(), 256);
    let der = std::fs::read(vectors().join("pki/jpki/auth.crt")).unwrap();
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let public = rsa::PublicKey::try_from(
        x509_cert::spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap(),
    )
    .unwrap();
    assert_eq!(public.size(), 256);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .expect("the signature verifies with the certificate's key");
    // The signature key needs the password, not the PIN.
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 1A"), "9000");
    assert_eq!(sw(&mut card, &sign_apdu), "6982");
    // By SFI (P2 97 = auth key), P1 schemes, lengths.
    assert_eq!(
        send(
            &mut card,
            &sign_apdu.replacen("80 2A 00 80", "80 2A 00 97", 1)
        )
        .0,
        signature
    );
    assert_eq!(
        sw(
            &mut card,
            &sign_apdu.replacen("80 2A 00 80", "80 2A 07 97", 1)
        ),
        "6A86"
    );
    assert_eq!(sw(&mut card, "80 2A 00 97"), "6700");
    let bare = format!("80 2A 02 97 20 {} 00", hex::encode(digest));
    assert_eq!(
        send(&mut card, &bare).0,
        signature,
        "P1 02 wraps the hash in a DigestInfo"
    );
    // Re-selecting the same AP logs out (default knob), as OpenSC's logout expects.
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 17"), "9000");
    assert_eq!(sw(&mut card, &sign_apdu), "6982");
}

#[test]
fn an_under_15_card_has_no_signature_certificate() {
    let mut card = my_number("valid/under-15").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 08"), "9000");
    let (map, _) = send(&mut card, "00 B0 00 00 00");
    assert_ne!(map[0], 0x8F);
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 01"), "6A82");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 1B"), "9000");
    assert_eq!(
        sw(&mut card, "00 20 00 80"),
        "63C0",
        "never set: blocked, still SW1 63"
    );
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 18"), "9000");
    assert_eq!(sw(&mut card, "00 20 00 80"), "63C3");
}

/// The signature over `digest_info` with the authentication key after PIN `pin`.
fn auth_signature(card: &mut SimCard, pin: &str, digest_info: &[u8]) -> (Vec<u8>, String) {
    assert_eq!(sw(card, SELECT_JPKI), "9000");
    assert_eq!(sw(card, "00 A4 02 0C 02 00 18"), "9000");
    let verify = format!("00 20 00 80 {:02X} {}", pin.len(), hex::encode(pin));
    let status = sw(card, &verify);
    if status != "9000" {
        return (Vec::new(), status);
    }
    assert_eq!(sw(card, "00 A4 02 0C 02 00 17"), "9000");
    send(
        card,
        &format!(
            "80 2A 00 80 {:02X} {} 00",
            digest_info.len(),
            hex::encode(digest_info)
        ),
    )
}

fn public_key(der: &[u8]) -> rsa::PublicKey {
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    rsa::PublicKey::try_from(x509_cert::spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap())
        .unwrap()
}

fn sha256_digest_info(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let digest = Sha256::digest(data).to_vec();
    let mut info = h("30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20");
    info.extend_from_slice(&digest);
    (digest, info)
}

#[test]
fn the_forged_and_corrupted_cards_differ_from_the_adult_card_only_as_they_say() {
    let (digest, info) = sha256_digest_info(b"challenge");
    // Key mismatch: the genuine certificate, a signature that does not verify with it.
    let mut card = my_number("forged/key-mismatch").card();
    let (signature, status) = auth_signature(&mut card, "1234", &info);
    assert_eq!(status, "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 0A"), "9000");
    let cert = std::fs::read(vectors().join("pki/jpki/auth.crt")).unwrap();
    assert!(
        public_key(&cert)
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .is_err()
    );
    // Look-alike CA: its certificate and key agree; the root's name is the genuine one's.
    let mut card = my_number("forged/lookalike-ca").card();
    let (signature, _) = auth_signature(&mut card, "1234", &info);
    let cert = read_like_opensc(&mut card, "00 0A");
    public_key(&cert)
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
    assert_eq!(
        cert,
        std::fs::read(vectors().join("pki/jpki/lookalike-auth.crt")).unwrap()
    );
    // Select anything: foreign AIDs answer 90 00, yet the JPKI AP still works.
    let mut card = my_number("forged/select-anything").card();
    assert_eq!(
        sw(&mut card, "00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"),
        "9000"
    );
    assert_eq!(sw(&mut card, "00 A4 04 0C 07 A0 00 00 00 79 01 00"), "9000");
    let (_, status) = auth_signature(&mut card, "1234", &info);
    assert_eq!(status, "9000");
    // Blocked PIN: the query says 63 C0, the right PIN gets 69 84, nothing is signed.
    let mut card = my_number("corrupted/auth-pin-blocked").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 20 00 98"), "63C0");
    assert_eq!(auth_signature(&mut card, "1234", &info).1, "6984");
    // Expired and not-yet-valid: other certificates, each with its own key on the card.
    for (name, file) in [
        ("corrupted/expired", "auth-expired"),
        ("corrupted/not-yet-valid", "auth-not-yet-valid"),
    ] {
        let mut card = my_number(name).card();
        let (signature, status) = auth_signature(&mut card, "1234", &info);
        assert_eq!(status, "9000", "{name}");
        let cert = read_like_opensc(&mut card, "00 0A");
        assert_eq!(
            cert,
            std::fs::read(vectors().join(format!("pki/jpki/{file}.crt"))).unwrap()
        );
        public_key(&cert)
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .unwrap();
    }
}

/// Every My Number knob value of the table compiles over every valid My Number profile, and
/// the non-default values change what the card answers.
#[test]
fn every_my_number_knob_value_compiles_and_acts() {
    use rclab_emulator::card::knobs::KNOBS;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let valid = profile::load_dir(&vectors().join("profiles/my-number/valid")).unwrap();
    let mut compiled = 0;
    let with = |knob: &str, value: &str, base: &Profile| {
        let spec = KNOBS.iter().find(|k| k.path == knob).unwrap();
        let file = dir.join(format!("{}.yaml", knob.replace('.', "-")));
        std::fs::write(
            &file,
            spec.overlay(&base.path.display().to_string(), value)
                .unwrap(),
        )
        .unwrap();
        profile::load(&file).unwrap_or_else(|e| panic!("{knob} = {value}: {e}"))
    };
    for knob in KNOBS.iter().filter(|k| k.is_my_number()) {
        for base in &valid {
            for value in knob.values {
                assert_eq!(with(knob.path, value, base).kind(), base.kind());
                compiled += 1;
            }
        }
    }
    assert!(compiled >= 16, "{compiled}");
    let adult = &valid[0];
    // Re-selecting the JPKI AP keeps the PIN state.
    let mut card = with("platform.reselect_same_app", "keeps", adult).card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 20 00 98 04 31 32 33 34"), "9000");
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 17"), "9000");
    let (_, info) = sha256_digest_info(b"x");
    let sign = format!("80 2A 00 80 33 {} 00", hex::encode(&info));
    assert_eq!(sw(&mut card, &sign), "9000");
    // SELECT MF refused even with an AP selected.
    let mut card = with("platform.mf_select", "always_refused", adult).card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 00 00"), "6A86");
    // A blocked PIN answers 69 83.
    let mut card = with(
        "platform.blocked_pin_status",
        "authentication_method_blocked",
        adult,
    )
    .card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    for expected in ["63C2", "63C1", "63C0", "6983"] {
        assert_eq!(sw(&mut card, "00 20 00 98 04 30 30 30 30"), expected);
    }
    // The other ATR.
    let card = with(
        "reader.atr",
        "3B 88 80 01 00 00 00 00 00 81 81 00 09",
        adult,
    )
    .card();
    assert_eq!(
        card.reader().atr,
        h("3B 88 80 01 00 00 00 00 00 81 81 00 09")
    );
}

#[test]
fn my_number_profile_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let adult = vectors().join("profiles/my-number/valid/adult.yaml");
    let cases: &[(&str, &str, &str)] = &[
        (
            "jpki:\n  auth_pin: \"12345\"\n",
            "jpki.auth_pin",
            "exactly 4 digits",
        ),
        (
            "jpki:\n  sign_password: \"short\"\n",
            "jpki.sign_password",
            "6 to 16",
        ),
        (
            "jpki:\n  auth_pin_tries_left: 4\n",
            "jpki.auth_pin_tries_left",
            "at most 3",
        ),
        (
            "jpki:\n  token_label: \"ÅÅ\"\n",
            "jpki.token_label",
            "32 printable",
        ),
        (
            "jpki:\n  certificate_map: \"8F 8F\"\n",
            "jpki.certificate_map",
            "exactly 3 bytes",
        ),
        (
            "jpki:\n  auth_certificate: /etc/hostname\n",
            "jpki.auth_certificate",
            "30 82",
        ),
        (
            "jpki:\n  sign_certificate: null\n",
            "jpki.sign_key",
            "needs `jpki.sign_certificate`",
        ),
        ("jpki:\n  nonsense: 1\n", "jpki.nonsense", "unknown field"),
        (
            "card:\n  number: AB12345678CD\n",
            "card.number",
            "only a residence-card profile",
        ),
        (
            "knobs:\n  read_past_end: wrong_le\n",
            "knobs",
            "only a residence-card profile",
        ),
        (
            "platform:\n  reselect_same_app: sometimes\n",
            "platform.reselect_same_app",
            "unknown variant",
        ),
        (
            "faults:\n  - status: { on: read DF1/EF01, sw: \"6F 00\" }\n",
            "faults[0]",
            "names a residence-card DF or EF",
        ),
        (
            "faults:\n  - status: { on: select DF1, sw: \"6F 00\" }\n",
            "faults[0]",
            "never act",
        ),
        (
            "tamper:\n  files: [{ file: DF1/EF01, truncate: 1 }]\n",
            "tamper",
            "My Number profile forges",
        ),
        ("reader:\n  atr: \"00\"\n", "reader.atr", "2 to 33 bytes"),
    ];
    let not_a_key = format!(
        "jpki:\n  auth_key: {}\n",
        vectors().join("pki/test-ca2.key.pem").display()
    );
    let cases: Vec<(&str, &str, &str)> = cases
        .iter()
        .copied()
        .chain([(not_a_key.as_str(), "jpki.auth_key", "PKCS#8")])
        .collect();
    for (i, (overlay, field, message)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.yaml"));
        std::fs::write(&file, format!("extends: {}\n{overlay}", adult.display())).unwrap();
        let error = profile::load(&file).expect_err(overlay);
        let text = error.to_string();
        assert_eq!(error.field.as_deref(), Some(*field), "{overlay}: {text}");
        assert!(text.contains(message), "{overlay}: {text}");
    }
    // A residence profile may not carry the My Number sections.
    let gen2 = vectors().join("profiles/valid/gen2-residence.yaml");
    let file = dir.join("residence.yaml");
    std::fs::write(
        &file,
        format!("extends: {}\njpki:\n  auth_pin: \"1234\"\n", gen2.display()),
    )
    .unwrap();
    let error = profile::load(&file).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("jpki"), "{error}");
}

/// A command a reader might send: near-valid headers of the card's instructions, or bytes.
fn command() -> impl Strategy<Value = Vec<u8>> {
    let near = (
        0usize..4,
        0usize..5,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..12),
    )
        .prop_map(|(c, i, ins, p1, p2, data)| {
            let cla = [0x00, 0x80, 0x0C, 0x01][c];
            let ins = [0xA4, 0xB0, 0x20, 0x2A, ins][i];
            let mut apdu = vec![cla, ins, p1, p2];
            if !data.is_empty() {
                apdu.push(u8::try_from(data.len()).unwrap());
                apdu.extend(data);
            }
            apdu.push(0);
            apdu
        });
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..20),
        6 => near,
        1 => Just(h(SELECT_JPKI)),
        1 => Just(h("00 20 00 98 04 31 32 33 34")),
        1 => Just(h("00 A4 02 0C 02 00 0A")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Any sequence of APDUs gets a reply with a status word, and data only with 90 00;
    /// the card never panics.
    #[test]
    fn the_my_number_card_answers_every_sequence(
        steps in proptest::collection::vec(command(), 1..40)
    ) {
        let mut card = ADULT.card();
        for apdu in steps {
            let reply = Channel::transmit(&mut card, &apdu).unwrap();
            prop_assert!(reply.len() >= 2);
            let sw = &reply[reply.len() - 2..];
            prop_assert!(sw == [0x90, 0x00] || reply.len() == 2, "{:02X?}", reply);
        }
    }
}

static ADULT: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(|| my_number("valid/adult"));

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The JPKI TEST certificates have the real ones' shape (spec notes B2), and the SAN holds
/// the invented holder's name as UTF-8 (regression: openssl once stored it re-encoded as
/// Latin-1, 30 bytes of mojibake instead of 15).
#[test]
fn the_jpki_test_certificates_have_the_real_ones_shape() {
    let read = |name: &str| std::fs::read(vectors().join(format!("pki/jpki/{name}.crt"))).unwrap();
    let auth = read("auth");
    let sign = read("sign");
    for der in [&auth, &sign] {
        assert_eq!(&der[..2], [0x30, 0x82]);
        assert_eq!(public_key(der).size(), 256, "RSA-2048");
        let cert = x509_cert::Certificate::from_der(der).unwrap();
        assert_eq!(
            cert.signature_algorithm().oid.to_string(),
            "1.2.840.113549.1.1.11",
            "sha256WithRSAEncryption"
        );
    }
    // Policies: auth ...0.30, sign ...0.20; EKU clientAuth on auth only.
    assert!(contains(
        &auth,
        &h("06 0B 2A 83 08 8C 9B 55 08 05 01 00 1E")
    ));
    assert!(contains(
        &sign,
        &h("06 0B 2A 83 08 8C 9B 55 08 05 01 00 14")
    ));
    assert!(contains(&auth, &h("06 08 2B 06 01 05 05 07 03 02")));
    // SAN otherName 1.2.392.200149.8.5.5.1 = UTF8String "試験　花子" (15 bytes).
    let mut name = h("06 0A 2A 83 08 8C 9B 55 08 05 05 01 A0 11 0C 0F");
    name.extend_from_slice("試験　花子".as_bytes());
    assert!(
        contains(&sign, &name),
        "the holder's name is not UTF-8 in the SAN"
    );
    assert!(contains(&sign, "東京都千代田区試験町１－２－３".as_bytes()));
    // Issuers say TEST.
    assert!(contains(&auth, b"JPKI-TEST") && contains(&sign, b"JPKI-TEST"));
}

/// The fault layer wraps a My Number chip as it wraps a residence chip: faults with the
/// generic selectors act (`verify`, `select`, `read`, `any`, removal, delays).
#[test]
fn faults_act_on_a_my_number_card() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let adult = vectors().join("profiles/my-number/valid/adult.yaml");
    let with = |faults: &str| {
        let file = dir.join("faulty.yaml");
        std::fs::write(
            &file,
            format!("extends: {}\nfaults:\n{faults}", adult.display()),
        )
        .unwrap();
        profile::load(&file).unwrap_or_else(|e| panic!("{e}"))
    };
    let mut card = with("  - status: { on: verify, sw: \"6F 00\" }\n").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 20 00 98"), "6F00");
    let mut card = with("  - truncate: { on: read, keep: 3 }\n").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(sw(&mut card, "00 A4 02 0C 02 00 0A"), "9000");
    let reply = Channel::transmit(&mut card, &h("00 B0 00 00 04")).unwrap();
    assert_eq!(reply, h("30 82 03"));
    let mut card = with("  - remove_after: { apdus: 1 }\n").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert!(Channel::transmit(&mut card, &h("00 A4 02 0C 02 00 0A")).is_err());
    let mut card = with("  - delay: { on: any, ms: 10 }\n").card();
    assert_eq!(sw(&mut card, SELECT_JPKI), "9000");
    assert_eq!(card.simulated_time(), std::time::Duration::from_millis(10));
}
