//! Property tests of the codec and the profile loader (proptest, seeded, replayable):
//!
//! - secure messaging: `sm::open(sm::seal(p)) == p` for both generations, any key and any
//!   plaintext, with the DO `86` shape the card and the checker rely on;
//! - BER-TLV: any list of well-formed objects encodes and parses back, with trailing zero
//!   padding and with non-minimal lengths;
//! - profiles: along a chain A ← B ← C (C `extends:` B, B `extends:` a bundled profile),
//!   overrides of disjoint fields commute (swapping them between B and C, or writing them all
//!   in one child, compiles the same card), and where both set a field the child wins.
//!
//! The "genuine flow succeeds after any prefix of garbage commands and a reset" property is
//! `never_panics.rs` (b) (random sequences with garbage APDUs, then reset and the genuine
//! flow) and the `card_sequence` fuzz target; it is not repeated here.
//!
//! Seeds: every test uses a fixed seed (`RCLAB_PROPTEST_SEED=<u64>` explores another
//! stream); failures are persisted in `tests/properties.proptest-regressions` and replayed
//! first. One test: `cargo test -p rclab-emulator --test properties <name>`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::crypto::pad;
use rclab_emulator::protocol::{Generation, sm, tlv};

const BASE_SEED: u64 = 0x00C0_FFEE_2026_0007;

fn config(cases: u32, salt: u64) -> ProptestConfig {
    let base = std::env::var("RCLAB_PROPTEST_SEED")
        .ok()
        .map(|s| s.parse().expect("RCLAB_PROPTEST_SEED must be a u64"))
        .unwrap_or(BASE_SEED);
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(base ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn generation() -> impl Strategy<Value = Generation> {
    prop_oneof![Just(Generation::First), Just(Generation::Second)]
}

// ---------------------------------------------------------------------------------------
// Secure messaging
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2_000, 1))]
    #[test]
    fn sm_seal_then_open_is_identity(
        generation in generation(),
        key in any::<[u8; 16]>(),
        plain in prop_oneof![vec(any::<u8>(), 0..64), vec(any::<u8>(), 0..3_100)],
    ) {
        let sealed = sm::seal(generation, &key, &plain).unwrap();
        // One DO 86: indicator 01, then the padded plaintext's length of ciphertext.
        let (obj, end) = tlv::parse_at(&sealed, 0).expect("sealed data is one TLV");
        prop_assert_eq!(end, sealed.len());
        prop_assert_eq!(obj.tag, sm::TAG_CRYPTOGRAM);
        prop_assert!(!obj.non_minimal_length);
        prop_assert_eq!(obj.value[0], sm::PADDING_INDICATOR);
        let block = generation.block_size();
        prop_assert_eq!(obj.value.len() - 1, pad(&plain, block).len());
        prop_assert_eq!(sm::open(generation, &key, &sealed), Ok(plain));
    }
}

proptest! {
    #![proptest_config(config(1_000, 2))]
    /// What one side seals with one generation's cipher, the other side opens only with the
    /// same cipher and key (or sees an error / other bytes), never the plaintext by accident
    /// for a different key.
    #[test]
    fn sm_open_with_another_key_does_not_return_the_plaintext(
        generation in generation(),
        key in any::<[u8; 16]>(),
        other in any::<[u8; 16]>(),
        plain in vec(any::<u8>(), 1..200),
    ) {
        prop_assume!(key != other);
        // 2-key TDES ignores the parity bits: keys equal up to parity are the same key.
        prop_assume!(generation == Generation::Second
            || key.iter().zip(&other).any(|(a, b)| a & 0xFE != b & 0xFE));
        let sealed = sm::seal(generation, &key, &plain).unwrap();
        prop_assert_ne!(sm::open(generation, &other, &sealed), Ok(plain));
    }
}

// ---------------------------------------------------------------------------------------
// BER-TLV
// ---------------------------------------------------------------------------------------

/// Tags the codec writes: one byte (not `00`, which starts padding, and not with the low
/// five bits all set), or two bytes whose first byte has them set (`5F xx`, `DF D1`).
fn tag() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => any::<u8>()
            .prop_filter("one-byte tag", |b| *b != 0 && b & 0x1F != 0x1F)
            .prop_map(u16::from),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| u16::from_be_bytes([a | 0x1F, b])),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..0x90),
        2 => vec(any::<u8>(), 0xF0..0x110),
        1 => vec(any::<u8>(), 0..9_000),
        1 => (0x1_0000usize - 40..=0xFFFF).prop_map(|n| vec![0xA5; n]),
    ]
}

proptest! {
    #![proptest_config(config(400, 3))]
    #[test]
    fn tlv_encode_then_parse_is_identity(
        objects in vec((tag(), value()), 0..6),
        padding in prop_oneof![Just(0usize), 1usize..40],
    ) {
        let mut ef = Vec::new();
        for (t, v) in &objects {
            tlv::push(&mut ef, *t, v).unwrap();
        }
        let encoded_len = ef.len();
        ef.resize(encoded_len + padding, 0);
        let parsed = tlv::parse_all(&ef).expect("well-formed TLVs parse");
        let got: Vec<(u16, Vec<u8>)> = parsed.iter().map(|t| (t.tag, t.value.to_vec())).collect();
        prop_assert_eq!(&got, &objects);
        prop_assert!(parsed.iter().all(|t| !t.non_minimal_length));
        // Each object alone: `encode` is `push` into an empty vector, `parse_at` reads it back.
        for (t, v) in &objects {
            let one = tlv::encode(*t, v).unwrap();
            let (obj, end) = tlv::parse_at(&one, 0).expect("one TLV");
            prop_assert_eq!((obj.tag, obj.value, end), (*t, &v[..], one.len()));
        }
        // Cutting the last byte of the objects is an error, never a shorter success.
        if encoded_len > 0 {
            prop_assert!(tlv::parse_all(&ef[..encoded_len - 1]).is_err());
        }
    }
}

proptest! {
    #![proptest_config(config(400, 4))]
    /// `81 xx` and `82 xx xx` are accepted for any length (the card's `DE 82 00 C8`), give
    /// the same value, and are reported as non-minimal exactly when a shorter form exists.
    #[test]
    fn tlv_long_length_forms_parse_to_the_same_value(
        t in tag(),
        v in vec(any::<u8>(), 0..300),
        form in 0u8..3,
    ) {
        let mut ef = Vec::new();
        tlv::push_tag(&mut ef, t);
        let n = v.len();
        let minimal = match form {
            0 if n < 0x80 => { ef.push(n as u8); true }
            1 if n <= 0xFF => { ef.extend_from_slice(&[0x81, n as u8]); n >= 0x80 }
            _ => { ef.push(0x82); ef.extend_from_slice(&(n as u16).to_be_bytes()); n > 0xFF }
        };
        ef.extend_from_slice(&v);
        let parsed = tlv::parse_all(&ef).expect("parses");
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(parsed[0].tag, t);
        prop_assert_eq!(parsed[0].value, &v[..]);
        prop_assert_eq!(parsed[0].non_minimal_length, !minimal);
    }
}

// ---------------------------------------------------------------------------------------
// Profiles: `extends:` resolution
// ---------------------------------------------------------------------------------------

/// One overridable field: its dotted path and the YAML values a test may give it (all
/// valid for the base profile's generation).
struct Field {
    path: &'static str,
    values: &'static [&'static str],
}

const COMMON_FIELDS: &[Field] = &[
    Field {
        path: "description",
        values: &["\"first override\"", "\"second override\""],
    },
    Field {
        path: "seed",
        values: &["7", "4242"],
    },
    Field {
        path: "card.number",
        values: &["XY11112222ZW", "QR33334444ST"],
    },
    Field {
        path: "card.spec_version",
        values: &["\"0003\"", "\"0009\""],
    },
    Field {
        path: "images.face",
        values: &["null"],
    },
    Field {
        path: "knobs.read_past_end",
        values: &["wrong_le", "success"],
    },
    Field {
        path: "knobs.failed_verify_drops_session",
        values: &["true", "false"],
    },
    Field {
        path: "chip_card_number",
        values: &["MN55556666OP"],
    },
    // Each file must type-check alone, and `expect` has required keys (`verdict`, `why`):
    // a child can replace it whole, not one key of it. Both values have the same keys, as
    // mappings merge key by key (a child's `expect` without `reason:` keeps the parent's).
    Field {
        path: "expect",
        values: &[
            "{verdict: genuine, flags: [Valid], why: because}",
            "{verdict: unreadable, flags: [Other], why: another reason}",
        ],
    },
];

const GEN1_FIELDS: &[Field] = &[
    Field {
        path: "address.text",
        values: &["\"東京都千代田区見本1-1\"", "\"Test street 2\""],
    },
    Field {
        path: "address.date",
        values: &["\"20240101\"", "\"20261231\""],
    },
    Field {
        path: "address.municipality_code",
        values: &["\"131016\""],
    },
    Field {
        path: "back_side.renewal_application",
        values: &["false", "true"],
    },
    Field {
        path: "back_side.individual_permission",
        values: &["\"許可\"", "\"\""],
    },
    Field {
        path: "text_encoding",
        values: &["utf8", "shift_jis"],
    },
];

const GEN2_FIELDS: &[Field] = &[
    Field {
        path: "printed.sex",
        values: &["female", "unspecified"],
    },
    Field {
        path: "printed.nationality",
        values: &["PHL", "BRA"],
    },
    Field {
        path: "printed.birth_date",
        values: &["\"20000229\"", "\"19700101\""],
    },
    Field {
        path: "printed.status_of_residence",
        values: &["EIJU", "RYUGAKU"],
    },
    Field {
        path: "work_permission.individual",
        values: &["false", "true"],
    },
    Field {
        path: "work_permission.comprehensive",
        values: &["\"0\"", "\"1\""],
    },
    Field {
        path: "application_pending",
        values: &["false", "true"],
    },
    Field {
        path: "other.reserved_text",
        values: &["\"メモ\"", "\"x\""],
    },
    Field {
        path: "other.commissioner_entry",
        values: &["false", "true"],
    },
    Field {
        path: "face_layout",
        values: &["zero_length", "omitted"],
    },
];

/// Where each field goes: not set, set in B, set in C, or set in both (C's value wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Nowhere,
    B,
    C,
    Both,
}

#[derive(Clone, Debug)]
struct Chain {
    base: &'static str,
    /// Per field of the base's catalogue: placement and value indices for B and C.
    placements: Vec<(Place, usize, usize)>,
}

fn fields(base: &str) -> Vec<&'static Field> {
    let specific = if base.starts_with("gen1") {
        GEN1_FIELDS
    } else {
        GEN2_FIELDS
    };
    COMMON_FIELDS.iter().chain(specific).collect()
}

fn chain(allow_overlap: bool) -> impl Strategy<Value = Chain> {
    prop_oneof![Just("gen1-residence"), Just("gen2-residence")].prop_flat_map(move |base| {
        let n = fields(base).len();
        let place = if allow_overlap {
            prop_oneof![
                3 => Just(Place::Nowhere),
                2 => Just(Place::B),
                2 => Just(Place::C),
                2 => Just(Place::Both)
            ]
            .boxed()
        } else {
            prop_oneof![2 => Just(Place::Nowhere), 1 => Just(Place::B), 1 => Just(Place::C)].boxed()
        };
        vec((place, 0usize..8, 0usize..8), n).prop_map(move |placements| Chain { base, placements })
    })
}

/// Renders `path = value` pairs as a YAML profile extending `parent`.
fn yaml(parent: &Path, entries: &[(&str, &str)]) -> String {
    let mut tree: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let mut out = format!("extends: {}\n", parent.display());
    for (path, value) in entries {
        match path.split_once('.') {
            Some((section, key)) => tree.entry(section).or_default().push((key, value)),
            None => out.push_str(&format!("{path}: {value}\n")),
        }
    }
    for (section, keys) in tree {
        out.push_str(&format!("{section}:\n"));
        for (key, value) in keys {
            out.push_str(&format!("  {key}: {value}\n"));
        }
    }
    out
}

/// A fresh folder under the system temp dir (a random name), removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new() -> TempDir {
        TempDir(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write profile");
        path
    }
}

fn base_path(base: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/profiles/valid")
        .join(format!("{base}.yaml"))
        .canonicalize()
        .expect("bundled profile")
}

/// Everything a profile resolves to, except its own name and path; EF contents as
/// length and SHA-256, so that a failure prints readably.
fn resolved(p: &Profile) -> String {
    use sha2::{Digest, Sha256};
    let mut image = (*p.image).clone();
    let files: Vec<String> = image
        .files
        .drain(..)
        .map(|f| {
            let digest = Sha256::digest(&f.content);
            format!(
                "{} {:?}/{} {:?} {} bytes {}",
                f.name,
                f.id.df,
                f.id.sfi,
                f.access,
                f.content.len(),
                hex::encode(&digest[..8])
            )
        })
        .collect();
    format!(
        "{:?}\n{:?} {:?} {:?}\n{}\n{:?}\n{}",
        p.description,
        p.generation,
        p.card_type,
        p.card_number,
        serde_json::to_string(&p.expect).expect("expect serialises"),
        image,
        files.join("\n")
    )
}

fn load(path: &Path) -> Result<String, String> {
    profile::load(path)
        .map(|p| resolved(&p))
        .map_err(|e| e.to_string())
}

/// Loads C ← B ← base with B and C as given; returns the resolved profile.
fn load_chain(
    dir: &TempDir,
    tag: &str,
    base: &Path,
    b: &[(&str, &str)],
    c: &[(&str, &str)],
) -> Result<String, String> {
    let b_path = dir.write(&format!("b-{tag}.yaml"), &yaml(base, b));
    let c_path = dir.write(&format!("c-{tag}.yaml"), &yaml(&b_path, c));
    load(&c_path)
}

proptest! {
    #![proptest_config(config(64, 5))]
    /// Disjoint overrides commute: C ← B ← A equals C' ← B' ← A with the two sets swapped,
    /// and equals one child holding both sets.
    #[test]
    fn disjoint_overrides_commute_along_an_extends_chain(chain in chain(false)) {
        let catalogue = fields(chain.base);
        let mut in_b = Vec::new();
        let mut in_c = Vec::new();
        for (field, (place, vb, vc)) in catalogue.iter().zip(&chain.placements) {
            match place {
                Place::B => in_b.push((field.path, field.values[vb % field.values.len()])),
                Place::C => in_c.push((field.path, field.values[vc % field.values.len()])),
                _ => {}
            }
        }
        let dir = TempDir::new();
        let base = base_path(chain.base);
        let forward = load_chain(&dir, "forward", &base, &in_b, &in_c);
        let swapped = load_chain(&dir, "swapped", &base, &in_c, &in_b);
        let all: Vec<_> = in_b.iter().chain(&in_c).copied().collect();
        let flat = load(&dir.write("flat.yaml", &yaml(&base, &all)));
        prop_assert!(forward.is_ok(), "{:?}\nB: {in_b:?}\nC: {in_c:?}", forward);
        prop_assert_eq!(&forward, &swapped);
        prop_assert_eq!(&forward, &flat);
    }
}

proptest! {
    #![proptest_config(config(64, 6))]
    /// Where B and C both set a field, C (the child) wins: the chain equals one child with
    /// B's values overwritten by C's.
    #[test]
    fn the_child_wins_where_overrides_overlap(chain in chain(true)) {
        let catalogue = fields(chain.base);
        let mut in_b = Vec::new();
        let mut in_c = Vec::new();
        let mut winner: BTreeMap<&str, &str> = BTreeMap::new();
        for (field, (place, vb, vc)) in catalogue.iter().zip(&chain.placements) {
            let b = field.values[vb % field.values.len()];
            let c = field.values[vc % field.values.len()];
            if matches!(place, Place::B | Place::Both) {
                in_b.push((field.path, b));
                winner.insert(field.path, b);
            }
            if matches!(place, Place::C | Place::Both) {
                in_c.push((field.path, c));
                winner.insert(field.path, c);
            }
        }
        let dir = TempDir::new();
        let base = base_path(chain.base);
        let chained = load_chain(&dir, "chain", &base, &in_b, &in_c);
        let flat_entries: Vec<_> = winner.into_iter().collect();
        let flat = load(&dir.write("flat.yaml", &yaml(&base, &flat_entries)));
        prop_assert!(chained.is_ok(), "{:?}", chained);
        prop_assert_eq!(chained, flat);
    }
}

/// The properties above are not vacuous: an override reaches the compiled card, and an
/// empty child compiles to its parent.
#[test]
fn overrides_reach_the_card_and_an_empty_child_is_its_parent() {
    let dir = TempDir::new();
    let base = base_path("gen2-residence");
    let parent = load(&base).expect("base");
    let empty = load(&dir.write("empty.yaml", &yaml(&base, &[]))).expect("empty child");
    assert_eq!(empty, parent);
    let changed =
        load(&dir.write("sex.yaml", &yaml(&base, &[("printed.sex", "female")]))).expect("child");
    assert_ne!(changed, parent);
    let p = profile::load(&dir.0.path().join("sex.yaml")).expect("child");
    let printed = p
        .image
        .files
        .iter()
        .find(|f| f.name.starts_with("DF1/EF02"))
        .expect("printed entries");
    let tlvs = tlv::parse_all(&printed.content).expect("TLVs");
    assert_eq!(
        tlv::find(&tlvs, 0xC7),
        Some(&b"2"[..]),
        "sex code of `female`"
    );
}
