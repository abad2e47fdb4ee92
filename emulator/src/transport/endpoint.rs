//! Where a virtual reader's vpcd is, and which side dials.
//!
//! vsmartcard's vpcd (the reader driver inside pcscd, or the Windows/macOS vpcd) has two
//! modes, chosen by the reader's `DEVICENAME` in its reader.conf:
//!
//! - `/dev/null:PORT` (the default): vpcd **listens** on `PORT` and on `PORT + 1` for its
//!   second slot, on every interface; the card connects to it ([`Endpoint::Connect`]).
//! - `HOST:PORT` (reversed mode): vpcd **connects out** to `HOST:PORT` (and `PORT + 1`) at
//!   every presence poll (about every 400 ms) until a card answers there; the card listens
//!   ([`Endpoint::Listen`]).
//!
//! Either way the wire protocol is the same once the TCP stream exists (see `vpcd.rs`).
//! The protocol has no authentication and no encryption: anything that can reach the port
//! can put a card in the reader, or read the card.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use thiserror::Error;

use super::vpcd::BASE_PORT;

/// Most readers one flag value can name: pcsc-lite serves at most 16 readers.
pub const MAX_READERS_PER_FLAG: usize = 16;

/// How the card and a vpcd reader slot find each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The card connects to a vpcd listening at `host:port` (vsmartcard's normal mode).
    Connect {
        /// Host name or IP address of the vpcd.
        host: String,
        /// The vpcd slot's port (35963 and up for the first readers).
        port: u16,
    },
    /// The card listens at this address and a vpcd in reversed mode connects to it.
    Listen(SocketAddr),
}

/// A `--vpcd` or `--listen` value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EndpointError {
    /// `host:port` with nothing before the colon.
    #[error("{0:?}: empty host")]
    EmptyHost(String),
    #[error("{text:?}: {part:?} is not a port number (1–65535)")]
    /// A port that is not a number from 1 to 65535.
    BadPort {
        /// The whole flag value.
        text: String,
        /// The part that is not a port.
        part: String,
    },
    /// A port range whose end is below its start.
    #[error("{0:?}: the last port of a range must not be below the first")]
    BackwardsRange(String),
    #[error("{text:?}: {count} readers; at most {MAX_READERS_PER_FLAG} per value (pcscd's limit)")]
    /// More readers in one value than pcscd serves per vpcd.
    TooManyReaders {
        /// The whole flag value.
        text: String,
        /// How many readers it names.
        count: usize,
    },
    #[error(
        "{0:?}: needs ADDR:PORT with ADDR an IP address (e.g. 127.0.0.2:35997 or 0.0.0.0:35997)"
    )]
    /// A `--listen` value that is not an IP address and a port.
    BadListenAddress(String),
    /// An IPv6 address whose `[` is never closed.
    #[error("{0:?}: unclosed [ in an IPv6 address")]
    UnclosedBracket(String),
}

impl Endpoint {
    /// The reader at `port` of the vpcd on this machine (the default, loopback only).
    pub fn local(port: u16) -> Endpoint {
        Endpoint::Connect {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port,
        }
    }

    /// The vpcd port this reader slot uses: it also names the reader (see
    /// [`super::vpcd::reader_name`]).
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Connect { port, .. } => *port,
            Endpoint::Listen(addr) => addr.port(),
        }
    }

    /// `HOST[:PORT[-LAST]]` (a `--vpcd` value): one reader per port, `PORT` defaulting to
    /// 35963. An IPv6 host goes in brackets: `[::1]:35963`.
    pub fn parse_vpcd(text: &str) -> Result<Vec<Endpoint>, EndpointError> {
        let (host, ports) = split_host(text)?;
        if host.is_empty() {
            return Err(EndpointError::EmptyHost(text.to_owned()));
        }
        let ports = match ports {
            Some(range) => parse_range(text, range)?,
            None => vec![BASE_PORT],
        };
        Ok(ports
            .into_iter()
            .map(|port| Endpoint::Connect {
                host: host.to_owned(),
                port,
            })
            .collect())
    }

    /// `ADDR:PORT[-LAST]` (a `--listen` value): one reader per port; `ADDR` is an IP
    /// address of this machine, or `0.0.0.0` for every interface.
    pub fn parse_listen(text: &str) -> Result<Vec<Endpoint>, EndpointError> {
        let (host, ports) = split_host(text)?;
        let (Ok(ip), Some(range)) = (host.parse::<IpAddr>(), ports) else {
            return Err(EndpointError::BadListenAddress(text.to_owned()));
        };
        Ok(parse_range(text, range)?
            .into_iter()
            .map(|port| Endpoint::Listen(SocketAddr::new(ip, port)))
            .collect())
    }

    /// True when the address is on this machine's loopback (the default set-up).
    pub fn is_loopback(&self) -> bool {
        match self {
            Endpoint::Connect { host, .. } => {
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            Endpoint::Listen(addr) => addr.ip().is_loopback(),
        }
    }

    /// Name of the cross-process lock file of this reader slot. A vpcd on this machine's
    /// loopback is one reader whatever loopback address reaches it (vpcd listens on every
    /// interface), so it shares the plain per-port lock of the default set-up.
    pub(crate) fn lock_name(&self) -> String {
        match self {
            Endpoint::Connect { port, .. } if self.is_loopback() => {
                format!("rclab-vpcd-{port}.lock")
            }
            Endpoint::Connect { host, port } => {
                let host: String = host
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                format!("rclab-vpcd-{host}-{port}.lock")
            }
            Endpoint::Listen(addr) => format!("rclab-vpcd-listen-{}.lock", addr.port()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Connect { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Connect { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Listen(addr) => write!(f, "{addr} (listening)"),
        }
    }
}

/// Splits `host[:ports]`, with `[v6]` brackets.
fn split_host(text: &str) -> Result<(&str, Option<&str>), EndpointError> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| EndpointError::UnclosedBracket(text.to_owned()))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(ports) => Ok((host, Some(ports))),
                None => Err(EndpointError::BadPort {
                    text: text.to_owned(),
                    part: after.to_owned(),
                }),
            },
        };
    }
    Ok(match text.rsplit_once(':') {
        // A bare IPv6 address (several colons, no brackets) has no port.
        Some((host, _)) if host.contains(':') => (text, None),
        Some((host, ports)) => (host, Some(ports)),
        None => (text, None),
    })
}

fn parse_port(text: &str, part: &str) -> Result<u16, EndpointError> {
    match part.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(EndpointError::BadPort {
            text: text.to_owned(),
            part: part.to_owned(),
        }),
    }
}

/// `PORT` or `FIRST-LAST`.
fn parse_range(text: &str, range: &str) -> Result<Vec<u16>, EndpointError> {
    let (first, last) = match range.split_once('-') {
        Some((first, last)) => (parse_port(text, first)?, parse_port(text, last)?),
        None => {
            let port = parse_port(text, range)?;
            (port, port)
        }
    };
    if last < first {
        return Err(EndpointError::BackwardsRange(text.to_owned()));
    }
    let count = usize::from(last - first) + 1;
    if count > MAX_READERS_PER_FLAG {
        return Err(EndpointError::TooManyReaders {
            text: text.to_owned(),
            count,
        });
    }
    Ok((first..=last).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(host: &str, port: u16) -> Endpoint {
        Endpoint::Connect {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn vpcd_values() {
        assert_eq!(
            Endpoint::parse_vpcd("10.0.0.5"),
            Ok(vec![connect("10.0.0.5", 35963)])
        );
        assert_eq!(
            Endpoint::parse_vpcd("win-pc:35963-35965"),
            Ok(vec![
                connect("win-pc", 35963),
                connect("win-pc", 35964),
                connect("win-pc", 35965)
            ])
        );
        assert_eq!(
            Endpoint::parse_vpcd("[::1]:40000"),
            Ok(vec![connect("::1", 40000)])
        );
        assert_eq!(Endpoint::parse_vpcd("::1"), Ok(vec![connect("::1", 35963)]));
        assert_eq!(connect("::1", 1).to_string(), "[::1]:1");
    }

    #[test]
    fn bad_vpcd_values_are_named() {
        for (text, want) in [
            (":35963", "empty host"),
            ("host:0", "not a port"),
            ("host:70000", "not a port"),
            ("host:x", "not a port"),
            ("host:35965-35963", "must not be below"),
            ("host:1-100", "at most 16"),
            ("[::1", "unclosed"),
            ("[::1]x", "not a port"),
        ] {
            let error = Endpoint::parse_vpcd(text).unwrap_err().to_string();
            assert!(error.contains(want), "{text}: {error}");
            assert!(error.contains(text), "{text}: {error}");
        }
    }

    #[test]
    fn listen_values() {
        assert_eq!(
            Endpoint::parse_listen("127.0.0.2:35997-35998"),
            Ok(vec![
                Endpoint::Listen("127.0.0.2:35997".parse().unwrap()),
                Endpoint::Listen("127.0.0.2:35998".parse().unwrap())
            ])
        );
        for bad in ["35997", "localhost:35997", "127.0.0.2", "127.0.0.2:0"] {
            assert!(Endpoint::parse_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_vpcds_share_the_plain_port_lock() {
        assert_eq!(
            connect("127.0.0.2", 35963).lock_name(),
            Endpoint::local(35963).lock_name()
        );
        assert_ne!(
            connect("10.0.0.5", 35963).lock_name(),
            Endpoint::local(35963).lock_name()
        );
        assert!(connect("localhost", 1).is_loopback());
        assert!(!connect("example.org", 1).is_loopback());
    }
}
