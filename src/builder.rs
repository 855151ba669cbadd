//! The library's builder: [`Daemon`] daemonizes the calling process, and
//! [`Daemonized`] is what it returns in the daemon.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::pidfile::Pidfile;
use crate::{Error, LogOptions, LogTarget, ReopenSignal, Reopener, Result, StartReport, reopen_on_signal};
use crate::{Prepared, daemon, user};

/// Where output goes: one file for both streams, or one for each.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogPaths {
    pub(crate) log: Option<PathBuf>,
    pub(crate) stdout: Option<PathBuf>,
    pub(crate) stderr: Option<PathBuf>,
}

/// Daemonizes the calling process: fork, setsid, fork, chdir, umask,
/// pidfile, and stdio redirected to /dev/null and the logs (and, if asked,
/// the fds it inherited closed: [`Daemon::close_inherited_fds`]).
///
/// A builder: set what differs from the defaults (working directory `/`,
/// umask 022, output to /dev/null, no pidfile), then [`Daemon::start`].
///
/// ```no_run
/// let daemon = detach::Daemon::new()
///     .stdout("/var/log/app/out.log")
///     .stderr("/var/log/app/err.log")
///     .log_mode(0o600)
///     .pidfile("/run/app.pid")
///     .user("app")
///     .start()?; // in the daemon from here on
/// # drop(daemon);
/// # Ok::<(), detach::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Daemon {
    pub(crate) logs: LogPaths,
    pub(crate) log_options: LogOptions,
    pub(crate) log_owner: Option<String>,
    pub(crate) pidfile: Option<PathBuf>,
    pub(crate) chdir: Option<PathBuf>,
    pub(crate) umask: Option<u32>,
    pub(crate) user: Option<String>,
    pub(crate) group: Option<String>,
    /// Fds start() leaves open (see [`Daemon::keep_fd`]).
    pub(crate) keep: Vec<RawFd>,
    /// start() closes the other fds above 2 ([`Daemon::close_inherited_fds`]).
    pub(crate) close_fds: bool,
    pub(crate) chroot: Option<PathBuf>,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            logs: LogPaths::default(),
            log_options: LogOptions::default(),
            log_owner: None,
            pidfile: None,
            chdir: Some(PathBuf::from("/")),
            umask: Some(0o022),
            user: None,
            group: None,
            keep: Vec::new(),
            close_fds: false,
            chroot: None,
        }
    }
}

impl Daemon {
    /// A daemon with the defaults: working directory `/`, umask 022, stdin,
    /// stdout and stderr on /dev/null, no pidfile, the caller's user.
    #[must_use]
    pub fn new() -> Daemon {
        Daemon::default()
    }

    /// stdout and stderr both into `path`, in the order they were written.
    /// The log is opened with [`open_log`](crate::open_log), before the first fork.
    #[must_use]
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.log = Some(path.into());
        self
    }

    /// stdout into `path` (stderr then goes to /dev/null unless [`Daemon::stderr`]).
    #[must_use]
    pub fn stdout(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.stdout = Some(path.into());
        self
    }

    /// stderr into `path`.
    #[must_use]
    pub fn stderr(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.stderr = Some(path.into());
        self
    }

    /// Mode of the logs detach creates (default 0640, before the umask).
    /// Only the read and write bits count (`mode & 0o666`): the execute,
    /// setuid, setgid and sticky bits are dropped, so that a daemon running
    /// as root can never create its output as a setuid executable.
    #[must_use]
    pub fn log_mode(mut self, mode: u32) -> Self {
        self.log_options.mode = mode & LOG_MODE_BITS;
        self
    }

    /// Owner (`USER[:GROUP]`) given to the logs detach creates.
    #[must_use]
    pub fn log_owner(mut self, owner: impl Into<String>) -> Self {
        self.log_owner = Some(owner.into());
        self
    }

    /// A pidfile, locked for the daemon's life and removed when it ends.
    #[must_use]
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.pidfile = Some(path.into());
        self
    }

    /// Working directory of the daemon (default `/`; `None` keeps it).
    #[must_use]
    pub fn chdir(mut self, dir: Option<PathBuf>) -> Self {
        self.chdir = dir;
        self
    }

    /// File mode creation mask (default 022; `None` keeps the caller's).
    #[must_use]
    pub fn umask(mut self, mask: Option<u32>) -> Self {
        self.umask = mask;
        self
    }

    /// Run as this user (name or uid), with its groups. Root only.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Run with this primary group (name or gid). Root only.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Keeps `fd` open in the daemon when [`Daemon::close_inherited_fds`]
    /// makes [`Daemon::start`] close every other fd above 2; say, for what
    /// must be done with privileges that
    /// [`Daemon::user`] drops, before starting: a server binds port 80 as
    /// root, keeps the listener, and serves as `nobody`.
    ///
    /// The fd is borrowed for this call only: it stays the caller's, who
    /// must keep it open until `start()` (a `TcpListener` it goes on using
    /// after `start()`, say). Only its number is recorded, and start() only
    /// ever *spares* that number from closing: it never closes, moves or
    /// overwrites it. Fds 0, 1 and 2 are not spared by this: start() puts
    /// /dev/null and the logs over them.
    #[must_use]
    pub fn keep_fd(mut self, fd: impl AsFd) -> Self {
        self.keep.push(fd.as_fd().as_raw_fd());
        self
    }

    /// Makes [`Daemon::start`] close every fd above 2 but those of
    /// [`Daemon::keep_fd`] and its own, as a daemon started from an unknown
    /// parent should (a terminal, someone's pipe, a listening socket it
    /// inherited). By default it closes none.
    ///
    /// # Safety
    ///
    /// No object of this program may own an fd above 2 other than those
    /// passed to [`Daemon::keep_fd`]: start() closes its number, which the
    /// next open then reuses, so that object would later read, write or
    /// close another file. Std opens everything close-on-exec, but that is
    /// no proof: `nix::unistd::pipe()`, a socket wrapped from an inherited
    /// number, or any `OwnedFd` whose flag was cleared count too. Call it
    /// only where the program has opened nothing it keeps (early in `main`),
    /// or has passed all it keeps to `keep_fd`.
    ///
    /// ```no_run
    /// let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
    /// // SAFETY: the listener is the only fd this program keeps, and it is spared.
    /// let daemon = unsafe { detach::Daemon::new().keep_fd(&listener).close_inherited_fds() };
    /// let _running = daemon.log("/var/log/app.log").start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub unsafe fn close_inherited_fds(mut self) -> Self {
        self.close_fds = true;
        self
    }

    /// Makes `dir` the daemon's root directory (chroot(2)), after the logs
    /// and the pidfile are open and before the switch to [`Daemon::user`];
    /// [`Daemon::chdir`] then names a directory inside it (default `/`).
    /// Root only. The logs and the pidfile are reopened and removed by
    /// path: inside the new root, those paths name other files (or none),
    /// so [`Daemonized::reopen_on_signal`] then fails, and the pidfile is
    /// left behind at exit (stale, and taken over by the next start).
    #[must_use]
    pub fn chroot(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chroot = Some(dir.into());
        self
    }

    /// Daemonizes this process. Returns in the daemon only: the original
    /// process exits 0 once the daemon is set up, or gets the daemon's error
    /// back as `Err` to print and exit with ([`Error::exit_code`]).
    ///
    /// Call it before starting any thread: it refuses a multi-threaded process.
    ///
    /// When it fails, the caller's process is as it was: its working
    /// directory and umask are restored, and no pidfile, and no log this call
    /// created, is left behind.
    ///
    /// ```no_run
    /// use std::process::ExitCode;
    ///
    /// fn main() -> ExitCode {
    ///     let _daemon = match detach::Daemon::new().log("/var/log/app.log").start() {
    ///         Ok(daemon) => daemon, // keep it: it holds the pidfile
    ///         Err(e) => {
    ///             eprintln!("app: {e}");
    ///             return ExitCode::from(e.exit_code());
    ///         }
    ///     };
    ///     println!("in the daemon");
    ///     ExitCode::SUCCESS
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// In the caller's process, every failure to set the daemon up, with its
    /// reason: [`Error::Usage`] for two options naming one file or a bad
    /// chroot, [`Error::NoUser`], [`Error::Create`] for a log or pidfile that
    /// cannot be opened, [`Error::AlreadyRunning`] for a pidfile another
    /// process holds, [`Error::Os`] (a multi-threaded process, a failed
    /// fork), and [`Error::Reported`] for what failed in the daemon after the
    /// fork (dropping privileges, say).
    pub fn start(self) -> Result<Daemonized> {
        let (daemon, report) = self.start_deferred()?;
        report.ready();
        Ok(daemon)
    }

    /// [`Daemon::start`], but the caller's process keeps waiting until the
    /// daemon says it is ready ([`StartReport::ready`]: it exits 0) or why it
    /// is not ([`StartReport::fail`]: it prints the error and exits with its
    /// code), so that a server that daemonizes itself can bind its port, load
    /// its configuration, and only then let the shell or init script go on.
    ///
    /// ```no_run
    /// let (daemon, report) = detach::Daemon::new().log("/var/log/app.log").start_deferred()?;
    /// match std::net::TcpListener::bind("127.0.0.1:8080") {
    ///     Ok(_listener) => report.ready(), // the caller exits 0
    ///     Err(e) => report.fail(&detach::Error::os("cannot bind 127.0.0.1:8080", e)),
    /// }
    /// # drop(daemon);
    /// # Ok::<(), detach::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`Daemon::start`]; an error in the daemon after the fork
    /// never returns there: the caller's process gets it.
    pub fn start_deferred(self) -> Result<(Daemonized, StartReport)> {
        let caller = CallerState::save()?;
        let mut prep = Prepared::new(&self, None).inspect_err(|_| caller.restore())?;
        let keep = [prep.fds(), caller.fds(), self.keep.clone()].concat();
        let reporter = daemon::daemonize(
            &keep,
            if self.close_fds { daemon::Close::All } else { daemon::Close::Nothing },
            daemon::Silence::MeansDeath,
        )
        .inspect_err(|_| {
            prep.undo_in_parent();
            caller.restore();
        })?;
        // In the daemon: the caller's directory is not held open.
        drop(caller);
        let result = prep
            .write_pidfile(std::process::id())
            .and_then(|()| prep.install_logs(true))
            .and_then(|logs| self.enter_root().map(|()| logs))
            .and_then(|logs| match &prep.creds {
                Some(c) => user::drop_privileges(c).map(|()| logs).map_err(|e| Error::os("cannot drop privileges", e)),
                None => Ok(logs),
            });
        match result {
            Ok(logs) => Ok((Daemonized { pidfile: prep.pidfile.take(), logs }, StartReport::new(reporter))),
            Err(e) => {
                prep.undo();
                reporter.fail(&e)
            }
        }
    }
}

impl Daemon {
    /// [`Daemon::chroot`], then [`Daemon::chdir`] inside the new root.
    fn enter_root(&self) -> Result<()> {
        let Some(root) = &self.chroot else { return Ok(()) };
        nix::unistd::chroot(root).map_err(|e| {
            let what = format!("cannot change root to '{}'", root.display());
            match e {
                nix::errno::Errno::EPERM => Error::Permission { what, err: e.into() },
                e => Error::os(what, e),
            }
        })?;
        // chroot(2) leaves the working directory where it was: a relative
        // one would be resolved outside the new root.
        let dir = Path::new("/").join(self.chdir.as_deref().unwrap_or(Path::new("/")));
        std::env::set_current_dir(&dir)
            .map_err(|e| Error::os(format!("cannot change directory to '{}' inside the new root", dir.display()), e))
    }
}

/// The caller's working directory (an open fd, so that it is found again
/// even if renamed) and umask, put back when [`Daemon::start`] fails.
struct CallerState {
    cwd: File,
    umask: nix::sys::stat::Mode,
}

impl CallerState {
    fn save() -> Result<CallerState> {
        use nix::sys::stat::{Mode, umask};
        let cwd = File::open(".").map_err(|e| Error::os("cannot open the current directory", e))?;
        // umask(2) cannot be read without being set: set it back at once.
        let mask = umask(Mode::from_bits_truncate(0o077));
        umask(mask);
        Ok(CallerState { cwd, umask: mask })
    }

    fn fds(&self) -> Vec<RawFd> {
        vec![self.cwd.as_raw_fd()]
    }

    fn restore(&self) {
        nix::sys::stat::umask(self.umask);
        let _ = nix::unistd::fchdir(&self.cwd);
    }
}

/// The running daemon, what [`Daemon::start`] returns in it: keep it alive
/// for as long as the program runs; it holds the pidfile's lock, and removes
/// the pidfile when dropped.
///
/// ```no_run
/// let daemon = detach::Daemon::new().log("/var/log/app.log").pidfile("/run/app.pid").start()?;
/// let _reopener = daemon.reopen_on_signal(detach::ReopenSignal::HUP)?;
/// // ... serve, until it is time to stop ...
/// drop(daemon); // removes /run/app.pid
/// # Ok::<(), detach::Error>(())
/// ```
#[derive(Debug)]
pub struct Daemonized {
    pub(crate) pidfile: Option<Pidfile>,
    pub(crate) logs: Vec<LogTarget>,
}

impl Daemonized {
    /// Reopens the logs by path whenever `signal` arrives (logrotate's
    /// postrotate `kill -HUP`), from a thread of its own, until the
    /// [`Reopener`] is dropped: [`reopen_on_signal`] on [`Daemonized::logs`].
    ///
    /// # Errors
    ///
    /// Those of [`reopen_on_signal`].
    pub fn reopen_on_signal(&self, signal: ReopenSignal) -> Result<Reopener> {
        reopen_on_signal(signal, &self.logs)
    }

    /// The logs [`Daemon::start`] installed over stdout and stderr: one for
    /// [`Daemon::log`], one for each of [`Daemon::stdout`] and
    /// [`Daemon::stderr`]; none for a stream left on /dev/null.
    #[must_use]
    pub fn logs(&self) -> &[LogTarget] {
        &self.logs
    }
}

impl Drop for Daemonized {
    fn drop(&mut self) {
        if let Some(p) = self.pidfile.take() {
            p.remove();
        }
    }
}

/// The only bits a log detach creates may have: read and write.
pub(crate) const LOG_MODE_BITS: u32 = 0o666;
