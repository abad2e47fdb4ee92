//! Profile loading errors name the file, line, column and field; `extends:` merges.

use std::path::PathBuf;

use rclab_emulator::profile::{self, ProfileError};

/// A scratch folder with the valid profiles' images and keys reachable.
fn scratch(name: &str) -> PathBuf {
    crate::common::scratch_dir("profile-errors", name)
}

fn valid(name: &str) -> PathBuf {
    crate::common::valid_path(name)
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

// --- Hostile inputs (issue 10) ----------------------------------------------------------

fn located(err: &ProfileError) -> (Option<&str>, Option<(usize, usize)>) {
    (err.field.as_deref(), err.location)
}

/// Nine `duplicate: true` of `D0` would grow the gen-1 front image EF to 70 040 bytes (the
/// card engine once panicked encoding it; full-length image layout, so each copy is 7 004
/// bytes); the edit that crosses the bound is named.
#[test]
fn tamper_growing_an_ef_past_the_bound_is_a_located_error() {
    let edits = "  - { file: DF1/EF01, tag: D0, duplicate: true }\n".repeat(9);
    let err = load_text(
        "growdup",
        &format!(
            "extends: VALID/gen1-residence.yaml\nknobs:\n  image_layout: full\ntamper:\n  files:\n{edits}"
        ),
    )
    .unwrap_err();
    assert_eq!(
        located(&err),
        (Some("tamper.files[3]"), Some((9, 5))),
        "{err}"
    );
    assert!(err.message.contains("at most 32768"), "{err}");
    assert!(err.to_string().contains("growdup.yaml:9:5"), "{err}");

    let append = "00".repeat(65_600);
    let err = load_text(
        "growappend",
        &format!(
            "extends: VALID/gen2-residence.yaml\ntamper:\n  files:\n    - file: DF1/EF04\n      append: \"{append}\"\n"
        ),
    )
    .unwrap_err();
    assert_eq!(
        located(&err),
        (Some("tamper.files[0]"), Some((4, 7))),
        "{err}"
    );
    assert!(err.message.contains("at most 32768"), "{err}");
}

/// A certificate stored at its exact length is the one compiled field that can outgrow an
/// EF: the error points at `signature.certificate` where this file writes it.
#[test]
fn an_oversized_certificate_is_located_at_its_field() {
    let dir = scratch("bigcert");
    std::fs::write(dir.join("big.crt"), vec![0x30u8; 70_000]).unwrap();
    let err = load_text(
        "bigcert",
        "extends: VALID/gen1-residence.yaml\nsignature:\n  certificate_layout: exact\n  certificate: big.crt\n",
    )
    .unwrap_err();
    assert_eq!(
        located(&err),
        (Some("signature.certificate"), Some((4, 3))),
        "{err}"
    );
    assert!(err.file.ends_with("bigcert.yaml"), "{err}");
}

/// 100 000 nested brackets once took 28 s (quadratic); the pre-scan stops at level 65.
#[test]
fn nesting_deeper_than_the_limit_is_refused_where_it_happens() {
    let depth = profile::MAX_DEPTH;
    // The root mapping and `expect:` are two levels, `junk:`'s sequences the rest.
    let ok = format!(
        "description: x\nexpect:\n  junk: {}{}\n",
        "[".repeat(depth - 2),
        "]".repeat(depth - 2)
    );
    let err = load_text("deepok", &ok).unwrap_err();
    assert!(!err.message.contains("nested deeper"), "{err}");
    let n = 100_000;
    let deep = format!(
        "description: x\nexpect:\n  junk: {}{}\n",
        "[".repeat(n),
        "]".repeat(n)
    );
    let err = load_text("deep", &deep).unwrap_err();
    // The first bracket is at column 9; the one that opens level 65 is bracket 63.
    assert_eq!(err.location, Some((3, 8 + depth - 1)), "{err}");
    assert!(
        err.message.contains("nested deeper than 64 levels"),
        "{err}"
    );
    assert!(
        err.field
            .as_deref()
            .unwrap()
            .starts_with("expect.junk[0][0]"),
        "{err}"
    );
    assert!(err.to_string().len() < 300, "{err}");
    // Block style nests the same way.
    let mut block = String::from("description: x\nexpect:\n");
    for level in 0..100 {
        block.push_str(&format!("{}k{level}:\n", "  ".repeat(level + 1)));
    }
    let err = load_text("deepblock", &block).unwrap_err();
    assert!(
        err.message.contains("nested deeper than 64 levels"),
        "{err}"
    );
    // The mapping that holds `k63` (line 66, column 129) is level 65.
    assert_eq!(err.location, Some((2 + depth, 2 * depth + 1)), "{err}");
}

/// A 136 KB alias bomb once took 1.3–1.8 GB. Aliases (and anchors) are refused, located.
#[test]
fn aliases_and_anchors_are_refused_with_their_position() {
    let bomb = format!(
        "description: x\nexpect:\n  verdict: genuine\n  why: x\n  a: &a [{}]\n  b: [{}]\n",
        vec!["\"xxxxxxxx\""; 1000].join(","),
        vec!["*a"; 40_000].join(",")
    );
    let err = load_text("bomb", &bomb).unwrap_err();
    assert_eq!(located(&err), (Some("expect.a"), Some((5, 6))), "{err}");
    assert!(err.message.contains("anchors"), "{err}");
    let err = load_text(
        "alias",
        "extends: VALID/gen1-residence.yaml\ndescription: x\nseed: *nothing\n",
    )
    .unwrap_err();
    assert_eq!(located(&err), (Some("seed"), Some((3, 7))), "{err}");
    assert!(
        err.message.contains("aliases (`*name`) are not allowed"),
        "{err}"
    );
}

/// Fields only the other generation's chip has are errors at the field, not ignored.
#[test]
fn fields_of_the_other_generation_are_located_errors() {
    let cases = [
        (
            "g1printed",
            "gen1-residence",
            "printed:\n  sex: male\n",
            "printed",
            (3, 1),
        ),
        (
            "g1work",
            "gen1-residence",
            "work_permission:\n  individual: true\n",
            "work_permission",
            (3, 1),
        ),
        (
            "g1name",
            "gen1-residence",
            "images:\n  name: a.tif\n",
            "images.name",
            (4, 3),
        ),
        (
            "g1address",
            "gen1-residence",
            "images:\n  address: a.tif\n",
            "images.address",
            (4, 3),
        ),
        (
            "g1tamper",
            "gen1-residence",
            "tamper:\n  printed:\n    sex: female\n",
            "tamper.printed",
            (4, 3),
        ),
        (
            "g2address",
            "gen2-residence",
            "address:\n  text: x\n",
            "address",
            (3, 1),
        ),
        (
            "g2back",
            "gen2-residence",
            "back_side:\n  renewal_application: true\n",
            "back_side",
            (3, 1),
        ),
        (
            "g2front",
            "gen2-residence",
            "images:\n  front: a.tif\n",
            "images.front",
            (4, 3),
        ),
    ];
    for (name, base, extra, field, position) in cases {
        let err = load_text(
            name,
            &format!("extends: VALID/{base}.yaml\ndescription: x\n{extra}"),
        )
        .unwrap_err();
        assert_eq!(
            located(&err),
            (Some(field), Some(position)),
            "{name}: {err}"
        );
        assert!(err.message.contains("only a generation-"), "{name}: {err}");
        assert!(err.file.ends_with(format!("{name}.yaml")), "{name}: {err}");
    }
}

/// A file named by mistake (`extends: /etc/shadow`) is never echoed: at most a short,
/// escaped excerpt.
#[test]
fn errors_quote_at_most_a_short_excerpt_of_a_file() {
    let dir = scratch("secret");
    let secret = "root:$6$saltsalt$HASHHASHHASHHASHHASHHASHHASHHASHHASHHASHHASHHASHHASHTAILSECRET:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
    std::fs::write(dir.join("shadow"), secret).unwrap();
    let err = load_text("secret", "extends: shadow\n").unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("TAILSECRET"), "{text}");
    assert!(!text.contains("daemon"), "{text}");
    assert!(
        text.contains("secret.yaml:1:1"),
        "the extends: is named: {text}"
    );
    let quoted = text.split('"').nth(1).unwrap_or_default();
    assert!(quoted.chars().count() <= profile::MAX_EXCERPT + 1, "{text}");

    // A key that is a secret line: the field path is cut too, control characters escaped.
    let err = load_text(
        "secretkey",
        "\"root:$6$saltsalt$HASHHASHHASHHASHHASHHASHHASHTAILSECRET\x1b[31m\": 1\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("TAILSECRET") && !text.contains('\x1b'),
        "{text}"
    );
}

/// Value errors point at the field's own key, not at the enclosing mapping; compile-time
/// size errors carry the field's position.
#[test]
fn value_and_size_errors_point_at_the_field() {
    let err = load_text(
        "birthdate",
        "extends: VALID/gen2-residence.yaml\ndescription: x\nseed: 3\nprinted:\n  sex: female\n  nationality: JPN\n  birth_date: \"2024133\"\n",
    )
    .unwrap_err();
    assert_eq!(
        located(&err),
        (Some("printed.birth_date"), Some((7, 3))),
        "{err}"
    );
    let err = load_text(
        "toplevel",
        "extends: VALID/gen1-residence.yaml\ndescription: x\nseed: many\n",
    )
    .unwrap_err();
    assert_eq!(located(&err), (Some("seed"), Some((3, 1))), "{err}");
    let err = load_text(
        "unknown2",
        "extends: VALID/gen1-residence.yaml\ncard:\n  type: residence_card\n  numbr: AB12345678CD\n",
    )
    .unwrap_err();
    assert_eq!(located(&err), (Some("card.numbr"), Some((4, 3))), "{err}");

    let dir = scratch("bigfront");
    std::fs::write(dir.join("big.tif"), vec![1u8; 7001]).unwrap();
    let err = load_text(
        "bigfront",
        "extends: VALID/gen1-residence.yaml\ndescription: x\nimages:\n  face: null\n  front: big.tif\n",
    )
    .unwrap_err();
    assert_eq!(located(&err), (Some("images.front"), Some((5, 3))), "{err}");
    assert!(err.file.ends_with("bigfront.yaml"), "{err}");
}

/// An `extends:` that fails names the profile whose `extends:` it is, at its line.
#[test]
fn a_failing_extends_names_the_extending_profile() {
    let err = load_text(
        "extmissing",
        "description: x\nextends: does-not-exist.yaml\n",
    )
    .unwrap_err();
    assert!(err.file.ends_with("extmissing.yaml"), "{err}");
    assert_eq!(located(&err), (Some("extends"), Some((2, 1))), "{err}");
    assert!(err.message.contains("does-not-exist.yaml"), "{err}");

    // An error inside the parent stays in the parent, and says who extends it.
    let dir = scratch("extparent");
    std::fs::write(dir.join("_parent.yaml"), "seed: 1\nseed_typo: 2\n").unwrap();
    let err = load_text("extparent", "\nextends: _parent.yaml\n").unwrap_err();
    assert!(err.file.ends_with("_parent.yaml"), "{err}");
    assert_eq!(located(&err), (Some("seed_typo"), Some((2, 1))), "{err}");
    assert!(err.message.contains("extparent.yaml:2:1"), "{err}");
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

/// `tamper: files:` names EFs through the card's layout: a label (`DF1/EF02`) or the whole
/// name resolves per generation and card type; an EF the card type does not have, or a
/// word-prefix that is not one, is a located error.
#[test]
fn tamper_files_resolve_through_the_card_layout() {
    let edit = |base: &str, file: &str| {
        format!(
            "extends: VALID/{base}\ntamper:\n  files:\n    - {{ file: \"{file}\", truncate: 1 }}\n"
        )
    };
    // The same label is the face image in generation 1, the printed entries in 2.
    for (base, file, sfi) in [
        ("gen1-residence.yaml", "DF1/EF02", 0x06),
        ("gen1-residence.yaml", "DF1/EF02 face image", 0x06),
        ("gen1-residence.yaml", "DF1/EF02 face", 0x06),
        ("gen2-residence.yaml", "DF1/EF02", 0x03),
    ] {
        let name = format!("tamperok{sfi}{}", file.len());
        let p = load_text(&name, &edit(base, file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let cut: Vec<_> = p
            .image
            .files
            .iter()
            .filter(|f| f.content.len() == 1)
            .collect();
        assert_eq!(cut.len(), 1, "{file}");
        assert_eq!(
            (cut[0].id.df, cut[0].id.sfi),
            (rclab_emulator::card::Df::Df1, sfi),
            "{file}"
        );
    }
    for (i, (base, file)) in [
        ("gen2-sprc.yaml", "DF2/EF01"),
        ("gen1-sprc.yaml", "DF2/EF02"),
        ("gen1-residence.yaml", "DF1/EF02 fa"),
        ("gen1-residence.yaml", "DF1/EF05"),
        ("gen1-residence.yaml", "DF1/EF0"),
        ("gen1-residence.yaml", "face image"),
    ]
    .into_iter()
    .enumerate()
    {
        let err = load_text(&format!("tamperbad{i}"), &edit(base, file)).unwrap_err();
        assert_eq!(
            located(&err),
            (Some("tamper.files[0]"), Some((4, 7))),
            "{err}"
        );
        assert_eq!(err.message, format!("the card has no EF {file}"), "{err}");
    }
}

/// A `status` fault's `sw:` is two hex bytes; each bad form keeps the exact message it had
/// before faults used `protocol::Status` (issue 11), located at the field.
#[test]
fn status_fault_sw_errors_are_exact_and_located() {
    let cases = [
        ("sw-short", "\"6F\"", "\"6F\" must be two hex bytes"),
        (
            "sw-long",
            "\"6F 00 00\"",
            "\"6F 00 00\" must be two hex bytes",
        ),
        (
            "sw-not-hex",
            "\"6G 00\"",
            "\"6G 00\" is not hex: Invalid character 'G' at position 1",
        ),
        (
            "sw-number",
            "9000",
            "invalid type: integer `9000`, expected a string",
        ),
    ];
    for (name, sw, wanted) in cases {
        let err = load_text(
            name,
            &format!(
                "extends: VALID/gen1-residence.yaml\nfaults:\n  - status: {{ on: any, sw: {sw} }}\n"
            ),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("faults[0].status.sw"), "{err}");
        assert_eq!(err.location.map(|(line, _)| line), Some(3), "{err}");
        assert_eq!(err.message, wanted, "{name}: {err}");
    }
    // Any two bytes are a status word, also those the card never uses.
    let profile = load_text(
        "sw-other",
        "extends: VALID/gen1-residence.yaml\nfaults:\n  - status: { on: any, sw: \"6F 00\" }\n",
    )
    .unwrap();
    let mut card = profile.card();
    assert_eq!(
        card.exchange(&[0x00, 0x84, 0x00, 0x00, 0x08]).reply,
        Some(vec![0x6F, 0x00])
    );
}
