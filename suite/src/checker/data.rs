//! What the reference checker read from a card, in a form that serialises to JSON.

use std::collections::BTreeMap;

use rclab_emulator::my_number::residence_ap::{
    ResidenceDfSelect, ResidenceKeyTemplate, ResidenceLeDo, ResidenceOaep, ResidenceSm,
    ResidenceVerifyP2,
};
use rclab_emulator::protocol::Generation;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// An image field: size and fingerprint instead of the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Value bytes without trailing zero padding.
    pub length: usize,
    /// `tiff-g4`, `jp2`, `j2k`, `empty` or `unknown`.
    pub format: &'static str,
    /// SHA-256 of the image bytes, hex: reports compare images without carrying them.
    pub sha256: String,
}

impl ImageInfo {
    /// Hash and size of `value`.
    pub fn of(value: &[u8]) -> ImageInfo {
        let trimmed = trim_zeros(value);
        let format = if trimmed.is_empty() {
            "empty"
        } else if trimmed.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20]) {
            "jp2"
        } else if trimmed.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
            "j2k"
        } else if trimmed.starts_with(b"II*\0") || trimmed.starts_with(b"MM\0*") {
            "tiff"
        } else {
            "unknown"
        };
        ImageInfo {
            length: trimmed.len(),
            format,
            sha256: hex::encode(Sha256::digest(value)),
        }
    }
}

/// Strips trailing `00` padding.
pub fn trim_zeros(value: &[u8]) -> &[u8] {
    let end = value.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &value[..end]
}

/// Text of a NUL-padded field.
pub fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(trim_zeros(value)).into_owned()
}

/// Text of a NUL-padded field, strictly: NUL only as padding at the end, and valid in the
/// generation's encoding. Generation 1 (D4–D6, spec §6.2 leaves it open): UTF-8 when the
/// bytes are UTF-8, else Shift_JIS (cp932); generation 2: UTF-8 (spec §6.3). A checker that
/// cannot show what the card says faithfully must not pretend it can.
pub fn strict_text(value: &[u8], generation: Generation) -> Result<String, String> {
    let value = trim_zeros(value);
    if value.contains(&0) {
        return Err("NUL byte inside the text".into());
    }
    if let Ok(utf8) = std::str::from_utf8(value) {
        return Ok(utf8.to_owned());
    }
    match generation {
        Generation::First => encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(value)
            .map(|t| t.into_owned())
            .ok_or_else(|| "neither UTF-8 nor Shift_JIS".into()),
        Generation::Second => Err("not UTF-8".into()),
    }
}

/// The certificate as the card presented it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    /// Subject distinguished name, as text.
    pub subject: String,
    /// Issuer distinguished name, as text.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before_unix: u64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: u64,
    /// Size of the DER encoding.
    pub der_length: usize,
    /// Root of the trust store that signed it, when one did.
    pub trusted_root: Option<String>,
}

/// Everything read, per generation; absent fields were not read (the check stopped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CardData {
    /// Chip generation (1 or 2), when the card said.
    pub generation: Option<u8>,
    /// `C1`, as ASCII.
    pub card_type: Option<String>,
    /// `C0`, as ASCII.
    pub common_data: Option<String>,
    /// The front-side image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub front_image: Option<ImageInfo>,
    /// The face photograph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_image: Option<ImageInfo>,
    /// The name image (generation 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_image: Option<ImageInfo>,
    /// The address image (generation 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_image: Option<ImageInfo>,
    /// Generation 2 `C2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_number: Option<String>,
    /// Generation 2 printed entries by tag name (`C5` …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub printed: BTreeMap<String, String>,
    /// Text fields by tag name (`D2` …), decoded.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The signer's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInfo>,
    /// Length of the check code, when read.
    pub check_code_length: Option<usize>,
    /// What a specified card's 在留AP took of each open protocol question (a specified card
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residence_ap: Option<ResidenceApSettings>,
    /// What the My Number checker read (a My Number card only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_number: Option<super::my_number::MyNumberData>,
}

/// What a specified card's 在留AP took, in the values of the `platform.residence_*` knobs
/// (the open questions of spec notes Part A): what a reader facing a real card learns. A
/// field is absent when the check stopped before the card showed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResidenceApSettings {
    /// The OAEP hash SET SESSION KEY was accepted under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oaep_digest: Option<ResidenceOaep>,
    /// The key template it was accepted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_template: Option<ResidenceKeyTemplate>,
    /// The SM the card speaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm: Option<ResidenceSm>,
    /// VERIFY's P2 for the card number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_p2: Option<ResidenceVerifyP2>,
    /// Whether SELECT of a DF is plain or under SM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df_select: Option<ResidenceDfSelect>,
    /// The Le DO form of the counter SM's READ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub le_do: Option<ResidenceLeDo>,
}
