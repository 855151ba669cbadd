//! Syslog transports: a local datagram socket, UDP, TCP and TLS to a
//! collector, each non-blocking in the supervisor's poll loop, with its own
//! backlog, reconnects with a backoff, and failures said once a minute at most.
//!
//! A collector's name is looked up again before every reconnect (DNS
//! failover, a container rescheduled elsewhere), off the loop: getaddrinfo(3)
//! blocks for as long as the resolver's timeouts allow, so a short-lived
//! thread does it and hands the answer back over a channel, closing the write
//! end of a pipe whose read end is what poll watches meanwhile (one fd per
//! destination, as for its socket). The thread shares nothing but the
//! channel: when the supervisor forks a command, the child only runs
//! async-signal-safe code until exec, as everywhere.

use std::io::{self, IoSlice, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use super::format::{Formatter, Kind, OWN_TAG, Stamp};
use super::tls::{self, ClientConfig};
use crate::backlog::Backlog;

/// How long a TCP connect, or a TLS handshake, may take before it is given
/// up and tried again.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The same failure is said again after this long.
const WARN_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);
/// Messages per writev(2) on TCP.
const BATCH: usize = 64;

/// Where a TCP or TLS connection is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// connect(2) in progress until then: poll for POLLOUT.
    Connecting(Instant),
    /// TLS handshake in progress until then.
    Handshake(Instant),
    Up,
}

pub(super) enum Conn {
    Down,
    /// The name being looked up off the loop.
    Resolving(Resolving),
    Local(UnixDatagram),
    Udp(UdpSocket),
    Stream {
        stream: TcpStream,
        phase: Phase,
        /// Over TLS: the session; over TCP, none.
        tls: Option<Box<tls::Session>>,
    },
}

/// A lookup running in a thread of its own.
pub(super) struct Resolving {
    answer: mpsc::Receiver<io::Result<SocketAddr>>,
    /// Readable (POLLHUP) once the thread has answered and closed the write end.
    done: OwnedFd,
}

/// A remote collector's name and how to reach it.
pub(super) struct Remote {
    /// Looked up again before each reconnect; none for an IP address.
    pub(super) host: Option<String>,
    pub(super) port: u16,
    /// The address found last: the next connect uses it while `fresh`.
    pub(super) addr: SocketAddr,
    /// `addr` was looked up since the last failure.
    pub(super) fresh: bool,
    /// The URL's host, checked against the collector's certificate.
    pub(super) server_name: String,
    pub(super) tls: Option<Arc<ClientConfig>>,
}

/// One place messages go, with its own backlog: a collector that is down
/// holds nothing up for the others.
pub(super) struct Destination {
    pub(super) kind: Kind,
    pub(super) path: PathBuf,
    pub(super) remote: Option<Remote>,
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
    /// Whole messages (bytes, count) taken off the backlog by the TLS
    /// session but maybe not on the wire yet: lost, and counted in the
    /// drop marker, if the connection goes down before they are sent.
    pub(super) in_tls: (u64, u64),
}

/// Looks `host` up (getaddrinfo), the first address found.
pub(super) fn lookup(host: &str, port: u16) -> io::Result<SocketAddr> {
    let mut addrs = (host, port).to_socket_addrs()?;
    addrs.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for this name"))
}

impl Remote {
    pub(super) fn new(host: &str, port: u16, addr: SocketAddr, tls: Option<Arc<ClientConfig>>) -> Remote {
        let name = host.parse::<IpAddr>().is_err().then(|| host.to_owned());
        Remote { host: name, port, addr, fresh: true, server_name: host.to_owned(), tls }
    }
}

impl Destination {
    pub(super) fn connect(&mut self) -> io::Result<()> {
        let now = Instant::now();
        self.conn = match self.kind {
            Kind::Local => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(&self.path)?;
                sock.set_nonblocking(true)?;
                Conn::Local(sock)
            }
            Kind::Udp => {
                let addr = self.remote.as_ref().expect("a remote destination").addr;
                let any: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let sock = UdpSocket::bind(any)?;
                sock.connect(addr)?;
                sock.set_nonblocking(true)?;
                Conn::Udp(sock)
            }
            Kind::Tcp | Kind::Tls => {
                let remote = self.remote.as_ref().expect("a remote destination");
                let tls = match &remote.tls {
                    Some(config) => Some(Box::new(tls::Session::new(config, &remote.server_name)?)),
                    None => None,
                };
                let (stream, connecting) = tcp_connect(remote.addr)?;
                let phase = match (connecting, &tls) {
                    (true, _) => Phase::Connecting(now + CONNECT_TIMEOUT),
                    (false, Some(_)) => Phase::Handshake(now + CONNECT_TIMEOUT),
                    (false, None) => Phase::Up,
                };
                Conn::Stream { stream, phase, tls }
            }
        };
        self.blocked = false;
        Ok(())
    }

    pub(super) fn fd(&self) -> Option<RawFd> {
        match &self.conn {
            Conn::Down => None,
            Conn::Resolving(r) => Some(r.done.as_raw_fd()),
            Conn::Local(s) => Some(s.as_raw_fd()),
            Conn::Udp(s) => Some(s.as_raw_fd()),
            Conn::Stream { stream, .. } => Some(stream.as_raw_fd()),
        }
    }

    /// What to poll for: writable while blocked or connecting; on TCP and
    /// TLS also readable, which for a collector that never sends means it
    /// hung up (or, over TLS, a handshake message or an alert).
    pub(super) fn events(&self) -> i16 {
        let out = if self.blocked { libc::POLLOUT } else { 0 };
        match &self.conn {
            Conn::Stream { phase: Phase::Connecting(_), .. } => libc::POLLOUT,
            Conn::Stream { .. } => out | libc::POLLIN,
            Conn::Resolving(_) => libc::POLLIN,
            Conn::Down => 0,
            _ => out,
        }
    }

    /// Nothing waits to be sent: no message, no TLS record.
    pub(super) fn idle(&self) -> bool {
        self.backlog.is_clear() && !self.tls_pending()
    }

    fn tls_pending(&self) -> bool {
        matches!(&self.conn, Conn::Stream { tls: Some(s), .. } if s.wants_write())
    }

    /// Poll said something about our socket (or our lookup).
    pub(super) fn ready(&mut self, revents: i16, now: Instant, fmt: &Formatter) {
        match &mut self.conn {
            Conn::Resolving(r) => {
                let answer = match r.answer.try_recv() {
                    Ok(answer) => answer,
                    Err(mpsc::TryRecvError::Empty) => return,
                    Err(mpsc::TryRecvError::Disconnected) => Err(io::Error::other("the lookup thread died")),
                };
                match answer {
                    Ok(addr) => {
                        let remote = self.remote.as_mut().expect("a remote destination");
                        remote.addr = addr;
                        remote.fresh = true;
                        self.conn = Conn::Down;
                    }
                    Err(e) => return self.down(e, now),
                }
            }
            Conn::Stream { stream, phase, tls } => {
                if let Phase::Connecting(_) = phase {
                    match stream.take_error() {
                        Ok(None) if stream.peer_addr().is_ok() => {
                            *phase = match tls {
                                Some(_) => Phase::Handshake(now + CONNECT_TIMEOUT),
                                None => Phase::Up,
                            };
                        }
                        Ok(None) => return, // still connecting
                        Ok(Some(e)) | Err(e) => return self.down(e, now),
                    }
                } else if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    // A collector sends nothing but TLS's own records:
                    // readable otherwise means it closed the connection (a
                    // restart). What it did not read is lost with it, but
                    // nothing after it: the next message goes to the next
                    // connection. Anything it does send is read and ignored.
                    let read = match tls {
                        Some(session) => session.read(stream),
                        None => drain(stream),
                    };
                    if let Err(e) = read {
                        return self.down(e, now);
                    }
                }
            }
            _ if revents & libc::POLLERR != 0 => {
                // A datagram socket's pending error (ICMP port unreachable
                // from a collector that is down): poll reports it until it is
                // read, so reading it is what keeps the loop from spinning
                // (s6-log's iopause: every poll result is an event).
                if let Some(e) = self.take_error() {
                    return self.down(e, now);
                }
            }
            _ => {}
        }
        self.blocked = false;
        self.flush(now, fmt);
    }

    /// Reads and clears the socket's pending error (SO_ERROR).
    fn take_error(&self) -> Option<io::Error> {
        let err = match &self.conn {
            Conn::Local(s) => s.take_error(),
            Conn::Udp(s) => s.take_error(),
            Conn::Stream { stream, .. } => stream.take_error(),
            Conn::Down | Conn::Resolving(_) => Ok(None),
        };
        err.unwrap_or_else(Some)
    }

    /// When the timer must next call [`flush`](Self::flush): a connect or
    /// handshake that takes too long, or a retry; none while poll will say
    /// when to go on (a lookup ends by itself: the resolver's own timeouts).
    pub(super) fn deadline(&self) -> Option<Instant> {
        match &self.conn {
            Conn::Stream { phase: Phase::Connecting(t) | Phase::Handshake(t), .. } => Some(*t),
            Conn::Resolving(_) => None,
            _ if self.blocked => None,
            _ => self.backlog.retry_at(),
        }
    }

    /// The connection is gone: reconnect after a delay, to the address the
    /// name has then.
    pub(super) fn down(&mut self, e: io::Error, now: Instant) {
        let why = format!("{}: {e}", self.name);
        if self.said.as_ref().is_none_or(|(said, at)| *said != why || now.duration_since(*at) >= WARN_AGAIN) {
            log::warn!("syslog {why}; retrying");
            self.warnings.push(format!("syslog {why}; retrying"));
            self.said = Some((why.clone(), now));
        }
        if let Some(remote) = &mut self.remote {
            remote.fresh = false;
        }
        self.conn = Conn::Down;
        self.blocked = false;
        if self.in_tls.0 > 0 {
            self.backlog.count_lost(self.in_tls.0, self.in_tls.1);
            self.in_tls = (0, 0);
        }
        self.backlog.rewind();
        self.backlog.failed(why, now);
    }

    /// Sends what waits, as far as the socket takes it: the rest of a
    /// message cut short, a note of what was dropped, then the queue.
    pub(super) fn flush(&mut self, now: Instant, fmt: &Formatter) {
        // A connect or handshake in progress: poll says when it is done; the
        // timer only when it took too long (even with nothing to send: no
        // spinning). A lookup: poll says when it is done.
        match self.conn {
            Conn::Stream { phase: Phase::Connecting(t), .. } => {
                if now >= t {
                    self.down(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"), now);
                }
                return;
            }
            Conn::Stream { phase: Phase::Handshake(t), .. } if now >= t => {
                return self.down(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"), now);
            }
            Conn::Resolving(_) => return,
            _ => {}
        }
        if self.blocked || self.idle() || !self.backlog.may_try(now) {
            return;
        }
        if matches!(self.conn, Conn::Down) {
            if self.remote.as_ref().is_some_and(|r| r.host.is_some() && !r.fresh) {
                return self.resolve(now);
            }
            if let Err(e) = self.connect() {
                return self.down(e, now);
            }
            if matches!(self.conn, Conn::Stream { phase: Phase::Connecting(_), .. }) {
                return;
            }
        }
        if let Conn::Stream { tls: Some(_), .. } = self.conn {
            return self.flush_tls(now, fmt);
        }
        self.say_loss(fmt);
        loop {
            let sent = match &mut self.conn {
                Conn::Stream { stream, .. } => {
                    let slices: Vec<IoSlice> = self.backlog.fronts(BATCH).map(IoSlice::new).collect();
                    stream.write_vectored(&slices)
                }
                Conn::Local(s) => s.send(self.backlog.front().unwrap_or_default()),
                Conn::Udp(s) => s.send(self.backlog.front().unwrap_or_default()),
                Conn::Down | Conn::Resolving(_) => return,
            };
            match sent {
                Ok(n) if self.kind.is_stream() => self.backlog.advance(n),
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

    /// Over TLS: the records rustls holds go first (the handshake's, then
    /// messages); messages are handed to rustls only once the handshake is
    /// done, so a collector refused (a certificate for another name) is
    /// sent nothing, and everything stays in the backlog for the next try.
    fn flush_tls(&mut self, now: Instant, fmt: &Formatter) {
        let mut said_loss = false;
        loop {
            let Conn::Stream { stream, phase, tls: Some(session) } = &mut self.conn else { return };
            match session.write(stream) {
                Ok(()) if !session.wants_write() => self.in_tls = (0, 0), // all on the wire
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return;
                }
                Err(e) => return self.down(e, now),
            }
            if session.handshaking() {
                return; // the collector's answer comes with POLLIN
            }
            *phase = Phase::Up;
            if !said_loss {
                said_loss = true;
                self.say_loss(fmt);
                continue;
            }
            if self.backlog.front().is_none() {
                self.backlog.succeeded();
                return;
            }
            let Conn::Stream { tls: Some(session), .. } = &mut self.conn else { return };
            let slices: Vec<IoSlice> = self.backlog.fronts(BATCH).map(IoSlice::new).collect();
            match session.send(&slices) {
                Ok(n) => {
                    // Messages wholly taken (a part of one is sent again
                    // whole after a reconnect: the backlog rewinds it).
                    let mut whole = (0u64, 0u64);
                    for len in slices.iter().map(|s| s.len() as u64) {
                        if whole.0 + len > n as u64 {
                            break;
                        }
                        whole = (whole.0 + len, whole.1 + 1);
                    }
                    self.in_tls = (self.in_tls.0 + whole.0, self.in_tls.1 + whole.1);
                    self.backlog.advance(n);
                }
                Err(e) => return self.down(e, now),
            }
        }
    }

    /// At exit: a TLS session that is up says goodbye.
    pub(super) fn close(&mut self) {
        if let Conn::Stream { stream, phase: Phase::Up, tls: Some(session) } = &mut self.conn {
            session.close(stream);
        }
    }

    /// What the backlog dropped, said in a message ahead of the rest.
    fn say_loss(&mut self, fmt: &Formatter) {
        if let Some(loss) = self.backlog.take_loss() {
            let text = format!("dropped {} lines ({}) {}", loss.items, loss.why, loss.between());
            log::warn!("syslog {}: {text}", self.name);
            let stamp = Stamp::now();
            self.backlog.push_next(fmt.message(self.kind, &stamp, fmt.own_pri(), OWN_TAG, fmt.own_pid, &text));
        }
    }

    /// Starts looking the name up again, in a thread; poll says when it is done.
    fn resolve(&mut self, now: Instant) {
        let remote = self.remote.as_ref().expect("a remote destination");
        let (host, port) = (remote.host.clone().expect("a name"), remote.port);
        match spawn_lookup(host, port) {
            Ok(r) => self.conn = Conn::Resolving(r),
            Err(e) => self.down(e, now),
        }
    }
}

/// The lookup thread: answers over a channel, then closes the pipe's write
/// end, which wakes the loop (POLLHUP on the read end).
fn spawn_lookup(host: String, port: u16) -> io::Result<Resolving> {
    let (done, wake) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (tx, answer) = mpsc::channel();
    std::thread::Builder::new().name("syslog-lookup".into()).spawn(move || {
        let _ = tx.send(lookup(&host, port));
        drop(wake);
    })?;
    Ok(Resolving { answer, done })
}

/// Reads and drops what a plain TCP collector sent; an error at its end.
fn drain(stream: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 512];
    match io::Read::read(stream, &mut sink) {
        Ok(0) => Err(io::ErrorKind::ConnectionReset.into()),
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
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
