//! In-process log reopening for a Rust program that daemonized itself with
//! [`crate::Daemon`]: the counterpart of the supervisor's reopen.

use std::thread::JoinHandle;

use signal_hook::iterator::{Handle, Signals};

use crate::error::{Error, Result};
use crate::stdio::LogTarget;

/// Reopens logs on a signal until dropped.
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
/// the signal handler.
pub fn reopen_on_signal(signal: i32, logs: &[LogTarget]) -> Result<Reopener> {
    let mut logs = logs.to_vec();
    let mut signals = Signals::new([signal]).map_err(|e| Error::os("cannot install a signal handler", e))?;
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
        let _ = crate::stdio::with_fd(log.fd(), |f| std::io::Write::write_all(f, line.as_bytes()));
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
