//! A card served to a vpcd over another address than 127.0.0.1 (here 127.0.0.2: this
//! machine's vpcd reached as a remote one) comes back after pcscd restarts.
//!
//! Restarting the shared pcscd disturbs everything else using it, so this runs only when
//! `RCLAB_ALLOW_PCSCD_RESTART=1` (set by `.ci/run`), as root, in its own test binary. (The
//! reversed-mode restart runs against a private pcscd in `pcsc_remote.rs`.)

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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

#[test]
fn card_served_over_a_second_loopback_address_comes_back_after_pcscd_restarts() {
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
        .find(|p| p.name == "gen1-residence")
        .expect("gen1-residence");
    let endpoint = Endpoint::parse_vpcd("127.0.0.2:35964").expect("endpoint")[0].clone();
    let reader = VirtualReader::spawn(ReaderOptions::at(endpoint), Some(Box::new(p.card())));
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
