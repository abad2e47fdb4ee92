//! `rclab probe` (issue 12), in process: every card of the variant space (the valid cards
//! and all their pairwise variants) is probed, and what the probe decides is what was
//! served — the fragment laid over the valid card (`extends:`) compiles to the very card
//! that was probed, its values are the variant overlay's, and it holds no personal data. A
//! card answering outside every value of a knob is reported unknown, never forced.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rclab_emulator::card::knobs::{KNOBS, knob};
use rclab_emulator::fault::SimCard;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::{Channel, TransportError};
use rclab_suite::probe::{self, Decision, Options, ProbeTarget, Report, fragment};
use rclab_suite::run::variants;

/// The scalar at `dotted` in the profile at `path` or the first file of its `extends:`
/// chain that writes it (`true`/`false` for booleans).
pub fn chain_value(path: &Path, dotted: &str) -> Option<String> {
    let mut file = Some(path.to_path_buf());
    while let Some(f) = file.take() {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let mut node = Some(&doc);
        for key in dotted.split('.') {
            node = node.and_then(|n| n.get(key));
        }
        match node {
            Some(serde_yaml_ng::Value::String(s)) => return Some(s.clone()),
            Some(serde_yaml_ng::Value::Bool(b)) => return Some(b.to_string()),
            _ => {}
        }
        let dir = f.parent().unwrap().to_path_buf();
        file = doc
            .get("extends")
            .and_then(|e| e.as_str())
            .map(|e| dir.join(e));
    }
    None
}

/// The value of knob `path` the card of `profile` was served with.
pub fn served_value(profile: &Profile, path: &str) -> String {
    let k = knob(path).unwrap();
    chain_value(&profile.path, path)
        .unwrap_or_else(|| k.default.for_generation(profile.generation).to_owned())
}

/// The valid cards (named `valid/…`) and all their variants, written below `dir`.
pub fn variant_space(dir: &Path) -> (Vec<Profile>, Vec<Profile>) {
    let mut valid = common::profiles("valid");
    for p in &mut valid {
        p.name = format!("valid/{}", p.name);
    }
    let variants = variants::write_variants(&valid, dir).unwrap();
    (valid, variants)
}

fn options(card: &Profile, seed: u64) -> Options {
    Options {
        card_number: Some(card.card_number.to_string()),
        risky: vec!["failed-verify".into()],
        seed: Some(seed),
        delivery_key: None,
    }
}

/// `text` written as the profile `dir/name.yaml`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Every EF window of 16 bytes that is not fill (all one byte): none may appear in the
/// fragment, raw or as hex.
pub fn assert_no_personal_data(text: &str, card: &Profile, what: &str) {
    assert!(
        !text.contains(card.card_number.as_str()),
        "{what}: card number in\n{text}"
    );
    for key in ["printed.birth_date", "address.text", "address.date"] {
        if let Some(v) = chain_value(&card.path, key)
            && !v.is_empty()
        {
            assert!(!text.contains(&v), "{what}: {key} {v:?} in\n{text}");
        }
    }
    let spaced = text.replace(' ', "").to_uppercase();
    for ef in &card.image.files {
        for window in ef.content.windows(16).step_by(8) {
            if window.iter().all(|&b| b == window[0]) {
                continue;
            }
            let hex = hex::encode_upper(window);
            assert!(
                !spaced.contains(&hex),
                "{what}: {} bytes in\n{text}",
                ef.name
            );
            assert!(
                !text.as_bytes().windows(16).any(|w| w == window),
                "{what}: {} bytes in\n{text}",
                ef.name
            );
        }
    }
}

/// Checks one probed card against what it was served: every decided value is the served
/// one; every "not shown" knob truly does not change the card's files; nothing else.
/// Then the fragment over `base` compiles to the served card. Returns the number of knobs
/// decided.
pub fn assert_round_trip(report: &Report, card: &Profile, base: &Profile, dir: &Path) -> usize {
    let name = &card.name;
    let mut decided = 0;
    for f in &report.findings {
        let served = served_value(card, f.path);
        match &f.decision {
            Decision::Value(v) => {
                assert_eq!(*v, served, "{name}: {} ({:?})", f.path, f.evidence);
                decided += 1;
            }
            Decision::NotShown(why) => {
                // Every other value of the knob gives this card's very files.
                for value in knob(f.path)
                    .unwrap()
                    .values
                    .iter()
                    .filter(|v| **v != served)
                {
                    let overlay = knob(f.path)
                        .unwrap()
                        .overlay(card.path.to_str().unwrap(), value)
                        .unwrap();
                    let other = profile::load(&write(dir, "not-shown", &overlay)).unwrap();
                    assert!(
                        other.image.files == card.image.files,
                        "{name}: {} said not shown ({why}) but {value} changes the card",
                        f.path
                    );
                }
            }
            other => panic!("{name}: {}: {other:?} ({:?})", f.path, f.evidence),
        }
    }
    // The fragment is an overlay: over the valid card it gives the card probed.
    let text = fragment::render(report);
    let not_shown: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| matches!(f.decision, Decision::NotShown(_)))
        .map(|f| f.path)
        .collect();
    assert_rebuilt(card, base, &text, &not_shown, dir);
    decided
}

/// The fragment `text` laid over `base` loads and gives `card`: its files, its reader and
/// every knob but those the card does not show. No personal data in `text`.
pub fn assert_rebuilt(card: &Profile, base: &Profile, text: &str, not_shown: &[&str], dir: &Path) {
    let name = &card.name;
    let over = format!("extends: {}\n{text}", base.path.display());
    let rebuilt = profile::load(&write(dir, &name.replace('/', "-"), &over))
        .unwrap_or_else(|e| panic!("{name}: the fragment does not load: {e}\n{text}"));
    assert!(
        rebuilt.image.files == card.image.files,
        "{name}: files differ\n{text}"
    );
    let knobs = |p: &Profile| {
        let mut map = serde_yaml_ng::to_value(&p.image.knobs).unwrap();
        for path in not_shown {
            if let (Some(key), serde_yaml_ng::Value::Mapping(m)) =
                (path.strip_prefix("knobs."), &mut map)
            {
                m.remove(key);
            }
        }
        map
    };
    assert_eq!(knobs(&rebuilt), knobs(card), "{name}\n{text}");
    let (mine, theirs) = (&rebuilt.image.reader, &card.image.reader);
    assert_eq!(
        (&mine.atr, mine.get_data),
        (&theirs.atr, theirs.get_data),
        "{name}\n{text}"
    );
    if !not_shown.contains(&"reader.pupi") {
        assert_eq!(mine.pupi, theirs.pupi, "{name}\n{text}");
    }
    assert_no_personal_data(text, card, name);
}

#[test]
fn every_card_of_the_variant_space_is_probed_back_to_the_knobs_it_was_served_with() {
    let dir = common::temp_dir("probe", "space");
    let (valid, variants) = variant_space(&dir);
    let mut decided = 0;
    let mut cards = 0;
    let generated: Vec<variants::Variant> = valid.iter().flat_map(variants::variants_of).collect();
    for card in valid.iter().chain(&variants) {
        let base = valid
            .iter()
            .find(|b| card.name == b.name || card.description.contains(&format!("of {}:", b.name)))
            .unwrap_or_else(|| panic!("{}: no valid card", card.name));
        let mut sim = card.card();
        let report = probe::probe(&mut sim, &card.name, &options(card, 5));
        decided += assert_round_trip(&report, card, base, &dir);
        cards += 1;
        // A variant's own knob values are in the fragment as variants.rs's overlay has them.
        let Some(variant) = generated.iter().find(|v| v.name == card.name) else {
            continue;
        };
        let text = fragment::render(&report);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let overlay: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&variants::overlay(variant, &base.path)).unwrap();
        for (path, value) in &variant.knobs {
            let at = |doc: &serde_yaml_ng::Value| {
                let mut node = Some(doc.clone());
                for key in path.split('.') {
                    node = node.and_then(|n| n.get(key).cloned());
                }
                node
            };
            if !matches!(
                report.finding(path).unwrap().decision,
                Decision::NotShown(_)
            ) {
                assert_eq!(
                    at(&doc),
                    at(&overlay),
                    "{}: {path}={value}\n{text}",
                    card.name
                );
            }
        }
    }
    assert!(cards > 2 * valid.len(), "{cards} cards");
    // Most knobs of most cards show (a face layout needs a card without a photo, a text
    // encoding non-ASCII text).
    let rows: usize = valid
        .iter()
        .chain(&variants)
        .map(|c| KNOBS.iter().filter(|k| k.applies_to(c.generation)).count())
        .sum();
    assert!(decided * 10 >= rows * 7, "{decided} of {rows} decided");
    eprintln!("{cards} cards probed in process, {decided} of {rows} knob values decided");
}

/// A card that answers some commands its own way (a card unlike every knob value), the
/// rest as the emulated card does.
struct Odd {
    card: SimCard,
    answers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Channel for Odd {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.answers.iter().find(|(c, _)| c == apdu) {
            Some((_, answer)) => Ok(answer.clone()),
            None => Channel::transmit(&mut self.card, apdu),
        }
    }
}

impl ProbeTarget for Odd {
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.card.power_cycle()
    }
    fn atr(&self) -> Option<Vec<u8>> {
        None
    }
}

#[test]
fn a_status_word_outside_every_value_is_unknown_with_its_evidence() {
    let card = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen1-residence")
        .unwrap();
    let mut odd = Odd {
        card: card.card(),
        answers: vec![
            // MF/EF01 is 6 bytes: past its end, a status no knob value has.
            (vec![0x00, 0xB0, 0x8B, 0x00, 0x07], vec![0x6A, 0x86]),
            (vec![0xFF, 0xCA, 0x00, 0x00, 0x00], vec![0x6A, 0x81]),
        ],
    };
    let report = probe::probe(&mut odd, "odd", &options(&card, 1));
    for (path, status) in [
        ("knobs.read_past_end", "6A 86"),
        ("reader.get_data", "6A 81"),
    ] {
        let f = report.finding(path).unwrap();
        assert!(matches!(f.decision, Decision::Unknown(_)), "{path}: {f:?}");
        assert!(
            f.evidence.iter().any(|s| s.status == status),
            "{path}: {f:?}"
        );
        let text = fragment::render(&report);
        let key = path.rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("# {key}: unknown")) && text.contains(status),
            "{text}"
        );
    }
    // The rest is still decided.
    assert_eq!(
        report.finding("knobs.image_layout").unwrap().decision,
        Decision::Value("exact")
    );
}

#[test]
fn without_the_card_number_or_the_risky_flag_those_probes_do_not_run() {
    let card = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-infant")
        .unwrap();
    let mut sim = card.card();
    let report = probe::probe(&mut sim, "free", &Options::default());
    let decided: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.value().is_some())
        .map(|f| f.path)
        .collect();
    assert_eq!(
        decided,
        [
            "knobs.read_past_end",
            "knobs.cla_0c",
            "knobs.unknown_cla",
            "knobs.sm_on_plain_commands",
            "knobs.plain_verify",
            "reader.get_data",
            "reader.pupi"
        ]
    );
    // No VERIFY, no MUTUAL AUTHENTICATE went to the card.
    for name in ["df1-images", "failed-verify", "certificate-layout"] {
        let run = report.probes.iter().find(|p| p.name == name).unwrap();
        assert!(run.apdus.is_none(), "{name} ran");
    }
    let numbered = Options {
        card_number: Some(card.card_number.to_string()),
        ..Options::default()
    };
    let report = probe::probe(&mut card.card(), "numbered", &numbered);
    let f = report.finding("knobs.failed_verify_drops_session").unwrap();
    assert!(
        matches!(&f.decision, Decision::NotProbed(why) if why.contains("--risky failed-verify")),
        "{f:?}"
    );
    assert_eq!(
        report.finding("face_layout").unwrap().decision,
        Decision::Value("zero_filled")
    );
    let _ = Arc::clone(&card.image);
}

/// Runs `work` for every item of `items` on the free vpcd readers, one thread per reader,
/// each item with the port of the reader it got.
pub fn on_readers<T: Sync>(items: &[T], work: impl Fn(&T, u16) + Sync) {
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

/// `card` served in the vpcd reader at `port` (until dropped or stopped).
pub fn serve(card: SimCard, port: u16) -> rclab_emulator::transport::vpcd::VirtualReader {
    use rclab_emulator::transport::vpcd::{ReaderOptions, VirtualReader};
    let reader = VirtualReader::spawn(ReaderOptions::new(port), Some(Box::new(card)));
    assert!(
        reader.wait_attached(std::time::Duration::from_secs(10)),
        "vpcd never took the card on port {port}"
    );
    reader
}

#[test]
fn every_card_of_the_variant_space_is_probed_back_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let dir = common::temp_dir("probe", "pcsc");
    let (valid, variants) = variant_space(&dir);
    let cards: Vec<&Profile> = valid.iter().chain(&variants).collect();
    let started = std::time::Instant::now();
    on_readers(&cards, |card, port| {
        let base = valid
            .iter()
            .find(|b| card.name == b.name || card.description.contains(&format!("of {}:", b.name)))
            .unwrap();
        let reader = serve(card.card(), port);
        let out = dir.join(format!("{}.fragment.yaml", card.name.replace('/', "-")));
        let evidence = dir.join(format!("{}.evidence.json", card.name.replace('/', "-")));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_rclab"))
            .args([
                "probe",
                "--reader",
                &reader.name(),
                "--card-number",
                card.card_number.as_str(),
            ])
            .args(["--risky", "failed-verify", "--seed", "3", "--out"])
            .arg(&out)
            .arg("--evidence")
            .arg(&evidence)
            .output()
            .unwrap();
        reader.stop();
        assert!(
            run.status.success(),
            "{}: {}",
            card.name,
            common::stderr(&run)
        );
        assert!(
            common::stderr(&run).contains("WRONG VERIFY"),
            "{}: no warning",
            card.name
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains(": unknown"), "{}:\n{text}", card.name);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&evidence).unwrap()).unwrap();
        let not_shown: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["decision"]["kind"] == "not_shown")
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        // Every not-shown knob was checked against the card's files in process.
        assert_rebuilt(card, base, &text, &not_shown, &dir);
    });
    eprintln!(
        "{} cards probed over PC/SC in {:.1} s",
        cards.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn readme_probe_table_matches_the_battery() {
    const BEGIN: &str = "<!-- probes:begin -->\n";
    const END: &str = "<!-- probes:end -->";
    let path = common::repo().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(BEGIN)
        .expect("README has the probes:begin marker")
        + BEGIN.len();
    let end = text[start..].find(END).expect("probes:end marker") + start;
    let table = rclab_suite::probe::battery::readme_table();
    if text[start..end] == table {
        return;
    }
    if std::env::var_os("RCLAB_UPDATE_CATALOGUE").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    panic!(
        "README's probe table differs from the battery; run \
         RCLAB_UPDATE_CATALOGUE=1 cargo test -p rclab-suite --test probe readme\nexpected:\n{table}"
    );
}

/// A card answering random bytes (status words steered toward the interesting ones), or
/// failing, at random.
struct Garbage(rand_chacha::ChaCha20Rng);

impl Channel for Garbage {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        use rand::{Rng, RngExt};
        // A generation-2 card type, so that every probe gets to run.
        if apdu == [0x00, 0xB0, 0x8A, 0x00, 0x00] {
            return Ok(vec![0xC1, 0x02, b'0', b'5', 0x90, 0x00]);
        }
        let len = match self.0.random_range(0..8) {
            0 => 0,
            1 => 1,
            2 => self.0.random_range(3..800),
            _ => self.0.random_range(2..40),
        };
        let mut reply = vec![0; len];
        self.0.fill_bytes(&mut reply);
        if len >= 2 && self.0.random_bool(0.7) {
            let sw: [u8; 2] = match self.0.random_range(0..6) {
                0 => [0x90, 0x00],
                1 => [0x62, 0x82],
                2 => [0x6C, self.0.random()],
                3 => [0x61, self.0.random()],
                4 => [0x63, 0x00],
                _ => [0x69, 0x85],
            };
            reply[len - 2..].copy_from_slice(&sw);
        }
        if self.0.random_range(0..30) == 0 {
            return Err(TransportError::Timeout);
        }
        Ok(reply)
    }
}

impl ProbeTarget for Garbage {
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn atr(&self) -> Option<Vec<u8>> {
        Some(vec![0x3B, 0x00])
    }
}

#[test]
fn a_hostile_card_gets_findings_not_panics_and_the_fragment_still_loads() {
    use rand::SeedableRng;
    let dir = common::temp_dir("probe", "garbage");
    let base = common::profiles("valid")
        .into_iter()
        .find(|p| p.name == "gen2-residence")
        .unwrap();
    for seed in 0..100u64 {
        let mut card = Garbage(rand_chacha::ChaCha20Rng::seed_from_u64(seed));
        let options = Options {
            card_number: Some("AB12345678CD".into()),
            risky: vec!["failed-verify".into()],
            seed: Some(seed),
            delivery_key: None,
        };
        let report = probe::probe(&mut card, "garbage", &options);
        let text = fragment::render(&report);
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        assert_eq!(report.generation, Some(2));
        // Whatever it decided is a profile overlay a generation-2 card takes.
        let over = format!("extends: {}\n{text}", base.path.display());
        profile::load(&write(&dir, "garbage", &over))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    }
}

/// [`Garbage`] behind a specified card's front: no card type at the MF, the 在留AP's
/// SELECT and its `C1 07` answered, everything else random.
struct SpecifiedGarbage {
    garbage: Garbage,
    in_ap: bool,
}

impl Channel for SpecifiedGarbage {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        use rclab_emulator::my_number::residence_ap::RESIDENCE_AP_AID;
        if apdu == rclab_emulator::reader::select_by_aid_apdu(&RESIDENCE_AP_AID) {
            self.in_ap = true;
            return Ok(vec![0x90, 0x00]);
        }
        if apdu == [0x00, 0xB0, 0x8A, 0x00, 0x00] {
            return Ok(if self.in_ap {
                vec![0xC1, 0x02, b'0', b'7', 0x90, 0x00]
            } else {
                vec![0x6A, 0x82]
            });
        }
        self.garbage.transmit(apdu)
    }
}

impl ProbeTarget for SpecifiedGarbage {
    fn power_cycle(&mut self) -> Result<(), TransportError> {
        self.in_ap = false;
        Ok(())
    }
    fn atr(&self) -> Option<Vec<u8>> {
        Some(vec![0x3B, 0x00])
    }
}

#[test]
fn a_hostile_specified_card_gets_findings_not_panics_and_the_fragment_still_loads() {
    use rand::SeedableRng;
    let dir = common::temp_dir("probe", "garbage-specified");
    let base = profile::load(&common::vectors().join("profiles/my-number/valid/specified-07.yaml"))
        .unwrap();
    for seed in 0..40u64 {
        let mut card = SpecifiedGarbage {
            garbage: Garbage(rand_chacha::ChaCha20Rng::seed_from_u64(seed)),
            in_ap: false,
        };
        let options = Options {
            card_number: Some("SP24681357RC".into()),
            risky: vec!["residence-wrong-number".into()],
            seed: Some(seed),
            delivery_key: None,
        };
        let report = probe::probe(&mut card, "garbage", &options);
        assert_eq!(report.generation, Some(2), "seed {seed}");
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.path.starts_with("platform.residence_")),
            "seed {seed}"
        );
        let text = fragment::render(&report);
        let over = format!("extends: {}\n{text}", base.path.display());
        profile::load(&write(&dir, "garbage", &over))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    }
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    let profile = "vectors/profiles/valid/gen1-residence.yaml";
    for (args, flag) in [
        (
            vec![
                "probe",
                "--profile",
                profile,
                "--card-number",
                "ab12345678CD",
            ],
            "--card-number",
        ),
        (
            vec!["probe", "--profile", profile, "--risky", "wrong-mac"],
            "--risky",
        ),
        (
            vec![
                "record",
                "--profile",
                profile,
                "--card-number",
                "X",
                "--out",
                "/tmp/x",
            ],
            "--card-number",
        ),
        (vec!["probe"], "--reader"),
    ] {
        let out = common::rclab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            common::stderr(&out).contains(flag),
            "{args:?}: {}",
            common::stderr(&out)
        );
    }
    let file = common::temp_dir("probe", "flags").join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = common::rclab(&[
        "record",
        "--profile",
        profile,
        "--card-number",
        "AB12345678CD",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("--out"),
        "{}",
        common::stderr(&out)
    );
    let out = common::rclab(&[
        "record",
        "--profile",
        profile,
        "--card-number",
        "AB12345678CD",
        "--risky",
        "nope",
        "--out",
        "/tmp/never",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("--risky"),
        "{}",
        common::stderr(&out)
    ); // A delivery key that is no key, and a FIFO: named, before any card is read.
    let dir = common::temp_dir("probe", "bad-delivery-key");
    let junk = dir.join("junk.key");
    std::fs::write(&junk, b"nope").unwrap();
    let specified = "vectors/profiles/my-number/valid/specified-07.yaml";
    for file in [junk.to_str().unwrap(), "/dev/zero"] {
        let out = common::rclab(&[
            "probe",
            "--profile",
            specified,
            "--card-number",
            "SP24681357RC",
            "--delivery-key",
            file,
        ]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = common::stderr(&out);
        assert!(
            err.contains("--delivery-key") && err.contains(file),
            "{err}"
        );
    }
}

/// The specified card's knobs (`platform.residence_*` of `card.kind: specified_residence`)
/// of the profile at `p`, as YAML, without `residence_delivery_key_format` (the file a
/// checker is handed, no card behaviour: the probe lists it as undecidable).
fn residence_ap_knobs(p: &Profile) -> serde_yaml_ng::Value {
    let mut map = serde_yaml_ng::to_value(&p.my_number.as_ref().unwrap().knobs).unwrap();
    if let serde_yaml_ng::Value::Mapping(m) = &mut map {
        m.remove("residence_delivery_key_format");
    }
    map
}

#[test]
fn every_value_of_every_residence_ap_knob_of_the_specified_card_is_probed_back() {
    let dir = common::temp_dir("probe", "specified");
    let base = profile::load(&common::vectors().join("profiles/my-number/valid/specified-07.yaml"))
        .unwrap();
    let residence_ap: Vec<_> = KNOBS.iter().filter(|k| k.is_residence_ap()).collect();
    assert!(residence_ap.len() >= 9);
    let mut cases = vec![(None, base.clone())];
    for k in &residence_ap {
        for value in k.values {
            let overlay = k.overlay(base.path.to_str().unwrap(), value).unwrap();
            let name = format!("{}-{value}", k.path.replace('.', "-"));
            let card = profile::load(&write(&dir, &name, &overlay)).unwrap();
            cases.push((Some((k.path, *value)), card));
        }
    }
    for (set, card) in &cases {
        let what = format!("{set:?}");
        let options = Options {
            card_number: Some(card.card_number.to_string()),
            risky: vec!["residence-wrong-number".into()],
            seed: Some(16),
            delivery_key: None,
        };
        let report = probe::probe(&mut card.card() as &mut dyn ProbeTarget, &what, &options);
        assert_eq!(report.generation, Some(2), "{what}");
        // The 在留AP's rows, and those only: decided, or not shown, or undecidable.
        let paths: Vec<&str> = report.findings.iter().map(|f| f.path).collect();
        let expected: Vec<&str> = residence_ap.iter().map(|k| k.path).collect();
        assert_eq!(paths, expected, "{what}");
        let served = card.my_number.as_ref().unwrap().knobs.clone();
        let served = serde_yaml_ng::to_value(&served).unwrap();
        for f in &report.findings {
            let key = f.path.strip_prefix("platform.").unwrap();
            let value = served[key].as_str().unwrap().to_owned();
            match &f.decision {
                Decision::Value(v) => assert_eq!(*v, value, "{what}: {} {:?}", f.path, f.evidence),
                Decision::NotShown(why) => {
                    assert!(
                        [
                            "platform.residence_le_do",
                            "platform.residence_key_template"
                        ]
                        .contains(&f.path)
                            && served["residence_sm"].as_str() == Some("cmac"),
                        "{what}: {} not shown: {why}",
                        f.path
                    );
                }
                Decision::Unknown(why) => assert!(
                    f.path == "platform.residence_delivery_key_format"
                        && why.contains("not a card property"),
                    "{what}: {}: {why}",
                    f.path
                ),
                other => panic!("{what}: {}: {other:?}", f.path),
            }
            for seen in &f.evidence {
                assert!(!seen.sent.contains(card.card_number.as_str()), "{what}");
            }
        }
        if let Some((path, value)) = set
            && *path != "platform.residence_delivery_key_format"
            && !report
                .finding(path)
                .is_some_and(|f| matches!(f.decision, Decision::NotShown(_)))
        {
            assert_eq!(
                report.finding(path).unwrap().value(),
                Some(*value),
                "{what}"
            );
        }
        // The fragment over specified-07 compiles to the card probed.
        let text = fragment::render(&report);
        assert!(!text.contains(card.card_number.as_str()), "{what}\n{text}");
        let over = format!("extends: {}\n{text}", base.path.display());
        let rebuilt = profile::load(&write(&dir, "rebuilt", &over))
            .unwrap_or_else(|e| panic!("{what}: the fragment does not load: {e}\n{text}"));
        assert_eq!(
            rebuilt.kind(),
            rclab_emulator::chip::ChipKind::SpecifiedResidence
        );
        assert_eq!(
            residence_ap_knobs(&rebuilt),
            residence_ap_knobs(card),
            "{what}\n{text}"
        );
        let (mine, theirs) = (
            rebuilt.my_number.as_ref().unwrap(),
            card.my_number.as_ref().unwrap(),
        );
        assert_eq!(mine.reader.atr, theirs.reader.atr, "{what}\n{text}");
        let (mine, theirs) = (
            &mine.residence_ap.as_ref().unwrap().data,
            &theirs.residence_ap.as_ref().unwrap().data,
        );
        assert!(
            mine.files == theirs.files && mine.chip_card_number == theirs.chip_card_number,
            "{what}: the 在留AP's files differ"
        );
    }
}

#[test]
fn a_specified_card_without_the_risky_flag_keeps_its_wrong_number_unprobed() {
    let card = profile::load(&common::vectors().join("profiles/my-number/valid/specified-08.yaml"))
        .unwrap();
    let report = probe::probe(&mut card.card(), "free", &Options::default());
    assert_eq!(
        report.card_type,
        Some(rclab_emulator::protocol::layout::CardType::SpecifiedSpecialPermanentResidentCertificate)
    );
    // No residence-card probe ran on it; without the number the 在留AP's were not run.
    for run in &report.probes {
        assert!(run.apdus.is_none() || run.name == "card-type", "{run:?}");
    }
    let numbered = Options {
        card_number: Some(card.card_number.to_string()),
        ..Options::default()
    };
    let report = probe::probe(&mut card.card(), "numbered", &numbered);
    let f = report.finding("platform.residence_wrong_number").unwrap();
    assert!(
        matches!(&f.decision, Decision::NotProbed(why) if why.contains("--risky residence-wrong-number")),
        "{f:?}"
    );
    assert_eq!(
        report.finding("platform.residence_sm").unwrap().value(),
        Some("counter_iv")
    );
}
