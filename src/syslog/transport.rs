//! Syslog transports: a local datagram socket, UDP and TCP to a collector,
//! each non-blocking in the supervisor's poll loop, with its own backlog,
//! reconnects with a backoff, and failures said once a minute at most.

use std::io::{self, IoSlice, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Instant;

use super::format::{Formatter, Kind, OWN_TAG, Stamp};
use crate::backlog::Backlog;

/// How long a TCP connect may take before it is given up and tried again.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The same failure is said again after this long.
const WARN_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);
/// Messages per writev(2) on TCP.
const BATCH: usize = 64;

pub(super) enum Conn {
    Down,
    Local(UnixDatagram),
    Udp(UdpSocket),
    /// Connected, or connecting until the instant `connecting` says.
    Tcp {
        stream: TcpStream,
        connecting: Option<Instant>,
    },
}

/// One place messages go, with its own backlog: a collector that is down
/// holds nothing up for the others.
pub(super) struct Destination {
    pub(super) kind: Kind,
    pub(super) path: PathBuf,
    pub(super) addr: Option<SocketAddr>,
    pub(super) name: String,
    pub(super) conn: Conn,
    pub(super) backlog: Backlog,
    /// A write would block: wait for POLLOUT rather than a timer.
    pub(super) blocked: bool,
    /// The failure last said, and when: each kind is said once a minute at
    /// most, even when a collector flaps.
    pub(super) said: Option<(String, Instant)>,
    /// Failures to say in the log file.
    pub(super) warnings: Vec<String>,
}

impl Destination {
    pub(super) fn connect(&mut self) -> io::Result<()> {
        self.conn = match self.kind {
            Kind::Local => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(&self.path)?;
                sock.set_nonblocking(true)?;
                Conn::Local(sock)
            }
            Kind::Udp => {
                let addr = self.addr.expect("a resolved address");
                let any: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let sock = UdpSocket::bind(any)?;
                sock.connect(addr)?;
                sock.set_nonblocking(true)?;
                Conn::Udp(sock)
            }
            Kind::Tcp => {
                let (stream, connecting) = tcp_connect(self.addr.expect("a resolved address"))?;
                Conn::Tcp { stream, connecting: connecting.then(|| Instant::now() + CONNECT_TIMEOUT) }
            }
        };
        self.blocked = false;
        Ok(())
    }

    pub(super) fn fd(&self) -> Option<RawFd> {
        match &self.conn {
            Conn::Down => None,
            Conn::Local(s) => Some(s.as_raw_fd()),
            Conn::Udp(s) => Some(s.as_raw_fd()),
            Conn::Tcp { stream, .. } => Some(stream.as_raw_fd()),
        }
    }

    /// What to poll for: writable while blocked or connecting; on TCP also
    /// readable, which for a collector that never sends means it hung up.
    pub(super) fn events(&self) -> i16 {
        let out = if self.blocked { libc::POLLOUT } else { 0 };
        match &self.conn {
            Conn::Tcp { connecting: Some(_), .. } => libc::POLLOUT,
            Conn::Tcp { .. } => out | libc::POLLIN,
            Conn::Down => 0,
            _ => out,
        }
    }

    /// Poll said something about our socket.
    pub(super) fn ready(&mut self, revents: i16, now: Instant, fmt: &Formatter) {
        if let Conn::Tcp { stream, connecting } = &mut self.conn {
            if connecting.is_some() {
                match stream.take_error() {
                    Ok(None) if stream.peer_addr().is_ok() => *connecting = None,
                    Ok(None) => return, // still connecting
                    Ok(Some(e)) | Err(e) => return self.down(e, now),
                }
            } else if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                // A collector sends nothing: readable means it closed the
                // connection (a restart). What it did not read is lost with
                // it, but nothing after it: the next message goes to the next
                // connection. Anything it does send is read and ignored.
                let mut sink = [0u8; 512];
                match io::Read::read(stream, &mut sink) {
                    Ok(0) => return self.down(io::ErrorKind::ConnectionReset.into(), now),
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return self.down(e, now),
                    _ => {}
                }
            }
        } else if revents & libc::POLLERR != 0 {
            // A datagram socket's pending error (ICMP port unreachable from a
            // collector that is down): poll reports it until it is read, so
            // reading it is what keeps the loop from spinning (s6-log's
            // iopause: every poll result is an event).
            if let Some(e) = self.take_error() {
                return self.down(e, now);
            }
        }
        self.blocked = false;
        self.flush(now, fmt);
    }

    /// Reads and clears the socket's pending error (SO_ERROR).
    fn take_error(&self) -> Option<io::Error> {
        let err = match &self.conn {
            Conn::Local(s) => s.take_error(),
            Conn::Udp(s) => s.take_error(),
            Conn::Tcp { stream, .. } => stream.take_error(),
            Conn::Down => Ok(None),
        };
        err.unwrap_or_else(Some)
    }

    /// When the timer must next call [`flush`](Self::flush): a connect that
    /// takes too long, or a retry; none while poll will say when to go on.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match &self.conn {
            Conn::Tcp { connecting: Some(t), .. } => Some(*t),
            _ if self.blocked => None,
            _ => self.backlog.retry_at(),
        }
    }

    /// The connection is gone: reconnect after a delay.
    pub(super) fn down(&mut self, e: io::Error, now: Instant) {
        let why = format!("{}: {e}", self.name);
        if self.said.as_ref().is_none_or(|(said, at)| *said != why || now.duration_since(*at) >= WARN_AGAIN) {
            log::warn!("syslog {why}; retrying");
            self.warnings.push(format!("syslog {why}; retrying"));
            self.said = Some((why.clone(), now));
        }
        self.conn = Conn::Down;
        self.blocked = false;
        self.backlog.rewind();
        self.backlog.failed(why, now);
    }

    /// Sends what waits, as far as the socket takes it: the rest of a
    /// message cut short, a note of what was dropped, then the queue.
    pub(super) fn flush(&mut self, now: Instant, fmt: &Formatter) {
        // A connect in progress: poll says when it is done; the timer only
        // when it took too long (even with nothing to send: no spinning).
        if let Conn::Tcp { connecting: Some(t), .. } = self.conn {
            if now >= t {
                self.down(io::ErrorKind::TimedOut.into(), now);
            }
            return;
        }
        if self.blocked || self.backlog.is_clear() || !self.backlog.may_try(now) {
            return;
        }
        if matches!(self.conn, Conn::Down) {
            if let Err(e) = self.connect() {
                return self.down(e, now);
            }
            if matches!(self.conn, Conn::Tcp { connecting: Some(_), .. }) {
                return;
            }
        }
        if let Some(loss) = self.backlog.take_loss() {
            let text = format!("dropped {} lines ({}) {}", loss.items, loss.why, loss.between());
            log::warn!("syslog {}: {text}", self.name);
            let stamp = Stamp::now();
            self.backlog.push_next(fmt.message(self.kind, &stamp, fmt.own_pri(), OWN_TAG, fmt.own_pid, &text));
        }
        loop {
            let sent = match &mut self.conn {
                Conn::Tcp { stream, .. } => {
                    let slices: Vec<IoSlice> = self.backlog.fronts(BATCH).map(IoSlice::new).collect();
                    stream.write_vectored(&slices)
                }
                Conn::Local(s) => s.send(self.backlog.front().unwrap_or_default()),
                Conn::Udp(s) => s.send(self.backlog.front().unwrap_or_default()),
                Conn::Down => return,
            };
            match sent {
                Ok(n) if self.kind == Kind::Tcp => self.backlog.advance(n),
                Ok(_) => self.backlog.advance_chunk(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return;
                }
                // A datagram too big for this socket: no retry would help.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => self.backlog.drop_chunk(),
                Err(e) => return self.down(e, now),
            }
            if self.backlog.front().is_none() {
                self.backlog.succeeded();
                return;
            }
        }
    }
}

/// Starts a non-blocking connect; `true` while it is in progress.
fn tcp_connect(addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, connect, socket};
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)?;
    let connecting = match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => false,
        Err(nix::errno::Errno::EINPROGRESS) => true,
        Err(e) => return Err(e.into()),
    };
    Ok((TcpStream::from(fd), connecting))
}
