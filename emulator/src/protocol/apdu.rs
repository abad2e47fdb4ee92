//! Command and response APDUs (ISO 7816-4 §5.1): short and extended Lc/Le.
//!
//! Parsing is total: every byte string either becomes an [`Apdu`] or the
//! status word the card must answer (`67 00` for any length inconsistency). What the
//! command means is [`super::command::Command`], parsed from an [`Apdu`].

use super::status::Status;

/// Ne value meaning "as many as available" for a short `Le = 00`.
pub const NE_SHORT_MAX: usize = 256;
/// Ne value meaning "as many as available" for an extended `Le = 00 00`.
pub const NE_EXTENDED_MAX: usize = 65_536;

/// A command APDU split into header, data and Le, borrowing its data from the raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apdu<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (`Nc` bytes; empty when Lc is absent).
    pub data: &'a [u8],
    /// Expected response length Ne, `None` when Le is absent.
    pub ne: Option<usize>,
    /// True when Lc/Le used the extended (3-byte / 2-byte) form.
    pub extended: bool,
}

/// Old name of [`Apdu`], kept so that code written before typed commands (issue 11)
/// still compiles; new code says `Apdu` for the bytes and `command::Command` for the meaning.
pub type Command<'a> = Apdu<'a>;

impl<'a> Apdu<'a> {
    /// Parses the seven ISO cases (1, 2S, 3S, 4S, 2E, 3E, 4E).
    pub fn parse(raw: &'a [u8]) -> Result<Self, Status> {
        let [cla, ins, p1, p2, body @ ..] = raw else {
            return Err(Status::WrongLength);
        };
        let mut cmd = Apdu {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data: &[],
            ne: None,
            extended: false,
        };
        match body {
            [] => {}
            [le] => cmd.ne = Some(short_ne(*le)),
            [0, rest @ ..] => {
                cmd.extended = true;
                match rest {
                    [h, l] => cmd.ne = Some(extended_ne(*h, *l)),
                    [h, l, tail @ ..] => {
                        let nc = usize::from(u16::from_be_bytes([*h, *l]));
                        if nc == 0 {
                            return Err(Status::WrongLength);
                        }
                        match tail.len().checked_sub(nc) {
                            Some(0) => cmd.data = tail,
                            Some(2) => {
                                cmd.data = &tail[..nc];
                                cmd.ne = Some(extended_ne(tail[nc], tail[nc + 1]));
                            }
                            _ => return Err(Status::WrongLength),
                        }
                    }
                    _ => return Err(Status::WrongLength),
                }
            }
            [lc, tail @ ..] => {
                let nc = usize::from(*lc);
                match tail.len().checked_sub(nc) {
                    Some(0) => cmd.data = tail,
                    Some(1) => {
                        cmd.data = &tail[..nc];
                        cmd.ne = Some(short_ne(tail[nc]));
                    }
                    _ => return Err(Status::WrongLength),
                }
            }
        }
        Ok(cmd)
    }

    /// True when Ne asks for "everything available" (`Le = 00` or `00 00`). An extended
    /// `Le = 01 00` is an explicit 256, not "everything".
    pub fn ne_is_maximum(&self) -> bool {
        match self.ne {
            Some(NE_SHORT_MAX) => !self.extended,
            Some(NE_EXTENDED_MAX) => self.extended,
            _ => false,
        }
    }
}

fn short_ne(le: u8) -> usize {
    if le == 0 {
        NE_SHORT_MAX
    } else {
        usize::from(le)
    }
}

fn extended_ne(h: u8, l: u8) -> usize {
    match u16::from_be_bytes([h, l]) {
        0 => NE_EXTENDED_MAX,
        n => usize::from(n),
    }
}

/// Host-side builder: picks the short form when it fits, the extended form otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandBuilder {
    header: [u8; 4],
    data: Vec<u8>,
    ne: Option<usize>,
    force_extended: bool,
}

impl CommandBuilder {
    /// A command with this header, no data and no Le.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        CommandBuilder {
            header: [cla, ins, p1, p2],
            data: Vec::new(),
            ne: None,
            force_extended: false,
        }
    }

    /// Command data; at most 65 535 bytes (longer data is truncated by `to_bytes` never: it is rejected there).
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Expected response length Ne (1..=65 536; 256 and 65 536 encode as `00`/`00 00`).
    pub fn ne(mut self, ne: usize) -> Self {
        self.ne = Some(ne);
        self
    }

    /// Use the extended Lc/Le form even when the short one would fit.
    pub fn extended(mut self) -> Self {
        self.force_extended = true;
        self
    }

    /// Serialises the APDU. Panics only on caller bugs (data over 65 535 bytes or Ne over 65 536).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.data.len() <= 0xFFFF, "command data over 65 535 bytes");
        assert!(
            self.ne.is_none_or(|ne| (1..=NE_EXTENDED_MAX).contains(&ne)),
            "Ne out of range"
        );
        let extended = self.force_extended
            || self.data.len() > 255
            || self.ne.is_some_and(|ne| ne > NE_SHORT_MAX);
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&self.header);
        if extended {
            if !self.data.is_empty() {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&((ne % NE_EXTENDED_MAX) as u16).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                out.push((ne % NE_SHORT_MAX) as u8);
            }
        }
        out
    }
}

/// A response APDU split into data and status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Response data (empty when there is none).
    pub data: Vec<u8>,
    /// SW1 SW2.
    pub status: Status,
}

impl Response {
    /// Splits raw response bytes; `None` when shorter than a status word.
    pub fn parse(raw: &[u8]) -> Option<Response> {
        let split = raw.len().checked_sub(2)?;
        let (data, sw) = raw.split_at(split);
        Some(Response {
            data: data.to_vec(),
            status: Status::from_sw(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }

    /// Serialises data followed by the status word.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_case() {
        let c = Apdu::parse(&[0, 0xA4, 0, 0]).unwrap();
        assert_eq!((c.data, c.ne), (&[][..], None));
        let c = Apdu::parse(&[0, 0x84, 0, 0, 8]).unwrap();
        assert_eq!(c.ne, Some(8));
        let c = Apdu::parse(&[0, 0xB0, 0x8A, 0, 0]).unwrap();
        assert_eq!(c.ne, Some(256));
        let c = Apdu::parse(&[0, 0xA4, 0, 0, 2, 0x3F, 0]).unwrap();
        assert_eq!((c.data, c.ne), (&[0x3F, 0][..], None));
        let c = Apdu::parse(&[0, 0x82, 0, 0, 1, 9, 0]).unwrap();
        assert_eq!((c.data, c.ne), (&[9][..], Some(256)));
        let c = Apdu::parse(&[0, 0xB0, 0x82, 0, 0, 0, 0]).unwrap();
        assert_eq!((c.ne, c.extended), (Some(65_536), true));
        let c = Apdu::parse(&[8, 0xB0, 0x84, 0, 0, 0, 4, 0x96, 2, 0, 0, 0, 0]).unwrap();
        assert_eq!((c.data, c.ne), (&[0x96, 2, 0, 0][..], Some(65_536)));
        let c = Apdu::parse(&[0, 0xD6, 0, 0, 0, 0, 1, 7]).unwrap();
        assert_eq!((c.data, c.ne), (&[7][..], None));
    }

    #[test]
    fn only_le_00_and_00_00_mean_everything() {
        assert!(Apdu::parse(&[0, 0xB0, 0, 0, 0]).unwrap().ne_is_maximum());
        assert!(
            Apdu::parse(&[0, 0xB0, 0, 0, 0, 0, 0])
                .unwrap()
                .ne_is_maximum()
        );
        let explicit_256 = Apdu::parse(&[0, 0xB0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(explicit_256.ne, Some(256));
        assert!(!explicit_256.ne_is_maximum());
        assert!(!Apdu::parse(&[0, 0xB0, 0, 0, 8]).unwrap().ne_is_maximum());
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        for raw in [
            &[0u8, 0xA4, 0][..],
            &[0, 0xA4, 0, 0, 3, 1],
            &[0, 0xA4, 0, 0, 1, 1, 2, 3],
            &[0, 0xB0, 0, 0, 0, 0],
            &[0, 0xB0, 0, 0, 0, 0, 0, 0],
            &[0, 0xB0, 0, 0, 0, 0, 2, 1],
        ] {
            assert_eq!(Apdu::parse(raw), Err(Status::WrongLength), "{raw:02X?}");
        }
    }

    #[test]
    fn builder_round_trips() {
        let raw = CommandBuilder::new(8, 0xB0, 0x84, 0)
            .data([0x96, 2, 0, 0])
            .ne(65_536)
            .extended()
            .to_bytes();
        assert_eq!(raw, hex::decode("08B08400000004960200000000").unwrap());
        let raw = CommandBuilder::new(0, 0x84, 0, 0).ne(8).to_bytes();
        assert_eq!(raw, [0, 0x84, 0, 0, 8]);
    }
}
