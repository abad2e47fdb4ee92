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
