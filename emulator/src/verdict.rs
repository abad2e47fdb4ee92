//! The closed vocabulary of checker verdicts, shared by profile expectations, the reference
//! checker and the suite.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a checker concluded about a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Data authentic: check code verified, chain to a trusted root.
    Genuine,
    /// Evidence of tampering or a counterfeit chip.
    Forged,
    /// The chip is not a residence card / special permanent resident certificate.
    NotResidenceCard,
    /// The card number given to the checker does not open this chip.
    WrongCardNumber,
    /// The chip could not be read to a conclusion.
    Unreadable,
    /// The data verifies, but against a signer the checker does not trust.
    UntrustedCertificate,
    /// My Number checker: the chip has no JPKI application (`6A 82` to its SELECT), so it
    /// is no My Number card (a residence card, or another card).
    NotMyNumberCard,
    /// My Number checker: the PIN given to the checker does not open the chip (`63 Cx`
    /// with tries left), the counterpart of `wrong_card_number`.
    WrongPin,
}

/// Why: a closed list so that verdicts of different checkers compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The signature does not verify over the signed data.
    SignatureMismatch,
    /// The certificate does not chain to a trusted root.
    UnknownSigner,
    /// The signer's certificate was not valid at the time of reading.
    CertificateExpired,
    /// The certificate does not parse.
    MalformedCertificate,
    /// The signature or certificate EF is absent or empty.
    MissingSignature,
    /// Mutual authentication failed: not a card that holds the card number's key.
    AuthFailed,
    /// Secure messaging did not open: wrong MAC, padding or cryptogram.
    SmError,
    /// A field does not parse as the layout says.
    MalformedData,
    /// The card answered a status word the protocol does not allow there.
    UnexpectedStatus,
    /// The card left the reader before the verdict.
    CardRemoved,
    /// The card stopped answering.
    Timeout,
    /// Any other reader or transport failure.
    Transport,
    /// My Number card: the PIN that unlocks the key a checker needs is blocked (`63 C0` /
    /// `69 84`), so the card cannot prove it holds the certificate's key; only a municipal
    /// office can unblock it.
    PinBlocked,
    /// My Number card: the PIN has one try left (`63 C1` to the case-1 VERIFY); the
    /// checker does not spend the last try (a wrong guess would block the card), so it
    /// cannot ask the card to sign.
    PinLastTry,
}

/// A verdict with its optional reason, written `forged{signature_mismatch}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// What the checker concluded.
    pub verdict: VerdictKind,
    /// Why, when the verdict is not `genuine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl Verdict {
    /// The verdict of a card that passed every check.
    pub const GENUINE: Verdict = Verdict {
        verdict: VerdictKind::Genuine,
        reason: None,
    };

    /// A verdict with an optional reason.
    pub fn new(verdict: VerdictKind, reason: Option<Reason>) -> Verdict {
        Verdict { verdict, reason }
    }

    /// A verdict with its reason.
    pub fn with(verdict: VerdictKind, reason: Reason) -> Verdict {
        Verdict {
            verdict,
            reason: Some(reason),
        }
    }

    /// True when `actual` satisfies this expectation: same kind, and the same reason
    /// when the expectation names one.
    pub fn accepts(&self, actual: &Verdict) -> bool {
        self.verdict == actual.verdict && self.reason.is_none_or(|r| actual.reason == Some(r))
    }
}

impl VerdictKind {
    /// The name used in `rclab.verdict/1` JSON and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Genuine => "genuine",
            VerdictKind::Forged => "forged",
            VerdictKind::NotResidenceCard => "not_residence_card",
            VerdictKind::WrongCardNumber => "wrong_card_number",
            VerdictKind::Unreadable => "unreadable",
            VerdictKind::UntrustedCertificate => "untrusted_certificate",
            VerdictKind::NotMyNumberCard => "not_my_number_card",
            VerdictKind::WrongPin => "wrong_pin",
        }
    }
}

impl Reason {
    /// The name used in `rclab.verdict/1` JSON and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SignatureMismatch => "signature_mismatch",
            Reason::UnknownSigner => "unknown_signer",
            Reason::CertificateExpired => "certificate_expired",
            Reason::MalformedCertificate => "malformed_certificate",
            Reason::MissingSignature => "missing_signature",
            Reason::AuthFailed => "auth_failed",
            Reason::SmError => "sm_error",
            Reason::MalformedData => "malformed_data",
            Reason::UnexpectedStatus => "unexpected_status",
            Reason::CardRemoved => "card_removed",
            Reason::Timeout => "timeout",
            Reason::Transport => "transport",
            Reason::PinBlocked => "pin_blocked",
            Reason::PinLastTry => "pin_last_try",
        }
    }
}

/// What a card that must not be called genuine threatens when a checker calls it genuine
/// (`expect.threat` of a forged or corrupted profile). It decides how such a mistake is
/// counted: only a forgery vector makes it a **false accept**.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threat {
    /// Made or altered to pass for what it is not (or a form that lets a checker verify one
    /// thing and show another): called genuine, a forgery is accepted.
    Forgery,
    /// Damaged or malformed data or secure-messaging form: called genuine, the checker
    /// vouched for data it could not read faithfully.
    Corruption,
    /// The conversation misbehaves (timing, removal, frames, status words): called genuine,
    /// the checker vouched for an exchange that never completed as it should.
    Transport,
}

impl Threat {
    /// The name used in profiles and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Threat::Forgery => "forgery",
            Threat::Corruption => "corruption",
            Threat::Transport => "transport",
        }
    }
}

/// A card called genuine that must not be, counted by what it threatens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrongAccept {
    /// A forgery vector called genuine.
    FalseAccept,
    /// A corrupted or misbehaving card (no forgery vector) called genuine.
    MissedCorruption,
}

impl WrongAccept {
    /// The one name every report and console line uses.
    pub fn as_str(self) -> &'static str {
        match self {
            WrongAccept::FalseAccept => "false accept",
            WrongAccept::MissedCorruption => "missed corruption",
        }
    }
}

/// The one rule (runner, reports, `rclab check`): `actual` is genuine where `expected` is
/// not, counted by the card's threat. A card without a threat (a valid card, which a pinned
/// checker is merely expected to call untrusted) is never a wrong accept.
pub fn wrong_accept(
    threat: Option<Threat>,
    expected: &Verdict,
    actual: &Verdict,
) -> Option<WrongAccept> {
    if actual.verdict != VerdictKind::Genuine || expected.verdict == VerdictKind::Genuine {
        return None;
    }
    match threat? {
        Threat::Forgery => Some(WrongAccept::FalseAccept),
        Threat::Corruption | Threat::Transport => Some(WrongAccept::MissedCorruption),
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verdict.as_str())?;
        match self.reason {
            None => Ok(()),
            Some(reason) => write!(f, "{{{}}}", reason.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forgery_vectors_called_genuine_are_false_accepts() {
        let genuine = Verdict::GENUINE;
        let forged = Verdict::with(VerdictKind::Forged, Reason::SignatureMismatch);
        let unreadable = Verdict::with(VerdictKind::Unreadable, Reason::Timeout);
        let threat = Some(Threat::Forgery);
        assert_eq!(
            wrong_accept(threat, &forged, &genuine),
            Some(WrongAccept::FalseAccept)
        );
        assert_eq!(
            wrong_accept(Some(Threat::Corruption), &unreadable, &genuine),
            Some(WrongAccept::MissedCorruption)
        );
        assert_eq!(
            wrong_accept(Some(Threat::Transport), &unreadable, &genuine),
            Some(WrongAccept::MissedCorruption)
        );
        assert_eq!(wrong_accept(threat, &forged, &unreadable), None);
        assert_eq!(wrong_accept(threat, &genuine, &genuine), None);
        let untrusted = Verdict::new(VerdictKind::UntrustedCertificate, None);
        assert_eq!(wrong_accept(None, &untrusted, &genuine), None);
    }

    #[test]
    fn names_match_serde() {
        let v = Verdict::with(VerdictKind::NotResidenceCard, Reason::SignatureMismatch);
        assert_eq!(v.to_string(), "not_residence_card{signature_mismatch}");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"verdict":"not_residence_card","reason":"signature_mismatch"}"#
        );
    }
}
