//! ISO 7816-4 status words used by the residence card (spec §3.7).
//!
//! An error inside the card *is* a status word: every command handler returns
//! `Result<_, Status>`, and the engine serialises the `Err` as the response.

use std::fmt;

/// One status word. `#[non_exhaustive]` because real cards may answer words
/// that are not listed; those arrive as [`Status::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `90 00` — success.
    Success,
    /// `61 xx` — success, `xx` more bytes available (T=0 style; only sent by fault profiles).
    BytesRemaining(u8),
    /// `62 82` — end of file reached before Ne bytes were read.
    EndOfFileWarning,
    /// `63 00` — verification failed: VERIFY mismatch or MUTUAL AUTHENTICATE rejected.
    VerificationFailed,
    /// `67 00` — wrong length (Lc, Le or data object length).
    WrongLength,
    /// `68 82` — secure messaging not supported for this command or class.
    SecureMessagingNotSupported,
    /// `69 82` — security status not satisfied (protected EF before VERIFY, plain read of an SM EF).
    SecurityStatusNotSatisfied,
    /// `69 85` — conditions of use not satisfied (no fresh challenge, no session).
    ConditionsNotSatisfied,
    /// `69 86` — command not allowed: offset read with no current EF.
    NoCurrentEf,
    /// `69 88` — secure-messaging data objects missing or incorrect.
    IncorrectSmDataObjects,
    /// `6A 82` — file, AID or short EF identifier not found.
    FileNotFound,
    /// `6A 86` — incorrect P1/P2.
    IncorrectP1P2,
    /// `6B 00` — offset outside the EF.
    OffsetOutOfRange,
    /// `6C xx` — wrong Le; `xx` is the exact length available.
    WrongLe(u8),
    /// `6D 00` — instruction not supported.
    InstructionNotSupported,
    /// `6E 00` — class not supported.
    ClassNotSupported,
    /// Any other status word.
    Other(u16),
}

impl Status {
    /// The two status bytes as a big-endian number.
    pub fn sw(self) -> u16 {
        match self {
            Status::Success => 0x9000,
            Status::BytesRemaining(n) => 0x6100 | u16::from(n),
            Status::EndOfFileWarning => 0x6282,
            Status::VerificationFailed => 0x6300,
            Status::WrongLength => 0x6700,
            Status::SecureMessagingNotSupported => 0x6882,
            Status::SecurityStatusNotSatisfied => 0x6982,
            Status::ConditionsNotSatisfied => 0x6985,
            Status::NoCurrentEf => 0x6986,
            Status::IncorrectSmDataObjects => 0x6988,
            Status::FileNotFound => 0x6A82,
            Status::IncorrectP1P2 => 0x6A86,
            Status::OffsetOutOfRange => 0x6B00,
            Status::WrongLe(n) => 0x6C00 | u16::from(n),
            Status::InstructionNotSupported => 0x6D00,
            Status::ClassNotSupported => 0x6E00,
            Status::Other(sw) => sw,
        }
    }

    /// Parses a status word; unknown words become [`Status::Other`].
    pub fn from_sw(sw: u16) -> Status {
        match sw {
            0x9000 => Status::Success,
            0x6282 => Status::EndOfFileWarning,
            0x6300 => Status::VerificationFailed,
            0x6700 => Status::WrongLength,
            0x6882 => Status::SecureMessagingNotSupported,
            0x6982 => Status::SecurityStatusNotSatisfied,
            0x6985 => Status::ConditionsNotSatisfied,
            0x6986 => Status::NoCurrentEf,
            0x6988 => Status::IncorrectSmDataObjects,
            0x6A82 => Status::FileNotFound,
            0x6A86 => Status::IncorrectP1P2,
            0x6B00 => Status::OffsetOutOfRange,
            0x6D00 => Status::InstructionNotSupported,
            0x6E00 => Status::ClassNotSupported,
            sw if sw & 0xFF00 == 0x6100 => Status::BytesRemaining(sw as u8),
            sw if sw & 0xFF00 == 0x6C00 => Status::WrongLe(sw as u8),
            sw => Status::Other(sw),
        }
    }

    /// The two status bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        self.sw().to_be_bytes()
    }

    /// True when the command was carried out and its answer is all here: `90 00`, or the
    /// warning `62 82` (end of file before Ne bytes) that comes with data.
    pub fn completed(self) -> bool {
        matches!(self, Status::Success | Status::EndOfFileWarning)
    }

    /// True for the words that may follow response data: those of a completed command
    /// ([`Status::completed`]) and `61 xx` (more bytes wait in GET RESPONSE). Every other
    /// word comes alone. The one definition the card, the fault layer, the checker and the
    /// tests share.
    pub fn carries_data(self) -> bool {
        self.completed() || matches!(self, Status::BytesRemaining(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.to_bytes();
        write!(f, "{a:02X} {b:02X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(Status::from_sw(sw).sw(), sw);
        }
    }
}
