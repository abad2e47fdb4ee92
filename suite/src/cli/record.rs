//! `rclab record`: a whole card as a replayable profile (personal data), or with
//! `--redact` as a shareable TEST card with the same layout and behaviour.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;

use rclab_emulator::profile;
use rclab_suite::checker::{Checker, Options as CheckerOptions, TrustStore};
use rclab_suite::pcsc_channel::PcscChannel;
use rclab_suite::probe::{Options, ProbeTarget, record};

use super::parse::{parse_date, parse_wait};
use super::probe::parse_card_number;

#[derive(Args)]
pub(crate) struct RecordArgs {
    /// The PC/SC reader holding the card.
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "profile",
        conflicts_with = "profile"
    )]
    pub(crate) reader: Option<String>,
    /// Record an emulated card in process instead: this profile's card.
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// The number printed on the card (needed to read the protected files).
    #[arg(long, value_name = "NUMBER", value_parser = parse_card_number)]
    pub(crate) card_number: String,
    /// Folder to write the profile (card.yaml) and its files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Write a shareable TEST card instead: the card's layout and behaviour, an invented
    /// person, TEST images of the same sizes, re-signed by the TEST signer.
    #[arg(long)]
    pub(crate) redact: bool,
    /// Seed of the recorded card's random numbers (challenges, K.ICC) when it is replayed.
    /// A real card's are its own; give an emulated card's profile seed to replay its
    /// transcripts byte for byte.
    #[arg(long, default_value = "0")]
    pub(crate) seed: u64,
    /// Folder of trusted root certificates for the verdict the recording expects (default:
    /// the TEST roots built into rclab).
    #[arg(long, value_name = "DIR")]
    pub(crate) trust: Option<PathBuf>,
    /// Check certificates as of this date, YYYY-MM-DD (default: now).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) at: Option<SystemTime>,
    /// Allow a risky probe (`failed-verify`: a wrong VERIFY); repeat for more.
    #[arg(long, value_name = "PROBE")]
    pub(crate) risky: Vec<String>,
    /// Seconds to wait for a card in --reader: 0 to 86400 (24 h), fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    pub(crate) wait: Duration,
}

pub(crate) fn run(args: RecordArgs) -> Result<ExitCode> {
    for flag in &args.risky {
        super::probe::parse_risky(flag).map_err(|e| anyhow::anyhow!("--risky {e}"))?;
    }
    let trust = match &args.trust {
        Some(dir) => TrustStore::from_dir(dir)?,
        None => TrustStore::embedded_test_roots(),
    };
    let checker = Checker {
        trust: &trust,
        options: CheckerOptions {
            max_response: None,
            at: args.at.unwrap_or_else(SystemTime::now),
            seed: None,
            delivery_key: None,
        },
    };
    let options = Options {
        card_number: Some(args.card_number.clone()),
        risky: args.risky.clone(),
        seed: None,
        delivery_key: None,
    };
    super::probe::warn_risky(&options);
    let recording = match (&args.reader, &args.profile) {
        (Some(reader), _) => {
            let mut channel = PcscChannel::connect(reader, args.wait)?;
            let recording = record::read_card(
                &mut channel,
                &format!("reader {reader:?}"),
                &options,
                &checker,
            );
            channel.close();
            recording?
        }
        (None, Some(path)) => {
            let p = profile::load(path)?;
            let mut card = p.card();
            record::read_card(
                &mut card as &mut dyn ProbeTarget,
                &format!("profile {}", path.display()),
                &options,
                &checker,
            )?
        }
        (None, None) => anyhow::bail!("give --reader or --profile"),
    };
    let path = if args.redact {
        record::write_redacted(&recording, &args.out)?
    } else {
        let path = record::write_recording(&recording, &args.card_number, args.seed, &args.out)?;
        eprintln!(
            "rclab: {} holds PERSONAL DATA (the card number and every file of the chip: photo, \
             address, dates). Its files are readable by you only; keep them private, use them \
             only for your own CI, and share `rclab record --redact` output instead.",
            args.out.display()
        );
        path
    };
    println!(
        "recorded {} EFs, {} knob values decided, reference verdict {}: {}",
        recording.files.len(),
        record::decided(&recording.report),
        recording.verdict,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
