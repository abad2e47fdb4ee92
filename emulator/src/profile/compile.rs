//! From a merged profile document to a [`CardImage`]: EF layouts per generation (spec §2.2,
//! §2.3, §6) and the check code made with the profile's TEST signer (spec §7).

use std::path::Path;

use encoding_rs::SHIFT_JIS;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};

use super::load::{Locator, ProfileError};
use super::schema::*;
use crate::card::{Access, CardImage, Df, ElementaryFile};
use crate::protocol::Generation;
use crate::protocol::signature::{self as target, push_padded};
use crate::protocol::tlv::{self, push_length, push_tag};

/// Generation 1 `DB` value area (certificate zero-padded inside).
const GEN1_CERTIFICATE_AREA: usize = 1_200;
/// Generation 2 DF3/EF01 size: `DC` + `DD` + zero fill.
const GEN2_DF3_SIZE: usize = 704;
/// Generation 1 DF2 text areas (spec §2.2: D4 320, D5/D6 120).
const GEN1_ADDRESS_AREA: usize = 320;
const GEN1_PERMISSION_AREA: usize = 120;
/// Generation 2 `DE` reserved-text area.
const GEN2_RESERVED_AREA: usize = 200;

/// Largest EF a profile may compile to (also after `tamper.files` edits): every byte is
/// within reach of a READ BINARY offset (15 bits), and a whole-EF read fits one SM data
/// object and one extended response. Real cards' largest EF is about 7 KB.
pub const MAX_EF_SIZE: usize = 32_768;

/// The fields a compile needs, with the file to blame when one is missing and where each
/// field is written.
struct Ctx<'a> {
    file: &'a Path,
    locator: &'a Locator,
}

impl Ctx<'_> {
    fn require<'v, T>(&self, value: &'v Option<T>, field: &str) -> Result<&'v T, ProfileError> {
        value.as_ref().ok_or_else(|| {
            self.error(
                field,
                "required, but neither this profile nor what it extends sets it",
            )
        })
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
pub fn compile(
    doc: &ProfileDoc,
    file: &Path,
    locator: &Locator,
) -> Result<CardImage, ProfileError> {
    let ctx = Ctx { file, locator };
    let card = ctx.require(&doc.card, "card")?;
    let generation = *ctx.require(&card.generation, "card.generation")?;
    let card_type = *ctx.require(&card.card_type, "card.type")?;
    let number = ctx.require(&card.number, "card.number")?;
    let version = ctx.require(&card.spec_version, "card.spec_version")?;

    let mut files = vec![
        ef(
            "MF/EF01 common data",
            Df::Mf,
            0x0B,
            Access::Free,
            ctx.tlv("card.spec_version", 0xC0, version.0.as_bytes())?,
        ),
        ef(
            "MF/EF02 card type",
            Df::Mf,
            0x0A,
            Access::Free,
            ctx.tlv("card.type", 0xC1, card_type.code(generation).as_bytes())?,
        ),
    ];
    match generation {
        Generation::First => gen1_files(&ctx, doc, card_type, &mut files)?,
        Generation::Second => gen2_files(&ctx, doc, card_type, number, &mut files)?,
    }
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
    Ok(CardImage {
        generation,
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

fn ef(name: &str, df: Df, sfi: u8, access: Access, content: Vec<u8>) -> ElementaryFile {
    ElementaryFile {
        name: name.to_owned(),
        df,
        sfi,
        fid: None,
        access,
        content,
    }
}

impl Ctx<'_> {
    /// One TLV; a value too long for a TLV length is an error naming `field`.
    fn tlv(&self, field: &str, tag: u16, value: &[u8]) -> Result<Vec<u8>, ProfileError> {
        tlv::encode(tag, value).map_err(|e| self.error(field, e.to_string()))
    }

    /// Appends one TLV; a value too long for a TLV length is an error naming `field`.
    fn push(
        &self,
        field: &str,
        out: &mut Vec<u8>,
        tag: u16,
        value: &[u8],
    ) -> Result<(), ProfileError> {
        tlv::push(out, tag, value).map_err(|e| self.error(field, e.to_string()))
    }

    /// A TLV whose value is zero-padded to a fixed area (the card's fixed-size fields).
    fn fixed(
        &self,
        field: &str,
        out: &mut Vec<u8>,
        tag: u16,
        value: &[u8],
        area: usize,
    ) -> Result<(), ProfileError> {
        let mut padded = Vec::with_capacity(area);
        push_padded(&mut padded, value, area);
        self.push(field, out, tag, &padded)
    }
}

/// Reads the face image, or the stand-in the face layout prescribes when there is none.
fn face(ctx: &Ctx, doc: &ProfileDoc) -> Result<Option<Vec<u8>>, ProfileError> {
    doc.images
        .as_ref()
        .and_then(|i| i.face.as_ref())
        .map(|p| ctx.read_file(p, "images.face", Some(target::FACE_AREA)))
        .transpose()
}

fn push_face(
    ctx: &Ctx,
    out: &mut Vec<u8>,
    face: Option<&[u8]>,
    layout: FaceLayout,
) -> Result<(), ProfileError> {
    let field = "images.face";
    match (face, layout) {
        (Some(face), _) => ctx.fixed(field, out, 0xD1, face, target::FACE_AREA),
        (None, FaceLayout::ZeroFilled) => ctx.fixed(field, out, 0xD1, &[], target::FACE_AREA),
        (None, FaceLayout::ZeroLength) => ctx.push(field, out, 0xD1, &[]),
        (None, FaceLayout::Omitted) => Ok(()),
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

fn gen1_files(
    ctx: &Ctx,
    doc: &ProfileDoc,
    card_type: CardType,
    files: &mut Vec<ElementaryFile>,
) -> Result<(), ProfileError> {
    let imgs = doc.images.clone().unwrap_or_default();
    let front_path = ctx.require(&imgs.front, "images.front")?;
    let front = ctx.read_file(front_path, "images.front", Some(target::GEN1_FRONT_AREA))?;
    let face = face(ctx, doc)?;
    let layout = doc.face_layout.unwrap_or_default();

    let mut front_ef = Vec::new();
    ctx.fixed(
        "images.front",
        &mut front_ef,
        0xD0,
        &front,
        target::GEN1_FRONT_AREA,
    )?;
    let mut face_ef = Vec::new();
    push_face(ctx, &mut face_ef, face.as_deref(), layout)?;
    let signed = match doc.signature.as_ref().and_then(|s| s.signed_data) {
        None | Some(SignedData::Specified) => {
            target::gen1_signed_data(&front, face.as_deref().unwrap_or_default())
        }
        Some(SignedData::ImagesSwapped) => {
            let mut out = Vec::new();
            push_padded(
                &mut out,
                face.as_deref().unwrap_or_default(),
                target::FACE_AREA,
            );
            push_padded(&mut out, &front, target::GEN1_FRONT_AREA);
            out
        }
        Some(SignedData::WithTlvHeaders) => [&front_ef[..], &face_ef[..]].concat(),
    };
    files.push(ef(
        "DF1/EF01 front image",
        Df::Df1,
        0x05,
        Access::AuthSm,
        front_ef,
    ));
    files.push(ef(
        "DF1/EF02 face image",
        Df::Df1,
        0x06,
        Access::AuthSm,
        face_ef,
    ));

    let encoding = doc.text_encoding.unwrap_or_default();
    let address = ctx.require(&doc.address, "address")?;
    let mut address_ef = Vec::new();
    ctx.push(
        "address.date",
        &mut address_ef,
        0xD2,
        ctx.require(&address.date, "address.date")?.0.as_bytes(),
    )?;
    ctx.push(
        "address.municipality_code",
        &mut address_ef,
        0xD3,
        ctx.require(&address.municipality_code, "address.municipality_code")?
            .0
            .as_bytes(),
    )?;
    let text = ctx.require(&address.text, "address.text")?;
    let text = encode_text(ctx, "address.text", text, encoding, GEN1_ADDRESS_AREA)?;
    ctx.fixed(
        "address.text",
        &mut address_ef,
        0xD4,
        &text,
        GEN1_ADDRESS_AREA,
    )?;
    files.push(ef(
        "DF2/EF01 address",
        Df::Df2,
        0x01,
        Access::Auth,
        address_ef,
    ));

    if card_type == CardType::ResidenceCard {
        let back = ctx.require(&doc.back_side, "back_side")?;
        for (field, tag, sfi, name, value) in [
            (
                "back_side.comprehensive_permission",
                0xD5,
                0x02,
                "DF2/EF02 comprehensive permission",
                &back.comprehensive_permission,
            ),
            (
                "back_side.individual_permission",
                0xD6,
                0x03,
                "DF2/EF03 individual permission",
                &back.individual_permission,
            ),
        ] {
            let text = encode_text(
                ctx,
                field,
                ctx.require(value, field)?,
                encoding,
                GEN1_PERMISSION_AREA,
            )?;
            let mut content = Vec::new();
            ctx.fixed(field, &mut content, tag, &text, GEN1_PERMISSION_AREA)?;
            files.push(ef(name, Df::Df2, sfi, Access::Auth, content));
        }
        let renewal = *ctx.require(&back.renewal_application, "back_side.renewal_application")?;
        files.push(ef(
            "DF2/EF04 renewal application",
            Df::Df2,
            0x04,
            Access::Auth,
            ctx.tlv("back_side.renewal_application", 0xD7, flag(renewal))?,
        ));
    }

    let signature = ctx.require(&doc.signature, "signature")?;
    let certificate = stored_certificate(ctx, signature, doc.seed.unwrap_or(0))?;
    let (key_path, key_pem) = signing_key_pem(ctx, signature)?;
    let key = rsa::PrivateKey::from_pkcs8_pem(&key_pem).map_err(|e| {
        ctx.error(
            "signature.key",
            format!("{} is not an RSA PKCS#8 key: {e}", key_path.display()),
        )
    })?;
    let check_code = rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
        .sign(&signed)
        .to_vec();

    let mut df3 = Vec::new();
    ctx.push("signature.key", &mut df3, 0xDA, &check_code)?;
    match signature
        .certificate_layout
        .unwrap_or(CertificateLayout::Padded)
    {
        CertificateLayout::Padded => {
            if certificate.len() > GEN1_CERTIFICATE_AREA {
                return Err(ctx.error(
                    "signature.certificate",
                    format!(
                        "{} bytes do not fit the {GEN1_CERTIFICATE_AREA}-byte DB area",
                        certificate.len()
                    ),
                ));
            }
            ctx.fixed(
                "signature.certificate",
                &mut df3,
                0xDB,
                &certificate,
                GEN1_CERTIFICATE_AREA,
            )?;
        }
        CertificateLayout::Exact => {
            ctx.push("signature.certificate", &mut df3, 0xDB, &certificate)?
        }
    }
    files.push(ef(
        "DF3/EF01 check code and certificate",
        Df::Df3,
        0x02,
        Access::Auth,
        df3,
    ));
    Ok(())
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

fn gen2_files(
    ctx: &Ctx,
    doc: &ProfileDoc,
    card_type: CardType,
    number: &CardNumber,
    files: &mut Vec<ElementaryFile>,
) -> Result<(), ProfileError> {
    let residence = card_type == CardType::ResidenceCard;
    files.push(ef(
        "DF1/EF01 card number",
        Df::Df1,
        0x01,
        Access::AuthSm,
        ctx.tlv("card.number", 0xC2, number.as_str().as_bytes())?,
    ));

    let printed = ctx.require(&doc.printed, "printed")?;
    let mut entries: Vec<(u16, Vec<u8>)> = vec![
        (
            0xC5,
            ctx.require(&printed.card_expiry, "printed.card_expiry")?
                .0
                .clone()
                .into_bytes(),
        ),
        (
            0xC6,
            ctx.require(&printed.birth_date, "printed.birth_date")?
                .0
                .clone()
                .into_bytes(),
        ),
        (0xC7, vec![ctx.require(&printed.sex, "printed.sex")?.code()]),
        (
            0xC8,
            ctx.require(&printed.nationality, "printed.nationality")?
                .0
                .clone()
                .into_bytes(),
        ),
    ];
    let status = ctx.require(&printed.status_of_residence, "printed.status_of_residence")?;
    if status.len() > 10 || !status.is_ascii() {
        return Err(ctx.error(
            "printed.status_of_residence",
            format!("{status:?} must be at most 10 ASCII characters"),
        ));
    }
    let mut status = status.clone().into_bytes();
    status.resize(10, 0);
    entries.push((0xC9, status));
    entries.push((
        0xCE,
        ctx.require(&printed.period_of_stay, "printed.period_of_stay")?
            .0
            .clone()
            .into_bytes(),
    ));
    if residence {
        entries.push((
            0xCA,
            ctx.require(&printed.permission_type, "printed.permission_type")?
                .0
                .clone()
                .into_bytes(),
        ));
        entries.push((
            0xCB,
            ctx.require(&printed.permission_date, "printed.permission_date")?
                .0
                .clone()
                .into_bytes(),
        ));
        entries.push((
            0xCC,
            ctx.require(&printed.work_restriction, "printed.work_restriction")?
                .0
                .clone()
                .into_bytes(),
        ));
        entries.push((
            0xCD,
            ctx.require(
                &printed.period_of_stay_expiry,
                "printed.period_of_stay_expiry",
            )?
            .0
            .clone()
            .into_bytes(),
        ));
    }
    let mut printed_ef = Vec::new();
    let mut printed_values = Vec::new();
    for (tag, value) in &entries {
        ctx.push("printed", &mut printed_ef, *tag, value)?;
        printed_values.extend_from_slice(value);
    }
    files.push(ef(
        "DF1/EF02 printed entries",
        Df::Df1,
        0x03,
        Access::AuthSm,
        printed_ef.clone(),
    ));

    let imgs = doc.images.clone().unwrap_or_default();
    let name = ctx.read_file(
        ctx.require(&imgs.name, "images.name")?,
        "images.name",
        Some(target::GEN2_NAME_AREA),
    )?;
    let face = face(ctx, doc)?;
    let address = ctx.read_file(
        ctx.require(&imgs.address, "images.address")?,
        "images.address",
        Some(target::GEN2_ADDRESS_AREA),
    )?;
    let mut name_tlv = Vec::new();
    ctx.fixed(
        "images.name",
        &mut name_tlv,
        0xD0,
        &name,
        target::GEN2_NAME_AREA,
    )?;
    let mut face_tlv = Vec::new();
    push_face(
        ctx,
        &mut face_tlv,
        face.as_deref(),
        doc.face_layout.unwrap_or_default(),
    )?;
    let images_ef = [&name_tlv[..], &face_tlv[..]].concat();
    let face = face.as_deref().unwrap_or_default();
    let signed = match doc.signature.as_ref().and_then(|s| s.signed_data) {
        None | Some(SignedData::Specified) => {
            target::gen2_signed_data(&printed_values, face, &name)
        }
        Some(SignedData::ImagesSwapped) => {
            let mut out = Vec::new();
            push_padded(&mut out, &printed_values, target::GEN2_PRINTED_AREA);
            push_padded(&mut out, &name, target::GEN2_NAME_AREA);
            push_padded(&mut out, face, target::FACE_AREA);
            out
        }
        Some(SignedData::WithTlvHeaders) => [&printed_ef[..], &face_tlv, &name_tlv].concat(),
    };
    files.push(ef(
        "DF1/EF03 name and face images",
        Df::Df1,
        0x04,
        Access::AuthSm,
        images_ef,
    ));
    let mut address_ef = Vec::new();
    ctx.fixed(
        "images.address",
        &mut address_ef,
        0xDFD1,
        &address,
        target::GEN2_ADDRESS_AREA,
    )?;
    files.push(ef(
        "DF1/EF04 address image",
        Df::Df1,
        0x06,
        Access::AuthSm,
        address_ef,
    ));

    if residence {
        let permission = ctx.require(&doc.work_permission, "work_permission")?;
        let mut content = Vec::new();
        ctx.fixed(
            "work_permission.comprehensive",
            &mut content,
            0xD5,
            ctx.require(&permission.comprehensive, "work_permission.comprehensive")?
                .0
                .as_bytes(),
            7,
        )?;
        ctx.fixed(
            "work_permission.comprehensive_expiry",
            &mut content,
            0xD6,
            permission
                .comprehensive_expiry
                .as_ref()
                .map(|d| d.0.as_bytes())
                .unwrap_or_default(),
            8,
        )?;
        ctx.push(
            "work_permission.individual",
            &mut content,
            0xD7,
            flag(*ctx.require(&permission.individual, "work_permission.individual")?),
        )?;
        files.push(ef(
            "DF2/EF01 work permission",
            Df::Df2,
            0x01,
            Access::Auth,
            content,
        ));
        let pending = *ctx.require(&doc.application_pending, "application_pending")?;
        files.push(ef(
            "DF2/EF02 application status",
            Df::Df2,
            0x02,
            Access::Auth,
            ctx.tlv("application_pending", 0xD8, flag(pending))?,
        ));
    }
    let other = ctx.require(&doc.other, "other")?;
    let mut content = Vec::new();
    ctx.push(
        "other.commissioner_entry",
        &mut content,
        0xD9,
        flag(*ctx.require(&other.commissioner_entry, "other.commissioner_entry")?),
    )?;
    let reserved = other
        .reserved_text
        .as_deref()
        .unwrap_or_default()
        .as_bytes();
    if reserved.len() > GEN2_RESERVED_AREA {
        return Err(ctx.error(
            "other.reserved_text",
            format!(
                "{} bytes, the chip field holds {GEN2_RESERVED_AREA}",
                reserved.len()
            ),
        ));
    }
    // `DE 82 00 C8`: the non-minimal length that makes the EF the specified 207 bytes.
    push_tag(&mut content, 0xDE);
    content.extend_from_slice(&[0x82, 0x00, GEN2_RESERVED_AREA as u8]);
    push_padded(&mut content, reserved, GEN2_RESERVED_AREA);
    files.push(ef("DF2/EF03 other", Df::Df2, 0x03, Access::Auth, content));

    let signature = ctx.require(&doc.signature, "signature")?;
    let certificate = stored_certificate(ctx, signature, doc.seed.unwrap_or(0))?;
    let (key_path, key_pem) = signing_key_pem(ctx, signature)?;
    let key = p384::ecdsa::SigningKey::from_pkcs8_pem(&key_pem).map_err(|e| {
        ctx.error(
            "signature.key",
            format!("{} is not a P-384 PKCS#8 key: {e}", key_path.display()),
        )
    })?;
    let sig: p384::ecdsa::Signature = key
        .sign_prehash(&Sha256::digest(&signed))
        .map_err(|e| ctx.error("signature.key", format!("signing failed: {e}")))?;
    let check_code = match signature.encoding.unwrap_or_default() {
        CheckCodeEncoding::Raw => sig.to_bytes().to_vec(),
        CheckCodeEncoding::Der => sig.to_der().as_bytes().to_vec(),
    };
    let mut df3 = Vec::new();
    ctx.push("signature.key", &mut df3, 0xDC, &check_code)?;
    let dd_value = match signature
        .certificate_layout
        .unwrap_or(CertificateLayout::Exact)
    {
        CertificateLayout::Exact => certificate.len(),
        // The value runs to the end of the EF: `DD 82 xx xx` is 4 bytes.
        CertificateLayout::Padded => GEN2_DF3_SIZE.saturating_sub(df3.len() + 4),
    };
    // `DD 82 xx xx` even for a short certificate, as on real cards.
    push_tag(&mut df3, 0xDD);
    df3.push(0x82);
    let dd_length = u16::try_from(dd_value.max(certificate.len())).map_err(|_| {
        ctx.error(
            "signature.certificate",
            format!(
                "{} bytes do not fit DF3/EF01 ({GEN2_DF3_SIZE} bytes)",
                certificate.len()
            ),
        )
    })?;
    df3.extend_from_slice(&dd_length.to_be_bytes());
    push_padded(&mut df3, &certificate, dd_value);
    if df3.len() > GEN2_DF3_SIZE {
        return Err(ctx.error(
            "signature.certificate",
            format!(
                "check code and certificate take {} bytes, DF3/EF01 holds {GEN2_DF3_SIZE}",
                df3.len()
            ),
        ));
    }
    df3.resize(GEN2_DF3_SIZE, 0);
    files.push(ef(
        "DF3/EF01 check code and certificate",
        Df::Df3,
        0x02,
        Access::Auth,
        df3,
    ));
    Ok(())
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
pub fn keep_signature(mut on_chip: CardImage, signed: &CardImage) -> CardImage {
    for file in on_chip.files.iter_mut().filter(|f| f.df == Df::Df3) {
        if let Some(original) = signed
            .files
            .iter()
            .find(|f| f.df == Df::Df3 && f.sfi == file.sfi)
        {
            file.content.clone_from(&original.content);
        }
    }
    on_chip
}

/// Applies `tamper.files` to the compiled EFs, in order.
pub fn apply_edits(
    image: &mut CardImage,
    edits: &[FileEdit],
    file: &Path,
    locator: &Locator,
) -> Result<(), ProfileError> {
    for (i, edit) in edits.iter().enumerate() {
        let field = format!("tamper.files[{i}]");
        let error = |message: String| locator.error(file, &field, message);
        let ef = image
            .files
            .iter_mut()
            .find(|f| {
                f.name
                    .strip_prefix(edit.file.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
            .ok_or_else(|| error(format!("the card has no EF {}", edit.file)))?;
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
