//! The early end of a check: a step that cannot go on gives the verdict and one line
//! saying why.

use rclab_emulator::protocol::Status;
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

/// A reason to stop reading: the verdict and its explanation.
pub(super) struct Stop(pub Verdict, pub String);

/// A step of the check: its result, or the verdict that ends the check.
pub(super) type Step<T> = Result<T, Stop>;

/// Ends the check with `kind` (and `reason`), explained by `detail`.
pub(super) fn stop<T>(
    kind: VerdictKind,
    reason: Option<Reason>,
    detail: impl Into<String>,
) -> Step<T> {
    Err(Stop(Verdict::new(kind, reason), detail.into()))
}

/// The card answered `status` where the checker cannot go on.
pub(super) fn unexpected<T>(what: &str, status: Status) -> Step<T> {
    Err(unexpected_status(what, status))
}

/// The [`Stop`] of [`unexpected`].
pub(super) fn unexpected_status(what: &str, status: Status) -> Stop {
    Stop(
        Verdict::with(VerdictKind::Unreadable, Reason::UnexpectedStatus),
        format!("{what}: status {status}"),
    )
}

/// `malformed` data: the card's content breaks the form the checker requires.
pub(super) fn malformed<T>(detail: impl Into<String>) -> Step<T> {
    stop(VerdictKind::Unreadable, Some(Reason::MalformedData), detail)
}
