//! Requests from the control verbs to a running supervisor, and its answers.
//!
//! A request is a queued real-time signal (`SIGRTMIN+5`) sent through a pidfd
//! with a value, as sigqueue(3) sends one. The supervisor keeps it blocked and
//! reads it from its signalfd with the sender's pid and the value; real-time
//! signals queue, so two verbs at once are both heard. The value carries what
//! is asked and the verb's start time. The answer is SIGURG with the outcome
//! as its value, sent through a pidfd opened on the verb's pid and then
//! checked against that start time, so that it can never reach a process that
//! reused the pid of a verb that gave up; and SIGURG's default action is to be
//! ignored, so even a misdirected answer would harm nobody.
//!
//! A verb sends a request only to a supervisor that blocks the request signal
//! (read from /proc/PID/status): a `--exec` daemon, or a detach from before
//! requests existed, would be killed by it instead.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The signal that carries a request (blocked by every supervisor).
pub fn request_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

/// The signal that carries the answer (ignored by default).
pub const ANSWER_SIGNAL: i32 = libc::SIGURG;

/// What a verb asks of the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Reopen every log, then answer (`detach reopen --wait`).
    Reopen,
    /// Stop the command and start it again in place; answer once the new run
    /// has been exec'd (`detach restart`).
    Restart,
    /// Send this signal to the command (`detach signal`).
    Signal(i32),
    /// Rotate every log now, then answer (`detach rotate`).
    Rotate,
}

impl Request {
    /// The value sent with the request signal: the verb's start time (clock
    /// ticks since boot, /proc/PID/stat field 22), the argument, the kind.
    pub fn encode(self, start_time: u64) -> u64 {
        let (kind, arg) = match self {
            Request::Reopen => (1u64, 0u64),
            Request::Restart => (2, 0),
            Request::Signal(sig) => (3, sig as u8 as u64),
            Request::Rotate => (4, 0),
        };
        start_time << 16 | arg << 8 | kind
    }

    /// The request and the sender's start time, or `None` for a value that
    /// no verb sends.
    pub fn decode(value: u64) -> Option<(Request, u64)> {
        let arg = (value >> 8 & 0xff) as i32;
        let request = match value & 0xff {
            1 => Request::Reopen,
            2 => Request::Restart,
            3 if arg > 0 => Request::Signal(arg),
            4 => Request::Rotate,
            _ => return None,
        };
        Some((request, value >> 16))
    }
}

/// When `pid` started, in clock ticks since boot: with the pid, it names one
/// process for the whole life of the system.
pub fn start_time(pid: i32) -> Option<u64> {
    crate::procfs::stat(pid).map(|s| s.start_time)
}

/// Whether `pid` blocks the request signal, i.e. is a supervisor that reads
/// requests (anything else would die of one).
pub fn takes_requests(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).map(str::trim);
    let mask = blocked.and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0);
    mask & 1 << (request_signal() - 1) != 0
}

/// The kernel's siginfo for a queued signal (`SI_QUEUE`, the `_rt` member):
/// signo, errno, code, then, 8-byte aligned, pid, uid and the value; 128 bytes.
#[repr(C)]
struct QueuedInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _align: i32,
    pid: i32,
    uid: u32,
    value: u64,
    _rest: [u64; 12],
}

impl QueuedInfo {
    fn new(sig: i32, value: u64) -> QueuedInfo {
        QueuedInfo {
            signo: sig,
            errno: 0,
            code: libc::SI_QUEUE,
            _align: 0,
            pid: std::process::id() as i32,
            // SAFETY: getuid(2) cannot fail.
            uid: unsafe { libc::getuid() },
            value,
            _rest: [0; 12],
        }
    }
}

/// Sends `sig` with `value` to the process of `pidfd`, as sigqueue(3) does.
pub fn send_queued(pidfd: BorrowedFd, sig: i32, value: u64) -> io::Result<()> {
    let info = QueuedInfo::new(sig, value);
    // SAFETY: pidfd_send_signal(2) reads 128 bytes of siginfo from `info`,
    // which is exactly that size and lives across the call.
    let r =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, &info as *const QueuedInfo, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// [`send_queued`] by pid, for kernels without pidfds (before 5.3): the
/// caller checks the pid's start time just before, which leaves a window the
/// pidfd closes.
pub fn send_queued_to_pid(pid: i32, sig: i32, value: u64) -> io::Result<()> {
    let info = QueuedInfo::new(sig, value);
    // SAFETY: rt_sigqueueinfo(2) reads 128 bytes of siginfo from `info`, as
    // above.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, sig, &info as *const QueuedInfo) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A pidfd for `pid`: it keeps naming that process even once the pid is
/// reused, so a signal sent through it cannot reach a stranger.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd
    // (close-on-exec) that we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh fd returned to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The supervisor's answer to the verb `pid` that started at `start_time`:
/// 0 when done, else an errno. Best effort: a verb that gave up is gone.
pub fn answer(pid: i32, start_time: u64, outcome: i32) {
    let value = outcome as u32 as u64;
    match pidfd_open(pid) {
        // The pidfd was opened first: if the process it names has the verb's
        // start time, it is the verb, and stays so while we hold the pidfd.
        Ok(pidfd) => {
            if self::start_time(pid) == Some(start_time) {
                let _ = send_queued(std::os::fd::AsFd::as_fd(&pidfd), ANSWER_SIGNAL, value);
            }
        }
        // No pidfds (kernel before 5.3): check, then send by pid. SIGURG is
        // ignored by default, so the narrow window harms nobody.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            if self::start_time(pid) == Some(start_time) {
                let _ = send_queued_to_pid(pid, ANSWER_SIGNAL, value);
            }
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_survive_encoding_with_a_large_start_time() {
        let t = (1u64 << 47) + 12345;
        for r in
            [Request::Reopen, Request::Restart, Request::Signal(libc::SIGUSR1), Request::Signal(64), Request::Rotate]
        {
            assert_eq!(Request::decode(r.encode(t)), Some((r, t)));
        }
    }

    #[test]
    fn unknown_values_are_not_requests() {
        assert_eq!(Request::decode(0), None);
        assert_eq!(Request::decode(7), None);
        assert_eq!(Request::decode(3), None); // a signal request without a signal
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(start_time(std::process::id() as i32).is_some());
    }
}
