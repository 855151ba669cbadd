//! In-process log reopening for a Rust program that daemonized itself with
//! [`crate::Daemon`]: the counterpart of the supervisor's reopen.

use std::thread::JoinHandle;

use signal_hook::iterator::{Handle, Signals};

use crate::error::{Error, Result};
use crate::sig::ReopenSignal;
use crate::stdio::LogTarget;

/// Reopens logs on a signal until dropped: what [`reopen_on_signal`]
/// returns. Dropping it stops the thread and unregisters the signal (whose
/// disposition signal-hook then leaves as a no-op handler: the signal is
/// caught and ignored).
///
/// ```no_run
/// let daemon = detach::Daemon::new().log("/var/log/app.log").start()?;
/// let reopener = daemon.reopen_on_signal(detach::ReopenSignal::HUP)?;
/// // ... serve; HUP reopens /var/log/app.log ...
/// drop(reopener); // HUP reopens nothing from here on
/// # Ok::<(), detach::Error>(())
/// ```
pub struct Reopener {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Reopens each of `logs` by path, and dup2s it over its fds, whenever
/// `signal` arrives. No instant passes with fd 1 or 2 closed: the new file is
/// opened first, then installed over the old one with dup2. If the new file
/// cannot be opened, the old one stays and gets a line saying why.
///
/// The work runs on a thread of its own (signal-hook's iterator), never in
/// the signal handler. Call it after [`Daemon::start`]: a thread before the
/// fork makes `start` refuse.
///
/// ```no_run
/// use detach::{Daemon, ReopenSignal, reopen_on_signal};
/// let daemon = Daemon::new().log("/var/log/app.log").start()?;
/// let _reopener = reopen_on_signal(ReopenSignal::USR1, daemon.logs())?;
/// # Ok::<(), detach::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Os`] when the signal handler cannot be installed or the thread
/// cannot be started.
///
/// [`Daemon::start`]: crate::Daemon::start
pub fn reopen_on_signal(signal: ReopenSignal, logs: &[LogTarget]) -> Result<Reopener> {
    let mut logs = logs.to_vec();
    let mut signals = Signals::new([signal.number()]).map_err(|e| Error::os(format!("cannot catch {signal}"), e))?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("detach-reopen".into())
        .spawn(move || {
            for _ in signals.forever() {
                logs.iter_mut().for_each(reopen_or_warn);
            }
        })
        .map_err(|e| Error::os("cannot start the reopen thread", e))?;
    Ok(Reopener { handle, thread: Some(thread) })
}

fn reopen_or_warn(log: &mut LogTarget) {
    if let Err(e) = log.reopen() {
        log::warn!("cannot reopen '{}': {e}", log.path().display());
        let line = format!("detach: cannot reopen '{}': {e}\n", log.path().display());
        let _ = crate::stdio::with_fd(log.fd(), |mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
}

impl std::fmt::Debug for Reopener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reopener").field("running", &self.thread.is_some()).finish_non_exhaustive()
    }
}

impl Drop for Reopener {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
