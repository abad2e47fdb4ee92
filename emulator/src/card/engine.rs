//! The card engine: a pure, synchronous state machine from C-APDU bytes to R-APDU bytes.
//!
//! No I/O, no clock, no global RNG: the random numbers come from a ChaCha20 generator
//! seeded by the profile, so the same profile and the same commands give the same bytes.
//! Every input, however malformed, is answered with a status word (spec §3.7).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::image::{Access, CardImage, Df, ReadPastEnd, SmReadLength, SmReadShortLe};
use crate::protocol::apdu::NE_EXTENDED_MAX;
use crate::protocol::auth::{self, Nonce};
use crate::protocol::command::{
    CRYPTOGRAM_LEN, Command, ReadBinary, ReadMode, ReadTarget, Select, Wanted,
};
use crate::protocol::crypto::Key;
use crate::protocol::{Status, sm};

/// Successful outcome of a command: response data and `90 00` or a warning.
type Answer = Result<(Vec<u8>, Status), Status>;

/// Volatile chip state (spec §3.8); all of it dies on reset and power events.
#[derive(Clone, Debug, Default)]
struct Session {
    df: Df,
    /// Index of the current EF in the image.
    ef: Option<usize>,
    /// RND.ICC of a GET CHALLENGE that was the previous command.
    challenge: Option<Nonce>,
    /// KSenc after a successful MUTUAL AUTHENTICATE.
    key: Option<Key>,
    /// Set by a successful VERIFY.
    verified: bool,
}

/// An emulated residence-card chip.
pub struct Card {
    image: Arc<CardImage>,
    rng: ChaCha20Rng,
    session: Session,
}

impl Card {
    /// A chip of `image`, just reset; its randoms come from the image's seed.
    pub fn new(image: Arc<CardImage>) -> Card {
        let rng = ChaCha20Rng::seed_from_u64(image.seed);
        Card {
            image,
            rng,
            session: Session::default(),
        }
    }

    /// The chip's files, keys and knobs.
    pub fn image(&self) -> &CardImage {
        &self.image
    }

    /// The current DF. Read-only views of the session let a fault layer
    /// (`crate::fault`) aim at one file or re-seal an answer without the engine knowing.
    pub fn current_df(&self) -> Df {
        self.session.df
    }

    /// Index in the image of the current EF, if any.
    pub fn current_file(&self) -> Option<usize> {
        self.session.ef
    }

    /// KSenc of the session opened by MUTUAL AUTHENTICATE, if any.
    pub fn session_key(&self) -> Option<Key> {
        self.session.key
    }

    /// Reset, power-on or power-off: MF current, no EF, no challenge, no session.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Processes one C-APDU and returns the R-APDU (data ‖ SW1 SW2). Never panics.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        // GET CHALLENGE must immediately precede MUTUAL AUTHENTICATE: any command voids it.
        let challenge = self.session.challenge.take();
        let rules = self.image.knobs.class_rules();
        let (mut data, status) =
            match Command::parse_with(apdu, &rules).and_then(|c| self.execute(c, challenge)) {
                Ok(answer) => answer,
                Err(status) => (Vec::new(), status),
            };
        data.extend_from_slice(&status.to_bytes());
        data
    }

    fn execute(&mut self, command: Command, challenge: Option<Nonce>) -> Answer {
        match command {
            Command::Select(target) => self.select(target),
            Command::GetChallenge => self.get_challenge(),
            Command::MutualAuthenticate { cryptogram } => {
                self.mutual_authenticate(cryptogram, challenge)
            }
            Command::Verify { sm_data } => self.verify(sm_data),
            Command::ReadBinary(read) => self.read_binary(read),
            // The card answers every command in one piece: there is never data waiting.
            Command::GetResponse { .. } => Err(Status::InstructionNotSupported),
        }
    }

    /// SELECT MF (P1 00), EF by FID (P1 02, or 00 with a FID) or DF by name (P1 04).
    fn select(&mut self, target: Select) -> Answer {
        match target {
            Select::Mf => {
                self.session.df = Df::Mf;
                self.session.ef = None;
                ok(Vec::new())
            }
            Select::Ef { fid } => {
                let df = self.session.df;
                let index = self
                    .image
                    .files
                    .iter()
                    .position(|f| f.id.df == df && f.fid == Some(fid))
                    .ok_or(Status::FileNotFound)?;
                self.session.ef = Some(index);
                ok(Vec::new())
            }
            Select::Df { name } => {
                let df = Df::from_aid(name).ok_or(Status::FileNotFound)?;
                self.session.df = df;
                self.session.ef = None;
                ok(Vec::new())
            }
        }
    }

    fn get_challenge(&mut self) -> Answer {
        let rnd_icc = match self.image.knobs.rnd_icc {
            Some(fixed) => fixed,
            None => self.random(),
        };
        self.session.challenge = Some(rnd_icc);
        ok(rnd_icc.to_vec())
    }

    fn mutual_authenticate(
        &mut self,
        cryptogram: &[u8; CRYPTOGRAM_LEN],
        challenge: Option<Nonce>,
    ) -> Answer {
        let rnd_icc = challenge.ok_or(Status::ConditionsNotSatisfied)?;
        // A new authentication attempt ends the previous session, successful or not.
        self.session.key = None;
        self.session.verified = false;
        let k_icc = match self.image.knobs.k_icc {
            Some(fixed) => fixed,
            None => self.random(),
        };
        let generation = self.image.generation;
        let (answer, session_key) = auth::card_response(
            generation,
            &self.image.chip_key(),
            &rnd_icc,
            cryptogram,
            &k_icc,
        )
        .map_err(|_| Status::VerificationFailed)?;
        self.session.key = Some(session_key);
        ok(answer.to_vec())
    }

    fn verify(&mut self, sm_data: &[u8]) -> Answer {
        let key = self.session.key.ok_or(Status::ConditionsNotSatisfied)?;
        let plain = sm::open(self.image.generation, &key, sm_data)
            .map_err(|_| Status::IncorrectSmDataObjects)?;
        if plain == self.image.chip_card_number.as_bytes() {
            self.session.verified = true;
            ok(Vec::new())
        } else {
            self.session.verified = false;
            if self.image.knobs.failed_verify_drops_session {
                self.session.key = None;
            }
            Err(Status::VerificationFailed)
        }
    }

    fn read_binary(&mut self, read: ReadBinary) -> Answer {
        let index = match read.target {
            ReadTarget::Sfi { sfi, .. } => {
                let index = self
                    .image
                    .find_sfi(self.session.df, sfi)
                    .ok_or(Status::FileNotFound)?;
                self.session.ef = Some(index);
                index
            }
            ReadTarget::Current { .. } => self.session.ef.ok_or(Status::NoCurrentEf)?,
        };
        let offset = read.target.offset();
        let secure = matches!(read.mode, ReadMode::Secure { .. });
        let image = Arc::clone(&self.image);
        let file = &image.files[index];
        match file.access {
            Access::Free => {}
            Access::Auth | Access::AuthSm if !self.session.verified => {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            Access::AuthSm if !secure => return Err(Status::SecurityStatusNotSatisfied),
            Access::Auth | Access::AuthSm => {}
        }
        let content = &file.content;
        if offset >= content.len() {
            return Err(Status::OffsetOutOfRange);
        }
        let available = content.len() - offset;
        match read.mode {
            ReadMode::Secure { expected, le } => {
                let key = self.session.key.ok_or(Status::SecurityStatusNotSatisfied)?;
                let (len, status) = match usize::from(expected?) {
                    0 => (available, Status::Success),
                    _ if self.image.knobs.sm_read_length == SmReadLength::ToEndOfFile => {
                        (available, Status::Success)
                    }
                    n => self.clamp(n, available, false)?,
                };
                // An EF too large for one DO 86 (only a hand-made image has one: profiles
                // bound EF sizes) gets a status word, never a panic.
                let sealed = sm::seal(self.image.generation, &key, &content[offset..offset + len])
                    .map_err(|_| Status::WrongLength)?;
                let ne = le.ne.unwrap_or(0);
                if sealed.len() > ne && self.image.knobs.sm_read_short_le == SmReadShortLe::WrongLe
                {
                    return Err(match u8::try_from(sealed.len()) {
                        Ok(n) if !le.extended => Status::WrongLe(n),
                        _ => Status::WrongLength,
                    });
                }
                Ok((sealed, status))
            }
            ReadMode::Plain { wanted } => {
                let Wanted { ne, everything } = wanted?;
                let (len, status) = self.clamp(ne, available, everything)?;
                Ok((content[offset..offset + len].to_vec(), status))
            }
        }
    }

    /// Length actually read when `wanted` bytes are asked and `available` remain.
    fn clamp(
        &self,
        wanted: usize,
        available: usize,
        wanted_everything: bool,
    ) -> Result<(usize, Status), Status> {
        if wanted <= available {
            return Ok((wanted, Status::Success));
        }
        if wanted_everything || wanted == NE_EXTENDED_MAX {
            return Ok((available, Status::Success));
        }
        match self.image.knobs.read_past_end {
            ReadPastEnd::EndOfFileWarning => Ok((available, Status::EndOfFileWarning)),
            ReadPastEnd::Success => Ok((available, Status::Success)),
            ReadPastEnd::WrongLe => Err(Status::WrongLe(u8::try_from(available).unwrap_or(0))),
            ReadPastEnd::WrongP1P2 => Err(Status::OffsetOutOfRange),
        }
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        self.rng.fill_bytes(&mut out);
        out
    }
}

fn ok(data: Vec<u8>) -> Answer {
    Ok((data, Status::Success))
}
