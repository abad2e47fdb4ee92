//! Readers reached over another address than 127.0.0.1: `--vpcd 127.0.0.2:PORT` (the
//! machine's own vpcd, reached as if it were another host's) and `--listen` with a vpcd in
//! reversed mode; plus `rclab serve`'s handling of a missing vpcd, of a reader port named
//! twice and of signals while it waits for a reader.
//!
//! Reversed mode runs against a private pcscd in a mount namespace made by the test (its
//! own /run/pcscd, a reader.conf with one reversed-mode entry), never the shared one:
//! Debian's vpcd 3.3 aborts its pcscd at the second presence poll after a reversed-mode
//! card leaves (verified; see README, "Checkers on Windows or macOS").
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rclab_emulator::transport::vpcd::{Endpoint, ReaderOptions, VirtualReader};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

fn rclab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rclab"));
    command.current_dir(repo());
    command
}

use common::repo;

fn listening(address: &str) -> bool {
    rclab_emulator::transport::vpcd::probe::listens_on(address.parse().expect("test address"))
}

/// A port of 127.0.0.1 and 0.0.0.0 that nothing listens on (and no rclab serves), from
/// `first` on (each test its own range: they run at the same time).
fn silent_port(first: u16) -> u16 {
    (first..first + 4)
        .find(|p| {
            !listening(&format!("127.0.0.1:{p}"))
                && !listening(&format!("0.0.0.0:{p}"))
                && !rclab_emulator::transport::vpcd::port_busy(*p)
        })
        .expect("a free port")
}

/// Lines of a child's stderr, as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the child's exit, killing it after `limit` (then the test fails).
fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rclab did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[allow(unsafe_code)] // one kill call, proven below
fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet, so
    // the pid cannot belong to another process; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

fn valid_profile(name: &str) -> PathBuf {
    repo()
        .join("vectors/profiles/valid")
        .join(format!("{name}.yaml"))
}

// ---------------------------------------------------------------------------------------
// `rclab serve` without a vpcd, with a port twice, and with signals (issue 10)
// ---------------------------------------------------------------------------------------

#[test]
fn serve_says_at_once_that_no_vpcd_listens_and_fails_after_wait() {
    let port = silent_port(35980);
    let started = Instant::now();
    let mut child = rclab()
        .args(["serve", "--reader-port", &port.to_string(), "--wait", "2.5"])
        .arg(valid_profile("gen1-residence"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rclab serve");
    let lines = stderr_lines(&mut child);
    let first = lines
        .recv_timeout(Duration::from_secs(2))
        .expect("nothing on stderr within 2 s");
    let said_after = started.elapsed();
    assert!(
        first.contains(&format!("no vpcd at 127.0.0.1:{port}"))
            && first.contains("scripts/pcsc-up"),
        "{first}"
    );
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let rest: Vec<String> = lines.iter().collect();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("no vpcd connection") && l.contains("--wait")),
        "{rest:?}"
    );
    eprintln!("missing vpcd reported after {said_after:?}");
}

#[test]
fn serve_refuses_a_reader_port_named_twice() {
    let port = silent_port(35984).to_string();
    let profile = valid_profile("gen1-residence");
    for args in [
        vec!["--reader-port", &port, "--reader-port", &port],
        vec![
            "--vpcd",
            "127.0.0.2:35990-35991",
            "--listen",
            "127.0.0.2:35991",
        ],
    ] {
        let mut child = rclab()
            .arg("serve")
            .args(&args)
            .arg(&profile)
            .arg(&profile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rclab serve");
        let lines = stderr_lines(&mut child);
        let status = wait_bounded(&mut child, Duration::from_secs(5));
        let text: Vec<String> = lines.iter().collect();
        assert_eq!(status.code(), Some(2), "{args:?}: {text:?}");
        let flag = if args[0] == "--reader-port" {
            format!("--reader-port {port} is given twice")
        } else {
            "--listen: port 35991 is given twice".to_owned()
        };
        assert!(text.iter().any(|l| l.contains(&flag)), "{args:?}: {text:?}");
    }
}

#[test]
fn serve_stops_on_sigterm_while_another_process_holds_its_reader() {
    let port = silent_port(35988);
    // Hold the reader's lock as another rclab process would.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(format!("rclab-vpcd-{port}.lock")))
        .expect("lock file");
    lock.lock().expect("take the reader's lock");
    let mut child = rclab()
        .args(["serve", "--reader-port", &port.to_string()])
        .arg(valid_profile("gen1-residence"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rclab serve");
    let lines = stderr_lines(&mut child);
    let waiting = lines
        .recv_timeout(Duration::from_secs(5))
        .expect("no word about the busy reader");
    assert!(waiting.contains("another rclab process"), "{waiting}");
    terminate(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(3));
    assert!(status.success(), "{status}");
    drop(lock);
}

// ---------------------------------------------------------------------------------------
// --vpcd over 127.0.0.2 (the shared pcscd)
// ---------------------------------------------------------------------------------------

#[test]
fn every_valid_card_reads_through_vpcd_on_a_second_loopback_address() {
    if !common::stack_available() {
        return;
    }
    let ports = rclab_suite::run::vpcd_ports();
    let out = std::env::temp_dir().join(format!("rclab-remote-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut command = rclab();
    command.args([
        "run",
        "--transport",
        "pcsc",
        "--profiles",
        "valid/*",
        "--plain",
        "--at",
        "2026-11-25",
        "--jobs",
        "2",
    ]);
    for port in ports.iter().take(2) {
        command.args(["--vpcd", &format!("127.0.0.2:{port}")]);
    }
    let output = command.arg("--out").arg(&out).output().expect("rclab run");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("results.json parses");
    assert!(output.status.success(), "{text}\n{results:#}");
    let results = results["results"].as_array().expect("results");
    assert_eq!(results.len(), common::profiles("valid").len(), "{text}");
    for r in results {
        assert_eq!(r["outcome"], "PASS", "{r}");
        assert_eq!(r["actual"]["verdict"], "genuine", "{r}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// A free port of the shared pcscd's vpcd, reached through 127.0.0.2 (the lock is the
/// same as through 127.0.0.1: one reader, whatever address reaches it).
fn remote_reader(options_for: impl FnOnce(Endpoint) -> ReaderOptions) -> VirtualReader {
    let port = *rclab_suite::run::vpcd_ports()
        .first()
        .expect("a free vpcd port");
    let endpoint = Endpoint::parse_vpcd(&format!("127.0.0.2:{port}")).expect("endpoint")[0].clone();
    let mut options = options_for(endpoint);
    options.trace = std::env::var_os("RCLAB_TRACE").is_some();
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen1-residence")
        .expect("gen1-residence");
    let reader = VirtualReader::spawn(options, Some(Box::new(p.card())));
    assert!(
        reader.wait_attached(Duration::from_secs(10)),
        "vpcd never took the card at {}",
        reader.endpoint()
    );
    reader
}

#[test]
fn a_card_taken_out_over_a_second_loopback_address_is_noticed_and_comes_back() {
    if !common::stack_available() {
        return;
    }
    let trust = TrustStore::embedded_test_roots();
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen1-residence")
        .expect("gen1-residence");
    // The sixth APDU is the SM read of the front image: the card goes after the fifth.
    let reader = remote_reader(|endpoint| {
        let mut options = ReaderOptions::at(endpoint);
        options.remove_after = Some(5);
        options
    });
    let link = reader.link().expect("connected");
    assert_eq!(link.peer.ip().to_string(), "127.0.0.2");
    assert!(link.vpcd_is_local(), "{link:?}");
    let read = |what: &str| {
        let mut channel = PcscChannel::connect(&reader.name(), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let report = Checker {
            trust: &trust,
            options: common::options(1),
        }
        .check(&mut channel, p.card_number.as_str());
        channel.close();
        report
    };
    let started = Instant::now();
    let report = read("first insertion");
    assert_eq!(
        report.verdict,
        Verdict::with(VerdictKind::Unreadable, Reason::CardRemoved),
        "{}",
        report.detail
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    reader.insert(Box::new(p.card()));
    assert!(reader.wait_attached(Duration::from_secs(10)), "not back");
    let again = read("second insertion");
    assert_eq!(
        again.verdict,
        Verdict::with(VerdictKind::Unreadable, Reason::CardRemoved),
        "{}",
        again.detail
    );
    reader.stop();
}

#[test]
fn pcscd_powers_an_arriving_card_up_which_is_what_remote_runs_wait_for() {
    if !common::stack_available() {
        return;
    }
    let reader = remote_reader(ReaderOptions::at);
    let started = Instant::now();
    assert!(
        reader.wait_powered(Duration::from_secs(5)),
        "pcscd did not power the new card up"
    );
    eprintln!(
        "card powered up {:?} after vpcd first spoke",
        started.elapsed()
    );
    // Leave pcscd settled before the card goes (a card pulled in the middle of pcscd's
    // power-up can leave the reader looking empty to the next card).
    PcscChannel::connect(&reader.name(), Duration::from_secs(10))
        .expect("pcscd shows the card")
        .close();
    reader.stop();
}

// ---------------------------------------------------------------------------------------
// --listen with a reversed-mode vpcd (a private pcscd)
// ---------------------------------------------------------------------------------------

/// Port of the reversed-mode entry: vpcd dials 127.0.0.2:35997 and :35998 (its 2 slots).
const REVERSED_PORT: u16 = 35997;

/// A pcscd of its own in a mount namespace: its /run/pcscd is a folder of the test, its
/// only reader a reversed-mode vpcd dialling 127.0.0.2:35997–35998.
struct PrivatePcscd {
    child: Child,
    socket: PathBuf,
}

impl PrivatePcscd {
    fn start(dir: &Path) -> Result<PrivatePcscd, String> {
        let run = dir.join("run");
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        let conf = dir.join("reader.conf");
        std::fs::write(
            &conf,
            format!(
                "FRIENDLYNAME \"Virtual PCD R\"\nDEVICENAME   127.0.0.2:0x{REVERSED_PORT:X}\n\
                 LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID    0x{REVERSED_PORT:X}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("pcscd.log")).map_err(|e| e.to_string())?;
        // unshare and sh exec in place: the child's pid is pcscd's.
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--",
                "sh",
                "-c",
                "mount --bind \"$1\" /run/pcscd && exec pcscd --foreground -c \"$2\"",
                "sh",
            ])
            .arg(&run)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut pcscd = PrivatePcscd {
            child,
            socket: run.join("pcscd.comm"),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pcscd.socket.exists() {
            if let Ok(Some(status)) = pcscd.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("pcscd.log")).unwrap_or_default();
                return Err(format!("private pcscd exited ({status}): {log}"));
            }
            if Instant::now() > deadline {
                return Err("private pcscd not ready within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pcscd)
    }

    /// `rclab check` of the card in `reader` through this pcscd.
    fn check(&self, reader: &str, card_number: &str) -> String {
        let output = rclab()
            .args(["check", "--reader", reader, "--card-number", card_number])
            .args(["--wait", "10", "--at", "2026-11-25"])
            .env("PCSCLITE_CSOCK_NAME", &self.socket)
            .output()
            .expect("rclab check");
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}

/// A `rclab serve` the test started: killed if the test fails before stopping it, so a
/// failed run leaves nothing listening on the next run's address.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `rclab serve --listen 127.0.0.2:35997-35998` with two cards, once both listen.
fn serve_listening(a: &Path, b: &Path) -> Served {
    let child = Served(
        rclab()
            .args(["serve", "--listen", "127.0.0.2:35997-35998"])
            .arg(a)
            .arg(b)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclab serve --listen"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(listening("127.0.0.2:35997") && listening("127.0.0.2:35998")) {
        assert!(Instant::now() < deadline, "rclab serve never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn namespaces_available() -> bool {
    let ok = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists()
        && Command::new("pcscd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        let message = "reversed-mode tests need root (unshare --mount), pcscd and vsmartcard-vpcd";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_PCSC").is_none(),
            "{message} (RCLAB_REQUIRE_PCSC is set)"
        );
        eprintln!("SKIPPED: {message}");
    }
    ok
}

#[test]
fn every_valid_card_reads_through_listen_with_a_reversed_vpcd_and_survives_its_restart() {
    if !namespaces_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rclab-reversed-{}", std::process::id()));
    let profiles = common::profiles("valid");
    // Debian's vpcd aborts when one of its slots finds nobody listening: both readers get
    // a card (the last card twice when the count is odd).
    for (round, pair) in profiles.chunks(2).enumerate() {
        let (a, b) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
        let mut serve = serve_listening(&a.path, &b.path);
        for restart in 0..if round == 0 { 2 } else { 1 } {
            let pcscd = PrivatePcscd::start(&dir).unwrap_or_else(|e| panic!("{e}"));
            for (slot, p) in [(0, a), (1, b)] {
                let reader = format!("Virtual PCD R 00 {slot:02}");
                let report = pcscd.check(&reader, p.card_number.as_str());
                assert!(
                    report.contains("\"verdict\": \"genuine\""),
                    "{} in {reader} (pcscd start {}): {report}",
                    p.name,
                    restart + 1
                );
            }
            // Stopping this pcscd and starting another is a pcscd restart: the cards must
            // be taken in again without restarting `rclab serve`.
            drop(pcscd);
        }
        terminate(&serve.0);
        let status = wait_bounded(&mut serve.0, Duration::from_secs(5));
        assert!(status.success(), "{status}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ssh_example_adapter_loads_and_passes_only_the_card_number() {
    use rclab_suite::run::adapter::{Adapter, Kind};
    let path = repo().join("suite/adapters/ssh-remote.yaml");
    let adapter = Adapter::load(path.to_str().expect("utf-8 path")).expect("adapter loads");
    let values = [
        ("reader", "Virtual PCD 00 00".to_owned()),
        ("card_number", "AB12345678CD".to_owned()),
    ]
    .into_iter()
    .collect();
    let Kind::Process(process) = &adapter.kind else {
        panic!("the ssh adapter runs a process: {adapter:?}");
    };
    let argv = process.render(&values);
    assert_eq!(argv[0], "ssh");
    assert_eq!(
        argv.last().map(String::as_str),
        Some("checker.exe --reader \"Virtual PCD 0\" --card-number AB12345678CD --json")
    );
}

#[test]
fn bad_remote_flags_are_refused_naming_the_flag() {
    let profile = valid_profile("gen1-residence");
    let cases: [(&[&str], &str); 5] = [
        (&["serve", "--wait", "1e300"], "--wait"),
        (&["serve", "--wait=-1"], "--wait"),
        (&["serve", "--vpcd", "host:1-100"], "at most 16"),
        (
            &["serve", "--listen", "localhost:35997"],
            "ADDR an IP address",
        ),
        (
            &["run", "--vpcd", "127.0.0.2", "--profiles", "valid/*"],
            "--vpcd and --listen need --transport pcsc",
        ),
    ];
    for (args, want) in cases {
        let mut command = rclab();
        command.args(args);
        if args[0] == "serve" {
            command.arg(&profile);
        } else {
            command.arg("--out").arg(
                std::env::temp_dir().join(format!("rclab-remote-flags-{}", std::process::id())),
            );
        }
        let output = command.stdin(Stdio::null()).output().expect("rclab");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
