//! One error type for the whole crate, and its mapping onto sysexits(3).
//!
//! Every variant that touches the OS carries what was being done, the path (or
//! name) and the `io::Error`, so that the single line a user sees reads
//! `detach: cannot open log '/var/log/app.log': Permission denied (os error 13)`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// sysexits(3) codes, plus the shell's conventions for exec failures.
pub mod exit {
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

#[derive(Debug)]
pub enum Error {
    /// Bad command line or configuration.
    Usage(String),
    /// Unknown user or group name.
    NoUser { what: &'static str, name: String },
    /// A file detach must create or open (log, pidfile) could not be.
    Create { what: &'static str, path: PathBuf, err: io::Error },
    /// The pidfile is locked by a running detach.
    AlreadyRunning { path: PathBuf, pid: Option<i32> },
    /// The command could not be executed.
    Exec { program: String, err: io::Error },
    /// Not permitted (e.g. `--user` without root).
    Permission { what: String, err: io::Error },
    /// A host name that does not resolve (a syslog server).
    NoHost { what: String, err: io::Error },
    /// A service that is not there (the syslog socket).
    Unavailable { what: String, err: io::Error },
    /// Any other failing system call.
    Os { what: String, err: io::Error },
    /// A message reported by the daemon to the first parent, with its code.
    Reported { code: u8, message: String },
}

impl Error {
    pub fn os(what: impl Into<String>, err: impl Into<io::Error>) -> Self {
        Error::Os { what: what.into(), err: err.into() }
    }

    /// The OS error behind it, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Create { err, .. }
            | Error::Exec { err, .. }
            | Error::Permission { err, .. }
            | Error::NoHost { err, .. }
            | Error::Unavailable { err, .. }
            | Error::Os { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }

    /// The process exit status for this error, after sysexits(3).
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

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
