//! The supervisor's signals: blocked, and read synchronously from a signalfd
//! in the event loop (catatonit's and tini's way).
//!
//! No handler ever runs: a signal that arrives between two polls waits,
//! pending, until the loop reads it, and no handler can be live in the
//! command between fork and exec (the child unblocks them before exec, with
//! default dispositions). Two signals of one kind may merge into one; the
//! loop acts on state, not on counts. Requests from the control verbs are
//! queued real-time signals, which never merge, so each one is answered.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::request::{self, Request};

/// Signals forwarded to the command as they are.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGHUP,
];

/// What a signal asks the supervisor to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The reopen signal: reopen the logs.
    Reopen,
    /// SIGCHLD: reap.
    Child,
    /// SIGTERM: stop the command, and end.
    Stop,
    /// SIGALRM (as s6-log, svlogd and multilog): rotate the logs now. No
    /// longer forwarded to the command, unless it is the reopen signal.
    Rotate,
    /// Pass this signal on to the command.
    Forward(i32),
    /// A control verb's request, from the verb `pid` that started at `start_time`.
    Request { request: Request, pid: i32, start_time: u64 },
}

pub struct Signals {
    fd: SignalFd,
    /// The handled signals' numbers, for the pump's quick look.
    handled: Vec<i32>,
    reopen: i32,
}

impl Signals {
    /// Blocks the forwarded signals, the reopen signal, SIGCHLD and the
    /// request signal, with default dispositions (an ignored signal, say
    /// HUP under nohup, would never become pending), and opens a signalfd
    /// for them. Call before spawning the command, so that no exit is
    /// missed. Every other signal is unblocked: a caller that blocked TERM
    /// or CHLD (a shell's trap, a thread pool) must not pass that on.
    pub fn block(reopen_signal: i32) -> io::Result<Signals> {
        let handled: Vec<i32> = FORWARDED
            .iter()
            .map(|&s| s as i32)
            .chain([libc::SIGCHLD, libc::SIGALRM, reopen_signal, request::request_signal()])
            .collect();
        let set = signal_set(handled.iter().copied());
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&set), None)?;
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for sig in set.iter() {
            // SAFETY: installs no handler (SIG_DFL) for a signal that is
            // blocked: nothing can run, and nothing is unsound about it.
            unsafe { sigaction(sig, &default) }?;
        }
        for sig in [reopen_signal, request::request_signal()] {
            set_default_raw(sig)?; // real-time signals are not nix `Signal`s
        }
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd, handled, reopen: reopen_signal })
    }

    /// The fd to poll: readable while a signal is pending.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether one of our signals waits to be read (the pump yields to it):
    /// one sigpending(2), then a look at the few signals handled.
    pub fn pending(&self) -> bool {
        // SAFETY: a zeroed sigset_t is a valid value; sigpending(2) writes
        // the one we own, and sigismember reads it.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending) == 0 && self.handled.iter().any(|&s| libc::sigismember(&pending, s) == 1)
        }
    }

    /// Every signal pending, as events, in the order read; repeated kinds
    /// other than requests once.
    pub fn take(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let event = self.event(&info);
            if matches!(event, Some(Event::Request { .. })) || !event.is_some_and(|e| events.contains(&e)) {
                events.extend(event);
            }
        }
        events
    }

    fn event(&self, info: &libc::signalfd_siginfo) -> Option<Event> {
        let sig = info.ssi_signo as i32;
        Some(match sig {
            s if s == self.reopen => Event::Reopen,
            libc::SIGCHLD => Event::Child,
            libc::SIGTERM => Event::Stop,
            libc::SIGALRM => Event::Rotate,
            s if s == request::request_signal() => {
                // Only a verb's sigqueue carries a request; a bare kill of
                // this signal (no value) is ignored.
                if info.ssi_code != libc::SI_QUEUE {
                    return None;
                }
                let (request, start_time) = Request::decode(info.ssi_ptr)?;
                Event::Request { request, pid: info.ssi_pid as i32, start_time }
            }
            s => Event::Forward(s),
        })
    }
}

/// A set of signal numbers, real-time ones included (nix's `Signal` has none).
fn signal_set(sigs: impl Iterator<Item = i32>) -> SigSet {
    // SAFETY: a zeroed sigset_t is a valid value, emptied by sigemptyset;
    // sigaddset writes the live sigset_t we own, and an invalid number is
    // refused with EINVAL, changing nothing.
    unsafe {
        let mut raw: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut raw);
        for sig in sigs {
            libc::sigaddset(&mut raw, sig);
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// SIG_DFL for any signal number, real-time ones included.
fn set_default_raw(sig: i32) -> io::Result<()> {
    // SAFETY: `signal` installs no handler (SIG_DFL); the signal is blocked.
    if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks every signal in the calling thread (a helper thread of the
/// supervisor's), so that all of them stay for the event loop's signalfd.
pub fn block_all_in_this_thread() {
    // The full set: nix's `SigSet::all()`; changes this thread's mask only.
    let _ = SigSet::all().thread_block();
}

/// Ends this process the way the command ended, by `sig`, so that its parent
/// (systemd, a shell, a CI runner) sees a death by that signal: default
/// disposition, no core of our own (RLIMIT_CORE 0: the command's core is
/// the one that matters), unblocked, raised. Falls back to the shell's
/// 128+N for a signal whose default action does not end a process.
pub fn die_by(sig: i32) -> ! {
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on values we own; after them this process
    // ends, so nothing depends on the state they change.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        // A core_pattern that pipes to a program ignores RLIMIT_CORE 0;
        // a process that is not dumpable dumps no core in any case.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}
