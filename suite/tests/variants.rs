//! The variant space (issue 19): every valid card and every pairwise variant of it is read as
//! genuine by the reference checker, in-process and over PC/SC, with every image read back
//! byte-identical to the profile's image file and decoding (G4 TIFF with libtiff's
//! `tiffinfo -D`, JPEG 2000 with OpenJPEG's `opj_decompress`); the front-desk example
//! checker reads both generation-1 images whole under the default knobs, and a variant that
//! breaks it is a false reject naming the knob value.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rclab_emulator::profile::Profile;
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::{self, CaseResult, Outcome, Transport, variants};
use sha2::Digest;

use common::repo;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rclab-variants-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The valid catalogue plus its pairwise variants, generated into `dir`.
fn catalogue_and_variants(dir: &Path) -> Vec<Profile> {
    let mut profiles = common::profiles("valid");
    for p in &mut profiles {
        p.name = format!("valid/{}", p.name);
    }
    let variants = variants::write_variants(&profiles, dir).expect("variants");
    assert!(
        variants.len() >= 2 * profiles.len(),
        "{} variants of {} cards",
        variants.len(),
        profiles.len()
    );
    profiles.extend(variants);
    profiles
}

/// The image files a profile names (`images.<key>`), following `extends:` to the first file
/// that names each: key -> bytes.
fn image_files(profile_path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut path = Some(profile_path.to_path_buf());
    while let Some(file) = path.take() {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let dir = file.parent().unwrap().to_path_buf();
        if let Some(images) = doc.get("images").and_then(|i| i.as_mapping()) {
            for (key, value) in images {
                let key = key.as_str().unwrap().to_owned();
                if out.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                let bytes = value
                    .as_str()
                    .map(|rel| std::fs::read(dir.join(rel)).unwrap())
                    .unwrap_or_default();
                out.push((key, bytes));
            }
        }
        path = doc
            .get("extends")
            .and_then(|e| e.as_str())
            .map(|e| dir.join(e));
    }
    out
}

/// Decoders are required when `RCLAB_REQUIRE_DECODERS` is set (`.ci/run`); otherwise a
/// missing one skips with a message.
fn decoders_available() -> bool {
    let found = ["tiffinfo", "opj_decompress"]
        .iter()
        .all(|tool| Command::new(tool).arg("-h").output().is_ok_and(|_| true));
    if !found {
        let message = "tiffinfo (libtiff-tools) or opj_decompress (libopenjp2-tools) missing";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_DECODERS").is_none(),
            "{message} (RCLAB_REQUIRE_DECODERS is set)"
        );
        eprintln!("SKIPPED decoding: {message}");
    }
    found
}

/// Decodes `bytes` (a G4 TIFF or a JP2 / J2K codestream) with the Debian tools; panics with
/// their output when it does not decode.
fn assert_decodes(bytes: &[u8], what: &str) {
    // A folder per call: the in-process and PC/SC tests decode the same images at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch(&format!("decode-{call}-{}", what.replace(['/', ' '], "-")));
    let (tool, ok) = if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        let file = dir.join("image.tif");
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new("tiffinfo")
            .arg("-D")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (
            "tiffinfo -D",
            (out.status.success()
                && text.contains("CCITT Group 4")
                && !text.to_lowercase().contains("error"))
            .then_some(())
            .ok_or(text),
        )
    } else {
        let ext = if bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
            "j2k"
        } else {
            "jp2"
        };
        let file = dir.join(format!("image.{ext}"));
        std::fs::write(&file, bytes).unwrap();
        let decoded = dir.join("image.pgm");
        let out = Command::new("opj_decompress")
            .arg("-i")
            .arg(&file)
            .arg("-o")
            .arg(&decoded)
            .output()
            .unwrap();
        let size = std::fs::metadata(&decoded).map(|m| m.len()).unwrap_or(0);
        (
            "opj_decompress",
            (out.status.success() && size > 0)
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned()),
        )
    };
    std::fs::remove_dir_all(&dir).ok();
    if let Err(text) = ok {
        panic!("{what}: {tool} does not decode it:\n{text}");
    }
}

/// The image value on the chip (`key` as in `images:`): gen 1 `front` D0 of DF1/EF01 and
/// `face` D1 of DF1/EF02; gen 2 `name` D0 and `face` D1 of DF1/EF04... (by SFI), `address`
/// DF D1.
fn chip_value(profile: &Profile, key: &str) -> Vec<u8> {
    use rclab_emulator::card::{Df, EfId};
    use rclab_emulator::protocol::tlv;
    let (sfi, tag) = match (profile.generation.number(), key) {
        (1, "front") => (0x05, 0xD0),
        (1, "face") => (0x06, 0xD1),
        (2, "name") => (0x04, 0xD0),
        (2, "face") => (0x04, 0xD1),
        (2, "address") => (0x06, 0xDFD1),
        other => panic!("no image {other:?}"),
    };
    let ef = profile
        .image
        .file(EfId::new(Df::Df1, sfi))
        .expect("image EF");
    let tlvs = tlv::parse_all(&ef.content).expect("image EF parses");
    tlv::find(&tlvs, tag).unwrap_or_default().to_vec()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The images a result's checker reported (`data.images`): key -> SHA-256 (hex).
fn reported_images(r: &CaseResult) -> Vec<(&'static str, Option<String>)> {
    let data = r.data.as_ref().expect("the checker reported data");
    let images = data.images.clone().unwrap_or_default();
    let sha = |i: &Option<rclab_suite::run::data::ImageRead>| {
        i.as_ref().map(|i| {
            serde_json::to_value(i).unwrap()["sha256"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    };
    let mut out = vec![("face", sha(&images.face))];
    if r.generation == 1 {
        out.push(("front", sha(&images.front)));
    } else {
        out.push(("name", sha(&images.name)));
        out.push(("address", sha(&images.address)));
    }
    out
}

/// Every case passed genuine and every image it reported equals the profile's image file
/// (the SHA-256 of the bytes read back); each distinct file decodes. Returns how
/// many images were compared.
fn assert_genuine_with_images(results: &[CaseResult], profiles: &[Profile]) -> usize {
    let decode = decoders_available();
    let mut decoded: Vec<String> = Vec::new();
    let mut compared = 0;
    for r in results {
        assert_eq!(
            r.outcome,
            Outcome::Pass,
            "{} × {}: {}",
            r.checker,
            r.profile,
            r.detail
        );
        assert!(!r.false_reject && !r.data_error, "{}", r.profile);
        let profile = profiles.iter().find(|p| p.name == r.profile).unwrap();
        let files = image_files(&profile.path);
        for (key, read) in reported_images(r) {
            let file = files
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            if file.is_empty() {
                continue;
            }
            let digest = read.unwrap_or_else(|| panic!("{} {key}: not read", r.profile));
            // The chip holds the file, zero-padded to its area in a full layout
            // (generation 2, and generation 1 with `knobs.image_layout: full`).
            let on_chip = chip_value(profile, key);
            assert!(
                on_chip.starts_with(&file) && on_chip[file.len()..].iter().all(|&b| b == 0),
                "{} {key}: the chip does not hold the image file",
                r.profile
            );
            assert_eq!(
                digest,
                sha256(&on_chip),
                "{} {key}: read back differs from the image file",
                r.profile
            );
            compared += 1;
            if decode && !decoded.contains(&digest) {
                assert_decodes(&file, &format!("{} {key}", r.profile));
                decoded.push(digest);
            }
        }
    }
    compared
}

#[test]
fn every_variant_of_every_valid_card_reads_genuine_in_process_with_images_intact() {
    let dir = scratch("inproc");
    let profiles = catalogue_and_variants(&dir);
    let config = common::run_config(
        vec![Adapter::reference()],
        profiles.clone(),
        Transport::Inproc,
        dir.join("out"),
    );
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), profiles.len());
    let compared = assert_genuine_with_images(&results, &profiles);
    assert!(compared >= 2 * profiles.len(), "{compared}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The PC/SC tests here take turns: each uses several readers.
static READERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_variant_of_every_valid_card_reads_genuine_over_pcsc_with_images_intact() {
    let _turn = READERS.lock().unwrap_or_else(|p| p.into_inner());
    if !common::stack_available() {
        return;
    }
    let dir = scratch("pcsc");
    let profiles = catalogue_and_variants(&dir);
    let mut config = common::run_config(
        vec![Adapter::reference()],
        profiles.clone(),
        Transport::Pcsc,
        dir.join("out"),
    );
    config.jobs = rclab_suite::run::Jobs::Exactly(4);
    let results = run::run(&config).unwrap();
    assert_eq!(results.len(), profiles.len());
    assert_genuine_with_images(&results, &profiles);
    std::fs::remove_dir_all(&dir).ok();
}

/// Variants name themselves after their valid card and carry the knob values they differ
/// by; a second generation gives the same variants (deterministic).
#[test]
fn variants_are_deterministic_and_name_their_knob_values() {
    let a = scratch("det-a");
    let b = scratch("det-b");
    let first = catalogue_and_variants(&a);
    let second = catalogue_and_variants(&b);
    let names = |ps: &[Profile]| -> Vec<(String, String)> {
        ps.iter()
            .map(|p| (p.name.clone(), p.description.clone()))
            .collect()
    };
    assert_eq!(names(&first), names(&second));
    for p in first.iter().filter(|p| p.name.starts_with("variants/")) {
        let (base, knobs) = variants::knob_values(&p.description).expect("a variant");
        assert!(base.starts_with("valid/"), "{base}");
        assert!(!knobs.is_empty(), "{}", p.name);
        for k in knobs {
            let (path, value) = k.split_once('=').unwrap();
            let spec = rclab_emulator::card::knobs::knob(path).expect("a knob of the table");
            assert!(spec.values.contains(&value));
            assert!(spec.applies_to_profile(p.kind(), p.generation));
        }
    }
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}

/// The front-desk reader (DF1 in 256-byte SM slices, the first status other than 90 00
/// ends the file and is discarded) gets both generation-1 images whole under the default
/// knobs: byte-identical to the profile's files (the bytes it dumped) and decoding. With
/// `knobs.image_layout: full` it loses the tails: a false reject naming that knob value.
#[test]
fn the_front_desk_reader_reads_both_gen1_images_whole_under_the_default_knobs() {
    let _turn = READERS.lock().unwrap_or_else(|p| p.into_inner());
    if !common::stack_available() {
        return;
    }
    let dir = scratch("front-desk");
    let dump = dir.join("images");
    let adapter_file = dir.join("front-desk.yaml");
    let shipped =
        std::fs::read_to_string(repo().join("suite/adapters/pyscard-front-desk.yaml")).unwrap();
    let dumping = shipped.replace(
        "\"--front-desk-slices\", \"256\"]",
        &format!(
            "\"--front-desk-slices\", \"256\", \"--dump-images\", \"{}/{{profile_name}}\"]",
            dump.display()
        ),
    );
    assert_ne!(dumping, shipped, "the adapter's command changed shape");
    std::fs::write(&adapter_file, dumping).unwrap();
    let checker = Adapter::load(adapter_file.to_str().unwrap()).unwrap();

    let mut profiles: Vec<Profile> = common::profiles("valid")
        .into_iter()
        .filter(|p| p.generation == rclab_emulator::protocol::Generation::First)
        .map(|mut p| {
            p.name = format!("valid/{}", p.name);
            p
        })
        .collect();
    assert!(profiles.len() >= 2);
    let full = variants::Variant {
        name: "variants/gen1-residence/full".into(),
        base: "valid/gen1-residence".into(),
        knobs: vec![("knobs.image_layout", "full")],
    };
    let base = profiles
        .iter()
        .find(|p| p.name == full.base)
        .unwrap()
        .clone();
    let full_file = dir.join("full.yaml");
    std::fs::write(
        &full_file,
        variants::overlay(&full, &std::path::absolute(&base.path).unwrap()),
    )
    .unwrap();
    let mut full_profile = rclab_emulator::profile::load(&full_file).unwrap();
    full_profile.name = full.name.clone();
    profiles.push(full_profile);

    let mut config = common::run_config(
        vec![checker],
        profiles.clone(),
        Transport::Pcsc,
        dir.join("out"),
    );
    config.jobs = rclab_suite::run::Jobs::Exactly(3);
    let results = run::run(&config).unwrap();
    let (defaults, broken): (Vec<CaseResult>, Vec<CaseResult>) = results
        .into_iter()
        .partition(|r| r.profile.starts_with("valid/"));
    let compared = assert_genuine_with_images(&defaults, &profiles);
    assert_eq!(compared, 2 * defaults.len());
    // The bytes it read, as it dumped them: the image files, byte for byte, decoding.
    for r in &defaults {
        let profile = profiles.iter().find(|p| p.name == r.profile).unwrap();
        for (key, file) in image_files(&profile.path) {
            let got = std::fs::read(dump.join(&r.profile).join(format!("{key}.bin")))
                .unwrap_or_else(|e| panic!("{} {key}: not dumped: {e}", r.profile));
            assert!(got == file, "{} {key}: bytes differ", r.profile);
            if decoders_available() {
                assert_decodes(&got, &format!("front desk {} {key}", r.profile));
            }
        }
    }
    // Full-length images: the slice crossing the end of the EF answers 62 82 and is
    // discarded, the D0 TLV is cut short: a false reject whose suspect is the layout.
    let [r] = broken.as_slice() else {
        panic!("{broken:?}")
    };
    assert_eq!(r.outcome, Outcome::Fail, "{}", r.detail);
    assert!(r.false_reject, "{}", r.detail);
    assert_eq!(r.knobs, vec!["knobs.image_layout=full".to_owned()]);
    assert!(r.detail.contains("knobs.image_layout=full"), "{}", r.detail);
    let md = rclab_suite::run::report::markdown(&[config.checkers[0].clone()], &{
        let mut all = defaults.clone();
        all.push(r.clone());
        all
    });
    let fr = md.split("## False rejects").nth(1).unwrap();
    assert!(
        fr.contains("suspects: knobs.image_layout=full (it reads valid/gen1-residence as genuine)"),
        "{fr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A PC/SC run with nothing left to run (every case resumed, or no profile) returns at
/// once: it used to start a worker that waited forever for a reader from an empty pool.
#[test]
fn a_pcsc_run_without_cases_returns_at_once() {
    let dir = scratch("no-cases");
    let config = common::run_config(
        vec![Adapter::reference()],
        Vec::new(),
        Transport::Pcsc,
        dir.join("out"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            run::run(&config)
                .map(|r| r.len())
                .map_err(|e| e.to_string()),
        );
    });
    let done = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the run hangs");
    assert_eq!(done, Ok(0));
    std::fs::remove_dir_all(&dir).ok();
}

/// The specified residence cards' variants (issue 16): for `my-number/valid/specified-07`
/// and `-08`, the pairwise rows over the 在留AP's knobs (`platform.residence_*`) and no
/// other, named `variants/specified-0N/vNN`; every value of every such knob is in some
/// variant (a non-default value set, the default left), and the compiled card shows what
/// its variant sets. The plain My Number cards get none, and the residence cards' variants
/// come out as they do alone (names and knob values).
#[test]
fn specified_cards_vary_pairwise_over_the_residence_ap_knobs() {
    use rclab_emulator::card::knobs::KNOBS;
    use rclab_emulator::chip::ChipKind;

    let dir = scratch("specified");
    let catalogue = common::all_profiles("");
    let variants = variants::write_variants(&catalogue, &dir).expect("variants");
    let residence_ap: Vec<_> = KNOBS.iter().filter(|k| k.is_residence_ap()).collect();
    assert!(
        residence_ap.len() >= 9,
        "{} 在留AP knobs",
        residence_ap.len()
    );
    let levels: Vec<usize> = residence_ap.iter().map(|k| k.values.len()).collect();
    // Every pairwise row but the all-default one (the valid card itself).
    let per_card = variants::pairwise(&levels).len() - 1;
    // Nine knobs (eight of two values, the key format of three): 15 rows, far below the
    // product's 768; a knob added to the table changes this figure on purpose.
    assert_eq!(
        (levels.len(), per_card),
        (9, 14),
        "variants per card over levels {levels:?}"
    );

    for base in [
        "my-number/valid/specified-07",
        "my-number/valid/specified-08",
    ] {
        let stem = base.rsplit('/').next().unwrap();
        let mine: Vec<&Profile> = variants
            .iter()
            .filter(|v| variants::knob_values(&v.description).is_some_and(|(b, _)| b == base))
            .collect();
        assert_eq!(mine.len(), per_card, "{base}");
        for (i, v) in mine.iter().enumerate() {
            assert_eq!(v.name, format!("variants/{stem}/v{:02}", i + 1));
            assert_eq!(v.kind(), ChipKind::SpecifiedResidence, "{}", v.name);
        }
        for knob in &residence_ap {
            let field = knob.path.strip_prefix("platform.").unwrap();
            let default = knob.default.for_generation(mine[0].generation);
            for value in knob.values {
                let setting = format!("{}={value}", knob.path);
                let carrying: Vec<&&Profile> = mine
                    .iter()
                    .filter(|v| {
                        let (_, knobs) = variants::knob_values(&v.description).unwrap();
                        if *value == default {
                            !knobs
                                .iter()
                                .any(|k| k.starts_with(&format!("{}=", knob.path)))
                        } else {
                            knobs.contains(&setting.as_str())
                        }
                    })
                    .collect();
                assert!(!carrying.is_empty(), "{base}: no variant with {setting}");
                for v in carrying {
                    let compiled =
                        serde_yaml_ng::to_value(&v.my_number.as_ref().unwrap().knobs).unwrap();
                    assert_eq!(
                        compiled[field].as_str(),
                        Some(*value),
                        "{}: {setting} does not reach the card",
                        v.name
                    );
                }
            }
        }
        // Only the 在留AP's knobs vary.
        for v in &mine {
            let (_, knobs) = variants::knob_values(&v.description).unwrap();
            assert!(
                knobs.iter().all(|k| k.starts_with("platform.residence_")),
                "{}: {knobs:?}",
                v.name
            );
        }
    }
    // Plain My Number cards: none yet.
    for v in &variants {
        let (base, _) = variants::knob_values(&v.description).unwrap();
        let base_kind = catalogue.iter().find(|p| p.name == base).unwrap().kind();
        assert_ne!(base_kind, ChipKind::MyNumber, "{} varies {base}", v.name);
    }
    // The residence cards' variants are those of the residence catalogue alone.
    let alone = scratch("specified-alone");
    let residence = catalogue_and_variants(&alone);
    let names = |ps: &[&Profile]| -> Vec<(String, String)> {
        ps.iter()
            .map(|p| (p.name.clone(), p.description.clone()))
            .collect()
    };
    let from_alone: Vec<&Profile> = residence
        .iter()
        .filter(|p| p.name.starts_with("variants/"))
        .collect();
    let from_all: Vec<&Profile> = variants
        .iter()
        .filter(|v| v.kind() == ChipKind::Residence)
        .collect();
    // The description names the valid card's path-derived name, the same in both.
    assert_eq!(names(&from_all), names(&from_alone));
    assert_eq!(variants.len(), from_alone.len() + 2 * per_card);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&alone).ok();
}

/// Two valid cards whose last name part is the same would give their variants one name:
/// refused, naming both.
#[test]
fn valid_cards_whose_variants_would_clash_are_refused() {
    let dir = scratch("clash");
    let mut catalogue: Vec<Profile> = common::all_profiles("")
        .into_iter()
        .filter(|p| p.name == "my-number/valid/specified-07")
        .collect();
    let mut twin = catalogue[0].clone();
    twin.name = "valid/specified-07".into();
    catalogue.push(twin);
    let error = variants::write_variants(&catalogue, &dir)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("my-number/valid/specified-07")
            && error.contains("valid/specified-07 would")
            && error.contains("variants/specified-07/v01"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
