//! The emulated chip: its compiled image and the engine that answers APDUs.

pub mod engine;
pub mod image;
pub mod knobs;

pub use engine::Card;
pub use image::{
    Access, CardImage, Df, EfId, ElementaryFile, ImageLayout, Knobs, PlainVerify, ReadPastEnd,
    SmHeaderAuthenticated, SmOnPlainCommand, SmReadLength, SmReadShortLe, TlvLengths, TrailingFill,
    UnknownClass,
};
pub use knobs::{KNOBS, KnobSpec};
