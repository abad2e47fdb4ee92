//! rclab suite: the reference checker and the conformance tooling built around the
//! emulated residence card.

pub mod checker;
pub mod fuzzing;
pub mod judgement;
pub mod pcsc_channel;
pub mod readers;
pub mod run;
