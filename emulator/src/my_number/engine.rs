//! The My Number card engine: a pure, synchronous state machine from C-APDU bytes to R-APDU
//! bytes, reading only the application table ([`super::apps`]) and the compiled image.
//!
//! Power-on state is the Issuer Security Domain; applications are selected by AID, each
//! with its own security state (which PINs were verified), cleared when another
//! application or the ISD is selected and on reset. PIN counters are non-volatile: they
//! survive reset, as on the card. No I/O, no clock, no global RNG.
//!
//! Status words (spec notes B3, B4, B7, B11): unknown AID `6A 82` (never `90 00`), unknown
//! INS `6D 00`, unknown CLA `6E 00`, a logical channel other than 0 `68 81`, malformed
//! lengths `67 00`, bad P1/P2 `6A 86`; VERIFY `63 Cx` / `63 C0` / `69 84` (a knob); a signature or a
//! protected EF without its PIN `69 82`.

use std::sync::Arc;

use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256};

use super::apps::{App, AppRow, ISD_AID};
use super::image::{MfSelect, MyNumberImage, ReselectSameApp};
use super::residence_ap::{self, ResidenceSession};
use super::text::{self, TextSession};
use crate::protocol::Status;
use crate::protocol::apdu::{Apdu, NE_SHORT_MAX};

/// `63 Cx`: wrong PIN (or a case-1 VERIFY), `x` tries left; `63 C0` blocked.
pub fn tries_left_status(left: u8) -> Status {
    Status::Other(0x63C0 | u16::from(left.min(15)))
}
/// `68 81`: logical channel not supported (only channel 0 works).
pub const CHANNEL_NOT_SUPPORTED: Status = Status::Other(0x6881);
/// `69 81`: command incompatible with the file structure (READ BINARY of a key EF, VERIFY
/// of a data EF, a signature with a PIN EF).
pub const INCOMPATIBLE_FILE: Status = Status::Other(0x6981);

/// INS of SELECT.
const INS_SELECT: u8 = 0xA4;
/// INS of READ BINARY.
const INS_READ_BINARY: u8 = 0xB0;
/// INS of VERIFY.
const INS_VERIFY: u8 = 0x20;
/// INS of COMPUTE DIGITAL SIGNATURE (CLA 80, proprietary).
const INS_SIGN: u8 = 0x2A;
/// Largest DigestInfo PKCS#1 v1.5 type 1 pads into a 2048-bit block (256 − 11).
const MAX_SIGN_INPUT: usize = 245;
/// DER prefix of a SHA-256 DigestInfo (P1 `02`/`03`).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Successful outcome of a command: response data and `90 00`.
pub(super) type Answer = Result<Vec<u8>, Status>;

/// What is selected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Selected {
    /// Just reset: the ISD is implicitly current, nothing was selected.
    #[default]
    PowerOn,
    /// The ISD, selected by AID.
    Isd,
    /// An application, by index in the image.
    App(usize),
    /// The specified card's 在留AP (its own module, [`residence_ap`]).
    ResidenceAp,
}

/// The current EF of the selected application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Current {
    /// A data EF, by index in the application's files.
    File(usize),
    /// A PIN, by index in the application's PINs.
    Pin(usize),
    /// A private key, by index in the application's keys.
    Key(usize),
}

/// Volatile state: dies on reset and power events.
#[derive(Clone, Debug, Default)]
pub(super) struct Session {
    selected: Selected,
    pub(super) current: Option<Current>,
    /// FIDs of the PINs verified in the current application.
    pub(super) verified: Vec<u16>,
    /// The text-support AP's key delivery and SM state (its own module, [`text`]); a new
    /// selection by AID starts it afresh.
    pub(super) text: TextSession,
    /// The 在留AP's DF, key delivery and SM state.
    pub(super) residence: ResidenceSession,
}

/// An emulated My Number card.
pub struct MyNumberCard {
    pub(super) image: Arc<MyNumberImage>,
    pub(super) session: Session,
    /// Tries left per application and PIN (non-volatile: survive reset).
    tries: Vec<Vec<u8>>,
    /// Tries left on the 在留AP's card number, when a knob gives it a limit.
    pub(super) residence_tries_left: u8,
}

impl MyNumberCard {
    /// A card of `image`, just powered on, its PIN counters as the profile delivers them.
    pub fn new(image: Arc<MyNumberImage>) -> MyNumberCard {
        let tries = image
            .apps
            .iter()
            .map(|app| app.pins.iter().map(|p| p.tries_left).collect())
            .collect();
        MyNumberCard {
            image,
            session: Session::default(),
            tries,
            residence_tries_left: residence_ap::NUMBER_TRIES,
        }
    }

    /// The card's files, secrets and knobs.
    pub fn image(&self) -> &MyNumberImage {
        &self.image
    }

    /// The selected application, if any (read-only view for the fault layer and tests).
    pub fn selected_app(&self) -> Option<App> {
        match self.session.selected {
            Selected::App(i) => self.image.apps.get(i).map(|a| a.app()),
            Selected::PowerOn | Selected::Isd | Selected::ResidenceAp => None,
        }
    }

    /// True when the specified card's 在留AP (or one of its DFs) is selected.
    pub fn in_residence_ap(&self) -> bool {
        self.session.selected == Selected::ResidenceAp
    }

    /// Selects the 在留AP afresh: no DF, no session key, nothing verified (A2).
    pub(super) fn enter_residence_ap(&mut self) {
        self.session = Session {
            selected: Selected::ResidenceAp,
            ..Session::default()
        };
    }

    /// Fault hook: the 在留AP's live SM session spends one message counter value without a
    /// command (see [`crate::chip::Chip::skip_residence_sm_counter`]). False when there is
    /// no live session.
    pub fn skip_residence_sm_counter(&mut self) -> bool {
        residence_ap::skip_counter(self)
    }

    /// Tries left of PIN `fid` in `app` (`None`: no such PIN).
    pub fn tries_left(&self, app: App, fid: u16) -> Option<u8> {
        let a = self.image.apps.iter().position(|a| a.app() == app)?;
        let p = self.image.apps[a]
            .pins
            .iter()
            .position(|p| p.row.fid == fid)?;
        self.tries.get(a)?.get(p).copied()
    }

    /// Reset, power-on or power-off: ISD state, nothing verified. PIN counters stay.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Processes one C-APDU and returns the R-APDU (data ‖ SW1 SW2). Never panics.
    pub fn transmit(&mut self, raw: &[u8]) -> Vec<u8> {
        let (mut data, status) = match Apdu::parse(raw).and_then(|apdu| self.execute(raw, &apdu)) {
            Ok(data) => (data, Status::Success),
            Err(status) => (Vec::new(), status),
        };
        data.extend_from_slice(&status.to_bytes());
        data
    }

    fn execute(&mut self, raw: &[u8], apdu: &Apdu) -> Answer {
        // Class first: logical channels, then the classes the card knows.
        let cla = apdu.cla;
        if matches!(cla & 0xF0, 0x00 | 0x80) && cla & 0x03 != 0 {
            return Err(CHANNEL_NOT_SUPPORTED);
        }
        // Per-application dispatch: the 在留AP and the text-support AP answer their own
        // commands (key delivery, SM, self-signature) and hand the others back.
        if self.in_residence_ap()
            && let Some(answer) = residence_ap::execute(self, raw, apdu)
        {
            return answer;
        }
        if self.selected_app() == Some(App::TextSupport)
            && let Some(answer) = text::execute(self, apdu)
        {
            return answer;
        }
        match (cla, apdu.ins) {
            (0x00, INS_SELECT) => self.select(apdu),
            (0x00, INS_READ_BINARY) => self.read_binary(apdu),
            (0x00, INS_VERIFY) => self.verify(apdu),
            (0x80, INS_SIGN) => self.sign(apdu),
            // SET SESSION KEY on an application without key delivery (A4).
            (0x80, text::INS_SET_SESSION_KEY) if self.current_app().is_some() => Err(
                Status::Other(crate::protocol::key_delivery::SW_NO_KEY_DELIVERY),
            ),
            (0x00 | 0x80, _) => Err(Status::InstructionNotSupported),
            _ => Err(Status::ClassNotSupported),
        }
    }

    fn select(&mut self, apdu: &Apdu) -> Answer {
        if apdu.extended {
            return Err(Status::WrongLength);
        }
        match (apdu.p1, apdu.data) {
            // SELECT MF without data (B7): refused after reset, a no-op once an
            // application is selected.
            (0x00, []) => match (self.session.selected, self.image.knobs.mf_select) {
                (Selected::App(_), MfSelect::NoOpOnceSelected) => Ok(Vec::new()),
                _ => Err(Status::IncorrectP1P2),
            },
            // No EF at MF level: 3F00 is not found.
            (0x00, [0x3F, 0x00]) => Err(Status::FileNotFound),
            (0x00 | 0x02, [hi, lo]) => self.select_fid(u16::from_be_bytes([*hi, *lo])),
            (0x04, aid) if (1..=16).contains(&aid.len()) => self.select_aid(aid),
            (0x00 | 0x02 | 0x04, _) => Err(Status::WrongLength),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    fn select_aid(&mut self, aid: &[u8]) -> Answer {
        if let Some(answer) = residence_ap::select(self, aid, false) {
            return answer;
        }
        if aid == ISD_AID {
            self.session = Session {
                selected: Selected::Isd,
                ..Session::default()
            };
            return Ok(Vec::new());
        }
        let row = AppRow::by_aid(aid).ok_or(Status::FileNotFound)?;
        let index = self
            .image
            .apps
            .iter()
            .position(|a| a.app() == row.app)
            .ok_or(Status::FileNotFound)?;
        let same = self.session.selected == Selected::App(index);
        let keep = same && self.image.knobs.reselect_same_app == ReselectSameApp::Keeps;
        let verified = if keep {
            std::mem::take(&mut self.session.verified)
        } else {
            Vec::new()
        };
        self.session = Session {
            selected: Selected::App(index),
            current: None,
            verified,
            text: TextSession::default(),
            residence: ResidenceSession::default(),
        };
        Ok(Vec::new())
    }

    pub(super) fn select_fid(&mut self, fid: u16) -> Answer {
        let app = self.current_app().ok_or(Status::FileNotFound)?;
        let image = &self.image.apps[app];
        let current = if let Some(i) = image.files.iter().position(|f| f.row.fid == fid) {
            Current::File(i)
        } else if let Some(i) = image.pins.iter().position(|p| p.row.fid == fid) {
            Current::Pin(i)
        } else if let Some(i) = image.keys.iter().position(|k| k.row.fid == fid) {
            Current::Key(i)
        } else {
            return Err(Status::FileNotFound);
        };
        self.session.current = Some(current);
        Ok(Vec::new())
    }

    pub(super) fn current_app(&self) -> Option<usize> {
        match self.session.selected {
            Selected::App(i) => Some(i),
            Selected::PowerOn | Selected::Isd | Selected::ResidenceAp => None,
        }
    }

    /// The key EF a `80|SFI` P2 names (SFI = low 5 bits of the FID), made current.
    fn by_sfi(&mut self, sfi: u8) -> Result<Current, Status> {
        self.select_fid(u16::from(sfi))?;
        self.session.current.ok_or(Status::FileNotFound)
    }

    /// P2 `80`: the current EF; `80|SFI`: the EF with that short identifier; else `6A 86`.
    fn target(&mut self, p2: u8) -> Result<Current, Status> {
        match p2 {
            0x80 => self.session.current.ok_or(Status::Other(0x6986)),
            p2 if p2 & 0xE0 == 0x80 => self.by_sfi(p2 & 0x1F),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    fn read_binary(&mut self, apdu: &Apdu) -> Answer {
        if apdu.extended || !apdu.data.is_empty() {
            return Err(Status::WrongLength);
        }
        let ne = apdu.ne.ok_or(Status::WrongLength)?;
        self.read_at(apdu.p1, apdu.p2, ne.min(NE_SHORT_MAX))
    }

    /// READ BINARY's work, for the plain command and the text AP's SM one: at most `max`
    /// bytes of the EF P1-P2 name (offset form, or `80|SFI` and a one-byte offset).
    pub(super) fn read_at(&mut self, p1: u8, p2: u8, max: usize) -> Answer {
        let app = self.current_app().ok_or(Status::Other(0x6986))?;
        let (current, offset) = if p1 & 0x80 != 0 {
            // SFI form: P1 = 80|SFI (bits 6-5 zero), P2 = offset within the first 256 bytes.
            if p1 & 0x60 != 0 {
                return Err(Status::IncorrectP1P2);
            }
            (self.by_sfi(p1 & 0x1F)?, usize::from(p2))
        } else {
            let current = self.session.current.ok_or(Status::Other(0x6986))?;
            (current, usize::from(u16::from_be_bytes([p1, p2])))
        };
        let Current::File(index) = current else {
            return Err(INCOMPATIBLE_FILE);
        };
        let file = &self.image.apps[app].files[index];
        if !file.access().opened_by(&self.session.verified) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let content = &file.content;
        if offset >= content.len() {
            return Err(Status::OffsetOutOfRange);
        }
        let end = content.len().min(offset.saturating_add(max));
        Ok(content[offset..end].to_vec())
    }

    /// VERIFY (plain, or the text AP's SM VERIFY once opened); on success the verified
    /// PIN is the current EF.
    pub(super) fn verify(&mut self, apdu: &Apdu) -> Answer {
        if apdu.p1 != 0x00 {
            return Err(Status::IncorrectP1P2);
        }
        if apdu.extended || apdu.ne.is_some() {
            return Err(Status::WrongLength);
        }
        let app = self.current_app().ok_or(Status::Other(0x6986))?;
        let Current::Pin(index) = self.target(apdu.p2)? else {
            return Err(INCOMPATIBLE_FILE);
        };
        let pin = &self.image.apps[app].pins[index];
        let fid = pin.row.fid;
        let max = pin.max_tries;
        let matches = pin.value.as_deref() == Some(apdu.data);
        let left = self.tries[app][index];
        if apdu.data.is_empty() {
            // Case 1: how many tries are left; never 90 00, no try spent.
            return Err(tries_left_status(left));
        }
        if left == 0 {
            // 69 84 by default (MC's measurement; the knob offers ISO's 69 83).
            return Err(Status::Other(self.image.knobs.blocked_pin_status.sw()));
        }
        self.session.verified.retain(|&v| v != fid);
        if matches {
            self.tries[app][index] = max;
            self.session.verified.push(fid);
            Ok(Vec::new())
        } else {
            let left = left - 1;
            self.tries[app][index] = left;
            Err(tries_left_status(left))
        }
    }

    /// FID of the PIN that is the current EF (after a VERIFY, the PIN it verified).
    pub(super) fn current_pin_fid(&self) -> Option<u16> {
        let app = self.current_app()?;
        match self.session.current? {
            Current::Pin(i) => self.image.apps.get(app)?.pins.get(i).map(|p| p.row.fid),
            Current::File(_) | Current::Key(_) => None,
        }
    }

    fn sign(&mut self, apdu: &Apdu) -> Answer {
        if apdu.extended {
            return Err(Status::WrongLength);
        }
        let app = self.current_app().ok_or(Status::Other(0x6986))?;
        let Current::Key(index) = self.target(apdu.p2)? else {
            return Err(INCOMPATIBLE_FILE);
        };
        let input: Vec<u8> = match apdu.p1 {
            // PKCS#1 v1.5 over the data as given (a DigestInfo): what every client sends.
            0x00 => apdu.data.to_vec(),
            // The card hashes (SHA-256) and signs the bare hash.
            0x01 => Sha256::digest(apdu.data).to_vec(),
            // A 32-byte SHA-256 hash, wrapped in a DigestInfo by the card.
            0x02 if apdu.data.len() == 32 => [&SHA256_DIGEST_INFO[..], apdu.data].concat(),
            0x02 => return Err(Status::WrongLength),
            // The card hashes and wraps in a DigestInfo.
            0x03 => [&SHA256_DIGEST_INFO[..], &Sha256::digest(apdu.data)[..]].concat(),
            _ => return Err(Status::IncorrectP1P2),
        };
        if apdu.data.is_empty() || input.len() > MAX_SIGN_INPUT {
            return Err(Status::WrongLength);
        }
        if !matches!(apdu.ne, None | Some(NE_SHORT_MAX)) {
            return Err(Status::WrongLength);
        }
        let key = &self.image.apps[app].keys[index];
        if !self.session.verified.contains(&key.pin) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        key.key
            .sign(Pkcs1v15Sign::new_unprefixed(), &input)
            .map_err(|_| Status::WrongLength)
    }
}
