//! The protocol codec shared by the emulated card and the reference checker:
//! APDUs, status words, BER-TLV, secure messaging and the crypto compositions — the
//! residence card's, and the My Number platform's counter SM and key delivery
//! ([`counter_sm`], [`key_delivery`]).
//! Official vectors pin the residence card's part (`vectors/official-vectors.yaml`) and
//! the spec notes' derived vectors (A8, B5, B10) the My Number part, so a bug shared by both
//! sides cannot hide.

pub mod apdu;
pub mod auth;
pub mod command;
pub mod counter_sm;
pub mod crypto;
pub mod key_delivery;
pub mod layout;
pub mod signature;
pub mod sm;
pub mod status;
pub mod tlv;

pub use apdu::{Apdu, Command, CommandBuilder, Response};
pub use layout::{AID_DF1, AID_DF2, AID_DF3};
pub use status::Status;

use serde::{Deserialize, Serialize};

/// Card generation: picks the cipher suite and the file layout. Written `1` or `2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Generation {
    /// Card types `1` and `2`: 2-key TDES, retail MAC, RSA-2048 check code.
    First,
    /// Card types `05` and `06`: AES-128, AES-CMAC, ECDSA P-384 check code.
    Second,
}

impl Generation {
    /// The generation as the chip and reports number it (1 or 2).
    pub fn number(self) -> u8 {
        match self {
            Generation::First => 1,
            Generation::Second => 2,
        }
    }
}

impl Serialize for Generation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for Generation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(1) => Ok(Generation::First),
            Raw::Number(2) => Ok(Generation::Second),
            Raw::Text(t) if t == "1" => Ok(Generation::First),
            Raw::Text(t) if t == "2" => Ok(Generation::Second),
            _ => Err(serde::de::Error::custom("generation must be 1 or 2")),
        }
    }
}

/// Instruction bytes the card understands.
pub mod ins {
    /// SELECT (MF, EF by FID, DF by name).
    pub const SELECT: u8 = 0xA4;
    /// GET CHALLENGE (RND.ICC).
    pub const GET_CHALLENGE: u8 = 0x84;
    /// MUTUAL AUTHENTICATE (opens the SM session).
    pub const MUTUAL_AUTHENTICATE: u8 = 0x82;
    /// VERIFY (the card number, under SM).
    pub const VERIFY: u8 = 0x20;
    /// READ BINARY (plain or SM).
    pub const READ_BINARY: u8 = 0xB0;
    /// GET RESPONSE (ISO 7816-4), which a `61 xx` answer calls for.
    pub const GET_RESPONSE: u8 = 0xC0;
}

/// Class bytes: plain and secure messaging (header not authenticated).
pub mod cla {
    /// No secure messaging.
    pub const PLAIN: u8 = 0x00;
    /// Secure messaging, header not authenticated.
    pub const SM: u8 = 0x08;
    /// Secure messaging with an authenticated header: known, and refused (`68 82`).
    pub const SM_AUTHENTICATED_HEADER: u8 = 0x0C;
}

/// P2 of VERIFY: the card-number reference.
pub const VERIFY_P2_CARD_NUMBER: u8 = 0x86;
