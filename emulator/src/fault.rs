//! The fault layer: small misbehaviours a profile lists under `faults:`, wrapped around
//! the faithful [`Card`] by [`SimCard`]. The card engine never knows it is faulty.
//!
//! Each fault is a pure rule over one exchange: it looks at the command (and which file it
//! addresses), and either answers instead of the card, or reshapes the card's answer, or
//! adds time, or takes the card away. Faults apply in list order; several may act on one
//! exchange. [`SimCard::exchange`] reports what happened without sleeping; the in-process
//! [`Channel`] simulates time (a stall past ISO 14443-4's longest frame waiting time is a
//! timeout, without the wait) and the vpcd reader really waits.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::card::{Card, CardImage, Df};
use crate::protocol::crypto::Key;
use crate::protocol::{AID_DF1, AID_DF2, AID_DF3, Command, Generation, auth, ins, sm, tlv};
use crate::transport::vpcd::{Reply, VirtualCard};
use crate::transport::{Channel, TransportError};

/// The longest an ISO/IEC 14443-4 card may stay silent before a reader gives up: the frame
/// waiting time with FWI 14, `256·16/fc · 2^14` ≈ 4.949 s.
///
/// The default ATR announces FWI 8 (≈ 77 ms); a profile's `delay` stands for a card that
/// asks for more time with S(WTX), which ISO 14443-4 caps at this maximum FWT. So a delay
/// up to this long is slow but answered; a longer one is a mute card, and every path
/// judges it by [`is_mute`]: in-process, behind vpcd, and in the PC/SC channel.
pub const FRAME_WAIT_LIMIT: Duration = Duration::from_micros(4_949_000);

/// The one rule: a card silent longer than [`FRAME_WAIT_LIMIT`] is mute, and a reader
/// gives up on it at the limit instead of waiting for the answer.
pub fn is_mute(silence: Duration) -> bool {
    silence > FRAME_WAIT_LIMIT
}

/// Which commands a fault acts on, written as text in a profile (`on: read DF1/EF02`).
///
/// `any` | `select` | `select MF|DF1|DF2|DF3` | `get_challenge` | `mutual_authenticate` |
/// `verify` | `read` | `read DF1/EF02` (plain or SM READ BINARY of that EF, by short EF
/// identifier or offset). Commands are told apart by INS, whatever the class byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Selector {
    #[default]
    Any,
    Select(Option<Df>),
    GetChallenge,
    MutualAuthenticate,
    Verify,
    /// READ BINARY; with a file, only reads of the EF whose name starts with it.
    Read(Option<String>),
}

impl Selector {
    fn read() -> Selector {
        Selector::Read(None)
    }
}

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(text: String) -> Result<Selector, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let df = |name: &str| match name {
            "MF" => Some(Df::Mf),
            "DF1" => Some(Df::Df1),
            "DF2" => Some(Df::Df2),
            "DF3" => Some(Df::Df3),
            _ => None,
        };
        let file = |name: &str| {
            let (d, e) = name.split_once('/')?;
            let digits = e.strip_prefix("EF")?;
            (df(d).is_some() && digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| name.to_owned())
        };
        match words.as_slice() {
            ["any"] => Ok(Selector::Any),
            ["select"] => Ok(Selector::Select(None)),
            ["select", name] if df(name).is_some() => Ok(Selector::Select(df(name))),
            ["get_challenge"] => Ok(Selector::GetChallenge),
            ["mutual_authenticate"] => Ok(Selector::MutualAuthenticate),
            ["verify"] => Ok(Selector::Verify),
            ["read"] => Ok(Selector::Read(None)),
            ["read", name] if file(name).is_some() => Ok(Selector::Read(file(name))),
            _ => Err(format!(
                "{text:?} is not a command selector: any, select [MF|DF1|DF2|DF3], \
                 get_challenge, mutual_authenticate, verify, read [DFn/EFnn]"
            )),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Any => f.write_str("any"),
            Selector::Select(None) => f.write_str("select"),
            Selector::Select(Some(df)) => write!(f, "select {}", df_name(*df)),
            Selector::GetChallenge => f.write_str("get_challenge"),
            Selector::MutualAuthenticate => f.write_str("mutual_authenticate"),
            Selector::Verify => f.write_str("verify"),
            Selector::Read(None) => f.write_str("read"),
            Selector::Read(Some(file)) => write!(f, "read {file}"),
        }
    }
}

fn df_name(df: Df) -> &'static str {
    match df {
        Df::Mf => "MF",
        Df::Df1 => "DF1",
        Df::Df2 => "DF2",
        Df::Df3 => "DF3",
    }
}

/// A status word written as hex (`"6F 00"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StatusWord(pub [u8; 2]);

impl TryFrom<String> for StatusWord {
    type Error = String;
    fn try_from(text: String) -> Result<StatusWord, String> {
        let bytes = HexBytes::try_from(text.clone())?.0;
        bytes
            .try_into()
            .map(StatusWord)
            .map_err(|_| format!("{text:?} must be two hex bytes"))
    }
}

/// Bytes written as hex, spaces allowed (`"FF FF"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HexBytes(pub Vec<u8>);

impl TryFrom<String> for HexBytes {
    type Error = String;
    fn try_from(text: String) -> Result<HexBytes, String> {
        let cleaned: String = text.split_whitespace().collect();
        hex::decode(&cleaned)
            .map(HexBytes)
            .map_err(|e| format!("{text:?} is not hex: {e}"))
    }
}

/// One misbehaviour. In YAML, a one-key mapping (`- delay: { ms: 3 }`) or a bare name for
/// the faults without parameters (`- wrong_m_icc`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Transport: the card takes `ms` milliseconds before answering matching commands
    /// (every APDU by default): NFC-like slowness, or a stall past a reader's patience.
    Delay {
        ms: u64,
        #[serde(default)]
        on: Selector,
    },
    /// Transport: the card leaves the field right after answering this many APDUs.
    RemoveAfter { apdus: usize },
    /// Transport: the card leaves in the middle of a matching command, without answering.
    RemoveDuring { on: Selector },
    /// Transport: the answer's frame is cut to its first `keep` bytes (status word lost).
    Truncate {
        #[serde(default)]
        on: Selector,
        keep: NonZeroUsize,
    },
    /// Status: matching commands are not executed and answer only this status word.
    Status {
        #[serde(default)]
        on: Selector,
        sw: StatusWord,
    },
    /// Status: a successful answer with data becomes `61 xx` (T=0 style); the data follows
    /// in GET RESPONSE (`00 C0 00 00 Le`) chunks, as ISO 7816-4 allows.
    GetResponse {
        #[serde(default)]
        on: Selector,
    },
    /// Status: a successful answer of 1–256 bytes to a command whose Le differs becomes
    /// `6C xx` (xx = its length); the command re-sent with that Le is answered.
    WrongLe {
        #[serde(default = "Selector::read")]
        on: Selector,
    },
    /// Data: these bytes are added after the data, before the status word.
    ExtraBytes {
        #[serde(default)]
        on: Selector,
        bytes: HexBytes,
    },
    /// Data: the last `count` data bytes are dropped; the status word stays.
    MissingBytes {
        #[serde(default)]
        on: Selector,
        count: NonZeroUsize,
    },
    /// SM: an SM read is answered with the plaintext instead of DO `86`.
    PlainInsteadOfSm {
        #[serde(default)]
        on: Selector,
    },
    /// Crypto: MUTUAL AUTHENTICATE succeeds, but M.ICC does not match E.ICC (a chip that
    /// cannot compute the card-number MAC).
    WrongMIcc,
    /// Crypto: E.ICC (with a correct MAC) echoes a RND.IFD other than the reader's.
    WrongEcho,
    /// SM: answers are padded `80 FF…` instead of `80 00…` before encryption.
    SmBadPadding {
        #[serde(default)]
        on: Selector,
    },
    /// SM: the padding-indicator byte of DO `86` is `value` instead of `01`.
    SmIndicator {
        #[serde(default)]
        on: Selector,
        value: u8,
    },
    /// SM: answers are encrypted with the card-number key instead of the session key.
    SmWrongKey {
        #[serde(default)]
        on: Selector,
    },
}

impl Fault {
    /// Faults that may leave a reply without a proper status word (or with foreign
    /// bytes in front of it): the never-panic property excuses exactly these.
    pub fn reshapes_frames(&self) -> bool {
        matches!(
            self,
            Fault::Truncate { .. } | Fault::ExtraBytes { .. } | Fault::MissingBytes { .. }
        )
    }

    fn selector(&self) -> Option<&Selector> {
        match self {
            Fault::Delay { on, .. }
            | Fault::RemoveDuring { on }
            | Fault::Truncate { on, .. }
            | Fault::Status { on, .. }
            | Fault::GetResponse { on }
            | Fault::WrongLe { on }
            | Fault::ExtraBytes { on, .. }
            | Fault::MissingBytes { on, .. }
            | Fault::PlainInsteadOfSm { on }
            | Fault::SmBadPadding { on }
            | Fault::SmIndicator { on, .. }
            | Fault::SmWrongKey { on } => Some(on),
            Fault::RemoveAfter { .. } | Fault::WrongMIcc | Fault::WrongEcho => None,
        }
    }

    /// Checks that a file the fault names exists on the card.
    pub fn check_against(&self, image: &CardImage) -> Result<(), String> {
        match self.selector() {
            Some(Selector::Read(Some(file))) if !image.files.iter().any(|f| names(f, file)) => {
                Err(format!("the card has no EF {file}"))
            }
            _ => Ok(()),
        }
    }
}

/// True when `file` (e.g. `DF1/EF02`) names the EF: its name starts with it, then a space.
fn names(ef: &crate::card::ElementaryFile, file: &str) -> bool {
    ef.name
        .strip_prefix(file)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// What one exchange came to, before any real waiting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The R-APDU; `None` when the card has left without answering.
    pub reply: Option<Vec<u8>>,
    /// Time the card takes before answering.
    pub delay: Duration,
    /// The card leaves right after this exchange.
    pub leaves: bool,
    /// Indices (in the profile's list) of the faults that acted on this exchange.
    pub applied: Vec<usize>,
}

/// What a command addresses, found from the card's state before it runs.
struct Target<'a> {
    command: Option<Command<'a>>,
    /// Select: the DF named. Read: the EF index.
    df: Option<Df>,
    file: Option<usize>,
}

/// Data kept for GET RESPONSE after a `61 xx`.
struct Pending {
    data: Vec<u8>,
    sw: [u8; 2],
}

/// The card a profile describes: the faithful chip plus the profile's faults.
/// With no faults it answers exactly as the [`Card`] inside.
pub struct SimCard {
    image: Arc<CardImage>,
    card: Card,
    faults: Arc<[Fault]>,
    answered: usize,
    /// The fault that took the card away, once it has left.
    removed_by: Option<usize>,
    pending: Option<Pending>,
    simulated: Duration,
    /// How many exchanges each fault has acted on.
    fired: Vec<usize>,
}

impl SimCard {
    pub fn new(image: Arc<CardImage>, faults: Arc<[Fault]>) -> SimCard {
        SimCard {
            card: Card::new(Arc::clone(&image)),
            image,
            answered: 0,
            removed_by: None,
            pending: None,
            simulated: Duration::ZERO,
            fired: vec![0; faults.len()],
            faults,
        }
    }

    pub fn image(&self) -> &CardImage {
        &self.image
    }

    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// True once a fault has taken the card out of the field; it does not come back.
    pub fn removed(&self) -> bool {
        self.removed_by.is_some()
    }

    /// For each fault of the list, how many exchanges it has acted on so far.
    pub fn fired(&self) -> &[usize] {
        &self.fired
    }

    /// Time the card has spent before its answers so far (in-process, nobody waits).
    pub fn simulated_time(&self) -> Duration {
        self.simulated
    }

    /// Reset / power cycle of the chip (a removed card stays removed).
    pub fn reset(&mut self) {
        self.card.reset();
        self.pending = None;
    }

    /// One exchange with every fault applied; pure apart from the card's own state.
    pub fn exchange(&mut self, apdu: &[u8]) -> Outcome {
        let out = self.exchange_inner(apdu);
        for &i in &out.applied {
            if let Some(count) = self.fired.get_mut(i) {
                *count += 1;
            }
        }
        out
    }

    fn exchange_inner(&mut self, apdu: &[u8]) -> Outcome {
        let mut out = Outcome::default();
        if let Some(index) = self.removed_by {
            out.applied.push(index);
            return out;
        }
        let target = self.target(apdu);
        let image = Arc::clone(&self.image);
        let faults = Arc::clone(&self.faults);
        let hits = |fault: &Fault| {
            fault
                .selector()
                .is_some_and(|on| matches(on, &target, &image))
        };
        // Time the card takes.
        for (i, fault) in faults.iter().enumerate() {
            if let Fault::Delay { ms, .. } = fault
                && hits(fault)
            {
                out.delay += Duration::from_millis(*ms);
                out.applied.push(i);
            }
        }

        // Answers instead of the card: pending GET RESPONSE data (only the next command may
        // fetch it), a removal mid-command, a status word.
        let pending = self.pending.take();
        let mut reply = None;
        if let (Some(pending), Some(cmd)) = (pending, &target.command)
            && (cmd.cla, cmd.ins, cmd.p1, cmd.p2) == (0x00, 0xC0, 0, 0)
            && cmd.data.is_empty()
        {
            reply = Some(self.serve_get_response(pending, cmd.ne.unwrap_or(256)));
        }
        if reply.is_none() {
            for (i, fault) in faults.iter().enumerate() {
                match fault {
                    Fault::RemoveDuring { .. } if hits(fault) => {
                        out.applied.push(i);
                        self.removed_by = Some(i);
                        out.leaves = true;
                        return out;
                    }
                    Fault::Status { sw, .. } if hits(fault) => {
                        out.applied.push(i);
                        reply = Some(sw.0.to_vec());
                        break;
                    }
                    _ => {}
                }
            }
        }
        let reply = match reply {
            Some(reply) => reply,
            None => {
                // The card answers; faults reshape the answer in list order (those without
                // a selector check the command themselves).
                let mut response = self.card.transmit(apdu);
                for (i, fault) in faults.iter().enumerate() {
                    if (hits(fault) || fault.selector().is_none())
                        && self.reshape(fault, &target, &mut response)
                    {
                        out.applied.push(i);
                    }
                }
                response
            }
        };
        out.reply = Some(reply);
        // Leaving after the answer.
        self.answered += 1;
        for (i, fault) in faults.iter().enumerate() {
            if let Fault::RemoveAfter { apdus } = fault
                && self.answered >= *apdus
            {
                out.applied.push(i);
                self.removed_by = Some(i);
                out.leaves = true;
                break;
            }
        }
        out
    }

    fn target<'a>(&self, apdu: &'a [u8]) -> Target<'a> {
        let command = Command::parse(apdu).ok();
        let mut target = Target {
            command,
            df: None,
            file: None,
        };
        let Some(cmd) = &target.command else {
            return target;
        };
        match cmd.ins {
            ins::SELECT => {
                target.df = match (cmd.p1, cmd.data) {
                    (0x00, [] | [0x3F, 0x00]) => Some(Df::Mf),
                    (0x04, name) => [(AID_DF1, Df::Df1), (AID_DF2, Df::Df2), (AID_DF3, Df::Df3)]
                        .into_iter()
                        .find(|(aid, _)| aid[..] == *name)
                        .map(|(_, df)| df),
                    _ => None,
                }
            }
            ins::READ_BINARY => {
                target.file = if cmd.p1 & 0x80 == 0 {
                    self.card.current_file()
                } else if cmd.p1 & 0x60 == 0 {
                    self.image().find_sfi(self.card.current_df(), cmd.p1 & 0x1F)
                } else {
                    None
                }
            }
            _ => {}
        }
        target
    }

    fn serve_get_response(&mut self, mut pending: Pending, ne: usize) -> Vec<u8> {
        let take = ne.min(pending.data.len());
        let mut out: Vec<u8> = pending.data.drain(..take).collect();
        match pending.data.len() {
            0 => out.extend_from_slice(&pending.sw),
            left => {
                out.extend_from_slice(&[0x61, left.min(256) as u8]);
                self.pending = Some(pending);
            }
        }
        out
    }

    /// Applies one answer-shaping fault to the card's `response`; true when it changed it.
    fn reshape(&mut self, fault: &Fault, target: &Target, response: &mut Vec<u8>) -> bool {
        let generation = self.image().generation;
        let Some(split) = response.len().checked_sub(2) else {
            // Already cut below a status word: only further cutting applies.
            return match fault {
                Fault::Truncate { keep, .. } if response.len() > keep.get() => {
                    response.truncate(keep.get());
                    true
                }
                _ => false,
            };
        };
        let sw = [response[split], response[split + 1]];
        let ok = sw == [0x90, 0x00];
        let ins = target.command.as_ref().map(|c| c.ins);
        match fault {
            Fault::Truncate { keep, .. } => {
                let cut = response.len() > keep.get();
                response.truncate(keep.get());
                cut
            }
            Fault::ExtraBytes { bytes, .. } => {
                response.splice(split..split, bytes.0.iter().copied());
                !bytes.0.is_empty()
            }
            Fault::MissingBytes { count, .. } => {
                let drop = count.get().min(split);
                response.drain(split - drop..split);
                drop > 0
            }
            Fault::GetResponse { .. } if ok && split > 0 => {
                let data: Vec<u8> = response.drain(..split).collect();
                *response = vec![0x61, data.len().min(256) as u8];
                self.pending = Some(Pending { data, sw });
                true
            }
            Fault::WrongLe { .. } if ok && (1..=256).contains(&split) => {
                let ne = target.command.as_ref().and_then(|c| c.ne);
                if ne == Some(split) {
                    return false;
                }
                *response = vec![0x6C, split as u8];
                true
            }
            Fault::WrongMIcc if ok && ins == Some(ins::MUTUAL_AUTHENTICATE) && split == 40 => {
                response[39] ^= 0x01;
                true
            }
            Fault::WrongEcho if ok && ins == Some(ins::MUTUAL_AUTHENTICATE) && split == 40 => {
                let key = self.image().chip_key();
                let Ok(plain) = generation.decrypt(&key, &response[..32]) else {
                    return false;
                };
                let mut rnd_icc = [0u8; 8];
                let mut wrong_ifd = [0u8; 8];
                let mut k_icc: Key = [0; 16];
                rnd_icc.copy_from_slice(&plain[..8]);
                wrong_ifd.copy_from_slice(&plain[8..16]);
                k_icc.copy_from_slice(&plain[16..32]);
                wrong_ifd[0] ^= 0xFF;
                let forged = auth::cryptogram(generation, &key, &rnd_icc, &wrong_ifd, &k_icc);
                response[..40].copy_from_slice(&forged);
                true
            }
            Fault::PlainInsteadOfSm { .. }
            | Fault::SmBadPadding { .. }
            | Fault::SmWrongKey { .. }
                if sw_carries_data(sw) =>
            {
                let Some(session_key) = self.card.session_key() else {
                    return false;
                };
                let Ok(plain) = sm::open(generation, &session_key, &response[..split]) else {
                    return false;
                };
                let data = match fault {
                    Fault::PlainInsteadOfSm { .. } => plain,
                    Fault::SmBadPadding { .. } => {
                        match seal_badly_padded(generation, &session_key, &plain) {
                            Some(sealed) => sealed,
                            None => return false,
                        }
                    }
                    _ => match sm::seal(generation, &self.image().chip_key(), &plain) {
                        Ok(sealed) => sealed,
                        Err(_) => return false,
                    },
                };
                *response = [&data[..], &sw].concat();
                true
            }
            Fault::SmIndicator { value, .. } if sw_carries_data(sw) => {
                let indicator_at = match tlv::parse_at(&response[..split], 0) {
                    Ok((obj, end))
                        if obj.tag == sm::TAG_CRYPTOGRAM
                            && end == split
                            && !obj.value.is_empty() =>
                    {
                        split - obj.value.len()
                    }
                    _ => return false,
                };
                response[indicator_at] = *value;
                true
            }
            _ => false,
        }
    }
}

fn sw_carries_data(sw: [u8; 2]) -> bool {
    matches!(sw, [0x90, 0x00] | [0x62, _] | [0x61, _])
}

/// `86 L 01 ‖ Enc(key, data ‖ 80 FF…)`: ISO padding with the wrong filler, at least one
/// `FF`, so that no reader can mistake it for valid padding.
fn seal_badly_padded(generation: Generation, key: &Key, plain: &[u8]) -> Option<Vec<u8>> {
    let block = generation.block_size();
    let mut padded = plain.to_vec();
    padded.push(0x80);
    loop {
        padded.push(0xFF);
        if padded.len().is_multiple_of(block) {
            break;
        }
    }
    let mut value = vec![sm::PADDING_INDICATOR];
    value.extend(generation.encrypt(key, &padded).ok()?);
    // Too long for one DO 86: the fault does not apply (the answer stays as it was).
    tlv::encode(sm::TAG_CRYPTOGRAM, &value).ok()
}

fn matches(on: &Selector, target: &Target, image: &CardImage) -> bool {
    let Some(cmd) = &target.command else {
        return *on == Selector::Any;
    };
    match on {
        Selector::Any => true,
        Selector::Select(df) => cmd.ins == ins::SELECT && df.is_none_or(|d| target.df == Some(d)),
        Selector::GetChallenge => cmd.ins == ins::GET_CHALLENGE,
        Selector::MutualAuthenticate => cmd.ins == ins::MUTUAL_AUTHENTICATE,
        Selector::Verify => cmd.ins == ins::VERIFY,
        Selector::Read(file) => {
            cmd.ins == ins::READ_BINARY
                && file.as_ref().is_none_or(|file| {
                    target
                        .file
                        .and_then(|i| image.files.get(i))
                        .is_some_and(|ef| names(ef, file))
                })
        }
    }
}

/// In-process: time is simulated. A delay up to [`FRAME_WAIT_LIMIT`] passes unnoticed; a
/// longer one is a timeout, as a contactless reader would report it.
impl Channel for SimCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let outcome = self.exchange(apdu);
        self.simulated += outcome.delay.min(FRAME_WAIT_LIMIT);
        if is_mute(outcome.delay) {
            return Err(TransportError::Timeout);
        }
        outcome.reply.ok_or(TransportError::CardRemoved)
    }
}

/// Behind vpcd the card really takes its time, and leaving closes the reader's connection.
impl VirtualCard for SimCard {
    fn reset(&mut self) {
        SimCard::reset(self);
    }

    /// For wrappers that only forward `transmit`: waits here, and answers nothing once the
    /// card has left (which the reader takes as removal).
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let outcome = self.exchange(apdu);
        std::thread::sleep(outcome.delay);
        outcome.reply.unwrap_or_default()
    }

    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let outcome = self.exchange(apdu);
        Reply {
            leave: outcome.leaves || outcome.reply.is_none(),
            data: outcome.reply,
            delay: outcome.delay,
        }
    }
}
