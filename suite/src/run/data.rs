//! What a checker read (`data` of `rclab.verdict/2`), what the chip holds, and the
//! field-by-field comparison of the two.
//!
//! The `data` object is parsed into [`CardFields`], a typed form that enforces exactly
//! `suite/schema/rclab.verdict.v2.json` (unknown fields, wrong types, dates that are not
//! `YYYY-MM-DD`, digests that are not 64 lowercase hex digits are refused); a test checks
//! that the schema file and this parser accept and refuse the same examples. Text is
//! compared after NFC normalisation on both sides.
//!
//! Ground truth ([`truth`]) is decoded from the profile's compiled EFs, with the reference
//! checker's own decoders ([`crate::checker::data`]): what the chip holds, not what the YAML
//! meant to say.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use unicode_normalization::UnicodeNormalization;

use rclab_emulator::card::{CardImage, Df};
use rclab_emulator::protocol::layout::{CardType, EfRow, Element};
use rclab_emulator::protocol::tlv;

use crate::checker::CardData;
use crate::checker::data::{ImageInfo, strict_text, text};

/// Text as a checker shows it: UTF-8, compared in Unicode NFC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Text normalised (NFC) so that equal names compare equal.
    pub fn new(text: &str) -> Text {
        Text(text.nfc().collect())
    }
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        let text = String::deserialize(d)?;
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(serde::de::Error::custom(format!(
                "text longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        Ok(Text::new(&text))
    }
}

/// Longest text field a checker may report (the longest chip text field is 500 bytes).
pub const MAX_TEXT_CHARS: usize = 1000;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Date(String);

impl Date {
    /// `YYYY-MM-DD` with month 01–12 and day 01–31.
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        let number = |r: std::ops::Range<usize>| {
            b.get(r)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u32>().ok())
        };
        let ok = b.len() == 10
            && number(0..4).is_some()
            && b[4] == b'-'
            && b[7] == b'-'
            && number(5..7).is_some_and(|m| (1..=12).contains(&m))
            && number(8..10).is_some_and(|d| (1..=31).contains(&d));
        ok.then(|| Date(text.to_owned()))
    }

    /// A chip date, `YYYYMMDD`, as `YYYY-MM-DD`; `None` when it is not one.
    pub fn from_chip(text: &str) -> Option<Date> {
        if text.len() != 8 || !text.is_ascii() {
            return None;
        }
        Date::parse(&format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..]))
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not a date YYYY-MM-DD",
                super::printable(&text, 40)
            ))
        })
    }
}

/// SHA-256, 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sha256Hex(String);

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sha256Hex, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256Hex(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "{:?} is not a SHA-256 (64 lowercase hex digits)",
                super::printable(&text, 80)
            )))
        }
    }
}

/// The card number, two letters, eight digits, two letters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CardNumberText(String);

impl<'de> Deserialize<'de> for CardNumberText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CardNumberText, D::Error> {
        let text = String::deserialize(d)?;
        let b = text.as_bytes();
        let ok = b.len() == 12
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..10].iter().all(u8::is_ascii_digit)
            && b[10..].iter().all(u8::is_ascii_uppercase);
        if ok {
            Ok(CardNumberText(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "{:?} is not a card number (AA00000000AA)",
                super::printable(&text, 40)
            )))
        }
    }
}

/// Sex as a checker reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Not stated.
    Unspecified,
}

/// Card type as a checker reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    /// Residence card.
    ResidenceCard,
    /// Special permanent resident certificate.
    SpecialPermanentResidentCertificate,
}

/// An image as read: the SHA-256 of its whole value on the chip (padding included, exactly
/// the bytes of the TLV value) and, if the checker decoded it, its size in pixels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRead {
    /// SHA-256 of the image bytes, hex.
    pub sha256: Sha256Hex,
    /// Width in pixels, when decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels, when decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// The images a checker reports having read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// The front-side image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<ImageRead>,
    /// The face photograph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<ImageRead>,
    /// The name image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ImageRead>,
    /// The address image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<ImageRead>,
}

/// `data` of `rclab.verdict/2`: the fields a checker shows, every one optional.
/// See the README ("Verdict protocol") for where each comes from on either generation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardFields {
    /// Card number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<CardNumberText>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Nationality or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<Text>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    /// Sex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Text>,
    /// Date the address was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_date: Option<Date>,
    /// Status of residence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_of_residence: Option<Text>,
    /// Period of stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_of_stay: Option<Text>,
    /// Date the period of stay ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_of_stay_expiry: Option<Date>,
    /// Card expiry date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_expiry: Option<Date>,
    /// Card type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<CardKind>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "generation"
    )]
    /// Chip generation.
    pub generation: Option<u8>,
    /// Work permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_permission: Option<Text>,
    /// Date the work permission ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_permission_expiry: Option<Date>,
    /// Permission for activity outside status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub individual_permission: Option<Text>,
    /// Whether that permission was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub individual_permission_granted: Option<bool>,
    /// Whether an application for extension is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_pending: Option<bool>,
    /// The images read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Images>,
}

fn generation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match u8::deserialize(d)? {
        n @ (1 | 2) => Ok(Some(n)),
        n => Err(serde::de::Error::custom(format!(
            "generation {n}: expected 1 or 2"
        ))),
    }
}

impl CardFields {
    /// Parses a `data` object (as it appears in a verdict line).
    pub fn from_json(value: &serde_json::Value) -> Result<CardFields, String> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            format!("data.{path}: {}", e.inner())
        })
    }

    /// The fields of what the reference checker read (tags decoded to their meaning).
    pub fn from_card_data(data: &CardData) -> CardFields {
        let field = |tag: &str| data.fields.get(tag).filter(|t| !t.is_empty());
        let printed = |tag: &str| data.printed.get(tag).filter(|t| !t.is_empty());
        let date = |t: Option<&String>| t.and_then(|t| Date::from_chip(t));
        let flag = |t: Option<&String>| t.map(|t| t == "1");
        let image = |i: &Option<ImageInfo>| {
            i.as_ref().map(|i| ImageRead {
                sha256: Sha256Hex(i.sha256.clone()),
                width: None,
                height: None,
            })
        };
        let first = data.generation == Some(1);
        let card_type = data
            .card_type
            .as_deref()
            .and_then(|c| CardType::from_code(c.as_bytes()))
            .map(|(_, card_type)| match card_type {
                CardType::ResidenceCard | CardType::SpecifiedResidenceCard => {
                    CardKind::ResidenceCard
                }
                CardType::SpecialPermanentResidentCertificate
                | CardType::SpecifiedSpecialPermanentResidentCertificate => {
                    CardKind::SpecialPermanentResidentCertificate
                }
            });
        let images = Images {
            front: image(&data.front_image),
            face: image(&data.face_image),
            name: image(&data.name_image),
            address: image(&data.address_image),
        };
        CardFields {
            card_number: data.card_number.clone().map(CardNumberText),
            name: None,
            nationality: printed("C8").map(|t| Text::new(t)),
            birth_date: date(printed("C6")),
            sex: printed("C7").and_then(|t| match t.as_str() {
                "1" => Some(Sex::Male),
                "2" => Some(Sex::Female),
                "3" => Some(Sex::Unspecified),
                _ => None,
            }),
            address: first.then(|| field("D4")).flatten().map(|t| Text::new(t)),
            address_date: first.then(|| date(field("D2"))).flatten(),
            status_of_residence: printed("C9").map(|t| Text::new(t)),
            period_of_stay: printed("CE").map(|t| Text::new(t)),
            period_of_stay_expiry: date(printed("CD")),
            card_expiry: date(printed("C5")),
            card_type,
            generation: data.generation,
            work_permission: field("D5").map(|t| Text::new(t)),
            work_permission_expiry: (!first).then(|| date(field("D6"))).flatten(),
            individual_permission: first.then(|| field("D6")).flatten().map(|t| Text::new(t)),
            individual_permission_granted: (!first).then(|| flag(field("D7"))).flatten(),
            application_pending: flag(if first { field("D7") } else { field("D8") }),
            images: (images != Images::default()).then_some(images),
        }
    }

    /// Every reported field as `(dotted name, value shown as text)`, in schema order.
    pub fn flat(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(self) {
            flatten("", &map, &mut out);
        }
        out
    }
}

fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, serde_json::Value>,
    out: &mut BTreeMap<String, String>,
) {
    for (key, value) in map {
        let name = format!("{prefix}{key}");
        match value {
            serde_json::Value::Object(inner) => flatten(&format!("{name}."), inner, out),
            serde_json::Value::String(s) => {
                out.insert(name, s.clone());
            }
            other => {
                out.insert(name, other.to_string());
            }
        }
    }
}

/// What the chip holds, decoded from the compiled EFs with the reference checker's
/// decoders. Fields the chip does not hold (a generation-1 birth date: printed only) or
/// cannot be decoded (invalid text) are absent.
pub fn truth(image: &CardImage) -> CardFields {
    let layout = image.layout;
    let tlvs = |row: &EfRow| {
        image
            .file(row.id)
            .and_then(|f| tlv::parse_all(&f.content).ok())
            .unwrap_or_default()
    };
    // The value of the data object holding `element`, where this card type has one.
    let value = |element: Element| {
        layout
            .holding_element(element)
            .and_then(|(row, object)| tlv::find(&tlvs(row), object.tag))
    };
    let generation = image.generation;
    let mut data = CardData {
        generation: Some(generation.number()),
        ..CardData::default()
    };
    data.card_type = value(Element::CardTypeCode).map(text);
    let decode = |value: &[u8]| strict_text(value, generation).ok();
    // A first-generation chip holds no card number: it is the chip's key.
    data.card_number = match layout.holding_element(Element::CardNumber) {
        Some(_) => value(Element::CardNumber).map(text),
        None => Some(image.chip_card_number.clone()),
    };
    data.front_image = value(Element::FrontImage).map(ImageInfo::of);
    data.face_image = value(Element::FaceImage).map(ImageInfo::of);
    data.name_image = value(Element::NameImage).map(ImageInfo::of);
    data.address_image = value(Element::AddressImage).map(ImageInfo::of);
    // Generation 2's printed entries share one EF; every data object in it is one.
    if let Some((printed, _)) = layout.holding_element(Element::BirthDate) {
        for t in tlvs(printed) {
            if let Some(value) = decode(t.value) {
                data.printed.insert(format!("{:02X}", t.tag), value);
            }
        }
    }
    for row in layout.files.iter().filter(|row| row.id.df == Df::Df2) {
        for t in tlvs(row) {
            if let Some(value) = decode(t.value) {
                data.fields.insert(format!("{:02X}", t.tag), value);
            }
        }
    }
    // The generation a checker reports is the one C1 names (a forged chip may name the
    // other generation's type while using this one's cryptography).
    if let Some((named, _)) = data
        .card_type
        .as_deref()
        .and_then(|c| CardType::from_code(c.as_bytes()))
    {
        data.generation = Some(named.number());
    }
    let mut fields = CardFields::from_card_data(&data);
    // The card number on a first-generation chip is its key, not a field: a checker knows
    // it from what it entered. Keep it comparable anyway (it is what the chip opened with).
    if fields.card_number.as_ref().is_some_and(|n| n.0.len() != 12) {
        fields.card_number = None;
    }
    fields
}

/// How one reported field compares with the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    /// The checker reported what the chip holds.
    Right,
    /// The checker reported something else than the chip holds.
    Wrong,
    /// The chip holds it; the checker did not say.
    NotReported,
    /// The checker said something the chip does not hold (or holds undecodably).
    NotOnChip,
}

impl fmt::Display for FieldStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            FieldStatus::Right => "right",
            FieldStatus::Wrong => "wrong",
            FieldStatus::NotReported => "not reported",
            FieldStatus::NotOnChip => "not on chip",
        })
    }
}

/// One field of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCheck {
    /// The field's name.
    pub field: String,
    /// How the report compares with the chip.
    pub status: FieldStatus,
    /// What the checker reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    /// What the chip holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<String>,
}

/// Every field of `reported` and of `truth`, compared.
pub fn compare(reported: &CardFields, truth: &CardFields) -> Vec<FieldCheck> {
    let reported = reported.flat();
    let truth = truth.flat();
    let mut names: Vec<&String> = reported.keys().chain(truth.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let (r, t) = (reported.get(name), truth.get(name));
            let status = match (r, t) {
                (Some(r), Some(t)) if r == t => FieldStatus::Right,
                (Some(_), Some(_)) => FieldStatus::Wrong,
                (None, _) => FieldStatus::NotReported,
                (Some(_), None) => FieldStatus::NotOnChip,
            };
            FieldCheck {
                field: name.clone(),
                status,
                reported: r.cloned(),
                chip: t.cloned(),
            }
        })
        .collect()
}

/// Counts per status, for summaries: (right, wrong, not reported, not on chip).
pub fn tally(checks: &[FieldCheck]) -> [usize; 4] {
    let mut n = [0; 4];
    for c in checks {
        n[c.status as usize] += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_calendar_shaped() {
        assert!(Date::parse("2031-04-15").is_some());
        for bad in [
            "20310415",
            "2031-13-01",
            "2031-00-10",
            "2031-04-32",
            "2031-4-15",
            "",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Date::from_chip("19950707"), Date::parse("1995-07-07"));
        assert_eq!(Date::from_chip("00000000"), None);
    }

    #[test]
    fn text_is_compared_in_nfc() {
        // `が` as one code point and as `か` + combining voiced mark.
        assert_eq!(Text::new("\u{304C}"), Text::new("\u{304B}\u{3099}"));
    }

    #[test]
    fn comparison_names_right_wrong_and_missing_fields() {
        let truth = CardFields {
            nationality: Some(Text::new("VNM")),
            birth_date: Date::parse("1995-07-07"),
            generation: Some(2),
            ..CardFields::default()
        };
        let reported = CardFields {
            nationality: Some(Text::new("VNM")),
            birth_date: Date::parse("2031-04-15"),
            name: Some(Text::new("NGUYEN")),
            ..CardFields::default()
        };
        let checks = compare(&reported, &truth);
        let status = |f: &str| checks.iter().find(|c| c.field == f).map(|c| c.status);
        assert_eq!(status("nationality"), Some(FieldStatus::Right));
        assert_eq!(status("birth_date"), Some(FieldStatus::Wrong));
        assert_eq!(status("generation"), Some(FieldStatus::NotReported));
        assert_eq!(status("name"), Some(FieldStatus::NotOnChip));
        assert_eq!(tally(&checks), [1, 1, 1, 1]);
    }
}
