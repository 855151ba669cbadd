//! detach: run a program as a well-behaved Unix daemon and keep its output safe.
//!
//! The library face of the `detach` command. A Rust server daemonizes itself,
//! with its stdout and stderr in a log that survives rotation:
//!
//! ```no_run
//! fn main() -> Result<(), detach::Error> {
//!     let daemon = detach::Daemon::new()
//!         .log("/var/log/app.log")
//!         .pidfile("/run/app.pid")
//!         .start()?; // returns in the daemon only; the caller's process exits 0
//!     let _reopener = daemon.reopen_on_signal(libc::SIGHUP)?; // for logrotate
//!     println!("serving"); // lands in /var/log/app.log
//!     Ok(())
//! }
//! ```
//!
//! The pieces are usable alone too: [`open_log`] opens a log the safe way,
//! [`redirect`] dup2s it over a standard fd, [`Redirect`] does so for a while
//! and restores the original.

mod backlog;
pub mod cli;
mod control;
mod daemon;
pub mod error;
mod lines;
mod notify;
mod pidfile;
mod reopen;
#[allow(dead_code)] // decode and answer: the supervisor's side (same change set)
mod request;
mod restart;
mod run;
pub mod stdio;
mod supervise;
mod syslog;
mod user;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use reopen::{Reopener, reopen_on_signal};
pub use restart::{Policy as RestartPolicy, When as RestartWhen};
pub use run::{Config, Mode, run};
pub use stdio::{LogOptions, LogTarget, Redirect, open_log, redirect};
pub use supervise::Options as SuperviseOptions;

use pidfile::Pidfile;
use user::Credentials;

/// Where output goes: one file for both streams, or one for each.
#[derive(Clone, Debug, Default)]
pub struct LogPaths {
    pub log: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

/// Daemonizes the calling process: fork, setsid, fork, chdir, umask, close
/// inherited fds, pidfile, and stdio redirected to /dev/null and the logs.
#[derive(Clone, Debug)]
pub struct Daemon {
    logs: LogPaths,
    log_options: LogOptions,
    log_owner: Option<String>,
    pidfile: Option<PathBuf>,
    chdir: Option<PathBuf>,
    umask: Option<u32>,
    user: Option<String>,
    group: Option<String>,
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
        }
    }
}

impl Daemon {
    pub fn new() -> Daemon {
        Daemon::default()
    }

    /// stdout and stderr both into `path`, in the order they were written.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.log = Some(path.into());
        self
    }

    /// stdout into `path` (stderr then goes to /dev/null unless [`Daemon::stderr`]).
    pub fn stdout(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.stdout = Some(path.into());
        self
    }

    /// stderr into `path`.
    pub fn stderr(mut self, path: impl Into<PathBuf>) -> Self {
        self.logs.stderr = Some(path.into());
        self
    }

    /// Mode of the logs detach creates (default 0640, before the umask).
    pub fn log_mode(mut self, mode: u32) -> Self {
        self.log_options.mode = mode;
        self
    }

    /// Owner (`USER[:GROUP]`) given to the logs detach creates.
    pub fn log_owner(mut self, owner: impl Into<String>) -> Self {
        self.log_owner = Some(owner.into());
        self
    }

    /// A pidfile, locked for the daemon's life and removed when it ends.
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.pidfile = Some(path.into());
        self
    }

    /// Working directory of the daemon (default `/`; `None` keeps it).
    pub fn chdir(mut self, dir: Option<PathBuf>) -> Self {
        self.chdir = dir;
        self
    }

    /// File mode creation mask (default 022; `None` keeps the caller's).
    pub fn umask(mut self, mask: Option<u32>) -> Self {
        self.umask = mask;
        self
    }

    /// Run as this user (name or uid), with its groups. Root only.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Run with this primary group (name or gid). Root only.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Daemonizes this process. Returns in the daemon only: the original
    /// process exits 0 once the daemon is set up, or gets the daemon's error
    /// back as `Err` to print and exit with ([`Error::exit_code`]).
    ///
    /// Call it before starting any thread: it refuses a multi-threaded process.
    pub fn start(self) -> Result<Daemonized> {
        let mut prep = Prepared::new(&self, None)?;
        let reporter = daemon::daemonize(&prep.fds(), daemon::Silence::MeansDeath)?;
        let result =
            prep.write_pidfile(std::process::id()).and_then(|()| prep.install_logs(true)).and_then(|logs| match &prep
                .creds
            {
                Some(c) => user::drop_privileges(c).map(|()| logs).map_err(|e| Error::os("cannot drop privileges", e)),
                None => Ok(logs),
            });
        match result {
            Ok(logs) => {
                reporter.success();
                Ok(Daemonized { pidfile: prep.pidfile.take(), logs })
            }
            Err(e) => {
                prep.remove_pidfiles();
                reporter.fail(&e)
            }
        }
    }
}

/// The running daemon: keep it alive for as long as the program runs; it
/// holds the pidfile's lock, and removes the pidfile when dropped.
pub struct Daemonized {
    pidfile: Option<Pidfile>,
    logs: Vec<LogTarget>,
}

impl Daemonized {
    /// Reopens the logs by path whenever `signal` arrives (logrotate's
    /// postrotate `kill -HUP`), from a thread of its own.
    pub fn reopen_on_signal(&self, signal: i32) -> Result<Reopener> {
        reopen_on_signal(signal, &self.logs)
    }

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

/// Everything validated and opened before the first fork, so that every
/// error reaches the caller's terminal and nothing has started yet.
struct Prepared {
    log_options: LogOptions,
    stdout: Option<(PathBuf, File)>,
    stderr: Option<(PathBuf, File)>,
    /// stdout and stderr share one file (`--log`).
    shared: bool,
    pidfile: Option<Pidfile>,
    child_pidfile: Option<Pidfile>,
    creds: Option<Credentials>,
    devnull: File,
}

impl Prepared {
    /// `child_pidfile` is the command's (`--child-pidfile`), which only the
    /// command line has.
    fn new(d: &Daemon, child_pidfile: Option<&Path>) -> Result<Prepared> {
        if let Some(mask) = d.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        let creds = user::resolve(d.user.as_deref(), d.group.as_deref())?;
        let log_options =
            LogOptions { owner: d.log_owner.as_deref().map(user::resolve_owner).transpose()?, ..d.log_options };
        let open = |path: &Path| -> Result<(PathBuf, File)> {
            let path = absolute(path)?;
            let file =
                open_log(&path, &log_options).map_err(|err| Error::Create { what: "log", path: path.clone(), err })?;
            Ok((path, file))
        };
        let (stdout, stderr, shared) = match &d.logs {
            LogPaths { log: Some(log), .. } => (Some(open(log)?), None, true),
            LogPaths { stdout, stderr, .. } => {
                (stdout.as_deref().map(open).transpose()?, stderr.as_deref().map(open).transpose()?, false)
            }
        };
        let devnull = stdio::open_devnull().map_err(|e| Error::os("cannot open '/dev/null'", e))?;
        let acquire = |p: Option<&Path>| p.map(|p| absolute(p).and_then(|p| Pidfile::acquire(&p))).transpose();
        let mut prep = Prepared {
            log_options,
            stdout,
            stderr,
            shared,
            pidfile: acquire(d.pidfile.as_deref())?,
            child_pidfile: None,
            creds,
            devnull,
        };
        // From here on, a failure must not leave the pidfiles behind. Every
        // path is absolute by now, so the chdir cannot change what they name.
        let rest = acquire(child_pidfile).map(|p| prep.child_pidfile = p).and_then(|()| match &d.chdir {
            Some(dir) => std::env::set_current_dir(dir)
                .map_err(|e| Error::os(format!("cannot change directory to '{}'", dir.display()), e)),
            None => Ok(()),
        });
        match rest {
            Ok(()) => Ok(prep),
            Err(e) => {
                prep.remove_pidfiles();
                Err(e)
            }
        }
    }

    /// The fds the daemon must keep when it closes what it inherited.
    fn fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.devnull.as_raw_fd()];
        fds.extend(self.stdout.iter().chain(&self.stderr).map(|(_, f)| f.as_raw_fd()));
        fds.extend(self.pidfile.iter().chain(&self.child_pidfile).map(|p| p.raw_fd()));
        fds
    }

    fn write_pidfile(&mut self, pid: u32) -> Result<()> {
        match &mut self.pidfile {
            Some(p) => p.write(pid),
            None => Ok(()),
        }
    }

    fn write_child_pidfile(&mut self, pid: u32) -> Result<()> {
        match &mut self.child_pidfile {
            Some(p) => p.write(pid),
            None => Ok(()),
        }
    }

    fn remove_pidfiles(&mut self) {
        self.pidfile.take().into_iter().chain(self.child_pidfile.take()).for_each(Pidfile::remove);
    }

    /// The freopen step: /dev/null over fd 0 (when `daemon`), each log over
    /// fd 1 and/or 2; a stream without a log gets /dev/null when `daemon`,
    /// and is left as it is otherwise (`--foreground` keeps the journal).
    fn install_logs(&mut self, daemon: bool) -> Result<Vec<LogTarget>> {
        let null =
            |fd| stdio::redirect(self.devnull.as_fd(), fd).map_err(|e| Error::os("cannot redirect to '/dev/null'", e));
        if daemon {
            null(0)?;
        }
        let mut logs = Vec::new();
        let streams =
            [(self.stdout.take(), if self.shared { &[1, 2][..] } else { &[1][..] }), (self.stderr.take(), &[2][..])];
        for (log, fds) in streams {
            match log {
                Some((path, file)) => logs.push(
                    LogTarget::install(&path, self.log_options, file, fds)
                        .map_err(|e| Error::os(format!("cannot redirect to '{}'", path.display()), e))?,
                ),
                None if daemon && !(self.shared && fds == [2]) => fds.iter().try_for_each(|&fd| null(fd))?,
                None => {}
            }
        }
        Ok(logs)
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::os(format!("cannot resolve '{}'", path.display()), e))
}
