//! The card a profile describes at run time: the faithful chip inside, the profile's faults
//! applied to each exchange in list order, and what each exchange came to ([`Outcome`]).

use std::sync::Arc;
use std::time::Duration;

use super::FRAME_WAIT_LIMIT;
use super::spec::{Fault, Selector, SessionChange, names};
use crate::card::{CardImage, Df};
use crate::chip::{Chip, ChipImage};
use crate::protocol::apdu::Apdu;
use crate::protocol::command::{Command, Instruction, ReadTarget, Select};
use crate::protocol::crypto::Key;
use crate::protocol::{Generation, Status, auth, sm, tlv};

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
    /// The APDU; `None` for bytes that are not one (only the selector `any` matches them).
    apdu: Option<Apdu<'a>>,
    /// The command as the card reads it (a GET RESPONSE is served from here).
    command: Result<Command<'a>, Status>,
    /// SELECT: the DF it names.
    df: Option<Df>,
    /// READ BINARY: the index in the image of the EF it reads.
    file: Option<usize>,
}

impl Target<'_> {
    /// The command by INS alone, whatever its class: selectors name commands the card
    /// may still refuse.
    fn instruction(&self) -> Option<Instruction> {
        self.apdu.as_ref().map(Apdu::instruction)
    }
}

/// Data kept for GET RESPONSE after a `61 xx`.
struct Pending {
    data: Vec<u8>,
    status: Status,
}

/// How an SM fault re-seals the card's answer.
#[derive(Clone, Copy)]
enum Reseal {
    /// The plaintext, unsealed.
    Plain,
    /// Padded `80 FF…` under the session key.
    BadPadding,
    /// Sealed with the card-number key.
    WrongKey,
}

/// The card a profile describes: the faithful chip plus the profile's faults.
/// With no faults it answers exactly as the chip inside.
///
/// The chip is either kind ([`Chip`]). Fault selectors that name residence-card DFs or EFs
/// (`select: DF1`, `read: DF1/EF01`) look into the chip's residence view
/// ([`ChipImage::residence_view`]), which holds nothing on a My Number chip: on it such a
/// selector never matches, while `any`, `select`, `verify`, `read` (without a file) and
/// every fault without a selector act as on a residence card.
pub struct SimCard {
    image: Arc<CardImage>,
    reader: crate::transport::reader_layer::ReaderConfig,
    card: Chip,
    faults: Arc<[Fault]>,
    answered: usize,
    /// The fault that took the card away, once it has left.
    removed_by: Option<usize>,
    pending: Option<Pending>,
    simulated: Duration,
    /// How many exchanges each fault has acted on.
    fired: Vec<usize>,
    /// For each session fault, the successful commands of its `after:` selector since the
    /// last reset.
    successes: Vec<usize>,
    /// Resets and power cycles so far: a random PUPI (`reader.pupi: random`) is new at each.
    power_ups: u64,
}

impl SimCard {
    /// A fresh card of `image` with `faults` (in the order they apply).
    pub fn new(image: Arc<CardImage>, faults: Arc<[Fault]>) -> SimCard {
        SimCard::of_chip(&ChipImage::Residence(image), faults)
    }

    /// A fresh card of `chip` (either kind) with `faults` (in the order they apply).
    pub fn of_chip(chip: &ChipImage, faults: Arc<[Fault]>) -> SimCard {
        SimCard {
            card: chip.power_on(),
            image: chip.residence_view(),
            reader: chip.reader().clone(),
            answered: 0,
            removed_by: None,
            pending: None,
            simulated: Duration::ZERO,
            fired: vec![0; faults.len()],
            successes: vec![0; faults.len()],
            faults,
            power_ups: 0,
        }
    }

    /// The chip's residence image (for a My Number chip, its residence view: no EFs).
    pub fn image(&self) -> &CardImage {
        &self.image
    }

    /// What the reader presents for this card (ATR, `FF CA`).
    pub fn reader(&self) -> &crate::transport::reader_layer::ReaderConfig {
        &self.reader
    }

    /// The faults, in the order they apply.
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

    /// Counts time the card took in-process, up to the point a reader gives up.
    pub(super) fn simulate_wait(&mut self, delay: Duration) {
        self.simulated += delay.min(FRAME_WAIT_LIMIT);
    }

    /// Reset / power cycle of the chip (a removed card stays removed).
    pub fn reset(&mut self) {
        self.card.reset();
        self.pending = None;
        self.successes.iter_mut().for_each(|count| *count = 0);
        self.power_ups = self.power_ups.saturating_add(1);
    }

    /// Resets and power cycles since the card was made (the reader layer's random PUPI
    /// changes with it).
    pub fn power_ups(&self) -> u64 {
        self.power_ups
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
        if let (Some(pending), Ok(Command::GetResponse { ne })) = (pending, target.command) {
            reply = Some(self.serve_get_response(pending, ne));
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
                        reply = Some(sw.to_bytes().to_vec());
                        break;
                    }
                    // Not aimed at this command, or acting on the card's answer, its time
                    // or its leaving.
                    Fault::RemoveDuring { .. }
                    | Fault::Status { .. }
                    | Fault::ReplaceStatus { .. }
                    | Fault::Delay { .. }
                    | Fault::RemoveAfter { .. }
                    | Fault::Truncate { .. }
                    | Fault::GetResponse { .. }
                    | Fault::WrongLe { .. }
                    | Fault::ExtraBytes { .. }
                    | Fault::MissingBytes { .. }
                    | Fault::PlainInsteadOfSm { .. }
                    | Fault::WrongMIcc
                    | Fault::WrongEcho
                    | Fault::SmBadPadding { .. }
                    | Fault::SmIndicator { .. }
                    | Fault::SmWrongKey { .. }
                    | Fault::ReselectResidenceAp { .. }
                    | Fault::SkipSmCounter { .. } => {}
                }
            }
        }
        let reply = match reply {
            Some(reply) => reply,
            None => {
                // The card answers; faults reshape the answer in list order (those without
                // a selector check the command themselves).
                let mut response = self.card.transmit(apdu);
                let succeeded = response.ends_with(&Status::Success.to_bytes());
                for (i, fault) in faults.iter().enumerate() {
                    if (hits(fault) || fault.selector().is_none())
                        && self.reshape(fault, &target, &mut response)
                    {
                        out.applied.push(i);
                    }
                }
                // Session faults act on the chip once it has answered, after the nth
                // successful matching command.
                if succeeded {
                    for (i, fault) in faults.iter().enumerate() {
                        if hits(fault) && self.after_success(i, fault) {
                            out.applied.push(i);
                        }
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

    fn target<'a>(&self, raw: &'a [u8]) -> Target<'a> {
        let apdu = Apdu::parse(raw).ok();
        let command = apdu.as_ref().map_or(Err(Status::WrongLength), |apdu| {
            Command::from_apdu_with(apdu, &self.image.knobs.class_rules())
        });
        let mut target = Target {
            apdu,
            command,
            df: None,
            file: None,
        };
        let Some(apdu) = &target.apdu else {
            return target;
        };
        match apdu.instruction() {
            Instruction::Select => {
                target.df = match Select::decode(apdu.p1, apdu.data) {
                    Ok(Select::Mf) => Some(Df::Mf),
                    Ok(Select::Df { name }) => Df::from_aid(name),
                    Ok(Select::Ef { .. }) | Err(_) => None,
                }
            }
            Instruction::ReadBinary => {
                target.file = match ReadTarget::decode(apdu.p1, apdu.p2) {
                    Ok(ReadTarget::Current { .. }) => self.card.current_file(),
                    Ok(ReadTarget::Sfi { sfi, .. }) => {
                        self.image().find_sfi(self.card.current_df(), sfi)
                    }
                    Err(_) => None,
                }
            }
            Instruction::GetChallenge
            | Instruction::MutualAuthenticate
            | Instruction::Verify
            | Instruction::GetResponse
            | Instruction::Other(_) => {}
        }
        target
    }

    fn serve_get_response(&mut self, mut pending: Pending, ne: usize) -> Vec<u8> {
        let take = ne.min(pending.data.len());
        let mut out: Vec<u8> = pending.data.drain(..take).collect();
        match pending.data.len() {
            0 => out.extend_from_slice(&pending.status.to_bytes()),
            left => {
                out.extend_from_slice(&bytes_remaining(left));
                self.pending = Some(pending);
            }
        }
        out
    }

    /// Counts a successful command matching the session fault `fault` (index `i`); on the
    /// `nth`, changes the chip's session as the fault says. True when it did.
    fn after_success(&mut self, i: usize, fault: &Fault) -> bool {
        let Some((change, nth)) = fault.acts_after() else {
            return false;
        };
        let Some(count) = self.successes.get_mut(i) else {
            return false;
        };
        *count = count.saturating_add(1);
        if *count != nth.get() {
            return false;
        }
        match change {
            SessionChange::Reselect => self.card.select_residence_ap(),
            SessionChange::SkipCounter => self.card.skip_residence_sm_counter(),
        }
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
                Fault::Truncate { .. }
                | Fault::Delay { .. }
                | Fault::RemoveAfter { .. }
                | Fault::RemoveDuring { .. }
                | Fault::Status { .. }
                | Fault::ReplaceStatus { .. }
                | Fault::GetResponse { .. }
                | Fault::WrongLe { .. }
                | Fault::ExtraBytes { .. }
                | Fault::MissingBytes { .. }
                | Fault::PlainInsteadOfSm { .. }
                | Fault::WrongMIcc
                | Fault::WrongEcho
                | Fault::SmBadPadding { .. }
                | Fault::SmIndicator { .. }
                | Fault::SmWrongKey { .. }
                | Fault::ReselectResidenceAp { .. }
                | Fault::SkipSmCounter { .. } => false,
            };
        };
        let status = Status::from_sw(u16::from_be_bytes([response[split], response[split + 1]]));
        let ok = status == Status::Success;
        let mutual_authenticate = target.instruction() == Some(Instruction::MutualAuthenticate);
        match fault {
            Fault::ReplaceStatus { when, sw, .. } if split == 0 && status == *when => {
                *response = sw.to_bytes().to_vec();
                true
            }
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
                *response = bytes_remaining(data.len()).to_vec();
                self.pending = Some(Pending { data, status });
                true
            }
            Fault::WrongLe { .. } if ok && (1..=256).contains(&split) => {
                let ne = target.apdu.as_ref().and_then(|apdu| apdu.ne);
                if ne == Some(split) {
                    return false;
                }
                // 256 is written `6C 00`.
                *response = Status::WrongLe(split as u8).to_bytes().to_vec();
                true
            }
            Fault::WrongMIcc if ok && mutual_authenticate && split == 40 => {
                response[39] ^= 0x01;
                true
            }
            Fault::WrongEcho if ok && mutual_authenticate && split == 40 => {
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
            Fault::PlainInsteadOfSm { .. } if status.carries_data() => {
                self.reseal(Reseal::Plain, response, split)
            }
            Fault::SmBadPadding { .. } if status.carries_data() => {
                self.reseal(Reseal::BadPadding, response, split)
            }
            Fault::SmWrongKey { .. } if status.carries_data() => {
                self.reseal(Reseal::WrongKey, response, split)
            }
            Fault::SmIndicator { value, .. } if status.carries_data() => {
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
            // The answer is not one the fault reshapes.
            Fault::ReplaceStatus { .. }
            | Fault::GetResponse { .. }
            | Fault::WrongLe { .. }
            | Fault::WrongMIcc
            | Fault::WrongEcho
            | Fault::PlainInsteadOfSm { .. }
            | Fault::SmBadPadding { .. }
            | Fault::SmWrongKey { .. }
            | Fault::SmIndicator { .. } => false,
            // Faults that act before the card answers, or after.
            Fault::Delay { .. }
            | Fault::RemoveAfter { .. }
            | Fault::RemoveDuring { .. }
            | Fault::Status { .. }
            | Fault::ReselectResidenceAp { .. }
            | Fault::SkipSmCounter { .. } => false,
        }
    }

    /// Opens the SM answer `response` (data up to `split`, then the status word) with the
    /// session key and seals it again the faulty way; false when it is not an SM answer
    /// this session opens, or the faulty form does not fit.
    fn reseal(&self, how: Reseal, response: &mut Vec<u8>, split: usize) -> bool {
        let generation = self.image().generation;
        let Some(session_key) = self.card.session_key() else {
            return false;
        };
        let Ok(plain) = sm::open(generation, &session_key, &response[..split]) else {
            return false;
        };
        let data = match how {
            Reseal::Plain => plain,
            Reseal::BadPadding => match seal_badly_padded(generation, &session_key, &plain) {
                Some(sealed) => sealed,
                None => return false,
            },
            Reseal::WrongKey => match sm::seal(generation, &self.image().chip_key(), &plain) {
                Ok(sealed) => sealed,
                Err(_) => return false,
            },
        };
        response.splice(..split, data);
        true
    }
}

/// `61 xx` for `left` bytes waiting (`61 00` for 256 or more).
fn bytes_remaining(left: usize) -> [u8; 2] {
    Status::BytesRemaining(left.min(256) as u8).to_bytes()
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
    let Some(instruction) = target.instruction() else {
        return *on == Selector::Any;
    };
    match on {
        Selector::Any => true,
        Selector::Select(df) => {
            instruction == Instruction::Select && df.is_none_or(|d| target.df == Some(d))
        }
        Selector::GetChallenge => instruction == Instruction::GetChallenge,
        Selector::MutualAuthenticate => instruction == Instruction::MutualAuthenticate,
        Selector::Verify => instruction == Instruction::Verify,
        Selector::Read(file) => {
            instruction == Instruction::ReadBinary
                && file.as_ref().is_none_or(|file| {
                    target
                        .file
                        .and_then(|i| image.files.get(i))
                        .is_some_and(|ef| names(image, ef, *file))
                })
        }
    }
}
