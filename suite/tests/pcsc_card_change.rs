//! How a run changes the card between cases over the real stack (pcscd + vpcd), through
//! the runner's own card host (`run::host::Vpcd`):
//! - faithful (`card_change: reinsert`): a checker that blocks in `SCardGetStatusChange`
//!   waiting for the next card sees the old one leave and the new one arrive, and reads it;
//! - fast (`card_change: swap`): the next case's chip replaces the old one behind a reader
//!   that stays connected, and a checker never sees the previous card's session or data,
//!   even when the previous checker left the card authenticated and powered.
//!
//! Skipped with a message when no pcscd with vpcd readers runs (`scripts/pcsc-up`); fails
//! instead when `RCLAB_REQUIRE_PCSC` is set (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::ffi::CString;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rclab_emulator::card::Access as FileAccess;
use rclab_emulator::profile::Profile;
use rclab_emulator::reader::{Session, plain_read_apdu, sm_read_apdu};
use rclab_emulator::transport::{Channel, TransportError};
use rclab_suite::run::host::{Access, CardChange, CardHost, Vpcd};

fn profile(name: &str) -> Profile {
    common::profiles("")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no profile {name}"))
}

/// A reader of this machine's vpcd, free a moment ago if any was (the host waits while
/// another process serves it): the second-last, apart from the readers other real-stack
/// tests start from.
fn port() -> u16 {
    let ports = rclab_suite::run::vpcd_ports();
    ports
        .len()
        .checked_sub(2)
        .and_then(|i| ports.get(i))
        .or(ports.last())
        .copied()
        .unwrap_or(rclab_emulator::transport::vpcd::BASE_PORT + 4)
}

/// READ BINARY of the card-type EF (`8A`, free to read): differs between generations.
const READ_CARD_TYPE: [u8; 5] = [0x00, 0xB0, 0x8A, 0x00, 0x00];

/// A card connected through pcsc-lite directly, as an external checker holds it: unlike
/// `PcscChannel`, it can leave the card as it is when it lets go.
struct RawCard {
    card: pcsc::Card,
}

impl RawCard {
    fn connect(reader: &str) -> RawCard {
        let context = Context::establish(Scope::User).expect("pcscd");
        let name = CString::new(reader).expect("reader name");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match context.connect(&name, ShareMode::Shared, Protocols::T1 | Protocols::T0) {
                Ok(card) => return RawCard { card },
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect {reader}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("connect {reader}: {e}"),
            }
        }
    }

    /// Lets go without resetting or powering the card down.
    fn leave(self) {
        self.card
            .disconnect(Disposition::LeaveCard)
            .map_err(|(_, e)| e)
            .expect("SCardDisconnect");
    }
}

impl Channel for RawCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buffer = vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        self.card
            .transmit(apdu, &mut buffer)
            .map(<[u8]>::to_vec)
            .map_err(|e| TransportError::Other(e.to_string()))
    }
}

/// The DF AID and SFI of the first EF that needs authentication.
fn protected_ef(p: &Profile) -> ([u8; 16], u8) {
    let ef = p
        .image
        .files
        .iter()
        .find(|ef| ef.access == FileAccess::AuthSm)
        .expect("an EF behind authentication");
    let aid = ef.id.df.aid().expect("the EF sits in a DF with an AID");
    (aid, ef.id.sfi)
}

/// SELECT of the protected EF's DF, then READ BINARY of that EF, plain or under secure
/// messaging: the status word. A card without a session refuses both (`69 82` plain); one
/// with a session answers the SM read `90 00`.
fn probe(p: &Profile, channel: &mut impl Channel, sm: bool) -> Vec<u8> {
    let (aid, sfi) = protected_ef(p);
    let mut session = Session::new(channel, p.image.generation);
    session.select_aid(&aid).expect("SELECT");
    let apdu = if sm {
        sm_read_apdu(0x80 | sfi, 0, 0)
    } else {
        plain_read_apdu(0x80 | sfi, 0, 256)
    };
    let answer = session.channel_mut().transmit(&apdu).expect("READ BINARY");
    answer[answer.len().saturating_sub(2)..].to_vec()
}

/// Authenticates and verifies the card number: the card now holds a session.
fn open_session(p: &Profile, channel: &mut impl Channel) {
    let mut session = Session::new(channel, p.image.generation);
    session
        .authenticate(&p.image.chip_key(), &mut ChaCha20Rng::seed_from_u64(3))
        .expect("MUTUAL AUTHENTICATE");
    session
        .verify(p.image.chip_card_number.as_bytes())
        .expect("VERIFY");
}

const REFUSED: [u8; 2] = [0x69, 0x82];
const SUCCESS: [u8; 2] = [0x90, 0x00];

#[test]
fn the_probes_tell_a_fresh_card_from_one_with_a_session() {
    // In process: what the swap test below relies on.
    let a = profile("valid/gen1-residence");
    let mut fresh = a.card();
    assert_eq!(probe(&a, &mut fresh, false), REFUSED);
    assert_ne!(probe(&a, &mut fresh, true), SUCCESS);
    let mut opened = a.card();
    open_session(&a, &mut opened);
    assert_eq!(probe(&a, &mut opened, true), SUCCESS);
}

#[test]
fn a_swapped_card_never_shows_the_previous_cards_session_or_data() {
    if !common::stack_available() {
        return;
    }
    let a = profile("valid/gen1-residence");
    let b = profile("valid/gen2-residence");
    let b_card_type = b.card().transmit(&READ_CARD_TYPE).unwrap();
    assert_ne!(a.card().transmit(&READ_CARD_TYPE).unwrap(), b_card_type);
    let mut host = Vpcd::new(rclab_emulator::transport::vpcd::Endpoint::local(port()));

    // Case A: authenticates, verifies and leaves the card powered, session and all.
    let (a_sm_read, _) = host
        .serve(a.card(), CardChange::Swap, |access| {
            let Access::Reader(reader) = access else {
                panic!("a vpcd host hands out a reader")
            };
            let mut card = RawCard::connect(&reader.name());
            open_session(&a, &mut card);
            let read = probe(&a, &mut card, true);
            card.leave();
            read
        })
        .expect("case A");
    assert_eq!(a_sm_read, SUCCESS, "case A opened no session");

    // Case B: another card, swapped in; fresh state and B's own data. A plain read of B's
    // protected EF is refused; the SM read goes to A's, as a checker that kept A's session
    // would read it.
    let ((plain, sm, card_type), transcript) = host
        .serve(b.card(), CardChange::Swap, |access| {
            let Access::Reader(reader) = access else {
                panic!("a vpcd host hands out a reader")
            };
            let mut card = RawCard::connect(&reader.name());
            let plain = probe(&b, &mut card, false);
            let sm = probe(&a, &mut card, true);
            Session::new(&mut card, b.image.generation)
                .select_mf()
                .expect("SELECT MF");
            let card_type = card.transmit(&READ_CARD_TYPE).unwrap();
            card.leave();
            (plain, sm, card_type)
        })
        .expect("case B");
    assert_eq!(host.swaps(), 1, "case B's card was not swapped in");
    assert_eq!(plain, REFUSED, "case B: a read without authentication");
    assert_ne!(sm, SUCCESS, "case B read under case A's session");
    assert_eq!(card_type, b_card_type, "case B read another card's data");
    // B's transcript is B's alone: its SELECTs and reads, nothing of case A.
    assert_eq!(transcript.len(), 6, "{transcript:?}");
}

/// A checker that, holding a card's state, blocks in `SCardGetStatusChange` until that card
/// leaves and another arrives, then reads the new one's card type.
fn wait_for_the_next_card(reader: String, ready: mpsc::Sender<()>) -> Vec<u8> {
    let context = Context::establish(Scope::User).expect("pcscd");
    let name = CString::new(reader.clone()).expect("reader name");
    let mut states = [ReaderState::new(name.clone(), State::UNAWARE)];
    context
        .get_status_change(Duration::from_secs(5), &mut states)
        .expect("the reader's state");
    assert!(states[0].event_state().contains(State::PRESENT));
    let first_count = states[0].event_count();
    ready.send(()).expect("the test waits");
    let mut seen_empty = false;
    loop {
        states[0].sync_current_state();
        context
            .get_status_change(Duration::from_secs(15), &mut states)
            .expect("SCardGetStatusChange");
        let state = states[0].event_state();
        seen_empty |= state.contains(State::EMPTY);
        let replaced = seen_empty || states[0].event_count() >= first_count + 2;
        if replaced && state.contains(State::PRESENT) && !state.contains(State::MUTE) {
            break;
        }
    }
    let mut card = RawCard::connect(&reader);
    let answer = card.transmit(&READ_CARD_TYPE).expect("READ BINARY");
    card.leave();
    answer
}

#[test]
fn a_checker_waiting_for_the_next_card_gets_it_when_cards_are_reinserted() {
    if !common::stack_available() {
        return;
    }
    let a = profile("valid/gen1-residence");
    let b = profile("valid/gen2-residence");
    let b_card_type = b.card().transmit(&READ_CARD_TYPE).unwrap();
    let mut host = Vpcd::new(rclab_emulator::transport::vpcd::Endpoint::local(port()));
    let (answers, ready) = (mpsc::channel(), mpsc::channel());
    let mut waiting = None;
    host.serve(a.card(), CardChange::Reinsert, |access| {
        let Access::Reader(reader) = access else {
            panic!("a vpcd host hands out a reader")
        };
        let name = reader.name();
        let (answer, ready_tx) = (answers.0.clone(), ready.0.clone());
        // Wait until pcscd shows card A, as the runner does before starting a checker.
        rclab_suite::pcsc_channel::wait_for_card(&name, Duration::from_secs(10))
            .expect("pcscd shows card A");
        waiting = Some(std::thread::spawn(move || {
            let _ = answer.send(wait_for_the_next_card(name, ready_tx));
        }));
        ready
            .1
            .recv_timeout(Duration::from_secs(10))
            .expect("the waiting checker saw card A");
    })
    .expect("case A");
    let (card_type, _) = host
        .serve(b.card(), CardChange::Reinsert, |_| {
            answers.1.recv_timeout(Duration::from_secs(20))
        })
        .expect("case B");
    assert_eq!(host.swaps(), 0);
    assert_eq!(
        card_type.expect("the waiting checker never saw the next card"),
        b_card_type
    );
    if let Some(thread) = waiting {
        thread.join().expect("checker thread");
    }
}
