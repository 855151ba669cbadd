//! A pidfile that is also a lock, and that names its holder.
//!
//! Two fcntl(2) record locks on two bytes of the file, each doing one job:
//! - byte 0, an open file description (OFD) write lock: the exclusion. It
//!   belongs to the open file, so it is taken before the daemonizing forks,
//!   survives them and an `--exec`, and dies when the last fd on it closes.
//! - byte 1, a classic POSIX write lock: the identification. POSIX locks
//!   belong to a process, so F_GETLK tells anyone who holds it: the pid a verb
//!   believes is the kernel's, never the file's text. It is taken by the
//!   process that writes its pid, after the forks (POSIX locks are not
//!   inherited), and survives an exec.
//!
//! Only write locks count: anyone who can read the file (0644) can take a read
//! lock on it, so a start that finds only read locks replaces the file, and a
//! verb asks F_GETLK for write locks only. Taking a write lock needs write
//! access, which only the file's owner (detach's user) and root have.
//!
//! The pid is written atomically: a new file (mode 0600 until it is locked,
//! so nobody else can open it first), locked on both bytes, renamed over the
//! path. A contender that opened the old inode notices, after locking it, that
//! the path names another file, and tries again.
//!
//! A caveat of POSIX locks: the process loses its lock on byte 1 when it
//! closes *any* fd on the file, so the daemon must not open its own pidfile.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The byte whose OFD write lock excludes a second daemon.
const EXCLUDE: i64 = 0;
/// The byte whose POSIX write lock names the daemon's pid.
const IDENTIFY: i64 = 1;

/// How long a start waits for a pidfile locked by nobody identifiable yet
/// (another start between its lock and its pid, or a verb removing a stale
/// pidfile) before it says "already running".
const STARTING_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    file: File,
}

/// Who holds a pidfile's write locks, as F_GETLK reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// No write lock: stale (or never used).
    Free,
    /// Write-locked, but by no process that can be named: a daemon between
    /// its lock and its pid, a verb removing a stale pidfile, or a holder in
    /// a pid namespace we cannot see.
    Unnamed,
    /// Write-locked by this process.
    Held(i32),
}

impl Pidfile {
    /// Opens and locks `path` (byte 0), emptied at once so that no old pid is
    /// shown while it is locked; or says who holds it. A file that detach's
    /// user does not own, that others can write, or that a stranger read-locks
    /// is replaced, never reused.
    pub fn acquire(path: &Path) -> Result<Pidfile> {
        let create = |err| Error::Create { what: "pidfile", path: path.to_owned(), err };
        let deadline = Instant::now() + STARTING_WAIT;
        for _ in 0..1000 {
            let file = open_pidfile(path).map_err(create)?;
            let file = if !ours(&file).map_err(create)? {
                fresh(path, None).map_err(create)?
            } else if lock(&file, libc::F_OFD_SETLK, EXCLUDE).is_ok() {
                file
            } else {
                match lock_state(&file).map_err(create)? {
                    Lock::Held(holder) => {
                        let pid = Some(named_pid(&file, holder));
                        return Err(Error::AlreadyRunning { path: path.to_owned(), pid });
                    }
                    Lock::Unnamed if Instant::now() >= deadline => {
                        return Err(Error::AlreadyRunning { path: path.to_owned(), pid: None });
                    }
                    Lock::Unnamed => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    // Only read locks: a stranger's, on a file we may replace.
                    Lock::Free => fresh(path, None).map_err(create)?,
                }
            };
            // Between our open and our lock, the holder may have renamed a new
            // pidfile over the path, or removed it at exit.
            if same_file(&file, path) {
                file.set_len(0).map_err(create)?;
                return Ok(Pidfile { path: path.to_owned(), file });
            }
        }
        Err(create(io::Error::other("the path keeps changing under us")))
    }

    /// Writes `pid` atomically, and names this process as the holder: a
    /// locked new file renamed over the path.
    pub fn write(&mut self, pid: u32) -> Result<()> {
        let file = fresh(&self.path, Some(pid)).map_err(|err| Error::Create {
            what: "pidfile",
            path: self.path.clone(),
            err,
        })?;
        self.file = file; // the old inode's lock goes with its fd
        Ok(())
    }

    /// Empties the pidfile and keeps its locks: the supervisor between two
    /// runs of the command (`--child-pidfile`), when no pid is true.
    pub fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|err| Error::Create { what: "pidfile", path: self.path.clone(), err })
    }

    /// Lets the pidfile and its lock outlive an exec: for `--exec`, where the
    /// command itself becomes the holder (POSIX locks survive exec(2) as long
    /// as their fd stays open).
    pub fn keep_across_exec(&self) -> io::Result<()> {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        fcntl(self.file.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
        Ok(())
    }

    pub fn raw_fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Removes the pidfile if it is still ours; the locks go with the fd.
    pub fn remove(self) {
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Who write-locks `file`, without taking any lock (a verb's probe must never
/// make a concurrent start fail). Asks for a read lock, which conflicts with
/// write locks only, so strangers' read locks are invisible.
pub fn lock_state(file: &File) -> io::Result<Lock> {
    for byte in [IDENTIFY, EXCLUDE] {
        match query(file, byte)? {
            Some(pid) if pid > 0 => return Ok(Lock::Held(pid)),
            Some(_) => return Ok(Lock::Unnamed),
            None => {}
        }
    }
    Ok(Lock::Free)
}

/// Removes `path` if nobody write-locks it, holding the exclusion lock while
/// it checks and unlinks, so that a start cannot take it over in between (a
/// start that meets this lock waits and tries again). Best effort.
pub fn remove_if_stale(path: &Path) {
    let Ok(file) =
        OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    else {
        return;
    };
    if lock(&file, libc::F_OFD_SETLK, EXCLUDE).is_err() || lock_state(&file).ok() != Some(Lock::Free) {
        return;
    }
    if same_file(&file, path) {
        let _ = std::fs::remove_file(path);
    }
}

/// The pid written in `file`, if it holds one.
pub fn read_pid(mut file: &File) -> Option<i32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok().filter(|&p| p > 0)
}

/// The pid to show for a pidfile held by `holder`: the one it names when
/// that is the holder or its child (the command, in a child pidfile), else the
/// holder's.
fn named_pid(file: &File, holder: i32) -> i32 {
    let parent = |pid: i32| crate::procfs::stat(pid).map(|s| s.ppid);
    match read_pid(file) {
        Some(pid) if pid == holder || parent(pid) == Some(holder) => pid,
        _ => holder,
    }
}

/// A write lock on one byte: `cmd` is F_OFD_SETLK (the open file's) or
/// F_SETLK (this process's).
fn lock(file: &File, cmd: i32, byte: i64) -> io::Result<()> {
    let mut fl = flock(libc::F_WRLCK, byte);
    // SAFETY: fcntl(2) with a lock command reads and writes the struct flock
    // we pass, which lives across the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pid of the write lock on `byte` (-1 for an OFD lock), if any.
fn query(file: &File, byte: i64) -> io::Result<Option<i32>> {
    let mut fl = flock(libc::F_RDLCK, byte);
    // SAFETY: F_OFD_GETLK fills in the struct flock we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid))
}

fn flock(kind: i32, byte: i64) -> libc::flock {
    // SAFETY: struct flock is plain integers; all zero is a valid value
    // (and l_pid must be 0 for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

fn open_pidfile(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Whether `file` is one this process may reuse: its own, writable by
/// nobody else.
fn ours(file: &File) -> io::Result<bool> {
    let meta = file.metadata()?;
    // SAFETY: geteuid(2) cannot fail.
    Ok(meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o022 == 0)
}

/// A new pidfile, locked on byte 0 (and on byte 1 with `pid` in it), renamed
/// over `path`. Mode 0600 until it is locked, so that no stranger can open it
/// and read-lock it first; then 0644 less the umask.
fn fresh(path: &Path, pid: Option<u32>) -> io::Result<File> {
    let (tmp, mut file) = create_temp(path)?;
    let made = (|| {
        if let Some(pid) = pid {
            file.write_all(format!("{pid}\n").as_bytes())?;
            lock(&file, libc::F_SETLK, IDENTIFY)?;
        }
        lock(&file, libc::F_OFD_SETLK, EXCLUDE)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644 & !umask()))?;
        std::fs::rename(&tmp, path)
    })();
    match made {
        Ok(()) => Ok(file),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let mut n = 0;
    loop {
        let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(&tmp);
        match opened {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            other => return other.map(|f| (tmp, f)),
        }
    }
}

/// The process's umask, read without changing it (umask(2) can only set it,
/// and another thread may be creating files).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = status.lines().find_map(|l| l.strip_prefix("Umask:")).map(str::trim);
    field.and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(0o022)
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
