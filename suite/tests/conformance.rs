//! The conformance runner: outcomes, resumption, reports and one snapshot per checker.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::{self, CaseResult, Outcome, RunConfig, Transport, report};
use serde::Serialize;

use common::repo;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rclab-conformance-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(checkers: Vec<Adapter>, profiles: &str, transport: Transport, out: PathBuf) -> RunConfig {
    common::run_config(checkers, common::profiles(profiles), transport, out)
}

/// The PC/SC tests here each use several readers (one spawns a second rclab process):
/// they take turns so none finds every reader busy.
static READERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn readers() -> std::sync::MutexGuard<'static, ()> {
    READERS.lock().unwrap_or_else(|p| p.into_inner())
}

fn adapter(name: &str) -> Adapter {
    let path = repo().join(name);
    Adapter::load(path.to_str().unwrap()).unwrap()
}

/// What each checker's snapshot holds: its verdict matrix and privacy audit, nothing that
/// varies between runs (timings, random challenges).
#[derive(Serialize)]
struct CheckerSnapshot {
    checker: String,
    cases: Vec<SnapshotCase>,
}

#[derive(Serialize)]
struct SnapshotCase {
    profile: String,
    expected: String,
    actual: Option<String>,
    outcome: &'static str,
    false_accept: bool,
    missed_corruption: bool,
    audit: Option<run::audit::PrivacyAudit>,
}

fn snapshot(checker: &str, results: &[CaseResult]) -> CheckerSnapshot {
    CheckerSnapshot {
        checker: checker.to_owned(),
        cases: results
            .iter()
            .filter(|r| r.checker == checker)
            .map(|r| SnapshotCase {
                profile: r.profile.clone(),
                expected: r.expected.to_string(),
                actual: r.actual.map(|a| a.to_string()),
                outcome: r.outcome.as_str(),
                false_accept: r.false_accept,
                missed_corruption: r.missed_corruption,
                audit: r.audit.clone(),
            })
            .collect(),
    }
}

#[test]
fn reference_checker_in_process_passes_the_catalogue_and_writes_reports() {
    let out = out_dir("inproc");
    // The main job: the whole catalogue, My Number cards included.
    let config = common::run_config(
        vec![Adapter::reference()],
        common::all_profiles(""),
        Transport::Inproc,
        out.clone(),
    );
    let results = run::run(&config).unwrap();
    // The reference checker checks every card kind, specified residence cards included:
    // every profile is a case.
    assert_eq!(results.len(), config.profiles.len());
    for r in &results {
        assert_eq!(
            r.outcome,
            Outcome::Pass,
            "{} × {}: {}",
            r.checker,
            r.profile,
            r.detail
        );
    }
    report::write_all(&out, &config.checkers, &results).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
        "HTML must be self-contained"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml") && junit.contains(&format!("tests=\"{}\"", results.len())));
    let lines = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        results.len(),
        "every result is on disk"
    );
    assert_case_snapshot!("reference", snapshot("reference", &results));
}

#[test]
fn process_checkers_need_pcsc_and_say_so_in_process() {
    let config = config(
        vec![adapter("suite/adapters/pyscard-nosig.yaml")],
        "valid",
        Transport::Inproc,
        out_dir("na"),
    );
    // Refused before any case: a run of N/A cases would pass without testing anything.
    let message = run::run(&config).unwrap_err().to_string();
    assert!(message.contains("--transport pcsc"), "{message}");
}

#[test]
fn misbehaving_checkers_get_crash_timeout_and_bad_output() {
    if !common::stack_available() {
        return;
    }
    let _readers = readers();
    let checkers = ["crash", "hang", "garbage", "exit-unmapped"]
        .iter()
        .map(|n| adapter(&format!("suite/tests/data/checkers/{n}.yaml")))
        .collect();
    let mut config = config(checkers, "valid", Transport::Pcsc, out_dir("misbehaving"));
    config.profiles.truncate(2);
    let started = Instant::now();
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), 8, "the run completes every case");
    let outcome = |checker: &str| {
        results
            .iter()
            .filter(|r| r.checker == checker)
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome("crash"), [Outcome::Crash; 2]);
    assert_eq!(outcome("hang"), [Outcome::Timeout; 2]);
    assert_eq!(outcome("garbage"), [Outcome::BadOutput; 2]);
    assert_eq!(outcome("exit-unmapped"), [Outcome::BadOutput; 2]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a hanging checker must not hang the run"
    );
}

#[test]
fn killed_run_resumes_without_losing_finished_cases() {
    if !common::stack_available() {
        return;
    }
    let _readers = readers();
    let out = out_dir("resume");
    let slow = repo().join("suite/tests/data/checkers/slow-genuine.yaml");
    let args = |resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rclab"));
        cmd.current_dir(repo())
            .args([
                "run",
                "--transport",
                "pcsc",
                "--jobs",
                "1",
                "--plain",
                "--profiles",
                "valid/*",
                "--checker",
            ])
            .arg(&slow)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let results = out.join("results.jsonl");
    let mut child = args(false).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&results)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "no results appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = std::fs::read_to_string(&results).unwrap();
    let finished: Vec<&str> = before.lines().filter(|l| l.ends_with('}')).collect();
    assert!(
        finished.len() >= 2 && finished.len() < 5,
        "killed mid-run: {} results",
        finished.len()
    );

    let status = args(true).status().unwrap();
    assert!(status.success());
    let after = std::fs::read_to_string(&results).unwrap();
    for line in &finished {
        assert!(
            after.contains(line),
            "a finished case was lost or rewritten"
        );
    }
    let all = run::read_results(&results).unwrap();
    let mut profiles: Vec<_> = all.iter().map(|r| r.profile.clone()).collect();
    profiles.sort();
    profiles.dedup();
    let valid = common::profiles("valid").len();
    assert_eq!(profiles.len(), valid, "every case present");
    assert_eq!(all.len(), valid, "no case ran twice");
}

#[test]
fn example_checkers_over_pcsc_match_their_snapshots() {
    if !common::stack_available() {
        return;
    }
    let _readers = readers();
    let checkers = vec![
        Adapter::reference(),
        adapter("suite/adapters/pyscard-nosig.yaml"),
        adapter("suite/adapters/accept-all.yaml"),
    ];
    let mut config = config(checkers, "", Transport::Pcsc, out_dir("pcsc"));
    config.jobs = rclab_suite::run::Jobs::Exactly(6);
    let results = run::run(&config).unwrap();
    for checker in ["pyscard-nosig", "accept-all"] {
        assert_case_snapshot!(checker, snapshot(checker, &results));
    }
    // Over PC/SC the reference checker gives the same verdicts as in-process.
    for r in results.iter().filter(|r| r.checker == "reference") {
        assert_eq!(r.outcome, Outcome::Pass, "{}: {}", r.profile, r.detail);
    }
    // Both reading checkers report `data` (rclab.verdict/2) whenever they call a genuine
    // card genuine, and read every field right, the cp932 and edge-case profiles included;
    // accept-all reports none.
    let genuine = rclab_emulator::verdict::VerdictKind::Genuine;
    for r in results.iter().filter(|r| {
        r.checker != "accept-all"
            && r.expected.verdict == genuine
            && r.actual.is_some_and(|a| a.verdict == genuine)
    }) {
        assert!(r.data.is_some(), "{} × {}: no data", r.checker, r.profile);
        assert!(
            !r.data_error,
            "{} × {}: {:?}",
            r.checker, r.profile, r.fields
        );
    }
    assert!(
        results
            .iter()
            .filter(|r| r.checker == "accept-all")
            .all(|r| r.data.is_none())
    );
}

/// `expect.limitation` is honoured by `rclab run` as by `rclab check`: a reference verdict
/// that misses the expectation within a declared limitation is LIMITATION, no failure and
/// no regression; without the limitation, or when the miss is a genuine verdict on a card
/// that is not genuine, it stays FAIL.
#[test]
fn run_honours_a_declared_limitation_like_check() {
    use rclab_emulator::profile;
    use rclab_emulator::verdict::{Verdict, VerdictKind};
    use rclab_suite::judgement::{Judgement, judge};

    let load = |name: &str, rename: &str| {
        let mut p = profile::load(&common::vectors().join("profiles").join(name)).unwrap();
        p.name = rename.to_owned();
        p
    };
    // The reference checker calls this one forged; the profiles below expect otherwise.
    let forged = "forged/gen1-check-code-removed.yaml";
    let not_residence = Verdict::new(VerdictKind::NotResidenceCard, None);
    let mut limited = load(forged, "limited");
    limited.expect.verdict = not_residence;
    limited.expect.limitation = Some("cannot tell this card apart".into());
    let mut unlimited = load(forged, "unlimited");
    unlimited.expect.verdict = not_residence;
    unlimited.expect.limitation = None;
    // Called genuine where forged is expected: no limitation excuses that.
    let mut genuine = load("valid/gen1-residence.yaml", "genuine-but-expected-forged");
    genuine.expect.verdict = Verdict::new(VerdictKind::Forged, None);
    genuine.expect.limitation = Some("cannot tell this card apart".into());

    let out = out_dir("limitation");
    let config = common::run_config(
        vec![Adapter::reference()],
        vec![limited, unlimited, genuine],
        Transport::Inproc,
        out.clone(),
    );
    let results = run::run(&config).unwrap();
    let outcomes: Vec<(&str, Outcome)> = results
        .iter()
        .map(|r| (r.profile.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("limited", Outcome::Limitation),
            ("unlimited", Outcome::Fail),
            ("genuine-but-expected-forged", Outcome::Fail),
        ],
        "{results:#?}"
    );
    // The one rule `rclab check` applies gives the same judgements.
    for (r, p) in results.iter().zip(&config.profiles) {
        let j = judge(
            &p.expect.verdict,
            &r.actual.unwrap(),
            p.expect.threat,
            p.expect.limitation.as_deref(),
        );
        assert_eq!(j == Judgement::Limitation, r.outcome == Outcome::Limitation);
        assert_eq!(j.is_failure(), r.outcome.is_failure());
    }
    assert!(!Outcome::Limitation.is_failure() && Outcome::Limitation.meets_expectation());
    assert!(
        results[0]
            .detail
            .starts_with("limitation: cannot tell this card apart; ")
    );
    report::write_all(&out, &config.checkers, &results).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Limitations"), "{md}");
    assert!(
        md.contains("| `limited` | not_residence_card | LIMITATION: forged"),
        "{md}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"2\" errors=\"0\" skipped=\"1\""),
        "{junit}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["summary"][0]["limitations"], 1);
    assert_eq!(json["results"][0]["outcome"], "LIMITATION");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("value=\"LIMITATION\""));
}

/// End to end: a profile folder with a declared limitation passes `rclab check` and
/// `rclab run` alike (exit 0, `limitation` / `LIMITATION`); without the limitation both
/// fail on the same card.
#[test]
fn check_and_run_agree_on_a_declared_limitation() {
    let dir = out_dir("limitation-cli");
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let base = common::vectors().join("profiles/forged/gen1-check-code-removed.yaml");
    let write = |limitation: &str| {
        std::fs::write(
            profiles.join("limited.yaml"),
            format!(
                "extends: {}\nexpect:\n  threat: forgery\n  verdict: not_residence_card\n  why: A test expectation the reference checker does not meet.\n{limitation}",
                base.display()
            ),
        )
        .unwrap();
    };
    let rclab = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rclab"))
            .current_dir(repo())
            .args(args)
            .output()
            .unwrap()
    };
    let profile_dir = profiles.to_str().unwrap();
    let out = dir.join("out");
    let check = || rclab(&["check", "--profiles", profile_dir]);
    let run = || {
        rclab(&[
            "run",
            "--plain",
            "--profile-dir",
            profile_dir,
            "--out",
            out.to_str().unwrap(),
        ])
    };

    write("  limitation: the reference checker cannot tell\n");
    let checked = check();
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{text}");
    assert!(
        text.contains("  limitation\n") && text.contains("↳ the reference checker cannot tell"),
        "{text}"
    );
    let ran = run();
    let text = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{text}");
    assert!(
        text.contains("## Limitations")
            && text.contains("limitation: the reference checker cannot tell"),
        "{text}"
    );

    write("");
    let checked = check();
    let text = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{text}");
    assert!(text.contains("  MISMATCH\n"), "{text}");
    let ran = run();
    let text = String::from_utf8_lossy(&ran.stdout);
    assert_eq!(ran.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("## Limitations") && text.contains("| reference | test_ca | 0 | 1 |"),
        "{text}"
    );
}
