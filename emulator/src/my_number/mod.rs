//! The My Number card platform (個人番号カード, spec notes Part B): a multi-application
//! card whose power-on state is the Issuer Security Domain, with applications selected by
//! AID and a security state per application.
//!
//! - [`apps`]: the ONE table of applications, their EFs and their secrets;
//! - [`image`]: what a `kind: my_number` profile compiles to;
//! - [`engine`]: the card, reading only the table and the image;
//! - [`text_ap`], [`individual_number`], [`cv_cert`]: the text-support AP's data codecs
//!   (its files, the individual number with its check digit, the card-verifiable
//!   certificate), for the card and the checker alike.
//!
//! - [`residence_ap`]: the specified residence card's 在留AP (types `07`/`08`), its data
//!   compiled by the residence compiler, its key delivery and SM knobs;
//! - [`text`]: the text-support AP's own commands (key delivery, counter SM,
//!   self-signature) on top of the engine's plain ones.
//!
//! The JPKI AP is complete (certificates, token info, PINs, signatures); so is the
//! text-support AP when the profile has a `text_ap:` section. The surface AP has its table
//! row (selectable, no EFs yet).

pub mod apps;
pub mod cv_cert;
pub mod engine;
pub mod image;
pub mod individual_number;
pub mod residence_ap;
pub mod text;
pub mod text_ap;

pub use engine::MyNumberCard;
pub use image::{JPKI_ATR, MyNumberImage, MyNumberKnobs};
