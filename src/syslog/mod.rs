//! Syslog output: each line of the command's output as one message, to the
//! local socket (/dev/log, read by rsyslog or journald) and/or a remote
//! collector over UDP, TCP or TLS, without ever blocking the pump.
//!
//! Why not the `syslog` crate: its writes block (a slow or dead collector
//! would stall the pump and, through the pipe, the command), it does not
//! reconnect, and it has no backlog. What is needed here is small: two
//! message formats, a few non-blocking sockets in the supervisor's poll loop.
//!
//! Formats: the local socket gets the traditional `<PRI>Mmm dd hh:mm:ss
//! TAG[PID]: MSG` that glibc's syslog(3) sends and that rsyslog's imuxsock
//! and journald parse. A remote collector gets RFC 5424 (or RFC 3164 with a
//! HOSTNAME, `--syslog-format`); over TCP and TLS, framed by octet counting
//! (RFC 6587 3.4.1), which RFC 5425 mandates and rsyslog and syslog-ng read,
//! or by a newline (`--syslog-framing newline`, what Fluent Bit and fluentd
//! read by default), which cannot break on a newline inside a message: every
//! control character of a line is escaped as `#ooo` before it is framed.
mod format;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
#[cfg(feature = "tls")]
mod tls;
mod transport;

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backlog::Backlog;
use crate::error::{Error, Result};
use crate::lines::BUFFER_SIZE;
pub use format::{Format, Framing, parse_facility, parse_level};
use format::{Formatter, Kind, OWN_TAG, Stamp, clean_tag, texts};
use transport::{Conn, Destination, Remote, lookup};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// The port of `tls://HOST` (RFC 5425).
pub const TLS_PORT: u16 = 6514;

/// A remote collector, as given: `udp://HOST:PORT`, `tcp://HOST:PORT` or
/// `tls://HOST[:PORT]`.
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
        "tls" if cfg!(feature = "tls") => Transport::Tls,
        "tls" => return Err(bad("this detach was built without TLS (cargo feature `tls`)")),
        _ => return Err(bad("the scheme must be udp, tcp or tls")),
    };
    // HOST:PORT, [V6]:PORT; tls:// may leave the port out.
    let (host, port) = match rest.strip_prefix('[') {
        Some(r) => {
            let (host, after) = r.split_once(']').ok_or_else(|| bad("no ']' after an IPv6 address"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("no port"))?)),
            }
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let port = match (port, transport) {
        (Some(p), _) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port must be 1 to 65535"))?,
        (None, Transport::Tls) => TLS_PORT,
        (None, _) => return Err(bad("no port")),
    };
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
    /// What a remote collector gets, and how it is framed on TCP and TLS.
    pub format: Format,
    pub framing: Framing,
    /// TLS: the roots (default: the system's), a client certificate and key.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Settings {
    pub fn enabled(&self) -> bool {
        self.socket.is_some() || self.server.is_some()
    }
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
    /// Connects to the local socket (which must exist: an error otherwise),
    /// resolves the server's name and reads the TLS files; a TCP or TLS
    /// collector that is down is not an error: the connection is retried in
    /// the background.
    pub fn open(settings: &Settings, command: &Path) -> Result<Syslog> {
        let mut dests = Vec::new();
        let dest = |kind, path: PathBuf, remote, name| Destination {
            kind,
            path,
            remote,
            name,
            conn: Conn::Down,
            backlog: Backlog::new(settings.buffer),
            blocked: false,
            said: None,
            warnings: Vec::new(),
            in_tls: (0, 0),
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
            if server.transport != Transport::Tls && (settings.ca.is_some() || settings.cert.is_some()) {
                return Err(Error::Usage(format!(
                    "--syslog-ca, --syslog-cert and --syslog-key are for a tls:// server, not '{}'",
                    server.url
                )));
            }
            let tls = match server.transport {
                Transport::Tls => {
                    let files = tls::Files {
                        ca: settings.ca.as_deref(),
                        cert: settings.cert.as_deref(),
                        key: settings.key.as_deref(),
                    };
                    Some(tls::config(&files).map_err(Error::Usage)?)
                }
                _ => None,
            };
            let addr = lookup(&server.host, server.port)
                .map_err(|err| Error::NoHost { what: format!("cannot resolve syslog server '{}'", server.url), err })?;
            let kind = match server.transport {
                Transport::Udp => Kind::Udp,
                Transport::Tcp => Kind::Tcp,
                Transport::Tls => Kind::Tls,
            };
            let remote = Remote::new(&server.host, server.port, addr, tls);
            let mut d = dest(kind, PathBuf::new(), Some(remote), format!("server {}", server.url));
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
            fmt: Formatter {
                facility: settings.facility,
                tag: clean_tag(&tag),
                host,
                pid: 0,
                own_pid: 0,
                format: settings.format,
                framing: settings.framing,
            },
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
            n if n >= BUFFER_SIZE => (data, &[][..]),
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
            if now >= end || self.dests.iter().all(Destination::idle) {
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
        self.dests.iter_mut().for_each(Destination::close);
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
        if cfg!(feature = "tls") {
            let s = parse_server("tls://logs.example.com").unwrap();
            assert_eq!((s.transport, s.host.as_str(), s.port), (Transport::Tls, "logs.example.com", 6514));
            let s = parse_server("TLS://[::1]").unwrap();
            assert_eq!((s.host.as_str(), s.port), ("::1", 6514));
            assert_eq!(parse_server("tls://h:7514").unwrap().port, 7514);
        }
        for bad in [
            "tcp://nohost",
            "ftp://x:1",
            "tcp://127.0.0.1:notaport",
            "127.0.0.1:514",
            "tcp://:514",
            "udp://h:0",
            "tls://[::1",
            "tls://[::1]x",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
