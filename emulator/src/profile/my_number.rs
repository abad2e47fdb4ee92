//! From a merged `card.kind: my_number` profile to a [`MyNumberImage`]: every application
//! of the table ([`crate::my_number::apps::APPS`]) with the EFs, PINs and keys the profile
//! gives, each bad field reported at its place in the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

use super::load::{Locator, ProfileError};
use super::schema::{JpkiDoc, ProfileDoc};
use crate::chip::ChipKind;
use crate::my_number::JPKI_ATR;
use crate::my_number::apps::{
    APPS, AppRow, Content, FileRow, Initial, MAX_FILE, Secret, SecretKind, SecretRow, SizeRule,
};
use crate::my_number::image::{AppImage, FileImage, KeyImage, MyNumberImage, PinImage};
use crate::transport::reader_layer::ReaderConfig;

/// The error of a field the compile needs that the profile chain does not set.
const REQUIRED: &str = "required, but neither this profile nor what it extends sets it";

/// Token label of a contact/contactless card (spec notes B2).
pub(crate) const DEFAULT_TOKEN_LABEL: &str = "JPKIAPICCTOKEN2";

/// RSA modulus size the card's keys have (B2): 2048 bits.
const KEY_BYTES: usize = 256;

/// Profile sections only a residence card has: set on a My Number profile, they would be
/// ignored silently, so they are errors.
fn residence_fields(doc: &ProfileDoc) -> [(&'static str, bool); 16] {
    let card = doc.card.clone().unwrap_or_default();
    [
        ("card.generation", card.generation.is_some()),
        ("card.type", card.card_type.is_some()),
        ("card.number", card.number.is_some()),
        ("card.spec_version", card.spec_version.is_some()),
        ("images", doc.images.is_some()),
        ("address", doc.address.is_some()),
        ("back_side", doc.back_side.is_some()),
        ("text_encoding", doc.text_encoding.is_some()),
        ("printed", doc.printed.is_some()),
        ("work_permission", doc.work_permission.is_some()),
        ("application_pending", doc.application_pending.is_some()),
        ("other", doc.other.is_some()),
        ("signature", doc.signature.is_some()),
        ("face_layout", doc.face_layout.is_some()),
        ("chip_card_number", doc.chip_card_number.is_some()),
        ("knobs", doc.knobs.is_some()),
    ]
}

/// A residence profile must not set the My Number sections (they would be ignored).
pub(crate) fn check_residence(
    doc: &ProfileDoc,
    locator: &Locator,
    path: &Path,
) -> Result<(), ProfileError> {
    for (field, set) in [
        ("jpki", doc.jpki.is_some()),
        ("platform", doc.platform.is_some()),
        ("text_ap", doc.text_ap.is_some()),
        ("residence_ap", doc.residence_ap.is_some()),
    ] {
        if set {
            return Err(locator.error(
                path,
                field,
                "only a `card: {kind: my_number}` profile has this section",
            ));
        }
    }
    Ok(())
}

pub(super) struct Ctx<'a> {
    file: &'a Path,
    locator: &'a Locator,
}

impl Ctx<'_> {
    pub(super) fn error(&self, field: &str, message: impl Into<String>) -> ProfileError {
        self.locator.error(self.file, field, message)
    }

    pub(super) fn require<'v, T>(
        &self,
        value: &'v Option<T>,
        field: &str,
    ) -> Result<&'v T, ProfileError> {
        value.as_ref().ok_or_else(|| self.error(field, REQUIRED))
    }

    fn read(&self, path: &Path, field: &str) -> Result<Vec<u8>, ProfileError> {
        super::load::read_limited(path)
            .map_err(|e| self.error(field, format!("cannot read {}: {e}", path.display())))
    }

    /// A DER certificate as OpenSC reads it: `30 82 LL LL` then exactly that many bytes.
    fn certificate(&self, path: &Path, field: &str) -> Result<Vec<u8>, ProfileError> {
        let der = self.read(path, field)?;
        let declared = match der.as_slice() {
            [0x30, 0x82, hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])) + 4,
            _ => {
                return Err(self.error(
                    field,
                    format!(
                        "{} is not a DER certificate starting `30 82` (OpenSC reads a JPKI \
                         certificate's size from its first 4 bytes)",
                        path.display()
                    ),
                ));
            }
        };
        if declared != der.len() || der.len() > MAX_FILE {
            return Err(self.error(
                field,
                format!(
                    "{} is {} bytes but its DER header says {declared} (at most {MAX_FILE})",
                    path.display(),
                    der.len()
                ),
            ));
        }
        Ok(der)
    }

    pub(super) fn key(
        &self,
        path: &Path,
        field: &str,
    ) -> Result<Arc<rsa::PrivateKey>, ProfileError> {
        let bytes = self.read(path, field)?;
        let pem = String::from_utf8(bytes)
            .map_err(|_| self.error(field, format!("{} is not PEM text", path.display())))?;
        let key = rsa::PrivateKey::from_pkcs8_pem(&pem).map_err(|e| {
            self.error(
                field,
                format!("{} is not a PKCS#8 RSA private key: {e}", path.display()),
            )
        })?;
        if key.size() != KEY_BYTES {
            return Err(self.error(
                field,
                format!(
                    "{} is a {}-bit key; the card's keys are RSA-2048",
                    path.display(),
                    key.size() * 8
                ),
            ));
        }
        Ok(Arc::new(key))
    }
}

/// Builds the chip of a merged `kind: my_number` profile.
pub(crate) fn compile(
    doc: &ProfileDoc,
    file: &Path,
    locator: &Locator,
) -> Result<MyNumberImage, ProfileError> {
    let ctx = Ctx { file, locator };
    // A specified card holds residence data too (its 在留AP, compiled apart).
    let specified = doc.card.as_ref().and_then(|c| c.kind) == Some(ChipKind::SpecifiedResidence);
    if let Some((field, _)) = residence_fields(doc)
        .into_iter()
        .find(|&(_, set)| set && !specified)
    {
        return Err(ctx.error(
            field,
            "only a residence-card profile has this field; this profile is `kind: my_number`",
        ));
    }
    let jpki = ctx.require(&doc.jpki, "jpki")?;
    let mut apps = Vec::with_capacity(APPS.len());
    for row in APPS {
        apps.push(build_app(&ctx, row, jpki)?);
    }
    let knobs = doc.platform.clone().unwrap_or_default();
    let text_ap = match &doc.text_ap {
        Some(section) => Some(super::text_ap::compile(&ctx, section, &knobs, &mut apps)?),
        None => None,
    };
    let mut reader = ReaderConfig {
        atr: JPKI_ATR.to_vec(),
        ..ReaderConfig::default()
    };
    if let Some(section) = &doc.reader {
        let config = section
            .config(doc.seed.unwrap_or(0))
            .map_err(|(field, message)| ctx.error(field, message))?;
        reader.get_data = config.get_data;
        reader.pupi = config.pupi;
        if section.atr.is_some() {
            reader.atr = config.atr;
        }
    }
    Ok(MyNumberImage {
        apps,
        knobs,
        seed: doc.seed.unwrap_or(0),
        reader,
        text_ap,
        residence_ap: None,
    })
}

fn build_app(ctx: &Ctx, row: &'static AppRow, jpki: &JpkiDoc) -> Result<AppImage, ProfileError> {
    let mut files = Vec::with_capacity(row.files.len());
    for file in row.files {
        if let Some(content) = content(ctx, file, jpki)? {
            files.push(FileImage { row: file, content });
        }
    }
    let mut pins = Vec::new();
    let mut keys = Vec::new();
    for secret in row.secrets {
        match secret.kind {
            SecretKind::Pin {
                format,
                max_tries,
                initial,
            } => {
                let (value_field, tries_field, value, tries) = match secret.secret {
                    Secret::AuthPin => (
                        "jpki.auth_pin",
                        "jpki.auth_pin_tries_left",
                        &jpki.auth_pin,
                        jpki.auth_pin_tries_left,
                    ),
                    Secret::SignPassword => (
                        "jpki.sign_password",
                        "jpki.sign_password_tries_left",
                        &jpki.sign_password,
                        jpki.sign_password_tries_left,
                    ),
                    Secret::AuthKey
                    | Secret::SignKey
                    | Secret::Unset
                    | Secret::TextPin
                    | Secret::CheckNumberA
                    | Secret::CheckNumberB => {
                        pins.push(blocked(secret, max_tries));
                        continue;
                    }
                };
                // The signature password of a card without a signature certificate.
                if value.is_none() && secret.secret == Secret::SignPassword {
                    if jpki.sign_certificate.is_some() {
                        return Err(
                            ctx.error(value_field, "required when `jpki.sign_certificate` is set")
                        );
                    }
                    pins.push(blocked(secret, max_tries));
                    continue;
                }
                let value = ctx.require(value, value_field)?;
                if !format.accepts(value) {
                    return Err(ctx.error(
                        value_field,
                        format!("{} must be {}", secret.name, format.describe()),
                    ));
                }
                let tries = tries.unwrap_or(max_tries);
                if tries > max_tries {
                    return Err(ctx.error(
                        tries_field,
                        format!(
                            "{} allows at most {max_tries} tries, not {tries}",
                            secret.name
                        ),
                    ));
                }
                let tries = match initial {
                    Initial::Issued => tries,
                    Initial::Blocked => 0,
                };
                pins.push(PinImage {
                    row: secret,
                    value: Some(value.as_bytes().to_vec()),
                    max_tries,
                    tries_left: tries,
                });
            }
            SecretKind::PrivateKey { pin } => {
                let (field, path) = match secret.secret {
                    Secret::AuthKey => ("jpki.auth_key", &jpki.auth_key),
                    Secret::SignKey => ("jpki.sign_key", &jpki.sign_key),
                    Secret::AuthPin
                    | Secret::SignPassword
                    | Secret::Unset
                    | Secret::TextPin
                    | Secret::CheckNumberA
                    | Secret::CheckNumberB => continue,
                };
                let Some(path) = path else {
                    if secret.secret == Secret::SignKey && jpki.sign_certificate.is_none() {
                        continue;
                    }
                    return Err(ctx.error(field, REQUIRED));
                };
                keys.push(KeyImage {
                    row: secret,
                    key: ctx.key(path, field)?,
                    pin,
                });
            }
        }
    }
    Ok(AppImage {
        row,
        files,
        pins,
        keys,
    })
}

fn blocked(row: &'static SecretRow, max_tries: u8) -> PinImage {
    PinImage {
        row,
        value: None,
        max_tries,
        tries_left: 0,
    }
}

/// The bytes of one EF, or `None` when the card does not hold it.
fn content(ctx: &Ctx, row: &FileRow, jpki: &JpkiDoc) -> Result<Option<Vec<u8>>, ProfileError> {
    let certificate = |path: &Option<PathBuf>, field: &str| -> Result<Vec<u8>, ProfileError> {
        ctx.certificate(ctx.require(path, field)?, field)
    };
    let bytes = match row.content {
        Content::TokenInfo => token_info(ctx, jpki)?,
        Content::CertificateMap => match &jpki.certificate_map {
            Some(bytes) => bytes.0.clone(),
            None if jpki.sign_certificate.is_some() => vec![0x8F, 0x8F, 0x00],
            None => vec![0x00, 0x8F, 0x00],
        },
        Content::AuthCertificate => certificate(&jpki.auth_certificate, "jpki.auth_certificate")?,
        Content::AuthCaCertificate => {
            certificate(&jpki.auth_ca_certificate, "jpki.auth_ca_certificate")?
        }
        Content::SignCertificate => match &jpki.sign_certificate {
            Some(path) => ctx.certificate(path, "jpki.sign_certificate")?,
            None => {
                if jpki.sign_key.is_some() {
                    return Err(ctx.error(
                        "jpki.sign_key",
                        "a signature key needs `jpki.sign_certificate` (a card without a \
                         signature certificate has no signature key)",
                    ));
                }
                return Ok(None);
            }
        },
        Content::SignCaCertificate => {
            certificate(&jpki.sign_ca_certificate, "jpki.sign_ca_certificate")?
        }
        Content::Supplied => return Ok(None),
    };
    if let SizeRule::Fixed(size) = row.size
        && bytes.len() != size
    {
        let field = match row.content {
            Content::CertificateMap => "jpki.certificate_map",
            _ => "jpki.token_label",
        };
        return Err(ctx.error(
            field,
            format!(
                "{} holds exactly {size} bytes, not {}",
                row.name,
                bytes.len()
            ),
        ));
    }
    Ok(Some(bytes))
}

/// `0006`: PKCS#11 `CK_TOKEN_INFO` with 32-bit big-endian integers, 160 bytes (B2): label,
/// manufacturer, model and serial space-padded; every count and version zero; the time
/// blank. Only the label is known from real cards; the rest is inferred.
fn token_info(ctx: &Ctx, jpki: &JpkiDoc) -> Result<Vec<u8>, ProfileError> {
    let label = jpki.token_label.as_deref().unwrap_or(DEFAULT_TOKEN_LABEL);
    if label.len() > 32 || !label.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ctx.error(
            "jpki.token_label",
            "a token label is at most 32 printable ASCII characters",
        ));
    }
    let mut out = Vec::with_capacity(160);
    let padded = |out: &mut Vec<u8>, text: &[u8], width: usize| {
        out.extend_from_slice(text);
        out.resize(out.len() + width - text.len(), b' ');
    };
    padded(&mut out, label.as_bytes(), 32);
    padded(&mut out, b"", 32); // manufacturerID
    padded(&mut out, b"", 16); // model
    padded(&mut out, b"", 16); // serialNumber
    // flags and the ten counts/sizes (32-bit BE), then hardware and firmware versions.
    out.resize(out.len() + 11 * 4 + 4, 0);
    padded(&mut out, b"", 16); // utcTime
    Ok(out)
}
