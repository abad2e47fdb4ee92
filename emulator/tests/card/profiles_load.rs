//! The bundled profiles under vectors/profiles/valid compile, and every EF they produce is
//! a row of the layout table, so the table and the compiler cannot drift apart.
use std::path::Path;

#[test]
fn bundled_valid_profiles_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles");
    let profiles = rclab_emulator::profile::load_dir(&dir).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(profiles.len() >= 5);
    for p in &profiles {
        let sizes: Vec<_> = p
            .image
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.content.len()))
            .collect();
        eprintln!("{} {:?}", p.name, sizes);
    }
}

/// Every EF a profile compiles to is a row of its layout table, in the table's order, with
/// the table's name, access and FID; and every row is on the card.
#[test]
fn every_compiled_ef_is_a_row_of_its_layout() {
    use rclab_emulator::protocol::layout::Layout;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/profiles");
    let profiles = rclab_emulator::profile::load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
    let mut seen = std::collections::HashSet::new();
    // A My Number card has no residence layout (its table: `my_number::apps`).
    for p in profiles.iter().filter(|p| p.residence_image().is_ok()) {
        let layout = Layout::of(p.generation, p.card_type);
        assert!(std::ptr::eq(p.image.layout, layout), "{}", p.name);
        assert_eq!(p.image.files.len(), layout.files.len(), "{}", p.name);
        for (file, row) in p.image.files.iter().zip(layout.files) {
            assert_eq!(file.id, row.id, "{} {}", p.name, file.name);
            assert_eq!(file.name, row.name, "{}", p.name);
            assert_eq!(file.access, row.access, "{} {}", p.name, file.name);
            assert_eq!(file.fid, row.fid, "{} {}", p.name, file.name);
            assert_eq!((file.id.df, file.id.sfi), (row.id.df, row.id.sfi));
        }
        seen.insert((p.generation, p.card_type));
    }
    // Valid profiles of both generations and both card types were among them.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// A valid profile with `knobs:` lines added, compiled from an overlay in a scratch folder.
fn with_knobs(base: &str, knobs: &str) -> rclab_emulator::profile::Profile {
    let valid = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/profiles/valid")
        .join(format!("{base}.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("variant.yaml");
    std::fs::write(
        &file,
        format!("extends: {}\nknobs:\n{knobs}", valid.display()),
    )
    .unwrap();
    rclab_emulator::profile::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn content(p: &rclab_emulator::profile::Profile, name: &str) -> Vec<u8> {
    p.image
        .files
        .iter()
        .find(|f| f.name.starts_with(name))
        .unwrap_or_else(|| panic!("{name}"))
        .content
        .clone()
}

/// `knobs.tlv_lengths: long_form` writes every length outside the MF `82 xx xx`, the EF
/// growing by the bytes added; the values (and so the check code) are unchanged.
#[test]
fn long_form_lengths_rewrite_every_tlv_outside_the_mf() {
    use rclab_emulator::protocol::tlv;
    for base in ["gen1-residence", "gen2-residence"] {
        let minimal = with_knobs(base, "  tlv_lengths: minimal\n");
        let long = with_knobs(base, "  tlv_lengths: long_form\n");
        for (a, b) in minimal.image.files.iter().zip(&long.image.files) {
            let (ta, tb) = (
                tlv::parse_all(&a.content).unwrap(),
                tlv::parse_all(&b.content).unwrap(),
            );
            let values = |t: &[tlv::Tlv]| -> Vec<(u16, Vec<u8>)> {
                t.iter().map(|t| (t.tag, t.value.to_vec())).collect()
            };
            assert_eq!(values(&ta), values(&tb), "{base} {}", a.name);
            if a.name.starts_with("MF") {
                assert_eq!(a.content, b.content, "{base} {}", a.name);
                continue;
            }
            for t in &tb {
                let header = &b.content[t.offset..];
                let tag_len = if t.tag > 0xFF { 2 } else { 1 };
                assert_eq!(header[tag_len], 0x82, "{base} {} {:X}", a.name, t.tag);
            }
            assert!(b.content.len() >= a.content.len(), "{base} {}", a.name);
        }
        // The short lengths grew: DF2/EF01 (generation 1: D2 D3 by 2 each, D4 already
        // 82; generation 2: D5 D6 D7 by 2 each).
        let (a, b) = (content(&minimal, "DF2/EF01"), content(&long, "DF2/EF01"));
        let grown = if base == "gen1-residence" { 4 } else { 6 };
        assert_eq!(b.len(), a.len() + grown, "{base}");
    }
}

/// `knobs.trailing_fill`: zeros (default), `FF`, or no fill at all after the last TLV.
#[test]
fn trailing_fill_is_zeros_ff_or_nothing() {
    let zeros = with_knobs("gen1-residence", "  trailing_fill: zeros\n");
    let ff = with_knobs("gen1-residence", "  trailing_fill: ff\n");
    let none = with_knobs("gen1-residence", "  trailing_fill: none\n");
    let face = |p| content(p, "DF1/EF02");
    let image_len = {
        let f = face(&zeros);
        usize::from(u16::from_be_bytes([f[2], f[3]]))
    };
    assert!(
        image_len < 3000,
        "the bundled face is shorter than its area"
    );
    assert_eq!(face(&zeros).len(), 3004);
    assert!(face(&zeros)[4 + image_len..].iter().all(|&b| b == 0));
    assert_eq!(face(&ff).len(), 3004);
    assert!(face(&ff)[4 + image_len..].iter().all(|&b| b == 0xFF));
    assert_eq!(face(&none), face(&zeros)[..4 + image_len]);
    // Values padded inside their TLV stay zero-padded: only what follows the last TLV changes.
    assert_eq!(
        content(&ff, "DF2/EF02")[..122],
        content(&zeros, "DF2/EF02")[..122]
    );
}

/// A generation-2 certificate padded to the end of DF3 still ends the EF under long-form
/// lengths: the EF grows by what `DC 82 00 60` adds, and no fill follows the certificate.
#[test]
fn a_padded_certificate_still_fills_df3_under_long_form_lengths() {
    let p = with_knobs(
        "gen2-residence",
        "  tlv_lengths: long_form\n  trailing_fill: ff\n",
    );
    let padded_overlay = {
        let valid = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vectors/profiles/valid/gen2-residence.yaml");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let file = dir.join("variant.yaml");
        std::fs::write(
            &file,
            format!(
                "extends: {}\nsignature:\n  certificate_layout: padded\nknobs:\n  tlv_lengths: long_form\n  trailing_fill: ff\n",
                valid.display()
            ),
        )
        .unwrap();
        rclab_emulator::profile::load(&file).unwrap_or_else(|e| panic!("{e}"))
    };
    let exact = content(&p, "DF3/EF01");
    let padded = content(&padded_overlay, "DF3/EF01");
    assert_eq!(
        padded.len(),
        exact.len(),
        "both are the layout's size plus 2"
    );
    assert_eq!(&padded[..4], &[0xDC, 0x82, 0x00, 0x60]);
    let tlvs = rclab_emulator::protocol::tlv::parse_all(&padded).unwrap();
    let last = tlvs.last().unwrap();
    assert_eq!(last.tag, 0xDD);
    assert_eq!(
        last.value.as_ptr() as usize - padded.as_ptr() as usize + last.value.len(),
        padded.len(),
        "the certificate's padded value runs to the end of the EF"
    );
}
