//! The deferred start report of the library's [`Daemon::start_deferred`]:
//! the caller's process waits until the daemon says it is ready, or why not.
//!
//! [`Daemon::start_deferred`]: crate::Daemon::start_deferred

use crate::daemon::Reporter;
use crate::error::{Error, exit};

/// What the process that called [`Daemon::start_deferred`] is waiting for:
/// [`ready`](StartReport::ready) makes it exit 0, [`fail`](StartReport::fail)
/// makes it print the error and exit with its code. Dropped without either
/// (a panic, an early return), it reports a failure, so that a daemon that
/// never got ready can never look started.
///
/// ```no_run
/// let (_daemon, report) = detach::Daemon::new().log("/var/log/app.log").start_deferred()?;
/// match std::fs::read_to_string("/etc/app.conf") {
///     Ok(_config) => report.ready(), // the caller exits 0
///     Err(e) => report.fail(&detach::Error::os("cannot read '/etc/app.conf'", e)),
/// }
/// # Ok::<(), detach::Error>(())
/// ```
///
/// [`Daemon::start_deferred`]: crate::Daemon::start_deferred
#[must_use = "the caller's process waits until ready() or fail() is called"]
pub struct StartReport {
    reporter: Option<Reporter>,
    /// The daemon's pid: a worker it forked that drops its copy reports nothing.
    pid: u32,
}

impl StartReport {
    pub(crate) fn new(reporter: Reporter) -> StartReport {
        StartReport { reporter: Some(reporter), pid: std::process::id() }
    }

    /// The daemon is up: the caller's process exits 0.
    pub fn ready(mut self) {
        if let Some(r) = self.reporter.take() {
            r.success();
        }
    }

    /// The daemon could not start: the caller's process prints `err` and
    /// exits with its code ([`Error::exit_code`]); this process ends too.
    pub fn fail(mut self, err: &Error) -> ! {
        match self.reporter.take() {
            Some(r) => r.fail(err),
            // Not reached: ready() and fail() take the report by value, so
            // it is still unsent here. Ending as fail() promises anyway.
            None => std::process::exit(i32::from(err.exit_code())),
        }
    }
}

impl std::fmt::Debug for StartReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartReport").field("sent", &self.reporter.is_none()).finish()
    }
}

impl Drop for StartReport {
    fn drop(&mut self) {
        if let Some(r) = self.reporter.take().filter(|_| std::process::id() == self.pid) {
            let err = Error::Reported { code: exit::OSERR, message: "the daemon never said it was ready".into() };
            r.report_failure(&err);
        }
    }
}
