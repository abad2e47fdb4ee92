//! The files of the 券面事項入力補助AP (text input support application) of the My Number card
//! (spec notes `my-number-platform.md` B5, B10), built from typed values and parsed back — the
//! card's profile compiler builds them, the reference checker parses and checks them, so both
//! read one layout.
//!
//! | EF | content |
//! |---|---|
//! | `0001` | `FF 10 0C <12 ASCII digits> FF FF` (17 bytes; the hash covers all 17) |
//! | `0002` | `FF 20 L { DF21 08 <offsets of DF22..DF25 from file start>, DF22 name, DF23 address, DF24 08 YYYYMMDD, DF25 01 sex }` |
//! | `0003` | `FF 30 82 01 4B { DF31 20 SHA-256(0001), DF32 20 SHA-256(0002's FF20 value after DF21), DF33 82 01 00 <PKCS#1 v1.5 SHA-256 signature over the DF31‖DF32 TLVs> }` |
//! | `0006` | the session-key delivery public key `A1 { 90 e, 91 n }` |
//!
//! Parsers accept `00`/`FF` filler after the last object (a whole-EF read returns the file's
//! physical size) \[I\], and nothing else.

use rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::individual_number::{IndividualNumber, IndividualNumberError, NumberDigits};
use crate::protocol::key_delivery::{DeliveryPublicKey, PublicKeyError, PublicKeyFormat};
use crate::protocol::tlv::{self, TlvError};

/// Template tag of EF `0001`.
pub const TAG_NUMBER_TEMPLATE: u16 = 0xFF10;
/// Template tag of EF `0002`.
pub const TAG_BASIC_INFO_TEMPLATE: u16 = 0xFF20;
/// Offsets of the four attributes.
pub const TAG_OFFSETS: u16 = 0xDF21;
/// Name (UTF-8; family and given name separated by U+3000).
pub const TAG_NAME: u16 = 0xDF22;
/// Address (UTF-8, full-width digits).
pub const TAG_ADDRESS: u16 = 0xDF23;
/// Date of birth, `YYYYMMDD` in ASCII.
pub const TAG_BIRTH_DATE: u16 = 0xDF24;
/// Sex, one ASCII ISO 5218 digit.
pub const TAG_SEX: u16 = 0xDF25;
/// Template tag of EF `0003`.
pub const TAG_INTEGRITY_TEMPLATE: u16 = 0xFF30;
/// SHA-256 of EF `0001`.
pub const TAG_NUMBER_HASH: u16 = 0xDF31;
/// SHA-256 of EF `0002`'s attributes.
pub const TAG_BASIC_INFO_HASH: u16 = 0xDF32;
/// Signature over the two hash TLVs.
pub const TAG_INTEGRITY_SIGNATURE: u16 = 0xDF33;
/// Physical size of EF `0001`.
pub const NUMBER_EF_LEN: usize = 17;

/// Why a text-AP file could not be built or parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TextApError {
    /// The bytes are not BER-TLV.
    #[error("{0}")]
    Tlv(#[from] TlvError),
    /// An object with the wrong tag where the layout has another.
    #[error("tag {found:04X} where {expected:04X} belongs")]
    UnexpectedTag {
        /// The tag found (`0` when the file ended first).
        found: u16,
        /// The tag of the layout.
        expected: u16,
    },
    /// An object whose value has the wrong length.
    #[error("{tag:04X} has {len} bytes, expected {expected}")]
    Length {
        /// The object.
        tag: u16,
        /// Its length.
        len: usize,
        /// The length of the layout.
        expected: usize,
    },
    /// Bytes other than `00`/`FF` filler after the template.
    #[error("non-filler bytes after the template at offset {0}")]
    Trailing(usize),
    /// DF21 states an offset that is not where the attribute is.
    #[error("DF21 says {tag:04X} is at {stated}, it is at {actual}")]
    Offset {
        /// The attribute.
        tag: u16,
        /// The offset DF21 gives.
        stated: usize,
        /// Where the object is.
        actual: usize,
    },
    /// Name or address that is not UTF-8.
    #[error("{0:04X} is not UTF-8")]
    Utf8(u16),
    /// DF24 is not a calendar date `YYYYMMDD`.
    #[error("date of birth {0:?} is not a YYYYMMDD calendar date")]
    BirthDate(String),
    /// DF25 is not an ISO 5218 code.
    #[error("sex code {0:#04x} is not ISO 5218 (0, 1, 2, 9)")]
    Sex(u8),
    /// The individual number in EF `0001` is not twelve digits.
    #[error("individual number: {0}")]
    Number(IndividualNumberError),
    /// The delivery public key of EF `0006`.
    #[error("delivery key: {0}")]
    PublicKey(PublicKeyError),
    /// The RSA signing of the integrity record failed (key unusable).
    #[error("signing: {0}")]
    Signing(String),
}

/// ISO 5218 sex code, as DF25 holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `0`: not known.
    Unknown,
    /// `1`: male.
    Male,
    /// `2`: female.
    Female,
    /// `9`: not applicable.
    NotApplicable,
}

impl Sex {
    /// The ASCII code the card stores.
    pub fn code(self) -> u8 {
        match self {
            Sex::Unknown => b'0',
            Sex::Male => b'1',
            Sex::Female => b'2',
            Sex::NotApplicable => b'9',
        }
    }

    /// Reads the ASCII code.
    pub fn from_code(code: u8) -> Result<Sex, TextApError> {
        match code {
            b'0' => Ok(Sex::Unknown),
            b'1' => Ok(Sex::Male),
            b'2' => Ok(Sex::Female),
            b'9' => Ok(Sex::NotApplicable),
            other => Err(TextApError::Sex(other)),
        }
    }
}

/// A Gregorian calendar date, as DF24 holds it (`YYYYMMDD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate {
    year: u16,
    month: u8,
    day: u8,
}

impl BirthDate {
    /// A calendar date, or `None` when the day does not exist.
    pub fn new(year: u16, month: u8, day: u8) -> Option<BirthDate> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year <= 9999 && (1..=days).contains(&day)).then_some(BirthDate { year, month, day })
    }

    /// Parses eight ASCII digits `YYYYMMDD`.
    pub fn parse(bytes: &[u8]) -> Result<BirthDate, TextApError> {
        let bad = || TextApError::BirthDate(String::from_utf8_lossy(bytes).into_owned());
        if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        };
        BirthDate::new(number(0..4), number(4..6) as u8, number(6..8) as u8).ok_or_else(bad)
    }

    /// The eight ASCII digits.
    pub fn encode(self) -> [u8; 8] {
        let text = format!("{:04}{:02}{:02}", self.year, self.month, self.day);
        let mut out = [b'0'; 8];
        out.copy_from_slice(text.as_bytes());
        out
    }

    /// Year, month, day.
    pub fn ymd(self) -> (u16, u8, u8) {
        (self.year, self.month, self.day)
    }
}

/// The four basic attributes (基本4情報) of EF `0002`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BasicInfo {
    /// Name as printed, family and given name separated by U+3000.
    pub name: String,
    /// Address as printed (full-width digits).
    pub address: String,
    /// Date of birth.
    pub birth_date: BirthDate,
    /// Sex.
    pub sex: Sex,
}

/// True when `bytes` is only `00`/`FF` filler.
pub(crate) fn check_filler(bytes: &[u8], start: usize) -> Result<(), TextApError> {
    match bytes[start..].iter().position(|&b| b != 0x00 && b != 0xFF) {
        None => Ok(()),
        Some(i) => Err(TextApError::Trailing(start + i)),
    }
}

/// Parses the one template `tag` at the start of `bytes` (filler may follow): its value and
/// the offset at which the value starts.
pub(crate) fn template(bytes: &[u8], tag: u16) -> Result<(&[u8], usize), TextApError> {
    let (outer, end) = tlv::parse_at(bytes, 0)?;
    if outer.tag != tag {
        return Err(TextApError::UnexpectedTag {
            found: outer.tag,
            expected: tag,
        });
    }
    check_filler(bytes, end)?;
    Ok((outer.value, end - outer.value.len()))
}

fn expect<'a>(
    obj: Option<&tlv::Tlv<'a>>,
    tag: u16,
    len: Option<usize>,
) -> Result<&'a [u8], TextApError> {
    let found = obj.map_or(0, |o| o.tag);
    let obj = obj
        .filter(|o| o.tag == tag)
        .ok_or(TextApError::UnexpectedTag {
            found,
            expected: tag,
        })?;
    match len {
        Some(expected) if obj.value.len() != expected => Err(TextApError::Length {
            tag,
            len: obj.value.len(),
            expected,
        }),
        _ => Ok(obj.value),
    }
}

/// EF `0001`: `FF 10 0C <digits> FF FF`. Takes unchecked digits so a forged card (wrong check
/// digit) can be built.
pub fn number_ef(digits: &NumberDigits) -> [u8; NUMBER_EF_LEN] {
    let mut out = [0xFF; NUMBER_EF_LEN];
    out[..3].copy_from_slice(&[0xFF, 0x10, 0x0C]);
    out[3..15].copy_from_slice(digits.as_bytes());
    out
}

/// Parses EF `0001`; the check digit is the caller's to judge ([`NumberDigits::checked`]).
pub fn parse_number_ef(bytes: &[u8]) -> Result<NumberDigits, TextApError> {
    let (value, _) = template(bytes, TAG_NUMBER_TEMPLATE)?;
    NumberDigits::parse(value).map_err(TextApError::Number)
}

/// EF `0002`: the template with DF21's offsets computed from the attributes' lengths.
pub fn basic_info_ef(info: &BasicInfo) -> Result<Vec<u8>, TextApError> {
    let mut attributes = Vec::new();
    let mut relative = Vec::with_capacity(4);
    for (tag, value) in [
        (TAG_NAME, info.name.as_bytes()),
        (TAG_ADDRESS, info.address.as_bytes()),
        (TAG_BIRTH_DATE, &info.birth_date.encode()[..]),
        (TAG_SEX, &[info.sex.code()][..]),
    ] {
        relative.push(attributes.len());
        tlv::push(&mut attributes, tag, value)?;
    }
    const OFFSETS_TLV_LEN: usize = 3 + 8;
    let value_len = OFFSETS_TLV_LEN + attributes.len();
    let mut header = Vec::with_capacity(5);
    tlv::push_tag(&mut header, TAG_BASIC_INFO_TEMPLATE);
    tlv::push_length(&mut header, value_len)?;
    let mut offsets = Vec::with_capacity(8);
    for r in relative {
        let absolute = header.len() + OFFSETS_TLV_LEN + r;
        let absolute = u16::try_from(absolute).map_err(|_| TlvError::TooLong(absolute))?;
        offsets.extend_from_slice(&absolute.to_be_bytes());
    }
    let mut out = header;
    tlv::push(&mut out, TAG_OFFSETS, &offsets)?;
    out.extend_from_slice(&attributes);
    Ok(out)
}

/// Parses EF `0002`, checking that DF21's offsets point at the attributes.
pub fn parse_basic_info_ef(bytes: &[u8]) -> Result<BasicInfo, TextApError> {
    let (value, value_start) = template(bytes, TAG_BASIC_INFO_TEMPLATE)?;
    let objects = tlv::parse_all(value)?;
    let mut it = objects.iter();
    let offsets = expect(it.next(), TAG_OFFSETS, Some(8))?;
    let mut values = Vec::with_capacity(4);
    for (i, (tag, len)) in [
        (TAG_NAME, None),
        (TAG_ADDRESS, None),
        (TAG_BIRTH_DATE, Some(8)),
        (TAG_SEX, Some(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let obj = it.next();
        let value = expect(obj, tag, len)?;
        let stated = usize::from(u16::from_be_bytes([offsets[2 * i], offsets[2 * i + 1]]));
        let actual = value_start + obj.map_or(0, |o| o.offset);
        if stated != actual {
            return Err(TextApError::Offset {
                tag,
                stated,
                actual,
            });
        }
        values.push(value);
    }
    if let Some(extra) = it.next() {
        return Err(TextApError::UnexpectedTag {
            found: extra.tag,
            expected: 0,
        });
    }
    let text =
        |tag: u16, v: &[u8]| String::from_utf8(v.to_vec()).map_err(|_| TextApError::Utf8(tag));
    Ok(BasicInfo {
        name: text(TAG_NAME, values[0])?,
        address: text(TAG_ADDRESS, values[1])?,
        birth_date: BirthDate::parse(values[2])?,
        sex: Sex::from_code(values[3][0])?,
    })
}

/// The part of EF `0002` that DF32 hashes: the FF20 value after the DF21 TLV (B5, B10).
pub fn basic_info_hashed_part(ef_0002: &[u8]) -> Result<&[u8], TextApError> {
    let (value, _) = template(ef_0002, TAG_BASIC_INFO_TEMPLATE)?;
    let (offsets, after) = tlv::parse_at(value, 0)?;
    if offsets.tag != TAG_OFFSETS {
        return Err(TextApError::UnexpectedTag {
            found: offsets.tag,
            expected: TAG_OFFSETS,
        });
    }
    Ok(&value[after..])
}

/// EF `0003`, the integrity record: two hashes and the signature over their TLVs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityRecord {
    /// DF31: SHA-256 of EF `0001`'s physical bytes.
    pub number_hash: [u8; 32],
    /// DF32: SHA-256 of EF `0002`'s attributes ([`basic_info_hashed_part`]).
    pub basic_info_hash: [u8; 32],
    /// DF33: RSASSA-PKCS1-v1_5 with SHA-256 over [`IntegrityRecord::signed_bytes`].
    pub signature: Vec<u8>,
}

/// Why an integrity record does not vouch for the data.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IntegrityError {
    /// DF31 is not the hash of EF `0001`.
    #[error("DF31 does not match EF 0001")]
    NumberHash,
    /// DF32 is not the hash of EF `0002`'s attributes.
    #[error("DF32 does not match EF 0002")]
    BasicInfoHash,
    /// EF `0002` cannot even be cut into its hashed part.
    #[error("EF 0002: {0}")]
    BasicInfo(TextApError),
    /// DF33 does not verify under the key.
    #[error("DF33 does not verify under the CV certificate's key")]
    Signature,
}

impl IntegrityRecord {
    /// The record for these two files, signed with `key` (the key a CV certificate vouches for).
    pub fn sign(
        ef_0001: &[u8],
        ef_0002: &[u8],
        key: &PrivateKey,
    ) -> Result<IntegrityRecord, TextApError> {
        let mut record = IntegrityRecord {
            number_hash: Sha256::digest(ef_0001).into(),
            basic_info_hash: Sha256::digest(basic_info_hashed_part(ef_0002)?).into(),
            signature: Vec::new(),
        };
        let digest = Sha256::digest(record.signed_bytes());
        record.signature = key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .map_err(|e| TextApError::Signing(e.to_string()))?;
        Ok(record)
    }

    /// The 70 bytes DF33 signs: the DF31 and DF32 TLVs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(70);
        for (tag, hash) in [
            (TAG_NUMBER_HASH, &self.number_hash),
            (TAG_BASIC_INFO_HASH, &self.basic_info_hash),
        ] {
            tlv::push_tag(&mut out, tag);
            out.push(32);
            out.extend_from_slice(hash);
        }
        out
    }

    /// The EF bytes: `FF 30 L { DF31, DF32, DF33 }`.
    pub fn encode(&self) -> Result<Vec<u8>, TextApError> {
        let mut value = self.signed_bytes();
        tlv::push(&mut value, TAG_INTEGRITY_SIGNATURE, &self.signature)?;
        Ok(tlv::encode(TAG_INTEGRITY_TEMPLATE, &value)?)
    }

    /// Parses EF `0003`.
    pub fn parse(bytes: &[u8]) -> Result<IntegrityRecord, TextApError> {
        let (value, _) = template(bytes, TAG_INTEGRITY_TEMPLATE)?;
        let objects = tlv::parse_all(value)?;
        let mut it = objects.iter();
        let hash = |v: &[u8]| -> [u8; 32] { core::array::from_fn(|i| v[i]) };
        let number_hash = hash(expect(it.next(), TAG_NUMBER_HASH, Some(32))?);
        let basic_info_hash = hash(expect(it.next(), TAG_BASIC_INFO_HASH, Some(32))?);
        let signature = expect(it.next(), TAG_INTEGRITY_SIGNATURE, None)?.to_vec();
        if let Some(extra) = it.next() {
            return Err(TextApError::UnexpectedTag {
                found: extra.tag,
                expected: 0,
            });
        }
        Ok(IntegrityRecord {
            number_hash,
            basic_info_hash,
            signature,
        })
    }

    /// Checks the record against the files it vouches for and the signing key (from the
    /// text AP's CV certificate, EF `0004`).
    pub fn verify(
        &self,
        ef_0001: &[u8],
        ef_0002: &[u8],
        key: &PublicKey,
    ) -> Result<(), IntegrityError> {
        if Sha256::digest(ef_0001).as_slice() != self.number_hash {
            return Err(IntegrityError::NumberHash);
        }
        let part = basic_info_hashed_part(ef_0002).map_err(IntegrityError::BasicInfo)?;
        if Sha256::digest(part).as_slice() != self.basic_info_hash {
            return Err(IntegrityError::BasicInfoHash);
        }
        key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(self.signed_bytes()),
            &self.signature,
        )
        .map_err(|_| IntegrityError::Signature)
    }
}

/// EF `0006`: the session-key delivery public key in the platform's `A1 { 90, 91 }` form.
pub fn delivery_key_ef(key: &DeliveryPublicKey) -> Result<Vec<u8>, TextApError> {
    key.encode(PublicKeyFormat::PlatformTlv)
        .map_err(TextApError::PublicKey)
}

/// Parses EF `0006`.
pub fn parse_delivery_key_ef(bytes: &[u8]) -> Result<DeliveryPublicKey, TextApError> {
    DeliveryPublicKey::parse(PublicKeyFormat::PlatformTlv, bytes).map_err(TextApError::PublicKey)
}

/// Why the text AP's files do not vouch for themselves (what a checker concludes).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TextApCheckError {
    /// A file does not parse (`0001`, `0002`, `0003` or `0004`).
    #[error("EF {fid:04X}: {why}")]
    Structure {
        /// The EF.
        fid: u16,
        /// What is wrong.
        why: String,
    },
    /// The CV certificate (`0004`) does not verify under the CV CA key the checker trusts.
    #[error("the CV certificate (EF 0004) does not verify under the trusted CV CA key")]
    UntrustedCvCertificate,
    /// The integrity record does not match the data or its signature does not verify.
    #[error("integrity record (EF 0003): {0}")]
    Integrity(IntegrityError),
    /// The individual number fails its check digit: no such number is ever issued.
    #[error("individual number: {0}")]
    CheckDigit(IndividualNumberError),
}

/// The text AP's EFs [`check_files`] judges, in its argument order: `0001` the number,
/// `0002` the basic attributes, `0003` the integrity record, `0004` the CV certificate. A
/// checker reads these and no other text-AP file, and the suite's privacy audit counts
/// exactly these as needed.
pub const CHECKED_FILES: [u16; 4] = [0x0001, 0x0002, 0x0003, 0x0004];

/// What a verified text AP holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTextAp {
    /// The individual number, its check digit verified.
    pub number: IndividualNumber,
    /// The four basic attributes.
    pub basic_info: BasicInfo,
}

/// The whole check of the text AP's files as read from a card (B5, B10): `0004` verifies
/// under the trusted CV CA key, `0003` vouches for `0001` and `0002` under `0004`'s key, and
/// the individual number's check digit is right. One function for every checker, so the
/// order of the checks (signature before content) is written once.
pub fn check_files(
    ef_0001: &[u8],
    ef_0002: &[u8],
    ef_0003: &[u8],
    ef_0004: &[u8],
    cv_ca: &PublicKey,
) -> Result<CheckedTextAp, TextApCheckError> {
    let structure = |fid: u16| {
        move |e: &dyn std::fmt::Display| TextApCheckError::Structure {
            fid,
            why: e.to_string(),
        }
    };
    let cert = super::cv_cert::CvCertificate::parse(ef_0004).map_err(|e| structure(0x0004)(&e))?;
    cert.verify(cv_ca)
        .map_err(|_| TextApCheckError::UntrustedCvCertificate)?;
    let record = IntegrityRecord::parse(ef_0003).map_err(|e| structure(0x0003)(&e))?;
    record
        .verify(ef_0001, ef_0002, &cert.holder_key)
        .map_err(TextApCheckError::Integrity)?;
    let digits = parse_number_ef(ef_0001).map_err(|e| structure(0x0001)(&e))?;
    let basic_info = parse_basic_info_ef(ef_0002).map_err(|e| structure(0x0002)(&e))?;
    let number = digits.checked().map_err(TextApCheckError::CheckDigit)?;
    Ok(CheckedTextAp { number, basic_info })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::my_number::individual_number::IndividualNumber;
    use rsa::pkcs8::DecodePrivateKey;

    /// B5: the JPKI test card's EF 0002, byte for byte.
    const B5_EF_0002: &str = "ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99fdf2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df24083139383030323137df250131";

    #[test]
    fn b5_test_card_ef_0002_parses_and_rebuilds_byte_for_byte() {
        let bytes = hex::decode(B5_EF_0002).unwrap();
        let info = parse_basic_info_ef(&bytes).unwrap();
        assert_eq!(info.name, "黒桐\u{3000}幹也");
        assert_eq!(info.birth_date, BirthDate::new(1980, 2, 17).unwrap());
        assert_eq!(info.sex, Sex::Male);
        assert!(
            info.address.ends_with("１２－７－２０２"),
            "{}",
            info.address
        );
        assert_eq!(basic_info_ef(&info).unwrap(), bytes);
    }

    /// B10: DF31 over the test card's 17-byte EF 0001, DF32 over EF 0002's attributes.
    #[test]
    fn b10_integrity_hashes() {
        let number = IndividualNumber::parse(b"537686677188").unwrap();
        let ef_0001 = number_ef(number.digits());
        assert_eq!(
            ef_0001.to_vec(),
            hex::decode("ff100c353337363836363737313838ffff").unwrap()
        );
        assert_eq!(
            hex::encode(Sha256::digest(ef_0001)),
            "6d5a4c1ef9ab15bf506862d7e66b9c0f179ca065bc936c8e634e9e57449ca9cd"
        );
        assert_ne!(
            hex::encode(Sha256::digest(&ef_0001[..15])),
            "6d5a4c1ef9ab15bf506862d7e66b9c0f179ca065bc936c8e634e9e57449ca9cd",
            "the trimmed 15 bytes do not match"
        );
        let ef_0002 = hex::decode(B5_EF_0002).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(basic_info_hashed_part(&ef_0002).unwrap())),
            "b9e0d09427b23b1d4beda2848512b4103752dc2667e51f9712872d65f472cb3b"
        );
        assert_eq!(parse_number_ef(&ef_0001).unwrap(), *number.digits());
    }

    #[test]
    fn integrity_record_signs_encodes_parses_and_catches_each_change() {
        let key =
            PrivateKey::from_pkcs8_pem(include_str!("../../../vectors/pki/other-signer.key.pem"))
                .unwrap();
        let ef_0001 = number_ef(IndividualNumber::parse(b"537686677188").unwrap().digits());
        let ef_0002 = hex::decode(B5_EF_0002).unwrap();
        let record = IntegrityRecord::sign(&ef_0001, &ef_0002, &key).unwrap();
        let ef_0003 = record.encode().unwrap();
        assert_eq!(&ef_0003[..5], &[0xFF, 0x30, 0x82, 0x01, 0x4B]);
        let parsed = IntegrityRecord::parse(&ef_0003).unwrap();
        assert_eq!(parsed, record);
        let public = key.to_public_key();
        parsed.verify(&ef_0001, &ef_0002, &public).unwrap();
        let other = number_ef(&NumberDigits::parse(b"123456789018").unwrap());
        assert_eq!(
            parsed.verify(&other, &ef_0002, &public),
            Err(IntegrityError::NumberHash)
        );
        let mut info = parse_basic_info_ef(&ef_0002).unwrap();
        info.sex = Sex::Female;
        let changed = basic_info_ef(&info).unwrap();
        assert_eq!(
            parsed.verify(&ef_0001, &changed, &public),
            Err(IntegrityError::BasicInfoHash)
        );
        let wrong_key =
            PrivateKey::from_pkcs8_pem(include_str!("../../../vectors/pki/test-ca.key.pem"))
                .unwrap();
        assert_eq!(
            parsed.verify(&ef_0001, &ef_0002, &wrong_key.to_public_key()),
            Err(IntegrityError::Signature)
        );
    }

    #[test]
    fn structural_errors_are_typed() {
        let mut bytes = hex::decode(B5_EF_0002).unwrap();
        bytes[7] = 0x0F; // low byte of DF21's first offset
        assert_eq!(
            parse_basic_info_ef(&bytes),
            Err(TextApError::Offset {
                tag: TAG_NAME,
                stated: 0x0F,
                actual: 0x0E
            })
        );
        let mut bytes = hex::decode(B5_EF_0002).unwrap();
        *bytes.last_mut().unwrap() = b'5';
        assert_eq!(parse_basic_info_ef(&bytes), Err(TextApError::Sex(b'5')));
        let mut ef_0001 = number_ef(&NumberDigits::parse(b"537686677188").unwrap()).to_vec();
        ef_0001.push(0x01);
        assert_eq!(parse_number_ef(&ef_0001), Err(TextApError::Trailing(17)));
        assert!(matches!(
            parse_number_ef(&[0xFF, 0x10, 0x02, b'1', b'2']),
            Err(TextApError::Number(_))
        ));
        assert!(BirthDate::parse(b"19810229").is_err());
        assert!(BirthDate::parse(b"20000229").is_ok());
    }
}
