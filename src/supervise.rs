//! The supervisor: one event loop over signals, child exits and pipe data.
//!
//! Reads like tini's main: catch signals, pump output, forward signals, reap
//! children, and exit with the command's status once it is gone and every
//! writer of its pipes has closed them.
//!
//! Signals arrive through signal-hook: each sets a flag and writes a byte to
//! a self-pipe that wakes `poll`. The loop drains the pipe, then acts on the
//! flags: two signals of one kind may merge, so it acts on state, not counts.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::lines::LineBuffer;
use crate::stdio::{LogTarget, PathState, with_fd};

/// Pump buffer: the most one read takes from a pipe, and the longest line
/// that is guaranteed never to be split by a reopen.
pub const BUFFER_SIZE: usize = 128 * 1024;
/// An incomplete last line is held this long for its newline.
const HOLD: Duration = Duration::from_millis(100);
/// How often the log paths are checked for a move or a delete.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// After the final KILL, how long orphans outside the command's process group
/// may keep the pipe open before the supervisor leaves anyway.
const GIVE_UP_GRACE: Duration = Duration::from_secs(1);
/// Reads per stream per wake-up: bounded, so that a flood of output never
/// delays a signal for long.
const READS_PER_WAKE: usize = 16;

/// Signals forwarded to the command as they are.
pub const FORWARDED: [i32; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGHUP];

#[derive(Clone, Debug)]
pub struct Options {
    pub reopen_signal: i32,
    pub watch: bool,
    pub kill_timeout: Duration,
    pub drain_timeout: Option<Duration>,
}

/// Signals received, as a bitmask set by the handlers, and the self-pipe
/// (a socket pair) whose read end wakes the loop.
pub struct Signals {
    wake: UnixStream,
    pending: Arc<AtomicU64>,
}

impl Signals {
    /// Installs handlers for the forwarded signals, the reopen signal and
    /// SIGCHLD. Call before spawning the command, so no exit is missed.
    pub fn register(reopen_signal: i32) -> io::Result<Signals> {
        let (wake, writer) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let writer = Arc::new(writer);
        let pending = Arc::new(AtomicU64::new(0));
        for sig in FORWARDED.into_iter().chain([libc::SIGCHLD, reopen_signal]) {
            let (writer, pending) = (writer.clone(), pending.clone());
            let action = move || {
                // The bit first, then the wake-up: the loop finds it set.
                pending.fetch_or(1 << sig, Ordering::SeqCst);
                // SAFETY: send(2) is async-signal-safe; MSG_DONTWAIT: when
                // the socket is full, a wake-up is already pending.
                unsafe { libc::send(writer.as_raw_fd(), [1u8].as_ptr().cast(), 1, libc::MSG_DONTWAIT) };
            };
            // SAFETY: the action is async-signal-safe: an atomic or and a
            // send(2), no allocation, no lock (signal-hook's contract).
            unsafe { signal_hook::low_level::register(sig, action) }?;
        }
        Ok(Signals { wake, pending })
    }

    /// The signals received since the last call.
    fn take(&self) -> Vec<i32> {
        let mut sink = [0u8; 64];
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        let bits = self.pending.swap(0, Ordering::SeqCst);
        (1..64).filter(|sig| bits & (1 << sig) != 0).collect()
    }
}

/// A log file the supervisor writes to, with what it remembers about it.
pub struct Sink {
    log: LogTarget,
    at_line_start: bool,
    last_check: Instant,
    /// When the watch first found the path naming nothing.
    missing_since: Option<Instant>,
    /// errno of the last failed reopen, so each kind of failure is said once.
    reopen_error: Option<i32>,
    /// Bytes that could not be written, and why: said in a marker line as
    /// soon as writing works again.
    dropped: u64,
    drop_error: Option<String>,
}

impl Sink {
    pub fn new(log: LogTarget) -> Sink {
        Sink {
            log,
            at_line_start: true,
            last_check: Instant::now(),
            missing_since: None,
            reopen_error: None,
            dropped: 0,
            drop_error: None,
        }
    }

    fn write(&mut self, data: &[u8], now: Instant, watch: bool) {
        if watch && now.duration_since(self.last_check) >= WATCH_INTERVAL {
            self.check_moved(now);
        }
        if self.dropped > 0 && !self.write_drop_marker() {
            self.dropped += data.len() as u64;
            return;
        }
        match with_fd(self.log.fd(), |f| f.write_all(data)) {
            Ok(()) => self.at_line_start = data.last() == Some(&b'\n'),
            Err(e) => {
                self.dropped += data.len() as u64;
                self.drop_error = Some(e.to_string());
            }
        }
    }

    fn write_drop_marker(&mut self) -> bool {
        let why = self.drop_error.take().unwrap_or_default();
        let line = format!("{}detach: dropped {} bytes ({why})\n", self.line_break(), self.dropped);
        if with_fd(self.log.fd(), |f| f.write_all(line.as_bytes())).is_err() {
            self.drop_error = Some(why);
            return false;
        }
        self.dropped = 0;
        self.at_line_start = true;
        true
    }

    fn line_break(&self) -> &'static str {
        if self.at_line_start { "" } else { "\n" }
    }

    /// Writes one line of detach's own into this log, at a line boundary
    /// (and hands it to the `log` crate, for a library user's logger).
    fn warn(&mut self, msg: &str) {
        log::warn!("{msg}");
        let line = format!("{}detach: {msg}\n", self.line_break());
        if with_fd(self.log.fd(), |f| f.write_all(line.as_bytes())).is_ok() {
            self.at_line_start = true;
        }
    }

    /// The watch: reopen when the path names another file; when it names
    /// nothing, wait one more interval before creating it, so that a rotation
    /// between its rename and its create (logrotate's `create`, which moves
    /// a file it finds there aside as `.backup`) is never raced.
    fn check_moved(&mut self, now: Instant) {
        self.last_check = now;
        match self.log.path_state() {
            PathState::Same => self.missing_since = None,
            PathState::Replaced => self.reopen(),
            PathState::Missing => {
                if now.duration_since(*self.missing_since.get_or_insert(now)) >= WATCH_INTERVAL {
                    self.reopen();
                }
            }
        }
    }

    /// Reopens by path; on failure keeps the old file and says so once.
    fn reopen(&mut self) {
        match self.log.reopen() {
            Ok(()) => {
                self.reopen_error = None;
                self.missing_since = None;
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(-1);
                if self.reopen_error != Some(errno) {
                    self.reopen_error = Some(errno);
                    self.warn(&format!("cannot reopen '{}': {e}", self.log.path().display()));
                }
            }
        }
    }
}

/// One of the command's output pipes, and the line it may be holding.
pub struct Stream {
    pipe: OwnedFd,
    sink: usize,
    lines: LineBuffer,
    held_since: Option<Instant>,
    open: bool,
}

impl Stream {
    /// `pipe` is the read end; it is made non-blocking here.
    pub fn new(pipe: OwnedFd, sink: usize) -> io::Result<Stream> {
        set_nonblocking(pipe.as_fd())?;
        Ok(Stream { pipe, sink, lines: LineBuffer::new(BUFFER_SIZE), held_since: None, open: true })
    }

    /// Reads what the pipe has and writes whole lines to the sink. A reopen
    /// can only happen between two such writes, so it never splits a line.
    fn pump(&mut self, sink: &mut Sink, watch: bool) {
        for _ in 0..READS_PER_WAKE {
            let spare = self.lines.spare();
            let room = spare.len();
            let n = match with_fd(self.pipe.as_fd(), |f| f.read(spare)) {
                Ok(0) => return self.close(sink),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    sink.warn(&format!("cannot read the command's output: {e}"));
                    return self.close(sink);
                }
            };
            let now = Instant::now();
            let ready = self.lines.filled(n);
            if ready > 0 {
                sink.write(self.lines.front(ready), now, watch);
                self.lines.consume(ready);
                self.held_since = None; // what is left is a new line
            }
            if self.lines.held() > 0 {
                self.held_since.get_or_insert(now);
            }
            if n < room {
                return; // the pipe is drained; save a read that would say EAGAIN
            }
        }
    }

    /// Writes out the incomplete line held, if any.
    fn flush(&mut self, sink: &mut Sink, now: Instant, watch: bool) {
        let held = self.lines.held();
        if held > 0 {
            sink.write(self.lines.front(held), now, watch);
            self.lines.consume(held);
        }
        self.held_since = None;
    }

    fn close(&mut self, sink: &mut Sink) {
        self.flush(sink, Instant::now(), false);
        self.open = false;
    }
}

fn set_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

pub struct Supervisor {
    child: Pid,
    status: Option<i32>,
    streams: Vec<Stream>,
    sinks: Vec<Sink>,
    signals: Signals,
    opts: Options,
    /// When TERM came: the command's group gets KILL at this instant.
    kill_at: Option<Instant>,
    /// After the KILL: leave even if orphans outside the group hold the pipe.
    give_up_at: Option<Instant>,
    /// When the command exited, for `--drain-timeout`.
    drain_until: Option<Instant>,
    next_watch: Instant,
}

impl Supervisor {
    pub fn new(child: u32, streams: Vec<Stream>, sinks: Vec<Sink>, signals: Signals, opts: Options) -> Supervisor {
        Supervisor {
            child: Pid::from_raw(child as i32),
            status: None,
            streams,
            sinks,
            signals,
            opts,
            kill_at: None,
            give_up_at: None,
            drain_until: None,
            next_watch: Instant::now() + WATCH_INTERVAL,
        }
    }

    /// Runs until the command has exited and its output is drained; returns
    /// its status as a shell reports it (N, or 128+N for signal N).
    pub fn run(mut self) -> i32 {
        self.reap_children();
        while !self.finished() {
            self.wait_for_events();
            self.handle_signals();
            self.pump_streams();
            self.handle_timers(Instant::now());
        }
        self.reap_children();
        self.status.unwrap_or(1)
    }

    fn finished(&self) -> bool {
        let drained = self.streams.iter().all(|s| !s.open);
        let now = Instant::now();
        let deadline_passed = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        self.status.is_some() && (drained || deadline_passed(self.drain_until) || deadline_passed(self.give_up_at))
    }

    fn wait_for_events(&mut self) {
        // The wake-up socket and at most two pipes: no allocation per wake-up.
        let idle = libc::pollfd { fd: -1, events: 0, revents: 0 };
        let mut fds = [idle; 3];
        let open = self.streams.iter().filter(|s| s.open).map(|s| s.pipe.as_raw_fd());
        for (slot, fd) in fds.iter_mut().zip(std::iter::once(self.signals.wake.as_raw_fd()).chain(open)) {
            *slot = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        }
        let timeout = self.next_deadline().map_or(-1, |t| {
            let ms = t.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as i32
        });
        // SAFETY: `fds` is a live array of pollfd whose length is passed
        // with it; poll only writes the revents fields, and skips fd -1.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    }

    fn next_deadline(&self) -> Option<Instant> {
        let held = self.streams.iter().filter_map(|s| s.held_since.map(|t| t + HOLD));
        let watch = self.opts.watch.then_some(self.next_watch);
        held.chain(watch).chain(self.kill_at).chain(self.give_up_at).chain(self.drain_until).min()
    }

    fn handle_signals(&mut self) {
        for sig in self.signals.take() {
            if sig == self.opts.reopen_signal {
                self.reopen_logs();
            } else if sig == libc::SIGCHLD {
                self.reap_children();
            } else if sig == libc::SIGTERM {
                self.stop();
            } else {
                self.forward_signal(sig);
            }
        }
    }

    /// Reopens every log. A line held for its newline is not flushed first:
    /// it goes whole into the new file once complete, for a line written in
    /// one write may reach the pipe in pieces.
    fn reopen_logs(&mut self) {
        for sink in &mut self.sinks {
            sink.reopen();
        }
    }

    fn forward_signal(&self, sig: i32) {
        if self.status.is_none()
            && let Ok(sig) = Signal::try_from(sig)
        {
            let _ = kill(self.child, sig);
        }
    }

    /// TERM: pass it on, and KILL whatever of the command's process group is
    /// left when `--kill-timeout` runs out.
    fn stop(&mut self) {
        if self.status.is_none() {
            let _ = kill(self.child, Signal::SIGTERM);
        } else {
            let _ = killpg(self.child, Signal::SIGTERM);
        }
        self.kill_at.get_or_insert(Instant::now() + self.opts.kill_timeout);
    }

    fn reap_children(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.child => self.child_exited(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.child => self.child_exited(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {} // an orphan we inherited as subreaper: reaped
            }
        }
    }

    fn child_exited(&mut self, status: i32) {
        self.status = Some(status);
        self.drain_until = self.opts.drain_timeout.map(|d| Instant::now() + d);
    }

    fn pump_streams(&mut self) {
        let watch = self.opts.watch;
        for stream in self.streams.iter_mut().filter(|s| s.open) {
            stream.pump(&mut self.sinks[stream.sink], watch);
        }
    }

    fn handle_timers(&mut self, now: Instant) {
        let watch = self.opts.watch;
        for stream in &mut self.streams {
            if stream.held_since.is_some_and(|t| now >= t + HOLD) {
                stream.flush(&mut self.sinks[stream.sink], now, watch);
            }
        }
        if watch && now >= self.next_watch {
            for sink in &mut self.sinks {
                sink.check_moved(now);
            }
            self.next_watch = now + WATCH_INTERVAL;
        }
        if self.kill_at.is_some_and(|t| now >= t) {
            self.kill_at = None;
            let _ = killpg(self.child, Signal::SIGKILL);
            if self.status.is_none() {
                // It may have left its group; once reaped, its pid may be another's.
                let _ = kill(self.child, Signal::SIGKILL);
            }
            self.give_up_at = Some(now + GIVE_UP_GRACE);
        }
    }
}
