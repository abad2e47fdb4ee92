//! The card's behaviour tests in one binary (one link instead of eight): engine rules,
//! faults, hostile files, known answers, the official card side, oversized EFs, profile
//! errors and the bundled profiles. One module per former test file, so a test is found as
//! `cargo test -p rclab-emulator --test card <module>::<name>`.
//!
//! Kept as their own binaries: `catalogue` (it regenerates vectors/profiles/README.md and is
//! named in it) and the property tests (`never_panics`, `faults_never_panic`,
//! `properties`), whose proptest regression files are kept next to their source.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

#[path = "../common/mod.rs"]
mod common;

mod engine;
mod faults;
mod hostile_files;
mod known_answers;
mod official_card_side;
mod oversized_ef;
mod profile_errors;
mod profiles_load;
