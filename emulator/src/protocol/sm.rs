//! Encryption-only secure messaging (spec §3.4, §3.6, §4.6).
//!
//! Command and response data travel in DO `86` = `01` (padding indicator) ‖ CBC ciphertext
//! under KSenc with a zero IV; the expected plaintext length of an SM READ BINARY travels in
//! DO `96`. There is no MAC, no status DO `99` and no send-sequence counter.

use thiserror::Error;

use super::Generation;
use super::crypto::{Key, unpad};
use super::tlv;

/// Tag of the padding-indicator-plus-cryptogram data object.
pub const TAG_CRYPTOGRAM: u16 = 0x86;
/// Tag of the expected-length data object.
pub const TAG_EXPECTED_LENGTH: u16 = 0x96;
/// The only padding indicator the card uses: ISO 7816-4 padding.
pub const PADDING_INDICATOR: u8 = 0x01;

/// Why SM data could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SmError {
    /// The response data is not a secure-messaging cryptogram object.
    #[error("SM data is not a single DO 86: {0}")]
    NotACryptogram(String),
    /// The padding-indicator byte is not the one the card always sends (`01`).
    #[error("padding indicator {0:#04x}, expected 01")]
    PaddingIndicator(u8),
    /// The cryptogram is not a whole number of cipher blocks.
    #[error("cryptogram of {0} bytes is empty or not block aligned")]
    BadCryptogramLength(usize),
    /// The decrypted data does not end in method-2 padding.
    #[error("plaintext padding is malformed")]
    BadPadding,
    /// The data is too long for one DO `86` (its length field says at most 65 535).
    #[error("{0} bytes of data do not fit one DO 86")]
    TooLong(usize),
}

/// `86 L 01 ‖ Enc(KSenc, pad(plain))`; data too long for one DO `86` is an error.
pub fn seal(generation: Generation, key: &Key, plain: &[u8]) -> Result<Vec<u8>, SmError> {
    // Padding adds at most one block (16 bytes) and the indicator one byte.
    if plain.len() + 17 > tlv::MAX_VALUE_LEN {
        return Err(SmError::TooLong(plain.len()));
    }
    let mut value = Vec::with_capacity(plain.len() + 17);
    value.push(PADDING_INDICATOR);
    value.extend_from_slice(&generation.encrypt_padded(key, plain));
    tlv::encode(TAG_CRYPTOGRAM, &value).map_err(|_| SmError::TooLong(plain.len()))
}

/// Opens the data of a DO `86` (the whole of `data` must be that one object).
pub fn open(generation: Generation, key: &Key, data: &[u8]) -> Result<Vec<u8>, SmError> {
    let (obj, end) = tlv::parse_at(data, 0).map_err(|e| SmError::NotACryptogram(e.to_string()))?;
    if obj.tag != TAG_CRYPTOGRAM {
        return Err(SmError::NotACryptogram(format!("tag {:02X}", obj.tag)));
    }
    if end != data.len() {
        return Err(SmError::NotACryptogram(format!(
            "{} bytes after the DO",
            data.len() - end
        )));
    }
    let [indicator, cryptogram @ ..] = obj.value else {
        return Err(SmError::BadCryptogramLength(0));
    };
    if *indicator != PADDING_INDICATOR {
        return Err(SmError::PaddingIndicator(*indicator));
    }
    if cryptogram.is_empty() {
        return Err(SmError::BadCryptogramLength(0));
    }
    let plain = generation
        .decrypt(key, cryptogram)
        .map_err(|_| SmError::BadCryptogramLength(cryptogram.len()))?;
    unpad(&plain).map(<[u8]>::to_vec).ok_or(SmError::BadPadding)
}

/// `96 02 Lh Ll`: the expected plaintext length, `0` meaning "the whole EF".
pub fn expected_length(len: u16) -> [u8; 4] {
    let [h, l] = len.to_be_bytes();
    [0x96, 0x02, h, l]
}

/// Parses the DO `96` of an SM READ BINARY (`96 01 xx` or `96 02 xx xx`).
pub fn parse_expected_length(data: &[u8]) -> Option<u16> {
    match data {
        [0x96, 1, n] => Some(u16::from(*n)),
        [0x96, 2, h, l] => Some(u16::from_be_bytes([*h, *l])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open() {
        for generation in [Generation::First, Generation::Second] {
            for len in [0, 1, 7, 8, 15, 16, 17, 300] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let sealed = seal(generation, &[9; 16], &plain).unwrap();
                assert_eq!(open(generation, &[9; 16], &sealed).unwrap(), plain);
            }
        }
    }

    #[test]
    fn rejects_wrong_indicator_and_trailing_bytes() {
        let mut sealed = seal(Generation::Second, &[1; 16], b"x").unwrap();
        sealed[2] = 2;
        assert_eq!(
            open(Generation::Second, &[1; 16], &sealed),
            Err(SmError::PaddingIndicator(2))
        );
        let mut sealed = seal(Generation::Second, &[1; 16], b"x").unwrap();
        sealed.push(0);
        assert!(matches!(
            open(Generation::Second, &[1; 16], &sealed),
            Err(SmError::NotACryptogram(_))
        ));
    }

    #[test]
    fn data_too_long_for_one_do_86_is_an_error() {
        for generation in [Generation::First, Generation::Second] {
            let longest = vec![0; tlv::MAX_VALUE_LEN - 17];
            let sealed = seal(generation, &[3; 16], &longest).unwrap();
            assert_eq!(open(generation, &[3; 16], &sealed).unwrap(), longest);
            let too_long = vec![0; tlv::MAX_VALUE_LEN - 16];
            assert_eq!(
                seal(generation, &[3; 16], &too_long),
                Err(SmError::TooLong(too_long.len()))
            );
        }
    }
}
