//! Writes the fuzz corpus seeds (`rclab_suite::fuzzing::seeds`, built from real transcripts
//! of the bundled valid profiles) as files `DIR/<target>/<name>`.
//!
//! Run: `cargo run -p rclab-suite --example fuzz_seeds -- fuzz/corpus [TARGET…]`

use std::path::PathBuf;

use rclab_suite::fuzzing::{self, TARGETS};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/corpus".into()));
    let only: Vec<String> = args.collect();
    for (target, _) in TARGETS {
        if !only.is_empty() && !only.iter().any(|t| t == target) {
            continue;
        }
        let out = dir.join(target);
        std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        let seeds = fuzzing::seeds(target);
        for (name, bytes) in &seeds {
            let path = out.join(format!("seed-{name}"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        println!("{target}: {} seeds in {}", seeds.len(), out.display());
    }
}
