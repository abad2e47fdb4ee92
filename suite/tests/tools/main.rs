//! The tool-side tests without their own process needs, in one binary (one link instead of
//! four): what checkers read (`data_read`), hostile flags and files (`hostile_cli`), the
//! runner against misbehaving checkers (`hostile_runner`) and the verdict schema
//! (`verdict_schema`). One module per former test file: run one with
//! `cargo test -p rclab-suite --test tools <module>::<name>`.
//!
//! Kept as their own binaries: the snapshot tests (`catalogue`, `conformance`,
//! `reference_checker`), whose snapshot names stay as they are, and the real-stack tests
//! (`pcsc_*`, `data_pcsc`, `browser`), which share readers and pcscd between binaries
//! run one after another.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

#[path = "../common/mod.rs"]
mod common;

mod data_read;
mod hostile_cli;
mod hostile_runner;
mod verdict_schema;
