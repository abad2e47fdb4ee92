//! `rclab serve` survives a pcscd restart: the card reconnects and reads again.
//!
//! Restarting pcscd disturbs everything else using it, so this test runs only when
//! `RCLAB_ALLOW_PCSCD_RESTART=1` (set by `.ci/run`), as root, in its own test binary
//! (cargo runs test binaries one after another).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
use rclab_emulator::verdict::Verdict;
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

fn run(script_name: &str, args: &[&str]) {
    let out = Command::new(script(script_name))
        .args(args)
        .output()
        .expect("run script");
    assert!(
        out.status.success(),
        "{script_name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn served_card_comes_back_after_pcscd_restarts() {
    if std::env::var_os("RCLAB_ALLOW_PCSCD_RESTART").is_none() {
        eprintln!(
            "SKIPPED: set RCLAB_ALLOW_PCSCD_RESTART=1 (as root) to let this test restart pcscd"
        );
        return;
    }
    run("pcsc-up", &[]);
    let trust = TrustStore::embedded_test_roots();
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-sprc")
        .unwrap();
    let reader = VirtualReader::spawn(ReaderOptions::new(35963), Some(Box::new(p.card())));
    assert!(reader.wait_attached(Duration::from_secs(10)));
    let check = |what: &str| {
        let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let report = Checker {
            trust: &trust,
            options: common::options(5),
        }
        .check(&mut channel, p.card_number.as_str());
        channel.close();
        assert_eq!(
            report.verdict,
            Verdict::GENUINE,
            "{what}: {}",
            report.detail
        );
    };
    check("before the restart");

    run("pcsc-down", &["--force"]);
    run("pcsc-up", &[]);
    let started = Instant::now();
    assert!(
        reader.wait_attached(Duration::from_secs(20)),
        "card did not reconnect to the new pcscd"
    );
    eprintln!("card back in {:?} after pcscd restarted", started.elapsed());
    check("after the restart");
    reader.stop();
}
