//! `rclab run --shard I/N` and `rclab merge` (issue 13): the catalogue run in 3 shards and
//! merged gives the unsharded run's results and reports (timings aside), and every input
//! that is not the shards of one run is refused with an error naming the folder and field.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;

/// The date every run here checks certificates at, so that runs agree whatever today is.
const AT: &str = "2026-11-25";

use common::{rclab, stderr};

fn temp(name: &str) -> PathBuf {
    common::temp_dir("shard", name)
}

/// `rclab run` of `profiles` into `out` (as shard `shard`, if given), in-process with the
/// reference checker unless `extra` says otherwise; the run must finish (exit 0 or 1).
fn run(out: &Path, profiles: &str, shard: Option<&str>, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "run",
        "--plain",
        "--at",
        AT,
        "--jobs",
        "2",
        "--profiles",
        profiles,
        "--out",
        out,
    ];
    if let Some(shard) = shard {
        args.extend(["--shard", shard]);
    }
    args.extend(extra);
    let output = rclab(&args);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        stderr(&output)
    );
    output
}

fn merge(dirs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    rclab(&args)
}

/// Exit code 2, every needle in stderr, no panic.
fn assert_refused(output: &Output, needles: &[&str]) {
    let text = stderr(output);
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(output.status.code(), Some(2), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

/// `value` with every timing (`millis` of a case, `micros` of an exchange) set to 0.
fn without_timings(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if matches!(key.as_str(), "millis" | "micros") {
                        *v = Value::from(0);
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `report.html` split into its text outside the cases' JSON and that JSON, with each
/// exchange's microseconds (the third item of `[command, response, micros]`) set to 0.
fn html_without_timings(path: &Path) -> (String, Value) {
    let page = std::fs::read_to_string(path).unwrap();
    let open = "<script type=\"application/json\" id=\"cases\">";
    let (head, rest) = page.split_once(open).expect("the cases' JSON");
    let (json, tail) = rest.split_once("</script>").unwrap();
    let mut cases: Value = serde_json::from_str(json).unwrap();
    for case in cases.as_array_mut().unwrap() {
        for exchange in case["transcript"].as_array_mut().unwrap() {
            exchange[2] = Value::from(0);
        }
    }
    (format!("{head}{open}…</script>{tail}"), cases)
}

/// The (checker, profile) keys of a folder's `results.jsonl`, each line once.
fn journal_keys(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (
                v["checker"].as_str().unwrap().to_owned(),
                v["profile"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn three_shards_merge_into_the_unsharded_run() {
    let dir = temp("catalogue");
    let whole = dir.join("whole");
    let whole_run = run(&whole, "*", None, &[]);
    assert!(
        !whole.join("shard.json").exists(),
        "an unsharded run writes no manifest"
    );
    let shards: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        run(shard, "*", Some(&format!("{}/3", i + 1)), &[]);
        let manifest = json_file(&shard.join("shard.json"));
        assert_eq!(manifest["shard"]["index"], i + 1);
        assert_eq!(manifest["shard"]["count"], 3);
        assert_eq!(manifest["rclab_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(manifest["checkers"][0]["name"], "reference");
    }

    // Disjoint, balanced, and together exactly the unsharded cases.
    let all: BTreeSet<_> = journal_keys(&whole).into_iter().collect();
    let mut union = BTreeSet::new();
    let sizes: Vec<usize> = shards
        .iter()
        .map(|s| {
            let keys = journal_keys(s);
            for key in &keys {
                assert!(union.insert(key.clone()), "{key:?} is in two shards");
            }
            keys.len()
        })
        .collect();
    assert_eq!(union, all);
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    assert!(all.len() >= 60, "the whole catalogue: {} cases", all.len());

    let merged = dir.join("merged");
    let refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let merge_run = merge(&refs, &merged, &[]);
    assert_eq!(
        merge_run.status.code(),
        whole_run.status.code(),
        "{}",
        stderr(&merge_run)
    );
    assert!(!merged.join("shard.json").exists());

    assert_same_reports(&whole, &merged);
    // The merged journal is the whole run's, in case order.
    let mut merged_keys = journal_keys(&merged);
    assert_eq!(merged_keys.len(), all.len());
    merged_keys.dedup();
    assert_eq!(merged_keys.into_iter().collect::<BTreeSet<_>>(), all);

    // --baseline as in run: the whole run as its own baseline has no regression.
    let baseline = whole.join("results.json");
    let judged = merge(
        &refs,
        &dir.join("merged-baseline"),
        &["--baseline", baseline.to_str().unwrap()],
    );
    assert_eq!(judged.status.code(), Some(0), "{}", stderr(&judged));
    assert!(!String::from_utf8_lossy(&judged.stdout).contains("REGRESSION"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An APDU (hex, or as `shorten` writes a long one) reduced to what does not depend on a
/// checker's own random choices: its header (a command's CLA INS P1 P2) or status word (a
/// response's last two bytes), and its length.
fn apdu_shape(apdu: &str, command: bool) -> String {
    if let Some((_, rest)) = apdu.split_once("… (") {
        let length = rest.split(',').next().unwrap_or_default();
        let head = if command { &apdu[..8] } else { "" };
        return format!("{head} {length}");
    }
    let keep = if command {
        &apdu[..apdu.len().min(8)]
    } else {
        &apdu[apdu.len().saturating_sub(4)..]
    };
    format!("{keep} {} bytes", apdu.len() / 2)
}

/// `results.json` with each exchange's APDUs reduced to their shape ([`apdu_shape`]).
fn without_nonces(mut report: Value) -> Value {
    for result in report["results"].as_array_mut().unwrap() {
        for exchange in result["transcript"].as_array_mut().unwrap() {
            let command = apdu_shape(exchange["command"].as_str().unwrap(), true);
            exchange["command"] = command.into();
            if let Some(ok) = exchange["response"]["Ok"].as_str() {
                let response = apdu_shape(ok, false);
                exchange["response"]["Ok"] = response.into();
            }
        }
    }
    report
}

/// The cases of [`html_without_timings`] with APDUs reduced to their shape.
fn html_cases_without_nonces(mut cases: Value) -> Value {
    for case in cases.as_array_mut().unwrap() {
        for exchange in case["transcript"].as_array_mut().unwrap() {
            let command = apdu_shape(exchange[0].as_str().unwrap(), true);
            let response = apdu_shape(exchange[1].as_str().unwrap(), false);
            exchange[0] = command.into();
            exchange[1] = response.into();
        }
    }
    cases
}

/// [`assert_same_reports`] for process checkers: a real checker picks its own challenge
/// (MUTUAL AUTHENTICATE's RND.IFD, hence the session keys and every secure-messaging byte),
/// so two unsharded runs differ there too; APDUs are compared by header, status word and
/// length, everything else exactly.
fn assert_same_reports_but_nonces(whole: &Path, merged: &Path) {
    for file in ["report.md", "junit.xml"] {
        let (a, b) = (whole.join(file), merged.join(file));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{file} differs"
        );
    }
    let (whole_json, merged_json) = (
        json_file(&whole.join("results.json")),
        json_file(&merged.join("results.json")),
    );
    assert_eq!(
        without_nonces(without_timings(merged_json)),
        without_nonces(without_timings(whole_json))
    );
    let (merged_page, merged_cases) = html_without_timings(&merged.join("report.html"));
    let (whole_page, whole_cases) = html_without_timings(&whole.join("report.html"));
    assert_eq!(merged_page, whole_page);
    assert_eq!(
        html_cases_without_nonces(merged_cases),
        html_cases_without_nonces(whole_cases)
    );
}

/// The reports in `merged` are those in `whole` but for timings: Markdown and JUnit byte
/// for byte, `results.json` and the HTML page with every `millis`/`micros` set to 0.
fn assert_same_reports(whole: &Path, merged: &Path) {
    for file in ["report.md", "junit.xml"] {
        let (a, b) = (whole.join(file), merged.join(file));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{file} differs"
        );
    }
    let (whole_json, merged_json) = (
        json_file(&whole.join("results.json")),
        json_file(&merged.join("results.json")),
    );
    assert_eq!(without_timings(merged_json), without_timings(whole_json));
    assert_eq!(
        html_without_timings(&merged.join("report.html")),
        html_without_timings(&whole.join("report.html"))
    );
}

/// [`run`] of `valid/gen2*` over PC/SC, waiting (up to two minutes) while other tests hold
/// every reader: the run refuses to start without a free one.
fn run_pcsc(out: &Path, shard: Option<&str>, extra: &[&str]) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        while rclab_suite::run::vpcd_ports().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let mut args = vec!["run", "--plain", "--at", AT, "--jobs", "3", "--profiles"];
        args.extend(["valid/gen2*", "--out", out.to_str().unwrap()]);
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        args.extend(extra);
        let output = rclab(&args);
        let busy = stderr(&output).contains("needs pcscd with vpcd readers");
        if busy && std::time::Instant::now() < deadline {
            continue;
        }
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            stderr(&output)
        );
        return output;
    }
}

/// The example process checkers over real PC/SC (a few profiles, to stay fast): sharded
/// and merged, the same reports as one run.
#[test]
fn process_checkers_over_pcsc_shard_and_merge_alike() {
    if !std::path::Path::new("/run/pcscd/pcscd.comm").exists() {
        let message =
            "pcscd with vpcd readers is not running: start it with `sudo scripts/pcsc-up`";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_PCSC").is_none(),
            "{message} (RCLAB_REQUIRE_PCSC is set)"
        );
        eprintln!("SKIPPED: {message}");
        return;
    }
    let dir = temp("pcsc");
    let extra = [
        "--transport",
        "pcsc",
        "--checker",
        "suite/adapters/pyscard-nosig.yaml",
        "--checker",
        "suite/adapters/accept-all.yaml",
    ];
    let whole = dir.join("whole");
    let whole_run = run_pcsc(&whole, None, &extra);
    let shards: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        run_pcsc(shard, Some(&format!("{}/3", i + 1)), &extra);
    }
    let merged = dir.join("merged");
    let refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let merge_run = merge(&refs, &merged, &[]);
    assert_eq!(
        merge_run.status.code(),
        whole_run.status.code(),
        "{}",
        stderr(&merge_run)
    );
    assert_eq!(journal_keys(&merged).len(), 8);
    assert_same_reports_but_nonces(&whole, &merged);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two shards of a few profiles, for the refusals.
fn small_shards(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("a"), dir.join("b"));
    run(&a, "valid/gen2*", Some("1/2"), &[]);
    run(&b, "valid/gen2*", Some("2/2"), &[]);
    (a, b)
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("shard.json");
    let mut manifest = json_file(&path);
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn bad_shard_flags_are_clap_errors_naming_the_flag() {
    for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/1001", "-1/2", "1/3/3"] {
        let flag = format!("--shard={bad}");
        let output = rclab(&["run", &flag, "--out", "/nonexistent/never"]);
        assert_refused(&output, &["--shard", bad, "I/N"]);
    }
}

#[test]
fn merge_refuses_overlapping_missing_and_foreign_shards() {
    let dir = temp("refusals");
    let (a, b) = small_shards(&dir);
    let out = dir.join("out");

    // The good pair merges.
    let good = merge(&[&a, &b], &out, &[]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));

    assert_refused(&merge(&[&a, &a, &b], &out, &[]), &["overlapping", "1/2"]);
    assert_refused(&merge(&[&a], &out, &[]), &["2/2", "missing"]);
    assert_refused(
        &merge(&[&a, &b], &a, &[]),
        &["--out", "is also a shard folder"],
    );

    // Another rclab version.
    let other_version = dir.join("version");
    copy_dir(&b, &other_version);
    edit_manifest(&other_version, |m| {
        m["rclab_version"] = "0.0.1-other".into()
    });
    assert_refused(
        &merge(&[&a, &other_version], &out, &[]),
        &["version/shard.json", "`rclab_version`", "0.0.1-other"],
    );

    // Another catalogue: a shard of other profiles.
    let other_catalogue = dir.join("catalogue");
    run(&other_catalogue, "valid/gen1*", Some("2/2"), &[]);
    assert_refused(
        &merge(&[&a, &other_catalogue], &out, &[]),
        &[
            "catalogue/shard.json",
            "`catalogue.digest`",
            "different catalogues",
        ],
    );

    // Another split.
    let other_split = dir.join("split");
    run(&other_split, "valid/gen2*", Some("2/3"), &[]);
    assert_refused(
        &merge(&[&a, &other_split], &out, &[]),
        &["split/shard.json", "`shard`", "2/3"],
    );

    // Other adapters: the reference checker, configured otherwise (pinned trust).
    let adapter = dir.join("pinned.yaml");
    std::fs::write(
        &adapter,
        "name: reference\nkind: reference\ntrust: pinned\n",
    )
    .unwrap();
    let other_checkers = dir.join("checkers");
    run(
        &other_checkers,
        "valid/gen2*",
        Some("2/2"),
        &["--checker", adapter.to_str().unwrap()],
    );
    assert_refused(
        &merge(&[&a, &other_checkers], &out, &[]),
        &["checkers/shard.json", "`checkers[0]`", "different adapters"],
    );

    // The profile folder is not the catalogue the shards ran (same names, other content).
    let (a2, b2) = (dir.join("a2"), dir.join("b2"));
    copy_dir(&a, &a2);
    copy_dir(&b, &b2);
    for d in [&a2, &b2] {
        edit_manifest(d, |m| m["catalogue"]["digest"] = "00".repeat(32).into());
    }
    assert_refused(
        &merge(&[&a2, &b2], &out, &[]),
        &["--profile-dir", "differ from the catalogue"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_malformed_and_incomplete_shard_folders() {
    let dir = temp("malformed");
    let (a, b) = small_shards(&dir);
    let out = dir.join("out");
    let broken = dir.join("broken");
    let reset = || {
        let _ = std::fs::remove_dir_all(&broken);
        copy_dir(&b, &broken);
    };

    // Not a shard folder at all.
    let plain = dir.join("plain");
    run(&plain, "valid/gen2*", None, &[]);
    assert_refused(
        &merge(&[&a, &plain], &out, &[]),
        &["plain/shard.json", "rclab run --shard"],
    );

    reset();
    std::fs::write(
        broken.join("shard.json"),
        "{\"schema\": \"rclab.shard/1\", ",
    )
    .unwrap();
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &["broken/shard.json", "not a shard manifest", "line 1"],
    );

    reset();
    edit_manifest(&broken, |m| m["schema"] = "rclab.shard/9".into());
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &["broken/shard.json: field `schema`", "rclab.shard/9"],
    );

    reset();
    edit_manifest(&broken, |m| m["shard"]["index"] = 7.into());
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &["broken/shard.json: field `shard`", "7 of 2"],
    );

    // A journal with a line that is no result, one cut short, and one missing a case.
    let journal = broken.join("results.jsonl");
    reset();
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("{text}not json\n")).unwrap();
    let lines = text.lines().count();
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &[
            &format!("broken/results.jsonl: line {}", lines + 1),
            "not a result",
        ],
    );

    reset();
    std::fs::write(&journal, &text[..text.len() - 10]).unwrap();
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &["broken/results.jsonl", "cut short", "--shard 2/2 --resume"],
    );

    reset();
    let first_line_dropped: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&journal, first_line_dropped).unwrap();
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &[
            "broken/results.jsonl",
            "have no result",
            "--shard 2/2 --resume",
        ],
    );
    // The advice works: resumed, the shard merges.
    run(&broken, "valid/gen2*", Some("2/2"), &["--resume"]);
    let resumed = merge(&[&a, &broken], &out, &[]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));

    // A result of shard 1 put into shard 2's journal.
    reset();
    let stray = std::fs::read_to_string(a.join("results.jsonl")).unwrap();
    let stray = stray.lines().next().unwrap();
    std::fs::write(&journal, format!("{text}{stray}\n")).unwrap();
    assert_refused(
        &merge(&[&a, &broken], &out, &[]),
        &["broken/results.jsonl: line", "not a case of this run"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
