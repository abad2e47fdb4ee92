//! Reading profile files: YAML syntax, `extends:` chains and errors that name the file,
//! line, column and field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use thiserror::Error;

use super::schema::ProfileDoc;

/// A profile that cannot be loaded or compiled.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ProfileError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// Dotted path of the field (`card.number`), when the problem has one.
    pub field: Option<String>,
    pub message: String,
}

impl ProfileError {
    pub fn new(file: &Path, field: Option<&str>, message: impl Into<String>) -> ProfileError {
        ProfileError {
            file: file.to_path_buf(),
            location: None,
            field: field.map(str::to_owned),
            message: message.into(),
        }
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

/// Keys whose values are file paths, relative to the file that writes them.
const PATH_FIELDS: [(&str, &str); 6] = [
    ("images", "front"),
    ("images", "face"),
    ("images", "name"),
    ("images", "address"),
    ("signature", "certificate"),
    ("signature", "key"),
];

/// A profile with everything it extends merged in.
pub struct Merged {
    /// The profile as signed.
    pub doc: ProfileDoc,
    /// The profile with its `tamper:` data fields merged over it (what the chip holds),
    /// when it tampers with any.
    pub tampered: Option<ProfileDoc>,
}

/// Loads `path` and everything it extends.
pub fn load_merged(path: &Path) -> Result<Merged, ProfileError> {
    let mut chain: Vec<PathBuf> = Vec::new();
    let mut layers: Vec<Value> = Vec::new();
    let mut next = Some(path.to_path_buf());
    while let Some(file) = next.take() {
        let canonical = file
            .canonicalize()
            .map_err(|e| ProfileError::new(&file, None, format!("cannot open: {e}")))?;
        if chain
            .iter()
            .any(|seen| seen.canonicalize().ok().as_ref() == Some(&canonical))
        {
            return Err(ProfileError::new(
                path,
                Some("extends"),
                format!("`extends:` cycle through {}", file.display()),
            ));
        }
        let (doc, value) = read_one(&file)?;
        if let Some(parent) = &doc.extends {
            next = Some(relative_to(&file, parent));
        }
        chain.push(file);
        layers.push(value);
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
            Some(serde_path_to_error::deserialize(on_chip).map_err(|e| path_error(path, e))?)
        }
        None => None,
    };
    let doc = serde_path_to_error::deserialize(merged).map_err(|e| path_error(path, e))?;
    Ok(Merged { doc, tampered })
}

/// Largest file a profile reads (YAML, images, keys, certificates are all far smaller).
pub const MAX_FILE: u64 = crate::files::MAX_PROFILE_FILE;

/// Reads a regular file of at most [`MAX_FILE`] bytes: a profile naming `/dev/zero`, a FIFO
/// or a huge file gets an error, not a hang or an exhausted memory.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, crate::files::ReadError> {
    crate::files::read_bounded(path, MAX_FILE)
}

/// Parses one file: typed (for precise errors) and as a value (for merging), with path
/// fields made absolute so that a child in another folder inherits working paths.
fn read_one(file: &Path) -> Result<(ProfileDoc, Value), ProfileError> {
    let bytes = read_limited(file)
        .map_err(|e| ProfileError::new(file, None, format!("cannot read: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|_| ProfileError::new(file, None, "not UTF-8 text"))?;
    let doc = deserialize(file, &text)?;
    let mut value: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| yaml_error(file, None, &e))?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    for (section, key) in PATH_FIELDS {
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
    Ok((doc, value))
}

fn deserialize(file: &Path, text: &str) -> Result<ProfileDoc, ProfileError> {
    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|e| path_error(file, e))
}

fn path_error(file: &Path, e: serde_path_to_error::Error<serde_yaml_ng::Error>) -> ProfileError {
    let field = e.path().to_string();
    let field = (field != ".").then_some(field);
    yaml_error(file, field, e.inner())
}

fn yaml_error(file: &Path, field: Option<String>, e: &serde_yaml_ng::Error) -> ProfileError {
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
    ProfileError {
        file: file.to_path_buf(),
        location: e.location().map(|l| (l.line(), l.column())),
        field,
        message,
    }
}

/// `target` read relative to the folder of `file` (absolute paths stay).
pub fn relative_to(file: &Path, target: &Path) -> PathBuf {
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
