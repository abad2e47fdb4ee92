//! From a merged profile document to a [`CardImage`]: every EF built from its row of the
//! layout table ([`Layout`], spec §2.2, §2.3, §6) with the values the profile gives, and
//! the check code made with the profile's TEST signer over what the table says is signed
//! (spec §7).

use std::path::Path;

use encoding_rs::SHIFT_JIS;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};

use super::load::{Locator, ProfileError};
use super::schema::*;
use crate::card::{CardImage, ElementaryFile, ImageLayout, Knobs, TlvLengths};
use crate::protocol::Generation;
use crate::protocol::layout::{
    CheckCodeScheme, DataObject, Df, EfId, EfRow, Element, Layout, SignedPart, SignedSource,
};
use crate::protocol::signature::push_padded;
use crate::protocol::tlv::{self, push_length, push_tag};

/// Largest EF a profile may compile to (also after `tamper.files` edits): every byte is
/// within reach of a READ BINARY offset (15 bits), and a whole-EF read fits one SM data
/// object and one extended response. Real cards' largest EF is about 7 KB.
pub const MAX_EF_SIZE: usize = 32_768;

/// The error of a field the compile needs that the profile chain does not set.
const REQUIRED: &str = "required, but neither this profile nor what it extends sets it";

/// The fields a compile needs, with the file to blame when one is missing and where each
/// field is written.
struct Ctx<'a> {
    file: &'a Path,
    locator: &'a Locator,
    doc: &'a ProfileDoc,
    layout: &'static Layout,
}

impl Ctx<'_> {
    fn require<'v, T>(&self, value: &'v Option<T>, field: &str) -> Result<&'v T, ProfileError> {
        value.as_ref().ok_or_else(|| self.error(field, REQUIRED))
    }

    /// An error located at the field (in whichever file of the chain writes it).
    fn error(&self, field: &str, message: impl Into<String>) -> ProfileError {
        self.locator.error(self.file, field, message)
    }

    fn read_file(
        &self,
        path: &Path,
        field: &str,
        max: Option<usize>,
    ) -> Result<Vec<u8>, ProfileError> {
        let bytes = super::load::read_limited(path)
            .map_err(|e| self.error(field, format!("cannot read {}: {e}", path.display())))?;
        match max {
            Some(max) if bytes.len() > max => Err(self.error(
                field,
                format!(
                    "{} is {} bytes, the chip field holds {max}",
                    path.display(),
                    bytes.len()
                ),
            )),
            _ => Ok(bytes),
        }
    }
}

/// Builds the chip image of a merged profile.
pub(crate) fn compile(
    doc: &ProfileDoc,
    file: &Path,
    locator: &Locator,
) -> Result<CardImage, ProfileError> {
    // Which layout the card has decides everything else.
    let required = |field: &str| locator.error(file, field, REQUIRED);
    let card = doc.card.as_ref().ok_or_else(|| required("card"))?;
    let generation = card.generation.ok_or_else(|| required("card.generation"))?;
    let card_type = card.card_type.ok_or_else(|| required("card.type"))?;
    let number = card
        .number
        .as_ref()
        .ok_or_else(|| required("card.number"))?;
    if doc.raw_files.is_none() {
        card.spec_version
            .as_ref()
            .ok_or_else(|| required("card.spec_version"))?;
    }
    let ctx = Ctx {
        file,
        locator,
        doc,
        layout: Layout::of(generation, card_type),
    };

    let files = match &doc.raw_files {
        Some(raw) => raw_files(&ctx, raw)?,
        None => {
            let mut built: Vec<BuiltEf> = Vec::with_capacity(ctx.layout.files.len());
            for row in ctx.layout.files {
                let ef = build_ef(&ctx, row, &built)?;
                built.push(ef);
            }
            built
                .into_iter()
                .map(|ef| ElementaryFile::from_row(ef.row, ef.content))
                .collect()
        }
    };
    if let Some(ef) = files.iter().find(|f| f.content.len() > MAX_EF_SIZE) {
        // Only a certificate stored at its exact length can grow an EF this far.
        return Err(ctx.error(
            "signature.certificate",
            format!(
                "{} would be {} bytes; an EF holds at most {MAX_EF_SIZE}",
                ef.name,
                ef.content.len()
            ),
        ));
    }
    let reader = doc
        .reader
        .as_ref()
        .map(|r| r.config(doc.seed.unwrap_or(0)))
        .transpose()
        .map_err(|(field, message)| ctx.error(field, message))?
        .unwrap_or_default();
    Ok(CardImage {
        reader,
        generation,
        layout: ctx.layout,
        chip_card_number: doc
            .chip_card_number
            .as_ref()
            .unwrap_or(number)
            .as_str()
            .to_owned(),
        files,
        knobs: doc.knobs.clone().unwrap_or_default(),
        seed: doc.seed.unwrap_or(0),
    })
}

/// `raw_files:` every EF of the layout from its file, as it is (a recorded card). Each key
/// must name an EF of this card, once; every EF must have a file; each file is at most
/// [`MAX_EF_SIZE`] bytes. Paths are relative to the profile of the chain that writes them.
fn raw_files(
    ctx: &Ctx,
    raw: &std::collections::BTreeMap<String, std::path::PathBuf>,
) -> Result<Vec<ElementaryFile>, ProfileError> {
    let field = |name: &str| format!("raw_files.{name}");
    let labels: Vec<&str> = ctx.layout.files.iter().map(EfRow::label_text).collect();
    for name in raw.keys() {
        if ctx.layout.by_name(name).is_none() {
            return Err(ctx.error(
                &field(name),
                format!(
                    "this card has no EF {name:?}; its EFs are {}",
                    labels.join(", ")
                ),
            ));
        }
    }
    ctx.layout
        .files
        .iter()
        .map(|row| {
            let mut named = raw.iter().filter(|(name, _)| row.is_named(name));
            let Some((name, path)) = named.next() else {
                return Err(ctx.error(
                    "raw_files",
                    format!(
                        "no file for {}: a recorded card gives every EF ({})",
                        row.label_text(),
                        labels.join(", ")
                    ),
                ));
            };
            if let Some((again, _)) = named.next() {
                return Err(ctx.error(
                    &field(again),
                    format!("{} has a file already (key {name:?})", row.label_text()),
                ));
            }
            // Relative to the file of the chain that writes this key.
            let base = ctx
                .locator
                .locate(&field(name))
                .map_or(ctx.file, |(file, _)| file);
            let path = super::load::relative_to(base, path);
            let bytes = ctx.read_file(&path, &field(name), Some(MAX_EF_SIZE))?;
            Ok(ElementaryFile::from_row(row, bytes))
        })
        .collect()
}

/// One EF as built: its row, its bytes and each data object's part of them (what the
/// check code covers is read from these).
struct BuiltEf {
    row: &'static EfRow,
    content: Vec<u8>,
    objects: Vec<BuiltObject>,
}

struct BuiltObject {
    tag: u16,
    /// The value as stored (padded to its area); `None` when the object is left out.
    value: Option<Vec<u8>>,
    /// The whole TLV as stored (empty when the object is left out).
    tlv: Vec<u8>,
}

/// What the profile puts in a data object.
enum Value {
    /// These bytes, zero-padded to the object's area.
    Bytes(Vec<u8>),
    /// The TLV with an empty value, not padded (a face image stored `D1 00`).
    EmptyTlv,
    /// No TLV at all (a face image left out).
    Absent,
}

/// The profile field an element comes from (where its errors are located).
fn field(element: Element) -> &'static str {
    match element {
        Element::SpecVersion => "card.spec_version",
        Element::CardTypeCode => "card.type",
        Element::CardNumber => "card.number",
        Element::FrontImage => "images.front",
        Element::FaceImage => "images.face",
        Element::NameImage => "images.name",
        Element::AddressImage => "images.address",
        Element::AddressDate => "address.date",
        Element::MunicipalityCode => "address.municipality_code",
        Element::AddressText => "address.text",
        Element::ComprehensivePermissionText => "back_side.comprehensive_permission",
        Element::IndividualPermissionText => "back_side.individual_permission",
        Element::RenewalApplication => "back_side.renewal_application",
        Element::CardExpiry => "printed.card_expiry",
        Element::BirthDate => "printed.birth_date",
        Element::Sex => "printed.sex",
        Element::Nationality => "printed.nationality",
        Element::StatusOfResidence => "printed.status_of_residence",
        Element::PeriodOfStay => "printed.period_of_stay",
        Element::PermissionType => "printed.permission_type",
        Element::PermissionDate => "printed.permission_date",
        Element::WorkRestriction => "printed.work_restriction",
        Element::PeriodOfStayExpiry => "printed.period_of_stay_expiry",
        Element::ComprehensivePermission => "work_permission.comprehensive",
        Element::ComprehensivePermissionExpiry => "work_permission.comprehensive_expiry",
        Element::IndividualPermission => "work_permission.individual",
        Element::ApplicationPending => "application_pending",
        Element::CommissionerEntry => "other.commissioner_entry",
        Element::ReservedText => "other.reserved_text",
        Element::CheckCode => "signature.key",
        Element::Certificate => "signature.certificate",
    }
}

/// Builds one EF from its row: each object in storage order, then the zero fill to the
/// EF's fixed size. `before` holds the EFs already built (all the check code signs).
fn build_ef(ctx: &Ctx, row: &'static EfRow, before: &[BuiltEf]) -> Result<BuiltEf, ProfileError> {
    let mut content = Vec::new();
    let mut objects = Vec::with_capacity(row.objects.len());
    let mut seal: Option<Seal> = None;
    // Bytes an exact-length image leaves free at the end of its EF (knobs.image_layout).
    let mut exact_fill = 0;
    for object in row.objects {
        let built = match object.element {
            Element::CheckCode | Element::Certificate => {
                let seal = match &mut seal {
                    Some(seal) => seal,
                    None => seal.insert(Seal::make(ctx, before)?),
                };
                if object.element == Element::CheckCode {
                    stored(ctx, object, seal.check_code.clone())?
                } else {
                    // The EF's end moves with the bytes long-form lengths added before.
                    let grown: usize = objects.iter().map(|o| ctx.long_form_growth(row, o)).sum();
                    let offset = content.len().saturating_sub(grown);
                    certificate_object(ctx, row, object, &seal.certificate, offset)?
                }
            }
            element => match value(ctx, object, element)? {
                Value::Bytes(bytes) if ctx.exact_image(element) => {
                    // The EF keeps the size of the full layout: zero fill after the TLV.
                    let area = object.area.unwrap_or(bytes.len());
                    exact_fill += area.saturating_sub(bytes.len());
                    exact_image(ctx, object, bytes)?
                }
                Value::Bytes(bytes) => stored(ctx, object, bytes)?,
                Value::EmptyTlv => BuiltObject {
                    tag: object.tag,
                    value: Some(Vec::new()),
                    tlv: ctx.tlv(field(element), object.tag, &[])?,
                },
                Value::Absent => BuiltObject {
                    tag: object.tag,
                    value: None,
                    tlv: Vec::new(),
                },
            },
        };
        let built = ctx.with_lengths_of_knob(row, built);
        content.extend_from_slice(&built.tlv);
        objects.push(built);
    }
    // Bytes `knobs.tlv_lengths: long_form` added to the layout's lengths: the EF grows by
    // them (its allocated size is the layout's plus these).
    let growth: usize = objects
        .iter()
        .map(|built| ctx.long_form_growth(row, built))
        .sum();
    let fill = ctx.knobs().trailing_fill.byte();
    if let Some(fill) = fill {
        content.resize(content.len() + exact_fill, fill);
    }
    if let Some(size) = row.size.map(|size| size + growth) {
        if content.len() > size {
            let what = row.name.split_once(' ').map_or(row.name, |(_, what)| what);
            let last = row.objects.last().map_or("signature", |o| field(o.element));
            return Err(ctx.error(
                last,
                format!(
                    "{what} take {} bytes, {} holds {size}",
                    content.len(),
                    row.label_text()
                ),
            ));
        }
        if let Some(fill) = fill {
            content.resize(size, fill);
        }
    }
    Ok(BuiltEf {
        row,
        content,
        objects,
    })
}

/// An object holding `bytes`, zero-padded to its area, with its length written as the row
/// says.
fn stored(ctx: &Ctx, object: &DataObject, bytes: Vec<u8>) -> Result<BuiltObject, ProfileError> {
    let mut value = Vec::with_capacity(object.area.unwrap_or(bytes.len()));
    push_padded(&mut value, &bytes, object.area.unwrap_or(0));
    let field = field(object.element);
    let tlv = if object.long_length {
        long_tlv(object.tag, &value).ok_or_else(|| {
            ctx.error(
                field,
                format!("{} bytes do not fit a three-byte length", value.len()),
            )
        })?
    } else {
        ctx.tlv(field, object.tag, &value)?
    };
    Ok(BuiltObject {
        tag: object.tag,
        value: Some(value),
        tlv,
    })
}

/// A generation-1 image at its exact length: `D0 82 <len> <image>` (spec §6.4; the length
/// is always three bytes, as in the full layout). The signed value is still padded to the
/// area, by the layout's signed parts (§7.1).
fn exact_image(
    ctx: &Ctx,
    object: &DataObject,
    bytes: Vec<u8>,
) -> Result<BuiltObject, ProfileError> {
    let tlv = long_tlv(object.tag, &bytes).ok_or_else(|| {
        ctx.error(
            field(object.element),
            format!("{} bytes do not fit a three-byte length", bytes.len()),
        )
    })?;
    Ok(BuiltObject {
        tag: object.tag,
        value: Some(bytes),
        tlv,
    })
}

/// A TLV whose length is always written `82 xx xx` (`None` past 65 535 bytes).
fn long_tlv(tag: u16, value: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(value.len()).ok()?;
    let mut out = Vec::with_capacity(value.len() + 5);
    push_tag(&mut out, tag);
    out.push(0x82);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(value);
    Some(out)
}

/// The certificate object: zero-padded inside its fixed area, or (without one) at its exact
/// length or padded to the end of the EF, as `signature.certificate_layout` says. Where the
/// object has an area (generation 1 `DB`) padding is the default, otherwise (generation 2
/// `DD`) the exact length is.
fn certificate_object(
    ctx: &Ctx,
    row: &EfRow,
    object: &DataObject,
    certificate: &[u8],
    offset: usize,
) -> Result<BuiltObject, ProfileError> {
    let field = field(object.element);
    let default = match object.area {
        Some(_) => CertificateLayout::Padded,
        None => CertificateLayout::Exact,
    };
    let layout = ctx
        .doc
        .signature
        .as_ref()
        .and_then(|s| s.certificate_layout)
        .unwrap_or(default);
    let area = match (layout, object.area) {
        (CertificateLayout::Exact, _) => 0,
        (CertificateLayout::Padded, Some(area)) => {
            if certificate.len() > area {
                return Err(ctx.error(
                    field,
                    format!(
                        "{} bytes do not fit the {area}-byte {:02X} area",
                        certificate.len(),
                        object.tag
                    ),
                ));
            }
            area
        }
        // The value runs to the end of the EF, after its tag and `82 xx xx`.
        (CertificateLayout::Padded, None) => {
            let tag_length = if object.tag > 0xFF { 2 } else { 1 };
            let header = tag_length + 3;
            row.size.unwrap_or(0).saturating_sub(offset + header)
        }
    };
    let mut value = Vec::with_capacity(area.max(certificate.len()));
    push_padded(&mut value, certificate, area);
    let tlv = if object.long_length {
        long_tlv(object.tag, &value).ok_or_else(|| {
            ctx.error(
                field,
                format!(
                    "{} bytes do not fit {} ({} bytes)",
                    certificate.len(),
                    row.label_text(),
                    row.size.unwrap_or(0)
                ),
            )
        })?
    } else {
        ctx.tlv(field, object.tag, &value)?
    };
    Ok(BuiltObject {
        tag: object.tag,
        value: Some(value),
        tlv,
    })
}

/// The check code over the signed fields and the certificate to store with it.
struct Seal {
    check_code: Vec<u8>,
    certificate: Vec<u8>,
}

impl Seal {
    fn make(ctx: &Ctx, before: &[BuiltEf]) -> Result<Seal, ProfileError> {
        let signature = ctx.require(&ctx.doc.signature, "signature")?;
        let certificate = stored_certificate(ctx, signature, ctx.doc.seed.unwrap_or(0))?;
        let (key_path, key_pem) = signing_key_pem(ctx, signature)?;
        let signed = signed_bytes(
            ctx.layout,
            before,
            signature.signed_data.unwrap_or_default(),
        );
        let check_code = match ctx.layout.scheme {
            CheckCodeScheme::RsaPkcs1Sha256 => {
                let key = rsa::PrivateKey::from_pkcs8_pem(&key_pem).map_err(|e| {
                    ctx.error(
                        "signature.key",
                        format!("{} is not an RSA PKCS#8 key: {e}", key_path.display()),
                    )
                })?;
                rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
                    .sign(&signed)
                    .to_vec()
            }
            CheckCodeScheme::EcdsaP384Sha256 => {
                let key = p384::ecdsa::SigningKey::from_pkcs8_pem(&key_pem).map_err(|e| {
                    ctx.error(
                        "signature.key",
                        format!("{} is not a P-384 PKCS#8 key: {e}", key_path.display()),
                    )
                })?;
                let sig: p384::ecdsa::Signature = key
                    .sign_prehash(&Sha256::digest(&signed))
                    .map_err(|e| ctx.error("signature.key", format!("signing failed: {e}")))?;
                match signature.encoding.unwrap_or_default() {
                    CheckCodeEncoding::Raw => sig.to_bytes().to_vec(),
                    CheckCodeEncoding::Der => sig.to_der().as_bytes().to_vec(),
                }
            }
        };
        Ok(Seal {
            check_code,
            certificate,
        })
    }
}

/// The bytes the check code covers, from the EFs built so far: the layout's signed parts
/// (spec §7), or the deviation `signed_data` asks for.
fn signed_bytes(layout: &Layout, built: &[BuiltEf], form: SignedData) -> Vec<u8> {
    let objects = |part: &SignedPart| -> Vec<&BuiltObject> {
        let Some(ef) = built.iter().find(|ef| ef.row.id == part.ef) else {
            return Vec::new();
        };
        match part.source {
            SignedSource::Object(tag) => {
                ef.objects.iter().filter(|o| o.tag == tag).take(1).collect()
            }
            SignedSource::AllValues => ef.objects.iter().collect(),
        }
    };
    let value = |part: &SignedPart| -> Vec<u8> {
        objects(part)
            .into_iter()
            .flat_map(|o| o.value.clone().unwrap_or_default())
            .collect()
    };
    match form {
        SignedData::Specified => {
            let values: Vec<Vec<u8>> = layout.signed.iter().map(value).collect();
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            layout.signed_data(&values)
        }
        // The single-object parts (the two images) change places.
        SignedData::ImagesSwapped => {
            let mut order: Vec<&SignedPart> = layout.signed.iter().collect();
            let images: Vec<usize> = (0..order.len())
                .filter(|&i| matches!(order[i].source, SignedSource::Object(_)))
                .collect();
            if let [a, b] = images[..] {
                order.swap(a, b);
            }
            let mut out = Vec::new();
            for part in order {
                push_padded(&mut out, &value(part), part.area);
            }
            out
        }
        SignedData::WithTlvHeaders => layout
            .signed
            .iter()
            .flat_map(|part| objects(part).into_iter().flat_map(|o| o.tlv.clone()))
            .collect(),
    }
}

impl Ctx<'_> {
    /// True when `element` is a generation-1 image stored at its exact length
    /// (`knobs.image_layout: exact`, the default; generation 2 always stores full length).
    fn exact_image(&self, element: Element) -> bool {
        let layout = self
            .doc
            .knobs
            .as_ref()
            .map(|k| k.image_layout)
            .unwrap_or_default();
        self.layout.generation == Generation::First
            && layout == ImageLayout::Exact
            && matches!(element, Element::FrontImage | Element::FaceImage)
    }

    /// One TLV; a value too long for a TLV length is an error naming `field`.
    fn tlv(&self, field: &str, tag: u16, value: &[u8]) -> Result<Vec<u8>, ProfileError> {
        tlv::encode(tag, value).map_err(|e| self.error(field, e.to_string()))
    }

    /// The profile's knobs (defaults when it sets none).
    fn knobs(&self) -> Knobs {
        self.doc.knobs.clone().unwrap_or_default()
    }

    /// True when `row`'s TLVs get `82 xx xx` lengths (`knobs.tlv_lengths: long_form`):
    /// every EF but the MF's, whose `C1 01 31` a real card shows (spec §6.1 `[R]`).
    fn long_lengths_in(&self, row: &EfRow) -> bool {
        self.knobs().tlv_lengths == TlvLengths::LongForm && row.id.df != Df::Mf
    }

    /// `built` with its length rewritten `82 xx xx` where the knob asks for it.
    fn with_lengths_of_knob(&self, row: &EfRow, mut built: BuiltObject) -> BuiltObject {
        if self.long_lengths_in(row)
            && !built.tlv.is_empty()
            && let Some(tlv) = long_tlv(built.tag, built.value.as_deref().unwrap_or_default())
        {
            built.tlv = tlv;
        }
        built
    }

    /// Bytes `built`'s TLV takes beyond the minimal length form the layout's EF sizes
    /// assume (only under `knobs.tlv_lengths: long_form`; the layout's own `82 00 C8`
    /// is already in its sizes).
    fn long_form_growth(&self, row: &EfRow, built: &BuiltObject) -> usize {
        let laid_out_long = row
            .objects
            .iter()
            .any(|o| o.tag == built.tag && o.long_length);
        if !self.long_lengths_in(row) || built.tlv.is_empty() || laid_out_long {
            return 0;
        }
        let value = built.value.as_deref().unwrap_or_default();
        tlv::encode(built.tag, value)
            .map_or(0, |minimal| built.tlv.len().saturating_sub(minimal.len()))
    }
}

/// What the profile puts in `object` (which holds `element`, neither check code nor
/// certificate).
fn value(ctx: &Ctx, object: &DataObject, element: Element) -> Result<Value, ProfileError> {
    let doc = ctx.doc;
    let field = field(element);
    let area = object.area.unwrap_or(usize::MAX);
    let text = |value: &str| Ok(Value::Bytes(value.as_bytes().to_vec()));
    let flag = |value: bool| Ok(Value::Bytes(flag(value).to_vec()));
    let images = doc.images.clone().unwrap_or_default();
    let image = |path: &Option<std::path::PathBuf>| -> Result<Value, ProfileError> {
        let path = ctx.require(path, field)?;
        Ok(Value::Bytes(ctx.read_file(path, field, object.area)?))
    };
    let card = || ctx.require(&doc.card, "card");
    let address = || ctx.require(&doc.address, "address");
    let back = || ctx.require(&doc.back_side, "back_side");
    let printed = || ctx.require(&doc.printed, "printed");
    let permission = || ctx.require(&doc.work_permission, "work_permission");
    let other = || ctx.require(&doc.other, "other");
    let encoding = doc.text_encoding.unwrap_or_default();
    let encoded = |value: &Option<String>| -> Result<Value, ProfileError> {
        let value = ctx.require(value, field)?;
        Ok(Value::Bytes(encode_text(
            ctx, field, value, encoding, area,
        )?))
    };
    match element {
        Element::SpecVersion => text(&ctx.require(&card()?.spec_version, field)?.0),
        Element::CardTypeCode => text(ctx.layout.code),
        Element::CardNumber => text(ctx.require(&card()?.number, field)?.as_str()),
        Element::FrontImage => image(&images.front),
        Element::NameImage => image(&images.name),
        Element::AddressImage => image(&images.address),
        Element::FaceImage => Ok(
            match images
                .face
                .as_ref()
                .map(|p| ctx.read_file(p, field, object.area))
                .transpose()?
            {
                Some(face) => Value::Bytes(face),
                None => match doc.face_layout.unwrap_or_default() {
                    FaceLayout::ZeroFilled => Value::Bytes(Vec::new()),
                    FaceLayout::ZeroLength => Value::EmptyTlv,
                    FaceLayout::Omitted => Value::Absent,
                },
            },
        ),
        Element::AddressDate => text(&ctx.require(&address()?.date, field)?.0),
        Element::MunicipalityCode => text(&ctx.require(&address()?.municipality_code, field)?.0),
        Element::AddressText => encoded(&address()?.text),
        Element::ComprehensivePermissionText => encoded(&back()?.comprehensive_permission),
        Element::IndividualPermissionText => encoded(&back()?.individual_permission),
        Element::RenewalApplication => flag(*ctx.require(&back()?.renewal_application, field)?),
        Element::CardExpiry => text(&ctx.require(&printed()?.card_expiry, field)?.0),
        Element::BirthDate => text(&ctx.require(&printed()?.birth_date, field)?.0),
        Element::Sex => Ok(Value::Bytes(vec![
            ctx.require(&printed()?.sex, field)?.code(),
        ])),
        Element::Nationality => text(&ctx.require(&printed()?.nationality, field)?.0),
        Element::StatusOfResidence => {
            let status = ctx.require(&printed()?.status_of_residence, field)?;
            if status.len() > area || !status.is_ascii() {
                return Err(ctx.error(
                    field,
                    format!("{status:?} must be at most {area} ASCII characters"),
                ));
            }
            text(status)
        }
        Element::PeriodOfStay => text(&ctx.require(&printed()?.period_of_stay, field)?.0),
        Element::PermissionType => text(&ctx.require(&printed()?.permission_type, field)?.0),
        Element::PermissionDate => text(&ctx.require(&printed()?.permission_date, field)?.0),
        Element::WorkRestriction => text(&ctx.require(&printed()?.work_restriction, field)?.0),
        Element::PeriodOfStayExpiry => {
            text(&ctx.require(&printed()?.period_of_stay_expiry, field)?.0)
        }
        Element::ComprehensivePermission => {
            text(&ctx.require(&permission()?.comprehensive, field)?.0)
        }
        // Absent: zero-filled.
        Element::ComprehensivePermissionExpiry => text(
            permission()?
                .comprehensive_expiry
                .as_ref()
                .map(|d| d.0.as_str())
                .unwrap_or_default(),
        ),
        Element::IndividualPermission => flag(*ctx.require(&permission()?.individual, field)?),
        Element::ApplicationPending => flag(*ctx.require(&doc.application_pending, field)?),
        Element::CommissionerEntry => flag(*ctx.require(&other()?.commissioner_entry, field)?),
        Element::ReservedText => {
            let reserved = other()?.reserved_text.as_deref().unwrap_or_default();
            if reserved.len() > area {
                return Err(ctx.error(
                    field,
                    format!("{} bytes, the chip field holds {area}", reserved.len()),
                ));
            }
            text(reserved)
        }
        // Made by `Seal`, never asked for here.
        Element::CheckCode | Element::Certificate => Ok(Value::Absent),
    }
}

fn encode_text(
    ctx: &Ctx,
    field: &str,
    text: &str,
    encoding: TextEncoding,
    area: usize,
) -> Result<Vec<u8>, ProfileError> {
    let bytes = match encoding {
        TextEncoding::Utf8 => text.as_bytes().to_vec(),
        TextEncoding::ShiftJis => {
            let (bytes, _, unmappable) = SHIFT_JIS.encode(text);
            if unmappable {
                return Err(ctx.error(
                    field,
                    format!("{text:?} has characters Shift_JIS cannot encode"),
                ));
            }
            bytes.into_owned()
        }
    };
    if bytes.len() > area {
        return Err(ctx.error(
            field,
            format!(
                "encodes to {} bytes, the chip field holds {area}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The signer's key file (`signature.key`) and its PEM text.
fn signing_key_pem<'d>(
    ctx: &Ctx,
    signature: &'d SignatureDoc,
) -> Result<(&'d Path, String), ProfileError> {
    let path = ctx.require(&signature.key, "signature.key")?;
    let pem = String::from_utf8_lossy(&ctx.read_file(path, "signature.key", None)?).into_owned();
    Ok((path, pem))
}

fn flag(value: bool) -> &'static [u8] {
    if value { b"1" } else { b"0" }
}

/// The certificate bytes to store: the DER file, damaged as `certificate_form` says.
fn stored_certificate(
    ctx: &Ctx,
    signature: &SignatureDoc,
    seed: u64,
) -> Result<Vec<u8>, ProfileError> {
    let field = "signature.certificate";
    let der = ctx.read_file(ctx.require(&signature.certificate, field)?, field, None)?;
    Ok(match signature.certificate_form.unwrap_or_default() {
        CertificateForm::Der => der,
        CertificateForm::Truncated => der[..der.len() / 2].to_vec(),
        CertificateForm::Garbage => {
            use rand::{Rng, SeedableRng};
            let mut garbage = vec![0; der.len()];
            rand_chacha::ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut garbage);
            garbage
        }
        CertificateForm::Ber => ber_not_der(&der).ok_or_else(|| {
            ctx.error(
                "signature.certificate_form",
                "the certificate is not SEQUENCE { tbs, SEQUENCE algorithm (< 128 bytes), … }",
            )
        })?,
    })
}

/// Re-encodes the certificate's outer signatureAlgorithm with the non-minimal length
/// `81 xx`: valid BER, not DER. The signed TBSCertificate keeps its bytes.
fn ber_not_der(der: &[u8]) -> Option<Vec<u8>> {
    let (outer, _) = tlv::parse_at(der, 0).ok()?;
    let (_, tbs_end) = tlv::parse_at(outer.value, 0).ok()?;
    let (algorithm, algorithm_end) = tlv::parse_at(outer.value, tbs_end).ok()?;
    let short = u8::try_from(algorithm.value.len())
        .ok()
        .filter(|&n| n < 0x80)?;
    let mut value = outer.value[..tbs_end].to_vec();
    value.extend_from_slice(&[0x30, 0x81, short]);
    value.extend_from_slice(algorithm.value);
    value.extend_from_slice(&outer.value[algorithm_end..]);
    let mut out = vec![0x30];
    push_length(&mut out, value.len()).ok()?;
    out.extend_from_slice(&value);
    Some(out)
}

/// The chip after tampering: the files of `on_chip` (compiled from the tampered data) with
/// the check code and certificate of `signed` (compiled from the data as signed).
pub(crate) fn keep_signature(mut on_chip: CardImage, signed: &CardImage) -> CardImage {
    let sealed = |id: EfId| {
        on_chip.layout.row(id).is_some_and(|row| {
            row.objects
                .iter()
                .any(|o| matches!(o.element, Element::CheckCode | Element::Certificate))
        })
    };
    let ids: Vec<EfId> = on_chip
        .files
        .iter()
        .map(|f| f.id)
        .filter(|&id| sealed(id))
        .collect();
    for id in ids {
        if let (Some(index), Some(original)) = (on_chip.find(id), signed.file(id)) {
            on_chip.files[index].content.clone_from(&original.content);
        }
    }
    on_chip
}

/// Applies `tamper.files` to the compiled EFs, in order.
pub(crate) fn apply_edits(
    image: &mut CardImage,
    edits: &[FileEdit],
    file: &Path,
    locator: &Locator,
) -> Result<(), ProfileError> {
    for (i, edit) in edits.iter().enumerate() {
        let field = format!("tamper.files[{i}]");
        let error = |message: String| locator.error(file, &field, message);
        // The EF the text names in this card's layout (`DF1/EF02`, or its whole name).
        let index = image
            .layout
            .by_name(&edit.file)
            .and_then(|row| image.find(row.id))
            .ok_or_else(|| error(format!("the card has no EF {}", edit.file)))?;
        let ef = &mut image.files[index];
        edit_file(&mut ef.content, edit).map_err(error)?;
        if ef.content.len() > MAX_EF_SIZE {
            return Err(error(format!(
                "makes {} {} bytes long; an EF holds at most {MAX_EF_SIZE}",
                edit.file,
                ef.content.len()
            )));
        }
    }
    Ok(())
}

fn edit_file(content: &mut Vec<u8>, edit: &FileEdit) -> Result<(), String> {
    let actions = [
        edit.remove.is_some(),
        edit.duplicate.is_some(),
        edit.length.is_some(),
        edit.value.is_some(),
        edit.truncate.is_some(),
        edit.append.is_some(),
    ];
    if actions.iter().filter(|&&a| a).count() != 1 {
        return Err(
            "give exactly one of remove, duplicate, length, value, truncate, append".into(),
        );
    }
    if let Some(keep) = edit.truncate {
        if edit.tag.is_some() || keep >= content.len() {
            return Err(format!(
                "truncate takes no tag and must keep fewer than the EF's {} bytes",
                content.len()
            ));
        }
        content.truncate(keep);
        return Ok(());
    }
    if let Some(bytes) = &edit.append {
        if edit.tag.is_some() {
            return Err("append takes no tag".into());
        }
        if content.len() + bytes.0.len() > MAX_EF_SIZE {
            return Err(format!(
                "appending {} bytes makes the EF {} bytes long; an EF holds at most {MAX_EF_SIZE}",
                bytes.0.len(),
                content.len() + bytes.0.len()
            ));
        }
        content.extend_from_slice(&bytes.0);
        return Ok(());
    }
    let tag = match edit.tag.as_ref().map(|t| t.0.as_slice()) {
        Some([t]) => u16::from(*t),
        Some([a, b]) => u16::from_be_bytes([*a, *b]),
        _ => return Err("this edit needs `tag`, one or two hex bytes".into()),
    };
    // The first object with the tag, walking the EF's top-level objects.
    let mut pos = 0;
    let (obj, end) = loop {
        match tlv::parse_at(content, pos) {
            Ok((obj, end)) if obj.tag == tag => break (obj, end),
            Ok((_, end)) => pos = end,
            Err(_) => return Err(format!("no object with tag {tag:02X} in the EF")),
        }
    };
    let start = obj.offset;
    let value_start = end - obj.value.len();
    let tag_len = if tag > 0xFF { 2 } else { 1 };
    if edit.remove.is_some() {
        content.drain(start..end);
    } else if edit.duplicate.is_some() {
        let copy = content[start..end].to_vec();
        content.splice(end..end, copy);
    } else if let Some(length) = &edit.length {
        content.splice(start + tag_len..value_start, length.0.iter().copied());
    } else if let Some(value) = &edit.value {
        let encoded = tlv::encode(tag, &value.0).map_err(|e| e.to_string())?;
        content.splice(start..end, encoded);
    }
    Ok(())
}
