//! Client of vsmartcard's `vpcd` driver: puts a card into a virtual reader of pcscd.
//!
//! Wire protocol (see `../shared/vpcd.md` §4): one TCP stream per reader slot; by default
//! the card connects to `127.0.0.1:port`, or to a vpcd elsewhere, or waits for a vpcd in
//! reversed mode to connect (see [`Endpoint`]); every message is a 2-byte big-endian length
//! and its bytes.
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
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::card::Card;

pub use super::endpoint::{Endpoint, EndpointError};

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

/// `ip:port` as /proc/net/tcp writes it (IPv4 only: vpcd speaks IPv4).
fn proc_tcp_address(addr: SocketAddr) -> Option<String> {
    match addr.ip() {
        IpAddr::V4(ip) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(ip.octets()),
            addr.port()
        )),
        IpAddr::V6(_) => None,
    }
}

/// True while vpcd still holds a connection to this reader slot (its side ESTABLISHED or
/// CLOSE_WAIT): a card that left has not been noticed yet. pcscd notices on its next
/// presence poll (every 400 ms), closing vpcd's socket and marking the card removed; a card
/// that connects before that is taken for the old one, and pcscd's client-visible state can
/// stay "empty" after a transmit to the vanished card failed. Read from /proc, because a
/// probe connect() would itself look like a card.
///
/// Only a vpcd on this machine shows up there; for one on another host this is always
/// false and [`EMPTY_POLL`] alone keeps the reader empty long enough.
fn vpcd_still_holds_a_card(endpoint: &Endpoint, last_link: Option<Link>) -> bool {
    // vpcd's socket of the old connection. Normal mode: a connection whose local end is
    // the vpcd port we dial; on loopback at any local address, because this machine's
    // vpcd listens on all of them and the card before ours may have come through
    // 127.0.0.1 while we dial 127.0.0.2. Reversed mode: exactly the other end of our last
    // link (a new connection that vpcd has just made waits in our backlog, ESTABLISHED too).
    enum Wanted {
        AnyAddressPort(u16),
        Exact(SocketAddr, Option<SocketAddr>),
    }
    let wanted = match (endpoint, last_link) {
        (Endpoint::Connect { port, .. }, _) if endpoint.is_loopback() => {
            Wanted::AnyAddressPort(*port)
        }
        (Endpoint::Connect { .. }, Some(link)) => Wanted::Exact(link.peer, None),
        (Endpoint::Connect { host, port }, None) => match host.parse() {
            Ok(ip) => Wanted::Exact(SocketAddr::new(ip, *port), None),
            Err(_) => return false,
        },
        (Endpoint::Listen(_), Some(link)) => Wanted::Exact(link.peer, Some(link.local)),
        (Endpoint::Listen(_), None) => return false,
    };
    let (local, remote, port_suffix) = match wanted {
        Wanted::AnyAddressPort(port) => (None, None, Some(format!(":{port:04X}"))),
        Wanted::Exact(local, remote) => match proc_tcp_address(local) {
            Some(local) => (Some(local), remote.and_then(proc_tcp_address), None),
            None => return false,
        },
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3
            && local.as_ref().is_none_or(|l| fields[1] == l)
            && port_suffix
                .as_ref()
                .is_none_or(|p| fields[1].ends_with(p.as_str()))
            && remote.as_ref().is_none_or(|r| fields[2] == r)
            && matches!(fields[3], "01" | "08")
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
    /// The ATR the reader presents for this card (vpcd GET ATR); a `VpcdOptions::atr`
    /// other than [`DEFAULT_ATR`] overrides it.
    fn atr(&self) -> Vec<u8> {
        DEFAULT_ATR.to_vec()
    }
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
    /// Where the vpcd is; its port also names the reader ([`reader_name`]).
    pub endpoint: Endpoint,
    pub atr: Vec<u8>,
    /// Log `>>>` / `<<<` lines for every APDU and control code to stderr.
    pub trace: bool,
    /// Transport fault of the reader: take the card out after it answered this many APDUs
    /// (whatever the card). Faults of a card profile (`remove_after`, `remove_during`)
    /// work through [`VirtualCard::respond`] instead.
    pub remove_after: Option<usize>,
}

impl ReaderOptions {
    /// The reader at `port` of the vpcd on this machine.
    pub fn new(port: u16) -> ReaderOptions {
        ReaderOptions::at(Endpoint::local(port))
    }

    pub fn at(endpoint: Endpoint) -> ReaderOptions {
        ReaderOptions {
            endpoint,
            atr: DEFAULT_ATR.to_vec(),
            trace: false,
            remove_after: None,
        }
    }
}

/// Both ends of a vpcd connection, as this process sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl Link {
    /// True when the vpcd runs on this machine: a loopback peer, or one of this machine's
    /// own addresses (a connection to oneself has the same address at both ends).
    pub fn vpcd_is_local(&self) -> bool {
        self.peer.ip().is_loopback() || self.peer.ip() == self.local.ip()
    }
}

struct Slot {
    card: Option<Box<dyn VirtualCard>>,
    /// A handle on the live connection, so that removal can close it from outside.
    socket: Option<TcpStream>,
    /// The current (or last) connection's addresses.
    link: Option<Link>,
    /// APDUs answered since the card was inserted.
    answered: usize,
    /// vpcd has spoken on the current connection: pcscd knows this card now (and not a
    /// card that an earlier connection left behind).
    attached: bool,
    /// vpcd powered the card up (or reset it) on the current connection: the PC/SC
    /// service has taken the card in (pcscd powers a card up when it arrives).
    powered: bool,
    stop: bool,
}

/// A vpcd reader slot with a card that can be inserted and removed while it runs.
pub struct VirtualReader {
    /// Held while this reader serves its slot: two processes never serve one reader.
    _port_lock: Option<std::fs::File>,
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    endpoint: Endpoint,
}

/// [`VirtualReader::spawn_until`] gave up waiting for the reader's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl VirtualReader {
    /// Starts serving the reader; connects (and reconnects) whenever a card is inserted.
    ///
    /// Only one card can sit in a reader: if another process (an `rclab serve`, another
    /// test binary) serves it, this waits until it lets go, saying so on stderr.
    pub fn spawn(options: ReaderOptions, card: Option<Box<dyn VirtualCard>>) -> VirtualReader {
        let port_lock = match lock_reader(&options.endpoint, None) {
            Ok(lock) | Err((Cancelled, lock)) => lock,
        };
        VirtualReader::start(options, card, port_lock)
    }

    /// Like [`VirtualReader::spawn`], but gives up waiting for another process's lock on
    /// the reader as soon as `cancel` is set (a signal handler's flag).
    pub fn spawn_until(
        options: ReaderOptions,
        card: Option<Box<dyn VirtualCard>>,
        cancel: &AtomicBool,
    ) -> Result<VirtualReader, Cancelled> {
        let port_lock = lock_reader(&options.endpoint, Some(cancel)).map_err(|(c, _)| c)?;
        Ok(VirtualReader::start(options, card, port_lock))
    }

    fn start(
        options: ReaderOptions,
        card: Option<Box<dyn VirtualCard>>,
        port_lock: Option<std::fs::File>,
    ) -> VirtualReader {
        let shared = Arc::new((
            Mutex::new(Slot {
                card,
                socket: None,
                link: None,
                answered: 0,
                attached: false,
                powered: false,
                stop: false,
            }),
            Condvar::new(),
        ));
        let endpoint = options.endpoint.clone();
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-{}", endpoint.port()))
            .spawn(move || serve(&options, &worker))
            .expect("spawn reader thread");
        VirtualReader {
            _port_lock: port_lock,
            shared,
            thread: Some(thread),
            endpoint,
        }
    }

    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The reader's PC/SC name on a pcscd set up by `scripts/pcsc-up` (see [`reader_name`]).
    pub fn name(&self) -> String {
        reader_name(self.port())
    }

    /// Addresses of the current (or last) connection to the vpcd; `None` before the first.
    pub fn link(&self) -> Option<Link> {
        lock(&self.shared.0).link
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

    /// Waits until vpcd has powered the current card up (or reset it): the sign, seen from
    /// the card's side, that the PC/SC service behind the vpcd has taken the card in. What
    /// a runner waits for when it cannot ask that PC/SC service (a vpcd on another
    /// machine); false after `timeout`.
    pub fn wait_powered(&self, timeout: Duration) -> bool {
        let slot = lock(&self.shared.0);
        let (slot, _) = self
            .shared
            .1
            .wait_timeout_while(slot, timeout, |s| !s.powered && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        slot.powered
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

/// The lock file of a reader slot, shared by every rclab process on this machine.
fn lock_file(name: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(name))
}

/// Takes the reader's lock, waiting while another process holds it (until `cancel` is
/// set); `Ok(None)` when the lock file cannot be used at all (then nothing is protected,
/// but serving still works).
///
/// The wait polls instead of blocking in `flock`, so that a signal handler's flag ends it.
#[allow(clippy::type_complexity)]
fn lock_reader(
    endpoint: &Endpoint,
    cancel: Option<&AtomicBool>,
) -> Result<Option<std::fs::File>, (Cancelled, Option<std::fs::File>)> {
    let Ok(file) = lock_file(&endpoint.lock_name()) else {
        return Ok(None);
    };
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !said {
                    eprintln!(
                        "[{}] another rclab process serves this reader ({endpoint}); waiting for it to let go",
                        endpoint.port()
                    );
                    said = true;
                }
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err((Cancelled, None));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(_)) => return Ok(None),
        }
    }
}

/// True when another process serves `port` of this machine's vpcd right now.
pub fn port_busy(port: u16) -> bool {
    lock_file(&Endpoint::local(port).lock_name())
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic elsewhere must not take the reader down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn disconnect(slot: &mut Slot) {
    slot.attached = false;
    slot.powered = false;
    if let Some(socket) = slot.socket.take() {
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// How long the vpcd may stay unreachable before the reader says so on stderr: long
/// enough to ride out a pcscd restart quietly, short enough for a user to see at once why
/// nothing happens.
const QUIET_OUTAGE: Duration = Duration::from_secs(1);

/// How long one connection attempt to a vpcd may take (a host that drops packets would
/// otherwise hold the reader for minutes, unable to stop).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Tracks a stretch of time without a vpcd connection and says so once.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    reported: bool,
}

impl Outage {
    fn failed(&mut self, endpoint: &Endpoint, why: &str) {
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.reported || since.elapsed() < QUIET_OUTAGE {
            return;
        }
        self.reported = true;
        let port = endpoint.port();
        match endpoint {
            Endpoint::Connect { .. } if endpoint.is_loopback() => eprintln!(
                "[{port}] no vpcd at {endpoint} ({why}): start pcscd with vsmartcard's vpcd \
                 (`sudo scripts/pcsc-up`); still retrying"
            ),
            Endpoint::Connect { .. } => eprintln!(
                "[{port}] no vpcd at {endpoint} ({why}): is vsmartcard's vpcd installed there, \
                 its smart-card service running and port {port} open in its firewall? still retrying"
            ),
            Endpoint::Listen(addr) => eprintln!(
                "[{port}] no vpcd has connected to {addr} yet ({why}): its reader.conf needs \
                 DEVICENAME {}:0x{port:X} (reversed mode; `sudo scripts/pcsc-up` sets up \
                 \"Virtual PCD R\" for 127.0.0.2:35997); still waiting",
                addr.ip()
            ),
        }
    }

    fn ended(&mut self, endpoint: &Endpoint) {
        if self.reported {
            eprintln!("[{}] vpcd reached at {endpoint}", endpoint.port());
        }
        *self = Outage::default();
    }
}

/// Connects to the vpcd of `endpoint` (normal mode).
fn dial(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The reader thread: wait for a card, connect, serve until removal or disconnection, repeat.
fn serve(options: &ReaderOptions, shared: &(Mutex<Slot>, Condvar)) {
    let (mutex, condvar) = shared;
    let endpoint = &options.endpoint;
    let port = endpoint.port();
    // Reversed mode: listening while a card is in the reader, closed while it is empty (a
    // vpcd that finds nothing listening sees an empty reader).
    let mut listener: Option<TcpListener> = None;
    let mut outage = Outage::default();
    let mut last_link: Option<Link> = None;
    loop {
        // Wait until there is a card to serve (or we are told to stop).
        {
            let mut slot = lock(mutex);
            if slot.card.is_none() {
                listener = None;
                outage = Outage::default();
            }
            while slot.card.is_none() && !slot.stop {
                slot = condvar.wait(slot).unwrap_or_else(|p| p.into_inner());
            }
            if slot.stop {
                return;
            }
        }
        if vpcd_still_holds_a_card(endpoint, last_link) {
            note_card_gone(port);
            let slot = lock(mutex);
            let _ = condvar.wait_timeout(slot, Duration::from_millis(50));
            continue;
        }
        let absent = absent_for(port);
        if absent < EMPTY_POLL {
            let slot = lock(mutex);
            let _ = condvar.wait_timeout(slot, EMPTY_POLL - absent);
            continue;
        }
        let connected = match endpoint {
            Endpoint::Connect { host, port } => dial(host, *port).map_err(|e| (e, 200)),
            Endpoint::Listen(addr) => accept(&mut listener, *addr),
        };
        let stream = match connected {
            Ok(s) => s,
            Err((e, retry_ms)) => {
                outage.failed(endpoint, &e.to_string());
                if options.trace && e.kind() != io::ErrorKind::WouldBlock {
                    eprintln!("[{port}] vpcd not reachable ({e}); retrying");
                }
                // pcscd down or restarting: retry, but wake at once on stop/removal.
                let slot = lock(mutex);
                let _ = condvar.wait_timeout(slot, Duration::from_millis(retry_ms));
                continue;
            }
        };
        outage.ended(endpoint);
        let _ = stream.set_nodelay(true);
        let link = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(local), Ok(peer)) => Some(Link { local, peer }),
            _ => None,
        };
        last_link = link.or(last_link);
        {
            let mut slot = lock(mutex);
            if slot.stop || slot.card.is_none() {
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            slot.socket = stream.try_clone().ok();
            slot.link = last_link;
            if let Some(card) = slot.card.as_mut() {
                card.reset();
            }
        }
        if options.trace {
            eprintln!(
                "[{port}] connected to vpcd at {endpoint} as {}",
                reader_name(port)
            );
        }
        let result = exchange_frames(options, stream, shared);
        note_card_gone(port);
        let mut slot = lock(mutex);
        slot.socket = None;
        slot.attached = false;
        slot.powered = false;
        if options.trace {
            eprintln!(
                "[{port}] disconnected: {}",
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

/// Reversed mode: listens at `addr` (if not yet) and takes a waiting vpcd connection.
/// Fails with "would block" when none is there yet (retry in 50 ms: vpcd dials at every
/// presence poll, about every 400 ms).
fn accept(
    listener: &mut Option<TcpListener>,
    addr: SocketAddr,
) -> Result<TcpStream, (io::Error, u64)> {
    if listener.is_none() {
        let bound = TcpListener::bind(addr).map_err(|e| (e, 200))?;
        bound.set_nonblocking(true).map_err(|e| (e, 200))?;
        *listener = Some(bound);
    }
    let Some(bound) = listener.as_ref() else {
        return Err((io::Error::other("no listener"), 200));
    };
    match bound.accept() {
        Ok((stream, _)) => {
            stream.set_nonblocking(false).map_err(|e| (e, 50))?;
            Ok(stream)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err((
            io::Error::new(io::ErrorKind::WouldBlock, "nothing connected"),
            50,
        )),
        Err(e) => {
            *listener = None;
            Err((e, 200))
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
            if matches!(message.as_slice(), [0x01] | [0x02]) && !slot.powered {
                slot.powered = true;
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
                        eprintln!("[{}] --- {what}", options.endpoint.port());
                    }
                    card.reset();
                    Reply::default()
                }
                [0x04] => Reply {
                    data: Some(if options.atr[..] == DEFAULT_ATR {
                        card.atr()
                    } else {
                        options.atr.clone()
                    }),
                    ..Reply::default()
                },
                [code] => {
                    eprintln!(
                        "[{}] unknown vpcd control code {code:#04x} ignored",
                        options.endpoint.port()
                    );
                    Reply::default()
                }
                apdu => {
                    if options.trace {
                        eprintln!(
                            "[{}] >>> {}",
                            options.endpoint.port(),
                            hex::encode_upper(apdu)
                        );
                    }
                    let mut reply = card.respond(apdu);
                    if options.trace {
                        let answer = reply
                            .data
                            .as_ref()
                            .map_or_else(|| "(no answer)".to_owned(), hex::encode_upper);
                        eprintln!(
                            "[{}] <<< {answer}{}{}",
                            options.endpoint.port(),
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
                            options.endpoint.port(),
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
                    options.endpoint.port(),
                    slot.answered
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
            options.endpoint.port(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(local: &str, peer: &str) -> Link {
        Link {
            local: local.parse().unwrap(),
            peer: peer.parse().unwrap(),
        }
    }

    #[test]
    fn a_vpcd_is_local_on_loopback_or_on_one_of_our_own_addresses() {
        assert!(link("127.0.0.1:50000", "127.0.0.2:35963").vpcd_is_local());
        assert!(link("192.0.2.7:50000", "192.0.2.7:35963").vpcd_is_local());
        assert!(!link("192.0.2.7:50000", "192.0.2.8:35963").vpcd_is_local());
    }

    #[test]
    fn proc_net_tcp_addresses_are_little_endian_hex() {
        assert_eq!(
            proc_tcp_address("127.0.0.2:35997".parse().unwrap()).as_deref(),
            Some("0200007F:8C9D")
        );
        assert_eq!(proc_tcp_address("[::1]:1".parse().unwrap()), None);
    }

    #[test]
    fn the_reversed_reader_of_the_readme_is_named_r() {
        assert_eq!(reader_name(35997), "Virtual PCD R 00 00");
        assert_eq!(reader_name(35998), "Virtual PCD R 00 01");
    }
}
