//! The fault layer on the real stack: catalogue cards whose faults act through vpcd
//! (`VirtualCard::respond`) reach a PC/SC reader as a real card would — removal as a removed
//! card, delays as real time, `61 xx` untouched by pcscd — and give the reference checker
//! the same verdict as in-process.
//!
//! Skipped with a message when no pcscd with vpcd readers runs (`scripts/pcsc-up`); fails
//! instead when `RCLAB_REQUIRE_PCSC` is set (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::time::{Duration, Instant};

use rclab_emulator::profile::Profile;
use rclab_emulator::transport::Tap;
use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
use rclab_suite::checker::{Checker, Report, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

fn profile(name: &str) -> Profile {
    common::profiles("")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no profile {name}"))
}

/// Serves the profile's card on `port`, checks it over PC/SC; the report and the time taken.
fn over_pcsc(p: &Profile, port: u16, trust: &TrustStore) -> (Report, Duration) {
    let mut options = ReaderOptions::new(port);
    options.trace = std::env::var_os("RCLAB_TRACE").is_some();
    let reader = VirtualReader::spawn(options, Some(Box::new(p.card())));
    assert!(
        reader.wait_attached(Duration::from_secs(10)),
        "{}: vpcd never took the card on port {port}",
        p.name
    );
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{}: {e}", p.name));
    let started = Instant::now();
    let report = Checker {
        trust,
        options: common::options(7),
    }
    .check(&mut channel, p.card_number.as_str());
    let took = started.elapsed();
    channel.close();
    reader.stop();
    (report, took)
}

#[test]
fn faulted_cards_behave_over_pcsc_as_in_process() {
    if !common::stack_available() {
        return;
    }
    // The last vpcd reader: the other real-stack tests lease theirs from the first ones.
    let port = *rclab_suite::run::vpcd_ports().last().unwrap();
    let trust = TrustStore::embedded_test_roots();
    for name in [
        "corrupted/gen1-removed-after-5-apdus",
        "corrupted/gen2-removed-during-face-read",
        "corrupted/gen1-slow-nfc",
        "corrupted/gen1-get-response",
        "forged/gen2-wrong-echo",
    ] {
        let p = profile(name);
        let mut tap = Tap::new(p.card());
        let in_process = Checker {
            trust: &trust,
            options: common::options(7),
        }
        .check(&mut tap, p.card_number.as_str());
        let (report, took) = over_pcsc(&p, port, &trust);
        assert_eq!(
            report.verdict, in_process.verdict,
            "{name}: {} / in-process: {}",
            report.detail, in_process.detail
        );
        assert!(
            p.expect.verdict.accepts(&report.verdict),
            "{name}: {}",
            report.detail
        );
        if name.ends_with("slow-nfc") {
            // 25 ms per APDU, really waited behind vpcd.
            let floor = Duration::from_millis(25) * tap.transcript().len() as u32;
            assert!(took >= floor, "{name}: {took:?} < {floor:?}");
        } else {
            assert!(took < Duration::from_secs(3), "{name}: took {took:?}");
        }
    }
}
