//! `rclab`: the command-line front of the emulator and the conformance suite.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use rclab_emulator::profile::{self, Profile};
use rclab_suite::checker::{Checker, Options, Report, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;

mod serve;

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
    /// Each profile gets its own reader (`--reader-port`, or the next free port from 35963).
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
}

#[derive(Args)]
struct RunArgs {
    /// `reference` (built in) or an adapter YAML file; repeat for several.
    #[arg(long = "checker", value_name = "ADAPTER", default_value = "reference")]
    checkers: Vec<String>,
    /// Only profiles whose name matches this glob (e.g. `forged/*`, `*gen2*`).
    #[arg(long, value_name = "GLOB", default_value = "*")]
    profiles: String,
    /// Folder of profiles.
    #[arg(long, value_name = "DIR", default_value = "vectors/profiles")]
    profile_dir: PathBuf,
    /// Cases run at once (with pcsc: at most one per virtual reader).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where the cards live: in this process, or behind pcscd (needed by process checkers).
    #[arg(long, value_enum, default_value = "inproc")]
    transport: rclab_suite::run::Transport,
    /// Output folder for results and reports.
    #[arg(long, value_name = "DIR", default_value = "target/rclab-run")]
    out: PathBuf,
    /// Keep the results already in OUT/results.jsonl and run only the missing cases.
    #[arg(long)]
    resume: bool,
    /// Trusted roots handed to checkers (`{trust_dir}`) and used by the reference checker.
    #[arg(long, value_name = "DIR", default_value = "vectors/pki/trust")]
    trust: PathBuf,
    /// Check certificates as of this date, YYYY-MM-DD (default: now).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    at: Option<SystemTime>,
    /// A results.json of an earlier run: fail only on regressions against it.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Profiles to serve, one reader each.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<PathBuf>,
    /// vpcd port of each profile's reader, in order (default: 35963, 35964, …).
    #[arg(long = "reader-port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Log every APDU (`>>>` command, `<<<` response) and power event to stderr.
    #[arg(long)]
    trace: bool,
    /// ATR to present, hex (default: an ISO 14443-B card behind a PC/SC reader).
    #[arg(long, value_name = "HEX")]
    atr: Option<String>,
}

#[derive(Args)]
struct CheckArgs {
    /// Read a real card (or an emulated one served by `rclab serve`) in this PC/SC reader
    /// instead of emulating profiles in-process; needs --card-number.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["profiles", "profile_dir"], requires = "card_number")]
    reader: Option<String>,
    /// Seconds to wait for a card in --reader.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    wait: f64,
    /// A profile file; repeat for several.
    #[arg(long = "profile", value_name = "FILE")]
    profiles: Vec<PathBuf>,
    /// A folder of profiles (searched recursively).
    #[arg(long = "profiles", value_name = "DIR", conflicts_with = "profiles")]
    profile_dir: Option<PathBuf>,
    /// Card number the checker enters (default: the number printed on each card).
    #[arg(long)]
    card_number: Option<String>,
    /// Folder of trusted root certificates (default: the TEST roots built into rclab).
    #[arg(long, value_name = "DIR")]
    trust: Option<PathBuf>,
    /// Check certificates as of this date, YYYY-MM-DD (default: now).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    at: Option<SystemTime>,
    /// Largest response the checker accepts, in bytes: read EFs in chunks (phones: ~1700).
    #[arg(long, value_name = "BYTES")]
    max_response: Option<usize>,
    /// Seed of the checker's random numbers (default: from the operating system).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the JSON report(s) instead of the table.
    #[arg(long)]
    json: bool,
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
        Command::Check(args) => check(args),
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run_suite(args),
    }
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let trust = match &args.trust {
        Some(dir) => TrustStore::from_dir(dir)?,
        None => TrustStore::embedded_test_roots(),
    };
    let options = Options {
        max_response: args.max_response,
        at: args.at.unwrap_or_else(SystemTime::now),
        seed: args.seed,
    };
    let checker = Checker {
        trust: &trust,
        options,
    };
    if let Some(reader) = &args.reader {
        let number = args.card_number.as_deref().unwrap_or_default();
        let wait = Duration::from_secs_f64(args.wait.max(0.0));
        let mut channel = PcscChannel::connect(reader, wait)?;
        let report = checker.check(&mut channel, number);
        channel.close();
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let profiles = load_profiles(&args)?;
    let reports: Vec<(Profile, Report)> = profiles
        .into_iter()
        .map(|p| {
            let number = args
                .card_number
                .clone()
                .unwrap_or_else(|| p.card_number.to_string());
            let report = checker.check(&mut p.card(), &number);
            (p, report)
        })
        .collect();

    if args.json || (args.profiles.len() == 1 && args.profile_dir.is_none()) {
        let out: Vec<_> = reports
            .iter()
            .map(|(p, r)| serde_json::json!({ "profile": p.name, "report": r }))
            .collect();
        let value = if out.len() == 1 {
            out[0]["report"].clone()
        } else {
            serde_json::Value::Array(out)
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    Ok(print_table(
        &reports,
        args.card_number.is_some() || args.trust.is_some(),
    ))
}

fn load_profiles(args: &CheckArgs) -> Result<Vec<Profile>> {
    if !args.profiles.is_empty() {
        return args
            .profiles
            .iter()
            .map(|path| profile::load(path).map_err(anyhow::Error::new))
            .collect();
    }
    let dir = args
        .profile_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("vectors/profiles"));
    if !dir.is_dir() {
        bail!(
            "{}: no such folder (run from the repository root or pass --profiles DIR)",
            dir.display()
        );
    }
    profile::load_dir(&dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} profile(s) failed to load:\n{}",
            errors.len(),
            lines.join("\n")
        )
    })
}

/// Prints expected vs actual; returns failure when any differs. With a changed card
/// number or trust store the expectations do not apply, so only the verdicts are shown.
fn print_table(reports: &[(Profile, Report)], expectations_off: bool) -> ExitCode {
    let width = reports
        .iter()
        .map(|(p, _)| p.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:width$}  {:<34}  {:<34}  result",
        "profile", "expected", "actual"
    );
    let mut failures = 0;
    for (p, r) in reports {
        let expected = p.expect.verdict;
        // A limitation never excuses a genuine verdict on a card that is not genuine.
        let wrongly_genuine = r.verdict.verdict == rclab_emulator::verdict::VerdictKind::Genuine
            && expected.verdict != rclab_emulator::verdict::VerdictKind::Genuine;
        let wrong = rclab_emulator::verdict::wrong_accept(p.expect.threat, &expected, &r.verdict);
        let result = if expectations_off {
            "-"
        } else if expected.accepts(&r.verdict) {
            "ok"
        } else if p.expect.limitation.is_some() && !wrongly_genuine {
            // A declared limitation of the reference checker (`expect.limitation`).
            "limitation"
        } else {
            failures += 1;
            match wrong {
                Some(rclab_emulator::verdict::WrongAccept::FalseAccept) => {
                    "MISMATCH (false accept)"
                }
                Some(rclab_emulator::verdict::WrongAccept::MissedCorruption) => {
                    "MISMATCH (missed corruption)"
                }
                None => "MISMATCH",
            }
        };
        println!(
            "{:width$}  {:<34}  {:<34}  {result}",
            p.name,
            expected.to_string(),
            r.verdict.to_string()
        );
        if result.starts_with("MISMATCH") {
            println!("{:width$}  ↳ {}", "", r.detail);
        }
        if let (Some(limitation), "limitation") = (&p.expect.limitation, result) {
            println!("{:width$}  ↳ {limitation}", "");
        }
    }
    println!(
        "\n{} profile(s), {failures} unexpected verdict(s)",
        reports.len()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_suite(args: RunArgs) -> Result<ExitCode> {
    use rclab_suite::run::{
        self, Outcome, RunConfig,
        adapter::{Adapter, glob_match},
        report,
    };
    let checkers = args
        .checkers
        .iter()
        .map(|c| Adapter::load(c))
        .collect::<Result<Vec<_>, _>>()?;
    let profiles: Vec<Profile> = profile::load_dir(&args.profile_dir)
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(
                "{} profile(s) failed to load:\n{}",
                errors.len(),
                lines.join("\n")
            )
        })?
        .into_iter()
        .filter(|p| glob_match(&args.profiles, &p.name))
        .collect();
    if profiles.is_empty() {
        bail!(
            "no profile in {} matches {:?}",
            args.profile_dir.display(),
            args.profiles
        );
    }
    let repo = std::env::current_dir()?;
    let config = RunConfig {
        checkers,
        profiles,
        jobs: args.jobs,
        transport: args.transport,
        out: args.out.clone(),
        resume: args.resume,
        trust_dir: repo.join(&args.trust),
        repo,
        at: args.at.unwrap_or_else(SystemTime::now),
        plain: args.plain,
    };
    let results = run::run(&config)?;
    report::write_all(&args.out, &config.checkers, &results)?;
    let summary = report::markdown(&config.checkers, &results);
    let end = summary.find("\n## Matrix").unwrap_or(summary.len());
    println!("{}", &summary[..end]);
    println!(
        "reports: {}/report.md, report.html, junit.xml, results.json",
        args.out.display()
    );

    let failed = match &args.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let baseline: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let passed_before = |checker: &str, profile: &str| {
                baseline["results"].as_array().is_some_and(|rs| {
                    rs.iter().any(|r| {
                        r["checker"] == checker && r["profile"] == profile && r["outcome"] == "PASS"
                    })
                })
            };
            let regressions: Vec<_> = results
                .iter()
                .filter(|r| r.outcome != Outcome::Pass && passed_before(&r.checker, &r.profile))
                .collect();
            for r in &regressions {
                println!(
                    "REGRESSION {} × {}: {} ({})",
                    r.checker,
                    r.profile,
                    r.outcome.as_str(),
                    r.detail
                );
            }
            !regressions.is_empty()
        }
        None => results.iter().any(|r| r.outcome.is_failure()),
    };
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Rust starts programs with SIGPIPE ignored, so `rclab check | head` would panic on the
/// closed pipe; like other Unix tools, rclab should just stop.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists, so no thread can
    // race the disposition change; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `YYYY-MM-DD` at 00:00 UTC.
fn parse_date(text: &str) -> Result<SystemTime> {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        bail!("{text:?} is not YYYY-MM-DD");
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().context("year")?,
        m.parse().context("month")?,
        d.parse().context("day")?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        bail!("{text:?} is not a date from 1970 on");
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400))
}
