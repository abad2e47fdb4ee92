//! The YAML profile format. Every field is optional here because a profile may get it from
//! the profile it `extends:`; the compiler checks what the generation requires.
//! Field values that can be checked alone are checked while deserialising, so their errors
//! carry the line and column.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::card::Knobs;
use crate::fault::{Fault, HexBytes};
use crate::protocol::Generation;
use crate::verdict::{Threat, Verdict};

/// One profile file, as written (before `extends:` is resolved).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDoc {
    /// Path of the profile this one derives from, relative to this file.
    pub extends: Option<PathBuf>,
    /// One line saying what the card is.
    pub description: Option<String>,
    /// Seed of the card's random numbers (challenges, K.ICC).
    pub seed: Option<u64>,
    /// `card:` the generation and card type (required: they select the layout).
    pub card: Option<CardDoc>,
    /// `images:` the image files the profile puts on the chip.
    pub images: Option<ImagesDoc>,
    /// Generation 1, DF2/EF01.
    pub address: Option<AddressDoc>,
    /// Generation 1, DF2/EF02–EF04 (residence card only).
    pub back_side: Option<BackSideDoc>,
    /// Generation 1 text encoding of `D4`–`D6` (spec §6.2: unresolved).
    pub text_encoding: Option<TextEncoding>,
    /// Generation 2, DF1/EF02.
    pub printed: Option<PrintedDoc>,
    /// Generation 2, DF2/EF01 (residence card only).
    pub work_permission: Option<WorkPermissionDoc>,
    /// Generation 2, DF2/EF02 `D8`: a renewal/change application is pending.
    pub application_pending: Option<bool>,
    /// Generation 2, DF2/EF03.
    pub other: Option<OtherDoc>,
    /// `signature:` how the signed parts are signed (key, certificate), or deliberately broken.
    pub signature: Option<SignatureDoc>,
    /// How a missing face image is stored (spec §6.5: unresolved).
    pub face_layout: Option<FaceLayout>,
    /// The chip's own card number when it differs from the printed one (a forged chip).
    pub chip_card_number: Option<CardNumber>,
    /// `knobs:` behaviour switches that differ between real cards.
    pub knobs: Option<Knobs>,
    /// What the reader answers itself (`FF CA`) and the ATR it presents.
    pub reader: Option<crate::transport::reader_layer::ReaderDoc>,
    /// Changes made to the chip data after the check code was computed (data forgeries
    /// and corruptions); the signature stays that of the untampered data.
    pub tamper: Option<TamperDoc>,
    /// Misbehaviours of the card (transport, status words, SM, crypto), in the order they
    /// apply; see [`crate::fault::Fault`].
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub faults: Option<Vec<Fault>>,
    /// `expect:` the verdict a correct checker must give for this card.
    pub expect: Option<ExpectDoc>,
    /// The bytes of every EF, each from a file (what `rclab record` writes): the card holds
    /// them as they are, bypassing the compiler, so a recorded card keeps its real check
    /// code. Keys name the EF as transcripts do (`MF/EF01`, `DF1/EF03`); paths are relative
    /// to the profile that writes them. With it, images, data fields and the signer are
    /// not read.
    pub raw_files: Option<std::collections::BTreeMap<String, PathBuf>>,
    /// `jpki:` the JPKI AP of a `card.kind: my_number` profile (PINs, certificates, keys).
    pub jpki: Option<JpkiDoc>,
    /// `platform:` the open behaviours of a `card.kind: my_number` card (its knobs; the
    /// residence card's are under `knobs:`).
    pub platform: Option<crate::my_number::MyNumberKnobs>,
    /// `text_ap:` the 券面事項入力補助AP of a `card.kind: my_number` profile (its person, PIN
    /// and keys); without it the application is selectable but empty.
    pub text_ap: Option<TextApDoc>,
    /// `residence_ap:` the 在留AP of a `card.kind: specified_residence` profile (its delivery
    /// key; the data are the residence fields of the profile).
    pub residence_ap: Option<ResidenceApDoc>,
}

/// `residence_ap:` the specified card's 在留AP (spec notes Part A).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidenceApDoc {
    /// The private half of the delivery key (PKCS#8 PEM, RSA-2048): SET SESSION KEY is
    /// decrypted with it. The TEST pair is `vectors/pki/mynumber/delivery.key.pem`.
    pub delivery_key: Option<PathBuf>,
    /// `true`: a forged card without DF2 (SELECT DF2 answers `6A 82`).
    pub without_df2: Option<bool>,
}

/// What changes on the chip after signing: the same data fields as a profile (merged over
/// it like an `extends:` child), plus byte-level edits of the compiled EFs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TamperDoc {
    /// Replacement images, written over the valid ones.
    pub images: Option<ImagesDoc>,
    /// Replacement address fields.
    pub address: Option<AddressDoc>,
    /// Replacement back-side fields.
    pub back_side: Option<BackSideDoc>,
    /// Text encoding of the printed fields, to test how checkers decode them.
    pub text_encoding: Option<TextEncoding>,
    /// Replacement printed (front-side) fields.
    pub printed: Option<PrintedDoc>,
    /// Replacement work-permission fields.
    pub work_permission: Option<WorkPermissionDoc>,
    /// Flips the "application for extension pending" mark.
    pub application_pending: Option<bool>,
    /// Replacement values of the remaining fields.
    pub other: Option<OtherDoc>,
    /// How the face image is placed, to test checkers that look inside it.
    pub face_layout: Option<FaceLayout>,
    /// Byte edits of the compiled EFs, applied last, in order.
    pub files: Option<Vec<FileEdit>>,
}

/// One byte-level edit of a compiled EF. Exactly one action; `tag` picks the first data
/// object with that tag for `remove`, `duplicate`, `length` and `value`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEdit {
    /// The EF, named as in transcripts: `MF/EF02`, `DF1/EF03`, ….
    pub file: String,
    /// Tag of the data object to edit, hex (`D4`, `DF D1`).
    pub tag: Option<HexBytes>,
    /// Delete the data object.
    pub remove: Option<bool>,
    /// Repeat the data object right after itself.
    pub duplicate: Option<bool>,
    /// Replace the length bytes of the data object (`82 FF FF`: a length that lies,
    /// `81 08`: a non-minimal one); the value stays.
    pub length: Option<HexBytes>,
    /// Replace the value of the data object (hex); the length is re-encoded.
    pub value: Option<HexBytes>,
    /// Keep only the first N bytes of the EF.
    pub truncate: Option<usize>,
    /// Add these bytes at the end of the EF.
    pub append: Option<HexBytes>,
}

/// `card:` which chip the profile describes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDoc {
    /// The platform: `residence` (default) or `my_number`.
    pub kind: Option<crate::chip::ChipKind>,
    /// Chip generation (required).
    pub generation: Option<Generation>,
    /// Card type (required).
    #[serde(rename = "type")]
    pub card_type: Option<CardType>,
    /// Printed card number: two letters, eight digits, two letters.
    pub number: Option<CardNumber>,
    /// `C0` common data: four ASCII characters.
    pub spec_version: Option<Ascii<4>>,
}

pub use crate::protocol::layout::CardType;

/// Image files, relative to the profile that names them; `null` removes an inherited one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesDoc {
    /// Generation 1 `D0`: front-face image, G4/MMR TIFF.
    pub front: Option<PathBuf>,
    /// `D1`: face photo, JPEG 2000.
    pub face: Option<PathBuf>,
    /// Generation 2 `D0`: name image, G4/MMR TIFF.
    pub name: Option<PathBuf>,
    /// Generation 2 `DF D1`: address image, G4/MMR TIFF.
    pub address: Option<PathBuf>,
}

/// The keys of a section that hold file paths, checked against the section's type: the
/// pattern names every field (paths before `;`, the others after), so a field added to the
/// type does not compile until it is sorted into one list or the other. Serde keys are the
/// field names (these types rename none).
macro_rules! path_keys {
    ($section:ident { $($path:ident),* ; $($other:ident),* }) => {{
        let _every_field_is_sorted = |doc: &$section| {
            let $section { $($path: _,)* $($other: _,)* } = doc;
        };
        [$(stringify!($path)),*]
    }};
}

/// Profile fields whose values are file paths, relative to the file that writes them, as
/// (section, key): the loader makes them absolute before `extends:` merges files of
/// different folders, at the top level and under `tamper:`. The one list of them.
pub fn path_fields() -> impl Iterator<Item = (&'static str, &'static str)> {
    let images = path_keys!(ImagesDoc { front, face, name, address; });
    let signature = path_keys!(SignatureDoc {
        certificate, key;
        encoding, certificate_layout, signed_data, certificate_form
    });
    let jpki = path_keys!(JpkiDoc {
        auth_certificate, auth_ca_certificate, sign_certificate, sign_ca_certificate,
        auth_key, sign_key;
        auth_pin, auth_pin_tries_left, sign_password, sign_password_tries_left, token_label,
        certificate_map
    });
    let text_ap = path_keys!(TextApDoc {
        card_key, cv_ca_key, delivery_key;
        pin, pin_tries_left, individual_number, wrong_check_digit, name, address, birth_date,
        sex, expiry_year, security_code, after_signing
    });
    let residence_ap = path_keys!(ResidenceApDoc { delivery_key; without_df2 });
    (images.into_iter().map(|key| ("images", key)))
        .chain(signature.into_iter().map(|key| ("signature", key)))
        .chain(jpki.into_iter().map(|key| ("jpki", key)))
        .chain(text_ap.into_iter().map(|key| ("text_ap", key)))
        .chain(residence_ap.into_iter().map(|key| ("residence_ap", key)))
}

/// `text_ap:` the 券面事項入力補助AP (spec notes B5): the person its files hold, its PIN
/// and its keys. File paths are relative to the profile that writes them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextApDoc {
    /// PIN `0011`: exactly 4 digits (3 tries).
    pub pin: Option<String>,
    /// Tries left on the PIN when the card is served (0–3; 0: blocked).
    pub pin_tries_left: Option<u8>,
    /// EF `0001` and 照合番号A `0014`: the 12-digit individual number; its check digit must
    /// be right unless `wrong_check_digit: true`.
    pub individual_number: Option<String>,
    /// `true`: the individual number's check digit is wrong on purpose (a forged card).
    pub wrong_check_digit: Option<bool>,
    /// `DF22`: the name, family and given name separated by U+3000.
    pub name: Option<String>,
    /// `DF23`: the address (full-width digits).
    pub address: Option<String>,
    /// `DF24`: the date of birth, `YYYYMMDD` (Gregorian; 照合番号B uses its 和暦 form).
    pub birth_date: Option<Date>,
    /// `DF25`: `male`, `female`, `unknown` or `not_applicable` (ISO 5218).
    pub sex: Option<SexDoc>,
    /// The card's expiry year, part of 照合番号B.
    pub expiry_year: Option<Digits<4>>,
    /// The 4-digit security code printed on the card, the end of 照合番号B.
    pub security_code: Option<Digits<4>>,
    /// The default key: signs the integrity record `0003`, is certified by `0004` and
    /// answers the self-signature. PKCS#8 PEM, RSA-2048.
    pub card_key: Option<PathBuf>,
    /// The TEST CV CA key that signs the CV certificate `0004` (PKCS#8 PEM, RSA-2048).
    pub cv_ca_key: Option<PathBuf>,
    /// The session-key delivery private key; its public half is EF `0006`.
    pub delivery_key: Option<PathBuf>,
    /// Fields changed AFTER the integrity record was signed (a forged card: the record
    /// vouches for the original values).
    pub after_signing: Option<TextApChangesDoc>,
}

/// `text_ap.after_signing:` data written over the signed data.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextApChangesDoc {
    /// Another name.
    pub name: Option<String>,
    /// Another address.
    pub address: Option<String>,
    /// Another individual number (any 12 digits).
    pub individual_number: Option<String>,
}

/// ISO 5218 sex as a profile writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SexDoc {
    /// `0`.
    Unknown,
    /// `1`.
    Male,
    /// `2`.
    Female,
    /// `9`.
    NotApplicable,
}

/// `jpki:` the JPKI AP of a My Number card (spec notes B2, B4). File paths are relative
/// to the profile that writes them, like every path of a profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JpkiDoc {
    /// The authentication PIN (`0018`): exactly 4 digits.
    pub auth_pin: Option<String>,
    /// Tries left on the authentication PIN when the card is served (0–3; 0: blocked).
    pub auth_pin_tries_left: Option<u8>,
    /// The signature password (`001B`): 6–16 upper-case letters and digits; absent on a card
    /// without a signature certificate (under 15), whose password is then blocked.
    pub sign_password: Option<String>,
    /// Tries left on the signature password when the card is served (0–5; 0: blocked).
    pub sign_password_tries_left: Option<u8>,
    /// The token label of `0006` (at most 32 ASCII characters, space-padded); default
    /// `JPKIAPICCTOKEN2`, what a contact/contactless card says.
    pub token_label: Option<String>,
    /// `0008`, hex, 3 bytes (default `8F 8F 00` with a signature certificate, `00 8F 00`
    /// without one).
    pub certificate_map: Option<HexBytes>,
    /// `000A`: the authentication certificate, DER (starts `30 82`).
    pub auth_certificate: Option<PathBuf>,
    /// `000B`: the authentication CA certificate, DER.
    pub auth_ca_certificate: Option<PathBuf>,
    /// `0001`: the signature certificate, DER; `null` for a card without one (under 15).
    pub sign_certificate: Option<PathBuf>,
    /// `0002`: the signature CA certificate, DER.
    pub sign_ca_certificate: Option<PathBuf>,
    /// `0017`: the authentication private key, PKCS#8 PEM, RSA-2048.
    pub auth_key: Option<PathBuf>,
    /// `001A`: the signature private key, PKCS#8 PEM, RSA-2048; `null` with no signature
    /// certificate.
    pub sign_key: Option<PathBuf>,
}

/// `address:` the address written on the back side (and its date).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressDoc {
    /// `D2`: date the address was written, `YYYYMMDD`.
    pub date: Option<Date>,
    /// `D3`: six-digit local-government code.
    pub municipality_code: Option<Digits<6>>,
    /// `D4`: the address text.
    pub text: Option<String>,
}

/// `back_side:` the back-side record fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackSideDoc {
    /// `D5`: comprehensive permission for activity outside status.
    pub comprehensive_permission: Option<String>,
    /// `D6`: individual permission for activity outside status.
    pub individual_permission: Option<String>,
    /// `D7`: an extension/change application is in progress.
    pub renewal_application: Option<bool>,
}

/// Byte encoding of generation-1 text fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// Shift_JIS as Windows code page 932 (what two of three public readers decode first).
    #[default]
    ShiftJis,
    /// UTF-8, to catch checkers that guess the encoding.
    Utf8,
}

/// `printed:` the fields printed on the card's front and stored on the chip.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintedDoc {
    /// `C5` card expiry date.
    pub card_expiry: Option<Date>,
    /// `C6` birth date.
    pub birth_date: Option<Date>,
    /// `C7` sex.
    pub sex: Option<Sex>,
    /// `C8` nationality/region code, three letters.
    pub nationality: Option<Ascii<3>>,
    /// `C9` status-of-residence code (up to ten ASCII characters, zero-padded).
    pub status_of_residence: Option<String>,
    /// `CE` period of stay: `YYMM`, three-digit days, or `0000` for indefinite.
    pub period_of_stay: Option<Ascii<4>>,
    /// `CA` permission type code (residence card only).
    pub permission_type: Option<Ascii<2>>,
    /// `CB` permission date (residence card only).
    pub permission_date: Option<Date>,
    /// `CC` work restriction: 1 none, 2 per status, 4 per designation, 9 not allowed.
    pub work_restriction: Option<Ascii<1>>,
    /// `CD` period-of-stay expiry (residence card only).
    pub period_of_stay_expiry: Option<Date>,
}

/// `C7` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Male (`1` on the chip).
    Male,
    /// Female (`2` on the chip).
    Female,
    /// Not stated (`3` on the chip).
    Unspecified,
}

impl Sex {
    /// The sex code as the chip stores it (an ASCII digit).
    pub fn code(self) -> u8 {
        match self {
            Sex::Male => b'1',
            Sex::Female => b'2',
            Sex::Unspecified => b'3',
        }
    }
}

/// `work_permission:` the work-permission entries of the back side.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPermissionDoc {
    /// `D5`: 0 none, 1 up to 28 h/week (excl. adult entertainment), 2 education-type.
    pub comprehensive: Option<Ascii<1>>,
    /// `D6`: expiry of the comprehensive permission (absent: zero-filled).
    pub comprehensive_expiry: Option<Date>,
    /// `D7`: an individual permission exists.
    pub individual: Option<bool>,
}

/// `other:` the fields no other section covers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherDoc {
    /// `D9`: an ISA Commissioner entry is present.
    pub commissioner_entry: Option<bool>,
    /// `DE`: reserved text, UTF-8, at most 200 bytes.
    pub reserved_text: Option<String>,
}

/// `signature:` how the profile's signed data is signed, or how the signature is broken.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureDoc {
    /// DER certificate stored in `DB`/`DD`.
    pub certificate: Option<PathBuf>,
    /// PKCS#8 PEM private key that makes the check code.
    pub key: Option<PathBuf>,
    /// Generation 2 `DC` encoding.
    pub encoding: Option<CheckCodeEncoding>,
    /// How the certificate sits in `DB`/`DD` (default: padded in generation 1, exact in 2).
    pub certificate_layout: Option<CertificateLayout>,
    /// What the check code covers (default: what the specification says).
    pub signed_data: Option<SignedData>,
    /// The certificate's encoding as stored (default: the DER file as is).
    pub certificate_form: Option<CertificateForm>,
}

/// The bytes the check code is computed over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedData {
    /// Spec §7: gen 1 `D0`‖`D1`, gen 2 printed values ‖ `D1` ‖ `D0`, zero-padded values.
    #[default]
    Specified,
    /// The two images in the other order (gen 1 `D1`‖`D0`, gen 2 printed ‖ `D0` ‖ `D1`).
    ImagesSwapped,
    /// The specified components, each with its tag and length (the TLVs as stored).
    WithTlvHeaders,
}

/// Damage done to the certificate before it is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateForm {
    /// The DER file unchanged.
    #[default]
    Der,
    /// Only the first half of the DER bytes.
    Truncated,
    /// As many bytes as the DER, drawn from the profile's seed.
    Garbage,
    /// BER that is not DER: the outer signatureAlgorithm SEQUENCE gets a non-minimal
    /// length (`30 81 0D`); the signed TBSCertificate is untouched.
    Ber,
}

/// How the generation-2 ECDSA check code is stored in `DC`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckCodeEncoding {
    /// `r ‖ s`, 48 + 48 bytes (fits the 96-byte field; spec §7.2).
    #[default]
    Raw,
    /// ASN.1 DER `SEQUENCE { r, s }` (101–104 bytes).
    Der,
}

/// How the certificate sits in `DB` (generation 1) or `DD` (generation 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateLayout {
    /// Zero-padded inside the value: to 1 200 bytes in `DB` (as real generation-1 cards
    /// are reported to do, the default there), to the end of DF3/EF01 in `DD`.
    Padded,
    /// Exactly the certificate's length (the generation-2 default, per SPEC2 Appendix 2).
    Exact,
}

/// How a missing face image is stored (generation-2 holders under one year old).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceLayout {
    /// `D1 82 0B B8` and 3 000 zero bytes: the EF keeps its fixed size, and the signature
    /// covers the zeros like any padded image.
    #[default]
    ZeroFilled,
    /// `D1 00`: the TLV is present but empty; the signature covers 3 000 zero bytes.
    ZeroLength,
    /// No `D1` TLV at all; the signature covers 3 000 zero bytes.
    Omitted,
}

/// `expect:` what a correct checker concludes from this card.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDoc {
    /// The verdict (and reason) a correct checker gives.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wycheproof-style labels (e.g. `Valid`, `SignatureTarget`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// One line in plain words: why a correct checker gives this verdict.
    pub why: String,
    /// Set when the reference checker knowingly gives another verdict: why it cannot do
    /// better. It must still not call the card genuine.
    pub limitation: Option<String>,
    /// What the card threatens if a checker calls it genuine (forged and corrupted cards;
    /// none on valid ones): a `forgery` called genuine is a false accept, a `corruption` or
    /// `transport` card a missed corruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<Threat>,
}

/// A card number: two upper-case letters, eight digits, two upper-case letters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardNumber(String);

impl CardNumber {
    /// The card number as text, for messages and the VERIFY command.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = b.len() == 12
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..10].iter().all(u8::is_ascii_digit)
            && b[10..].iter().all(u8::is_ascii_uppercase);
        if ok {
            Ok(CardNumber(s))
        } else {
            Err(format!(
                "card number {s:?} must be 2 upper-case letters, 8 digits, 2 upper-case letters"
            ))
        }
    }
}

impl From<CardNumber> for String {
    fn from(n: CardNumber) -> String {
        n.0
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A date written `YYYYMMDD` (kept as text: that is what the chip stores).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Date(pub String);

impl TryFrom<String> for Date {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let valid = s.len() == 8
            && s.bytes().all(|b| b.is_ascii_digit())
            && (1..=12).contains(&s[4..6].parse::<u8>().unwrap_or(0))
            && (1..=31).contains(&s[6..8].parse::<u8>().unwrap_or(0));
        if valid {
            Ok(Date(s))
        } else {
            Err(format!("date {s:?} must be YYYYMMDD"))
        }
    }
}

/// Exactly `N` printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Ascii<const N: usize>(pub String);

impl<const N: usize> TryFrom<String> for Ascii<N> {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == N && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Ascii(s))
        } else {
            Err(format!(
                "{s:?} must be exactly {N} printable ASCII characters"
            ))
        }
    }
}

/// Exactly `N` decimal digits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Digits<const N: usize>(pub String);

impl<const N: usize> TryFrom<String> for Digits<N> {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == N && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Digits(s))
        } else {
            Err(format!("{s:?} must be exactly {N} digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_fields_are_the_image_and_signer_files() {
        let fields: Vec<_> = path_fields().collect();
        assert_eq!(
            fields,
            [
                ("images", "front"),
                ("images", "face"),
                ("images", "name"),
                ("images", "address"),
                ("signature", "certificate"),
                ("signature", "key"),
                ("jpki", "auth_certificate"),
                ("jpki", "auth_ca_certificate"),
                ("jpki", "sign_certificate"),
                ("jpki", "sign_ca_certificate"),
                ("jpki", "auth_key"),
                ("jpki", "sign_key"),
                ("text_ap", "card_key"),
                ("text_ap", "cv_ca_key"),
                ("text_ap", "delivery_key"),
                ("residence_ap", "delivery_key"),
            ]
        );
    }
}
