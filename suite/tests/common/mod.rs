//! Shared by the suite's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rclab_emulator::profile::{self, Profile};
use rclab_suite::checker::Options;
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::{Jobs, RunConfig, Transport};

/// The repository's root folder.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A fresh, empty folder for one test: `<tmp>/rclab-<prefix>-<pid>-<name>`.
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rclab-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `rclab ARGS` run from the repository's root, with its whole output.
pub fn rclab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rclab"))
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap()
}

/// A finished process's standard error, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A run of `checkers` over `profiles`, as the tests want it unless they say otherwise: two
/// jobs, the repository's trust folder, the fixed clock, plain progress, no resume, the
/// local readers (with `Transport::Pcsc`).
pub fn run_config(
    checkers: Vec<Adapter>,
    profiles: Vec<Profile>,
    transport: Transport,
    out: PathBuf,
) -> RunConfig {
    RunConfig {
        checkers,
        profiles,
        jobs: Jobs::Exactly(2),
        transport,
        out,
        resume: false,
        repo: repo(),
        trust_dir: repo().join("vectors/pki/trust"),
        at: fixed_now(),
        plain: true,
        readers: Vec::new(),
    }
}

/// The repository's `vectors/` folder.
pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// Every residence-card profile below `vectors/profiles/<sub>`, for the tests of the
/// residence checker alone (the My Number and specified cards of `my-number/` are read
/// through the platform: `all_profiles` has them, `my_number_checker` and
/// `specified_scope` test them).
pub fn profiles(sub: &str) -> Vec<Profile> {
    let all = profile::load_dir(&vectors().join("profiles").join(sub)).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    all.into_iter()
        .filter(|p| p.residence_image().is_ok())
        .collect()
}

/// Every profile below `vectors/profiles/<sub>`, residence and My Number cards alike (the
/// reference checker reads both: the profile's kind picks its checker).
pub fn all_profiles(sub: &str) -> Vec<Profile> {
    profile::load_dir(&vectors().join("profiles").join(sub)).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// What the reference checker types for `p`'s card: the PIN of a My Number profile, the
/// card number of a residence or specified residence profile (`checker_pin`).
pub fn secret(p: &Profile) -> (Option<String>, String) {
    (
        rclab_suite::checker::my_number::checker_pin(p),
        p.card_number.to_string(),
    )
}

/// 2026-11-25 00:00 UTC: a fixed "now" so that certificate validity never drifts.
pub fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_564_800)
}

/// Checker options with a fixed clock and seed: transcripts replay byte for byte.
pub fn options(seed: u64) -> Options {
    Options {
        max_response: None,
        at: fixed_now(),
        seed: Some(seed),
        delivery_key: None,
    }
}

/// True when pcscd with vpcd readers runs; otherwise prints why the caller skips, or
/// fails when `RCLAB_REQUIRE_PCSC` is set (CI), so the real-stack tests cannot vanish.
///
/// Readers other processes hold (another test binary, a developer's `rclab serve`) are
/// waited for up to a minute: busy readers are not a missing stack.
pub fn stack_available() -> bool {
    use rclab_emulator::transport::vpcd::{BASE_PORT, probe::listening_ports};
    let socket = std::path::Path::new("/run/pcscd/pcscd.comm").exists();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let up = socket
        && !listening_ports(BASE_PORT..BASE_PORT + 32).is_empty()
        && loop {
            if !rclab_suite::run::vpcd_ports().is_empty() {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
    if !up {
        let message =
            "pcscd with vpcd readers is not running: start it with `sudo scripts/pcsc-up`";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_PCSC").is_none(),
            "{message} (RCLAB_REQUIRE_PCSC is set)"
        );
        eprintln!("SKIPPED: {message}");
    }
    up
}

/// Snapshot with the project's standard redactions (timings vary run to run).
#[macro_export]
macro_rules! assert_case_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_suffix => $name, prepend_module_to_snapshot => false }, {
            insta::assert_yaml_snapshot!($value, { ".transcript[].micros" => "[micros]" });
        });
    };
}
