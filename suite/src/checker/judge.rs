//! The verdict: reads the card through [`CardReader`] in the order the spec gives, checks
//! the objects each EF must hold, the check code over the signed fields, and the
//! certificate chain up to a trusted root at the checker's time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rclab_emulator::protocol::key_delivery::DeliveryPublicKey;
use rclab_emulator::protocol::layout::{Df, EfRow, MF_CARD_TYPE, MF_COMMON};
use rclab_emulator::protocol::tlv;
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

use super::data::{CardData, CertificateInfo, ImageInfo, text, trim_zeros};
use super::objects::{field_text, optional, parse, required, single, tag_list};
use super::pki::{ParsedCertificate, TrustStore};
use super::read::{CardFiles, CardKind, CardReader, Df1Rows};
use super::stop::{Step, Stop, malformed, stop};

/// Reads and judges the card; `Ok` is a genuine card, with what decided it. A card with
/// no card type at its MF is tried for the 在留AP of a specified card (`specified`), whose
/// session key is sent under `delivery_key`.
pub(super) fn run(
    card: &mut CardReader,
    trust: &TrustStore,
    at: SystemTime,
    card_number: &str,
    delivery_key: &DeliveryPublicKey,
    data: &mut CardData,
) -> Step<String> {
    // MF: card type decides the generation (spec §6.1).
    let card_type = match card.read_plain(&MF_CARD_TYPE, MF_CARD_TYPE.name) {
        Ok(card_type) => card_type,
        Err(failed) => {
            let failed = not_residence_on_status(failed);
            if failed.0.verdict != VerdictKind::NotResidenceCard {
                return Err(failed);
            }
            let judged = Judged {
                trust,
                at,
                card_number,
            };
            return super::specified::run(card, delivery_key, judged, data, failed);
        }
    };
    let c1 = single(&card_type, 0xC1, "C1")
        .map_err(|Stop(_, d)| Stop(Verdict::new(VerdictKind::NotResidenceCard, None), d))?;
    data.card_type = Some(text(c1));
    let Some(kind) = CardKind::of(c1) else {
        return stop(
            VerdictKind::NotResidenceCard,
            None,
            format!("card type {} is not 1, 2, 05 or 06", hex::encode_upper(c1)),
        );
    };
    // C1 is not signed: a generation-2 chip relabelled 07/08 would otherwise read as a
    // specified card. A specified card keeps its card type in the 在留AP, never at the MF.
    if kind.specified {
        return stop(
            VerdictKind::Forged,
            Some(Reason::MalformedData),
            format!(
                "card type {} at the MF: a specified card holds its card type in the 在留AP, \
                 on the My Number platform",
                text(c1)
            ),
        );
    }
    let generation = kind.info.generation;
    card.set_generation(generation);
    data.generation = Some(generation.number());
    let common = card.read_plain(&MF_COMMON, MF_COMMON.name)?;
    data.common_data = Some(text(single(&common, 0xC0, "C0")?));

    card.authenticate(kind.info, card_number)?;
    let judged = Judged {
        trust,
        at,
        card_number,
    };
    read_files(card, &kind, judged, data)
}

/// What the files of an opened card are judged against.
#[derive(Clone, Copy)]
pub(super) struct Judged<'a> {
    /// The roots the card certificate must chain to.
    pub trust: &'a TrustStore,
    /// The time the certificates must be valid at.
    pub at: SystemTime,
    /// The card number the chip opened with (DF1's `C2` must hold it).
    pub card_number: &'a str,
}

/// DF1–DF3 of an opened card of `kind`: the signed fields, the check code, the certificate
/// and its chain; `Ok` is a genuine card.
pub(super) fn read_files(
    card: &mut impl CardFiles,
    kind: &CardKind,
    Judged {
        trust,
        at,
        card_number,
    }: Judged<'_>,
    data: &mut CardData,
) -> Step<String> {
    let generation = kind.info.generation;
    card.select(Df::Df1)?;
    let signed = match kind.df1 {
        Df1Rows::First { front, face } => read_gen1_df1(card, kind, front, face, data)?,
        Df1Rows::Second {
            number,
            printed,
            images,
            address,
        } => {
            let rows = [number, printed, images, address];
            read_gen2_df1(card, kind, rows, card_number, data)?
        }
    };

    card.select(Df::Df2)?;
    for ef in kind.df2() {
        // DF2 EFs are named by their label alone in messages (`DF2/EF01`).
        let name = ef.label_text();
        let content = card.read_plain(ef, name)?;
        for t in parse(&content, name)? {
            let value = field_text(&t, generation, name)?;
            data.fields.insert(format!("{:02X}", t.tag), value);
        }
    }

    card.select(Df::Df3)?;
    let df3_ef = kind.check_code_ef;
    let df3 = card.read_plain(df3_ef, df3_ef.name)?;
    let df3 = parse(&df3, df3_ef.label_text())?;
    let code = tlv::find(&df3, kind.check_code_tag).unwrap_or_default();
    let cert_field = tlv::find(&df3, kind.certificate_tag).unwrap_or_default();
    data.check_code_length = Some(code.len());
    if trim_zeros(code).is_empty() || trim_zeros(cert_field).is_empty() {
        return stop(
            VerdictKind::Forged,
            Some(Reason::MissingSignature),
            "check code or certificate is absent or empty",
        );
    }
    let cert = ParsedCertificate::from_card_field(cert_field).or_else(|e| {
        stop(
            VerdictKind::Forged,
            Some(Reason::MalformedCertificate),
            format!("card certificate: {e}"),
        )
    })?;
    let mut info = CertificateInfo {
        subject: cert.subject(),
        issuer: cert.issuer(),
        serial: cert.serial(),
        not_before_unix: cert.not_before().as_secs(),
        not_after_unix: cert.not_after().as_secs(),
        der_length: cert.der.len(),
        trusted_root: None,
    };
    data.certificate = Some(info.clone());

    if !(kind.info.signature_verifies)(&cert, &signed, code) {
        return stop(
            VerdictKind::Forged,
            Some(Reason::SignatureMismatch),
            format!(
                "check code ({} bytes) does not verify over the signed fields with the card certificate",
                code.len()
            ),
        );
    }

    let root_name = trusted_chain(&cert, trust, at)?;
    info.trusted_root = Some(root_name.clone());
    data.certificate = Some(info);
    Ok(format!(
        "check code verified; certificate chains to {root_name}"
    ))
}

/// Generation 1 DF1: front image and face image; the signed data.
fn read_gen1_df1(
    card: &mut impl CardFiles,
    kind: &CardKind,
    front_row: &EfRow,
    face_row: &EfRow,
    data: &mut CardData,
) -> Step<Vec<u8>> {
    let front_ef = card.read_sm(front_row)?;
    let front = single(&front_ef, 0xD0, "D0")?.to_vec();
    let face_ef = card.read_sm(face_row)?;
    let face = optional(&face_ef, 0xD1, "D1")?.unwrap_or_default().to_vec();
    data.front_image = Some(ImageInfo::of(&front));
    data.face_image = Some(ImageInfo::of(&face));
    // Signed order: D0 ‖ D1, each padded to its area (spec §7.1).
    Ok(kind.layout.signed_data(&[&front, &face]))
}

/// Generation 2 DF1: card number, printed entries, name and face images, address image;
/// the signed data.
fn read_gen2_df1(
    card: &mut impl CardFiles,
    kind: &CardKind,
    [number_row, printed_row, images_row, address_row]: [&EfRow; 4],
    card_number: &str,
    data: &mut CardData,
) -> Step<Vec<u8>> {
    let generation = kind.info.generation;
    let number_ef = card.read_sm(number_row)?;
    let number = single(&number_ef, 0xC2, "C2")?;
    data.card_number = Some(text(number));
    if number != card_number.as_bytes() {
        return stop(
            VerdictKind::Forged,
            Some(Reason::MalformedData),
            format!(
                "C2 holds {:?}, but the chip opened with {card_number:?}",
                text(number)
            ),
        );
    }
    let printed_ef = card.read_sm(printed_row)?;
    let printed = parse(&printed_ef, printed_row.name)?;
    let expected: &[u16] = if kind.residence_card {
        &[0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCE, 0xCA, 0xCB, 0xCC, 0xCD]
    } else {
        &[0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCE]
    };
    let tags: Vec<u16> = printed.iter().map(|t| t.tag).collect();
    if tags != expected {
        return malformed(format!("printed entries carry tags {}", tag_list(&tags)));
    }
    let mut printed_values = Vec::new();
    for t in &printed {
        printed_values.extend_from_slice(t.value);
        let value = field_text(t, generation, printed_row.label_text())?;
        data.printed.insert(format!("{:02X}", t.tag), value);
    }
    let images_ef = card.read_sm(images_row)?;
    let images = parse(&images_ef, images_row.name)?;
    let name = required(&images, 0xD0, "D0")?;
    let face = tlv::find(&images, 0xD1).unwrap_or_default();
    data.name_image = Some(ImageInfo::of(name));
    data.face_image = Some(ImageInfo::of(face));
    let address_ef = card.read_sm(address_row)?;
    data.address_image = Some(ImageInfo::of(single(&address_ef, 0xDFD1, "DF D1")?));
    // Signed order: printed values ‖ D1 face ‖ D0 name (spec §7.1).
    Ok(kind.layout.signed_data(&[&printed_values, face, name]))
}

/// The name of the trusted root that signed `cert`, both valid at `at`.
pub(super) fn trusted_chain(
    cert: &ParsedCertificate,
    trust: &TrustStore,
    at: SystemTime,
) -> Step<String> {
    let at = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let issuers: Vec<_> = trust.issuers_of(cert).collect();
    if issuers.is_empty() {
        return stop(
            VerdictKind::UntrustedCertificate,
            None,
            format!("no trusted root named {}", cert.issuer()),
        );
    }
    let Some((root_name, root)) = issuers.into_iter().find(|(_, root)| root.verifies(cert)) else {
        return stop(
            VerdictKind::Forged,
            Some(Reason::UnknownSigner),
            format!(
                "card certificate claims issuer {} but no trusted root of that name signed it",
                cert.issuer()
            ),
        );
    };
    let expired = if !cert.valid_at(at) {
        Some("card certificate")
    } else if !root.valid_at(at) {
        Some(root_name)
    } else {
        None
    };
    if let Some(which) = expired {
        return stop(
            VerdictKind::Forged,
            Some(Reason::CertificateExpired),
            format!("{which} is outside its validity period"),
        );
    }
    Ok(root_name.to_owned())
}

/// A card whose card type cannot be read with a normal status is no residence card.
fn not_residence_on_status(Stop(verdict, detail): Stop) -> Stop {
    if verdict.reason == Some(Reason::UnexpectedStatus) {
        Stop(Verdict::new(VerdictKind::NotResidenceCard, None), detail)
    } else {
        Stop(verdict, detail)
    }
}
