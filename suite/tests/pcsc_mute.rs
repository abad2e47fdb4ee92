//! A mute card is mute over PC/SC too: a card silent past ISO 14443-4's longest frame
//! waiting time (`fault::FRAME_WAIT_LIMIT`) makes the application's `SCardTransmit` fail
//! (`SCARD_E_NOT_TRANSACTED`), as a real contactless reader would, instead of handing over
//! the late answer; a slow card within the limit is still read to the end. Checked through
//! pcscd + vpcd with the PC/SC API itself and with the three example checkers.
//!
//! Skipped with a message when no pcscd with vpcd readers runs (`scripts/pcsc-up`); fails
//! instead when `RCLAB_REQUIRE_PCSC` is set (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Error, Protocols, Scope, ShareMode};
use rclab_emulator::fault::FRAME_WAIT_LIMIT;
use rclab_emulator::profile;
use rclab_emulator::transport::TransportError;
use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
use rclab_emulator::verdict::VerdictKind;
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::{self, Jobs, RunConfig, Transport};

use common::repo;

/// A valid generation-2 card that stays silent 6 s on GET CHALLENGE: mute at the first
/// command a PC/SC client can send without any protocol knowledge.
fn mute_on_get_challenge() -> profile::Profile {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("mute.yaml");
    let parent = repo().join("vectors/profiles/valid/gen2-residence.yaml");
    std::fs::write(
        &path,
        format!(
            "extends: {}\ndescription: mute on GET CHALLENGE\nfaults:\n  - delay: {{ ms: 6000, on: get_challenge }}\n\
             expect:\n  threat: transport  # a mute card\n  verdict: unreadable\n  reason: timeout\n  flags: [Stall]\n  why: a card mute past the frame waiting time\n",
            parent.display()
        ),
    )
    .unwrap();
    profile::load(&path).unwrap()
}

#[test]
fn a_mute_card_fails_the_transmit_then_reads_as_removed_then_comes_back_reset() {
    if !common::stack_available() {
        return;
    }
    let port = *rclab_suite::run::vpcd_ports().last().unwrap();
    let p = mute_on_get_challenge();
    let reader = VirtualReader::spawn(ReaderOptions::new(port), Some(Box::new(p.card())));
    assert!(reader.wait_attached(Duration::from_secs(10)));
    let name = CString::new(reader.name()).unwrap();
    rclab_suite::pcsc_channel::wait_for_card(&reader.name(), Duration::from_secs(10)).unwrap();
    let context = Context::establish(Scope::User).unwrap();
    let card = context
        .connect(&name, ShareMode::Shared, Protocols::T1)
        .unwrap();
    let mut buffer = [0u8; 258];
    let select_mf = [0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00];
    assert_eq!(
        card.transmit(&select_mf, &mut buffer).unwrap(),
        [0x90, 0x00]
    );

    let started = Instant::now();
    let mute = card.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut buffer);
    let waited = started.elapsed();
    assert_eq!(mute.err(), Some(Error::NotTransacted), "the transmit fails");
    assert!(
        waited >= FRAME_WAIT_LIMIT && waited < Duration::from_millis(5_900),
        "the reader gives up at the frame waiting time, not when the card answers: {waited:?}"
    );
    let read_type = [0x00, 0xB0, 0x8A, 0x00, 0x00];
    // The reader dropped the card: the next transmit on this handle fails too, with
    // `SCARD_W_REMOVED_CARD` once pcscd's presence poll has noticed, and with
    // `SCARD_E_NOT_TRANSACTED` when it comes before that poll.
    let next = card.transmit(&read_type, &mut buffer).err();
    assert!(
        matches!(next, Some(Error::RemovedCard | Error::NotTransacted)),
        "the reader dropped the card: {next:?}"
    );
    // The reader finds the card again, reset: a new connection reads it from the MF.
    drop(card);
    rclab_suite::pcsc_channel::wait_for_card(&reader.name(), Duration::from_secs(10)).unwrap();
    let card = context
        .connect(&name, ShareMode::Shared, Protocols::T1)
        .unwrap();
    let answer = card.transmit(&read_type, &mut buffer).unwrap();
    assert_eq!(answer, [0xC1, 0x02, b'0', b'5', 0x90, 0x00]);
    let _ = card.disconnect(Disposition::LeaveCard);
    reader.stop();
}

#[test]
fn every_example_checker_gets_no_data_from_a_stall_and_all_of_a_slow_card() {
    if !common::stack_available() {
        return;
    }
    let adapter = |name: &str| Adapter::load(repo().join(name).to_str().unwrap()).unwrap();
    let checkers = vec![
        Adapter::reference(),
        adapter("suite/adapters/pyscard-nosig.yaml"),
        adapter("suite/adapters/accept-all.yaml"),
    ];
    let out = std::env::temp_dir().join(format!("rclab-pcsc-mute-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = RunConfig {
        jobs: Jobs::Exactly(6),
        ..common::run_config(
            checkers,
            common::profiles("corrupted")
                .into_iter()
                .filter(|p| p.name.ends_with("gen2-stall") || p.name.ends_with("gen1-slow-nfc"))
                .collect(),
            Transport::Pcsc,
            out,
        )
    };
    assert_eq!(config.profiles.len(), 2);
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), 6);
    for r in &results {
        let case = format!("{} × {}: {}", r.checker, r.profile, r.detail);
        if r.profile.ends_with("gen1-slow-nfc") {
            // Read to the end: every command answered, and the card called genuine.
            assert!(!r.transcript.is_empty(), "{case}");
            assert!(r.transcript.iter().all(|e| e.response.is_ok()), "{case}");
            assert_eq!(
                r.actual.map(|v| v.verdict),
                Some(VerdictKind::Genuine),
                "{case}"
            );
            continue;
        }
        // The stall: whoever sends the stalled read (DF3/EF01, after DF3 is selected) gets
        // no answer, and nothing then comes from that connection.
        let stalled: Vec<_> = r
            .transcript
            .iter()
            .enumerate()
            .filter(|(_, e)| e.response == Err(TransportError::Timeout))
            .collect();
        match r.checker.as_str() {
            "reference" | "pyscard-nosig" => {
                assert_eq!(stalled.len(), 1, "{case}");
                assert!(
                    r.actual.is_some_and(|v| v.verdict != VerdictKind::Genuine),
                    "a checker that got no answer cannot call the card genuine: {case}"
                );
                assert!(!r.false_accept && !r.missed_corruption, "{case}");
            }
            // It reads only the card type (MF/EF02), so it never asks for what stalls: its
            // genuine is a missed corruption (a transport card), not a false accept.
            "accept-all" => {
                assert!(stalled.is_empty(), "{case}");
                assert!(r.missed_corruption && !r.false_accept, "{case}");
            }
            other => panic!("unexpected checker {other}"),
        }
    }
}
