//! The specified residence card's 在留AP (spec notes `my-number-platform.md` Part A): an
//! application on the My Number platform holding generation 2's residence-card data
//! (compiled by the residence compiler with the `07`/`08` layout rows), reached with:
//!
//! ```text
//! 00 A4 04 0C 10 D3 92 F0 00 4F 01 00…00         select the 在留AP (clears any session key)
//! 00 B0 8B/8A 00 Le                               C0 / C1, plain and free
//! 80 AE 00 00 00 01 00 <256-byte OAEP cryptogram>  SET SESSION KEY (delivery key)
//! 08 20 00 86 <DO 86: card number>                 VERIFY under SM
//! 00 A4 04 0C 10 <DF1|DF2|DF3 AID>                 SELECT DF (plain by default)
//! 08 B0 <80|SFI> 00 <Le DO>                       DF1 under SM; DF2/DF3 also plain
//! ```
//!
//! Firm \[S/C\]: the AIDs, the order, SET SESSION KEY with an RSA-2048 delivery key, the data
//! and its ECDSA P-384 chain, re-selection clearing the key. Everything else is a knob of
//! [`super::image::MyNumberKnobs`] (`platform.residence_*`, rows in the KNOBS table): the OAEP
//! hash, the key template, the SM variant (counter IV with encryption only, or ISO SM with a
//! CMAC), the Le DO form, VERIFY's P2, the wrong-number status and limit, whether SELECT of a
//! DF needs SM, where `C0`/`C1` are reachable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::engine::{Answer, MyNumberCard};
use super::image::MyNumberKnobs;
use crate::card::CardImage;
use crate::protocol::Status;
use crate::protocol::apdu::{Apdu, NE_SHORT_MAX};
use crate::protocol::counter_sm::{
    CLA_SM, CLA_SM_CMAC, CardCmacSm, CardCounterSm, CounterSmError, LeDoForm,
};
use crate::protocol::key_delivery::{self, KeyDeliveryConfig, KeyTemplate, OaepDigest};
use crate::protocol::layout::{Access, Df, EfId};

/// The 在留AP's AID (A2, \[S\]).
pub const RESIDENCE_AP_AID: [u8; 16] = [
    0xD3, 0x92, 0xF0, 0x00, 0x4F, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
/// Tries of the card-number key when the knob gives it a limit.
pub const NUMBER_TRIES: u8 = 10;
/// Largest SM READ answer (the longest EF, DF1/EF03, is about 5.5 kB).
const MAX_SM_READ: usize = 8192;

/// The 在留AP as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResidenceApImage {
    /// The residence data: generation 2's EFs under the `07`/`08` layout (its `MF` rows are
    /// the AP-level EFs).
    pub data: Arc<CardImage>,
    /// The private half of the delivery key the card decrypts SET SESSION KEY with.
    pub delivery_key: Arc<rsa::PrivateKey>,
    /// The public half in the format of `platform.residence_delivery_key_format`: the file
    /// a checker is handed.
    pub delivery_public_key: Vec<u8>,
    /// A forged card without DF2 (SELECT DF2 answers `6A 82`).
    pub without_df2: bool,
}

macro_rules! knob_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? } default $default:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }
        impl $name {
            /// The default (the likeliest real card).
            pub const DEFAULT: $name = $name::$default;
        }
    };
}

knob_enum! {
    /// OAEP hash and MGF1 hash of SET SESSION KEY (open question 1).
    ResidenceOaep { #[default] /// SHA-256, as measured on the platform's text AP.
    Sha256, /// SHA-1, PKCS#1's default.
    Sha1 } default Sha256
}
knob_enum! {
    /// The key template SET SESSION KEY carries (open question 1).
    ResidenceKeyTemplate { #[default] /// `A0 22 80 20 <32>` as on the text AP.
    EncryptionKey, /// `A0 44 80 20 <32> 81 20 <32>` with a MAC key.
    EncryptionAndMacKey } default EncryptionKey
}
knob_enum! {
    /// Which SM the 在留AP speaks (open question 2).
    ResidenceSm { #[default] /// Counter IV, encryption only, CLA 08 (the text AP's SM).
    CounterIv, /// ISO SM with an AES-CMAC `8E`, CLA 0C (needs the MAC-key template).
    Cmac } default CounterIv
}
knob_enum! {
    /// The Le DO of an SM READ BINARY (open question 3).
    ResidenceLeDo { #[default] /// `96 02 Lh Ll`, generation 2's form.
    TwoByte, /// `96 03 00 Lh Ll`, the text AP's form.
    ThreeByte } default TwoByte
}
knob_enum! {
    /// VERIFY's P2 for the card number (open question 4).
    ResidenceVerifyP2 { #[default] /// `86`, generation 2's.
    Gen2_86, /// `81` (`80|SFI` of DF1/EF01, the text AP's key-reference style).
    Sfi81 } default Gen2_86
}
knob_enum! {
    /// What a wrong card number answers (open question 4).
    ResidenceWrongNumber { #[default] /// `63 00`, no counter, no limit (generation 2).
    VerificationFailed, /// `63 Cx` with ten tries, then `69 84` (the platform's PINs).
    TriesLeft } default VerificationFailed
}
knob_enum! {
    /// Whether SELECT of DF1–DF3 must be under SM after key delivery (open question 3).
    ResidenceDfSelect { #[default] /// Plain `00 A4 04 0C` (SPEC3 lists only VERIFY/READ as SM).
    Plain, /// `08 A4 04 0C <DO 86: AID>` (or CLA 0C under CMAC SM); plain is `69 82`.
    SecureMessaging } default Plain
}
knob_enum! {
    /// Where `C0`/`C1` (SFI `0B`/`0A`, P1 `8B`/`8A`) are reachable (open question 5).
    ResidenceCommonData { #[default] /// Directly under the 在留AP only.
    ApLevel, /// Also after a DF was selected.
    AlsoAfterDf } default ApLevel
}
knob_enum! {
    /// The file format the delivery public key is handed to a checker in (open question 1).
    ResidenceDeliveryKeyFormat { #[default] /// The 256-byte modulus (e = 65537).
    RawModulus, /// DER SubjectPublicKeyInfo.
    SubjectPublicKeyInfo, /// `A1 { 90 e, 91 n }` (the text AP's EF 0006 form).
    PlatformTlv } default RawModulus
}

/// The key-delivery settings a card of `oaep` and `template` takes: how a reader that
/// learned them (or a checker team that read them in SPEC3) builds SET SESSION KEY.
pub fn key_delivery_config(
    oaep: ResidenceOaep,
    template: ResidenceKeyTemplate,
) -> KeyDeliveryConfig {
    KeyDeliveryConfig {
        digest: match oaep {
            ResidenceOaep::Sha256 => OaepDigest::Sha256,
            ResidenceOaep::Sha1 => OaepDigest::Sha1,
        },
        template: match template {
            ResidenceKeyTemplate::EncryptionKey => KeyTemplate::EncryptionKey,
            ResidenceKeyTemplate::EncryptionAndMacKey => KeyTemplate::EncryptionAndMacKey,
        },
    }
}

impl MyNumberKnobs {
    /// The key-delivery settings of the 在留AP.
    pub fn residence_key_delivery(&self) -> KeyDeliveryConfig {
        // The CMAC variant needs a MAC key whatever the template knob says.
        let template = match self.residence_sm {
            ResidenceSm::Cmac => ResidenceKeyTemplate::EncryptionAndMacKey,
            ResidenceSm::CounterIv => self.residence_key_template,
        };
        key_delivery_config(self.residence_oaep_digest, template)
    }

    /// The Le DO form of the 在留AP's counter SM.
    pub fn residence_le_form(&self) -> LeDoForm {
        match self.residence_le_do {
            ResidenceLeDo::TwoByte => LeDoForm::TwoByte,
            ResidenceLeDo::ThreeByte => LeDoForm::ThreeByte,
        }
    }

    /// VERIFY's P2 for the card number.
    pub fn residence_verify_p2(&self) -> u8 {
        match self.residence_verify_p2 {
            ResidenceVerifyP2::Gen2_86 => 0x86,
            ResidenceVerifyP2::Sfi81 => 0x81,
        }
    }
}

/// The 在留AP's SM session, in the variant the knob chose.
#[derive(Clone, Debug)]
enum Session {
    Counter(CardCounterSm),
    Cmac(CardCmacSm),
}

/// The 在留AP's volatile state in one selection.
#[derive(Clone, Debug, Default)]
pub struct ResidenceSession {
    /// The DF selected after the AP (`None`: the AP level, where `C0`/`C1` are).
    df: Option<Df>,
    sm: Option<Session>,
    /// The card number was verified in this session.
    verified: bool,
}

/// SELECT by AID while the 在留AP is reachable: the AP itself (a fresh state: the session
/// key is gone) or one of its DFs; `None` for any other AID (the engine's selection).
pub(super) fn select(card: &mut MyNumberCard, aid: &[u8], under_sm: bool) -> Option<Answer> {
    let ap = card.image.residence_ap.as_ref()?;
    if aid == RESIDENCE_AP_AID {
        card.enter_residence_ap();
        return Some(Ok(Vec::new()));
    }
    let df = Df::from_aid(aid)?;
    if !card.in_residence_ap() {
        return Some(Err(Status::FileNotFound));
    }
    let needs_sm = card.image.knobs.residence_df_select == ResidenceDfSelect::SecureMessaging
        && card.session.residence.sm.is_some();
    if needs_sm && !under_sm {
        return Some(Err(Status::SecurityStatusNotSatisfied));
    }
    if df == Df::Df2 && ap.without_df2 {
        return Some(Err(Status::FileNotFound));
    }
    card.session.residence.df = Some(df);
    Some(Ok(Vec::new()))
}

/// The fault layer's counter skip: the live SM session (either variant) spends one counter
/// value, as for a command whose answer never reached the reader. False without a live
/// session.
pub(super) fn skip_counter(card: &mut MyNumberCard) -> bool {
    match &mut card.session.residence.sm {
        Some(Session::Counter(sm)) => sm.advance().is_ok(),
        Some(Session::Cmac(sm)) => sm.advance().is_ok(),
        None => false,
    }
}

/// The commands the 在留AP answers itself; `None` hands the command to the engine.
pub(super) fn execute(card: &mut MyNumberCard, raw: &[u8], apdu: &Apdu) -> Option<Answer> {
    match (apdu.cla, apdu.ins) {
        (0x00, 0xB0) => Some(read_plain(card, apdu)),
        (0x00, 0x20) => Some(Err(Status::SecurityStatusNotSatisfied)),
        (0x80, key_delivery::INS) => Some(set_session_key(card, apdu)),
        (CLA_SM, _) | (CLA_SM_CMAC, _) => Some(secure_messaging(card, raw, apdu)),
        _ => None,
    }
}

fn set_session_key(card: &mut MyNumberCard, apdu: &Apdu) -> Answer {
    let ap = card
        .image
        .residence_ap
        .clone()
        .ok_or(Status::Other(0x66F1))?;
    let knobs = card.image.knobs.clone();
    let state = &mut card.session.residence;
    state.sm = None;
    state.verified = false;
    let keys = key_delivery::accept(&ap.delivery_key, knobs.residence_key_delivery(), apdu)
        .map_err(|e| e.status())?;
    state.sm = Some(match (knobs.residence_sm, keys.kmac) {
        (ResidenceSm::Cmac, Some(kmac)) => Session::Cmac(CardCmacSm::new(keys.kenc, kmac)),
        (ResidenceSm::Cmac, None) => return Err(Status::Other(key_delivery::SW_WRONG_DATA)),
        (ResidenceSm::CounterIv, _) => {
            Session::Counter(CardCounterSm::new(keys.kenc, knobs.residence_le_form()))
        }
    });
    Ok(Vec::new())
}

/// The EF an SFI names in the current DF (or at the AP level), its access checked.
fn readable(card: &MyNumberCard, sfi: u8, under_sm: bool) -> Result<&[u8], Status> {
    let ap = card
        .image
        .residence_ap
        .as_ref()
        .ok_or(Status::FileNotFound)?;
    let state = &card.session.residence;
    let here = state.df.unwrap_or(Df::Mf);
    let file = ap
        .data
        .file(EfId::new(here, sfi))
        .or_else(|| {
            let common = card.image.knobs.residence_common_data == ResidenceCommonData::AlsoAfterDf;
            (common && here != Df::Mf)
                .then(|| ap.data.file(EfId::new(Df::Mf, sfi)))
                .flatten()
        })
        .ok_or(Status::FileNotFound)?;
    if here == Df::Df2 && ap.without_df2 {
        return Err(Status::FileNotFound);
    }
    match file.access {
        Access::Free => {}
        Access::Auth if state.verified => {}
        Access::AuthSm if state.verified && under_sm => {}
        Access::Auth | Access::AuthSm => return Err(Status::SecurityStatusNotSatisfied),
    }
    Ok(&file.content)
}

fn slice(content: &[u8], offset: usize, max: usize) -> Answer {
    if offset >= content.len() && !(offset == 0 && content.is_empty()) {
        return Err(Status::OffsetOutOfRange);
    }
    let end = content.len().min(offset.saturating_add(max));
    Ok(content[offset.min(end)..end].to_vec())
}

fn read_plain(card: &mut MyNumberCard, apdu: &Apdu) -> Answer {
    if apdu.extended || !apdu.data.is_empty() {
        return Err(Status::WrongLength);
    }
    let ne = apdu.ne.ok_or(Status::WrongLength)?;
    if apdu.p1 & 0xE0 != 0x80 {
        return Err(Status::NoCurrentEf);
    }
    let content = readable(card, apdu.p1 & 0x1F, false)?;
    slice(content, usize::from(apdu.p2), ne.min(NE_SHORT_MAX))
}

fn secure_messaging(card: &mut MyNumberCard, raw: &[u8], apdu: &Apdu) -> Answer {
    let Some(mut sm) = card.session.residence.sm.take() else {
        return Err(card.image.knobs.sm_without_session.status());
    };
    let answer = match &mut sm {
        Session::Counter(counter) if apdu.cla == CLA_SM => counter_command(card, counter, apdu),
        Session::Cmac(cmac) if apdu.cla == CLA_SM_CMAC => cmac_command(card, cmac, raw, apdu),
        // The other class: the DOs this session speaks are missing.
        _ => Err(Status::Other(crate::protocol::counter_sm::SW_MISSING_SM_DO)),
    };
    card.session.residence.sm = Some(sm);
    answer
}

/// What one SM command does once opened: VERIFY, SELECT DF or READ BINARY.
fn inner(card: &mut MyNumberCard, apdu: &Apdu, plain: &[u8], le: Option<usize>) -> Answer {
    match apdu.ins {
        0x20 => verify_number(card, apdu.p1, apdu.p2, plain),
        0xA4 if (apdu.p1, apdu.p2) == (0x04, 0x0C) => {
            select(card, plain, true).unwrap_or(Err(Status::FileNotFound))
        }
        0xA4 => Err(Status::IncorrectP1P2),
        0xB0 => {
            if apdu.p1 & 0xE0 != 0x80 {
                return Err(Status::NoCurrentEf);
            }
            let content = readable(card, apdu.p1 & 0x1F, true)?;
            let max = match le {
                Some(0) | None => MAX_SM_READ,
                Some(n) => n,
            };
            slice(content, usize::from(apdu.p2), max)
        }
        _ => Err(Status::InstructionNotSupported),
    }
}

fn counter_command(card: &mut MyNumberCard, sm: &mut CardCounterSm, apdu: &Apdu) -> Answer {
    let refused = |e: CounterSmError| e.status();
    if apdu.ins == 0xB0 {
        let (len, slot) = sm.open_read(apdu.data).map_err(refused)?;
        let plain = inner(card, apdu, &[], Some(usize::from(len.0)))?;
        return sm.seal_response(&slot, &plain).map_err(refused);
    }
    if !matches!(apdu.ins, 0x20 | 0xA4) {
        sm.advance().map_err(refused)?;
        return Err(Status::InstructionNotSupported);
    }
    let (plain, _slot) = sm.open_command(apdu.data).map_err(refused)?;
    inner(card, apdu, &plain, None)
}

fn cmac_command(card: &mut MyNumberCard, sm: &mut CardCmacSm, raw: &[u8], apdu: &Apdu) -> Answer {
    let (command, slot) = sm.open_command(raw).map_err(|e| e.status())?;
    let le = command
        .le
        .as_deref()
        .map(|v| v.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)));
    // A refused command answers its bare status word \[I\]; a success its data and DO 99
    // under the MAC.
    let plain = inner(card, apdu, &command.plain, le)?;
    sm.seal_response(&slot, &plain, Status::Success)
        .map_err(|e| e.status())
}

/// VERIFY of the card number (12 ASCII characters) against the chip's number.
fn verify_number(card: &mut MyNumberCard, p1: u8, p2: u8, number: &[u8]) -> Answer {
    if p1 != 0x00 || p2 != card.image.knobs.residence_verify_p2() {
        return Err(Status::IncorrectP1P2);
    }
    let ap = card
        .image
        .residence_ap
        .as_ref()
        .ok_or(Status::FileNotFound)?;
    let limited = card.image.knobs.residence_wrong_number == ResidenceWrongNumber::TriesLeft;
    if limited && card.residence_tries_left == 0 {
        return Err(Status::Other(card.image.knobs.blocked_pin_status.sw()));
    }
    let right = number == ap.data.chip_card_number.as_bytes();
    card.session.residence.verified = right;
    match (right, limited) {
        (true, _) => {
            card.residence_tries_left = NUMBER_TRIES;
            Ok(Vec::new())
        }
        (false, false) => Err(Status::VerificationFailed),
        (false, true) => {
            card.residence_tries_left -= 1;
            Err(super::engine::tries_left_status(card.residence_tries_left))
        }
    }
}
