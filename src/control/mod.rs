//! The control verbs: `detach status|stop|reopen|restart|signal --pidfile P`.
//!
//! A pidfile's text proves nothing: the process may be gone and its pid
//! reused, or a stranger may have written it. What the verbs believe is the
//! kernel's answer to "who holds the write lock on this file" (F_GETLK, see
//! [`crate::pidfile`]), checked again after a pidfd was opened on that pid:
//! the pidfd then names the holder for as long as we keep it, and every
//! signal goes through it. A child pidfile (`--child-pidfile`) names the
//! command, locked by its supervisor: its pid is believed only while it is a
//! live child of the lock holder. Run as root, a verb also refuses a pidfile
//! that another user could have replaced (the file, or a directory on its
//! path, not root's or writable by others).

mod answers;
mod holder;
mod procinfo;

use answers::{Answer, Answers};
use holder::{Found, Named, Proc, Untrusted, find, refuse};
use procinfo::{children_of, cmdline, deadline, uptime};

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pidfile;
use crate::request::{self, Request};

/// The verbs' exit statuses: `status` follows the LSB init-script
/// conventions (as `start-stop-daemon --status`); the others share theirs.
pub mod code {
    pub const OK: u8 = 0;
    /// status: dead, its pidfile left. Other verbs: no answer in time.
    pub const STALE: u8 = 1;
    pub const TIMEOUT: u8 = 1;
    /// status: not running (or, for a child pidfile, between two runs).
    pub const NOT_RUNNING: u8 = 3;
    /// The pidfile cannot be read or is not trusted; the daemon cannot do
    /// what was asked (no requests with `--exec`).
    pub const UNTRUSTED: u8 = 4;
    /// LSB's "program is not running", for verbs other than status.
    pub const NOT_RUNNING_ACTION: u8 = 7;
}

/// `detach status`: 0 and a description when running, 1 when the pidfile
/// outlived its daemon, 3 when not running (or a child pidfile between two
/// runs), 4 when the pidfile is unreadable or not trusted.
pub fn status(path: &Path) -> u8 {
    let found = match find(path) {
        Ok(f) => f,
        Err(e) => return refuse(e),
    };
    let (pid, supervisor) = match &found {
        Found::Running { holder, named: Named::Holder } => (holder.pid, None),
        Found::Running { holder, named: Named::Child(child) } => (child.pid, Some(holder.pid)),
        Found::Running { named: Named::Nothing, .. } | Found::Absent => {
            println!("{}", found.describe_not_running(path));
            return code::NOT_RUNNING;
        }
        Found::Stale(_) => {
            println!("{}", found.describe_not_running(path));
            return code::STALE;
        }
    };
    let up = uptime(pid).map(|u| format!(", up {u}")).unwrap_or_default();
    let sup = supervisor.map(|s| format!(", supervised by pid {s}")).unwrap_or_default();
    println!("running (pid {pid}){up}{sup}");
    if let Some(cmd) = cmdline(pid) {
        println!("command: {cmd}");
    }
    for (fd, name) in [(1, "stdout"), (2, "stderr")] {
        if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
            println!("{name}: {}", target.display());
        }
    }
    code::OK
}

/// The process a signal verb aims at: the one the pidfile names.
fn target(found: &Found) -> Option<&Proc> {
    match found {
        Found::Running { holder, named: Named::Holder } => Some(holder),
        Found::Running { named: Named::Child(child), .. } => Some(child),
        _ => None,
    }
}

/// `detach reopen` without `--wait`: the reopen signal, to the process the
/// pidfile names (the supervisor; the command, for a child pidfile).
pub fn reopen(path: &Path, signal: i32) -> Result<u8> {
    let found = match find(path) {
        Ok(f) => f,
        Err(e) => return Ok(refuse(e)),
    };
    let Some(proc) = target(&found) else {
        eprintln!("detach: {}", found.describe_not_running(path));
        return Ok(code::NOT_RUNNING_ACTION);
    };
    proc.signal(signal).map_err(|e| Error::os(format!("cannot signal pid {}", proc.pid), e))?;
    Ok(code::OK)
}

/// `detach stop`: TERM, wait up to `timeout` for the process to exit, then
/// KILL it and the process groups of its children. 0 once it is gone and its
/// pidfile removed (also when it was not running); 1 when it would not die.
pub fn stop(path: &Path, timeout: Duration) -> Result<u8> {
    let found = match find(path) {
        Ok(f) => f,
        Err(e) => return Ok(refuse(e)),
    };
    let Some(proc) = target(&found) else {
        pidfile::remove_if_stale(path);
        println!("{}", found.describe_not_running(path));
        return Ok(code::OK);
    };
    proc.signal(libc::SIGTERM).map_err(|e| Error::os(format!("cannot signal pid {}", proc.pid), e))?;
    if !proc.wait_exit(timeout) {
        let children = children_of(proc.pid);
        let _ = proc.signal(libc::SIGKILL);
        for child in children {
            // SAFETY: kill(2); the children's process groups, found while
            // their parent (which reaps them) was still alive.
            unsafe { libc::kill(-child, libc::SIGKILL) };
        }
        if !proc.wait_exit(Duration::from_secs(5)) {
            eprintln!("detach: pid {} did not die", proc.pid);
            return Ok(code::TIMEOUT);
        }
        println!("killed (pid {}) after {:.1} s", proc.pid, timeout.as_secs_f64());
    }
    pidfile::remove_if_stale(path);
    Ok(code::OK)
}

/// The supervisor that holds `path`'s lock, or the status to exit with,
/// having said why there is none (not running: 7; untrusted: 4).
fn running_holder(path: &Path) -> std::result::Result<Proc, u8> {
    match find(path).map_err(refuse)? {
        Found::Running { holder, .. } => Ok(holder),
        found => {
            eprintln!("detach: {}", found.describe_not_running(path));
            Err(code::NOT_RUNNING_ACTION)
        }
    }
}

/// `detach reopen --wait`, `restart`, `signal`: a request to the supervisor
/// that holds the pidfile, answered once done. 0 when done; 1 when no answer
/// came within `timeout`; 7 when not running; 4 when the holder is no
/// supervisor that takes requests; the supervisor's errno as an error.
pub fn request(path: &Path, req: Request, timeout: Duration) -> Result<u8> {
    let holder = match running_holder(path) {
        Ok(holder) => holder,
        Err(code) => return Ok(code),
    };
    let holder = &holder;
    // Anything else would die of the request signal (its default action).
    if !request::takes_requests(holder.pid) {
        return Ok(refuse(Untrusted(format!("pid {} does not take requests (started with --exec?)", holder.pid))));
    }
    let answers = Answers::listen().map_err(|e| Error::os("cannot wait for the answer", e))?;
    let me = std::process::id() as i32;
    let start =
        request::start_time(me).ok_or_else(|| Error::os("cannot read /proc/self/stat", io::Error::last_os_error()))?;
    holder
        .queue(request::request_signal(), req.encode(start))
        .map_err(|e| Error::os(format!("cannot send the request to pid {}", holder.pid), e))?;
    match answers.wait(holder, deadline(timeout)).map_err(|e| Error::os("cannot wait for the answer", e))? {
        Answer::Done(0) => Ok(code::OK),
        Answer::Done(errno) => Err(Error::os(
            format!("the supervisor (pid {}) could not {}", holder.pid, describe(req)),
            io::Error::from_raw_os_error(errno),
        )),
        Answer::Gone => {
            eprintln!("detach: the supervisor (pid {}) exited before answering", holder.pid);
            Ok(code::NOT_RUNNING_ACTION)
        }
        Answer::Timeout => {
            eprintln!(
                "detach: no answer from the supervisor (pid {}) within {:.1} s",
                holder.pid,
                timeout.as_secs_f64()
            );
            Ok(code::TIMEOUT)
        }
    }
}

/// `detach logs`: the last `n` lines of the logs over the supervisor's fds
/// `fds` (1, 2 or both), then, with `follow`, what is written until the
/// daemon ends. 0; 4 pidfile not trusted or no log file; 7 not running.
pub fn logs(path: &Path, n: usize, follow: bool, fds: &[i32]) -> Result<u8> {
    let holder = match running_holder(path) {
        Ok(holder) => holder,
        Err(code) => return Ok(code),
    };
    let holder = &holder;
    match crate::logs::show(holder.pid, fds, n, follow, &|t| holder.wait_exit(t)) {
        Ok(true) => Ok(code::OK),
        Ok(false) => Ok(refuse(Untrusted(format!("pid {} writes no log file", holder.pid)))),
        // Piped into `head`, which has seen enough.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code::OK),
        Err(e) => Err(Error::os(format!("cannot read the logs of pid {}", holder.pid), e)),
    }
}

fn describe(req: Request) -> String {
    match req {
        Request::Reopen => "reopen its logs".into(),
        Request::Restart => "restart the command".into(),
        Request::Signal(sig) => format!("signal the command with SIG{}", crate::sig::name(sig)),
        Request::Rotate => "rotate its logs".into(),
    }
}
