//! One rule for judging a checker's verdict against a profile's expectation, shared by
//! `rclab check`, `rclab run` and the tests: the verdict meets the expectation, misses it
//! (and whether it wrongly called the card genuine), or misses it within a limitation the
//! profile declares for the reference checker (`expect.limitation`).

use rclab_emulator::verdict::{Threat, Verdict, VerdictKind, WrongAccept, wrong_accept};

/// How one verdict compares with its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The verdict meets the expectation.
    Pass,
    /// The verdict misses the expectation; `Some` when it called a card genuine that is a
    /// forgery vector (false accept) or otherwise corrupted (missed corruption).
    Fail(Option<WrongAccept>),
    /// A genuine card (a valid profile or one of its variants) not called genuine: the
    /// checker would turn away a real card. Counted apart from false accepts.
    FalseReject,
    /// The verdict misses the expectation in a way the profile declares the reference
    /// checker cannot do better on (`expect.limitation`). Never a genuine verdict on a card
    /// that is not genuine.
    Limitation,
}

/// Judges `actual` against `expected`. `threat` is the profile's `expect.threat`;
/// `limitation` its `expect.limitation` when the checker is the one the limitation is
/// declared for (the reference checker), else `None`. A limitation never excuses a
/// genuine verdict on a card that is not genuine.
pub fn judge(
    expected: &Verdict,
    actual: &Verdict,
    threat: Option<Threat>,
    limitation: Option<&str>,
) -> Judgement {
    if expected.accepts(actual) {
        return Judgement::Pass;
    }
    let wrongly_genuine =
        actual.verdict == VerdictKind::Genuine && expected.verdict != VerdictKind::Genuine;
    if limitation.is_some() && !wrongly_genuine {
        return Judgement::Limitation;
    }
    if expected.verdict == VerdictKind::Genuine && actual.verdict != VerdictKind::Genuine {
        return Judgement::FalseReject;
    }
    Judgement::Fail(wrong_accept(threat, expected, actual))
}

impl Judgement {
    /// A verdict that makes `rclab check` and `rclab run` fail.
    pub fn is_failure(self) -> bool {
        matches!(self, Judgement::Fail(_) | Judgement::FalseReject)
    }

    /// How a wrong `genuine` counts, if this is one.
    pub fn wrong_accept(self) -> Option<WrongAccept> {
        match self {
            Judgement::Fail(wrong) => wrong,
            Judgement::Pass | Judgement::Limitation | Judgement::FalseReject => None,
        }
    }

    /// The result column of `rclab check`'s table.
    pub fn label(self) -> &'static str {
        match self {
            Judgement::Pass => "ok",
            Judgement::Limitation => "limitation",
            Judgement::Fail(Some(WrongAccept::FalseAccept)) => "MISMATCH (false accept)",
            Judgement::Fail(Some(WrongAccept::MissedCorruption)) => "MISMATCH (missed corruption)",
            Judgement::Fail(None) => "MISMATCH",
            Judgement::FalseReject => "MISMATCH (false reject)",
        }
    }
}

#[cfg(test)]
mod tests {
    use rclab_emulator::verdict::Reason;

    use super::*;

    const LIMITED: Option<&str> = Some("the reference checker cannot tell");

    fn forged() -> Verdict {
        Verdict::with(VerdictKind::Forged, Reason::SignatureMismatch)
    }

    #[test]
    fn a_verdict_that_meets_its_expectation_passes_with_or_without_a_limitation() {
        for limitation in [None, LIMITED] {
            assert_eq!(
                judge(&forged(), &forged(), Some(Threat::Forgery), limitation),
                Judgement::Pass
            );
        }
        // An expectation without a reason accepts any reason of its kind.
        let any_forged = Verdict::new(VerdictKind::Forged, None);
        assert_eq!(
            judge(&any_forged, &forged(), Some(Threat::Forgery), None),
            Judgement::Pass
        );
        assert!(!Judgement::Pass.is_failure());
        assert_eq!(Judgement::Pass.label(), "ok");
    }

    #[test]
    fn another_verdict_fails_without_being_a_wrong_accept() {
        let unreadable = Verdict::with(VerdictKind::Unreadable, Reason::MalformedData);
        let j = judge(&forged(), &unreadable, Some(Threat::Forgery), None);
        assert_eq!(j, Judgement::Fail(None));
        assert!(j.is_failure());
        assert_eq!(j.wrong_accept(), None);
        assert_eq!(j.label(), "MISMATCH");
        // A valid card called forged: a false reject, never a wrong accept.
        let j = judge(&Verdict::GENUINE, &forged(), None, None);
        assert_eq!(j, Judgement::FalseReject);
        assert!(j.is_failure());
        assert_eq!(j.wrong_accept(), None);
        assert_eq!(j.label(), "MISMATCH (false reject)");
    }

    #[test]
    fn a_forgery_vector_called_genuine_is_a_false_accept_even_with_a_limitation() {
        for limitation in [None, LIMITED] {
            let j = judge(
                &forged(),
                &Verdict::GENUINE,
                Some(Threat::Forgery),
                limitation,
            );
            assert_eq!(j, Judgement::Fail(Some(WrongAccept::FalseAccept)));
            assert_eq!(j.label(), "MISMATCH (false accept)");
            assert!(j.is_failure());
        }
    }

    #[test]
    fn a_corrupted_card_called_genuine_is_a_missed_corruption_even_with_a_limitation() {
        let unreadable = Verdict::with(VerdictKind::Unreadable, Reason::MalformedData);
        for threat in [Threat::Corruption, Threat::Transport] {
            for limitation in [None, LIMITED] {
                let j = judge(&unreadable, &Verdict::GENUINE, Some(threat), limitation);
                assert_eq!(j, Judgement::Fail(Some(WrongAccept::MissedCorruption)));
                assert_eq!(j.label(), "MISMATCH (missed corruption)");
            }
        }
    }

    #[test]
    fn a_genuine_verdict_without_a_threat_is_a_plain_failure_a_limitation_cannot_excuse() {
        let untrusted = Verdict::new(VerdictKind::UntrustedCertificate, None);
        assert_eq!(
            judge(&untrusted, &Verdict::GENUINE, None, LIMITED),
            Judgement::Fail(None)
        );
    }

    #[test]
    fn a_declared_limitation_excuses_any_other_miss() {
        let unreadable = Verdict::with(VerdictKind::Unreadable, Reason::MalformedData);
        let j = judge(&forged(), &unreadable, Some(Threat::Forgery), LIMITED);
        assert_eq!(j, Judgement::Limitation);
        assert!(!j.is_failure());
        assert_eq!(j.wrong_accept(), None);
        assert_eq!(j.label(), "limitation");
        // A genuine card the reference checker cannot confirm.
        assert_eq!(
            judge(&Verdict::GENUINE, &unreadable, None, LIMITED),
            Judgement::Limitation
        );
    }
}
