//! The freopen module: open a log safely, put it over a standard fd, reopen it
//! by path, and redirect a standard fd for a while with a guard that restores it.
//!
//! The one rule everything here follows (dup2(2), and ../shared/seeds): a
//! standard fd is replaced with `dup2(new, target)`, which closes the old file
//! and installs the new one atomically, so that no write from this process or
//! its children ever meets a closed fd 1 or 2. The spare is closed afterwards.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::path_safety;

/// How log files are created.
#[derive(Clone, Copy, Debug)]
pub struct LogOptions {
    /// Mode of a newly created log, before the umask (default 0640).
    pub mode: u32,
    /// Owner given to a log detach creates (`--log-owner`).
    pub owner: Option<(u32, u32)>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { mode: 0o640, owner: None }
    }
}

/// Opens `path` for appending, the way a log must be opened by a process that
/// may run as root in a directory others can write to.
///
/// The directory is found by [`path_safety::open_parent`], which follows no
/// symlink that a user other than root could have placed (README, "Where logs
/// may live"); the file is then opened in it with O_APPEND (never truncated;
/// every write lands at the end, even beside another writer), O_CLOEXEC,
/// O_NOFOLLOW (a symlink planted at the path is refused with ELOOP),
/// O_NONBLOCK (opening a FIFO planted there does not block us; cleared again
/// below). Only a regular file with a single link is accepted: a hard link to
/// another file (say /etc/shadow) planted in the log directory is refused.
pub fn open_log(path: &Path, opts: &LogOptions) -> io::Result<File> {
    use nix::fcntl::{OFlag, openat};
    let (dir, name) = path_safety::open_parent(path)?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    // Read and write bits only: a log is never executable, setuid, setgid or sticky.
    let mode = nix::sys::stat::Mode::from_bits_truncate(opts.mode & 0o666);
    // Try to create it first, so that we know whether --log-owner applies.
    let created = openat(&dir, name.as_os_str(), flags | OFlag::O_CREAT | OFlag::O_EXCL, mode);
    let (file, created) = match created {
        Ok(fd) => (File::from(fd), true),
        Err(nix::errno::Errno::EEXIST) => (File::from(openat(&dir, name.as_os_str(), flags, mode)?), false),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(io::Error::other("refusing a file with other hard links"));
    }
    set_nonblocking(file.as_fd(), false)?;
    if created && let Some((uid, gid)) = opts.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    }
    Ok(file)
}

/// Sets or clears O_NONBLOCK on the open file `fd` refers to.
pub fn set_nonblocking(fd: BorrowedFd, on: bool) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on { flags | OFlag::O_NONBLOCK } else { flags - OFlag::O_NONBLOCK };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// A close-on-exec copy of this process's fd 2, as it is now.
pub(crate) fn duplicate_stderr() -> io::Result<File> {
    Ok(File::from(io::stderr().as_fd().try_clone_to_owned()?))
}

/// Opens /dev/null for reading and writing, close-on-exec.
pub fn open_devnull() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/null")
}

/// Makes `target` refer to the open file `src` refers to, with dup2(2).
///
/// Does nothing when they already are the same fd: dup2 of an fd onto itself
/// and then closing the "spare" would close the standard fd (a classic bug).
/// The target loses close-on-exec, which is what a standard fd wants.
pub fn redirect(src: BorrowedFd, target: RawFd) -> io::Result<()> {
    if src.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: dup2 takes two integers and touches no memory; `src` is a live
    // borrowed fd. Replacing `target` is the whole point: callers only pass
    // standard fds that this process owns.
    if unsafe { libc::dup2(src.as_raw_fd(), target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Redirects one standard fd to a file and puts the original back on drop.
///
/// The original is saved as a real duplicate (F_DUPFD_CLOEXEC), not as a copy
/// of its number: after the dup2 the number refers to the new file, so
/// "restoring" it from the number would restore nothing (seeds/001).
///
/// ```no_run
/// let log = std::fs::File::create("/tmp/quiet.log")?;
/// {
///     let _guard = detach::Redirect::new(1, &log)?;
///     println!("this line goes to /tmp/quiet.log");
/// }
/// println!("and this one to the original stdout");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Redirect {
    target: RawFd,
    saved: OwnedFd,
}

impl Redirect {
    pub fn new(target: RawFd, to: impl AsFd) -> io::Result<Redirect> {
        flush_std(target);
        // SAFETY: we only borrow `target` for the duration of the dup; it is
        // a standard fd of this process, open (dup fails with EBADF otherwise).
        // try_clone_to_owned is F_DUPFD_CLOEXEC: a real copy, numbered 3+.
        let saved = unsafe { BorrowedFd::borrow_raw(target) }.try_clone_to_owned()?;
        redirect(to.as_fd(), target)?;
        Ok(Redirect { target, saved })
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        flush_std(self.target);
        let _ = redirect(self.saved.as_fd(), self.target);
    }
}

/// Rust's stdout is line-buffered in user space: flush it before the fd under
/// it changes, so that no line meant for one file lands in the other.
fn flush_std(target: RawFd) {
    match target {
        1 => drop(io::stdout().flush()),
        2 => drop(io::stderr().flush()),
        _ => {}
    }
}

/// What a log's path names now, compared with the open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathState {
    /// The open file.
    Same,
    /// Another file (a rotation created a new one).
    Replaced,
    /// Nothing (moved or deleted, and not created anew yet).
    Missing,
}

/// A log installed over one or two fds of this process, reopened by path.
#[derive(Clone, Debug)]
pub struct LogTarget {
    path: PathBuf,
    opts: LogOptions,
    /// The fds this log is installed over (1, 2 or both).
    fds: Vec<RawFd>,
    /// Device and inode of the open file, to notice a move or a delete.
    id: (u64, u64),
}

impl LogTarget {
    /// Puts `file` over each of `fds` and closes the spare.
    pub fn install(path: &Path, opts: LogOptions, file: File, fds: &[RawFd]) -> io::Result<Self> {
        let mut log = LogTarget { path: path.to_owned(), opts, fds: fds.to_vec(), id: (0, 0) };
        log.put(file)?;
        Ok(log)
    }

    /// dup2s `file` over each of the fds and remembers its identity; the
    /// spare (`file`) is closed on return.
    fn put(&mut self, file: File) -> io::Result<()> {
        let meta = file.metadata()?;
        for &fd in &self.fds {
            redirect(file.as_fd(), fd)?;
        }
        self.id = (meta.dev(), meta.ino());
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fds this log is installed over.
    pub fn fds(&self) -> &[RawFd] {
        &self.fds
    }

    /// The fd writes go through (the first one it is installed over).
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `install` made each of `fds` refer to the log, and nothing
        // in this crate closes a standard fd, so the fd stays open.
        unsafe { BorrowedFd::borrow_raw(self.fds[0]) }
    }

    /// Opens the path anew and dup2s the new file over the old fds; on
    /// failure the old file stays in place.
    pub fn reopen(&mut self) -> io::Result<()> {
        let file = open_log(&self.path, &self.opts)?;
        self.put(file)
    }

    /// Device and inode of the open file.
    pub fn id(&self) -> (u64, u64) {
        self.id
    }

    /// Whether the path still names the open file.
    pub fn path_state(&self) -> PathState {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => PathState::Same,
            Ok(_) => PathState::Replaced,
            Err(_) => PathState::Missing,
        }
    }
}

/// Wraps a raw fd that the caller knows to be open for the duration of a
/// `File` operation, without taking ownership of it.
pub fn with_fd<T>(fd: BorrowedFd, f: impl FnOnce(&mut File) -> T) -> T {
    // SAFETY: the File is wrapped in ManuallyDrop, so it never closes the fd,
    // which the caller keeps open (it is borrowed for this call).
    let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd.as_raw_fd()) });
    f(&mut file)
}
