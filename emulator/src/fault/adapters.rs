//! How the transports drive a [`SimCard`]: in process through [`Channel`] (time simulated)
//! and behind vpcd through [`VirtualCard`] (time really spent).

use super::{SimCard, is_mute};
use crate::transport::reader_layer;
use crate::transport::vpcd::{Reply, VirtualCard};
use crate::transport::{Channel, TransportError};

impl SimCard {
    /// What the reader answers itself ([`reader_layer::answer`]); nothing once the card
    /// has left the field, so the exchange reports the removal as for any other APDU.
    fn reader_answer(&self, apdu: &[u8]) -> Option<Vec<u8>> {
        if self.removed() {
            return None;
        }
        reader_layer::answer(&self.image().reader, self.power_ups(), apdu)
    }
}

/// In-process: time is simulated. A delay up to [`FRAME_WAIT_LIMIT`](super::FRAME_WAIT_LIMIT) passes unnoticed; a
/// longer one is a timeout, as a contactless reader would report it.
impl Channel for SimCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        // The reader answers its own pseudo-APDUs; the card never sees them.
        if let Some(answer) = self.reader_answer(apdu) {
            return Ok(answer);
        }
        let outcome = self.exchange(apdu);
        self.simulate_wait(outcome.delay);
        if is_mute(outcome.delay) {
            return Err(TransportError::Timeout);
        }
        outcome.reply.ok_or(TransportError::CardRemoved)
    }
}

/// Behind vpcd the card really takes its time, and leaving closes the reader's connection.
///
/// The reader layer ([`reader_layer`]) answers `FF CA` and gives the ATR, as a PC/SC
/// reader does, before the card (and its faults) see anything.
impl VirtualCard for SimCard {
    fn atr(&self) -> Vec<u8> {
        self.image().reader.atr.clone()
    }

    fn reset(&mut self) {
        SimCard::reset(self);
    }

    /// For wrappers that only forward `transmit`: waits here, and answers nothing once the
    /// card has left (which the reader takes as removal).
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if let Some(answer) = self.reader_answer(apdu) {
            return answer;
        }
        let outcome = self.exchange(apdu);
        std::thread::sleep(outcome.delay);
        outcome.reply.unwrap_or_default()
    }

    fn respond(&mut self, apdu: &[u8]) -> Reply {
        if let Some(answer) = self.reader_answer(apdu) {
            return Reply {
                data: Some(answer),
                ..Reply::default()
            };
        }
        let outcome = self.exchange(apdu);
        Reply {
            leave: outcome.leaves || outcome.reply.is_none(),
            data: outcome.reply,
            delay: outcome.delay,
        }
    }
}
