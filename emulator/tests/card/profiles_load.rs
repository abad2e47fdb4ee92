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
