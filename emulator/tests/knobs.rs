//! The knob table (`rclab_emulator::card::knobs::KNOBS`): the README's copy matches it, and
//! every value of every knob compiles over every valid profile of its generations.
//!
//! After changing the table, rewrite the README with
//! `RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-emulator --test knobs`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::{Path, PathBuf};

use rclab_emulator::card::knobs::{KNOBS, readme_table};
use rclab_emulator::profile;

const BEGIN: &str = "<!-- knobs:begin -->\n";
const END: &str = "<!-- knobs:end -->";

fn readme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

#[test]
fn readme_knob_table_matches_the_code_table() {
    let path = readme();
    let text = std::fs::read_to_string(&path).expect("README");
    let start = text.find(BEGIN).expect("README has the knobs:begin marker") + BEGIN.len();
    let end = text[start..].find(END).expect("knobs:end marker") + start;
    let table = readme_table();
    if text[start..end] == table {
        return;
    }
    if std::env::var_os("RCLAB_UPDATE_CATALOGUE").is_some() {
        let updated = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("write README");
        return;
    }
    panic!(
        "README's knob table differs from KNOBS; run \
         RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-emulator --test knobs\n\
         expected:\n{table}"
    );
}

/// Every (knob, value) over every valid profile it applies to (`applies_to_profile`:
/// residence cards of the knob's generations, My Number and specified cards of the
/// platform's knobs) compiles, as an overlay profile in a temporary folder that `extends:`
/// the valid profile by absolute path.
#[test]
fn every_knob_value_compiles_over_every_valid_profile() {
    let mut valid = Vec::new();
    for sub in ["profiles/valid", "profiles/my-number/valid"] {
        let dir = common::vectors_dir().join(sub);
        valid.extend(profile::load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}")));
    }
    assert!(
        valid
            .iter()
            .any(|p| p.kind() == rclab_emulator::chip::ChipKind::SpecifiedResidence)
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut compiled = 0;
    for knob in KNOBS {
        for base in &valid {
            if !knob.applies_to_profile(base.kind(), base.generation) {
                continue;
            }
            for value in knob.values {
                let overlay = knob
                    .overlay(&base.path.display().to_string(), value)
                    .expect("value from the table");
                let file = dir.join("variant.yaml");
                std::fs::write(&file, &overlay).expect("write overlay");
                let variant = profile::load(&file).unwrap_or_else(|e| {
                    panic!("{} = {value} over {}: {e}", knob.path, base.path.display())
                });
                assert_eq!(variant.generation, base.generation);
                assert_eq!(variant.kind(), base.kind());
                compiled += 1;
            }
        }
    }
    assert!(compiled > 20, "{compiled}");
}
