//! `rclab run`: every checker against every profile, with outcomes written as they come.

pub mod adapter;
pub mod audit;
pub mod baseline;
mod case;
pub mod data;
pub mod delivery_key;
pub mod host;
pub mod journal;
pub mod lock;
pub mod merge;
pub mod process;
mod progress;
pub mod render;
pub mod report;
pub mod shard;
pub mod variants;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use rclab_emulator::profile::Profile;
use rclab_emulator::transport::Exchange;
use rclab_emulator::transport::vpcd::{BASE_PORT, Endpoint};
use rclab_emulator::verdict::{Threat, Verdict, WrongAccept};

use crate::checker::TrustStore;
use adapter::{Adapter, expectation_for};
use audit::PrivacyAudit;
use case::run_case;
use journal::Journal;
use progress::Progress;

/// Where cards live during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The card engine in this process: only in-process checkers can read it.
    Inproc,
    /// Each card served through vpcd into pcscd: any PC/SC checker can read it.
    Pcsc,
}

/// What happened in one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Outcome {
    /// The verdict met the expectation.
    Pass,
    /// The verdict missed the expectation.
    Fail,
    /// The checker declares the case unsupported (`unsupported:` in its adapter).
    #[serde(rename = "N/A")]
    NotApplicable,
    /// The checker exited abnormally.
    Crash,
    /// The checker ran past its time limit.
    Timeout,
    /// The checker's output is not a verdict.
    BadOutput,
    /// The reference checker missed the expectation within the limitation its profile
    /// declares (`expect.limitation`), as `rclab check` shows it: not a failure.
    Limitation,
}

impl Outcome {
    /// The name used in reports and `results.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "N/A",
            Outcome::Crash => "CRASH",
            Outcome::Timeout => "TIMEOUT",
            Outcome::BadOutput => "BAD-OUTPUT",
            Outcome::Limitation => "LIMITATION",
        }
    }

    /// The verdict met the expectation, or missed it only within a declared limitation:
    /// what `--baseline` calls passed.
    pub fn meets_expectation(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Limitation)
    }

    /// Outcomes that make `rclab run` exit non-zero.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Fail | Outcome::Crash | Outcome::Timeout | Outcome::BadOutput
        )
    }
}

/// One checker × profile result, as written to `results.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// The checker's name (its adapter's `name:`).
    pub checker: String,
    /// The profile's file name.
    pub profile: String,
    /// The card's generation.
    pub generation: u8,
    /// The profile's expectation adjusted for the checker's trust mode.
    pub expected: Verdict,
    /// What the checker concluded; `None` when it gave no verdict.
    pub actual: Option<Verdict>,
    /// The judgement of `actual` against the expectation.
    pub outcome: Outcome,
    /// What the card threatens if called genuine (`expect.threat`; none on valid cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<Threat>,
    /// A forgery vector (`threat: forgery`) called genuine: the worst failure.
    pub false_accept: bool,
    /// A corrupted or misbehaving card that is no forgery vector called genuine.
    #[serde(default)]
    pub missed_corruption: bool,
    /// A human-readable line on what happened (error text, output tail).
    pub detail: String,
    /// Wall time of the case.
    pub millis: u64,
    /// What the checker read beyond what the verdict needs, when audited.
    pub audit: Option<PrivacyAudit>,
    /// Every APDU and answer of the case.
    pub transcript: Vec<Exchange>,
    /// What the checker said it read (`rclab.verdict/2` `data`), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<data::CardFields>,
    /// Each field against the chip; empty when the checker reported no `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<data::FieldCheck>,
    /// A card that should read as genuine with a field read wrong: its own outcome class,
    /// apart from FAIL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_error: bool,
    /// A genuine card (valid profile or variant) not called genuine; the detail names the
    /// knob values of a variant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub false_reject: bool,
    /// For a generated variant: its valid card's profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    /// For a generated variant: the knob values it differs from its valid card by
    /// (`path=value`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knobs: Vec<String>,
}

impl CaseResult {
    /// A case before it runs: no verdict yet (N/A), nothing flagged, read or recorded.
    /// Every place that builds a result starts from this and sets what it knows.
    pub fn pending(
        checker: &str,
        profile: &str,
        generation: u8,
        expected: Verdict,
        threat: Option<Threat>,
    ) -> CaseResult {
        CaseResult {
            checker: checker.to_owned(),
            profile: profile.to_owned(),
            generation,
            expected,
            actual: None,
            outcome: Outcome::NotApplicable,
            threat,
            false_accept: false,
            missed_corruption: false,
            false_reject: false,
            variant_of: None,
            knobs: Vec::new(),
            detail: String::new(),
            millis: 0,
            audit: None,
            transcript: Vec::new(),
            data: None,
            fields: Vec::new(),
            data_error: false,
        }
    }

    fn key(&self) -> (String, String) {
        (self.checker.clone(), self.profile.clone())
    }

    /// How a wrong `genuine` counts, if this case is one.
    pub fn wrong_accept(&self) -> Option<WrongAccept> {
        if self.false_accept {
            Some(WrongAccept::FalseAccept)
        } else if self.missed_corruption {
            Some(WrongAccept::MissedCorruption)
        } else {
            None
        }
    }
}

/// Everything one `rclab run` needs, parsed from the flags.
pub struct RunConfig {
    /// The checkers to run.
    pub checkers: Vec<Adapter>,
    /// The profiles to run each checker on.
    pub profiles: Vec<Profile>,
    /// Cases run at once: `--jobs N`, or sized from the machine ([`Jobs::Auto`]).
    pub jobs: Jobs,
    /// Where the cards live (in process or vpcd readers).
    pub transport: Transport,
    /// Results go to `out/results.jsonl` as they come; reports are written next to it.
    pub out: PathBuf,
    /// Continue from the journal of an interrupted run.
    pub resume: bool,
    /// Repository root: where profiles and trust folders are found.
    pub repo: PathBuf,
    /// Folder of trusted root certificates.
    pub trust_dir: PathBuf,
    /// The run's clock: certificate validity is judged at this time.
    pub at: SystemTime,
    /// Plain progress lines instead of a progress bar even on a terminal.
    pub plain: bool,
    /// With `Transport::Pcsc`: the readers to use (`--vpcd`, `--listen`); empty: every
    /// free reader of this machine's vpcd.
    pub readers: Vec<Endpoint>,
}

/// The run's cases in order: each checker with each profile of a card kind it checks
/// (`cards:` of its adapter). A profile out of a checker's scope makes no case (it is no
/// skipped case either: the summaries count it as out of scope, see
/// [`adapter::set_scope`]).
pub fn pairs<'a>(
    checkers: &'a [Adapter],
    profiles: &'a [Profile],
) -> impl Iterator<Item = (&'a Adapter, &'a Profile)> + 'a {
    checkers.iter().flat_map(move |c| {
        profiles
            .iter()
            .filter(move |p| c.checks(p.kind()))
            .map(move |p| (c, p))
    })
}

/// vpcd ports with a listener (from /proc: a probe connect() would insert a phantom card)
/// that no other rclab process is serving.
pub fn vpcd_ports() -> Vec<u16> {
    rclab_emulator::transport::vpcd::probe::listening_ports(BASE_PORT..BASE_PORT + 32)
        .into_iter()
        .filter(|p| !rclab_emulator::transport::vpcd::port_busy(*p))
        .collect()
}

/// Most cases run at once in-process (pcsc runs are capped by the number of readers too).
pub const MAX_JOBS: usize = 64;

/// Runs every case not already in `results.jsonl` (with `resume`), writing each result the
/// moment it is known; returns all results, old and new, in case order. Locks `out` for
/// the duration (see [`lock::lock_out`]).
pub fn run(config: &RunConfig) -> anyhow::Result<Vec<CaseResult>> {
    let lock = lock::lock_out(&config.out)?;
    run_locked(config, &lock)
}

/// [`run`] in an output folder the caller has locked (and keeps locked while it writes the
/// reports).
pub fn run_locked(config: &RunConfig, lock: &lock::OutLock) -> anyhow::Result<Vec<CaseResult>> {
    run_shard_locked(config, lock, shard::Shard::WHOLE)
}

/// [`run_locked`] for the cases of one `shard` only (see [`shard`]): the journal, `--resume`
/// and the returned results cover that slice alone, in unsharded case order.
pub fn run_shard_locked(
    config: &RunConfig,
    lock: &lock::OutLock,
    shard: shard::Shard,
) -> anyhow::Result<Vec<CaseResult>> {
    anyhow::ensure!(
        lock.dir() == config.out,
        "the lock is on {}, the run writes to {}",
        lock.dir().display(),
        config.out.display()
    );
    check_checkers(config)?;
    let results_path = config.out.join("results.jsonl");
    let cases_expected: HashMap<(String, String), Verdict> =
        pairs(&config.checkers, &config.profiles)
            .map(|(c, p)| {
                (
                    (c.name.clone(), p.name.clone()),
                    expectation_for(c.trust, p.expect.verdict),
                )
            })
            .enumerate()
            .filter(|(position, _)| shard.contains(*position))
            .map(|(_, case)| case)
            .collect();
    let (journal, resumed) = Journal::open(&results_path, config.resume, &cases_expected)?;
    if config.resume {
        eprintln!("{}", resumed.summary(&results_path));
    }
    let mut done = resumed.results;
    let done_keys: HashSet<(String, String)> = done.iter().map(CaseResult::key).collect();
    let journal = Mutex::new(journal);

    let cases: VecDeque<(usize, (&Adapter, &Profile))> = pairs(&config.checkers, &config.profiles)
        .enumerate()
        .filter(|(position, _)| shard.contains(*position))
        .map(|(_, case)| case)
        .filter(|(c, p)| !done_keys.contains(&(c.name.clone(), p.name.clone())))
        .enumerate()
        .collect();
    let total = cases.len();
    let readers = match config.transport {
        Transport::Pcsc if total == 0 => Vec::new(),
        Transport::Pcsc if !config.readers.is_empty() => config.readers.clone(),
        Transport::Pcsc => {
            let ports = vpcd_ports();
            anyhow::ensure!(
                !ports.is_empty(),
                "--transport pcsc needs pcscd with vpcd readers: run `sudo scripts/pcsc-up`"
            );
            ports.into_iter().map(Endpoint::local).collect()
        }
        Transport::Inproc => {
            anyhow::ensure!(
                config.readers.is_empty(),
                "--vpcd and --listen need --transport pcsc"
            );
            Vec::new()
        }
    };
    // No case to run (all resumed): no worker, which over PC/SC would wait for a reader
    // from an empty pool forever.
    let machine = Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        readers: readers.len(),
        every_checker_swaps: config
            .checkers
            .iter()
            .all(|c| c.card_change() == adapter::CardChange::Swap),
    };
    let jobs = if total == 0 {
        0
    } else {
        job_count(config.jobs, total, config.transport, machine)
    };
    let pool = Mutex::new(readers);
    let queue = Mutex::new(cases);
    let trust = TrustStore::from_dir(&config.trust_dir)?;
    let progress = Progress::new(total, config.plain);
    let fresh: Mutex<Vec<(usize, CaseResult)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<journal::JournalError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // Each worker keeps one card host for all its cases (with PC/SC: one
                // reader; there are at least as many readers as workers, see `job_count`),
                // so that how a card is presented between cases is the host's own affair.
                let mut vpcd = match config.transport {
                    Transport::Pcsc => loop {
                        if let Some(e) = pool.lock().ok().and_then(|mut p| p.pop()) {
                            break Some(host::Vpcd::new(e));
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    },
                    Transport::Inproc => None,
                };
                while !stop.load(Ordering::SeqCst) {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((index, (checker, profile))) = next else {
                        break;
                    };
                    let result = run_case(config, &trust, checker, profile, vpcd.as_mut());
                    // One line per result, synced: a killed run loses nothing it reported,
                    // and a result that could not be written stops the run.
                    let written = match journal.lock() {
                        Ok(mut journal) => journal.append(&result),
                        Err(_) => Err(journal::JournalError {
                            path: results_path.display().to_string(),
                            message: "a writer panicked".into(),
                        }),
                    };
                    if let Err(e) = written {
                        stop.store(true, Ordering::SeqCst);
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                    progress.done(&result);
                    if let Ok(mut f) = fresh.lock() {
                        f.push((index, result));
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = failure.into_inner().ok().flatten() {
        anyhow::bail!("the run stopped: {e}");
    }
    let mut fresh = fresh.into_inner().unwrap_or_default();
    fresh.sort_by_key(|(i, _)| *i);
    done.extend(fresh.into_iter().map(|(_, r)| r));
    let order: BTreeMap<(String, String), usize> = pairs(&config.checkers, &config.profiles)
        .map(|(c, p)| (c.name.clone(), p.name.clone()))
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    done.sort_by_key(|r| order.get(&r.key()).copied().unwrap_or(usize::MAX));
    Ok(done)
}

/// How many cases run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    /// `--jobs` not given: sized from the cores and, over PC/SC, the free readers and how
    /// the checkers change cards (see [`job_count`]).
    Auto,
    /// `--jobs N`.
    Exactly(usize),
}

/// What sizes an automatic job count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// CPU cores available to this process.
    pub cores: usize,
    /// Free virtual readers (PC/SC runs).
    pub readers: usize,
    /// Every checker lets the runner swap chips behind a powered reader
    /// ([`CardChange::Swap`](adapter::CardChange::Swap)).
    pub every_checker_swaps: bool,
}

/// Threads a run uses, at least one and never more than the cases to run, [`MAX_JOBS`],
/// or (over PC/SC) the free virtual readers.
///
/// Without `--jobs`: in process, one per core (the work is all CPU). Over PC/SC with
/// swapped cards, twice the cores (a case is CPU work of the checker and the card, with
/// short waits: on 2 cores the example matrix stops gaining at about 4 jobs, see
/// `reports/bench.md`); with reinserted cards, every free reader (a case mostly waits for
/// pcscd's presence polls, so more readers is nearly linear).
pub fn job_count(requested: Jobs, cases: usize, transport: Transport, machine: Machine) -> usize {
    let cores = machine.cores.max(1);
    let wanted = match (requested, transport) {
        (Jobs::Exactly(n), _) => n,
        (Jobs::Auto, Transport::Inproc) => cores,
        (Jobs::Auto, Transport::Pcsc) if machine.every_checker_swaps => 2 * cores,
        (Jobs::Auto, Transport::Pcsc) => machine.readers,
    };
    let cap = match transport {
        Transport::Pcsc => machine.readers.min(MAX_JOBS),
        Transport::Inproc => MAX_JOBS,
    };
    wanted.min(cases).min(cap).max(1)
}

/// Refuses checker lists a run cannot honour: two checkers of one name (one report column
/// for both), and process checkers without PC/SC (they would run no case at all).
fn check_checkers(config: &RunConfig) -> anyhow::Result<()> {
    for (i, checker) in config.checkers.iter().enumerate() {
        if let Some(first) = config.checkers[..i].iter().find(|c| c.name == checker.name) {
            anyhow::bail!(
                "two checkers are named `{}` ({} and {}): every checker needs its own name",
                printable(&checker.name, 80),
                first.source,
                checker.source
            );
        }
        if !checker.is_reference() && config.transport == Transport::Inproc {
            anyhow::bail!(
                "checker `{}` ({}) is a process checker: it reads a PC/SC reader, so it needs --transport pcsc (in-process it would run no case)",
                printable(&checker.name, 80),
                checker.source
            );
        }
    }
    Ok(())
}

/// Checkers that ran no case in `results` (every case N/A), with the reason of the first:
/// a run that never exercised a checker must not pass.
pub fn idle_checkers(checkers: &[Adapter], results: &[CaseResult]) -> Vec<(String, String)> {
    checkers
        .iter()
        .filter_map(|c| {
            let mine: Vec<&CaseResult> = results.iter().filter(|r| r.checker == c.name).collect();
            if mine.iter().any(|r| r.outcome != Outcome::NotApplicable) {
                return None;
            }
            let why = match mine.first() {
                Some(r) => r.detail.clone(),
                None if c.out_of_scope > 0 => format!(
                    "the {} selected profile(s) are of card kinds its `cards:` does not name",
                    c.out_of_scope
                ),
                None => "no profile was selected".to_owned(),
            };
            Some((c.name.clone(), why))
        })
        .collect()
}

/// Results on disk (any case, the first line of each kept), for tools and tests; bounded
/// like `--resume`, skipping what does not parse.
pub fn read_results(path: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let file = match rclab_emulator::files::open_regular(path) {
        Ok(file) => file,
        Err(rclab_emulator::files::ReadError::Io(e))
            if e.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Vec::new());
        }
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    let reader = BufReader::new(file.take(journal::MAX_JOURNAL));
    Ok(journal::parse_any(reader).results)
}

/// `text` for a message or console line: control characters (terminal escapes) shown as
/// `\u{..}`, at most `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_capped_by_cases_readers_and_the_maximum() {
        let machine = |readers, every_checker_swaps| Machine {
            cores: 2,
            readers,
            every_checker_swaps,
        };
        let exactly = Jobs::Exactly;
        assert_eq!(
            job_count(exactly(1_000_000), 62, Transport::Inproc, machine(0, true)),
            MAX_JOBS.min(62)
        );
        assert_eq!(
            job_count(exactly(1_000_000), 3, Transport::Inproc, machine(0, true)),
            3
        );
        assert_eq!(
            job_count(exactly(8), 62, Transport::Pcsc, machine(6, true)),
            6
        );
        assert_eq!(
            job_count(exactly(8), 0, Transport::Pcsc, machine(0, true)),
            1
        );
        assert_eq!(
            job_count(exactly(0), 10, Transport::Inproc, machine(0, true)),
            1
        );
    }

    #[test]
    fn without_jobs_the_count_follows_cores_readers_and_card_change() {
        let machine = |readers, every_checker_swaps| Machine {
            cores: 2,
            readers,
            every_checker_swaps,
        };
        assert_eq!(
            job_count(Jobs::Auto, 64, Transport::Inproc, machine(0, false)),
            2
        );
        assert_eq!(
            job_count(Jobs::Auto, 64, Transport::Pcsc, machine(6, true)),
            4
        );
        assert_eq!(
            job_count(Jobs::Auto, 64, Transport::Pcsc, machine(6, false)),
            6
        );
        assert_eq!(
            job_count(Jobs::Auto, 64, Transport::Pcsc, machine(3, true)),
            3
        );
        assert_eq!(
            job_count(Jobs::Auto, 1, Transport::Pcsc, machine(6, false)),
            1
        );
        let one_core = Machine {
            cores: 0,
            readers: 16,
            every_checker_swaps: true,
        };
        assert_eq!(job_count(Jobs::Auto, 64, Transport::Pcsc, one_core), 2);
    }

    #[test]
    fn printable_escapes_control_characters_and_bounds_length() {
        assert_eq!(printable("a\u{1b}[0m", 10), "a\\u{1b}[0m");
        assert_eq!(printable(&"x".repeat(500), 5), "xxxxx");
    }
}
