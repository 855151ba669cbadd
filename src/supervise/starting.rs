//! Knowing it started: the supervisor's side of the start gate. The first
//! run's gate tells the waiting caller (or systemd) that the service is up,
//! or why it never was; a later run's says so in the log.

use std::time::Instant;

use super::Supervisor;
use crate::daemon::Reporter;
use crate::error::Error;
use crate::ready::{Gate, NotifySocket, Verdict};

impl Supervisor {
    /// The first parent waits (default mode): it is told once the first run
    /// is started, or why it never was.
    pub fn wait_with(&mut self, reporter: Reporter) {
        self.start.caller.reporter = Some(reporter);
        self.report_started();
    }

    /// The first run is started (exec'd): unless a gate must be passed first,
    /// that is what the caller waits for.
    pub fn report_started(&mut self) {
        if self.gate.is_none() {
            self.first_run = false;
            self.announce_ready();
        }
    }

    /// Tells the first parent (it exits 0) and systemd (READY=1) that the
    /// service is up.
    pub(super) fn announce_ready(&mut self) {
        if let Some(r) = self.start.caller.reporter.take() {
            r.success();
        }
        if let Some(n) = &self.notify {
            n.send(&format!("READY=1\nMAINPID={}", std::process::id()));
        }
    }

    /// The open gate's verdict: ready, or failed (stop the run), or not yet.
    pub(super) fn check_gate(&mut self, now: Instant) {
        if self.notified {
            self.notified = false;
            let messages = self.start.notify_socket.as_ref().map(NotifySocket::read).unwrap_or_default();
            for m in messages {
                if let (Some(status), Some(n)) = (&m.status, &self.notify) {
                    n.send(&format!("STATUS={status}")); // relayed to systemd
                }
                if let Some(gate) = &mut self.gate {
                    gate.saw_notify(m, now);
                }
            }
        }
        let Some(gate) = &mut self.gate else { return };
        match gate.verdict(&self.launcher.spec.program(), now) {
            Verdict::Pending => {}
            Verdict::Ready => {
                let how = gate.how_ready();
                self.gate = None;
                if std::mem::take(&mut self.first_run) {
                    self.announce_ready();
                } else {
                    let program = self.launcher.spec.program();
                    self.note(&format!("'{program}' is ready: {how}"));
                }
                self.answer_restarts(0);
            }
            Verdict::Failed { code, why } => {
                let gate = self.gate.take().expect("the gate is open");
                let errno = if code == crate::ready::TIMED_OUT { libc::ETIMEDOUT } else { libc::ECANCELED };
                if self.gate_failed(gate, code, &why, errno) {
                    self.stopping = true;
                }
                self.unready = true;
                self.start_kill_timer();
            }
        }
    }

    /// A run failed to be ready: `errno` for the verbs waiting on it. The
    /// first run's failure is the caller's (true: no run follows); a later
    /// one's is a line in the log.
    pub(super) fn gate_failed(&mut self, gate: Gate, code: u8, why: &str, errno: i32) -> bool {
        self.answer_restarts(errno);
        if !std::mem::take(&mut self.first_run) {
            self.note(why);
            return false;
        }
        self.note(why);
        self.start_failure = Some(Error::Reported { code, message: gate.report(why) });
        true
    }
}
