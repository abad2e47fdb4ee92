//! The reference checker: a strict reader of both card generations that reads every EF,
//! verifies the check code and its certificate chain, and gives a normalised verdict.
//!
//! It talks to the card only through [`Channel`], so the same code reads an in-process
//! card, a card behind pcscd, or a malicious card in a fuzzer.
//!
//! | module | concern |
//! |---|---|
//! | `read` (private) | what the checker reads: the EFs it names, the per-generation description, the card conversation over [`rclab_emulator::reader::Session`] and what each reader failure means as a verdict |
//! | `judge` (private) | the verdict: which objects must be there, the signature, the certificate chain |
//! | `objects` (private) | strict BER-TLV helpers over an EF's bytes |
//! | `stop` (private) | the early verdict a failed step ends the check with |
//! | [`data`] | what the checker read, as reported |
//! | [`pki`] | certificates and the trust store |
//! | [`my_number`] | the My Number card's checker (JPKI: chain, PIN, a signed challenge) |
//! | `specified` (private) | the specified residence card's 在留AP (key delivery, its SM, VERIFY), read into the residence judge |
//!
//! Which checker reads a card: [`CardSecret`] (the card number of a residence card, the
//! PIN of a My Number card) picks it; [`Checker::check_card`] runs it. The card number
//! opens a specified residence card (types 07/08) too: a card with no card type at its MF
//! is tried for the 在留AP.

pub mod data;
mod judge;
pub mod my_number;
mod objects;
pub mod pki;
mod read;
mod specified;
mod stop;

use std::time::SystemTime;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use rclab_emulator::protocol::key_delivery::DeliveryPublicKey;
use rclab_emulator::transport::Channel;
use rclab_emulator::verdict::Verdict;

pub use data::CardData;
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
    /// The delivery public key a specified card's session key is sent under (`--delivery-key`);
    /// `None` is the bundled TEST key (`vectors/pki/mynumber/delivery.pub.raw`).
    pub delivery_key: Option<DeliveryPublicKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_response: None,
            at: SystemTime::now(),
            seed: None,
            delivery_key: None,
        }
    }
}

/// The checker's conclusion and what it read on the way.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What the checker concluded.
    pub verdict: Verdict,
    /// One line: what decided the verdict.
    pub detail: String,
    /// What it read from the card, for the data report.
    pub data: CardData,
}

/// Reads and judges one card.
pub struct Checker<'a> {
    /// The roots a signer's certificate must chain to.
    pub trust: &'a TrustStore,
    /// Card number, clock and other choices of this read.
    pub options: Options,
}

/// What the person at the counter types for the card, which also says which card it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardSecret<'a> {
    /// A residence card and its printed card number.
    CardNumber(&'a str),
    /// A My Number card and its JPKI authentication PIN.
    Pin(&'a str),
}

impl Checker<'_> {
    /// The residence checker with a card number, the My Number checker with a PIN.
    pub fn check_card(&self, channel: &mut dyn Channel, secret: CardSecret<'_>) -> Report {
        match secret {
            CardSecret::CardNumber(number) => self.check(channel, number),
            CardSecret::Pin(pin) => self.check_my_number(channel, pin),
        }
    }

    /// The My Number checker ([`my_number`]): the JPKI authentication certificate, its
    /// chain, the PIN and a signed fresh challenge; never panics, whatever the card answers.
    pub fn check_my_number(&self, channel: &mut dyn Channel, pin: &str) -> Report {
        let mut rng = self.rng();
        let mut mn = my_number::MyNumberData::default();
        let (verdict, detail) =
            match my_number::run(channel, self.trust, self.options.at, pin, &mut rng, &mut mn) {
                Ok(detail) => (Verdict::GENUINE, detail),
                Err(stop::Stop(verdict, detail)) => (verdict, detail),
            };
        let data = CardData {
            my_number: Some(mn),
            ..CardData::default()
        };
        Report {
            verdict,
            detail,
            data,
        }
    }

    fn rng(&self) -> ChaCha20Rng {
        match self.options.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_rng(&mut rand::rng()),
        }
    }

    /// Runs the whole check; never panics, whatever the card answers.
    pub fn check(&self, channel: &mut dyn Channel, card_number: &str) -> Report {
        let mut data = CardData::default();
        let rng = self.rng();
        let mut card = read::CardReader::new(channel, rng, self.options.max_response);
        let bundled;
        let delivery_key = match &self.options.delivery_key {
            Some(key) => key,
            None => match specified::test_delivery_key() {
                Ok(key) => {
                    bundled = key;
                    &bundled
                }
                Err(e) => {
                    return Report {
                        verdict: Verdict::with(
                            rclab_emulator::verdict::VerdictKind::Unreadable,
                            rclab_emulator::verdict::Reason::MalformedData,
                        ),
                        detail: format!("the bundled TEST delivery key: {e}"),
                        data,
                    };
                }
            },
        };
        let (verdict, detail) = match judge::run(
            &mut card,
            self.trust,
            self.options.at,
            card_number,
            delivery_key,
            &mut data,
        ) {
            Ok(detail) => (Verdict::GENUINE, detail),
            Err(stop::Stop(verdict, detail)) => (verdict, detail),
        };
        Report {
            verdict,
            detail,
            data,
        }
    }
}
