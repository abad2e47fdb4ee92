//! The fault layer: small misbehaviours a profile lists under `faults:`, wrapped around
//! the faithful [`Card`](crate::card::Card) by [`SimCard`]. The card engine never knows it
//! is faulty.
//!
//! Each fault is a pure rule over one exchange: it looks at the command (and which file it
//! addresses), and either answers instead of the card, or reshapes the card's answer, or
//! adds time, or takes the card away. The two session faults of the specified card
//! (`reselect_residence_ap`, `skip_sm_counter`) instead change the chip's own state once it
//! has answered — only through the chip's SELECT path or a documented
//! [`Chip`](crate::chip::Chip) hook, never by copying its code. Faults apply in list order;
//! several may act on one exchange. [`SimCard::exchange`] reports what happened without sleeping; the in-process
//! [`Channel`](crate::transport::Channel) simulates time (a stall past ISO 14443-4's
//! longest frame waiting time is a timeout, without the wait) and the vpcd reader really
//! waits.
//!
//! One concern per file:
//! - `spec`: what a profile says — [`Fault`], [`Selector`], their YAML forms, and the check
//!   of a fault against the card it is written for;
//! - `sim`: what the card then does — [`SimCard`] and the [`Outcome`] of one exchange;
//! - `adapters`: how the transports drive a [`SimCard`] (in-process channel, vpcd).

mod adapters;
mod sim;
mod spec;

use std::time::Duration;

pub use sim::{Outcome, SimCard};
pub use spec::{Fault, HexBytes, Selector};

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
