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

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::pidfile::{self, Lock};
use crate::request::{self, ANSWER_SIGNAL, Request};

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

/// How long a verb waits for a locked pidfile to name its holder: a daemon
/// that is starting (item 10 of issue 13: `stop` right after a start).
const STARTING_WAIT: Duration = Duration::from_secs(5);

/// A process, pinned by a pidfd where the kernel has them (5.3), else by
/// its start time, checked before each signal.
struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    start: u64,
}

impl Proc {
    /// `None` when `pid` is gone.
    fn open(pid: i32) -> Option<Proc> {
        let pidfd = match request::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            // Kernels before 5.3: fall back to the pid and its start time,
            // as close_range's fallback does; the caller re-checks the lock.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(_) => return None,
        };
        let start = request::start_time(pid)?;
        Some(Proc { pid, pidfd, start })
    }

    fn signal(&self, sig: i32) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => {
                // SAFETY: pidfd_send_signal(2) with a pidfd we own, no siginfo.
                let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, 0usize, 0) };
                if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            }
            None if self.same() => {
                // SAFETY: kill(2); the pid was checked to be the same process
                // just above (the window is what a pidfd would close).
                if unsafe { libc::kill(self.pid, sig) } < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            }
            None => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }

    fn queue(&self, sig: i32, value: u64) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => request::send_queued(fd.as_fd(), sig, value),
            None if self.same() => request::send_queued_to_pid(self.pid, sig, value),
            None => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }

    /// Still the process we found, and not a zombie.
    fn same(&self) -> bool {
        request::start_time(self.pid) == Some(self.start) && stat_field(self.pid, 0).as_deref() != Some("Z")
    }

    /// Waits up to `timeout` for the process to end; true once it has.
    fn wait_exit(&self, timeout: Duration) -> bool {
        let end = deadline(timeout);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match &self.pidfd {
                // A pidfd is readable once its process has exited (and closed
                // its files, so its locks are gone).
                Some(fd) => {
                    if poll_in(&[fd.as_raw_fd()], left).is_some() {
                        return true;
                    }
                }
                None => {
                    if !self.same() {
                        return true;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(20)));
                }
            }
            if Instant::now() >= end {
                return !self.alive();
            }
        }
    }

    fn alive(&self) -> bool {
        match &self.pidfd {
            Some(fd) => poll_in(&[fd.as_raw_fd()], Duration::ZERO).is_none(),
            None => self.same(),
        }
    }
}

/// What the pidfile of a running daemon names.
enum Named {
    /// The holder's own pid (the supervisor's pidfile, or `--exec`).
    Holder,
    /// A live child of the holder (the command, in a child pidfile).
    Child(Proc),
    /// Nothing true: locked but empty, or a pid that is no child of the
    /// holder (a command between runs).
    Nothing,
}

enum Found {
    Absent,
    /// Nobody write-locks it; the pid it names, if any.
    Stale(Option<i32>),
    Running {
        holder: Proc,
        named: Named,
    },
}

impl Found {
    fn describe_not_running(&self, path: &Path) -> String {
        match self {
            Found::Running { holder, .. } => {
                format!("not running (restarting: its supervisor, pid {}, holds the pidfile)", holder.pid)
            }
            Found::Stale(Some(pid)) => format!("not running; stale pidfile '{}' (pid {pid})", path.display()),
            Found::Stale(None) => format!("not running; stale pidfile '{}'", path.display()),
            Found::Absent => "not running".to_string(),
        }
    }
}

/// A refusal, printed as `detach: ...` with exit 4.
struct Untrusted(String);

fn refuse(Untrusted(msg): Untrusted) -> u8 {
    eprintln!("detach: {msg}");
    code::UNTRUSTED
}

/// Finds the daemon of `path`, waiting a while for one that is starting.
fn find(path: &Path) -> std::result::Result<Found, Untrusted> {
    let end = deadline(STARTING_WAIT);
    loop {
        if let Some(found) = look(path)? {
            return Ok(found);
        }
        if Instant::now() >= end {
            return Err(Untrusted(format!(
                "pidfile '{}' is locked, but its holder never named itself (a daemon still starting, \
                 or one in another pid namespace)",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One look at the pidfile; `None` while no holder can be named yet.
fn look(path: &Path) -> std::result::Result<Option<Found>, Untrusted> {
    let unreadable = |e: io::Error| Untrusted(format!("cannot read pidfile '{}': {e}", path.display()));
    let Some(opened) = open_walking(path).map_err(unreadable)? else { return Ok(Some(Found::Absent)) };
    let text = pidfile::read_pid(&opened.file);
    let holder = match pidfile::lock_state(&opened.file).map_err(unreadable)? {
        // Unlocked because a new pidfile was just renamed over this one (a
        // child pidfile, rewritten at each run): look at the new one.
        Lock::Free if !opened.is_at_path() => return Ok(None),
        Lock::Free => return Ok(Some(Found::Stale(text))),
        Lock::Unnamed => return Ok(None),
        Lock::Held(pid) => pid,
    };
    let Some(holder) = Proc::open(holder) else { return Ok(None) };
    // The pid still holds the lock now that the pidfd is open: the pidfd
    // names the holder, not a process that took its pid over.
    if pidfile::lock_state(&opened.file).map_err(unreadable)? != Lock::Held(holder.pid) {
        return Ok(None);
    }
    opened.check_trust()?;
    let named = match text {
        Some(pid) if pid == holder.pid => Named::Holder,
        Some(pid) => match Proc::open(pid) {
            Some(child) if stat_field(pid, 1).and_then(|p| p.parse().ok()) == Some(holder.pid) => Named::Child(child),
            _ => Named::Nothing,
        },
        None => Named::Nothing,
    };
    Ok(Some(Found::Running { holder, named }))
}

/// The pidfile, opened along a path of directories each opened with
/// O_NOFOLLOW from the root down, so that what was checked is what is read.
struct Opened {
    path: PathBuf,
    file: File,
    /// Each directory from `/` to the pidfile's, with its owner and mode.
    dirs: Vec<(PathBuf, u32, u32)>,
}

fn open_walking(path: &Path) -> io::Result<Option<Opened>> {
    let absolute = std::path::absolute(path)?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    };
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut dirs = Vec::new();
    let mut at = PathBuf::from("/");
    let mut dir = open_at(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY)?;
    dirs.push(owner_mode(&dir, &at)?);
    for part in parent.components().skip(1) {
        at.push(part);
        dir = open_at(Some(&dir), Path::new(part.as_os_str()), libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
        dirs.push(owner_mode(&dir, &at)?);
    }
    let file = match open_at(Some(&dir), Path::new(name), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) {
        Ok(f) => File::from(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(io::Error::other("it is a symbolic link")),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(Some(Opened { path: parent.join(name), file, dirs }))
}

fn open_at(dir: Option<&OwnedFd>, name: &Path, flags: i32) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: openat(2) with a NUL-terminated name we own; the fd it returns
    // is new and ours alone.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn owner_mode(fd: &OwnedFd, path: &Path) -> io::Result<(PathBuf, u32, u32)> {
    let meta = File::from(fd.try_clone()?).metadata()?;
    Ok((path.to_owned(), meta.uid(), meta.mode()))
}

impl Opened {
    /// Whether the path still names the file we opened.
    fn is_at_path(&self) -> bool {
        match (self.file.metadata(), std::fs::symlink_metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// For a verb run as root (OpenSSH's StrictModes, logrotate's insecure
    /// parent check): the pidfile and every directory above it must be
    /// root's, and writable by neither group nor others, except a sticky
    /// directory (/tmp), where others cannot rename what they do not own.
    /// A user who could replace the pidfile could otherwise plant one locked
    /// by a process of its own, and root's verb would report on or stop that
    /// process instead of the daemon. A verb run by another user needs no
    /// such check: the kernel lets it signal only what that user could.
    fn check_trust(&self) -> std::result::Result<(), Untrusted> {
        // SAFETY: geteuid(2) cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(());
        }
        let meta = self.file.metadata().map_err(|e| Untrusted(format!("cannot read pidfile: {e}")))?;
        let file = (self.path.clone(), meta.uid(), meta.mode());
        let checked = self.dirs.iter().map(|d| (d, true)).chain([(&file, false)]);
        for ((path, owner, mode), is_dir) in checked {
            let what = if is_dir { "directory" } else { "pidfile" };
            let untrusted = |why: String| {
                let (pidfile, path) = (self.path.display(), path.display());
                Untrusted(format!("not trusting pidfile '{pidfile}': {what} '{path}' {why}; run the verb as that user"))
            };
            if *owner != 0 {
                return Err(untrusted(format!("belongs to uid {owner}, not root")));
            }
            let sticky = is_dir && mode & libc::S_ISVTX != 0;
            if mode & 0o022 != 0 && !sticky {
                return Err(untrusted(format!("is writable by group or others (mode {:o})", mode & 0o7777)));
            }
        }
        Ok(())
    }
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

enum Answer {
    Done(i32),
    Gone,
    Timeout,
}

/// ANSWER_SIGNAL, blocked and read from a signalfd.
struct Answers {
    fd: nix::sys::signalfd::SignalFd,
}

impl Answers {
    fn listen() -> io::Result<Answers> {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut mask = SigSet::empty();
        mask.add(Signal::try_from(ANSWER_SIGNAL)?);
        // Blocked before the request goes out, so that the answer waits in
        // the queue (SIGURG's default action would discard it).
        mask.thread_block()?;
        Ok(Answers { fd: SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)? })
    }

    /// The answer from `from` (si_pid, sent with sigqueue's SI_QUEUE); any
    /// other SIGURG is ignored.
    fn wait(&self, from: &Proc, end: Instant) -> io::Result<Answer> {
        loop {
            while let Some(info) = self.fd.read_signal()? {
                if info.ssi_pid == from.pid as u32 && info.ssi_code == libc::SI_QUEUE {
                    // The value went out as a u64 holding the outcome as u32.
                    return Ok(Answer::Done(info.ssi_ptr as u32 as i32));
                }
            }
            if !from.alive() {
                return Ok(Answer::Gone);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Answer::Timeout);
            }
            let mut fds = vec![self.fd.as_fd().as_raw_fd()];
            let slice = match &from.pidfd {
                Some(p) => {
                    fds.push(p.as_raw_fd());
                    left
                }
                None => left.min(Duration::from_millis(100)),
            };
            poll_in(&fds, slice);
        }
    }
}

/// Polls `fds` for input up to `timeout`; the first readable one.
fn poll_in(fds: &[i32], timeout: Duration) -> Option<i32> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll(2) on an array of pollfd we own, of the length we pass.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return None;
    }
    pfds.iter().find(|p| p.revents != 0).map(|p| p.fd)
}

/// `timeout` from now, or far away for a timeout too large to add.
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 86400))
}

/// Field `n` of /proc/PID/stat counted from the state (0: state, 1: ppid).
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(n).map(str::to_string)
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
    let start = request::start_time(pid)?;
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
