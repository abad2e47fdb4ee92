//! rclab suite: the reference checker and the conformance tooling built around the
//! emulated residence card.
//!
//! User documentation is the repository's README; these docs map the code. The card side
//! (layout table, profiles, engine, faults, transports, the reader session) is the
//! `rclab-emulator` crate; its crate docs say how to add a card type, a fault and a
//! card-side transport.
//!
//! How the parts fit:
//! - [`checker`]: the reference checker. It reads a card only through the emulator's
//!   `Channel` with `rclab_emulator::reader::Session` (`checker/read.rs`), parses each EF's
//!   data objects strictly (`checker/objects.rs`), verifies the check code and the
//!   certificate chain (`checker/pki.rs`) and judges the card (`checker/judge.rs`); a step
//!   that cannot go on ends the check with its verdict (`checker/stop.rs`).
//!   [`checker::my_number`] is the My Number card's checker (JPKI: the authentication
//!   certificate's chain, the PIN's tries, a signed fresh challenge), on the emulator's
//!   application table; [`checker::CardSecret`] (card number or PIN) picks which runs.
//!   The card number also opens a specified residence card (07/08): a card with no card
//!   type at its MF is read through its 在留AP (`checker/specified.rs`: key delivery, its
//!   SM, every open protocol question tried in turn) by the same judge.
//! - [`pcsc_channel`]: the same checker over pcscd (the `pcsc` crate), and [`readers`]: the
//!   `--vpcd`/`--listen` reader slots that `rclab serve` and `rclab run` share.
//! - [`judgement`]: one rule for a verdict against a profile's expectation.
//! - [`run`]: the runner, below.
//! - [`fuzzing`]: the fuzz-target bodies (`fuzz/` calls them; `tests/fuzz_regressions.rs`
//!   replays their corpus).
//! - [`probe`]: `rclab probe` and `rclab record` — the knob battery as a table
//!   (`probe/battery.rs`: each probe with the knobs it decides, what it needs, risks and
//!   sends), the fragment it writes (`probe/fragment.rs`), and whole-card recordings
//!   (`probe/record.rs`). A knob added to the emulator's `KNOBS` needs a probe there (or a
//!   stated reason in `UNDECIDABLE`): a test says so.
//! - `src/main.rs` and `src/cli/`: the `rclab` binary, one module per subcommand
//!   (`check.rs`, `serve.rs`, `run.rs`, `merge.rs`, `probe.rs`, `record.rs`; flag parsing
//!   in `parse.rs`).
//!
//! The runner (`rclab run`, [`run`]) in parts:
//! - [`run::host`]: where a case's card lives ([`run::host::CardHost`]: in process, or in
//!   a vpcd reader behind pcscd), with one recorder for the transcript;
//! - [`run::adapter`]: the checkers ([`run::adapter::Kind`]: the built-in reference
//!   checker, or an external process) and the card kinds each checks (`cards:`;
//!   [`run::pairs`] pairs checkers with profiles of those kinds only);
//! - [`judgement`]: the one rule that judges a verdict against its expectation, for
//!   `rclab check`, `rclab run` and the tests;
//! - [`run::report`]: one module per report format over the typed [`run::report::Summary`];
//! - [`run::baseline`]: `--baseline`, read into typed results;
//! - [`run::delivery_key`]: the TEST delivery public key a specified card's checker is
//!   configured with (the reference checker's option, `{delivery_key}` for processes), in
//!   the format the profile names; `rclab check --delivery-key` reads files through it too;
//! - [`run::variants`]: the pairwise variants of the valid cards over the knobs each card
//!   kind shows (`KnobSpec::applies_to_profile`).
//!
//! # How to add …
//!
//! **A transport** (how the runner presents a card to checkers):
//! 1. `suite/src/run/host.rs`: a [`run::host::CardHost`] implementation (it hands out a
//!    channel or a reader name, and the transcript), next to `InProcess` and `Vpcd`.
//! 2. `suite/src/run/mod.rs`: a [`run::Transport`] variant, and the arm of `run_locked`
//!    that builds that host per worker.
//! 3. `suite/src/cli/run.rs`: the `--transport` value; the card side, if new, in
//!    `emulator/src/transport/` (see the emulator's docs).
//!
//! **A report format**:
//! 1. `suite/src/run/report/<format>.rs`: a module that renders the typed
//!    [`run::report::Summary`] and the results (never another format's output).
//! 2. `suite/src/run/report/mod.rs`: declare it and write its file in
//!    [`run::report::write_all_with_cards`].
//! 3. A test in `suite/tests/conformance.rs` next to the other formats' checks.
//!
//! **A card type**: rows in `emulator/src/protocol/layout.rs` (see the emulator's docs);
//! on this side only `suite/src/run/data.rs` (`CardKind`, the kinds checkers report) and
//! `suite/schema/rclab.verdict.v2.json`.
//!
//! **A fault**: `emulator/src/fault/spec.rs` and `emulator/src/fault/sim.rs` (see the
//! emulator's docs); `suite/tests/pcsc_faults.rs` if it behaves differently behind pcscd.

pub mod checker;
pub mod fuzzing;
pub mod judgement;
pub mod pcsc_channel;
pub mod probe;
pub mod readers;
pub mod run;
