//! In-process throughput of the card engine and the reference checker.
//! Run: `cargo bench -p rclab-suite --bench inprocess` — prints a table, asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::crypto::card_number_key;
use rclab_emulator::protocol::{AID_DF1, AID_DF3, CommandBuilder, Generation, cla, ins};
use rclab_emulator::reader::{self, ReaderSecrets, Session};
use rclab_suite::checker::{Checker, Options, TrustStore};

/// Runs `f` for about `budget`, in rounds; returns the best per-iteration time of 5 rounds.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut calibration = 0u32;
    while start.elapsed() < budget / 20 {
        f();
        calibration += 1;
    }
    let per_round = calibration.max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed() / per_round
        })
        .min()
        .unwrap_or_default()
}

fn load(name: &str) -> Profile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/profiles/valid")
        .join(name);
    profile::load(&path).expect("bundled profile")
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("RCLAB_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000),
    );
    let trust = TrustStore::embedded_test_roots();
    println!("| measurement | generation | time per op | ops/s |");
    println!("|---|---|---:|---:|");
    let row = |what: &str, generation: Generation, t: Duration| {
        println!(
            "| {what} | {} | {:.2} µs | {:.0} |",
            generation.number(),
            t.as_secs_f64() * 1e6,
            1.0 / t.as_secs_f64()
        );
    };
    for name in ["gen1-residence.yaml", "gen2-residence.yaml"] {
        let p = load(name);
        let generation = p.generation;
        let mut card = p.chip();

        let get_challenge = reader::GET_CHALLENGE_APDU;
        row(
            "APDU: GET CHALLENGE",
            generation,
            measure(budget, || {
                black_box(card.transmit(black_box(&get_challenge)));
            }),
        );

        let read_type = CommandBuilder::new(cla::PLAIN, ins::READ_BINARY, 0x8A, 0)
            .ne(256)
            .to_bytes();
        row(
            "APDU: READ BINARY (MF card type, plain)",
            generation,
            measure(budget, || {
                black_box(card.transmit(black_box(&read_type)));
            }),
        );

        // Authenticated session for the protected reads, through the shared reader.
        let key = card_number_key(p.card_number.as_str().as_bytes());
        card.reset();
        let mut session = Session::new(&mut card, generation);
        let rnd_icc = session.get_challenge().expect("GET CHALLENGE");
        let secrets = ReaderSecrets {
            rnd_ifd: [1; 8],
            k_ifd: [2; 16],
        };
        session
            .mutual_authenticate(generation, &key, &rnd_icc, &secrets)
            .expect("MUTUAL AUTHENTICATE");
        session
            .verify(p.card_number.as_str().as_bytes())
            .expect("VERIFY");
        let select_df3 = reader::select_by_aid_apdu(&AID_DF3);
        card.transmit(&select_df3);
        let read_df3 = reader::plain_read_apdu(0x82, 0, 65_536);
        row(
            "APDU: READ BINARY (DF3 whole EF, plain)",
            generation,
            measure(budget, || {
                black_box(card.transmit(black_box(&read_df3)));
            }),
        );
        let select_df1 = reader::select_by_aid_apdu(&AID_DF1);
        card.transmit(&select_df1);
        let sfi = if generation == Generation::First {
            0x85
        } else {
            0x84
        };
        let read_sm = reader::sm_read_apdu(sfi, 0, 0);
        row(
            "APDU: SM READ BINARY (largest DF1 EF)",
            generation,
            measure(budget, || {
                black_box(card.transmit(black_box(&read_sm)));
            }),
        );

        let checker = Checker {
            trust: &trust,
            options: Options {
                max_response: None,
                at: SystemTime::now(),
                seed: Some(1),
                delivery_key: None,
            },
        };
        row(
            "full read + verify (reference checker)",
            generation,
            measure(budget, || {
                let report = checker.check(&mut p.card(), p.card_number.as_str());
                assert!(report.verdict.verdict == rclab_emulator::verdict::VerdictKind::Genuine);
            }),
        );
        row(
            "profile load + compile (incl. signing)",
            generation,
            measure(budget, || {
                black_box(load(name));
            }),
        );
    }
}
