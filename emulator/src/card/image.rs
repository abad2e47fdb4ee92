//! What a compiled profile becomes: the bytes of every EF, the chip's key and the knobs
//! for behaviour the specification leaves open. The engine reads it and never changes it.

use serde::{Deserialize, Serialize};

use std::ops::Deref;

use crate::protocol::Generation;
use crate::protocol::auth::Nonce;
use crate::protocol::crypto::{Key, card_number_key};
pub use crate::protocol::layout::{Access, Df, EfId};
use crate::protocol::layout::{EfRow, Layout};

/// One elementary file: its row of the layout table and its content.
///
/// It dereferences to its [`EfId`], so `file.df` and `file.sfi` read the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementaryFile {
    /// The DF and short EF identifier (READ BINARY P1 = `80 | sfi`).
    pub id: EfId,
    /// Name used in transcripts and reports (e.g. `DF1/EF02 face image`), from the table.
    pub name: String,
    /// File identifier for SELECT by FID; unknown for real cards, so `None` by default.
    pub fid: Option<u16>,
    pub access: Access,
    pub content: Vec<u8>,
}

impl ElementaryFile {
    /// The EF of a layout row, holding `content`.
    pub fn from_row(row: &EfRow, content: Vec<u8>) -> ElementaryFile {
        ElementaryFile {
            id: row.id,
            name: row.name.to_owned(),
            fid: row.fid,
            access: row.access,
            content,
        }
    }
}

impl Deref for ElementaryFile {
    type Target = EfId;
    fn deref(&self) -> &EfId {
        &self.id
    }
}

/// Status answered by a plain READ BINARY whose explicit Ne goes past the end of the EF
/// (spec §3.7 `?`). `Le = 00` / `00 00` ("everything") always answers `90 00`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPastEnd {
    /// The available bytes and `62 82` (ISO 7816-4).
    #[default]
    EndOfFileWarning,
    /// `6C xx` with the available length (a minimal public reader retries on it).
    WrongLe,
    /// The available bytes and `90 00`.
    Success,
    /// `6B 00` (wrong parameters P1-P2) and no data, as for an offset past the end: a card
    /// that checks offset + Ne against the EF's size before reading.
    WrongP1P2,
}

/// Behaviour the specification leaves open, chosen per profile (defaults = most likely).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    pub read_past_end: ReadPastEnd,
    /// Forces RND.ICC (official-vector replay); random from the seed otherwise.
    #[serde(with = "hex_opt")]
    pub rnd_icc: Option<Nonce>,
    /// Forces K.ICC (official-vector replay); random from the seed otherwise.
    #[serde(with = "hex_opt")]
    pub k_icc: Option<Key>,
    /// A failed VERIFY also drops the SM session (unknown on real cards; default keeps it).
    pub failed_verify_drops_session: bool,
    /// How generation-1 images (`D0`, `D1`) are stored (spec §6.4); generation 2 always
    /// stores them full length.
    pub image_layout: ImageLayout,
}

/// How a generation-1 image sits in its EF (spec §6.4 `?`). The EF is 7 004 / 3 004 bytes
/// either way, and the check code is over the image padded to 7 000 / 3 000 (§7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageLayout {
    /// `D0 82 <len> <image>`, zero fill after the TLV to the EF's size: the likelier
    /// reading of SPEC1 (maxima, signed values padded).
    #[default]
    Exact,
    /// `D0 82 1B 58` (`D1 82 0B B8`), the image zero-padded inside the TLV, as generation 2.
    Full,
}

/// Everything the card engine needs, produced by the profile compiler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardImage {
    pub generation: Generation,
    /// The layout the EFs were compiled from (generation × card type of the profile).
    pub layout: &'static Layout,
    /// The card number the chip's key was derived from and VERIFY compares against.
    /// Normally the printed number; a forged chip may differ.
    pub chip_card_number: String,
    pub files: Vec<ElementaryFile>,
    pub knobs: Knobs,
    /// Seed of the card's random numbers: the same seed replays the same transcript.
    pub seed: u64,
    /// What the reader answers for this card (`FF CA`, the ATR): not the chip, but
    /// carried with it so every transport presents the same reader.
    pub reader: crate::transport::reader_layer::ReaderConfig,
}

impl CardImage {
    /// `SHA-1(card number)[0..16]`, the key of MUTUAL AUTHENTICATE.
    pub fn chip_key(&self) -> Key {
        card_number_key(self.chip_card_number.as_bytes())
    }

    /// The EF with `sfi` under `df`, by index.
    pub fn find_sfi(&self, df: Df, sfi: u8) -> Option<usize> {
        self.find(EfId::new(df, sfi))
    }

    /// The EF at `id`, by index.
    pub fn find(&self, id: EfId) -> Option<usize> {
        self.files.iter().position(|f| f.id == id)
    }

    /// The EF at `id`.
    pub fn file(&self, id: EfId) -> Option<&ElementaryFile> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// Serde helper for optional fixed-size byte arrays written as hex strings.
pub mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(
        value: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(&hex::encode_upper(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let cleaned: String = text.split_whitespace().collect();
        let bytes = hex::decode(&cleaned)
            .map_err(|e| D::Error::custom(format!("{text:?} is not hex: {e}")))?;
        let len = bytes.len();
        bytes
            .try_into()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected {N} hex bytes, got {len}")))
    }
}
