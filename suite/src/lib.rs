//! rclab suite: the reference checker and the conformance tooling built around the
//! emulated residence card.
//!
//! The runner (`rclab run`, [`run`]) in parts:
//! - [`run::host`]: where a case's card lives ([`run::host::CardHost`]: in process, or in
//!   a vpcd reader behind pcscd), with one recorder for the transcript;
//! - [`run::adapter`]: the checkers ([`run::adapter::Kind`]: the built-in reference
//!   checker, or an external process);
//! - [`judgement`]: the one rule that judges a verdict against its expectation, for
//!   `rclab check`, `rclab run` and the tests;
//! - [`run::report`]: one module per report format over the typed [`run::report::Summary`];
//! - [`run::baseline`]: `--baseline`, read into typed results.
//!
//! To add a transport: implement [`run::host::CardHost`] in `run/host.rs`, give
//! [`run::Transport`] a variant and let `run_locked` (`run/mod.rs`) build that host per
//! worker. To add a report format: a module in `run/report/`, written by
//! [`run::report::write_all_with_cards`]. The binary's subcommands live in `src/cli/`.

pub mod checker;
pub mod fuzzing;
pub mod judgement;
pub mod pcsc_channel;
pub mod readers;
pub mod run;
