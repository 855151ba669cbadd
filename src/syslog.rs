//! Syslog output: each line of the command's output as one message, to the
//! local socket (/dev/log, read by rsyslog or journald) and/or a remote
//! collector over UDP or TCP, without ever blocking the pump.
//!
//! Why not the `syslog` crate: its writes block (a slow or dead collector
//! would stall the pump and, through the pipe, the command), it does not
//! reconnect, and it has no backlog. What is needed here is small: two
//! message formats, three non-blocking sockets in the supervisor's poll loop.
//!
//! Formats: the local socket gets the traditional `<PRI>Mmm dd hh:mm:ss
//! TAG[PID]: MSG` that glibc's syslog(3) sends and that rsyslog's imuxsock
//! and journald parse. A remote collector gets RFC 5424; over TCP, framed by
//! octet counting (RFC 6587 3.4.1): newline framing would break on a newline
//! inside a message and is only a de-facto convention, while octet counting
//! is what RFC 5425 mandates and every current collector reads.

use std::borrow::Cow;
use std::io::{self, IoSlice, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::backlog::{self, Backlog};
use crate::error::{Error, Result};

/// The longest message text, in bytes; a longer line is sent in numbered
/// parts. RFC 5424 receivers must take 480 bytes and should take 2048.
pub const MAX_TEXT: usize = 2000;
/// The longest tag (RFC 5424's APP-NAME).
const MAX_TAG: usize = 48;
/// How long a TCP connect may take before it is given up and tried again.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The same failure is said again after this long.
const WARN_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);
/// Messages per writev(2) on TCP.
const BATCH: usize = 64;

const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

const LEVELS: [(&str, u8); 11] = [
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// detach's own messages: this severity, the tag `detach`.
const OWN_LEVEL: u8 = 4;
const OWN_TAG: &str = "detach";

fn lookup(table: &[(&str, u8)], name: &str, what: &str) -> std::result::Result<u8, String> {
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown syslog {what} '{name}' (one of: {})", names.join(", ")))
}

/// `--syslog-facility`: a facility name, as in syslog.conf.
pub fn parse_facility(name: &str) -> std::result::Result<u8, String> {
    lookup(&FACILITIES, name, "facility")
}

/// `--syslog-*-priority`: a severity name, as in syslog.conf.
pub fn parse_level(name: &str) -> std::result::Result<u8, String> {
    lookup(&LEVELS, name, "priority")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A remote collector, as given: `udp://HOST:PORT` or `tcp://HOST:PORT`.
#[derive(Clone, Debug)]
pub struct Server {
    pub url: String,
    pub transport: Transport,
    pub host: String,
    pub port: u16,
}

/// `--syslog-server URL`: checks the syntax only; the name is resolved at start.
pub fn parse_server(url: &str) -> std::result::Result<Server, String> {
    let bad = |why: &str| format!("bad syslog server '{url}': {why} (like tcp://logs.example.com:514)");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let transport = match scheme.to_ascii_lowercase().as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        _ => return Err(bad("the scheme must be udp or tcp")),
    };
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port must be 1 to 65535"))?;
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(bad("no host name"));
    }
    Ok(Server { url: url.to_owned(), transport, host: host.to_owned(), port })
}

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The local socket (`--syslog`: /dev/log).
    pub socket: Option<PathBuf>,
    pub server: Option<Server>,
    pub facility: u8,
    /// Default: the command's basename.
    pub tag: Option<String>,
    pub stdout_level: u8,
    pub stderr_level: u8,
    /// Bound of each destination's backlog, in bytes.
    pub buffer: usize,
}

impl Settings {
    pub fn enabled(&self) -> bool {
        self.socket.is_some() || self.server.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Local,
    Udp,
    Tcp,
}

enum Conn {
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
struct Destination {
    kind: Kind,
    path: PathBuf,
    addr: Option<SocketAddr>,
    name: String,
    conn: Conn,
    backlog: Backlog,
    /// A write would block: wait for POLLOUT rather than a timer.
    blocked: bool,
    /// The failure last said, and when: each kind is said once a minute at
    /// most, even when a collector flaps.
    said: Option<(String, Instant)>,
    /// Failures to say in the log file.
    warnings: Vec<String>,
}

impl Destination {
    fn connect(&mut self) -> io::Result<()> {
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

    fn fd(&self) -> Option<RawFd> {
        match &self.conn {
            Conn::Down => None,
            Conn::Local(s) => Some(s.as_raw_fd()),
            Conn::Udp(s) => Some(s.as_raw_fd()),
            Conn::Tcp { stream, .. } => Some(stream.as_raw_fd()),
        }
    }

    /// What to poll for: writable while blocked or connecting; on TCP also
    /// readable, which for a collector that never sends means it hung up.
    fn events(&self) -> i16 {
        let out = if self.blocked { libc::POLLOUT } else { 0 };
        match &self.conn {
            Conn::Tcp { connecting: Some(_), .. } => libc::POLLOUT,
            Conn::Tcp { .. } => out | libc::POLLIN,
            Conn::Down => 0,
            _ => out,
        }
    }

    /// Poll said something about our socket.
    fn ready(&mut self, revents: i16, now: Instant, fmt: &Formatter) {
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
        }
        self.blocked = false;
        self.flush(now, fmt);
    }

    /// When the timer must next call [`flush`](Self::flush): a connect that
    /// takes too long, or a retry; none while poll will say when to go on.
    fn deadline(&self) -> Option<Instant> {
        match &self.conn {
            Conn::Tcp { connecting: Some(t), .. } => Some(*t),
            _ if self.blocked => None,
            _ => self.backlog.retry_at(),
        }
    }

    /// The connection is gone: reconnect after a delay.
    fn down(&mut self, e: io::Error, now: Instant) {
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
    fn flush(&mut self, now: Instant, fmt: &Formatter) {
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

/// The two timestamps of a batch of messages, made once per batch.
struct Stamp {
    /// RFC 3164, local time: `Nov 23 17:01:41`.
    local: String,
    /// RFC 5424: `2026-11-23T17:01:41.603Z`.
    utc: String,
}

impl Stamp {
    fn now() -> Stamp {
        let now = SystemTime::now();
        Stamp { local: local_time(now), utc: backlog::rfc3339(now) }
    }
}

/// `Mmm dd hh:mm:ss` in local time, as syslog(3) writes it.
fn local_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only the struct tm we own and pass; `secs`
    // is a live time_t. It reads the time zone, which no thread changes.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let month = MONTHS[tm.tm_mon.clamp(0, 11) as usize];
    format!("{month} {:2} {:02}:{:02}:{:02}", tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// What every message carries: who and where.
struct Formatter {
    facility: u8,
    tag: String,
    host: String,
    /// The command's pid (the latest run's).
    pid: u32,
    /// The supervisor's, for detach's own messages.
    own_pid: u32,
}

impl Formatter {
    fn pri(&self, level: u8) -> u8 {
        self.facility * 8 + level
    }

    fn own_pri(&self) -> u8 {
        self.pri(OWN_LEVEL)
    }

    /// One message, framed for its transport.
    fn message(&self, kind: Kind, stamp: &Stamp, pri: u8, tag: &str, pid: u32, text: &str) -> Vec<u8> {
        match kind {
            Kind::Local => format!("<{pri}>{} {tag}[{pid}]: {text}", stamp.local).into_bytes(),
            Kind::Udp => format!("<{pri}>1 {} {} {tag} {pid} - - {text}", stamp.utc, self.host).into_bytes(),
            Kind::Tcp => {
                let msg = format!("<{pri}>1 {} {} {tag} {pid} - - {text}", stamp.utc, self.host);
                format!("{} {msg}", msg.len()).into_bytes()
            }
        }
    }
}

/// A tag as syslog wants it: printable ASCII without spaces, `[` or `:`,
/// at most 48 bytes.
fn clean_tag(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '[' | ']' | ':') { c } else { '_' })
        .take(MAX_TAG)
        .collect();
    if tag.is_empty() { "-".into() } else { tag }
}

/// The text of one line (without its newline) as the message texts it
/// becomes: control characters but TAB, and bytes that are not UTF-8, as
/// `#ooo` (octal, as rsyslog escapes them); longer than [`MAX_TEXT`], in
/// parts `[part 1/N] ...`, never split inside a character or an escape.
pub fn texts(line: &[u8]) -> Vec<Cow<'_, str>> {
    let plain = |b: u8| b >= 0x20 && b != 0x7f || b == b'\t';
    if line.len() <= MAX_TEXT
        && line.iter().all(|&b| plain(b))
        && let Ok(text) = std::str::from_utf8(line)
    {
        return vec![Cow::Borrowed(text)];
    }
    let mut parts = vec![String::new()];
    let mut add = |unit: &str| {
        let part = parts.last_mut().expect("one part at least");
        if part.len() + unit.len() > MAX_TEXT {
            parts.push(String::new());
        }
        parts.last_mut().expect("one part at least").push_str(unit);
    };
    let mut buf = [0u8; 4];
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                c if c.is_ascii() && !plain(c as u8) => add(&format!("#{:03o}", c as u8)),
                c => add(c.encode_utf8(&mut buf)),
            }
        }
        for &b in chunk.invalid() {
            add(&format!("#{b:03o}"));
        }
    }
    let n = parts.len();
    if n == 1 {
        return parts.into_iter().map(Cow::Owned).collect();
    }
    parts.into_iter().enumerate().map(|(i, p)| Cow::Owned(format!("[part {}/{n}] {p}", i + 1))).collect()
}

/// The syslog side of the pump: every destination asked for.
pub struct Syslog {
    dests: Vec<Destination>,
    fmt: Formatter,
    stdout_level: u8,
    stderr_level: u8,
    /// The beginning of a line, per stream (stdout, stderr), not sent yet.
    partial: [Vec<u8>; 2],
}

impl Syslog {
    /// Connects to the local socket (which must exist: an error otherwise)
    /// and resolves the server's name; a TCP collector that is down is not
    /// an error: the connection is retried in the background.
    pub fn open(settings: &Settings, command: &Path) -> Result<Syslog> {
        let mut dests = Vec::new();
        let dest = |kind, path: PathBuf, addr, name| Destination {
            kind,
            path,
            addr,
            name,
            conn: Conn::Down,
            backlog: Backlog::new(settings.buffer),
            blocked: false,
            said: None,
            warnings: Vec::new(),
        };
        if let Some(path) = &settings.socket {
            let mut d = dest(Kind::Local, path.clone(), None, format!("socket '{}'", path.display()));
            d.connect().map_err(|err| Error::Unavailable {
                what: format!("cannot connect to syslog socket '{}'", path.display()),
                err,
            })?;
            dests.push(d);
        }
        if let Some(server) = &settings.server {
            let resolve = || -> io::Result<SocketAddr> {
                let mut addrs = (server.host.as_str(), server.port).to_socket_addrs()?;
                addrs.next().ok_or_else(|| io::ErrorKind::NotFound.into())
            };
            let addr = resolve()
                .map_err(|err| Error::NoHost { what: format!("cannot resolve syslog server '{}'", server.url), err })?;
            let kind = if server.transport == Transport::Tcp { Kind::Tcp } else { Kind::Udp };
            let mut d = dest(kind, PathBuf::new(), Some(addr), format!("server {}", server.url));
            if let Err(e) = d.connect() {
                let _ = writeln!(io::stderr(), "detach: warning: syslog server {}: {e}; retrying", server.url);
                d.down(e, Instant::now());
            }
            dests.push(d);
        }
        let tag = settings
            .tag
            .clone()
            .unwrap_or_else(|| command.file_name().map_or_else(|| "-".into(), |n| n.to_string_lossy().into_owned()));
        let host = nix::unistd::gethostname().map_or_else(|_| "-".into(), |h| h.to_string_lossy().into_owned());
        Ok(Syslog {
            dests,
            fmt: Formatter { facility: settings.facility, tag: clean_tag(&tag), host, pid: 0, own_pid: 0 },
            stdout_level: settings.stdout_level,
            stderr_level: settings.stderr_level,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// What went wrong with the destinations since the last call, once per
    /// kind of failure, for the log file.
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.dests.iter_mut().flat_map(|d| d.warnings.drain(..)).collect()
    }

    /// The sockets, to keep open across daemonizing.
    pub fn fds(&self) -> Vec<RawFd> {
        self.dests.iter().filter_map(Destination::fd).collect()
    }

    /// The supervisor's pid (after daemonizing), for its own messages.
    pub fn set_own_pid(&mut self, pid: u32) {
        self.fmt.own_pid = pid;
    }

    /// The command's pid, for its lines.
    pub fn set_pid(&mut self, pid: u32) {
        self.fmt.pid = pid;
    }

    /// Sends each line of `data` (what the pump writes: whole lines, or a
    /// line's beginning it held long enough) as one message, or several
    /// parts. A line's beginning waits here for its end, up to the pump's
    /// buffer size: the file may take a line in pieces, a message may not.
    pub fn lines(&mut self, data: &[u8], stderr: bool, now: Instant) {
        let held = std::mem::take(&mut self.partial[usize::from(stderr)]);
        let joined;
        let data = if held.is_empty() {
            data
        } else {
            joined = [held, data.to_vec()].concat();
            &joined[..]
        };
        let whole = match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => 0,
        };
        let (whole, tail) = match data.len() - whole {
            n if n >= crate::supervise::BUFFER_SIZE => (data, &[][..]),
            _ => data.split_at(whole),
        };
        self.partial[usize::from(stderr)] = tail.to_vec();
        self.send(whole, stderr, now);
    }

    /// The stream ended: a line's beginning held goes as it is.
    pub fn end(&mut self, stderr: bool, now: Instant) {
        let held = std::mem::take(&mut self.partial[usize::from(stderr)]);
        self.send(&held, stderr, now);
    }

    fn send(&mut self, data: &[u8], stderr: bool, now: Instant) {
        if data.is_empty() {
            return;
        }
        let level = if stderr { self.stderr_level } else { self.stdout_level };
        let (pri, stamp) = (self.fmt.pri(level), Stamp::now());
        for line in data.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            for text in texts(line) {
                for d in &mut self.dests {
                    d.backlog.push(self.fmt.message(d.kind, &stamp, pri, &self.fmt.tag, self.fmt.pid, &text));
                }
            }
        }
        self.flush(now);
    }

    /// One of detach's own messages, tagged `detach`.
    pub fn note(&mut self, text: &str, now: Instant) {
        let stamp = Stamp::now();
        for d in &mut self.dests {
            d.backlog.push(self.fmt.message(d.kind, &stamp, self.fmt.own_pri(), OWN_TAG, self.fmt.own_pid, text));
        }
        self.flush(now);
    }

    fn flush(&mut self, now: Instant) {
        for d in &mut self.dests {
            d.flush(now, &self.fmt);
        }
    }

    /// The sockets to poll, with the events each waits for.
    pub fn poll_fds(&self) -> impl Iterator<Item = libc::pollfd> + '_ {
        self.dests.iter().map(|d| libc::pollfd { fd: d.fd().unwrap_or(-1), events: d.events(), revents: 0 })
    }

    /// What poll returned for each of [`poll_fds`](Self::poll_fds), in order.
    pub fn ready(&mut self, revents: &[i16], now: Instant) {
        for (d, &r) in self.dests.iter_mut().zip(revents) {
            if r != 0 {
                d.ready(r, now, &self.fmt);
            }
        }
    }

    /// When a destination that failed is due for a retry.
    pub fn retry_at(&self) -> Option<Instant> {
        self.dests.iter().filter_map(Destination::deadline).min()
    }

    /// Retries what is due.
    pub fn retry(&mut self, now: Instant) {
        for d in &mut self.dests {
            if d.deadline().is_some_and(|t| now >= t) {
                d.flush(now, &self.fmt);
            }
        }
    }

    /// At exit: keeps sending for up to `grace` while a destination still
    /// holds messages (a TCP connection that was full, or coming back).
    /// Returns what could not be delivered, to be said in the log.
    pub fn finish(&mut self, grace: std::time::Duration) -> Vec<String> {
        let end = Instant::now() + grace;
        loop {
            let now = Instant::now();
            self.retry(now);
            self.flush(now);
            if now >= end || self.dests.iter().all(|d| d.backlog.is_clear()) {
                break;
            }
            let mut fds: Vec<libc::pollfd> = self.poll_fds().collect();
            let wait = self.retry_at().unwrap_or(end).min(end).saturating_duration_since(now);
            let ms = wait.as_millis().clamp(1, 1000) as i32;
            // SAFETY: `fds` is a live Vec of pollfd whose length is passed with it.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            let revents: Vec<i16> = fds.iter().map(|p| p.revents).collect();
            self.ready(&revents, Instant::now());
        }
        let mut lost = self.take_warnings();
        for d in &mut self.dests {
            let dropped = d.backlog.take_loss().map_or(0, |l| l.items);
            let n = d.backlog.chunks() as u64 + dropped;
            if n > 0 {
                let said = d.said.as_ref().map(|(w, _)| w.trim_start_matches(&d.name).trim_start_matches(": "));
                let why = said.unwrap_or("not taken in time");
                lost.push(format!("syslog {}: dropped {n} lines at exit ({why})", d.name));
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = parse_server("tcp://127.0.0.1:514").unwrap();
        assert_eq!((s.transport, s.host.as_str(), s.port), (Transport::Tcp, "127.0.0.1", 514));
        let s = parse_server("udp://[::1]:5514").unwrap();
        assert_eq!((s.transport, s.host.as_str(), s.port), (Transport::Udp, "::1", 5514));
        for bad in ["tcp://nohost", "ftp://x:1", "tcp://127.0.0.1:notaport", "127.0.0.1:514", "tcp://:514", "udp://h:0"]
        {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_escape_and_split() {
        assert_eq!(texts(b"plain \xc3\xa9t\xc3\xa9\tok"), ["plain \u{e9}t\u{e9}\tok"]);
        assert_eq!(texts(b"a\0b\x1b[0m\xff"), ["a#000b#033[0m#377"]);
        let long = vec![b'x'; MAX_TEXT * 2 + 1];
        let parts = texts(&long);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("[part 1/3] xxx") && parts[2] == "[part 3/3] x");
        // An escape is never cut: 1999 x's, then a NUL that does not fit.
        let mut edge = vec![b'x'; MAX_TEXT - 1];
        edge.push(0);
        assert_eq!(texts(&edge)[1], "[part 2/2] #000");
    }
}
