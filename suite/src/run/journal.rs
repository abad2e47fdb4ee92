//! `OUT/results.jsonl`: one line per finished case, written the moment it is known, so a
//! killed run loses nothing it reported, and `--resume` runs only what is missing.
//!
//! Writing: each line is one `write(2)` on a file opened with `O_APPEND`, then
//! `fdatasync`; a short or failed write is an error that stops the run (see
//! [`Journal::append`]). Reading on `--resume` trusts nothing: the file may have been cut by a
//! kill, edited, shared by an older run with other profiles, or replaced by a device. Lines
//! that are not UTF-8, not a result, for a case this run does not have (or whose expectation
//! changed), or a repeat of a case already kept are skipped and reported, never fatal, and
//! never make a case appear twice. A cut last line is terminated before anything is appended
//! after it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rclab_emulator::verdict::Verdict;

use super::CaseResult;

/// Largest journal `--resume` reads (a full run of a dozen checkers is a few hundred MiB at
/// most: transcripts dominate).
pub const MAX_JOURNAL: u64 = 1 << 30;
/// Longest line kept; a longer one is skipped (a real result is well under 1 MiB).
pub const MAX_LINE: usize = 16 << 20;

/// Why a journal line was not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not valid UTF-8.
    NotUtf8,
    /// Longer than [`MAX_LINE`].
    TooLong,
    /// Not a `CaseResult` object (the serde error, short).
    Broken(String),
    /// A result for a checker × profile this run does not have.
    UnknownCase {
        /// The case's checker.
        checker: String,
        /// The case's profile.
        profile: String,
    },
    /// The case exists, but its expectation is no longer the one recorded.
    Stale {
        /// The case's checker.
        checker: String,
        /// The case's profile.
        profile: String,
    },
    /// A second line for a case already kept (the first one counts).
    Duplicate {
        /// The case's checker.
        checker: String,
        /// The case's profile.
        profile: String,
    },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotUtf8 => write!(f, "not UTF-8"),
            Skip::TooLong => write!(f, "longer than {MAX_LINE} bytes"),
            Skip::Broken(e) => write!(f, "not a result: {e}"),
            Skip::UnknownCase { checker, profile } => write!(
                f,
                "{} × {}: not a case of this run",
                printable(checker),
                printable(profile)
            ),
            Skip::Stale { checker, profile } => write!(
                f,
                "{} × {}: the profile's expectation changed since",
                printable(checker),
                printable(profile)
            ),
            Skip::Duplicate { checker, profile } => write!(
                f,
                "{} × {}: repeats an earlier line",
                printable(checker),
                printable(profile)
            ),
        }
    }
}

fn printable(text: &str) -> String {
    super::printable(text, 80)
}

/// What `--resume` found in a journal.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Results kept, in file order, at most one per case.
    pub results: Vec<CaseResult>,
    /// Skipped lines: 1-based line number and why.
    pub skipped: Vec<(usize, Skip)>,
    /// The file did not end with a newline (a write cut by a kill).
    pub cut_last_line: bool,
    /// Reading stopped at this I/O error (the rest of the file is unknown).
    pub read_error: Option<String>,
}

impl Resumed {
    /// One paragraph for the console: what was kept and every skipped line (the first 20).
    pub fn summary(&self, path: &Path) -> String {
        let mut text = format!(
            "resume: {} result(s) kept from {}",
            self.results.len(),
            path.display()
        );
        if !self.skipped.is_empty() {
            text.push_str(&format!("; {} line(s) skipped:", self.skipped.len()));
            for (line, why) in self.skipped.iter().take(20) {
                text.push_str(&format!("\n  line {line}: {why}"));
            }
            if self.skipped.len() > 20 {
                text.push_str(&format!("\n  … and {} more", self.skipped.len() - 20));
            }
        }
        if self.cut_last_line {
            text.push_str("\n  (the last line was cut off; it was terminated)");
        }
        text
    }
}

/// Reads journal lines from `reader`, keeping results for the cases in `cases` (checker,
/// profile → the expectation this run applies). Never fails: what cannot be kept is listed.
pub fn parse(reader: impl BufRead, cases: &HashMap<(String, String), Verdict>) -> Resumed {
    parse_with(reader, Some(cases))
}

/// Like [`parse`], keeping a result for any case (the first line of each).
pub fn parse_any(reader: impl BufRead) -> Resumed {
    parse_with(reader, None)
}

fn parse_with(
    mut reader: impl BufRead,
    cases: Option<&HashMap<(String, String), Verdict>>,
) -> Resumed {
    let mut resumed = Resumed::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        let (ended, too_long) = match read_line(&mut reader, &mut line) {
            Ok(Some(found)) => found,
            Ok(None) => break,
            Err(e) => {
                resumed.read_error = Some(e.to_string());
                break;
            }
        };
        number += 1;
        if !ended {
            resumed.cut_last_line = true;
        }
        if too_long {
            resumed.skipped.push((number, Skip::TooLong));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            resumed.skipped.push((number, Skip::NotUtf8));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let result: CaseResult = match serde_json::from_str(text) {
            Ok(result) => result,
            Err(e) => {
                let mut message = e.to_string();
                message.truncate(120);
                resumed.skipped.push((number, Skip::Broken(message)));
                continue;
            }
        };
        let key = (result.checker.clone(), result.profile.clone());
        let (checker, profile) = key.clone();
        let expected = match cases {
            Some(cases) => cases.get(&key),
            None => Some(&result.expected),
        };
        match expected {
            None => resumed
                .skipped
                .push((number, Skip::UnknownCase { checker, profile })),
            Some(expected) if *expected != result.expected => resumed
                .skipped
                .push((number, Skip::Stale { checker, profile })),
            Some(_) if !seen.insert(key) => resumed
                .skipped
                .push((number, Skip::Duplicate { checker, profile })),
            Some(_) => resumed.results.push(result),
        }
    }
    resumed
}

/// Reads one line (without its newline) into `line`, keeping at most [`MAX_LINE`] bytes.
/// `None` at end of input; otherwise (ended with a newline, was too long).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<(bool, bool)>> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some((false, too_long)));
        }
        any = true;
        let (chunk, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(ended);
        reader.consume(used);
        if ended {
            return Ok(Some((true, too_long)));
        }
    }
}

/// The open journal of a run; [`Journal::append`] adds one result.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// A journal error, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JournalError {
    /// The journal file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Journal {
    /// Opens (creating) `path` for appending; with `resume`, reads it first. Without
    /// `resume` an existing journal is emptied.
    pub fn open(
        path: &Path,
        resume: bool,
        cases: &HashMap<(String, String), Verdict>,
    ) -> Result<(Journal, Resumed), JournalError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |message: String| JournalError {
            path: path.display().to_string(),
            message,
        };
        // O_NONBLOCK: a FIFO here must be refused, not wait for a reader.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| err(format!("cannot open the results journal: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| err(format!("cannot read the results journal: {e}")))?;
        if !meta.is_file() {
            let what = rclab_emulator::files::kind_name(meta.file_type());
            return Err(err(format!(
                "the results journal must be a regular file, this is {what}"
            )));
        }
        let mut journal = Journal {
            file: file.try_clone().map_err(|e| err(e.to_string()))?,
            path: path.to_owned(),
        };
        if !resume {
            file.set_len(0)
                .map_err(|e| err(format!("cannot empty the results journal: {e}")))?;
            return Ok((journal, Resumed::default()));
        }
        if meta.len() > MAX_JOURNAL {
            return Err(err(format!(
                "{} bytes: larger than the {MAX_JOURNAL} bytes --resume reads; start a new run without --resume or in another --out",
                meta.len()
            )));
        }
        let reader = BufReader::with_capacity(1 << 16, (&mut file).take(MAX_JOURNAL));
        let resumed = parse(reader, cases);
        if let Some(e) = &resumed.read_error {
            return Err(err(format!("cannot read the results journal: {e}")));
        }
        if resumed.cut_last_line {
            // The next line must not be glued onto the cut one.
            journal.write_line(b"\n")?;
        }
        Ok((journal, resumed))
    }

    /// Appends `result` as one line: one `write`, then `fdatasync`. Any failure is an error
    /// naming the file; the caller stops the run.
    pub fn append(&mut self, result: &CaseResult) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(result).map_err(|e| JournalError {
            path: self.path.display().to_string(),
            message: format!("cannot encode a result: {e}"),
        })?;
        line.push(b'\n');
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), JournalError> {
        let err = |message: String| JournalError {
            path: self.path.display().to_string(),
            message,
        };
        let written = loop {
            match self.file.write(line) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }
        .map_err(|e| err(format!("cannot write a result: {e}")))?;
        if written != line.len() {
            return Err(err(format!(
                "cannot write a result: only {written} of {} bytes written (disk full?)",
                line.len()
            )));
        }
        self.file
            .sync_data()
            .map_err(|e| err(format!("cannot sync a result to disk: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_bounded_and_cut_lines_flagged() {
        let mut line = Vec::new();
        let mut input: &[u8] = b"ab\ncd";
        assert_eq!(
            read_line(&mut input, &mut line).unwrap(),
            Some((true, false))
        );
        assert_eq!(line, b"ab");
        assert_eq!(
            read_line(&mut input, &mut line).unwrap(),
            Some((false, false))
        );
        assert_eq!(line, b"cd");
        assert_eq!(read_line(&mut input, &mut line).unwrap(), None);
    }
}
