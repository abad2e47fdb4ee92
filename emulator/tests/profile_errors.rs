//! Profile loading errors name the file, line, column and field; `extends:` merges.

use std::path::{Path, PathBuf};

use rclab_emulator::profile::{self, ProfileError};

/// A scratch folder with the valid profiles' images and keys reachable.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rclab-profile-errors-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn valid(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/profiles/valid")
        .join(name)
}

fn load_text(name: &str, text: &str) -> Result<profile::Profile, ProfileError> {
    let dir = scratch(name);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        text.replace("VALID", &valid("").display().to_string()),
    )
    .unwrap();
    profile::load(&path)
}

#[test]
fn unknown_field_names_file_line_column_and_field() {
    let err = load_text(
        "unknown",
        "extends: VALID/gen1-residence.yaml\ncard:\n  numbr: AB12345678CD\n",
    )
    .unwrap_err();
    assert!(err.file.ends_with("unknown.yaml"));
    assert_eq!(err.location.map(|(line, _)| line), Some(3));
    assert_eq!(err.field.as_deref(), Some("card.numbr"));
    assert!(err.message.contains("unknown field `numbr`"), "{err}");
    let text = err.to_string();
    assert!(text.contains("unknown.yaml:3:"), "{text}");
}

#[test]
fn bad_card_number_is_located() {
    let err = load_text(
        "badnumber",
        "extends: VALID/gen1-residence.yaml\nseed: 1\ncard:\n  number: AB123\n",
    )
    .unwrap_err();
    assert_eq!(err.location.map(|(line, _)| line), Some(4), "{err}");
    assert_eq!(err.field.as_deref(), Some("card.number"));
    assert!(
        err.message.contains("2 upper-case letters, 8 digits"),
        "{err}"
    );
}

#[test]
fn wrong_type_is_located() {
    let err = load_text(
        "wrongtype",
        "extends: VALID/gen1-residence.yaml\nseed: many\n",
    )
    .unwrap_err();
    assert_eq!(err.location.map(|(line, _)| line), Some(2), "{err}");
    assert_eq!(err.field.as_deref(), Some("seed"));
}

#[test]
fn missing_required_field_names_it() {
    let err = load_text("missing", "description: no card at all\n").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("card"), "{err}");
    let err = load_text(
        "noimage",
        "extends: VALID/gen1-residence.yaml\nimages:\n  front: null\n",
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("images.front"), "{err}");
}

#[test]
fn oversized_image_is_refused_with_its_size() {
    let dir = scratch("oversized");
    std::fs::write(dir.join("big.tif"), vec![1u8; 7001]).unwrap();
    let err = load_text(
        "oversized",
        "extends: VALID/gen1-residence.yaml\nimages:\n  front: big.tif\n",
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("images.front"));
    assert!(err.message.contains("7001 bytes"), "{err}");
}

#[test]
fn extends_cycle_is_an_error() {
    let dir = scratch("cycle");
    std::fs::write(dir.join("a.yaml"), "extends: b.yaml\n").unwrap();
    std::fs::write(dir.join("b.yaml"), "extends: a.yaml\n").unwrap();
    let err = profile::load(&dir.join("a.yaml")).unwrap_err();
    assert!(err.message.contains("cycle"), "{err}");
}

#[test]
fn extends_overrides_only_what_it_names() {
    let base = profile::load(&valid("gen2-residence.yaml")).unwrap();
    let infant = profile::load(&valid("gen2-infant.yaml")).unwrap();
    assert_eq!(infant.card_number.as_str(), "JK11223344LM");
    assert_eq!(infant.generation, base.generation);
    assert_eq!(infant.card_type, base.card_type);
    // Inherited: the DF3 certificate (same signer) and the DF2 "other" EF.
    let other = |p: &profile::Profile| {
        p.image
            .files
            .iter()
            .find(|f| f.name.starts_with("DF2/EF03"))
            .unwrap()
            .content
            .clone()
    };
    assert_eq!(other(&infant), other(&base));
}

#[test]
fn syntax_error_is_located() {
    let err = load_text("syntax", "card: [unclosed\n").unwrap_err();
    assert!(err.location.is_some(), "{err}");
}

#[test]
fn device_files_are_refused_not_read() {
    let err = load_text("devzero", "extends: /dev/zero\n").unwrap_err();
    assert!(err.message.contains("not a regular file"), "{err}");
    let err = load_text(
        "devface",
        "extends: VALID/gen1-residence.yaml\nimages:\n  face: /dev/urandom\n",
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("images.face"));
    assert!(err.message.contains("not a regular file"), "{err}");
}

#[test]
fn a_childs_expect_replaces_the_parents_whole() {
    let child = load_text(
        "expectchild",
        "extends: VALID/../forged/gen1-certificate-truncated.yaml\nexpect:\n  verdict: genuine\n  why: only to test the merge\n",
    )
    .unwrap();
    assert_eq!(
        child.expect.verdict.reason, None,
        "the parent's reason must not leak"
    );
    assert!(child.expect.flags.is_empty());
}

#[test]
fn unknown_threat_is_located_and_names_the_classes() {
    let err = load_text(
        "badthreat",
        "extends: VALID/gen1-residence.yaml\nexpect:\n  threat: scary\n  verdict: genuine\n  flags: [Valid]\n  why: a threat that is not one of the three classes\n",
    )
    .unwrap_err();
    assert!(err.file.ends_with("badthreat.yaml"), "{err}");
    assert!(err.location.is_some(), "{err}");
    assert!(
        err.message.contains("forgery") && err.message.contains("transport"),
        "{err}"
    );
}
