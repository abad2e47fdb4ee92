//! Fuzz-target bodies, one per layer, as plain functions: the cargo-fuzz targets in `fuzz/`
//! call them, and `suite/tests/fuzz_regressions.rs` replays the committed inputs
//! (`fuzz/regressions/<target>/`) and the generated seeds through the same code under a
//! normal `cargo test`. Each function panics when its property does not hold.
//!
//! | target | input | property |
//! |---|---|---|
//! | [`apdu_roundtrip`] | any bytes | a C-APDU that parses rebuilds byte for byte with [`CommandBuilder`] and reparses equal; status words and R-APDUs round-trip |
//! | [`tlv_roundtrip`] | any bytes | BER-TLV that parses re-encodes (minimal lengths) and reparses to the same tags and values; SM `open` never panics and reseals |
//! | [`card_sequence`] | profile byte, then length-prefixed APDUs and reader operations | from a verified session, every reply is a known status word (data only with success); afterwards reset + the genuine flow reads every EF back |
//! | [`profile_loader`] | YAML text | loading never panics; a profile that loads gives a card whose genuine flow reads its image back |
//! | [`checker_responses`] | option byte, then per-command answer records | the reference checker never panics on any card answers; untouched answers from a valid card give `genuine` |
//! | [`journal`] | `results.jsonl` bytes | `--resume`'s reader never panics; it keeps only known cases with their expectation, each at most once, and accounts for every line |
//! | [`my_number_codecs`] | Le-form byte, then length-prefixed SM command data; the rest also as an EF | the card's counter SM answers only its status words, counts every command and stays dead once destroyed; the text-AP, key-template, public-key and CV-certificate parsers never panic and what they parse re-encodes and reparses equal |
//!
//! Input formats are documented on each function; [`seeds`] builds corpus seeds from real
//! transcripts (the reference checker reading every bundled valid profile).

// Each function here panics when its property does not hold: the panic IS the fuzzer's
// finding, so `expect` with the property's name is the report, not a bug.
#![allow(clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use rclab_emulator::card::{Access, Card, CardImage, Df};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::apdu::{Command, CommandBuilder, Response};
use rclab_emulator::protocol::auth::Nonce;
use rclab_emulator::protocol::crypto::Key;
use rclab_emulator::protocol::{Generation, Status, cla, ins, sm, tlv};
use rclab_emulator::reader::{self, ReadMode, Session};
use rclab_emulator::transport::{Channel, Tap, TransportError};
use rclab_emulator::verdict::{Verdict, VerdictKind};

use crate::checker::{Checker, Options, TrustStore};
use crate::run;
use crate::run::adapter::{TrustMode, expectation_for};

/// A fuzz target's body: panics when its property does not hold.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: the name of the cargo-fuzz target and of its folder under
/// `fuzz/regressions/`.
pub const TARGETS: [(&str, Target); 8] = [
    ("apdu_roundtrip", apdu_roundtrip),
    ("tlv_roundtrip", tlv_roundtrip),
    ("card_sequence", card_sequence),
    ("profile_loader", profile_loader),
    ("checker_responses", checker_responses),
    ("journal", journal),
    ("my_number_codecs", my_number_codecs),
    ("my_number_checker_responses", my_number_checker_responses),
];

/// The target function called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The bundled valid profiles, in this fixed order (the first input byte of the stateful
/// targets picks one; the order never changes, so saved inputs keep their meaning).
pub const PROFILES: [&str; 5] = [
    "gen1-residence",
    "gen2-residence",
    "gen1-sprc",
    "gen2-sprc",
    "gen2-infant",
];

/// The repository's `vectors/` folder.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

static VALID: LazyLock<Vec<Profile>> = LazyLock::new(|| {
    PROFILES
        .iter()
        .map(|name| {
            let path = vectors_dir().join(format!("profiles/valid/{name}.yaml"));
            profile::load(&path).unwrap_or_else(|e| panic!("bundled profile: {e}"))
        })
        .collect()
});

static TRUST: LazyLock<TrustStore> = LazyLock::new(TrustStore::embedded_test_roots);

fn valid_profile(selector: u8) -> &'static Profile {
    &VALID[usize::from(selector) % PROFILES.len()]
}

/// The moment the checker judges certificates at: 2030-01-01, inside every TEST validity.
fn checker_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

// ---------------------------------------------------------------------------------------
// Input reading
// ---------------------------------------------------------------------------------------

/// A cursor over fuzz input. Chunks are length-prefixed: one byte `00`–`FD` is the length,
/// `FF` is followed by a big-endian `u16` length; a chunk that runs past the end is cut.
struct Input<'a>(&'a [u8]);

/// Length byte of a [`card_sequence`] record that announces a reader operation.
const OP: u8 = 0xFE;
/// Length byte announcing a 2-byte length.
const LONG: u8 = 0xFF;

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn length(&mut self, first: u8) -> usize {
        if first == LONG {
            let [h, l] = [self.byte().unwrap_or(0), self.byte().unwrap_or(0)];
            usize::from(u16::from_be_bytes([h, l]))
        } else {
            usize::from(first)
        }
    }

    fn chunk(&mut self) -> &'a [u8] {
        let first = self.byte().unwrap_or(0);
        let n = self.length(first);
        self.take(n)
    }
}

/// Appends `bytes` as one length-prefixed chunk (the inverse of `Input::chunk`).
fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    match u8::try_from(bytes.len()) {
        Ok(n) if n < OP => out.push(n),
        _ => {
            let n = u16::try_from(bytes.len()).expect("chunk over 65 535 bytes");
            out.push(LONG);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

// ---------------------------------------------------------------------------------------
// apdu_roundtrip
// ---------------------------------------------------------------------------------------

/// `protocol::apdu` and `protocol::status`. Input: the raw C-APDU.
///
/// A command that parses is rebuilt with [`CommandBuilder`] from its fields (extended form
/// when it was extended): the bytes must be identical and reparse to an equal command. The
/// last two bytes as a status word round-trip through [`Status::from_sw`]; the input as an
/// R-APDU re-serialises to itself.
pub fn apdu_roundtrip(data: &[u8]) {
    if let Ok(cmd) = Command::parse(data) {
        let mut builder = CommandBuilder::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).data(cmd.data);
        if let Some(ne) = cmd.ne {
            builder = builder.ne(ne);
        }
        if cmd.extended {
            builder = builder.extended();
        }
        let rebuilt = builder.to_bytes();
        assert_eq!(rebuilt, data, "rebuilt APDU differs from {cmd:?}");
        let again = Command::parse(&rebuilt).expect("rebuilt APDU parses");
        assert_eq!(again, cmd);
        if let Some(ne) = cmd.ne {
            assert!((1..=65_536).contains(&ne));
            assert_eq!(
                cmd.ne_is_maximum(),
                ne == if cmd.extended { 65_536 } else { 256 }
            );
        }
    }
    if let [.., a, b] = data {
        let sw = u16::from_be_bytes([*a, *b]);
        let status = Status::from_sw(sw);
        assert_eq!(status.sw(), sw);
        assert_eq!(Status::from_sw(status.sw()), status);
        assert_eq!(status.to_string(), format!("{a:02X} {b:02X}"));
        let response = Response::parse(data).expect("two bytes or more");
        assert_eq!(response.status, status);
        assert_eq!(response.to_bytes(), data);
    } else {
        assert!(Response::parse(data).is_none());
    }
}

// ---------------------------------------------------------------------------------------
// tlv_roundtrip
// ---------------------------------------------------------------------------------------

/// `protocol::tlv` and `protocol::sm::open`. Input: an EF's bytes.
///
/// A sequence that parses re-encodes with minimal lengths and reparses to the same tags and
/// values; when every length was minimal and there was no padding, the bytes are identical.
/// `sm::open` of the input under a fixed key (both generations) never panics, and what it
/// opens reseals and reopens to the same plaintext.
pub fn tlv_roundtrip(data: &[u8]) {
    if let Ok(tlvs) = tlv::parse_all(data) {
        let mut encoded = Vec::new();
        for t in &tlvs {
            tlv::push(&mut encoded, t.tag, t.value).expect("a parsed value fits a TLV length");
        }
        let again = tlv::parse_all(&encoded).expect("re-encoded TLVs parse");
        let pairs = |v: &[tlv::Tlv]| {
            v.iter()
                .map(|t| (t.tag, t.value.to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&again), pairs(&tlvs));
        assert!(again.iter().all(|t| !t.non_minimal_length));
        if tlvs.iter().all(|t| !t.non_minimal_length) {
            assert_eq!(
                encoded[..],
                data[..encoded.len()],
                "minimal TLVs re-encode to themselves"
            );
            assert!(
                data[encoded.len()..].iter().all(|&b| b == 0),
                "only padding after"
            );
        }
        for t in &tlvs {
            assert!(tlv::find(&tlvs, t.tag).is_some());
        }
    }
    if let Ok((t, end)) = tlv::parse_at(data, 0) {
        assert!(end <= data.len() && end >= t.value.len() + 2);
    }
    let _ = sm::parse_expected_length(data);
    let key: Key = [0x5A; 16];
    for generation in [Generation::First, Generation::Second] {
        if let Ok(plain) = sm::open(generation, &key, data) {
            let sealed = sm::seal(generation, &key, &plain).expect("what opened reseals");
            assert_eq!(sm::open(generation, &key, &sealed), Ok(plain));
        }
    }
}

// ---------------------------------------------------------------------------------------
// A minimal genuine reader (shared by card_sequence and profile_loader)
// ---------------------------------------------------------------------------------------

/// Sends one APDU; the reply must have a status word the card is known to use, and data
/// only with a status that carries data.
fn send(card: &mut Card, apdu: &[u8]) -> Response {
    let raw = card.transmit(apdu);
    let response = Response::parse(&raw).unwrap_or_else(|| {
        panic!(
            "{}: reply {raw:02X?} has no status word",
            hex::encode_upper(apdu)
        )
    });
    assert!(
        !matches!(response.status, Status::Other(_)),
        "{}: unexpected status word {}",
        hex::encode_upper(apdu),
        response.status
    );
    assert!(
        response.status.carries_data() || response.data.is_empty(),
        "{}: status {} with {} data bytes",
        hex::encode_upper(apdu),
        response.status,
        response.data.len()
    );
    response
}

/// The chip as a reader channel on which every reply passes [`send`]'s checks.
struct Checked<'a>(&'a mut Card);

impl Channel for Checked<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(send(self.0, apdu).to_bytes())
    }
}

/// A reader session on `card` in its image's cryptography, whole-EF reads.
fn reader_on(card: &mut Card) -> Session<Checked<'_>> {
    let generation = card.image().generation;
    Session::new(Checked(card), generation)
}

fn select_apdu(df: Df) -> Vec<u8> {
    match df.aid() {
        Some(aid) => reader::select_by_aid_apdu(&aid),
        None => reader::select_mf_apdu(),
    }
}

/// GET CHALLENGE + MUTUAL AUTHENTICATE with the chip's own number: KSenc.
fn authenticate(
    session: &mut Session<Checked>,
    image: &CardImage,
    rng: &mut ChaCha20Rng,
) -> Result<Key, String> {
    session
        .authenticate(&image.chip_key(), rng)
        .map_err(|e| format!("authentication: {e}"))
}

/// Opens a verified session: KSenc.
fn open_session(
    session: &mut Session<Checked>,
    image: &CardImage,
    rng: &mut ChaCha20Rng,
) -> Result<Key, String> {
    let key = authenticate(session, image, rng)?;
    session
        .verify(image.chip_card_number.as_bytes())
        .map_err(|e| format!("VERIFY: {e}"))?;
    Ok(key)
}

/// Largest EF the genuine flow compares: a whole-EF SM read must fit one extended response.
const LARGEST_COMPARED_EF: usize = 60_000;

/// SM READ BINARY (`p1`, `p2`) asking for `len` plaintext bytes (0 = to the end), which
/// must succeed; the opened plaintext.
fn read_sm(
    session: &mut Session<Checked>,
    (p1, p2): (u8, u8),
    len: u16,
    what: &str,
) -> Result<Vec<u8>, String> {
    match session.read_sm_once(p1, p2, len) {
        Ok((Status::Success, plain)) => Ok(plain),
        Ok((status, _)) => Err(format!("SM READ {what}: {status}")),
        Err(e) => Err(format!("SM READ {what}: {e}")),
    }
}

/// Bytes compared at each end of an SM file when not reading it whole.
const SM_SLICE: usize = 48;

/// Reads every EF of the image by SFI (plain, or SM where the file demands it) and compares
/// it with the image. Plain files are read whole; SM files whole when `full`, otherwise
/// their first bytes by SFI and their last bytes by offset in the current EF (the cipher
/// dominates the time of a fuzz run, and the image never changes).
fn read_every_ef(
    session: &mut Session<Checked>,
    image: &CardImage,
    full: bool,
) -> Result<(), String> {
    for df in [Df::Mf, Df::Df1, Df::Df2, Df::Df3] {
        let r = session
            .exchange(&select_apdu(df))
            .map_err(|e| format!("SELECT {df:?}: {e}"))?;
        if r.status != Status::Success {
            return Err(format!("SELECT {df:?}: {}", r.status));
        }
        for file in image.files.iter().filter(|f| f.id.df == df) {
            let content = &file.content[..];
            if content.is_empty() || content.len() > LARGEST_COMPARED_EF {
                continue;
            }
            let sfi = 0x80 | file.id.sfi;
            let name = file.name.as_str();
            let (read, expected) = if file.access != Access::AuthSm {
                let read = session
                    .read(file.id.sfi, ReadMode::Plain)
                    .map_err(|e| format!("READ {name}: {e}"))?;
                (read, content.to_vec())
            } else if full || content.len() <= 2 * SM_SLICE {
                (read_sm(session, (sfi, 0), 0, name)?, content.to_vec())
            } else {
                let mut read = read_sm(session, (sfi, 0), SM_SLICE as u16, name)?;
                let offset = content.len() - SM_SLICE;
                if offset <= 0x7FFF {
                    let [p1, p2] = (offset as u16).to_be_bytes();
                    read.extend(read_sm(session, (p1, p2), 0, name)?);
                }
                let mut expected = content[..SM_SLICE].to_vec();
                if offset <= 0x7FFF {
                    expected.extend_from_slice(&content[offset..]);
                }
                (read, expected)
            };
            if read != expected {
                return Err(format!(
                    "{name}: read {} bytes that differ from the image's {}",
                    read.len(),
                    expected.len()
                ));
            }
        }
    }
    Ok(())
}

/// Reset, then authenticate, VERIFY and read every EF: must all succeed.
fn genuine_flow_after_reset(card: &mut Card, image: &CardImage, seed: u64, full: bool) {
    card.reset();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut session = reader_on(card);
    open_session(&mut session, image, &mut rng)
        .unwrap_or_else(|e| panic!("genuine flow after reset: {e}"));
    read_every_ef(&mut session, image, full)
        .unwrap_or_else(|e| panic!("genuine flow after reset: {e}"));
}

// ---------------------------------------------------------------------------------------
// card_sequence
// ---------------------------------------------------------------------------------------

/// Reader operations a [`card_sequence`] record can ask for (operation byte modulo 5).
#[derive(Clone, Copy, Debug)]
pub enum ReaderOp {
    /// Chip reset (a power event).
    Reset = 0,
    /// A correct GET CHALLENGE + MUTUAL AUTHENTICATE; must succeed whatever came before.
    Authenticate = 1,
    /// VERIFY of the right number under the reader's latest KSenc.
    VerifyRight = 2,
    /// VERIFY of a wrong number under the reader's latest KSenc.
    VerifyWrong = 3,
    /// SM READ BINARY of the whole current EF (offset 0) under the reader's KSenc; when it
    /// succeeds and the reader's key is the chip's, the plaintext is the EF.
    ReadCurrentSm = 4,
}

/// The card engine, stateful. Input: byte 0 picks the profile (`PROFILES[b % 5]`); then
/// records until the end: a length-prefixed C-APDU (see `Input::chunk`), or `FE op` for a
/// [`ReaderOp`]. The card starts in a verified session (authenticated with the chip's
/// number, VERIFY done). Every reply has a known status word, and data only with a status
/// that carries data; a reader authentication always succeeds. At the end the chip is reset
/// and the genuine flow (authenticate, VERIFY, read every EF equal to the image) succeeds.
pub fn card_sequence(data: &[u8]) {
    let mut input = Input(data);
    let profile = valid_profile(input.byte().unwrap_or(0));
    let image = &profile.image;
    let mut card = Card::new(Arc::clone(image));
    let mut rng = ChaCha20Rng::seed_from_u64(0xF022);
    let mut session = reader_on(&mut card);
    let mut key = Some(open_session(&mut session, image, &mut rng).expect("initial session"));
    let mut records = 0;
    while let Some(first) = input.byte() {
        records += 1;
        if records > 4_000 {
            break;
        }
        if first != OP {
            let n = input.length(first);
            let apdu = input.take(n);
            send(session.channel_mut().0, apdu);
            continue;
        }
        match input.byte().unwrap_or(0) % 5 {
            0 => {
                session.channel_mut().0.reset();
                key = None;
            }
            1 => {
                key = Some(
                    authenticate(&mut session, image, &mut rng)
                        .unwrap_or_else(|e| panic!("reader authentication: {e}")),
                );
            }
            op @ (2 | 3) => {
                let k = key.unwrap_or([0; 16]);
                let number: &[u8] = if op == 2 {
                    image.chip_card_number.as_bytes()
                } else {
                    b"ZZ00000000ZZ"
                };
                // Card numbers are 12 bytes: they always fit one DO 86.
                if let Ok(apdu) = reader::verify_apdu(image.generation, &k, number) {
                    send(session.channel_mut().0, &apdu);
                }
            }
            _ => {
                let card = &mut *session.channel_mut().0;
                let r = send(card, &reader::sm_read_apdu(0, 0, 0));
                if r.status == Status::Success
                    && let (Some(k), Some(chip_key), Some(index)) =
                        (key, card.session_key(), card.current_file())
                    && k == chip_key
                {
                    let plain = sm::open(image.generation, &k, &r.data)
                        .unwrap_or_else(|e| panic!("SM READ under the session key: {e}"));
                    assert_eq!(
                        plain, image.files[index].content,
                        "SM READ of the current EF"
                    );
                }
            }
        }
    }
    genuine_flow_after_reset(&mut card, image, 0xF023, false);
}

// ---------------------------------------------------------------------------------------
// profile_loader
// ---------------------------------------------------------------------------------------

/// A private copy of the `vectors/` layout for the profile-loader target: `images` and
/// `pki` link to the repository's, `profiles/<sub>/` hold links to every bundled profile,
/// and the fuzz input is written as `profiles/valid/fuzz-input.yaml`, so bundled profiles
/// (and their `extends:` and relative paths) load unchanged from there.
static LOADER_FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // Folders of processes that have ended are left over: remove them.
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("rclab-fuzz-")
            && pid.parse::<u32>().is_ok()
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let root = base.join(format!("rclab-fuzz-{}", std::process::id()));
    let vectors = root.join("vectors");
    let real = vectors_dir().canonicalize().expect("vectors/");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(vectors.join("profiles/valid")).expect("fuzz dir");
    for sub in ["images", "pki"] {
        std::os::unix::fs::symlink(real.join(sub), vectors.join(sub)).expect("symlink");
    }
    let profiles = real.join("profiles");
    for entry in walk(&profiles) {
        let rel = entry.strip_prefix(&profiles).expect("below profiles/");
        let link = vectors.join("profiles").join(rel);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("fuzz dir");
        std::os::unix::fs::symlink(&entry, &link).expect("symlink");
    }
    vectors.join("profiles/valid/fuzz-input.yaml")
});

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Paths a fuzz input may not name: device and kernel files can block or never end when
/// read, which says nothing about the loader (a profile's author chooses its paths).
const FORBIDDEN_PATHS: [&[u8]; 4] = [b"/dev", b"/proc", b"/sys", b"/run"];

/// The profile loader and compiler. Input: the text of a profile file, written to
/// `profiles/valid/fuzz-input.yaml` of a private copy of `vectors/` (see `LOADER_FILE`).
/// Loading never panics; an error names the file, and an error about a field that some file
/// writes has that field's line and column (only a required field missing from the whole
/// chain has none); an error quotes no value or key longer than a short excerpt; a profile
/// that loads gives a chip on which the genuine flow (authenticate with the chip's number,
/// VERIFY, read every EF) returns the compiled image, whatever `tamper:` did to its EFs.
/// Inputs naming `/dev`, `/proc`, `/sys` or `/run` are skipped. Deep nesting, anchors and
/// aliases are plain text to the fuzzer (see `fuzz/dict/profile_loader.dict` and the
/// `fuzz/regressions/profile_loader/` inputs); FIFOs and links are not reachable from an
/// input and are covered by `emulator/tests/card/hostile_files.rs`.
pub fn profile_loader(data: &[u8]) {
    if FORBIDDEN_PATHS
        .iter()
        .any(|p| data.windows(p.len()).any(|w| w == *p))
    {
        return;
    }
    let path = &*LOADER_FILE;
    std::fs::write(path, data).expect("write the fuzz input");
    match profile::load(path) {
        Err(e) => {
            assert!(!e.file.as_os_str().is_empty());
            let text = e.to_string();
            if e.field.is_some() && !e.message.starts_with("required") {
                assert!(
                    e.location.is_some(),
                    "a field error without a position: {text}"
                );
            }
            let longest_quote = e
                .message
                .split(['"', '`'])
                .skip(1)
                .step_by(2)
                .map(|quoted| quoted.chars().count())
                .max()
                .unwrap_or(0);
            // An escaped excerpt: at most MAX_EXCERPT characters, each escaped to at most
            // 10 (`\u{10ffff}`), plus the ellipsis.
            assert!(
                longest_quote <= 10 * profile::MAX_EXCERPT + 1,
                "an error quotes {longest_quote} characters: {text}"
            );
        }
        Ok(p) => {
            let mut card = Card::new(Arc::clone(&p.image));
            genuine_flow_after_reset(&mut card, &p.image, 0x10AD, true);
        }
    }
}

// ---------------------------------------------------------------------------------------
// checker_responses
// ---------------------------------------------------------------------------------------

/// A card whose answers come from the fuzz input. A genuine chip of the chosen profile runs
/// alongside and sees every command, so that its answer and its session key are at hand.
/// Per command, one record (header byte `M`, mode `M & 3`):
///
/// - `0`: the genuine chip's answer;
/// - `1` + chunk: the chunk, as the whole R-APDU (may be empty or lack a status word);
/// - `2` + chunk: the chunk as response data with the genuine status word; for a command
///   with CLA `08` (SM) while the chip has a session, the chunk is the plaintext, sealed
///   with the session key (so the fuzzer edits what an SM read carries);
/// - `3`: a transport error (`M >> 2` picks which).
///
/// When the records run out, the genuine chip answers.
struct FuzzCard<'a> {
    chip: Card,
    generation: Generation,
    chip_key: Key,
    input: Input<'a>,
    /// RND.ICC of the chip's latest GET CHALLENGE.
    challenge: Option<Nonce>,
    /// KSenc of the chip's session, recomputed from the reader's MUTUAL AUTHENTICATE.
    session: Option<Key>,
    /// Every answer so far was the genuine chip's, byte for byte.
    all_genuine: bool,
}

impl FuzzCard<'_> {
    fn track(&mut self, apdu: &[u8], genuine: &[u8]) {
        let ok = genuine.ends_with(&[0x90, 0x00]);
        let data = &genuine[..genuine.len().saturating_sub(2)];
        match apdu {
            [0x00, ins::GET_CHALLENGE, ..] if ok => self.challenge = data.try_into().ok(),
            [cla::PLAIN, ins::MUTUAL_AUTHENTICATE, ..] => {
                let challenge = self.challenge.take();
                self.session = match (ok, challenge) {
                    (true, Some(rnd_icc)) => reader::observed_session_key(
                        self.generation,
                        &self.chip_key,
                        &rnd_icc,
                        apdu,
                        data,
                    ),
                    _ => None,
                };
            }
            _ => self.challenge = None,
        }
    }
}

impl Channel for FuzzCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let genuine = self.chip.transmit(apdu);
        self.track(apdu, &genuine);
        let Some(header) = self.input.byte() else {
            return Ok(genuine);
        };
        let answer = match header & 3 {
            0 => Ok(genuine.clone()),
            1 => Ok(self.input.chunk().to_vec()),
            2 => {
                let chunk = self.input.chunk();
                let mut out = match (apdu.first(), self.session) {
                    (Some(&cla::SM), Some(key)) => {
                        sm::seal(self.generation, &key, chunk).unwrap_or_else(|_| chunk.to_vec())
                    }
                    _ => chunk.to_vec(),
                };
                out.extend_from_slice(&genuine[genuine.len().saturating_sub(2)..]);
                Ok(out)
            }
            _ => Err(match header >> 2 & 3 {
                0 => TransportError::CardRemoved,
                1 => TransportError::Timeout,
                2 => TransportError::NoStatusWord,
                _ => TransportError::Other("fuzzed transport error".into()),
            }),
        };
        self.all_genuine &= answer.as_ref() == Ok(&genuine);
        answer
    }
}

/// How the checker reads, picked by bits 3–4 of byte 0: whole EFs, phone-sized chunks,
/// or small chunks (many offset reads).
const MAX_RESPONSES: [Option<usize>; 4] = [None, Some(1693), Some(256), Some(61)];

/// The reference checker against a card whose answers come from the input. Input: byte 0
/// picks the profile (`PROFILES[b & 7 % 5]`) and the read size (`MAX_RESPONSES[b >> 3 & 3]`);
/// then one record per command (see `FuzzCard`). The checker never panics; when every
/// answer was the genuine chip's, its verdict is `genuine`.
pub fn checker_responses(data: &[u8]) {
    let mut input = Input(data);
    let options = input.byte().unwrap_or(0);
    let profile = valid_profile(options & 7);
    let image = &profile.image;
    let mut card = FuzzCard {
        chip: Card::new(Arc::clone(image)),
        generation: image.generation,
        chip_key: image.chip_key(),
        input,
        challenge: None,
        session: None,
        all_genuine: true,
    };
    let checker = fuzz_checker(options);
    let report = checker.check(&mut card, profile.card_number.as_str());
    let _ = serde_json::to_string(&report).expect("report serialises");
    if card.all_genuine {
        assert_eq!(
            report.verdict.verdict,
            VerdictKind::Genuine,
            "{}: untouched answers, verdict {:?}: {}",
            profile.name,
            report.verdict,
            report.detail
        );
    }
}

// ---------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------

/// The reference checker as every target and seed uses it: bits 3–4 of `options` pick the
/// response cap, clock and seed are fixed.
fn fuzz_checker(options: u8) -> Checker<'static> {
    Checker {
        trust: &TRUST,
        options: Options {
            max_response: MAX_RESPONSES[usize::from(options >> 3 & 3)],
            at: checker_now(),
            seed: Some(0xC4EC),
            delivery_key: None,
        },
    }
}

/// The reference checker's transcript of a valid profile: (C-APDU, R-APDU) pairs.
fn transcript(profile: &Profile, options: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    let checker = fuzz_checker(options);
    let mut tap = Tap::new(Card::new(Arc::clone(&profile.image)));
    let report = checker.check(&mut tap, profile.card_number.as_str());
    assert_eq!(
        report.verdict.verdict,
        VerdictKind::Genuine,
        "{}",
        report.detail
    );
    tap.transcript()
        .iter()
        .map(|e| {
            let response = e.response.as_ref().expect("in-process card");
            (
                hex::decode(&e.command).expect("hex"),
                hex::decode(response).expect("hex"),
            )
        })
        .collect()
}

/// Corpus seeds for `target`, named, built from real transcripts of the bundled valid
/// profiles (and the profile files themselves for the loader).
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    match target {
        "apdu_roundtrip" => {
            for (i, name) in PROFILES.iter().enumerate().take(2) {
                for (j, (command, response)) in transcript(&VALID[i], 0x08).into_iter().enumerate()
                {
                    out.push((format!("{name}-{j:02}-command"), command));
                    let head = response.len().min(64);
                    let mut short = response[..head].to_vec();
                    short.extend_from_slice(&response[response.len() - 2..]);
                    out.push((format!("{name}-{j:02}-response"), short));
                }
            }
            let cases: [(&str, &[u8]); 7] = [
                ("case1", &[0x00, 0xA4, 0x00, 0x00]),
                ("case2s", &[0x00, 0xB0, 0x8A, 0x00, 0x00]),
                ("case2e", &[0x00, 0xB0, 0x85, 0x00, 0x00, 0x00, 0x00]),
                ("case3s", &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]),
                ("case3e", &[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07]),
                ("case4s", &[0x00, 0x82, 0x00, 0x00, 0x01, 0x09, 0x00]),
                (
                    "case4e",
                    &[
                        0x08, 0xB0, 0x84, 0x00, 0x00, 0x00, 0x04, 0x96, 0x02, 0x00, 0x00, 0x00,
                        0x00,
                    ],
                ),
            ];
            out.extend(cases.iter().map(|(n, b)| ((*n).to_owned(), b.to_vec())));
        }
        "tlv_roundtrip" => {
            for (i, name) in PROFILES.iter().enumerate() {
                for file in &VALID[i].image.files {
                    let ef: String = file
                        .name
                        .split(' ')
                        .next()
                        .unwrap_or("ef")
                        .replace('/', "-");
                    out.push((format!("{name}-{ef}"), file.content.clone()));
                }
            }
            let sealed = sm::seal(Generation::Second, &[0x5A; 16], b"EF24681357GH")
                .expect("12 bytes fit one DO 86");
            out.push(("sm-gen2".into(), sealed));
            let sealed = sm::seal(Generation::First, &[0x5A; 16], b"AB12345678CD")
                .expect("12 bytes fit one DO 86");
            out.push(("sm-gen1".into(), sealed));
        }
        "card_sequence" => {
            for (i, name) in PROFILES.iter().enumerate() {
                // The reads of a genuine checker after its own authentication, then a
                // re-authentication, a VERIFY and an SM read of the current EF.
                let mut seed = vec![i as u8];
                for (command, _) in transcript(&VALID[i], 0x08) {
                    if matches!(command.get(1), Some(&(ins::SELECT | ins::READ_BINARY))) {
                        push_chunk(&mut seed, &command);
                    }
                }
                seed.extend_from_slice(&[OP, 1, OP, 2, OP, 4, OP, 3, OP, 0]);
                push_chunk(&mut seed, &reader::GET_CHALLENGE_APDU);
                out.push((format!("{name}-reads"), seed));
                let mut seed = vec![i as u8];
                for op in [0, 1, 2, 4, 1, 3, 4] {
                    seed.extend_from_slice(&[OP, op]);
                }
                out.push((format!("{name}-ops"), seed));
            }
        }
        "profile_loader" => {
            for path in walk(&vectors_dir().join("profiles")) {
                if path.extension().is_some_and(|e| e == "yaml")
                    && let Ok(text) = std::fs::read(&path)
                {
                    let rel = path
                        .strip_prefix(vectors_dir().join("profiles"))
                        .unwrap_or(&path)
                        .with_extension("");
                    out.push((rel.to_string_lossy().replace('/', "-"), text));
                }
            }
        }
        "checker_responses" => {
            for (i, name) in PROFILES.iter().enumerate() {
                for (options, how) in [(0u8, "whole"), (0x08, "chunked"), (0x18, "small")] {
                    let options = options | i as u8;
                    out.push((format!("{name}-{how}-genuine"), vec![options]));
                    // Every answer raw, as recorded: replays exactly (both sides are seeded).
                    let mut raw = vec![options];
                    // Plain answers raw, SM answers as their plaintext.
                    let mut plain = vec![options];
                    let mut session: Option<Key> = None;
                    let mut challenge: Option<Nonce> = None;
                    let profile = &VALID[i];
                    let generation = profile.generation;
                    let chip_key = profile.image.chip_key();
                    for (command, response) in transcript(profile, options) {
                        raw.push(1);
                        push_chunk(&mut raw, &response);
                        let data = &response[..response.len() - 2];
                        match command[1] {
                            ins::GET_CHALLENGE => {
                                challenge = data.try_into().ok();
                                plain.push(0);
                            }
                            ins::MUTUAL_AUTHENTICATE => {
                                session = reader::observed_session_key(
                                    generation,
                                    &chip_key,
                                    &challenge.expect("challenge first"),
                                    &command,
                                    data,
                                );
                                plain.push(0);
                            }
                            _ if command[0] == cla::SM && !data.is_empty() => {
                                let key = session.expect("session before SM");
                                let opened = sm::open(generation, &key, data).expect("SM answer");
                                plain.push(2);
                                push_chunk(&mut plain, &opened);
                            }
                            _ => {
                                plain.push(2);
                                push_chunk(&mut plain, data);
                            }
                        }
                    }
                    out.push((format!("{name}-{how}-raw"), raw));
                    out.push((format!("{name}-{how}-plaintext"), plain));
                }
            }
        }
        "journal" => {
            let lines: Vec<Vec<u8>> = VALID.iter().map(journal_line).collect();
            out.push(("whole".into(), lines.concat()));
            let mut cut = lines[..2].concat();
            cut.extend_from_slice(&lines[2][..lines[2].len() / 2]);
            out.push(("cut-last-line".into(), cut));
            let mut mixed = lines[0].clone();
            mixed.extend_from_slice(b"{\"checker\":\"reference\",\xff}\n\nnot json\n");
            mixed.extend_from_slice(&lines[0]);
            let foreign = String::from_utf8_lossy(&lines[1]).replacen(
                &format!("\"profile\":\"{}\"", VALID[1].name),
                "\"profile\":\"forged/does-not-exist\"",
                1,
            );
            mixed.extend_from_slice(foreign.as_bytes());
            mixed.extend_from_slice(&lines[4]);
            out.push(("bad-lines".into(), mixed));
        }
        "my_number_codecs" => out.extend(my_number_seeds()),
        "my_number_checker_responses" => out.extend(my_number_checker_seeds()),
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------
// journal
// ---------------------------------------------------------------------------------------

/// The cases the [`journal`] target resumes: the reference checker × the bundled valid
/// profiles, with their expectations.
static JOURNAL_CASES: LazyLock<HashMap<(String, String), Verdict>> = LazyLock::new(|| {
    VALID
        .iter()
        .map(|p| {
            (
                ("reference".to_owned(), p.name.clone()),
                expectation_for(TrustMode::TestCa, p.expect.verdict),
            )
        })
        .collect()
});

/// `run::journal::parse`, what `rclab run --resume` reads. Input: the bytes of a
/// `results.jsonl`. Every kept result must be one of `JOURNAL_CASES` with its
/// expectation, none twice; every line is kept, skipped (with a line number in order) or
/// blank; a last line without newline is reported cut; the summary never panics.
pub fn journal(data: &[u8]) {
    let resumed = run::journal::parse(data, &JOURNAL_CASES);
    let mut seen = HashSet::new();
    for r in &resumed.results {
        let key = (r.checker.clone(), r.profile.clone());
        assert_eq!(
            JOURNAL_CASES.get(&key),
            Some(&r.expected),
            "kept a foreign case"
        );
        assert!(seen.insert(key), "kept a case twice");
    }
    let lines = data.split(|&b| b == b'\n').count() - usize::from(data.ends_with(b"\n"));
    let lines = if data.is_empty() { 0 } else { lines };
    assert!(resumed.results.len() + resumed.skipped.len() <= lines);
    assert!(resumed.skipped.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(resumed.skipped.iter().all(|(n, _)| (1..=lines).contains(n)));
    assert_eq!(
        resumed.cut_last_line,
        !data.is_empty() && !data.ends_with(b"\n")
    );
    let _ = resumed.summary(Path::new("results.jsonl"));
}

/// A journal line of the reference checker reading `profile` in-process (the first
/// exchanges of its transcript only: seeds stay small).
fn journal_line(profile: &Profile) -> Vec<u8> {
    let checker = Checker {
        trust: &TRUST,
        options: Options {
            max_response: None,
            at: checker_now(),
            seed: Some(1),
            delivery_key: None,
        },
    };
    let mut tap = Tap::new(profile.card());
    let report = checker.check(&mut tap, profile.card_number.as_str());
    let mut transcript = tap.into_parts().1;
    transcript.truncate(3);
    let expected = expectation_for(TrustMode::TestCa, profile.expect.verdict);
    let result = run::CaseResult {
        actual: Some(report.verdict),
        outcome: if expected.accepts(&report.verdict) {
            run::Outcome::Pass
        } else {
            run::Outcome::Fail
        },
        detail: report.detail,
        millis: 7,
        transcript,
        ..run::CaseResult::pending(
            "reference",
            &profile.name,
            profile.generation.number(),
            expected,
            profile.expect.threat,
        )
    };
    let mut line = serde_json::to_vec(&result).expect("a result encodes");
    line.push(b'\n');
    line
}

/// Length of the longest seed of `target` (a hint for libFuzzer's `-max_len`).
pub fn longest_seed(target: &str) -> usize {
    seeds(target)
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// my_number_codecs
// ---------------------------------------------------------------------------------------

/// Kenc of the spec notes' A8 vector (`00 01 … 0F`): seeds built from A8 open under it.
const A8_KENC: Key = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// The My Number platform codecs (`protocol::counter_sm`, `protocol::key_delivery`,
/// `my_number::*`). Input: byte 0 picks the Le DO form (bit 0); then SM command data as
/// `<len> <bytes>` records (VERIFY/SELECT and READ alternately) fed to one card-side session
/// under the A8 key; the bytes after byte 0 are also parsed as every text-AP EF, a key
/// template, a delivery public key and a CV certificate.
///
/// The session answers only `69 87`, `69 88`, `69 FC` or success; it spends one counter
/// value per command while alive, `69 FC` exactly after a `69 88`; what any parser accepts
/// re-encodes and reparses equal.
pub fn my_number_codecs(data: &[u8]) {
    use rclab_emulator::my_number::cv_cert::CvCertificate;
    use rclab_emulator::my_number::text_ap::{self, IntegrityRecord};
    use rclab_emulator::protocol::counter_sm::{CardCounterSm, CounterSmError, LeDoForm};
    use rclab_emulator::protocol::key_delivery::{DeliveryPublicKey, KeyMaterial, KeyTemplate};

    let Some((&form_byte, rest)) = data.split_first() else {
        return;
    };
    let form = if form_byte & 1 == 0 {
        LeDoForm::ThreeByte
    } else {
        LeDoForm::TwoByte
    };
    let mut card = CardCounterSm::new(A8_KENC, form);
    let mut records = rest;
    let mut index = 0;
    let mut destroyed = false;
    while let Some((&len, tail)) = records.split_first() {
        let (record, next) = tail.split_at(usize::from(len).min(tail.len()));
        records = next;
        let before = card.next_counter();
        let result = if index % 2 == 0 {
            card.open_command(record).map(|_| ())
        } else {
            card.open_read(record).map(|_| ())
        };
        index += 1;
        match result {
            Err(CounterSmError::SessionDestroyed) => {
                assert!(destroyed, "69 FC only after a 69 88");
                assert_eq!(card.next_counter(), before);
            }
            other => {
                assert!(!destroyed, "a destroyed session answered {other:?}");
                assert_eq!(
                    card.next_counter().0,
                    before.0 + 1,
                    "every SM command counts"
                );
                if let Err(e) = other {
                    let sw = e.status().sw();
                    assert!([0x6987, 0x6988].contains(&sw), "unexpected {sw:04X}");
                    destroyed = e.destroys_session();
                    assert_eq!(card.is_destroyed(), destroyed);
                }
            }
        }
    }

    if let Ok(digits) = text_ap::parse_number_ef(rest) {
        assert_eq!(
            text_ap::parse_number_ef(&text_ap::number_ef(&digits)),
            Ok(digits)
        );
    }
    if let Ok(info) = text_ap::parse_basic_info_ef(rest) {
        let rebuilt = text_ap::basic_info_ef(&info).expect("a parsed EF 0002 rebuilds");
        assert_eq!(text_ap::parse_basic_info_ef(&rebuilt), Ok(info));
    }
    let _ = text_ap::basic_info_hashed_part(rest);
    if let Ok(record) = IntegrityRecord::parse(rest) {
        let encoded = record.encode().expect("a parsed record re-encodes");
        assert_eq!(IntegrityRecord::parse(&encoded), Ok(record));
    }
    for template in [KeyTemplate::EncryptionKey, KeyTemplate::EncryptionAndMacKey] {
        if let Ok(material) = KeyMaterial::parse(rest, template) {
            assert_eq!(
                KeyMaterial::parse(&material.encode(), template),
                Ok(material)
            );
        }
    }
    if let Ok((key, format)) = DeliveryPublicKey::parse_any(rest) {
        let encoded = key
            .encode(format)
            .expect("a parsed key re-encodes in its format");
        assert_eq!(DeliveryPublicKey::parse(format, &encoded), Ok(key));
    }
    if let Ok(cert) = CvCertificate::parse(rest) {
        let encoded = cert.encode().expect("a parsed certificate re-encodes");
        assert_eq!(CvCertificate::parse(&encoded), Ok(cert));
    }
}

/// Seeds of [`my_number_codecs`]: the A8 command data, the B5/B10 test-card EFs.
fn my_number_seeds() -> Vec<(String, Vec<u8>)> {
    use rclab_emulator::my_number::individual_number::NumberDigits;
    use rclab_emulator::my_number::text_ap;
    use rclab_emulator::protocol::counter_sm::{LeDoForm, ReaderCounterSm};

    let mut out = Vec::new();
    let mut reader = ReaderCounterSm::new(A8_KENC, LeDoForm::ThreeByte);
    let mut session = vec![0];
    for apdu in [
        reader.verify(0x91, b"1234").map(|(a, _)| a),
        Ok(reader.read_binary(0, 0, 0).0),
        reader.select_ef(0x0001).map(|(a, _)| a),
    ] {
        let apdu = apdu.expect("A8 commands build");
        let data = Command::parse(&apdu)
            .expect("A8 commands parse")
            .data
            .to_vec();
        session.push(data.len() as u8);
        session.extend(data);
    }
    out.push(("seed-a8-session".into(), session));
    if let Ok(digits) = NumberDigits::parse(b"537686677188") {
        let mut ef = vec![1];
        ef.extend(text_ap::number_ef(&digits));
        out.push(("seed-b10-ef-0001".into(), ef));
    }
    let mut ef_0002 = vec![0];
    ef_0002.extend(
        hex::decode("ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99fdf2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df24083139383030323137df250131")
            .expect("B5 hex"),
    );
    out.push(("seed-b5-ef-0002".into(), ef_0002));
    let mut template = vec![0, 0xA0, 0x22, 0x80, 0x20];
    template.extend(0..32u8);
    out.push(("seed-a8-key-template".into(), template));
    out
}

// ---------------------------------------------------------------------------------------
// The My Number checker against fuzzed answers
// ---------------------------------------------------------------------------------------

/// The valid profiles of the My Number platform, in this fixed order (byte 0 of
/// [`my_number_checker_responses`] picks one; the order never changes, entries are only
/// added): two My Number cards, read with their PIN, and the two specified residence
/// cards, read with their card number through the 在留AP.
pub const MY_NUMBER_PROFILES: [&str; 4] = ["adult", "under-15", "specified-07", "specified-08"];

static MY_NUMBER_VALID: LazyLock<Vec<Profile>> = LazyLock::new(|| {
    MY_NUMBER_PROFILES
        .iter()
        .map(|name| {
            let path = vectors_dir().join(format!("profiles/my-number/valid/{name}.yaml"));
            profile::load(&path).unwrap_or_else(|e| panic!("bundled profile: {e}"))
        })
        .collect()
});

/// A My Number card whose answers come from the input, one record per command: a header
/// byte (`& 3`: 0 the genuine answer, 1 a chunk of the input instead, 2 a chunk as data
/// with the genuine status word, 3 a transport error), then the chunk when it takes one.
/// No input left: genuine answers.
struct MyNumberFuzzCard<'a> {
    chip: rclab_emulator::fault::SimCard,
    input: Input<'a>,
    all_genuine: bool,
}

impl Channel for MyNumberFuzzCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let genuine = self.chip.transmit(apdu)?;
        let Some(header) = self.input.byte() else {
            return Ok(genuine);
        };
        let answer = match header & 3 {
            0 => Ok(genuine.clone()),
            1 => Ok(self.input.chunk().to_vec()),
            2 => {
                let mut out = self.input.chunk().to_vec();
                out.extend_from_slice(&genuine[genuine.len().saturating_sub(2)..]);
                Ok(out)
            }
            _ => Err(match header >> 2 & 1 {
                0 => TransportError::CardRemoved,
                _ => TransportError::Timeout,
            }),
        };
        self.all_genuine &= answer.as_ref() == Ok(&genuine);
        answer
    }
}

/// The reference checker against a My Number platform card whose answers come from the
/// input: byte 0 picks the profile (`MY_NUMBER_PROFILES[b & 3]`), then one record per
/// command (see `MyNumberFuzzCard`). A My Number card is checked with its PIN, a specified
/// card with its card number (key delivery, the 在留AP's SM, DF1–DF3). The checker never
/// panics, its report serialises; when every answer was the genuine card's, its verdict is
/// `genuine`.
pub fn my_number_checker_responses(data: &[u8]) {
    let mut input = Input(data);
    let which = input.byte().unwrap_or(0);
    let profile = &MY_NUMBER_VALID[usize::from(which & 3)];
    let mut card = MyNumberFuzzCard {
        chip: profile.card(),
        input,
        all_genuine: true,
    };
    let report = match profile.kind() {
        rclab_emulator::chip::ChipKind::SpecifiedResidence => {
            fuzz_checker(0).check(&mut card, profile.card_number.as_str())
        }
        _ => {
            let pin =
                crate::checker::my_number::profile_pin(profile).expect("a valid profile's PIN");
            fuzz_checker(0).check_my_number(&mut card, &pin)
        }
    };
    let _ = serde_json::to_string(&report).expect("report serialises");
    if card.all_genuine {
        assert_eq!(
            report.verdict.verdict,
            VerdictKind::Genuine,
            "{}: untouched answers, verdict {:?}: {}",
            profile.name,
            report.verdict,
            report.detail
        );
    }
}

/// Seeds of [`my_number_checker_responses`]: each profile untouched, and each of the
/// genuine check's commands answered in turn with `6A 82`, with garbage data under the
/// genuine status word, and with a removed card.
fn my_number_checker_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, name) in MY_NUMBER_PROFILES.iter().enumerate() {
        let selector = u8::try_from(i).unwrap_or(0);
        out.push((format!("{name}-untouched"), vec![selector]));
        // 21 commands in the adult's genuine check, 20 in a specified card's; a few
        // beyond are harmless.
        for step in 0..24 {
            let genuine = std::iter::repeat_n(0u8, step);
            let mut refused: Vec<u8> = std::iter::once(selector).chain(genuine.clone()).collect();
            refused.extend_from_slice(&[1, 2, 0x6A, 0x82]);
            out.push((format!("{name}-{step:02}-6a82"), refused));
            let mut garbage: Vec<u8> = std::iter::once(selector).chain(genuine.clone()).collect();
            garbage.extend_from_slice(&[2, 4, 0x30, 0x82, 0xFF, 0xFF]);
            out.push((format!("{name}-{step:02}-garbage"), garbage));
            let mut removed: Vec<u8> = std::iter::once(selector).chain(genuine).collect();
            removed.push(3);
            out.push((format!("{name}-{step:02}-removed"), removed));
        }
    }
    out
}
