//! Robustness of faulted cards: random command sequences (garbage mixed with a reader's
//! real commands, GET RESPONSE, resets and whole authentications) against the card of every
//! profile under `vectors/profiles/`, faults included. Nothing panics, and every reply is
//! either a proper R-APDU (a status word the card uses, no data with an error) or a
//! departure that the profile's fault list explains: no answer or a departure only from a
//! removal fault, a foreign status word only from a status fault, a reshaped frame only
//! from a truncate/extra/missing-bytes fault, time only from a delay fault.
//!
//! Fixed seed like `never_panics.rs` (`RCLAB_PROPTEST_SEED` explores another stream); run
//! alone with `cargo test -p rclab-emulator --test faults_never_panic`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rclab_emulator::card::Df;
use rclab_emulator::fault::{Fault, Outcome, SimCard};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::{Response, Status, ins};
use rclab_emulator::reader::Session;
use rclab_emulator::transport::{Channel, TransportError};

const BASE_SEED: u64 = 0x00C0_FFEE_2026_0005;

fn config(cases: u32) -> ProptestConfig {
    let base = std::env::var("RCLAB_PROPTEST_SEED")
        .ok()
        .map(|s| s.parse().expect("RCLAB_PROPTEST_SEED must be a u64"))
        .unwrap_or(BASE_SEED);
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(base ^ 0x5EED_FA17),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_iters: 2_048,
        ..ProptestConfig::default()
    }
}

/// The residence-card profiles (the status words explained here are the residence card's;
/// `tests/my_number.rs` has the My Number card's own no-panic property).
static PROFILES: LazyLock<Vec<Profile>> = LazyLock::new(|| {
    profile::load_dir(&common::vectors_dir().join("profiles"))
        .unwrap_or_else(|errors| panic!("{}", errors[0]))
        .into_iter()
        .filter(|p| p.residence_image().is_ok())
        .collect()
});

#[derive(Clone, Debug)]
enum Step {
    /// Bytes from nowhere.
    Garbage(Vec<u8>),
    /// A command a reader sends (select, reads by SFI or offset, plain or SM).
    Reader(Vec<u8>),
    /// `00 C0 00 00 Le`.
    GetResponse(u8),
    /// GET CHALLENGE, MUTUAL AUTHENTICATE and VERIFY with the chip's number, whatever
    /// comes back.
    Authenticate(u64),
    Reset,
}

fn reader_command() -> impl Strategy<Value = Vec<u8>> {
    let select =
        prop::sample::select(vec![Df::Mf, Df::Df1, Df::Df2, Df::Df3]).prop_map(common::select_apdu);
    let sfi = prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x0B]);
    let plain = (sfi.clone(), prop_oneof![Just(0u8), any::<u8>()])
        .prop_map(|(sfi, le)| vec![0x00, 0xB0, 0x80 | sfi, 0x00, le]);
    let plain_all = sfi
        .clone()
        .prop_map(|sfi| common::read_all_apdu(0x80 | sfi, 0));
    let offset = (0u16..0x2000, any::<u8>())
        .prop_map(|(o, le)| [&o.to_be_bytes()[..], &[le]].concat())
        .prop_map(|tail| [&[0x00, 0xB0][..], &tail].concat());
    let secure = (sfi, prop_oneof![Just(0u16), any::<u16>()])
        .prop_map(|(sfi, len)| common::sm_read_apdu(0x80 | sfi, 0, len));
    prop_oneof![3 => select, 2 => plain, 2 => plain_all, 1 => offset, 3 => secure]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..40).prop_map(Step::Garbage),
        6 => reader_command().prop_map(Step::Reader),
        1 => any::<u8>().prop_map(Step::GetResponse),
        2 => any::<u64>().prop_map(Step::Authenticate),
        1 => Just(Step::Reset),
    ]
}

/// Checks one outcome against the fault list; panics with the reason otherwise.
fn explained(faults: &[Fault], apdu: &[u8], outcome: &Outcome) {
    let fired = |f: fn(&Fault) -> bool| outcome.applied.iter().any(|&i| f(&faults[i]));
    let removal = |f: &Fault| matches!(f, Fault::RemoveAfter { .. } | Fault::RemoveDuring { .. });
    let context = || format!("{} → {outcome:02X?}", common::hex(apdu));
    if outcome.reply.is_none() || outcome.leaves {
        assert!(fired(removal), "unexplained departure: {}", context());
    }
    if outcome.delay > Duration::ZERO {
        assert!(
            fired(|f| matches!(f, Fault::Delay { .. })),
            "unexplained delay: {}",
            context()
        );
    }
    let Some(reply) = &outcome.reply else {
        return;
    };
    if fired(Fault::reshapes_frames) {
        return;
    }
    let response = Response::parse(reply)
        .unwrap_or_else(|| panic!("reply without a status word: {}", context()));
    if let Status::Other(sw) = response.status {
        let by_status_fault = outcome
            .applied
            .iter()
            .any(|&i| matches!(&faults[i], Fault::Status { sw: s, .. } if s.sw() == sw));
        assert!(by_status_fault, "unknown status word: {}", context());
    }
    assert!(
        response.status.carries_data() || response.data.is_empty(),
        "data with an error status: {}",
        context()
    );
}

fn run(profile: &Profile, steps: &[Step]) {
    let mut card = profile.card();
    let faults = card.faults().to_vec();
    let send = |card: &mut SimCard, apdu: &[u8]| -> Option<Vec<u8>> {
        let outcome = card.exchange(apdu);
        explained(&faults, apdu, &outcome);
        outcome.reply
    };
    for step in steps {
        match step {
            Step::Garbage(apdu) | Step::Reader(apdu) => {
                send(&mut card, apdu);
            }
            Step::GetResponse(le) => {
                send(&mut card, &[0x00, ins::GET_RESPONSE, 0x00, 0x00, *le]);
            }
            Step::Reset => card.reset(),
            Step::Authenticate(seed) => {
                // The shared reader; whatever the faults do to its steps, they end in an
                // error of the reader, and every exchange is still explained.
                let image = profile.image.clone();
                let mut reader = Session::new(
                    Explained {
                        card: &mut card,
                        faults: &faults,
                    },
                    image.generation,
                );
                let mut rng = ChaCha20Rng::seed_from_u64(*seed);
                if reader.authenticate(&image.chip_key(), &mut rng).is_ok() {
                    let _ = reader.verify(image.chip_card_number.as_bytes());
                }
            }
        }
    }
}

/// A faulted card as a reader channel: every exchange must be explained by the faults; a
/// card that does not answer is a timeout.
struct Explained<'a> {
    card: &'a mut SimCard,
    faults: &'a [Fault],
}

impl Channel for Explained<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let outcome = self.card.exchange(apdu);
        explained(self.faults, apdu, &outcome);
        outcome.reply.ok_or(TransportError::Timeout)
    }
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn faulted_cards_answer_every_sequence_as_their_faults_explain(
        steps in vec(step(), 1..30)
    ) {
        for profile in PROFILES.iter() {
            run(profile, &steps);
        }
    }
}

/// The property is not vacuous: a card whose faults fire is checked, and an unexplained
/// departure is caught.
#[test]
fn the_explanation_check_catches_unexplained_replies() {
    let faults = [Fault::WrongMIcc];
    let silent = Outcome::default();
    let caught = std::panic::catch_unwind(|| explained(&faults, &[0], &silent));
    assert!(caught.is_err(), "no answer without a removal fault");
    let foreign = Outcome {
        reply: Some(vec![0x6F, 0x00]),
        ..Outcome::default()
    };
    let caught = std::panic::catch_unwind(|| explained(&faults, &[0], &foreign));
    assert!(caught.is_err(), "6F 00 without a status fault");
    let data_with_error = Outcome {
        reply: Some(vec![0x01, 0x6A, 0x82]),
        ..Outcome::default()
    };
    let caught = std::panic::catch_unwind(|| explained(&faults, &[0], &data_with_error));
    assert!(caught.is_err(), "data with 6A 82");
    // Every kind of fault is exercised by some catalogue card.
    let kinds: std::collections::HashSet<_> = PROFILES
        .iter()
        .flat_map(|p| p.faults.iter().map(std::mem::discriminant))
        .collect();
    assert_eq!(kinds.len(), 15, "fault kinds used by the catalogue");
}
