//! The 券面事項入力補助AP (text input support application, spec notes B5, A4, A5) as the
//! card runs it: the commands only this application answers, on top of the engine's plain
//! SELECT / READ BINARY / VERIFY (which read its rows of [`super::apps::APPS`] like any
//! other application's).
//!
//! - **SET SESSION KEY** `80 AE 00 00` (extended Lc, RSA-OAEP cryptogram): only after the PIN
//!   `0011` was presented **in clear** in this selection (照合番号A alone, or the PIN under SM,
//!   leaves it at `69 82`) \[R: MC\]; decrypted with the card's delivery private key (its public
//!   half is EF `0006`) by [`key_delivery::accept`]; a session of [`CardCounterSm`] follows.
//! - **SM** under CLA `08` for VERIFY, SELECT EF and READ BINARY (A5): the counter advances for
//!   every SM command, rejected ones included; a wrong counter is `69 88` and every later SM
//!   command `69 FC`. CLA `0C` (SM with an authenticated header) is `69 87` \[R: MC\].
//! - **Self-signature** `80 2A 00 00 Lc <DigestInfo> 00`: PKCS#1 v1.5 with the application's
//!   default key, no credential needed — proves the card holds the key of the CV certificate
//!   (EF `0004`) \[R: MC for the command; I: that the default key is the CV-certified one\].
//!
//! The session lives in the engine's per-selection state: selecting any application by AID
//! (this one again included) starts without one \[I\].

use std::sync::Arc;

use rsa::Pkcs1v15Sign;
use serde::{Deserialize, Serialize};

use super::apps::TEXT_PIN;
use super::engine::{Answer, MyNumberCard};
use crate::protocol::Status;
use crate::protocol::apdu::Apdu;
use crate::protocol::counter_sm::{
    CLA_SM, CLA_SM_CMAC, CardCounterSm, CounterSmError, LeDoForm, SW_MISSING_SM_DO,
};
use crate::protocol::key_delivery::{self, KeyDeliveryConfig};

/// INS of SET SESSION KEY (CLA `80`).
pub const INS_SET_SESSION_KEY: u8 = 0xAE;
/// INS of the self-signature (CLA `80`, P2 `00`: the default key).
const INS_SIGN: u8 = 0x2A;
/// Largest input PKCS#1 v1.5 type 1 pads into a 2048-bit block (256 − 11).
const MAX_SIGN_INPUT: usize = 245;
/// Largest SM READ BINARY answer: an EF of the text AP is far shorter, and a DO `86` of
/// this many bytes plus padding still fits a short-length TLV of three length bytes.
const MAX_SM_READ: usize = 4096;

/// The text AP's keys, compiled from the profile's `text_ap:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextApImage {
    /// The default key: signs the integrity record (`0003`), is certified by the CV
    /// certificate (`0004`) and answers the self-signature.
    pub card_key: Arc<rsa::PrivateKey>,
    /// The session-key delivery private key (its public half is EF `0006`).
    pub delivery_key: Arc<rsa::PrivateKey>,
}

/// How many consecutive wrong tries 照合番号A (`0014`) and B (`0015`) allow (B4, open
/// question 8): MC implies 10 for B; no source gives A's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckNumberTries {
    /// Ten, MC's figure for 照合番号B.
    #[default]
    Ten,
    /// Three, like the 4-digit PINs.
    Three,
}

impl CheckNumberTries {
    /// The count.
    pub fn count(self) -> u8 {
        match self {
            CheckNumberTries::Ten => 10,
            CheckNumberTries::Three => 3,
        }
    }
}

/// What an SM command (CLA `08`) answers before any SET SESSION KEY: no source measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmWithoutSession {
    /// `69 82`: security status not satisfied (no session key is a missing security state).
    #[default]
    SecurityStatusNotSatisfied,
    /// `69 88`: the SM data objects cannot be checked (no key to open them with).
    IncorrectSmDataObjects,
}

impl SmWithoutSession {
    /// The status word.
    pub fn status(self) -> Status {
        match self {
            SmWithoutSession::SecurityStatusNotSatisfied => Status::SecurityStatusNotSatisfied,
            SmWithoutSession::IncorrectSmDataObjects => Status::IncorrectSmDataObjects,
        }
    }
}

/// What a SET SESSION KEY that fails does to the session already open: no source tried it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedKeyDelivery {
    /// The old session ends too (a new delivery starts over, whatever its outcome).
    #[default]
    DropsSession,
    /// The old session stays usable.
    KeepsSession,
}

/// The text AP's volatile state in one selection.
#[derive(Clone, Debug, Default)]
pub struct TextSession {
    /// The PIN `0011` was verified in clear (CLA `00`) in this selection: what SET SESSION
    /// KEY requires.
    pin_in_clear: bool,
    /// The SM session, after a successful SET SESSION KEY.
    sm: Option<CardCounterSm>,
}

/// The commands the text AP answers itself; `None` hands the command to the engine's
/// plain handlers.
pub(super) fn execute(card: &mut MyNumberCard, apdu: &Apdu) -> Option<Answer> {
    match (apdu.cla, apdu.ins) {
        (CLA_SM_CMAC, _) => Some(Err(Status::Other(SW_MISSING_SM_DO))),
        (CLA_SM, _) => Some(secure_messaging(card, apdu)),
        (0x80, INS_SET_SESSION_KEY) => Some(set_session_key(card, apdu)),
        (0x80, INS_SIGN) if apdu.p2 == 0x00 => Some(self_signature(card, apdu)),
        (0x00, 0x20) => {
            let answer = card.verify(apdu);
            if !apdu.data.is_empty() && card.current_pin_fid() == Some(TEXT_PIN) {
                // A wrong PIN in clear also withdraws the right to key delivery.
                card.session.text.pin_in_clear = answer.is_ok();
            }
            Some(answer)
        }
        _ => None,
    }
}

fn set_session_key(card: &mut MyNumberCard, apdu: &Apdu) -> Answer {
    let Some(keys) = card.image.text_ap.clone() else {
        return Err(Status::Other(key_delivery::SW_NO_KEY_DELIVERY));
    };
    if !card.session.text.pin_in_clear || !card.session.verified.contains(&TEXT_PIN) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    // A new delivery replaces the session; a failed one leaves none unless the knob keeps
    // it \[I\].
    if card.image.knobs.text_failed_key_delivery == FailedKeyDelivery::DropsSession {
        card.session.text.sm = None;
    }
    let session = key_delivery::accept(&keys.delivery_key, KeyDeliveryConfig::default(), apdu)
        .map_err(|e| e.status())?;
    card.session.text.sm = Some(CardCounterSm::new(session.kenc, LeDoForm::ThreeByte));
    Ok(Vec::new())
}

fn self_signature(card: &MyNumberCard, apdu: &Apdu) -> Answer {
    let Some(keys) = card.image.text_ap.as_ref() else {
        return Err(Status::FileNotFound);
    };
    if apdu.p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    if apdu.extended
        || apdu.data.is_empty()
        || apdu.data.len() > MAX_SIGN_INPUT
        || !matches!(apdu.ne, None | Some(256))
    {
        return Err(Status::WrongLength);
    }
    keys.card_key
        .sign(Pkcs1v15Sign::new_unprefixed(), apdu.data)
        .map_err(|_| Status::WrongLength)
}

/// One SM command: open it with the session's next counter, run the plain command inside,
/// seal the answer's data under the same counter.
fn secure_messaging(card: &mut MyNumberCard, apdu: &Apdu) -> Answer {
    let Some(mut sm) = card.session.text.sm.take() else {
        return Err(card.image.knobs.sm_without_session.status());
    };
    let answer = sm_command(card, &mut sm, apdu);
    card.session.text.sm = Some(sm);
    answer
}

fn sm_command(card: &mut MyNumberCard, sm: &mut CardCounterSm, apdu: &Apdu) -> Answer {
    let refused = |e: CounterSmError| e.status();
    match apdu.ins {
        // VERIFY: the DO `86` holds the secret; P2 names the key (`80|SFI` or `80`).
        0x20 => {
            let (secret, _slot) = sm.open_command(apdu.data).map_err(refused)?;
            let inner = Apdu {
                cla: 0x00,
                ins: 0x20,
                p1: apdu.p1,
                p2: apdu.p2,
                data: &secret,
                ne: None,
                extended: false,
            };
            // A PIN verified under SM counts for reading, not for key delivery.
            card.verify(&inner)
        }
        // SELECT EF by FID (`08 A4 02 0C`): the DO `86` holds the FID.
        0xA4 => {
            let (fid, _slot) = sm.open_command(apdu.data).map_err(refused)?;
            match (apdu.p1, apdu.p2, fid.as_slice()) {
                (0x02, 0x0C, [hi, lo]) => card.select_fid(u16::from_be_bytes([*hi, *lo])),
                (0x02, 0x0C, _) => Err(Status::WrongLength),
                _ => Err(Status::IncorrectP1P2),
            }
        }
        // READ BINARY: the Le DO asks for a length (`00 00`: the whole file).
        0xB0 => {
            let (len, slot) = sm.open_read(apdu.data).map_err(refused)?;
            let max = if len.whole_file() {
                MAX_SM_READ
            } else {
                usize::from(len.0)
            };
            let plain = card.read_at(apdu.p1, apdu.p2, max)?;
            sm.seal_response(&slot, &plain).map_err(refused)
        }
        // Any other instruction under SM still spends its counter value.
        _ => {
            sm.advance().map_err(refused)?;
            Err(Status::InstructionNotSupported)
        }
    }
}
