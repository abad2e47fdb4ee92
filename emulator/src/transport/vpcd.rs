//! Client of vsmartcard's `vpcd` driver: puts a card into a virtual reader of pcscd.
//!
//! Wire protocol (see `../shared/vpcd.md` §4): one TCP stream per reader slot, the card
//! connects to `127.0.0.1:port`; every message is a 2-byte big-endian length and its bytes.
//! One-byte messages are control codes (`00` power off, `01` power on, `02` reset, `04` get
//! ATR); anything longer is a C-APDU, answered by the R-APDU. The card never sends an empty
//! frame (that hangs pcscd's reader) and never one over 65 535 bytes.
//!
//! Debian's vpcd writes the length and the payload in two `send()`s; with delayed ACK on
//! our side that costs ~44 ms per APDU. Re-arming `TCP_QUICKACK` before every read brings
//! the round trip to ~0.1 ms.
//!
//! Each reader runs on its own thread with blocking I/O: a handful of readers, one
//! exchange at a time each, no async runtime needed.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::card::Card;

/// First vpcd port (reader `Virtual PCD 00 00`); slot `n` listens on `BASE_PORT + n`.
pub const BASE_PORT: u16 = 35963;

/// ATR of an ISO 14443-4 Type B card as a PC/SC reader presents it (PC/SC Part 3 §3.1.3.2.3):
/// `3B` direct convention, `88` (TD1 follows, 8 historical bytes), `80` (TD2 follows, T=0),
/// `01` (T=1), historical bytes = ATQB application data `00 00 00 00` (the residence card's
/// is not public) + ATQB protocol info `00 81 81` (106 kbit/s only; max frame 256 bytes,
/// ISO 14443-4 compliant; FWI 8, CID supported) + MBLI `00`, then TCK `09` (XOR of T0…).
pub const DEFAULT_ATR: [u8; 13] = [
    0x3B, 0x88, 0x80, 0x01, 0, 0, 0, 0, 0x00, 0x81, 0x81, 0x00, 0x09,
];

/// How long a reader stays empty between two cards: one pcscd presence poll (every 400 ms)
/// must find it empty. Otherwise pcscd can take the new card for the old one: when a
/// checker's power-down of a vanished card failed, pcscd shows the reader empty and, seeing
/// no change at its next poll, never powers the new card on.
const EMPTY_POLL: Duration = Duration::from_millis(600);

/// When each port was last seen without our card (this process's view).
static CARD_GONE: Mutex<Vec<(u16, Instant)>> = Mutex::new(Vec::new());

fn note_card_gone(port: u16) {
    let mut gone = CARD_GONE.lock().unwrap_or_else(|p| p.into_inner());
    gone.retain(|(p, _)| *p != port);
    gone.push((port, Instant::now()));
}

/// How long `port` has been without a card, as far as this process knows (a port it never
/// served counts as empty for long).
fn absent_for(port: u16) -> Duration {
    let gone = CARD_GONE.lock().unwrap_or_else(|p| p.into_inner());
    gone.iter()
        .find(|(p, _)| *p == port)
        .map_or(Duration::MAX, |(_, at)| at.elapsed())
}

/// True while vpcd still holds a connection on `port` (its side ESTABLISHED or
/// CLOSE_WAIT): a card that left has not been noticed yet. pcscd notices on its next
/// presence poll (every 400 ms), closing vpcd's socket and marking the card removed; a card
/// that connects before that is taken for the old one, and pcscd's client-visible state can
/// stay "empty" after a transmit to the vanished card failed. Read from /proc, because a
/// probe connect() would itself look like a card.
fn vpcd_still_holds_a_card(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields.as_slice(), [_, l, _, state, ..] if *l == local && matches!(*state, "01" | "08"))
    })
}

/// PC/SC reader name of a vpcd slot as configured by `scripts/pcsc-up`: Debian's entry
/// (`Virtual PCD`, ports 35963–35964), then `Virtual PCD B`, `C`, … two slots each.
pub fn reader_name(port: u16) -> String {
    let index = port.saturating_sub(BASE_PORT);
    let entry = index / 2;
    let suffix = match entry {
        0 => String::new(),
        n => format!(" {}", char::from(b'A' + (n as u8).min(25))),
    };
    format!("Virtual PCD{suffix} 00 {:02}", index % 2)
}

/// What sits in a virtual reader: anything that answers APDUs and can be reset.
pub trait VirtualCard: Send {
    fn reset(&mut self);
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
    /// One exchange as the reader carries it out: what to answer, after how long, and
    /// whether the card leaves the reader. Faulty cards (`crate::fault::SimCard`) override
    /// this so the reader waits without holding its lock and closes the connection when the
    /// card goes. The default answers at once; an empty answer means the card is gone (no
    /// card answers nothing, and an empty vpcd frame would hang pcscd).
    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let data = self.transmit(apdu);
        Reply {
            leave: data.is_empty(),
            data: (!data.is_empty()).then_some(data),
            delay: Duration::ZERO,
        }
    }
}

/// What a [`VirtualCard`] does with one C-APDU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The R-APDU; `None`: the card left before answering.
    pub data: Option<Vec<u8>>,
    /// How long the card takes before the answer (or before it leaves).
    pub delay: Duration,
    /// The card leaves the reader after this exchange.
    pub leave: bool,
}

impl VirtualCard for Card {
    fn reset(&mut self) {
        Card::reset(self);
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        Card::transmit(self, apdu)
    }
}

/// How a reader serves its card.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    pub port: u16,
    pub atr: Vec<u8>,
    /// Log `>>>` / `<<<` lines for every APDU and control code to stderr.
    pub trace: bool,
    /// Transport fault of the reader: take the card out after it answered this many APDUs
    /// (whatever the card). Faults of a card profile (`remove_after`, `remove_during`)
    /// work through [`VirtualCard::respond`] instead.
    pub remove_after: Option<usize>,
}

impl ReaderOptions {
    pub fn new(port: u16) -> ReaderOptions {
        ReaderOptions {
            port,
            atr: DEFAULT_ATR.to_vec(),
            trace: false,
            remove_after: None,
        }
    }
}

struct Slot {
    card: Option<Box<dyn VirtualCard>>,
    /// A handle on the live connection, so that removal can close it from outside.
    socket: Option<TcpStream>,
    /// APDUs answered since the card was inserted.
    answered: usize,
    /// vpcd has spoken on the current connection: pcscd knows this card now (and not a
    /// card that an earlier connection left behind).
    attached: bool,
    stop: bool,
}

/// A vpcd reader slot with a card that can be inserted and removed while it runs.
pub struct VirtualReader {
    /// Held while this reader serves its port: two processes never serve one port.
    _port_lock: Option<std::fs::File>,
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl VirtualReader {
    /// Starts serving `port`; connects (and reconnects) whenever a card is inserted.
    ///
    /// Only one card can sit in a reader: if another process (an `rclab serve`, another
    /// test binary) serves the port, this waits until it lets go, saying so on stderr.
    pub fn spawn(options: ReaderOptions, card: Option<Box<dyn VirtualCard>>) -> VirtualReader {
        let port_lock = lock_port(options.port);
        let shared = Arc::new((
            Mutex::new(Slot {
                card,
                socket: None,
                answered: 0,
                attached: false,
                stop: false,
            }),
            Condvar::new(),
        ));
        let port = options.port;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-{port}"))
            .spawn(move || serve(&options, &worker))
            .expect("spawn reader thread");
        VirtualReader {
            _port_lock: port_lock,
            shared,
            thread: Some(thread),
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn name(&self) -> String {
        reader_name(self.port)
    }

    /// Puts a card in the reader (replacing any card there).
    pub fn insert(&self, card: Box<dyn VirtualCard>) {
        let mut slot = lock(&self.shared.0);
        disconnect(&mut slot);
        slot.card = Some(card);
        slot.answered = 0;
        self.shared.1.notify_all();
    }

    /// Waits until vpcd has talked to the current card (pcscd then reports this card, not
    /// the one an earlier connection left); false after `timeout`.
    pub fn wait_attached(&self, timeout: Duration) -> bool {
        let slot = lock(&self.shared.0);
        let (slot, _) = self
            .shared
            .1
            .wait_timeout_while(slot, timeout, |s| !s.attached && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        slot.attached
    }

    /// Takes the card out: pcscd sees the card removed at once.
    pub fn remove(&self) -> Option<Box<dyn VirtualCard>> {
        let mut slot = lock(&self.shared.0);
        disconnect(&mut slot);
        self.shared.1.notify_all();
        slot.card.take()
    }

    /// Removes the card and stops the thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        {
            let mut slot = lock(&self.shared.0);
            slot.stop = true;
            disconnect(&mut slot);
            self.shared.1.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for VirtualReader {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// The lock file of a vpcd port, shared by every rclab process on this machine.
fn port_lock_file(port: u16) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(format!("rclab-vpcd-{port}.lock")))
}

/// Takes the port's lock, waiting while another process holds it; `None` when the lock
/// file cannot be used at all (then nothing is protected, but serving still works).
fn lock_port(port: u16) -> Option<std::fs::File> {
    let file = port_lock_file(port).ok()?;
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("[{port}] another rclab process serves this port; waiting for it to let go");
            file.lock().ok().map(|()| file)
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// True when another process serves `port` right now.
pub fn port_busy(port: u16) -> bool {
    port_lock_file(port)
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic elsewhere must not take the reader down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn disconnect(slot: &mut Slot) {
    slot.attached = false;
    if let Some(socket) = slot.socket.take() {
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// The reader thread: wait for a card, connect, serve until removal or disconnection, repeat.
fn serve(options: &ReaderOptions, shared: &(Mutex<Slot>, Condvar)) {
    let (mutex, condvar) = shared;
    loop {
        // Wait until there is a card to serve (or we are told to stop).
        {
            let mut slot = lock(mutex);
            while slot.card.is_none() && !slot.stop {
                slot = condvar.wait(slot).unwrap_or_else(|p| p.into_inner());
            }
            if slot.stop {
                return;
            }
        }
        if vpcd_still_holds_a_card(options.port) {
            note_card_gone(options.port);
            let slot = lock(mutex);
            let _ = condvar.wait_timeout(slot, Duration::from_millis(50));
            continue;
        }
        let absent = absent_for(options.port);
        if absent < EMPTY_POLL {
            let slot = lock(mutex);
            let _ = condvar.wait_timeout(slot, EMPTY_POLL - absent);
            continue;
        }
        let stream = match TcpStream::connect((Ipv4Addr::LOCALHOST, options.port)) {
            Ok(s) => s,
            Err(e) => {
                if options.trace {
                    eprintln!("[{}] vpcd not reachable ({e}); retrying", options.port);
                }
                // pcscd down or restarting: retry, but wake at once on stop/removal.
                let slot = lock(mutex);
                let _ = condvar.wait_timeout(slot, Duration::from_millis(200));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        {
            let mut slot = lock(mutex);
            if slot.stop || slot.card.is_none() {
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            slot.socket = stream.try_clone().ok();
            if let Some(card) = slot.card.as_mut() {
                card.reset();
            }
        }
        if options.trace {
            eprintln!(
                "[{}] connected to vpcd as {}",
                options.port,
                reader_name(options.port)
            );
        }
        let result = exchange_frames(options, stream, shared);
        note_card_gone(options.port);
        let mut slot = lock(mutex);
        slot.socket = None;
        slot.attached = false;
        if options.trace {
            eprintln!(
                "[{}] disconnected: {}",
                options.port,
                match &result {
                    Ok(()) => "closed".to_owned(),
                    Err(e) => e.to_string(),
                }
            );
        }
        if slot.stop {
            return;
        }
        if slot.card.is_some() {
            // pcscd went away (restart): try again shortly.
            let _ = condvar.wait_timeout(slot, Duration::from_millis(200));
        }
    }
}

/// Sets `TCP_QUICKACK`: Linux then ACKs at once instead of delaying; it clears the flag by
/// itself, so it is re-armed before every read.
fn quickack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: `stream` owns a valid, open socket descriptor for the duration of the call;
    // `one` is a live c_int and the length passed is exactly its size, so the kernel reads
    // only initialised memory we own. setsockopt has no other memory effects.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads frames and answers them until the connection ends.
fn exchange_frames(
    options: &ReaderOptions,
    mut stream: TcpStream,
    (mutex, condvar): &(Mutex<Slot>, Condvar),
) -> io::Result<()> {
    let mut header = [0u8; 2];
    let mut message = Vec::with_capacity(1024);
    let mut frame = Vec::with_capacity(8 * 1024);
    loop {
        quickack(&stream);
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_be_bytes(header));
        message.resize(len, 0);
        stream.read_exact(&mut message)?;
        quickack(&stream);

        let reply = {
            let mut slot = lock(mutex);
            if !slot.attached {
                slot.attached = true;
                condvar.notify_all();
            }
            let Some(card) = slot.card.as_mut() else {
                return Ok(()); // removed while we were reading
            };
            match message.as_slice() {
                [] => Reply::default(),
                [0x00] | [0x01] | [0x02] => {
                    if options.trace {
                        let what = ["power off", "power on", "reset"][usize::from(message[0])];
                        eprintln!("[{}] --- {what}", options.port);
                    }
                    card.reset();
                    Reply::default()
                }
                [0x04] => Reply {
                    data: Some(options.atr.clone()),
                    ..Reply::default()
                },
                [code] => {
                    eprintln!(
                        "[{}] unknown vpcd control code {code:#04x} ignored",
                        options.port
                    );
                    Reply::default()
                }
                apdu => {
                    if options.trace {
                        eprintln!("[{}] >>> {}", options.port, hex::encode_upper(apdu));
                    }
                    let mut reply = card.respond(apdu);
                    if options.trace {
                        let answer = reply
                            .data
                            .as_ref()
                            .map_or_else(|| "(no answer)".to_owned(), hex::encode_upper);
                        eprintln!(
                            "[{}] <<< {answer}{}{}",
                            options.port,
                            if reply.delay.is_zero() {
                                String::new()
                            } else {
                                format!(" after {:?}", reply.delay)
                            },
                            if reply.leave { " (card leaves)" } else { "" }
                        );
                    }
                    if let Some(response) = reply.data.as_mut()
                        && response.len() > usize::from(u16::MAX)
                    {
                        eprintln!(
                            "[{}] response of {} bytes does not fit a vpcd frame (65 535 max); answering 6F 00",
                            options.port,
                            response.len()
                        );
                        *response = vec![0x6F, 0x00];
                    }
                    // No answer (or an empty one) means the card has left.
                    reply.data = reply.data.filter(|r| !r.is_empty());
                    reply.leave |= reply.data.is_none();
                    slot.answered += 1;
                    reply
                }
            }
        };
        // A card silent past the longest frame waiting time is mute: a real reader stops
        // waiting at the limit, so this one does too (see `give_up_on_mute_card`).
        let mute = crate::fault::is_mute(reply.delay);
        if !reply.delay.is_zero() {
            // A slow card: wait without holding the lock, so a removal or stop ends the wait.
            let wait = reply.delay.min(crate::fault::FRAME_WAIT_LIMIT);
            let slot = lock(mutex);
            let (slot, _) = condvar
                .wait_timeout_while(slot, wait, |s| s.card.is_some() && !s.stop)
                .unwrap_or_else(|p| p.into_inner());
            if slot.card.is_none() || slot.stop {
                return Ok(());
            }
        }
        if mute {
            return give_up_on_mute_card(options, &stream);
        }
        if let Some(data) = &reply.data {
            frame.clear();
            frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
            frame.extend_from_slice(data);
            stream.write_all(&frame)?;
        }

        let mut slot = lock(mutex);
        let removed_by_option = options.remove_after.is_some_and(|n| slot.answered >= n);
        if reply.leave || removed_by_option {
            if options.trace {
                eprintln!(
                    "[{}] fault: card removed after {} APDUs",
                    options.port, slot.answered
                );
            }
            slot.card = None;
            disconnect(&mut slot);
            return Ok(());
        }
    }
}

/// What a contactless reader does when the card stays mute past the frame waiting time: the
/// exchange fails for the application, and the reader drops the field and finds the card
/// again, which comes back reset. Behind vpcd nobody gives up on its own, so the reader side
/// does it, in the one way Debian's vpcd (3.3) turns into a failed transmit: a frame header
/// that announces an answer, then a TCP reset instead of the answer. vpcd's receive of the
/// answer then fails, the driver returns `IFD_COMMUNICATION_ERROR` and the application's
/// `SCardTransmit` fails with `SCARD_E_NOT_TRANSACTED` (a clean close, or a reset before
/// any header, is reported by that vpcd as a *successful* exchange of zero bytes). vpcd
/// ejects the card, so the application's next transmit on its handle gets
/// `SCARD_W_REMOVED_CARD`; the serve loop puts the same card back after one empty presence
/// poll, reset as after a field loss, and `SCardReconnect` or a new connection reads it.
fn give_up_on_mute_card(options: &ReaderOptions, stream: &TcpStream) -> io::Result<()> {
    if options.trace {
        eprintln!(
            "[{}] card mute past the frame waiting time ({:?}): the reader gives up",
            options.port,
            crate::fault::FRAME_WAIT_LIMIT
        );
    }
    let _ = (&*stream).write_all(&2u16.to_be_bytes());
    // Let vpcd take the header before the reset arrives (a reset can overtake unread data).
    std::thread::sleep(Duration::from_millis(5));
    let abort = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `stream` owns a valid, open socket descriptor for the duration of the call;
    // `abort` is a live `linger` and the length passed is exactly its size, so the kernel
    // reads only initialised memory we own. With a zero linger time the last close of the
    // socket (this stream and the slot's clone, both dropped by the caller) sends a reset.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&abort as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    Ok(())
}
