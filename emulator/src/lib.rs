//! rclab emulator: a virtual residence-card chip (在留カード / 特別永住者証明書), both
//! generations, and the My Number card platform (個人番号カード: its JPKI AP), built from
//! YAML card profiles, plus the protocol codec the reference checker shares.
//!
//! User documentation (commands, profile format, limits) is in the repository's README;
//! these crate docs map the code for someone changing it.
//!
//! # How the parts fit
//!
//! - [`protocol`]: the codec both sides share — [`protocol::apdu`] bytes,
//!   [`protocol::command`] (a C-APDU parsed once into a typed command, with the status-word
//!   precedence the engine tests pin), [`protocol::status`] (the one status-word type),
//!   [`protocol::tlv`], [`protocol::sm`], [`protocol::auth`], [`protocol::crypto`],
//!   [`protocol::signature`], and [`protocol::layout`], the one table of which EFs each
//!   generation × card type holds (DF, SFI, tags, sizes, access, signed parts).
//! - The My Number card platform's codecs (spec notes `my-number-platform.md`):
//!   [`protocol::counter_sm`] (the counter-IV secure messaging of the text AP and, by best
//!   evidence, of the specified residence card, with a CMAC variant), [`protocol::key_delivery`]
//!   (SET SESSION KEY and the delivery public-key formats), and [`my_number`] (the individual
//!   number, the text AP's files, the card-verifiable certificate) — pure functions both the
//!   card and the checker call.
//! - [`profile`]: a YAML card profile ([`profile::schema`], read by `profile/load.rs`, with
//!   the libyaml pre-scan of `profile/scan.rs` bounding aliases and depth) compiled by
//!   `profile/compile.rs` into a [`card::CardImage`] by walking the layout's rows.
//! - [`card`]: the faithful residence chip — the [`card::CardImage`] (bytes per EF,
//!   [`card::Knobs`]) and the engine ([`card::Card`]) that answers one typed command at a
//!   time; [`card::knobs`] the table of every open behaviour (both platforms).
//! - [`my_number`]: the My Number card platform — [`my_number::apps`] (the one table of
//!   applications, their EFs and secrets), [`my_number::MyNumberImage`] (what a
//!   `card.kind: my_number` profile compiles to, by `profile/my_number.rs`) and
//!   [`my_number::MyNumberCard`] (the engine: ISD power-on state, applications by AID,
//!   security state per application, VERIFY counters, COMPUTE DIGITAL SIGNATURE), with the
//!   applications that speak their own protocol in their own modules:
//!   [`my_number::text`] (the text-support AP's key delivery, counter SM and
//!   self-signature; its files from `profile/text_ap.rs`) and [`my_number::residence_ap`]
//!   (the specified residence card's 在留AP, `card.kind: specified_residence`, its data
//!   compiled by the residence compiler in `profile/residence_ap.rs`).
//! - [`chip`]: either kind of chip — [`chip::ChipImage`] (what a [`profile::Profile`]
//!   carries, [`profile::Profile::chip_image`]) and [`chip::Chip`] (the running engine), so
//!   everything above the card serves both without knowing which.
//! - [`fault`]: what a profile lists under `faults:` (`fault/spec.rs`: each [`fault::Fault`]
//!   and the [`fault::Selector`] naming the commands it hits) and the runtime that wraps the
//!   faithful card (`fault/sim.rs`: [`fault::SimCard`], around a [`chip::Chip`] of either
//!   kind; `fault/adapters.rs` plugs it into both transports). The engine never knows a
//!   card is faulty. Selectors naming residence DFs/EFs never match a My Number chip (its
//!   residence view has none), so a My Number profile may not use them.
//! - [`transport`]: how a reader reaches a card — the [`transport::Channel`] trait (in
//!   process), the [`transport::Tap`] recording every [`transport::Exchange`], and
//!   [`transport::vpcd`], which serves any [`transport::vpcd::VirtualCard`] to pcscd
//!   through a vsmartcard vpcd slot ([`transport::endpoint`] names the slot).
//! - [`reader`]: the reader side of the protocol, written once ([`reader::Session`]:
//!   SELECT, authenticate, VERIFY, plain and SM reads, chunking, GET RESPONSE), used by the
//!   reference checker in `rclab-suite`, its fuzz targets, benches and tests.
//! - [`verdict`]: the closed vocabulary of verdicts that profiles expect and checkers give.
//! - [`files`]: bounded reads of every file a user names (no FIFO hangs, capped sizes).
//!
//! The checker and the runner live in the `rclab-suite` crate: its checker reads a card
//! through a [`transport::Channel`] with [`reader::Session`], and its runner serves each
//! profile's [`fault::SimCard`] in process or behind vpcd and judges the verdict against
//! the profile's expectation.
//!
//! # How to add …
//!
//! **A card type** (with a known protocol):
//! 1. `emulator/src/protocol/layout.rs`: a [`protocol::layout::CardType`] variant (its `C1`
//!    code in `CardType::code`/`from_code`) and its [`protocol::layout::Layout`] rows per
//!    generation, an arm of `Layout::of` and an entry of `LAYOUTS`. The compiler, engine,
//!    checker, audit and fault selectors read the rows from there.
//! 2. `emulator/src/profile/schema.rs`: any new field the card carries (and its element in
//!    the layout rows).
//! 3. `suite/src/run/data.rs`: the card kind in the checkers' reported data (`CardKind`)
//!    and the `card_type` enum of `suite/schema/rclab.verdict.v2.json`, if checkers may
//!    report it.
//! 4. `vectors/profiles/valid/`: a valid profile per generation (they are loaded by
//!    `emulator/tests/card/profiles_load.rs` and run by the suite's conformance tests).
//!
//! **An application of the My Number card** (or data for one whose row exists): its row in
//! `emulator/src/my_number/apps.rs` (AID, EFs with [`my_number::apps::Content`], secrets),
//! the content builder in `profile/my_number.rs` (`content`), the profile fields in
//! `profile/schema.rs` (like [`profile::schema::JpkiDoc`]); the engine needs nothing new
//! for files and PINs; a new command is a branch of `MyNumberCard::execute`.
//!
//! **A fault**:
//! 1. `emulator/src/fault/spec.rs`: the [`fault::Fault`] variant, its YAML form and its
//!    check against the card.
//! 2. `emulator/src/fault/sim.rs`: what it does to an exchange (the match there is
//!    exhaustive, so the compiler points at it).
//! 3. `emulator/tests/card/faults.rs` for its behaviour, and a profile under
//!    `vectors/profiles/corrupted/` that uses it; its YAML form in the README's list of
//!    faults (section on the fault layer).
//!
//! **A report format**: see the `rclab-suite` crate docs (`suite/src/run/report/`).
//!
//! **A transport**: a card-side transport is a [`transport::Channel`] (in process) or a
//! [`transport::vpcd::VirtualCard`] host (`emulator/src/transport/`); the runner side is a
//! `CardHost` implementation in `suite/src/run/host.rs` — see the `rclab-suite` crate docs.

pub mod card;
pub mod chip;
pub mod fault;
pub mod files;
pub mod my_number;
pub mod profile;
pub mod protocol;
pub mod reader;
pub mod transport;
pub mod verdict;
