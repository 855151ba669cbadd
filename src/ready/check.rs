//! `--ready KIND`: what "ready" means, parsed where it enters, and the
//! connect probes for `tcp:` and `unix:`, which never block the pump.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, UnixAddr, connect, socket};

/// How detach learns that the command is ready.
#[derive(Clone, Debug)]
pub enum Check {
    /// `notify`: `READY=1` on a NOTIFY_SOCKET of detach's own.
    Notify,
    /// `line:REGEX`: a line of its output matches.
    Line(regex_lite::Regex),
    /// `tcp:[HOST:]PORT`: a TCP connect succeeds.
    Tcp(SocketAddr),
    /// `unix:PATH`: a stream connect to the socket succeeds.
    Unix(PathBuf),
}

impl FromStr for Check {
    type Err = String;

    fn from_str(s: &str) -> Result<Check, String> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "notify" if arg.is_empty() => Ok(Check::Notify),
            "line" if !arg.is_empty() => {
                regex_lite::Regex::new(arg).map(Check::Line).map_err(|e| format!("bad regex '{arg}': {e}"))
            }
            "tcp" => parse_tcp(arg).map(Check::Tcp),
            "unix" if !arg.is_empty() => Ok(Check::Unix(PathBuf::from(arg))),
            _ => Err(format!("'{s}' is not notify, line:REGEX, tcp:[HOST:]PORT or unix:PATH")),
        }
    }
}

/// `8080`, `127.0.0.1:8080`, `[::1]:8080`; a host is an address, not a name:
/// a name lookup could block the pump.
fn parse_tcp(arg: &str) -> Result<SocketAddr, String> {
    let bad = || format!("'tcp:{arg}' is not tcp:[HOST:]PORT with HOST an IP address (IPv6 in brackets)");
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad);
    match arg.rsplit_once(':') {
        None => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port(arg)?)),
        Some((host, p)) => {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            let ip = host.parse::<IpAddr>().map_err(|_| bad())?;
            Ok(SocketAddr::new(ip, port(p)?))
        }
    }
}

/// Polls a `tcp:` or `unix:` address with non-blocking connects, at an
/// interval that starts short and grows (10 ms doubling to 250 ms): a
/// service that is slow to start costs at most four connects a second.
pub struct Probe {
    interval: Duration,
    next: Instant,
    /// A TCP connect still in progress, from the last attempt.
    pending: Option<OwnedFd>,
}

const FIRST_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_millis(250);

impl Probe {
    pub fn new(now: Instant) -> Probe {
        Probe { interval: FIRST_INTERVAL, next: now, pending: None }
    }

    pub fn next_at(&self) -> Instant {
        self.next
    }

    /// Tries once if due: true when a connect succeeded.
    pub fn try_connect(&mut self, check: &Check, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.interval;
        self.interval = (self.interval * 2).min(MAX_INTERVAL);
        if let Some(fd) = self.pending.take() {
            match connected(&fd) {
                Some(true) => return true,
                Some(false) => {} // refused: try again now
                None => {
                    self.pending = Some(fd); // still connecting
                    return false;
                }
            }
        }
        match start_connect(check) {
            Ok(None) => true,
            Ok(Some(fd)) => {
                self.pending = Some(fd);
                false
            }
            Err(_) => false,
        }
    }
}

/// A non-blocking connect: `None` once connected, the socket while in
/// progress, an error when refused (not listening yet).
fn start_connect(check: &Check) -> io::Result<Option<OwnedFd>> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let (fd, result) = match check {
        Check::Tcp(addr) => {
            let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
            let fd = socket(family, SockType::Stream, flags, None)?;
            let result = connect(fd.as_raw_fd(), &SockaddrStorage::from(*addr));
            (fd, result)
        }
        Check::Unix(path) => {
            let fd = socket(AddressFamily::Unix, SockType::Stream, flags, None)?;
            let result = connect(fd.as_raw_fd(), &UnixAddr::new(path.as_path())?);
            (fd, result)
        }
        _ => return Err(io::ErrorKind::Unsupported.into()),
    };
    match result {
        Ok(()) => Ok(None),
        Err(nix::errno::Errno::EINPROGRESS) => Ok(Some(fd)),
        Err(e) => Err(e.into()),
    }
}

/// A connect in progress: done (`Some(true)`), failed, or not yet (`None`).
fn connected(fd: &OwnedFd) -> Option<bool> {
    use nix::sys::socket::{getpeername, getsockopt, sockopt::SocketError};
    match getsockopt(fd, SocketError) {
        Ok(0) if getpeername::<SockaddrStorage>(fd.as_raw_fd()).is_ok() => Some(true),
        Ok(0) => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_bad_ones_say_why() {
        assert!(matches!("notify".parse::<Check>(), Ok(Check::Notify)));
        assert!(matches!("line:^listening on".parse::<Check>(), Ok(Check::Line(_))));
        let tcp = |s: &str| match s.parse::<Check>() {
            Ok(Check::Tcp(a)) => a.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(tcp("tcp:8080"), "127.0.0.1:8080");
        assert_eq!(tcp("tcp:10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(tcp("tcp:[::1]:80"), "[::1]:80");
        for bad in ["", "notify:x", "line:", "line:(", "tcp:", "tcp:0", "tcp:70000", "tcp:host:80", "unix:", "http:1"] {
            assert!(bad.parse::<Check>().is_err(), "{bad}");
        }
    }
}
