//! Report generation for the full example matrix, in-process: every profile's card
//! rendered (G4 TIFF and JPEG 2000 to PNG) and all four reports written, from the example
//! run's `reports/example/results.json` (every example checker × every profile).
//! Run: `cargo bench -p rclab-suite --bench report` — prints the time; the budget is 2 s.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rclab_emulator::profile;
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::render::Cards;
use rclab_suite::run::{CaseResult, report};

#[derive(serde::Deserialize)]
struct Example {
    checkers: Vec<Adapter>,
    results: Vec<CaseResult>,
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let example: Example = serde_json::from_str(
        &std::fs::read_to_string(repo.join("reports/example/results.json"))
            .expect("reports/example/results.json"),
    )
    .expect("an rclab.report/1 file");
    let profiles = profile::load_dir(&repo.join("vectors/profiles")).expect("bundled profiles");
    let out = std::env::temp_dir().join(format!("rclab-bench-report-{}", std::process::id()));
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let cards = Cards::from_profiles(&profiles);
        report::write_all_with_cards(&out, &example.checkers, &example.results, &cards)
            .expect("reports written");
        best = best.min(started.elapsed());
        size = std::fs::metadata(out.join("report.html")).map_or(0, |m| m.len());
    }
    let _ = std::fs::remove_dir_all(&out);
    println!("| measurement | cases | time (best of 5) | budget |");
    println!("|---|---:|---:|---:|");
    println!(
        "| render every card + write report.md, report.html ({} KiB), junit.xml, results.json | {} | {:.0} ms | 2000 ms{} |",
        size / 1024,
        example.results.len(),
        best.as_secs_f64() * 1e3,
        if best > Duration::from_secs(2) {
            " (OVER)"
        } else {
            ""
        }
    );
}
