//! Checker adapters (BoringSSL BoGo style): how to start a checker, read its verdict, what it
//! trusts and which cases it declares unsupported. One YAML file per checker.
//!
//! ```yaml
//! name: pyscard-nosig
//! command: [/usr/bin/python3, "{repo}/suite/examples/pyscard_checker.py", --reader, "{reader}", --card-number, "{card_number}"]
//! timeout_ms: 20000
//! verdict: json              # rclab.verdict/1 on stdout; or {exit_codes: {0: {verdict: genuine}}}
//! trust: test_ca             # test_ca | pinned
//! unsupported:
//!   - profiles: "forged/gen2-*"
//!     reason: does not know generation 2
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

/// The JSON schema id checkers print (see README, "Verdict protocol").
pub const VERDICT_SCHEMA: &str = "rclab.verdict/1";

#[derive(Debug, Error)]
#[error("{file}: {message}")]
pub struct AdapterError {
    pub file: String,
    pub message: String,
}

/// What the checker was given to trust.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustMode {
    /// It trusts our TEST roots: expectations apply as written.
    #[default]
    TestCa,
    /// It trusts only the production roots: a valid card can at best be
    /// `untrusted_certificate`, and forgeries must be caught before the chain.
    Pinned,
}

/// How to read the checker's verdict: `verdict: json`, or
/// `verdict: {exit_codes: {0: {verdict: genuine}, 3: {verdict: unreadable}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerdictProtocol {
    /// A `rclab.verdict/1` JSON object on stdout (the last line that parses wins).
    Json(JsonKeyword),
    /// The exit code alone, mapped to verdicts.
    ExitCodes { exit_codes: BTreeMap<i32, Verdict> },
}

/// The word `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKeyword {
    Json,
}

/// One declared unsupported case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    /// Glob over profile names (`forged/*`, `*/gen2-*`).
    pub profiles: String,
    pub reason: String,
}

/// How the checker runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// rclab's own reference checker, run in-process through the channel trait.
    Reference,
    /// An external program reading a PC/SC reader.
    Process,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: Kind,
    /// Program and arguments; placeholders: `{reader}`, `{card_number}`, `{profile}`
    /// (profile file), `{profile_name}`, `{trust_dir}`, `{repo}` (repository root).
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_protocol")]
    pub verdict: VerdictProtocol,
    #[serde(default)]
    pub trust: TrustMode,
    #[serde(default)]
    pub unsupported: Vec<Unsupported>,
    /// One line for reports: what this checker is.
    #[serde(default)]
    pub description: String,
}

fn default_kind() -> Kind {
    Kind::Process
}
fn default_timeout() -> u64 {
    20_000
}
fn default_protocol() -> VerdictProtocol {
    VerdictProtocol::Json(JsonKeyword::Json)
}

impl Adapter {
    /// The built-in reference checker (`--checker reference`).
    pub fn reference() -> Adapter {
        Adapter {
            name: "reference".into(),
            kind: Kind::Reference,
            command: Vec::new(),
            env: BTreeMap::new(),
            timeout_ms: default_timeout(),
            verdict: VerdictProtocol::Json(JsonKeyword::Json),
            trust: TrustMode::TestCa,
            unsupported: Vec::new(),
            description: "rclab's strict reference checker (Rust, reads everything, verifies check code and chain)".into(),
        }
    }

    /// `reference`, or an adapter YAML file.
    pub fn load(spec: &str) -> Result<Adapter, AdapterError> {
        if spec == "reference" {
            return Ok(Adapter::reference());
        }
        let path = Path::new(spec);
        let err = |message: String| AdapterError {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let adapter: Adapter =
            serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text))
                .map_err(|e| {
                    let location = e
                        .inner()
                        .location()
                        .map(|l| format!(":{}:{}", l.line(), l.column()))
                        .unwrap_or_default();
                    let field = e.path().to_string();
                    AdapterError {
                        file: format!("{}{location}", path.display()),
                        message: format!("field `{field}`: {}", e.inner()),
                    }
                })?;
        if adapter.kind == Kind::Process && adapter.command.is_empty() {
            return Err(err("a process checker needs `command`".into()));
        }
        Ok(adapter)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The declared reason when this adapter does not support `profile_name`.
    pub fn unsupported_reason(&self, profile_name: &str) -> Option<&str> {
        self.unsupported
            .iter()
            .find(|u| glob_match(&u.profiles, profile_name))
            .map(|u| u.reason.as_str())
    }

    /// The command line with placeholders filled in.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Vec<String> {
        self.command
            .iter()
            .map(|arg| {
                values.iter().fold(arg.clone(), |acc, (key, value)| {
                    acc.replace(&format!("{{{key}}}"), value)
                })
            })
            .collect()
    }
}

/// The expectation a checker in `mode` must meet for a profile expecting `expected`.
/// A pinned checker cannot chain our TEST certificates: what would be genuine, or rejected
/// only at the chain (foreign or expired signer), becomes `untrusted_certificate`.
pub fn expectation_for(mode: TrustMode, expected: Verdict) -> Verdict {
    match (mode, expected.verdict, expected.reason) {
        (TrustMode::TestCa, _, _) => expected,
        (TrustMode::Pinned, VerdictKind::Genuine, _)
        | (
            TrustMode::Pinned,
            VerdictKind::Forged,
            Some(Reason::UnknownSigner | Reason::CertificateExpired),
        ) => Verdict::new(VerdictKind::UntrustedCertificate, None),
        (TrustMode::Pinned, _, _) => expected,
    }
}

/// `*` matches any run of characters (including `/`), `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The verdict in a checker's stdout (`rclab.verdict/1`) and its detail line.
pub fn parse_json_verdict(stdout: &str) -> Result<(Verdict, String), String> {
    #[derive(Deserialize)]
    struct Line {
        schema: String,
        verdict: VerdictKind,
        #[serde(default)]
        reason: Option<Reason>,
        #[serde(default)]
        detail: String,
    }
    let mut last_error = "no JSON object on stdout".to_owned();
    // Whole stdout first (pretty-printed objects), then line by line from the end.
    let candidates = std::iter::once(stdout.trim()).chain(stdout.lines().rev().map(str::trim));
    for candidate in candidates.filter(|c| c.starts_with('{')) {
        match serde_json::from_str::<Line>(candidate) {
            Ok(line) if line.schema == VERDICT_SCHEMA => {
                return Ok((Verdict::new(line.verdict, line.reason), line.detail));
            }
            Ok(line) => {
                last_error = format!("schema {:?}, expected {VERDICT_SCHEMA:?}", line.schema)
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("forged/*", "forged/gen1-x"));
        assert!(glob_match("*gen2*", "corrupted/gen2-y"));
        assert!(!glob_match("valid/*", "forged/a"));
        assert!(glob_match("valid/gen?-sprc", "valid/gen1-sprc"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn json_verdicts() {
        let out = "noise\n{\"schema\":\"rclab.verdict/1\",\"verdict\":\"forged\",\"reason\":\"sm_error\",\"detail\":\"x\"}\n";
        let (v, d) = parse_json_verdict(out).unwrap();
        assert_eq!(v, Verdict::with(VerdictKind::Forged, Reason::SmError));
        assert_eq!(d, "x");
        assert!(parse_json_verdict("{\"schema\":\"other/2\",\"verdict\":\"genuine\"}").is_err());
        assert!(parse_json_verdict("garbage").is_err());
    }

    #[test]
    fn pinned_expectations() {
        let genuine = Verdict::GENUINE;
        assert_eq!(
            expectation_for(TrustMode::Pinned, genuine).verdict,
            VerdictKind::UntrustedCertificate
        );
        let mismatch = Verdict::with(VerdictKind::Forged, Reason::SignatureMismatch);
        assert_eq!(expectation_for(TrustMode::Pinned, mismatch), mismatch);
    }
}
