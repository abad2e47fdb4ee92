//! `rclab run`: the conformance suite, every checker against every profile.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::Args;

use rclab_emulator::profile::{self, Profile};

use super::emit;
use super::parse::{parse_date, parse_jobs};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// `reference` (built in) or an adapter YAML file; repeat for several.
    #[arg(long = "checker", value_name = "ADAPTER", default_value = "reference")]
    pub(crate) checkers: Vec<String>,
    /// Only profiles whose name matches this glob (e.g. `forged/*`, `*gen2*`).
    #[arg(long, value_name = "GLOB", default_value = "*")]
    pub(crate) profiles: String,
    /// Folder of profiles.
    #[arg(long, value_name = "DIR", default_value = "vectors/profiles")]
    pub(crate) profile_dir: PathBuf,
    /// Cases run at once, 1 or more; capped at the number of cases to run, at 64, and with
    /// pcsc at the number of free virtual readers. Without it: one per core in process;
    /// over pcsc twice the cores when every checker swaps cards, else every free reader.
    #[arg(long, value_parser = parse_jobs)]
    pub(crate) jobs: Option<usize>,
    /// Where the cards live: in this process, or behind pcscd (needed by process checkers).
    #[arg(long, value_enum, default_value = "inproc")]
    pub(crate) transport: rclab_suite::run::Transport,
    /// With --transport pcsc: readers of a vpcd listening on HOST (one per port, PORT
    /// defaulting to 35963) instead of this machine's; repeat for more.
    #[arg(long = "vpcd", value_name = "HOST[:PORT[-LAST]]", value_parser = rclab_suite::readers::parse_vpcd)]
    pub(crate) vpcd: Vec<rclab_suite::readers::EndpointList>,
    /// With --transport pcsc: reversed mode, listen at ADDR:PORT (one reader per port) for
    /// a vpcd whose reader.conf says DEVICENAME ADDR:PORT; repeat for more.
    #[arg(long = "listen", value_name = "ADDR:PORT[-LAST]", value_parser = rclab_suite::readers::parse_listen)]
    pub(crate) listen: Vec<rclab_suite::readers::EndpointList>,
    /// Output folder for results and reports.
    #[arg(long, value_name = "DIR", default_value = "target/rclab-run")]
    pub(crate) out: PathBuf,
    /// Keep the results already in OUT/results.jsonl and run only the missing cases.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Trusted roots handed to checkers (`{trust_dir}`) and used by the reference checker.
    #[arg(long, value_name = "DIR", default_value = "vectors/pki/trust")]
    pub(crate) trust: PathBuf,
    /// Check certificates as of this date, YYYY-MM-DD (default: now).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) at: Option<SystemTime>,
    /// A results.json of an earlier run: fail only on regressions against it.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub(crate) plain: bool,
    /// Run only slice I of N (1 <= I <= N <= 1000) of the checker × profile cases, dealt
    /// round-robin; OUT/shard.json records the slice for `rclab merge`.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<rclab_suite::run::shard::Shard>,
    /// Also run the pairwise variants of every valid card (its open behaviours set by the
    /// knob table), each expected genuine; generated into OUT/variants/ and named
    /// `variants/<card>/vNN` (so `--profiles` selects them too).
    #[arg(long)]
    pub(crate) variants: bool,
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    use rclab_suite::run::{
        self, RunConfig,
        adapter::{self, Adapter, glob_match},
        baseline::Baseline,
        lock::lock_out,
    };
    let mut checkers = Adapter::load_all(&args.checkers)?;
    // Held until the reports are written: no other run writes into OUT meanwhile.
    let lock = lock_out(&args.out)?;
    let mut catalogue: Vec<Profile> = profile::load_dir(&args.profile_dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} profile(s) failed to load:\n{}",
            errors.len(),
            lines.join("\n")
        )
    })?;
    if args.variants {
        let variants = run::variants::write_variants(&catalogue, &args.out)
            .context("generating the variants")?;
        catalogue.extend(variants);
    }
    let profiles: Vec<Profile> = catalogue
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
    adapter::set_scope(&mut checkers, &profiles);
    // A bad baseline is an error now, not after the whole run.
    let baseline = match &args.baseline {
        Some(path) => {
            let cases: Vec<(String, String)> = run::pairs(&checkers, &profiles)
                .map(|(c, p)| (c.name.clone(), p.name.clone()))
                .collect();
            Some(Baseline::load(path, &cases)?)
        }
        None => None,
    };
    let repo = std::env::current_dir().context("the current folder")?;
    let config = RunConfig {
        checkers,
        profiles,
        jobs: args.jobs.map_or(
            rclab_suite::run::Jobs::Auto,
            rclab_suite::run::Jobs::Exactly,
        ),
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
    stop_checkers_on_signals()?;
    // The manifest goes first: a shard killed mid-run is still recognised by `rclab merge`,
    // which then says which cases to finish with --resume.
    match args.shard {
        Some(shard) => {
            run::shard::Manifest::new(shard, &config.checkers, &config.profiles, config.transport)
                .write(&args.out)
                .context("writing the shard manifest")?
        }
        // A whole run in a folder that once held a shard: the old manifest must not make
        // `rclab merge` take this folder for that shard.
        None => run::shard::Manifest::remove(&args.out).context("removing a shard manifest")?,
    }
    let shard = args.shard.unwrap_or(run::shard::Shard::WHOLE);
    let results = run::run_shard_locked(&config, &lock, shard)?;
    write_reports_and_judge(
        &args.out,
        &config.checkers,
        &config.profiles,
        &results,
        baseline.as_ref(),
        // A checker may have no case, or only N/A cases, in one slice: only the merged
        // run can tell whether it ran.
        args.shard.is_none(),
    )
}

/// What `rclab run` and `rclab merge` do with a run's results: the reports in `out`, the
/// console summary, and the exit code (failures, or regressions against `baseline`; and,
/// with `check_idle`, checkers that ran no case).
pub(crate) fn write_reports_and_judge(
    out: &std::path::Path,
    checkers: &[rclab_suite::run::adapter::Adapter],
    profiles: &[Profile],
    results: &[rclab_suite::run::CaseResult],
    baseline: Option<&rclab_suite::run::baseline::Baseline>,
    check_idle: bool,
) -> Result<ExitCode> {
    use rclab_suite::run::{self, report};
    let cards = run::render::Cards::from_profiles(profiles);
    report::write_all_with_cards(out, checkers, results, &cards).context("writing the reports")?;
    emit(&report::console::summary(checkers, results, out))?;

    let idle = if check_idle {
        run::idle_checkers(checkers, results)
    } else {
        Vec::new()
    };
    for (checker, why) in &idle {
        eprintln!(
            "rclab: checker `{}` ran no case ({}): a run that exercises nothing cannot pass",
            run::printable(checker, 80),
            run::printable(why, 300)
        );
    }
    let failed = match baseline {
        Some(baseline) => {
            let regressions: Vec<_> = results
                .iter()
                .filter(|r| {
                    !r.outcome.meets_expectation() && baseline.passed(&r.checker, &r.profile)
                })
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
