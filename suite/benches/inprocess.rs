//! In-process throughput of the card engine and the reference checker.
//! Run: `cargo bench -p rclab-suite --bench inprocess` — prints a table, asserts nothing.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::auth;
use rclab_emulator::protocol::crypto::card_number_key;
use rclab_emulator::protocol::{CommandBuilder, Generation, VERIFY_P2_CARD_NUMBER, cla, ins, sm};
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

        let get_challenge = CommandBuilder::new(cla::PLAIN, ins::GET_CHALLENGE, 0, 0)
            .ne(8)
            .to_bytes();
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

        // Authenticated session for the protected reads.
        let key = card_number_key(p.card_number.as_str().as_bytes());
        card.reset();
        let rnd_icc: [u8; 8] = card.transmit(&get_challenge)[..8].try_into().unwrap();
        let (rnd_ifd, k_ifd) = ([1u8; 8], [2u8; 16]);
        let cryptogram = auth::cryptogram(generation, &key, &rnd_ifd, &rnd_icc, &k_ifd);
        let answer = card.transmit(
            &CommandBuilder::new(0, ins::MUTUAL_AUTHENTICATE, 0, 0)
                .data(cryptogram.to_vec())
                .ne(256)
                .to_bytes(),
        );
        let ks = auth::reader_finish(generation, &key, &rnd_ifd, &rnd_icc, &k_ifd, &answer[..40])
            .unwrap();
        let verify = CommandBuilder::new(cla::SM, ins::VERIFY, 0, VERIFY_P2_CARD_NUMBER)
            .data(
                sm::seal(generation, &ks, p.card_number.as_str().as_bytes())
                    .expect("a card number fits one DO 86"),
            )
            .to_bytes();
        assert_eq!(card.transmit(&verify), [0x90, 0]);
        let select_df3 = CommandBuilder::new(0, ins::SELECT, 4, 0x0C)
            .data(rclab_emulator::protocol::AID_DF3.to_vec())
            .to_bytes();
        card.transmit(&select_df3);
        let read_df3 = CommandBuilder::new(cla::PLAIN, ins::READ_BINARY, 0x82, 0)
            .ne(65_536)
            .to_bytes();
        row(
            "APDU: READ BINARY (DF3 whole EF, plain)",
            generation,
            measure(budget, || {
                black_box(card.transmit(black_box(&read_df3)));
            }),
        );
        let select_df1 = CommandBuilder::new(0, ins::SELECT, 4, 0x0C)
            .data(rclab_emulator::protocol::AID_DF1.to_vec())
            .to_bytes();
        card.transmit(&select_df1);
        let sfi = if generation == Generation::First {
            0x85
        } else {
            0x84
        };
        let read_sm = CommandBuilder::new(cla::SM, ins::READ_BINARY, sfi, 0)
            .data(sm::expected_length(0).to_vec())
            .ne(65_536)
            .extended()
            .to_bytes();
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
