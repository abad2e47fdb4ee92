//! The card's file layout, written once: for each generation × card type, which EFs the
//! chip holds, under which DF and short EF identifier, which data objects (tags) they carry
//! with which fixed areas, who may read them, whether a verdict needs them, and what the
//! check code signs (spec §2.2, §2.3, §6, §7).
//!
//! How to use it:
//! - The compiler builds every EF from [`Layout::files`] (row order is storage order and the
//!   order of `CardImage::files`); the engine and the readers address EFs by [`EfId`].
//! - A reader finds its card's layout from the `C1` code with [`CardType::from_code`] and
//!   [`Layout::of`], then reads each [`EfRow`] (select [`EfRow::df`] by [`Df::aid`], READ
//!   BINARY by `0x80 | sfi`), finds an object with [`Layout::holding`], and rebuilds the
//!   signed bytes with [`Layout::signed_data`] over [`Layout::signed`].
//! - Text that names an EF (`DF1/EF02` in `tamper: files:` or a fault's `on: read DF1/EF02`)
//!   parses into an [`EfLabel`]; [`Layout::by_label`] resolves it to the row of this card.
//! - A privacy audit counts as needed the rows with [`EfRow::needed`].
//!
//! Adding a card type with a known protocol is adding a [`CardType`] variant and its
//! [`Layout`] (its rows, an arm of [`Layout::of`], an entry of [`LAYOUTS`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Generation;

/// Dedicated files of the card. The MF is current after reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Df {
    /// The master file, the root every card starts in.
    #[default]
    Mf,
    /// DF1: the card's front-side data (printed fields and images).
    Df1,
    /// DF2: the back-side data (address, permissions).
    Df2,
    /// DF3: the signature and the signer's certificate.
    Df3,
}

impl Df {
    /// Every DF, MF first.
    pub const ALL: [Df; 4] = [Df::Mf, Df::Df1, Df::Df2, Df::Df3];

    /// The DF's application identifier, selected with `00 A4 04 0C 10 …` (spec §2.1); the
    /// MF has none (it is selected by `3F 00` or an empty SELECT). This is the AID table.
    pub const fn aid(self) -> Option<[u8; 16]> {
        let n = match self {
            Df::Mf => return None,
            Df::Df1 => 0x02,
            Df::Df2 => 0x03,
            Df::Df3 => 0x04,
        };
        let mut a = [0u8; 16];
        a[0] = 0xD3;
        a[1] = 0x92;
        a[2] = 0xF0;
        a[4] = 0x4F;
        a[5] = n;
        Some(a)
    }

    /// The DF whose AID is exactly `aid`.
    pub fn from_aid(aid: &[u8]) -> Option<Df> {
        Df::ALL
            .into_iter()
            .find(|df| df.aid().is_some_and(|a| a[..] == *aid))
    }

    /// The name written in profiles, transcripts and reports: `MF`, `DF1`, `DF2`, `DF3`.
    pub const fn name(self) -> &'static str {
        match self {
            Df::Mf => "MF",
            Df::Df1 => "DF1",
            Df::Df2 => "DF2",
            Df::Df3 => "DF3",
        }
    }

    /// The DF written `name` (`MF`, `DF1`, …).
    pub fn from_name(name: &str) -> Option<Df> {
        Df::ALL.into_iter().find(|df| df.name() == name)
    }

    /// The AID of a DF that has one, for the compatibility constants.
    const fn aid_of(self) -> [u8; 16] {
        match self.aid() {
            Some(aid) => aid,
            None => [0; 16],
        }
    }
}

/// AID of DF1 (card-face data), from [`Df::aid`].
pub const AID_DF1: [u8; 16] = Df::Df1.aid_of();
/// AID of DF2 (back-side additions), from [`Df::aid`].
pub const AID_DF2: [u8; 16] = Df::Df2.aid_of();
/// AID of DF3 (check code and certificate), from [`Df::aid`].
pub const AID_DF3: [u8; 16] = Df::Df3.aid_of();

/// Residence card or special permanent resident certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardType {
    /// 在留カード, the residence card.
    ResidenceCard,
    /// 特別永住者証明書, the special permanent resident certificate.
    SpecialPermanentResidentCertificate,
    /// 特定在留カード (`C1` = `07`): a residence card on the My Number card platform, its
    /// data in the 在留AP with generation 2's rows (spec notes `my-number-platform.md` A1).
    SpecifiedResidenceCard,
    /// 特定特別永住者証明書 (`C1` = `08`): the special permanent resident certificate on the
    /// My Number card platform, generation 2's rows without DF2/EF01–EF02 (A1).
    SpecifiedSpecialPermanentResidentCertificate,
}

impl CardType {
    /// The `C1` value: `1`/`2` in generation 1, `05`/`06` in generation 2.
    pub fn code(self, generation: Generation) -> &'static str {
        Layout::of(generation, self).code
    }

    /// The generation and card type whose `C1` value is `code` (the inverse of
    /// [`CardType::code`]); `None` for any other value.
    pub fn from_code(code: &[u8]) -> Option<(Generation, CardType)> {
        LAYOUTS
            .iter()
            .chain(SPECIFIED_LAYOUTS.iter())
            .find(|l| l.code.as_bytes() == code)
            .map(|l| (l.generation, l.card_type))
    }

    /// True for the types of the specified card (`07`, `08`): they live on the My Number
    /// platform, only a `card.kind: specified_residence` profile has them.
    pub fn is_specified(self) -> bool {
        matches!(
            self,
            CardType::SpecifiedResidenceCard
                | CardType::SpecifiedSpecialPermanentResidentCertificate
        )
    }
}

/// An EF's address on the card: its DF and short EF identifier (READ BINARY P1 =
/// `80 | sfi`). Unique within a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EfId {
    /// The DF the EF lives in: SFIs are only unique within one DF.
    pub df: Df,
    /// The short file identifier READ BINARY addresses it by.
    pub sfi: u8,
}

impl EfId {
    /// The EF `sfi` of `df`.
    pub const fn new(df: Df, sfi: u8) -> EfId {
        EfId { df, sfi }
    }
}

/// How transcripts, reports and profiles name an EF: its DF and its number in the
/// specification's list (`DF1/EF02`). Not the SFI: `DF1/EF02` is SFI 06 in generation 1
/// and SFI 03 in generation 2, so a label resolves through a [`Layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EfLabel {
    /// The DF the labelled EF lives in.
    pub df: Df,
    /// The `nn` of `EFnn`.
    pub number: u8,
}

impl FromStr for EfLabel {
    type Err = ();
    /// Exactly `MF|DF1|DF2|DF3` `/EF` and two digits.
    fn from_str(text: &str) -> Result<EfLabel, ()> {
        let (df, ef) = text.split_once('/').ok_or(())?;
        let digits = ef.strip_prefix("EF").ok_or(())?;
        if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        Ok(EfLabel {
            df: Df::from_name(df).ok_or(())?,
            number: digits.parse().map_err(|_| ())?,
        })
    }
}

impl fmt::Display for EfLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/EF{:02}", self.df.name(), self.number)
    }
}

/// What a data object holds (the profile compiler knows where each comes from; a reader
/// knows how to show it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Element {
    /// `C0` specification version of the common data.
    SpecVersion,
    /// `C1` card type code ([`CardType::code`]).
    CardTypeCode,
    /// `C2` card number.
    CardNumber,
    /// Generation 1 `D0` front-face image.
    FrontImage,
    /// `D1` face photo.
    FaceImage,
    /// Generation 2 `D0` name image.
    NameImage,
    /// Generation 2 `DF D1` address image.
    AddressImage,
    /// Generation 1 `D2` date the address was written.
    AddressDate,
    /// Generation 1 `D3` local-government code.
    MunicipalityCode,
    /// Generation 1 `D4` address text.
    AddressText,
    /// Generation 1 `D5` comprehensive permission text.
    ComprehensivePermissionText,
    /// Generation 1 `D6` individual permission text.
    IndividualPermissionText,
    /// Generation 1 `D7` extension/change application flag.
    RenewalApplication,
    /// Generation 2 `C5` card expiry.
    CardExpiry,
    /// Generation 2 `C6` birth date.
    BirthDate,
    /// Generation 2 `C7` sex.
    Sex,
    /// Generation 2 `C8` nationality/region.
    Nationality,
    /// Generation 2 `C9` status of residence.
    StatusOfResidence,
    /// Generation 2 `CE` period of stay.
    PeriodOfStay,
    /// Generation 2 `CA` permission type.
    PermissionType,
    /// Generation 2 `CB` permission date.
    PermissionDate,
    /// Generation 2 `CC` work restriction.
    WorkRestriction,
    /// Generation 2 `CD` period-of-stay expiry.
    PeriodOfStayExpiry,
    /// Generation 2 `D5` comprehensive permission code.
    ComprehensivePermission,
    /// Generation 2 `D6` comprehensive permission expiry.
    ComprehensivePermissionExpiry,
    /// Generation 2 `D7` individual permission flag.
    IndividualPermission,
    /// Generation 2 `D8` application pending flag.
    ApplicationPending,
    /// Generation 2 `D9` ISA Commissioner entry flag.
    CommissionerEntry,
    /// Generation 2 `DE` reserved text.
    ReservedText,
    /// `DA` (generation 1) / `DC` (generation 2) check code.
    CheckCode,
    /// `DB` (generation 1) / `DD` (generation 2) certificate of the signer.
    Certificate,
}

/// One data object of an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataObject {
    /// The BER-TLV tag the element is stored under.
    pub tag: u16,
    /// Which card field the object holds.
    pub element: Element,
    /// Fixed value area: the value is zero-padded to it inside the TLV.
    pub area: Option<usize>,
    /// The length is always written `82 xx xx` (three bytes), even when shorter would do.
    pub long_length: bool,
}

const fn object(tag: u16, element: Element) -> DataObject {
    DataObject {
        tag,
        element,
        area: None,
        long_length: false,
    }
}

const fn padded(tag: u16, element: Element, area: usize) -> DataObject {
    DataObject {
        tag,
        element,
        area: Some(area),
        long_length: false,
    }
}

/// Access condition of an EF (spec §2.2/§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Readable at any time (MF common data and card type).
    Free,
    /// Readable after MUTUAL AUTHENTICATE and VERIFY, plain or SM.
    Auth,
    /// Readable after MUTUAL AUTHENTICATE and VERIFY, with secure messaging only.
    AuthSm,
}

/// One EF of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EfRow {
    /// Where the EF is: DF and SFI.
    pub id: EfId,
    /// File identifier for SELECT by FID, where one is defined (none is public).
    pub fid: Option<u16>,
    /// Name used in transcripts and reports: label, space, what it holds
    /// (`DF1/EF02 face image`).
    pub name: &'static str,
    /// The data objects in storage order.
    pub objects: &'static [DataObject],
    /// Fixed EF size: the content is zero-filled to it.
    pub size: Option<usize>,
    /// Who may read it (free, after authentication, after VERIFY).
    pub access: Access,
    /// A verdict needs it: card type, format version, signed fields, check code. A
    /// checker that reads any other EF reads personal data it did not need.
    pub needed: bool,
}

impl EfRow {
    /// The DF the EF is under.
    pub fn df(&self) -> Df {
        self.id.df
    }

    /// The label part of the name (`DF1/EF02`).
    pub fn label_text(&self) -> &'static str {
        self.name
            .split_once(' ')
            .map_or(self.name, |(label, _)| label)
    }

    /// The label of the name, parsed.
    pub fn label(&self) -> EfLabel {
        // Every row's name starts with a valid label (tested below).
        self.label_text().parse().unwrap_or(EfLabel {
            df: self.id.df,
            number: 0,
        })
    }

    /// True when `text` names this EF as profiles always could: the whole name, or a prefix
    /// of it that ends where a word ends (`DF1/EF02`, `DF1/EF02 face image`).
    pub fn is_named(&self, text: &str) -> bool {
        self.name
            .strip_prefix(text)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    }

    /// The object with `tag`.
    pub fn object(&self, tag: u16) -> Option<&'static DataObject> {
        self.objects.iter().find(|o| o.tag == tag)
    }

    /// The object holding `element`.
    pub fn object_holding(&self, element: Element) -> Option<&'static DataObject> {
        self.objects.iter().find(|o| o.element == element)
    }
}

/// Where a piece of the signed bytes comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedSource {
    /// The value of the object with this tag (empty when the object is absent).
    Object(u16),
    /// The values of all the EF's objects, concatenated in storage order.
    AllValues,
}

/// One piece of what the check code signs: a value zero-padded to `area`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPart {
    /// The EF the signed bytes come from.
    pub ef: EfId,
    /// Which part of that EF is signed (whole content or one data object).
    pub source: SignedSource,
    /// Fixed size of the signed area, the hash input is padded or cut to it.
    pub area: usize,
}

/// The check code's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckCodeScheme {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048 (generation 1).
    RsaPkcs1Sha256,
    /// ECDSA P-384 over SHA-256 (generation 2).
    EcdsaP384Sha256,
}

/// Everything one generation × card type stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The chip generation these rows belong to.
    pub generation: Generation,
    /// The card type these rows belong to.
    pub card_type: CardType,
    /// The `C1` value.
    pub code: &'static str,
    /// The EFs in storage order (the check-code EF last).
    pub files: &'static [EfRow],
    /// What the check code signs, in signing order (which differs from storage order in
    /// generation 2).
    pub signed: &'static [SignedPart],
    /// How the check code over the signed parts is computed.
    pub scheme: CheckCodeScheme,
}

impl Layout {
    /// The layout of a generation and card type.
    pub fn of(generation: Generation, card_type: CardType) -> &'static Layout {
        match (generation, card_type) {
            (Generation::First, CardType::ResidenceCard) => &GEN1_RESIDENCE_CARD,
            (Generation::First, CardType::SpecialPermanentResidentCertificate) => &GEN1_SPECIAL,
            (Generation::Second, CardType::ResidenceCard) => &GEN2_RESIDENCE_CARD,
            (Generation::Second, CardType::SpecialPermanentResidentCertificate) => &GEN2_SPECIAL,
            // The specified card exists in generation 2's format only (A1); a first-generation
            // profile of these types is refused by the compiler before it asks.
            (_, CardType::SpecifiedResidenceCard) => &GEN2_SPECIFIED_RESIDENCE_CARD,
            (_, CardType::SpecifiedSpecialPermanentResidentCertificate) => &GEN2_SPECIFIED_SPECIAL,
        }
    }

    /// The row of the EF at `id`.
    pub fn row(&self, id: EfId) -> Option<&'static EfRow> {
        self.files.iter().find(|r| r.id == id)
    }

    /// The row the label names.
    pub fn by_label(&self, label: EfLabel) -> Option<&'static EfRow> {
        self.files.iter().find(|r| r.label() == label)
    }

    /// The row `text` names (see [`EfRow::is_named`]).
    pub fn by_name(&self, text: &str) -> Option<&'static EfRow> {
        self.files.iter().find(|r| r.is_named(text))
    }

    /// Parses `DF1/EF02`-style text to the EF it names on this card.
    pub fn parse_ef(&self, text: &str) -> Option<EfId> {
        self.by_label(text.parse().ok()?).map(|r| r.id)
    }

    /// The label of the EF at `id` (`DF1/EF02`), the inverse of [`Layout::parse_ef`].
    pub fn label(&self, id: EfId) -> Option<EfLabel> {
        self.row(id).map(EfRow::label)
    }

    /// The row and object with `tag` (the first row holding it).
    pub fn holding(&self, tag: u16) -> Option<(&'static EfRow, &'static DataObject)> {
        self.files
            .iter()
            .find_map(|r| r.object(tag).map(|o| (r, o)))
    }

    /// The row and object holding `element`.
    pub fn holding_element(
        &self,
        element: Element,
    ) -> Option<(&'static EfRow, &'static DataObject)> {
        self.files
            .iter()
            .find_map(|r| r.object_holding(element).map(|o| (r, o)))
    }

    /// The EFs a verdict needs.
    pub fn needed(&self) -> impl Iterator<Item = &'static EfRow> + use<> {
        self.files.iter().filter(|r| r.needed)
    }

    /// The signed bytes, given each part's value in [`Layout::signed`] order: every value
    /// zero-padded to its part's area (a longer value is kept whole).
    pub fn signed_data(&self, values: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.signed.iter().map(|p| p.area).sum());
        for (part, value) in self.signed.iter().zip(values) {
            super::signature::push_padded(&mut out, value, part.area);
        }
        out
    }
}

/// Generation 1 `D0` (front image) value area.
pub const GEN1_FRONT_AREA: usize = 7_000;
/// `D1` (face image) value area, both generations.
pub const FACE_AREA: usize = 3_000;
/// Generation 2 `D0` (name image) value area.
pub const GEN2_NAME_AREA: usize = 2_500;
/// Generation 2 `DF D1` (address image) value area.
pub const GEN2_ADDRESS_AREA: usize = 2_500;
/// Generation 2 printed-entry values (`C5`…`CD`), 53 bytes for a residence card.
pub const GEN2_PRINTED_AREA: usize = 53;
/// Generation 1 `DB` value area (certificate zero-padded inside).
pub const GEN1_CERTIFICATE_AREA: usize = 1_200;
/// Generation 2 DF3/EF01 size: `DC` + `DD` + zero fill.
pub const GEN2_DF3_SIZE: usize = 704;
/// Generation 1 `D4` address text area (spec §2.2).
pub const GEN1_ADDRESS_AREA: usize = 320;
/// Generation 1 `D5`/`D6` permission text areas (spec §2.2).
pub const GEN1_PERMISSION_AREA: usize = 120;
/// Generation 2 `DE` reserved-text area.
pub const GEN2_RESERVED_AREA: usize = 200;
/// Generation 2 `C9` status of residence: up to ten ASCII characters, zero-padded.
pub const GEN2_STATUS_AREA: usize = 10;
/// Generation 2 `D5` comprehensive permission area.
pub const GEN2_COMPREHENSIVE_AREA: usize = 7;
/// Generation 2 `D6` comprehensive permission expiry area (a date or zeros).
pub const GEN2_COMPREHENSIVE_EXPIRY_AREA: usize = 8;

use Element as E;

/// MF/EF01 common data (`C0`), the same in every layout: a reader reads it before it
/// knows the card type.
pub const MF_COMMON: EfRow = EfRow {
    id: EfId::new(Df::Mf, 0x0B),
    fid: None,
    name: "MF/EF01 common data",
    objects: &[object(0xC0, E::SpecVersion)],
    size: None,
    access: Access::Free,
    needed: true,
};

/// MF/EF02 card type (`C1`), the same in every layout: what a reader reads first to find
/// the card's [`Layout`] ([`CardType::from_code`]).
pub const MF_CARD_TYPE: EfRow = EfRow {
    id: EfId::new(Df::Mf, 0x0A),
    fid: None,
    name: "MF/EF02 card type",
    objects: &[object(0xC1, E::CardTypeCode)],
    size: None,
    access: Access::Free,
    needed: true,
};

/// A DF1 row (SM only).
const fn df1(sfi: u8, name: &'static str, objects: &'static [DataObject], needed: bool) -> EfRow {
    EfRow {
        id: EfId::new(Df::Df1, sfi),
        fid: None,
        name,
        objects,
        size: None,
        access: Access::AuthSm,
        needed,
    }
}

/// A DF2 row (plain or SM, never needed).
const fn df2(sfi: u8, name: &'static str, objects: &'static [DataObject]) -> EfRow {
    EfRow {
        id: EfId::new(Df::Df2, sfi),
        fid: None,
        name,
        objects,
        size: None,
        access: Access::Auth,
        needed: false,
    }
}

const G1_FRONT: EfRow = df1(
    0x05,
    "DF1/EF01 front image",
    &[padded(0xD0, E::FrontImage, GEN1_FRONT_AREA)],
    true,
);
const G1_FACE: EfRow = df1(
    0x06,
    "DF1/EF02 face image",
    &[padded(0xD1, E::FaceImage, FACE_AREA)],
    true,
);
const G1_ADDRESS: EfRow = df2(
    0x01,
    "DF2/EF01 address",
    &[
        object(0xD2, E::AddressDate),
        object(0xD3, E::MunicipalityCode),
        padded(0xD4, E::AddressText, GEN1_ADDRESS_AREA),
    ],
);
const G1_COMPREHENSIVE: EfRow = df2(
    0x02,
    "DF2/EF02 comprehensive permission",
    &[padded(
        0xD5,
        E::ComprehensivePermissionText,
        GEN1_PERMISSION_AREA,
    )],
);
const G1_INDIVIDUAL: EfRow = df2(
    0x03,
    "DF2/EF03 individual permission",
    &[padded(
        0xD6,
        E::IndividualPermissionText,
        GEN1_PERMISSION_AREA,
    )],
);
const G1_RENEWAL: EfRow = df2(
    0x04,
    "DF2/EF04 renewal application",
    &[object(0xD7, E::RenewalApplication)],
);
const G1_CHECK_CODE: EfRow = EfRow {
    id: EfId::new(Df::Df3, 0x02),
    fid: None,
    name: "DF3/EF01 check code and certificate",
    objects: &[
        object(0xDA, E::CheckCode),
        padded(0xDB, E::Certificate, GEN1_CERTIFICATE_AREA),
    ],
    size: None,
    access: Access::Auth,
    needed: true,
};
/// Generation 1: `D0` ‖ `D1`.
const G1_SIGNED: &[SignedPart] = &[
    SignedPart {
        ef: G1_FRONT.id,
        source: SignedSource::Object(0xD0),
        area: GEN1_FRONT_AREA,
    },
    SignedPart {
        ef: G1_FACE.id,
        source: SignedSource::Object(0xD1),
        area: FACE_AREA,
    },
];

const G2_NUMBER: EfRow = df1(
    0x01,
    "DF1/EF01 card number",
    &[object(0xC2, E::CardNumber)],
    false,
);
const G2_PRINTED_NAME: &str = "DF1/EF02 printed entries";
const G2_PRINTED_COMMON: [DataObject; 6] = [
    object(0xC5, E::CardExpiry),
    object(0xC6, E::BirthDate),
    object(0xC7, E::Sex),
    object(0xC8, E::Nationality),
    padded(0xC9, E::StatusOfResidence, GEN2_STATUS_AREA),
    object(0xCE, E::PeriodOfStay),
];
const G2_PRINTED_RESIDENCE: EfRow = df1(
    0x03,
    G2_PRINTED_NAME,
    &[
        G2_PRINTED_COMMON[0],
        G2_PRINTED_COMMON[1],
        G2_PRINTED_COMMON[2],
        G2_PRINTED_COMMON[3],
        G2_PRINTED_COMMON[4],
        G2_PRINTED_COMMON[5],
        object(0xCA, E::PermissionType),
        object(0xCB, E::PermissionDate),
        object(0xCC, E::WorkRestriction),
        object(0xCD, E::PeriodOfStayExpiry),
    ],
    true,
);
const G2_PRINTED_SPECIAL: EfRow = df1(0x03, G2_PRINTED_NAME, &G2_PRINTED_COMMON, true);
const G2_IMAGES: EfRow = df1(
    0x04,
    "DF1/EF03 name and face images",
    &[
        padded(0xD0, E::NameImage, GEN2_NAME_AREA),
        padded(0xD1, E::FaceImage, FACE_AREA),
    ],
    true,
);
const G2_ADDRESS_IMAGE: EfRow = df1(
    0x06,
    "DF1/EF04 address image",
    &[padded(0xDFD1, E::AddressImage, GEN2_ADDRESS_AREA)],
    false,
);
const G2_WORK_PERMISSION: EfRow = df2(
    0x01,
    "DF2/EF01 work permission",
    &[
        padded(0xD5, E::ComprehensivePermission, GEN2_COMPREHENSIVE_AREA),
        padded(
            0xD6,
            E::ComprehensivePermissionExpiry,
            GEN2_COMPREHENSIVE_EXPIRY_AREA,
        ),
        object(0xD7, E::IndividualPermission),
    ],
);
const G2_APPLICATION: EfRow = df2(
    0x02,
    "DF2/EF02 application status",
    &[object(0xD8, E::ApplicationPending)],
);
const G2_OTHER: EfRow = df2(
    0x03,
    "DF2/EF03 other",
    &[
        object(0xD9, E::CommissionerEntry),
        // `DE 82 00 C8`: the non-minimal length that makes the EF the specified 207 bytes.
        DataObject {
            tag: 0xDE,
            element: E::ReservedText,
            area: Some(GEN2_RESERVED_AREA),
            long_length: true,
        },
    ],
);
const G2_CHECK_CODE: EfRow = EfRow {
    id: EfId::new(Df::Df3, 0x02),
    fid: None,
    name: "DF3/EF01 check code and certificate",
    objects: &[
        object(0xDC, E::CheckCode),
        // `DD 82 xx xx` even for a short certificate, as on real cards.
        DataObject {
            tag: 0xDD,
            element: E::Certificate,
            area: None,
            long_length: true,
        },
    ],
    size: Some(GEN2_DF3_SIZE),
    access: Access::Auth,
    needed: true,
};
/// Generation 2: printed values ‖ `D1` face ‖ `D0` name (not the storage order).
const G2_SIGNED: &[SignedPart] = &[
    SignedPart {
        ef: G2_PRINTED_RESIDENCE.id,
        source: SignedSource::AllValues,
        area: GEN2_PRINTED_AREA,
    },
    SignedPart {
        ef: G2_IMAGES.id,
        source: SignedSource::Object(0xD1),
        area: FACE_AREA,
    },
    SignedPart {
        ef: G2_IMAGES.id,
        source: SignedSource::Object(0xD0),
        area: GEN2_NAME_AREA,
    },
];

/// Generation 1 residence card (`C1` = `1`).
pub const GEN1_RESIDENCE_CARD: Layout = Layout {
    generation: Generation::First,
    card_type: CardType::ResidenceCard,
    code: "1",
    files: &[
        MF_COMMON,
        MF_CARD_TYPE,
        G1_FRONT,
        G1_FACE,
        G1_ADDRESS,
        G1_COMPREHENSIVE,
        G1_INDIVIDUAL,
        G1_RENEWAL,
        G1_CHECK_CODE,
    ],
    signed: G1_SIGNED,
    scheme: CheckCodeScheme::RsaPkcs1Sha256,
};

/// Generation 1 special permanent resident certificate (`C1` = `2`).
pub const GEN1_SPECIAL: Layout = Layout {
    generation: Generation::First,
    card_type: CardType::SpecialPermanentResidentCertificate,
    code: "2",
    files: &[
        MF_COMMON,
        MF_CARD_TYPE,
        G1_FRONT,
        G1_FACE,
        G1_ADDRESS,
        G1_CHECK_CODE,
    ],
    signed: G1_SIGNED,
    scheme: CheckCodeScheme::RsaPkcs1Sha256,
};

/// Generation 2 residence card (`C1` = `05`).
pub const GEN2_RESIDENCE_CARD: Layout = Layout {
    generation: Generation::Second,
    card_type: CardType::ResidenceCard,
    code: "05",
    files: &[
        MF_COMMON,
        MF_CARD_TYPE,
        G2_NUMBER,
        G2_PRINTED_RESIDENCE,
        G2_IMAGES,
        G2_ADDRESS_IMAGE,
        G2_WORK_PERMISSION,
        G2_APPLICATION,
        G2_OTHER,
        G2_CHECK_CODE,
    ],
    signed: G2_SIGNED,
    scheme: CheckCodeScheme::EcdsaP384Sha256,
};

/// Generation 2 special permanent resident certificate (`C1` = `06`).
pub const GEN2_SPECIAL: Layout = Layout {
    generation: Generation::Second,
    card_type: CardType::SpecialPermanentResidentCertificate,
    code: "06",
    files: &[
        MF_COMMON,
        MF_CARD_TYPE,
        G2_NUMBER,
        G2_PRINTED_SPECIAL,
        G2_IMAGES,
        G2_ADDRESS_IMAGE,
        G2_OTHER,
        G2_CHECK_CODE,
    ],
    signed: G2_SIGNED,
    scheme: CheckCodeScheme::EcdsaP384Sha256,
};

/// The specified residence card (`C1` = `07`): generation 2's residence-card rows with
/// DF2/EF01 and EF02 (A1, \[C\]: LJ parses both with one class). Its "MF" rows (`C0`, `C1`)
/// live directly under the 在留AP, not at the card's MF (A2).
pub const GEN2_SPECIFIED_RESIDENCE_CARD: Layout = Layout {
    generation: Generation::Second,
    card_type: CardType::SpecifiedResidenceCard,
    code: "07",
    files: GEN2_RESIDENCE_CARD.files,
    signed: G2_SIGNED,
    scheme: CheckCodeScheme::EcdsaP384Sha256,
};

/// The specified special permanent resident certificate (`C1` = `08`): generation 2's
/// special-certificate rows, without DF2/EF01–EF02 (A1).
pub const GEN2_SPECIFIED_SPECIAL: Layout = Layout {
    generation: Generation::Second,
    card_type: CardType::SpecifiedSpecialPermanentResidentCertificate,
    code: "08",
    files: GEN2_SPECIAL.files,
    signed: G2_SIGNED,
    scheme: CheckCodeScheme::EcdsaP384Sha256,
};

/// The specified card's layouts (kept out of [`LAYOUTS`], which lists the residence
/// engine's cards; [`CardType::from_code`] knows both).
pub const SPECIFIED_LAYOUTS: [&Layout; 2] =
    [&GEN2_SPECIFIED_RESIDENCE_CARD, &GEN2_SPECIFIED_SPECIAL];

/// Every layout: generation × card type.
pub const LAYOUTS: [&Layout; 4] = [
    &GEN1_RESIDENCE_CARD,
    &GEN1_SPECIAL,
    &GEN2_RESIDENCE_CARD,
    &GEN2_SPECIAL,
];

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: [CardType; 2] = [
        CardType::ResidenceCard,
        CardType::SpecialPermanentResidentCertificate,
    ];
    const GENERATIONS: [Generation; 2] = [Generation::First, Generation::Second];

    #[test]
    fn the_specified_layouts_are_generation_2s_with_codes_07_and_08() {
        let l07 = Layout::of(Generation::Second, CardType::SpecifiedResidenceCard);
        let l08 = Layout::of(
            Generation::Second,
            CardType::SpecifiedSpecialPermanentResidentCertificate,
        );
        assert_eq!((l07.code, l08.code), ("07", "08"));
        assert_eq!(l07.files, GEN2_RESIDENCE_CARD.files);
        assert_eq!(l08.files, GEN2_SPECIAL.files);
        assert!(l07.row(EfId::new(Df::Df2, 0x01)).is_some());
        assert!(l07.row(EfId::new(Df::Df2, 0x02)).is_some());
        assert!(l08.row(EfId::new(Df::Df2, 0x01)).is_none());
        assert!(l08.row(EfId::new(Df::Df2, 0x02)).is_none());
        assert_eq!(
            CardType::from_code(b"07"),
            Some((Generation::Second, CardType::SpecifiedResidenceCard))
        );
        assert_eq!(
            CardType::from_code(b"08"),
            Some((
                Generation::Second,
                CardType::SpecifiedSpecialPermanentResidentCertificate
            ))
        );
        assert!(CardType::SpecifiedResidenceCard.is_specified());
        assert!(!CardType::ResidenceCard.is_specified());
    }

    #[test]
    fn every_generation_and_card_type_has_exactly_one_layout() {
        for generation in GENERATIONS {
            for card_type in TYPES {
                let found = LAYOUTS
                    .iter()
                    .filter(|l| l.generation == generation && l.card_type == card_type)
                    .count();
                assert_eq!(found, 1, "{generation:?} {card_type:?}");
                let layout = Layout::of(generation, card_type);
                assert_eq!(
                    (layout.generation, layout.card_type),
                    (generation, card_type)
                );
            }
        }
    }

    #[test]
    fn from_code_inverts_code() {
        for generation in GENERATIONS {
            for card_type in TYPES {
                let code = card_type.code(generation);
                assert_eq!(
                    CardType::from_code(code.as_bytes()),
                    Some((generation, card_type))
                );
            }
        }
        assert_eq!(
            [
                CardType::ResidenceCard.code(Generation::First),
                "2",
                "05",
                "06"
            ],
            ["1", "2", "05", "06"]
        );
        for other in [&b""[..], b"3", b"01", b"5", b"1 ", b"005"] {
            assert_eq!(CardType::from_code(other), None, "{other:?}");
        }
    }

    #[test]
    fn from_aid_inverts_aid_and_the_constants_come_from_it() {
        for df in Df::ALL {
            match df.aid() {
                Some(aid) => assert_eq!(Df::from_aid(&aid), Some(df)),
                None => assert_eq!(df, Df::Mf),
            }
            assert_eq!(Df::from_name(df.name()), Some(df));
        }
        assert_eq!(Df::Df1.aid(), Some(AID_DF1));
        assert_eq!(Df::Df2.aid(), Some(AID_DF2));
        assert_eq!(Df::Df3.aid(), Some(AID_DF3));
        assert_eq!(
            hex::encode_upper(AID_DF1),
            "D392F0004F0200000000000000000000"
        );
        assert_eq!(Df::from_aid(&AID_DF1[..15]), None);
        assert_eq!(Df::from_aid(&[0; 16]), None);
        assert_eq!(Df::from_aid(&[]), None);
    }

    #[test]
    fn rows_are_consistent_within_each_layout() {
        for layout in LAYOUTS {
            let what = format!("{:?} {:?}", layout.generation, layout.card_type);
            for (i, row) in layout.files.iter().enumerate() {
                // The name starts with a well-formed label of the row's DF.
                let label: EfLabel = row.label_text().parse().expect(row.name);
                assert_eq!(label.df, row.id.df, "{what} {}", row.name);
                assert_eq!(label.to_string(), row.label_text());
                assert!(row.name.len() > row.label_text().len() + 1, "{}", row.name);
                // An SFI fits READ BINARY's five bits and is not 0.
                assert!((1..=0x1E).contains(&row.id.sfi), "{}", row.name);
                // Ids, labels and names are unique on a card.
                for other in &layout.files[i + 1..] {
                    assert_ne!(row.id, other.id, "{what}");
                    assert_ne!(row.label(), other.label(), "{what}");
                }
                assert_eq!(layout.row(row.id), Some(row));
                assert_eq!(layout.by_label(row.label()), Some(row));
                assert_eq!(layout.by_name(row.name), Some(row));
                assert_eq!(layout.by_name(row.label_text()), Some(row));
                assert_eq!(layout.parse_ef(row.label_text()), Some(row.id));
                assert_eq!(layout.label(row.id), Some(row.label()));
                assert_eq!(row.access == Access::Free, row.id.df == Df::Mf);
            }
            // The check code and certificate sit in the last EF, after everything they
            // sign; every signed part names an EF of this layout and an object it holds.
            let last = layout.files.last().expect("files");
            assert!(last.object_holding(Element::CheckCode).is_some(), "{what}");
            assert!(
                last.object_holding(Element::Certificate).is_some(),
                "{what}"
            );
            for part in layout.signed {
                let row = layout.row(part.ef).expect("signed EF");
                assert!(row.needed, "{what}: {} is signed", row.name);
                if let SignedSource::Object(tag) = part.source {
                    assert_eq!(row.object(tag).and_then(|o| o.area), Some(part.area));
                }
            }
            assert_eq!(layout.code, layout.card_type.code(layout.generation));
        }
    }

    #[test]
    fn labels_parse_and_display_round_trip() {
        for text in ["MF/EF01", "DF1/EF02", "DF2/EF04", "DF3/EF01", "DF1/EF99"] {
            let label: EfLabel = text.parse().unwrap();
            assert_eq!(label.to_string(), text);
        }
        for bad in [
            "",
            "DF1",
            "DF1/",
            "DF1/EF2",
            "DF1/EF002",
            "DF4/EF01",
            "df1/EF01",
            "DF1/ef01",
            "DF1/EF0x",
            "DF1/EF+1",
            " DF1/EF01",
            "DF1/EF01 ",
            "DF1/FACE",
        ] {
            assert!(bad.parse::<EfLabel>().is_err(), "{bad:?}");
        }
        // The same label is another EF in each generation.
        let g1 = Layout::of(Generation::First, CardType::ResidenceCard);
        let g2 = Layout::of(Generation::Second, CardType::ResidenceCard);
        assert_eq!(g1.parse_ef("DF1/EF02"), Some(EfId::new(Df::Df1, 0x06)));
        assert_eq!(g2.parse_ef("DF1/EF02"), Some(EfId::new(Df::Df1, 0x03)));
        let sprc = Layout::of(
            Generation::Second,
            CardType::SpecialPermanentResidentCertificate,
        );
        assert_eq!(sprc.parse_ef("DF2/EF01"), None);
        assert_eq!(
            g1.by_name("DF1/EF02 face"),
            g1.row(EfId::new(Df::Df1, 0x06))
        );
        assert_eq!(g1.by_name("DF1/EF02 fa"), None);
        assert_eq!(g1.by_name("DF1/EF0"), None);
        assert_eq!(g1.by_name(""), None);
    }

    #[test]
    fn signed_data_matches_the_signature_module() {
        let g1 = Layout::of(Generation::First, CardType::ResidenceCard);
        let g2 = Layout::of(Generation::Second, CardType::ResidenceCard);
        let (a, b, c) = (&[1u8; 17][..], &[2u8; 3001][..], &b"xyz"[..]);
        assert_eq!(
            g1.signed_data(&[a, b]),
            super::super::signature::gen1_signed_data(a, b)
        );
        assert_eq!(
            g2.signed_data(&[c, b, a]),
            super::super::signature::gen2_signed_data(c, b, a)
        );
    }

    #[test]
    fn the_audit_needs_what_it_always_needed() {
        let needed = |g, t| -> Vec<(Df, u8)> {
            Layout::of(g, t)
                .needed()
                .map(|r| (r.id.df, r.id.sfi))
                .collect()
        };
        for t in TYPES {
            assert_eq!(
                needed(Generation::First, t),
                [
                    (Df::Mf, 0x0B),
                    (Df::Mf, 0x0A),
                    (Df::Df1, 0x05),
                    (Df::Df1, 0x06),
                    (Df::Df3, 0x02)
                ]
            );
            assert_eq!(
                needed(Generation::Second, t),
                [
                    (Df::Mf, 0x0B),
                    (Df::Mf, 0x0A),
                    (Df::Df1, 0x03),
                    (Df::Df1, 0x04),
                    (Df::Df3, 0x02)
                ]
            );
        }
    }
}
