//! The real stack: cards served through vpcd into pcscd, read with the `pcsc` crate.
//!
//! Skipped with a message when no pcscd with vpcd readers runs (start one with
//! `scripts/pcsc-up`); `.ci/run` sets `RCLAB_REQUIRE_PCSC=1`, which turns the skip into a
//! failure so CI cannot silently lose these tests.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

/// Serves `card` on the leased port and waits until pcscd has taken it in.
fn serve(
    lease: &Lease,
    options: Option<ReaderOptions>,
    card: impl rclab_emulator::transport::vpcd::VirtualCard + 'static,
) -> VirtualReader {
    let mut options = options.unwrap_or_else(|| ReaderOptions::new(lease.0));
    options.trace = std::env::var_os("RCLAB_TRACE").is_some();
    let reader = VirtualReader::spawn(options, Some(Box::new(card)));
    assert!(
        reader.wait_attached(Duration::from_secs(10)),
        "vpcd never took the card on port {}",
        lease.0
    );
    reader
}

/// Readers are a shared resource: each test takes one from this pool so that parallel
/// tests never put two cards into one reader.
static POOL: Mutex<Vec<u16>> = Mutex::new(Vec::new());
static POOL_READY: std::sync::Once = std::sync::Once::new();

struct Lease(u16);

impl Drop for Lease {
    fn drop(&mut self) {
        pool().push(self.0);
    }
}

fn pool() -> MutexGuard<'static, Vec<u16>> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

fn lease() -> Lease {
    POOL_READY.call_once(|| pool().extend(rclab_suite::run::vpcd_ports()));
    loop {
        if let Some(port) = pool().pop() {
            return Lease(port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_valid_profile_reads_the_same_over_pcsc_as_in_process() {
    if !common::stack_available() {
        return;
    }
    let trust = TrustStore::embedded_test_roots();
    let profiles = common::profiles("valid");
    std::thread::scope(|scope| {
        for p in &profiles {
            let trust = &trust;
            scope.spawn(move || {
                let lease = lease();
                let reader = serve(&lease, None, p.card());
                let checker = Checker {
                    trust,
                    options: common::options(7),
                };
                let in_process = checker.check(&mut p.card(), p.card_number.as_str());
                let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                let over_pcsc = checker.check(&mut channel, p.card_number.as_str());
                channel.close();
                assert_eq!(
                    over_pcsc.verdict,
                    Verdict::GENUINE,
                    "{}: {}",
                    p.name,
                    over_pcsc.detail
                );
                assert_eq!(over_pcsc.verdict, in_process.verdict, "{}", p.name);
                assert_eq!(over_pcsc.data, in_process.data, "{}", p.name);
                reader.stop();
            });
        }
    });
}

#[test]
fn wrong_number_and_chunked_reads_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let trust = TrustStore::embedded_test_roots();
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-residence")
        .unwrap();
    let lease = lease();
    let reader = serve(&lease, None, p.card());
    let mut options = common::options(3);
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10)).unwrap();
    let wrong = Checker {
        trust: &trust,
        options: options.clone(),
    }
    .check(&mut channel, "ZZ00000000ZZ");
    assert_eq!(
        wrong.verdict.verdict,
        VerdictKind::WrongCardNumber,
        "{}",
        wrong.detail
    );
    channel.close();
    options.max_response = Some(1693);
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10)).unwrap();
    let chunked = Checker {
        trust: &trust,
        options,
    }
    .check(&mut channel, p.card_number.as_str());
    assert_eq!(chunked.verdict, Verdict::GENUINE, "{}", chunked.detail);
    channel.close();
}

#[test]
fn card_removed_mid_read_is_unreadable_quickly() {
    if !common::stack_available() {
        return;
    }
    let trust = TrustStore::embedded_test_roots();
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen1-residence")
        .unwrap();
    let lease = lease();
    // The sixth APDU is the SM read of the front image: the card goes after the fifth.
    let mut options = ReaderOptions::new(lease.0);
    options.remove_after = Some(5);
    let reader = serve(&lease, Some(options), p.card());
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    let report = Checker {
        trust: &trust,
        options: common::options(1),
    }
    .check(&mut channel, p.card_number.as_str());
    let took = started.elapsed();
    assert_eq!(
        report.verdict,
        Verdict::with(VerdictKind::Unreadable, Reason::CardRemoved),
        "{}",
        report.detail
    );
    assert!(
        took < Duration::from_secs(2),
        "removal took {took:?} to notice"
    );
    // Put the card back: the reader works as before (and remove_after takes it out again,
    // because the fault applies to every insertion).
    channel.close();
    reader.insert(Box::new(p.card()));
    assert!(reader.wait_attached(Duration::from_secs(10)));
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10)).unwrap();
    let again = Checker {
        trust: &trust,
        options: common::options(1),
    }
    .check(&mut channel, p.card_number.as_str());
    assert_eq!(
        again.verdict,
        Verdict::with(VerdictKind::Unreadable, Reason::CardRemoved),
        "{}",
        again.detail
    );
    channel.close();
    reader.stop();
}

#[test]
fn pyscard_script_authenticates_and_reads_every_profile() {
    if !common::stack_available() {
        return;
    }
    let script = common::vectors().join("../suite/examples/pyscard_checker.py");
    assert!(script.exists(), "{} is missing", script.display());
    for p in common::profiles("valid") {
        let lease = lease();
        let reader = serve(&lease, None, p.card());
        let out = std::process::Command::new("/usr/bin/python3")
            .arg(&script)
            .args([
                "--reader",
                &reader.name(),
                "--card-number",
                p.card_number.as_str(),
            ])
            .output()
            .expect("run /usr/bin/python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            p.name,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{}: {e}: {stdout}", p.name));
        assert_eq!(json["verdict"], "genuine", "{}: {stdout}", p.name);
        // The script reads every EF: compare what it read with the card's own image.
        let read = json["files_read"].as_object().expect("files_read");
        for file in &p.image.files {
            let key = format!(
                "{}:{:02X}",
                format!("{:?}", file.df).to_uppercase(),
                file.sfi
            );
            let got = read
                .get(&key)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{}: {key} not read", p.name));
            assert_eq!(
                got,
                hex::encode_upper(&file.content),
                "{}: {}",
                p.name,
                file.name
            );
        }
        reader.stop();
    }
}

/// One `rclab serve` right after another on the same reader, each read by `rclab check`
/// (what `.ci/run` does after a run over PC/SC). pcscd can still show the previous card
/// when the next one arrives; connecting to that one fails ("Power has been removed"), and
/// `rclab check` used to give up at once instead of reading the new card.
#[test]
fn a_card_served_right_after_another_is_read() {
    if !common::stack_available() {
        return;
    }
    let lease = lease();
    let port = lease.0.to_string();
    let reader = rclab_emulator::transport::vpcd::reader_name(lease.0);
    let profile = common::vectors().join("profiles/valid/gen1-residence.yaml");
    for round in 0..3 {
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_rclab"))
            .args(["serve", "--reader-port", &port])
            .arg(&profile)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rclab serve");
        let check = std::process::Command::new(env!("CARGO_BIN_EXE_rclab"))
            .args([
                "check",
                "--reader",
                &reader,
                "--card-number",
                "AB12345678CD",
            ])
            .args(["--wait", "15"])
            .output()
            .expect("rclab check");
        let pid = libc::pid_t::try_from(serve.id()).expect("pid");
        // SAFETY: kill only sends SIGTERM to our own child, which is not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = serve.wait();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            report.contains("\"verdict\": \"genuine\""),
            "round {round}: {report}{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The reader layer behind vpcd: pcscd passes `FF CA` to the virtual reader, which answers
/// it for the card as in process (PUPI, historical bytes of the ATR, `6A 81`).
#[test]
fn ff_ca_get_data_is_answered_over_pcsc_as_in_process() {
    use rclab_emulator::transport::Channel;
    if !common::stack_available() {
        return;
    }
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-residence")
        .unwrap();
    let lease = lease();
    let reader = serve(&lease, None, p.card());
    let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10)).unwrap();
    let mut in_process = p.card();
    for apdu in [
        &[0xFF, 0xCA, 0x00, 0x00, 0x00][..],
        &[0xFF, 0xCA, 0x01, 0x00, 0x00],
        &[0xFF, 0xCA, 0x02, 0x00, 0x00],
        &[0xFF, 0xCA, 0x00, 0x00, 0x02],
    ] {
        let got = channel.transmit(apdu).unwrap();
        assert_eq!(got, in_process.transmit(apdu).unwrap(), "{apdu:02X?}");
    }
    assert_eq!(
        channel.transmit(&[0xFF, 0xCA, 0x00, 0x00, 0x00]).unwrap(),
        [0x52, 0x43, 0x4C, 0x42, 0x90, 0x00]
    );
    channel.close();
    reader.stop();
}
