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
    /// Cases run at once, 1 or more; capped at the number of cases to run, at 64, and with
    /// pcsc at the number of free virtual readers.
    #[arg(long, default_value_t = 2, value_parser = parse_jobs)]
    jobs: usize,
    /// Where the cards live: in this process, or behind pcscd (needed by process checkers).
    #[arg(long, value_enum, default_value = "inproc")]
    transport: rclab_suite::run::Transport,
    /// With --transport pcsc: readers of a vpcd listening on HOST (one per port, PORT
    /// defaulting to 35963) instead of this machine's; repeat for more.
    #[arg(long = "vpcd", value_name = "HOST[:PORT[-LAST]]", value_parser = rclab_suite::readers::parse_vpcd)]
    vpcd: Vec<rclab_suite::readers::EndpointList>,
    /// With --transport pcsc: reversed mode, listen at ADDR:PORT (one reader per port) for
    /// a vpcd whose reader.conf says DEVICENAME ADDR:PORT; repeat for more.
    #[arg(long = "listen", value_name = "ADDR:PORT[-LAST]", value_parser = rclab_suite::readers::parse_listen)]
    listen: Vec<rclab_suite::readers::EndpointList>,
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
    /// Readers of a vpcd that listens on HOST (another machine, e.g. the Windows PC of the
    /// checker): one per port, PORT defaulting to 35963; repeat for more. No authentication
    /// or encryption: a trusted network or an SSH tunnel only.
    #[arg(long = "vpcd", value_name = "HOST[:PORT[-LAST]]", value_parser = rclab_suite::readers::parse_vpcd, conflicts_with = "ports")]
    vpcd: Vec<rclab_suite::readers::EndpointList>,
    /// Reversed mode: listen at ADDR:PORT (one reader per port) for a vpcd whose reader.conf
    /// says DEVICENAME ADDR:PORT; repeat for more.
    #[arg(long = "listen", value_name = "ADDR:PORT[-LAST]", value_parser = rclab_suite::readers::parse_listen, conflicts_with = "ports")]
    listen: Vec<rclab_suite::readers::EndpointList>,
    /// Exit with status 1 when a reader has had no vpcd connection after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = serve::parse_wait)]
    wait: Option<Duration>,
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
    /// Seconds to wait for a card in --reader: 0 to 86400 (24 h), fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    wait: Duration,
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
    /// 32 to 65538.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_response)]
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
        let mut channel = PcscChannel::connect(reader, args.wait)?;
        let report = checker.check(&mut channel, number);
        channel.close();
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
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
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&reports, args.card_number.is_some() || args.trust.is_some())
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
fn print_table(reports: &[(Profile, Report)], expectations_off: bool) -> Result<ExitCode> {
    use std::fmt::Write as _;
    let mut table = String::new();
    let width = reports
        .iter()
        .map(|(p, _)| p.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(
        table,
        "{:width$}  {:<34}  {:<34}  result",
        "profile", "expected", "actual"
    )?;
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
        writeln!(
            table,
            "{:width$}  {:<34}  {:<34}  {result}",
            p.name,
            expected.to_string(),
            r.verdict.to_string()
        )?;
        if result.starts_with("MISMATCH") {
            writeln!(table, "{:width$}  ↳ {}", "", r.detail)?;
        }
        if let (Some(limitation), "limitation") = (&p.expect.limitation, result) {
            writeln!(table, "{:width$}  ↳ {limitation}", "")?;
        }
    }
    writeln!(
        table,
        "\n{} profile(s), {failures} unexpected verdict(s)",
        reports.len()
    )?;
    emit(&table)?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_suite(args: RunArgs) -> Result<ExitCode> {
    use rclab_suite::run::{
        self, Outcome, RunConfig,
        adapter::{Adapter, glob_match},
        baseline::Baseline,
        lock::lock_out,
        report,
    };
    let checkers = Adapter::load_all(&args.checkers)?;
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
    // A bad baseline is an error now, not after the whole run.
    let baseline = match &args.baseline {
        Some(path) => {
            let cases: Vec<(String, String)> = checkers
                .iter()
                .flat_map(|c| profiles.iter().map(|p| (c.name.clone(), p.name.clone())))
                .collect();
            Some(Baseline::load(path, &cases)?)
        }
        None => None,
    };
    let repo = std::env::current_dir().context("the current folder")?;
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
        readers: rclab_suite::readers::collect(&args.vpcd, &args.listen)
            .map_err(anyhow::Error::msg)?,
    };
    // Held until the reports are written: no other run writes into OUT meanwhile.
    let lock = lock_out(&args.out)?;
    stop_checkers_on_signals()?;
    let results = run::run_locked(&config, &lock)?;
    let cards = run::render::Cards::from_profiles(&config.profiles);
    report::write_all_with_cards(&args.out, &config.checkers, &results, &cards)
        .context("writing the reports")?;
    let summary = report::markdown(&config.checkers, &results);
    let end = summary.find("\n## Matrix").unwrap_or(summary.len());
    emit(&format!(
        "{}\nreports: {}/report.md, report.html, junit.xml, results.json\n",
        &summary[..end],
        args.out.display()
    ))?;

    let idle = run::idle_checkers(&config.checkers, &results);
    for (checker, why) in &idle {
        eprintln!(
            "rclab: checker `{}` ran no case ({}): a run that exercises nothing cannot pass",
            run::printable(checker, 80),
            run::printable(why, 300)
        );
    }
    let failed = match &baseline {
        Some(baseline) => {
            let regressions: Vec<_> = results
                .iter()
                .filter(|r| r.outcome != Outcome::Pass && baseline.passed(&r.checker, &r.profile))
                .collect();
            let lines: String = regressions
                .iter()
                .map(|r| {
                    format!(
                        "REGRESSION {} × {}: {} ({})\n",
                        r.checker,
                        r.profile,
                        r.outcome.as_str(),
                        r.detail
                    )
                })
                .collect();
            emit(&lines)?;
            !regressions.is_empty()
        }
        None => results.iter().any(|r| r.outcome.is_failure()),
    };
    Ok(if failed || !idle.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Checkers run in process groups of their own, out of reach of the terminal's Ctrl-C:
/// on SIGINT or SIGTERM kill them, then exit as the signal would have (128 + signal).
fn stop_checkers_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the SIGINT/SIGTERM handler")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            rclab_suite::run::process::kill_running();
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Writes `text` to standard output: a failed write (a full disk behind a redirection) is
/// an error, not a panic and not silence.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
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

/// `YYYY-MM-DD` at 00:00 UTC, a real calendar day from 1970-01-01 to 9999-12-31 (clap
/// names the flag in the error).
fn parse_date(text: &str) -> Result<SystemTime, String> {
    let not_a_date = || format!("{text:?} is not a date YYYY-MM-DD");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(not_a_date());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err(not_a_date());
    }
    let number = |s: &str| s.parse::<i64>().map_err(|_| not_a_date());
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    if y < 1970 {
        return Err(format!("{text:?}: the year must be 1970 or later"));
    }
    if !(1..=12).contains(&m) {
        return Err(format!("{text:?}: there is no month {m}"));
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&d) {
        return Err(format!("{text:?}: month {m} of {y} has {month_days} days"));
    }
    // Days from civil (Howard Hinnant's algorithm); y ≤ 9999 keeps every step small.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).map_err(|_| not_a_date())?;
    Ok(UNIX_EPOCH + Duration::from_secs(days * 86_400))
}

/// Longest `--wait`: a day.
const MAX_WAIT_SECS: f64 = 86_400.0;

/// `--wait`: seconds, finite, 0 to [`MAX_WAIT_SECS`].
fn parse_wait(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=MAX_WAIT_SECS).contains(&secs) {
        return Err(format!(
            "{text:?}: the wait is 0 to {MAX_WAIT_SECS} seconds (24 h)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--jobs`: 1 or more (the run caps it, see `run::job_count`).
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("0: at least one case must run at a time".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number of 1 or more")),
    }
}

/// `--max-response`: 32 (one SM block and its framing) to 65538 (an extended response).
fn parse_max_response(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (32..=65_538).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?}: the largest response is 32 to 65538 bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(date: &str) -> u64 {
        parse_date(date)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn dates_are_calendar_days_from_1970_to_9999() {
        assert_eq!(secs("1970-01-01"), 0);
        assert_eq!(secs("2024-02-29"), 1_709_164_800);
        assert_eq!(secs("2000-02-29"), 951_782_400);
        assert_eq!(secs("9999-12-31"), 253_402_214_400);
        for bad in [
            "1900-02-29",
            "2100-02-29",
            "2024-04-31",
            "10000-01-01",
            "2024-00-10",
            "+202-01-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn waits_are_bounded_durations() {
        assert_eq!(parse_wait("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_wait("86400"), Ok(Duration::from_secs(86_400)));
        assert!(parse_wait("-0.1").is_err() && parse_wait("1e300").is_err());
    }
}
