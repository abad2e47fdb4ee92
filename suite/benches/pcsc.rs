//! APDU round trips and full card reads through the real stack: Rust `pcsc` client →
//! libpcsclite → pcscd → Debian's vpcd → TCP → card, for three cards on the same stack:
//!
//! - a bare echo card (answers `90 00` at once; same vpcd client as rclab, with
//!   TCP_QUICKACK): the floor of the stack;
//! - rclab's engine (`rclab_emulator::card::Card`) behind the same client;
//! - vsmartcard's own Python card, `vicc -t iso7816` (Debian package `vsmartcard-vpicc`),
//!   as shipped but for two import fixes (see [`Vicc`]).
//!
//! Needs a running pcscd with vpcd (`sudo scripts/pcsc-up`); prints Markdown tables, asserts
//! nothing. Every ratio is taken inside one run, between cards measured in alternation.
//!
//! Run: `cargo bench -p rclab-suite --bench pcsc`. Environment:
//! `RCLAB_BENCH_PORTS` (two vpcd ports, default `35965,35966`), `RCLAB_BENCH_N` (round
//! trips per card, default 2000), `RCLAB_BENCH_VICC_N` (round trips against vicc, default
//! 100), `RCLAB_BENCH_READS` (full reads per case, default 40), `RCLAB_BENCH_VICC` (`0`
//! skips vicc), `RCLAB_BENCH_ADDRESS_ONLY` (`1`: only the first table, the vpcd reached
//! through 127.0.0.1 against through 127.0.0.2, as `--vpcd` reaches a remote one).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use rclab_emulator::card::Card;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::vpcd::{
    Endpoint, ReaderOptions, VirtualCard, VirtualReader, reader_name,
};
use rclab_emulator::transport::{Channel, Tap};
use rclab_emulator::verdict::VerdictKind;
use rclab_suite::checker::{Checker, Options, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

/// The floor: a card that answers `90 00` to everything without looking at it.
struct EchoCard;

impl VirtualCard for EchoCard {
    fn reset(&mut self) {}
    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        vec![0x90, 0x00]
    }
}

struct Stats {
    samples: Vec<Duration>,
    mean: Duration,
    p50: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len().max(1);
    Stats {
        mean: samples.iter().sum::<Duration>() / n as u32,
        p50: samples.get(n / 2).copied().unwrap_or_default(),
        p99: samples
            .get((n * 99 / 100).min(n - 1))
            .copied()
            .unwrap_or_default(),
        n: samples.len(),
        samples,
    }
}

fn time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else if us >= 1_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// True while vpcd still holds a connection on `port` (ESTABLISHED or CLOSE_WAIT): a card
/// that connects now would be taken for the old one. Read from /proc (a probe connect()
/// would itself look like a card).
fn vpcd_holds_a_card(port: u16) -> bool {
    !rclab_emulator::transport::vpcd::probe::ports_holding_a_card([port]).is_empty()
}

fn wait_port_free(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while vpcd_holds_a_card(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// vsmartcard's vicc
// ---------------------------------------------------------------------------------------

/// Where Debian 12's `python3-virtualsmartcard` puts its package: a folder that is not on
/// Python's path, so `vicc` as installed stops with "No module named 'virtualsmartcard'".
const VICC_PACKAGE_DIR: &str = "/usr/lib/python3/site-packages/virtualsmartcard";
/// Debian's PyCryptodome, which installs as `Cryptodome`; vicc imports PyCrypto's `Crypto`
/// (and falls back to Python 2's `sha` module without it).
const CRYPTODOME: &str = "/usr/lib/python3/dist-packages/Cryptodome";

/// A `vicc -t iso7816` process serving one vpcd port. Run as Debian ships it, with
/// `PYTHONPATH` = the package folder + a folder holding one symlink `Crypto → Cryptodome`;
/// nothing else is changed (so it pays vpcd's 44 ms delayed-ACK stall, as shipped).
struct Vicc {
    child: Child,
    port: u16,
    /// The port's lock file, as `VirtualReader` takes it, so that no other rclab process
    /// serves this port while vicc does.
    _lock: Option<std::fs::File>,
}

impl Vicc {
    /// Why vicc cannot run here, if it cannot.
    fn unavailable() -> Option<String> {
        if std::env::var("RCLAB_BENCH_VICC").is_ok_and(|v| v == "0") {
            return Some("RCLAB_BENCH_VICC=0".into());
        }
        for path in ["/usr/bin/vicc", VICC_PACKAGE_DIR, CRYPTODOME] {
            if !Path::new(path).exists() {
                return Some(format!(
                    "{path} missing (apt-get install --no-install-recommends vsmartcard-vpicc python3-pycryptodome)"
                ));
            }
        }
        None
    }

    /// A folder holding only the symlink `Crypto → Cryptodome` (shared by every run).
    fn shim() -> PathBuf {
        let dir = std::env::temp_dir().join("rclab-vicc-shim");
        let link = dir.join("Crypto");
        if !link.exists() {
            let _ = std::fs::create_dir_all(&dir);
            // Another run may create it at the same moment: only the result matters.
            let _ = std::os::unix::fs::symlink(CRYPTODOME, &link);
        }
        assert!(link.exists(), "cannot create {}", link.display());
        dir
    }

    fn spawn(port: u16) -> Vicc {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join(format!("rclab-vpcd-{port}.lock")))
            .ok()
            .filter(|f| f.lock().is_ok());
        wait_port_free(port);
        let child = Command::new("/usr/bin/vicc")
            .args(["-t", "iso7816", "-P", &port.to_string()])
            .env(
                "PYTHONPATH",
                format!("{VICC_PACKAGE_DIR}:{}", Vicc::shim().display()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vicc");
        Vicc {
            child,
            port,
            _lock: lock,
        }
    }
}

impl Drop for Vicc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        wait_port_free(self.port);
    }
}

// ---------------------------------------------------------------------------------------
// Cards on ports
// ---------------------------------------------------------------------------------------

enum Kind {
    Echo,
    /// The echo card connected to the same vpcd through 127.0.0.2 (`--vpcd 127.0.0.2`):
    /// the cost of reaching the vpcd over an address other than 127.0.0.1.
    EchoVia127002,
    Engine(Arc<Profile>),
    Vicc,
}

/// A card being served on a port, and a PC/SC connection to it.
struct Served {
    channel: Option<PcscChannel>,
    reader: Option<VirtualReader>,
    vicc: Option<Vicc>,
}

impl Served {
    fn start(port: u16, kind: &Kind) -> Served {
        let (reader, vicc) = match kind {
            Kind::Echo => (Some(serve(port, Box::new(EchoCard))), None),
            Kind::EchoVia127002 => {
                let endpoint = Endpoint::parse_vpcd(&format!("127.0.0.2:{port}"))
                    .expect("endpoint")
                    .remove(0);
                (Some(serve_at(endpoint, Box::new(EchoCard))), None)
            }
            Kind::Engine(p) => (Some(serve(port, chip(p))), None),
            Kind::Vicc => (None, Some(Vicc::spawn(port))),
        };
        // A card that has just arrived may be powered down by pcscd while we connect (its
        // idle power-down about a second after insertion): try again.
        let mut attempt = 0;
        let channel = loop {
            match PcscChannel::connect(&reader_name(port), Duration::from_secs(20)) {
                Ok(c) => break c,
                Err(e) if attempt < 5 => {
                    eprintln!("connect to {}: {e}; retrying", reader_name(port));
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => panic!("connect to {}: {e}", reader_name(port)),
            }
        };
        Served {
            channel: Some(channel),
            reader,
            vicc,
        }
    }

    fn channel(&mut self) -> &mut PcscChannel {
        self.channel.as_mut().expect("connected")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(c) = self.channel.take() {
            c.close();
        }
        if let Some(r) = self.reader.take() {
            r.stop();
        }
        self.vicc.take();
    }
}

fn serve(port: u16, card: Box<dyn VirtualCard>) -> VirtualReader {
    serve_at(Endpoint::local(port), card)
}

fn serve_at(endpoint: Endpoint, card: Box<dyn VirtualCard>) -> VirtualReader {
    let reader = VirtualReader::spawn(ReaderOptions::at(endpoint), Some(card));
    assert!(
        reader.wait_attached(Duration::from_secs(10)),
        "vpcd did not take the card at {}",
        reader.endpoint()
    );
    reader
}

/// The faithful chip of a profile: the residence engine itself, or a My Number platform
/// card (the specified card's 在留AP) with no faults.
fn chip(p: &Profile) -> Box<dyn VirtualCard> {
    if p.my_number.is_some() {
        Box::new(p.card())
    } else {
        Box::new(Card::new(Arc::clone(&p.image)))
    }
}

/// The card's name in the tables.
fn card_label(p: &Profile) -> String {
    match &p.my_number {
        Some(_) => format!(
            "specified {} (在留AP, SM reads)",
            p.card_type.code(p.generation)
        ),
        None => format!("generation {}", p.generation.number()),
    }
}

/// Round trips of the same APDU to each card, one by one in turn (each round starting with
/// the next card) so that every card sees the same machine load; the first `warmup` rounds
/// are dropped.
fn interleaved(cards: &[(u16, &Kind)], apdu: &[u8], n: usize, warmup: usize) -> Vec<Stats> {
    let mut served: Vec<Served> = cards
        .iter()
        .map(|(port, k)| Served::start(*port, k))
        .collect();
    let mut samples = vec![Vec::with_capacity(n); served.len()];
    let count = served.len();
    for i in 0..n + warmup {
        // Each round starts with the next card: no card always goes first.
        for k in 0..count {
            let j = (i + k) % count;
            let t = Instant::now();
            let r = served[j].channel().transmit(apdu).expect("transmit");
            let elapsed = t.elapsed();
            assert_eq!(r[r.len() - 2..], [0x90, 0x00], "{r:02X?}");
            if i >= warmup {
                samples[j].push(elapsed);
            }
        }
    }
    drop(served);
    samples.into_iter().map(stats).collect()
}

/// Same as [`interleaved`] for two cards `a` and `b`, in four quarters (see below);
/// returns (`a`, `b`).
fn paired(
    ports: (u16, u16),
    a: &Kind,
    b: &Kind,
    apdu: &[u8],
    n: usize,
    warmup: usize,
) -> (Stats, Stats) {
    let (p, q) = ports;
    // Four quarters: each card in each reader slot, and each card started first (its
    // reader thread spawned first); this cancels slot and start-order effects.
    let quarters: [(bool, [(u16, &Kind); 2]); 4] = [
        (false, [(p, a), (q, b)]),
        (false, [(q, a), (p, b)]),
        (true, [(p, b), (q, a)]),
        (true, [(q, b), (p, a)]),
    ];
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for (i, (b_first, cards)) in quarters.into_iter().enumerate() {
        let rounds = n / 4 + usize::from(i < n % 4);
        let r = interleaved(&cards, apdu, rounds, warmup);
        let (ra, rb) = if b_first {
            (&r[1], &r[0])
        } else {
            (&r[0], &r[1])
        };
        sa.extend_from_slice(&ra.samples);
        sb.extend_from_slice(&rb.samples);
    }
    (stats(sa), stats(sb))
}

// ---------------------------------------------------------------------------------------
// Full reads
// ---------------------------------------------------------------------------------------

fn checker_options(max_response: Option<usize>) -> Options {
    Options {
        max_response,
        // 2030-01-01: inside every TEST certificate's validity, whatever today is.
        at: UNIX_EPOCH + Duration::from_secs(1_893_456_000),
        seed: Some(1),
        delivery_key: None,
    }
}

/// One full read + verify by the reference checker over PC/SC: time, and the size of every
/// response's data field (what the vicc replay asks for).
fn rclab_full_read(
    channel: &mut PcscChannel,
    checker: &Checker,
    p: &Profile,
) -> (Duration, Vec<usize>) {
    channel.power_cycle().expect("power cycle");
    let mut tap = Tap::new(&mut *channel);
    let t = Instant::now();
    let report = checker.check(&mut tap, p.card_number.as_str());
    let elapsed = t.elapsed();
    assert_eq!(
        report.verdict.verdict,
        VerdictKind::Genuine,
        "{}",
        report.detail
    );
    let sizes = tap
        .transcript()
        .iter()
        .map(|e| e.response.as_ref().map_or(0, |r| r.len() / 2 - 2))
        .collect();
    (elapsed, sizes)
}

/// vicc's iso7816 card has no residence-card files: the replay creates one 32 KiB
/// transparent EF (SFI 1), then sends, per exchange of rclab's transcript, a READ BINARY of
/// exactly as many bytes as rclab's response carried (`00 B0 81 00 Le`, short or extended
/// Le), or `SELECT MF` (`00 A4 00 0C 02 3F 00`, no data) where rclab's response had none.
/// Same number of round trips, same response sizes.
const VICC_CREATE_EF: [u8; 21] = [
    0x00, 0xE0, 0x00, 0x00, 0x10, // CREATE FILE
    0x62, 0x0E, // FCP
    0x80, 0x02, 0x80, 0x00, // 32 768 bytes
    0x82, 0x01, 0x01, // transparent EF
    0x83, 0x02, 0x00, 0x01, // FID 0001
    0x88, 0x01, 0x08, // SFI 1
];

fn vicc_replay_apdu(size: usize) -> Vec<u8> {
    match size {
        0 => vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
        1..=256 => vec![0x00, 0xB0, 0x81, 0x00, (size % 256) as u8],
        _ => {
            let [h, l] = (size as u16).to_be_bytes();
            vec![0x00, 0xB0, 0x81, 0x00, 0x00, h, l]
        }
    }
}

fn vicc_replay(channel: &mut PcscChannel, sizes: &[usize]) -> Duration {
    channel.power_cycle().expect("power cycle");
    let t = Instant::now();
    for &size in sizes {
        let r = channel
            .transmit(&vicc_replay_apdu(size))
            .expect("vicc transmit");
        assert_eq!(
            r.len(),
            size + 2,
            "vicc answered {} bytes for {size}",
            r.len()
        );
    }
    t.elapsed()
}

fn main() {
    if !Path::new("/run/pcscd/pcscd.comm").exists() {
        println!("pcscd is not running: start it with `sudo scripts/pcsc-up`; nothing measured");
        return;
    }
    let ports: Vec<u16> = std::env::var("RCLAB_BENCH_PORTS")
        .unwrap_or_else(|_| "35965,35966".into())
        .split(',')
        .map(|p| {
            p.trim()
                .parse()
                .expect("RCLAB_BENCH_PORTS: two port numbers")
        })
        .collect();
    let ports = match ports.as_slice() {
        [a, b, ..] => (*a, *b),
        _ => panic!("RCLAB_BENCH_PORTS needs two ports"),
    };
    let n = env_usize("RCLAB_BENCH_N", 2000);
    let n_vicc = env_usize("RCLAB_BENCH_VICC_N", 100);
    let reads = env_usize("RCLAB_BENCH_READS", 40);
    let vicc_missing = Vicc::unavailable();

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles/valid");
    let gen1 = Arc::new(profile::load(&dir.join("gen1-residence.yaml")).expect("profile"));
    let gen2 = Arc::new(profile::load(&dir.join("gen2-residence.yaml")).expect("profile"));
    let specified = Arc::new(
        profile::load(&dir.join("../my-number/valid/specified-07.yaml")).expect("profile"),
    );
    let select_mf = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
    println!(
        "Readers: {} and {} (ports {} and {}).",
        reader_name(ports.0),
        reader_name(ports.1),
        ports.0,
        ports.1
    );
    println!();

    // 0. The vpcd reached through 127.0.0.1 and through 127.0.0.2 (`--vpcd`), interleaved.
    println!(
        "| APDU round trip, SELECT MF, echo card, interleaved | N | mean | p50 | p99 | mean vs 127.0.0.1 | p50 vs 127.0.0.1 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (near, via) = paired(ports, &Kind::Echo, &Kind::EchoVia127002, &select_mf, n, 100);
    for (what, s) in [
        ("vpcd at 127.0.0.1 (default)", &near),
        ("vpcd at 127.0.0.2 (`--vpcd 127.0.0.2`)", &via),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} | {:+.1} % | {:+.1} % |",
            s.n,
            time(s.mean),
            time(s.p50),
            time(s.p99),
            (ratio(s.mean, near.mean) - 1.0) * 100.0,
            (ratio(s.p50, near.p50) - 1.0) * 100.0
        );
    }
    println!();
    if std::env::var("RCLAB_BENCH_ADDRESS_ONLY").is_ok_and(|v| v == "1") {
        return;
    }

    // 1. Echo against rclab, interleaved.
    println!(
        "| APDU round trip, SELECT MF `00 A4 00 0C 02 3F 00`, interleaved | N | mean | p50 | p99 | mean vs echo | p50 vs echo |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // A/A calibration: the echo card against itself shows how far apart two identical
    // cards measure in this set-up (the noise floor of the ratios below).
    let (echo_a, echo_b) = paired(ports, &Kind::Echo, &Kind::Echo, &select_mf, n, 100);
    for (what, s) in [
        ("bare echo card A (A/A calibration)", &echo_a),
        ("bare echo card B, same card type", &echo_b),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} | {:+.1} % | {:+.1} % |",
            s.n,
            time(s.mean),
            time(s.p50),
            time(s.p99),
            (ratio(s.mean, echo_a.mean) - 1.0) * 100.0,
            (ratio(s.p50, echo_a.p50) - 1.0) * 100.0
        );
    }
    for p in [&gen1, &gen2] {
        let (echo, engine) = paired(
            ports,
            &Kind::Echo,
            &Kind::Engine(Arc::clone(p)),
            &select_mf,
            n,
            100,
        );
        let g = p.generation.number();
        for (what, s) in [
            (
                format!("bare echo card, TCP_QUICKACK (paired with generation {g})"),
                &echo,
            ),
            (format!("rclab engine, generation {g}"), &engine),
        ] {
            println!(
                "| {what} | {} | {} | {} | {} | {:+.1} % | {:+.1} % |",
                s.n,
                time(s.mean),
                time(s.p50),
                time(s.p99),
                (ratio(s.mean, echo.mean) - 1.0) * 100.0,
                (ratio(s.p50, echo.p50) - 1.0) * 100.0
            );
        }
    }
    println!();

    // 2. rclab against vicc, interleaved.
    match &vicc_missing {
        Some(why) => println!("vicc not measured: {why}\n"),
        None => {
            let (engine, vicc) = paired(
                ports,
                &Kind::Engine(Arc::clone(&gen1)),
                &Kind::Vicc,
                &select_mf,
                n_vicc,
                5,
            );
            println!(
                "| APDU round trip, SELECT MF, interleaved | N | mean | p50 | p99 | mean vs rclab | p50 vs rclab |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|");
            for (what, s) in [
                ("rclab engine, generation 1", &engine),
                ("vsmartcard `vicc -t iso7816` (Debian 3.3)", &vicc),
            ] {
                println!(
                    "| {what} | {} | {} | {} | {} | × {:.1} | × {:.1} |",
                    s.n,
                    time(s.mean),
                    time(s.p50),
                    time(s.p99),
                    ratio(s.mean, engine.mean),
                    ratio(s.p50, engine.p50)
                );
            }
            println!();
        }
    }

    // 3. Full reads: rclab's reference checker; vicc replaying the same exchange sizes.
    let trust = TrustStore::embedded_test_roots();
    println!(
        "| full card read over PC/SC | reads | APDUs | response bytes | rclab mean (p50) | vicc, same sizes: reads | vicc mean (p50) | vicc ÷ rclab |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in [&gen1, &gen2, &specified] {
        // The 在留AP's SM reads whole EFs only (its READ takes P2 as the only offset).
        let sizes: &[Option<usize>] = if p.my_number.is_some() {
            &[None]
        } else {
            &[None, Some(1693), Some(258)]
        };
        for &max_response in sizes {
            let checker = Checker {
                trust: &trust,
                options: checker_options(max_response),
            };
            let mut rclab = Served::start(ports.0, &Kind::Engine(Arc::clone(p)));
            let mut vicc = vicc_missing.is_none().then(|| {
                let mut v = Served::start(ports.1, &Kind::Vicc);
                let r = v.channel().transmit(&VICC_CREATE_EF).expect("CREATE FILE");
                assert_eq!(r, [0x90, 0x00], "vicc CREATE FILE");
                v
            });
            let vicc_every = (reads / 4).max(1);
            let (mut rclab_times, mut vicc_times, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..reads + 2 {
                let (t, s) = rclab_full_read(rclab.channel(), &checker, p);
                if i >= 2 {
                    rclab_times.push(t);
                }
                sizes = s;
                if let Some(v) = vicc.as_mut()
                    && i >= 2
                    && (i - 2) % vicc_every == 0
                {
                    vicc_times.push(vicc_replay(v.channel(), &sizes));
                }
            }
            drop(vicc);
            drop(rclab);
            let r = stats(rclab_times);
            let how = match max_response {
                None => "whole-EF extended reads".to_owned(),
                Some(m) => format!("≤ {m}-byte responses"),
            };
            let bytes: usize = sizes.iter().sum();
            let vicc_cols = if vicc_times.is_empty() {
                "— | — | —".to_owned()
            } else {
                let v = stats(vicc_times);
                format!(
                    "{} | {} ({}) | × {:.0}",
                    v.n,
                    time(v.mean),
                    time(v.p50),
                    ratio(v.mean, r.mean)
                )
            };
            println!(
                "| {}, {how} | {} | {} | {bytes} | {} ({}) | {vicc_cols} |",
                card_label(p),
                r.n,
                sizes.len(),
                time(r.mean),
                time(r.p50),
            );
        }
    }
    println!();
    println!(
        "rclab: the reference checker's whole read + verify (GET CHALLENGE, MUTUAL AUTHENTICATE, \
         VERIFY, SELECTs, every EF, SM decryption, signature and chain check), after a power cycle. \
         vicc: the same number of round trips with the same response sizes (READ BINARY of a \
         created 32 KiB EF, SELECT MF where rclab's answer had no data); no cryptography."
    );
}
