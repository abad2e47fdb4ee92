//! APDU round trips and full card reads through the real stack: Rust `pcsc` client →
//! libpcsclite → pcscd → Debian's vpcd → TCP → card. Needs a running pcscd with vpcd
//! (`sudo scripts/pcsc-up`); prints a table, asserts nothing.
//!
//! Run: `cargo bench -p rclab-suite --bench pcsc`

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rclab_emulator::profile;
use rclab_emulator::transport::Channel;
use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualCard, VirtualReader};
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
    let n = samples.len();
    Stats {
        mean: samples.iter().sum::<Duration>() / n as u32,
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        n,
        samples,
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

const PORT: u16 = 35964;
const ECHO_PORT: u16 = 35963;

/// Round trips of the same APDU to each card, interleaved one by one so that every card
/// sees the same machine load (the engine's own cost is far below the noise of one trip).
fn interleaved_round_trips(
    cards: Vec<(u16, Box<dyn VirtualCard>)>,
    apdu: &[u8],
    n: usize,
) -> Vec<Stats> {
    let readers: Vec<VirtualReader> = cards
        .into_iter()
        .map(|(port, card)| VirtualReader::spawn(ReaderOptions::new(port), Some(card)))
        .collect();
    let mut channels: Vec<PcscChannel> = readers
        .iter()
        .map(|r| {
            assert!(
                r.wait_attached(Duration::from_secs(10)),
                "vpcd did not take the card"
            );
            PcscChannel::connect(&r.name(), Duration::from_secs(10)).expect("connect")
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(n); channels.len()];
    for i in 0..n + 100 {
        for (channel, samples) in channels.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            let r = channel.transmit(apdu).expect("transmit");
            let elapsed = t.elapsed();
            assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
            if i >= 100 {
                samples.push(elapsed);
            }
        }
    }
    for channel in channels {
        channel.close();
    }
    for reader in readers {
        reader.stop();
    }
    samples.into_iter().map(stats).collect()
}

fn main() {
    if !std::path::Path::new("/run/pcscd/pcscd.comm").exists() {
        println!("pcscd is not running: start it with `sudo scripts/pcsc-up`; nothing measured");
        return;
    }
    let n: usize = std::env::var("RCLAB_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles/valid");
    let gen1 = profile::load(&dir.join("gen1-residence.yaml")).expect("profile");
    let gen2 = profile::load(&dir.join("gen2-residence.yaml")).expect("profile");
    let select_mf = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];

    let mut rows = Vec::new();
    for p in [&gen1, &gen2] {
        // Both port assignments, half the trips each: cancels any difference between slots.
        let a = interleaved_round_trips(
            vec![(ECHO_PORT, Box::new(EchoCard)), (PORT, Box::new(p.card()))],
            &select_mf,
            n / 2,
        );
        let b = interleaved_round_trips(
            vec![(PORT, Box::new(EchoCard)), (ECHO_PORT, Box::new(p.card()))],
            &select_mf,
            n / 2,
        );
        let merge = |x: &Stats, y: &Stats| stats([x.samples.clone(), y.samples.clone()].concat());
        let (echo, engine) = (merge(&a[0], &b[0]), merge(&a[1], &b[1]));
        let generation = p.generation.number();
        rows.push((
            format!("bare echo card (paired with generation {generation})"),
            echo.mean,
            echo,
        ));
        let base = rows.last().map(|r| r.1).unwrap_or_default();
        rows.push((
            format!("rclab engine, generation {generation}"),
            base,
            engine,
        ));
    }
    println!("| APDU round trip (SELECT MF), interleaved | N | mean | p50 | p99 | mean vs echo |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, echo_mean, s) in &rows {
        println!(
            "| {what} | {} | {} | {} | {} | {:+.1} % |",
            s.n,
            micros(s.mean),
            micros(s.p50),
            micros(s.p99),
            (s.mean.as_secs_f64() / echo_mean.as_secs_f64() - 1.0) * 100.0
        );
    }

    let trust = TrustStore::embedded_test_roots();
    println!();
    println!(
        "| full read + verify over PC/SC (reference checker) | N | mean | p50 | p99 | APDUs |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for p in [&gen1, &gen2] {
        for max_response in [None, Some(1693)] {
            let reader = VirtualReader::spawn(ReaderOptions::new(PORT), Some(Box::new(p.card())));
            assert!(reader.wait_attached(Duration::from_secs(10)));
            let mut channel =
                PcscChannel::connect(&reader.name(), Duration::from_secs(10)).expect("connect");
            let checker = Checker {
                trust: &trust,
                options: Options {
                    max_response,
                    at: SystemTime::now(),
                    seed: Some(1),
                },
            };
            let runs = (n / 20).max(10);
            let mut apdus = 0;
            let samples = (0..runs)
                .map(|_| {
                    channel.power_cycle().expect("power cycle");
                    let mut tap = rclab_emulator::transport::Tap::new(&mut channel);
                    let t = Instant::now();
                    let report = checker.check(&mut tap, p.card_number.as_str());
                    let elapsed = t.elapsed();
                    assert_eq!(
                        report.verdict.verdict,
                        VerdictKind::Genuine,
                        "{}",
                        report.detail
                    );
                    apdus = tap.transcript().len();
                    elapsed
                })
                .collect();
            let s = stats(samples);
            let how = match max_response {
                None => "whole-EF reads".to_owned(),
                Some(m) => format!("{m}-byte chunks"),
            };
            println!(
                "| generation {}, {how} | {} | {} | {} | {} | {apdus} |",
                p.generation.number(),
                s.n,
                micros(s.mean),
                micros(s.p50),
                micros(s.p99)
            );
            channel.close();
            reader.stop();
        }
    }
}
