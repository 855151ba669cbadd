//! The control verbs: `detach status|reopen|stop --pidfile P`.
//!
//! A pidfile's pid alone proves nothing: the process may be gone and its pid
//! reused. The pidfile's lock does: it is held by the daemon for its whole
//! life and released by the kernel when it dies. So every verb checks the
//! lock, and signals through a pidfd opened while the lock is seen held, so
//! that the signal cannot reach a process that took the pid over meanwhile.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// LSB init-script statuses (as `start-stop-daemon --status`).
pub mod status {
    pub const RUNNING: u8 = 0;
    pub const DEAD_PIDFILE_LEFT: u8 = 1;
    pub const NOT_RUNNING: u8 = 3;
    pub const UNKNOWN: u8 = 4;
    /// LSB's "program is not running", for verbs other than status.
    pub const NOT_RUNNING_ACTION: u8 = 7;
}

/// What a pidfile says about its daemon.
enum State {
    /// No pidfile.
    Absent,
    /// A pidfile nobody locks: the daemon is gone (its pid, if any).
    Stale(Option<i32>),
    /// Locked by a live daemon with this pid.
    Running(i32),
}

fn probe(path: &Path) -> io::Result<State> {
    let mut file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::Absent),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let pid = text.trim().parse::<i32>().ok().filter(|&p| p > 0);
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => Ok(State::Stale(pid)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => match pid {
            Some(pid) => Ok(State::Running(pid)),
            // Locked but not written yet: a daemon is starting.
            None => Err(io::Error::other("the pidfile is locked but holds no pid yet")),
        },
        Err((_, e)) => Err(e.into()),
    }
}

fn pidfile_error(path: &Path, err: io::Error) -> Error {
    Error::os(format!("cannot read pidfile '{}'", path.display()), err)
}

/// A pidfd for the daemon of `path`, opened while its lock is seen held.
fn open_daemon(path: &Path) -> Result<Option<(i32, OwnedFd)>> {
    let State::Running(pid) = probe(path).map_err(|e| pidfile_error(path, e))? else { return Ok(None) };
    // SAFETY: pidfd_open(2) takes a pid and flags, and returns a new fd
    // (close-on-exec) that we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Ok(None); // gone between the probe and the open
    }
    // SAFETY: `fd` is a fresh fd returned to us alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Still locked: the pid was the lock holder's when the pidfd was opened.
    match probe(path).map_err(|e| pidfile_error(path, e))? {
        State::Running(p) if p == pid => Ok(Some((pid, pidfd))),
        _ => Ok(None),
    }
}

fn send(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal(2) with a pidfd we own, no siginfo, no flags.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, 0usize, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `detach status`: 0 and a description when running, 1 when the pidfile
/// outlived its daemon, 3 when not running, 4 when the pidfile is unreadable.
pub fn status(path: &Path) -> u8 {
    match probe(path) {
        Ok(State::Running(pid)) => {
            println!("running (pid {pid}){}", uptime(pid).map(|u| format!(", up {u}")).unwrap_or_default());
            if let Some(cmd) = cmdline(pid) {
                println!("command: {cmd}");
            }
            for (fd, name) in [(1, "stdout"), (2, "stderr")] {
                if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
                    println!("{name}: {}", target.display());
                }
            }
            status::RUNNING
        }
        Ok(State::Stale(pid)) => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            println!("not running; stale pidfile '{}'{pid}", path.display());
            status::DEAD_PIDFILE_LEFT
        }
        Ok(State::Absent) => {
            println!("not running");
            status::NOT_RUNNING
        }
        Err(e) => {
            eprintln!("detach: {}", pidfile_error(path, e));
            status::UNKNOWN
        }
    }
}

/// `detach reopen`: the reopen signal, to the daemon only.
pub fn reopen(path: &Path, signal: i32) -> Result<u8> {
    let Some((pid, pidfd)) = open_daemon(path)? else {
        eprintln!("detach: not running (pidfile '{}')", path.display());
        return Ok(status::NOT_RUNNING_ACTION);
    };
    send(&pidfd, signal).map_err(|e| Error::os(format!("cannot signal pid {pid}"), e))?;
    Ok(0)
}

/// `detach stop`: TERM, wait up to `timeout` for the daemon to exit, then
/// KILL it and the process groups of its children. 0 once it is gone and its
/// pidfile removed (also when it was not running).
pub fn stop(path: &Path, timeout: Duration) -> Result<u8> {
    let Some((pid, pidfd)) = open_daemon(path)? else {
        remove_stale(path);
        println!("not running");
        return Ok(0);
    };
    send(&pidfd, libc::SIGTERM).map_err(|e| Error::os(format!("cannot signal pid {pid}"), e))?;
    if !wait_gone(path, timeout) {
        let children = children_of(pid);
        let _ = send(&pidfd, libc::SIGKILL);
        for child in children {
            // SAFETY: kill(2); the children's process groups, found while
            // their parent (which reaps them) was still alive.
            unsafe { libc::kill(-child, libc::SIGKILL) };
        }
        if !wait_gone(path, Duration::from_secs(5)) {
            return Err(Error::os(format!("pid {pid} did not die"), io::Error::from_raw_os_error(libc::ETIMEDOUT)));
        }
        println!("killed (pid {pid}) after {:.1} s", timeout.as_secs_f64());
    }
    remove_stale(path);
    Ok(0)
}

fn wait_gone(path: &Path, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if !matches!(probe(path), Ok(State::Running(_))) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes a pidfile that nobody locks (a daemon killed before it could).
fn remove_stale(path: &Path) {
    if let Ok(State::Stale(_)) = probe(path) {
        let _ = std::fs::remove_file(path);
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<_> = raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect();
    Some(args.join(" "))
}

/// How long `pid` has run, as 1d02h03m04s.
fn uptime(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start: u64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
    let mut up = String::new();
    File::open("/proc/uptime").ok()?.read_to_string(&mut up).ok()?;
    let now: f64 = up.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let secs = (now - start as f64 / hz).max(0.0) as u64;
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    Some(match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m{s:02}s"),
    })
}
