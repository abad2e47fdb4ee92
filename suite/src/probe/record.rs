//! `rclab record`: a whole card read into a profile that replays it byte for byte (every
//! EF as raw bytes under `raw_files:`, the knobs the probe decided, the reference
//! checker's verdict as the expectation) — personal data, written 0600 — or, with
//! `--redact`, into a shareable TEST card with the card's layout and behaviour: an invented
//! person, TEST images of the same sizes, re-signed by the TEST signer.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use rclab_emulator::files::{self, Readers};
use rclab_emulator::profile::ExpectDoc;
use rclab_emulator::protocol::layout::{CardType, EfRow, Element, Layout};
use rclab_emulator::protocol::{Generation, tlv};
use rclab_emulator::transport::Channel;
use rclab_emulator::verdict::Verdict;

use super::{Ctx, Decision, Options, ProbeTarget, Report, fragment};
use crate::checker::Checker;

/// A card read whole: its layout, every EF's bytes, what the probe found and what the
/// reference checker concluded.
pub struct Recording {
    /// The card's layout (from its card type).
    pub layout: &'static Layout,
    /// Every EF of the layout with its bytes, in layout order.
    pub files: Vec<(&'static EfRow, Vec<u8>)>,
    /// The probe's findings (the knobs of the recording).
    pub report: Report,
    /// The reference checker's verdict on the card.
    pub verdict: Verdict,
    /// The checker's one-line reason.
    pub detail: String,
}

/// Probes `target`, reads every EF of its layout (MF plain, then after MUTUAL
/// AUTHENTICATE and VERIFY each DF's EFs, plain or under SM as the layout says), and runs
/// `checker` on a fresh power-up. Needs `options.card_number`.
pub fn read_card(
    target: &mut dyn ProbeTarget,
    name: &str,
    options: &Options,
    checker: &Checker<'_>,
) -> Result<Recording> {
    let number = options
        .card_number
        .clone()
        .context("recording needs the card number")?;
    let report = super::probe(target, name, options);
    let (Some(generation), Some(card_type)) = (report.generation, report.card_type) else {
        bail!("the card type (MF/EF02 C1) did not read as a residence card's");
    };
    if card_type.is_specified() {
        bail!(
            "a specified card (C1 {card_type:?} in its 在留AP): rclab record reads residence \
             cards only; rclab probe tells its 在留AP's knobs"
        );
    }
    let generation = if generation == 1 {
        Generation::First
    } else {
        Generation::Second
    };
    let layout = Layout::of(generation, card_type);
    let mut files = Vec::with_capacity(layout.files.len());
    {
        let mut ctx = Ctx::new(target, options);
        ctx.layout = Some(layout);
        ctx.open().map_err(anyhow::Error::msg)?;
        for row in layout.files {
            let bytes = ctx.read_ef(row).map_err(anyhow::Error::msg)?;
            files.push((row, bytes));
        }
        ctx.fresh().map_err(anyhow::Error::msg)?;
    }
    let verdict = checker.check(target as &mut dyn Channel, &number);
    target
        .power_cycle()
        .map_err(|e| anyhow::anyhow!("power cycle: {e}"))?;
    Ok(Recording {
        layout,
        files,
        report,
        verdict: verdict.verdict,
        detail: verdict.detail,
    })
}

/// Creates `dir` (0700) if needed, or makes an existing one private; the files of an
/// earlier recording there are replaced one by one.
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("--out {}: cannot create", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("--out {}: cannot make it private", dir.display()))?;
    Ok(())
}

/// Writes `bytes` to `path`, readable by its owner only (also when it existed).
fn private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = files::create_regular(path, Readers::OwnerOnly)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// `MF-EF01.bin` for `MF/EF01`.
fn ef_file_name(row: &EfRow) -> String {
    format!("{}.bin", row.label_text().replace('/', "-"))
}

/// `C0` of MF/EF01 when it is four printable ASCII characters (the profile's
/// `card.spec_version`).
fn spec_version(rec: &Recording) -> Option<String> {
    rec.files
        .iter()
        .find_map(|(row, bytes)| {
            row.object_holding(Element::SpecVersion)
                .and_then(|o| object_value(bytes, o.tag))
        })
        .filter(|v| v.len() == 4 && v.iter().all(u8::is_ascii_graphic))
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// The value of the first top-level object with `tag` in an EF (before its zero fill).
fn object_value(content: &[u8], tag: u16) -> Option<Vec<u8>> {
    let mut pos = 0;
    while pos < content.len() && !super::battery::is_fill(&content[pos..]) {
        let (o, next) = tlv::parse_at(content, pos).ok()?;
        if o.tag == tag {
            return Some(o.value.to_vec());
        }
        pos = next;
    }
    None
}

/// `card.type` as a profile writes it: the type's own serde name, so no second spelling.
fn card_type_key(card_type: CardType) -> String {
    serde_yaml_ng::to_value(card_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The fragment without its header lines (the profile has its own).
fn fragment_body(report: &Report) -> String {
    let text = fragment::render(report);
    let mut out = String::new();
    let mut in_header = true;
    for line in text.lines() {
        if in_header && line.starts_with('#') {
            continue;
        }
        in_header = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn expect_yaml(expect: &ExpectDoc) -> Result<String> {
    let mut doc = serde_yaml_ng::Mapping::new();
    doc.insert("expect".into(), serde_yaml_ng::to_value(expect)?);
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// Writes the recording as `dir/card.yaml` and `dir/ef/*.bin`, every file 0600 and the
/// folders 0700: a profile that replays the card byte for byte, with `seed` as its random
/// numbers' seed. Returns the profile's path.
pub fn write_recording(rec: &Recording, number: &str, seed: u64, dir: &Path) -> Result<PathBuf> {
    private_dir(dir)?;
    private_dir(&dir.join("ef"))?;
    let mut yaml = String::new();
    let generation = rec.layout.generation.number();
    let _ = writeln!(
        yaml,
        "# rclab record {}: the card in {}, every EF as read (raw_files), replayed byte for byte.",
        env!("CARGO_PKG_VERSION"),
        rec.report.target.replace(['\n', '\r'], " ")
    );
    yaml.push_str(
        "# PERSONAL DATA: this folder holds the card number and every file of the chip (photo,\n\
         # address, dates). Keep it private (its files are 0600); share `rclab record --redact`.\n",
    );
    let _ = writeln!(
        yaml,
        "description: Recorded generation-{generation} {} (rclab record)",
        card_type_key(rec.layout.card_type)
    );
    let _ = writeln!(yaml, "seed: {seed}");
    let _ = writeln!(yaml, "card:\n  generation: {generation}");
    let _ = writeln!(yaml, "  type: {}", card_type_key(rec.layout.card_type));
    let _ = writeln!(yaml, "  number: {number}");
    if let Some(version) = spec_version(rec) {
        let _ = writeln!(
            yaml,
            "  spec_version: {}",
            serde_yaml_ng::to_string(&version)?.trim()
        );
    }
    yaml.push_str("raw_files:\n");
    for (row, bytes) in &rec.files {
        let name = ef_file_name(row);
        private_file(&dir.join("ef").join(&name), bytes)?;
        let _ = writeln!(yaml, "  {}: ef/{name}", row.label_text());
    }
    yaml.push_str(&fragment_body(&rec.report));
    yaml.push_str(&expect_yaml(&ExpectDoc {
        verdict: rec.verdict,
        flags: vec!["Recorded".into()],
        why: format!(
            "The reference checker's verdict when the card was recorded: {}",
            rec.detail
        ),
        limitation: None,
        threat: None,
    })?);
    let path = dir.join("card.yaml");
    private_file(&path, yaml.as_bytes())?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// --redact
// ---------------------------------------------------------------------------------------

/// TEST images of the repository (invented people), two per kind: the redaction takes one
/// that differs from the card's.
const TEST_IMAGES: &[(Element, Generation, &[u8], &str)] = &[
    (
        Element::FrontImage,
        Generation::First,
        include_bytes!("../../../vectors/images/gen1-residence-front.tif"),
        "tif",
    ),
    (
        Element::FrontImage,
        Generation::First,
        include_bytes!("../../../vectors/images/gen1-sprc-front.tif"),
        "tif",
    ),
    (
        Element::FaceImage,
        Generation::First,
        include_bytes!("../../../vectors/images/gen1-residence-face.jp2"),
        "jp2",
    ),
    (
        Element::FaceImage,
        Generation::First,
        include_bytes!("../../../vectors/images/gen1-sprc-face.jp2"),
        "jp2",
    ),
    (
        Element::FaceImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-residence-face.jp2"),
        "jp2",
    ),
    (
        Element::FaceImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-sprc-face.jp2"),
        "jp2",
    ),
    (
        Element::NameImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-residence-name.tif"),
        "tif",
    ),
    (
        Element::NameImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-sprc-name.tif"),
        "tif",
    ),
    (
        Element::AddressImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-residence-address.tif"),
        "tif",
    ),
    (
        Element::AddressImage,
        Generation::Second,
        include_bytes!("../../../vectors/images/gen2-sprc-address.tif"),
        "tif",
    ),
];

/// The TEST signers: certificate and key, per generation.
fn test_signer(generation: Generation) -> (&'static [u8], &'static [u8]) {
    match generation {
        Generation::First => (
            include_bytes!("../../../vectors/pki/test-card-signer.crt"),
            include_bytes!("../../../vectors/pki/test-card-signer.key.pem"),
        ),
        Generation::Second => (
            include_bytes!("../../../vectors/pki/test-card-signer2.crt"),
            include_bytes!("../../../vectors/pki/test-card-signer2.key.pem"),
        ),
    }
}

/// `image` grown to `size` bytes where its format allows trailing bytes (a TIFF: zeros
/// after the IFDs; a JP2 file: a `free` box), otherwise as it is.
pub fn padded_image(image: &[u8], size: usize) -> Vec<u8> {
    let mut out = image.to_vec();
    let Some(pad) = size.checked_sub(image.len()).filter(|&p| p > 0) else {
        return out;
    };
    let jp2 = image.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20]);
    let tiff = image.starts_with(b"II*\0") || image.starts_with(b"MM\0*");
    if jp2 && pad >= 8 {
        if let Ok(len) = u32::try_from(pad) {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(b"free");
            out.resize(size, 0);
        }
    } else if tiff {
        out.resize(size, 0);
    }
    out
}

/// `bytes` without its trailing zeros.
fn trim_zeros(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)]
}

/// The image the card holds for `element`, if any.
fn card_image(rec: &Recording, element: Element) -> Option<Vec<u8>> {
    let (row, object) = rec.layout.holding_element(element)?;
    let (_, bytes) = rec.files.iter().find(|(r, _)| r.id == row.id)?;
    let value = object_value(bytes, object.tag)?;
    // A value filling its area is zero-padded inside (the full layout): the image ends
    // where the zeros begin. A shorter one is the image exactly.
    if object.area.is_some_and(|area| value.len() >= area) {
        Some(trim_zeros(&value).to_vec())
    } else {
        Some(value)
    }
}

/// Writes a shareable TEST card as `dir/card.yaml` with its images and TEST signer below
/// `dir`: the recorded card's layout (generation, type, knobs, image sizes), an invented
/// person, re-signed by the TEST signer. A valid profile (expected genuine under the TEST
/// roots). Returns its path.
pub fn write_redacted(rec: &Recording, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir.join("images"))
        .with_context(|| format!("--out {}: cannot create", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = dir.join(name);
        files::create_regular(&path, Readers::Anyone)
            .and_then(|mut file| Ok(file.write_all(bytes)?))
            .with_context(|| format!("{}: cannot write", path.display()))
    };
    let generation = rec.layout.generation;
    let has = |element| rec.layout.holding_element(element).is_some();
    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# rclab record --redact {}: a TEST card with the layout and behaviour of the card in {}.\n\
         # An invented person, TEST images of the card's image sizes, signed by the TEST signer:\n\
         # no personal data of the card is in this folder.",
        env!("CARGO_PKG_VERSION"),
        rec.report.target.replace(['\n', '\r'], " ")
    );
    let _ = writeln!(
        yaml,
        "description: TEST card with the layout of a recorded generation-{} {} \
         (rclab record --redact)",
        generation.number(),
        card_type_key(rec.layout.card_type)
    );
    let _ = writeln!(
        yaml,
        "seed: 1\ncard:\n  generation: {}\n  type: {}\n  number: TE00000000ST",
        generation.number(),
        card_type_key(rec.layout.card_type)
    );
    let version = spec_version(rec).unwrap_or_else(|| "0001".into());
    let _ = writeln!(
        yaml,
        "  spec_version: {}",
        serde_yaml_ng::to_string(&version)?.trim()
    );
    yaml.push_str("images:\n");
    let kinds = [
        (Element::FrontImage, "front"),
        (Element::FaceImage, "face"),
        (Element::NameImage, "name"),
        (Element::AddressImage, "address"),
    ];
    for (element, key) in kinds {
        if !has(element) {
            continue;
        }
        let real = card_image(rec, element).unwrap_or_default();
        if element == Element::FaceImage && real.is_empty() {
            // No photo on the card: none on the TEST card either, stored the same way.
            let _ = writeln!(yaml, "  {key}: null");
            continue;
        }
        // Another person's TEST image of the kind (a face of either generation: both are
        // JPEG 2000), the largest that pads to the card's size, else the smallest.
        let candidates: Vec<&(Element, Generation, &[u8], &str)> = TEST_IMAGES
            .iter()
            .filter(|(e, g, bytes, _)| {
                *e == element
                    && (*g == generation || element == Element::FaceImage)
                    && trim_zeros(&real) != trim_zeros(bytes)
            })
            .collect();
        let fitting = candidates
            .iter()
            .filter(|(_, _, bytes, _)| padded_image(bytes, real.len()).len() == real.len())
            .max_by_key(|(_, _, bytes, _)| bytes.len());
        let Some((_, _, bytes, ext)) =
            fitting.or_else(|| candidates.iter().min_by_key(|(_, _, bytes, _)| bytes.len()))
        else {
            bail!("no TEST image for {key}");
        };
        let name = format!("images/{key}.{ext}");
        write(&name, &padded_image(bytes, real.len()))?;
        let _ = writeln!(yaml, "  {key}: {name}");
    }
    match generation {
        Generation::First => {
            yaml.push_str(concat!(
                "address:\n",
                "  date: \"20250101\"\n",
                "  municipality_code: \"000000\"\n",
                "  text: 試験県試験市見本町1-1-1\n",
            ));
            if has(Element::ComprehensivePermissionText) {
                yaml.push_str(concat!(
                    "back_side:\n",
                    "  comprehensive_permission: \"\"\n",
                    "  individual_permission: \"\"\n",
                    "  renewal_application: false\n",
                ));
            }
        }
        Generation::Second => {
            yaml.push_str(concat!(
                "printed:\n",
                "  card_expiry: \"20300101\"\n",
                "  birth_date: \"20000101\"\n",
                "  sex: unspecified\n",
                "  nationality: XXX\n",
                "  status_of_residence: TEST\n",
                "  period_of_stay: \"0000\"\n",
            ));
            if has(Element::PermissionType) {
                yaml.push_str(concat!(
                    "  permission_type: \"01\"\n",
                    "  permission_date: \"20250101\"\n",
                    "  work_restriction: \"1\"\n",
                    "  period_of_stay_expiry: \"20300101\"\n",
                ));
            }
            if has(Element::ComprehensivePermission) {
                yaml.push_str("work_permission:\n  comprehensive: \"0\"\n  individual: false\n");
            }
            if has(Element::ApplicationPending) {
                yaml.push_str("application_pending: false\n");
            }
            yaml.push_str("other:\n  commissioner_entry: false\n  reserved_text: \"\"\n");
        }
    }
    let (certificate, key) = test_signer(generation);
    write("signer.crt", certificate)?;
    write("signer.key.pem", key)?;
    // The probe's knobs; its certificate layout joins the signer's section.
    let body = fragment_body(&rec.report);
    let signature = "signature:\n  certificate: signer.crt\n  key: signer.key.pem\n";
    if body.lines().any(|l| l == "signature:") {
        yaml.push_str(&body.replace("signature:\n", signature));
    } else {
        yaml.push_str(signature);
        yaml.push_str(&body);
    }
    yaml.push_str(&expect_yaml(&ExpectDoc {
        verdict: Verdict::GENUINE,
        flags: vec!["Valid".into(), "Redacted".into()],
        why: "A TEST card with a recorded card's layout and behaviour, signed by the TEST signer."
            .into(),
        limitation: None,
        threat: None,
    })?);
    let path = dir.join("card.yaml");
    write("card.yaml", yaml.as_bytes())?;
    Ok(path)
}

/// Whether the probe decided a value for `path` in `report` (for the command's summary).
pub fn decided(report: &Report) -> usize {
    report
        .findings
        .iter()
        .filter(|f| matches!(f.decision, Decision::Value(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_the_format_and_reaches_the_size() {
        let jp2 = [&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20][..], &[1, 2, 3]].concat();
        let grown = padded_image(&jp2, 40);
        assert_eq!(grown.len(), 40);
        assert_eq!(&grown[11..19], &[0, 0, 0, 29, b'f', b'r', b'e', b'e']);
        assert_eq!(padded_image(b"II*\0ab", 10), b"II*\0ab\0\0\0\0");
        assert_eq!(padded_image(b"II*\0ab", 3), b"II*\0ab");
        assert_eq!(padded_image(b"XXXX", 10), b"XXXX");
    }
}
