//! `rclab probe`: the open behaviours of a card (a real one in a PC/SC reader, or an
//! emulated one) as a profile fragment, without its personal data.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use rclab_emulator::profile;
use rclab_suite::pcsc_channel::PcscChannel;
use rclab_suite::probe::{self, Options, ProbeTarget, Report, Risk, battery::PROBES, fragment};
use rclab_suite::run::delivery_key;

use super::emit;
use super::parse::parse_wait;

#[derive(Args)]
pub(crate) struct ProbeArgs {
    /// The PC/SC reader holding the card.
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "profile",
        conflicts_with = "profile"
    )]
    pub(crate) reader: Option<String>,
    /// Probe an emulated card in process instead: this profile's card.
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// The number printed on the card: also probe what needs authentication (it is sent
    /// to the card only, never written).
    #[arg(long, value_name = "NUMBER", value_parser = parse_card_number)]
    pub(crate) card_number: Option<String>,
    /// Write the fragment here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Also write every finding with its evidence as JSON here.
    #[arg(long, value_name = "FILE")]
    pub(crate) evidence: Option<PathBuf>,
    /// Allow a risky probe (`failed-verify`: a wrong VERIFY); repeat for more.
    #[arg(long, value_name = "PROBE", value_parser = parse_risky)]
    pub(crate) risky: Vec<String>,
    /// Seconds to wait for a card in --reader: 0 to 86400 (24 h), fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    pub(crate) wait: Duration,
    /// Seed of the probe's random numbers (default: from the operating system).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// The delivery public key a specified card's session keys are sent under (raw
    /// modulus, DER SubjectPublicKeyInfo or the platform's TLV; default: the TEST key).
    #[arg(long, value_name = "FILE")]
    pub(crate) delivery_key: Option<PathBuf>,
}

/// `--card-number`: two upper-case letters, eight digits, two upper-case letters.
pub(crate) fn parse_card_number(text: &str) -> Result<String, String> {
    profile::CardNumber::try_from(text.to_owned()).map(|n| n.to_string())
}

/// `--risky`: the flag of a risky probe of the battery.
pub(crate) fn parse_risky(text: &str) -> Result<String, String> {
    let flags: Vec<&str> = PROBES
        .iter()
        .filter_map(|p| match p.risk {
            Risk::Risky(flag) => Some(flag),
            _ => None,
        })
        .collect();
    if flags.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: the risky probes are {}",
            flags.join(", ")
        ))
    }
}

/// Runs the probe on the card `args` names: the report.
pub(crate) fn probe_card(
    reader: Option<&str>,
    profile_path: Option<&PathBuf>,
    wait: Duration,
    options: &Options,
) -> Result<Report> {
    warn_risky(options);
    match (reader, profile_path) {
        (Some(reader), _) => {
            let mut channel = PcscChannel::connect(reader, wait)?;
            let report = probe::probe(&mut channel, &format!("reader {reader:?}"), options);
            channel.close();
            Ok(report)
        }
        (None, Some(path)) => {
            let p = profile::load(path)?;
            let mut card = p.card();
            Ok(probe::probe(
                &mut card as &mut dyn ProbeTarget,
                &format!("profile {}", path.display()),
                options,
            ))
        }
        (None, None) => anyhow::bail!("give --reader or --profile"),
    }
}

/// The warning a risky probe gets before it runs.
pub(crate) fn warn_risky(options: &Options) {
    for flag in &options.risky {
        eprintln!(
            "rclab: warning: --risky {flag} sends a WRONG VERIFY to the card. Whether real \
             residence cards (and the specified card's 在留AP) count failed VERIFYs against \
             a retry counter (and block) is unknown; only generation 2 is specified to have \
             none. Use a card you can afford to lose."
        );
    }
}

pub(crate) fn run(args: ProbeArgs) -> Result<ExitCode> {
    let options = Options {
        card_number: args.card_number.clone(),
        risky: args.risky.clone(),
        seed: args.seed,
        delivery_key: match &args.delivery_key {
            Some(file) => {
                Some(delivery_key::load(file).map_err(|e| anyhow::anyhow!("--delivery-key: {e}"))?)
            }
            None => None,
        },
    };
    let report = probe_card(
        args.reader.as_deref(),
        args.profile.as_ref(),
        args.wait,
        &options,
    )?;
    let text = fragment::render(&report);
    match &args.out {
        Some(path) => write_output(path, "--out", text.as_bytes())?,
        None => emit(&text)?,
    }
    if let Some(path) = &args.evidence {
        let json = serde_json::to_string_pretty(&report)? + "\n";
        write_output(path, "--evidence", json.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file named by `flag` (a regular file only: a FIFO or device is refused at once).
fn write_output(path: &std::path::Path, flag: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    rclab_emulator::files::create_regular(path, rclab_emulator::files::Readers::Anyone)
        .and_then(|mut file| Ok(file.write_all(bytes)?))
        .with_context(|| format!("{flag} {}: cannot write", path.display()))
}
