//! Helpers shared by the integration tests: profile loading, APDU exchange with reply-shape
//! checks, and the reader steps the tests need, each a thin wrapper over the one reader
//! (`rclab_emulator::reader::Session`) the checker uses, on a channel that checks every
//! reply's shape.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod corpus;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rclab_emulator::card::{Access, Card, CardImage, Df, ElementaryFile};
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::crypto::{Key, card_number_key};
use rclab_emulator::protocol::{Generation, Response, Status};
use rclab_emulator::reader::{self, ReadMode, ReaderError, ReaderSecrets, Session};
use rclab_emulator::transport::{Channel, TransportError};

/// Names of the bundled valid profiles (`vectors/profiles/valid/<name>.yaml`).
pub const VALID_PROFILES: [&str; 5] = [
    "gen1-residence",
    "gen1-sprc",
    "gen2-infant",
    "gen2-residence",
    "gen2-sprc",
];

/// `vectors/` of the workspace.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// `vectors/profiles/valid/<name>` (a file name with its extension, or `""` for the folder).
pub fn valid_path(name: &str) -> PathBuf {
    vectors_dir().join("profiles/valid").join(name)
}

/// A scratch folder for one test, `<tmp>/rclab-tests-<random>/<suite>-<name>`; calls with
/// the same name share the folder (a test writing several files). The random part, made
/// once per process, keeps runs apart. A process id does not: a fresh CI machine hands out
/// the same ids run after run, and folders an earlier run left (with its FIFOs and links)
/// once failed the tests that make them.
pub fn scratch_dir(suite: &str, name: &str) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let fresh = tempfile::Builder::new().prefix("rclab-tests-").tempdir();
        fresh.unwrap().keep()
    });
    let dir = root.join(format!("{suite}-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `vectors/profiles/valid/<name>.yaml`.
pub fn valid_profile(name: &str) -> Profile {
    let path = vectors_dir()
        .join("profiles/valid")
        .join(format!("{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every bundled valid profile, in [`VALID_PROFILES`] order.
pub fn valid_profiles() -> Vec<Profile> {
    VALID_PROFILES.iter().map(|n| valid_profile(n)).collect()
}

/// A card built from a modified copy of `profile`'s image.
pub fn card_with(profile: &Profile, edit: impl FnOnce(&mut CardImage)) -> Card {
    let mut image = (*profile.image).clone();
    edit(&mut image);
    Card::new(Arc::new(image))
}

/// Hex to bytes; spaces allowed.
pub fn h(text: &str) -> Vec<u8> {
    let cleaned: String = text.split_whitespace().collect();
    hex::decode(&cleaned).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Hex to a fixed-size array.
pub fn ha<const N: usize>(text: &str) -> [u8; N] {
    h(text)
        .try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("{text:?}: {} bytes, expected {N}", v.len()))
}

/// Sends one C-APDU and checks the R-APDU shape every answer must have: at least a status
/// word, a status word the card is known to use, and no data with an error status.
pub fn send(card: &mut Card, apdu: &[u8]) -> Response {
    let raw = card.transmit(apdu);
    check_reply(apdu, &raw)
}

/// The reply-shape invariant of [`send`], for callers that hold the raw reply.
pub fn check_reply(apdu: &[u8], raw: &[u8]) -> Response {
    let response = Response::parse(raw)
        .unwrap_or_else(|| panic!("{}: reply {raw:02X?} has no status word", hex(apdu)));
    assert!(
        !matches!(response.status, Status::Other(_)),
        "{}: unexpected status word {}",
        hex(apdu),
        response.status
    );
    assert!(
        response.status.carries_data() || response.data.is_empty(),
        "{}: status {} with {} data bytes",
        hex(apdu),
        response.status,
        response.data.len()
    );
    response
}

/// The status word of one exchange, as upper-case hex (`"9000"`), so that a failed
/// comparison prints readably.
pub fn sw(card: &mut Card, apdu: &[u8]) -> String {
    hex(&send(card, apdu).status.to_bytes())
}

/// Upper-case hex of bytes, for messages.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// The AID of DF1–DF3.
pub fn aid(df: Df) -> [u8; 16] {
    df.aid()
        .unwrap_or_else(|| panic!("the MF is selected by FID, not by AID"))
}

/// The card as a reader channel on which every reply passes the shape checks of [`send`].
pub struct Checked<'a>(pub &'a mut Card);

impl Channel for Checked<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(send(self.0, apdu).to_bytes())
    }
}

/// The shared reader ([`Session`]) on `card`, in its image's cryptography, holding
/// `session_key` (KSenc) when given.
pub fn session<'a>(card: &'a mut Card, session_key: Option<Key>) -> Session<Checked<'a>> {
    let generation = card.image().generation;
    let mut s = Session::new(Checked(card), generation);
    s.set_session_key(session_key);
    s
}

/// `00 A4 04 0C 10 <AID>` for a DF, `00 A4 00 0C 02 3F 00` for the MF.
pub fn select_apdu(df: Df) -> Vec<u8> {
    match df {
        Df::Mf => reader::select_mf_apdu(),
        df => reader::select_by_aid_apdu(&aid(df)),
    }
}

/// Selects `df`, which must succeed.
pub fn select(card: &mut Card, df: Df) {
    assert_eq!(sw(card, &select_apdu(df)), "9000", "SELECT {df:?}");
}

/// `00 84 00 00 08`.
pub const GET_CHALLENGE: [u8; 5] = reader::GET_CHALLENGE_APDU;

/// GET CHALLENGE, which must succeed with 8 bytes.
pub fn get_challenge(card: &mut Card) -> [u8; 8] {
    session(card, None)
        .get_challenge()
        .unwrap_or_else(|e| panic!("GET CHALLENGE: {e}"))
}

/// `00 82 00 00 28 <E.IFD ‖ M.IFD> 00`.
pub fn mutual_authenticate_apdu(cryptogram: &[u8]) -> Vec<u8> {
    reader::mutual_authenticate_apdu(cryptogram)
}

/// The reader's random side of one authentication, drawn from a seeded generator.
pub fn reader_secrets(rng: &mut ChaCha20Rng) -> ([u8; 8], Key) {
    let secrets = ReaderSecrets::draw(rng);
    (secrets.rnd_ifd, secrets.k_ifd)
}

/// A reader's GET CHALLENGE + MUTUAL AUTHENTICATE with `number` and the cipher suite of
/// `generation`: KSenc, or the status word the card refused with. A card answer that does
/// not verify (bad M.ICC, wrong echoed random) fails the test.
pub fn try_authenticate_as(
    card: &mut Card,
    generation: Generation,
    number: &str,
    rng: &mut ChaCha20Rng,
) -> Result<Key, Status> {
    let mut s = session(card, None);
    s.set_generation(generation);
    match s.authenticate(&card_number_key(number.as_bytes()), rng) {
        Ok(key) => Ok(key),
        Err(ReaderError::Status(status)) => Err(status),
        Err(e) => panic!("MUTUAL AUTHENTICATE: {e}"),
    }
}

/// Authenticates with the chip's own card number and generation; returns KSenc.
pub fn authenticate(card: &mut Card, rng: &mut ChaCha20Rng) -> Key {
    let generation = card.image().generation;
    let number = card.image().chip_card_number.clone();
    try_authenticate_as(card, generation, &number, rng).expect("MUTUAL AUTHENTICATE")
}

/// `08 20 00 86 13 86 11 01 <Enc(KSenc, pad(number))>`.
pub fn verify_apdu(generation: Generation, session_key: &Key, number: &str) -> Vec<u8> {
    reader::verify_apdu(generation, session_key, number.as_bytes())
        .unwrap_or_else(|e| panic!("VERIFY of {number:?}: {e}"))
}

/// VERIFY with `number` under `session_key`; the status word.
pub fn verify(card: &mut Card, session_key: &Key, number: &str) -> Status {
    match session(card, Some(*session_key)).verify(number.as_bytes()) {
        Ok(()) => Status::Success,
        Err(ReaderError::Status(status)) => status,
        Err(e) => panic!("VERIFY: {e}"),
    }
}

/// The genuine reader flow up to a verified session: authenticate, VERIFY; returns KSenc.
pub fn open_session(card: &mut Card, seed: u64) -> Key {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let key = authenticate(card, &mut rng);
    let number = card.image().chip_card_number.clone();
    assert_eq!(verify(card, &key, &number), Status::Success, "VERIFY");
    key
}

/// `08 B0 P1 P2 00 00 04 96 02 Lh Ll 00 00` (`len` 0 = whole EF).
pub fn sm_read_apdu(p1: u8, p2: u8, len: u16) -> Vec<u8> {
    reader::sm_read_apdu(p1, p2, len)
}

/// An SM READ BINARY, decrypted: plaintext and status, or the error status (a whole-EF
/// read, `len` 0, accepts only `90 00`). An answer that does not open fails the test.
pub fn sm_read(
    card: &mut Card,
    session_key: &Key,
    p1: u8,
    p2: u8,
    len: u16,
) -> Result<(Vec<u8>, Status), Status> {
    match session(card, Some(*session_key)).read_sm_once(p1, p2, len) {
        Ok((status, plain)) if status.carries_data() => Ok((plain, status)),
        Ok((status, _)) | Err(ReaderError::Status(status)) => Err(status),
        Err(e) => panic!("{}: {e}", hex(&sm_read_apdu(p1, p2, len))),
    }
}

/// `00 B0 P1 P2 00 00 00`: plain extended READ BINARY of everything.
pub fn read_all_apdu(p1: u8, p2: u8) -> Vec<u8> {
    reader::plain_read_apdu(p1, p2, 65_536)
}

/// Reads a whole EF the way its access condition requires (selecting its DF first) and
/// returns the plaintext; the session must be verified for protected EFs.
pub fn read_ef(card: &mut Card, session_key: &Key, ef: &ElementaryFile) -> Vec<u8> {
    select(card, ef.id.df);
    let mode = match ef.access {
        Access::AuthSm => ReadMode::Sm,
        Access::Free | Access::Auth => ReadMode::Plain,
    };
    session(card, Some(*session_key))
        .read(ef.id.sfi, mode)
        .unwrap_or_else(|e| panic!("READ {}: {e}", ef.name))
}

/// Reads every EF of the card's image and compares it with the image content.
pub fn read_every_ef_matches_image(card: &mut Card, session_key: &Key) {
    let image = card.image().clone();
    for ef in &image.files {
        let got = read_ef(card, session_key, ef);
        assert!(
            got == ef.content,
            "{}: read {} bytes that differ from the {} content bytes",
            ef.name,
            got.len(),
            ef.content.len()
        );
    }
}

/// The EF of `image` with `sfi` under `df`.
pub fn ef(image: &CardImage, df: Df, sfi: u8) -> &ElementaryFile {
    let index = image
        .find_sfi(df, sfi)
        .unwrap_or_else(|| panic!("no EF with SFI {sfi:02X} under {df:?}"));
    &image.files[index]
}

/// The first EF of `image` under `df`.
pub fn ef_in(image: &CardImage, df: Df) -> &ElementaryFile {
    image
        .files
        .iter()
        .find(|f| f.id.df == df)
        .unwrap_or_else(|| panic!("no EF under {df:?}"))
}
