//! What a compiled profile becomes: the bytes of every EF, the chip's key and the knobs
//! for behaviour the specification leaves open. The engine reads it and never changes it.

use serde::{Deserialize, Serialize};

use crate::protocol::Generation;
use crate::protocol::Status;
use crate::protocol::auth::Nonce;
use crate::protocol::command::ClassRules;
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
    /// Who may read it: the engine refuses a READ BINARY that this rule does not allow (spec §3.4).
    pub access: Access,
    /// The bytes as the card holds them; READ BINARY serves slices of it.
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
    /// What READ BINARY past the end of an EF answers: cards differ, and readers must cope with both.
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
    /// What a command with CLA `0C` (secure messaging, header authenticated) gets (§3.7 `I`).
    pub cla_0c: SmHeaderAuthenticated,
    /// What a command with a class other than `00`, `08`, `0C` gets (§3.7 `I`).
    pub unknown_cla: UnknownClass,
    /// What SELECT, GET CHALLENGE and MUTUAL AUTHENTICATE get with CLA `08` (§3.7 `I`).
    pub sm_on_plain_commands: SmOnPlainCommand,
    /// What VERIFY gets with CLA `00`: the card number only ever travels encrypted (§3.4).
    pub plain_verify: PlainVerify,
    /// What an SM READ BINARY gets when its wrapped answer is longer than the APDU's Ne
    /// (§3.6, §11.7 `?`).
    pub sm_read_short_le: SmReadShortLe,
    /// What an SM READ BINARY whose DO `96` asks fewer bytes than remain in the EF
    /// answers (§3.6, §11.7 `?`).
    pub sm_read_length: SmReadLength,
    /// How TLV lengths are written in the EFs the compiler builds (§6.4 `?`).
    pub tlv_lengths: TlvLengths,
    /// What fills an EF after its last TLV (§6.4).
    pub trailing_fill: TrailingFill,
}

impl Knobs {
    /// The class rules of the command parser these knobs choose (the status-word
    /// precedence itself stays in [`crate::protocol::command`]).
    pub fn class_rules(&self) -> ClassRules {
        ClassRules {
            sm_header_authenticated: match self.cla_0c {
                SmHeaderAuthenticated::SmNotSupported => Status::SecureMessagingNotSupported,
                SmHeaderAuthenticated::ClassNotSupported => Status::ClassNotSupported,
                SmHeaderAuthenticated::IncorrectSmDataObjects => Status::IncorrectSmDataObjects,
            },
            unknown_class: match self.unknown_cla {
                UnknownClass::ClassNotSupported => Status::ClassNotSupported,
                UnknownClass::InstructionNotSupported => Status::InstructionNotSupported,
            },
            sm_on_plain_commands: match self.sm_on_plain_commands {
                SmOnPlainCommand::SmNotSupported => Some(Status::SecureMessagingNotSupported),
                SmOnPlainCommand::IncorrectSmDataObjects => Some(Status::IncorrectSmDataObjects),
                SmOnPlainCommand::ClassNotSupported => Some(Status::ClassNotSupported),
                SmOnPlainCommand::RunAsPlain => None,
            },
            plain_verify: match self.plain_verify {
                PlainVerify::IncorrectSmDataObjects => Status::IncorrectSmDataObjects,
                PlainVerify::SecurityStatusNotSatisfied => Status::SecurityStatusNotSatisfied,
            },
        }
    }
}

/// CLA `0C` (ISO 7816-4 secure messaging with the header authenticated), which this card
/// does not do (§3.7 `I`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmHeaderAuthenticated {
    /// `68 82`: secure messaging of this kind not supported (the spec's word for SM it
    /// does not do).
    #[default]
    SmNotSupported,
    /// `6E 00`: an unknown class.
    ClassNotSupported,
    /// `69 88`: the SM data objects (no `8E` MAC expected) are wrong.
    IncorrectSmDataObjects,
}

/// A class byte other than `00`, `08` or `0C` (§3.7 `I`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownClass {
    /// `6E 00` (ISO 7816-4).
    #[default]
    ClassNotSupported,
    /// `6D 00`: a card that looks its instruction table up by CLA ‖ INS.
    InstructionNotSupported,
}

/// CLA `08` on a command that is never protected (SELECT, GET CHALLENGE, MUTUAL
/// AUTHENTICATE) (§3.7 `I`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmOnPlainCommand {
    /// `68 82`: secure messaging not supported for this command.
    #[default]
    SmNotSupported,
    /// `69 88`: the SM data objects are missing.
    IncorrectSmDataObjects,
    /// `6E 00`: the class is refused.
    ClassNotSupported,
    /// The card ignores the SM bit and carries the command out as with CLA `00`.
    RunAsPlain,
}

/// VERIFY with CLA `00` (§3.4: the card number only travels under SM) (§3.7 `I`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlainVerify {
    /// `69 88`: the SM data objects are missing.
    #[default]
    IncorrectSmDataObjects,
    /// `69 82`: security status not satisfied.
    SecurityStatusNotSatisfied,
}

/// An SM READ BINARY whose wrapped answer (DO `86`) is longer than the APDU's Ne
/// (§3.6, §11.7 `?`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmReadShortLe {
    /// `6C xx` with the wrapped length when the APDU is short and it fits a byte,
    /// `67 00` otherwise (ISO 7816-4: the answer never exceeds Ne).
    #[default]
    WrongLe,
    /// The whole wrapped answer and `90 00`: a card that sizes the answer by DO `96`
    /// alone and ignores the outer Le (contactless frames carry it either way).
    WholeAnswer,
}

/// An SM READ BINARY whose DO `96` asks for fewer bytes than remain in the EF (a reader
/// reading in slices); only `96 02 00 00` ("the whole EF") is specified (§3.6, §11.7 `?`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmReadLength {
    /// The bytes asked for, sealed as their own padded plaintext (ISO 7816-4: DO `96` is
    /// Ne of the plaintext).
    #[default]
    AsAsked,
    /// Everything from the offset to the end of the EF: a card that takes DO `96` only as
    /// "the reader wants data" and always answers the rest of the file.
    ToEndOfFile,
}

/// How the compiler writes TLV lengths in the EFs (§6.4 `?`, "expect non-minimal lengths").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlvLengths {
    /// The shortest form (`81 C8`), except where the layout writes the long one (the
    /// specified `DE 82 00 C8`).
    #[default]
    Minimal,
    /// Every length outside the MF as `82 xx xx` (`D2 82 00 08`, `82 00 C8` for `81 C8`);
    /// an EF grows by the bytes this adds. The MF keeps `C1 01 31`, which a real card shows.
    LongForm,
}

/// What follows an EF's last TLV up to the EF's allocated size (§6.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailingFill {
    /// `00` bytes (what SPEC2 Appendix 2 shows after DF3's certificate).
    #[default]
    Zeros,
    /// `FF` bytes (erased EEPROM/flash).
    Ff,
    /// Nothing: the EF is as long as its TLVs.
    None,
}

impl TrailingFill {
    /// The fill byte, `None` when the EF ends at its last TLV.
    pub fn byte(self) -> Option<u8> {
        match self {
            TrailingFill::Zeros => Some(0x00),
            TrailingFill::Ff => Some(0xFF),
            TrailingFill::None => None,
        }
    }
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
    /// Selects the cipher, key sizes and the EF layout the engine serves.
    pub generation: Generation,
    /// The layout the EFs were compiled from (generation × card type of the profile).
    pub layout: &'static Layout,
    /// The card number the chip's key was derived from and VERIFY compares against.
    /// Normally the printed number; a forged chip may differ.
    pub chip_card_number: String,
    /// Every EF of the card, in layout order; the engine looks them up by [`crate::protocol::layout::EfId`].
    pub files: Vec<ElementaryFile>,
    /// Behaviour switches that differ between real cards (see [`Knobs`]).
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

    /// Serializes a fixed-size byte array as a hex string, so snapshots stay readable.
    pub fn serialize<S: Serializer, const N: usize>(
        value: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(&hex::encode_upper(v)),
            None => s.serialize_none(),
        }
    }

    /// Reads back a hex string written by [`serialize`], refusing a wrong length.
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
