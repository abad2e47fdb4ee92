//! The subcommands of `rclab`, one module each, and what they share.

pub(crate) mod check;
pub(crate) mod merge;
pub(crate) mod parse;
pub(crate) mod probe;
pub(crate) mod record;
pub(crate) mod run;
pub(crate) mod serve;

use anyhow::{Context, Result};

/// Writes `text` to standard output: a failed write (a full disk behind a redirection) is
/// an error, not a panic and not silence.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}
