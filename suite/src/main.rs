//! `rclab`: the command-line front of the emulator and the conformance suite.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::{
    check::CheckArgs, merge::MergeArgs, probe::ProbeArgs, record::RecordArgs, run::RunArgs,
    serve::ServeArgs,
};

#[derive(Parser)]
#[command(
    name = "rclab",
    version,
    about = "Residence-card chip emulator and checker conformance suite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the reference checker in-process against emulated cards.
    ///
    /// With one `--profile`, prints the checker's JSON report. Otherwise checks every
    /// profile (default: vectors/profiles) and prints expected against actual verdicts;
    /// the exit code is 1 when any verdict differs from its expectation.
    Check(CheckArgs),
    /// Serve profiles as cards in vpcd virtual readers of a running pcscd.
    ///
    /// Each profile gets its own reader (`--reader-port`, or the next free port from 35963
    /// of this machine's vpcd; or the readers of `--vpcd`/`--listen`, in order).
    /// Commands on standard input: `remove PORT`, `insert PORT [PROFILE]`, `list`, `quit`.
    /// SIGINT/SIGTERM remove every card and exit.
    Serve(ServeArgs),
    /// Run checkers against every profile and write reports (the conformance suite).
    ///
    /// Each outcome is appended to OUT/results.jsonl as soon as it is known; `--resume`
    /// continues a killed run. Reports: OUT/report.md, report.html, junit.xml, results.json.
    /// Exit code 1 when any case is FAIL, CRASH, TIMEOUT or BAD-OUTPUT (with --baseline:
    /// only when a case that passed in the baseline no longer does).
    Run(RunArgs),
    /// Merge the output folders of a sharded run (`rclab run --shard I/N`) into the reports
    /// of the whole run.
    ///
    /// Refuses shards of different rclab versions, catalogues, checkers or transports,
    /// overlapping or missing shards, and incomplete or malformed shard folders. Writes
    /// OUT/results.jsonl and the reports of `rclab run`; the exit code is as `rclab run`'s.
    Merge(MergeArgs),
    /// Probe a card's open behaviours (the knob table) and print them as a profile fragment.
    ///
    /// Without --card-number only the free files and the reader are probed; with it, the
    /// protected files' layouts too. Keeps status words, lengths and layouts only: no file
    /// contents, card number, names or UID. Risky probes (a wrong VERIFY) run only with
    /// --risky.
    Probe(ProbeArgs),
    /// Record a whole card as a profile that replays it byte for byte (PERSONAL DATA), or
    /// with --redact as a shareable TEST card with the same layout and behaviour.
    Record(RecordArgs),
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rclab: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Merge(args) => cli::merge::run(args),
        Command::Probe(args) => cli::probe::run(args),
        Command::Record(args) => cli::record::run(args),
    }
}

/// Rust starts programs with SIGPIPE ignored, so `rclab check | head` would panic on the
/// closed pipe; like other Unix tools, rclab should just stop.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists, so no thread can
    // race the disposition change; SIG_DFL is a valid disposition for SIGPIPE.
    #[allow(unsafe_code)] // the one signal() call, proven above
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
