//! rclab emulator: a virtual residence-card chip (在留カード / 特別永住者証明書), both
//! generations, built from YAML card profiles, plus the protocol codec the reference
//! checker shares.

pub mod card;
pub mod fault;
pub mod files;
pub mod profile;
pub mod protocol;
pub mod reader;
pub mod transport;
pub mod verdict;
