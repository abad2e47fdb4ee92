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

pub mod data;
mod judge;
mod objects;
pub mod pki;
mod read;
mod stop;

use std::time::SystemTime;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

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

impl Checker<'_> {
    /// Runs the whole check; never panics, whatever the card answers.
    pub fn check(&self, channel: &mut dyn Channel, card_number: &str) -> Report {
        let mut data = CardData::default();
        let rng = match self.options.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_rng(&mut rand::rng()),
        };
        let mut card = read::CardReader::new(channel, rng, self.options.max_response);
        let (verdict, detail) = match judge::run(
            &mut card,
            self.trust,
            self.options.at,
            card_number,
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
