//! `rclab serve` survives a pcscd restart: the cards reconnect and read again, both one
//! served to the local vpcd (127.0.0.1) and one served to it over another address
//! (127.0.0.2: this machine's vpcd reached as a remote one).
//!
//! Restarting pcscd disturbs everything else using it, so this test runs only when
//! `RCLAB_ALLOW_PCSCD_RESTART=1` (set by `.ci/run`), as root, in its own test binary
//! (cargo runs test binaries one after another), and restarts pcscd once for both cards.
//! (The reversed-mode restart runs against a private pcscd in `pcsc_remote.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rclab_emulator::profile::Profile;
use rclab_emulator::transport::vpcd::{Endpoint, ReaderOptions, VirtualReader};
use rclab_emulator::verdict::Verdict;
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

fn run(script: &str, args: &[&str]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let out = Command::new(path).args(args).output().expect("run script");
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn valid(name: &str) -> Profile {
    common::profiles("valid")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("valid/{name}"))
}

/// Reads the card in `reader` with the reference checker; it must be genuine.
fn check(reader: &VirtualReader, profile: &Profile, trust: &TrustStore, what: &str) {
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let report = Checker {
        trust,
        options: common::options(5),
    }
    .check(&mut channel, profile.card_number.as_str());
    channel.close();
    assert_eq!(
        report.verdict,
        Verdict::GENUINE,
        "{what}: {}",
        report.detail
    );
}

#[test]
fn served_cards_come_back_after_pcscd_restarts() {
    if std::env::var_os("RCLAB_ALLOW_PCSCD_RESTART").is_none() {
        eprintln!(
            "SKIPPED: set RCLAB_ALLOW_PCSCD_RESTART=1 (as root) to let this test restart pcscd"
        );
        return;
    }
    run("pcsc-up", &[]);
    let trust = TrustStore::embedded_test_roots();
    let remote = Endpoint::parse_vpcd("127.0.0.2:35964").expect("endpoint")[0].clone();
    let cards = [
        (valid("gen2-sprc"), ReaderOptions::new(35963), "127.0.0.1"),
        (
            valid("gen1-residence"),
            ReaderOptions::at(remote),
            "127.0.0.2",
        ),
    ];
    let readers: Vec<VirtualReader> = cards
        .iter()
        .map(|(profile, options, _)| {
            VirtualReader::spawn(options.clone(), Some(Box::new(profile.card())))
        })
        .collect();
    for ((profile, _, address), reader) in cards.iter().zip(&readers) {
        assert!(reader.wait_attached(Duration::from_secs(10)), "{address}");
        check(
            reader,
            profile,
            &trust,
            &format!("{address}, before the restart"),
        );
    }

    run("pcsc-down", &["--force"]);
    run("pcsc-up", &[]);
    let started = Instant::now();
    for ((profile, _, address), reader) in cards.iter().zip(&readers) {
        assert!(
            reader.wait_attached(Duration::from_secs(20)),
            "{address}: card did not reconnect to the new pcscd"
        );
        eprintln!(
            "{address}: card back in {:?} after pcscd restarted",
            started.elapsed()
        );
        check(
            reader,
            profile,
            &trust,
            &format!("{address}, after the restart"),
        );
    }
    for reader in readers {
        reader.stop();
    }
}
