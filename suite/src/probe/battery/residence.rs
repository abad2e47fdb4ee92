//! The specified card's 在留AP probes: what the reference checker's read shows of the open
//! questions (the `platform.residence_*` knobs), and the risky wrong-number VERIFY.
//!
//! The checker already tries each plausible reading in turn and reports the one the card
//! took (`ResidenceApSettings`); the probe turns that into findings, with the headers and
//! status words of the exchange as evidence (never the cryptograms, the card number or the
//! files it read).

use std::time::SystemTime;

use rand::RngExt as _;
use serde::Serialize;

use rclab_emulator::my_number::residence_ap::{
    RESIDENCE_AP_AID, ResidenceSm, ResidenceVerifyP2, key_delivery_config,
};
use rclab_emulator::protocol::counter_sm::{
    CLA_SM_CMAC, LeDoForm, PendingResponse, ReaderCmacSm, ReaderCounterSm,
};
use rclab_emulator::protocol::key_delivery::{self, DeliveryPublicKey, PublicKeyFormat};
use rclab_emulator::protocol::{Response, Status};
use rclab_emulator::reader::select_by_aid_apdu;
use rclab_emulator::transport::{Channel, TransportError};
use rclab_emulator::verdict::VerdictKind;

use super::{Ctx, Finding, Seen, all_unknown, not_shown, spaced_hex, unknown, value};
use crate::checker::{Checker, Options as CheckerOptions, TrustStore};

/// `platform.residence_oaep_digest`.
pub(super) const OAEP: &str = "platform.residence_oaep_digest";
/// `platform.residence_key_template`.
pub(super) const TEMPLATE: &str = "platform.residence_key_template";
/// `platform.residence_sm`.
pub(super) const SM: &str = "platform.residence_sm";
/// `platform.residence_verify_p2`.
pub(super) const VERIFY_P2: &str = "platform.residence_verify_p2";
/// `platform.residence_df_select`.
pub(super) const DF_SELECT: &str = "platform.residence_df_select";
/// `platform.residence_le_do`.
pub(super) const LE_DO: &str = "platform.residence_le_do";
/// `platform.residence_common_data`.
pub(super) const COMMON_DATA: &str = "platform.residence_common_data";
/// `platform.residence_wrong_number`.
pub(super) const WRONG_NUMBER: &str = "platform.residence_wrong_number";

/// The bundled TEST delivery public key, as the reference checker's default.
const TEST_DELIVERY_KEY: &[u8] =
    include_bytes!("../../../../vectors/pki/mynumber/delivery.pub.raw");

/// A channel that keeps each exchange's header and status word (not its data).
struct Headers<'a> {
    inner: &'a mut dyn Channel,
    seen: Vec<(u8, u8, Seen)>,
}

impl Channel for Headers<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.transmit(apdu);
        let header = &apdu[..apdu.len().min(4)];
        let (status, length) = match &answer {
            Ok(r) if r.len() >= 2 => (spaced_hex(&r[r.len() - 2..]), r.len() - 2),
            Ok(r) => (format!("{} bytes, no status word", r.len()), 0),
            Err(e) => (e.to_string(), 0),
        };
        let (cla, ins) = (
            apdu.first().copied().unwrap_or(0),
            apdu.get(1).copied().unwrap_or(0),
        );
        self.seen.push((
            cla,
            ins,
            Seen {
                sent: format!("{} …", spaced_hex(header)),
                status,
                length,
            },
        ));
        answer
    }
}

/// The knob value `setting` serialises to (the knob table's spelling).
fn knob_value<T: Serialize>(setting: &T) -> String {
    serde_json::to_value(setting)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The evidence lines of the instructions `ins` (any class; SM classes `08`/`0C` when
/// `sm_only`).
fn lines(seen: &[(u8, u8, Seen)], ins: &[u8], sm_only: bool) -> Vec<Seen> {
    seen.iter()
        .filter(|(cla, i, _)| ins.contains(i) && (!sm_only || matches!(cla, 0x08 | 0x0C)))
        .map(|(_, _, s)| s.clone())
        .collect()
}

/// A finding of the setting the checker found, or unknown with the check's stop.
fn found<T: Serialize>(
    path: &'static str,
    setting: Option<T>,
    evidence: Vec<Seen>,
    why: &str,
    stopped: &str,
) -> Finding {
    match setting {
        Some(s) => value(path, &knob_value(&s), evidence, why.to_owned()),
        None => unknown(
            path,
            evidence,
            format!("the read stopped before the card showed it: {stopped}"),
        ),
    }
}

/// The reference checker's read of the 在留AP, then `00 B0 8A 00 00` where it left the card
/// (a DF selected, the session live).
pub(super) fn settings(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    let paths = [OAEP, TEMPLATE, SM, VERIFY_P2, DF_SELECT, LE_DO, COMMON_DATA];
    let Some(number) = ctx.number.clone() else {
        return all_unknown(&paths, &[], "no card number");
    };
    if let Err(e) = ctx.fresh() {
        return all_unknown(&paths, &[], &e);
    }
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: CheckerOptions {
            max_response: None,
            at: SystemTime::now(),
            seed: Some(ctx.rng.random()),
            delivery_key: ctx.delivery_key.clone(),
        },
    };
    let mut tap = Headers {
        inner: ctx.session.channel_mut(),
        seen: Vec::new(),
    };
    let report = checker.check(&mut tap, &number);
    let found_settings = report.data.residence_ap.clone().unwrap_or_default();
    // Where the check left the card: C1 again, plain.
    let after_df = found_settings.df_select.is_some();
    let common = after_df.then(|| tap.transmit(&[0x00, 0xB0, 0x8A, 0x00, 0x00]));
    let seen = tap.seen;
    ctx.residence_ap = Some(found_settings.clone());
    let stopped = format!("{} ({})", report.verdict, report.detail);
    let f = &found_settings;
    let delivery = lines(&seen, &[key_delivery::INS], false);
    let verify = lines(&seen, &[0x20], true);
    let cmac = f.sm == Some(ResidenceSm::Cmac);
    let mut out = vec![
        found(
            OAEP,
            f.oaep_digest,
            delivery.clone(),
            "SET SESSION KEY was taken under this OAEP hash (the other forms: 6A 80 or 6F 00)",
            &stopped,
        ),
        if cmac {
            not_shown(
                TEMPLATE,
                delivery,
                "under the CMAC SM the card takes the template with a MAC key whatever the \
                 knob says",
            )
        } else {
            found(
                TEMPLATE,
                f.key_template,
                delivery,
                "SET SESSION KEY was taken in this template (the other forms: 6A 80 or 6F 00)",
                &stopped,
            )
        },
        found(
            SM,
            f.sm,
            verify.clone(),
            "VERIFY of the card number went through in this SM (the other class: 69 87)",
            &stopped,
        ),
        found(
            VERIFY_P2,
            f.verify_p2,
            verify,
            "VERIFY of the card number went through with this P2 (the other: 6A 86)",
            &stopped,
        ),
        found(
            DF_SELECT,
            f.df_select,
            lines(&seen, &[0xA4], false),
            "SELECT of the DFs after VERIFY went through so (plain refused: 69 82)",
            &stopped,
        ),
    ];
    let reads = lines(&seen, &[0xB0], true);
    out.push(if cmac {
        not_shown(
            LE_DO,
            reads,
            "the CMAC SM carries Le in DO 97: the counter SM's Le DO is never sent",
        )
    } else {
        found(
            LE_DO,
            f.le_do,
            reads,
            "the first SM READ went through with this Le DO (the other form: 69 88)",
            &stopped,
        )
    });
    out.push(common_data(
        common,
        report.verdict.verdict == VerdictKind::Genuine,
        &stopped,
    ));
    out
}

/// `platform.residence_common_data` from `00 B0 8A 00 00` sent with a DF current.
fn common_data(
    answer: Option<Result<Vec<u8>, TransportError>>,
    genuine: bool,
    stopped: &str,
) -> Finding {
    const SENT: &str = "00 B0 8A 00 00 (C1, a DF of the 在留AP current)";
    let Some(answer) = answer else {
        return unknown(
            COMMON_DATA,
            Vec::new(),
            format!("the read never selected a DF: {stopped}"),
        );
    };
    let answer = answer
        .map_err(|e| e.to_string())
        .and_then(|r| Response::parse(&r).ok_or_else(|| "no status word".to_owned()));
    let seen = match &answer {
        Ok(r) => Seen {
            sent: SENT.into(),
            status: r.status.to_string(),
            length: r.data.len(),
        },
        Err(e) => Seen {
            sent: SENT.into(),
            status: e.clone(),
            length: 0,
        },
    };
    let evidence = vec![seen];
    match answer {
        Ok(r) if r.status == Status::Success => value(
            COMMON_DATA,
            "also_after_df",
            evidence,
            "C1 read with a DF selected".into(),
        ),
        Ok(r) if r.status == Status::FileNotFound => value(
            COMMON_DATA,
            "ap_level",
            evidence,
            format!(
                "C1 not found with a DF selected (6A 82){}",
                if genuine {
                    ""
                } else {
                    "; the read before it did not pass, so the DF may not be the last"
                }
            ),
        ),
        Ok(r) => unknown(
            COMMON_DATA,
            evidence,
            format!("{}, outside both values", r.status),
        ),
        Err(e) => unknown(COMMON_DATA, evidence, e),
    }
}

/// The reader's SM in the variant the card speaks.
enum ReaderSm {
    Counter(ReaderCounterSm),
    Cmac(ReaderCmacSm),
}

impl ReaderSm {
    /// VERIFY of `number` under SM with `p2`: the card's status word (under the CMAC SM
    /// the MAC-checked one of DO `99`).
    fn verify(&mut self, ctx: &mut Ctx<'_>, p2: u8, number: &str) -> Result<Status, String> {
        let (apdu, pending): (Vec<u8>, PendingResponse) = match self {
            ReaderSm::Counter(sm) => sm.cryptogram_command(0x20, 0x00, p2, number.as_bytes()),
            ReaderSm::Cmac(sm) => {
                sm.command([CLA_SM_CMAC, 0x20, 0x00, p2], number.as_bytes(), None)
            }
        }
        .map_err(|e| format!("VERIFY under SM: {e}"))?;
        let answer = ctx
            .session
            .exchange(&apdu)
            .map_err(|e| format!("VERIFY under SM: {e}"))?;
        match self {
            _ if answer.status != Status::Success => Ok(answer.status),
            ReaderSm::Counter(_) => Ok(answer.status),
            ReaderSm::Cmac(sm) => sm
                .open_response(&pending, &answer.data)
                .map(|(_, status)| status)
                .map_err(|e| format!("VERIFY under SM: the answer does not open: {e}")),
        }
    }
}

/// A wrong VERIFY under the SM the 在留AP probe found: `63 00` or `63 Cx`.
pub(super) fn wrong_number(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    let Some(number) = ctx.number.clone() else {
        return vec![unknown(WRONG_NUMBER, Vec::new(), "no card number")];
    };
    let settings = ctx.residence_ap.clone().unwrap_or_default();
    let (Some(oaep), Some(template), Some(sm), Some(p2)) = (
        settings.oaep_digest,
        settings.key_template,
        settings.sm,
        settings.verify_p2,
    ) else {
        return vec![unknown(
            WRONG_NUMBER,
            Vec::new(),
            "the residence-ap probe did not find the key delivery, the SM and VERIFY's P2",
        )];
    };
    let key = match ctx.delivery_key.clone().map_or_else(
        || DeliveryPublicKey::parse(PublicKeyFormat::RawModulus, TEST_DELIVERY_KEY),
        Ok,
    ) {
        Ok(key) => key,
        Err(e) => {
            return vec![unknown(
                WRONG_NUMBER,
                Vec::new(),
                format!("delivery key: {e}"),
            )];
        }
    };
    if let Err(e) = ctx.fresh() {
        return vec![unknown(WRONG_NUMBER, Vec::new(), e)];
    }
    let mut evidence = Vec::new();
    let (selected, seen) = ctx.raw(&select_by_aid_apdu(&RESIDENCE_AP_AID));
    evidence.push(seen);
    if !selected.is_ok_and(|r| r.status == Status::Success) {
        return vec![unknown(WRONG_NUMBER, evidence, "SELECT 在留AP was refused")];
    }
    let config = key_delivery_config(oaep, template);
    let (apdu, keys) = match key_delivery::build(&key, config, &mut ctx.rng) {
        Ok(built) => built,
        Err(e) => {
            return vec![unknown(
                WRONG_NUMBER,
                evidence,
                format!("SET SESSION KEY: {e}"),
            )];
        }
    };
    let delivered = ctx.session.exchange(&apdu);
    evidence.push(Seen::of(
        "80 AE 00 00 (SET SESSION KEY, cryptogram not kept)",
        &delivered,
    ));
    if !delivered.is_ok_and(|r| r.status == Status::Success) {
        return vec![unknown(
            WRONG_NUMBER,
            evidence,
            "SET SESSION KEY in the form the read found was refused",
        )];
    }
    let mut reader = match (sm, keys.kmac) {
        (ResidenceSm::CounterIv, _) => {
            ReaderSm::Counter(ReaderCounterSm::new(keys.kenc, LeDoForm::TwoByte))
        }
        (ResidenceSm::Cmac, Some(kmac)) => ReaderSm::Cmac(ReaderCmacSm::new(keys.kenc, kmac)),
        (ResidenceSm::Cmac, None) => {
            return vec![unknown(
                WRONG_NUMBER,
                evidence,
                "the CMAC SM without a MAC key in the template",
            )];
        }
    };
    let p2 = match p2 {
        ResidenceVerifyP2::Gen2_86 => 0x86,
        ResidenceVerifyP2::Sfi81 => 0x81,
    };
    let header = |what: &str| {
        format!(
            "{:02X} 20 00 {p2:02X} (VERIFY under SM, {what}, not kept)",
            match sm {
                ResidenceSm::CounterIv => 0x08,
                ResidenceSm::Cmac => CLA_SM_CMAC,
            }
        )
    };
    let status_seen = |what: &str, status: &Result<Status, String>| Seen {
        sent: header(what),
        status: match status {
            Ok(s) => s.to_string(),
            Err(e) => e.clone(),
        },
        length: 0,
    };
    let wrong = reader.verify(ctx, p2, &super::wrong_number(&number));
    evidence.push(status_seen("a wrong number", &wrong));
    match wrong {
        Ok(Status::VerificationFailed) => vec![value(
            WRONG_NUMBER,
            "verification_failed",
            evidence,
            "a wrong number was refused with 63 00: no tries counted".into(),
        )],
        Ok(s) if s.sw() & 0xFFF0 == 0x63C0 => {
            // Count the tries back up: the right number resets them.
            let right = reader.verify(ctx, p2, &number);
            evidence.push(status_seen("the card number", &right));
            let after = match right {
                Ok(Status::Success) => "the right number then reset the count".to_owned(),
                Ok(s) => format!("the right number then got {s}: the count may stay down"),
                Err(e) => format!("the right number then failed ({e}): the count may stay down"),
            };
            vec![value(
                WRONG_NUMBER,
                "tries_left",
                evidence,
                format!("a wrong number was refused with {s} (tries left); {after}"),
            )]
        }
        Ok(s) => vec![unknown(
            WRONG_NUMBER,
            evidence,
            format!("a wrong number got {s}, outside both values"),
        )],
        Err(e) => vec![unknown(WRONG_NUMBER, evidence, e)],
    }
}
