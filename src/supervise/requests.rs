//! Requests to the supervisor: the reopen signal, the forwarded signals,
//! and the control verbs' requests (`reopen --wait`, `restart`, `signal`),
//! each answered once done.

use super::{Supervisor, Waiter};
use crate::request::{self, Request};

impl Supervisor {
    /// A control verb's request: act, and answer it (a restart, once the
    /// new run has been exec'd).
    pub(super) fn handle_request(&mut self, req: Request, from: Waiter) {
        let outcome = match req {
            Request::Reopen => self.reopen_logs(),
            Request::Signal(sig) => self.forward_signal(sig),
            Request::Restart => return self.restart(from),
            Request::Rotate => self.rotate_logs(),
        };
        request::answer(from.0, from.1, outcome);
    }

    /// Reopens every log; 0, or the errno of the first that failed. A line
    /// held for its newline is not flushed first: it goes whole into the new
    /// file once complete, for a line written in one write may reach the pipe
    /// in pieces.
    pub(super) fn reopen_logs(&mut self) -> i32 {
        // RELOADING=1 and READY=1 only around a reopen of a service systemd
        // was told is ready: not while it starts (READY=1 would make it
        // active early), nor once it stops.
        let tell = self.notify.as_ref().filter(|_| !self.first_run && !self.stopping).map(|n| {
            n.reloading();
        });
        let mut outcome = 0;
        for sink in &mut self.sinks {
            if let Err(errno) = sink.reopen()
                && outcome == 0
            {
                outcome = errno;
            }
        }
        if let (Some(()), Some(n)) = (tell, &self.notify) {
            n.send("READY=1");
        }
        outcome
    }

    /// Rotates every log (sink.rs, rotate.rs); 0, or the errno of the first
    /// that failed. A log that ends inside a line rotates at that line's end.
    pub(super) fn rotate_logs(&mut self) -> i32 {
        let failed = self.sinks.iter_mut().filter_map(|s| s.rotate_now().err()).collect::<Vec<_>>();
        failed.first().copied().unwrap_or(0)
    }

    /// Sends `sig` to the running command; 0, or an errno (ESRCH between runs).
    pub(super) fn forward_signal(&self, sig: i32) -> i32 {
        match self.child {
            // SAFETY: kill(2) on our own child, which cannot have been
            // reaped (and its pid reused) without us knowing.
            Some(child) if unsafe { libc::kill(child.as_raw(), sig) } == 0 => 0,
            Some(_) => std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO),
            None => libc::ESRCH,
        }
    }

    /// `detach restart`: stop the run (stop signal, kill timeout, KILL) and
    /// start a new one at once, in place; between runs, start it now.
    pub(super) fn restart(&mut self, from: Waiter) {
        if self.stopping || self.ending.is_some() {
            return request::answer(from.0, from.1, libc::ESRCH);
        }
        // The first run's start is not settled: its caller still waits.
        if self.first_run {
            return request::answer(from.0, from.1, libc::EBUSY);
        }
        self.restart_waiters.push(from);
        if self.child.is_none() {
            self.respawn_at = None;
            self.respawn();
        } else if !self.restarting {
            self.restarting = true;
            self.start_kill_timer();
        }
    }

    pub(super) fn answer_restarts(&mut self, outcome: i32) {
        for (pid, start_time) in self.restart_waiters.drain(..) {
            request::answer(pid, start_time, outcome);
        }
    }
}
