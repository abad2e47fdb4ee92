//! The reader slot: a thread per reader that connects to vpcd whenever a card is in it,
//! serves the card's frames (see the `frame` module) and lets a card be inserted or removed
//! from outside while it runs.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::card::{VirtualCard, presented_atr};
use super::frame::exchange_frames;
use super::lock::{Cancelled, lock_reader};
use super::probe::{EMPTY_POLL, absent_for, note_card_gone, vpcd_still_holds_a_card};
use super::{Endpoint, Link, ReaderOptions, reader_name};

/// A reader slot's state, shared by the reader thread and whoever inserts or removes cards.
pub(super) struct Slot {
    pub(super) card: Option<Box<dyn VirtualCard>>,
    /// A handle on the live connection, so that removal can close it from outside.
    pub(super) socket: Option<TcpStream>,
    /// The current (or last) connection's addresses.
    pub(super) link: Option<Link>,
    /// APDUs answered since the card was inserted.
    pub(super) answered: usize,
    /// vpcd has spoken on the current connection: pcscd knows this card now (and not a
    /// card that an earlier connection left behind).
    pub(super) attached: bool,
    /// vpcd powered the card up (or reset it) on the current connection: the PC/SC
    /// service has taken the card in (pcscd powers a card up when it arrives).
    pub(super) powered: bool,
    /// The reader thread is between taking a C-APDU and sending its answer (the card may
    /// be waiting out a delay): the card must not be swapped now.
    pub(super) in_exchange: bool,
    pub(super) stop: bool,
}

/// A vpcd reader slot with a card that can be inserted and removed while it runs.
pub struct VirtualReader {
    /// Held while this reader serves its slot: two processes never serve one reader.
    _port_lock: Option<std::fs::File>,
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    endpoint: Endpoint,
    /// The ATR the reader presents (fixed for its lifetime: pcscd caches it).
    atr: Vec<u8>,
}

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
                in_exchange: false,
                stop: false,
            }),
            Condvar::new(),
        ));
        let endpoint = options.endpoint.clone();
        let atr = options.atr.clone();
        let worker = Arc::clone(&shared);
        // Spawning fails only when the OS is out of threads, not on any input: `start` has
        // no error path for it, so that is a panic (at start-up, never mid-session).
        #[allow(clippy::expect_used)]
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-{}", endpoint.port()))
            .spawn(move || serve(&options, &worker))
            .expect("spawn reader thread");
        VirtualReader {
            _port_lock: port_lock,
            atr,
            shared,
            thread: Some(thread),
            endpoint,
        }
    }

    /// The vpcd port of the reader (it names the reader, see [`reader_name`]).
    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }

    /// Where the reader's vpcd is.
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

    /// Swaps `card` in for the card in the reader without taking it out: the vpcd link
    /// stays, so pcscd sees no removal and no insertion, and `card` (reset, as after a
    /// power-up) answers from the next frame on. Returns the card it replaced.
    ///
    /// Refused (`Err` gives `card` back) unless the swap is invisible to pcscd apart from
    /// the new chip's answers: a card must sit in the reader on a live vpcd connection,
    /// pcscd must have spoken on it, no exchange may still be under way after half a second
    /// (a checker killed while its card waited out a delay; a presence poll in flight is
    /// waited for), and `card` must have the ATR the reader presents. The
    /// caller then takes the card out and inserts the new one instead.
    ///
    /// Only for checkers that start afresh with each card: one that waits for an insertion
    /// event sees none.
    pub fn swap(
        &self,
        mut card: Box<dyn VirtualCard>,
    ) -> Result<Option<Box<dyn VirtualCard>>, Box<dyn VirtualCard>> {
        // pcscd polls the card's presence (a GET ATR frame) every 400 ms; a swap that meets
        // such an exchange waits it out instead of falling back to a slow reinsertion.
        let slot = lock(&self.shared.0);
        let (mut slot, _) = self
            .shared
            .1
            .wait_timeout_while(slot, EXCHANGE_SETTLE, |s| s.in_exchange && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        let swappable = slot.card.is_some()
            && slot.socket.is_some()
            && slot.attached
            && !slot.in_exchange
            && !slot.stop
            && slot.card.as_deref().is_some_and(|present| {
                presented_atr(&self.atr, present) == presented_atr(&self.atr, &*card)
            });
        if !swappable {
            return Err(card);
        }
        card.reset();
        slot.answered = 0;
        Ok(slot.card.replace(card))
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
pub(super) fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic elsewhere must not take the reader down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn disconnect(slot: &mut Slot) {
    slot.attached = false;
    slot.in_exchange = false;
    slot.powered = false;
    if let Some(socket) = slot.socket.take() {
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// How long a swap waits for an exchange under way to end. pcscd's presence poll is over
/// in well under a millisecond, but a loaded machine can preempt the reader thread in the
/// middle of one; a card still busy after this is a slow card whose checker has gone, and
/// the swap is refused.
const EXCHANGE_SETTLE: Duration = Duration::from_millis(500);

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
        slot.in_exchange = false;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

    use std::io::{Read, Write};

    use super::*;
    use crate::transport::vpcd::Reply;

    /// A card that answers `90 00` after `delay`.
    struct Slow(Duration);

    impl VirtualCard for Slow {
        fn reset(&mut self) {}
        fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
            vec![0x90, 0x00]
        }
        fn respond(&mut self, _apdu: &[u8]) -> Reply {
            Reply {
                data: Some(vec![0x90, 0x00]),
                delay: self.0,
                leave: false,
            }
        }
    }

    /// A reader whose card takes `delay` per APDU, connected to a vpcd stand-in that has
    /// sent one C-APDU: returns once the reader is in the middle of that exchange.
    fn reader_in_an_exchange(delay: Duration) -> (VirtualReader, TcpStream) {
        let vpcd = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = vpcd.local_addr().unwrap().port();
        let reader = VirtualReader::spawn(
            ReaderOptions::at(Endpoint::local(port)),
            Some(Box::new(Slow(delay))),
        );
        let (mut stream, _) = vpcd.accept().unwrap();
        stream
            .write_all(&[0x00, 0x05, 0x00, 0xA4, 0x04, 0x0C, 0x00])
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lock(&reader.shared.0).in_exchange {
            assert!(Instant::now() < deadline, "the reader never took the APDU");
            std::thread::sleep(Duration::from_millis(1));
        }
        (reader, stream)
    }

    #[test]
    fn a_swap_waits_for_a_short_exchange_under_way() {
        // The CI failure this guards against: pcscd's presence poll in flight made a swap
        // fall back to reinsertion.
        let (reader, mut vpcd) = reader_in_an_exchange(Duration::from_millis(100));
        assert!(reader.swap(Box::new(Slow(Duration::ZERO))).is_ok());
        let mut answer = [0u8; 4];
        vpcd.read_exact(&mut answer).unwrap();
        assert_eq!(answer, [0x00, 0x02, 0x90, 0x00]);
    }

    #[test]
    fn a_swap_behind_a_card_still_busy_is_refused() {
        let (reader, _vpcd) = reader_in_an_exchange(Duration::from_secs(5));
        let asked = Instant::now();
        assert!(reader.swap(Box::new(Slow(Duration::ZERO))).is_err());
        assert!(asked.elapsed() < Duration::from_secs(2));
    }
}
