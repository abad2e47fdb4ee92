//! Card-side replay of the official vectors: the emulated chip, given the vectors' card
//! number, RND.ICC and K.ICC, must answer the official reader commands byte for byte.
//!
//! Generation 2 replays SPEC2 Appendix 2 (all official). Generation 1 replays the SPEC1
//! example; its E.ICC/M.ICC were never published, so the card answer is checked against
//! the DERIVED values of `vectors/official-vectors.yaml` (not official).

use crate::common;

use common::{h, ha, send};
use rclab_emulator::card::{Card, Df};
use rclab_emulator::protocol::crypto::Key;
use rclab_emulator::protocol::{Generation, Status, sm};
use serde_yaml_ng::Value;

/// One hex value of the vectors file by its path (`section.key`).
fn vector(path: &str) -> Vec<u8> {
    let file = common::vectors_dir().join("official-vectors.yaml");
    let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut node = &doc;
    for key in path.split('.') {
        node = node
            .get(key)
            .unwrap_or_else(|| panic!("no `{path}` in the vectors"));
    }
    h(node.as_str().expect("hex string"))
}

const CARD_NUMBER: &str = "AA12345678BB";

/// The bundled profile with the vectors' card number and the chip randoms forced.
fn replay_card(profile: &str, rnd_icc: &str, k_icc: &[u8]) -> Card {
    let profile = common::valid_profile(profile);
    common::card_with(&profile, |image| {
        image.chip_card_number = CARD_NUMBER.to_owned();
        image.knobs.rnd_icc = Some(ha(rnd_icc));
        image.knobs.k_icc = Some(k_icc.try_into().unwrap());
    })
}

fn with_sw(data: &[u8], sw: [u8; 2]) -> Vec<u8> {
    [data, &sw].concat()
}

// ---------------------------------------------------------------------------------------
// Generation 2, SPEC2 Appendix 2
// ---------------------------------------------------------------------------------------

fn gen2_card() -> Card {
    let k_icc = vector("gen2_spec2_appendix2.k_icc");
    replay_card("gen2-residence", "921CE277323DA057", &k_icc)
}

/// GET CHALLENGE, official MUTUAL AUTHENTICATE and VERIFY, each checked byte for byte.
fn gen2_official_handshake(card: &mut Card) {
    assert_eq!(
        card.transmit(&common::GET_CHALLENGE),
        h("921CE277323DA057 9000")
    );
    let answer = card.transmit(&vector("gen2_spec2_appendix2.mutual_authenticate_command"));
    let expected = [
        vector("gen2_spec2_appendix2.e_icc"),
        vector("gen2_spec2_appendix2.m_icc"),
    ]
    .concat();
    assert_eq!(
        common::hex(&answer),
        common::hex(&with_sw(&expected, [0x90, 0]))
    );
    assert_eq!(
        card.transmit(&vector("gen2_spec2_appendix2.verify_command")),
        [0x90, 0x00]
    );
}

fn gen2_ks_enc() -> Key {
    vector("gen2_spec2_appendix2.ks_enc").try_into().unwrap()
}

#[test]
fn gen2_card_replays_appendix2_handshake() {
    gen2_official_handshake(&mut gen2_card());
}

#[test]
fn gen2_card_answers_official_sm_read_of_df1_ef03() {
    let mut card = gen2_card();
    gen2_official_handshake(&mut card);
    common::select(&mut card, Df::Df1);
    let reply = card.transmit(&vector("gen2_spec2_appendix2.sm_read_df1_ef03_command"));
    // 86 82 15 91 01 <5 520> 90 00: 5 508 bytes padded to 5 520, plus the indicator.
    assert_eq!(reply.len(), 5525 + 2);
    assert_eq!(reply[..5], [0x86, 0x82, 0x15, 0x91, 0x01]);
    assert_eq!(reply[reply.len() - 2..], [0x90, 0x00]);
    let plain = sm::open(
        Generation::Second,
        &gen2_ks_enc(),
        &reply[..reply.len() - 2],
    )
    .unwrap();
    let ef = common::ef(card.image(), Df::Df1, 0x04);
    assert_eq!(ef.content.len(), 5508);
    assert!(
        plain == ef.content,
        "decrypted DF1/EF03 differs from the EF"
    );
    // The plaintext layout of Appendix 2: D0 82 09 C4 <2 500> D1 82 0B B8 <3 000>.
    assert_eq!(plain[..4], [0xD0, 0x82, 0x09, 0xC4]);
    assert_eq!(plain[2504..2508], [0xD1, 0x82, 0x0B, 0xB8]);
}

#[test]
fn derived_gen2_card_sm_read_of_df1_ef01_matches_derived_response() {
    // DERIVED (not official) response for DF1/EF01 = C2 0C "AA12345678BB" under the
    // official KSenc. The bundled profile prints another number, so the EF is replaced.
    let profile = common::valid_profile("gen2-residence");
    let k_icc = vector("gen2_spec2_appendix2.k_icc");
    let mut card = common::card_with(&profile, |image| {
        image.chip_card_number = CARD_NUMBER.to_owned();
        image.knobs.rnd_icc = Some(ha("921CE277323DA057"));
        image.knobs.k_icc = Some(k_icc.as_slice().try_into().unwrap());
        let index = image.find_sfi(Df::Df1, 0x01).unwrap();
        image.files[index].content = [&[0xC2, 0x0C][..], CARD_NUMBER.as_bytes()].concat();
    });
    gen2_official_handshake(&mut card);
    common::select(&mut card, Df::Df1);
    let reply = card.transmit(&h("08B08100000004960200000000"));
    assert_eq!(
        common::hex(&reply),
        common::hex(&vector(
            "derived.gen2_sm_response_df1_ef01_under_appendix2_ks_enc.response"
        ))
    );
}

#[test]
fn gen2_card_plain_read_of_df3_has_appendix2_shape() {
    // Appendix 2: 00 B0 82 00 00 00 00 after SELECT DF3 → DC 60 <96> DD 82 02 5x … 90 00.
    let mut card = gen2_card();
    gen2_official_handshake(&mut card);
    common::select(&mut card, Df::Df3);
    let r = send(&mut card, &h("00B0820000 0000"));
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.data.len(), 704);
    assert_eq!(r.data[..2], [0xDC, 0x60]);
    assert_eq!(r.data[98..101], [0xDD, 0x82, 0x02]);
}

// ---------------------------------------------------------------------------------------
// Generation 1, SPEC1 example (card answer: DERIVED)
// ---------------------------------------------------------------------------------------

fn gen1_card() -> Card {
    replay_card(
        "gen1-residence",
        "5A6E7E385162B7A3",
        &h("19D049490FFF52EEDBFCB930BC810ED0"),
    )
}

/// GET CHALLENGE, the official E.IFD ‖ M.IFD (card must answer the DERIVED E.ICC ‖
/// M.ICC) and the official VERIFY.
fn gen1_official_handshake(card: &mut Card) {
    assert_eq!(
        card.transmit(&common::GET_CHALLENGE),
        h("5A6E7E385162B7A3 9000")
    );
    let command = common::mutual_authenticate_apdu(
        &[
            vector("gen1_spec1_example.e_ifd"),
            vector("gen1_spec1_example.m_ifd"),
        ]
        .concat(),
    );
    let answer = card.transmit(&command);
    let derived = [
        vector("derived.gen1_card_side_for_spec1_example.e_icc"),
        vector("derived.gen1_card_side_for_spec1_example.m_icc"),
    ]
    .concat();
    assert_eq!(
        common::hex(&answer),
        common::hex(&with_sw(&derived, [0x90, 0]))
    );
    assert_eq!(
        card.transmit(&vector("gen1_spec1_example.verify_command")),
        [0x90, 0x00]
    );
}

fn gen1_ks_enc() -> Key {
    vector("gen1_spec1_example.ks_enc").try_into().unwrap()
}

#[test]
fn gen1_card_replays_spec1_example_handshake_with_derived_card_answer() {
    gen1_official_handshake(&mut gen1_card());
}

#[test]
fn gen1_card_sm_read_of_front_image_opens_under_official_ks_enc() {
    let mut card = gen1_card();
    gen1_official_handshake(&mut card);
    common::select(&mut card, Df::Df1);
    let reply = card.transmit(&h("08B08500000004960200000000"));
    // 86 82 1B 61 01 <7 008> 90 00: 7 004 bytes padded to 7 008 (README §3.6).
    assert_eq!(reply.len(), 5 + 7008 + 2);
    assert_eq!(reply[..5], [0x86, 0x82, 0x1B, 0x61, 0x01]);
    assert_eq!(reply[reply.len() - 2..], [0x90, 0x00]);
    let plain = sm::open(Generation::First, &gen1_ks_enc(), &reply[..reply.len() - 2]).unwrap();
    let ef = common::ef(card.image(), Df::Df1, 0x05);
    assert!(
        plain == ef.content,
        "decrypted DF1/EF01 differs from the EF"
    );
    // Exact-length image (knobs.image_layout default): `D0 82 <len> <image>`, zero fill
    // after the TLV to the EF's 7 004 bytes.
    assert_eq!(plain.len(), 7004);
    assert_eq!(plain[..2], [0xD0, 0x82]);
    let len = usize::from(u16::from_be_bytes([plain[2], plain[3]]));
    assert!(len < 7000, "{len}");
    assert!(plain[4 + len..].iter().all(|&b| b == 0));
}

#[test]
fn derived_gen1_card_sm_read_matches_derived_response() {
    // DERIVED (not official): C2 0C "AA12345678BB" under the official generation-1 KSenc.
    // Generation 1 has no card-number EF, so the face EF of a copy carries that plaintext.
    let profile = common::valid_profile("gen1-residence");
    let mut card = common::card_with(&profile, |image| {
        image.chip_card_number = CARD_NUMBER.to_owned();
        image.knobs.rnd_icc = Some(ha("5A6E7E385162B7A3"));
        image.knobs.k_icc = Some(ha("19D049490FFF52EEDBFCB930BC810ED0"));
        let index = image.find_sfi(Df::Df1, 0x06).unwrap();
        image.files[index].content = [&[0xC2, 0x0C][..], CARD_NUMBER.as_bytes()].concat();
    });
    gen1_official_handshake(&mut card);
    common::select(&mut card, Df::Df1);
    let reply = card.transmit(&h("08B08600000004960200000000"));
    assert_eq!(
        common::hex(&reply),
        common::hex(&vector(
            "derived.gen1_sm_response_same_plaintext_under_spec1_ks_enc.response"
        ))
    );
}
