//! One error type for the whole crate, and its mapping onto sysexits(3).
//!
//! Every variant that touches the OS carries what was being done, the path (or
//! name) and the `io::Error`, so that the single line a user sees reads
//! `detach: cannot open log '/var/log/app.log': Permission denied (os error 13)`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// sysexits(3) codes, plus the shell's conventions for exec failures.
pub(crate) mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// EX_USAGE: the command line was wrong.
    pub const USAGE: u8 = 64;
    /// EX_NOUSER: unknown user or group.
    pub const NOUSER: u8 = 67;
    /// EX_NOHOST: a host name that does not resolve.
    pub const NOHOST: u8 = 68;
    /// EX_UNAVAILABLE: a service detach needs is not there (a syslog socket).
    pub const UNAVAILABLE: u8 = 69;
    /// EX_OSERR: a system call failed.
    pub const OSERR: u8 = 71;
    /// EX_CANTCREAT: a log or pidfile cannot be created.
    pub const CANTCREAT: u8 = 73;
    /// EX_TEMPFAIL: already running; try again once the other one stops.
    pub const TEMPFAIL: u8 = 75;
    /// EX_NOPERM: not allowed (switching user without being root).
    pub const NOPERM: u8 = 77;
    /// The shell's status for a command found but not executable.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The shell's status for a command not found.
    pub const NOT_FOUND: u8 = 127;
}

/// Everything that can go wrong in detach, as one line for a person
/// (`Display`: `cannot open log '/var/log/app.log': Permission denied (os
/// error 13)`) and one exit status for the shell ([`Error::exit_code`], after
/// sysexits(3)). A variant that touches the OS carries what was being done,
/// the path or name, and the `io::Error`, which [`source`] returns.
///
/// `Display` is the whole line, the OS error's text included, because that
/// line is what the `detach` command and [`StartReport::fail`] print: a
/// program printing the chain of sources should print `Display` alone, or
/// stop at the first source.
///
/// ```
/// let err = detach::Error::os("cannot bind 127.0.0.1:80", std::io::Error::from_raw_os_error(libc::EACCES));
/// assert_eq!(err.to_string(), "cannot bind 127.0.0.1:80: Permission denied (os error 13)");
/// assert_eq!(err.exit_code(), 71); // EX_OSERR
/// assert_eq!(err.raw_os_error(), Some(libc::EACCES));
/// assert!(std::error::Error::source(&err).is_some());
/// ```
///
/// [`source`]: std::error::Error::source
/// [`StartReport::fail`]: crate::StartReport::fail
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Bad command line or configuration (exit 64, EX_USAGE).
    Usage(String),
    /// Unknown user or group name (exit 67, EX_NOUSER).
    NoUser {
        /// `"user"` or `"group"`.
        what: &'static str,
        /// The name that was not found.
        name: String,
    },
    /// A file detach must create or open (log, pidfile) could not be (exit
    /// 73, EX_CANTCREAT).
    Create {
        /// `"log"` or `"pidfile"`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        err: io::Error,
    },
    /// The pidfile is locked by a running detach (exit 75, EX_TEMPFAIL).
    AlreadyRunning {
        /// The pidfile.
        path: PathBuf,
        /// The pid that holds its lock, when known.
        pid: Option<i32>,
    },
    /// The command could not be executed (exit 127 when it is not found, 126
    /// otherwise, as the shell says).
    Exec {
        /// The command.
        program: String,
        /// Why.
        err: io::Error,
    },
    /// Not permitted, such as switching user without being root (exit 77,
    /// EX_NOPERM).
    Permission {
        /// What was refused.
        what: String,
        /// Why.
        err: io::Error,
    },
    /// A host name that does not resolve, such as a syslog server's (exit
    /// 68, EX_NOHOST).
    NoHost {
        /// What was being resolved.
        what: String,
        /// Why.
        err: io::Error,
    },
    /// A service that is not there, such as the syslog socket (exit 69,
    /// EX_UNAVAILABLE).
    Unavailable {
        /// What was being reached.
        what: String,
        /// Why.
        err: io::Error,
    },
    /// Any other failing system call (exit 71, EX_OSERR).
    Os {
        /// What was being done.
        what: String,
        /// Why.
        err: io::Error,
    },
    /// A failure the daemon reported to the process that started it, with
    /// its exit status: what that process's [`Daemon::start`] returns when
    /// the daemon failed after the fork.
    ///
    /// [`Daemon::start`]: crate::Daemon::start
    Reported {
        /// The exit status the daemon's error maps to.
        code: u8,
        /// The daemon's error, as one line.
        message: String,
    },
}

impl Error {
    /// An [`Error::Os`]: `what` failed (`"cannot bind 0.0.0.0:80"`) because
    /// of `err`.
    #[must_use]
    pub fn os(what: impl Into<String>, err: impl Into<io::Error>) -> Self {
        Error::Os { what: what.into(), err: err.into() }
    }

    /// The inner `io::Error`, for the variants that have one.
    fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Create { err, .. }
            | Error::Exec { err, .. }
            | Error::Permission { err, .. }
            | Error::NoHost { err, .. }
            | Error::Unavailable { err, .. }
            | Error::Os { err, .. } => Some(err),
            Error::Usage(_) | Error::NoUser { .. } | Error::AlreadyRunning { .. } | Error::Reported { .. } => None,
        }
    }

    /// The OS error number behind it (`libc::EACCES`, say), if any.
    #[must_use]
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }

    /// The process exit status for this error, after sysexits(3): what a
    /// program that failed to daemonize exits with (see [`Error`]'s variants).
    ///
    /// ```
    /// let err = detach::Error::Usage("no command".into());
    /// assert_eq!(err.exit_code(), 64);
    /// let code = std::process::ExitCode::from(err.exit_code());
    /// # let _ = code;
    /// ```
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::NoUser { .. } => exit::NOUSER,
            Error::Create { .. } => exit::CANTCREAT,
            Error::AlreadyRunning { .. } => exit::TEMPFAIL,
            Error::Exec { err, .. } => match err.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => exit::NOT_FOUND,
                _ => exit::CANNOT_EXECUTE,
            },
            Error::Permission { .. } => exit::NOPERM,
            Error::NoHost { .. } => exit::NOHOST,
            Error::Unavailable { .. } => exit::UNAVAILABLE,
            Error::Os { .. } => exit::OSERR,
            Error::Reported { code, .. } => *code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::NoUser { what, name } => write!(f, "unknown {what} '{name}'"),
            Error::Create { what, path, err } => {
                write!(f, "cannot open {what} '{}': {err}", path.display())
            }
            Error::AlreadyRunning { path, pid: Some(pid) } => {
                write!(f, "cannot lock pidfile '{}': already running (pid {pid})", path.display())
            }
            Error::AlreadyRunning { path, pid: None } => {
                write!(f, "cannot lock pidfile '{}': already running", path.display())
            }
            Error::Exec { program, err } => write!(f, "cannot execute '{program}': {err}"),
            Error::Permission { what, err } => write!(f, "{what}: {err}"),
            Error::NoHost { what, err } | Error::Unavailable { what, err } | Error::Os { what, err } => {
                write!(f, "{what}: {err}")
            }
            Error::Reported { message, .. } => write!(f, "{message}"),
        }
    }
}

/// The inner `io::Error`, for the variants that carry one.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error().map(|e| e as _)
    }
}

/// `Result` with detach's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
