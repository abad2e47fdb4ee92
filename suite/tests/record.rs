//! `rclab record` (issue 12), in process: every valid and corrupted card recorded and served
//! again from the recording gives the reference checker the very same transcript and
//! verdict; a card whose misbehaviour is transport (`faults:`) is recorded as its data, or
//! refused; `--redact` gives a genuine TEST card with none of the original's personal data;
//! the `raw_files:` field's errors name the field.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rclab_emulator::fault::{Fault, SimCard};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::{Exchange, Tap};
use rclab_emulator::verdict::Verdict;
use rclab_suite::checker::{Checker, TrustStore};
use rclab_suite::probe::{Options, record};

/// Valid and corrupted cards, named `valid/…`, `corrupted/…`.
pub fn catalogue() -> Vec<Profile> {
    let mut out = Vec::new();
    for sub in ["valid", "corrupted"] {
        for mut p in common::profiles(sub) {
            p.name = format!("{sub}/{}", p.name);
            out.push(p);
        }
    }
    out
}

/// The reference checker's transcript (commands and answers) and verdict on `card`.
pub fn checked(card: SimCard, number: &str) -> (Vec<(String, String)>, Verdict) {
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: common::options(11),
    };
    let mut tap = Tap::new(card);
    let report = checker.check(&mut tap, number);
    (pairs(tap.transcript()), report.verdict)
}

/// A transcript without its timings.
pub fn pairs(transcript: &[Exchange]) -> Vec<(String, String)> {
    transcript
        .iter()
        .map(|e| {
            (
                e.command.clone(),
                e.response.clone().unwrap_or_else(|t| format!("{t:?}")),
            )
        })
        .collect()
}

fn record_in_process(p: &Profile, dir: &Path, redact: bool) -> anyhow::Result<PathBuf> {
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: common::options(3),
    };
    let options = Options {
        card_number: Some(p.card_number.to_string()),
        risky: Vec::new(),
        seed: Some(2),
        delivery_key: None,
    };
    let rec = record::read_card(&mut p.card(), &p.name, &options, &checker)?;
    if redact {
        record::write_redacted(&rec, dir)
    } else {
        record::write_recording(&rec, p.card_number.as_str(), p.image.seed, dir)
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_valid_and_corrupted_card_replays_from_its_recording() {
    let root = common::temp_dir("record", "replay");
    let mut replayed = 0;
    let mut faulty = Vec::new();
    for p in catalogue() {
        let dir = root.join(p.name.replace('/', "-"));
        let recorded = record_in_process(&p, &dir, false);
        if !p.faults.is_empty() {
            // Misbehaviour (`faults:`) is no EF byte: the recording holds the data as the
            // card delivered it — the faithful chip's when the faults only change how it
            // is delivered — or recording stops with the reader's error.
            let delivery_only = p.faults.iter().all(|f| {
                matches!(
                    f,
                    Fault::Delay { .. } | Fault::GetResponse { .. } | Fault::WrongLe { .. }
                )
            });
            match recorded {
                Ok(path) => {
                    let again = profile::load(&path).unwrap();
                    assert!(again.faults.is_empty());
                    if delivery_only {
                        assert!(
                            again.image.files == p.image.files,
                            "{}: the recording's EFs differ from the card's",
                            p.name
                        );
                    }
                    faulty.push(format!("{}: recorded its data", p.name));
                }
                Err(e) => faulty.push(format!("{}: refused: {e:#}", p.name)),
            }
            continue;
        }
        let path = recorded.unwrap_or_else(|e| panic!("{}: {e:#}", p.name));
        assert_eq!(mode(&dir), 0o700, "{}", p.name);
        for entry in std::fs::read_dir(dir.join("ef")).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600, "{}", p.name);
        }
        assert_eq!(mode(&path), 0o600);
        let again = profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(again.image.files == p.image.files, "{}", p.name);
        let number = p.card_number.as_str();
        let (original, original_verdict) = checked(p.card(), number);
        let (replay, replay_verdict) = checked(again.card(), number);
        assert_eq!(replay_verdict, original_verdict, "{}", p.name);
        assert!(replay == original, "{}: transcripts differ", p.name);
        assert_eq!(again.expect.verdict, original_verdict, "{}", p.name);
        replayed += 1;
    }
    assert!(replayed >= 15, "{replayed} replayed");
    eprintln!(
        "{replayed} cards replayed; with faults:\n{}",
        faulty.join("\n")
    );
}

/// Every file below `dir`, bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// The scalar at `dotted` in the profile (following `extends:`).
fn field(p: &Profile, dotted: &str) -> Option<String> {
    let mut file = Some(p.path.clone());
    while let Some(f) = file.take() {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let mut node = Some(&doc);
        for key in dotted.split('.') {
            node = node.and_then(|n| n.get(key));
        }
        if let Some(serde_yaml_ng::Value::String(s)) = node {
            return Some(s.clone());
        }
        let dir = f.parent().unwrap().to_path_buf();
        file = doc
            .get("extends")
            .and_then(|e| e.as_str())
            .map(|e| dir.join(e));
    }
    None
}

#[test]
fn a_redacted_recording_is_a_genuine_test_card_without_the_originals_personal_data() {
    let root = common::temp_dir("record", "redact");
    for p in common::profiles("valid") {
        let dir = root.join(&p.name);
        let path = record_in_process(&p, &dir, true).unwrap();
        let redacted = profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(redacted.expect.verdict, Verdict::GENUINE);
        let (_, verdict) = checked(redacted.card(), redacted.card_number.as_str());
        assert_eq!(verdict, Verdict::GENUINE, "{}", p.name);
        // The same layout: generation, type, EF sizes.
        assert_eq!(redacted.generation, p.generation);
        assert_eq!(redacted.card_type, p.card_type);
        let sizes = |x: &Profile| {
            x.image
                .files
                .iter()
                .map(|f| f.content.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(&redacted), sizes(&p), "{}", p.name);
        // None of the person's data.
        let mut personal: Vec<(String, Vec<u8>)> =
            vec![("card number".into(), p.card_number.as_str().into())];
        for key in [
            "address.text",
            "address.date",
            "address.municipality_code",
            "back_side.comprehensive_permission",
            "back_side.individual_permission",
            "printed.birth_date",
            "printed.card_expiry",
            "printed.nationality",
            "printed.status_of_residence",
            "other.reserved_text",
        ] {
            if let Some(v) = field(&p, key).filter(|v| v.len() >= 3) {
                let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&v);
                personal.push((key.into(), v.as_bytes().to_vec()));
                personal.push((format!("{key} (Shift_JIS)"), sjis.into_owned()));
            }
        }
        for key in [
            "images.front",
            "images.face",
            "images.name",
            "images.address",
        ] {
            if let Some(rel) = field(&p, key) {
                let image = std::fs::read(p.path.parent().unwrap().join(&rel)).unwrap();
                // Every 64 bytes of the picture, except format structure (boxes, IFDs,
                // codestream headers) that other people's TEST images share too.
                let original = std::fs::canonicalize(p.path.parent().unwrap().join(&rel)).unwrap();
                let others: Vec<Vec<u8>> = std::fs::read_dir(common::vectors().join("images"))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|f| std::fs::canonicalize(f).unwrap() != original)
                    .map(|f| std::fs::read(f).unwrap())
                    .collect();
                let structure =
                    |w: &[u8]| others.iter().any(|o| o.windows(w.len()).any(|x| x == w));
                for (i, window) in image
                    .chunks(64)
                    .enumerate()
                    .filter(|(_, w)| w.len() == 64 && !structure(w))
                {
                    personal.push((format!("{key} bytes {}..", i * 64), window.to_vec()));
                }
            }
        }
        for (file, bytes) in all_bytes(&dir) {
            for (what, needle) in &personal {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "{}: {what} in {}",
                    p.name,
                    file.display()
                );
            }
        }
        // Its images are the card's sizes (a JP2 grows by a `free` box, a TIFF by zeros).
        for (key, element) in [("images.front", "front"), ("images.face", "face")] {
            if let (Some(rel), Ok(mine)) = (
                field(&p, key),
                std::fs::read_dir(dir.join("images")).map(|d| {
                    d.filter_map(Result::ok)
                        .find(|e| e.file_name().to_string_lossy().starts_with(element))
                }),
            ) && let Some(mine) = mine
            {
                let path = p.path.parent().unwrap().join(rel);
                let original = std::fs::metadata(&path).unwrap().len();
                let size = std::fs::metadata(mine.path()).unwrap().len();
                // Only when every other TEST image of the kind is larger can it not shrink.
                let ext = path.extension().unwrap().to_owned();
                let any_fits = std::fs::read_dir(common::vectors().join("images"))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|f| {
                        f.extension() == Some(&ext)
                            && f.file_name().unwrap().to_string_lossy().contains(element)
                    })
                    .filter(|f| {
                        std::fs::canonicalize(f).unwrap() != std::fs::canonicalize(&path).unwrap()
                    })
                    .any(|f| {
                        let len = std::fs::metadata(f).unwrap().len();
                        // A JP2 grows by a box of at least 8 bytes.
                        len == original || len + if ext == "jp2" { 8 } else { 1 } <= original
                    });
                if any_fits {
                    assert_eq!(size, original, "{}: {key}", p.name);
                } else {
                    assert!(size > original, "{}: {key}", p.name);
                    eprintln!(
                        "{}: {key}: every other TEST image is larger ({size} > {original} bytes)",
                        p.name
                    );
                }
            }
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn raw_files_errors_name_the_field() {
    let dir = common::temp_dir("record", "raw-errors");
    let p = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-sprc")
        .unwrap();
    let recorded = record_in_process(&p, &dir, false).unwrap();
    let text = std::fs::read_to_string(&recorded).unwrap();
    let error = |name: &str, text: &str| {
        let path = write(&dir, name, text);
        profile::load(&path).unwrap_err()
    };
    let e = error(
        "extra.yaml",
        &text.replace("raw_files:\n", "raw_files:\n  DF2/EF09: ef/MF-EF01.bin\n"),
    );
    assert_eq!(e.field.as_deref(), Some("raw_files.DF2/EF09"), "{e}");
    assert!(e.location.is_some() && e.message.contains("no EF"), "{e}");
    let e = error(
        "missing.yaml",
        &text.replace("  MF/EF02: ef/MF-EF02.bin\n", ""),
    );
    assert_eq!(e.field.as_deref(), Some("raw_files"), "{e}");
    assert!(e.message.contains("MF/EF02"), "{e}");
    let e = error(
        "unreadable.yaml",
        &text.replace("ef/MF-EF02.bin", "ef/nothing.bin"),
    );
    assert_eq!(e.field.as_deref(), Some("raw_files.MF/EF02"), "{e}");
    std::fs::write(dir.join("ef/huge.bin"), vec![0u8; profile::MAX_EF_SIZE + 1]).unwrap();
    let e = error("huge.yaml", &text.replace("ef/MF-EF02.bin", "ef/huge.bin"));
    assert_eq!(e.field.as_deref(), Some("raw_files.MF/EF02"), "{e}");
    // A child in another folder inherits working paths (relative to the file that wrote them).
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let child = write(
        &dir,
        "sub/child.yaml",
        &format!(
            "extends: ../{}\n",
            recorded.file_name().unwrap().to_string_lossy()
        ),
    );
    assert!(profile::load(&child).unwrap().image.files == p.image.files);
}

/// Runs `work` for every item of `items` on the free vpcd readers (at most four), one
/// thread per reader, each item with the port of the reader it got.
fn on_readers<T: Sync>(items: &[T], work: impl Fn(&T, u16) + Sync) {
    let mut ports = rclab_suite::run::vpcd_ports();
    ports.truncate(4);
    assert!(!ports.is_empty(), "no free vpcd reader");
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for port in ports {
            let (next, work) = (&next, &work);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    work(item, port);
                }
            });
        }
    });
}

/// `card` served in the vpcd reader at `port`.
fn serve(card: SimCard, port: u16) -> rclab_emulator::transport::vpcd::VirtualReader {
    use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
    let reader = VirtualReader::spawn(ReaderOptions::new(port), Some(Box::new(card)));
    assert!(
        reader.wait_attached(std::time::Duration::from_secs(10)),
        "vpcd never took the card on port {port}"
    );
    reader
}

/// The reference checker's transcript and verdict on `card`, served at `port`, over PC/SC.
fn checked_over_pcsc(card: SimCard, number: &str, port: u16) -> (Vec<(String, String)>, Verdict) {
    let reader = serve(card, port);
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: common::options(11),
    };
    let mut channel = rclab_suite::pcsc_channel::PcscChannel::connect(
        &reader.name(),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let (transcript, verdict) = {
        let mut tap = Tap::new(&mut channel);
        let report = checker.check(&mut tap, number);
        (pairs(tap.transcript()), report.verdict)
    };
    channel.close();
    reader.stop();
    (transcript, verdict)
}

#[test]
fn every_valid_and_corrupted_card_served_over_pcsc_replays_from_its_recording() {
    if !common::stack_available() {
        return;
    }
    let root = common::temp_dir("record", "pcsc");
    let cards: Vec<Profile> = catalogue()
        .into_iter()
        .filter(|p| p.faults.is_empty())
        .collect();
    let started = std::time::Instant::now();
    on_readers(&cards, |p, port| {
        let dir = root.join(p.name.replace('/', "-"));
        let number = p.card_number.as_str();
        let reader = serve(p.card(), port);
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_rclab"))
            .args([
                "record",
                "--reader",
                &reader.name(),
                "--card-number",
                number,
                "--out",
            ])
            .arg(&dir)
            .args(["--seed", &p.image.seed.to_string(), "--at", "2026-11-25"])
            .output()
            .unwrap();
        reader.stop();
        assert!(run.status.success(), "{}: {}", p.name, common::stderr(&run));
        assert!(common::stderr(&run).contains("PERSONAL DATA"), "{}", p.name);
        let recording =
            profile::load(&dir.join("card.yaml")).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(mode(&dir.join("card.yaml")), 0o600);
        assert!(recording.image.files == p.image.files, "{}", p.name);
        let (original, original_verdict) = checked_over_pcsc(p.card(), number, port);
        let (replay, replay_verdict) = checked_over_pcsc(recording.card(), number, port);
        assert_eq!(replay_verdict, original_verdict, "{}", p.name);
        assert!(replay == original, "{}: transcripts differ", p.name);
        assert_eq!(recording.expect.verdict, original_verdict, "{}", p.name);
    });
    eprintln!(
        "{} cards recorded and replayed over PC/SC in {:.1} s",
        cards.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn recording_a_specified_card_is_refused_naming_it() {
    let p = profile::load(&common::vectors().join("profiles/my-number/valid/specified-07.yaml"))
        .unwrap();
    let trust = TrustStore::embedded_test_roots();
    let checker = Checker {
        trust: &trust,
        options: common::options(3),
    };
    let options = Options {
        card_number: Some(p.card_number.to_string()),
        ..Options::default()
    };
    let err = record::read_card(&mut p.card(), &p.name, &options, &checker)
        .err()
        .expect("a specified card is not recorded");
    assert!(err.to_string().contains("a specified card"), "{err:#}");
}
