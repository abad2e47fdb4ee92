//! A pass over a profile's YAML event stream before serde sees it: it refuses what would
//! cost unbounded time or memory later, and indexes where every key is written.
//!
//! Why a separate pass: `serde_yaml_ng` expands aliases into whole copies (a 136 KB
//! "billion laughs" file took 1.8 GB) and its loader is quadratic in nesting depth (100 000
//! levels: 28 s). Both are refused here, from the event stream, which stops at the first
//! offence: the scan is linear in the file and holds at most [`MAX_DEPTH`] frames.
//! The same events carry the position of every key, which serde's errors do not give
//! (they point at the enclosing mapping), so error messages use this index instead.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_sys;

/// Deepest nesting of mappings and sequences a profile may use (bundled profiles use 4).
pub const MAX_DEPTH: usize = 64;

/// Where a key is written: 1-based line and column.
pub(crate) type Position = (usize, usize);

/// Why a profile's YAML was refused before deserialising.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub position: Position,
    /// Dotted path of the node where the problem is, when it has one.
    pub field: Option<String>,
    pub message: String,
}

/// Every key (and sequence item) of a profile file by dotted path (`card.number`, `tamper.files[0].append`),
/// as serde_path_to_error prints paths.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyIndex {
    keys: HashMap<String, Position>,
}

impl KeyIndex {
    /// Where `field` is written, or where its nearest written ancestor is.
    pub(crate) fn locate(&self, field: &str) -> Option<(Position, bool)> {
        let mut path = field;
        let mut exact = true;
        loop {
            if let Some(&position) = self.keys.get(path) {
                return Some((position, exact));
            }
            exact = false;
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

/// One open collection on the way to the current node.
enum Frame {
    /// `key` is the last key read; `None` while the next scalar is a key.
    Mapping {
        path: String,
        key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

/// Scans `text`: refuses aliases, anchors and nesting deeper than [`MAX_DEPTH`], and
/// returns the position of every key. A syntax error ends the scan quietly: serde_yaml_ng
/// reports it (with the same parser) in its usual words.
pub(crate) fn scan(text: &str) -> Result<KeyIndex, ScanError> {
    let mut parser = Parser::new(text.as_bytes());
    let mut index = KeyIndex::default();
    let mut stack: Vec<Frame> = Vec::new();
    while let Some(event) = parser.next() {
        let position = (event.line + 1, event.column + 1);
        // The path of the node this event starts (a value, or a key when `is_key`).
        let (node_path, is_key) = match stack.last() {
            None => (String::new(), false),
            Some(Frame::Mapping { path, key: None }) => (path.clone(), true),
            Some(Frame::Mapping {
                path,
                key: Some(key),
            }) => (join(path, key), false),
            Some(Frame::Sequence { path, next }) => (format!("{path}[{next}]"), false),
        };
        // Sequence items are indexed like keys (`tamper.files[3]`): errors name items.
        if matches!(stack.last(), Some(Frame::Sequence { .. })) {
            index.keys.entry(node_path.clone()).or_insert(position);
        }
        let refuse = |message: String| ScanError {
            position,
            field: (!node_path.is_empty()).then(|| node_path.clone()),
            message,
        };
        if event.anchored {
            return Err(refuse(
                "YAML anchors (`&name`) and aliases (`*name`) are not allowed in profiles; \
                 use `extends:` to share fields"
                    .into(),
            ));
        }
        match event.kind {
            Kind::Alias => {
                return Err(refuse(
                    "YAML aliases (`*name`) are not allowed in profiles; use `extends:` to \
                     share fields"
                        .into(),
                ));
            }
            Kind::Scalar(value) => {
                if is_key {
                    let key = String::from_utf8_lossy(&value).into_owned();
                    index.keys.entry(join(&node_path, &key)).or_insert(position);
                    if let Some(Frame::Mapping { key: slot, .. }) = stack.last_mut() {
                        *slot = Some(key);
                    }
                } else {
                    advance(&mut stack);
                }
            }
            Kind::MappingStart | Kind::SequenceStart => {
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse(format!(
                        "nested deeper than {MAX_DEPTH} levels of mappings and sequences"
                    )));
                }
                // A collection used as a key (`? [a]: b`) gets a placeholder name.
                let path = if is_key {
                    join(&node_path, "?")
                } else {
                    node_path
                };
                stack.push(if matches!(event.kind, Kind::MappingStart) {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Kind::End => {
                stack.pop();
                advance(&mut stack);
            }
            Kind::Other => {}
        }
    }
    Ok(index)
}

/// A node just ended inside the top frame: a mapping waits for its next key, a sequence
/// counts the item. A key that ended (a collection key) makes the mapping wait for a value.
fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Mapping { key, .. }) => {
            if key.is_some() {
                *key = None;
            } else {
                *key = Some("?".into());
            }
        }
        Some(Frame::Sequence { next, .. }) => *next += 1,
        None => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

enum Kind {
    Alias,
    Scalar(Vec<u8>),
    MappingStart,
    SequenceStart,
    /// The end of a mapping or a sequence.
    End,
    /// Stream and document boundaries.
    Other,
}

struct Event {
    kind: Kind,
    /// The node carries an anchor (`&name`).
    anchored: bool,
    /// 0-based, as libyaml counts.
    line: usize,
    column: usize,
}

/// libyaml's event parser over a borrowed string, freed on drop.
struct Parser<'input> {
    /// Boxed: libyaml keeps a pointer to the parser itself (its read handler's data), so
    /// it must not move after initialisation.
    sys: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    /// Ties the parser to the input it reads from.
    _input: &'input [u8],
    /// `yaml_parser_initialize` succeeded: the parser must be deleted on drop.
    initialised: bool,
    finished: bool,
}

impl<'input> Parser<'input> {
    #[allow(unsafe_code)] // SAFETY comments on each unsafe block below.
    fn new(input: &'input [u8]) -> Parser<'input> {
        let mut sys = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
        let parser = sys.as_mut_ptr();
        // SAFETY: `parser` points to writable, boxed (never moved) storage for a
        // `yaml_parser_t`; `yaml_parser_initialize` fully initialises it (or fails, which
        // only happens when memory allocation fails: then the scan reports nothing and
        // serde_yaml_ng, which needs the same allocation, reports the failure).
        let initialised = unsafe { !unsafe_sys::yaml_parser_initialize(parser).fail };
        if initialised {
            // SAFETY: the parser was initialised above; `input` outlives the parser
            // (`'input` is held by the struct) and is never mutated while borrowed.
            unsafe {
                unsafe_sys::yaml_parser_set_encoding(parser, unsafe_sys::YAML_UTF8_ENCODING);
                unsafe_sys::yaml_parser_set_input_string(
                    parser,
                    input.as_ptr(),
                    input.len() as u64,
                );
            }
        }
        Parser {
            sys,
            _input: input,
            initialised,
            finished: !initialised,
        }
    }

    /// The next event; `None` at the end of the stream or at the first syntax error.
    #[allow(unsafe_code)] // SAFETY comments on each unsafe block below.
    fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let parser = self.sys.as_mut_ptr();
        let mut raw = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
        let event = raw.as_mut_ptr();
        // SAFETY: the parser is initialised (`finished` is false) with a live input; on
        // success `yaml_parser_parse` fully initialises `*event`, which is read only then
        // and deleted (freeing its strings) before this function returns.
        unsafe {
            if unsafe_sys::yaml_parser_parse(parser, event).fail {
                self.finished = true;
                return None;
            }
            let e = &*event;
            let (kind, anchor) = match e.type_ {
                unsafe_sys::YAML_ALIAS_EVENT => (Kind::Alias, std::ptr::null_mut()),
                unsafe_sys::YAML_SCALAR_EVENT => {
                    let scalar = e.data.scalar;
                    let value = std::slice::from_raw_parts(scalar.value, scalar.length as usize);
                    (Kind::Scalar(value.to_vec()), scalar.anchor)
                }
                unsafe_sys::YAML_SEQUENCE_START_EVENT => {
                    (Kind::SequenceStart, e.data.sequence_start.anchor)
                }
                unsafe_sys::YAML_MAPPING_START_EVENT => {
                    (Kind::MappingStart, e.data.mapping_start.anchor)
                }
                unsafe_sys::YAML_SEQUENCE_END_EVENT | unsafe_sys::YAML_MAPPING_END_EVENT => {
                    (Kind::End, std::ptr::null_mut())
                }
                // No event: libyaml has nothing more to give (it never says so twice).
                unsafe_sys::YAML_STREAM_END_EVENT | unsafe_sys::YAML_NO_EVENT => {
                    self.finished = true;
                    (Kind::Other, std::ptr::null_mut())
                }
                _ => (Kind::Other, std::ptr::null_mut()),
            };
            let out = Event {
                kind,
                anchored: !anchor.is_null(),
                line: e.start_mark.line as usize,
                column: e.start_mark.column as usize,
            };
            unsafe_sys::yaml_event_delete(event);
            Some(out)
        }
    }
}

impl Drop for Parser<'_> {
    #[allow(unsafe_code)] // SAFETY comments on each unsafe block below.
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: the parser was initialised by `yaml_parser_initialize` (checked
            // above); `yaml_parser_delete` frees libyaml's buffers and runs once, here.
            unsafe { unsafe_sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_indexed_by_dotted_path() {
        let index = scan("a: 1\nb:\n  c: [x, {d: 2}]\n  e:\n    - f: 3\n").unwrap();
        assert_eq!(index.locate("a"), Some(((1, 1), true)));
        assert_eq!(index.locate("b.c"), Some(((3, 3), true)));
        assert_eq!(index.locate("b.c[1].d"), Some(((3, 11), true)));
        assert_eq!(index.locate("b.e[0].f"), Some(((5, 7), true)));
        assert_eq!(index.locate("b.e[0].g"), Some(((5, 7), false)));
        assert_eq!(index.locate("b.c[0]"), Some(((3, 7), true)));
        assert_eq!(index.locate("z"), None);
    }

    #[test]
    fn aliases_anchors_and_depth_are_refused_with_a_position() {
        let err = scan("a: 1\nb: *x\n").unwrap_err();
        assert_eq!((err.position, err.field.as_deref()), ((2, 4), Some("b")));
        let err = scan("a: &x [1]\n").unwrap_err();
        assert_eq!(err.position, (1, 4));
        assert!(err.message.contains("anchors"), "{}", err.message);
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        scan(&deep).unwrap();
        let deeper = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = scan(&deeper).unwrap_err();
        assert_eq!(err.position, (1, MAX_DEPTH + 1));
        assert!(
            err.message.contains("nested deeper than 64"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_errors_end_the_scan_quietly() {
        assert!(scan("a: [1\n").is_ok());
        assert!(scan("").is_ok());
    }
}
