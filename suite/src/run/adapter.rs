//! Checker adapters (BoringSSL BoGo style): how to start a checker, read its verdict, what it
//! trusts and which cases it declares unsupported. One YAML file per checker.
//!
//! ```yaml
//! name: pyscard-nosig
//! command: [/usr/bin/python3, "{repo}/suite/examples/pyscard_checker.py", --reader, "{reader}", --card-number, "{card_number}"]
//! timeout_ms: 20000
//! verdict: json              # rclab.verdict/1 or /2 on stdout; or {exit_codes: {0: {verdict: genuine}}}
//! trust: test_ca             # test_ca | pinned
//! cards: [residence]         # the card kinds it checks: residence (default), my_number, specified_residence
//! unsupported:
//!   - profiles: "forged/gen2-*"
//!     reason: does not know generation 2
//! ```
//!
//! Placeholders ([`PLACEHOLDERS`]): `{reader}` (the PC/SC reader's name), `{card_number}`,
//! `{pin}` (the JPKI authentication PIN of a My Number or specified card, empty for a
//! residence card), `{delivery_key}` (the absolute path of the TEST delivery public-key file
//! a checker of a specified residence card is configured with, in the format the profile's
//! `platform.residence_delivery_key_format` names; empty for other card kinds), `{profile}`,
//! `{profile_name}`, `{trust_dir}`, `{repo}`.
//!
//! Placeholders are substituted once, left to right (a value holding `{repo}` stays as it
//! is), each into its own argument: the argv form runs no shell, so no value can become
//! code. A placeholder inside the script of `sh -c '…'` (or bash, dash, zsh, ksh) is refused
//! when the adapter loads, because there a profile path such as `$(touch X)` would run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use rclab_emulator::chip::ChipKind;
use rclab_emulator::files::{MAX_PROFILE_FILE, read_bounded_text};
use rclab_emulator::verdict::{Reason, Verdict, VerdictKind};

use super::data::CardFields;

/// The JSON schema id checkers print (see README, "Verdict protocol").
pub const VERDICT_SCHEMA: &str = "rclab.verdict/1";

/// The same with the `data` a checker read (see `suite/schema/rclab.verdict.v2.json`).
pub const VERDICT_SCHEMA_V2: &str = "rclab.verdict/2";

/// An adapter file that cannot be used, with the file and the reason.
#[derive(Debug, Error)]
#[error("{file}: {message}")]
pub struct AdapterError {
    /// The adapter file.
    pub file: String,
    /// What is wrong.
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
/// Deserialized by hand (not `untagged`) so that a mistake is reported where it is, with
/// the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum VerdictProtocol {
    /// A `rclab.verdict/1` JSON object on stdout (the last line that parses wins).
    Json(JsonKeyword),
    /// The exit code alone, mapped to verdicts.
    ExitCodes {
        /// The verdict each exit code stands for.
        exit_codes: BTreeMap<i32, Verdict>,
    },
}

/// The word `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKeyword {
    /// The keyword `json`.
    Json,
}

/// One declared unsupported case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    /// Glob over profile names (`forged/*`, `*/gen2-*`).
    pub profiles: String,
    /// Why the checker does not support the case (shown in reports).
    pub reason: String,
}

/// The adapter's `kind:` word, as written in YAML and `results.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindWord {
    Reference,
    Process,
}

/// How the checker runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// rclab's own reference checker, run in-process through the channel trait.
    Reference,
    /// An external program reading a PC/SC reader.
    Process(ProcessChecker),
}

/// How a PC/SC run changes the card between two cases of one checker (`card_change:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardChange {
    /// Faithful: the card is taken out of the reader and the next one inserted, as a person
    /// would do it; pcscd notices each at its presence poll (about 1.2 s a case). Safe for
    /// any checker, including one that waits for an insertion event or keeps a connection
    /// or state from one card to the next: the default.
    #[default]
    Reinsert,
    /// Fast: while no checker runs, the chip behind the reader is swapped for the next
    /// case's (reset, with the same ATR), without a removal; the next checker process
    /// finds a fresh card already present. Only for checkers that start as a fresh process
    /// for each card and do not wait for an insertion; a card with another ATR, or a
    /// reader whose card left or is mid-exchange, is reinserted anyway.
    Swap,
}

impl CardChange {
    fn is_default(&self) -> bool {
        *self == CardChange::default()
    }
}

/// An external checker: the program to start and how to read its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessChecker {
    /// Program and arguments; placeholders: `{reader}`, `{card_number}`, `{pin}` (a My
    /// Number or specified profile's authentication PIN, empty for a residence card),
    /// `{delivery_key}` (the TEST delivery public-key file of a specified residence card,
    /// absolute, empty for other kinds), `{profile}` (profile file), `{profile_name}`,
    /// `{trust_dir}`, `{repo}` (repository root).
    pub command: Vec<String>,
    /// Environment variables set for the checker process.
    pub env: BTreeMap<String, String>,
    /// Time limit per case, in milliseconds.
    pub timeout_ms: u64,
    /// How the checker's verdict is read from its output.
    pub verdict: VerdictProtocol,
    /// How the card changes between its cases over PC/SC (see [`CardChange`]).
    pub card_change: CardChange,
}

/// One checker of a run: what it is called, what it trusts, what it declares unsupported,
/// and how it runs ([`Kind`]).
#[derive(Clone, Debug)]
pub struct Adapter {
    /// The checker's name in reports.
    pub name: String,
    /// Built-in reference checker or an external process.
    pub kind: Kind,
    /// Which trust roots the checker is given.
    pub trust: TrustMode,
    /// Cases the checker declares it does not support.
    pub unsupported: Vec<Unsupported>,
    /// One line for reports: what this checker is.
    pub description: String,
    /// Where it was loaded from (`built-in` for the reference checker), for messages.
    pub source: String,
    /// The card kinds it checks (`cards:`): the runner pairs it only with profiles of
    /// these kinds. A process checker checks residence cards unless its adapter says
    /// otherwise; the reference checker checks every kind.
    pub cards: Vec<ChipKind>,
    /// Profiles of the run that it was not paired with, their card kind being out of its
    /// scope: set by the runner ([`set_scope`]), shown in the reports' summaries.
    pub out_of_scope: usize,
}

/// The card kinds a checker of `kind` checks when its adapter does not say.
fn default_cards(kind: KindWord) -> Vec<ChipKind> {
    match kind {
        KindWord::Reference => vec![
            ChipKind::Residence,
            ChipKind::MyNumber,
            ChipKind::SpecifiedResidence,
        ],
        KindWord::Process => vec![ChipKind::Residence],
    }
}

/// `cards:`: a non-empty list of card kinds, each `residence`, `my_number` or
/// `specified_residence`.
/// Checked inside the visitor, so that an error carries a line and column.
fn card_kinds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ChipKind>>, D::Error> {
    struct Kinds;
    impl<'de> serde::de::Visitor<'de> for Kinds {
        type Value = Option<Vec<ChipKind>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(
                f,
                "a list of card kinds: residence, my_number, specified_residence \
                 (e.g. [residence, specified_residence])"
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            use serde::de::Error;
            let mut kinds = Vec::new();
            while let Some(kind) = seq.next_element::<ChipKind>()? {
                kinds.push(kind);
            }
            if kinds.is_empty() {
                return Err(A::Error::custom(
                    "an empty list checks no card: name at least one of residence, \
                     my_number, specified_residence",
                ));
            }
            Ok(Some(kinds))
        }
    }
    d.deserialize_seq(Kinds)
}

fn serialize_cards<S: serde::Serializer>(
    kinds: &Option<Vec<ChipKind>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let names: Vec<&str> = kinds.iter().flatten().map(|kind| kind.name()).collect();
    names.serialize(serializer)
}

/// Records on each checker how many of `profiles` are of a card kind it does not check.
pub fn set_scope(checkers: &mut [Adapter], profiles: &[rclab_emulator::profile::Profile]) {
    for checker in checkers {
        checker.out_of_scope = profiles
            .iter()
            .filter(|p| !checker.checks(p.kind()))
            .count();
    }
}

/// An adapter file as written (and as `results.json` lists checkers): the process fields
/// are optional in the file and written with their defaults for the reference checker.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterFile {
    name: String,
    #[serde(default = "default_kind")]
    kind: KindWord,
    #[serde(default, deserialize_with = "command")]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "default_timeout", deserialize_with = "timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_protocol")]
    verdict: VerdictProtocol,
    #[serde(default)]
    trust: TrustMode,
    #[serde(default)]
    unsupported: Vec<Unsupported>,
    #[serde(default)]
    description: String,
    #[serde(default, skip_serializing_if = "CardChange::is_default")]
    card_change: CardChange,
    #[serde(
        default,
        deserialize_with = "card_kinds",
        serialize_with = "serialize_cards",
        skip_serializing_if = "Option::is_none"
    )]
    cards: Option<Vec<ChipKind>>,
}

impl From<AdapterFile> for Adapter {
    fn from(file: AdapterFile) -> Adapter {
        let cards = file.cards.unwrap_or_else(|| default_cards(file.kind));
        let kind = match file.kind {
            // The process fields mean nothing to the built-in checker.
            KindWord::Reference => Kind::Reference,
            KindWord::Process => Kind::Process(ProcessChecker {
                command: file.command,
                env: file.env,
                timeout_ms: file.timeout_ms,
                verdict: file.verdict,
                card_change: file.card_change,
            }),
        };
        Adapter {
            name: file.name,
            kind,
            trust: file.trust,
            unsupported: file.unsupported,
            description: file.description,
            source: String::new(),
            cards,
            out_of_scope: 0,
        }
    }
}

/// A checker as `results.json` lists it (tools reading a report); `source` stays empty.
impl<'de> Deserialize<'de> for Adapter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Adapter, D::Error> {
        AdapterFile::deserialize(deserializer).map(Adapter::from)
    }
}

/// `results.json` lists each checker in the adapter file's layout; the reference checker
/// with the defaults of the process fields it does not use.
impl Serialize for Adapter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (kind, process) = match &self.kind {
            Kind::Reference => (KindWord::Reference, None),
            Kind::Process(p) => (KindWord::Process, Some(p)),
        };
        AdapterFile {
            name: self.name.clone(),
            kind,
            command: process.map(|p| p.command.clone()).unwrap_or_default(),
            env: process.map(|p| p.env.clone()).unwrap_or_default(),
            timeout_ms: process.map_or_else(default_timeout, |p| p.timeout_ms),
            verdict: process.map_or_else(default_protocol, |p| p.verdict.clone()),
            trust: self.trust,
            unsupported: self.unsupported.clone(),
            description: self.description.clone(),
            card_change: process.map(|p| p.card_change).unwrap_or_default(),
            // Listed only where they differ from the kind's default.
            cards: (self.cards != default_cards(kind)).then(|| self.cards.clone()),
        }
        .serialize(serializer)
    }
}

/// Longest checker timeout an adapter may set: one hour.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// The placeholders a command may hold.
pub const PLACEHOLDERS: [&str; 8] = [
    "reader",
    "card_number",
    "pin",
    "delivery_key",
    "profile",
    "profile_name",
    "trust_dir",
    "repo",
];

/// Programs whose `-c` argument is a script: placeholders there would be parsed as code.
const SHELLS: [&str; 8] = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"];

/// The option letter that makes `program`'s next argument a script (`sh -c`, `python3 -c`,
/// `perl -e`), if it has one.
fn script_option(program: &str) -> Option<char> {
    let base = program.rsplit('/').next().unwrap_or(program);
    if SHELLS.contains(&base) || base.starts_with("python") {
        Some('c')
    } else if matches!(base, "perl" | "ruby" | "node") {
        Some('e')
    } else {
        None
    }
}

fn timeout_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Millis;
    impl serde::de::Visitor<'_> for Millis {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a timeout of 1 to {MAX_TIMEOUT_MS} ms (one hour)")
        }
        fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<u64, E> {
            if (1..=MAX_TIMEOUT_MS).contains(&ms) {
                Ok(ms)
            } else {
                Err(E::custom(format!(
                    "{ms} is out of range: a timeout is 1 to {MAX_TIMEOUT_MS} ms (one hour)"
                )))
            }
        }
        fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<u64, E> {
            match u64::try_from(ms) {
                Ok(ms) => self.visit_u64(ms),
                Err(_) => Err(E::custom(format!(
                    "{ms} is out of range: a timeout is 1 to {MAX_TIMEOUT_MS} ms (one hour)"
                ))),
            }
        }
    }
    d.deserialize_u64(Millis)
}

/// `{name}` placeholders in `arg` (identifier-like names only: other braces are text).
fn placeholders(arg: &str) -> impl Iterator<Item = &str> {
    arg.match_indices('{').filter_map(move |(start, _)| {
        let rest = &arg[start + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then_some(name)
    })
}

/// A command with known placeholders only, none inside a shell's `-c` script (checked
/// inside the visitor, so that the error carries a line and column).
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Argv;
    impl<'de> serde::de::Visitor<'de> for Argv {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list: program, then its arguments")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut command = Vec::new();
            while let Some(arg) = seq.next_element::<String>()? {
                command.push(arg);
            }
            check_command(command)
        }
    }
    d.deserialize_seq(Argv)
}

fn check_command<E: serde::de::Error>(command: Vec<String>) -> Result<Vec<String>, E> {
    for (i, arg) in command.iter().enumerate() {
        if let Some(unknown) = placeholders(arg).find(|p| !PLACEHOLDERS.contains(p)) {
            return Err(E::custom(format!(
                "command[{i}]: unknown placeholder {{{unknown}}}; known: {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            )));
        }
    }
    if let Some((i, shell, placeholder)) = placeholder_in_shell_script(&command) {
        let option = script_option(shell).unwrap_or('c');
        return Err(E::custom(format!(
            "command[{i}]: placeholder {{{placeholder}}} inside a `{shell} -{option}` script: values are \
             pasted in raw, so a reader, profile or folder name holding shell syntax (`$(…)`, `;`) \
             would run as code. Call the checker directly (argv form: one placeholder per \
             argument), or pass values as arguments, e.g. [sh, -c, 'checker \"$1\"', sh, \"{{{placeholder}}}\"]"
        )));
    }
    Ok(command)
}

/// `(index, program, placeholder)` of the first inline script argument (`sh -c SCRIPT`,
/// `python3 -c SCRIPT`, `perl -e SCRIPT`) that holds a placeholder.
fn placeholder_in_shell_script(command: &[String]) -> Option<(usize, &str, &str)> {
    let (at, option) = command
        .iter()
        .enumerate()
        .find_map(|(i, arg)| script_option(arg).map(|o| (i, o)))?;
    let program = command[at].rsplit('/').next().unwrap_or("sh");
    let mut args = command.iter().enumerate().skip(at + 1);
    while let Some((_, arg)) = args.next() {
        let is_script_option = arg.len() > 1
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && arg[1..].contains(option);
        if is_script_option {
            let (i, script) = args.next()?;
            return placeholders(script).next().map(|p| (i, program, p));
        }
    }
    None
}

impl<'de> Deserialize<'de> for VerdictProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProtocolVisitor)
    }
}

/// The accepted forms of `verdict:`, for messages.
const VERDICT_FORMS: &str = "`json`, or `{exit_codes: {CODE: {verdict: VERDICT, reason: REASON}}}` (e.g. `{exit_codes: {0: {verdict: genuine}}}`)";

struct ProtocolVisitor;

impl<'de> serde::de::Visitor<'de> for ProtocolVisitor {
    type Value = VerdictProtocol;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{VERDICT_FORMS}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v {
            "json" => Ok(VerdictProtocol::Json(JsonKeyword::Json)),
            other => Err(E::custom(format!(
                "{:?} is not a verdict protocol; expected {VERDICT_FORMS}",
                super::printable(other, 40)
            ))),
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut exit_codes = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "exit_codes" if exit_codes.is_none() => {
                    exit_codes = Some(map.next_value::<BTreeMap<i32, Verdict>>()?);
                }
                "exit_codes" => return Err(A::Error::duplicate_field("exit_codes")),
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown key {:?}; expected {VERDICT_FORMS}",
                        super::printable(other, 40)
                    )));
                }
            }
        }
        match exit_codes {
            Some(exit_codes) if !exit_codes.is_empty() => {
                Ok(VerdictProtocol::ExitCodes { exit_codes })
            }
            _ => Err(A::Error::custom(format!(
                "`exit_codes` must map at least one exit code; expected {VERDICT_FORMS}"
            ))),
        }
    }
}

fn default_kind() -> KindWord {
    KindWord::Process
}
fn default_timeout() -> u64 {
    20_000
}
fn default_protocol() -> VerdictProtocol {
    VerdictProtocol::Json(JsonKeyword::Json)
}

impl Adapter {
    /// How the card changes between this checker's cases over PC/SC: as its adapter says
    /// for a process checker; the built-in reference checker connects afresh for each case
    /// and keeps nothing between cards, so it always gets the fast [`CardChange::Swap`].
    pub fn card_change(&self) -> CardChange {
        match &self.kind {
            Kind::Reference => CardChange::Swap,
            Kind::Process(process) => process.card_change,
        }
    }

    /// The built-in reference checker (`--checker reference`).
    pub fn reference() -> Adapter {
        Adapter {
            name: "reference".into(),
            kind: Kind::Reference,
            trust: TrustMode::TestCa,
            unsupported: Vec::new(),
            description: "rclab's strict reference checker (Rust, reads everything, verifies check code and chain)".into(),
            source: "built-in".into(),
            cards: default_cards(KindWord::Reference),
            out_of_scope: 0,
        }
    }

    /// True when this checker checks cards of `kind` (its `cards:`).
    pub fn checks(&self, kind: ChipKind) -> bool {
        self.cards.contains(&kind)
    }

    /// Loads every spec; two checkers with one name are an error naming both sources.
    pub fn load_all(specs: &[String]) -> Result<Vec<Adapter>, AdapterError> {
        let mut adapters: Vec<Adapter> = Vec::new();
        for spec in specs {
            let adapter = Adapter::load(spec)?;
            if let Some(first) = adapters.iter().find(|a| a.name == adapter.name) {
                return Err(AdapterError {
                    file: adapter.source.clone(),
                    message: format!(
                        "checker name `{}` is already used by {}: every checker needs its own name (it is the report's column)",
                        super::printable(&adapter.name, 80),
                        first.source
                    ),
                });
            }
            adapters.push(adapter);
        }
        Ok(adapters)
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
        let text = read_bounded_text(path, MAX_PROFILE_FILE)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let file: AdapterFile =
            serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text))
                .map_err(|e| {
                    let location = e
                        .inner()
                        .location()
                        .map(|l| format!(":{}:{}", l.line(), l.column()))
                        .unwrap_or_default();
                    let field = e.path().to_string();
                    // The YAML error's text repeats the path and ends with the position.
                    let mut what = e.inner().to_string();
                    if let Some(i) = what.rfind(" at line ") {
                        what.truncate(i);
                    }
                    let what = what
                        .strip_prefix(&format!("{field}: "))
                        .unwrap_or(&what)
                        .to_owned();
                    AdapterError {
                        file: format!("{}{location}", path.display()),
                        message: format!("field `{field}`: {what}"),
                    }
                })?;
        if file.kind == KindWord::Process && file.command.is_empty() {
            return Err(err("a process checker needs `command`".into()));
        }
        if file.name.trim().is_empty() || file.name.chars().any(char::is_control) {
            return Err(err(format!(
                "field `name`: {:?} is not a name (empty, or holds control characters)",
                super::printable(&file.name, 80)
            )));
        }
        let mut adapter = Adapter::from(file);
        adapter.source = path.display().to_string();
        Ok(adapter)
    }

    /// True for the built-in reference checker, the one `expect.limitation` is declared for.
    pub fn is_reference(&self) -> bool {
        self.kind == Kind::Reference
    }

    /// The declared reason when this adapter does not support `profile_name`.
    pub fn unsupported_reason(&self, profile_name: &str) -> Option<&str> {
        self.unsupported
            .iter()
            .find(|u| glob_match(&u.profiles, profile_name))
            .map(|u| u.reason.as_str())
    }
}

impl ProcessChecker {
    /// The per-case time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The command line with placeholders filled in: one pass, left to right, so a value
    /// is never searched for placeholders again (a profile path holding `{repo}` stays so).
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Vec<String> {
        self.command
            .iter()
            .map(|arg| substitute(arg, values))
            .collect()
    }
}

/// `arg` with each `{name}` of `values` replaced by its value, in one pass.
fn substitute(arg: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let found = after
            .find('}')
            .and_then(|end| values.get(&after[..end]).map(|value| (end, value)));
        match found {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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

/// The verdict in a checker's stdout (`rclab.verdict/1` or `/2`) and its detail line.
pub fn parse_json_verdict(stdout: &str) -> Result<(Verdict, String), String> {
    parse_json_verdict_with_data(stdout).map(|(verdict, detail, _)| (verdict, detail))
}

/// The verdict in a checker's stdout, its detail line and (`rclab.verdict/2` only) the
/// `data` it read, parsed against `suite/schema/rclab.verdict.v2.json`. A `/2` line whose
/// `data` breaks the schema is an error (the checker claims a format it does not keep);
/// a `/1` line's other fields are ignored, as `/1` promised.
pub fn parse_json_verdict_with_data(
    stdout: &str,
) -> Result<(Verdict, String, Option<CardFields>), String> {
    #[derive(Deserialize)]
    struct Line {
        schema: String,
        verdict: VerdictKind,
        #[serde(default)]
        reason: Option<Reason>,
        #[serde(default)]
        detail: String,
        /// `Some(Null)` for `"data": null` (which the schema refuses), `None` if absent.
        #[serde(default, deserialize_with = "present")]
        data: Option<serde_json::Value>,
    }
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
        serde_json::Value::deserialize(d).map(Some)
    }
    let mut last_error = "no JSON object on stdout".to_owned();
    // Whole stdout first (pretty-printed objects), then line by line from the end.
    let candidates = std::iter::once(stdout.trim()).chain(stdout.lines().rev().map(str::trim));
    for candidate in candidates.filter(|c| c.starts_with('{')) {
        match serde_json::from_str::<Line>(candidate) {
            Ok(line) if line.schema == VERDICT_SCHEMA => {
                return Ok((Verdict::new(line.verdict, line.reason), line.detail, None));
            }
            Ok(line) if line.schema == VERDICT_SCHEMA_V2 => {
                let data = match &line.data {
                    None => None,
                    Some(value) => Some(CardFields::from_json(value)?),
                };
                return Ok((Verdict::new(line.verdict, line.reason), line.detail, data));
            }
            Ok(line) => {
                last_error = format!(
                    "schema {:?}, expected {VERDICT_SCHEMA:?} or {VERDICT_SCHEMA_V2:?}",
                    line.schema
                )
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
    fn placeholders_are_substituted_once() {
        let adapter = ProcessChecker {
            command: vec!["x".into(), "{profile}:{repo}:{unknown}:{".into()],
            env: BTreeMap::new(),
            timeout_ms: default_timeout(),
            verdict: default_protocol(),
            card_change: CardChange::Reinsert,
        };
        let values: BTreeMap<&str, String> = [
            ("profile", "/p/{repo}/q".to_owned()),
            ("repo", "/repo".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(adapter.render(&values)[1], "/p/{repo}/q:/repo:{unknown}:{");
    }

    #[test]
    fn the_delivery_key_placeholder_is_known_and_substituted() {
        assert!(PLACEHOLDERS.contains(&"delivery_key"));
        let command: Vec<String> = ["checker", "--delivery-key", "{delivery_key}", "{pin}"]
            .map(str::to_owned)
            .to_vec();
        let command = check_command::<serde_yaml_ng::Error>(command).unwrap();
        let adapter = ProcessChecker {
            command,
            env: BTreeMap::new(),
            timeout_ms: default_timeout(),
            verdict: default_protocol(),
            card_change: CardChange::Reinsert,
        };
        let values: BTreeMap<&str, String> = [
            (
                "delivery_key",
                "/r/vectors/pki/mynumber/delivery.pub.tlv".to_owned(),
            ),
            ("pin", String::new()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            adapter.render(&values),
            [
                "checker",
                "--delivery-key",
                "/r/vectors/pki/mynumber/delivery.pub.tlv",
                ""
            ]
        );
        // Inside a shell script it is refused like every placeholder.
        let script = ["sh", "-c", "checker {delivery_key}"]
            .map(str::to_owned)
            .to_vec();
        let error = check_command::<serde_yaml_ng::Error>(script)
            .unwrap_err()
            .to_string();
        assert!(error.contains("{delivery_key}"), "{error}");
        // A misspelt placeholder lists the known ones, this one included.
        let typo = ["x", "{delivery}"].map(str::to_owned).to_vec();
        let error = check_command::<serde_yaml_ng::Error>(typo)
            .unwrap_err()
            .to_string();
        assert!(error.contains("{delivery_key}"), "{error}");
    }

    #[test]
    fn placeholders_in_shell_scripts_are_found() {
        let argv = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let found = |args: &[&str]| {
            placeholder_in_shell_script(&argv(args)).map(|(i, _, p)| (i, p.to_owned()))
        };
        assert_eq!(
            found(&["sh", "-c", "x {profile}"]),
            Some((2, "profile".into()))
        );
        assert_eq!(
            found(&["/bin/bash", "-ec", "x {reader}"]),
            Some((2, "reader".into()))
        );
        assert_eq!(
            found(&["env", "A=1", "dash", "-x", "-c", "{repo}/x"]),
            Some((5, "repo".into()))
        );
        assert_eq!(found(&["sh", "-c", "x \"$1\"", "sh", "{profile}"]), None);
        assert_eq!(found(&["sh", "{repo}/script.sh", "{profile}"]), None);
        assert_eq!(
            found(&["python3", "-c", "{profile}"]),
            Some((2, "profile".into()))
        );
        assert_eq!(
            found(&["perl", "-e", "{profile}"]),
            Some((2, "profile".into()))
        );
        assert_eq!(
            found(&["python3", "{repo}/x.py", "-c", "{card_number}"]),
            Some((3, "card_number".into()))
        );
    }

    /// An adapter file's text, read as a run reads it.
    fn from_yaml(text: &str) -> Result<Adapter, String> {
        serde_yaml_ng::from_str::<AdapterFile>(text)
            .map(Adapter::from)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn card_change_defaults_to_reinsert_and_names_its_values() {
        let base = "name: x\nkind: process\ncommand: [x]\n";
        let plain = from_yaml(base).unwrap();
        assert_eq!(plain.card_change(), CardChange::Reinsert);
        let swap = from_yaml(&format!("{base}card_change: swap\n")).unwrap();
        assert_eq!(swap.card_change(), CardChange::Swap);
        let error = from_yaml(&format!("{base}card_change: sometimes\n")).unwrap_err();
        assert!(
            error.contains("card_change") || error.contains("swap"),
            "{error}"
        );
        // The reference checker connects afresh for each case: always swapped.
        assert_eq!(Adapter::reference().card_change(), CardChange::Swap);
        // results.json lists a swap adapter with its card_change, a default one without.
        let listed = serde_json::to_value(&swap).unwrap();
        assert_eq!(listed["card_change"], "swap");
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("card_change")
                .is_none()
        );
        let back: Adapter = serde_json::from_value(listed).unwrap();
        assert_eq!(back.card_change(), CardChange::Swap);
    }

    #[test]
    fn cards_default_by_kind_parse_every_kind_and_refuse_bad_values_with_their_place() {
        use ChipKind::{MyNumber, Residence, SpecifiedResidence};
        let process = "name: x\nkind: process\ncommand: [x]\n";
        assert_eq!(from_yaml(process).unwrap().cards, vec![Residence]);
        assert_eq!(
            Adapter::reference().cards,
            vec![Residence, MyNumber, SpecifiedResidence],
            "the reference checker checks every kind"
        );
        let mn = from_yaml(&format!("{process}cards: [my_number]\n")).unwrap();
        assert!(mn.checks(MyNumber) && !mn.checks(Residence) && !mn.checks(SpecifiedResidence));
        let both = from_yaml(&format!("{process}cards: [residence, my_number]\n")).unwrap();
        assert!(both.checks(MyNumber) && both.checks(Residence));
        let specified = from_yaml(&format!(
            "{process}cards: [residence, specified_residence]\n"
        ))
        .unwrap();
        assert_eq!(specified.cards, vec![Residence, SpecifiedResidence]);
        assert_eq!(
            serde_json::to_value(&specified).unwrap()["cards"],
            serde_json::json!(["residence", "specified_residence"])
        );
        let back: Adapter =
            serde_json::from_value(serde_json::to_value(&specified).unwrap()).unwrap();
        assert_eq!(back.cards, specified.cards);
        // The reference checker's default (all three kinds) is not listed.
        assert!(
            serde_json::to_value(Adapter::reference())
                .unwrap()
                .get("cards")
                .is_none()
        );
        // results.json lists `cards` only where they differ from the kind's default.
        assert_eq!(
            serde_json::to_value(&mn).unwrap()["cards"],
            serde_json::json!(["my_number"])
        );
        assert!(
            serde_json::to_value(from_yaml(process).unwrap())
                .unwrap()
                .get("cards")
                .is_none()
        );
        let back: Adapter = serde_json::from_value(serde_json::to_value(&mn).unwrap()).unwrap();
        assert_eq!(back.cards, vec![MyNumber]);

        // Bad values: the file, line and column, the field, and what is accepted.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let kinds = ["residence", "my_number", "specified_residence"];
        for (body, line, wanted) in [
            ("cards: [passport]\n", 4, "my_number"),
            ("cards: []\n", 4, "at least one"),
            ("cards: my_number\n", 4, "a list of card kinds"),
        ] {
            let path = dir.join("bad.yaml");
            std::fs::write(&path, format!("{process}{body}")).unwrap();
            let error = Adapter::load(path.to_str().unwrap())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("bad.yaml:{line}:"))
                    && error.contains("field `cards")
                    && error.contains(wanted)
                    && kinds.iter().all(|kind| error.contains(kind)),
                "{body:?}: {error}"
            );
        }
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

    #[test]
    fn checkers_are_listed_in_the_adapter_file_layout_the_reference_with_defaults() {
        let json = serde_json::to_value(Adapter::reference()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "reference",
                "kind": "reference",
                "command": [],
                "env": {},
                "timeout_ms": 20000,
                "verdict": "json",
                "trust": "test_ca",
                "unsupported": [],
                "description": Adapter::reference().description,
            })
        );
        let process: Adapter = serde_json::from_value(serde_json::json!({
            "name": "p",
            "command": ["x", "{reader}"],
            "timeout_ms": 5,
            "verdict": {"exit_codes": {"0": {"verdict": "genuine"}}},
        }))
        .unwrap();
        let Kind::Process(p) = &process.kind else {
            panic!("no `kind` means a process: {process:?}");
        };
        assert_eq!((p.command.len(), p.timeout_ms), (2, 5));
        let again = serde_json::to_value(&process).unwrap();
        assert_eq!(again["kind"], "process");
        assert_eq!(again["command"], serde_json::json!(["x", "{reader}"]));
        assert_eq!(again["verdict"]["exit_codes"]["0"]["verdict"], "genuine");
    }
}
