//! Privacy audit: what a checker read, from the emulator-side transcript.
//!
//! A checker only needs the card type, the signed fields and the check code to reach a
//! verdict; everything else it reads (address, work permissions, the card-number EF) is
//! personal data it did not need. A My Number checker needs the JPKI authentication
//! certificate, its CA and the card's signature over a challenge ([`audit_my_number`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use rclab_emulator::card::{CardImage, Df};
use rclab_emulator::my_number::apps::{App, AppRow, Content, FileRow};
use rclab_emulator::my_number::text_ap;
use rclab_emulator::my_number::{MyNumberCard, MyNumberImage};
use rclab_emulator::protocol::command::{Instruction, ReadTarget, Select};
use rclab_emulator::protocol::layout::{EfId, Element};
use rclab_emulator::protocol::{Apdu, Status};
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

/// One exchange of a transcript as the audits read it.
struct Decoded {
    /// The C-APDU.
    command: Vec<u8>,
    /// Response bytes before the status word (0 when the card answered none).
    data_len: usize,
    /// `90 00` or `62 82`: the command did what it asked.
    ok: bool,
}

/// The exchange's command and answer from their hex; `None` when the command is no hex.
fn decode(exchange: &Exchange) -> Option<Decoded> {
    let command = hex::decode(&exchange.command).ok()?;
    let response = exchange
        .response
        .as_ref()
        .ok()
        .and_then(|r| hex::decode(r).ok())
        .unwrap_or_default();
    let ok = response.len().checked_sub(2).is_some_and(|i| {
        Status::from_sw(u16::from_be_bytes([response[i], response[i + 1]])).completed()
    });
    Some(Decoded {
        command,
        data_len: response.len().saturating_sub(2),
        ok,
    })
}

/// Replays the transcript against the card's layout (current DF, current EF) to see which
/// EFs each READ BINARY touched.
pub fn audit(image: &CardImage, card_number: &str, transcript: &[Exchange]) -> PrivacyAudit {
    audit_replayed(image, card_number, transcript, None)
}

/// The privacy audit of a specified residence card: the residence audit over the 在留AP's
/// EFs (`C0`/`C1` at its level, DF1–DF3 below it). A SELECT of a DF under SM hides the
/// AID it names, so the commands are replayed on a fresh card of the same image, which says
/// which DF each one left selected (the card is deterministic: the same commands, the same
/// session key and counters, the same answers).
pub fn audit_specified(
    image: &MyNumberImage,
    card_number: &str,
    transcript: &[Exchange],
) -> PrivacyAudit {
    match &image.residence_ap {
        Some(ap) => audit_replayed(
            &ap.data,
            card_number,
            transcript,
            Some(MyNumberCard::new(Arc::new(image.clone()))),
        ),
        None => audit_my_number(image, transcript),
    }
}

/// [`audit`], with the DF a successful SELECT leaves taken from `replay` (a fresh card the
/// commands are sent to as well) while its 在留AP is selected.
fn audit_replayed(
    image: &CardImage,
    card_number: &str,
    transcript: &[Exchange],
    mut replay: Option<MyNumberCard>,
) -> PrivacyAudit {
    let mut report = PrivacyAudit::default();
    let mut df = Df::Mf;
    let mut current: Option<EfId> = None;
    let mut touched: Vec<EfId> = Vec::new();
    let number_hex = hex::encode_upper(card_number.as_bytes());
    for exchange in transcript {
        let Some(Decoded {
            command,
            data_len,
            ok,
        }) = decode(exchange)
        else {
            continue;
        };
        report.bytes_read += data_len;
        if let Some(card) = replay.as_mut() {
            card.transmit(&command);
        }
        if exchange.command.contains(&number_hex) {
            report.card_number_in_clear = true;
        }
        // Commands are told apart by INS alone (as the card's refusals are counted too);
        // what they address comes from the same parser the card uses.
        let [_cla, instruction, p1, p2, ..] = command.as_slice() else {
            continue;
        };
        match Instruction::of(*instruction) {
            Instruction::Select
                if ok && replay.as_ref().is_some_and(MyNumberCard::in_residence_ap) =>
            {
                // The 在留AP's level holds the MF rows (`C0`/`C1`).
                df = replay
                    .as_ref()
                    .and_then(MyNumberCard::residence_df)
                    .unwrap_or(Df::Mf);
                current = None;
            }
            Instruction::Select if ok => {
                let selected = Apdu::parse(&command)
                    .ok()
                    .and_then(|apdu| Select::decode(apdu.p1, apdu.data).ok());
                match selected {
                    Some(Select::Mf) => {
                        df = Df::Mf;
                        current = None;
                    }
                    Some(Select::Df { name }) => {
                        if let Some(selected) = Df::from_aid(name) {
                            df = selected;
                            current = None;
                        }
                    }
                    Some(Select::Ef { .. }) | None => {}
                }
            }
            // GET RESPONSE after `61 xx` carries the rest of the current EF.
            Instruction::GetResponse if ok => {
                if let Some(ef) = current
                    && !touched.contains(&ef)
                {
                    touched.push(ef);
                }
            }
            Instruction::MutualAuthenticate => report.mutual_authenticate += 1,
            Instruction::Verify => report.verify += 1,
            Instruction::ReadBinary => {
                if let Ok(ReadTarget::Sfi { sfi, .. }) = ReadTarget::decode(*p1, *p2) {
                    current = Some(EfId::new(df, sfi));
                }
                if ok
                    && let Some(ef) = current
                    && !touched.contains(&ef)
                {
                    touched.push(ef);
                }
            }
            Instruction::Select
            | Instruction::GetResponse
            | Instruction::GetChallenge
            | Instruction::Other(_) => {}
        }
    }
    let name = |id: EfId| {
        image.file(id).map_or_else(
            || format!("{:?}/SFI {:02X}", id.df, id.sfi),
            |f| f.name.clone(),
        )
    };
    let layout = image.layout;
    let needed: Vec<EfId> = layout.needed().map(|row| row.id).collect();
    let face = layout
        .holding_element(Element::FaceImage)
        .map(|(row, _)| row.id);
    report.face_image_read = face.is_some_and(|face| touched.contains(&face));
    report.efs_read = touched.iter().map(|&ef| name(ef)).collect();
    report.unneeded_efs = touched
        .iter()
        .filter(|ef| !needed.contains(ef))
        .map(|&ef| name(ef))
        .collect();
    report.bytes_needed = needed
        .iter()
        .filter_map(|&id| image.file(id))
        .map(|f| f.content.len())
        .sum();
    report
}

/// The JPKI files a My Number verdict needs: the token info and certificate map (which
/// card this is), the authentication certificate and its CA certificate (the chain).
/// The PIN and the signed challenge are commands, not reads. Reading anything else — the
/// signature certificate `0001` (name, address, birth date in its SAN), the signature CA,
/// the text-support or surface AP's files — is over-reading.
pub const MY_NUMBER_NEEDED: [Content; 4] = [
    Content::TokenInfo,
    Content::CertificateMap,
    Content::AuthCertificate,
    Content::AuthCaCertificate,
];

/// The privacy audit of a My Number case: replays the transcript against the application
/// table (selected application by AID, current EF by FID) to see which EFs each READ
/// BINARY touched, and which of them the verdict does not need ([`MY_NUMBER_NEEDED`]).
pub fn audit_my_number(image: &MyNumberImage, transcript: &[Exchange]) -> PrivacyAudit {
    let mut report = PrivacyAudit::default();
    let mut app: Option<&'static AppRow> = None;
    let mut current: Option<&'static FileRow> = None;
    let mut touched: Vec<(&'static AppRow, &'static FileRow)> = Vec::new();
    for exchange in transcript {
        let Some(Decoded {
            command,
            data_len,
            ok,
        }) = decode(exchange)
        else {
            continue;
        };
        report.bytes_read += data_len;
        let Ok(apdu) = Apdu::parse(&command) else {
            continue;
        };
        match Instruction::of(apdu.ins) {
            Instruction::Select if ok => match apdu.p1 {
                // By AID: an application (or the ISD, which leaves every application).
                0x04 => {
                    app = AppRow::by_aid(apdu.data);
                    current = None;
                }
                // By FID in the current application.
                0x02 => {
                    let fid = match apdu.data {
                        [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                        _ => None,
                    };
                    current = app
                        .zip(fid)
                        .and_then(|(a, fid)| a.files.iter().find(|f| f.fid == fid));
                }
                _ => {}
            },
            Instruction::Verify => report.verify += 1,
            Instruction::ReadBinary | Instruction::GetResponse if ok => {
                if let (Some(a), Some(f)) = (app, current)
                    && !touched
                        .iter()
                        .any(|(ta, tf)| ta.app == a.app && tf.fid == f.fid)
                {
                    touched.push((a, f));
                }
            }
            _ => {}
        }
    }
    let needed = |a: &AppRow, f: &FileRow| match a.app {
        App::Jpki => MY_NUMBER_NEEDED.contains(&f.content),
        App::TextSupport => text_ap::CHECKED_FILES.contains(&f.fid),
        _ => false,
    };
    report.efs_read = touched.iter().map(|(_, f)| f.name.to_owned()).collect();
    report.unneeded_efs = touched
        .iter()
        .filter(|(a, f)| !needed(a, f))
        .map(|(_, f)| f.name.to_owned())
        .collect();
    report.bytes_needed = [App::Jpki, App::TextSupport]
        .into_iter()
        .filter_map(|app| image.app(app))
        .flat_map(|app| {
            app.files
                .iter()
                .filter(move |f| needed(app.row, f.row))
                .map(|f| f.content.len())
        })
        .sum();
    report
}
