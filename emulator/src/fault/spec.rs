//! What a profile says under `faults:`: each [`Fault`], the [`Selector`] naming the
//! commands it acts on, their YAML forms, and the check of a fault against the card.

use std::fmt;
use std::num::NonZeroUsize;

use serde::{Deserialize, Deserializer};

use crate::card::{CardImage, Df, ElementaryFile};
use crate::protocol::Status;
use crate::protocol::layout::EfLabel;

/// Which commands a fault acts on, written as text in a profile (`on: read DF1/EF02`).
///
/// `any` | `select` | `select MF|DF1|DF2|DF3` | `get_challenge` | `mutual_authenticate` |
/// `verify` | `read` | `read DF1/EF02` (plain or SM READ BINARY of that EF, by short EF
/// identifier or offset). Commands are told apart by INS, whatever the class byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Selector {
    /// `any`: every exchange, even bytes that are not an APDU.
    #[default]
    Any,
    /// `select`, `select MF|DF1|DF2|DF3`: SELECT; with a DF, only a SELECT naming it.
    Select(Option<Df>),
    /// `get_challenge`.
    GetChallenge,
    /// `mutual_authenticate`.
    MutualAuthenticate,
    /// `verify`.
    Verify,
    /// READ BINARY; with a file, only reads of the EF the label names on this card
    /// (resolved through the card's [`Layout`](crate::protocol::layout::Layout)).
    Read(Option<EfLabel>),
}

impl Selector {
    fn read() -> Selector {
        Selector::Read(None)
    }
}

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(text: String) -> Result<Selector, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let df = Df::from_name;
        let file = |name: &str| name.parse::<EfLabel>().ok();
        match words.as_slice() {
            ["any"] => Ok(Selector::Any),
            ["select"] => Ok(Selector::Select(None)),
            ["select", name] if df(name).is_some() => Ok(Selector::Select(df(name))),
            ["get_challenge"] => Ok(Selector::GetChallenge),
            ["mutual_authenticate"] => Ok(Selector::MutualAuthenticate),
            ["verify"] => Ok(Selector::Verify),
            ["read"] => Ok(Selector::Read(None)),
            ["read", name] if file(name).is_some() => Ok(Selector::Read(file(name))),
            _ => Err(format!(
                "{text:?} is not a command selector: any, select [MF|DF1|DF2|DF3], \
                 get_challenge, mutual_authenticate, verify, read [DFn/EFnn]"
            )),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Any => f.write_str("any"),
            Selector::Select(None) => f.write_str("select"),
            Selector::Select(Some(df)) => write!(f, "select {}", df.name()),
            Selector::GetChallenge => f.write_str("get_challenge"),
            Selector::MutualAuthenticate => f.write_str("mutual_authenticate"),
            Selector::Verify => f.write_str("verify"),
            Selector::Read(None) => f.write_str("read"),
            Selector::Read(Some(file)) => write!(f, "read {file}"),
        }
    }
}

/// `sw:` of a `status` fault: a status word written as two hex bytes (`"6F 00"`). Any word
/// is accepted; those the card does not use become [`Status::Other`] and are sent as written.
fn status_word<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
    parse_status_word(String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn parse_status_word(text: String) -> Result<Status, String> {
    let bytes = HexBytes::try_from(text.clone())?.0;
    let [sw1, sw2]: [u8; 2] = bytes
        .try_into()
        .map_err(|_| format!("{text:?} must be two hex bytes"))?;
    Ok(Status::from_sw(u16::from_be_bytes([sw1, sw2])))
}

/// Bytes written as hex, spaces allowed (`"FF FF"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HexBytes(pub Vec<u8>);

impl TryFrom<String> for HexBytes {
    type Error = String;
    fn try_from(text: String) -> Result<HexBytes, String> {
        let cleaned: String = text.split_whitespace().collect();
        hex::decode(&cleaned)
            .map(HexBytes)
            .map_err(|e| format!("{text:?} is not hex: {e}"))
    }
}

/// One misbehaviour. In YAML, a one-key mapping (`- delay: { ms: 3 }`) or a bare name for
/// the faults without parameters (`- wrong_m_icc`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Transport: the card takes `ms` milliseconds before answering matching commands
    /// (every APDU by default): NFC-like slowness, or a stall past a reader's patience.
    Delay {
        /// Milliseconds before the answer.
        ms: u64,
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
    },
    /// Transport: the card leaves the field right after answering this many APDUs.
    RemoveAfter {
        /// APDUs answered before the card leaves.
        apdus: usize,
    },
    /// Transport: the card leaves in the middle of a matching command, without answering.
    RemoveDuring {
        /// The commands it leaves during.
        on: Selector,
    },
    /// Transport: the answer's frame is cut to its first `keep` bytes (status word lost).
    Truncate {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// Bytes of the frame kept.
        keep: NonZeroUsize,
    },
    /// Status: matching commands are not executed and answer only this status word.
    Status {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// The answer, written as two hex bytes (`"6F 00"`).
        #[serde(deserialize_with = "status_word")]
        sw: Status,
    },
    /// Status: a matching command the card answers with `when` (and no data) gets `sw`
    /// instead — the card still carried it out (`replace_status: {on: select, when: "6A 82",
    /// sw: "90 00"}` is a card that claims every AID and still works as itself).
    ReplaceStatus {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// The card's status word that is replaced, as two hex bytes.
        #[serde(deserialize_with = "status_word")]
        when: Status,
        /// What is answered instead, as two hex bytes.
        #[serde(deserialize_with = "status_word")]
        sw: Status,
    },
    /// Status: a successful answer with data becomes `61 xx` (T=0 style); the data follows
    /// in GET RESPONSE (`00 C0 00 00 Le`) chunks, as ISO 7816-4 allows.
    GetResponse {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
    },
    /// Status: a successful answer of 1–256 bytes to a command whose Le differs becomes
    /// `6C xx` (xx = its length); the command re-sent with that Le is answered.
    WrongLe {
        /// The commands it acts on (READ BINARY by default).
        #[serde(default = "Selector::read")]
        on: Selector,
    },
    /// Data: these bytes are added after the data, before the status word.
    ExtraBytes {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// The bytes added, written as hex.
        bytes: HexBytes,
    },
    /// Data: the last `count` data bytes are dropped; the status word stays.
    MissingBytes {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// Data bytes dropped.
        count: NonZeroUsize,
    },
    /// SM: an SM read is answered with the plaintext instead of DO `86`.
    PlainInsteadOfSm {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
    },
    /// Crypto: MUTUAL AUTHENTICATE succeeds, but M.ICC does not match E.ICC (a chip that
    /// cannot compute the card-number MAC).
    WrongMIcc,
    /// Crypto: E.ICC (with a correct MAC) echoes a RND.IFD other than the reader's.
    WrongEcho,
    /// SM: answers are padded `80 FF…` instead of `80 00…` before encryption.
    SmBadPadding {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
    },
    /// SM: the padding-indicator byte of DO `86` is `value` instead of `01`.
    SmIndicator {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
        /// The indicator sent.
        value: u8,
    },
    /// SM: answers are encrypted with the card-number key instead of the session key.
    SmWrongKey {
        /// The commands it acts on (every command by default).
        #[serde(default)]
        on: Selector,
    },
    /// Session (specified card only): right after the `nth` command matching `after` that the
    /// card answered `90 00` since power-up, the chip itself processes a SELECT of the
    /// 在留AP, as if a reader had re-selected it behind the checker's back: the session key,
    /// the verified card number and the selected DF are gone, exactly as after a real
    /// re-selection (`reselect_residence_ap: {after: verify}`).
    ReselectResidenceAp {
        /// The command after which the 在留AP is re-selected.
        after: Selector,
        /// Which successful matching command (1 = the first; counted again after each reset,
        /// so a reader that resets and retries meets the same card).
        #[serde(default = "first")]
        nth: NonZeroUsize,
    },
    /// Session (specified card only): right after the `nth` command matching `after` that the
    /// card answered `90 00` since power-up, the 在留AP's SM message counter runs one ahead
    /// of the reader's, as when the card counted a command whose answer the reader never saw
    /// (`skip_sm_counter: {after: verify}`). The chip's own counter is advanced, through
    /// [`Chip::skip_residence_sm_counter`](crate::chip::Chip::skip_residence_sm_counter).
    SkipSmCounter {
        /// The command after which the counter skips.
        after: Selector,
        /// Which successful matching command (1 = the first; counted again after each reset).
        #[serde(default = "first")]
        nth: NonZeroUsize,
    },
}

/// What a session fault does to the chip once its command has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SessionChange {
    /// The chip processes a SELECT of the 在留AP.
    Reselect,
    /// The chip's SM message counter advances by one.
    SkipCounter,
}

/// `nth: 1`, the default of the session faults.
fn first() -> NonZeroUsize {
    NonZeroUsize::MIN
}

impl Fault {
    /// Faults that may leave a reply without a proper status word (or with foreign
    /// bytes in front of it): the never-panic property excuses exactly these.
    pub fn reshapes_frames(&self) -> bool {
        matches!(
            self,
            Fault::Truncate { .. } | Fault::ExtraBytes { .. } | Fault::MissingBytes { .. }
        )
    }

    /// The commands the fault acts on; `None` for the faults that pick their commands
    /// themselves (removal after a count, the MUTUAL AUTHENTICATE answer).
    pub(super) fn selector(&self) -> Option<&Selector> {
        match self {
            Fault::Delay { on, .. }
            | Fault::RemoveDuring { on }
            | Fault::Truncate { on, .. }
            | Fault::Status { on, .. }
            | Fault::ReplaceStatus { on, .. }
            | Fault::GetResponse { on }
            | Fault::WrongLe { on }
            | Fault::ExtraBytes { on, .. }
            | Fault::MissingBytes { on, .. }
            | Fault::PlainInsteadOfSm { on }
            | Fault::SmBadPadding { on }
            | Fault::SmIndicator { on, .. }
            | Fault::SmWrongKey { on } => Some(on),
            Fault::ReselectResidenceAp { after, .. } | Fault::SkipSmCounter { after, .. } => {
                Some(after)
            }
            Fault::RemoveAfter { .. } | Fault::WrongMIcc | Fault::WrongEcho => None,
        }
    }

    /// True for the faults that act on the specified card's 在留AP session (re-selection,
    /// counter skip): a profile whose chip has no 在留AP (a residence card, a plain My
    /// Number card) is refused with them, as they could never act.
    pub fn needs_residence_ap(&self) -> bool {
        matches!(
            self,
            Fault::ReselectResidenceAp { .. } | Fault::SkipSmCounter { .. }
        )
    }

    /// What a session fault does to the chip, and after which successful matching command
    /// (`None` for the others).
    pub(super) fn acts_after(&self) -> Option<(SessionChange, NonZeroUsize)> {
        match self {
            Fault::ReselectResidenceAp { nth, .. } => Some((SessionChange::Reselect, *nth)),
            Fault::SkipSmCounter { nth, .. } => Some((SessionChange::SkipCounter, *nth)),
            Fault::Delay { .. }
            | Fault::RemoveAfter { .. }
            | Fault::RemoveDuring { .. }
            | Fault::Truncate { .. }
            | Fault::Status { .. }
            | Fault::ReplaceStatus { .. }
            | Fault::GetResponse { .. }
            | Fault::WrongLe { .. }
            | Fault::ExtraBytes { .. }
            | Fault::MissingBytes { .. }
            | Fault::PlainInsteadOfSm { .. }
            | Fault::WrongMIcc
            | Fault::WrongEcho
            | Fault::SmBadPadding { .. }
            | Fault::SmIndicator { .. }
            | Fault::SmWrongKey { .. } => None,
        }
    }

    /// True when the fault's selector names a residence-card DF or EF (`select DF1`,
    /// `read DF1/EF01`): such a fault can never act on a My Number card.
    pub fn names_residence_file(&self) -> bool {
        matches!(
            self.selector(),
            Some(Selector::Select(Some(_)) | Selector::Read(Some(_)))
        )
    }

    /// Checks that a file the fault names exists on the card.
    pub fn check_against(&self, image: &CardImage) -> Result<(), String> {
        match self.selector() {
            Some(Selector::Read(Some(file))) => {
                if image.files.iter().any(|f| names(image, f, *file)) {
                    Ok(())
                } else {
                    Err(format!("the card has no EF {file}"))
                }
            }
            Some(
                Selector::Any
                | Selector::Select(_)
                | Selector::GetChallenge
                | Selector::MutualAuthenticate
                | Selector::Verify
                | Selector::Read(None),
            )
            | None => Ok(()),
        }
    }
}

/// True when the label (e.g. `DF1/EF02`) names this EF of the card, through its layout.
pub(super) fn names(image: &CardImage, ef: &ElementaryFile, label: EfLabel) -> bool {
    image.layout.label(ef.id) == Some(label)
}
