//! The reader side of the protocol, once: SELECT by AID, GET CHALLENGE + MUTUAL
//! AUTHENTICATE, VERIFY of the card number, READ BINARY plain or under secure messaging
//! (whole or in chunks bounded by a maximum response size), with the `6C xx` retry and the
//! `61 xx` GET RESPONSE loop of ISO 7816-4.
//!
//! The reference checker, the fuzz targets, the benches and the tests all read cards
//! through [`Session`]. Each step returns a typed [`ReaderError`] (transport failure,
//! status word, malformed answer) and leaves the meaning of a failure to the caller: to the
//! checker a refused VERIFY is a verdict, to a test it is a failed assertion. Nothing here
//! panics, whatever the card answers (the checker is fuzzed against hostile cards).
//!
//! The bytes sent are fixed: the conformance suite's transcript snapshots pin them.

use rand::Rng;
use thiserror::Error;

use crate::protocol::auth::{self, AuthError, Nonce};
use crate::protocol::crypto::Key;
use crate::protocol::sm::{self, SmError};
use crate::protocol::{
    Command, CommandBuilder, Generation, Response, Status, VERIFY_P2_CARD_NUMBER, cla, ins,
};
use crate::transport::{Channel, TransportError};

/// INS of GET RESPONSE (ISO 7816-4 §7.6.1), sent after `61 xx`.
const GET_RESPONSE: u8 = 0xC0;
/// GET RESPONSE rounds after which a card that keeps answering `61 xx` is given up on.
const MAX_GET_RESPONSE_ROUNDS: usize = 300;
/// Largest offset READ BINARY can address in P1-P2 (bit 8 of P1 selects the SFI form).
const MAX_OFFSET: usize = 0x7FFF;

/// Why a reader step did not give its result.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReaderError {
    /// The channel failed (card removed, timeout, reader error).
    #[error("{0}")]
    Transport(TransportError),
    /// The answer is shorter than a status word.
    #[error("response of {0} bytes has no status word")]
    NoStatusWord(usize),
    /// `61 xx` without end (more than 300 GET RESPONSE rounds or 64 KiB of data).
    #[error("the card keeps answering 61 xx")]
    EndlessGetResponse,
    /// The card answered a status word the step does not accept.
    #[error("status {0}")]
    Status(Status),
    /// GET CHALLENGE succeeded without an 8-byte RND.ICC.
    #[error("GET CHALLENGE returned {0} bytes")]
    ChallengeLength(usize),
    /// The card's `E.ICC ‖ M.ICC` does not verify: the chip does not hold the key.
    #[error("card cryptogram: {0}")]
    CardCryptogram(AuthError),
    /// An SM answer does not open under the session key.
    #[error("secure messaging: {0}")]
    SecureMessaging(SmError),
    /// An SM step before a session key was agreed.
    #[error("no session key: MUTUAL AUTHENTICATE first")]
    NoSessionKey,
    /// The card number does not fit one DO `86`.
    #[error("the card number is too long to send in one VERIFY")]
    NumberTooLong,
    /// A chunked read reached an offset READ BINARY cannot address.
    #[error("EF larger than 32 KiB")]
    TooLarge,
    /// A chunk longer than asked for.
    #[error("card sent more than asked")]
    Oversent,
}

impl From<TransportError> for ReaderError {
    fn from(e: TransportError) -> Self {
        ReaderError::Transport(e)
    }
}

/// The reader's random side of one MUTUAL AUTHENTICATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderSecrets {
    /// RND.IFD.
    pub rnd_ifd: Nonce,
    /// K.IFD, the reader's half of the session key.
    pub k_ifd: Key,
}

impl ReaderSecrets {
    /// Draws RND.IFD, then K.IFD, from `rng` (this order: seeded transcripts depend on it).
    pub fn draw(rng: &mut impl Rng) -> ReaderSecrets {
        let mut rnd_ifd: Nonce = [0; 8];
        let mut k_ifd: Key = [0; 16];
        rng.fill_bytes(&mut rnd_ifd);
        rng.fill_bytes(&mut k_ifd);
        ReaderSecrets { rnd_ifd, k_ifd }
    }
}

/// How an EF is read: in the clear, or under secure messaging (DO `96` / DO `86`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// `00 B0`.
    Plain,
    /// `08 B0` with DO `96`; the answer is opened with the session key.
    Sm,
}

/// `00 A4 04 0C 10 <AID>`.
pub fn select_by_aid_apdu(aid: &[u8]) -> Vec<u8> {
    CommandBuilder::new(cla::PLAIN, ins::SELECT, 0x04, 0x0C)
        .data(aid.to_vec())
        .to_bytes()
}

/// `00 A4 00 0C 02 3F 00`.
pub fn select_mf_apdu() -> Vec<u8> {
    CommandBuilder::new(cla::PLAIN, ins::SELECT, 0x00, 0x0C)
        .data([0x3F, 0x00])
        .to_bytes()
}

/// `00 84 00 00 08`.
pub const GET_CHALLENGE_APDU: [u8; 5] = [cla::PLAIN, ins::GET_CHALLENGE, 0x00, 0x00, 0x08];

/// `00 82 00 00 28 <E.IFD ‖ M.IFD> 00`.
pub fn mutual_authenticate_apdu(cryptogram: &[u8]) -> Vec<u8> {
    CommandBuilder::new(cla::PLAIN, ins::MUTUAL_AUTHENTICATE, 0, 0)
        .data(cryptogram.to_vec())
        .ne(256)
        .to_bytes()
}

/// The reader's `E.IFD ‖ M.IFD` for the challenge `rnd_icc` under the card-number key
/// `key`, in `generation`'s cryptography.
pub fn reader_cryptogram(
    generation: Generation,
    key: &Key,
    rnd_icc: &Nonce,
    secrets: &ReaderSecrets,
) -> [u8; 40] {
    auth::cryptogram(generation, key, &secrets.rnd_ifd, rnd_icc, &secrets.k_ifd)
}

/// `08 20 00 86 Lc <DO 86 of the number under KSenc>`.
pub fn verify_apdu(
    generation: Generation,
    session_key: &Key,
    number: &[u8],
) -> Result<Vec<u8>, ReaderError> {
    let sealed =
        sm::seal(generation, session_key, number).map_err(|_| ReaderError::NumberTooLong)?;
    Ok(
        CommandBuilder::new(cla::SM, ins::VERIFY, 0, VERIFY_P2_CARD_NUMBER)
            .data(sealed)
            .to_bytes(),
    )
}

/// `08 B0 P1 P2 00 00 04 96 02 Lh Ll 00 00`: SM READ BINARY of `len` plaintext bytes
/// (`0` = to the end of the EF).
pub fn sm_read_apdu(p1: u8, p2: u8, len: u16) -> Vec<u8> {
    CommandBuilder::new(cla::SM, ins::READ_BINARY, p1, p2)
        .data(sm::expected_length(len).to_vec())
        .ne(65_536)
        .extended()
        .to_bytes()
}

/// `00 B0 P1 P2 Le` asking for `ne` bytes (1..=65 536; short form up to 256).
pub fn plain_read_apdu(p1: u8, p2: u8, ne: usize) -> Vec<u8> {
    CommandBuilder::new(cla::PLAIN, ins::READ_BINARY, p1, p2)
        .ne(ne.clamp(1, 65_536))
        .to_bytes()
}

/// KSenc of an authentication someone watched, recomputed by a party that knows the
/// card-number key (a twin chip in a fuzzer, a transcript decoder): from the reader's
/// MUTUAL AUTHENTICATE command, the challenge it answered and the card's answer data.
/// `None` when any part does not verify.
pub fn observed_session_key(
    generation: Generation,
    key: &Key,
    rnd_icc: &Nonce,
    mutual_authenticate: &[u8],
    card_answer: &[u8],
) -> Option<Key> {
    let cmd = Command::parse(mutual_authenticate).ok()?;
    let (rnd_ifd, k_ifd) = auth::open_cryptogram(generation, key, cmd.data, rnd_icc).ok()?;
    auth::reader_finish(generation, key, &rnd_ifd, rnd_icc, &k_ifd, card_answer).ok()
}

/// A reader's conversation with one card over a [`Channel`]: the cipher suite in use, the
/// session key once agreed, and the largest response the reader accepts.
pub struct Session<C> {
    channel: C,
    generation: Generation,
    session_key: Option<Key>,
    max_response: Option<usize>,
}

impl<C: Channel> Session<C> {
    /// A session in `generation`'s cryptography, reading whole EFs in one extended APDU.
    pub fn new(channel: C, generation: Generation) -> Self {
        Session {
            channel,
            generation,
            session_key: None,
            max_response: None,
        }
    }

    /// Caps every READ BINARY answer at `max` bytes (status word included): EFs are read
    /// in chunks by offset. `None` reads whole EFs in one extended APDU.
    pub fn with_max_response(mut self, max: Option<usize>) -> Self {
        self.max_response = max;
        self
    }

    /// The cipher suite for authentication, VERIFY and SM.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Switches the cipher suite (the card type read in plain decides it).
    pub fn set_generation(&mut self, generation: Generation) {
        self.generation = generation;
    }

    /// KSenc of the latest successful MUTUAL AUTHENTICATE.
    pub fn session_key(&self) -> Option<Key> {
        self.session_key
    }

    /// Sets or forgets KSenc (a test sending VERIFY under a key of its choice).
    pub fn set_session_key(&mut self, key: Option<Key>) {
        self.session_key = key;
    }

    /// The channel, for exchanges outside the reader flow.
    pub fn channel_mut(&mut self) -> &mut C {
        &mut self.channel
    }

    /// The channel back.
    pub fn into_channel(self) -> C {
        self.channel
    }

    /// One raw exchange: the parsed response, nothing retried.
    pub fn exchange(&mut self, apdu: &[u8]) -> Result<Response, ReaderError> {
        let raw = self.channel.transmit(apdu)?;
        Response::parse(&raw).ok_or(ReaderError::NoStatusWord(raw.len()))
    }

    /// One command, as ISO 7816-4 lets a card answer it: `6C xx` is followed by the same
    /// command with Le = xx (once), `61 xx` by GET RESPONSE until the data is complete.
    /// Any status word is returned; only transport and framing failures are errors.
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Response, ReaderError> {
        let mut r = self.exchange(apdu)?;
        if let Status::WrongLe(le) = r.status
            && let Some(again) = with_le(apdu, le)
        {
            r = self.exchange(&again)?;
        }
        let mut rounds = 0;
        while let Status::BytesRemaining(more) = r.status {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS || r.data.len() > 0xFFFF {
                return Err(ReaderError::EndlessGetResponse);
            }
            let next = self.exchange(&[cla::PLAIN, GET_RESPONSE, 0x00, 0x00, more])?;
            r.data.extend_from_slice(&next.data);
            r.status = next.status;
        }
        Ok(r)
    }

    /// [`transmit`](Self::transmit), then the data of a `90 00`; any other word is
    /// [`ReaderError::Status`].
    pub fn expect_ok(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let r = self.transmit(apdu)?;
        if r.status != Status::Success {
            return Err(ReaderError::Status(r.status));
        }
        Ok(r.data)
    }

    /// SELECT of a DF by its AID.
    pub fn select_aid(&mut self, aid: &[u8]) -> Result<(), ReaderError> {
        self.expect_ok(&select_by_aid_apdu(aid)).map(drop)
    }

    /// SELECT of the MF by FID `3F 00`.
    pub fn select_mf(&mut self) -> Result<(), ReaderError> {
        self.expect_ok(&select_mf_apdu()).map(drop)
    }

    /// GET CHALLENGE: RND.ICC.
    pub fn get_challenge(&mut self) -> Result<Nonce, ReaderError> {
        let challenge = self.expect_ok(&GET_CHALLENGE_APDU)?;
        Nonce::try_from(challenge.as_slice())
            .map_err(|_| ReaderError::ChallengeLength(challenge.len()))
    }

    /// MUTUAL AUTHENTICATE answering `rnd_icc` with the card-number key `key` in
    /// `generation`'s cryptography (which may differ from the session's: a checker probes
    /// the other suite). On success the session key is KSenc and returned; a refusal is
    /// [`ReaderError::Status`] and leaves the session key unchanged.
    pub fn mutual_authenticate(
        &mut self,
        generation: Generation,
        key: &Key,
        rnd_icc: &Nonce,
        secrets: &ReaderSecrets,
    ) -> Result<Key, ReaderError> {
        let cryptogram = reader_cryptogram(generation, key, rnd_icc, secrets);
        let r = self.transmit(&mutual_authenticate_apdu(&cryptogram))?;
        if r.status != Status::Success {
            return Err(ReaderError::Status(r.status));
        }
        let session_key = auth::reader_finish(
            generation,
            key,
            &secrets.rnd_ifd,
            rnd_icc,
            &secrets.k_ifd,
            &r.data,
        )
        .map_err(ReaderError::CardCryptogram)?;
        self.session_key = Some(session_key);
        Ok(session_key)
    }

    /// GET CHALLENGE, then MUTUAL AUTHENTICATE in the session's cryptography with secrets
    /// drawn from `rng` after the challenge arrived: KSenc.
    pub fn authenticate(&mut self, key: &Key, rng: &mut impl Rng) -> Result<Key, ReaderError> {
        let rnd_icc = self.get_challenge()?;
        let secrets = ReaderSecrets::draw(rng);
        self.mutual_authenticate(self.generation, key, &rnd_icc, &secrets)
    }

    /// VERIFY of the card number under the session key; a wrong number is
    /// `Status(VerificationFailed)`.
    pub fn verify(&mut self, number: &[u8]) -> Result<(), ReaderError> {
        let key = self.session_key.ok_or(ReaderError::NoSessionKey)?;
        let apdu = verify_apdu(self.generation, &key, number)?;
        self.expect_ok(&apdu).map(drop)
    }

    /// One SM READ BINARY (`p1`, `p2`) asking for `len` plaintext bytes (0 = to the end):
    /// the status word and the opened plaintext. A status that carries no data comes back
    /// with no plaintext; `len` 0 accepts only `90 00`.
    pub fn read_sm_once(
        &mut self,
        p1: u8,
        p2: u8,
        len: u16,
    ) -> Result<(Status, Vec<u8>), ReaderError> {
        let r = self.transmit(&sm_read_apdu(p1, p2, len))?;
        if !r.status.carries_data() {
            return Ok((r.status, Vec::new()));
        }
        if len == 0 && r.status != Status::Success {
            return Err(ReaderError::Status(r.status));
        }
        let key = self.session_key.ok_or(ReaderError::NoSessionKey)?;
        let plain =
            sm::open(self.generation, &key, &r.data).map_err(ReaderError::SecureMessaging)?;
        Ok((r.status, plain))
    }

    /// One plain READ BINARY (`p1`, `p2`) asking for `ne` bytes: status word and data.
    pub fn read_plain_once(
        &mut self,
        p1: u8,
        p2: u8,
        ne: usize,
    ) -> Result<(Status, Vec<u8>), ReaderError> {
        let r = self.transmit(&plain_read_apdu(p1, p2, ne))?;
        Ok((r.status, r.data))
    }

    /// Reads a whole EF by SFI the way `mode` says.
    pub fn read(&mut self, sfi: u8, mode: ReadMode) -> Result<Vec<u8>, ReaderError> {
        match mode {
            ReadMode::Plain => self.read_plain(sfi),
            ReadMode::Sm => self.read_sm(sfi),
        }
    }

    /// Reads a whole EF by SFI without SM: one extended read, or chunks that fit the
    /// maximum response.
    pub fn read_plain(&mut self, sfi: u8) -> Result<Vec<u8>, ReaderError> {
        let Some(max) = self.max_response else {
            return self.expect_ok(&plain_read_apdu(0x80 | sfi, 0, 65_536));
        };
        let chunk = max.saturating_sub(2).clamp(1, MAX_OFFSET);
        self.read_chunks(sfi, chunk, |s, p1, p2, len| s.read_plain_once(p1, p2, len))
    }

    /// Reads a whole EF by SFI under SM (DO `96` asks for the plaintext length): one
    /// extended read, or chunks whose sealed answer fits the maximum response.
    pub fn read_sm(&mut self, sfi: u8) -> Result<Vec<u8>, ReaderError> {
        let Some(max) = self.max_response else {
            return match self.read_sm_once(0x80 | sfi, 0, 0)? {
                (Status::Success, data) => Ok(data),
                (other, _) => Err(ReaderError::Status(other)),
            };
        };
        // 2 SW + `86 82 LL LL 01` + at most one padding block.
        let block = self.generation.block_size();
        let chunk = (max.saturating_sub(7 + block) / block * block).clamp(block, MAX_OFFSET);
        self.read_chunks(sfi, chunk, |s, p1, p2, len| {
            // `chunk` is at most 0x7FFF, so it fits the DO 96.
            s.read_sm_once(p1, p2, u16::try_from(len).unwrap_or(u16::MAX))
        })
    }

    /// Offset reads of `chunk` bytes until a short chunk or the end of the EF (`6B 00`).
    fn read_chunks(
        &mut self,
        sfi: u8,
        chunk: usize,
        mut read: impl FnMut(&mut Self, u8, u8, usize) -> Result<(Status, Vec<u8>), ReaderError>,
    ) -> Result<Vec<u8>, ReaderError> {
        let mut out = Vec::new();
        loop {
            let offset = out.len();
            let (p1, p2) = if offset == 0 {
                (0x80 | sfi, 0)
            } else if offset <= MAX_OFFSET {
                let [p1, p2] = (offset as u16).to_be_bytes();
                (p1, p2)
            } else {
                return Err(ReaderError::TooLarge);
            };
            let (status, data) = read(self, p1, p2, chunk)?;
            match status {
                Status::OffsetOutOfRange if offset > 0 => return Ok(out),
                Status::Success | Status::EndOfFileWarning => {}
                other => return Err(ReaderError::Status(other)),
            }
            if data.len() > chunk {
                return Err(ReaderError::Oversent);
            }
            let short = data.len() < chunk;
            out.extend_from_slice(&data);
            if short || data.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// `apdu` with its Le replaced by `le` (`00` = 256), for a card that answered `6C le`.
fn with_le(apdu: &[u8], le: u8) -> Option<Vec<u8>> {
    let cmd = Command::parse(apdu).ok()?;
    let ne = if le == 0 { 256 } else { usize::from(le) };
    let mut again = CommandBuilder::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).ne(ne);
    if !cmd.data.is_empty() {
        again = again.data(cmd.data.to_vec());
    }
    Some(again.to_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::path::Path;
    use std::sync::Arc;

    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::card::{Access, Card, CardImage, Df};
    use crate::protocol::{AID_DF1, AID_DF2};

    fn image(name: &str) -> Arc<CardImage> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vectors/profiles/valid")
            .join(format!("{name}.yaml"));
        Arc::clone(
            &crate::profile::load(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .image,
        )
    }

    fn aid(df: Df) -> Option<[u8; 16]> {
        df.aid()
    }

    /// A verified session on a fresh chip of `image`.
    fn verified(image: &Arc<CardImage>, max: Option<usize>) -> Session<Card> {
        let mut s =
            Session::new(Card::new(Arc::clone(image)), image.generation).with_max_response(max);
        let key = s
            .authenticate(&image.chip_key(), &mut ChaCha20Rng::seed_from_u64(3))
            .expect("MUTUAL AUTHENTICATE");
        assert_eq!(s.session_key(), Some(key));
        assert_eq!(s.channel_mut().session_key(), Some(key), "chip agrees");
        s.verify(image.chip_card_number.as_bytes()).expect("VERIFY");
        s
    }

    const PROFILES: [&str; 2] = ["gen1-residence", "gen2-residence"];

    #[test]
    fn reads_every_ef_of_both_generations_whole_and_in_chunks() {
        for name in PROFILES {
            let image = image(name);
            for max in [None, Some(1), Some(255), Some(256), Some(1700)] {
                let mut s = verified(&image, max);
                for df in [Df::Mf, Df::Df1, Df::Df2, Df::Df3] {
                    match aid(df) {
                        Some(aid) => s.select_aid(&aid),
                        None => s.select_mf(),
                    }
                    .unwrap_or_else(|e| panic!("{name}: SELECT {df:?}: {e}"));
                    for ef in image.files.iter().filter(|f| f.id.df == df) {
                        let mode = match ef.access {
                            Access::AuthSm => ReadMode::Sm,
                            Access::Free | Access::Auth => ReadMode::Plain,
                        };
                        let got = s
                            .read(ef.id.sfi, mode)
                            .unwrap_or_else(|e| panic!("{name} {max:?}: {}: {e}", ef.name));
                        assert!(got == ef.content, "{name} {max:?}: {}", ef.name);
                    }
                }
            }
        }
    }

    #[test]
    fn sm_reads_of_1_255_256_1700_bytes_and_the_whole_ef() {
        for name in PROFILES {
            let image = image(name);
            let mut s = verified(&image, None);
            s.select_aid(&AID_DF1).unwrap();
            let ef = image
                .files
                .iter()
                .filter(|f| f.id.df == Df::Df1 && f.access == Access::AuthSm)
                .max_by_key(|f| f.content.len())
                .unwrap();
            assert!(ef.content.len() > 1700, "{name}: {} is small", ef.name);
            for len in [1u16, 255, 256, 1700] {
                let (status, plain) = s.read_sm_once(0x80 | ef.id.sfi, 0, len).unwrap();
                assert_eq!(status, Status::Success, "{name} {len}");
                assert_eq!(plain, ef.content[..usize::from(len)], "{name} {len}");
            }
            let (status, whole) = s.read_sm_once(0x80 | ef.id.sfi, 0, 0).unwrap();
            assert_eq!((status, whole.len()), (Status::Success, ef.content.len()));
            assert!(whole == ef.content);
        }
    }

    #[test]
    fn a_wrong_number_or_a_wrong_generation_is_a_status_word() {
        for name in PROFILES {
            let image = image(name);
            let mut s = verified(&image, None);
            assert_eq!(
                s.verify(b"ZZ00000000ZZ"),
                Err(ReaderError::Status(Status::VerificationFailed))
            );
            let other = match image.generation {
                Generation::First => Generation::Second,
                Generation::Second => Generation::First,
            };
            let before = s.session_key();
            let rnd_icc = s.get_challenge().unwrap();
            let secrets = ReaderSecrets::draw(&mut ChaCha20Rng::seed_from_u64(9));
            assert_eq!(
                s.mutual_authenticate(other, &image.chip_key(), &rnd_icc, &secrets),
                Err(ReaderError::Status(Status::VerificationFailed))
            );
            assert_eq!(s.session_key(), before, "a refusal keeps the key");
        }
    }

    #[test]
    fn sm_steps_without_a_session_key_are_refused_before_sending() {
        let image = image("gen2-residence");
        let mut s = Session::new(Card::new(image), Generation::Second);
        assert_eq!(s.verify(b"x"), Err(ReaderError::NoSessionKey));
    }

    #[test]
    fn the_secrets_come_from_the_rng_in_order() {
        let a = ReaderSecrets::draw(&mut ChaCha20Rng::seed_from_u64(1));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut first = [0u8; 8];
        let mut second = [0u8; 16];
        rng.fill_bytes(&mut first);
        rng.fill_bytes(&mut second);
        assert_eq!((a.rnd_ifd, a.k_ifd), (first, second));
    }

    #[test]
    fn observed_session_key_matches_the_chip() {
        for name in PROFILES {
            let image = image(name);
            let mut s = Session::new(Card::new(Arc::clone(&image)), image.generation);
            let rnd_icc = s.get_challenge().unwrap();
            let secrets = ReaderSecrets::draw(&mut ChaCha20Rng::seed_from_u64(4));
            let key = image.chip_key();
            let apdu = mutual_authenticate_apdu(&reader_cryptogram(
                image.generation,
                &key,
                &rnd_icc,
                &secrets,
            ));
            let answer = s.exchange(&apdu).unwrap();
            assert_eq!(answer.status, Status::Success);
            let observed =
                observed_session_key(image.generation, &key, &rnd_icc, &apdu, &answer.data);
            assert_eq!(observed, s.channel_mut().session_key());
            assert!(observed.is_some());
            assert_eq!(
                observed_session_key(image.generation, &key, &[0; 8], &apdu, &answer.data),
                None
            );
        }
    }

    /// A card that answers from a script, then `90 00`; records what it was sent.
    struct Scripted {
        answers: VecDeque<Result<Vec<u8>, TransportError>>,
        sent: Vec<Vec<u8>>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<Vec<u8>, TransportError>>) -> Self {
            Scripted {
                answers: answers.into(),
                sent: Vec::new(),
            }
        }
    }

    impl Channel for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push(apdu.to_vec());
            self.answers.pop_front().unwrap_or(Ok(vec![0x90, 0x00]))
        }
    }

    fn scripted(answers: Vec<Result<Vec<u8>, TransportError>>) -> Session<Scripted> {
        Session::new(Scripted::new(answers), Generation::Second)
    }

    #[test]
    fn wrong_le_is_retried_once_with_the_length_the_card_names() {
        let mut s = scripted(vec![Ok(vec![0x6C, 0x08]), Ok(vec![0x6C, 0x08])]);
        let r = s.transmit(&[0x00, 0x84, 0x00, 0x00, 0x04]).unwrap();
        assert_eq!(r.status, Status::WrongLe(8), "only one retry");
        assert_eq!(s.channel.sent[1], [0x00, 0x84, 0x00, 0x00, 0x08]);
        assert_eq!(s.channel.sent.len(), 2);
    }

    #[test]
    fn bytes_remaining_are_fetched_with_get_response() {
        let mut s = scripted(vec![
            Ok(vec![1, 2, 0x61, 0x02]),
            Ok(vec![3, 4, 0x61, 0x01]),
            Ok(vec![5, 0x90, 0x00]),
        ]);
        assert_eq!(
            s.expect_ok(&[0x00, 0xB0, 0x81, 0x00, 0x00]),
            Ok(vec![1, 2, 3, 4, 5])
        );
        assert_eq!(s.channel.sent[1], [0x00, 0xC0, 0x00, 0x00, 0x02]);
        assert_eq!(s.channel.sent[2], [0x00, 0xC0, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn a_card_that_never_stops_answering_61_is_given_up_on() {
        let endless = vec![Ok(vec![0x61, 0x00]); 400];
        let mut s = scripted(endless);
        assert_eq!(
            s.transmit(&[0x00, 0xB0, 0x81, 0x00, 0x00]),
            Err(ReaderError::EndlessGetResponse)
        );
        assert_eq!(s.channel.sent.len(), 1 + MAX_GET_RESPONSE_ROUNDS);
    }

    #[test]
    fn malformed_answers_are_typed_errors() {
        let mut s = scripted(vec![Ok(vec![0x90])]);
        assert_eq!(s.select_aid(&AID_DF1), Err(ReaderError::NoStatusWord(1)));
        let mut s = scripted(vec![Err(TransportError::Timeout)]);
        assert_eq!(
            s.select_mf(),
            Err(ReaderError::Transport(TransportError::Timeout))
        );
        let mut s = scripted(vec![Ok(vec![1, 2, 3, 0x90, 0x00])]);
        assert_eq!(s.get_challenge(), Err(ReaderError::ChallengeLength(3)));
        let mut s = scripted(vec![Ok(vec![0x6A, 0x82])]);
        assert_eq!(
            s.select_aid(&AID_DF2),
            Err(ReaderError::Status(Status::FileNotFound))
        );
        let mut s = scripted(vec![
            Ok([[0u8; 8].as_slice(), &[0x90, 0x00]].concat()),
            Ok([[7u8; 40].as_slice(), &[0x90, 0x00]].concat()),
        ]);
        assert_eq!(
            s.authenticate(&[1; 16], &mut ChaCha20Rng::seed_from_u64(0)),
            Err(ReaderError::CardCryptogram(AuthError::Mac))
        );
        assert_eq!(s.session_key(), None);
        let mut s = scripted(vec![Ok(vec![0x86, 0x01, 0x90, 0x00])]);
        s.set_session_key(Some([0; 16]));
        assert!(matches!(
            s.read_sm(1),
            Err(ReaderError::SecureMessaging(SmError::NotACryptogram(_)))
        ));
        // A chunk longer than asked for.
        let mut s =
            scripted(vec![Ok([vec![0; 9], vec![0x90, 0x00]].concat())]).with_max_response(Some(10));
        assert_eq!(s.read_plain(1), Err(ReaderError::Oversent));
        // An EF that never ends.
        let full = [vec![0xAA; 254], vec![0x90, 0x00]];
        let mut s = scripted(vec![Ok(full.concat()); 200]).with_max_response(Some(256));
        assert_eq!(s.read_plain(1), Err(ReaderError::TooLarge));
    }

    /// Replies of random length and content, status words included.
    struct Garbage(ChaCha20Rng);

    impl Channel for Garbage {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
            let len = match self.0.random_range(0..10) {
                0 => 0,
                1 => 1,
                2 => 2,
                3 => self.0.random_range(3..600),
                _ => self.0.random_range(2..60),
            };
            let mut reply = vec![0; len];
            self.0.fill_bytes(&mut reply);
            // Steer the status word toward the ones the session acts on.
            if len >= 2 && self.0.random_bool(0.7) {
                let sw: [u8; 2] = match self.0.random_range(0..5) {
                    0 => [0x90, 0x00],
                    1 => [0x61, self.0.random()],
                    2 => [0x6C, self.0.random()],
                    3 => [0x62, 0x82],
                    _ => [0x6B, 0x00],
                };
                reply[len - 2..].copy_from_slice(&sw);
            }
            if self.0.random_range(0..40) == 0 {
                return Err(TransportError::Other("garbage".into()));
            }
            Ok(reply)
        }
    }

    #[test]
    fn a_hostile_card_gets_errors_not_panics() {
        let mut results = std::collections::HashMap::<String, usize>::new();
        for seed in 0..300u64 {
            for generation in [Generation::First, Generation::Second] {
                for max in [None, Some(1), Some(40), Some(256)] {
                    let mut s = Session::new(Garbage(ChaCha20Rng::seed_from_u64(seed)), generation)
                        .with_max_response(max);
                    let mut rng = ChaCha20Rng::seed_from_u64(seed);
                    let outcomes = [
                        s.select_aid(&AID_DF1).map(drop),
                        s.authenticate(&[seed as u8; 16], &mut rng).map(drop),
                        {
                            s.set_session_key(Some([seed as u8; 16]));
                            s.verify(b"AB12345678CD")
                        },
                        s.read_plain(1).map(drop),
                        s.read_sm(2).map(drop),
                        s.read_sm_once(0x81, 0, 17).map(drop),
                    ];
                    for o in outcomes {
                        let key = match o {
                            Ok(()) => "ok".to_owned(),
                            Err(e) => format!("{e:?}").chars().take(14).collect(),
                        };
                        *results.entry(key).or_default() += 1;
                    }
                }
            }
        }
        // The garbage reached the interesting failures, not just one of them.
        for kind in [
            "NoStatusWord",
            "Status(",
            "Transport",
            "SecureMessag",
            "ChallengeLeng",
        ] {
            assert!(
                results.keys().any(|k| k.starts_with(kind)),
                "{kind} never happened: {results:?}"
            );
        }
    }
}
