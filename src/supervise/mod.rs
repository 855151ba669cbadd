//! The supervisor: one event loop over signals, child exits and pipe data.
//!
//! Reads like tini's main: wait for events, handle signals, pump output,
//! run the timers, reap children, and end the way the command ended once it
//! is gone and every writer of its pipes has closed them. The pieces it
//! drives know nothing of it: signals.rs reads the signals, stream.rs the
//! pipes, sink.rs the log files, syslog/ the syslog destinations.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::daemon::Reporter;
use crate::error::Error;

mod group;
mod requests;
mod runs;
mod starting;

use crate::deadline::after as deadline;
use crate::notify::Notifier;
use crate::ready::{self, Gate, NotifySocket};
use crate::restart::{Backoff, Ending, Launcher, Policy, SuccessStatus};
use crate::signals::Event;
pub use crate::signals::Signals;
pub use crate::sink::Sink;
use crate::sink::WATCH_INTERVAL;
pub use crate::stream::Stream;
use crate::stream::{HOLD, Out, say};
use crate::syslog::Syslog;

/// After the final KILL, how long orphans outside the command's process group
/// may keep the pipe open before the supervisor leaves anyway.
const GIVE_UP_GRACE: Duration = Duration::from_secs(1);
/// At exit, how long syslog destinations may take to accept what they hold.
const SYSLOG_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Options {
    pub reopen_signal: i32,
    pub watch: bool,
    /// What a stop sends the command (`--stop-signal`, default TERM).
    pub stop_signal: i32,
    /// A stop signals the command's whole process group (`--stop-group`).
    pub stop_group: bool,
    pub kill_timeout: Duration,
    pub drain_timeout: Option<Duration>,
    pub restart: Policy,
    /// Endings that count as clean, and make detach exit 0.
    pub success: SuccessStatus,
    /// Bound of the backlog each log holds while it cannot be written.
    pub log_buffer: usize,
    /// Timestamps and rotation of the log files.
    pub logging: crate::sink::Logging,
}

/// What the supervisor pumps from, and to.
pub struct Outputs {
    pub streams: Vec<Stream>,
    pub sinks: Vec<Sink>,
    pub syslog: Option<Syslog>,
}

/// A verb waiting for an answer: its pid and start time.
type Waiter = (i32, u64);

/// How the supervisor ended.
pub enum Outcome {
    /// As the command ended (or with 0 for a `--success-status` ending).
    Ended(Ending),
    /// The first run was never ready: the caller is told why.
    StartFailed(Error),
}

/// Knowing it started: what the first parent (or systemd) waits for.
pub struct Start {
    pub ready: ready::Options,
    /// detach's own NOTIFY_SOCKET, for `--ready notify`.
    pub notify_socket: Option<NotifySocket>,
    /// Who waits for the start to be settled.
    pub caller: Caller,
}

/// Who hears how the start went: the first parent, waiting (default mode),
/// or, in the foreground, detach's original stderr (the journal), kept
/// apart from the log that fd 2 now is.
#[derive(Default)]
pub struct Caller {
    pub reporter: Option<Reporter>,
    pub stderr: Option<std::fs::File>,
}

pub struct Supervisor {
    launcher: Launcher,
    backoff: Backoff,
    /// The running command, if any (none between two runs, or at the end).
    child: Option<Pid>,
    /// The process group of the latest run: what a stop must end.
    group: Pid,
    started_at: Instant,
    last_ending: Ending,
    /// Set once no run follows: how detach ends.
    ending: Option<Ending>,
    respawn_at: Option<Instant>,
    /// TERM came: no run follows this one.
    stopping: bool,
    /// `detach restart`: the run being stopped is followed at once by a new one.
    restarting: bool,
    /// Verbs waiting for the new run of a restart.
    restart_waiters: Vec<Waiter>,
    streams: Vec<Stream>,
    sinks: Vec<Sink>,
    syslog: Option<Syslog>,
    signals: Signals,
    /// systemd's notify socket, when detach runs as a Type=notify service.
    notify: Option<Notifier>,
    opts: Options,
    /// When a stop began: the command's group gets KILL at this instant.
    kill_at: Vec<(Instant, Pid)>,
    /// After the KILL: leave even if orphans outside the group hold the pipe.
    give_up_at: Option<Instant>,
    /// When the last run ended, for `--drain-timeout`.
    drain_until: Option<Instant>,
    next_watch: Instant,
    /// The last poll found the signalfd readable.
    woken: bool,
    start: Start,
    /// The current run's start gate, while it is open.
    gate: Option<Gate>,
    /// No run has been ready yet: the gate's outcome goes to the caller.
    first_run: bool,
    /// The first run was never ready: why, for the caller.
    start_failure: Option<Error>,
    /// The last poll found detach's own notify socket readable.
    notified: bool,
    /// The run being stopped was not ready in time: its end is a failure,
    /// whatever signal ended it.
    unready: bool,
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
        start: Start,
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
            last_ending: Ending::Exited(0),
            ending: None,
            respawn_at: None,
            stopping: false,
            restarting: false,
            restart_waiters: Vec::new(),
            streams,
            sinks,
            syslog,
            signals,
            notify,
            opts,
            kill_at: Vec::new(),
            give_up_at: None,
            drain_until: None,
            next_watch: Instant::now() + WATCH_INTERVAL,
            woken: false,
            gate: start.ready.gated().then(|| Gate::new(&start.ready, Instant::now())),
            start,
            first_run: true,
            start_failure: None,
            notified: false,
            unready: false,
        }
    }

    /// Runs until the command has exited (for good, with restarts) and its
    /// output is drained; returns how detach must end: as the command did,
    /// with 0 for an ending `--success-status` lists, or with the reason the
    /// first run was never ready (and the first parent, still waiting).
    pub fn run(mut self) -> (Outcome, Caller) {
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
            // The archives in place before the pidfile goes.
            let _ = sink.settled();
        }
        self.relay_notes();
        let undelivered = self.syslog.as_mut().map(|l| l.finish(SYSLOG_GRACE)).unwrap_or_default();
        for msg in undelivered {
            say(self.sinks.last_mut(), None, &msg);
        }
        // detach's last lines above may have rotated a log.
        for sink in &mut self.sinks {
            let _ = sink.settled();
        }
        self.launcher.remove_pidfile();
        self.answer_restarts(libc::ECANCELED);
        let outcome = match (self.start_failure.take(), self.ending.unwrap_or(Ending::Exited(1))) {
            (Some(e), _) => Outcome::StartFailed(e),
            (None, e) if self.opts.success.listed(e) => Outcome::Ended(Ending::Exited(0)),
            (None, e) => Outcome::Ended(e),
        };
        (outcome, std::mem::take(&mut self.start.caller))
    }

    fn finished(&self) -> bool {
        let drained = self.streams.iter().all(|s| !s.open);
        let now = Instant::now();
        let deadline_passed = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        self.ending.is_some() && (drained || deadline_passed(self.drain_until) || deadline_passed(self.give_up_at))
    }

    fn wait_for_events(&mut self) {
        // The signalfd, at most two pipes and two syslog sockets: no
        // allocation per wake-up.
        let idle = libc::pollfd { fd: -1, events: 0, revents: 0 };
        let mut fds = [idle; 6];
        let open = self.streams.iter().filter(|s| s.open).map(|s| s.pipe.as_raw_fd());
        let readable = std::iter::once(self.signals.fd().as_raw_fd()).chain(open);
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
        let own_notify =
            self.start.notify_socket.as_ref().map(|s| libc::pollfd { fd: s.fd(), events: libc::POLLIN, revents: 0 });
        if let Some(pfd) = own_notify {
            fds[n] = pfd;
            n += 1;
        }
        // SAFETY: `fds` is a live array of pollfd, of which the first `n`
        // are passed; poll only writes the revents fields, and skips fd -1.
        unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout) };
        self.woken = fds[0].revents != 0;
        self.notified = own_notify.is_some() && fds[n - 1].revents != 0;
        let n = n - usize::from(own_notify.is_some());
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
        let retries = self.sinks.iter().filter_map(Sink::retry_at);
        let retries = retries.chain(self.syslog.as_ref().and_then(Syslog::retry_at));
        let gate = self.gate.as_ref().map(Gate::deadline);
        let kills = self.kill_at.iter().map(|&(t, _)| t);
        let timers = [self.give_up_at, self.drain_until, self.respawn_at, gate];
        held.chain(watch).chain(retries).chain(kills).chain(timers.into_iter().flatten()).min()
    }

    fn handle_signals(&mut self) {
        if !self.woken {
            return;
        }
        for event in self.signals.take() {
            match event {
                Event::Reopen => drop(self.reopen_logs()),
                Event::Child => self.reap_children(),
                Event::Stop => self.stop(),
                Event::Rotate => drop(self.rotate_logs()),
                Event::Forward(sig) => drop(self.forward_signal(sig)),
                Event::Request { request, pid, start_time } => self.handle_request(request, (pid, start_time)),
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
            for note in sink.take_notes() {
                if let Some(l) = &mut self.syslog {
                    l.note(&note, Instant::now());
                }
            }
        }
    }

    /// Where `stream`'s bytes go.
    fn out<'a>(
        sinks: &'a mut [Sink],
        syslog: &'a mut Option<Syslog>,
        gate: &'a mut Option<Gate>,
        stream: &Stream,
        watch: bool,
    ) -> Out<'a> {
        let sink = stream.sink.and_then(|i| sinks.get_mut(i));
        Out { sink, syslog: syslog.as_mut(), stderr: stream.stderr, watch, gate: gate.as_mut() }
    }

    fn pump_streams(&mut self, interruptible: bool) {
        let signals = interruptible.then_some(&self.signals);
        for stream in self.streams.iter_mut().filter(|s| s.open) {
            stream.pump(
                &mut Self::out(&mut self.sinks, &mut self.syslog, &mut self.gate, stream, self.opts.watch),
                signals,
            );
        }
    }

    fn handle_timers(&mut self, now: Instant) {
        self.check_gate(now);
        let watch = self.opts.watch;
        for stream in &mut self.streams {
            if stream.held_since.is_some_and(|t| now >= t + HOLD) {
                stream.flush(&mut Self::out(&mut self.sinks, &mut self.syslog, &mut self.gate, stream, watch), now);
            }
        }
        if let Some(l) = &mut self.syslog {
            l.retry(now);
        }
        for sink in &mut self.sinks {
            if sink.retry_at().is_some_and(|t| now >= t) {
                sink.retry(now);
            }
        }
        if watch && now >= self.next_watch {
            for sink in &mut self.sinks {
                sink.check_moved(now);
            }
            self.next_watch = now + WATCH_INTERVAL;
        }
        for (_, group) in self.kill_at.extract_if(.., |&mut (t, _)| now >= t).collect::<Vec<_>>() {
            let leader_alive = self.child.is_some() && group == self.group;
            group::signal_group(group, leader_alive, libc::SIGKILL);
            if let Some(child) = self.child.filter(|_| group == self.group) {
                // SAFETY: kill(2) on our unreaped child, which may have left its group.
                unsafe { libc::kill(child.as_raw(), libc::SIGKILL) };
            }
            if group == self.group {
                self.give_up_at = Some(now + GIVE_UP_GRACE);
            }
        }
        if self.respawn_at.is_some_and(|t| now >= t) {
            self.respawn_at = None;
            self.respawn();
        }
    }
}
