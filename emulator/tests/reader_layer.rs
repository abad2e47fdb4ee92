//! The reader layer in process: `FF CA` is answered by the reader for a profile's card
//! (PUPI, historical bytes of the ATR), recorded by the Tap like any exchange, and passed
//! to the card (`6E 00`) when the profile turns the reader's answers off.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use rclab_emulator::profile;
use rclab_emulator::transport::vpcd::{DEFAULT_ATR, VirtualCard};
use rclab_emulator::transport::{Channel, Tap};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn variant(name: &str, reader: &str) -> profile::Profile {
    let base = common::vectors_dir().join("profiles/valid/gen2-residence.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!("extends: {}\nreader:\n{reader}", base.display()),
    )
    .unwrap();
    let p = profile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&file).ok();
    p
}

#[test]
fn ff_ca_is_answered_by_the_reader_in_process_and_recorded() {
    let p = common::valid_profile("gen2-residence");
    let mut tap = Tap::new(p.card());
    assert_eq!(tap.transmit(&h("FFCA000000")).unwrap(), h("52434C42 9000"));
    assert_eq!(
        tap.transmit(&h("FFCA010000")).unwrap(),
        h("00000000 008181 00 9000")
    );
    assert_eq!(tap.transmit(&h("FFCA020000")).unwrap(), h("6A81"));
    assert_eq!(tap.transcript().len(), 3);
    assert_eq!(VirtualCard::atr(&p.card()), DEFAULT_ATR);
}

#[test]
fn the_reader_section_sets_pupi_atr_and_turns_answers_off() {
    let p = variant(
        "pupi",
        "  pupi: \"01 02 03 04\"\n  atr: \"3B 82 80 01 AA BB 00\"\n",
    );
    let mut card = p.card();
    assert_eq!(
        Channel::transmit(&mut card, &h("FFCA000000")).unwrap(),
        h("01020304 9000")
    );
    assert_eq!(
        Channel::transmit(&mut card, &h("FFCA010000")).unwrap(),
        h("AABB 9000")
    );
    assert_eq!(VirtualCard::atr(&card), h("3B 82 80 01 AA BB 00"));

    let off = variant("off", "  get_data: false\n");
    let mut card = off.card();
    assert_eq!(
        Channel::transmit(&mut card, &h("FFCA000000")).unwrap(),
        h("6E00")
    );
}

#[test]
fn a_bad_reader_section_is_a_located_error() {
    let base = common::vectors_dir().join("profiles/valid/gen2-residence.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        format!("extends: {}\nreader:\n  pupi: \"01 02\"\n", base.display()),
    )
    .unwrap();
    let err = profile::load(&file).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("reader.pupi"), "{err}");
}

/// A card that has left the field: the reader has no UID to give, and `FF CA` reports the
/// removal like any other exchange (in process `CardRemoved`).
#[test]
fn ff_ca_after_the_card_left_reports_the_removal() {
    use rclab_emulator::transport::TransportError;
    let p = profile::load(
        &common::vectors_dir().join("profiles/corrupted/gen1-removed-after-5-apdus.yaml"),
    )
    .unwrap();
    let mut card = p.card();
    // The reader's own answers do not count as APDUs the card answered.
    assert_eq!(
        Channel::transmit(&mut card, &h("FFCA000000")).unwrap(),
        h("52434C42 9000")
    );
    for _ in 0..5 {
        Channel::transmit(&mut card, &h("00A4000C")).unwrap();
    }
    assert!(card.removed());
    assert_eq!(
        Channel::transmit(&mut card, &h("FFCA000000")),
        Err(TransportError::CardRemoved)
    );
}

/// `reader.pupi: random`: a new PUPI at every power-up (SimCard::reset, what vpcd's power
/// on and reset call), the same sequence from the same profile, another from another seed.
#[test]
fn a_random_pupi_is_new_at_every_power_up_and_replays_per_profile() {
    let sequence = |p: &profile::Profile| -> Vec<Vec<u8>> {
        let mut card = p.card();
        (0..4)
            .map(|_| {
                let answer = Channel::transmit(&mut card, &h("FFCA000000")).unwrap();
                // Same power-up, same PUPI.
                assert_eq!(
                    Channel::transmit(&mut card, &h("FFCA000000")).unwrap(),
                    answer
                );
                VirtualCard::reset(&mut card);
                assert_eq!(answer[4..], [0x90, 0x00]);
                answer[..4].to_vec()
            })
            .collect()
    };
    let p = variant("random-pupi", "  pupi: random\n");
    let first = sequence(&p);
    for (i, pupi) in first.iter().enumerate() {
        assert!(!first[i + 1..].contains(pupi), "{first:?}");
    }
    assert_eq!(sequence(&p), first, "the same profile replays its PUPIs");
    let fixed = sequence(&common::valid_profile("gen2-residence"));
    assert!(fixed.iter().all(|p| p == &h("52434C42")), "{fixed:?}");
}
