//! The runs of the command: stopping one (the stop signal, then KILL after
//! --kill-timeout), reaping it, and deciding what follows its end: a restart
//! after a delay, an in-place restart, or the end of the supervisor.

use std::time::Instant;

use nix::unistd::Pid;

use super::{Supervisor, deadline, group};
use crate::ready::Gate;
use crate::restart::{Ending, Next};

impl Supervisor {
    /// The stop signal to the command, or to its process group
    /// (`--stop-group`, and between runs, where orphans may remain).
    pub(super) fn send_stop_signal(&self) {
        match self.child {
            // SAFETY: kill(2) on our own unreaped child (see forward_signal).
            Some(child) if !self.opts.stop_group => drop(unsafe { libc::kill(child.as_raw(), self.opts.stop_signal) }),
            child => group::signal_group(self.group, child.is_some(), self.opts.stop_signal),
        }
    }

    /// The stop signal now, and KILL to whatever of the command's process
    /// group is left when `--kill-timeout` runs out.
    pub(super) fn start_kill_timer(&mut self) {
        self.send_stop_signal();
        // One timer per run's group: a run that follows has its own.
        if !self.kill_at.iter().any(|&(_, g)| g == self.group) {
            self.kill_at.push((deadline(self.opts.kill_timeout), self.group));
        }
    }

    /// TERM: stop the command; no run follows. Between two runs, that's now.
    pub(super) fn stop(&mut self) {
        if let (false, Some(n)) = (self.stopping, &self.notify) {
            n.send("STOPPING=1");
        }
        self.stopping = true;
        self.start_kill_timer();
        if self.respawn_at.take().is_some() {
            self.finish(self.last_ending);
        }
    }

    /// Reaps every child that has ended: the command's run, and orphans
    /// reparented to us as subreaper. (libc's waitpid, for nix's cannot say
    /// that a child died of a real-time signal.)
    pub(super) fn reap_children(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) writes the int we own.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if Some(Pid::from_raw(pid)) != self.child {
                continue; // an orphan we inherited as subreaper: reaped
            }
            if libc::WIFEXITED(status) {
                self.run_ended(Ending::Exited(libc::WEXITSTATUS(status)), true);
            } else if libc::WIFSIGNALED(status) {
                let ending = Ending::Killed { signal: libc::WTERMSIG(status), core: libc::WCOREDUMP(status) };
                self.run_ended(ending, true);
            }
        }
    }

    /// A run ended (or, `ran` false, could not be started): restart it after
    /// a delay, or let it be the last.
    pub(super) fn run_ended(&mut self, ending: Ending, ran: bool) {
        // What the run wrote before it exited is in the pipe: log it before
        // the line that says the run ended; all of it, signals or not.
        self.pump_streams(false);
        self.child = None;
        self.last_ending = ending;
        let program = self.launcher.spec.program();
        // Ready with its last words (a line just pumped) is ready: a run
        // that then ends has started all the same.
        if self.gate.is_some() && !self.restarting {
            self.check_gate(Instant::now());
        }
        match self.gate.take() {
            // The run a restart request stopped: its successor gets a gate.
            Some(_) if self.restarting => {}
            Some(gate) => {
                let (code, why) = gate.ended(&program, ending, Instant::now());
                if self.gate_failed(gate, code, &why, libc::ECHILD) {
                    return self.finish(ending);
                }
            }
            None => {}
        }
        let how = match ending {
            _ if !ran => format!("'{program}' did not start"),
            Ending::Killed { signal, core } => {
                let core = if core { " (core dumped)" } else { "" };
                format!("'{program}' was killed by SIG{}{core}", crate::sig::name(signal))
            }
            Ending::Exited(n) => format!("'{program}' exited with status {n}"),
        };
        if self.restarting && !self.stopping {
            self.restarting = false;
            self.note(&format!("{how}; restarting as asked"));
            return self.respawn();
        }
        let next = match self.stopping {
            true => Next::Stop,
            false => {
                let unready = std::mem::take(&mut self.unready);
                let failed = unready || !self.opts.success.clean(ending);
                self.backoff.next(failed, self.started_at.elapsed())
            }
        };
        match next {
            Next::Stop => {
                // Which signal killed it, unless it is the one a stop sent.
                let asked = self.stopping && ending == Ending::Killed { signal: self.opts.stop_signal, core: false };
                if matches!(ending, Ending::Killed { .. }) && !asked {
                    self.note(&how);
                }
                self.finish(ending)
            }
            Next::GiveUp { n } => {
                self.note(&format!("{how}; giving up after {n} restarts"));
                self.finish(ending);
            }
            Next::Restart { n, delay } => {
                self.note(&format!("{how}; restart {n} in {:.1} s", delay.as_secs_f64()));
                // Until the next run, the child pidfile names no process.
                self.launcher.clear_pidfile();
                self.respawn_at = Some(deadline(delay));
            }
        }
    }

    /// No run follows: end as `ending` says once the output is drained.
    pub(super) fn finish(&mut self, ending: Ending) {
        self.ending = Some(ending);
        self.launcher.close_pipes();
        self.drain_until = self.opts.drain_timeout.map(deadline);
        self.answer_restarts(libc::ESRCH);
    }

    pub(super) fn respawn(&mut self) {
        match self.launcher.launch() {
            Ok(pid) => {
                let pid = Pid::from_raw(pid as i32);
                (self.child, self.group, self.started_at) = (Some(pid), pid, Instant::now());
                // A stop of the run before (not ready in time, a restart)
                // must not reach this one.
                self.give_up_at = None;
                if let Some(l) = &mut self.syslog {
                    l.set_pid(pid.as_raw() as u32);
                }
                // A restart verb waits for the new run to be ready, where
                // readiness is asked for; else for its exec.
                match self.start.ready.gated() {
                    true => self.gate = Some(Gate::new(&self.start.ready, Instant::now())),
                    false => self.answer_restarts(0),
                }
            }
            Err(e) => {
                self.note(&e.to_string());
                self.started_at = Instant::now();
                self.answer_restarts(e.raw_os_error().unwrap_or(libc::EIO));
                self.run_ended(Ending::Exited(e.exit_code().into()), false);
            }
        }
    }
}
