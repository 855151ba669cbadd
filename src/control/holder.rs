//! Who holds a pidfile: the lock holder the kernel names, pinned by a pidfd
//! (or its start time), checked again after it is pinned; a child pidfile's
//! pid believed only while it is a live child of that holder; and, as root,
//! a pidfile refused when another user could have replaced it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::code;
use super::procinfo::{deadline, poll_in};
use crate::pidfile::{self, Lock};
use crate::procfs;
use crate::request;

/// How long a verb waits for a locked pidfile to name its holder: a daemon
/// that is starting (item 10 of issue 13: `stop` right after a start).
const STARTING_WAIT: Duration = Duration::from_secs(5);

/// A process, pinned by a pidfd where the kernel has them (5.3), else by
/// its start time, checked before each signal.
pub(super) struct Proc {
    pub(super) pid: i32,
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) start: u64,
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

    pub(super) fn signal(&self, sig: i32) -> io::Result<()> {
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

    pub(super) fn queue(&self, sig: i32, value: u64) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => request::send_queued(fd.as_fd(), sig, value),
            None if self.same() => request::send_queued_to_pid(self.pid, sig, value),
            None => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }

    /// Still the process we found, and not a zombie.
    fn same(&self) -> bool {
        procfs::stat(self.pid).is_some_and(|s| s.start_time == self.start && s.state != 'Z')
    }

    /// Waits up to `timeout` for the process to end; true once it has.
    pub(super) fn wait_exit(&self, timeout: Duration) -> bool {
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

    pub(super) fn alive(&self) -> bool {
        match &self.pidfd {
            Some(fd) => poll_in(&[fd.as_raw_fd()], Duration::ZERO).is_none(),
            None => self.same(),
        }
    }
}

/// What the pidfile of a running daemon names.
pub(super) enum Named {
    /// The holder's own pid (the supervisor's pidfile, or `--exec`).
    Holder,
    /// A live child of the holder (the command, in a child pidfile).
    Child(Proc),
    /// Nothing true: locked but empty, or a pid that is no child of the
    /// holder (a command between runs).
    Nothing,
}

pub(super) enum Found {
    Absent,
    /// Nobody write-locks it; the pid it names, if any.
    Stale(Option<i32>),
    Running {
        holder: Proc,
        named: Named,
    },
}

impl Found {
    pub(super) fn describe_not_running(&self, path: &Path) -> String {
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
pub(super) struct Untrusted(pub(super) String);

pub(super) fn refuse(Untrusted(msg): Untrusted) -> u8 {
    eprintln!("detach: {msg}");
    code::UNTRUSTED
}

/// Finds the daemon of `path`, waiting a while for one that is starting.
pub(super) fn find(path: &Path) -> std::result::Result<Found, Untrusted> {
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
            Some(child) if procfs::stat(pid).map(|s| s.ppid) == Some(holder.pid) => Named::Child(child),
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
