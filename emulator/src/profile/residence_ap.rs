//! A `card.kind: specified_residence` profile (特定在留カード `07`, 特定特別永住者証明書 `08`):
//! the My Number platform of its `jpki:` (and `text_ap:`) sections, plus the 在留AP whose data
//! the residence compiler builds from the profile's residence fields with the `07`/`08` layout
//! rows — so the data, the check code over them, `tamper:` and the signer's certificate work
//! exactly as on a generation-2 card.
//!
//! Why a kind of its own rather than a `residence_ap:` section on `kind: my_number`: the
//! residence data stay at the top level of the profile, where every residence-card field,
//! `signature:` and `tamper:` already are and already have located errors; the card is still
//! served by the My Number engine (its JPKI AP answers first, as a real card's does).

use std::path::Path;
use std::sync::Arc;

use super::load::{Locator, ProfileError};
use super::schema::ProfileDoc;
use super::{Profile, compile, my_number};
use crate::chip::ChipImage;
use crate::my_number::residence_ap::{ResidenceApImage, ResidenceDeliveryKeyFormat};
use crate::protocol::Generation;
use crate::protocol::key_delivery::{DeliveryPublicKey, PublicKeyFormat};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

/// Loads a merged `specified_residence` profile.
pub(super) fn load(
    path: &Path,
    doc: &ProfileDoc,
    tampered: Option<&ProfileDoc>,
    locator: &Locator,
) -> Result<Profile, ProfileError> {
    let error = |field: &str, message: &str| locator.error(path, field, message);
    let required = |field: &str| super::required(locator, path, field);
    let card = doc.card.as_ref().ok_or_else(|| required("card"))?;
    let card_type = card.card_type.ok_or_else(|| required("card.type"))?;
    if !card_type.is_specified() {
        return Err(error(
            "card.type",
            "a specified card is `specified_residence_card` (C1 07) or \
             `specified_special_permanent_resident_certificate` (C1 08)",
        ));
    }
    if card.generation == Some(Generation::First) {
        return Err(error(
            "card.generation",
            "a specified card has generation 2's data format (leave it out or write 2)",
        ));
    }
    // The residence data, compiled as a generation-2 card of the 07/08 layout.
    let second = |d: &ProfileDoc| {
        let mut d = d.clone();
        if let Some(c) = d.card.as_mut() {
            c.generation = Some(Generation::Second);
        }
        d
    };
    let mut data = compile::compile(&second(doc), path, locator)?;
    if let Some(tampered) = tampered {
        data = compile::keep_signature(compile::compile(&second(tampered), path, locator)?, &data);
    }
    if let Some(edits) = doc.tamper.as_ref().and_then(|t| t.files.as_deref()) {
        compile::apply_edits(&mut data, edits, path, locator)?;
    }
    let section = doc
        .residence_ap
        .as_ref()
        .ok_or_else(|| required("residence_ap"))?;
    let key_path = section
        .delivery_key
        .as_ref()
        .ok_or_else(|| required("residence_ap.delivery_key"))?;
    let field = "residence_ap.delivery_key";
    let pem = super::load::read_limited(key_path)
        .map_err(|e| error(field, &format!("cannot read {}: {e}", key_path.display())))?;
    let delivery_key = std::str::from_utf8(&pem)
        .ok()
        .and_then(|pem| rsa::PrivateKey::from_pkcs8_pem(pem).ok())
        .filter(|k| k.size() == 256)
        .ok_or_else(|| {
            error(
                field,
                &format!(
                    "{} is not a PKCS#8 PEM RSA-2048 private key",
                    key_path.display()
                ),
            )
        })?;

    let mut image = my_number::compile(doc, path, locator)?;
    let format = match image.knobs.residence_delivery_key_format {
        ResidenceDeliveryKeyFormat::RawModulus => PublicKeyFormat::RawModulus,
        ResidenceDeliveryKeyFormat::SubjectPublicKeyInfo => PublicKeyFormat::SubjectPublicKeyInfo,
        ResidenceDeliveryKeyFormat::PlatformTlv => PublicKeyFormat::PlatformTlv,
    };
    let delivery_public_key = DeliveryPublicKey(delivery_key.to_public_key())
        .encode(format)
        .map_err(|e| error(field, &e.to_string()))?;
    image.residence_ap = Some(ResidenceApImage {
        data: Arc::new(data),
        delivery_key: Arc::new(delivery_key),
        delivery_public_key,
        without_df2: section.without_df2.unwrap_or(false),
    });
    let image = Arc::new(image);
    let view = ChipImage::MyNumber(Arc::clone(&image)).residence_view();
    let faults = super::my_number_faults(path, doc, locator, true)?;
    let printed = card.number.clone().ok_or_else(|| required("card.number"))?;
    let super::Header {
        name,
        path,
        description,
        expect,
    } = super::header(path, doc, locator)?;
    Ok(Profile {
        name,
        path,
        description,
        generation: Generation::Second,
        card_type,
        card_number: printed,
        expect,
        image: view,
        faults: faults.into(),
        my_number: Some(image),
    })
}
