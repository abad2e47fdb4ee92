//! What the checker reads and how: the EFs it names (one table, below), what differs
//! between the generations (a description per generation), and the conversation with the
//! card over [`Session`], where each reader failure becomes the verdict it means.

use rand_chacha::ChaCha20Rng;

use rclab_emulator::protocol::crypto::{Key, card_number_key};
use rclab_emulator::protocol::{AID_DF1, AID_DF2, AID_DF3, Generation, Status, sm};
use rclab_emulator::reader::{ReaderError, ReaderSecrets, Session};
use rclab_emulator::transport::{Channel, TransportError};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

use super::pki::ParsedCertificate;
use super::stop::{Step, Stop, stop, unexpected, unexpected_status};

// ---------------------------------------------------------------------------------------
// The DFs and EFs the checker reads: every AID, SFI and file name of the checker is here.
// ---------------------------------------------------------------------------------------

/// An EF the checker reads by SFI, with the name its messages give it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ef {
    pub sfi: u8,
    /// `DF/EF` path, then what the EF holds (`"DF1/EF01 front image"`).
    pub name: &'static str,
}

impl Ef {
    /// The `DF/EF` path alone (`"DF1/EF01"`).
    pub(crate) fn path(&self) -> &'static str {
        self.name.split(' ').next().unwrap_or(self.name)
    }
}

/// A DF the checker selects by AID, with the name its messages give it.
#[derive(Clone, Copy, Debug)]
pub(super) struct DfAid {
    pub aid: [u8; 16],
    pub name: &'static str,
}

pub(super) const DF1: DfAid = DfAid {
    aid: AID_DF1,
    name: "DF1",
};
pub(super) const DF2: DfAid = DfAid {
    aid: AID_DF2,
    name: "DF2",
};
pub(super) const DF3: DfAid = DfAid {
    aid: AID_DF3,
    name: "DF3",
};

const fn ef(sfi: u8, name: &'static str) -> Ef {
    Ef { sfi, name }
}

/// MF, both generations.
pub(super) const MF_CARD_TYPE: Ef = ef(0x0A, "MF/EF02 card type");
pub(super) const MF_COMMON_DATA: Ef = ef(0x0B, "MF/EF01 common data");
/// DF1, generation 1.
pub(super) const GEN1_FRONT_IMAGE: Ef = ef(0x05, "DF1/EF01 front image");
pub(super) const GEN1_FACE_IMAGE: Ef = ef(0x06, "DF1/EF02 face image");
/// DF1, generation 2.
pub(super) const GEN2_CARD_NUMBER: Ef = ef(0x01, "DF1/EF01 card number");
pub(super) const GEN2_PRINTED: Ef = ef(0x03, "DF1/EF02 printed entries");
pub(super) const GEN2_NAME_AND_FACE: Ef = ef(0x04, "DF1/EF03 name and face images");
pub(super) const GEN2_ADDRESS_IMAGE: Ef = ef(0x06, "DF1/EF04 address image");
/// DF2 (back-side additions).
const DF2_EF01: Ef = ef(0x01, "DF2/EF01");
const DF2_EF02: Ef = ef(0x02, "DF2/EF02");
const DF2_EF03: Ef = ef(0x03, "DF2/EF03");
const DF2_EF04: Ef = ef(0x04, "DF2/EF04");
/// DF3, both generations.
pub(super) const DF3_CHECK_CODE: Ef = ef(0x02, "DF3/EF01 check code and certificate");

// ---------------------------------------------------------------------------------------
// What differs between the generations
// ---------------------------------------------------------------------------------------

/// Verifies a check code over the signed data with the card certificate.
type SignatureCheck = fn(&ParsedCertificate, &[u8], &[u8]) -> bool;

/// What the checker needs to know about one generation.
pub(super) struct GenerationInfo {
    pub generation: Generation,
    /// DF2 EFs of a residence card, then of a special permanent resident certificate.
    pub df2_residence: &'static [Ef],
    pub df2_special: &'static [Ef],
    /// Tags of the check code and of the certificate in DF3/EF01.
    pub check_code_tag: u16,
    pub certificate_tag: u16,
    pub signature_verifies: SignatureCheck,
}

/// Both generations.
pub(super) const GENERATIONS: [GenerationInfo; 2] = [
    GenerationInfo {
        generation: Generation::First,
        df2_residence: &[DF2_EF01, DF2_EF02, DF2_EF03, DF2_EF04],
        df2_special: &[DF2_EF01],
        check_code_tag: 0xDA,
        certificate_tag: 0xDB,
        signature_verifies: |cert, signed, code| {
            code.len() == 256 && cert.verifies_rsa_sha256(signed, code)
        },
    },
    GenerationInfo {
        generation: Generation::Second,
        df2_residence: &[DF2_EF01, DF2_EF02, DF2_EF03],
        df2_special: &[DF2_EF03],
        check_code_tag: 0xDC,
        certificate_tag: 0xDD,
        // Raw r ‖ s is what SPEC2 Appendix 2 shows; a DER signature (101–104 bytes) is
        // accepted too (spec §11.6): only the signer's key can make either.
        signature_verifies: |cert, signed, code| {
            if code.len() == 96 {
                cert.verifies_p384_sha256_raw(signed, code)
            } else {
                cert.verifies_p384_sha256_der(signed, code)
            }
        },
    },
];

impl GenerationInfo {
    /// The description of `generation`.
    pub(crate) fn of(generation: Generation) -> &'static GenerationInfo {
        match generation {
            Generation::First => &GENERATIONS[0],
            Generation::Second => &GENERATIONS[1],
        }
    }

    /// The other generation's description (the other cipher suite).
    pub(crate) fn other(&self) -> &'static GenerationInfo {
        match self.generation {
            Generation::First => &GENERATIONS[1],
            Generation::Second => &GENERATIONS[0],
        }
    }
}

/// A card type of MF/EF02 `C1`: its generation and whether it is a residence card (as
/// opposed to a special permanent resident certificate).
pub(super) struct CardKind {
    pub info: &'static GenerationInfo,
    pub residence_card: bool,
}

/// The card types the checker knows (spec §6.1).
const CARD_TYPES: [(&[u8], Generation, bool); 4] = [
    (b"1", Generation::First, true),
    (b"2", Generation::First, false),
    (b"05", Generation::Second, true),
    (b"06", Generation::Second, false),
];

impl CardKind {
    /// The kind of card type `code`, if it is one the checker knows.
    pub(crate) fn of(code: &[u8]) -> Option<CardKind> {
        CARD_TYPES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|&(_, generation, residence_card)| CardKind {
                info: GenerationInfo::of(generation),
                residence_card,
            })
    }

    /// The DF2 EFs this kind of card has.
    pub(crate) fn df2(&self) -> &'static [Ef] {
        if self.residence_card {
            self.info.df2_residence
        } else {
            self.info.df2_special
        }
    }
}

// ---------------------------------------------------------------------------------------
// The conversation
// ---------------------------------------------------------------------------------------

/// The reader session with the checker's randomness: every step gives its data or the
/// verdict its failure means.
pub(super) struct CardReader<'c> {
    session: Session<&'c mut dyn Channel>,
    rng: ChaCha20Rng,
}

impl<'c> CardReader<'c> {
    /// A session in generation-1 cryptography until the card type says otherwise.
    pub(crate) fn new(
        channel: &'c mut dyn Channel,
        rng: ChaCha20Rng,
        max_response: Option<usize>,
    ) -> CardReader<'c> {
        CardReader {
            session: Session::new(channel, Generation::First).with_max_response(max_response),
            rng,
        }
    }

    /// Switches to `generation`'s cryptography.
    pub(crate) fn set_generation(&mut self, generation: Generation) {
        self.session.set_generation(generation);
    }

    /// A whole EF of the current DF without SM.
    pub(crate) fn read_plain(&mut self, ef: Ef) -> Step<Vec<u8>> {
        self.session
            .read_plain(ef.sfi)
            .map_err(|e| fail(ef.name, e))
    }

    /// A whole EF of the current DF under SM.
    pub(crate) fn read_sm(&mut self, ef: Ef) -> Step<Vec<u8>> {
        self.session.read_sm(ef.sfi).map_err(|e| fail(ef.name, e))
    }

    /// Selects `df`; a card without it is no residence card.
    pub(crate) fn select(&mut self, df: DfAid) -> Step<()> {
        let name = df.name;
        match self.session.select_aid(&df.aid) {
            Ok(()) => Ok(()),
            Err(ReaderError::Status(Status::FileNotFound)) => stop(
                VerdictKind::NotResidenceCard,
                None,
                format!("SELECT {name}: 6A 82"),
            ),
            Err(ReaderError::Status(other)) => unexpected(&format!("SELECT {name}"), other),
            Err(e) => Err(fail(name, e)),
        }
    }

    /// MUTUAL AUTHENTICATE with `card_number` in `info`'s cryptography, then VERIFY of it.
    pub(crate) fn authenticate(&mut self, info: &GenerationInfo, card_number: &str) -> Step<()> {
        let key = card_number_key(card_number.as_bytes());
        match self.mutual_authenticate(info.generation, &key)? {
            Ok(_) => {}
            Err(Status::VerificationFailed) => {
                // A mistyped number, or a chip that is not the generation its card type
                // says: the other cipher suite tells them apart.
                let other = info.other().generation;
                if self.mutual_authenticate(other, &key)?.is_ok() {
                    return stop(
                        VerdictKind::Forged,
                        Some(Reason::MalformedData),
                        format!(
                            "card type says generation {}, but the chip authenticates with the \
                             card number only in generation-{} cryptography",
                            info.generation.number(),
                            other.number()
                        ),
                    );
                }
                return stop(
                    VerdictKind::WrongCardNumber,
                    None,
                    "MUTUAL AUTHENTICATE rejected (63 00): the card number does not open this chip",
                );
            }
            Err(other) => return unexpected("MUTUAL AUTHENTICATE", other),
        }
        match self.session.verify(card_number.as_bytes()) {
            Ok(()) => Ok(()),
            Err(ReaderError::Status(Status::VerificationFailed)) => stop(
                VerdictKind::WrongCardNumber,
                None,
                "VERIFY rejected the card number (63 00)",
            ),
            Err(e) => Err(fail("VERIFY", e)),
        }
    }

    /// GET CHALLENGE, fresh secrets from the checker's generator, then MUTUAL
    /// AUTHENTICATE in `generation`'s cryptography: the session key, or the status word
    /// the card refused with.
    fn mutual_authenticate(
        &mut self,
        generation: Generation,
        key: &Key,
    ) -> Step<Result<Key, Status>> {
        let rnd_icc = self
            .session
            .get_challenge()
            .map_err(|e| fail("GET CHALLENGE", e))?;
        let secrets = ReaderSecrets::draw(&mut self.rng);
        match self
            .session
            .mutual_authenticate(generation, key, &rnd_icc, &secrets)
        {
            Ok(session_key) => Ok(Ok(session_key)),
            Err(ReaderError::Status(status)) => Ok(Err(status)),
            Err(e) => Err(fail("MUTUAL AUTHENTICATE", e)),
        }
    }
}

/// What a reader failure during the step `what` means as a verdict.
fn fail(what: &str, e: ReaderError) -> Stop {
    let unreadable = |reason| Verdict::with(VerdictKind::Unreadable, reason);
    match e {
        ReaderError::Transport(t) => {
            let reason = match t {
                TransportError::CardRemoved => Reason::CardRemoved,
                TransportError::Timeout => Reason::Timeout,
                _ => Reason::Transport,
            };
            Stop(unreadable(reason), format!("{what}: {t}"))
        }
        ReaderError::NoStatusWord(_) => Stop(unreadable(Reason::Transport), format!("{what}: {e}")),
        ReaderError::Status(status) => unexpected_status(what, status),
        // Only the session key opens a well-padded answer: bad padding means the chip
        // does not hold the key it agreed. A malformed DO 86 is damage to the form.
        ReaderError::SecureMessaging(sm::SmError::BadPadding) => Stop(
            Verdict::with(VerdictKind::Forged, Reason::SmError),
            format!("{what}: {e}"),
        ),
        ReaderError::SecureMessaging(_) => {
            Stop(unreadable(Reason::SmError), format!("{what}: {e}"))
        }
        // The chip's answer to MUTUAL AUTHENTICATE does not verify under the card number.
        ReaderError::CardCryptogram(_) => Stop(
            Verdict::with(VerdictKind::Forged, Reason::AuthFailed),
            e.to_string(),
        ),
        ReaderError::NumberTooLong => Stop(
            Verdict::new(VerdictKind::WrongCardNumber, None),
            e.to_string(),
        ),
        ReaderError::ChallengeLength(_) => Stop(unreadable(Reason::MalformedData), e.to_string()),
        ReaderError::EndlessGetResponse
        | ReaderError::TooLarge
        | ReaderError::Oversent
        | ReaderError::NoSessionKey => {
            Stop(unreadable(Reason::MalformedData), format!("{what}: {e}"))
        }
    }
}
