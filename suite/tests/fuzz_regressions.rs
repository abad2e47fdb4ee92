//! Replays every committed fuzz input (`fuzz/regressions/<target>/*`: crashes found and
//! fixed, plus a few named seeds) and every generated corpus seed through the same
//! functions the cargo-fuzz targets call (`rclab_suite::fuzzing`), so a plain `cargo test`
//! keeps them fixed. Run one target's inputs with
//! `cargo test -p rclab-suite --test fuzz_regressions -- <target>`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::path::PathBuf;

use rclab_suite::fuzzing::{self, TARGETS};

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .filter(|(name, _)| !name.ends_with(".md"))
        .collect();
    out.sort();
    out
}

/// Runs every input, reporting all that fail (not only the first).
fn replay(target: &str, inputs: Vec<(String, Vec<u8>)>) {
    let run = fuzzing::target(target).expect("known target");
    assert!(!inputs.is_empty(), "{target}: no inputs");
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|(name, bytes)| {
            std::panic::catch_unwind(|| run(bytes))
                .err()
                .map(|_| name.clone())
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{target}: failing inputs: {failures:#?}"
    );
}

macro_rules! target_tests {
    ($($target:ident),*) => {
        mod committed { use super::*; $(
            #[test]
            fn $target() {
                replay(stringify!($target), regressions(stringify!($target)));
            }
        )* }
        mod seeds { use super::*; $(
            #[test]
            fn $target() {
                replay(stringify!($target), fuzzing::seeds(stringify!($target)));
            }
        )* }
    };
}

target_tests!(
    apdu_roundtrip,
    tlv_roundtrip,
    card_sequence,
    profile_loader,
    checker_responses,
    journal,
    my_number_codecs,
    my_number_checker_responses
);

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "apdu_roundtrip",
            "tlv_roundtrip",
            "card_sequence",
            "profile_loader",
            "checker_responses",
            "journal",
            "my_number_codecs",
            "my_number_checker_responses"
        ]
    );
}
