//! Privacy audit: what a checker read, from the emulator-side transcript.
//!
//! A checker only needs the card type, the signed fields and the check code to reach a
//! verdict; everything else it reads (address, work permissions, the card-number EF) is
//! personal data it did not need. A My Number checker needs the JPKI authentication
//! certificate, its CA and the card's signature over a challenge ([`audit_my_number`]). A
//! specified card (07/08) is a residence card on the My Number platform: the same residence
//! rule applies to its 在留AP, and every JPKI or text-AP read is over-reading
//! ([`audit_specified`]).

use serde::{Deserialize, Serialize};

use rclab_emulator::card::{CardImage, Df};
use rclab_emulator::my_number::MyNumberImage;
use rclab_emulator::my_number::apps::{App, AppRow, Content, FileRow};
use rclab_emulator::my_number::residence_ap::{RESIDENCE_AP_AID, ResidenceApImage, ResidenceSm};
use rclab_emulator::my_number::text_ap;
use rclab_emulator::protocol::command::{Instruction, ReadTarget, Select};
use rclab_emulator::protocol::counter_sm::{CLA_SM, CLA_SM_CMAC, CardCmacSm, CardCounterSm};
use rclab_emulator::protocol::key_delivery;
use rclab_emulator::protocol::layout::{EfId, Element, Layout};
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

/// What every audit counts the same way, whatever the card: the answers' bytes, the
/// VERIFY and MUTUAL AUTHENTICATE commands (whatever their class or answer: a refused try
/// is a try), and whether `card_number` appeared in clear in a command.
fn tally(transcript: &[Exchange], card_number: Option<&str>) -> PrivacyAudit {
    let mut report = PrivacyAudit::default();
    let number_hex = card_number
        .map(|number| hex::encode_upper(number.as_bytes()))
        .filter(|hex| !hex.is_empty());
    for exchange in transcript {
        let Some(decoded) = decode(exchange) else {
            continue;
        };
        report.bytes_read += decoded.data_len;
        if let Some(number_hex) = &number_hex
            && exchange.command.to_uppercase().contains(number_hex)
        {
            report.card_number_in_clear = true;
        }
        // A command is told apart by its header's INS alone, as the card's refusals count.
        if let [_cla, ins, _p1, _p2, ..] = decoded.command.as_slice() {
            match Instruction::of(*ins) {
                Instruction::Verify => report.verify += 1,
                Instruction::MutualAuthenticate => report.mutual_authenticate += 1,
                _ => {}
            }
        }
    }
    report
}

/// Replays the transcript against the card's layout (current DF, current EF) to see which
/// EFs each READ BINARY touched.
pub fn audit(image: &CardImage, card_number: &str, transcript: &[Exchange]) -> PrivacyAudit {
    let mut report = tally(transcript, Some(card_number));
    let mut df = Df::Mf;
    let mut current: Option<EfId> = None;
    let mut touched: Vec<EfId> = Vec::new();
    for Decoded { command, ok, .. } in transcript.iter().filter_map(decode) {
        // Commands are told apart by INS alone (as the card's refusals are counted too);
        // what they address comes from the same parser the card uses.
        let [_cla, instruction, p1, p2, ..] = command.as_slice() else {
            continue;
        };
        match Instruction::of(*instruction) {
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
            | Instruction::MutualAuthenticate
            | Instruction::Verify
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
    let mut report = tally(transcript, None);
    let mut app: Option<&'static AppRow> = None;
    let mut current: Option<&'static FileRow> = None;
    let mut touched: Vec<(&'static AppRow, &'static FileRow)> = Vec::new();
    for Decoded { command, ok, .. } in transcript.iter().filter_map(decode) {
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

/// Where a specified card's conversation stands, as the audit follows it.
#[derive(Clone, Copy)]
enum Place {
    /// Nothing the audit knows is selected (after reset, the ISD, an unknown AID).
    Nowhere,
    /// The 在留AP, at its own level (`df` = MF: `C0`/`C1`) or in one of its DFs;
    /// `df` is `None` after an SM SELECT whose AID the audit could not open.
    ResidenceAp { df: Option<Df> },
    /// An application of the platform (JPKI, text-support, …).
    App(&'static AppRow),
}

/// The EF a read touches on a specified card.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SpecifiedEf {
    /// An EF of the 在留AP.
    Residence(EfId),
    /// An EF of the 在留AP's DF selected under SM whose AID the audit could not open.
    ResidenceUnderSm(u8),
    /// An EF of a platform application.
    App(&'static AppRow, &'static FileRow),
    /// An EF a platform application selected under SM (its FID is encrypted).
    AppUnderSm(&'static AppRow),
}

/// The 在留AP's SM session, mirrored on the card's side: the audit holds the card's
/// delivery private key, so it opens an SM SELECT's AID exactly as the card does.
enum Mirror {
    Counter(CardCounterSm),
    Cmac(CardCmacSm),
}

impl Mirror {
    /// The session a SET SESSION KEY the card accepted opened (`None` if the audit cannot
    /// open it either: then SM SELECTs stay unopened and are said so).
    fn deliver(image: &MyNumberImage, apdu: &Apdu) -> Option<Mirror> {
        let ap = image.residence_ap.as_ref()?;
        let knobs = &image.knobs;
        let keys =
            key_delivery::accept(&ap.delivery_key, knobs.residence_key_delivery(), apdu).ok()?;
        Some(match knobs.residence_sm {
            ResidenceSm::CounterIv => {
                Mirror::Counter(CardCounterSm::new(keys.kenc, knobs.residence_le_form()))
            }
            ResidenceSm::Cmac => Mirror::Cmac(CardCmacSm::new(keys.kenc, keys.kmac?)),
        })
    }

    /// Spends the counter value of one SM command as the card does, and returns what the
    /// command's cryptogram opened to (an SM SELECT's AID; `None` when it does not open).
    fn open(&mut self, raw: &[u8], apdu: &Apdu) -> Option<Vec<u8>> {
        match self {
            Mirror::Counter(sm) if apdu.cla == CLA_SM => match apdu.ins {
                0xB0 => sm.open_read(apdu.data).ok().map(|_| Vec::new()),
                0x20 | 0xA4 => sm.open_command(apdu.data).ok().map(|(plain, _)| plain),
                _ => sm.advance().ok().map(|_| Vec::new()),
            },
            Mirror::Cmac(sm) if apdu.cla == CLA_SM_CMAC => {
                sm.open_command(raw).ok().map(|(command, _)| command.plain)
            }
            // The other class: the card refuses it without counting.
            Mirror::Counter(_) | Mirror::Cmac(_) => None,
        }
    }
}

/// The privacy audit of a specified residence card (07/08): the residence rule of
/// [`audit`] over the 在留AP (needed: the card type, the signed fields, the check code of
/// the `07`/`08` layout), and every JPKI or text-AP EF read counted as unneeded (a residence
/// verdict needs none of them).
///
/// The transcript is replayed against the card: SELECT by AID (the 在留AP, then DF1–DF3
/// inside it; an application of the platform), plain reads (`00 B0 80|SFI`, the current EF
/// of a platform application) and SM reads (CLA `08`/`0C`, INS `B0`, whose P1 `80|SFI`
/// travels in clear). An SM SELECT of a DF (CLA `08`/`0C`, INS `A4`) carries its AID
/// encrypted: the audit stands on the card's side and holds its delivery private key, so it
/// opens SET SESSION KEY and mirrors the card's SM session (counter and all) to open the AID
/// exactly as the card did — no guess from the order a checker ought to follow. Should that
/// fail (a card whose session the mirror cannot follow), the EFs read there are listed as
/// `在留AP DF selected under SM/SFI xx`, read but not judged. Only commands the card
/// answered with success count as reads; VERIFY counts whatever its class (the card number
/// is verified under SM); the card number must never appear in clear in a command.
pub fn audit_specified(
    image: &MyNumberImage,
    card_number: &str,
    transcript: &[Exchange],
) -> PrivacyAudit {
    let Some(ap) = image.residence_ap.as_ref() else {
        // Not a specified card: the My Number rule is the one that applies.
        return audit_my_number(image, transcript);
    };
    let mut report = tally(transcript, Some(card_number));
    let mut place = Place::Nowhere;
    let mut app_current: Option<&'static FileRow> = None;
    let mut current: Option<SpecifiedEf> = None;
    let mut mirror: Option<Mirror> = None;
    let mut touched: Vec<SpecifiedEf> = Vec::new();
    for Decoded { command, ok, .. } in transcript.iter().filter_map(decode) {
        let Ok(apdu) = Apdu::parse(&command) else {
            continue;
        };
        let in_ap = matches!(place, Place::ResidenceAp { .. });
        let secure = matches!(apdu.cla, CLA_SM | CLA_SM_CMAC);
        // The 在留AP's SM session counts every SM command the card takes (refused ones too).
        let opened = match &mut mirror {
            Some(sm) if in_ap && secure => sm.open(&command, &apdu),
            _ => None,
        };
        let mut read: Option<SpecifiedEf> = None;
        match Instruction::of(apdu.ins) {
            // SELECT by AID in clear: the 在留AP (a fresh session), one of its DFs, or an
            // application of the platform (which leaves the 在留AP).
            Instruction::Select if ok && !secure && apdu.p1 == 0x04 => {
                current = None;
                app_current = None;
                let df = Df::from_aid(apdu.data).filter(|&df| df != Df::Mf);
                if apdu.data == RESIDENCE_AP_AID {
                    place = Place::ResidenceAp { df: Some(Df::Mf) };
                    mirror = None;
                } else if let (Some(df), true) = (df, in_ap) {
                    place = Place::ResidenceAp { df: Some(df) };
                } else {
                    place = AppRow::by_aid(apdu.data).map_or(Place::Nowhere, Place::App);
                    mirror = None;
                }
            }
            // SELECT under SM: the 在留AP's DF, its AID opened by the mirror.
            Instruction::Select if ok && secure && in_ap => {
                current = None;
                let df = opened
                    .as_deref()
                    .and_then(Df::from_aid)
                    .filter(|&df| df != Df::Mf);
                place = Place::ResidenceAp { df };
            }
            // An EF by FID in a platform application, in clear or (FID unseen) under SM.
            Instruction::Select if ok => {
                if let Place::App(row) = place {
                    app_current = match (secure, apdu.data) {
                        (false, [hi, lo]) => {
                            let fid = u16::from_be_bytes([*hi, *lo]);
                            row.files.iter().find(|f| f.fid == fid)
                        }
                        _ => None,
                    };
                    current = Some(match app_current {
                        Some(file) => SpecifiedEf::App(row, file),
                        None => SpecifiedEf::AppUnderSm(row),
                    });
                }
            }
            Instruction::ReadBinary if ok => {
                let sfi = (apdu.p1 & 0xE0 == 0x80).then_some(apdu.p1 & 0x1F);
                read = match (place, sfi) {
                    (Place::ResidenceAp { df: Some(df) }, Some(sfi)) => {
                        resolve(ap, df, sfi).map(SpecifiedEf::Residence)
                    }
                    (Place::ResidenceAp { df: None }, Some(sfi)) => {
                        Some(SpecifiedEf::ResidenceUnderSm(sfi))
                    }
                    (Place::App(row), Some(sfi)) => row
                        .files
                        .iter()
                        .find(|f| f.fid == u16::from(sfi))
                        .map(|file| SpecifiedEf::App(row, file)),
                    (Place::App(row), None) => Some(match app_current {
                        Some(file) => SpecifiedEf::App(row, file),
                        None => SpecifiedEf::AppUnderSm(row),
                    }),
                    (Place::ResidenceAp { .. } | Place::Nowhere, None) | (Place::Nowhere, _) => {
                        None
                    }
                };
                if read.is_some() {
                    current = read;
                }
            }
            // GET RESPONSE after `61 xx` carries the rest of the current EF.
            Instruction::GetResponse if ok => read = current,
            // SET SESSION KEY in the 在留AP: the card drops its session first, then opens
            // the one delivered.
            Instruction::Other(key_delivery::INS) if in_ap && apdu.cla == key_delivery::CLA => {
                mirror = if ok {
                    Mirror::deliver(image, &apdu)
                } else {
                    None
                };
            }
            Instruction::Select
            | Instruction::ReadBinary
            | Instruction::GetResponse
            | Instruction::Verify
            | Instruction::MutualAuthenticate
            | Instruction::GetChallenge
            | Instruction::Other(_) => {}
        }
        if let Some(ef) = read
            && !touched.contains(&ef)
        {
            touched.push(ef);
        }
    }
    let layout: &Layout = ap.data.layout;
    let needed: Vec<EfId> = layout.needed().map(|row| row.id).collect();
    let name = |ef: &SpecifiedEf| match *ef {
        SpecifiedEf::Residence(id) => ap.data.file(id).map_or_else(
            || format!("{:?}/SFI {:02X}", id.df, id.sfi),
            |f| f.name.clone(),
        ),
        SpecifiedEf::ResidenceUnderSm(sfi) => format!("在留AP DF selected under SM/SFI {sfi:02X}"),
        SpecifiedEf::App(_, file) => file.name.to_owned(),
        SpecifiedEf::AppUnderSm(row) => format!("{} EF selected under SM", row.name),
    };
    // Unneeded: a 在留AP EF outside the residence rule, every platform application's EF;
    // an EF of a DF the audit could not open is read but not judged.
    let unneeded = |ef: &SpecifiedEf| match ef {
        SpecifiedEf::Residence(id) => !needed.contains(id),
        SpecifiedEf::ResidenceUnderSm(_) => false,
        SpecifiedEf::App(..) | SpecifiedEf::AppUnderSm(_) => true,
    };
    let face = layout
        .holding_element(Element::FaceImage)
        .map(|(row, _)| SpecifiedEf::Residence(row.id));
    report.face_image_read = face.is_some_and(|face| touched.contains(&face));
    report.efs_read = touched.iter().map(name).collect();
    report.unneeded_efs = touched.iter().filter(|ef| unneeded(ef)).map(name).collect();
    report.bytes_needed = needed
        .iter()
        .filter_map(|&id| ap.data.file(id))
        .map(|f| f.content.len())
        .sum();
    report
}

/// The 在留AP's EF an SFI names in `df`: the DF's own, else (for `C0`/`C1` where a knob
/// keeps them reachable after a DF was selected) the AP level's. The card answered the read
/// with success, so one of them exists.
fn resolve(ap: &ResidenceApImage, df: Df, sfi: u8) -> Option<EfId> {
    [EfId::new(df, sfi), EfId::new(Df::Mf, sfi)]
        .into_iter()
        .find(|&id| ap.data.file(id).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rclab_emulator::transport::TransportError;

    fn exchange(command: &str, response: Option<&str>) -> Exchange {
        Exchange {
            command: command.to_owned(),
            response: response.map(str::to_owned).ok_or(TransportError::Timeout),
            micros: 0,
        }
    }

    /// What every audit counts: refused tries count, a command shorter than a header does
    /// not, the card number is found in clear whatever the hex's case, and only answers'
    /// data bytes count.
    #[test]
    fn the_shared_tally_counts_tries_bytes_and_the_number_in_clear() {
        let number = "AB12345678CD";
        let in_clear = format!("0020008{:X}{}", number.len(), hex::encode(number));
        let transcript = [
            exchange("0820008610AABBCCDDEEFF00112233445566778899", Some("6982")),
            exchange("002000", Some("6700")),
            exchange("0082000028", None),
            exchange(&in_clear, Some("63C9")),
            exchange("00B0810004", Some("C10107019000")),
            exchange("zz", Some("0102039000")),
        ];
        let report = tally(&transcript, Some(number));
        assert_eq!(report.verify, 2);
        assert_eq!(report.mutual_authenticate, 1);
        assert!(report.card_number_in_clear);
        assert_eq!(report.bytes_read, 4);
        assert!(!tally(&transcript, None).card_number_in_clear);
        assert!(!tally(&transcript[..1], Some(number)).card_number_in_clear);
    }
}
