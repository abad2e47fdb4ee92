//! What the checker reads and how: the card's layout (from the emulator's layout table), what differs
//! between the generations (a description per generation), and the conversation with the
//! card over [`Session`], where each reader failure becomes the verdict it means.

use rand_chacha::ChaCha20Rng;

use rclab_emulator::protocol::crypto::{Key, card_number_key};
use rclab_emulator::protocol::layout::{CardType, Df, EfRow, Element, Layout};
use rclab_emulator::protocol::{Generation, Status, sm};
use rclab_emulator::reader::{ReaderError, ReaderSecrets, Session};
use rclab_emulator::transport::{Channel, TransportError};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

use super::pki::ParsedCertificate;
use super::stop::{Step, Stop, stop, unexpected, unexpected_status};

// ---------------------------------------------------------------------------------------
// What differs between the generations. Which EFs a card holds, under which DF, SFI and
// name, and which tags they carry, is the card's layout (`rclab_emulator::protocol::layout`):
// the checker has no table of its own.
// ---------------------------------------------------------------------------------------

/// Verifies a check code over the signed data with the card certificate.
type SignatureCheck = fn(&ParsedCertificate, &[u8], &[u8]) -> bool;

/// What the checker needs to know about one generation beyond its layout: how the check
/// code verifies.
pub(super) struct GenerationInfo {
    pub generation: Generation,
    pub signature_verifies: SignatureCheck,
}

/// Both generations.
pub(super) const GENERATIONS: [GenerationInfo; 2] = [
    GenerationInfo {
        generation: Generation::First,
        signature_verifies: |cert, signed, code| {
            code.len() == 256 && cert.verifies_rsa_sha256(signed, code)
        },
    },
    GenerationInfo {
        generation: Generation::Second,
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

/// The DF1 EFs the checker reads, by generation, resolved from the layout.
pub(super) enum Df1Rows {
    /// Generation 1: the front image (`D0`) and the face image (`D1`).
    First {
        front: &'static EfRow,
        face: &'static EfRow,
    },
    /// Generation 2: card number, printed entries, name and face images, address image.
    Second {
        number: &'static EfRow,
        printed: &'static EfRow,
        images: &'static EfRow,
        address: &'static EfRow,
    },
}

/// A card type of MF/EF02 `C1`: its layout, its generation's verification, and the rows
/// the checker reads, all looked up once.
pub(super) struct CardKind {
    pub layout: &'static Layout,
    pub info: &'static GenerationInfo,
    /// A residence card, as opposed to a special permanent resident certificate.
    pub residence_card: bool,
    /// A specified card's type (07, 08): found only in the 在留AP.
    pub specified: bool,
    pub df1: Df1Rows,
    /// DF3/EF01 and the tags of the check code and of the certificate in it.
    pub check_code_ef: &'static EfRow,
    pub check_code_tag: u16,
    pub certificate_tag: u16,
}

impl CardKind {
    /// The kind of card type `code`, if it is one the checker knows (spec §6.1).
    pub(super) fn of(code: &[u8]) -> Option<CardKind> {
        let (generation, card_type) = CardType::from_code(code)?;
        let layout = Layout::of(generation, card_type);
        let row = |element| layout.holding_element(element).map(|(row, _)| row);
        let (check_code_ef, check_code) = layout.holding_element(Element::CheckCode)?;
        let certificate = check_code_ef.object_holding(Element::Certificate)?;
        let df1 = match generation {
            Generation::First => Df1Rows::First {
                front: row(Element::FrontImage)?,
                face: row(Element::FaceImage)?,
            },
            Generation::Second => Df1Rows::Second {
                number: row(Element::CardNumber)?,
                printed: row(Element::CardExpiry)?,
                images: row(Element::NameImage)?,
                address: row(Element::AddressImage)?,
            },
        };
        Some(CardKind {
            layout,
            info: GenerationInfo::of(generation),
            residence_card: matches!(
                card_type,
                CardType::ResidenceCard | CardType::SpecifiedResidenceCard
            ),
            specified: card_type.is_specified(),
            df1,
            check_code_ef,
            check_code_tag: check_code.tag,
            certificate_tag: certificate.tag,
        })
    }

    /// The DF2 EFs this kind of card has, in storage order.
    pub(super) fn df2(&self) -> impl Iterator<Item = &'static EfRow> + use<> {
        self.layout.files.iter().filter(|r| r.id.df == Df::Df2)
    }
}

// ---------------------------------------------------------------------------------------
// The conversation
// ---------------------------------------------------------------------------------------

/// Where the judge reads the DFs from once the card has opened: a residence card's own
/// DF1–DF3 ([`CardReader`]) or the 在留AP of a specified card (`super::specified`). One
/// judge reads both, so the two cards are held to the same rules.
pub(super) trait CardFiles {
    /// Selects `df`.
    fn select(&mut self, df: Df) -> Step<()>;
    /// A whole EF the layout lets a checker read without SM once the card opened (DF2,
    /// DF3); failures name it `name`.
    fn read_plain(&mut self, ef: &EfRow, name: &str) -> Step<Vec<u8>>;
    /// A whole EF under SM (DF1).
    fn read_sm(&mut self, ef: &EfRow) -> Step<Vec<u8>>;
}

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

    /// The session and the checker's randomness, for a conversation this module does not
    /// hold (the 在留AP of a specified card).
    pub(super) fn parts(&mut self) -> (&mut Session<&'c mut dyn Channel>, &mut ChaCha20Rng) {
        (&mut self.session, &mut self.rng)
    }

    /// Switches to `generation`'s cryptography.
    pub(crate) fn set_generation(&mut self, generation: Generation) {
        self.session.set_generation(generation);
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

impl CardFiles for CardReader<'_> {
    /// A whole EF of the current DF without SM; failures name it `name`.
    fn read_plain(&mut self, ef: &EfRow, name: &str) -> Step<Vec<u8>> {
        self.session
            .read_plain(ef.id.sfi)
            .map_err(|e| fail(name, e))
    }

    /// A whole EF of the current DF under SM; failures name it by its row name.
    fn read_sm(&mut self, ef: &EfRow) -> Step<Vec<u8>> {
        self.session
            .read_sm(ef.id.sfi)
            .map_err(|e| fail(ef.name, e))
    }

    /// Selects `df` by its AID; a card without it is no residence card.
    fn select(&mut self, df: Df) -> Step<()> {
        let name = df.name();
        // Every DF the checker selects has an AID; the MF (none) is selected by nothing.
        let Some(aid) = df.aid() else {
            return Ok(());
        };
        match self.session.select_aid(&aid) {
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
}

/// What a reader failure during the step `what` means as a verdict.
pub(super) fn fail(what: &str, e: ReaderError) -> Stop {
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
