//! `rclab probe`: learn a card's open behaviours (the emulator's knob table,
//! [`rclab_emulator::card::knobs::KNOBS`]) from the card itself, without keeping its
//! personal data and without risking it.
//!
//! The battery is data: [`battery::PROBES`] lists every probe with the knob paths it
//! decides, whether it needs the card number, its [`Risk`] and the APDUs it sends; every
//! knob row a card shows is decided by some probe or listed in [`battery::UNDECIDABLE`]
//! with the reason (a test holds the table to that). A probe that sees an answer outside
//! every value of a knob reports [`Decision::Unknown`] with what it saw, never a guess.
//!
//! On a specified card (`07`/`08`: a My Number card with the 在留AP) the battery probes the
//! 在留AP's rows only ([`ProbedCard::shows`]): the reference checker's read tells which
//! reading of each open question the card took (`battery/residence.rs`).
//!
//! What comes out is a [`Report`]: a [`Finding`] per knob with its evidence (APDU headers,
//! status words, lengths and layouts — never file contents, the card number or the PUPI),
//! rendered by [`fragment`] as a profile overlay (`knobs:`, `reader:` …) that loads under
//! `extends:` of a valid profile. [`record`] (`rclab record`) reads a whole card into a
//! replayable profile, or into a shareable TEST card with `--redact`.

pub mod battery;
pub mod fragment;
pub mod record;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use rclab_emulator::card::knobs::{KNOBS, KnobSpec, knob};
use rclab_emulator::chip::ChipKind;
use rclab_emulator::fault::SimCard;
use rclab_emulator::protocol::crypto::card_number_key;
use rclab_emulator::protocol::key_delivery::DeliveryPublicKey;
use rclab_emulator::protocol::layout::{Access, CardType, Df, EfRow, Layout};
use rclab_emulator::protocol::{Generation, Response, Status};
use rclab_emulator::reader::{ReadMode, ReaderError, Session};
use rclab_emulator::transport::{Channel, TransportError};

use crate::checker::data::ResidenceApSettings;
use crate::pcsc_channel::PcscChannel;

/// A card the probe can talk to and power-cycle: each probe starts from a fresh chip, so
/// one probe's session never colours another's answers.
pub trait ProbeTarget: Channel {
    /// Powers the card down and up (or resets it): no session, MF current.
    fn power_cycle(&mut self) -> Result<(), TransportError>;
    /// The ATR the reader reports for the card, when the transport has one.
    fn atr(&self) -> Option<Vec<u8>>;
}

impl ProbeTarget for PcscChannel {
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        PcscChannel::power_cycle(self).map_err(|e| TransportError::Other(e.to_string()))
    }

    fn atr(&self) -> Option<Vec<u8>> {
        Some(self.atr.clone())
    }
}

/// An emulated card in process: its reader layer's ATR, as `rclab serve` presents it.
impl ProbeTarget for SimCard {
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        SimCard::reset(self);
        Ok(())
    }

    fn atr(&self) -> Option<Vec<u8>> {
        Some(self.image().reader.atr.clone())
    }
}

/// How much a probe can cost the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "level", content = "flag")]
pub enum Risk {
    /// Reads of the free files and the reader's pseudo-APDUs: what any app does on a tap.
    ReadOnly,
    /// MUTUAL AUTHENTICATE and VERIFY with the right card number, then reads: what every
    /// checker does.
    Authenticated,
    /// Something a real card might count against a retry counter or keep as state (a wrong
    /// VERIFY). Runs only with `--risky <flag>`; whether real cards count it is unknown.
    Risky(&'static str),
}

impl Risk {
    /// The words the README and the fragment's header use.
    pub fn label(self) -> String {
        match self {
            Risk::ReadOnly => "read-only".into(),
            Risk::Authenticated => "authenticated read-only".into(),
            Risk::Risky(flag) => format!("risky (only with --risky {flag})"),
        }
    }
}

/// One answer a probe saw: what it sent (header or description, never personal data),
/// the status word and how many data bytes came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// The APDU (hex) or, for one that carries secrets, its name.
    pub sent: String,
    /// The status word (`62 82`), or the transport failure.
    pub status: String,
    /// Data bytes in the answer.
    pub length: usize,
}

impl Seen {
    fn of(sent: impl Into<String>, answer: &Result<Response, ReaderError>) -> Seen {
        match answer {
            Ok(r) => Seen {
                sent: sent.into(),
                status: r.status.to_string(),
                length: r.data.len(),
            },
            Err(e) => Seen {
                sent: sent.into(),
                status: e.to_string(),
                length: 0,
            },
        }
    }

    /// A line of evidence: `00 B0 8B 00 07 → 6 bytes, 62 82`.
    pub fn line(&self) -> String {
        format!("{} → {} bytes, {}", self.sent, self.length, self.status)
    }
}

/// What a probe concluded about one knob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Decision {
    /// The card shows this value of the knob.
    Value(&'static str),
    /// The card shows no difference between the values (a face layout on a card with a
    /// photo, a text encoding of ASCII text): every value reproduces it.
    NotShown(String),
    /// The card answered outside every value of the knob, or the probe could not finish.
    Unknown(String),
    /// The probe did not run (no card number, a risky probe without its flag).
    NotProbed(String),
}

/// A knob and what the probes found about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The knob's YAML path.
    pub path: &'static str,
    /// The conclusion.
    pub decision: Decision,
    /// What was seen, in order.
    pub evidence: Vec<Seen>,
    /// How it was read from the evidence, in words.
    pub why: String,
}

impl Finding {
    /// The decided value, if any.
    pub fn value(&self) -> Option<&'static str> {
        match self.decision {
            Decision::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// One probe that ran, or why it did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeRun {
    /// The probe's name.
    pub name: &'static str,
    /// APDUs it sent (`None` when it did not run).
    pub apdus: Option<usize>,
    /// Why it did not run.
    pub skipped: Option<String>,
}

/// What `rclab probe` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The reader (or profile) probed.
    pub target: String,
    /// The card's generation, from MF/EF02 `C1`.
    pub generation: Option<u8>,
    /// The card type, from MF/EF02 `C1`.
    pub card_type: Option<CardType>,
    /// The ATR the reader reported (hex), when it is a valid one.
    pub atr: Option<String>,
    /// Whether the card number was given (it is never kept).
    pub with_card_number: bool,
    /// Every probe, run or not.
    pub probes: Vec<ProbeRun>,
    /// One finding per knob the card shows (every row when the generation is unknown).
    pub findings: Vec<Finding>,
}

impl Report {
    /// The finding about `path`.
    pub fn finding(&self, path: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.path == path)
    }

    /// APDUs sent in all.
    pub fn apdus(&self) -> usize {
        self.probes.iter().filter_map(|p| p.apdus).sum()
    }
}

/// How to probe: the card number (for the authenticated probes), the risky probes
/// allowed, the seed of the reader's random numbers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The number printed on the card; without it only the free files are probed.
    pub card_number: Option<String>,
    /// Flags of risky probes the user allowed (`failed-verify`).
    pub risky: Vec<String>,
    /// Seed of RND.IFD and K.IFD (default: from the operating system).
    pub seed: Option<u64>,
    /// The delivery public key a specified card's session keys are sent under
    /// (`--delivery-key`); `None` is the bundled TEST key, as for the reference checker.
    pub delivery_key: Option<DeliveryPublicKey>,
}

/// The card as far as the probe has told it: which rows of [`KNOBS`] it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbedCard {
    /// The card type did not read: every row is shown (and most end unknown).
    Unknown,
    /// A residence card of this generation (MF/EF02 `C1`).
    Residence(Generation),
    /// A specified card (`07`/`08`): a My Number card with the 在留AP.
    Specified,
}

impl ProbedCard {
    /// True when the probe reports on `knob` for this card: a residence card's rows of its
    /// generation; on a specified card the 在留AP's rows (`platform.residence_*`) only —
    /// the plain My Number platform's rows (`platform.mf_select` …) are not probed yet.
    pub fn shows(self, knob: &KnobSpec) -> bool {
        match self {
            ProbedCard::Unknown => true,
            ProbedCard::Residence(generation) => {
                knob.applies_to_profile(ChipKind::Residence, generation)
            }
            ProbedCard::Specified => {
                knob.applies_to_profile(ChipKind::SpecifiedResidence, Generation::Second)
                    && knob.is_residence_ap()
            }
        }
    }

    /// In words, for a probe that does not apply.
    fn name(self) -> String {
        match self {
            ProbedCard::Unknown => "a card of unknown type".into(),
            ProbedCard::Residence(g) => format!("generation {}", g.number()),
            ProbedCard::Specified => "a specified card (its 在留AP's rows only)".into(),
        }
    }
}

/// A channel that counts what passes through it.
struct Counting<'a> {
    target: &'a mut dyn ProbeTarget,
    sent: usize,
}

impl Channel for Counting<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent += 1;
        self.target.transmit(apdu)
    }
}

/// What a probe works with: the reader session over the card, the card number, the card
/// type once read.
pub struct Ctx<'a> {
    session: Session<Counting<'a>>,
    number: Option<String>,
    rng: ChaCha20Rng,
    layout: Option<&'static Layout>,
    /// Whether the card writes long TLV lengths (`knobs.tlv_lengths`), once probed.
    long_lengths: Option<bool>,
    /// The card has the 在留AP (a specified card), once the card type was read.
    specified: bool,
    /// The delivery key given (`None`: the bundled TEST key).
    delivery_key: Option<DeliveryPublicKey>,
    /// What the 在留AP took in the reference checker's read, once probed.
    residence_ap: Option<ResidenceApSettings>,
}

/// The hex of `bytes`, spaced (`00 B0 8B 00 07`).
pub(crate) fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl<'a> Ctx<'a> {
    fn new(target: &'a mut dyn ProbeTarget, options: &Options) -> Ctx<'a> {
        let rng = match options.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_rng(&mut rand::rng()),
        };
        Ctx {
            session: Session::new(Counting { target, sent: 0 }, Generation::First),
            number: options.card_number.clone(),
            rng,
            layout: None,
            long_lengths: None,
            specified: false,
            delivery_key: options.delivery_key.clone(),
            residence_ap: None,
        }
    }

    /// What the probe knows of the card so far.
    pub fn card(&self) -> ProbedCard {
        match self.layout {
            _ if self.specified => ProbedCard::Specified,
            Some(l) => ProbedCard::Residence(l.generation),
            None => ProbedCard::Unknown,
        }
    }

    /// The card's layout, once the card type was read.
    pub fn layout(&self) -> Option<&'static Layout> {
        self.layout
    }

    /// A fresh chip: power cycle, no session key on either side.
    pub fn fresh(&mut self) -> Result<(), String> {
        self.session.set_session_key(None);
        self.session
            .channel_mut()
            .target
            .power_cycle()
            .map_err(|e| format!("power cycle: {e}"))
    }

    /// One raw exchange (no `6C`/`61` handling), and its evidence line.
    pub fn raw(&mut self, apdu: &[u8]) -> (Result<Response, ReaderError>, Seen) {
        let answer = self.session.exchange(apdu);
        let seen = Seen::of(spaced_hex(apdu), &answer);
        (answer, seen)
    }

    /// A fresh chip, MUTUAL AUTHENTICATE and VERIFY with the card number: the state every
    /// protected read starts from. Errors say which step failed (no secret in them).
    pub fn open(&mut self) -> Result<(), String> {
        let layout = self.layout.ok_or("the card type was not read")?;
        let number = self.number.clone().ok_or("no card number")?;
        self.fresh()?;
        self.session.set_generation(layout.generation);
        self.session
            .authenticate(&card_number_key(number.as_bytes()), &mut self.rng)
            .map_err(|e| format!("MUTUAL AUTHENTICATE: {e}"))?;
        self.session
            .verify(number.as_bytes())
            .map_err(|e| format!("VERIFY: {e}"))
    }

    /// VERIFY of `number` under the session key (after [`Ctx::open`]): the status word.
    fn verify_status(&mut self, number: &str) -> Result<Status, String> {
        match self.session.verify(number.as_bytes()) {
            Ok(()) => Ok(Status::Success),
            Err(ReaderError::Status(s)) => Ok(s),
            Err(e) => Err(format!("VERIFY: {e}")),
        }
    }

    /// Selects `df` (the MF by `3F 00`).
    pub fn select(&mut self, df: Df) -> Result<(), String> {
        match df.aid() {
            Some(aid) => self.session.select_aid(&aid),
            None => self.session.select_mf(),
        }
        .map_err(|e| format!("SELECT {}: {e}", df.name()))
    }

    /// The whole EF of `row` (its DF selected first), plain or under SM as its access says.
    pub fn read_ef(&mut self, row: &EfRow) -> Result<Vec<u8>, String> {
        self.select(row.id.df)?;
        let mode = match row.access {
            Access::AuthSm => ReadMode::Sm,
            Access::Free | Access::Auth => ReadMode::Plain,
        };
        self.session
            .read(row.id.sfi, mode)
            .map_err(|e| format!("READ {}: {e}", row.label_text()))
    }

    /// APDUs sent so far.
    fn sent(&mut self) -> usize {
        self.session.channel_mut().sent
    }
}

/// Runs the battery against `target` and reports one finding per knob the card shows.
pub fn probe(target: &mut dyn ProbeTarget, name: &str, options: &Options) -> Report {
    let atr = target
        .atr()
        .filter(|a| (2..=33).contains(&a.len()) && matches!(a[0], 0x3B | 0x3F))
        .map(|a| spaced_hex(&a));
    let mut ctx = Ctx::new(target, options);
    let mut findings: Vec<Finding> = Vec::new();
    let mut probes = Vec::new();
    for probe in battery::PROBES {
        let card = ctx.card();
        let applies = |path: &&str| knob(path).is_none_or(|k| card.shows(k));
        let skipped = if !probe.decides.is_empty() && !probe.decides.iter().any(applies) {
            Some(format!("its knobs do not apply to {}", card.name()))
        } else if probe.needs_card_number && options.card_number.is_none() {
            Some("needs the card number (--card-number)".to_owned())
        } else if let Risk::Risky(flag) = probe.risk
            && !options.risky.iter().any(|r| r == flag)
        {
            Some(format!("risky: runs only with --risky {flag}"))
        } else {
            None
        };
        if let Some(why) = skipped {
            for path in probe.decides {
                findings.push(Finding {
                    path,
                    decision: Decision::NotProbed(format!("probe {}: {why}", probe.name)),
                    evidence: Vec::new(),
                    why: String::new(),
                });
            }
            probes.push(ProbeRun {
                name: probe.name,
                apdus: None,
                skipped: Some(why),
            });
            continue;
        }
        let before = ctx.sent();
        let found = (probe.run)(&mut ctx);
        probes.push(ProbeRun {
            name: probe.name,
            apdus: Some(ctx.sent() - before),
            skipped: None,
        });
        findings.extend(found);
    }
    let layout = ctx.layout;
    let card = ctx.card();
    let _ = ctx.fresh();
    // One finding per knob the card shows, in table order; a knob no probe reported on
    // (the undecidable ones) says why.
    let findings = KNOBS
        .iter()
        .filter(|k| card.shows(k))
        .map(|k| {
            findings
                .iter()
                .find(|f| f.path == k.path)
                .cloned()
                .unwrap_or_else(|| Finding {
                    path: k.path,
                    decision: Decision::Unknown(
                        battery::undecidable(k.path)
                            .unwrap_or("no probe decides this knob")
                            .to_owned(),
                    ),
                    evidence: Vec::new(),
                    why: String::new(),
                })
        })
        .collect();
    Report {
        target: name.to_owned(),
        generation: layout.map(|l| l.generation.number()),
        card_type: layout.map(|l| l.card_type),
        atr,
        with_card_number: options.card_number.is_some(),
        probes,
        findings,
    }
}
