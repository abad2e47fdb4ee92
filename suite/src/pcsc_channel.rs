//! The reference checker's PC/SC transport: the `pcsc` crate over pcscd, with
//! extended-length buffers, waiting for a card with `SCardGetStatusChange` (no sleeps).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Error, Protocols, ReaderState, Scope, ShareMode, State};
use thiserror::Error;

use rclab_emulator::fault::is_mute;
use rclab_emulator::transport::{Channel, TransportError};

/// Pause before connecting again to a card pcscd shows but cannot power (half a presence poll).
const STALE_CARD_RETRY: Duration = Duration::from_millis(200);

/// Why a PC/SC channel could not be opened or used.
#[derive(Debug, Error)]
pub enum PcscError {
    /// pcscd is not running or not reachable.
    #[error("pcscd not reachable: {0} (start it with scripts/pcsc-up)")]
    NoService(Error),
    /// A reader name that PC/SC cannot take (an interior NUL).
    #[error("reader name {0:?} contains a NUL byte")]
    BadName(String),
    /// No card came into the reader within the wait.
    #[error("no card in reader {reader:?} within {waited:?} (last state {state})")]
    NoCard {
        /// The reader waited on.
        reader: String,
        /// How long it waited.
        waited: Duration,
        /// The reader state pcscd last reported.
        state: String,
    },
    /// A PC/SC call failed: which call, and its error.
    #[error("{0}: {1}")]
    Pcsc(&'static str, Error),
}

/// A connected card in a PC/SC reader.
pub struct PcscChannel {
    /// `None` once disconnected (by `close` or drop).
    card: Option<pcsc::Card>,
    context: Context,
    reader: CString,
    buffer: Vec<u8>,
    /// A transmit found the card gone.
    card_left: bool,
    /// The card's ATR, as the reader reported it.
    pub atr: Vec<u8>,
}

/// Waits up to `timeout` until pcscd reports a card in `reader`; returns the context and
/// the card's ATR. (What a process checker is started after, so that it finds the card.)
pub fn wait_for_card(
    reader: &str,
    timeout: Duration,
) -> Result<(Context, CString, Vec<u8>), PcscError> {
    let deadline = Instant::now() + timeout;
    let context = loop {
        match Context::establish(Scope::User) {
            Ok(c) => break c,
            Err(Error::NoService | Error::ServiceStopped) if Instant::now() < deadline => {
                // pcscd is starting: nothing to wait on but time.
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(PcscError::NoService(e)),
        }
    };
    let name = CString::new(reader).map_err(|_| PcscError::BadName(reader.to_owned()))?;
    let mut states = [ReaderState::new(name.clone(), State::UNAWARE)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match context.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(Error::Timeout) => {}
            // The reader is not (yet) known to pcscd; its list changes are announced
            // through the special \\?PnP?\Notification reader, which we do not track.
            Err(Error::UnknownReader) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(PcscError::Pcsc("SCardGetStatusChange", e)),
        }
        let state = states[0].event_state();
        if state.contains(State::PRESENT) && !state.contains(State::MUTE) {
            let atr = states[0].atr().to_vec();
            return Ok((context, name, atr));
        }
        if left.is_zero() {
            return Err(PcscError::NoCard {
                reader: reader.to_owned(),
                waited: timeout,
                state: format!("{state:?}"),
            });
        }
        states[0].sync_current_state();
    }
}

impl PcscChannel {
    /// Waits up to `timeout` for a card in `reader`, then connects (shared, T=1 or T=0).
    ///
    /// A card that pcscd still shows but cannot power is retried until `timeout`: right after
    /// one card left and another arrived (one `rclab serve` following another), pcscd can
    /// report the old card as present until its next presence poll, and connecting to that
    /// one fails with "unpowered" or "removed" although the new card reads a moment later.
    pub fn connect(reader: &str, timeout: Duration) -> Result<PcscChannel, PcscError> {
        let deadline = Instant::now() + timeout;
        let (context, name, atr, card) = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let (context, name, atr) = wait_for_card(reader, remaining)?;
            match context.connect(&name, ShareMode::Shared, Protocols::T1 | Protocols::T0) {
                Ok(card) => break (context, name, atr, card),
                Err(
                    Error::UnpoweredCard
                    | Error::RemovedCard
                    | Error::ResetCard
                    | Error::NoSmartcard
                    | Error::UnresponsiveCard,
                ) if Instant::now() + STALE_CARD_RETRY < deadline => {
                    std::thread::sleep(STALE_CARD_RETRY);
                }
                Err(e) => return Err(PcscError::Pcsc("SCardConnect", e)),
            }
        };
        Ok(PcscChannel {
            card: Some(card),
            context,
            reader: name,
            card_left: false,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
            atr,
        })
    }

    /// Powers the card down and up again (`SCardReconnect` with unpower): a fresh chip
    /// state for the next read, without waiting for a new card.
    pub fn power_cycle(&mut self) -> Result<(), PcscError> {
        self.card
            .as_mut()
            .ok_or(PcscError::Pcsc("SCardReconnect", Error::InvalidHandle))?
            .reconnect(
                ShareMode::Shared,
                Protocols::T1 | Protocols::T0,
                pcsc::Disposition::UnpowerCard,
            )
            .map_err(|e| PcscError::Pcsc("SCardReconnect", e))
    }

    /// Disconnects and powers the card down, so that the next reader starts from power-up.
    /// (`SCARD_RESET_CARD` would also do, but a reset that meets a card that just left makes
    /// pcscd report the reader empty even after a new card arrives.)
    ///
    /// After the card left mid-exchange, it first waits (up to 3 s) until pcscd has seen the
    /// reader empty: pcscd notices a vanished card only at its next presence poll (every
    /// 400 ms), and a disconnect before that leaves the reader stuck: the next card there is
    /// never powered on.
    pub fn close(mut self) {
        self.disconnect();
    }

    fn disconnect(&mut self) {
        let Some(card) = self.card.take() else { return };
        if self.card_left {
            let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let _ = self
                    .context
                    .get_status_change(Duration::from_millis(500), &mut states);
                if states[0].event_state().contains(State::EMPTY) {
                    break;
                }
                states[0].sync_current_state();
            }
            let _ = card.disconnect(Disposition::LeaveCard);
        } else {
            let _ = card.disconnect(Disposition::UnpowerCard);
        }
    }
}

/// Dropping a channel disconnects the same careful way (the `pcsc` crate's own drop would
/// reset the card).
impl Drop for PcscChannel {
    fn drop(&mut self) {
        self.disconnect();
    }
}

impl Channel for PcscChannel {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let result = self.exchange(apdu);
        if result == Err(TransportError::CardRemoved) {
            self.card_left = true;
        }
        result
    }
}

impl PcscChannel {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some(card) = self.card.as_ref() else {
            return Err(TransportError::CardRemoved);
        };
        let started = Instant::now();
        let result = card.transmit(apdu, &mut self.buffer);
        // A contactless reader gives up after ISO 14443-4's longest frame wait; vpcd waits
        // forever, so an answer that came later counts as none, as it would on a real reader.
        if is_mute(started.elapsed()) {
            return Err(TransportError::Timeout);
        }
        match result {
            // vpcd lost the card while pcscd waited for its answer (no real card answers
            // with nothing: even an error is a status word).
            Ok([]) => Err(TransportError::CardRemoved),
            Ok(response) => Ok(response.to_vec()),
            // pcscd answers NOT_TRANSACTED when the card vanishes in the middle of an exchange.
            Err(
                Error::RemovedCard
                | Error::NoSmartcard
                | Error::ResetCard
                | Error::UnpoweredCard
                | Error::NotTransacted,
            ) => Err(TransportError::CardRemoved),
            Err(Error::Timeout) => Err(TransportError::Timeout),
            Err(e) => Err(TransportError::Other(format!("SCardTransmit: {e}"))),
        }
    }
}
