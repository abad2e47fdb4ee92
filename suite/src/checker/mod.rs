//! The reference checker: a strict reader of both card generations that reads every EF,
//! verifies the check code and its certificate chain, and gives a normalised verdict.
//!
//! It talks to the card only through [`Channel`], so the same code reads an in-process
//! card, a card behind pcscd, or a malicious card in a fuzzer.

pub mod data;
pub mod pki;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use rclab_emulator::protocol::auth::{self, Nonce};
use rclab_emulator::protocol::crypto::{Key, card_number_key};
use rclab_emulator::protocol::signature::{gen1_signed_data, gen2_signed_data};
use rclab_emulator::protocol::tlv::{self, Tlv};
use rclab_emulator::protocol::{
    AID_DF1, AID_DF2, AID_DF3, CommandBuilder, Generation, Response, Status, VERIFY_P2_CARD_NUMBER,
    cla, ins, sm,
};
use rclab_emulator::transport::{Channel, TransportError};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

pub use data::CardData;
use data::{CertificateInfo, ImageInfo, strict_text, text, trim_zeros};
pub use pki::{ParsedCertificate, TrustStore};

/// How the checker reads.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest response the reader accepts; `None` reads whole EFs in one extended APDU.
    /// Phone readers cap responses near 1 700 bytes.
    pub max_response: Option<usize>,
    /// Time at which certificates must be valid.
    pub at: SystemTime,
    /// Seed of RND.IFD / K.IFD; `None` takes them from the operating system.
    pub seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_response: None,
            at: SystemTime::now(),
            seed: None,
        }
    }
}

/// The checker's conclusion and what it read on the way.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// One line: what decided the verdict.
    pub detail: String,
    pub data: CardData,
}

/// A reason to stop reading: the verdict and its explanation.
struct Stop(Verdict, String);

type Step<T> = Result<T, Stop>;

fn stop<T>(kind: VerdictKind, reason: Option<Reason>, detail: impl Into<String>) -> Step<T> {
    Err(Stop(Verdict::new(kind, reason), detail.into()))
}

/// Reads and judges one card.
pub struct Checker<'a> {
    pub trust: &'a TrustStore,
    pub options: Options,
}

impl Checker<'_> {
    /// Runs the whole check; never panics, whatever the card answers.
    pub fn check(&self, channel: &mut dyn Channel, card_number: &str) -> Report {
        let mut data = CardData::default();
        let mut session = Session {
            channel,
            rng: match self.options.seed {
                Some(seed) => ChaCha20Rng::seed_from_u64(seed),
                None => ChaCha20Rng::from_rng(&mut rand::rng()),
            },
            generation: Generation::First,
            key: [0; 16],
            max_response: self.options.max_response,
        };
        let (verdict, detail) = match self.run(&mut session, card_number, &mut data) {
            Ok(detail) => (Verdict::GENUINE, detail),
            Err(Stop(verdict, detail)) => (verdict, detail),
        };
        Report {
            verdict,
            detail,
            data,
        }
    }

    fn run(&self, s: &mut Session, card_number: &str, data: &mut CardData) -> Step<String> {
        // MF: card type decides the generation (spec §6.1).
        let card_type = s
            .read_plain(0x0A, "MF/EF02 card type")
            .map_err(not_residence_on_status)?;
        let c1 = single(&card_type, 0xC1, "C1")
            .map_err(|Stop(_, d)| Stop(Verdict::new(VerdictKind::NotResidenceCard, None), d))?;
        data.card_type = Some(text(c1));
        let (generation, residence_card) = match c1 {
            b"1" => (Generation::First, true),
            b"2" => (Generation::First, false),
            b"05" => (Generation::Second, true),
            b"06" => (Generation::Second, false),
            other => {
                return stop(
                    VerdictKind::NotResidenceCard,
                    None,
                    format!(
                        "card type {} is not 1, 2, 05 or 06",
                        hex::encode_upper(other)
                    ),
                );
            }
        };
        s.generation = generation;
        data.generation = Some(generation.number());
        let common = s.read_plain(0x0B, "MF/EF01 common data")?;
        data.common_data = Some(text(single(&common, 0xC0, "C0")?));

        s.authenticate(card_number)?;

        s.select(&AID_DF1, "DF1")?;
        let signed = match generation {
            Generation::First => {
                let front_ef = s.read_sm(0x05, "DF1/EF01 front image")?;
                let front = single(&front_ef, 0xD0, "D0")?.to_vec();
                let face_ef = s.read_sm(0x06, "DF1/EF02 face image")?;
                let face = optional(&face_ef, 0xD1, "D1")?.unwrap_or_default().to_vec();
                data.front_image = Some(ImageInfo::of(&front));
                data.face_image = Some(ImageInfo::of(&face));
                gen1_signed_data(&front, &face)
            }
            Generation::Second => {
                let number_ef = s.read_sm(0x01, "DF1/EF01 card number")?;
                let number = single(&number_ef, 0xC2, "C2")?;
                data.card_number = Some(text(number));
                if number != card_number.as_bytes() {
                    return stop(
                        VerdictKind::Forged,
                        Some(Reason::MalformedData),
                        format!(
                            "C2 holds {:?}, but the chip opened with {card_number:?}",
                            text(number)
                        ),
                    );
                }
                let printed_ef = s.read_sm(0x03, "DF1/EF02 printed entries")?;
                let printed = parse(&printed_ef, "DF1/EF02 printed entries")?;
                let expected: &[u16] = if residence_card {
                    &[0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCE, 0xCA, 0xCB, 0xCC, 0xCD]
                } else {
                    &[0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCE]
                };
                let tags: Vec<u16> = printed.iter().map(|t| t.tag).collect();
                if tags != expected {
                    return stop(
                        VerdictKind::Unreadable,
                        Some(Reason::MalformedData),
                        format!("printed entries carry tags {}", tag_list(&tags)),
                    );
                }
                let mut printed_values = Vec::new();
                for t in &printed {
                    printed_values.extend_from_slice(t.value);
                    let value = field_text(t, generation, "DF1/EF02")?;
                    data.printed.insert(format!("{:02X}", t.tag), value);
                }
                let images_ef = s.read_sm(0x04, "DF1/EF03 name and face images")?;
                let images = parse(&images_ef, "DF1/EF03 name and face images")?;
                let name = required(&images, 0xD0, "D0")?;
                let face = tlv::find(&images, 0xD1).unwrap_or_default();
                data.name_image = Some(ImageInfo::of(name));
                data.face_image = Some(ImageInfo::of(face));
                let address_ef = s.read_sm(0x06, "DF1/EF04 address image")?;
                data.address_image = Some(ImageInfo::of(single(&address_ef, 0xDFD1, "DF D1")?));
                gen2_signed_data(&printed_values, face, name)
            }
        };

        s.select(&AID_DF2, "DF2")?;
        let df2: &[(u8, &str)] = match (generation, residence_card) {
            (Generation::First, true) => &[
                (0x01, "DF2/EF01"),
                (0x02, "DF2/EF02"),
                (0x03, "DF2/EF03"),
                (0x04, "DF2/EF04"),
            ],
            (Generation::First, false) => &[(0x01, "DF2/EF01")],
            (Generation::Second, true) => {
                &[(0x01, "DF2/EF01"), (0x02, "DF2/EF02"), (0x03, "DF2/EF03")]
            }
            (Generation::Second, false) => &[(0x03, "DF2/EF03")],
        };
        for (sfi, name) in df2 {
            let ef = s.read_plain(*sfi, name)?;
            for t in parse(&ef, name)? {
                let value = field_text(&t, generation, name)?;
                data.fields.insert(format!("{:02X}", t.tag), value);
            }
        }

        s.select(&AID_DF3, "DF3")?;
        let df3 = s.read_plain(0x02, "DF3/EF01 check code and certificate")?;
        let df3 = parse(&df3, "DF3/EF01")?;
        let (code_tag, cert_tag) = match generation {
            Generation::First => (0xDA, 0xDB),
            Generation::Second => (0xDC, 0xDD),
        };
        let code = tlv::find(&df3, code_tag).unwrap_or_default();
        let cert_field = tlv::find(&df3, cert_tag).unwrap_or_default();
        data.check_code_length = Some(code.len());
        if trim_zeros(code).is_empty() || trim_zeros(cert_field).is_empty() {
            return stop(
                VerdictKind::Forged,
                Some(Reason::MissingSignature),
                "check code or certificate is absent or empty",
            );
        }
        let cert = ParsedCertificate::from_card_field(cert_field).or_else(|e| {
            stop(
                VerdictKind::Forged,
                Some(Reason::MalformedCertificate),
                format!("card certificate: {e}"),
            )
        })?;
        let mut info = CertificateInfo {
            subject: cert.subject(),
            issuer: cert.issuer(),
            serial: cert.serial(),
            not_before_unix: cert.not_before().as_secs(),
            not_after_unix: cert.not_after().as_secs(),
            der_length: cert.der.len(),
            trusted_root: None,
        };
        data.certificate = Some(info.clone());

        let signature_ok = match generation {
            Generation::First => code.len() == 256 && cert.verifies_rsa_sha256(&signed, code),
            // Raw r ‖ s is what SPEC2 Appendix 2 shows; a DER signature (101–104 bytes) is
            // accepted too (spec §11.6): only the signer's key can make either.
            Generation::Second if code.len() == 96 => cert.verifies_p384_sha256_raw(&signed, code),
            Generation::Second => cert.verifies_p384_sha256_der(&signed, code),
        };
        if !signature_ok {
            return stop(
                VerdictKind::Forged,
                Some(Reason::SignatureMismatch),
                format!(
                    "check code ({} bytes) does not verify over the signed fields with the card certificate",
                    code.len()
                ),
            );
        }

        let at = self
            .options
            .at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let issuers: Vec<_> = self.trust.issuers_of(&cert).collect();
        if issuers.is_empty() {
            return stop(
                VerdictKind::UntrustedCertificate,
                None,
                format!("no trusted root named {}", cert.issuer()),
            );
        }
        let Some((root_name, root)) = issuers.into_iter().find(|(_, root)| root.verifies(&cert))
        else {
            return stop(
                VerdictKind::Forged,
                Some(Reason::UnknownSigner),
                format!(
                    "card certificate claims issuer {} but no trusted root of that name signed it",
                    cert.issuer()
                ),
            );
        };
        let expired = if !cert.valid_at(at) {
            Some("card certificate")
        } else if !root.valid_at(at) {
            Some(root_name)
        } else {
            None
        };
        if let Some(which) = expired {
            return stop(
                VerdictKind::Forged,
                Some(Reason::CertificateExpired),
                format!("{which} is outside its validity period"),
            );
        }
        info.trusted_root = Some(root_name.to_owned());
        data.certificate = Some(info);
        Ok(format!(
            "check code verified; certificate chains to {root_name}"
        ))
    }
}

/// The card-side conversation with the state the checker keeps.
struct Session<'c> {
    channel: &'c mut dyn Channel,
    rng: ChaCha20Rng,
    generation: Generation,
    /// KSenc after MUTUAL AUTHENTICATE.
    key: Key,
    max_response: Option<usize>,
}

impl Session<'_> {
    /// One command, as ISO 7816-4 lets a card answer it: `6C xx` is followed by the same
    /// command with Le = xx (once), `61 xx` by GET RESPONSE until the data is complete.
    fn transmit(&mut self, apdu: &[u8], what: &str) -> Step<Response> {
        let mut r = self.exchange(apdu, what)?;
        if let Status::WrongLe(le) = r.status
            && let Some(again) = with_le(apdu, le)
        {
            r = self.exchange(&again, what)?;
        }
        let mut rounds = 0;
        while let Status::BytesRemaining(more) = r.status {
            rounds += 1;
            if rounds > 300 || r.data.len() > 0xFFFF {
                return stop(
                    VerdictKind::Unreadable,
                    Some(Reason::MalformedData),
                    format!("{what}: the card keeps answering 61 xx"),
                );
            }
            let next = self.exchange(&[0x00, 0xC0, 0x00, 0x00, more], what)?;
            r.data.extend_from_slice(&next.data);
            r.status = next.status;
        }
        Ok(r)
    }

    fn exchange(&mut self, apdu: &[u8], what: &str) -> Step<Response> {
        let raw = self.channel.transmit(apdu).map_err(|e| {
            let reason = match e {
                TransportError::CardRemoved => Reason::CardRemoved,
                TransportError::Timeout => Reason::Timeout,
                _ => Reason::Transport,
            };
            Stop(
                Verdict::with(VerdictKind::Unreadable, reason),
                format!("{what}: {e}"),
            )
        })?;
        Response::parse(&raw).ok_or_else(|| {
            Stop(
                Verdict::with(VerdictKind::Unreadable, Reason::Transport),
                format!("{what}: response of {} bytes has no status word", raw.len()),
            )
        })
    }

    fn expect_ok(&mut self, apdu: &[u8], what: &str) -> Step<Vec<u8>> {
        let r = self.transmit(apdu, what)?;
        if r.status != Status::Success {
            return unexpected(what, r.status);
        }
        Ok(r.data)
    }

    fn select(&mut self, aid: &[u8; 16], what: &str) -> Step<()> {
        let apdu = CommandBuilder::new(cla::PLAIN, ins::SELECT, 0x04, 0x0C)
            .data(aid.to_vec())
            .to_bytes();
        let r = self.transmit(&apdu, what)?;
        match r.status {
            Status::Success => Ok(()),
            Status::FileNotFound => stop(
                VerdictKind::NotResidenceCard,
                None,
                format!("SELECT {what}: 6A 82"),
            ),
            other => unexpected(&format!("SELECT {what}"), other),
        }
    }

    /// Reads a whole EF by SFI without SM: one extended read, or chunks of `max_response`.
    fn read_plain(&mut self, sfi: u8, what: &str) -> Step<Vec<u8>> {
        let Some(max) = self.max_response else {
            let apdu = CommandBuilder::new(cla::PLAIN, ins::READ_BINARY, 0x80 | sfi, 0)
                .ne(65_536)
                .to_bytes();
            return self.expect_ok(&apdu, what);
        };
        let chunk = max.saturating_sub(2).clamp(1, 0x7FFF);
        self.read_chunks(sfi, chunk, what, |s, p1, p2, len| {
            let apdu = CommandBuilder::new(cla::PLAIN, ins::READ_BINARY, p1, p2)
                .ne(len)
                .to_bytes();
            let r = s.transmit(&apdu, what)?;
            Ok((r.status, r.data))
        })
    }

    /// Reads a whole EF by SFI under SM: DO `96` asks for the plaintext length.
    fn read_sm(&mut self, sfi: u8, what: &str) -> Step<Vec<u8>> {
        let Some(max) = self.max_response else {
            return match self.read_sm_once(0x80 | sfi, 0, 0, what)? {
                (Status::Success, data) => Ok(data),
                (other, _) => unexpected(what, other),
            };
        };
        // 2 SW + `86 82 LL LL 01` + at most one padding block.
        let block = self.generation.block_size();
        let chunk = (max.saturating_sub(7 + block) / block * block).clamp(block, 0x7FFF);
        self.read_chunks(sfi, chunk, what, |s, p1, p2, len| {
            s.read_sm_once(p1, p2, len, what)
        })
    }

    fn read_sm_once(&mut self, p1: u8, p2: u8, len: usize, what: &str) -> Step<(Status, Vec<u8>)> {
        let apdu = CommandBuilder::new(cla::SM, ins::READ_BINARY, p1, p2)
            .data(sm::expected_length(len as u16).to_vec())
            .ne(65_536)
            .extended()
            .to_bytes();
        let r = self.transmit(&apdu, what)?;
        if !r.status.carries_data() {
            return Ok((r.status, Vec::new()));
        }
        if len == 0 && r.status != Status::Success {
            return unexpected(what, r.status);
        }
        let plain = sm::open(self.generation, &self.key, &r.data).or_else(|e| {
            // Only the session key opens a well-padded answer: bad padding means the chip
            // does not hold the key it agreed. A malformed DO 86 is damage to the form.
            let kind = match e {
                sm::SmError::BadPadding => VerdictKind::Forged,
                _ => VerdictKind::Unreadable,
            };
            stop(
                kind,
                Some(Reason::SmError),
                format!("{what}: secure messaging: {e}"),
            )
        })?;
        Ok((r.status, plain))
    }

    /// Offset reads of `chunk` bytes until a short chunk or the end of the EF (`6B 00`).
    fn read_chunks(
        &mut self,
        sfi: u8,
        chunk: usize,
        what: &str,
        mut read: impl FnMut(&mut Self, u8, u8, usize) -> Step<(Status, Vec<u8>)>,
    ) -> Step<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let offset = out.len();
            let (p1, p2) = if offset == 0 {
                (0x80 | sfi, 0)
            } else if offset <= 0x7FFF {
                ((offset >> 8) as u8, offset as u8)
            } else {
                return stop(
                    VerdictKind::Unreadable,
                    Some(Reason::MalformedData),
                    format!("{what}: EF larger than 32 KiB"),
                );
            };
            let (status, data) = read(self, p1, p2, chunk)?;
            match status {
                Status::OffsetOutOfRange if offset > 0 => return Ok(out),
                Status::Success | Status::EndOfFileWarning => {}
                other => return unexpected(what, other),
            }
            let short = data.len() < chunk;
            if data.len() > chunk {
                return stop(
                    VerdictKind::Unreadable,
                    Some(Reason::MalformedData),
                    format!("{what}: card sent more than asked"),
                );
            }
            out.extend_from_slice(&data);
            if short || data.is_empty() {
                return Ok(out);
            }
        }
    }

    fn authenticate(&mut self, card_number: &str) -> Step<()> {
        let generation = self.generation;
        let key = card_number_key(card_number.as_bytes());
        match self.mutual_authenticate(generation, &key)? {
            Ok(session_key) => self.key = session_key,
            Err(Status::VerificationFailed) => {
                // A mistyped number, or a chip that is not the generation its card type
                // says: the other cipher suite tells them apart.
                let other = match generation {
                    Generation::First => Generation::Second,
                    Generation::Second => Generation::First,
                };
                if self.mutual_authenticate(other, &key)?.is_ok() {
                    return stop(
                        VerdictKind::Forged,
                        Some(Reason::MalformedData),
                        format!(
                            "card type says generation {}, but the chip authenticates with the \
                             card number only in generation-{} cryptography",
                            generation.number(),
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
        let Ok(sealed) = sm::seal(generation, &self.key, card_number.as_bytes()) else {
            return stop(
                VerdictKind::WrongCardNumber,
                None,
                "the card number is too long to send in one VERIFY",
            );
        };
        let verify = CommandBuilder::new(cla::SM, ins::VERIFY, 0, VERIFY_P2_CARD_NUMBER)
            .data(sealed)
            .to_bytes();
        let r = self.transmit(&verify, "VERIFY")?;
        match r.status {
            Status::Success => Ok(()),
            Status::VerificationFailed => stop(
                VerdictKind::WrongCardNumber,
                None,
                "VERIFY rejected the card number (63 00)",
            ),
            other => unexpected("VERIFY", other),
        }
    }

    /// GET CHALLENGE and MUTUAL AUTHENTICATE in `generation`'s cryptography: the session
    /// key, or the status word the card refused with.
    fn mutual_authenticate(
        &mut self,
        generation: Generation,
        key: &Key,
    ) -> Step<Result<Key, Status>> {
        let challenge = self.expect_ok(
            &CommandBuilder::new(cla::PLAIN, ins::GET_CHALLENGE, 0, 0)
                .ne(8)
                .to_bytes(),
            "GET CHALLENGE",
        )?;
        let Ok(rnd_icc) = Nonce::try_from(challenge.as_slice()) else {
            return stop(
                VerdictKind::Unreadable,
                Some(Reason::MalformedData),
                format!("GET CHALLENGE returned {} bytes", challenge.len()),
            );
        };
        let mut rnd_ifd: Nonce = [0; 8];
        let mut k_ifd: Key = [0; 16];
        self.rng.fill_bytes(&mut rnd_ifd);
        self.rng.fill_bytes(&mut k_ifd);
        let cryptogram = auth::cryptogram(generation, key, &rnd_ifd, &rnd_icc, &k_ifd);
        let apdu = CommandBuilder::new(cla::PLAIN, ins::MUTUAL_AUTHENTICATE, 0, 0)
            .data(cryptogram.to_vec())
            .ne(256)
            .to_bytes();
        let r = self.transmit(&apdu, "MUTUAL AUTHENTICATE")?;
        if r.status != Status::Success {
            return Ok(Err(r.status));
        }
        auth::reader_finish(generation, key, &rnd_ifd, &rnd_icc, &k_ifd, &r.data)
            .map(Ok)
            .or_else(|e| {
                stop(
                    VerdictKind::Forged,
                    Some(Reason::AuthFailed),
                    format!("card cryptogram: {e}"),
                )
            })
    }
}

/// `apdu` with its Le replaced by `le` (`00` = 256), for a card that answered `6C le`.
fn with_le(apdu: &[u8], le: u8) -> Option<Vec<u8>> {
    let cmd = rclab_emulator::protocol::Command::parse(apdu).ok()?;
    let ne = if le == 0 { 256 } else { usize::from(le) };
    let mut again = CommandBuilder::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).ne(ne);
    if !cmd.data.is_empty() {
        again = again.data(cmd.data.to_vec());
    }
    Some(again.to_bytes())
}

fn unexpected<T>(what: &str, status: Status) -> Step<T> {
    stop(
        VerdictKind::Unreadable,
        Some(Reason::UnexpectedStatus),
        format!("{what}: status {status}"),
    )
}

fn not_residence_on_status(Stop(verdict, detail): Stop) -> Stop {
    if verdict.reason == Some(Reason::UnexpectedStatus) {
        Stop(Verdict::new(VerdictKind::NotResidenceCard, None), detail)
    } else {
        Stop(verdict, detail)
    }
}

/// The EF's data objects; a tag that appears twice is refused, so that no object can
/// hide behind another of the same tag (a checker that verifies the first `D1` while an
/// app shows the last would be fooled).
fn parse<'a>(ef: &'a [u8], what: &str) -> Step<Vec<Tlv<'a>>> {
    let tlvs = tlv::parse_all(ef).or_else(|e| {
        stop(
            VerdictKind::Unreadable,
            Some(Reason::MalformedData),
            format!("{what}: {e}"),
        )
    })?;
    for (i, t) in tlvs.iter().enumerate() {
        if tlvs[..i].iter().any(|earlier| earlier.tag == t.tag) {
            return stop(
                VerdictKind::Unreadable,
                Some(Reason::MalformedData),
                format!("{what}: tag {:02X} appears twice", t.tag),
            );
        }
    }
    Ok(tlvs)
}

fn field_text(t: &Tlv, generation: Generation, what: &str) -> Step<String> {
    strict_text(t.value, generation).or_else(|e| {
        stop(
            VerdictKind::Unreadable,
            Some(Reason::MalformedData),
            format!("{what} {:02X}: {e}", t.tag),
        )
    })
}

fn tag_list(tags: &[u16]) -> String {
    tags.iter()
        .map(|t| format!("{t:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The EF must hold exactly one TLV, with `tag`.
fn single<'a>(ef: &'a [u8], tag: u16, name: &str) -> Step<&'a [u8]> {
    let tlvs = parse(ef, name)?;
    match tlvs.as_slice() {
        [t] if t.tag == tag => Ok(t.value),
        _ => stop(
            VerdictKind::Unreadable,
            Some(Reason::MalformedData),
            format!(
                "expected one {name} object, found tags {}",
                tag_list(&tlvs.iter().map(|t| t.tag).collect::<Vec<_>>())
            ),
        ),
    }
}

/// The EF holds `tag` once or nothing at all.
fn optional<'a>(ef: &'a [u8], tag: u16, name: &str) -> Step<Option<&'a [u8]>> {
    let tlvs = parse(ef, name)?;
    match tlvs.as_slice() {
        [] => Ok(None),
        [t] if t.tag == tag => Ok(Some(t.value)),
        _ => stop(
            VerdictKind::Unreadable,
            Some(Reason::MalformedData),
            format!("unexpected objects where {name} belongs"),
        ),
    }
}

fn required<'a>(tlvs: &[Tlv<'a>], tag: u16, name: &str) -> Step<&'a [u8]> {
    let count = tlvs.iter().filter(|t| t.tag == tag).count();
    if count != 1 {
        return stop(
            VerdictKind::Unreadable,
            Some(Reason::MalformedData),
            format!("{name} appears {count} times"),
        );
    }
    Ok(tlv::find(tlvs, tag).unwrap_or_default())
}
