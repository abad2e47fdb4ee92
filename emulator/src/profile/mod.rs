//! Card profiles: YAML files that describe a card (person, numbers, images, signer, knobs)
//! and what a correct checker must conclude about it.

mod compile;
mod load;
mod scan;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use compile::MAX_EF_SIZE;
pub use load::{MAX_EXCERPT, ProfileError};
pub use scan::MAX_DEPTH;
pub use schema::{CardNumber, CardType, ExpectDoc};

use crate::card::{Card, CardImage};
use crate::fault::{Fault, SimCard};
use crate::protocol::Generation;

/// A loaded, compiled profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Name used in reports: the path below the profiles folder, without `.yaml`.
    pub name: String,
    /// The YAML file it came from: every error and report names it.
    pub path: PathBuf,
    /// The profile's one-line purpose, shown in reports next to the case.
    pub description: String,
    /// Which chip generation the image was compiled for.
    pub generation: Generation,
    /// Residence card or special permanent resident certificate: selects the layout rows.
    pub card_type: CardType,
    /// The printed card number: what a checker is told to enter.
    pub card_number: CardNumber,
    /// What a correct checker must conclude from this card; the runner judges against it.
    pub expect: ExpectDoc,
    /// The compiled card, shared (not copied) by every case that serves it.
    pub image: Arc<CardImage>,
    /// The card's misbehaviours (`faults:`), in the order they apply.
    pub faults: Arc<[Fault]>,
}

impl Profile {
    /// A fresh card as the profile describes it: the chip (new session, RNG at its seed)
    /// inside the profile's faults.
    pub fn card(&self) -> SimCard {
        SimCard::new(Arc::clone(&self.image), Arc::clone(&self.faults))
    }

    /// The faithful chip alone, without the profile's faults.
    pub fn chip(&self) -> Card {
        Card::new(Arc::clone(&self.image))
    }
}

/// Loads, merges and compiles one profile file.
pub fn load(path: &Path) -> Result<Profile, ProfileError> {
    let load::Merged {
        doc,
        tampered,
        locator,
    } = load::load_merged(path)?;
    let mut image = compile::compile(&doc, path, &locator)?;
    if let Some(tampered) = &tampered {
        image = compile::keep_signature(compile::compile(tampered, path, &locator)?, &image);
    }
    if let Some(edits) = doc.tamper.as_ref().and_then(|t| t.files.as_deref()) {
        compile::apply_edits(&mut image, edits, path, &locator)?;
    }
    let faults = doc.faults.clone().unwrap_or_default();
    for (i, fault) in faults.iter().enumerate() {
        fault
            .check_against(&image)
            .map_err(|message| locator.error(path, &format!("faults[{i}]"), message))?;
    }
    let required = |field: &str| {
        locator.error(
            path,
            field,
            "required, but neither this profile nor what it extends sets it",
        )
    };
    let card = doc.card.as_ref().ok_or_else(|| required("card"))?;
    Ok(Profile {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        description: doc
            .description
            .clone()
            .ok_or_else(|| required("description"))?,
        generation: image.generation,
        card_type: card.card_type.ok_or_else(|| required("card.type"))?,
        card_number: card.number.clone().ok_or_else(|| required("card.number"))?,
        expect: doc.expect.clone().ok_or_else(|| required("expect"))?,
        image: Arc::new(image),
        faults: faults.into(),
    })
}

/// Every `*.yaml` below `dir` (sorted), named by their path relative to `dir`. Files whose
/// name starts with `_` are bases for `extends:` only and are skipped.
///
/// Links to folders are not followed: `ln -s . x` would otherwise make the walk exponential
/// and load each profile again under another name. A link to a file is listed (it loads the
/// file it names). Anything else named `*.yaml` (a FIFO, a device, a broken link) is listed
/// too, so that loading it fails with an error naming it instead of it vanishing silently.
pub fn profile_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // The entry's own type: a link is a link, not what it points to.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_symlink() && path.is_dir() {
                // Not followed (see above).
            } else if name.ends_with(".yaml") && !name.starts_with('_') {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loads every profile below `dir`; all errors are reported, not just the first.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, Vec<ProfileError>> {
    let paths = profile_paths(dir)
        .map_err(|e| vec![ProfileError::new(dir, None, format!("cannot list: {e}"))])?;
    let mut profiles = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load(&path) {
            Ok(mut p) => {
                let rel = path.strip_prefix(dir).unwrap_or(&path).with_extension("");
                p.name = rel.to_string_lossy().replace('\\', "/");
                profiles.push(p);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(profiles)
    } else {
        Err(errors)
    }
}
