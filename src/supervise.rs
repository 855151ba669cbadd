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
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::backlog::{self, Backlog};
use crate::lines::LineBuffer;
use crate::notify::Notifier;
use crate::restart::{Backoff, Launcher, Next, Policy};
use crate::stdio::{LogTarget, PathState, set_nonblocking, with_fd};
use crate::syslog::Syslog;

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
/// At exit, how long syslog destinations may take to accept what they hold.
const SYSLOG_GRACE: Duration = Duration::from_secs(2);

/// Signals forwarded to the command as they are.
pub const FORWARDED: [i32; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGHUP];

#[derive(Clone, Debug)]
pub struct Options {
    pub reopen_signal: i32,
    pub watch: bool,
    pub kill_timeout: Duration,
    pub drain_timeout: Option<Duration>,
    pub restart: Policy,
    /// Bound of the backlog each log holds while it cannot be written.
    pub log_buffer: usize,
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
        let mut sigs: Vec<i32> = FORWARDED.into_iter().chain([libc::SIGCHLD, reopen_signal]).collect();
        sigs.sort_unstable();
        sigs.dedup(); // HUP is both forwarded and, by default, the reopen signal
        for sig in sigs {
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

    /// The signals received since the last call; `woken`: poll found the
    /// wake-up socket readable (else there is nothing to drain from it).
    fn take(&self, woken: bool) -> Vec<i32> {
        let mut sink = [0u8; 64];
        while woken && matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        let bits = self.pending.swap(0, Ordering::SeqCst);
        (1..64).filter(|sig| bits & (1 << sig) != 0).collect()
    }
}

/// A log file the supervisor writes to, with what it remembers about it.
pub struct Sink {
    log: LogTarget,
    /// The log file ends with a newline (as far as detach wrote it).
    written_line_end: bool,
    /// What detach has taken to write (written or queued) ends with one.
    taken_line_end: bool,
    last_check: Instant,
    /// When the watch first found the path naming nothing.
    missing_since: Option<Instant>,
    /// errno of the last failed reopen, so each kind of failure is said once.
    reopen_error: Option<i32>,
    /// What could not be written yet, and what had to be dropped.
    backlog: Backlog,
    /// detach's own messages written here, for syslog to relay.
    notes: Vec<String>,
}

impl Sink {
    pub fn new(log: LogTarget, limit: usize) -> Sink {
        Sink {
            log,
            written_line_end: true,
            taken_line_end: true,
            last_check: Instant::now(),
            missing_since: None,
            reopen_error: None,
            backlog: Backlog::new(limit),
            notes: Vec::new(),
        }
    }

    /// Writes `data`, or queues it behind what waits for the log to take
    /// data again. Never blocks on a failing log: the pipe keeps flowing.
    fn write(&mut self, data: &[u8], now: Instant, watch: bool) {
        if watch && now.duration_since(self.last_check) >= WATCH_INTERVAL {
            self.check_moved(now);
        }
        if let Some(&last) = data.last() {
            self.taken_line_end = last == b'\n';
        }
        if self.backlog.is_clear() {
            let n = self.write_some(data, now);
            if n < data.len() {
                // A line cut short stays whole: its rest is never dropped.
                self.backlog.push_cut(data, n);
            }
        } else {
            self.backlog.push(data.to_vec());
            if self.backlog.may_try(now) {
                self.drain(now);
            }
        }
    }

    /// Writes as much of `bytes` as the log takes; on a failure, says when
    /// to retry. Returns how many bytes were written.
    fn write_some(&mut self, bytes: &[u8], now: Instant) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            match with_fd(self.log.fd(), |f| f.write(&bytes[done..])) {
                Ok(0) => {
                    self.backlog.failed("the log takes no more data".into(), now);
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.backlog.failed(backlog::describe(&e), now);
                    break;
                }
            }
        }
        if done > 0 {
            self.written_line_end = bytes[done - 1] == b'\n';
        }
        done
    }

    /// Writes what waits: the rest of a chunk cut short, then the marker for
    /// what was dropped, then the queue, oldest first; stops at a failure.
    fn drain(&mut self, now: Instant) {
        if let Some(rest) = self.backlog.started().map(<[u8]>::to_vec) {
            let n = self.write_some(&rest, now);
            self.backlog.advance(n);
            if n < rest.len() {
                return;
            }
        }
        if let Some(loss) = self.backlog.take_loss() {
            let line_break = if self.written_line_end { "" } else { "\n" };
            let marker = format!("dropped {} bytes ({}) {}", loss.bytes, loss.why, loss.between());
            let line = format!("{line_break}detach: {marker}\n");
            let n = self.write_some(line.as_bytes(), now);
            if n == 0 {
                return self.backlog.restore_loss(loss);
            }
            // Cut short by the disk filling up again: its rest goes first.
            self.backlog.push_next(line.as_bytes()[n..].to_vec());
            log::warn!("{marker}");
            self.notes.push(marker);
        }
        while let Some(front) = self.backlog.front() {
            let front = front.to_vec(); // one copy per retry, not per write
            let n = self.write_some(&front, now);
            self.backlog.advance(n);
            if n < front.len() {
                return;
            }
        }
        self.backlog.succeeded();
    }

    /// A retry is due (the supervisor's timer), or the pump is ending.
    fn retry(&mut self, now: Instant) {
        if !self.backlog.is_clear() {
            self.drain(now);
        }
    }

    /// Appends a line of detach's own, starting it on a line of its own,
    /// in order behind whatever waits.
    fn own_line(&mut self, msg: &str) {
        let line_break = if self.taken_line_end { "" } else { "\n" };
        self.write(format!("{line_break}detach: {msg}\n").as_bytes(), Instant::now(), false);
    }

    /// Writes one line of detach's own into this log, at a line boundary
    /// (and hands it to the `log` crate, for a library user's logger).
    fn warn(&mut self, msg: &str) {
        log::warn!("{msg}");
        self.own_line(msg);
        self.notes.push(msg.to_owned());
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
        let old = self.log.id();
        match self.log.reopen() {
            Ok(()) => {
                // Another file: what detach writes there starts a line
                // (reopening the same file keeps where its last line ended).
                self.written_line_end |= self.log.id() != old;
                if self.log.id() != old {
                    // The rest of a line cut short cannot follow its start.
                    self.backlog.abandon_cut();
                }
                self.reopen_error = None;
                self.missing_since = None;
                // A new file may take what the old one would not.
                self.retry(Instant::now());
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

/// Where a stream's bytes go: its log file, if any, and syslog, if on.
struct Out<'a> {
    sink: Option<&'a mut Sink>,
    syslog: Option<&'a mut Syslog>,
    stderr: bool,
    watch: bool,
}

impl Out<'_> {
    fn write(&mut self, data: &[u8], now: Instant) {
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.write(data, now, self.watch);
        }
        if let Some(syslog) = self.syslog.as_deref_mut() {
            syslog.lines(data, self.stderr, now);
        }
    }

    fn warn(&mut self, msg: &str) {
        say(self.sink.as_deref_mut(), self.syslog.as_deref_mut(), msg);
    }
}

/// Says one of detach's own lines: into `sink` (from where the supervisor
/// relays it to syslog), else to `syslog`, else on detach's own stderr.
fn say(sink: Option<&mut Sink>, syslog: Option<&mut Syslog>, msg: &str) {
    match (sink, syslog) {
        (Some(sink), _) => sink.warn(msg),
        (None, Some(l)) => l.note(msg, Instant::now()),
        (None, None) => drop(io::stderr().write_all(format!("detach: {msg}\n").as_bytes())),
    }
}

/// One of the command's output pipes, and the line it may be holding.
pub struct Stream {
    pipe: OwnedFd,
    /// The log it goes to (an index into the supervisor's sinks), if any.
    sink: Option<usize>,
    /// It is the command's stderr (syslog gives it another priority).
    stderr: bool,
    lines: LineBuffer,
    held_since: Option<Instant>,
    open: bool,
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
    fn pump(&mut self, out: &mut Out, interrupt: Option<&AtomicU64>) {
        for _ in 0..READS_PER_WAKE {
            let spare = self.lines.spare();
            let room = spare.len();
            let n = match with_fd(self.pipe.as_fd(), |f| f.read(spare)) {
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
                out.write(self.lines.front(ready), now);
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
            if interrupt.is_some_and(|pending| pending.load(Ordering::Relaxed) != 0) {
                return;
            }
        }
    }

    /// Writes out the incomplete line held, if any.
    fn flush(&mut self, out: &mut Out, now: Instant) {
        let held = self.lines.held();
        if held > 0 {
            out.write(self.lines.front(held), now);
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

/// What the supervisor pumps from, and to.
pub struct Outputs {
    pub streams: Vec<Stream>,
    pub sinks: Vec<Sink>,
    pub syslog: Option<Syslog>,
}

pub struct Supervisor {
    launcher: Launcher,
    backoff: Backoff,
    /// The running command, if any (none between two runs, or at the end).
    child: Option<Pid>,
    /// The process group of the latest run: what a stop must end.
    group: Pid,
    started_at: Instant,
    last_status: i32,
    /// Set once no run follows: detach's exit status.
    status: Option<i32>,
    respawn_at: Option<Instant>,
    /// TERM came: no run follows this one.
    stopping: bool,
    streams: Vec<Stream>,
    sinks: Vec<Sink>,
    syslog: Option<Syslog>,
    signals: Signals,
    /// systemd's notify socket, when detach runs as a Type=notify service.
    notify: Option<Notifier>,
    opts: Options,
    /// When TERM came: the command's group gets KILL at this instant.
    kill_at: Option<Instant>,
    /// After the KILL: leave even if orphans outside the group hold the pipe.
    give_up_at: Option<Instant>,
    /// When the last run ended, for `--drain-timeout`.
    drain_until: Option<Instant>,
    next_watch: Instant,
    /// The last poll found the signal wake-up socket readable.
    woken: bool,
}

impl Supervisor {
    /// `child` is the first run, already started by `launcher`.
    pub fn new(
        launcher: Launcher,
        child: u32,
        outputs: Outputs,
        signals: Signals,
        notify: Option<Notifier>,
        opts: Options,
    ) -> Supervisor {
        let Outputs { streams, sinks, mut syslog } = outputs;
        if let Some(l) = &mut syslog {
            l.set_pid(child);
            l.set_own_pid(std::process::id());
        }
        let child = Pid::from_raw(child as i32);
        Supervisor {
            launcher,
            backoff: Backoff::new(opts.restart.clone()),
            child: Some(child),
            group: child,
            started_at: Instant::now(),
            last_status: 0,
            status: None,
            respawn_at: None,
            stopping: false,
            streams,
            sinks,
            syslog,
            signals,
            notify,
            opts,
            kill_at: None,
            give_up_at: None,
            drain_until: None,
            next_watch: Instant::now() + WATCH_INTERVAL,
            woken: false,
        }
    }

    /// Runs until the command has exited (for good, with restarts) and its
    /// output is drained; returns its status as a shell reports it (N, or
    /// 128+N for signal N).
    pub fn run(mut self) -> i32 {
        self.reap_children();
        while !self.finished() {
            self.wait_for_events();
            self.handle_signals();
            self.pump_streams(true);
            self.handle_timers(Instant::now());
            self.relay_notes();
        }
        self.reap_children();
        // One last try for what waits on a failing log; detach does not
        // outlive its command to wait for disk space.
        let now = Instant::now();
        for sink in &mut self.sinks {
            sink.retry(now);
        }
        self.relay_notes();
        let undelivered = self.syslog.as_mut().map(|l| l.finish(SYSLOG_GRACE)).unwrap_or_default();
        for msg in undelivered {
            say(self.sinks.last_mut(), None, &msg);
        }
        self.launcher.remove_pidfile();
        self.status.unwrap_or(1)
    }

    fn finished(&self) -> bool {
        let drained = self.streams.iter().all(|s| !s.open);
        let now = Instant::now();
        let deadline_passed = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        self.status.is_some() && (drained || deadline_passed(self.drain_until) || deadline_passed(self.give_up_at))
    }

    fn wait_for_events(&mut self) {
        // The wake-up socket, at most two pipes and two syslog sockets: no
        // allocation per wake-up.
        let idle = libc::pollfd { fd: -1, events: 0, revents: 0 };
        let mut fds = [idle; 5];
        let open = self.streams.iter().filter(|s| s.open).map(|s| s.pipe.as_raw_fd());
        let readable = std::iter::once(self.signals.wake.as_raw_fd()).chain(open);
        let readable = readable.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        let sockets = self.syslog.iter().flat_map(Syslog::poll_fds);
        let first_socket = 1 + self.streams.iter().filter(|s| s.open).count();
        let mut n = 0;
        for (slot, fd) in fds.iter_mut().zip(readable.chain(sockets)) {
            *slot = fd;
            n += 1;
        }
        let timeout = self.next_deadline().map_or(-1, |t| {
            let ms = t.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as i32
        });
        // SAFETY: `fds` is a live array of pollfd, of which the first `n`
        // are passed; poll only writes the revents fields, and skips fd -1.
        unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout) };
        self.woken = fds[0].revents != 0;
        if let Some(l) = &mut self.syslog {
            let mut revents = [0i16; 2];
            for (r, fd) in revents.iter_mut().zip(&fds[first_socket..n]) {
                *r = fd.revents;
            }
            l.ready(&revents, Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let held = self.streams.iter().filter_map(|s| s.held_since.map(|t| t + HOLD));
        let watch = self.opts.watch.then_some(self.next_watch);
        let retries = self.sinks.iter().filter_map(|s| s.backlog.retry_at());
        let retries = retries.chain(self.syslog.as_ref().and_then(Syslog::retry_at));
        let timers = [self.kill_at, self.give_up_at, self.drain_until, self.respawn_at];
        held.chain(watch).chain(retries).chain(timers.into_iter().flatten()).min()
    }

    fn handle_signals(&mut self) {
        for sig in self.signals.take(self.woken) {
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
        if let Some(n) = &self.notify {
            n.reloading();
        }
        for sink in &mut self.sinks {
            sink.reopen();
        }
        if let Some(n) = &self.notify {
            n.send("READY=1");
        }
    }

    fn forward_signal(&self, sig: i32) {
        if let (Some(child), Ok(sig)) = (self.child, Signal::try_from(sig)) {
            let _ = kill(child, sig);
        }
    }

    /// TERM: pass it on, and KILL whatever of the command's process group is
    /// left when `--kill-timeout` runs out. Between two runs, no run follows.
    fn stop(&mut self) {
        if let (false, Some(n)) = (self.stopping, &self.notify) {
            n.send("STOPPING=1");
        }
        self.stopping = true;
        match self.child {
            Some(child) => drop(kill(child, Signal::SIGTERM)),
            None => drop(killpg(self.group, Signal::SIGTERM)),
        }
        if self.respawn_at.take().is_some() {
            self.finish(self.last_status);
        }
        self.kill_at.get_or_insert(Instant::now() + self.opts.kill_timeout);
    }

    fn reap_children(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if Some(pid) == self.child => self.run_ended(code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == self.child => {
                    self.run_ended(128 + sig as i32, Some(sig))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {} // an orphan we inherited as subreaper: reaped
            }
        }
    }

    /// A run ended: restart it after a delay, or let it be the last.
    fn run_ended(&mut self, status: i32, signal: Option<Signal>) {
        // What the run wrote before it exited is in the pipe: log it before
        // the line that says the run ended; all of it, signals or not.
        self.pump_streams(false);
        self.child = None;
        self.last_status = status;
        let failed = status != 0 || signal.is_some();
        let next = match self.stopping {
            true => Next::Stop,
            false => self.backoff.next(failed, self.started_at.elapsed()),
        };
        let how = match signal {
            Some(sig) => format!("'{}' was killed by {sig}", self.launcher.spec.program()),
            None => format!("'{}' exited with status {status}", self.launcher.spec.program()),
        };
        match next {
            Next::Stop => self.finish(status),
            Next::GiveUp { n } => {
                self.note(&format!("{how}; giving up after {n} restarts"));
                self.finish(status);
            }
            Next::Restart { n, delay } => {
                self.note(&format!("{how}; restart {n} in {:.1} s", delay.as_secs_f64()));
                self.respawn_at = Some(Instant::now() + delay);
            }
        }
    }

    /// No run follows: exit with `status` once the output is drained.
    fn finish(&mut self, status: i32) {
        self.status = Some(status);
        self.launcher.close_pipes();
        self.drain_until = self.opts.drain_timeout.map(|d| Instant::now() + d);
    }

    fn respawn(&mut self) {
        match self.launcher.launch() {
            Ok(pid) => {
                let pid = Pid::from_raw(pid as i32);
                (self.child, self.group, self.started_at) = (Some(pid), pid, Instant::now());
                if let Some(l) = &mut self.syslog {
                    l.set_pid(pid.as_raw() as u32);
                }
            }
            Err(e) => {
                self.note(&e.to_string());
                self.started_at = Instant::now();
                self.run_ended(e.exit_code().into(), None);
            }
        }
    }

    /// A line of detach's own (restarts): into the stderr log, else the
    /// stdout log, else detach's own stderr.
    fn note(&mut self, msg: &str) {
        say(self.sinks.last_mut(), self.syslog.as_mut(), msg);
    }

    /// detach's own lines written into the logs go to syslog too; syslog's
    /// failures go into the log.
    fn relay_notes(&mut self) {
        let warnings = self.syslog.as_mut().map(Syslog::take_warnings).unwrap_or_default();
        if let Some(sink) = self.sinks.last_mut() {
            warnings.iter().for_each(|w| sink.own_line(w));
        }
        for sink in &mut self.sinks {
            for note in sink.notes.drain(..) {
                if let Some(l) = &mut self.syslog {
                    l.note(&note, Instant::now());
                }
            }
        }
    }

    /// Where `stream`'s bytes go.
    fn out<'a>(sinks: &'a mut [Sink], syslog: &'a mut Option<Syslog>, stream: &Stream, watch: bool) -> Out<'a> {
        let sink = stream.sink.and_then(|i| sinks.get_mut(i));
        Out { sink, syslog: syslog.as_mut(), stderr: stream.stderr, watch }
    }

    fn pump_streams(&mut self, interruptible: bool) {
        let pending = interruptible.then_some(&*self.signals.pending);
        for stream in self.streams.iter_mut().filter(|s| s.open) {
            stream.pump(&mut Self::out(&mut self.sinks, &mut self.syslog, stream, self.opts.watch), pending);
        }
    }

    fn handle_timers(&mut self, now: Instant) {
        let watch = self.opts.watch;
        for stream in &mut self.streams {
            if stream.held_since.is_some_and(|t| now >= t + HOLD) {
                stream.flush(&mut Self::out(&mut self.sinks, &mut self.syslog, stream, watch), now);
            }
        }
        if let Some(l) = &mut self.syslog {
            l.retry(now);
        }
        for sink in &mut self.sinks {
            if sink.backlog.retry_at().is_some_and(|t| now >= t) {
                sink.retry(now);
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
            let _ = killpg(self.group, Signal::SIGKILL);
            if let Some(child) = self.child {
                let _ = kill(child, Signal::SIGKILL); // it may have left its group
            }
            self.give_up_at = Some(now + GIVE_UP_GRACE);
        }
        if self.respawn_at.is_some_and(|t| now >= t) {
            self.respawn_at = None;
            self.respawn();
        }
    }
}
