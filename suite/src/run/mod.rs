//! `rclab run`: every checker against every profile, with outcomes written as they come.

pub mod adapter;
pub mod audit;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use rclab_emulator::profile::Profile;
use rclab_emulator::transport::vpcd::{
    BASE_PORT, ReaderOptions, Reply, VirtualCard, VirtualReader,
};
use rclab_emulator::transport::{Exchange, Tap, TransportError};
use rclab_emulator::verdict::{Threat, Verdict, WrongAccept, wrong_accept};

use crate::checker::{Checker, Options, TrustStore};
use crate::pcsc_channel::PcscChannel;
use adapter::{Adapter, Kind, VerdictProtocol, expectation_for, parse_json_verdict};
use audit::{PrivacyAudit, audit};

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
    Pass,
    Fail,
    #[serde(rename = "N/A")]
    NotApplicable,
    Crash,
    Timeout,
    BadOutput,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "N/A",
            Outcome::Crash => "CRASH",
            Outcome::Timeout => "TIMEOUT",
            Outcome::BadOutput => "BAD-OUTPUT",
        }
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
    pub checker: String,
    pub profile: String,
    pub generation: u8,
    /// The profile's expectation adjusted for the checker's trust mode.
    pub expected: Verdict,
    pub actual: Option<Verdict>,
    pub outcome: Outcome,
    /// What the card threatens if called genuine (`expect.threat`; none on valid cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<Threat>,
    /// A forgery vector (`threat: forgery`) called genuine: the worst failure.
    pub false_accept: bool,
    /// A corrupted or misbehaving card that is no forgery vector called genuine.
    #[serde(default)]
    pub missed_corruption: bool,
    pub detail: String,
    pub millis: u64,
    pub audit: Option<PrivacyAudit>,
    pub transcript: Vec<Exchange>,
}

impl CaseResult {
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

pub struct RunConfig {
    pub checkers: Vec<Adapter>,
    pub profiles: Vec<Profile>,
    pub jobs: usize,
    pub transport: Transport,
    /// Results go to `out/results.jsonl` as they come; reports are written next to it.
    pub out: PathBuf,
    pub resume: bool,
    pub repo: PathBuf,
    pub trust_dir: PathBuf,
    pub at: SystemTime,
    /// Plain progress lines instead of a progress bar even on a terminal.
    pub plain: bool,
}

/// vpcd ports with a listener (from /proc: a probe connect() would insert a phantom card)
/// that no other rclab process is serving.
pub fn vpcd_ports() -> Vec<u16> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    (BASE_PORT..BASE_PORT + 32)
        .filter(|p| tcp.contains(&format!(":{p:04X} 00000000:0000 0A")))
        .filter(|p| !rclab_emulator::transport::vpcd::port_busy(*p))
        .collect()
}

/// Runs every case not already in `results.jsonl` (with `resume`), writing each result the
/// moment it is known; returns all results, old and new, in case order.
pub fn run(config: &RunConfig) -> anyhow::Result<Vec<CaseResult>> {
    std::fs::create_dir_all(&config.out)?;
    let results_path = config.out.join("results.jsonl");
    let mut done: Vec<CaseResult> = if config.resume {
        read_results(&results_path)?
    } else {
        Vec::new()
    };
    let done_keys: HashSet<(String, String)> = done.iter().map(CaseResult::key).collect();
    let sink = OpenOptions::new()
        .create(true)
        .write(true)
        .append(config.resume)
        .truncate(!config.resume)
        .open(&results_path)?;
    let sink = Mutex::new(sink);

    let cases: Vec<(&Adapter, &Profile)> = config
        .checkers
        .iter()
        .flat_map(|c| config.profiles.iter().map(move |p| (c, p)))
        .filter(|(c, p)| !done_keys.contains(&(c.name.clone(), p.name.clone())))
        .collect();
    let readers = match config.transport {
        Transport::Pcsc => {
            let ports = vpcd_ports();
            anyhow::ensure!(
                !ports.is_empty(),
                "--transport pcsc needs pcscd with vpcd readers: run `sudo scripts/pcsc-up`"
            );
            ports
        }
        Transport::Inproc => Vec::new(),
    };
    let jobs = match config.transport {
        Transport::Pcsc => config.jobs.clamp(1, readers.len()),
        Transport::Inproc => config.jobs.max(1),
    };
    let pool = Mutex::new(readers);
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let total = queue.lock().map(|q| q.len()).unwrap_or(0);
    let trust = TrustStore::from_dir(&config.trust_dir)?;
    let progress = Progress::new(total, config.plain);
    let fresh: Mutex<Vec<(usize, CaseResult)>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| {
                        if q.is_empty() {
                            None
                        } else {
                            Some(q.remove(0))
                        }
                    });
                    let Some((index, (checker, profile))) = next else {
                        break;
                    };
                    let port = match config.transport {
                        Transport::Pcsc => loop {
                            if let Some(port) = pool.lock().ok().and_then(|mut p| p.pop()) {
                                break Some(port);
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        },
                        Transport::Inproc => None,
                    };
                    let result = run_case(config, &trust, checker, profile, port);
                    if let Some(port) = port
                        && let Ok(mut p) = pool.lock()
                    {
                        p.push(port);
                    }
                    if let Ok(mut file) = sink.lock() {
                        // One line per result, synced: a killed run loses nothing it reported.
                        let line = serde_json::to_string(&result).unwrap_or_default();
                        let _ = writeln!(file, "{line}");
                        let _ = file.sync_data();
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
    let mut fresh = fresh.into_inner().unwrap_or_default();
    fresh.sort_by_key(|(i, _)| *i);
    done.extend(fresh.into_iter().map(|(_, r)| r));
    let order: BTreeMap<(String, String), usize> = config
        .checkers
        .iter()
        .flat_map(|c| {
            config
                .profiles
                .iter()
                .map(move |p| (c.name.clone(), p.name.clone()))
        })
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    done.sort_by_key(|r| order.get(&r.key()).copied().unwrap_or(usize::MAX));
    Ok(done)
}

/// Results already on disk; a line cut off by a kill is ignored (its case runs again).
pub fn read_results(path: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let Ok(file) = File::open(path) else {
        return Ok(Vec::new());
    };
    Ok(BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect())
}

fn run_case(
    config: &RunConfig,
    trust: &TrustStore,
    checker: &Adapter,
    profile: &Profile,
    port: Option<u16>,
) -> CaseResult {
    let expected = expectation_for(checker.trust, profile.expect.verdict);
    let mut result = CaseResult {
        checker: checker.name.clone(),
        profile: profile.name.clone(),
        generation: profile.generation.number(),
        expected,
        actual: None,
        outcome: Outcome::NotApplicable,
        threat: profile.expect.threat,
        false_accept: false,
        missed_corruption: false,
        detail: String::new(),
        millis: 0,
        audit: None,
        transcript: Vec::new(),
    };
    if let Some(reason) = checker.unsupported_reason(&profile.name) {
        result.detail = format!("declared unsupported: {reason}");
        return result;
    }
    let started = Instant::now();
    let outcome = match (checker.kind.clone(), port) {
        (Kind::Reference, None) => {
            let mut tap = Tap::new(profile.card());
            let report = reference(config, trust).check(&mut tap, profile.card_number.as_str());
            result.transcript = tap.into_parts().1;
            Ok((report.verdict, report.detail))
        }
        (Kind::Process, None) => {
            result.detail = "process checkers read PC/SC readers: run with --transport pcsc".into();
            return result;
        }
        (kind, Some(port)) => serve_and_check(
            config,
            trust,
            checker,
            kind,
            profile,
            port,
            &mut result.transcript,
        ),
    };
    result.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok((actual, detail)) => {
            result.outcome = if expected.accepts(&actual) {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            let wrong = wrong_accept(profile.expect.threat, &expected, &actual);
            result.false_accept = wrong == Some(WrongAccept::FalseAccept);
            result.missed_corruption = wrong == Some(WrongAccept::MissedCorruption);
            result.actual = Some(actual);
            result.detail = detail;
        }
        Err((outcome, detail)) => {
            result.outcome = outcome;
            result.detail = detail;
        }
    }
    result.audit = Some(audit(
        &profile.image,
        profile.card_number.as_str(),
        &result.transcript,
    ));
    result
}

fn reference<'a>(config: &RunConfig, trust: &'a TrustStore) -> Checker<'a> {
    Checker {
        trust,
        options: Options {
            max_response: None,
            at: config.at,
            seed: Some(1),
        },
    }
}

/// Records what the card saw, for the transcript and the privacy audit.
struct Recorder {
    inner: Box<dyn VirtualCard>,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl VirtualCard for Recorder {
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.respond(apdu).data.unwrap_or_default()
    }

    /// Forwards the card's own reply (delay, removal) so that the reader carries it out
    /// exactly as without the recorder.
    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let started = Instant::now();
        let reply = self.inner.respond(apdu);
        if let Ok(mut log) = self.log.lock() {
            log.push(Exchange {
                command: hex::encode_upper(apdu),
                // A mute card's answer never reaches the checker: the reader gives up.
                response: if rclab_emulator::fault::is_mute(reply.delay) {
                    Err(TransportError::Timeout)
                } else {
                    reply
                        .data
                        .as_ref()
                        .map(hex::encode_upper)
                        .ok_or(TransportError::CardRemoved)
                },
                micros: u64::try_from((started.elapsed() + reply.delay).as_micros())
                    .unwrap_or(u64::MAX),
            });
        }
        reply
    }
}

type CaseOutcome = Result<(Verdict, String), (Outcome, String)>;

fn serve_and_check(
    config: &RunConfig,
    trust: &TrustStore,
    checker: &Adapter,
    kind: Kind,
    profile: &Profile,
    port: u16,
    transcript: &mut Vec<Exchange>,
) -> CaseOutcome {
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        inner: Box::new(profile.card()),
        log: Arc::clone(&log),
    };
    let mut options = ReaderOptions::new(port);
    // `RCLAB_TRACE=1`: the card's side of every case on stderr (`>>>`/`<<<`, power events).
    options.trace = std::env::var_os("RCLAB_TRACE").is_some();
    let reader = VirtualReader::spawn(options, Some(Box::new(recorder)));
    if !reader.wait_attached(Duration::from_secs(10)) {
        return Err((
            Outcome::Crash,
            format!("vpcd never took the card on port {port}"),
        ));
    }
    let outcome = match kind {
        Kind::Reference => match PcscChannel::connect(&reader.name(), Duration::from_secs(10)) {
            Ok(mut channel) => {
                let report =
                    reference(config, trust).check(&mut channel, profile.card_number.as_str());
                channel.close();
                Ok((report.verdict, report.detail))
            }
            Err(e) => Err((
                Outcome::Crash,
                format!("reference checker could not connect: {e}"),
            )),
        },
        Kind::Process => {
            match crate::pcsc_channel::wait_for_card(&reader.name(), Duration::from_secs(10)) {
                // Start the checker only once pcscd shows the card, as a user would.
                Ok(_) => run_process(config, checker, profile, &reader.name()),
                Err(e) => Err((Outcome::Crash, format!("pcscd never showed the card: {e}"))),
            }
        }
    };
    reader.stop();
    *transcript = log.lock().map(|l| l.clone()).unwrap_or_default();
    outcome
}

/// Runs an external checker with its timeout and reads its verdict.
fn run_process(
    config: &RunConfig,
    checker: &Adapter,
    profile: &Profile,
    reader: &str,
) -> CaseOutcome {
    let values: BTreeMap<&str, String> = [
        ("reader", reader.to_owned()),
        ("card_number", profile.card_number.to_string()),
        ("profile", profile.path.display().to_string()),
        ("profile_name", profile.name.clone()),
        ("trust_dir", config.trust_dir.display().to_string()),
        ("repo", config.repo.display().to_string()),
    ]
    .into_iter()
    .collect();
    let argv = checker.render(&values);
    let Some((program, args)) = argv.split_first() else {
        return Err((Outcome::Crash, "empty command".into()));
    };
    let mut child = match Command::new(program)
        .args(args)
        .envs(&checker.env)
        .current_dir(&config.repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Err((Outcome::Crash, format!("cannot start {program}: {e}"))),
    };
    // Drain both pipes on threads so a chatty checker cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + checker.timeout();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err((Outcome::Crash, format!("waiting for the checker: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let tail = |text: &str| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>()
    };
    let Some(status) = status else {
        return Err((
            Outcome::Timeout,
            format!("no verdict within {} ms", checker.timeout_ms),
        ));
    };
    match &checker.verdict {
        VerdictProtocol::Json(_) => match parse_json_verdict(&stdout) {
            Ok(found) => Ok(found),
            Err(_) if status.code().is_none() || !status.success() => Err((
                Outcome::Crash,
                format!("exited with {status}: {}", tail(&stderr)),
            )),
            Err(e) => Err((
                Outcome::BadOutput,
                format!("stdout is not a {} verdict: {e}", adapter::VERDICT_SCHEMA),
            )),
        },
        VerdictProtocol::ExitCodes { exit_codes } => match status
            .code()
            .and_then(|code| exit_codes.get(&code))
        {
            Some(verdict) => Ok((
                *verdict,
                format!("exit code {}", status.code().unwrap_or_default()),
            )),
            None if status.code().is_none() => Err((Outcome::Crash, format!("killed: {status}"))),
            None => Err((
                Outcome::BadOutput,
                format!(
                    "exit code {status} is not in the adapter's map: {}",
                    tail(&stderr)
                ),
            )),
        },
    }
}

/// A progress bar on a terminal, one plain line per case otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    count: Mutex<usize>,
}

impl Progress {
    fn new(total: usize, plain: bool) -> Progress {
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            total,
            count: Mutex::new(0),
        }
    }

    fn done(&self, r: &CaseResult) {
        let n = self.count.lock().map(|mut c| {
            *c += 1;
            *c
        });
        let line = format!(
            "{:<10} {} × {} ({} ms){}",
            r.outcome.as_str(),
            r.checker,
            r.profile,
            r.millis,
            r.wrong_accept()
                .map(|w| format!("  {}", w.as_str().to_uppercase()))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(line);
            }
            None => eprintln!("[{:>4}/{}] {line}", n.unwrap_or(0), self.total),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
