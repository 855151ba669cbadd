//! One of the command's output pipes: read it without blocking, frame what
//! comes into whole lines, and hand them to the stream's log and syslog.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::lines::{BUFFER_SIZE, LineBuffer};
use crate::ready::Gate;
use crate::signals::Signals;
use crate::sink::Sink;
use crate::stdio::{set_nonblocking, with_fd};
use crate::syslog::Syslog;

/// An incomplete last line is held this long for its newline.
pub const HOLD: Duration = Duration::from_millis(100);
/// Reads per stream per wake-up: bounded, so that a flood of output never
/// delays a signal for long.
const READS_PER_WAKE: usize = 16;

/// Where a stream's bytes go: its log file, if any, and syslog, if on.
pub struct Out<'a> {
    pub sink: Option<&'a mut Sink>,
    pub syslog: Option<&'a mut Syslog>,
    pub stderr: bool,
    pub watch: bool,
    /// The start gate of the run, while it is open: it sees the output too.
    pub gate: Option<&'a mut Gate>,
}

impl Out<'_> {
    /// `data` was read at `now`; its first line's first byte at `since`,
    /// when that line was held for its end (`--timestamp` stamps that time).
    pub fn write(&mut self, data: &[u8], since: Option<Instant>, now: Instant) {
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.write(data, since, now, self.watch);
        }
        if let Some(syslog) = self.syslog.as_deref_mut() {
            syslog.lines(data, self.stderr, now);
        }
        if let Some(gate) = self.gate.as_deref_mut() {
            gate.saw_output(data, now);
        }
    }

    pub fn warn(&mut self, msg: &str) {
        say(self.sink.as_deref_mut(), self.syslog.as_deref_mut(), msg);
    }
}

/// Says one of detach's own lines: into `sink` (from where the supervisor
/// relays it to syslog), else to `syslog`, else on detach's own stderr.
pub fn say(sink: Option<&mut Sink>, syslog: Option<&mut Syslog>, msg: &str) {
    match (sink, syslog) {
        (Some(sink), _) => sink.warn(msg),
        (None, Some(l)) => l.note(msg, Instant::now()),
        (None, None) => drop(io::stderr().write_all(format!("detach: {msg}\n").as_bytes())),
    }
}

/// One of the command's output pipes, and the line it may be holding.
pub struct Stream {
    pub pipe: OwnedFd,
    /// The log it goes to (an index into the supervisor's sinks), if any.
    pub sink: Option<usize>,
    /// It is the command's stderr (syslog gives it another priority).
    pub stderr: bool,
    lines: LineBuffer,
    pub held_since: Option<Instant>,
    pub open: bool,
}

impl Stream {
    /// `pipe` is the read end; it is made non-blocking here.
    pub fn new(pipe: OwnedFd, sink: Option<usize>, stderr: bool) -> io::Result<Stream> {
        set_nonblocking(pipe.as_fd(), true)?;
        Ok(Stream { pipe, sink, stderr, lines: LineBuffer::new(BUFFER_SIZE), held_since: None, open: true })
    }

    /// Reads what the pipe has and writes whole lines out. A reopen can only
    /// happen between two such writes, so it never splits a line.
    /// With `interrupt`, it stops early once a signal is pending, so that a
    /// reopen waits for one read at most under a writer at full speed.
    pub fn pump(&mut self, out: &mut Out, interrupt: Option<&Signals>) {
        for _ in 0..READS_PER_WAKE {
            let spare = self.lines.spare();
            let room = spare.len();
            let n = match with_fd(self.pipe.as_fd(), |mut f| f.read(spare)) {
                Ok(0) => return self.close(out),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    out.warn(&format!("cannot read the command's output: {e}"));
                    return self.close(out);
                }
            };
            let now = Instant::now();
            let ready = self.lines.filled(n);
            if ready > 0 {
                out.write(self.lines.front(ready), self.held_since, now);
                self.lines.consume(ready);
                self.held_since = None; // what is left is a new line
            }
            if self.lines.held() > 0 {
                self.held_since.get_or_insert(now);
            }
            if n < room {
                return; // the pipe is drained; save a read that would say EAGAIN
            }
            // One read at least per wake-up, so that no storm of signals
            // starves the pipe.
            if interrupt.is_some_and(Signals::pending) {
                return;
            }
        }
    }

    /// Writes out the incomplete line held, if any.
    pub fn flush(&mut self, out: &mut Out, now: Instant) {
        let held = self.lines.held();
        if held > 0 {
            out.write(self.lines.front(held), self.held_since, now);
            self.lines.consume(held);
        }
        self.held_since = None;
    }

    fn close(&mut self, out: &mut Out) {
        out.watch = false;
        self.flush(out, Instant::now());
        if let Some(syslog) = out.syslog.as_deref_mut() {
            syslog.end(self.stderr, Instant::now());
        }
        self.open = false;
    }
}
