//! How a reader talks to a card: the [`Channel`] trait, the in-process channel and the
//! [`Tap`] that records every exchange with its timing.

pub mod endpoint;
pub mod reader_layer;
pub mod vpcd;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::card::Card;

/// A transport failure, as opposed to a status word from the card.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportError {
    #[error("card removed")]
    CardRemoved,
    #[error("timed out")]
    Timeout,
    #[error("response shorter than a status word")]
    NoStatusWord,
    #[error("transport: {0}")]
    Other(String),
}

/// Anything that can carry an APDU to a card and bring back its answer.
pub trait Channel {
    /// Sends one C-APDU, returns the R-APDU (data ‖ SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl Channel for Card {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(Card::transmit(self, apdu))
    }
}

impl<C: Channel + ?Sized> Channel for &mut C {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}

/// One command and what came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// C-APDU, upper-case hex.
    pub command: String,
    /// R-APDU, upper-case hex, or the transport error.
    pub response: Result<String, TransportError>,
    /// Wall time of the exchange in microseconds.
    pub micros: u64,
}

/// Records every exchange passing through a channel.
pub struct Tap<C> {
    inner: C,
    transcript: Vec<Exchange>,
}

impl<C: Channel> Tap<C> {
    pub fn new(inner: C) -> Tap<C> {
        Tap {
            inner,
            transcript: Vec::new(),
        }
    }

    pub fn transcript(&self) -> &[Exchange] {
        &self.transcript
    }

    pub fn into_parts(self) -> (C, Vec<Exchange>) {
        (self.inner, self.transcript)
    }
}

impl<C: Channel> Channel for Tap<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let start = Instant::now();
        let result = self.inner.transmit(apdu);
        self.transcript.push(Exchange {
            command: hex::encode_upper(apdu),
            response: result.as_ref().map(hex::encode_upper).map_err(Clone::clone),
            micros: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        });
        result
    }
}
