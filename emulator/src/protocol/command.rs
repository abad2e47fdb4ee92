//! Typed commands: a C-APDU parsed once into what it asks the card to do.
//!
//! [`Command::parse`] is the card's whole reading of a command that needs no card state:
//! framing (`67 00`), class and instruction (`6E 00`, `68 82`, `6D 00`, `69 88`), P1/P2
//! (`6A 86`) and the lengths each command requires (`67 00`, `6C 08`), in the order the card
//! has always checked them. What the card can only judge against its state (a file that
//! does not exist, a missing session, an offset past the end) is left to the engine, and
//! so are the few stateless checks the card makes only after those: a READ BINARY carries
//! them as [`Deferred`] values, reported once the file checks have passed.
//!
//! [`Instruction`], [`Select::decode`] and [`ReadTarget::decode`] are the lenient views of
//! the same parser for code that names a command the card may refuse (fault selectors, the
//! privacy audit): they look at INS, P1/P2 and data only, whatever the class byte.

use super::apdu::{Apdu, NE_SHORT_MAX};
use super::status::Status;
use super::{VERIFY_P2_CARD_NUMBER, cla, ins, sm};

/// Length of RND.ICC, the only length GET CHALLENGE answers.
pub const CHALLENGE_LEN: usize = 8;
/// Length of E.IFD ‖ M.IFD, the data of MUTUAL AUTHENTICATE.
pub const CRYPTOGRAM_LEN: usize = 40;

/// P1 of SELECT: the MF (no data or `3F 00`) or an EF by FID.
const SELECT_P1_MF_OR_FID: u8 = 0x00;
/// P1 of SELECT: an EF by FID.
const SELECT_P1_FID: u8 = 0x02;
/// P1 of SELECT: a DF by name (AID).
const SELECT_P1_DF_NAME: u8 = 0x04;
/// FID of the MF.
const MF_FID: [u8; 2] = [0x3F, 0x00];

/// A check the card makes only after its state-dependent ones: the parser finds the answer,
/// the engine reports it at the right moment.
pub type Deferred<T> = Result<T, Status>;

/// A command the card carries out, parsed from a C-APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `00 A4`: SELECT of the MF, an EF or a DF.
    Select(Select<'a>),
    /// `00 84 00 00`, Le 8 (or "everything"): GET CHALLENGE.
    GetChallenge,
    /// `00 82 00 00` with E.IFD ‖ M.IFD: MUTUAL AUTHENTICATE.
    MutualAuthenticate {
        /// E.IFD ‖ M.IFD.
        cryptogram: &'a [u8; CRYPTOGRAM_LEN],
    },
    /// `08 20 00 86` with DO `86`: VERIFY of the card number under secure messaging.
    Verify {
        /// The command data, DO `86` as the reader sent it (opened with the session key).
        sm_data: &'a [u8],
    },
    /// `00 B0` or `08 B0`: READ BINARY, plain or under secure messaging.
    ReadBinary(ReadBinary),
    /// `00 C0 00 00`, no data: GET RESPONSE. The card itself answers everything in one
    /// piece and refuses it (`6D 00`); only a fault profile's `get_response` serves it.
    GetResponse {
        /// Bytes asked for (256 when Le is absent).
        ne: usize,
    },
}

/// What a SELECT names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select<'a> {
    /// The MF: P1 `00` with no data or with `3F 00`.
    Mf,
    /// An EF of the current DF by file identifier: P1 `02`, or `00` with two data bytes.
    Ef {
        /// The file identifier.
        fid: u16,
    },
    /// A DF by name: P1 `04` with the AID.
    Df {
        /// The DF name (AID) as sent.
        name: &'a [u8],
    },
}

impl<'a> Select<'a> {
    /// What P1 and the data name, whatever P2 and the class (SELECT's own P2 check comes
    /// first in [`Command::parse`]).
    pub fn decode(p1: u8, data: &'a [u8]) -> Result<Select<'a>, Status> {
        match (p1, data) {
            (SELECT_P1_MF_OR_FID, []) => Ok(Select::Mf),
            (SELECT_P1_MF_OR_FID, data) if data == MF_FID => Ok(Select::Mf),
            (SELECT_P1_MF_OR_FID | SELECT_P1_FID, [hi, lo]) => Ok(Select::Ef {
                fid: u16::from_be_bytes([*hi, *lo]),
            }),
            (SELECT_P1_MF_OR_FID | SELECT_P1_FID, _) => Err(Status::WrongLength),
            (SELECT_P1_DF_NAME, []) => Err(Status::WrongLength),
            (SELECT_P1_DF_NAME, name) => Ok(Select::Df { name }),
            _ => Err(Status::IncorrectP1P2),
        }
    }
}

/// Which EF a READ BINARY reads, and from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadTarget {
    /// P1 `100x xxxx`: the EF with this short identifier in the current DF (it becomes
    /// the current EF), from offset P2.
    Sfi {
        /// Short EF identifier (`00`–`1F`).
        sfi: u8,
        /// Offset P2.
        offset: u8,
    },
    /// P1 `0xxx xxxx`: the current EF, from the 15-bit offset P1 ‖ P2.
    Current {
        /// Offset P1 ‖ P2.
        offset: u16,
    },
}

impl ReadTarget {
    /// P1 with bit 8 set names a short EF identifier in bits 5–1; bits 7–6 must then be 0.
    pub fn decode(p1: u8, p2: u8) -> Result<ReadTarget, Status> {
        if p1 & 0x80 == 0 {
            return Ok(ReadTarget::Current {
                offset: u16::from_be_bytes([p1, p2]),
            });
        }
        if p1 & 0x60 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        Ok(ReadTarget::Sfi {
            sfi: p1 & 0x1F,
            offset: p2,
        })
    }

    /// The offset the read starts at.
    pub fn offset(self) -> usize {
        match self {
            ReadTarget::Sfi { offset, .. } => usize::from(offset),
            ReadTarget::Current { offset } => usize::from(offset),
        }
    }
}

/// A READ BINARY: which EF, and how the answer travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadBinary {
    /// The EF and offset.
    pub target: ReadTarget,
    /// Plain or secure messaging, with the lengths asked.
    pub mode: ReadMode,
}

/// How a READ BINARY's answer travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// CLA `00`: the EF's bytes themselves. `Err(67 00)` when the command has data or no
    /// Le; the card reports it after the file checks.
    Plain {
        /// The bytes asked for.
        wanted: Deferred<Wanted>,
    },
    /// CLA `08`: the bytes inside DO `86`, sealed with the session key.
    Secure {
        /// The length in DO `97` (`0` = to the end of the EF); `Err(69 88)` when the data
        /// is not one DO `97`, reported after the file and session checks.
        expected: Deferred<u16>,
        /// The APDU's Le, which must leave room for the sealed answer.
        le: Le,
    },
}

/// The length a plain READ BINARY asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Ne.
    pub ne: usize,
    /// Le was `00` (short) or `00 00` (extended): everything up to the end of the EF.
    pub everything: bool,
}

/// Le as the command wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Le {
    /// Ne; `None` when Le is absent.
    pub ne: Option<usize>,
    /// Lc/Le used the extended form (an answer too long for Ne is then `67 00`, not `6C xx`).
    pub extended: bool,
}

/// What the card answers to the class errors the specification leaves open (§3.7 `I`):
/// the profile's knobs choose them (`crate::card::Knobs::class_rules`), the parser decides
/// *when* each applies. The default is the card's long-standing choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassRules {
    /// Any command with CLA `0C` (SM with the header authenticated).
    pub sm_header_authenticated: Status,
    /// Any command with a class other than `00`, `08`, `0C`.
    pub unknown_class: Status,
    /// SELECT, GET CHALLENGE, MUTUAL AUTHENTICATE with CLA `08`; `None`: carried out as
    /// with CLA `00`.
    pub sm_on_plain_commands: Option<Status>,
    /// VERIFY with CLA `00`.
    pub plain_verify: Status,
}

impl Default for ClassRules {
    fn default() -> ClassRules {
        ClassRules {
            sm_header_authenticated: Status::SecureMessagingNotSupported,
            unknown_class: Status::ClassNotSupported,
            sm_on_plain_commands: Some(Status::SecureMessagingNotSupported),
            plain_verify: Status::IncorrectSmDataObjects,
        }
    }
}

impl<'a> Command<'a> {
    /// Parses raw C-APDU bytes: the command, or the status word the card answers (with
    /// the default [`ClassRules`]).
    pub fn parse(raw: &'a [u8]) -> Result<Command<'a>, Status> {
        Command::parse_with(raw, &ClassRules::default())
    }

    /// Parses raw C-APDU bytes as a card with these class rules reads them.
    pub fn parse_with(raw: &'a [u8], rules: &ClassRules) -> Result<Command<'a>, Status> {
        Command::from_apdu_with(&Apdu::parse(raw)?, rules)
    }

    /// The command an APDU carries (with the default [`ClassRules`]).
    pub fn from_apdu(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
        Command::from_apdu_with(apdu, &ClassRules::default())
    }

    /// The command an APDU carries, checked in the card's order: class and instruction,
    /// then the instruction's own P1/P2 and length rules. `rules` gives the status of the
    /// open class errors; their place in this order is fixed.
    pub fn from_apdu_with(apdu: &Apdu<'a>, rules: &ClassRules) -> Result<Command<'a>, Status> {
        match (apdu.cla, apdu.ins) {
            (cla::PLAIN, ins::SELECT) => select(apdu),
            (cla::PLAIN, ins::GET_CHALLENGE) => get_challenge(apdu),
            (cla::PLAIN, ins::MUTUAL_AUTHENTICATE) => mutual_authenticate(apdu),
            // The card number only ever travels encrypted.
            (cla::PLAIN, ins::VERIFY) => Err(rules.plain_verify),
            (cla::SM, ins::VERIFY) => verify(apdu),
            (cla::PLAIN | cla::SM, ins::READ_BINARY) => read_binary(apdu),
            (cla::PLAIN, ins::GET_RESPONSE) => get_response(apdu),
            (cla::SM, ins::SELECT | ins::GET_CHALLENGE | ins::MUTUAL_AUTHENTICATE) => {
                match rules.sm_on_plain_commands {
                    Some(refusal) => Err(refusal),
                    None => match apdu.ins {
                        ins::SELECT => select(apdu),
                        ins::GET_CHALLENGE => get_challenge(apdu),
                        _ => mutual_authenticate(apdu),
                    },
                }
            }
            (cla::PLAIN | cla::SM, _) => Err(Status::InstructionNotSupported),
            // A known class the card does not do.
            (cla::SM_AUTHENTICATED_HEADER, _) => Err(rules.sm_header_authenticated),
            _ => Err(rules.unknown_class),
        }
    }

    /// The instruction, for naming the command.
    pub fn instruction(&self) -> Instruction {
        match self {
            Command::Select(_) => Instruction::Select,
            Command::GetChallenge => Instruction::GetChallenge,
            Command::MutualAuthenticate { .. } => Instruction::MutualAuthenticate,
            Command::Verify { .. } => Instruction::Verify,
            Command::ReadBinary(_) => Instruction::ReadBinary,
            Command::GetResponse { .. } => Instruction::GetResponse,
        }
    }
}

fn select<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    // P2 `00` (FCI) or `0C` (no response data): the card answers no data either way.
    if !matches!(apdu.p2, 0x00 | 0x0C) {
        return Err(Status::IncorrectP1P2);
    }
    Select::decode(apdu.p1, apdu.data).map(Command::Select)
}

fn get_challenge<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    if (apdu.p1, apdu.p2) != (0, 0) {
        return Err(Status::IncorrectP1P2);
    }
    match (apdu.data.is_empty(), apdu.ne) {
        (true, Some(ne)) if ne == CHALLENGE_LEN || apdu.ne_is_maximum() => {
            Ok(Command::GetChallenge)
        }
        (true, Some(_)) => Err(Status::WrongLe(CHALLENGE_LEN as u8)),
        (true, None) | (false, _) => Err(Status::WrongLength),
    }
}

fn mutual_authenticate<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    if (apdu.p1, apdu.p2) != (0, 0) {
        return Err(Status::IncorrectP1P2);
    }
    let cryptogram = apdu.data.try_into().map_err(|_| Status::WrongLength)?;
    Ok(Command::MutualAuthenticate { cryptogram })
}

fn verify<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    if (apdu.p1, apdu.p2) != (0, VERIFY_P2_CARD_NUMBER) {
        return Err(Status::IncorrectP1P2);
    }
    Ok(Command::Verify { sm_data: apdu.data })
}

fn read_binary<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    let target = ReadTarget::decode(apdu.p1, apdu.p2)?;
    let mode = if apdu.cla == cla::SM {
        ReadMode::Secure {
            expected: sm::parse_expected_length(apdu.data).ok_or(Status::IncorrectSmDataObjects),
            le: Le {
                ne: apdu.ne,
                extended: apdu.extended,
            },
        }
    } else {
        let wanted = match (apdu.data.is_empty(), apdu.ne) {
            (true, Some(ne)) => Ok(Wanted {
                ne,
                everything: apdu.ne_is_maximum(),
            }),
            (true, None) | (false, _) => Err(Status::WrongLength),
        };
        ReadMode::Plain { wanted }
    };
    Ok(Command::ReadBinary(ReadBinary { target, mode }))
}

fn get_response<'a>(apdu: &Apdu<'a>) -> Result<Command<'a>, Status> {
    if (apdu.p1, apdu.p2) != (0, 0) || !apdu.data.is_empty() {
        return Err(Status::InstructionNotSupported);
    }
    Ok(Command::GetResponse {
        ne: apdu.ne.unwrap_or(NE_SHORT_MAX),
    })
}

/// A command named by its INS byte alone, whatever its class: how fault selectors and the
/// privacy audit tell commands apart, including those the card refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// `A4`.
    Select,
    /// `84`.
    GetChallenge,
    /// `82`.
    MutualAuthenticate,
    /// `20`.
    Verify,
    /// `B0`.
    ReadBinary,
    /// `C0`.
    GetResponse,
    /// Any other INS.
    Other(u8),
}

impl Instruction {
    /// The instruction of an INS byte.
    pub fn of(ins: u8) -> Instruction {
        match ins {
            ins::SELECT => Instruction::Select,
            ins::GET_CHALLENGE => Instruction::GetChallenge,
            ins::MUTUAL_AUTHENTICATE => Instruction::MutualAuthenticate,
            ins::VERIFY => Instruction::Verify,
            ins::READ_BINARY => Instruction::ReadBinary,
            ins::GET_RESPONSE => Instruction::GetResponse,
            other => Instruction::Other(other),
        }
    }
}

impl Apdu<'_> {
    /// The instruction by INS alone, whatever the class byte.
    pub fn instruction(&self) -> Instruction {
        Instruction::of(self.ins)
    }
}

#[cfg(test)]
mod tests {
    //! Data-driven: raw C-APDU → command or status word, one row per rule and per
    //! precedence between rules (in the style of Nitrokey's opcard-rs command tables).

    use super::*;
    use crate::protocol::AID_DF1;

    type Expected = Result<Command<'static>, Status>;

    const CRYPTOGRAM: [u8; CRYPTOGRAM_LEN] = [0x11; CRYPTOGRAM_LEN];

    fn plain_read(target: ReadTarget, ne: usize, everything: bool) -> Expected {
        Ok(Command::ReadBinary(ReadBinary {
            target,
            mode: ReadMode::Plain {
                wanted: Ok(Wanted { ne, everything }),
            },
        }))
    }

    fn plain_read_refused(target: ReadTarget, deferred: Status) -> Expected {
        Ok(Command::ReadBinary(ReadBinary {
            target,
            mode: ReadMode::Plain {
                wanted: Err(deferred),
            },
        }))
    }

    fn sm_read(
        target: ReadTarget,
        expected: Deferred<u16>,
        ne: Option<usize>,
        ext: bool,
    ) -> Expected {
        Ok(Command::ReadBinary(ReadBinary {
            target,
            mode: ReadMode::Secure {
                expected,
                le: Le { ne, extended: ext },
            },
        }))
    }

    const SFI_0A: ReadTarget = ReadTarget::Sfi {
        sfi: 0x0A,
        offset: 0,
    };

    fn table() -> Vec<(&'static str, String, Expected)> {
        use Status::*;
        let aid = hex::encode(AID_DF1);
        let crypto = hex::encode(CRYPTOGRAM);
        let rows: Vec<(&str, String, Expected)> = vec![
            // Framing comes first, whatever the class.
            ("empty", "".into(), Err(WrongLength)),
            ("header cut", "00A400".into(), Err(WrongLength)),
            (
                "Lc longer than data",
                "80A4000C0301".into(),
                Err(WrongLength),
            ),
            ("extended Lc 0", "00B08A00000000AA".into(), Err(WrongLength)),
            // Class, then instruction, before any P1/P2 or length rule.
            ("unknown class", "80B0FFFF".into(), Err(ClassNotSupported)),
            (
                "CLA 0C",
                "0CB0A000".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "CLA 0C, unknown INS",
                "0CEE0000".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "SM SELECT",
                "08A4FFFF".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "SM GET CHALLENGE",
                "0884000008".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "SM MUTUAL AUTH",
                "08820000".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "unknown INS",
                "00CA0000".into(),
                Err(InstructionNotSupported),
            ),
            (
                "SM unknown INS",
                "08D60000".into(),
                Err(InstructionNotSupported),
            ),
            (
                "SM GET RESPONSE",
                "08C0000000".into(),
                Err(InstructionNotSupported),
            ),
            (
                "plain VERIFY, even with bad P1P2",
                "0020FFFF".into(),
                Err(IncorrectSmDataObjects),
            ),
            // SELECT: P2, then P1 and data.
            (
                "SELECT MF, no data",
                "00A4000C".into(),
                Ok(Command::Select(Select::Mf)),
            ),
            (
                "SELECT MF by 3F00",
                "00A4000C023F00".into(),
                Ok(Command::Select(Select::Mf)),
            ),
            (
                "SELECT MF, FCI, Le ignored",
                "00A4000000".into(),
                Ok(Command::Select(Select::Mf)),
            ),
            (
                "SELECT 3F00 as a FID",
                "00A4020C023F00".into(),
                Ok(Command::Select(Select::Ef { fid: 0x3F00 })),
            ),
            (
                "SELECT EF by FID, P1 00",
                "00A4000C020001".into(),
                Ok(Command::Select(Select::Ef { fid: 1 })),
            ),
            (
                "SELECT EF, P1 02, no data",
                "00A4020C".into(),
                Err(WrongLength),
            ),
            (
                "SELECT EF, one byte",
                "00A4000C0101".into(),
                Err(WrongLength),
            ),
            ("SELECT DF, no name", "00A4040C".into(), Err(WrongLength)),
            (
                "SELECT DF by AID",
                format!("00A4040C10{aid}"),
                Ok(Command::Select(Select::Df { name: &AID_DF1 })),
            ),
            (
                "SELECT DF, any name",
                "00A4040003010203".into(),
                Ok(Command::Select(Select::Df { name: &[1, 2, 3] })),
            ),
            (
                "SELECT, bad P2 before bad P1",
                "00A40801".into(),
                Err(IncorrectP1P2),
            ),
            (
                "SELECT, bad P2 before length",
                "00A40204".into(),
                Err(IncorrectP1P2),
            ),
            ("SELECT, bad P1", "00A4080C".into(), Err(IncorrectP1P2)),
            // GET CHALLENGE: P1P2, then data and Le.
            (
                "GET CHALLENGE 8",
                "0084000008".into(),
                Ok(Command::GetChallenge),
            ),
            (
                "GET CHALLENGE Le 00",
                "0084000000".into(),
                Ok(Command::GetChallenge),
            ),
            (
                "GET CHALLENGE Le 0000",
                "00840000000000".into(),
                Ok(Command::GetChallenge),
            ),
            (
                "GET CHALLENGE extended 8",
                "00840000000008".into(),
                Ok(Command::GetChallenge),
            ),
            (
                "GET CHALLENGE explicit 256",
                "00840000000100".into(),
                Err(WrongLe(8)),
            ),
            ("GET CHALLENGE 4", "0084000004".into(), Err(WrongLe(8))),
            (
                "GET CHALLENGE without Le",
                "00840000".into(),
                Err(WrongLength),
            ),
            (
                "GET CHALLENGE with data",
                "008400000101".into(),
                Err(WrongLength),
            ),
            (
                "GET CHALLENGE with data and Le",
                "00840000010108".into(),
                Err(WrongLength),
            ),
            (
                "GET CHALLENGE, P1P2 before Le",
                "00840100".into(),
                Err(IncorrectP1P2),
            ),
            // MUTUAL AUTHENTICATE: P1P2, then 40 bytes; Le ignored.
            (
                "MUTUAL AUTH",
                format!("0082000028{crypto}"),
                Ok(Command::MutualAuthenticate {
                    cryptogram: &CRYPTOGRAM,
                }),
            ),
            (
                "MUTUAL AUTH with Le",
                format!("0082000028{crypto}00"),
                Ok(Command::MutualAuthenticate {
                    cryptogram: &CRYPTOGRAM,
                }),
            ),
            (
                "MUTUAL AUTH, 39 bytes",
                format!("0082000027{}", &crypto[2..]),
                Err(WrongLength),
            ),
            (
                "MUTUAL AUTH, no data",
                "0082000000".into(),
                Err(WrongLength),
            ),
            (
                "MUTUAL AUTH, P1P2 before length",
                "0082000100".into(),
                Err(IncorrectP1P2),
            ),
            // VERIFY: P1P2 only; the data is judged with the session key.
            (
                "VERIFY",
                "08200086038601AA".into(),
                Ok(Command::Verify {
                    sm_data: &[0x86, 0x01, 0xAA],
                }),
            ),
            (
                "VERIFY, no data",
                "08200086".into(),
                Ok(Command::Verify { sm_data: &[] }),
            ),
            ("VERIFY, bad P2", "08200080".into(), Err(IncorrectP1P2)),
            ("VERIFY, bad P1", "08200186".into(), Err(IncorrectP1P2)),
            // READ BINARY: target from P1P2 first; length faults are deferred.
            (
                "READ SFI 0A, Le 00",
                "00B08A0000".into(),
                plain_read(SFI_0A, 256, true),
            ),
            (
                "READ SFI 0A, Le 0000",
                "00B08A00000000".into(),
                plain_read(SFI_0A, 65_536, true),
            ),
            (
                "READ SFI 0A, explicit 256",
                "00B08A00000100".into(),
                plain_read(SFI_0A, 256, false),
            ),
            (
                "READ SFI, offset P2",
                "00B0810510".into(),
                plain_read(ReadTarget::Sfi { sfi: 1, offset: 5 }, 16, false),
            ),
            (
                "READ current EF, offset P1P2",
                "00B0012308".into(),
                plain_read(ReadTarget::Current { offset: 0x0123 }, 8, false),
            ),
            (
                "READ, no Le: deferred",
                "00B08A00".into(),
                plain_read_refused(SFI_0A, WrongLength),
            ),
            (
                "READ, with data: deferred",
                "00B08A0001AA00".into(),
                plain_read_refused(SFI_0A, WrongLength),
            ),
            ("READ, P1 bits 7-6", "00B0A00000".into(), Err(IncorrectP1P2)),
            (
                "READ, P1 before length",
                "00B0C000".into(),
                Err(IncorrectP1P2),
            ),
            (
                "SM READ P1 before DO 97",
                "08B0E00000".into(),
                Err(IncorrectP1P2),
            ),
            (
                "SM READ, everything",
                "08B08A00000004960200000000".into(),
                sm_read(SFI_0A, Ok(0), Some(65_536), true),
            ),
            (
                "SM READ, short",
                "08B08A000496020010FF".into(),
                sm_read(SFI_0A, Ok(16), Some(255), false),
            ),
            (
                "SM READ, no Le",
                "08B08A000496020010".into(),
                sm_read(SFI_0A, Ok(16), None, false),
            ),
            (
                "SM READ, no DO 97: deferred",
                "08B08A0000".into(),
                sm_read(SFI_0A, Err(IncorrectSmDataObjects), Some(256), false),
            ),
            (
                "SM READ, bad DO 97: deferred",
                "08B08A000497020010".into(),
                sm_read(SFI_0A, Err(IncorrectSmDataObjects), None, false),
            ),
            // GET RESPONSE: only 00 C0 00 00 without data.
            (
                "GET RESPONSE",
                "00C0000000".into(),
                Ok(Command::GetResponse { ne: 256 }),
            ),
            (
                "GET RESPONSE 16",
                "00C0000010".into(),
                Ok(Command::GetResponse { ne: 16 }),
            ),
            (
                "GET RESPONSE, no Le",
                "00C00000".into(),
                Ok(Command::GetResponse { ne: 256 }),
            ),
            (
                "GET RESPONSE, P1P2",
                "00C0000100".into(),
                Err(InstructionNotSupported),
            ),
            (
                "GET RESPONSE, data",
                "00C0000001AA".into(),
                Err(InstructionNotSupported),
            ),
            (
                "GET RESPONSE, CLA 0C",
                "0CC0000000".into(),
                Err(SecureMessagingNotSupported),
            ),
            (
                "GET RESPONSE, CLA 80",
                "80C0000000".into(),
                Err(ClassNotSupported),
            ),
        ];
        rows
    }

    #[test]
    fn every_row_parses_as_tabled() {
        let mut wrong = Vec::new();
        for (what, raw, expected) in table() {
            let bytes = hex::decode(&raw).unwrap();
            let got = Command::parse(&bytes);
            if got != expected {
                wrong.push(format!(
                    "{what} ({raw}): got {got:?}, expected {expected:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_table_covers_every_command_and_every_refusal() {
        let rows = table();
        let instructions: Vec<Instruction> = rows
            .iter()
            .filter_map(|(_, _, e)| e.as_ref().ok().map(Command::instruction))
            .collect();
        for instruction in [
            Instruction::Select,
            Instruction::GetChallenge,
            Instruction::MutualAuthenticate,
            Instruction::Verify,
            Instruction::ReadBinary,
            Instruction::GetResponse,
        ] {
            assert!(instructions.contains(&instruction), "{instruction:?}");
        }
        for status in [
            Status::WrongLength,
            Status::ClassNotSupported,
            Status::SecureMessagingNotSupported,
            Status::InstructionNotSupported,
            Status::IncorrectSmDataObjects,
            Status::IncorrectP1P2,
            Status::WrongLe(8),
        ] {
            assert!(rows.iter().any(|(_, _, e)| *e == Err(status)), "{status}");
        }
    }

    #[test]
    fn class_rules_choose_the_open_class_errors_and_nothing_else() {
        use Status::*;
        let rules = ClassRules {
            sm_header_authenticated: ClassNotSupported,
            unknown_class: InstructionNotSupported,
            sm_on_plain_commands: None,
            plain_verify: SecurityStatusNotSatisfied,
        };
        let parse = |raw: &str| Command::parse_with(&hex::decode(raw).unwrap(), &rules).map(|_| ());
        assert_eq!(parse("0CB0A000"), Err(ClassNotSupported));
        assert_eq!(parse("80B0FFFF"), Err(InstructionNotSupported));
        assert_eq!(parse("0020FFFF"), Err(SecurityStatusNotSatisfied));
        // Carried out as plain: its own P1/P2 and length rules apply.
        assert_eq!(parse("0884000008"), Ok(()));
        assert_eq!(parse("08A4000C"), Ok(()));
        assert_eq!(parse("08A4FFFF"), Err(IncorrectP1P2));
        assert_eq!(parse("08820000"), Err(WrongLength));
        // Framing still comes first, and the rest of the table is unchanged.
        assert_eq!(parse("0C"), Err(WrongLength));
        assert_eq!(parse("08D60000"), Err(InstructionNotSupported));
        let refused = ClassRules {
            sm_on_plain_commands: Some(IncorrectSmDataObjects),
            ..ClassRules::default()
        };
        assert_eq!(
            Command::parse_with(&hex::decode("0884000008").unwrap(), &refused),
            Err(IncorrectSmDataObjects)
        );
    }

    #[test]
    fn a_parsed_command_names_its_own_instruction() {
        for (_, raw, expected) in table() {
            let bytes = hex::decode(&raw).unwrap();
            if let Ok(command) = expected {
                assert_eq!(command.instruction(), Instruction::of(bytes[1]), "{raw}");
            }
        }
    }
}
