//! Known-answer tests: every value of `vectors/official-vectors.yaml` reproduced with the
//! protocol code the card and the checker share (`protocol::auth`, `protocol::sm`,
//! `protocol::crypto`, `protocol::CommandBuilder`).
//!
//! The YAML is parsed with `deny_unknown_fields`, so a value added to the file without a
//! test here fails `vectors_file_has_no_unchecked_values`.
//!
//! Official sources: SPEC2 Appendix 2 (generation 2) and the SPEC1 example (generation 1).
//! The `derived` section is NOT official: values computed from the official inputs by an
//! independent implementation; the tests for them are named `derived_…`.

use crate::common;

use std::sync::LazyLock;

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use rclab_emulator::protocol::crypto::{Key, card_number_key, pad, session_key};
use rclab_emulator::protocol::{CommandBuilder, Generation, auth, sm};
use serde::Deserialize;
use sha1::{Digest, Sha1};

/// A hex string of the vectors file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .map(Hex)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

impl Hex {
    fn array<const N: usize>(&self) -> [u8; N] {
        self.0.as_slice().try_into().expect("vector length")
    }
}

impl PartialEq<[u8]> for Hex {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    card_number_ascii: String,
    kenc_kmac: Hex,
    sha1_card_number: Hex,
    gen2_spec2_appendix2: Gen2,
    gen1_spec1_example: Gen1,
    derived: Derived,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gen2 {
    rnd_ifd: Hex,
    k_ifd: Hex,
    rnd_icc: Hex,
    e_ifd: Hex,
    m_ifd: Hex,
    mutual_authenticate_command: Hex,
    e_icc: Hex,
    m_icc: Hex,
    e_icc_decrypted: Hex,
    k_icc: Hex,
    k_ifd_xor_k_icc: Hex,
    sha1_of_xor_00000001: Hex,
    ks_enc: Hex,
    verify_ciphertext: Hex,
    verify_command: Hex,
    sm_read_df1_ef03_command: Hex,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gen1 {
    rnd_ifd: Hex,
    k_ifd: Hex,
    rnd_icc: Hex,
    e_ifd: Hex,
    m_ifd: Hex,
    k_icc: Hex,
    k_ifd_xor_k_icc: Hex,
    ks_enc: Hex,
    verify_ciphertext: Hex,
    verify_command: Hex,
}

/// NOT official (see the module documentation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Derived {
    gen1_card_side_for_spec1_example: DerivedGen1CardSide,
    gen2_sm_response_df1_ef01_under_appendix2_ks_enc: DerivedResponse,
    gen1_sm_response_same_plaintext_under_spec1_ks_enc: DerivedResponse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivedGen1CardSide {
    e_icc: Hex,
    m_icc: Hex,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivedResponse {
    response: Hex,
}

static V: LazyLock<Vectors> = LazyLock::new(|| {
    let path = common::vectors_dir().join("official-vectors.yaml");
    let text = std::fs::read_to_string(&path).expect("official-vectors.yaml");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
});

/// The card number key `Kenc = Kmac` of the vectors.
fn k() -> Key {
    card_number_key(V.card_number_ascii.as_bytes())
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// `E ‖ M` of two vector halves.
fn joined(e: &Hex, m: &Hex) -> Vec<u8> {
    [e.0.as_slice(), m.0.as_slice()].concat()
}

// ---------------------------------------------------------------------------------------
// The vectors file itself
// ---------------------------------------------------------------------------------------

#[test]
fn vectors_file_has_no_unchecked_values() {
    // Parsing with `deny_unknown_fields` is the check; touch the card number too.
    assert_eq!(V.card_number_ascii, "AA12345678BB");
}

// ---------------------------------------------------------------------------------------
// Card-number key (both generations)
// ---------------------------------------------------------------------------------------

#[test]
fn card_number_sha1_matches() {
    assert_eq!(V.sha1_card_number, *sha1(&[V.card_number_ascii.as_bytes()]));
}

#[test]
fn card_number_key_is_first_16_bytes_of_sha1() {
    assert_eq!(V.kenc_kmac, k()[..]);
    assert_eq!(V.kenc_kmac.0, V.sha1_card_number.0[..16]);
}

// ---------------------------------------------------------------------------------------
// Generation 2, SPEC2 Appendix 2 (official)
// ---------------------------------------------------------------------------------------

fn gen2_reader_cryptogram() -> [u8; 40] {
    let g = &V.gen2_spec2_appendix2;
    auth::cryptogram(
        Generation::Second,
        &k(),
        &g.rnd_ifd.array(),
        &g.rnd_icc.array(),
        &g.k_ifd.array(),
    )
}

#[test]
fn gen2_e_ifd() {
    assert_eq!(V.gen2_spec2_appendix2.e_ifd, gen2_reader_cryptogram()[..32]);
}

#[test]
fn gen2_m_ifd_is_truncated_cmac_of_e_ifd() {
    let g = &V.gen2_spec2_appendix2;
    assert_eq!(g.m_ifd, gen2_reader_cryptogram()[32..]);
    assert_eq!(g.m_ifd, Generation::Second.mac(&k(), &g.e_ifd.0)[..]);
}

#[test]
fn gen2_mutual_authenticate_command_bytes() {
    let apdu = CommandBuilder::new(0x00, 0x82, 0x00, 0x00)
        .data(gen2_reader_cryptogram())
        .ne(256)
        .to_bytes();
    assert_eq!(V.gen2_spec2_appendix2.mutual_authenticate_command, *apdu);
}

#[test]
fn gen2_m_icc_is_truncated_cmac_of_e_icc() {
    let g = &V.gen2_spec2_appendix2;
    assert_eq!(g.m_icc, Generation::Second.mac(&k(), &g.e_icc.0)[..]);
}

#[test]
fn gen2_e_icc_decrypts_to_rnd_icc_rnd_ifd_k_icc() {
    let g = &V.gen2_spec2_appendix2;
    let plain = Generation::Second.decrypt(&k(), &g.e_icc.0).unwrap();
    assert_eq!(g.e_icc_decrypted, *plain);
    assert_eq!(g.rnd_icc, plain[..8]);
    assert_eq!(g.rnd_ifd, plain[8..16]);
    assert_eq!(g.k_icc, plain[16..]);
}

#[test]
fn gen2_card_side_cryptogram_is_e_icc_m_icc() {
    // Card direction: re-encrypting RND.ICC ‖ RND.IFD ‖ K.ICC gives the official E.ICC.
    let g = &V.gen2_spec2_appendix2;
    let answer = auth::cryptogram(
        Generation::Second,
        &k(),
        &g.rnd_icc.array(),
        &g.rnd_ifd.array(),
        &g.k_icc.array(),
    );
    assert_eq!(answer[..], joined(&g.e_icc, &g.m_icc));
}

#[test]
fn gen2_card_response_answers_official_command_with_e_icc_m_icc_and_ks_enc() {
    let g = &V.gen2_spec2_appendix2;
    let (answer, ks) = auth::card_response(
        Generation::Second,
        &k(),
        &g.rnd_icc.array(),
        &joined(&g.e_ifd, &g.m_ifd),
        &g.k_icc.array(),
    )
    .expect("official E.IFD ‖ M.IFD is accepted");
    assert_eq!(answer[..], joined(&g.e_icc, &g.m_icc));
    assert_eq!(g.ks_enc, ks[..]);
}

#[test]
fn gen2_reader_finish_accepts_e_icc_m_icc_and_derives_ks_enc() {
    let g = &V.gen2_spec2_appendix2;
    let ks = auth::reader_finish(
        Generation::Second,
        &k(),
        &g.rnd_ifd.array(),
        &g.rnd_icc.array(),
        &g.k_ifd.array(),
        &joined(&g.e_icc, &g.m_icc),
    )
    .expect("official E.ICC ‖ M.ICC verifies");
    assert_eq!(g.ks_enc, ks[..]);
}

#[test]
fn gen2_k_ifd_xor_k_icc() {
    let g = &V.gen2_spec2_appendix2;
    assert_eq!(g.k_ifd_xor_k_icc, *xor(&g.k_ifd.0, &g.k_icc.0));
}

#[test]
fn gen2_sha1_of_xor_and_counter_1() {
    let g = &V.gen2_spec2_appendix2;
    assert_eq!(
        g.sha1_of_xor_00000001,
        *sha1(&[&g.k_ifd_xor_k_icc.0, &[0, 0, 0, 1]])
    );
}

#[test]
fn gen2_ks_enc() {
    let g = &V.gen2_spec2_appendix2;
    let ks = session_key(&g.k_ifd.array(), &g.k_icc.array());
    assert_eq!(g.ks_enc, ks[..]);
    assert_eq!(g.ks_enc.0, g.sha1_of_xor_00000001.0[..16]);
}

#[test]
fn gen2_verify_ciphertext() {
    let g = &V.gen2_spec2_appendix2;
    let number = V.card_number_ascii.as_bytes();
    let ct = Generation::Second.encrypt_padded(&g.ks_enc.array(), number);
    assert_eq!(g.verify_ciphertext, *ct);
    // The padded plaintext is the card number ‖ 80 00 00 00 (spec §3.4).
    assert_eq!(pad(number, 16), [number, &[0x80, 0, 0, 0]].concat());
}

#[test]
fn gen2_verify_command_bytes() {
    let g = &V.gen2_spec2_appendix2;
    let data = sm::seal(
        Generation::Second,
        &g.ks_enc.array(),
        V.card_number_ascii.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        data,
        [&[0x86, 0x11, 0x01][..], &g.verify_ciphertext.0].concat()
    );
    let apdu = CommandBuilder::new(0x08, 0x20, 0x00, 0x86)
        .data(data)
        .to_bytes();
    assert_eq!(g.verify_command, *apdu);
}

#[test]
fn gen2_verify_command_opens_to_card_number() {
    let g = &V.gen2_spec2_appendix2;
    let plain = sm::open(
        Generation::Second,
        &g.ks_enc.array(),
        &g.verify_command.0[5..],
    )
    .unwrap();
    assert_eq!(plain, V.card_number_ascii.as_bytes());
}

#[test]
fn gen2_sm_read_df1_ef03_command_bytes() {
    let apdu = CommandBuilder::new(0x08, 0xB0, 0x84, 0x00)
        .data(sm::expected_length(0))
        .ne(65_536)
        .to_bytes();
    assert_eq!(V.gen2_spec2_appendix2.sm_read_df1_ef03_command, *apdu);
    assert_eq!(sm::parse_expected_length(&apdu[7..11]), Some(0));
}

// ---------------------------------------------------------------------------------------
// Generation 1, SPEC1 example (official)
// ---------------------------------------------------------------------------------------

fn gen1_reader_cryptogram() -> [u8; 40] {
    let g = &V.gen1_spec1_example;
    auth::cryptogram(
        Generation::First,
        &k(),
        &g.rnd_ifd.array(),
        &g.rnd_icc.array(),
        &g.k_ifd.array(),
    )
}

#[test]
fn gen1_e_ifd() {
    assert_eq!(V.gen1_spec1_example.e_ifd, gen1_reader_cryptogram()[..32]);
}

#[test]
fn gen1_e_ifd_decrypts_to_rnd_ifd_rnd_icc_k_ifd() {
    let g = &V.gen1_spec1_example;
    let plain = Generation::First.decrypt(&k(), &g.e_ifd.0).unwrap();
    assert_eq!(plain, [&g.rnd_ifd.0[..], &g.rnd_icc.0, &g.k_ifd.0].concat());
}

#[test]
fn gen1_m_ifd_is_retail_mac_with_padding_always_applied() {
    let g = &V.gen1_spec1_example;
    assert_eq!(g.m_ifd, gen1_reader_cryptogram()[32..]);
    assert_eq!(g.m_ifd, Generation::First.mac(&k(), &g.e_ifd.0)[..]);
}

/// The MAC a reader gets when it skips the padding block for the 32-byte E.IFD
/// (README §5.2: `4CAC73206731BB73`, wrong).
const GEN1_M_IFD_WITHOUT_PADDING_BLOCK: &str = "4CAC73206731BB73";

#[test]
fn gen1_m_ifd_differs_from_the_mac_without_padding_block() {
    let g = &V.gen1_spec1_example;
    let ours = Generation::First.mac(&k(), &g.e_ifd.0);
    assert_ne!(ours[..], common::h(GEN1_M_IFD_WITHOUT_PADDING_BLOCK));
}

#[test]
fn gen1_mac_without_padding_block_is_the_wrong_value_the_readme_names() {
    // Independent composition of ISO 9797-1 MAC algorithm 3 *without* the extra padding
    // block (E.IFD is already block aligned), from raw DES: it gives exactly the wrong
    // value, which confirms the padding block is what makes the official M.IFD match.
    let g = &V.gen1_spec1_example;
    let key = k();
    let chained = cbc::Encryptor::<des::Des>::new((&key[..8]).try_into().unwrap(), &[0; 8].into())
        .encrypt_padded_vec::<NoPadding>(&g.e_ifd.0);
    let mut block: des::cipher::Block<des::Des> = [0; 8].into();
    block.copy_from_slice(&chained[24..]);
    des::Des::new((&key[8..]).try_into().unwrap()).decrypt_block(&mut block);
    des::Des::new((&key[..8]).try_into().unwrap()).encrypt_block(&mut block);
    assert_eq!(block[..], common::h(GEN1_M_IFD_WITHOUT_PADDING_BLOCK));
}

#[test]
fn gen1_k_ifd_xor_k_icc() {
    let g = &V.gen1_spec1_example;
    assert_eq!(g.k_ifd_xor_k_icc, *xor(&g.k_ifd.0, &g.k_icc.0));
}

#[test]
fn gen1_ks_enc() {
    let g = &V.gen1_spec1_example;
    let ks = session_key(&g.k_ifd.array(), &g.k_icc.array());
    assert_eq!(g.ks_enc, ks[..]);
    assert_eq!(
        g.ks_enc.0,
        sha1(&[&g.k_ifd_xor_k_icc.0, &[0, 0, 0, 1]])[..16]
    );
}

#[test]
fn gen1_verify_ciphertext() {
    let g = &V.gen1_spec1_example;
    let ct = Generation::First.encrypt_padded(&g.ks_enc.array(), V.card_number_ascii.as_bytes());
    assert_eq!(g.verify_ciphertext, *ct);
}

#[test]
fn gen1_verify_ciphertext_ignores_des_parity() {
    // README §4.5: the parity-adjusted KSenc gives the identical ciphertext.
    let adjusted: Key = common::ha("CE94928F19E3B97CF86EABCEDC1615CD");
    let ct = Generation::First.encrypt_padded(&adjusted, V.card_number_ascii.as_bytes());
    assert_eq!(V.gen1_spec1_example.verify_ciphertext, *ct);
}

#[test]
fn gen1_verify_command_bytes() {
    let g = &V.gen1_spec1_example;
    let apdu = CommandBuilder::new(0x08, 0x20, 0x00, 0x86)
        .data(
            sm::seal(
                Generation::First,
                &g.ks_enc.array(),
                V.card_number_ascii.as_bytes(),
            )
            .unwrap(),
        )
        .to_bytes();
    assert_eq!(g.verify_command, *apdu);
    let plain = sm::open(Generation::First, &g.ks_enc.array(), &apdu[5..]).unwrap();
    assert_eq!(plain, V.card_number_ascii.as_bytes());
}

// ---------------------------------------------------------------------------------------
// DERIVED values (NOT official): computed from the official inputs elsewhere
// ---------------------------------------------------------------------------------------

#[test]
fn derived_gen1_card_side_e_icc_m_icc() {
    let g = &V.gen1_spec1_example;
    let d = &V.derived.gen1_card_side_for_spec1_example;
    let answer = auth::cryptogram(
        Generation::First,
        &k(),
        &g.rnd_icc.array(),
        &g.rnd_ifd.array(),
        &g.k_icc.array(),
    );
    assert_eq!(answer[..], joined(&d.e_icc, &d.m_icc));
    assert_eq!(d.m_icc, Generation::First.mac(&k(), &d.e_icc.0)[..]);
}

#[test]
fn derived_gen1_card_response_to_official_e_ifd_m_ifd() {
    // The card side accepts the official reader cryptogram, answers the DERIVED E.ICC ‖
    // M.ICC, and lands on the OFFICIAL KSenc; the reader side accepts that answer.
    let g = &V.gen1_spec1_example;
    let d = &V.derived.gen1_card_side_for_spec1_example;
    let (answer, ks) = auth::card_response(
        Generation::First,
        &k(),
        &g.rnd_icc.array(),
        &joined(&g.e_ifd, &g.m_ifd),
        &g.k_icc.array(),
    )
    .expect("official E.IFD ‖ M.IFD is accepted");
    assert_eq!(answer[..], joined(&d.e_icc, &d.m_icc));
    assert_eq!(g.ks_enc, ks[..]);
    let reader_ks = auth::reader_finish(
        Generation::First,
        &k(),
        &g.rnd_ifd.array(),
        &g.rnd_icc.array(),
        &g.k_ifd.array(),
        &answer,
    )
    .unwrap();
    assert_eq!(g.ks_enc, reader_ks[..]);
}

/// `C2 0C "AA12345678BB"`: DF1/EF01 content of a generation-2 card with the vector number.
fn card_number_ef() -> Vec<u8> {
    [&[0xC2, 0x0C][..], V.card_number_ascii.as_bytes()].concat()
}

#[test]
fn derived_gen2_sm_response_df1_ef01() {
    let ks = V.gen2_spec2_appendix2.ks_enc.array();
    let mut response = sm::seal(Generation::Second, &ks, &card_number_ef()).unwrap();
    response.extend_from_slice(&[0x90, 0x00]);
    let d = &V.derived.gen2_sm_response_df1_ef01_under_appendix2_ks_enc;
    assert_eq!(d.response, *response);
    let data = &d.response.0[..d.response.0.len() - 2];
    assert_eq!(
        sm::open(Generation::Second, &ks, data).unwrap(),
        card_number_ef()
    );
}

#[test]
fn derived_gen1_sm_response_same_plaintext() {
    let ks = V.gen1_spec1_example.ks_enc.array();
    let mut response = sm::seal(Generation::First, &ks, &card_number_ef()).unwrap();
    response.extend_from_slice(&[0x90, 0x00]);
    let d = &V.derived.gen1_sm_response_same_plaintext_under_spec1_ks_enc;
    assert_eq!(d.response, *response);
}
