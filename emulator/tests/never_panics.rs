//! Robustness: random APDUs and random command sequences against every valid profile.
//!
//! (a) 100 000 single APDUs (40 000 uniform byte strings + 60 000 from a generator biased
//!     towards the card's classes, instructions and length encodings), each sent to every
//!     profile's card both fresh from reset and inside a verified session: no panic, every
//!     reply has a status word the card is known to use, and no data with an error; the
//!     typed parser (`protocol::command`) does not panic, its refusals are the card's
//!     answers, and the commands it accepts are never refused for class, INS or P1/P2.
//! (b) random sequences of 1..40 commands (valid ones mixed with garbage) from reset and
//!     from a verified session, checked step by step against a small reference model of the
//!     session state (exact replies while the model knows the state); afterwards a reset and
//!     the genuine flow (authenticate, VERIFY, read every EF) still returns the image content.
//!
//! Seeds and replay: every test runs proptest with a fixed seed ([`BASE_SEED`] mixed with a
//! per-test salt), so a plain rerun generates the same cases. Set `RCLAB_PROPTEST_SEED=<u64>`
//! to explore another stream. A failing case is also persisted by proptest in
//! `tests/never_panics.proptest-regressions` and replayed first on every later run (commit
//! that file to keep the case). Run one test with
//! `cargo test -p rclab-emulator --test never_panics <test name>`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::sync::{Arc, LazyLock};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rclab_emulator::card::{Access, Card, CardImage, Df};
use rclab_emulator::profile::Profile;
use rclab_emulator::protocol::command::{Command, Instruction};
use rclab_emulator::protocol::crypto::Key;
use rclab_emulator::protocol::{AID_DF1, AID_DF2, AID_DF3, Response, Status, sm};

/// Default seed of every proptest run in this file.
const BASE_SEED: u64 = 0x00C0_FFEE_2026_0001;

fn seed(salt: u64) -> u64 {
    let base = std::env::var("RCLAB_PROPTEST_SEED")
        .ok()
        .map(|s| s.parse().expect("RCLAB_PROPTEST_SEED must be a u64"))
        .unwrap_or(BASE_SEED);
    base ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn config(cases: u32, salt: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed(salt)),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_iters: 4_096,
        ..ProptestConfig::default()
    }
}

static PROFILES: LazyLock<Vec<Profile>> = LazyLock::new(common::valid_profiles);

/// Seed of the reader randoms of the verified sessions the tests start from.
const SESSION_SEED: u64 = 77;

// ---------------------------------------------------------------------------------------
// (a) single APDUs
// ---------------------------------------------------------------------------------------

/// How Lc/Le are written after the header.
#[derive(Clone, Debug)]
enum Body {
    Empty,
    ShortLe(u8),
    /// Consistent short Lc (data cut to 255 bytes) and optional short Le.
    Short(Vec<u8>, Option<u8>),
    ExtendedLe(u16),
    /// Consistent extended Lc and optional extended Le.
    Extended(Vec<u8>, Option<u16>),
    /// A short Lc that need not match the data, then arbitrary trailing bytes.
    LyingShort(u8, Vec<u8>, Vec<u8>),
    /// An extended Lc that need not match the data, then arbitrary trailing bytes.
    LyingExtended(u16, Vec<u8>, Vec<u8>),
}

fn encode(header: [u8; 4], body: Body) -> Vec<u8> {
    let mut out = header.to_vec();
    match body {
        Body::Empty => {}
        Body::ShortLe(le) => out.push(le),
        Body::Short(mut data, le) => {
            data.truncate(255);
            if !data.is_empty() {
                out.push(data.len() as u8);
                out.extend(data);
            }
            out.extend(le);
        }
        Body::ExtendedLe(le) => {
            out.push(0);
            out.extend(le.to_be_bytes());
        }
        Body::Extended(data, le) => {
            out.push(0);
            out.extend((data.len() as u16).to_be_bytes());
            out.extend(data);
            out.extend(le.into_iter().flat_map(u16::to_be_bytes));
        }
        Body::LyingShort(lc, data, tail) => {
            out.push(lc);
            out.extend(data);
            out.extend(tail);
        }
        Body::LyingExtended(lc, data, tail) => {
            out.push(0);
            out.extend(lc.to_be_bytes());
            out.extend(data);
            out.extend(tail);
        }
    }
    out
}

/// Command data a reader or an attacker would plausibly send.
fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..300),
        2 => any::<u16>().prop_map(|n| sm::expected_length(n).to_vec()),
        1 => Just(sm::expected_length(0).to_vec()),
        1 => vec(any::<u8>(), 0..4).prop_map(|v| [&[0x96][..], &v].concat()),
        2 => vec(any::<u8>(), 16).prop_map(|ct| [&[0x86, 0x11, 0x01][..], &ct].concat()),
        1 => vec(any::<u8>(), 0..40).prop_map(|ct| [&[0x86, ct.len() as u8][..], &ct].concat()),
        2 => prop::sample::select(vec![
            AID_DF1.to_vec(),
            AID_DF2.to_vec(),
            AID_DF3.to_vec(),
            vec![0x3F, 0x00],
        ]),
        2 => vec(any::<u8>(), 40),
    ]
}

fn body_strategy() -> impl Strategy<Value = Body> {
    let le8 = prop_oneof![Just(0u8), Just(8), any::<u8>()];
    let le16 = prop_oneof![Just(0u16), Just(256), any::<u16>()];
    prop_oneof![
        1 => Just(Body::Empty),
        2 => le8.clone().prop_map(Body::ShortLe),
        3 => (data_strategy(), prop::option::of(le8)).prop_map(|(d, le)| Body::Short(d, le)),
        2 => le16.clone().prop_map(Body::ExtendedLe),
        3 => (data_strategy(), prop::option::of(le16)).prop_map(|(d, le)| Body::Extended(d, le)),
        1 => (any::<u8>(), data_strategy(), vec(any::<u8>(), 0..3))
            .prop_map(|(lc, d, t)| Body::LyingShort(lc, d, t)),
        1 => (any::<u16>(), data_strategy(), vec(any::<u8>(), 0..3))
            .prop_map(|(lc, d, t)| Body::LyingExtended(lc, d, t)),
    ]
}

/// CLA from {00, 08, 0C, 80, FF}, INS from the card's set, P1/P2 near the values the card
/// parses, and consistent or inconsistent Lc/Le; each with some fully random values.
fn field_apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![
        5 => Just(0x00u8),
        4 => Just(0x08u8),
        1 => prop::sample::select(vec![0x0Cu8, 0x80, 0xFF]),
        1 => any::<u8>(),
    ];
    let ins = prop_oneof![
        8 => prop::sample::select(vec![0xA4u8, 0x84, 0x82, 0x20, 0xB0]),
        2 => any::<u8>(),
    ];
    let p1 = prop_oneof![
        3 => prop::sample::select(vec![
            0x00u8, 0x02, 0x04, 0x0C, 0x01, 0x05, 0x1B, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85,
            0x86, 0x8A, 0x8B, 0x9F, 0xA1, 0xC1,
        ]),
        1 => any::<u8>(),
    ];
    let p2 = prop_oneof![
        3 => prop::sample::select(vec![0x00u8, 0x0C, 0x86, 0x01, 0x02, 0x03, 0x04, 0xFF]),
        1 => any::<u8>(),
    ];
    (cla, ins, p1, p2, body_strategy())
        .prop_map(|(cla, ins, p1, p2, body)| encode([cla, ins, p1, p2], body))
}

/// One change to a well-formed command.
#[derive(Clone, Debug)]
enum Mutation {
    Keep,
    Set(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(Vec<u8>),
}

/// The commands a genuine reader sends (random where a reader's secrets would be), then
/// possibly one byte set, one removed, a cut or a few bytes appended: reaches the deep
/// paths (SM reads, offsets, VERIFY) that random headers rarely do.
fn mutated_command() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<Vec<u8>> = [
        "00A4040C10D392F0004F020000000000000000000000",
        "00A4040C10D392F0004F030000000000000000000000",
        "00A4040C10D392F0004F040000000000000000000000",
        "00A4000C023F00",
        "0084000008",
        "00B08A0000",
        "00B08B0003",
        "00B0810000",
        "00B0820000",
        "00B0820000000000",
        "00B0010000",
        "00B0000310",
        "08B08100000004960200000000",
        "08B08300000004960200000000",
        "08B08400000004960200000000",
        "08B08500000004960200000000",
        "08B08600000004960206400000",
        "08B00640000004960206400000",
        "08B08100000004960200100000",
        "08B0810004960200000000",
    ]
    .iter()
    .map(|t| common::h(t))
    .collect();
    let command = prop_oneof![
        3 => prop::sample::select(fixed),
        1 => vec(any::<u8>(), 16)
            .prop_map(|ct| [&common::h("0820008613861101")[..], &ct].concat()),
        1 => vec(any::<u8>(), 40).prop_map(|c| common::mutual_authenticate_apdu(&c)),
    ];
    let mutation = prop_oneof![
        2 => Just(Mutation::Keep),
        3 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 1..4).prop_map(Mutation::Append),
    ];
    (command, mutation).prop_map(|(mut apdu, mutation)| {
        match mutation {
            Mutation::Keep => {}
            Mutation::Set(i, b) => {
                let i = i.index(apdu.len());
                apdu[i] = b;
            }
            Mutation::Remove(i) => {
                apdu.remove(i.index(apdu.len()));
            }
            Mutation::Truncate(i) => apdu.truncate(i.index(apdu.len())),
            Mutation::Append(tail) => apdu.extend(tail),
        }
        apdu
    })
}

fn biased_apdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![2 => field_apdu(), 1 => mutated_command()]
}

fn df_strategy() -> impl Strategy<Value = Df> {
    prop::sample::select(vec![Df::Mf, Df::Df1, Df::Df2, Df::Df3])
}

/// Sends `apdu` to every profile's card, fresh from reset and inside a verified session
/// with `df` selected; checks every reply, and that the typed parser (which must not panic
/// either) decides exactly the answers it claims: a refusal is the card's answer in every
/// state, and a parsed command is never refused for its class, instruction or P1/P2.
fn every_card_answers_with_a_status_word(apdu: &[u8], df: Df) {
    let parsed = Command::parse(apdu);
    if let Ok(command) = &parsed {
        assert_eq!(command.instruction(), Instruction::of(apdu[1]));
    }
    for profile in PROFILES.iter() {
        let fresh = profile.chip();
        let mut verified = profile.chip();
        common::open_session(&mut verified, SESSION_SEED);
        common::select(&mut verified, df);
        for mut card in [fresh, verified] {
            let reply = card.transmit(apdu);
            assert!(
                reply.len() >= 2,
                "{}: reply shorter than 2 bytes",
                profile.name
            );
            let response = common::check_reply(apdu, &reply);
            match parsed {
                Err(refusal) => assert_eq!(
                    reply,
                    refusal.to_bytes(),
                    "{}: parsed as refused with {refusal}",
                    common::hex(apdu)
                ),
                Ok(Command::GetResponse { .. }) => {
                    assert_eq!(response.status, Status::InstructionNotSupported)
                }
                Ok(command) => assert!(
                    !matches!(
                        response.status,
                        Status::ClassNotSupported
                            | Status::InstructionNotSupported
                            | Status::SecureMessagingNotSupported
                            | Status::IncorrectP1P2
                    ),
                    "{}: {command:?} answered {}",
                    common::hex(apdu),
                    response.status
                ),
            }
        }
    }
}

proptest! {
    #![proptest_config(config(40_000, 1))]
    #[test]
    fn random_byte_strings_always_get_a_status_word(
        apdu in vec(any::<u8>(), 0..300),
        df in df_strategy(),
    ) {
        every_card_answers_with_a_status_word(&apdu, df);
    }
}

proptest! {
    #![proptest_config(config(60_000, 2))]
    #[test]
    fn biased_apdus_always_get_a_status_word(apdu in biased_apdu(), df in df_strategy()) {
        every_card_answers_with_a_status_word(&apdu, df);
    }
}

// ---------------------------------------------------------------------------------------
// (b) command sequences, checked against a reference model
// ---------------------------------------------------------------------------------------

/// Le of a plain READ BINARY.
#[derive(Clone, Copy, Debug)]
enum Le {
    Short(u8),
    Extended(u16),
}

impl Le {
    fn bytes(self) -> Vec<u8> {
        match self {
            Le::Short(le) => vec![le],
            Le::Extended(le) => [&[0][..], &le.to_be_bytes()].concat(),
        }
    }

    /// Ne and whether it means "everything available".
    fn ne(self) -> (usize, bool) {
        match self {
            Le::Short(0) => (256, true),
            Le::Short(n) => (usize::from(n), false),
            Le::Extended(0) => (65_536, true),
            Le::Extended(n) => (usize::from(n), false),
        }
    }
}

/// Where a READ BINARY points: an SFI (P1 = 80 | SFI, P2 = offset) or an offset in the
/// current EF (P1 b8 = 0).
#[derive(Clone, Copy, Debug)]
enum Target {
    Sfi(u8, u8),
    Offset(u16),
}

impl Target {
    fn p1p2(self) -> [u8; 2] {
        match self {
            Target::Sfi(sfi, p2) => [0x80 | sfi, p2],
            Target::Offset(offset) => (offset & 0x7FFF).to_be_bytes(),
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// SELECT DF1/DF2/DF3 by AID.
    SelectDf(u8),
    /// SELECT MF, one of the accepted forms.
    SelectMf(u8),
    /// SELECT by a random 16-byte name.
    SelectName([u8; 16]),
    GetChallenge,
    /// MUTUAL AUTHENTICATE with 40 random bytes.
    BadMutualAuthenticate(Vec<u8>),
    /// The genuine GET CHALLENGE + MUTUAL AUTHENTICATE + VERIFY, reader randoms from the seed.
    Authenticate(u64),
    /// VERIFY with the reader's current session key (or zeros): right or wrong number.
    Verify(bool),
    /// VERIFY with random SM data.
    VerifyGarbage(Vec<u8>),
    ReadPlain(Target, Le),
    /// `08 B0 P1 P2 00 00 04 96 02 Lh Ll 00 00`.
    ReadSm(Target, u16),
    Reset,
    Garbage(Vec<u8>),
}

fn sfi_strategy() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x0B]),
        1 => 0u8..32,
    ]
}

fn target_strategy() -> impl Strategy<Value = Target> {
    let small = prop_oneof![Just(0u8), 0u8..16, any::<u8>()];
    prop_oneof![
        3 => (sfi_strategy(), small).prop_map(|(s, p2)| Target::Sfi(s, p2)),
        2 => prop_oneof![0u16..8, 0u16..8000, Just(256), any::<u16>()].prop_map(Target::Offset),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let le = prop_oneof![
        Just(Le::Short(0)),
        any::<u8>().prop_map(Le::Short),
        Just(Le::Extended(0)),
        prop_oneof![0u16..300, any::<u16>()].prop_map(Le::Extended),
    ];
    let sm_len = prop_oneof![Just(0u16), 1u16..64, 0u16..8000, any::<u16>()];
    prop_oneof![
        3 => (1u8..=3).prop_map(Step::SelectDf),
        1 => (0u8..4).prop_map(Step::SelectMf),
        1 => any::<[u8; 16]>().prop_map(Step::SelectName),
        2 => Just(Step::GetChallenge),
        1 => vec(any::<u8>(), 40).prop_map(Step::BadMutualAuthenticate),
        1 => any::<u64>().prop_map(Step::Authenticate),
        1 => any::<bool>().prop_map(Step::Verify),
        1 => vec(any::<u8>(), 0..40).prop_map(Step::VerifyGarbage),
        4 => (target_strategy(), le).prop_map(|(t, le)| Step::ReadPlain(t, le)),
        3 => (target_strategy(), sm_len).prop_map(|(t, n)| Step::ReadSm(t, n)),
        1 => Just(Step::Reset),
        3 => prop_oneof![vec(any::<u8>(), 0..300), biased_apdu()].prop_map(Step::Garbage),
    ]
}

/// What the reader knows of the chip's volatile state; `None` = lost track (after garbage
/// that may have changed it). While a field is known, replies that depend on it are
/// checked exactly.
#[derive(Clone, Debug)]
struct Model {
    df: Option<Df>,
    /// The current EF (image index), `Some(None)` = none.
    ef: Option<Option<usize>>,
    /// The reader's latest session key, and whether the chip still holds it.
    key: Option<Key>,
    session: Option<bool>,
    verified: Option<bool>,
    /// A GET CHALLENGE was the previous command.
    challenge: Option<bool>,
}

impl Model {
    fn after_reset() -> Model {
        Model {
            df: Some(Df::Mf),
            ef: Some(None),
            key: None,
            session: Some(false),
            verified: Some(false),
            challenge: Some(false),
        }
    }

    fn verified(key: Key) -> Model {
        Model {
            key: Some(key),
            session: Some(true),
            verified: Some(true),
            ..Model::after_reset()
        }
    }

    /// May the chip serve an EF with `access`? `None` = the model cannot tell.
    fn access_ok(&self, access: Access, secure: bool) -> Option<bool> {
        match access {
            Access::Free => Some(true),
            Access::AuthSm if !secure => Some(false),
            Access::Auth | Access::AuthSm => self.verified,
        }
    }
}

/// Bytes actually read and the status, for `wanted` bytes with `available` left
/// (default read-past-end knob: data and `62 82`).
fn clamp(wanted: usize, everything: bool, available: usize) -> (usize, Status) {
    if wanted <= available {
        (wanted, Status::Success)
    } else if everything {
        (available, Status::Success)
    } else {
        (available, Status::EndOfFileWarning)
    }
}

/// Runs one step on `card`, checking the reply against `m` and updating `m`.
fn run_step(card: &mut Card, image: &CardImage, m: &mut Model, step: &Step) {
    let generation = image.generation;
    let challenge_before = m.challenge;
    m.challenge = Some(false);
    let mut exchange = |apdu: &[u8]| -> Response {
        let raw = card.transmit(apdu);
        common::check_reply(apdu, &raw)
    };
    let ctx = |apdu: &[u8]| format!("{step:?} → {}", common::hex(apdu));
    match step {
        Step::SelectDf(n) => {
            let df = [Df::Df1, Df::Df2, Df::Df3][usize::from(*n - 1)];
            let apdu = common::select_apdu(df);
            assert_eq!(exchange(&apdu).status, Status::Success, "{}", ctx(&apdu));
            (m.df, m.ef) = (Some(df), Some(None));
        }
        Step::SelectMf(variant) => {
            let apdu = common::h(
                ["00A40000023F00", "00A4000C023F00", "00A40000", "00A4000C"][usize::from(*variant)],
            );
            assert_eq!(exchange(&apdu).status, Status::Success, "{}", ctx(&apdu));
            (m.df, m.ef) = (Some(Df::Mf), Some(None));
        }
        Step::SelectName(name) => {
            let apdu = [&common::h("00A4040C10")[..], name].concat();
            let known = [(AID_DF1, Df::Df1), (AID_DF2, Df::Df2), (AID_DF3, Df::Df3)]
                .into_iter()
                .find(|(aid, _)| aid == name);
            let status = exchange(&apdu).status;
            match known {
                Some((_, df)) => {
                    assert_eq!(status, Status::Success, "{}", ctx(&apdu));
                    (m.df, m.ef) = (Some(df), Some(None));
                }
                None => assert_eq!(status, Status::FileNotFound, "{}", ctx(&apdu)),
            }
        }
        Step::GetChallenge => {
            let r = exchange(&common::GET_CHALLENGE);
            assert_eq!((r.status, r.data.len()), (Status::Success, 8), "{step:?}");
            m.challenge = Some(true);
        }
        Step::BadMutualAuthenticate(data) => {
            let apdu = common::mutual_authenticate_apdu(data);
            let status = exchange(&apdu).status;
            match (challenge_before, status) {
                (Some(true) | None, Status::VerificationFailed) => {
                    (m.session, m.verified) = (Some(false), Some(false));
                }
                (Some(false) | None, Status::ConditionsNotSatisfied) => {}
                _ => panic!(
                    "{}: {status} with challenge {challenge_before:?}",
                    ctx(&apdu)
                ),
            }
        }
        Step::Authenticate(seed) => {
            let mut rng = ChaCha20Rng::seed_from_u64(*seed);
            let number = image.chip_card_number.clone();
            let key = common::try_authenticate_as(card, generation, &number, &mut rng)
                .unwrap_or_else(|s| panic!("{step:?}: genuine MUTUAL AUTHENTICATE got {s}"));
            assert_eq!(
                common::verify(card, &key, &number),
                Status::Success,
                "{step:?}"
            );
            (m.key, m.session, m.verified) = (Some(key), Some(true), Some(true));
        }
        Step::Verify(right) => {
            let number = if *right {
                image.chip_card_number.clone()
            } else {
                "ZZ00000000ZZ".to_owned()
            };
            let key = m.key.unwrap_or_default();
            let apdu = common::verify_apdu(generation, &key, &number);
            let status = exchange(&apdu).status;
            let expected_if_session = if *right {
                Status::Success
            } else {
                Status::VerificationFailed
            };
            match (m.key.is_some(), m.session, status) {
                // Without a key the reader never had a session the chip could hold.
                (false, _, Status::ConditionsNotSatisfied) => {}
                (true, Some(false) | None, Status::ConditionsNotSatisfied) => {
                    (m.session, m.verified) = (Some(false), Some(false));
                }
                (true, Some(true) | None, s) if s == expected_if_session => {
                    (m.session, m.verified) = (Some(true), Some(*right));
                }
                _ => panic!("{}: {status}, model {m:?}", ctx(&apdu)),
            }
        }
        Step::VerifyGarbage(data) => {
            let apdu = [&[0x08, 0x20, 0x00, 0x86, data.len() as u8][..], data].concat();
            let apdu = if data.is_empty() {
                apdu[..4].to_vec()
            } else {
                apdu
            };
            let status = exchange(&apdu).status;
            match status {
                Status::ConditionsNotSatisfied => {
                    assert_ne!(m.session, Some(true), "{}", ctx(&apdu));
                    (m.session, m.verified) = (Some(false), Some(false));
                }
                Status::IncorrectSmDataObjects | Status::WrongLength => {}
                // Random data can decrypt to well-padded garbage: a wrong number.
                Status::VerificationFailed => m.verified = Some(false),
                _ => panic!("{}: {status}", ctx(&apdu)),
            }
        }
        Step::ReadPlain(target, le) => {
            let [p1, p2] = target.p1p2();
            let apdu = [&[0x00, 0xB0, p1, p2][..], &le.bytes()].concat();
            let r = exchange(&apdu);
            let (ne, everything) = le.ne();
            check_read(image, m, *target, false, &r, |content, offset| {
                let (len, status) = clamp(ne, everything, content.len() - offset);
                Some((content[offset..offset + len].to_vec(), status))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", ctx(&apdu)));
        }
        Step::ReadSm(target, len) => {
            let [p1, p2] = target.p1p2();
            let apdu = common::sm_read_apdu(p1, p2, *len);
            let r = exchange(&apdu);
            let key = m.key.filter(|_| m.session == Some(true));
            check_read(image, m, *target, true, &r, |content, offset| {
                let available = content.len() - offset;
                let (n, status) = match usize::from(*len) {
                    0 => (available, Status::Success),
                    n => clamp(n, false, available),
                };
                let key = key?;
                Some((
                    sm::seal(generation, &key, &content[offset..offset + n]).unwrap(),
                    status,
                ))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", ctx(&apdu)));
        }
        Step::Reset => {
            card.reset();
            *m = Model {
                key: m.key,
                ..Model::after_reset()
            };
        }
        Step::Garbage(apdu) => {
            let status = exchange(apdu).status;
            match status {
                // Refused by class/instruction dispatch, before any handler ran.
                Status::ClassNotSupported
                | Status::InstructionNotSupported
                | Status::SecureMessagingNotSupported => {}
                // A failed MUTUAL AUTHENTICATE or VERIFY.
                Status::VerificationFailed => {
                    (m.session, m.verified, m.ef) = (None, Some(false), None);
                }
                s if s.carries_data() => {
                    let key = m.key;
                    *m = Model {
                        df: None,
                        ef: None,
                        key,
                        session: None,
                        verified: None,
                        challenge: None,
                    };
                    // Garbage cannot open a session: without a key there is none.
                    if key.is_none() {
                        (m.session, m.verified) = (Some(false), Some(false));
                    }
                }
                // Other errors: a READ BINARY may have made its EF current first.
                _ => m.ef = None,
            }
        }
    }
}

/// Checks a READ BINARY reply against the model and updates the current EF.
/// `expected(content, offset)` gives the reply data and status of a read the chip serves
/// (`None` when the model cannot compute it, e.g. an unknown session key).
fn check_read(
    image: &CardImage,
    m: &mut Model,
    target: Target,
    secure: bool,
    r: &Response,
    expected: impl FnOnce(&[u8], usize) -> Option<(Vec<u8>, Status)>,
) -> Result<(), String> {
    // Which EF the command addresses, if the model knows.
    let addressed: Option<Option<usize>> = match target {
        Target::Sfi(sfi, _) => m.df.map(|df| image.find_sfi(df, sfi)),
        Target::Offset(_) => m.ef,
    };
    let offset = match target {
        Target::Sfi(_, p2) => usize::from(p2),
        Target::Offset(o) => usize::from(o & 0x7FFF),
    };
    let Some(addressed) = addressed else {
        // Unknown state: only the reply shape (already checked) and, for SFI reads, the
        // resulting current EF are uncertain.
        if matches!(target, Target::Sfi(..)) {
            m.ef = None;
        }
        return Ok(());
    };
    let Some(index) = addressed else {
        let want = match target {
            Target::Sfi(..) => Status::FileNotFound,
            Target::Offset(_) => Status::NoCurrentEf,
        };
        return (r.status == want)
            .then_some(())
            .ok_or_else(|| format!("{} instead of {want}", r.status));
    };
    m.ef = Some(Some(index));
    let file = &image.files[index];
    match m.access_ok(file.access, secure) {
        Some(false) => {
            return (r.status == Status::SecurityStatusNotSatisfied)
                .then_some(())
                .ok_or_else(|| format!("{}: {} instead of 69 82", file.name, r.status));
        }
        // The access check comes first: 69 82 means "not verified" …
        None if r.status == Status::SecurityStatusNotSatisfied => {
            m.verified = Some(false);
            return Ok(());
        }
        // … and anything else proves a verified session, which only the reader's latest
        // MUTUAL AUTHENTICATE can have opened.
        None => {
            if m.key.is_none() {
                return Err(format!("{}: {} without any session", file.name, r.status));
            }
            (m.session, m.verified) = (Some(true), Some(true));
        }
        Some(true) => {}
    }
    if offset >= file.content.len() {
        return (r.status == Status::OffsetOutOfRange)
            .then_some(())
            .ok_or_else(|| format!("{}: {} instead of 6B 00", file.name, r.status));
    }
    if secure && m.session == Some(false) {
        // Only a free EF gets this far without a session: no key to encrypt with.
        return (r.status == Status::SecurityStatusNotSatisfied)
            .then_some(())
            .ok_or_else(|| format!("{}: {} without a session", file.name, r.status));
    }
    match expected(&file.content, offset) {
        Some((data, status)) => {
            if r.data == data && r.status == status {
                Ok(())
            } else {
                Err(format!(
                    "{}: got {} data bytes and {}, expected {} bytes and {status}",
                    file.name,
                    r.data.len(),
                    r.status,
                    data.len()
                ))
            }
        }
        None => Ok(()),
    }
}

/// Runs `steps` from the given start, then resets and checks the genuine flow.
fn run_sequence(profile: &Profile, steps: &[Step], from_session: bool) {
    let image = Arc::clone(&profile.image);
    let mut card = profile.chip();
    let mut model = if from_session {
        Model::verified(common::open_session(&mut card, SESSION_SEED))
    } else {
        Model::after_reset()
    };
    for step in steps {
        run_step(&mut card, &image, &mut model, step);
    }
    card.reset();
    let key = common::open_session(&mut card, SESSION_SEED + 1);
    common::read_every_ef_matches_image(&mut card, &key);
}

proptest! {
    #![proptest_config(config(600, 3))]
    #[test]
    fn command_sequences_from_reset_keep_the_card_consistent(
        steps in vec(step_strategy(), 1..40)
    ) {
        for profile in PROFILES.iter() {
            run_sequence(profile, &steps, false);
        }
    }
}

proptest! {
    #![proptest_config(config(600, 4))]
    #[test]
    fn command_sequences_from_a_verified_session_keep_the_card_consistent(
        steps in vec(step_strategy(), 1..40)
    ) {
        for profile in PROFILES.iter() {
            run_sequence(profile, &steps, true);
        }
    }
}

/// The model itself must not be vacuous: a fixed sequence exercises every exact check.
#[test]
fn model_checks_a_known_sequence_exactly() {
    let steps = [
        Step::ReadPlain(Target::Sfi(0x0A, 0), Le::Short(0)),
        Step::ReadPlain(Target::Offset(1), Le::Short(0x10)),
        Step::SelectDf(1),
        Step::ReadPlain(Target::Offset(0), Le::Short(1)),
        Step::GetChallenge,
        Step::Garbage(vec![0xFF, 0xA4, 0x00, 0x00]),
        Step::BadMutualAuthenticate(vec![0; 40]),
        Step::Authenticate(5),
        Step::ReadSm(Target::Sfi(0x01, 0), 0),
        Step::ReadSm(Target::Offset(2), 5),
        Step::Verify(false),
        Step::ReadSm(Target::Offset(2), 5),
        Step::Verify(true),
        Step::SelectDf(3),
        Step::ReadPlain(Target::Sfi(0x02, 0), Le::Extended(0)),
        Step::GetChallenge,
        Step::BadMutualAuthenticate(vec![1; 40]),
        Step::ReadPlain(Target::Sfi(0x02, 0), Le::Short(0)),
        Step::Reset,
        Step::Verify(true),
    ];
    let profile = &PROFILES[3];
    assert_eq!(profile.name, "gen2-residence");
    let mut card = profile.chip();
    let mut model = Model::after_reset();
    for step in &steps {
        run_step(&mut card, &profile.image, &mut model, step);
        assert!(
            model.df.is_some() && model.ef.is_some() && model.session.is_some(),
            "the model lost track after {step:?}: {model:?}"
        );
    }
}
