//! What this machine's /proc/net/tcp says about vpcd's sockets: which reader slots listen,
//! and whether vpcd still holds the connection of a card that left. Read from /proc,
//! because a probe connect() would itself look like a card to vpcd.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Endpoint, Link};

/// How long a reader stays empty between two cards: one pcscd presence poll (every 400 ms)
/// must find it empty. Otherwise pcscd can take the new card for the old one: when a
/// checker's power-down of a vanished card failed, pcscd shows the reader empty and, seeing
/// no change at its next poll, never powers the new card on.
pub(super) const EMPTY_POLL: Duration = Duration::from_millis(600);

/// When each port was last seen without our card (this process's view).
static CARD_GONE: Mutex<Vec<(u16, Instant)>> = Mutex::new(Vec::new());

pub(super) fn note_card_gone(port: u16) {
    let mut gone = CARD_GONE.lock().unwrap_or_else(|p| p.into_inner());
    gone.retain(|(p, _)| *p != port);
    gone.push((port, Instant::now()));
}

/// How long `port` has been without a card, as far as this process knows (a port it never
/// served counts as empty for long).
pub(super) fn absent_for(port: u16) -> Duration {
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
pub(super) fn vpcd_still_holds_a_card(endpoint: &Endpoint, last_link: Option<Link>) -> bool {
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
    tcp_rows(&table).any(|row| {
        local.as_ref().is_none_or(|l| row.local == l)
            && port_suffix
                .as_ref()
                .is_none_or(|p| row.local.ends_with(p.as_str()))
            && remote.as_ref().is_none_or(|r| row.remote == r)
            && matches!(row.state, ESTABLISHED | CLOSE_WAIT)
    })
}

/// TCP socket states as /proc/net/tcp writes them (include/net/tcp_states.h).
const ESTABLISHED: &str = "01";
const CLOSE_WAIT: &str = "08";
const LISTEN: &str = "0A";

/// One row of /proc/net/tcp: local and remote address (`AABBCCDD:PPPP`) and state.
struct TcpRow<'a> {
    local: &'a str,
    remote: &'a str,
    state: &'a str,
}

/// The rows of this machine's IPv4 TCP table; none when it cannot be read (not Linux).
fn tcp_rows(table: &str) -> impl Iterator<Item = TcpRow<'_>> {
    table.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        Some(TcpRow {
            local: fields.next()?,
            remote: fields.next()?,
            state: fields.next()?,
        })
    })
}

/// The ports among `ports` that some socket of this machine listens on (IPv4), read from
/// /proc/net/tcp; empty when it cannot be read.
pub fn listening_ports(ports: impl IntoIterator<Item = u16>) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let listening: Vec<&str> = tcp_rows(&table)
        .filter(|row| row.state == LISTEN && row.remote == "00000000:0000")
        .map(|row| row.local)
        .collect();
    ports
        .into_iter()
        .filter(|port| {
            let suffix = format!(":{port:04X}");
            listening.iter().any(|local| local.ends_with(&suffix))
        })
        .collect()
}

/// True when a socket of this machine listens on exactly `addr` (IPv4; an IPv6 address is
/// never found).
pub fn listens_on(addr: SocketAddr) -> bool {
    let Some(local) = proc_tcp_address(addr) else {
        return false;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    tcp_rows(&table).any(|row| row.local == local && row.state == LISTEN)
}

/// The ports among `ports` on which vpcd holds a card's connection right now (its side
/// ESTABLISHED or CLOSE_WAIT): readers someone else is using.
pub fn ports_holding_a_card(ports: impl IntoIterator<Item = u16>) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    ports
        .into_iter()
        .filter(|port| {
            let suffix = format!(":{port:04X}");
            tcp_rows(&table).any(|row| {
                row.local.ends_with(&suffix) && matches!(row.state, ESTABLISHED | CLOSE_WAIT)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_addresses_are_little_endian_hex() {
        assert_eq!(
            proc_tcp_address("127.0.0.2:35997".parse().unwrap()).as_deref(),
            Some("0200007F:8C9D")
        );
        assert_eq!(proc_tcp_address("[::1]:1".parse().unwrap()), None);
    }

    #[test]
    fn rows_of_the_tcp_table_are_parsed_and_short_lines_skipped() {
        let table = "  sl  local_address rem_address   st\n   0: 00000000:8C7B 00000000:0000 0A 0\n   1: short\n";
        let rows: Vec<(&str, &str, &str)> = tcp_rows(table)
            .map(|r| (r.local, r.remote, r.state))
            .collect();
        assert_eq!(rows, [("00000000:8C7B", "00000000:0000", LISTEN)]);
    }
}
