//! The conversation with a My Number card's JPKI AP, over [`Session`]: every file, PIN and
//! key is looked up in the emulator's application table ([`AppRow`]), so the checker holds
//! no AID or FID of its own; each step gives its data or the verdict its failure means.

use rclab_emulator::my_number::apps::{App, AppRow, Content, FileRow, MAX_FILE, Secret, SecretRow};
use rclab_emulator::protocol::{CommandBuilder, Status};
use rclab_emulator::reader::{ReaderError, Session, select_by_aid_apdu};
use rclab_emulator::transport::Channel;
use rclab_emulator::verdict::{Reason, VerdictKind};

use crate::checker::read::fail;
use crate::checker::stop::{Step, malformed, stop, unexpected};

/// CLA of the proprietary COMPUTE DIGITAL SIGNATURE (spec notes B3).
const CLA_PROPRIETARY: u8 = 0x80;
/// INS of COMPUTE DIGITAL SIGNATURE.
const INS_SIGN: u8 = 0x2A;
/// INS of SELECT.
const INS_SELECT: u8 = 0xA4;
/// INS of READ BINARY.
const INS_READ_BINARY: u8 = 0xB0;
/// INS of VERIFY.
const INS_VERIFY: u8 = 0x20;
/// P2 of VERIFY and of the signature: the current EF's reference (`80`).
const P2_CURRENT_EF: u8 = 0x80;
/// Largest short Le: JPKI READ BINARY chunks are at most 256 bytes (B3).
const CHUNK: usize = 256;

/// The JPKI AP's row of the application table.
pub(super) fn jpki() -> &'static AppRow {
    AppRow::of(App::Jpki)
}

/// The JPKI EF holding `content`.
pub(super) fn jpki_file(content: Content) -> Step<&'static FileRow> {
    match jpki().files.iter().find(|f| f.content == content) {
        Some(row) => Ok(row),
        None => malformed(format!("the JPKI table has no {content:?} file")),
    }
}

/// The JPKI key EF or PIN for `secret`.
pub(super) fn jpki_secret(secret: Secret) -> Step<&'static SecretRow> {
    match jpki().secrets.iter().find(|s| s.secret == secret) {
        Some(row) => Ok(row),
        None => malformed(format!("the JPKI table has no {secret:?} secret")),
    }
}

/// What the case-1 VERIFY said about a PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PinState {
    /// `63 Cx`, `x` > 0: this many tries left.
    TriesLeft(u8),
    /// `63 C0` or `69 84`: blocked.
    Blocked,
}

/// The answer to a VERIFY with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PinAnswer {
    /// `90 00`.
    Opened,
    /// `63 Cx`: wrong, `x` tries left (0: this attempt blocked it).
    Wrong(u8),
    /// `69 84`: blocked before this attempt.
    Blocked,
}

/// `63 Cx` → `x`.
fn tries_in(status: Status) -> Option<u8> {
    let sw = status.sw();
    (sw & 0xFFF0 == 0x63C0).then_some((sw & 0x0F) as u8)
}

/// `69 84`: reference data not usable (a blocked PIN, spec notes B4).
const BLOCKED: u16 = 0x6984;

/// The reader session of a My Number check.
pub(super) struct JpkiCard<'c> {
    session: Session<&'c mut dyn Channel>,
}

impl<'c> JpkiCard<'c> {
    /// A session over `channel`.
    pub(super) fn new(channel: &'c mut dyn Channel) -> JpkiCard<'c> {
        JpkiCard {
            session: Session::new(channel, rclab_emulator::protocol::Generation::Second),
        }
    }

    /// SELECT by AID (`00 A4 04 0C`): the card's status word.
    pub(super) fn select_aid(&mut self, aid: &[u8], what: &str) -> Step<Status> {
        self.session
            .transmit(&select_by_aid_apdu(aid))
            .map(|r| r.status)
            .map_err(|e| fail(what, e))
    }

    /// SELECT EF by FID (`00 A4 02 0C 02 <FID>`) in the current application.
    pub(super) fn select_ef(&mut self, fid: u16, name: &str) -> Step<()> {
        let apdu = CommandBuilder::new(0x00, INS_SELECT, 0x02, 0x0C)
            .data(fid.to_be_bytes())
            .to_bytes();
        match self
            .session
            .transmit(&apdu)
            .map_err(|e| fail(name, e))?
            .status
        {
            Status::Success => Ok(()),
            other => unexpected(&format!("SELECT {name}"), other),
        }
    }

    /// A whole EF: SELECT, then READ BINARY in chunks of at most 256 bytes (short Le),
    /// until a short chunk or `6B 00` at the end; at most the table's largest EF
    /// ([`MAX_FILE`], 32 KiB), which the offset form reaches exactly.
    pub(super) fn read_file(&mut self, row: &FileRow) -> Step<Vec<u8>> {
        self.select_ef(row.fid, row.name)?;
        let mut content = Vec::new();
        loop {
            // The offset form of READ BINARY ends at 7FFF (P1 bit 8 would make it the SFI
            // form): no JPKI file is longer, so a card still sending full chunks there has
            // given all a checker can read, and what it gave fails to parse on its own.
            let Ok(offset) = u16::try_from(content.len()) else {
                return malformed(format!("{}: longer than any JPKI file", row.name));
            };
            if usize::from(offset) >= MAX_FILE {
                return Ok(content);
            }
            let [hi, lo] = offset.to_be_bytes();
            let apdu = CommandBuilder::new(0x00, INS_READ_BINARY, hi, lo)
                .ne(CHUNK)
                .to_bytes();
            let answer = self
                .session
                .transmit(&apdu)
                .map_err(|e| fail(row.name, e))?;
            match answer.status {
                Status::Success | Status::EndOfFileWarning => {}
                Status::OffsetOutOfRange if !content.is_empty() => return Ok(content),
                other => return unexpected(&format!("READ BINARY {}", row.name), other),
            }
            if answer.data.len() > CHUNK {
                return Err(fail(row.name, ReaderError::Oversent));
            }
            let short = answer.data.len() < CHUNK;
            content.extend_from_slice(&answer.data);
            if short {
                return Ok(content);
            }
        }
    }

    /// The case-1 VERIFY (`00 20 00 80`, no data) of the PIN `row`: tries left, without
    /// spending one. `90 00` here (a PIN that needs nothing) is no JPKI card's answer.
    pub(super) fn pin_state(&mut self, row: &SecretRow) -> Step<PinState> {
        self.select_ef(row.fid, row.name)?;
        let apdu = CommandBuilder::new(0x00, INS_VERIFY, 0x00, P2_CURRENT_EF).to_bytes();
        let status = self
            .session
            .transmit(&apdu)
            .map_err(|e| fail(row.name, e))?
            .status;
        match (tries_in(status), status.sw()) {
            (Some(0), _) | (None, BLOCKED) => Ok(PinState::Blocked),
            (Some(left), _) => Ok(PinState::TriesLeft(left)),
            (None, _) => unexpected(&format!("VERIFY (tries left) of {}", row.name), status),
        }
    }

    /// VERIFY of the PIN `row` (the current EF, selected by [`pin_state`](Self::pin_state)).
    pub(super) fn verify(&mut self, row: &SecretRow, pin: &[u8]) -> Step<PinAnswer> {
        let apdu = CommandBuilder::new(0x00, INS_VERIFY, 0x00, P2_CURRENT_EF)
            .data(pin.to_vec())
            .to_bytes();
        let status = self
            .session
            .transmit(&apdu)
            .map_err(|e| fail(row.name, e))?
            .status;
        match (status, tries_in(status)) {
            (Status::Success, _) => Ok(PinAnswer::Opened),
            (_, Some(left)) => Ok(PinAnswer::Wrong(left)),
            (status, None) if status.sw() == BLOCKED => Ok(PinAnswer::Blocked),
            (status, None) => unexpected(&format!("VERIFY of {}", row.name), status),
        }
    }

    /// SELECT of the key EF `row`, then COMPUTE DIGITAL SIGNATURE `80 2A 00 80` over
    /// `digest_info` with Le `00`: the signature.
    pub(super) fn sign(&mut self, row: &SecretRow, digest_info: &[u8]) -> Step<Vec<u8>> {
        self.select_ef(row.fid, row.name)?;
        let apdu = CommandBuilder::new(CLA_PROPRIETARY, INS_SIGN, 0x00, P2_CURRENT_EF)
            .data(digest_info.to_vec())
            .ne(CHUNK)
            .to_bytes();
        let answer = self
            .session
            .transmit(&apdu)
            .map_err(|e| fail(row.name, e))?;
        match answer.status {
            Status::Success => Ok(answer.data),
            Status::SecurityStatusNotSatisfied => stop(
                VerdictKind::Unreadable,
                Some(Reason::UnexpectedStatus),
                format!(
                    "COMPUTE DIGITAL SIGNATURE with {}: 69 82 right after the PIN opened",
                    row.name
                ),
            ),
            other => unexpected(
                &format!("COMPUTE DIGITAL SIGNATURE with {}", row.name),
                other,
            ),
        }
    }
}
