//! `rclab check` and `rclab run` given hostile flags, files and folders (issue 10): every bad
//! input is a clear error naming the flag or file, never a panic, a hang or a silent pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{rclab, repo, stderr};

fn temp(name: &str) -> PathBuf {
    crate::common::temp_dir("cli", name)
}

/// Exit code 2 (usage or setup error), `needles` in stderr, no panic.
fn assert_refused(output: &Output, needles: &[&str]) {
    let text = stderr(output);
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(output.status.code(), Some(2), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

#[test]
fn dates_are_checked_at_parse_time() {
    for bad in [
        "300000000000-01-01",
        "2024-02-31",
        "2023-02-29",
        "2024-13-01",
        "1969-12-31",
        "2024-1-1",
    ] {
        for command in ["check", "run"] {
            assert_refused(&rclab(&[command, "--at", bad]), &["--at", bad]);
        }
    }
    let leap = rclab(&[
        "check",
        "--at",
        "2024-02-29",
        "--profile",
        "vectors/profiles/valid/gen1-residence.yaml",
    ]);
    assert!(leap.status.success(), "{}", stderr(&leap));
}

#[test]
fn numeric_flags_are_checked_at_parse_time() {
    // `--flag=value`, so that negative numbers reach the flag's parser.
    for wait in ["1e300", "NaN", "inf", "-1", "86401", "x"] {
        let flag = format!("--wait={wait}");
        assert_refused(
            &rclab(&["check", "--reader", "R", "--card-number", "1", &flag]),
            &["--wait"],
        );
    }
    for bytes in ["0", "31", "65539", "-5"] {
        let flag = format!("--max-response={bytes}");
        assert_refused(&rclab(&["check", &flag]), &["--max-response"]);
    }
    assert_refused(&rclab(&["check", "--seed=-1"]), &["--seed"]);
    for jobs in ["0", "-1", "many"] {
        let flag = format!("--jobs={jobs}");
        assert_refused(&rclab(&["run", &flag]), &["--jobs"]);
    }
}

#[test]
fn a_huge_job_count_is_capped_and_the_run_finishes() {
    // Before: one thread per requested job, a million of them.
    let out = temp("jobs");
    let output = rclab(&[
        "run",
        "--plain",
        "--profiles",
        "valid/gen1-*",
        "--jobs",
        "1000000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn bad_baselines_are_refused_before_the_first_case() {
    let dir = temp("baseline");
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, r#"{"results":"x"}"#).unwrap();
    let foreign = dir.join("foreign.json");
    std::fs::write(
        &foreign,
        r#"{"schema":"rclab.report/1","results":[{"checker":"other","profile":"valid/x","outcome":"PASS"}]}"#,
    )
    .unwrap();
    let cases: [(&Path, &str); 4] = [
        (Path::new("/dev/zero"), "not a regular file"),
        (&empty, "not a JSON object"),
        (&wrong, "results"),
        (&foreign, "none of its results"),
    ];
    for (baseline, why) in cases {
        let out = dir.join("out");
        let output = rclab(&[
            "run",
            "--plain",
            "--profiles",
            "valid/*",
            "--baseline",
            baseline.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_refused(&output, &["--baseline", baseline.to_str().unwrap(), why]);
        assert!(!out.join("results.jsonl").exists(), "a case ran first");
    }
}

#[test]
fn an_out_path_that_is_a_file_is_named_in_the_error() {
    let dir = temp("out-file");
    let file = dir.join("taken");
    std::fs::write(&file, "").unwrap();
    let output = rclab(&[
        "run",
        "--profiles",
        "valid/*",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_refused(&output, &["--out", file.to_str().unwrap(), "not a folder"]);
}

#[test]
fn a_journal_write_that_fails_stops_the_run_naming_the_file() {
    // Before: `let _ = writeln!`: results were lost while the console showed PASS.
    let out = temp("fsize");
    // A file size limit of 8 KiB (16 blocks of 512 bytes): the first result line does not
    // fit. SIGXFSZ is ignored, so the write fails with EFBIG instead of killing rclab.
    let output = Command::new("sh")
        .current_dir(repo())
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_rclab"),
            "run",
            "--plain",
            "--profiles",
            "valid/*",
            "--jobs",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("results.jsonl") && text.contains("cannot write a result"),
        "{text}"
    );
    assert!(
        !text.contains("PASS"),
        "no case is reported that was not saved: {text}"
    );
}

#[test]
fn a_report_that_cannot_be_written_fails_the_run_naming_it() {
    let out = temp("report-dir");
    std::fs::create_dir_all(out.join("report.md")).unwrap();
    let output = rclab(&[
        "run",
        "--plain",
        "--profiles",
        "valid/gen1-*",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_refused(&output, &["report.md"]);
}

#[test]
fn a_process_checker_without_pcsc_fails_the_run() {
    let output = rclab(&[
        "run",
        "--profiles",
        "valid/*",
        "--checker",
        "suite/adapters/accept-all.yaml",
        "--out",
        temp("no-pcsc").to_str().unwrap(),
    ]);
    assert_refused(&output, &["accept-all", "needs --transport pcsc"]);
}

#[test]
fn a_checker_that_ran_no_case_fails_the_run() {
    let dir = temp("idle");
    let adapter = dir.join("idle.yaml");
    std::fs::write(
        &adapter,
        "name: idle\nkind: reference\nunsupported:\n  - profiles: \"*\"\n    reason: everything is out of scope\n",
    )
    .unwrap();
    let output = rclab(&[
        "run",
        "--plain",
        "--profiles",
        "valid/*",
        "--checker",
        adapter.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`idle` ran no case") && text.contains("everything is out of scope"),
        "{text}"
    );
}

#[test]
fn duplicate_checker_names_fail_naming_both_files() {
    let dir = temp("twins");
    let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
    std::fs::write(&a, "name: reference\nkind: reference\n").unwrap();
    std::fs::write(&b, "name: reference\nkind: reference\n").unwrap();
    let output = rclab(&[
        "run",
        "--checker",
        a.to_str().unwrap(),
        "--checker",
        b.to_str().unwrap(),
    ]);
    assert_refused(&output, &[a.to_str().unwrap(), b.to_str().unwrap()]);
    // The built-in one counts too.
    let output = rclab(&[
        "run",
        "--checker",
        "reference",
        "--checker",
        a.to_str().unwrap(),
    ]);
    assert_refused(&output, &["built-in", a.to_str().unwrap()]);
}

#[test]
fn a_full_standard_output_is_an_error_not_a_panic() {
    for args in [
        vec!["check"],
        vec![
            "check",
            "--profile",
            "vectors/profiles/valid/gen1-sprc.yaml",
        ],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_rclab"))
            .current_dir(repo())
            .args(&args)
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_refused(&output, &["standard output"]);
    }
}

#[test]
fn ctrl_c_stops_the_running_checkers_too() {
    // Checkers run in their own process groups, out of reach of the terminal's SIGINT.
    let up = std::path::Path::new("/run/pcscd/pcscd.comm").exists()
        && !rclab_suite::run::vpcd_ports().is_empty();
    if !up {
        eprintln!("SKIPPED: pcscd with vpcd readers is not running");
        return;
    }
    let dir = temp("sigint");
    let pid_file = dir.join("pid");
    let checker = dir.join("sleepy.sh");
    std::fs::write(
        &checker,
        format!("#!/bin/sh\necho $$ > {}\nsleep 100\n", pid_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &checker,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let adapter = dir.join("sleepy.yaml");
    std::fs::write(
        &adapter,
        format!(
            "name: sleepy\ncommand: [\"{}\"]\ntimeout_ms: 60000\n",
            checker.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rclab"))
        .current_dir(repo())
        .args([
            "run",
            "--plain",
            "--transport",
            "pcsc",
            "--jobs",
            "1",
            "--profiles",
            "valid/gen1-sprc",
            "--checker",
        ])
        .arg(&adapter)
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse()
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the checker never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: signals our own child process.
    #[allow(unsafe_code)] // one kill call, proven above
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGINT));
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the checker outlived the run"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn resume_lists_the_lines_it_skipped_on_the_console() {
    let out = temp("resume-console");
    let args = |resume: bool| {
        let mut args = vec![
            "run".to_owned(),
            "--plain".into(),
            "--profiles".into(),
            "valid/gen1-*".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if resume {
            args.push("--resume".into());
        }
        args
    };
    let first = Command::new(env!("CARGO_BIN_EXE_rclab"))
        .current_dir(repo())
        .args(args(false))
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let journal = out.join("results.jsonl");
    let mut bytes = b"\xff\xfe\n".to_vec();
    let kept = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(kept >= 2);
    bytes.extend(std::fs::read(&journal).unwrap());
    bytes.extend_from_slice(b"{\"checker\":\"reference\",\"profile\":\"forged/does-not-exist\"}\n");
    std::fs::write(&journal, bytes).unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_rclab"))
        .current_dir(repo())
        .args(args(true))
        .output()
        .unwrap();
    let text = stderr(&second);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains(&format!("resume: {kept} result(s) kept"))
            && text.contains("line 1: not UTF-8")
            && text.contains(&format!("line {}: not a result", kept + 2)),
        "{text}"
    );
    assert!(!text.contains("PASS"), "nothing ran again: {text}");
}
