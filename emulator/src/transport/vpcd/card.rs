//! What sits in a virtual reader: the [`VirtualCard`] trait every card served through vpcd
//! implements, and the [`Reply`] of one exchange.

use std::time::Duration;

use crate::card::Card;

/// What sits in a virtual reader: anything that answers APDUs and can be reset.
pub trait VirtualCard: Send {
    /// The answer to reset the reader presents for this card (a profile's `reader.atr`):
    /// what pcscd caches while the card stays in the reader, so only a card with the same
    /// ATR may be swapped in behind it ([`super::VirtualReader::swap`]).
    fn atr(&self) -> Vec<u8> {
        super::DEFAULT_ATR.to_vec()
    }
    /// Back to the state after power-up: no session, nothing selected.
    fn reset(&mut self);
    /// Answers one C-APDU; an empty answer means the card has left.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
    /// One exchange as the reader carries it out: what to answer, after how long, and
    /// whether the card leaves the reader. Faulty cards (`crate::fault::SimCard`) override
    /// this so the reader waits without holding its lock and closes the connection when the
    /// card goes. The default answers at once; an empty answer means the card is gone (no
    /// card answers nothing, and an empty vpcd frame would hang pcscd).
    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let data = self.transmit(apdu);
        Reply {
            leave: data.is_empty(),
            data: (!data.is_empty()).then_some(data),
            delay: Duration::ZERO,
        }
    }
}

/// What a [`VirtualCard`] does with one C-APDU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The R-APDU; `None`: the card left before answering.
    pub data: Option<Vec<u8>>,
    /// How long the card takes before the answer (or before it leaves).
    pub delay: Duration,
    /// The card leaves the reader after this exchange.
    pub leave: bool,
}

impl VirtualCard for Card {
    fn reset(&mut self) {
        Card::reset(self);
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        Card::transmit(self, apdu)
    }
}

/// The ATR a reader presents for `card`: the card's own, unless the reader was given
/// another one than [`super::DEFAULT_ATR`] (`rclab serve --atr`), which then wins.
pub(crate) fn presented_atr(reader_atr: &[u8], card: &dyn VirtualCard) -> Vec<u8> {
    if reader_atr == super::DEFAULT_ATR {
        card.atr()
    } else {
        reader_atr.to_vec()
    }
}
