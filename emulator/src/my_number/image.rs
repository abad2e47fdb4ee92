//! What a My Number profile compiles to: per application (a row of [`super::apps::APPS`])
//! the bytes of each EF, each PIN's value and tries, each private key; the knobs; the seed;
//! the reader it sits in. The engine reads it and never changes it (PIN counters live in
//! the engine, starting from here).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::apps::{App, AppRow, FileAccess, FileRow, SecretRow};
use crate::transport::reader_layer::ReaderConfig;

/// The ATR of a contact My Number card: the one entry of OpenSC's JPKI table (spec notes
/// B7, TCK checked), which OpenSC matches exactly before any APDU.
pub const JPKI_ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

/// One EF as compiled: its table row and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileImage {
    /// The row of the application table.
    pub row: &'static FileRow,
    /// The bytes READ BINARY serves.
    pub content: Vec<u8>,
}

impl FileImage {
    /// Who may read it.
    pub fn access(&self) -> FileAccess {
        self.row.access
    }
}

/// A PIN's reference value and the state the card is delivered in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinImage {
    /// The row of the application table.
    pub row: &'static SecretRow,
    /// The value VERIFY compares with; `None`: no value opens it (delivered blocked).
    pub value: Option<Vec<u8>>,
    /// Consecutive wrong tries allowed.
    pub max_tries: u8,
    /// Tries left when the card is handed over (0: blocked).
    pub tries_left: u8,
}

/// A private key the card signs with after its PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyImage {
    /// The row of the application table.
    pub row: &'static SecretRow,
    /// The RSA key (shared, not copied, by every card of the profile).
    pub key: Arc<rsa::PrivateKey>,
    /// FID of the PIN that must be verified first.
    pub pin: u16,
}

/// One application of the compiled card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppImage {
    /// Its row of the application table.
    pub row: &'static AppRow,
    /// The EFs it holds (the table's rows the profile fills, in table order).
    pub files: Vec<FileImage>,
    /// Its PINs.
    pub pins: Vec<PinImage>,
    /// Its private keys.
    pub keys: Vec<KeyImage>,
}

impl AppImage {
    /// Which application.
    pub fn app(&self) -> App {
        self.row.app
    }
}

/// Security state when the application that is already current is selected again (spec
/// notes, open question 6): MC measured that it is not reliably cleared, while OpenSC's
/// `jpki_logout` logs out by re-selecting the JPKI AP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReselectSameApp {
    /// Cleared, like selecting another application: what OpenSC's logout relies on.
    #[default]
    Clears,
    /// Kept: MC's measurement on some cards.
    Keeps,
}

/// What `00 A4 00 00` (SELECT MF, no data) answers once an application is selected (B7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfSelect {
    /// `6A 86` after reset, `90 00` and nothing changes once an application is selected
    /// (MC's measurement).
    #[default]
    NoOpOnceSelected,
    /// `6A 86` always.
    AlwaysRefused,
}

/// What VERIFY of a PIN that is already blocked answers (spec notes B4, open question 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedPinStatus {
    /// `69 84` (reference data not usable): what MC measured on every later VERIFY.
    #[default]
    ReferenceDataNotUsable,
    /// `69 83` (authentication method blocked): ISO 7816-4's word, never reported for this
    /// card, which OpenSC maps to "PIN locked".
    AuthenticationMethodBlocked,
}

impl BlockedPinStatus {
    /// The status word.
    pub fn sw(self) -> u16 {
        match self {
            BlockedPinStatus::ReferenceDataNotUsable => 0x6984,
            BlockedPinStatus::AuthenticationMethodBlocked => 0x6983,
        }
    }
}

/// Behaviour of a My Number card that the public sources leave open (profile `knobs:`
/// of a `kind: my_number` profile); defaults are the likeliest real card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MyNumberKnobs {
    /// Whether re-selecting the current application clears its security state.
    pub reselect_same_app: ReselectSameApp,
    /// What SELECT MF without data answers once an application is selected.
    pub mf_select: MfSelect,
    /// What VERIFY of an already blocked PIN answers.
    pub blocked_pin_status: BlockedPinStatus,
    /// Tries of the text AP's 照合番号A and B.
    pub check_number_tries: super::text::CheckNumberTries,
    /// What a text-AP (or 在留AP) SM command answers before any key delivery.
    pub sm_without_session: super::text::SmWithoutSession,
    /// What a failed SET SESSION KEY on the text AP does to the open session.
    pub text_failed_key_delivery: super::text::FailedKeyDelivery,
    /// 在留AP: OAEP hash of SET SESSION KEY.
    pub residence_oaep_digest: super::residence_ap::ResidenceOaep,
    /// 在留AP: the key template it takes.
    pub residence_key_template: super::residence_ap::ResidenceKeyTemplate,
    /// 在留AP: which SM.
    pub residence_sm: super::residence_ap::ResidenceSm,
    /// 在留AP: the Le DO form of the counter SM.
    pub residence_le_do: super::residence_ap::ResidenceLeDo,
    /// 在留AP: VERIFY's P2.
    pub residence_verify_p2: super::residence_ap::ResidenceVerifyP2,
    /// 在留AP: a wrong card number's status and limit.
    pub residence_wrong_number: super::residence_ap::ResidenceWrongNumber,
    /// 在留AP: whether SELECT of a DF needs SM.
    pub residence_df_select: super::residence_ap::ResidenceDfSelect,
    /// 在留AP: where `C0`/`C1` are reachable.
    pub residence_common_data: super::residence_ap::ResidenceCommonData,
    /// 在留AP: the format the delivery public key is handed to a checker in.
    pub residence_delivery_key_format: super::residence_ap::ResidenceDeliveryKeyFormat,
}

/// Everything the My Number engine needs, produced by the profile compiler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MyNumberImage {
    /// The applications on the card, in table order.
    pub apps: Vec<AppImage>,
    /// Behaviour switches (see [`MyNumberKnobs`]).
    pub knobs: MyNumberKnobs,
    /// Seed of the card's random numbers (none are used yet; kept so replays stay exact
    /// when an application that draws them is wired in).
    pub seed: u64,
    /// What the reader presents for this card (ATR, `FF CA`).
    pub reader: ReaderConfig,
    /// The text-support AP's keys (`None`: the profile has no `text_ap:`, the AP holds no
    /// data and has no key delivery).
    pub text_ap: Option<super::text::TextApImage>,
    /// The specified card's 在留AP (`None`: a plain My Number card).
    pub residence_ap: Option<super::residence_ap::ResidenceApImage>,
}

impl MyNumberImage {
    /// The application `app`, when the card has it.
    pub fn app(&self, app: App) -> Option<&AppImage> {
        self.apps.iter().find(|a| a.app() == app)
    }

    /// The EF `fid` of `app`.
    pub fn file(&self, app: App, fid: u16) -> Option<&FileImage> {
        self.app(app)?.files.iter().find(|f| f.row.fid == fid)
    }
}
