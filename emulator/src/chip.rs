//! Which chip a profile describes: the residence card ([`crate::card`]) or the My Number
//! card platform ([`crate::my_number`]). [`ChipImage`] is the compiled form a profile
//! carries; [`Chip`] the running engine the fault layer ([`crate::fault::SimCard`]) wraps,
//! so the in-process channel, vpcd, `rclab serve` and the reader layer serve either kind
//! without knowing which.

use std::sync::Arc;

use serde::Deserialize;

use crate::card::{Card, CardImage, Df, Knobs};
use crate::my_number::residence_ap::RESIDENCE_AP_AID;
use crate::my_number::{MyNumberCard, MyNumberImage};
use crate::protocol::apdu::CommandBuilder;
use crate::protocol::crypto::Key;
use crate::protocol::layout::{CardType, Layout};
use crate::protocol::{Generation, Status};
use crate::transport::reader_layer::ReaderConfig;

/// `card.kind:` the platform a profile describes (default: a residence card, so every
/// profile written before the My Number card loads unchanged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipKind {
    /// 在留カード / 特別永住者証明書 (generation 1 or 2): `card.generation`, `card.type`.
    #[default]
    Residence,
    /// 個人番号カード: the JPKI AP and the card-face applications (`jpki:`).
    MyNumber,
    /// 特定在留カード / 特定特別永住者証明書 (types `07`/`08`): a My Number card (`jpki:`) with
    /// the 在留AP holding generation 2's residence data (`card.type`, `printed:`, …,
    /// `residence_ap:`).
    SpecifiedResidence,
}

impl ChipKind {
    /// The name profiles and reports use.
    pub fn name(self) -> &'static str {
        match self {
            ChipKind::Residence => "residence",
            ChipKind::MyNumber => "my_number",
            ChipKind::SpecifiedResidence => "specified_residence",
        }
    }
}

/// A compiled chip of either kind, shared (not copied) by every card served from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChipImage {
    /// A residence card's EFs, keys and knobs.
    Residence(Arc<CardImage>),
    /// A My Number card's applications, secrets and knobs.
    MyNumber(Arc<MyNumberImage>),
}

impl ChipImage {
    /// Which platform.
    pub fn kind(&self) -> ChipKind {
        match self {
            ChipImage::Residence(_) => ChipKind::Residence,
            ChipImage::MyNumber(image) if image.residence_ap.is_some() => {
                ChipKind::SpecifiedResidence
            }
            ChipImage::MyNumber(_) => ChipKind::MyNumber,
        }
    }

    /// What the reader presents for the card (ATR, `FF CA`).
    pub fn reader(&self) -> &ReaderConfig {
        match self {
            ChipImage::Residence(image) => &image.reader,
            ChipImage::MyNumber(image) => &image.reader,
        }
    }

    /// A freshly powered chip of this image.
    pub fn power_on(&self) -> Chip {
        match self {
            ChipImage::Residence(image) => Chip::Residence(Card::new(Arc::clone(image))),
            ChipImage::MyNumber(image) => Chip::MyNumber(MyNumberCard::new(Arc::clone(image))),
        }
    }

    /// The residence-card view of the chip: the image itself for a residence card; for a My
    /// Number card an image **without any residence-card EF** (that chip has no residence
    /// application) carrying the same reader and seed. Code written for residence cards
    /// (fault selectors that name residence EFs, data truth, audits) finds nothing in it,
    /// so such a selector never matches a My Number chip.
    pub fn residence_view(&self) -> Arc<CardImage> {
        match self {
            ChipImage::Residence(image) => Arc::clone(image),
            ChipImage::MyNumber(image) => Arc::new(CardImage {
                generation: Generation::Second,
                layout: Layout::of(Generation::Second, CardType::ResidenceCard),
                chip_card_number: String::new(),
                files: Vec::new(),
                knobs: Knobs::default(),
                seed: image.seed,
                reader: image.reader.clone(),
            }),
        }
    }
}

/// A running chip of either kind.
// One chip per served card, never in a collection: the size difference costs nothing, and
// boxing would add an allocation to every card the runner makes.
#[allow(clippy::large_enum_variant)]
pub enum Chip {
    /// The residence-card engine.
    Residence(Card),
    /// The My Number card engine.
    MyNumber(MyNumberCard),
}

impl Chip {
    /// Processes one C-APDU and returns the R-APDU. Never panics.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        match self {
            Chip::Residence(card) => card.transmit(apdu),
            Chip::MyNumber(card) => card.transmit(apdu),
        }
    }

    /// Reset / power cycle: volatile state cleared.
    pub fn reset(&mut self) {
        match self {
            Chip::Residence(card) => card.reset(),
            Chip::MyNumber(card) => card.reset(),
        }
    }

    /// The residence DF that is current (the MF on a My Number chip, which has no DFs of
    /// the residence layout).
    pub fn current_df(&self) -> Df {
        match self {
            Chip::Residence(card) => card.current_df(),
            Chip::MyNumber(_) => Df::Mf,
        }
    }

    /// Index of the current EF in the residence image (never one on a My Number chip).
    pub fn current_file(&self) -> Option<usize> {
        match self {
            Chip::Residence(card) => card.current_file(),
            Chip::MyNumber(_) => None,
        }
    }

    /// The residence card's SM session key (a My Number chip has none).
    pub fn session_key(&self) -> Option<Key> {
        match self {
            Chip::Residence(card) => card.session_key(),
            Chip::MyNumber(_) => None,
        }
    }

    /// Fault hook (`reselect_residence_ap`): the chip processes a SELECT of the specified
    /// card's 在留AP that no reader sent — through its own SELECT path, so the state after it
    /// is exactly a re-selected one (no session key, nothing verified, no DF). True when the
    /// chip selected it; false on a chip without the 在留AP, which is left untouched.
    pub fn select_residence_ap(&mut self) -> bool {
        match self {
            Chip::MyNumber(card) if card.image().residence_ap.is_some() => {
                let select = CommandBuilder::new(0x00, 0xA4, 0x04, 0x0C)
                    .data(RESIDENCE_AP_AID.to_vec())
                    .to_bytes();
                card.transmit(&select)
                    .ends_with(&Status::Success.to_bytes())
            }
            Chip::Residence(_) | Chip::MyNumber(_) => false,
        }
    }

    /// Fault hook (`skip_sm_counter`): the 在留AP's live SM session spends one message
    /// counter value without a command, so the card runs one ahead of its reader. True when
    /// a live session was advanced; false when there is none (no 在留AP, no key delivered, a
    /// destroyed session).
    pub fn skip_residence_sm_counter(&mut self) -> bool {
        match self {
            Chip::MyNumber(card) => card.skip_residence_sm_counter(),
            Chip::Residence(_) => false,
        }
    }
}
