//! The variant space: for every valid card of the catalogue, its plausible variants — the
//! card with the open behaviours of the emulator's knob table
//! ([`rclab_emulator::card::knobs::KNOBS`]) set otherwise than by default — with all-pairs
//! (pairwise) coverage instead of the full product. Each variant is expected `genuine`: a
//! checker that rejects one makes a false reject, and the knob values it differs from its
//! valid card by are the suspects.
//!
//! Variants are generated, never committed: [`write_variants`] writes one profile overlay per
//! variant (`extends:` the valid profile, plus its knob values) into a folder of the run's
//! output, and loads them back like any profile. The knob names and values come from the
//! table only; this module restates none.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use rclab_emulator::card::knobs::{KNOBS, KnobSpec};
use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::Generation;
use rclab_emulator::verdict::VerdictKind;

/// The folder (below the run's output) and name prefix of generated variants.
pub const VARIANTS_DIR: &str = "variants";

/// The description prefix every variant carries, followed by the valid profile's name, `: `
/// and its knob values (`path=value`, comma-separated): how a report names the suspects.
const DESCRIPTION_PREFIX: &str = "pairwise variant of ";

/// Rows of an all-pairs covering array over factors with `levels[i]` values each: for every
/// two factors `i < j` and every pair of their values, some row holds both. Deterministic
/// (greedy IPOG: horizontal growth picks the value covering most uncovered pairs, lowest
/// first; vertical growth fills free cells or adds rows). Cells no pair needs are 0, so with
/// each factor's default at index 0 a row differs from the default only where it must.
pub fn pairwise(levels: &[usize]) -> Vec<Vec<usize>> {
    if levels.contains(&0) {
        return Vec::new();
    }
    match levels {
        [] => return vec![Vec::new()],
        [only] => return (0..*only).map(|v| vec![v]).collect(),
        _ => {}
    }
    let mut rows: Vec<Vec<Option<usize>>> = (0..levels[0])
        .flat_map(|a| (0..levels[1]).map(move |b| vec![Some(a), Some(b)]))
        .collect();
    for k in 2..levels.len() {
        let mut uncovered: BTreeSet<(usize, usize, usize)> = (0..k)
            .flat_map(|j| (0..levels[j]).flat_map(move |a| (0..levels[k]).map(move |b| (j, a, b))))
            .collect();
        let covers = |row: &[Option<usize>], v: usize, uncovered: &BTreeSet<_>| {
            (0..k)
                .filter(|&j| row[j].is_some_and(|a| uncovered.contains(&(j, a, v))))
                .count()
        };
        // Horizontal: the old rows grow by one column.
        let old_rows = rows.len();
        for row in &mut rows {
            let mut best = 0;
            let mut best_count = covers(row, 0, &uncovered);
            for v in 1..levels[k] {
                let count = covers(row, v, &uncovered);
                if count > best_count {
                    (best, best_count) = (v, count);
                }
            }
            for (j, cell) in row.iter().enumerate() {
                if let Some(a) = *cell {
                    uncovered.remove(&(j, a, best));
                }
            }
            row.push(Some(best));
        }
        // Vertical: each pair still missing goes into a row added here with a free cell at
        // its factor and the right value at `k`, or into a new row.
        while let Some((j, a, b)) = uncovered.pop_first() {
            let slot = rows[old_rows..]
                .iter_mut()
                .find(|row| row[k] == Some(b) && row[j].is_none());
            match slot {
                Some(row) => row[j] = Some(a),
                None => {
                    let mut row = vec![None; k + 1];
                    row[j] = Some(a);
                    row[k] = Some(b);
                    rows.push(row);
                }
            }
        }
    }
    rows.into_iter()
        .map(|row| row.into_iter().map(|c| c.unwrap_or(0)).collect())
        .collect()
}

/// One variant of a valid card: its name, its valid card's name and the knob values it
/// sets (every one differs from the card's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `variants/<card>/vNN`, the profile name reports show.
    pub name: String,
    /// The valid card it varies, whose reading tells a knob suspect from a broken checker.
    pub base: String,
    /// `(knob path, value)` pairs it sets, each differing from the card's default.
    pub knobs: Vec<(&'static str, &'static str)>,
}

/// Whether the variant matrix varies `knob` on a valid card of `kind`: on a residence card
/// every knob its generation shows; on a specified card the 在留AP's knobs
/// (`platform.residence_*`), the part of the platform its checker (the residence checker
/// over the 在留AP) goes through; on a plain My Number card none yet: its checker does
/// not exercise every platform knob, so a variant could not tell a knob suspect from a knob
/// the checker never meets.
pub fn varied(knob: &KnobSpec, kind: ChipKind, generation: Generation) -> bool {
    knob.applies_to_profile(kind, generation)
        && match kind {
            ChipKind::Residence => true,
            ChipKind::SpecifiedResidence => knob.is_residence_ap(),
            ChipKind::MyNumber => false,
        }
}

/// The knobs the matrix varies on `base` ([`varied`]), each with its values reordered
/// default first.
fn applicable(base: &Profile) -> Vec<(&'static KnobSpec, Vec<&'static str>)> {
    KNOBS
        .iter()
        .filter(|k| varied(k, base.kind(), base.generation))
        .map(|k| {
            let default = k.default.for_generation(base.generation);
            let mut values = vec![default];
            values.extend(k.values.iter().copied().filter(|v| *v != default));
            (k, values)
        })
        .collect()
}

/// The pairwise variants of `base` (a valid profile): every pairwise row but the all-default
/// one (that is `base` itself), named `variants/<stem>/vNN` after the last part of its name
/// (`my-number/valid/specified-07` gives `variants/specified-07/vNN`). A card the matrix
/// varies no knob of ([`varied`]) has none.
pub fn variants_of(base: &Profile) -> Vec<Variant> {
    let knobs = applicable(base);
    let levels: Vec<usize> = knobs.iter().map(|(_, values)| values.len()).collect();
    let stem = base.name.rsplit('/').next().unwrap_or(&base.name);
    pairwise(&levels)
        .into_iter()
        .filter(|row| row.iter().any(|&v| v != 0))
        .enumerate()
        .map(|(i, row)| Variant {
            name: format!("{VARIANTS_DIR}/{stem}/v{:02}", i + 1),
            base: base.name.clone(),
            knobs: knobs
                .iter()
                .zip(&row)
                .filter(|(_, v)| **v != 0)
                .map(|((k, values), v)| (k.path, values[*v]))
                .collect(),
        })
        .collect()
}

/// `a` with `b` merged in, mappings key by key (the knob settings share `knobs:`).
fn merge(a: &mut Mapping, b: Mapping) {
    for (key, value) in b {
        match (a.get_mut(&key), value) {
            (Some(Value::Mapping(old)), Value::Mapping(new)) => merge(old, new),
            (_, value) => {
                a.insert(key, value);
            }
        }
    }
}

/// The profile overlay of `variant` over the valid profile at `base_path` (absolute), as
/// YAML text: `extends:`, a description naming its knob values, and the knob settings.
pub fn overlay(variant: &Variant, base_path: &Path) -> String {
    let mut doc = Mapping::new();
    doc.insert("extends".into(), base_path.display().to_string().into());
    doc.insert(
        "description".into(),
        format!(
            "{DESCRIPTION_PREFIX}{}: {}",
            variant.base,
            knob_list(&variant.knobs)
        )
        .into(),
    );
    for (path, value) in &variant.knobs {
        if let Some(setting) =
            rclab_emulator::card::knobs::knob(path).and_then(|k| k.setting(value))
        {
            merge(&mut doc, setting);
        }
    }
    serde_yaml_ng::to_string(&Value::Mapping(doc)).unwrap_or_default()
}

fn knob_list(knobs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(", ")
}

/// True for a profile name in a `valid` folder (`valid/gen1-residence`,
/// `my-number/valid/specified-07`): a valid card, the base of variants.
pub fn is_valid_card(name: &str) -> bool {
    name.split('/')
        .rev()
        .skip(1)
        .any(|folder| folder == "valid")
}

/// Writes the variants of every valid profile of `catalogue` ([`is_valid_card`]) into
/// `dir/variants/`, replacing what an earlier run left there, and loads them. Errors name
/// the file; two valid cards whose variants would share a name (the same last name part
/// in two folders) are an error naming both.
pub fn write_variants(catalogue: &[Profile], dir: &Path) -> anyhow::Result<Vec<Profile>> {
    let root = dir.join(VARIANTS_DIR);
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("{}: cannot clear: {e}", root.display()))?;
    }
    let mut out = Vec::new();
    let mut named: std::collections::BTreeMap<String, String> = Default::default();
    for base in catalogue.iter().filter(|p| is_valid_card(&p.name)) {
        let base_path = std::path::absolute(&base.path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", base.path.display()))?;
        for variant in variants_of(base) {
            if let Some(other) = named.insert(variant.name.clone(), base.name.clone()) {
                anyhow::bail!(
                    "{}: the variants of {other} and {} would both be named {}: rename one \
                     of the two profiles",
                    base.path.display(),
                    base.name,
                    variant.name
                );
            }
            let path = dir.join(format!("{}.yaml", variant.name));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, overlay(&variant, &base_path))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut profile = profile::load(&path)?;
            profile.name = variant.name;
            out.push(profile);
        }
    }
    Ok(out)
}

/// The valid profile and knob values of a generated variant (from its description), or
/// `None` for any other profile.
pub fn knob_values(description: &str) -> Option<(&str, Vec<&str>)> {
    let rest = description.strip_prefix(DESCRIPTION_PREFIX)?;
    let (base, knobs) = rest.split_once(": ")?;
    Some((base, knobs.split(", ").filter(|s| !s.is_empty()).collect()))
}

/// For a false reject on a variant, the line a report shows: the knob values it differs
/// from its valid card by, called the suspects when the same checker read that valid card
/// as genuine in `results`; `None` for a case on any other profile. The variant's profile
/// name is `variants/<stem>/vNN`, its valid card's the one in its description.
pub fn knob_values_of(results: &[super::CaseResult], case: &super::CaseResult) -> Option<String> {
    let base = case.variant_of.as_deref()?;
    let base_read = results.iter().any(|r| {
        r.checker == case.checker
            && r.profile == base
            && r.actual.is_some_and(|a| a.verdict == VerdictKind::Genuine)
    });
    let knobs = case.knobs.join(", ");
    Some(if base_read {
        format!("suspects: {knobs} (it reads {base} as genuine)")
    } else {
        format!("differs from {base} by {knobs} ({base} not read as genuine in this run)")
    })
}

/// Per checker, the knob values that broke it: every variant that sets the value was a
/// false reject for that checker, while the checker read that variant's valid card as
/// genuine (pairwise coverage puts each value in several variants, so this separates the
/// culprit from its companions). In first-seen order, `(checker, path=value, variants)`.
pub fn implicated(results: &[super::CaseResult]) -> Vec<(String, String, usize)> {
    let base_read = |checker: &str, base: &str| {
        results.iter().any(|r| {
            r.checker == checker
                && r.profile == base
                && r.actual.is_some_and(|a| a.verdict == VerdictKind::Genuine)
        })
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in results.iter().filter(|r| r.false_reject) {
        for knob in &r.knobs {
            let key = (r.checker.clone(), knob.clone());
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
    }
    seen.into_iter()
        .filter_map(|(checker, knob)| {
            let carrying: Vec<_> = results
                .iter()
                .filter(|r| r.checker == checker && r.knobs.contains(&knob))
                .collect();
            let all_rejected = carrying.iter().all(|r| {
                r.false_reject
                    && r.variant_of
                        .as_deref()
                        .is_some_and(|b| base_read(&checker, b))
            });
            all_rejected.then_some((checker, knob, carrying.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_all_pairs(levels: &[usize], rows: &[Vec<usize>]) {
        for row in rows {
            assert_eq!(row.len(), levels.len());
            assert!(row.iter().zip(levels).all(|(v, n)| v < n), "{row:?}");
        }
        for i in 0..levels.len() {
            for j in i + 1..levels.len() {
                for a in 0..levels[i] {
                    for b in 0..levels[j] {
                        assert!(
                            rows.iter().any(|r| r[i] == a && r[j] == b),
                            "{levels:?}: pair ({i}={a}, {j}={b}) missing from {rows:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pairwise_covers_every_pair_of_every_two_factors_deterministically() {
        for levels in [
            vec![2, 3, 2, 2, 3, 2],
            vec![3, 3, 3, 3],
            vec![2; 10],
            vec![4, 2, 5, 3, 2],
            vec![2, 3],
        ] {
            let rows = pairwise(&levels);
            assert_all_pairs(&levels, &rows);
            assert_eq!(rows, pairwise(&levels), "not deterministic");
            let product: usize = levels.iter().product();
            assert!(rows.len() <= product);
        }
        // Far fewer rows than the product once there are many factors.
        let sizes = (pairwise(&[2; 10]).len(), pairwise(&[3, 3, 3, 3]).len());
        assert!(sizes.0 <= 16 && sizes.1 <= 15, "{sizes:?}");
        assert_eq!(pairwise(&[3]), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(pairwise(&[]), vec![Vec::<usize>::new()]);
        assert!(pairwise(&[2, 0, 3]).is_empty());
    }

    #[test]
    fn a_variant_description_gives_back_its_base_and_knob_values() {
        let v = Variant {
            name: "variants/x/v01".into(),
            base: "valid/x".into(),
            knobs: vec![("a.b", "c"), ("d", "e")],
        };
        let yaml = overlay(&v, Path::new("/p/x.yaml"));
        let doc: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let description = doc["description"].as_str().unwrap();
        assert_eq!(
            knob_values(description),
            Some(("valid/x", vec!["a.b=c", "d=e"]))
        );
        assert_eq!(knob_values("a valid card"), None);
    }

    #[test]
    fn the_knob_value_in_every_rejected_variant_and_no_read_one_is_implicated() {
        use rclab_emulator::verdict::{Reason, Verdict};
        let case = |profile: &str, knobs: &[&str], genuine: bool| super::super::CaseResult {
            actual: Some(if genuine {
                Verdict::GENUINE
            } else {
                Verdict::with(VerdictKind::Unreadable, Reason::MalformedData)
            }),
            outcome: if genuine {
                super::super::Outcome::Pass
            } else {
                super::super::Outcome::Fail
            },
            false_reject: !genuine,
            variant_of: (!knobs.is_empty()).then(|| "valid/x".to_owned()),
            knobs: knobs.iter().map(|k| (*k).to_owned()).collect(),
            ..super::super::CaseResult::pending("c", profile, 1, Verdict::GENUINE, None)
        };
        let mut results = vec![
            case("valid/x", &[], true),
            case("variants/x/v01", &["a=1", "b=1"], false),
            case("variants/x/v02", &["a=1", "b=2"], false),
            case("variants/x/v03", &["b=1"], true),
            case("variants/x/v04", &["b=2", "c=1"], true),
        ];
        assert_eq!(implicated(&results), vec![("c".into(), "a=1".into(), 2)]);
        // Without the valid card read as genuine, nothing is implicated.
        results[0] = case("valid/x", &[], false);
        assert!(implicated(&results).is_empty());
    }
}
