//! One case: present the profile's card through its host, let the checker read it, judge
//! the verdict and audit the transcript.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rclab_emulator::card::CardImage;
use rclab_emulator::chip::ChipKind;
use rclab_emulator::profile::Profile;
use rclab_emulator::verdict::{Verdict, VerdictKind, WrongAccept};

use super::adapter::{self, Adapter, Kind, ProcessChecker, VerdictProtocol};
use super::adapter::{expectation_for, parse_json_verdict_with_data};
use super::audit::{audit, audit_my_number, audit_specified};
use super::host::{self, Access, CardHost};
use super::{CaseResult, Outcome, RunConfig, data, delivery_key, printable, process};
use crate::checker::{CardSecret, Checker, Options, TrustStore, my_number};
use crate::judgement::{Judgement, judge};
use crate::pcsc_channel::PcscChannel;

/// Runs `checker` on `profile`'s card, in this process or (with `vpcd`) in that host's
/// reader, and judges and audits what happened.
pub(super) fn run_case(
    config: &RunConfig,
    trust: &TrustStore,
    checker: &Adapter,
    profile: &Profile,
    vpcd: Option<&mut host::Vpcd>,
) -> CaseResult {
    let expected = expectation_for(checker.trust, profile.expect.verdict);
    let mut result = CaseResult::pending(
        &checker.name,
        &profile.name,
        profile.generation.number(),
        expected,
        profile.expect.threat,
    );
    if let Some((base, knobs)) = super::variants::knob_values(&profile.description) {
        result.variant_of = Some(base.to_owned());
        result.knobs = knobs.into_iter().map(str::to_owned).collect();
    }
    if let Some(reason) = checker.unsupported_reason(&profile.name) {
        result.detail = format!("declared unsupported: {reason}");
        return result;
    }
    // The runner pairs a checker only with card kinds it checks (`run::pairs`); a case
    // built otherwise is N/A, never read by the wrong checker.
    if !checker.checks(profile.kind()) {
        result.detail = format!(
            "a `{}` card: out of this checker's scope (its adapter's `cards:`)",
            profile.kind().name()
        );
        return result;
    }
    let started = Instant::now();
    let read = |access: Access<'_>| read_card(config, trust, checker, profile, access);
    let served = match (&checker.kind, vpcd) {
        (Kind::Process(_), None) => {
            result.detail = "process checkers read PC/SC readers: run with --transport pcsc".into();
            return result;
        }
        (Kind::Reference, None) => {
            host::InProcess.serve(profile.card(), checker.card_change(), read)
        }
        (_, Some(vpcd)) => vpcd.serve(profile.card(), checker.card_change(), read),
    };
    let outcome = match served {
        Ok((outcome, transcript)) => {
            result.transcript = transcript;
            outcome
        }
        Err(e) => Err((Outcome::Crash, e.to_string())),
    };
    result.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok((actual, detail, fields)) => {
            // The chip's fields are a residence card's: a My Number checker's data is kept
            // as reported, not compared.
            if profile.kind() == ChipKind::MyNumber {
                result.data = fields;
            } else if let Some(fields) = fields {
                result.fields = data::compare(&fields, &data::truth(&residence_data(profile)));
                result.data_error = expected.verdict == VerdictKind::Genuine
                    && actual.verdict == VerdictKind::Genuine
                    && result
                        .fields
                        .iter()
                        .any(|f| f.status == data::FieldStatus::Wrong);
                result.data = Some(fields);
            }
            // `expect.limitation` is declared for the reference checker only.
            let limitation = match checker.kind {
                Kind::Reference => profile.expect.limitation.as_deref(),
                Kind::Process(_) => None,
            };
            let judgement = judge(&expected, &actual, profile.expect.threat, limitation);
            result.outcome = match judgement {
                Judgement::Pass => Outcome::Pass,
                Judgement::Fail(_) | Judgement::FalseReject => Outcome::Fail,
                Judgement::Limitation => Outcome::Limitation,
            };
            result.false_accept = judgement.wrong_accept() == Some(WrongAccept::FalseAccept);
            result.missed_corruption =
                judgement.wrong_accept() == Some(WrongAccept::MissedCorruption);
            result.false_reject = judgement == Judgement::FalseReject;
            result.actual = Some(actual);
            // With LIMITATION, the declared limitation first: why this is no failure.
            result.detail = match (judgement, limitation) {
                (Judgement::Limitation, Some(why)) => format!("limitation: {why}; {detail}"),
                // A rejected variant: the knob values it differs from its valid card by.
                (Judgement::FalseReject, _) if !result.knobs.is_empty() => format!(
                    "false reject; knob values that differ from its valid card: {}; {detail}",
                    result.knobs.join(", ")
                ),
                _ => detail,
            };
        }
        Err((outcome, detail)) => {
            result.outcome = outcome;
            result.detail = detail;
        }
    }
    // A specified card's 在留AP holds a residence card's EFs: its own audit reads the
    // transcript against them.
    result.audit = Some(match (profile.kind(), &profile.my_number) {
        (ChipKind::SpecifiedResidence, Some(image)) => {
            audit_specified(image, profile.card_number.as_str(), &result.transcript)
        }
        (_, Some(image)) => audit_my_number(image, &result.transcript),
        (_, None) => audit(
            &profile.image,
            profile.card_number.as_str(),
            &result.transcript,
        ),
    });
    result
}

/// The residence-card EFs of `profile`'s chip, which the data a checker reported are
/// compared with: a residence card's image; a specified card's 在留AP (generation 2's
/// EFs under the `07`/`08` layout, its `MF` rows the AP-level `C0`/`C1`); for a plain My
/// Number card the empty residence view.
fn residence_data(profile: &Profile) -> Arc<CardImage> {
    profile
        .my_number
        .as_ref()
        .and_then(|image| image.residence_ap.as_ref())
        .map_or_else(|| Arc::clone(&profile.image), |ap| Arc::clone(&ap.data))
}

/// What the reference checker shows: its data, plus on a generation-1 card that it opened
/// (the images were read under the card-number key) the card number it opened it with.
fn reference_fields(report: &crate::checker::Report, card_number: &str) -> data::CardFields {
    let mut fields = data::CardFields::from_card_data(&report.data);
    if report.data.generation == Some(1) && report.data.front_image.is_some() {
        fields.card_number =
            data::CardFields::from_json(&serde_json::json!({ "card_number": card_number }))
                .ok()
                .and_then(|f| f.card_number);
    }
    fields
}

/// The reference checker as a run configures it: the run's clock, a fixed seed, and for a
/// specified residence card the TEST delivery public key from the file in the profile's
/// format ([`delivery_key`]); a file that cannot be used ends the case with its error.
fn reference<'a>(
    config: &RunConfig,
    trust: &'a TrustStore,
    profile: &Profile,
) -> Result<Checker<'a>, (Outcome, String)> {
    let delivery_key = match delivery_key::test_key_file(&config.repo, profile) {
        Some(file) => Some(delivery_key::load(&file).map_err(|e| (Outcome::Crash, e.to_string()))?),
        None => None,
    };
    Ok(Checker {
        trust,
        options: Options {
            max_response: None,
            at: config.at,
            seed: Some(1),
            delivery_key,
        },
    })
}

/// A verdict, its detail and the data the checker reported; or what went wrong instead.
type CaseOutcome = Result<(Verdict, String, Option<data::CardFields>), (Outcome, String)>;

/// One checker reading the presented card: the reference checker over the channel or
/// through the reader's PC/SC service, an external checker through the reader.
fn read_card(
    config: &RunConfig,
    trust: &TrustStore,
    checker: &Adapter,
    profile: &Profile,
    access: Access<'_>,
) -> CaseOutcome {
    let number = profile.card_number.as_str();
    // The profile's kind picks the reference checker: the card number opens a residence
    // card and a specified one (over its 在留AP), the PIN a My Number card.
    let pin = my_number::checker_pin(profile);
    let secret = match &pin {
        Some(pin) => CardSecret::Pin(pin),
        None => CardSecret::CardNumber(number),
    };
    let reference_verdict = |report: crate::checker::Report| {
        let fields = match secret {
            CardSecret::CardNumber(number) => Some(reference_fields(&report, number)),
            CardSecret::Pin(_) => None,
        };
        Ok((report.verdict, report.detail, fields))
    };
    let reader = match access {
        Access::Channel(channel) => {
            return match &checker.kind {
                Kind::Reference => reference_verdict(
                    reference(config, trust, profile)?.check_card(channel, secret),
                ),
                Kind::Process(_) => Err((
                    Outcome::NotApplicable,
                    "process checkers read PC/SC readers: run with --transport pcsc".into(),
                )),
            };
        }
        Access::Reader(reader) => reader,
    };
    let endpoint = reader.endpoint();
    // This machine's pcscd is asked whether it shows the card; a vpcd on another machine
    // belongs to a PC/SC service rclab cannot ask, so the card's own view stands in: that
    // service powers a card up when it arrives.
    match &checker.kind {
        Kind::Reference if !reader.vpcd_is_local() => Err((
            Outcome::Crash,
            format!(
                "the reference checker reads this machine's PC/SC service, and the vpcd at \
                 {endpoint} is on another machine: use an adapter that runs there"
            ),
        )),
        Kind::Process(process) if !reader.vpcd_is_local() => {
            if reader.wait_powered(Duration::from_secs(10)) {
                run_process(config, process, profile, &reader.name())
            } else {
                Err((
                    Outcome::Crash,
                    format!("the PC/SC service behind {endpoint} never powered the card up"),
                ))
            }
        }
        Kind::Reference => match PcscChannel::connect(&reader.name(), Duration::from_secs(10)) {
            Ok(mut channel) => {
                let checker = match reference(config, trust, profile) {
                    Ok(checker) => checker,
                    Err(e) => {
                        channel.close();
                        return Err(e);
                    }
                };
                let report = checker.check_card(&mut channel, secret);
                channel.close();
                reference_verdict(report)
            }
            Err(e) => Err((
                Outcome::Crash,
                format!("reference checker could not connect: {e}"),
            )),
        },
        Kind::Process(process) => {
            match crate::pcsc_channel::wait_for_card(&reader.name(), Duration::from_secs(10)) {
                // Start the checker only once pcscd shows the card, as a user would.
                Ok(_) => run_process(config, process, profile, &reader.name()),
                Err(e) => Err((Outcome::Crash, format!("pcscd never showed the card: {e}"))),
            }
        }
    }
}

/// Runs an external checker with its timeout and reads its verdict.
fn run_process(
    config: &RunConfig,
    process: &ProcessChecker,
    profile: &Profile,
    reader: &str,
) -> CaseOutcome {
    let values: BTreeMap<&str, String> = [
        ("reader", reader.to_owned()),
        ("card_number", profile.card_number.to_string()),
        ("pin", my_number::profile_pin(profile).unwrap_or_default()),
        (
            "delivery_key",
            delivery_key::test_key_file(&config.repo, profile)
                .map(|file| std::path::absolute(&file).unwrap_or(file))
                .map(|file| file.display().to_string())
                .unwrap_or_default(),
        ),
        ("profile", profile.path.display().to_string()),
        ("profile_name", profile.name.clone()),
        ("trust_dir", config.trust_dir.display().to_string()),
        ("repo", config.repo.display().to_string()),
    ]
    .into_iter()
    .collect();
    let argv = process.render(&values);
    let finished = match process::run(&argv, &process.env, &config.repo, process.timeout()) {
        Ok(finished) => finished,
        Err(e) => {
            let program = argv.first().map_or("", String::as_str);
            return Err((
                Outcome::Crash,
                format!("cannot start {}: {e}", printable(program, 200)),
            ));
        }
    };
    let Some(status) = finished.status else {
        return Err((
            Outcome::Timeout,
            format!("no verdict within {} ms", process.timeout_ms),
        ));
    };
    let stderr = || process::last_line(&finished.stderr.text());
    match &process.verdict {
        VerdictProtocol::Json(_) => match parse_json_verdict_with_data(&finished.stdout.text()) {
            Ok((verdict, detail, fields)) => Ok((verdict, printable(&detail, 2000), fields)),
            Err(_) if status.code().is_none() || !status.success() => Err((
                Outcome::Crash,
                format!("exited with {status}: {}", stderr()),
            )),
            Err(e) => Err((
                Outcome::BadOutput,
                format!(
                    "stdout is not a {} verdict: {}",
                    adapter::VERDICT_SCHEMA,
                    printable(&e, 300)
                ),
            )),
        },
        VerdictProtocol::ExitCodes { exit_codes } => match status
            .code()
            .and_then(|code| exit_codes.get(&code))
        {
            Some(verdict) => Ok((
                *verdict,
                format!("exit code {}", status.code().unwrap_or_default()),
                None,
            )),
            None if status.code().is_none() => Err((Outcome::Crash, format!("killed: {status}"))),
            None => Err((
                Outcome::BadOutput,
                format!(
                    "exit code {status} is not in the adapter's map: {}",
                    stderr()
                ),
            )),
        },
    }
}
