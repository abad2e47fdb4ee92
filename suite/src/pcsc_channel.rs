//! The reference checker's PC/SC transport: the `pcsc` crate over pcscd, with
//! extended-length buffers, waiting for a card with `SCardGetStatusChange` (no sleeps).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Error, Protocols, ReaderState, Scope, ShareMode, State};
use thiserror::Error;

use rclab_emulator::transport::{Channel, TransportError};

#[derive(Debug, Error)]
pub enum PcscError {
    #[error("pcscd not reachable: {0} (start it with scripts/pcsc-up)")]
    NoService(Error),
    #[error("reader name {0:?} contains a NUL byte")]
    BadName(String),
    #[error("no card in reader {reader:?} within {waited:?} (last state {state})")]
    NoCard {
        reader: String,
        waited: Duration,
        state: String,
    },
    #[error("{0}: {1}")]
    Pcsc(&'static str, Error),
}

/// A connected card in a PC/SC reader.
pub struct PcscChannel {
    card: pcsc::Card,
    buffer: Vec<u8>,
    pub atr: Vec<u8>,
}

impl PcscChannel {
    /// Waits up to `timeout` for a card in `reader`, then connects (shared, T=1 or T=0).
    pub fn connect(reader: &str, timeout: Duration) -> Result<PcscChannel, PcscError> {
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
                break;
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
        let card = context
            .connect(&name, ShareMode::Shared, Protocols::T1 | Protocols::T0)
            .map_err(|e| PcscError::Pcsc("SCardConnect", e))?;
        let atr = states[0].atr().to_vec();
        Ok(PcscChannel {
            card,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
            atr,
        })
    }

    /// Powers the card down and up again (`SCardReconnect` with unpower): a fresh chip
    /// state for the next read, without waiting for a new card.
    pub fn power_cycle(&mut self) -> Result<(), PcscError> {
        self.card
            .reconnect(
                ShareMode::Shared,
                Protocols::T1 | Protocols::T0,
                pcsc::Disposition::UnpowerCard,
            )
            .map_err(|e| PcscError::Pcsc("SCardReconnect", e))
    }

    /// Disconnects and powers the card down, so that the next reader starts from power-up.
    /// (`SCARD_RESET_CARD` would also do, but when the reset meets a card that just left,
    /// pcscd marks the reader empty until it sees a new card, which vpcd may never report.)
    pub fn close(self) {
        let _ = self.card.disconnect(Disposition::UnpowerCard);
    }
}

impl Channel for PcscChannel {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.card.transmit(apdu, &mut self.buffer) {
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
