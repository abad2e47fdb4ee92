//! `rclab run --shard I/N`: one deterministic slice of the checker × profile cases, and the
//! manifest (`OUT/shard.json`) that lets `rclab merge` put the slices back together.
//!
//! Cases are dealt round-robin over the unsharded case order (checker by checker, profiles
//! in the catalogue's sorted order): case `k` (0-based) belongs to shard `k mod N + 1`. The
//! slice depends only on the selected profiles and the checkers, so every CI runner computes
//! the same one; the N slices are disjoint and together are exactly the unsharded run; and
//! each shard gets every checker's profiles in equal measure (sizes differ by at most one
//! case), so a slow checker is spread over all runners instead of landing on one. Estimated
//! costs would need timings from an earlier run, which a fresh CI job does not have.
//!
//! The manifest is a file of its own, written only by sharded runs: an unsharded run's
//! `results.json` stays exactly as it was.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use rclab_emulator::profile::Profile;

use super::Transport;
use super::adapter::Adapter;

/// Most shards a run may be split into: far beyond any CI matrix (GitHub allows 256 jobs).
pub const MAX_SHARDS: u32 = 1000;

/// The manifest's file name inside a shard's output folder.
pub const MANIFEST_FILE: &str = "shard.json";

/// The `schema` of `shard.json`.
pub const MANIFEST_SCHEMA: &str = "rclab.shard/1";

/// Largest `shard.json` `rclab merge` reads (a catalogue of tens of thousands of profiles
/// stays well below).
pub const MAX_MANIFEST: u64 = 16 << 20;

/// This build's version: shards of different builds are not merged.
pub const RCLAB_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shard `index` of `count` (1-based: `1/3`, `2/3`, `3/3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which slice, 1 to `count`.
    pub index: u32,
    /// How many slices the run is split into, 1 to [`MAX_SHARDS`].
    pub count: u32,
}

impl Shard {
    /// The whole run as a single shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether the case at `position` of the unsharded case order belongs to this shard.
    pub fn contains(self, position: usize) -> bool {
        // count >= 1 by construction (parse, or a manifest checked by `validate`).
        let count = usize::try_from(self.count.max(1)).unwrap_or(usize::MAX);
        let index = usize::try_from(self.index).unwrap_or(usize::MAX);
        position % count + 1 == index
    }

    /// Checks the bounds (`1 <= index <= count <= MAX_SHARDS`), for values that did not come
    /// through [`FromStr`] (a manifest on disk).
    pub fn validate(self) -> Result<Shard, String> {
        if self.count == 0 || self.count > MAX_SHARDS {
            return Err(format!(
                "{} shards: the count is 1 to {MAX_SHARDS}",
                self.count
            ));
        }
        if self.index == 0 || self.index > self.count {
            return Err(format!(
                "shard {} of {}: the index is 1 to the count",
                self.index, self.count
            ));
        }
        Ok(self)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N` with `1 <= I <= N <= MAX_SHARDS`, decimal digits only.
    fn from_str(text: &str) -> Result<Shard, String> {
        let usage = || format!("expected I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 2/3)");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let number = |part: &str| -> Result<u32, String> {
            if part.is_empty() || part.len() > 10 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(usage());
            }
            part.parse().map_err(|_| usage())
        };
        Shard {
            index: number(index)?,
            count: number(count)?,
        }
        .validate()
        .map_err(|why| format!("{why}; {}", usage()))
    }
}

/// What a sharded run records in `OUT/shard.json`: which slice it ran, and what makes two
/// slices parts of one run (build, catalogue, checkers, transport).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA`].
    pub schema: String,
    /// The rclab version that ran the shard ([`RCLAB_VERSION`]).
    pub rclab_version: String,
    /// Which slice this folder holds.
    pub shard: Shard,
    /// The selected profiles and their digest.
    pub catalogue: Catalogue,
    /// The checkers, as `results.json` lists them (the adapter-file layout).
    pub checkers: Vec<Adapter>,
    /// Where the cards lived.
    pub transport: Transport,
}

/// The identity of a run's profiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// SHA-256 (hex) over every selected profile in name order: its name and its compiled
    /// content (see [`catalogue_digest`]).
    pub digest: String,
    /// The selected profiles' names, in run order.
    pub profiles: Vec<String>,
}

impl Catalogue {
    /// The catalogue of `profiles` (the profiles a run selected).
    pub fn of(profiles: &[Profile]) -> Catalogue {
        Catalogue {
            digest: catalogue_digest(profiles),
            profiles: profiles.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// SHA-256 over the profiles sorted by name, each as its name and its compiled content (the
/// chip image, faults, expectation, card number: everything but the path on disk, which
/// differs between CI runners). Compiled content rather than file bytes: a change to a base
/// file a profile `extends:` changes the cards, and so the digest.
pub fn catalogue_digest(profiles: &[Profile]) -> String {
    let mut sorted: Vec<&Profile> = profiles.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hash = sha2::Sha256::new();
    for profile in sorted {
        let mut content = profile.clone();
        content.path = Default::default();
        // Length-prefixed, so that no two catalogues hash the same bytes.
        let text = format!("{content:?}");
        for part in [profile.name.as_bytes(), text.as_bytes()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    hex::encode(hash.finalize())
}

impl Manifest {
    /// The manifest of `shard` of a run of `checkers` over `profiles`.
    pub fn new(
        shard: Shard,
        checkers: &[Adapter],
        profiles: &[Profile],
        transport: Transport,
    ) -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA.to_owned(),
            rclab_version: RCLAB_VERSION.to_owned(),
            shard,
            catalogue: Catalogue::of(profiles),
            checkers: checkers.to_vec(),
            transport,
        }
    }

    /// Writes `dir/shard.json`; the error names the file.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n").map_err(named)
    }

    /// Removes `dir/shard.json` if there is one (an unsharded run in a folder that once held
    /// a shard); the error names the file.
    pub fn remove(dir: &Path) -> std::io::Result<()> {
        let path = dir.join(MANIFEST_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_in_range_only() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("1/1".parse(), Ok(Shard::WHOLE));
        assert_eq!(
            format!("{MAX_SHARDS}/{MAX_SHARDS}")
                .parse::<Shard>()
                .map(|s| s.index),
            Ok(MAX_SHARDS)
        );
        for bad in [
            "",
            "3",
            "0/3",
            "4/3",
            "1/0",
            "0/0",
            "-1/3",
            "+1/3",
            "1/3/3",
            " 1/3",
            "1 /3",
            "a/b",
            "1/1001",
            "99999999999/99999999999",
            "1/",
            "/3",
        ] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("I/N"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_catalogue_digest_follows_content_and_names_not_paths_or_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles");
        let profiles = rclab_emulator::profile::load_dir(&dir).unwrap();
        let digest = catalogue_digest(&profiles);
        assert_eq!(digest.len(), 64);

        let mut moved = profiles.clone();
        moved.reverse();
        for p in &mut moved {
            p.path = Path::new("/elsewhere").join(&p.name);
        }
        assert_eq!(
            catalogue_digest(&moved),
            digest,
            "path and order do not count"
        );

        let mut fewer = profiles.clone();
        fewer.pop();
        assert_ne!(catalogue_digest(&fewer), digest, "a profile less");

        let mut renamed = profiles.clone();
        renamed[0].name.push('x');
        assert_ne!(catalogue_digest(&renamed), digest, "a name");

        let mut edited = profiles.clone();
        let mut image = (*edited[0].image).clone();
        image.seed ^= 1;
        edited[0].image = std::sync::Arc::new(image);
        assert_ne!(catalogue_digest(&edited), digest, "the compiled chip");

        let mut expected = profiles;
        expected[0].description.push('.');
        assert_ne!(catalogue_digest(&expected), digest, "the description");
    }

    #[test]
    fn every_case_is_in_exactly_one_shard_and_shards_are_balanced() {
        for count in 1..=7u32 {
            for cases in [0usize, 1, 5, 62, 186] {
                let sizes: Vec<usize> = (1..=count)
                    .map(|index| {
                        (0..cases)
                            .filter(|&k| Shard { index, count }.contains(k))
                            .count()
                    })
                    .collect();
                assert_eq!(sizes.iter().sum::<usize>(), cases);
                for k in 0..cases {
                    let owners = (1..=count)
                        .filter(|&index| Shard { index, count }.contains(k))
                        .count();
                    assert_eq!(owners, 1, "case {k} of {cases}, {count} shards");
                }
                let (min, max) = (sizes.iter().min(), sizes.iter().max());
                assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{sizes:?}");
            }
        }
    }
}
