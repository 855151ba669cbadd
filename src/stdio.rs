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

/// How [`open_log`] creates a log that does not exist yet (an existing one is
/// opened as it is).
///
/// ```
/// let opts = detach::LogOptions { mode: 0o600, ..Default::default() };
/// assert_eq!(opts.owner, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Mode of a newly created log, before the umask (default 0640). Only the
    /// read and write bits count: a log is never executable, setuid, setgid
    /// or sticky.
    pub mode: u32,
    /// Owner (uid, gid) given to a newly created log (`--log-owner`); `None`
    /// (the default) leaves it to the creating process.
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
/// The directory is reached by a walk that follows no symlink a user other
/// than root could have placed (README, "Where logs may live"); the file is
/// then opened in it with O_APPEND (never truncated; every write lands at the
/// end, even beside another writer), O_CLOEXEC, O_NOFOLLOW (a symlink planted
/// at the path is refused with ELOOP), O_NONBLOCK (opening a FIFO planted
/// there does not block us; cleared again before returning). Only a regular
/// file with a single link is accepted: a hard link to another file (say
/// /etc/shadow) planted in the log directory is refused.
///
/// ```no_run
/// use std::io::Write;
/// let mut log = detach::open_log("/var/log/app.log", &detach::LogOptions::default())?;
/// writeln!(log, "started")?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The OS error of the walk or the open (`ENOENT` for a missing directory,
/// `EACCES`, `ELOOP` for a symlink at the path); `PermissionDenied` for a
/// symlink or `..` on the way that a user other than root controls; an error
/// of kind `Other` for a path that is not a regular file, or that has other
/// hard links.
pub fn open_log(path: impl AsRef<Path>, opts: &LogOptions) -> io::Result<File> {
    let path = path.as_ref();
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
pub(crate) fn set_nonblocking(fd: BorrowedFd, on: bool) -> io::Result<()> {
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
pub(crate) fn open_devnull() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/null")
}

/// One of this process's standard fds: the only fds that [`redirect`],
/// [`Redirect`] and [`LogTarget`] put another file over.
///
/// They are named by type rather than by number so that no safe function of
/// this crate can overwrite an fd that something else owns (a `File`, a
/// socket): the standard fds belong to the process as a whole, as
/// [`std::io::Stdout`] treats them, and replacing them with dup2(2) is the
/// way to redirect them.
///
/// ```
/// use std::os::fd::AsRawFd;
/// assert_eq!(detach::StdFd::Stderr.as_raw_fd(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StdFd {
    /// fd 0.
    Stdin,
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

impl StdFd {
    /// Rust's stdout is line-buffered in user space: flush it before the fd
    /// under it changes, so that no line meant for one file lands in the other.
    fn flush(self) {
        match self {
            StdFd::Stdin => {}
            StdFd::Stdout => drop(io::stdout().flush()),
            StdFd::Stderr => drop(io::stderr().flush()),
        }
    }
}

impl AsRawFd for StdFd {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            StdFd::Stdin => 0,
            StdFd::Stdout => 1,
            StdFd::Stderr => 2,
        }
    }
}

impl AsFd for StdFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: a standard fd is open for the process's whole life as far
        // as Rust is concerned: std's own `impl AsFd for Stdout` borrows fd 1
        // the same way, and this crate only ever replaces a standard fd with
        // dup2(2), which never leaves it closed.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

/// Makes the standard fd `target` refer to the open file `src` refers to,
/// with dup2(2): the old file is closed and the new one installed in one
/// step, so that no write ever meets a closed fd. Rust's buffered stdout or
/// stderr is flushed first.
///
/// Does nothing when `src` already is `target`: dup2 of an fd onto itself
/// and then closing the "spare" would close the standard fd (a classic bug).
/// The target loses close-on-exec, which is what a standard fd wants: the
/// programs this process starts inherit it.
///
/// ```no_run
/// use detach::{LogOptions, StdFd, open_log, redirect};
/// let log = open_log("/var/log/app.log", &LogOptions::default())?;
/// redirect(&log, StdFd::Stdout)?;
/// redirect(&log, StdFd::Stderr)?;
/// println!("this line goes to /var/log/app.log");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// dup2(2)'s error, when `src` is not open (`EBADF`) or the process is out of
/// file descriptors (`EMFILE`).
pub fn redirect(src: impl AsFd, target: StdFd) -> io::Result<()> {
    let src = src.as_fd().as_raw_fd();
    if src == target.as_raw_fd() {
        return Ok(());
    }
    target.flush();
    // SAFETY: dup2 takes two integers and touches no memory; `src` is a live
    // borrowed fd, and `target` a standard fd, which this process may replace.
    if unsafe { libc::dup2(src, target.as_raw_fd()) } < 0 {
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
/// ```
/// let log = tempfile_path("quiet.log");
/// let file = std::fs::File::create(&log)?;
/// {
///     let _guard = detach::Redirect::new(detach::StdFd::Stdout, &file)?;
///     println!("this line goes to quiet.log");
/// }
/// println!("and this one to the original stdout");
/// assert_eq!(std::fs::read_to_string(&log)?, "this line goes to quiet.log\n");
/// # std::fs::remove_file(&log)?;
/// # fn tempfile_path(name: &str) -> std::path::PathBuf {
/// #     std::env::temp_dir().join(format!("detach-doc-{}-{name}", std::process::id()))
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Redirect {
    target: StdFd,
    saved: OwnedFd,
}

impl Redirect {
    /// Saves a duplicate of `target`, then puts `to` over it ([`redirect`]).
    ///
    /// # Errors
    ///
    /// `EBADF` when `target` is closed (there is nothing to restore), or
    /// dup's and dup2's errors (`EMFILE`).
    pub fn new(target: StdFd, to: impl AsFd) -> io::Result<Redirect> {
        // F_DUPFD_CLOEXEC: a real copy, numbered 3 or more.
        let saved = target.as_fd().try_clone_to_owned()?;
        redirect(to, target)?;
        Ok(Redirect { target, saved })
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        let _ = redirect(self.saved.as_fd(), self.target);
    }
}

/// What a log's path names now, compared with the open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathState {
    /// The open file.
    Same,
    /// Another file (a rotation created a new one).
    Replaced,
    /// Nothing (moved or deleted, and not created anew yet).
    Missing,
}

/// A log installed over stdout, stderr or both, that can be reopened by path
/// (after logrotate moved it): what [`Daemonized::logs`] holds and
/// [`reopen_on_signal`] reopens.
///
/// ```no_run
/// use detach::{LogOptions, LogTarget, ReopenSignal, StdFd, open_log, reopen_on_signal};
/// let path = std::path::Path::new("/var/log/app.log");
/// let opts = LogOptions::default();
/// let log = LogTarget::install(path, opts, open_log(path, &opts)?, &[StdFd::Stdout, StdFd::Stderr])?;
/// let _reopener = reopen_on_signal(ReopenSignal::HUP, &[log])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Daemonized::logs`]: crate::Daemonized::logs
/// [`reopen_on_signal`]: crate::reopen_on_signal
#[derive(Clone, Debug)]
pub struct LogTarget {
    path: PathBuf,
    opts: LogOptions,
    /// The standard fds this log is installed over (stdout, stderr or both).
    streams: Vec<StdFd>,
    /// Device and inode of the open file, to notice a move or a delete.
    id: (u64, u64),
}

impl LogTarget {
    /// Puts `file`, the log opened at `path` (by [`open_log`], say), over
    /// each of `streams` with [`redirect`], and closes `file`, the spare.
    /// [`LogTarget::reopen`] later opens `path` anew with `opts`.
    ///
    /// `streams` must not be empty: a log installed over nothing could never
    /// be written to.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for empty `streams`; fstat(2)'s and dup2(2)'s errors.
    pub fn install(path: &Path, opts: LogOptions, file: File, streams: &[StdFd]) -> io::Result<Self> {
        if streams.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a log must be installed over stdout or stderr"));
        }
        let mut log = LogTarget { path: path.to_owned(), opts, streams: streams.to_vec(), id: (0, 0) };
        log.put(file)?;
        Ok(log)
    }

    /// dup2s `file` over each of the fds and remembers its identity; the
    /// spare (`file`) is closed on return.
    fn put(&mut self, file: File) -> io::Result<()> {
        let meta = file.metadata()?;
        for &target in &self.streams {
            redirect(&file, target)?;
        }
        self.id = (meta.dev(), meta.ino());
        Ok(())
    }

    /// The path the log is reopened by.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The standard fds this log is installed over.
    #[must_use]
    pub fn streams(&self) -> &[StdFd] {
        &self.streams
    }

    /// The fd writes go through (the first one it is installed over).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.streams[0].as_fd()
    }

    /// Opens the path anew ([`open_log`]) and dup2s the new file over the
    /// old one's fds, so that no write meets a closed fd.
    ///
    /// # Errors
    ///
    /// [`open_log`]'s errors; the old file then stays in place.
    pub fn reopen(&mut self) -> io::Result<()> {
        let file = open_log(&self.path, &self.opts)?;
        self.put(file)
    }

    /// Puts `file`, the log's next file, over the old one's fds, as a
    /// reopen does with the file it opens.
    pub(crate) fn replace(&mut self, file: File) -> io::Result<()> {
        self.put(file)
    }

    /// The options a new file of this log is created with.
    pub(crate) fn options(&self) -> LogOptions {
        self.opts
    }

    /// Device and inode of the open file.
    pub(crate) fn id(&self) -> (u64, u64) {
        self.id
    }

    /// Whether the path still names the open file.
    pub(crate) fn path_state(&self) -> PathState {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => PathState::Same,
            Ok(_) => PathState::Replaced,
            Err(_) => PathState::Missing,
        }
    }
}

/// Lends the open fd `fd` as a `&File` for the duration of `f`, without
/// taking ownership of it. A shared reference only: `&File` reads and writes
/// (`Read` and `Write` are implemented for it) but cannot be closed or moved
/// out, so that the fd stays the caller's (a `&mut File` could be swapped
/// with an owned one and closed: an IO-safety violation).
pub(crate) fn with_fd<T>(fd: BorrowedFd, f: impl FnOnce(&File) -> T) -> T {
    // SAFETY: the File is wrapped in ManuallyDrop, so it never closes the fd,
    // which the caller keeps open (it is borrowed for this call); only a
    // shared reference to it is handed out, which cannot take it out of the
    // ManuallyDrop.
    let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd.as_raw_fd()) });
    f(&file)
}
