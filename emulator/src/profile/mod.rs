//! Card profiles: YAML files that describe a card (person, numbers, images, signer, knobs)
//! and what a correct checker must conclude about it.

mod compile;
mod load;
mod my_number;
mod residence_ap;
mod scan;
pub mod schema;
mod text_ap;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use compile::MAX_EF_SIZE;
pub use load::{MAX_EXCERPT, ProfileError};
pub use scan::MAX_DEPTH;
pub use schema::{CardNumber, CardType, ExpectDoc};

use crate::card::{Card, CardImage};
use crate::chip::{ChipImage, ChipKind};
use crate::fault::{Fault, SimCard};
use crate::protocol::Generation;

/// A loaded, compiled profile.
///
/// A profile describes a residence card (the fields `generation`, `card_type`,
/// `card_number` and `image`) or a My Number card (`card.kind: my_number`, the chip in
/// `my_number`): [`Profile::chip_image`] gives the compiled chip of either kind, and [`Profile::card`] serves it. On a My Number
/// profile the residence fields hold no residence card: `image` has no EF (the residence
/// view, [`ChipImage::residence_view`]), `generation` is 2, `card_type` is the residence
/// card and `card_number` is [`MY_NUMBER_CARD_NUMBER`], so code written for residence cards
/// compiles and finds nothing to read; code that needs a residence card asks
/// [`Profile::residence_image`] (or [`Profile::kind`]) and skips the others with a reason.
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
    /// The compiled My Number chip, when the profile describes one (`card.kind:
    /// my_number`); `None` for a residence card, whose chip is `image`.
    pub my_number: Option<Arc<crate::my_number::MyNumberImage>>,
}

/// The `card_number` of a My Number profile: not a residence card number any chip holds
/// (`MN` is no residence card prefix); a residence checker asked to open it finds no
/// residence application anyway.
pub const MY_NUMBER_CARD_NUMBER: &str = "MN00000000MN";

impl Profile {
    /// A fresh card as the profile describes it: the chip (new session, RNG at its seed)
    /// inside the profile's faults. Either kind.
    pub fn card(&self) -> SimCard {
        SimCard::of_chip(&self.chip_image(), Arc::clone(&self.faults))
    }

    /// The compiled chip, of either kind (shared, not copied).
    pub fn chip_image(&self) -> ChipImage {
        match &self.my_number {
            Some(image) => ChipImage::MyNumber(Arc::clone(image)),
            None => ChipImage::Residence(Arc::clone(&self.image)),
        }
    }

    /// The faithful residence chip alone, without the profile's faults (on a My Number
    /// profile: a residence chip with no EF, see [`Profile`]).
    pub fn chip(&self) -> Card {
        Card::new(Arc::clone(&self.image))
    }

    /// Which platform the profile describes.
    pub fn kind(&self) -> ChipKind {
        match &self.my_number {
            Some(image) if image.residence_ap.is_some() => ChipKind::SpecifiedResidence,
            Some(_) => ChipKind::MyNumber,
            None => ChipKind::Residence,
        }
    }

    /// The residence card's image, or why there is none (a My Number profile).
    pub fn residence_image(&self) -> Result<&Arc<CardImage>, NotResidence> {
        match self.my_number {
            Some(_) => Err(NotResidence { kind: self.kind() }),
            None => Ok(&self.image),
        }
    }
}

/// A profile that describes another platform than the residence card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a `{}` profile: {}", kind.name(), not_residence_why(*kind))]
pub struct NotResidence {
    /// The platform the profile describes.
    pub kind: ChipKind,
}

/// Why a profile of `kind` is not read by the residence-card checkers.
fn not_residence_why(kind: ChipKind) -> &'static str {
    match kind {
        ChipKind::SpecifiedResidence => {
            "its residence data sit in the 在留AP of a My Number card (key delivery, counter \
             SM), which a generation-1/2 reading never reaches"
        }
        ChipKind::Residence | ChipKind::MyNumber => "no residence-card application to read",
    }
}

/// What every kind of profile states alike: its name, its file, its purpose and what a
/// checker must conclude.
struct Header {
    name: String,
    path: PathBuf,
    description: String,
    expect: ExpectDoc,
}

/// The error for a field neither the profile nor what it extends sets.
fn required(locator: &load::Locator, path: &Path, field: &str) -> ProfileError {
    locator.error(
        path,
        field,
        "required, but neither this profile nor what it extends sets it",
    )
}

/// The [`Header`] of a profile of any kind.
fn header(
    path: &Path,
    doc: &schema::ProfileDoc,
    locator: &load::Locator,
) -> Result<Header, ProfileError> {
    Ok(Header {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        description: doc
            .description
            .clone()
            .ok_or_else(|| required(locator, path, "description"))?,
        expect: doc
            .expect
            .clone()
            .ok_or_else(|| required(locator, path, "expect"))?,
    })
}

/// The faults of a profile whose chip is a My Number card: one naming a residence-card DF
/// or EF is refused, as it would never act there; so is a 在留AP session fault on a chip
/// without the 在留AP (`has_residence_ap` false: a plain My Number card).
fn my_number_faults(
    path: &Path,
    doc: &schema::ProfileDoc,
    locator: &load::Locator,
    has_residence_ap: bool,
) -> Result<Vec<Fault>, ProfileError> {
    let faults = doc.faults.clone().unwrap_or_default();
    if let Some(i) = faults.iter().position(Fault::names_residence_file) {
        return Err(locator.error(
            path,
            &format!("faults[{i}]"),
            "names a residence-card DF or EF; the fault layer sees the My Number chip, where \
             it would never act (use `select`, `read`, `verify` or `any`)",
        ));
    }
    if !has_residence_ap {
        refuse_session_faults(path, &faults, locator, ChipKind::MyNumber)?;
    }
    Ok(faults)
}

/// Refuses a 在留AP session fault (`reselect_residence_ap`, `skip_sm_counter`) on a chip of
/// `kind`, which has no 在留AP for it to act on.
fn refuse_session_faults(
    path: &Path,
    faults: &[Fault],
    locator: &load::Locator,
    kind: ChipKind,
) -> Result<(), ProfileError> {
    match faults.iter().position(Fault::needs_residence_ap) {
        Some(i) => Err(locator.error(
            path,
            &format!("faults[{i}]"),
            format!(
                "acts on the 在留AP's session, and a `{}` card has no 在留AP; only a \
                 `card: {{kind: specified_residence}}` profile takes it",
                kind.name()
            ),
        )),
        None => Ok(()),
    }
}

/// Loads, merges and compiles one profile file.
pub fn load(path: &Path) -> Result<Profile, ProfileError> {
    let load::Merged {
        doc,
        tampered,
        locator,
    } = load::load_merged(path)?;
    let kind = doc.card.as_ref().and_then(|c| c.kind).unwrap_or_default();
    match kind {
        ChipKind::MyNumber => return load_my_number(path, &doc, &locator),
        ChipKind::SpecifiedResidence => {
            return residence_ap::load(path, &doc, tampered.as_ref(), &locator);
        }
        ChipKind::Residence => {}
    }
    my_number::check_residence(&doc, &locator, path)?;
    if let Some(card_type) = doc.card.as_ref().and_then(|c| c.card_type)
        && card_type.is_specified()
    {
        return Err(locator.error(
            path,
            "card.type",
            "a specified card (07/08) lives on the My Number platform: write `card: {kind: specified_residence}`",
        ));
    }
    let mut image = compile::compile(&doc, path, &locator)?;
    if let Some(tampered) = &tampered {
        image = compile::keep_signature(compile::compile(tampered, path, &locator)?, &image);
    }
    if let Some(edits) = doc.tamper.as_ref().and_then(|t| t.files.as_deref()) {
        compile::apply_edits(&mut image, edits, path, &locator)?;
    }
    let faults = doc.faults.clone().unwrap_or_default();
    refuse_session_faults(path, &faults, &locator, ChipKind::Residence)?;
    for (i, fault) in faults.iter().enumerate() {
        fault
            .check_against(&image)
            .map_err(|message| locator.error(path, &format!("faults[{i}]"), message))?;
    }
    let required = |field: &str| required(&locator, path, field);
    let card = doc.card.as_ref().ok_or_else(|| required("card"))?;
    let image = Arc::new(image);
    let Header {
        name,
        path,
        description,
        expect,
    } = header(path, &doc, &locator)?;
    Ok(Profile {
        name,
        path,
        description,
        generation: image.generation,
        card_type: card.card_type.ok_or_else(|| required("card.type"))?,
        card_number: card.number.clone().ok_or_else(|| required("card.number"))?,
        expect,
        my_number: None,
        image,
        faults: faults.into(),
    })
}

/// A `card.kind: my_number` profile: its chip, its faults (checked against its residence
/// view: a selector naming a residence EF is refused, as it would never match).
fn load_my_number(
    path: &Path,
    doc: &schema::ProfileDoc,
    locator: &load::Locator,
) -> Result<Profile, ProfileError> {
    if doc.tamper.is_some() {
        return Err(locator.error(
            path,
            "tamper",
            "`tamper:` edits residence-card data; a My Number profile forges by its own \
             fields (another certificate or key) instead",
        ));
    }
    let image = Arc::new(my_number::compile(doc, path, locator)?);
    let view = ChipImage::MyNumber(Arc::clone(&image)).residence_view();
    let faults = my_number_faults(path, doc, locator, false)?;
    let Header {
        name,
        path,
        description,
        expect,
    } = header(path, doc, locator)?;
    Ok(Profile {
        name,
        description,
        generation: view.generation,
        card_type: CardType::ResidenceCard,
        card_number: CardNumber::try_from(MY_NUMBER_CARD_NUMBER.to_owned())
            .map_err(|message| locator.error(&path, "card", message))?,
        path,
        expect,
        image: view,
        faults: faults.into(),
        my_number: Some(image),
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
