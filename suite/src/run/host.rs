//! Where a case's card lives while a checker reads it: in this process, or in a vpcd
//! virtual reader behind pcscd. Each host presents the card, hands out a channel to it or
//! a reader that shows it, takes it away after the case, and returns the transcript of
//! what the card saw. A new transport is one more [`CardHost`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rclab_emulator::fault::{SimCard, is_mute};
use rclab_emulator::transport::vpcd::{Endpoint, ReaderOptions, Reply, VirtualCard, VirtualReader};
use rclab_emulator::transport::{Channel, Exchange, TransportError};

pub use super::adapter::CardChange;

/// How long a vpcd gets to take a card, and a remote PC/SC service to power it.
const PRESENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a checker reads the presented card through.
pub enum Access<'a> {
    /// The card itself, in this process.
    Channel(&'a mut dyn Channel),
    /// A PC/SC reader that holds the card.
    Reader(ReaderAccess<'a>),
}

/// A vpcd reader holding the case's card.
pub struct ReaderAccess<'a> {
    reader: &'a VirtualReader,
}

impl ReaderAccess<'_> {
    /// The PC/SC name of the reader.
    pub fn name(&self) -> String {
        self.reader.name()
    }

    /// Where the reader's vpcd is.
    pub fn endpoint(&self) -> &Endpoint {
        self.reader.endpoint()
    }

    /// True when the vpcd belongs to this machine's pcscd, which rclab can ask whether it
    /// shows the card; a vpcd on another machine belongs to a PC/SC service it cannot ask.
    pub fn vpcd_is_local(&self) -> bool {
        self.reader.link().is_some_and(|l| l.vpcd_is_local())
    }

    /// Waits until the PC/SC service behind the reader powers the card up.
    pub fn wait_powered(&self, timeout: Duration) -> bool {
        self.reader.wait_powered(timeout)
    }
}

/// Why a host could not present the card.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No vpcd connection carried the card within the present timeout.
    #[error("vpcd never took the card at {0}")]
    NotTaken(Endpoint),
}

/// Presents cards to checkers, one case at a time.
pub trait CardHost {
    /// Presents `card` (changed for the previous one as `change` says, where the host has
    /// a reader), runs `read` on it, then takes the card away or leaves it for the next
    /// swap; returns what `read` returned and every exchange the card saw, in order.
    fn serve<R>(
        &mut self,
        card: SimCard,
        change: CardChange,
        read: impl FnOnce(Access<'_>) -> R,
    ) -> Result<(R, Vec<Exchange>), HostError>;
}

/// The card in this process: checkers get a channel to it, time is simulated.
pub struct InProcess;

impl CardHost for InProcess {
    fn serve<R>(
        &mut self,
        card: SimCard,
        _change: CardChange,
        read: impl FnOnce(Access<'_>) -> R,
    ) -> Result<(R, Vec<Exchange>), HostError> {
        let mut recorder = Recorder::new(card);
        let out = read(Access::Channel(&mut recorder));
        Ok((out, recorder.transcript()))
    }
}

/// The card in a vpcd virtual reader. A run keeps one `Vpcd` per worker for all its cases,
/// so this is the one place that decides how a card is presented and taken away between
/// cases ([`CardChange`]): reinserted (the reader's vpcd connection closed after the case,
/// a fresh one opened for the next card, each noticed at a pcscd presence poll), or
/// swapped behind a reader that stays connected (no poll waited for).
pub struct Vpcd {
    endpoint: Endpoint,
    trace: bool,
    /// The reader, kept between cases while its card may be swapped for the next one.
    reader: Option<VirtualReader>,
    /// Cards presented by a swap so far (the rest were inserted).
    swaps: usize,
}

impl Vpcd {
    /// A host for the reader at `endpoint`; `RCLAB_TRACE=1` logs the card's side of every
    /// case to stderr (`>>>`/`<<<`, power events).
    pub fn new(endpoint: Endpoint) -> Vpcd {
        Vpcd {
            endpoint,
            trace: std::env::var_os("RCLAB_TRACE").is_some(),
            reader: None,
            swaps: 0,
        }
    }

    /// The reader this host serves.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How many cards this host has presented by swapping them in behind a connected
    /// reader (the others were inserted through a fresh connection).
    pub fn swaps(&self) -> usize {
        self.swaps
    }

    /// Puts `card` in front of pcscd: swapped in behind the connected reader when `change`
    /// allows and the reader can take it ([`VirtualReader::swap`]), otherwise by taking the
    /// old reader's card out and inserting `card` through a fresh connection.
    fn present(
        &mut self,
        card: Box<dyn VirtualCard>,
        change: CardChange,
    ) -> Result<&VirtualReader, HostError> {
        let card = match (change, self.reader.as_ref()) {
            (CardChange::Swap, Some(reader)) => match reader.swap(card) {
                Ok(_previous) => {
                    self.swaps += 1;
                    None
                }
                Err(card) => Some(card),
            },
            _ => Some(card),
        };
        if let Some(card) = card {
            if let Some(previous) = self.reader.take() {
                previous.stop();
            }
            let mut options = ReaderOptions::at(self.endpoint.clone());
            options.trace = self.trace;
            options.atr = card.atr();
            let reader = VirtualReader::spawn(options, Some(card));
            if !reader.wait_attached(PRESENT_TIMEOUT) {
                return Err(HostError::NotTaken(self.endpoint.clone()));
            }
            self.reader = Some(reader);
        }
        self.reader
            .as_ref()
            .ok_or_else(|| HostError::NotTaken(self.endpoint.clone()))
    }
}

impl CardHost for Vpcd {
    fn serve<R>(
        &mut self,
        card: SimCard,
        change: CardChange,
        read: impl FnOnce(Access<'_>) -> R,
    ) -> Result<(R, Vec<Exchange>), HostError> {
        let recorder = Recorder::new(card);
        let log = recorder.log();
        let reader = self.present(Box::new(recorder), change)?;
        let out = read(Access::Reader(ReaderAccess { reader }));
        if change == CardChange::Reinsert
            && let Some(reader) = self.reader.take()
        {
            reader.stop();
        }
        let transcript = log.lock().map(|l| l.clone()).unwrap_or_default();
        Ok((out, transcript))
    }
}

/// Records what the card saw, for the transcript and the privacy audit: as a [`Channel`]
/// in process, as a [`VirtualCard`] behind vpcd (where it forwards the card's own reply,
/// delay and removal included, so that the reader acts exactly as without it). One record
/// format for both: the command, the response or the transport error, and the time.
pub struct Recorder<C> {
    inner: C,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl<C> Recorder<C> {
    /// A recorder in front of `inner`, with an empty transcript.
    pub fn new(inner: C) -> Recorder<C> {
        Recorder {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The transcript so far.
    pub fn transcript(&self) -> Vec<Exchange> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The shared log, readable after the recorder has moved into a reader thread.
    fn log(&self) -> Arc<Mutex<Vec<Exchange>>> {
        Arc::clone(&self.log)
    }

    fn record(&self, apdu: &[u8], response: Result<String, TransportError>, took: Duration) {
        if let Ok(mut log) = self.log.lock() {
            log.push(Exchange {
                command: hex::encode_upper(apdu),
                response,
                micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            });
        }
    }
}

impl<C: Channel> Channel for Recorder<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let started = Instant::now();
        let result = self.inner.transmit(apdu);
        let response = result.as_ref().map(hex::encode_upper).map_err(Clone::clone);
        self.record(apdu, response, started.elapsed());
        result
    }
}

impl<C: VirtualCard> VirtualCard for Recorder<C> {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.respond(apdu).data.unwrap_or_default()
    }

    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let started = Instant::now();
        let reply = self.inner.respond(apdu);
        // A mute card's answer never reaches the checker: the reader gives up.
        let response = if is_mute(reply.delay) {
            Err(TransportError::Timeout)
        } else {
            reply
                .data
                .as_ref()
                .map(hex::encode_upper)
                .ok_or(TransportError::CardRemoved)
        };
        self.record(apdu, response, started.elapsed() + reply.delay);
        reply
    }
}

#[cfg(test)]
mod tests {
    use rclab_emulator::profile;
    use rclab_emulator::transport::vpcd::VirtualCard;

    use super::*;

    fn profile() -> profile::Profile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vectors/profiles/valid/gen1-residence.yaml");
        profile::load(&path).unwrap()
    }

    /// GET CHALLENGE, then a READ BINARY without authentication.
    const APDUS: [&[u8]; 2] = [
        &[0x00, 0x84, 0x00, 0x00, 0x08],
        &[0x00, 0xB0, 0x8A, 0x00, 0x00],
    ];

    fn without_times(transcript: Vec<Exchange>) -> Vec<(String, Result<String, TransportError>)> {
        transcript
            .into_iter()
            .map(|e| (e.command, e.response))
            .collect()
    }

    #[test]
    fn one_recorder_writes_the_same_transcript_as_a_channel_and_as_a_virtual_card() {
        let p = profile();
        let mut as_channel = Recorder::new(p.card());
        let mut as_card = Recorder::new(p.card());
        for apdu in APDUS {
            let answer = Channel::transmit(&mut as_channel, apdu).unwrap();
            assert_eq!(VirtualCard::respond(&mut as_card, apdu).data, Some(answer));
        }
        let transcript = without_times(as_channel.transcript());
        assert_eq!(transcript.len(), APDUS.len());
        assert_eq!(transcript, without_times(as_card.transcript()));
        assert_eq!(transcript[1].0, "00B08A0000");
    }

    #[test]
    fn the_in_process_host_hands_out_a_channel_and_returns_its_transcript() {
        let p = profile();
        let (answers, transcript) = InProcess
            .serve(p.card(), CardChange::Swap, |access| match access {
                Access::Channel(channel) => APDUS
                    .iter()
                    .map(|apdu| channel.transmit(apdu).unwrap())
                    .collect::<Vec<_>>(),
                Access::Reader(_) => panic!("in process, a checker gets the card itself"),
            })
            .unwrap();
        let recorded: Vec<String> = transcript
            .iter()
            .map(|e| e.response.clone().unwrap())
            .collect();
        let answered: Vec<String> = answers.iter().map(hex::encode_upper).collect();
        assert_eq!(recorded, answered);
    }
}
