//! `rclab merge`: the shards of one run (`rclab run --shard I/N`) into the reports of the
//! unsharded run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::run::write_reports_and_judge;

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// The output folders of the shards (each with shard.json and results.jsonl), all N.
    #[arg(value_name = "DIR", required = true)]
    pub(crate) shards: Vec<PathBuf>,
    /// Folder for the merged results and reports (not one of the shard folders).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Folder of the profiles the shards ran (the reports show each card; its content must
    /// match the shards' catalogue digest).
    #[arg(long, value_name = "DIR", default_value = "vectors/profiles")]
    pub(crate) profile_dir: PathBuf,
    /// A results.json of an earlier run: fail only on regressions against it.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
}

pub(crate) fn run(args: MergeArgs) -> Result<ExitCode> {
    use rclab_suite::run::{baseline::Baseline, lock::lock_out, merge};
    let out_identity = std::fs::canonicalize(&args.out).ok();
    for dir in &args.shards {
        if out_identity.is_some() && std::fs::canonicalize(dir).ok() == out_identity {
            bail!(
                "--out {} is also a shard folder: merged reports would overwrite the shard's",
                args.out.display()
            );
        }
    }
    let merged = merge::merge(&args.shards, &args.profile_dir)?;
    let baseline = match &args.baseline {
        Some(path) => {
            let cases: Vec<(String, String)> = merged
                .results
                .iter()
                .map(|r| (r.checker.clone(), r.profile.clone()))
                .collect();
            Some(Baseline::load(path, &cases)?)
        }
        None => None,
    };
    let lock = lock_out(&args.out)?;
    // The merged folder is a whole run, not a shard (it may once have held one).
    rclab_suite::run::shard::Manifest::remove(lock.dir()).context("removing a shard manifest")?;
    write_journal(lock.dir(), &merged.results)?;
    let code = write_reports_and_judge(
        lock.dir(),
        &merged.checkers,
        &merged.profiles,
        &merged.results,
        baseline.as_ref(),
        true,
    )?;
    drop(lock);
    Ok(code)
}

/// `OUT/results.jsonl` of the merged run: every result, one line each, in case order, as
/// a whole run leaves it (so that tools reading it, and `--resume`, see the full run).
fn write_journal(out: &std::path::Path, results: &[rclab_suite::run::CaseResult]) -> Result<()> {
    let path = out.join("results.jsonl");
    let mut text = String::new();
    for result in results {
        text.push_str(&serde_json::to_string(result).context("encoding a result")?);
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
