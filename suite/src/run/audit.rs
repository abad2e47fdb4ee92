//! Privacy audit: what a checker read, from the emulator-side transcript.
//!
//! A checker only needs the card type, the signed fields and the check code to reach a
//! verdict; everything else it reads (address, work permissions, the card-number EF) is
//! personal data it did not need.

use serde::{Deserialize, Serialize};

use rclab_emulator::card::{CardImage, Df};
use rclab_emulator::protocol::{AID_DF1, AID_DF2, AID_DF3, Generation, ins};
use rclab_emulator::transport::Exchange;

/// What a checker read beyond what its verdict needs (privacy audit).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyAudit {
    /// EFs read at least partly, by name, in first-read order.
    pub efs_read: Vec<String>,
    /// Of those, the ones the verdict does not need.
    pub unneeded_efs: Vec<String>,
    /// Whether the face image was read.
    pub face_image_read: bool,
    /// MUTUAL AUTHENTICATE commands sent.
    pub mutual_authenticate: usize,
    /// VERIFY commands sent.
    pub verify: usize,
    /// The card number appeared in clear in some command (it should only travel
    /// encrypted inside VERIFY).
    pub card_number_in_clear: bool,
    /// Response data bytes received (status words excluded).
    pub bytes_read: usize,
    /// Bytes of the EFs a verdict needs (card type, signed fields, check code).
    pub bytes_needed: usize,
}

/// INS of GET RESPONSE (ISO 7816-4), which a `61 xx` answer calls for.
const GET_RESPONSE: u8 = 0xC0;

/// EFs a verdict needs, `(DF, SFI)`: the MF (card type, format version), the signed
/// fields and the check code.
fn needed(generation: Generation) -> &'static [(Df, u8)] {
    match generation {
        Generation::First => &[
            (Df::Mf, 0x0A),
            (Df::Mf, 0x0B),
            (Df::Df1, 0x05),
            (Df::Df1, 0x06),
            (Df::Df3, 0x02),
        ],
        Generation::Second => &[
            (Df::Mf, 0x0A),
            (Df::Mf, 0x0B),
            (Df::Df1, 0x03),
            (Df::Df1, 0x04),
            (Df::Df3, 0x02),
        ],
    }
}

/// The EF holding the face image.
fn face_ef(generation: Generation) -> (Df, u8) {
    match generation {
        Generation::First => (Df::Df1, 0x06),
        Generation::Second => (Df::Df1, 0x04),
    }
}

/// Replays the transcript against the card's layout (current DF, current EF) to see which
/// EFs each READ BINARY touched.
pub fn audit(image: &CardImage, card_number: &str, transcript: &[Exchange]) -> PrivacyAudit {
    let mut report = PrivacyAudit::default();
    let mut df = Df::Mf;
    let mut current: Option<(Df, u8)> = None;
    let mut touched: Vec<(Df, u8)> = Vec::new();
    let number_hex = hex::encode_upper(card_number.as_bytes());
    for exchange in transcript {
        let Ok(command) = hex::decode(&exchange.command) else {
            continue;
        };
        let response = exchange
            .response
            .as_ref()
            .ok()
            .and_then(|r| hex::decode(r).ok())
            .unwrap_or_default();
        let sw = response
            .len()
            .checked_sub(2)
            .map(|i| (response[i], response[i + 1]));
        let ok = matches!(sw, Some((0x90, 0x00) | (0x62, 0x82)));
        report.bytes_read += response.len().saturating_sub(2);
        if exchange.command.contains(&number_hex) {
            report.card_number_in_clear = true;
        }
        let [_cla, instruction, p1, _p2, rest @ ..] = command.as_slice() else {
            continue;
        };
        match *instruction {
            ins::SELECT if ok => {
                let data = rest.get(1..).unwrap_or_default();
                if *p1 == 0x04 {
                    for (aid, d) in [(AID_DF1, Df::Df1), (AID_DF2, Df::Df2), (AID_DF3, Df::Df3)] {
                        if data.starts_with(&aid) {
                            df = d;
                            current = None;
                        }
                    }
                } else if *p1 == 0x00 && (data.is_empty() || data.starts_with(&[0x3F, 0x00])) {
                    df = Df::Mf;
                    current = None;
                }
            }
            // GET RESPONSE after `61 xx` carries the rest of the current EF.
            GET_RESPONSE if ok => {
                if let Some(ef) = current
                    && !touched.contains(&ef)
                {
                    touched.push(ef);
                }
            }
            ins::MUTUAL_AUTHENTICATE => report.mutual_authenticate += 1,
            ins::VERIFY => report.verify += 1,
            ins::READ_BINARY => {
                if p1 & 0x80 != 0 {
                    current = Some((df, p1 & 0x1F));
                }
                if ok
                    && let Some(ef) = current
                    && !touched.contains(&ef)
                {
                    touched.push(ef);
                }
            }
            _ => {}
        }
    }
    let name = |(d, sfi): (Df, u8)| {
        image
            .files
            .iter()
            .find(|f| f.df == d && f.sfi == sfi)
            .map_or_else(|| format!("{d:?}/SFI {sfi:02X}"), |f| f.name.clone())
    };
    let needed = needed(image.generation);
    report.face_image_read = touched.contains(&face_ef(image.generation));
    report.efs_read = touched.iter().map(|&ef| name(ef)).collect();
    report.unneeded_efs = touched
        .iter()
        .filter(|ef| !needed.contains(ef))
        .map(|&ef| name(ef))
        .collect();
    report.bytes_needed = needed
        .iter()
        .filter_map(|&(d, sfi)| image.files.iter().find(|f| f.df == d && f.sfi == sfi))
        .map(|f| f.content.len())
        .sum();
    report
}
