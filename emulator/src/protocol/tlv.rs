//! BER-TLV as the residence card uses it (spec §6.4).
//!
//! Tags are one byte, or two when the first byte's low five bits are all set
//! (`5F xx`, `DF D1`). The second byte is taken as is: the card's `DF D1` has
//! b8 set, which strict X.690 would read as "more tag bytes follow".
//! Lengths are `00`–`7F`, `81 xx` or `82 xx xx`; non-minimal forms are accepted
//! and reported. An EF may end with `00` (or `FF`) padding after its last TLV.

use thiserror::Error;

/// Why a byte string is not a TLV sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TlvError {
    /// The data ends inside a tag, length or value.
    #[error("TLV truncated at offset {0}")]
    Truncated(usize),
    #[error("unsupported length byte {byte:#04x} at offset {offset}")]
    /// A length field this codec does not accept (not `00`–`7F`, `81 xx` or `82 xx xx`).
    BadLength {
        /// Where the length byte is.
        offset: usize,
        /// The byte itself.
        byte: u8,
    },
    /// Only `00`/`FF` padding may follow the last object; something else did.
    #[error("non-zero bytes after padding at offset {0}")]
    GarbageAfterPadding(usize),
    /// A value longer than the longest length field (`82 FF FF`) can say.
    #[error("a value of {0} bytes is longer than a TLV length can say (65 535)")]
    TooLong(usize),
}

/// Longest value a TLV length can describe (`82 FF FF`).
pub const MAX_VALUE_LEN: usize = 0xFFFF;

/// One data object borrowing its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag, one or two bytes as on the card.
    pub tag: u16,
    /// The value, borrowed from the parsed bytes.
    pub value: &'a [u8],
    /// Offset of the tag inside the parsed buffer.
    pub offset: usize,
    /// True when the length used more bytes than needed (e.g. `82 00 C8`).
    pub non_minimal_length: bool,
}

/// Parses the TLV at `offset`; returns it and the offset just after it.
pub fn parse_at(input: &[u8], offset: usize) -> Result<(Tlv<'_>, usize), TlvError> {
    let byte = |i: usize| input.get(i).copied().ok_or(TlvError::Truncated(offset));
    let first = byte(offset)?;
    let (tag, mut pos) = if first & 0x1F == 0x1F {
        (u16::from_be_bytes([first, byte(offset + 1)?]), offset + 2)
    } else {
        (u16::from(first), offset + 1)
    };
    let len_byte = byte(pos)?;
    let (len, non_minimal) = match len_byte {
        0x00..=0x7F => (usize::from(len_byte), false),
        0x81 => {
            let n = usize::from(byte(pos + 1)?);
            pos += 1;
            (n, n < 0x80)
        }
        0x82 => {
            let n = usize::from(u16::from_be_bytes([byte(pos + 1)?, byte(pos + 2)?]));
            pos += 2;
            (n, n < 0x100)
        }
        other => {
            return Err(TlvError::BadLength {
                offset: pos,
                byte: other,
            });
        }
    };
    pos += 1;
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= input.len())
        .ok_or(TlvError::Truncated(offset))?;
    Ok((
        Tlv {
            tag,
            value: &input[pos..end],
            offset,
            non_minimal_length: non_minimal,
        },
        end,
    ))
}

/// Parses a whole EF: TLVs until the end or until trailing padding: `00` bytes (anything
/// else after the first is an error), or `FF` bytes to the very end (erased memory; no TLV
/// is all `FF`, since no length byte is, so a tag `FF xx` still parses).
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        if input[pos] == 0x00 {
            return match input[pos..].iter().position(|&b| b != 0) {
                None => Ok(out),
                Some(i) => Err(TlvError::GarbageAfterPadding(pos + i)),
            };
        }
        if input[pos..].iter().all(|&b| b == 0xFF) {
            return Ok(out);
        }
        let (tlv, next) = parse_at(input, pos)?;
        out.push(tlv);
        pos = next;
    }
    Ok(out)
}

/// Finds the first object with `tag` in an already parsed list.
pub fn find<'a>(tlvs: &[Tlv<'a>], tag: u16) -> Option<&'a [u8]> {
    tlvs.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// Appends the minimal length encoding of `len`; a length over 65 535 is an error and
/// appends nothing (the card never asserts on what a profile or a reader asked for).
pub fn push_length(out: &mut Vec<u8>, len: usize) -> Result<(), TlvError> {
    match u16::try_from(len) {
        Ok(short @ 0..=0x7F) => out.push(short as u8),
        Ok(byte @ 0x80..=0xFF) => out.extend_from_slice(&[0x81, byte as u8]),
        Ok(long) => {
            out.push(0x82);
            out.extend_from_slice(&long.to_be_bytes());
        }
        Err(_) => return Err(TlvError::TooLong(len)),
    }
    Ok(())
}

/// Appends the tag (one or two bytes, as the value says).
pub fn push_tag(out: &mut Vec<u8>, tag: u16) {
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
}

/// Appends one TLV with a minimal length; a value over 65 535 bytes is an error and
/// appends nothing.
pub fn push(out: &mut Vec<u8>, tag: u16, value: &[u8]) -> Result<(), TlvError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(TlvError::TooLong(value.len()));
    }
    push_tag(out, tag);
    push_length(out, value.len())?;
    out.extend_from_slice(value);
    Ok(())
}

/// One TLV with a minimal length, as a new vector.
pub fn encode(tag: u16, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::with_capacity(value.len().min(MAX_VALUE_LEN) + 5);
    push(&mut out, tag, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_byte_tag_df_d1_with_long_length() {
        let mut ef = vec![0xDF, 0xD1, 0x82, 0x09, 0xC4];
        ef.extend(std::iter::repeat_n(7, 2500));
        let tlvs = parse_all(&ef).unwrap();
        assert_eq!(tlvs.len(), 1);
        assert_eq!(tlvs[0].tag, 0xDFD1);
        assert_eq!(tlvs[0].value.len(), 2500);
        assert_eq!(encode(0xDFD1, tlvs[0].value), Ok(ef));
    }

    #[test]
    fn padding_and_non_minimal_lengths() {
        let ef = [0xD9, 0x01, 0x30, 0xDE, 0x82, 0x00, 0x01, 0x41, 0, 0, 0];
        let tlvs = parse_all(&ef).unwrap();
        assert_eq!(tlvs[1].tag, 0xDE);
        assert!(tlvs[1].non_minimal_length);
        assert_eq!(find(&tlvs, 0xDE), Some(&b"A"[..]));
        assert_eq!(
            parse_all(&[0xC1, 1, 0x31, 0, 5]),
            Err(TlvError::GarbageAfterPadding(4))
        );
    }

    #[test]
    fn ff_fill_and_long_form_lengths_of_128_to_255_bytes_parse() {
        // knobs.tlv_lengths: long_form writes `82 00 C8` where `81 C8` would do, and
        // knobs.trailing_fill: ff ends the EF with erased bytes.
        let mut ef = vec![0xD4, 0x82, 0x00, 0xC8];
        ef.extend(std::iter::repeat_n(b'A', 200));
        ef.extend([0xD7, 0x01, 0x30, 0xFF, 0xFF, 0xFF]);
        let tlvs = parse_all(&ef).unwrap();
        assert_eq!(tlvs.len(), 2);
        assert!(tlvs[0].non_minimal_length);
        assert_eq!(find(&tlvs, 0xD4).map(<[u8]>::len), Some(200));
        assert_eq!(find(&tlvs, 0xD7), Some(&b"0"[..]));
        // FF not to the end is a tag `FF xx`, read as one.
        assert_eq!(
            parse_all(&[0xC1, 1, 0x31, 0xFF, 0]),
            Err(TlvError::Truncated(3))
        );
        assert_eq!(parse_all(&[0xFF, 0x00, 0x00]).unwrap()[0].tag, 0xFF00);
        assert_eq!(parse_all(&[0xFF; 4]), Ok(Vec::new()));
    }

    #[test]
    fn lying_lengths_are_errors() {
        assert_eq!(
            parse_all(&[0xD0, 0x82, 0xFF, 0xFF, 1]),
            Err(TlvError::Truncated(0))
        );
        assert_eq!(
            parse_all(&[0xD0, 0x83, 0, 0, 1]),
            Err(TlvError::BadLength {
                offset: 1,
                byte: 0x83
            })
        );
        assert_eq!(parse_all(&[0xDF]), Err(TlvError::Truncated(0)));
    }

    #[test]
    fn values_over_65535_bytes_are_errors_not_panics() {
        let longest = vec![7; MAX_VALUE_LEN];
        let encoded = encode(0xD0, &longest).unwrap();
        assert_eq!(&encoded[..4], &[0xD0, 0x82, 0xFF, 0xFF]);
        let too_long = vec![7; MAX_VALUE_LEN + 1];
        assert_eq!(encode(0xD0, &too_long), Err(TlvError::TooLong(65_536)));
        let mut out = vec![1];
        assert_eq!(
            push(&mut out, 0xD0, &too_long),
            Err(TlvError::TooLong(65_536))
        );
        assert_eq!(
            push_length(&mut out, usize::MAX),
            Err(TlvError::TooLong(usize::MAX))
        );
        assert_eq!(out, [1], "nothing is appended on error");
    }
}
