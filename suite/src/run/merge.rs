//! `rclab merge`: the output folders of the shards of one run (see [`super::shard`]) put
//! back together into the results of the unsharded run, from which the same reports are
//! written.
//!
//! Nothing in a folder is trusted: every `shard.json` must name the same rclab version,
//! catalogue, checkers and transport; the shards must be exactly 1..N of one N, each once;
//! every `results.jsonl` must hold exactly its shard's cases, each once, with the
//! expectation the catalogue gives. Anything else is an error naming the folder, the file
//! and the field (or line), so that a mixed-up CI artifact never becomes a report. The
//! results are combined as whole [`CaseResult`]s: merging knows no outcome or column, so
//! whatever a result records reaches every report unchanged.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rclab_emulator::files::{open_regular, read_bounded_text};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::verdict::Verdict;

use super::adapter::{Adapter, expectation_for};
use super::journal::{self, MAX_JOURNAL};
use super::shard::{Catalogue, MANIFEST_FILE, MANIFEST_SCHEMA, MAX_MANIFEST, Manifest, Shard};
use super::{CaseResult, Transport};

/// Why shards cannot be merged: `place` is the folder or file (with the field or line) the
/// problem is in.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct MergeError {
    /// The folder, file, `file` field or `file` line concerned.
    pub place: String,
    /// What is wrong, and what to do about it when that is not obvious.
    pub message: String,
}

fn error(place: impl Into<String>, message: impl Into<String>) -> MergeError {
    MergeError {
        place: place.into(),
        message: message.into(),
    }
}

/// The unsharded run the shards add up to.
#[derive(Debug)]
pub struct Merged {
    /// The checkers, in run order.
    pub checkers: Vec<Adapter>,
    /// The selected profiles, in run order, loaded from the profile folder.
    pub profiles: Vec<Profile>,
    /// Where the cards lived.
    pub transport: Transport,
    /// How many shards were merged.
    pub shard_count: u32,
    /// Every case's result, in unsharded case order (checker by checker, profile order).
    pub results: Vec<CaseResult>,
}

/// One input folder and its manifest.
struct Input {
    dir: PathBuf,
    manifest: Manifest,
}

/// Merges the shard folders `dirs`, loading the catalogue's profiles from `profile_dir`
/// (the reports show each profile's card, and the digest proves it is the catalogue the
/// shards ran).
pub fn merge(dirs: &[PathBuf], profile_dir: &Path) -> Result<Merged, MergeError> {
    let inputs = dirs
        .iter()
        .map(|dir| read_manifest(dir))
        .collect::<Result<Vec<Input>, MergeError>>()?;
    let first = inputs
        .first()
        .ok_or_else(|| error("rclab merge", "no shard folder given"))?;
    for input in &inputs[1..] {
        agree(first, input)?;
    }
    check_shard_set(&inputs)?;
    let manifest = &first.manifest;
    let profiles = load_catalogue(profile_dir, &manifest.catalogue)?;

    let order: Vec<(&Adapter, &Profile)> = super::pairs(&manifest.checkers, &profiles).collect();
    let mut by_case: HashMap<(String, String), CaseResult> = HashMap::new();
    for input in &inputs {
        let cases: HashMap<(String, String), Verdict> = order
            .iter()
            .enumerate()
            .filter(|(position, _)| input.manifest.shard.contains(*position))
            .map(|(_, (c, p))| {
                (
                    (c.name.clone(), p.name.clone()),
                    expectation_for(c.trust, p.expect.verdict),
                )
            })
            .collect();
        for result in read_shard_results(input, &cases)? {
            by_case.insert((result.checker.clone(), result.profile.clone()), result);
        }
    }
    let results = order
        .iter()
        .filter_map(|(c, p)| by_case.remove(&(c.name.clone(), p.name.clone())))
        .collect();
    let mut checkers = manifest.checkers.clone();
    super::adapter::set_scope(&mut checkers, &profiles);
    Ok(Merged {
        checkers,
        profiles,
        transport: manifest.transport,
        shard_count: manifest.shard.count,
        results,
    })
}

fn read_manifest(dir: &Path) -> Result<Input, MergeError> {
    let path = dir.join(MANIFEST_FILE);
    let place = path.display().to_string();
    let text = read_bounded_text(&path, MAX_MANIFEST).map_err(|e| {
        let hint = if path.exists() || !dir.is_dir() {
            String::new()
        } else {
            " (not the output folder of a sharded run: `rclab run --shard I/N --out DIR` writes it)"
                .to_owned()
        };
        error(&place, format!("cannot read: {e}{hint}"))
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        error(
            &place,
            format!("not a shard manifest ({MANIFEST_SCHEMA}): {e}"),
        )
    })?;
    if manifest.schema != MANIFEST_SCHEMA {
        return Err(error(
            format!("{place}: field `schema`"),
            format!(
                "{:?}, expected {MANIFEST_SCHEMA:?}",
                super::printable(&manifest.schema, 80)
            ),
        ));
    }
    manifest
        .shard
        .validate()
        .map_err(|why| error(format!("{place}: field `shard`"), why))?;
    Ok(Input {
        dir: dir.to_path_buf(),
        manifest,
    })
}

/// Refuses `input` unless it is a shard of the same run as `first`.
fn agree(first: &Input, input: &Input) -> Result<(), MergeError> {
    let (a, b) = (&first.manifest, &input.manifest);
    let mismatch = |field: &str, theirs: String, ours: String, why: &str| {
        error(
            format!(
                "{}: field `{field}`",
                input.dir.join(MANIFEST_FILE).display()
            ),
            format!(
                "{theirs}, but {} has {ours}: {why}",
                first.dir.join(MANIFEST_FILE).display()
            ),
        )
    };
    let quoted = |text: &str| format!("{:?}", super::printable(text, 80));
    if a.rclab_version != b.rclab_version {
        return Err(mismatch(
            "rclab_version",
            quoted(&b.rclab_version),
            quoted(&a.rclab_version),
            "shards of different rclab versions are not one run",
        ));
    }
    if a.catalogue.digest != b.catalogue.digest || a.catalogue.profiles != b.catalogue.profiles {
        return Err(mismatch(
            "catalogue.digest",
            quoted(&b.catalogue.digest),
            quoted(&a.catalogue.digest),
            "shards of different catalogues (profiles, or their content) are not one run",
        ));
    }
    let checker_json = |m: &Manifest| -> Vec<serde_json::Value> {
        m.checkers
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect()
    };
    let (ours, theirs) = (checker_json(a), checker_json(b));
    if ours != theirs {
        let names = |m: &Manifest| {
            let names: Vec<String> = m
                .checkers
                .iter()
                .map(|c| super::printable(&c.name, 80))
                .collect();
            format!("[{}]", names.join(", "))
        };
        let field = match ours.iter().zip(&theirs).position(|(x, y)| x != y) {
            Some(i) if ours.len() == theirs.len() => format!("checkers[{i}]"),
            _ => "checkers".to_owned(),
        };
        return Err(mismatch(
            &field,
            format!("checkers {}", names(b)),
            format!("checkers {} (or differently configured)", names(a)),
            "shards run with different adapters are not one run",
        ));
    }
    if a.transport != b.transport {
        return Err(mismatch(
            "transport",
            format!("{:?}", b.transport),
            format!("{:?}", a.transport),
            "shards run over different transports are not one run",
        ));
    }
    if a.shard.count != b.shard.count {
        return Err(mismatch(
            "shard",
            format!("shard {}", b.shard),
            format!("shard {}", a.shard),
            "shards of different splits are not one run",
        ));
    }
    Ok(())
}

/// Every shard 1..N exactly once.
fn check_shard_set(inputs: &[Input]) -> Result<(), MergeError> {
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for input in inputs {
        let shard = input.manifest.shard;
        if let Some(other) = seen.insert(shard.index, &input.dir) {
            return Err(error(
                format!("{}: field `shard`", input.dir.join(MANIFEST_FILE).display()),
                format!(
                    "shard {shard} is also in {}: overlapping shards (each shard once)",
                    other.display()
                ),
            ));
        }
    }
    let count = inputs.first().map_or(0, |i| i.manifest.shard.count);
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains_key(i))
        .map(|index| Shard { index, count }.to_string())
        .collect();
    if !missing.is_empty() {
        let given: Vec<String> = inputs.iter().map(|i| i.dir.display().to_string()).collect();
        return Err(error(
            "rclab merge",
            format!(
                "shard(s) {} missing: a run split in {count} needs all {count} shards (given: {})",
                missing.join(", "),
                given.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The shards' profiles from `profile_dir`, in run order, proven to be the shards' catalogue.
fn load_catalogue(profile_dir: &Path, catalogue: &Catalogue) -> Result<Vec<Profile>, MergeError> {
    let place = format!("--profile-dir {}", profile_dir.display());
    let mut all: HashMap<String, Profile> = profile::load_dir(profile_dir)
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            error(
                &place,
                format!(
                    "{} profile(s) failed to load:\n{}",
                    errors.len(),
                    lines.join("\n")
                ),
            )
        })?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let profiles = catalogue
        .profiles
        .iter()
        .map(|name| {
            all.remove(name).ok_or_else(|| {
                error(
                    &place,
                    format!(
                        "has no profile `{}`, which the shards ran: merge with the profile folder the shards ran",
                        super::printable(name, 200)
                    ),
                )
            })
        })
        .collect::<Result<Vec<Profile>, MergeError>>()?;
    let digest = super::shard::catalogue_digest(&profiles);
    if digest != catalogue.digest {
        return Err(error(
            &place,
            format!(
                "its profiles differ from the catalogue the shards ran (digest {digest}, shards {}): merge with the profile folder the shards ran",
                catalogue.digest
            ),
        ));
    }
    Ok(profiles)
}

/// The results in `input`'s `results.jsonl`: exactly the cases of its shard, each once.
fn read_shard_results(
    input: &Input,
    cases: &HashMap<(String, String), Verdict>,
) -> Result<Vec<CaseResult>, MergeError> {
    let path = input.dir.join("results.jsonl");
    let place = path.display().to_string();
    let file = open_regular(&path).map_err(|e| error(&place, format!("cannot read: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| error(&place, format!("cannot read: {e}")))?
        .len();
    if size > MAX_JOURNAL {
        return Err(error(
            &place,
            format!("{size} bytes: larger than the {MAX_JOURNAL}-byte limit of a journal"),
        ));
    }
    let found = journal::parse(BufReader::new(file.take(MAX_JOURNAL)), cases);
    if let Some(e) = found.read_error {
        return Err(error(&place, format!("cannot read: {e}")));
    }
    if found.cut_last_line {
        return Err(error(
            &place,
            format!(
                "the last line is cut short (the shard was stopped while writing): finish it with `rclab run --shard {} --resume`",
                input.manifest.shard
            ),
        ));
    }
    if let Some((line, why)) = found.skipped.first() {
        return Err(error(format!("{place}: line {line}"), why.to_string()));
    }
    if found.results.len() < cases.len() {
        let first_missing = cases
            .keys()
            .filter(|key| {
                !found
                    .results
                    .iter()
                    .any(|r| r.checker == key.0 && r.profile == key.1)
            })
            .min();
        let example = first_missing
            .map(|(c, p)| {
                format!(
                    " (e.g. {} × {})",
                    super::printable(c, 80),
                    super::printable(p, 200)
                )
            })
            .unwrap_or_default();
        return Err(error(
            &place,
            format!(
                "{} of shard {}'s {} cases have no result{example}: finish it with `rclab run --shard {} --resume`",
                cases.len() - found.results.len(),
                input.manifest.shard,
                cases.len(),
                input.manifest.shard
            ),
        ));
    }
    Ok(found.results)
}
