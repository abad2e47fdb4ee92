//! The runner against misbehaving checkers, journals, baselines and output folders
//! (issue 10): each test names what used to go wrong.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rclab_suite::run::adapter::{Adapter, Kind, parse_json_verdict};
use rclab_suite::run::{self, CaseResult, Jobs, Outcome, RunConfig, Transport, journal, process};

use common::repo;

/// A fresh, empty temporary folder for one test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rclab-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An executable shell script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const VERDICT: &str = r#"{"schema":"rclab.verdict/1","verdict":"genuine"}"#;

fn run_script(path: &Path, timeout: Duration) -> (process::Finished, Duration) {
    let started = Instant::now();
    let finished = process::run(
        &[path.display().to_string()],
        &BTreeMap::new(),
        path.parent().unwrap(),
        timeout,
    )
    .unwrap();
    (finished, started.elapsed())
}

#[test]
fn a_timeout_kills_the_checkers_children_too() {
    // Before: only `sh` was killed; its `sleep` kept the pipes open for 100 s.
    let dir = temp("timeout");
    let checker = script(&dir, "hang.sh", "sleep 100\necho never");
    let (finished, took) = run_script(&checker, Duration::from_millis(800));
    assert!(finished.status.is_none(), "killed at the timeout");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_verdict_printed_before_a_background_child_counts_at_once() {
    // Before: the runner waited for `sleep 30 &` to close the inherited stdout.
    let dir = temp("background");
    let checker = script(
        &dir,
        "bg.sh",
        &format!(
            "echo '{VERDICT}'\nsleep 30 &\necho $! > {}/pid",
            dir.display()
        ),
    );
    let (finished, took) = run_script(&checker, Duration::from_secs(20));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(finished.status.unwrap().success());
    assert!(parse_json_verdict(&finished.stdout.text()).is_ok());
    // The leftover child was killed with the group.
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    while alive(pid) {
        assert!(Instant::now() < deadline, "the background child survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_descendant_that_left_the_group_cannot_hold_the_run() {
    let dir = temp("setsid");
    let checker = script(
        &dir,
        "escape.sh",
        // The verdict is printed only once the child has left the group: otherwise the
        // group kill at exit can catch it before `setsid` runs, and the test is a race.
        &format!(
            "setsid sh -c 'echo $$ > {left}; exec sleep 30' &\nwhile [ ! -s {left} ]; do sleep 0.01; done\necho '{VERDICT}'",
            left = dir.join("left").display()
        ),
    );
    let (finished, took) = run_script(&checker, Duration::from_secs(20));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(parse_json_verdict(&finished.stdout.text()).is_ok());
    assert!(finished.pipes_left_open);
}

#[test]
fn chatty_output_is_kept_as_a_bounded_tail_and_the_verdict_still_found() {
    let dir = temp("chatty");
    let checker = script(
        &dir,
        "chatty.sh",
        &format!(
            "head -c 20000000 /dev/zero | tr '\\0' 'x'\necho\nhead -c 3000000 /dev/zero >&2\necho '{VERDICT}'"
        ),
    );
    let (finished, _) = run_script(&checker, Duration::from_secs(60));
    assert!(finished.stdout.total > 20_000_000);
    assert!(finished.stderr.total >= 3_000_000);
    assert!(finished.stdout.text().len() <= process::STDOUT_TAIL);
    assert!(finished.stderr.text().len() <= process::STDERR_TAIL);
    assert!(parse_json_verdict(&finished.stdout.text()).is_ok());
}

#[test]
fn one_invalid_byte_does_not_hide_a_valid_verdict() {
    // Before: `read_to_string` failed on the byte and the verdict was BAD-OUTPUT.
    let dir = temp("utf8");
    let checker = script(
        &dir,
        "bad.sh",
        &format!("printf 'x\\377y\\n'\necho '{VERDICT}'"),
    );
    let (finished, _) = run_script(&checker, Duration::from_secs(20));
    assert!(parse_json_verdict(&finished.stdout.text()).is_ok());
}

#[test]
fn placeholder_values_are_never_run_as_code() {
    // A profile folder named `$(touch X)`, passed the safe way (a separate argument of
    // `sh -c`), reaches the checker as text; the raw form is refused when loaded.
    let dir = temp("placeholders");
    let adapter_file = dir.join("unsafe.yaml");
    std::fs::write(
        &adapter_file,
        "name: unsafe\ncommand: [sh, -c, \"echo {profile}\"]\n",
    )
    .unwrap();
    let err = Adapter::load(adapter_file.to_str().unwrap()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("unsafe.yaml:")
            && message.contains("command")
            && message.contains("sh -c"),
        "{message}"
    );

    let safe = dir.join("safe.yaml");
    std::fs::write(
        &safe,
        "name: safe\ncommand: [sh, -c, 'printf \"%s\\n\" \"$1\"', sh, \"{profile}\"]\n",
    )
    .unwrap();
    let adapter = Adapter::load(safe.to_str().unwrap()).unwrap();
    let profile = dir.join("$(touch X)/{repo}/p.yaml");
    let values: BTreeMap<&str, String> = [
        ("profile", profile.display().to_string()),
        ("repo", "EXPANDED".to_owned()),
    ]
    .into_iter()
    .collect();
    let Kind::Process(process) = &adapter.kind else {
        panic!("a command makes a process checker: {adapter:?}");
    };
    let argv = process.render(&values);
    assert_eq!(argv[4], profile.display().to_string(), "substituted once");
    let finished = process::run(&argv, &BTreeMap::new(), &dir, Duration::from_secs(20)).unwrap();
    assert!(finished.stdout.text().contains("$(touch X)/{repo}/p.yaml"));
    assert!(!dir.join("X").exists(), "a value ran as a command");
}

fn config(out: PathBuf, profiles: &str) -> RunConfig {
    common::run_config(
        vec![Adapter::reference()],
        common::profiles(profiles),
        Transport::Inproc,
        out,
    )
}

#[test]
fn resume_skips_every_bad_line_and_never_duplicates_a_case() {
    let out = temp("journal");
    let mut config = config(out.clone(), "valid");
    let first = run::run(&config).unwrap();
    let cases = first.len();
    assert_eq!(cases, config.profiles.len());
    assert!(cases >= 5);
    let path = out.join("results.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Keep two results; then an invalid UTF-8 line, garbage, a stale case that would be a
    // false accept, a duplicate, and a last line cut in the middle.
    let mut stale: CaseResult = serde_json::from_str(lines[0]).unwrap();
    stale.profile = "forged/does-not-exist".into();
    stale.outcome = Outcome::Fail;
    stale.false_accept = true;
    // The invalid line comes first: the old reader stopped there and ran every case again.
    let mut journal = b"{\"checker\":\"reference\",\xff\xfe}\n".to_vec();
    for line in &lines[..2] {
        journal.extend_from_slice(line.as_bytes());
        journal.push(b'\n');
    }
    journal.extend_from_slice(b"not json at all\n");
    journal.extend_from_slice(serde_json::to_string(&stale).unwrap().as_bytes());
    journal.push(b'\n');
    journal.extend_from_slice(lines[0].as_bytes());
    journal.push(b'\n');
    journal.extend_from_slice(&lines[2].as_bytes()[..lines[2].len() / 2]);
    std::fs::write(&path, &journal).unwrap();

    config.resume = true;
    let results = run::run(&config).unwrap();
    let mut keys: Vec<(String, String)> = results
        .iter()
        .map(|r| (r.checker.clone(), r.profile.clone()))
        .collect();
    assert_eq!(keys.len(), cases, "{keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), cases, "no case twice");
    assert!(
        results
            .iter()
            .all(|r| r.outcome == Outcome::Pass && !r.false_accept)
    );

    // On disk: the cut line was terminated, so every line written after it parses, and a
    // third read finds each case exactly once.
    let bytes = std::fs::read(&path).unwrap();
    let after_cut = &bytes[journal.len()..];
    assert!(after_cut.starts_with(b"\n"), "the cut line was terminated");
    let appended: Vec<&[u8]> = after_cut
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for line in &appended {
        serde_json::from_slice::<CaseResult>(line).expect("a whole result line");
    }
    assert_eq!(
        appended.len(),
        cases - 2,
        "only the missing cases ran again"
    );
    let expectations = results
        .iter()
        .map(|r| ((r.checker.clone(), r.profile.clone()), r.expected))
        .collect();
    let again = journal::parse(&bytes[..], &expectations);
    assert_eq!(again.results.len(), cases);
    let reasons: Vec<String> = again.skipped.iter().map(|(_, s)| s.to_string()).collect();
    assert!(reasons.iter().any(|r| r == "not UTF-8"), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.starts_with("not a result")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("forged/does-not-exist") && r.contains("not a case")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("repeats")), "{reasons:?}");
}

#[test]
fn a_journal_linked_to_a_device_is_refused_clearly() {
    let out = temp("zero");
    std::os::unix::fs::symlink("/dev/zero", out.join("results.jsonl")).unwrap();
    let mut config = config(out, "valid");
    config.resume = true;
    let message = format!("{:#}", run::run(&config).unwrap_err());
    assert!(
        message.contains("results.jsonl") && message.contains("a device"),
        "{message}"
    );
}

#[test]
fn a_second_run_on_a_locked_folder_fails_at_once_naming_the_holder() {
    let out = temp("lock");
    let _held = run::lock::lock_out(&out).unwrap();
    let started = Instant::now();
    let message = format!("{:#}", run::run(&config(out.clone(), "valid")).unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        message.contains(&out.display().to_string())
            && message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(!out.join("results.jsonl").exists(), "nothing written");
}

#[test]
fn process_checkers_without_pcsc_are_refused_before_any_case() {
    // Before: 62 × N/A and exit 0.
    let adapter = Adapter::load(
        repo()
            .join("suite/adapters/pyscard-nosig.yaml")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let out = temp("inproc-process");
    let mut config = config(out, "valid");
    config.checkers = vec![adapter];
    let message = format!("{:#}", run::run(&config).unwrap_err());
    assert!(
        message.contains("pyscard-nosig") && message.contains("needs --transport pcsc"),
        "{message}"
    );
}

#[test]
fn duplicate_checker_names_are_refused_naming_both_files() {
    let dir = temp("duplicates");
    let body = "name: twin\nkind: reference\n";
    let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
    std::fs::write(&a, body).unwrap();
    std::fs::write(&b, body).unwrap();
    let specs = [a.display().to_string(), b.display().to_string()];
    let message = Adapter::load_all(&specs).unwrap_err().to_string();
    assert!(
        message.contains(&specs[0]) && message.contains(&specs[1]) && message.contains("twin"),
        "{message}"
    );
}

#[test]
fn invalid_adapter_fields_are_located_and_explained() {
    let dir = temp("adapter-errors");
    let cases = [
        ("verdict: jsn\n", "verdict", "exit_codes"),
        (
            "verdict:\n  exit_code: {0: {verdict: genuine}}\n",
            "verdict",
            "exit_codes",
        ),
        (
            "verdict:\n  exit_codes: {0: {verdict: maybe}}\n",
            "verdict",
            "genuine",
        ),
        ("timeout_ms: 0\n", "timeout_ms", "1 to 3600000"),
        (
            "timeout_ms: 18446744073709551615\n",
            "timeout_ms",
            "out of range",
        ),
        (
            "command: [x, \"{nope}\"]\n",
            "command",
            "unknown placeholder {nope}",
        ),
    ];
    for (i, (tail, field, hint)) in cases.iter().enumerate() {
        let path = dir.join(format!("a{i}.yaml"));
        let command = if tail.starts_with("command") {
            ""
        } else {
            "command: [x]\n"
        };
        std::fs::write(&path, format!("name: a\n{command}{tail}")).unwrap();
        let message = Adapter::load(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        let located = format!("a{i}.yaml:");
        assert!(
            message.contains(&located)
                && !message.contains(&format!("{located}1:1"))
                && message.contains(field)
                && message.contains(hint)
                && !message.contains("untagged"),
            "{tail:?} → {message}"
        );
    }
}

/// Characters XML 1.0 cannot carry, raw or as references.
fn check_chars(text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|&c| (c.is_control() && !"\t\n\r".contains(c)) || c == '\u{FFFE}' || c == '\u{FFFF}')
    {
        Some(c) => Err(format!("character {c:?} is not allowed in XML 1.0")),
        None if text.contains("&#") => Err("a character reference".into()),
        None => Ok(()),
    }
}

/// Well-formed XML, or the parser's complaint.
fn xml_well_formed(text: &str) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => {
                return if depth == 0 {
                    Ok(())
                } else {
                    Err("unclosed element".into())
                };
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Text(t)) => {
                check_chars(&t.into_inner())?;
            }
            Ok(
                event @ (quick_xml::events::Event::Empty(_) | quick_xml::events::Event::Start(_)),
            ) => {
                let (quick_xml::events::Event::Empty(e) | quick_xml::events::Event::Start(e)) =
                    &event
                else {
                    unreachable!()
                };
                for attribute in e.attributes() {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    check_chars(&attribute.value)?;
                }
                if matches!(event, quick_xml::events::Event::Start(_)) {
                    depth += 1;
                }
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[test]
fn reports_stay_well_formed_whatever_names_and_details_hold() {
    // Before: an ANSI escape from a checker's stderr made junit.xml invalid XML.
    let out = temp("escapes");
    let config = config(out.clone(), "valid");
    let mut results = run::run(&config).unwrap();
    let hostile = "\u{1b}[31mred\u{1b}[0m <b>&\"|`\u{0}\u{7}\u{FFFE}\r\nnext";
    let mut checkers = config.checkers.clone();
    checkers[0].name = format!("ref{hostile}");
    checkers[0].description = hostile.to_owned();
    for (i, r) in results.iter_mut().enumerate() {
        r.checker = checkers[0].name.clone();
        r.profile = format!("valid/{i}{hostile}");
        r.detail = hostile.to_owned();
        r.outcome = [
            Outcome::Fail,
            Outcome::Crash,
            Outcome::NotApplicable,
            Outcome::Pass,
            Outcome::BadOutput,
        ][i % 5];
    }
    run::report::write_all(&out, &checkers, &results).unwrap();

    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    xml_well_formed(&junit).unwrap_or_else(|e| panic!("junit.xml: {e}\n{junit}"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        json["results"][0]["detail"], hostile,
        "JSON keeps the text, escaped"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in report.html"
    );
    assert!(!html.contains("<b>"), "markup from a name reached the HTML");
    assert!(html.contains("&lt;b&gt;") && html.contains("\\u003cb>"));
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!markdown.chars().any(|c| c.is_control() && c != '\n'));
    // Every row of the matrix has its two columns plus one per checker.
    let matrix =
        &markdown[markdown.find("## Matrix").unwrap()..markdown.find("## Privacy").unwrap()];
    for row in matrix.lines().filter(|l| l.starts_with('|')) {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 4, "{row}");
    }
}

/// The misbehaving checkers above, through the whole runner over PC/SC, with a profile
/// folder named `$(touch X)` (before: 100 s for the grandchild, 30 s for the background
/// child; with a `sh -c` adapter the folder name ran).
#[test]
fn misbehaving_process_checkers_over_pcsc_cost_their_timeout_at_most() {
    if !common::stack_available() {
        return;
    }
    let dir = temp("pcsc");
    let folder = dir.join("$(touch X)");
    std::fs::create_dir_all(&folder).unwrap();
    let vectors = format!("{}/", repo().join("vectors").display());
    let yaml = std::fs::read_to_string(repo().join("vectors/profiles/valid/gen1-residence.yaml"))
        .unwrap()
        .replace("../../", &vectors);
    std::fs::write(folder.join("gen1.yaml"), yaml).unwrap();
    let profiles = rclab_emulator::profile::load_dir(&dir).unwrap();
    assert_eq!(profiles[0].name, "$(touch X)/gen1");

    let write = |name: &str, body: String| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, body).unwrap();
        Adapter::load(path.to_str().unwrap()).unwrap()
    };
    let grandchild = write(
        "grandchild",
        "name: grandchild\ncommand: [sh, -c, 'sleep 100; true']\ntimeout_ms: 3000\n".into(),
    );
    let background = write(
        "background",
        format!(
            "name: background\ncommand: [sh, -c, 'echo \"$1\" >&2; echo ''{VERDICT}''; sleep 30 &', sh, \"{{profile}}\", \"{{profile_name}}\"]\ntimeout_ms: 20000\n"
        ),
    );
    let config = RunConfig {
        jobs: Jobs::Exactly(1),
        repo: dir.clone(),
        ..common::run_config(
            vec![grandchild, background],
            profiles,
            Transport::Pcsc,
            dir.join("out"),
        )
    };
    let started = Instant::now();
    let results = run::run(&config).unwrap();
    let took = started.elapsed();
    let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Timeout, Outcome::Pass], "{results:#?}");
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert!(
        !dir.join("X").exists(),
        "the profile folder's name ran as a command"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// The journal target's property on seeds with bytes overwritten, newlines inserted and
    /// tails cut (a few hundred cases here; `scripts/fuzz journal` runs millions).
    #[test]
    fn the_journal_reader_holds_on_damaged_journals(
        seed in 0usize..3,
        edits in proptest::collection::vec((0usize..1 << 16, proptest::prelude::any::<u8>()), 0..12),
        cut in 0usize..1 << 16,
    ) {
        static SEEDS: std::sync::LazyLock<Vec<(String, Vec<u8>)>> =
            std::sync::LazyLock::new(|| rclab_suite::fuzzing::seeds("journal"));
        let mut data = SEEDS[seed % SEEDS.len()].1.clone();
        for (at, byte) in edits {
            let at = at % (data.len() + 1);
            if byte % 3 == 0 {
                data.insert(at, b'\n');
            } else if at < data.len() {
                data[at] = byte;
            }
        }
        data.truncate(data.len() - cut % (data.len() / 2 + 1));
        rclab_suite::fuzzing::journal(&data);
    }
}
