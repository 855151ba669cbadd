//! Starting the command, and starting it again: the launcher keeps what every
//! run needs (the pipes' write ends, the child pidfile), and the policy says
//! whether and when a run that ended is followed by another, with systemd's
//! vocabulary (`Restart=`, `RestartSec=`, a doubling delay up to a maximum as
//! `RestartSteps=`/`RestartMaxDelaySec=`, a limit like `StartLimitBurst=`).

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use crate::daemon::CommandSpec;
use crate::error::{Error, Result};
use crate::pidfile::Pidfile;

/// Where one of the command's output streams goes.
pub enum Output {
    /// The write end of a pipe the supervisor reads.
    Pipe(OwnedFd),
    /// /dev/null (a daemon's stream without a log).
    Null,
    /// Whatever detach's own is (`--foreground` without a log).
    Inherit,
}

impl Output {
    fn stdio(&self) -> Result<Stdio> {
        Ok(match self {
            Output::Pipe(w) => Stdio::from(w.try_clone().map_err(|e| Error::os("cannot duplicate a pipe", e))?),
            Output::Null => Stdio::null(),
            Output::Inherit => Stdio::inherit(),
        })
    }
}

/// Starts the command, as often as the policy wants.
pub struct Launcher {
    pub spec: CommandSpec,
    pub stdout: Output,
    pub stderr: Output,
    pub child_pidfile: Option<Pidfile>,
}

impl Launcher {
    /// Starts one run; returns once it has been exec'd, with its pid, which
    /// `--child-pidfile` then holds.
    pub fn launch(&mut self) -> Result<u32> {
        let mut child = self.spec.spawn(self.stdout.stdio()?, self.stderr.stdio()?)?;
        let pid = child.id();
        if let Some(p) = &mut self.child_pidfile
            && let Err(e) = p.write(pid)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(pid)
    }

    /// No run follows: let go of the pipes' write ends, so that the pipes
    /// reach EOF once the last run and its orphans close theirs.
    pub fn close_pipes(&mut self) {
        self.stdout = Output::Null;
        self.stderr = Output::Null;
    }

    /// The run ended: the child pidfile names no process until the next
    /// run (it stays locked, so no one else takes it meanwhile).
    pub fn clear_pidfile(&mut self) {
        if let Some(p) = &mut self.child_pidfile {
            // Best effort: the verbs also refuse a pid that is no child.
            let _ = p.clear();
        }
    }

    pub fn remove_pidfile(&mut self) {
        if let Some(p) = self.child_pidfile.take() {
            p.remove();
        }
    }
}

/// How a run of the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it (and it dumped core).
    Killed { signal: i32, core: bool },
}

impl Ending {
    /// The status a shell shows for it: N, or 128+N for signal N.
    pub fn shell_status(self) -> i32 {
        match self {
            Ending::Exited(n) => n,
            Ending::Killed { signal, .. } => 128 + signal,
        }
    }
}

/// `--success-status`: exit statuses and signals that also count as clean
/// (systemd's `SuccessExitStatus=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuccessStatus {
    pub codes: Vec<i32>,
    pub signals: Vec<i32>,
}

impl SuccessStatus {
    /// Listed: such an ending makes detach exit 0.
    pub fn listed(&self, ending: Ending) -> bool {
        match ending {
            Ending::Exited(n) => self.codes.contains(&n),
            Ending::Killed { signal, .. } => self.signals.contains(&signal),
        }
    }

    /// Clean as systemd's `Restart=on-failure` counts it: exit 0, a death by
    /// HUP, INT, TERM or PIPE, or a listed status.
    pub fn clean(&self, ending: Ending) -> bool {
        const CLEAN_SIGNALS: [i32; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE];
        match ending {
            Ending::Exited(0) => true,
            Ending::Killed { signal, .. } if CLEAN_SIGNALS.contains(&signal) => true,
            _ => self.listed(ending),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Never restart (the default).
    Never,
    /// After an unclean ending, as systemd's Restart=on-failure: not after exit 0, a death by
    /// HUP, INT, TERM or PIPE, or a --success-status one
    OnFailure,
    /// After every exit, unless detach is stopping.
    Always,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub when: When,
    /// Delay before the first restart of a streak.
    pub delay: Duration,
    /// The delay doubles up to this; a run longer than this ends the streak.
    pub max_delay: Duration,
    /// Restarts in a row (runs no longer than `max_delay`) before giving up.
    pub limit: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { when: When::Never, delay: Duration::from_secs(1), max_delay: Duration::from_secs(60), limit: None }
    }
}

/// What to do after a run ended.
#[derive(Debug, PartialEq)]
pub enum Next {
    Stop,
    /// Restart number `n` of the streak, after `delay`.
    Restart {
        n: u32,
        delay: Duration,
    },
    /// The limit is reached: stop, after `n` restarts.
    GiveUp {
        n: u32,
    },
}

/// The backoff state across runs.
#[derive(Debug)]
pub struct Backoff {
    policy: Policy,
    delay: Duration,
    streak: u32,
}

impl Backoff {
    pub fn new(policy: Policy) -> Backoff {
        Backoff { delay: policy.delay, policy, streak: 0 }
    }

    /// A run that lasted `ran` ended with `failed`: restart it?
    pub fn next(&mut self, failed: bool, ran: Duration) -> Next {
        let wanted = match self.policy.when {
            When::Never => false,
            When::OnFailure => failed,
            When::Always => true,
        };
        if !wanted {
            return Next::Stop;
        }
        if ran > self.max_delay() {
            // A run that lasted: the service works, the streak is over.
            self.delay = self.policy.delay;
            self.streak = 0;
        }
        if self.policy.limit.is_some_and(|limit| self.streak >= limit) {
            return Next::GiveUp { n: self.streak };
        }
        self.streak += 1;
        let delay = self.delay;
        self.delay = self.delay.saturating_mul(2).min(self.max_delay()).max(FLOOR);
        Next::Restart { n: self.streak, delay }
    }

    /// The policy's maximum, but never below [`FLOOR`]: with 0 every run
    /// would count as long, reset the delay to 0, and spin.
    fn max_delay(&self) -> Duration {
        self.policy.max_delay.max(FLOOR)
    }
}

/// The least delay between two restarts after the first of a streak, so that
/// `--restart-delay 0` (an immediate first restart) never turns into a loop
/// of thousands of restarts a second (4,863 in 3 s, before): 0, then 0.1 s,
/// 0.2 s, 0.4 s... up to the maximum.
pub const FLOOR: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(when: When, limit: Option<u32>) -> Backoff {
        Backoff::new(Policy { when, delay: Duration::from_millis(100), max_delay: Duration::from_secs(1), limit })
    }

    const QUICK: Duration = Duration::from_millis(10);

    #[test]
    fn delay_doubles_up_to_the_max_and_a_long_run_resets_it() {
        let mut b = backoff(When::Always, None);
        let delays: Vec<_> = (0..6)
            .map(|_| match b.next(true, QUICK) {
                Next::Restart { delay, .. } => delay.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.next(true, Duration::from_secs(2)), Next::Restart { n: 1, delay: Duration::from_millis(100) });
    }

    #[test]
    fn a_zero_delay_restarts_once_at_once_then_backs_off_from_the_floor() {
        let mut b = Backoff::new(Policy {
            when: When::Always,
            delay: Duration::ZERO,
            max_delay: Duration::from_secs(1),
            limit: None,
        });
        let delays: Vec<_> = (0..7)
            .map(|_| match b.next(true, QUICK) {
                Next::Restart { delay, .. } => delay.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_zero_max_delay_still_backs_off_and_quick_runs_do_not_reset_it() {
        let mut b =
            Backoff::new(Policy { when: When::Always, delay: Duration::ZERO, max_delay: Duration::ZERO, limit: None });
        let delays: Vec<_> = (0..4)
            .map(|_| match b.next(true, Duration::from_millis(50)) {
                Next::Restart { delay, .. } => delay.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [0, 100, 100, 100]);
    }

    #[test]
    fn a_huge_delay_saturates_instead_of_overflowing() {
        let mut b =
            Backoff::new(Policy { when: When::Always, delay: Duration::MAX, max_delay: Duration::MAX, limit: None });
        for _ in 0..3 {
            assert!(matches!(b.next(true, QUICK), Next::Restart { delay: Duration::MAX, .. }));
        }
    }

    #[test]
    fn on_failure_ignores_a_clean_exit_and_never_restarts_nothing() {
        assert_eq!(backoff(When::OnFailure, None).next(false, QUICK), Next::Stop);
        assert!(matches!(backoff(When::OnFailure, None).next(true, QUICK), Next::Restart { n: 1, .. }));
        assert_eq!(backoff(When::Never, None).next(true, QUICK), Next::Stop);
    }

    #[test]
    fn limit_n_gives_n_restarts_then_gives_up() {
        let mut b = backoff(When::Always, Some(3));
        let ns: Vec<_> = (0..4).map(|_| b.next(true, QUICK)).collect();
        assert!(matches!(ns[2], Next::Restart { n: 3, .. }));
        assert_eq!(ns[3], Next::GiveUp { n: 3 });
    }
}
