//! From a profile's `text_ap:` section to the 券面事項入力補助AP's files and secrets (spec
//! notes B5, B10): the data builders are [`crate::my_number::text_ap`] and
//! [`crate::my_number::cv_cert`] (the checker parses with the same code); this module only
//! gathers the profile's values, reports each bad one at its place, and fills the
//! application's row of the image.

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

use super::load::ProfileError;
use super::my_number::Ctx;
use super::schema::{SexDoc, TextApDoc};
use crate::my_number::apps::{App, Secret, SecretKind};
use crate::my_number::cv_cert::{CvCertificate, KeyId};
use crate::my_number::image::{AppImage, FileImage, MyNumberKnobs, PinImage};
use crate::my_number::individual_number::NumberDigits;
use crate::my_number::text::TextApImage;
use crate::my_number::text_ap::{
    self, BasicInfo, BirthDate, IntegrityRecord, Sex, basic_info_ef, number_ef,
};
use crate::protocol::key_delivery::DeliveryPublicKey;
use crate::protocol::tlv;

/// Key ID of the rclab TEST CV CA (16 bytes; the real test CA's is published as `6000033`,
/// whose 16-byte form is not known).
pub(crate) const TEST_CV_CA_KEY_ID: KeyId = KeyId(*b"rclab TEST CV CA");
/// Key ID of a card's text-AP key under the TEST CV CA.
pub(crate) const TEST_TEXT_KEY_ID: KeyId = KeyId(*b"rclab TEST TEXT ");

/// Fills the text AP of `apps` from `doc`; returns its keys for the engine.
pub(super) fn compile(
    ctx: &Ctx,
    doc: &TextApDoc,
    knobs: &MyNumberKnobs,
    apps: &mut [AppImage],
) -> Result<TextApImage, ProfileError> {
    let Some(app) = apps.iter_mut().find(|a| a.app() == App::TextSupport) else {
        return Err(ctx.error("text_ap", "the application table has no text-support AP"));
    };
    let pin = ctx.require(&doc.pin, "text_ap.pin")?;
    let number = number(ctx, doc)?;
    let info = BasicInfo {
        name: ctx.require(&doc.name, "text_ap.name")?.clone(),
        address: ctx.require(&doc.address, "text_ap.address")?.clone(),
        birth_date: birth_date(ctx, doc)?,
        sex: match ctx.require(&doc.sex, "text_ap.sex")? {
            SexDoc::Unknown => Sex::Unknown,
            SexDoc::Male => Sex::Male,
            SexDoc::Female => Sex::Female,
            SexDoc::NotApplicable => Sex::NotApplicable,
        },
    };
    let check_b = check_number_b(ctx, doc, info.birth_date)?;
    let card_key = ctx.key(
        ctx.require(&doc.card_key, "text_ap.card_key")?,
        "text_ap.card_key",
    )?;
    let ca_key = ctx.key(
        ctx.require(&doc.cv_ca_key, "text_ap.cv_ca_key")?,
        "text_ap.cv_ca_key",
    )?;
    let delivery_key = ctx.key(
        ctx.require(&doc.delivery_key, "text_ap.delivery_key")?,
        "text_ap.delivery_key",
    )?;
    let built = |field: &str, e: String| ctx.error(field, e);

    // The files as signed, then the changes a forger made afterwards.
    let mut ef_0001 = number_ef(&number).to_vec();
    let mut ef_0002 = basic_info_ef(&info).map_err(|e| built("text_ap.name", e.to_string()))?;
    let record = IntegrityRecord::sign(&ef_0001, &ef_0002, &card_key)
        .map_err(|e| built("text_ap.card_key", e.to_string()))?;
    if let Some(changes) = &doc.after_signing {
        if let Some(other) = &changes.individual_number {
            let digits = NumberDigits::parse(other.as_bytes())
                .map_err(|e| built("text_ap.after_signing.individual_number", e.to_string()))?;
            ef_0001 = number_ef(&digits).to_vec();
        }
        let mut changed = info.clone();
        if let Some(name) = &changes.name {
            changed.name = name.clone();
        }
        if let Some(address) = &changes.address {
            changed.address = address.clone();
        }
        ef_0002 =
            basic_info_ef(&changed).map_err(|e| built("text_ap.after_signing", e.to_string()))?;
    }
    let ef_0003 = record
        .encode()
        .map_err(|e| built("text_ap.card_key", e.to_string()))?;
    let card_public = card_key.to_public_key();
    let ef_0004 = CvCertificate::sign(TEST_CV_CA_KEY_ID, TEST_TEXT_KEY_ID, &card_public, &ca_key)
        .and_then(|c| c.encode())
        .map_err(|e| built("text_ap.cv_ca_key", e.to_string()))?;
    let ef_0005 = key_information(&card_key).map_err(|e| built("text_ap.card_key", e))?;
    let ef_0006 = text_ap::delivery_key_ef(&DeliveryPublicKey(delivery_key.to_public_key()))
        .map_err(|e| built("text_ap.delivery_key", e.to_string()))?;
    let ef_0007 =
        card_public_key_record(&card_key, &ca_key).map_err(|e| built("text_ap.cv_ca_key", e))?;
    let contents = [
        (0x0001, ef_0001),
        (0x0002, ef_0002),
        (0x0003, ef_0003),
        (0x0004, ef_0004),
        (0x0005, ef_0005),
        (0x0006, ef_0006),
        (0x0007, ef_0007),
    ];
    app.files = app
        .row
        .files
        .iter()
        .filter_map(|row| {
            let content = contents.iter().find(|(fid, _)| *fid == row.fid)?.1.clone();
            Some(FileImage { row, content })
        })
        .collect();

    let tries_left = doc.pin_tries_left.unwrap_or(3);
    let mut pins = Vec::with_capacity(app.row.secrets.len());
    for row in app.row.secrets {
        let SecretKind::Pin {
            format, max_tries, ..
        } = row.kind
        else {
            continue;
        };
        let (value, max, left) = match row.secret {
            Secret::TextPin => {
                if !format.accepts(pin) {
                    return Err(ctx.error(
                        "text_ap.pin",
                        format!("{} must be {}", row.name, format.describe()),
                    ));
                }
                if tries_left > max_tries {
                    return Err(ctx.error(
                        "text_ap.pin_tries_left",
                        format!("{} allows at most {max_tries} tries", row.name),
                    ));
                }
                (Some(pin.as_bytes().to_vec()), max_tries, tries_left)
            }
            Secret::CheckNumberA => {
                let max = knobs.check_number_tries.count();
                (Some(number.as_bytes().to_vec()), max, max)
            }
            Secret::CheckNumberB => {
                let max = knobs.check_number_tries.count();
                (Some(check_b.clone().into_bytes()), max, max)
            }
            _ => (None, max_tries, 0),
        };
        pins.push(PinImage {
            row,
            value,
            max_tries: max,
            tries_left: left,
        });
    }
    app.pins = pins;
    Ok(TextApImage {
        card_key,
        delivery_key,
    })
}

/// The individual number, its check digit judged: right, or wrong on purpose.
fn number(ctx: &Ctx, doc: &TextApDoc) -> Result<NumberDigits, ProfileError> {
    let field = "text_ap.individual_number";
    let text = ctx.require(&doc.individual_number, field)?;
    let digits =
        NumberDigits::parse(text.as_bytes()).map_err(|e| ctx.error(field, e.to_string()))?;
    let right = digits.checked().is_ok();
    match (right, doc.wrong_check_digit.unwrap_or(false)) {
        (true, false) | (false, true) => Ok(digits),
        (false, false) => Err(ctx.error(
            field,
            format!(
                "{text}: the check digit should be {} (set `wrong_check_digit: true` for a \
                 forged number)",
                digits.expected_check_digit()
            ),
        )),
        (true, true) => Err(ctx.error(
            "text_ap.wrong_check_digit",
            format!("{text} has the right check digit"),
        )),
    }
}

fn birth_date(ctx: &Ctx, doc: &TextApDoc) -> Result<BirthDate, ProfileError> {
    let field = "text_ap.birth_date";
    let date = ctx.require(&doc.birth_date, field)?;
    BirthDate::parse(date.0.as_bytes()).map_err(|e| ctx.error(field, e.to_string()))
}

/// 照合番号B (B6): the birth date in 和暦 `YYMMDD` ‖ expiry year `YYYY` ‖ security code.
fn check_number_b(ctx: &Ctx, doc: &TextApDoc, born: BirthDate) -> Result<String, ProfileError> {
    let year = ctx.require(&doc.expiry_year, "text_ap.expiry_year")?;
    let code = ctx.require(&doc.security_code, "text_ap.security_code")?;
    let (y, m, d) = born.ymd();
    let era_year = japanese_era_year(y, m, d).ok_or_else(|| {
        ctx.error(
            "text_ap.birth_date",
            "before the Meiji era: no 和暦 year for 照合番号B",
        )
    })?;
    Ok(format!("{era_year:02}{m:02}{d:02}{}{}", year.0, code.0))
}

/// The year of the Japanese era a Gregorian date falls in (Meiji to Reiwa), `None` before
/// 1868-01-25.
pub(crate) fn japanese_era_year(year: u16, month: u8, day: u8) -> Option<u16> {
    // First day of each era and its first Gregorian year, newest first.
    const ERAS: [((u16, u8, u8), u16); 5] = [
        ((2019, 5, 1), 2019),
        ((1989, 1, 8), 1989),
        ((1926, 12, 25), 1926),
        ((1912, 7, 30), 1912),
        ((1868, 1, 25), 1868),
    ];
    ERAS.iter()
        .find(|(start, _)| (year, month, day) >= *start)
        .map(|(_, first)| year - first + 1)
}

/// `90 e ‖ 91 n` of an RSA key (the body form of B5's public keys).
fn key_tlvs(key: &rsa::PublicKey) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(270);
    tlv::push(&mut out, 0x90, &key.e_bytes()).map_err(|e| e.to_string())?;
    tlv::push(&mut out, 0x91, &DeliveryPublicKey(key.clone()).modulus())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// EF `0005` (B5): `FF 40 { DF41 04 01 03 0E 01, DF42 10 <key id>, DF43 80 <32 B ‖ 96 × FF> }`.
/// DF41's meaning is unknown (copied as measured); DF43's 32 bytes are taken as SHA-256 of
/// the card key's modulus \[I\].
fn key_information(card_key: &PrivateKey) -> Result<Vec<u8>, String> {
    let mut value = Vec::with_capacity(180);
    let mut hash = Sha256::digest(DeliveryPublicKey(card_key.to_public_key()).modulus()).to_vec();
    hash.resize(128, 0xFF);
    for (tag, v) in [
        (0xDF41, &[0x01, 0x03, 0x0E, 0x01][..]),
        (0xDF42, &TEST_TEXT_KEY_ID.0[..]),
        (0xDF43, &hash[..]),
    ] {
        tlv::push(&mut value, tag, v).map_err(|e| e.to_string())?;
    }
    tlv::encode(0xFF40, &value).map_err(|e| e.to_string())
}

/// EF `0007` (B5): `FF 50 { DF51 <card public key 90/91>, DF52 <issuer signature> }`, the
/// signature PKCS#1 v1.5 SHA-256 by the CV CA over the DF51 TLV \[I\].
fn card_public_key_record(card_key: &PrivateKey, ca: &PrivateKey) -> Result<Vec<u8>, String> {
    let mut dfs = Vec::with_capacity(600);
    tlv::push(&mut dfs, 0xDF51, &key_tlvs(&card_key.to_public_key())?)
        .map_err(|e| e.to_string())?;
    let signature = ca
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&dfs))
        .map_err(|e| e.to_string())?;
    tlv::push(&mut dfs, 0xDF52, &signature).map_err(|e| e.to_string())?;
    tlv::encode(0xFF50, &dfs).map_err(|e| e.to_string())
}

/// The era arithmetic of 照合番号B (known answers).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn era_years_match_the_calendar() {
        // B6's example: 1980-02-17 is Showa 55.
        assert_eq!(japanese_era_year(1980, 2, 17), Some(55));
        assert_eq!(japanese_era_year(1989, 1, 7), Some(64));
        assert_eq!(japanese_era_year(1989, 1, 8), Some(1));
        assert_eq!(japanese_era_year(1990, 3, 1), Some(2));
        assert_eq!(japanese_era_year(2019, 4, 30), Some(31));
        assert_eq!(japanese_era_year(2019, 5, 1), Some(1));
        assert_eq!(japanese_era_year(1868, 1, 24), None);
    }
}
