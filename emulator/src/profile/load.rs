//! Reading profile files: YAML syntax, `extends:` chains and errors that name the file,
//! line, column and field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use thiserror::Error;

use super::scan::{self, KeyIndex};
use super::schema::ProfileDoc;
use crate::protocol::Generation;

/// A profile that cannot be loaded or compiled.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ProfileError {
    /// The profile file the error is in.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// Dotted path of the field (`card.number`), when the problem has one.
    pub field: Option<String>,
    /// What is wrong, in words for the profile's author.
    pub message: String,
}

impl ProfileError {
    /// An error in `file`, at `field` when the mistake is in one field.
    pub fn new(file: &Path, field: Option<&str>, message: impl Into<String>) -> ProfileError {
        ProfileError {
            file: file.to_path_buf(),
            location: None,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Longest excerpt of a file's content an error message quotes: a file named by mistake
/// (`extends: /etc/shadow`) must not be echoed into logs.
pub const MAX_EXCERPT: usize = 40;

/// `text` escaped (control characters, quotes) and cut to [`MAX_EXCERPT`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_EXCERPT).collect();
    if text.chars().nth(MAX_EXCERPT).is_some() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// A parser message with every quoted piece (`"…"` as serde quotes values, `` `…` `` as it
/// quotes keys) cut to a short escaped excerpt: a value or key may be a line of a file that
/// is not a profile at all.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // A `"` quote is Debug-escaped: `\"` does not close it.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(close) = close else {
            out.push_str(&excerpt(body));
            return out;
        };
        let inner = &body[..close];
        if inner.chars().count() > MAX_EXCERPT || inner.chars().any(char::is_control) {
            out.push_str(&excerpt(inner));
        } else {
            out.push_str(inner);
        }
        out.push(quote);
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A field path built from a file's keys, cut like an excerpt when it is not a plain path.
fn redact_field(field: String) -> String {
    if field.len() <= 2 * MAX_EXCERPT && !field.chars().any(char::is_control) {
        field
    } else {
        excerpt(&field)
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where the fields of a merged profile are written: each file of the `extends:` chain
/// with its key index, the profile itself first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Locator {
    layers: Vec<(PathBuf, KeyIndex)>,
}

impl Locator {
    /// The file and position where `field` is written (the nearest file of the chain that
    /// writes it), or where its nearest written ancestor is.
    pub(crate) fn locate(&self, field: &str) -> Option<(&Path, scan::Position)> {
        let found = |want_exact: bool| {
            self.layers.iter().find_map(|(file, index)| {
                index
                    .locate(field)
                    .filter(|&(_, exact)| exact || !want_exact)
                    .map(|(position, _)| (file.as_path(), position))
            })
        };
        found(true).or_else(|| found(false))
    }

    /// An error about `field` at the place it is written; `fallback` names the file when
    /// the field is written nowhere (a required field missing from the whole chain).
    pub(crate) fn error(
        &self,
        fallback: &Path,
        field: &str,
        message: impl Into<String>,
    ) -> ProfileError {
        let (file, location) = match self.locate(field) {
            Some((file, position)) => (file, Some(position)),
            None => (fallback, None),
        };
        ProfileError {
            file: file.to_path_buf(),
            location,
            field: Some(redact_field(field.to_owned())),
            message: redact(&message.into()),
        }
    }
}

/// A profile with everything it extends merged in.
pub(crate) struct Merged {
    /// The profile as signed.
    pub doc: ProfileDoc,
    /// The profile with its `tamper:` data fields merged over it (what the chip holds),
    /// when it tampers with any.
    pub tampered: Option<ProfileDoc>,
    /// Where each field is written, for errors found after merging.
    pub locator: Locator,
}

/// Loads `path` and everything it extends.
pub(crate) fn load_merged(path: &Path) -> Result<Merged, ProfileError> {
    let mut chain: Vec<PathBuf> = Vec::new();
    let mut layers: Vec<Value> = Vec::new();
    let mut locator = Locator::default();
    let mut next = Some(path.to_path_buf());
    // The file whose `extends:` named `next`, and where it wrote it.
    let mut extended_by: Option<(PathBuf, Option<scan::Position>)> = None;
    while let Some(file) = next.take() {
        // A parent that cannot be read is blamed on the `extends:` that names it.
        let blame = |message: String| match &extended_by {
            Some((child, position)) => ProfileError {
                file: child.clone(),
                location: *position,
                field: Some("extends".into()),
                message: format!("{}: {message}", file.display()),
            },
            None => ProfileError::new(&file, None, message),
        };
        let canonical = file
            .canonicalize()
            .map_err(|e| blame(format!("cannot open: {e}")))?;
        if chain
            .iter()
            .any(|seen| seen.canonicalize().ok().as_ref() == Some(&canonical))
        {
            return Err(blame(
                "`extends:` cycle: this profile is already in the chain".into(),
            ));
        }
        let text = read_text(&file).map_err(blame)?;
        let (doc, value, index) = parse_one(&file, &text).map_err(|mut e| {
            // The parent's own error stays located in the parent; say who extends it.
            if let Some((child, position)) = &extended_by {
                let at = position
                    .map(|(l, c)| format!(":{l}:{c}"))
                    .unwrap_or_default();
                e.message = format!(
                    "{} (in the profile that `extends:` at {}{at} names)",
                    e.message,
                    child.display()
                );
            }
            e
        })?;
        if let Some(parent) = &doc.extends {
            next = Some(relative_to(&file, parent));
            let position = index.locate("extends").map(|(position, _)| position);
            extended_by = Some((file.clone(), position));
        }
        chain.push(file.clone());
        layers.push(value);
        locator.layers.push((file, index));
    }
    let mut merged = Value::Mapping(Mapping::new());
    for layer in layers.into_iter().rev() {
        // `expect:` judges one card as a whole: a child's replaces its parent's, so a
        // forged child never inherits the valid parent's reason or flags.
        if layer.get("expect").is_some()
            && let Value::Mapping(map) = &mut merged
        {
            map.remove("expect");
        }
        merge(&mut merged, layer);
    }
    if let Value::Mapping(map) = &mut merged {
        map.remove("extends");
    }
    // `tamper:` minus its byte edits is a partial profile laid over the signed one.
    let tamper_fields = match merged.get("tamper") {
        Some(Value::Mapping(tamper)) => {
            let mut fields = tamper.clone();
            fields.remove("files");
            (!fields.is_empty()).then_some(fields)
        }
        _ => None,
    };
    let tampered = match tamper_fields {
        Some(fields) => {
            let mut on_chip = merged.clone();
            if let Value::Mapping(map) = &mut on_chip {
                map.remove("tamper");
            }
            merge(&mut on_chip, Value::Mapping(fields));
            Some(
                serde_path_to_error::deserialize(on_chip)
                    .map_err(|e| path_error(path, Some(&locator), e))?,
            )
        }
        None => None,
    };
    let doc: ProfileDoc = serde_path_to_error::deserialize(merged)
        .map_err(|e| path_error(path, Some(&locator), e))?;
    check_generation_fields(&doc, &locator, path)?;
    Ok(Merged {
        doc,
        tampered,
        locator,
    })
}

/// Fields that only one generation's chip has. A profile of the other generation that sets
/// one would be silently ignored (a "forged" card genuine by accident), so it is an error.
fn check_generation_fields(
    doc: &ProfileDoc,
    locator: &Locator,
    path: &Path,
) -> Result<(), ProfileError> {
    let Some(generation) = doc.card.as_ref().and_then(|c| c.generation) else {
        return Ok(());
    };
    let images = |images: &Option<super::schema::ImagesDoc>| {
        let i = images.clone().unwrap_or_default();
        [
            ("front", i.front.is_some()),
            ("name", i.name.is_some()),
            ("address", i.address.is_some()),
        ]
    };
    let tamper = doc.tamper.clone().unwrap_or_default();
    let [front, name, address] = images(&doc.images);
    let [t_front, t_name, t_address] = images(&tamper.images);
    let (other_generation, fields): (u8, Vec<(&str, bool)>) = match generation {
        Generation::First => (
            2,
            vec![
                ("printed", doc.printed.is_some()),
                ("work_permission", doc.work_permission.is_some()),
                ("application_pending", doc.application_pending.is_some()),
                ("other", doc.other.is_some()),
                ("images.name", name.1),
                ("images.address", address.1),
                ("tamper.printed", tamper.printed.is_some()),
                ("tamper.work_permission", tamper.work_permission.is_some()),
                (
                    "tamper.application_pending",
                    tamper.application_pending.is_some(),
                ),
                ("tamper.other", tamper.other.is_some()),
                ("tamper.images.name", t_name.1),
                ("tamper.images.address", t_address.1),
            ],
        ),
        Generation::Second => (
            1,
            vec![
                ("address", doc.address.is_some()),
                ("back_side", doc.back_side.is_some()),
                ("text_encoding", doc.text_encoding.is_some()),
                ("images.front", front.1),
                ("tamper.address", tamper.address.is_some()),
                ("tamper.back_side", tamper.back_side.is_some()),
                ("tamper.text_encoding", tamper.text_encoding.is_some()),
                ("tamper.images.front", t_front.1),
            ],
        ),
    };
    match fields.into_iter().find(|&(_, set)| set) {
        Some((field, _)) => Err(locator.error(
            path,
            field,
            format!(
                "only a generation-{other_generation} card has this field; this profile is \
                 generation {}",
                3 - other_generation
            ),
        )),
        None => Ok(()),
    }
}

/// Largest file a profile reads (YAML, images, keys, certificates are all far smaller).
pub(crate) const MAX_FILE: u64 = crate::files::MAX_PROFILE_FILE;

/// Reads a regular file of at most [`MAX_FILE`] bytes: a profile naming `/dev/zero`, a FIFO
/// or a huge file gets an error, not a hang or an exhausted memory.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, crate::files::ReadError> {
    crate::files::read_bounded(path, MAX_FILE)
}

/// A profile file's text; the message (no file name, no content) says why it cannot be read.
fn read_text(file: &Path) -> Result<String, String> {
    let bytes = read_limited(file).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "cannot read: not UTF-8 text".to_owned())
}

/// Parses one file: typed (for precise errors) and as a value (for merging), with path
/// fields made absolute so that a child in another folder inherits working paths. The
/// pre-scan refuses aliases and deep nesting before serde_yaml_ng sees the text.
fn parse_one(file: &Path, text: &str) -> Result<(ProfileDoc, Value, KeyIndex), ProfileError> {
    let index = scan::scan(text).map_err(|e| ProfileError {
        file: file.to_path_buf(),
        location: Some(e.position),
        field: e.field.map(redact_field),
        message: e.message,
    })?;
    let doc = deserialize(file, text, &index)?;
    let mut value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, None, None, &e))?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    for (section, key) in super::schema::path_fields() {
        let in_root = value.get_mut(section).and_then(|s| s.get_mut(key));
        if let Some(Value::String(p)) = in_root {
            *p = relative_to(file, Path::new(p.as_str()))
                .to_string_lossy()
                .into_owned();
        }
        let in_tamper = value
            .get_mut("tamper")
            .and_then(|t| t.get_mut(section))
            .and_then(|s| s.get_mut(key));
        if let Some(Value::String(p)) = in_tamper {
            *p = relative_to(file, Path::new(p.as_str()))
                .to_string_lossy()
                .into_owned();
        }
    }
    Ok((doc, value, index))
}

fn deserialize(file: &Path, text: &str, index: &KeyIndex) -> Result<ProfileDoc, ProfileError> {
    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text)).map_err(|e| {
        let located = Locator {
            layers: vec![(file.to_path_buf(), index.clone())],
        };
        path_error(file, Some(&located), e)
    })
}

/// A serde error at a field path, placed at the field's own key (serde_yaml_ng places
/// value errors at the start of the enclosing mapping).
fn path_error(
    file: &Path,
    locator: Option<&Locator>,
    e: serde_path_to_error::Error<serde_yaml_ng::Error>,
) -> ProfileError {
    let field = e.path().to_string();
    let field = (field != ".").then_some(field);
    let place = field
        .as_deref()
        .and_then(|f| locator.and_then(|l| l.locate(f)))
        .map(|(file, position)| (file.to_path_buf(), position));
    yaml_error(file, field, place, e.inner())
}

fn yaml_error(
    file: &Path,
    field: Option<String>,
    place: Option<(PathBuf, scan::Position)>,
    e: &serde_yaml_ng::Error,
) -> ProfileError {
    let mut message = e.to_string();
    // serde_yaml_ng appends " at line L column C"; the location is printed separately.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    // It also prefixes the path of the enclosing mapping, which `field` already names.
    if let Some((prefix, rest)) = message.split_once(": ")
        && field.as_deref().is_some_and(|f| f.starts_with(prefix))
    {
        message = rest.to_owned();
    }
    let (file, location) = match place {
        Some((file, position)) => (file, Some(position)),
        None => (
            file.to_path_buf(),
            e.location().map(|l| (l.line(), l.column())),
        ),
    };
    ProfileError {
        file,
        location,
        field: field.map(redact_field),
        message: redact(&message),
    }
}

/// `target` read relative to the folder of `file` (absolute paths stay).
pub(crate) fn relative_to(file: &Path, target: &Path) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(target)
}

/// Deep merge: mappings merge key by key, anything else (sequences, scalars, `null`)
/// replaces what the parent had.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}
