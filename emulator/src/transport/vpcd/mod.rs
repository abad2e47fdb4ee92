//! Client of vsmartcard's `vpcd` driver: puts a card into a virtual reader of pcscd.
//!
//! Wire protocol (see `../shared/vpcd.md` §4): one TCP stream per reader slot; by default
//! the card connects to `127.0.0.1:port`, or to a vpcd elsewhere, or waits for a vpcd in
//! reversed mode to connect (see [`Endpoint`]); every message is a 2-byte big-endian length
//! and its bytes.
//! One-byte messages are control codes (`00` power off, `01` power on, `02` reset, `04` get
//! ATR); anything longer is a C-APDU, answered by the R-APDU. The card never sends an empty
//! frame (that hangs pcscd's reader) and never one over 65 535 bytes.
//!
//! Debian's vpcd writes the length and the payload in two `send()`s; with delayed ACK on
//! our side that costs ~44 ms per APDU. Re-arming `TCP_QUICKACK` before every read brings
//! the round trip to ~0.1 ms.
//!
//! Each reader runs on its own thread with blocking I/O: a handful of readers, one
//! exchange at a time each, no async runtime needed.
//!
//! One concern per module: [`card`] (what sits in a reader), [`reader`] (the reader slot
//! and its thread), `frame` (vpcd's wire frames), [`probe`] (what /proc/net/tcp says
//! about vpcd's sockets), [`lock`] (one process per reader, machine-wide).

pub mod card;
mod frame;
pub mod lock;
pub mod probe;
pub mod reader;

use std::net::SocketAddr;

pub use super::endpoint::{Endpoint, EndpointError};
pub use card::{Reply, VirtualCard};
pub use lock::{Cancelled, port_busy};
pub use reader::VirtualReader;

/// First vpcd port (reader `Virtual PCD 00 00`); slot `n` listens on `BASE_PORT + n`.
pub const BASE_PORT: u16 = 35963;

/// ATR of an ISO 14443-4 Type B card as a PC/SC reader presents it (PC/SC Part 3 §3.1.3.2.3):
/// `3B` direct convention, `88` (TD1 follows, 8 historical bytes), `80` (TD2 follows, T=0),
/// `01` (T=1), historical bytes = ATQB application data `00 00 00 00` (the residence card's
/// is not public) + ATQB protocol info `00 81 81` (106 kbit/s only; max frame 256 bytes,
/// ISO 14443-4 compliant; FWI 8, CID supported) + MBLI `00`, then TCK `09` (XOR of T0…).
pub const DEFAULT_ATR: [u8; 13] = [
    0x3B, 0x88, 0x80, 0x01, 0, 0, 0, 0, 0x00, 0x81, 0x81, 0x00, 0x09,
];

/// PC/SC reader name of a vpcd slot as configured by `scripts/pcsc-up`: Debian's entry
/// (`Virtual PCD`, ports 35963–35964), then `Virtual PCD B`, `C`, … two slots each.
pub fn reader_name(port: u16) -> String {
    let index = port.saturating_sub(BASE_PORT);
    let entry = index / 2;
    let suffix = match entry {
        0 => String::new(),
        n => format!(" {}", char::from(b'A' + (n as u8).min(25))),
    };
    format!("Virtual PCD{suffix} 00 {:02}", index % 2)
}

/// How a reader serves its card.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// Where the vpcd is; its port also names the reader ([`reader_name`]).
    pub endpoint: Endpoint,
    /// The answer to reset the reader presents (pcscd caches it while a card is present).
    pub atr: Vec<u8>,
    /// Log `>>>` / `<<<` lines for every APDU and control code to stderr.
    pub trace: bool,
    /// Transport fault of the reader: take the card out after it answered this many APDUs
    /// (whatever the card). Faults of a card profile (`remove_after`, `remove_during`)
    /// work through [`VirtualCard::respond`] instead.
    pub remove_after: Option<usize>,
}

impl ReaderOptions {
    /// The reader at `port` of the vpcd on this machine.
    pub fn new(port: u16) -> ReaderOptions {
        ReaderOptions::at(Endpoint::local(port))
    }

    /// The reader of the vpcd at `endpoint`, with the default ATR, no trace, no fault.
    pub fn at(endpoint: Endpoint) -> ReaderOptions {
        ReaderOptions {
            endpoint,
            atr: DEFAULT_ATR.to_vec(),
            trace: false,
            remove_after: None,
        }
    }
}

/// Both ends of a vpcd connection, as this process sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// This process's end.
    pub local: SocketAddr,
    /// vpcd's end.
    pub peer: SocketAddr,
}

impl Link {
    /// True when the vpcd runs on this machine: a loopback peer, or one of this machine's
    /// own addresses (a connection to oneself has the same address at both ends).
    pub fn vpcd_is_local(&self) -> bool {
        self.peer.ip().is_loopback() || self.peer.ip() == self.local.ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(local: &str, peer: &str) -> Link {
        Link {
            local: local.parse().unwrap(),
            peer: peer.parse().unwrap(),
        }
    }

    #[test]
    fn a_vpcd_is_local_on_loopback_or_on_one_of_our_own_addresses() {
        assert!(link("127.0.0.1:50000", "127.0.0.2:35963").vpcd_is_local());
        assert!(link("192.0.2.7:50000", "192.0.2.7:35963").vpcd_is_local());
        assert!(!link("192.0.2.7:50000", "192.0.2.8:35963").vpcd_is_local());
    }

    #[test]
    fn the_reversed_reader_of_the_readme_is_named_r() {
        assert_eq!(reader_name(35997), "Virtual PCD R 00 00");
        assert_eq!(reader_name(35998), "Virtual PCD R 00 01");
    }
}
