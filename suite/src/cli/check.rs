//! `rclab check`: the reference checker against emulated cards or a card in a PC/SC reader.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use clap::Args;

use rclab_emulator::profile::{self, Profile};
use rclab_suite::checker::my_number::{self, checker_pin};
use rclab_suite::checker::{CardSecret, Checker, Options, Report, TrustStore};
use rclab_suite::judgement::{Judgement, judge};
use rclab_suite::pcsc_channel::PcscChannel;
use rclab_suite::run::delivery_key;

use super::emit;
use super::parse::{parse_date, parse_max_response, parse_wait};

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Read a real card (or an emulated one served by `rclab serve`) in this PC/SC reader
    /// instead of emulating profiles in-process; needs --card-number (residence or
    /// specified residence card) or --pin (My Number card).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["profiles", "profile_dir"])]
    pub(crate) reader: Option<String>,
    /// Which card is in --reader: `auto` (a card whose 在留AP answers SELECT is a
    /// specified residence card, read as a residence card; else a card whose JPKI AP
    /// answers is a My Number card; any other a residence card), `residence` (a specified
    /// card included) or `my-number`.
    #[arg(long, value_enum, default_value = "auto", requires = "reader")]
    pub(crate) card: CardChoice,
    /// The JPKI authentication PIN the My Number checker enters (default: the PIN each My
    /// Number profile states); 4 digits.
    #[arg(long, value_name = "NNNN", value_parser = parse_pin)]
    pub(crate) pin: Option<String>,
    /// Seconds to wait for a card in --reader: 0 to 86400 (24 h), fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    pub(crate) wait: Duration,
    /// A profile file; repeat for several.
    #[arg(long = "profile", value_name = "FILE")]
    pub(crate) profiles: Vec<PathBuf>,
    /// A folder of profiles (searched recursively).
    #[arg(long = "profiles", value_name = "DIR", conflicts_with = "profiles")]
    pub(crate) profile_dir: Option<PathBuf>,
    /// Card number the checker enters (default: the number printed on each card).
    #[arg(long)]
    pub(crate) card_number: Option<String>,
    /// Folder of trusted root certificates (default: the TEST roots built into rclab).
    #[arg(long, value_name = "DIR")]
    pub(crate) trust: Option<PathBuf>,
    /// Check certificates as of this date, YYYY-MM-DD (default: now).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) at: Option<SystemTime>,
    /// Largest response the checker accepts, in bytes: read EFs in chunks (phones: ~1700).
    /// 32 to 65538.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_response)]
    pub(crate) max_response: Option<usize>,
    /// Seed of the checker's random numbers (default: from the operating system).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// The delivery public key a specified residence card's session key is sent under:
    /// raw modulus, DER SubjectPublicKeyInfo or the platform's `A1 {90, 91}` TLV, told
    /// apart by their structure (default: the TEST key built into rclab).
    #[arg(long, value_name = "FILE")]
    pub(crate) delivery_key: Option<PathBuf>,
    /// Print the JSON report(s) instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--card`: which checker reads the card in `--reader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CardChoice {
    /// Ask the card: its 在留AP answers SELECT → specified residence card (read as a
    /// residence card); else its JPKI AP answers → My Number card; else residence card.
    Auto,
    /// A residence card, or a specified one (needs --card-number).
    Residence,
    /// A My Number card (needs --pin).
    MyNumber,
}

/// Which checker reads the card in `--reader`, once `--card` is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InReader {
    /// A residence card: the residence checker with the card number.
    Residence,
    /// A specified residence card (its 在留AP answered): the residence checker with the
    /// card number, over the 在留AP.
    Specified,
    /// A My Number card: the My Number checker with the PIN.
    MyNumber,
}

/// `--pin`: exactly 4 ASCII digits, as the JPKI authentication PIN is.
fn parse_pin(text: &str) -> std::result::Result<String, String> {
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err("the JPKI authentication PIN is exactly 4 digits".into())
    }
}

pub(crate) fn run(args: CheckArgs) -> Result<ExitCode> {
    let trust = match &args.trust {
        Some(dir) => TrustStore::from_dir(dir)?,
        None => TrustStore::embedded_test_roots(),
    };
    let delivery_key = match &args.delivery_key {
        Some(file) => {
            Some(delivery_key::load(file).map_err(|e| anyhow::anyhow!("--delivery-key: {e}"))?)
        }
        None => None,
    };
    let options = Options {
        max_response: args.max_response,
        at: args.at.unwrap_or_else(SystemTime::now),
        seed: args.seed,
        delivery_key,
    };
    let checker = Checker {
        trust: &trust,
        options,
    };
    if let Some(reader) = &args.reader {
        let mut channel = PcscChannel::connect(reader, args.wait)?;
        let card = match args.card {
            CardChoice::MyNumber => InReader::MyNumber,
            CardChoice::Residence => InReader::Residence,
            // The 在留AP first: a specified card's JPKI AP answers too.
            CardChoice::Auto if my_number::has_residence_ap(&mut channel) => InReader::Specified,
            CardChoice::Auto if my_number::is_my_number_card(&mut channel) => InReader::MyNumber,
            CardChoice::Auto => InReader::Residence,
        };
        let my_number = card == InReader::MyNumber;
        let secret = match (my_number, &args.card_number, &args.pin) {
            (false, Some(number), _) => CardSecret::CardNumber(number),
            (true, _, Some(pin)) => CardSecret::Pin(pin),
            (false, None, _) => {
                channel.close();
                let what = match card {
                    InReader::Specified => "a specified residence card",
                    _ => "a residence card",
                };
                bail!("--reader: the card is {what}: give its --card-number")
            }
            (true, _, None) => {
                channel.close();
                bail!("--reader: the card is a My Number card: give its authentication --pin")
            }
        };
        let report = checker.check_card(&mut channel, secret);
        channel.close();
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let profiles = load_profiles(&args)?;
    let reports: Vec<(Profile, Report)> = profiles
        .into_iter()
        .map(|p| {
            let report = match checker_pin(&p) {
                Some(pin) => {
                    let pin = args.pin.clone().unwrap_or(pin);
                    checker.check_my_number(&mut p.card(), &pin)
                }
                None => {
                    let number = args
                        .card_number
                        .clone()
                        .unwrap_or_else(|| p.card_number.to_string());
                    checker.check(&mut p.card(), &number)
                }
            };
            (p, report)
        })
        .collect();

    if args.json || (args.profiles.len() == 1 && args.profile_dir.is_none()) {
        let out: Vec<_> = reports
            .iter()
            .map(|(p, r)| serde_json::json!({ "profile": p.name, "report": r }))
            .collect();
        let value = if out.len() == 1 {
            out[0]["report"].clone()
        } else {
            serde_json::Value::Array(out)
        };
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_table(
        &reports,
        args.card_number.is_some() || args.pin.is_some() || args.trust.is_some(),
    )
}

fn load_profiles(args: &CheckArgs) -> Result<Vec<Profile>> {
    if !args.profiles.is_empty() {
        return args
            .profiles
            .iter()
            .map(|path| profile::load(path).map_err(anyhow::Error::new))
            .collect();
    }
    let dir = args
        .profile_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("vectors/profiles"));
    if !dir.is_dir() {
        bail!(
            "{}: no such folder (run from the repository root or pass --profiles DIR)",
            dir.display()
        );
    }
    let all = profile::load_dir(&dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} profile(s) failed to load:\n{}",
            errors.len(),
            lines.join("\n")
        )
    })?;
    // The profile's kind picks the checker (`checker_pin`): every kind is checked.
    Ok(all)
}

/// Prints expected vs actual; returns failure when any differs. With a changed card
/// number or trust store the expectations do not apply, so only the verdicts are shown.
fn print_table(reports: &[(Profile, Report)], expectations_off: bool) -> Result<ExitCode> {
    use std::fmt::Write as _;
    let mut table = String::new();
    let width = reports
        .iter()
        .map(|(p, _)| p.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(
        table,
        "{:width$}  {:<34}  {:<34}  result",
        "profile", "expected", "actual"
    )?;
    let mut failures = 0;
    for (p, r) in reports {
        let expected = p.expect.verdict;
        let judgement = judge(
            &expected,
            &r.verdict,
            p.expect.threat,
            p.expect.limitation.as_deref(),
        );
        let result = if expectations_off {
            "-"
        } else {
            if judgement.is_failure() {
                failures += 1;
            }
            judgement.label()
        };
        writeln!(
            table,
            "{:width$}  {:<34}  {:<34}  {result}",
            p.name,
            expected.to_string(),
            r.verdict.to_string()
        )?;
        if !expectations_off {
            match (judgement, &p.expect.limitation) {
                (Judgement::Fail(_) | Judgement::FalseReject, _) => {
                    writeln!(table, "{:width$}  ↳ {}", "", r.detail)?
                }
                (Judgement::Limitation, Some(limitation)) => {
                    writeln!(table, "{:width$}  ↳ {limitation}", "")?;
                }
                _ => {}
            }
        }
    }
    writeln!(
        table,
        "\n{} profile(s), {failures} unexpected verdict(s)",
        reports.len()
    )?;
    emit(&table)?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
