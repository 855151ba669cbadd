//! detach: run a program as a well-behaved Unix daemon and keep its output safe.
//!
//! This is the library face of the `detach` command (crate `detach-daemon`,
//! library `detach`): what a Rust program needs to daemonize itself, with its
//! stdout and stderr in a log that survives rotation. Linux only.
//!
//! ```no_run
//! fn main() -> Result<(), detach::Error> {
//!     let daemon = detach::Daemon::new()
//!         .log("/var/log/app.log")
//!         .pidfile("/run/app.pid")
//!         .start()?; // returns in the daemon only; the caller's process exits 0
//!     let _reopener = daemon.reopen_on_signal(detach::ReopenSignal::HUP)?; // for logrotate
//!     println!("serving"); // lands in /var/log/app.log
//!     Ok(())
//! }
//! ```
//!
//! - [`Daemon`] builds and [`Daemon::start`]s the daemon; [`Daemonized`] is
//!   the running daemon (it holds the pidfile); [`Daemon::start_deferred`]
//!   keeps the caller waiting until the daemon is ready ([`StartReport`]).
//! - [`reopen_on_signal`] reopens the logs by path on a [`ReopenSignal`],
//!   until its [`Reopener`] is dropped.
//! - The pieces are usable alone too: [`open_log`] opens a log the safe way
//!   ([`LogOptions`]), [`redirect`] dup2s it over a standard fd ([`StdFd`]),
//!   [`Redirect`] does so for a while and restores the original, and
//!   [`LogTarget`] installs a log that can be reopened.
//! - Every failure is an [`Error`] that prints as one line and maps to a
//!   sysexits(3) status ([`Error::exit_code`]).
//!
//! The crate's diagnostics (a log that cannot be reopened) go through the
//! [`log`](https://docs.rs/log) crate, to the program's own logger.

#![warn(missing_docs, missing_debug_implementations)]

// fork/setsid and the supervisor use prctl(2), close_range(2), pidfd_open(2),
// signalfd(2) and /proc, which only Linux has.
#[cfg(not(target_os = "linux"))]
compile_error!("detach supports Linux only: it needs prctl, close_range, pidfd, signalfd and /proc");

mod archiver;
mod backlog;
mod builder;
mod cli;
#[cfg(test)]
mod cli_docs;
mod cli_values;
mod compress;
mod control;
mod daemon;
mod deadline;
mod env;
mod error;
mod limits;
mod lines;
mod logs;
mod notify;
mod path_safety;
mod pidfile;
mod prepared;
mod procfs;
mod ready;
mod reopen;
mod request;
mod restart;
mod rotate;
mod run;
mod sig;
mod signals;
mod sink;
mod spare_cpu;
mod started;
mod stdio;
mod stream;
mod supervise;
mod syslog;
mod timestamp;
mod user;
mod verbs;

use std::process::ExitCode;

pub use builder::{Daemon, Daemonized};
pub use error::{Error, Result};
pub use reopen::{Reopener, reopen_on_signal};
pub use sig::ReopenSignal;
pub use started::StartReport;
pub use stdio::{LogOptions, LogTarget, Redirect, StdFd, open_log, redirect};

// The command line's plumbing, for the CLI modules (crate-private).
pub(crate) use builder::{LOG_MODE_BITS, LogPaths};
pub(crate) use prepared::Prepared;
pub(crate) use restart::{Policy as RestartPolicy, When as RestartWhen};
pub(crate) use rotate::{Period as RotatePeriod, Rotation};
pub(crate) use run::{Config, Mode, run};
pub(crate) use sink::Logging;
pub(crate) use supervise::Options as SuperviseOptions;
pub(crate) use timestamp::TimeFormat;

/// The `detach` command's `main` (src/main.rs calls it). Not part of the
/// library's API, and exempt from its semver: the command line lives inside
/// the crate, and the binary, being another crate, can only reach it through
/// something public; one hidden function keeps every CLI type crate-private.
#[doc(hidden)]
pub fn __main() -> ExitCode {
    cli::main()
}
