//! Signals by name or number, checked where they enter (the command line).
//!
//! `HUP`, `SIGHUP`, `hup`, `1`, `RTMIN+3`, `SIGRTMAX-2` all parse, and a name
//! and its number are checked alike: before this module a numeric
//! `--reopen-signal 9` skipped the check that `KILL` got, and panicked inside
//! signal-hook; `17` (CHLD) made the supervisor spin.
//!
//! Two types, for the two uses: [`Signal`] is any real signal one may send
//! (`--stop-signal`, `detach signal`), [`ReopenSignal`] one a program can
//! catch to reopen its logs (the library's), which [`SupervisorReopenSignal`]
//! narrows to what the supervisor can take over (`--reopen-signal`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::request::request_signal;

/// Linux has signals 1 to 64 (`_NSIG` is 65).
const MAX: i32 = 64;

/// A real signal, 1 to 64: one of the standard ones or a real-time one. 0
/// (kill(2)'s "does it exist" probe) and numbers past 64 are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Signal(i32);

impl Signal {
    /// The signal's number, as kill(2) takes it.
    pub(crate) fn number(self) -> i32 {
        self.0
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Signal, String> {
        let n = match s.parse::<i64>() {
            Ok(n) if (1..=MAX as i64).contains(&n) => n as i32,
            Ok(n) => return Err(format!("no signal {n} (signals are 1 to {MAX})")),
            Err(_) => number_of(s).ok_or_else(|| format!("unknown signal '{s}'"))?,
        };
        Ok(Signal(n))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&name(self.0))
    }
}

/// A signal a program can catch to reopen its logs: what
/// [`reopen_on_signal`] and [`Daemonized::reopen_on_signal`] take. Checked
/// where it is made, so that registering it cannot fail on the signal
/// itself: not one that cannot be caught (KILL, STOP), not a fault the kernel
/// sends for a bug (SEGV, ILL, FPE, BUS, TRAP, SYS: signal-hook panics on
/// some, and catching one and returning runs the faulting instruction
/// again), not PIPE (Rust programs keep it ignored, so that a write to a
/// closed pipe fails with `EPIPE` instead), and not the C library's internal
/// 32 and 33.
///
/// The `detach` command's `--reopen-signal` is checked by the same rules,
/// and a few more of its own (TERM stops it, for one).
///
/// ```
/// use detach::ReopenSignal;
/// assert_eq!("SIGUSR1".parse::<ReopenSignal>()?, ReopenSignal::USR1);
/// assert_eq!(ReopenSignal::new(libc::SIGHUP)?, ReopenSignal::HUP);
/// let err = ReopenSignal::new(libc::SIGKILL).unwrap_err();
/// assert_eq!(err.to_string(), "KILL cannot be the reopen signal: it cannot be caught");
/// # Ok::<(), detach::Error>(())
/// ```
///
/// [`reopen_on_signal`]: crate::reopen_on_signal
/// [`Daemonized::reopen_on_signal`]: crate::Daemonized::reopen_on_signal
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReopenSignal(Signal);

impl ReopenSignal {
    /// SIGHUP, what logrotate's `postrotate` usually sends.
    pub const HUP: ReopenSignal = ReopenSignal(Signal(libc::SIGHUP));
    /// SIGUSR1.
    pub const USR1: ReopenSignal = ReopenSignal(Signal(libc::SIGUSR1));
    /// SIGUSR2.
    pub const USR2: ReopenSignal = ReopenSignal(Signal(libc::SIGUSR2));

    /// Signal number `signal` (`libc::SIGHUP`, say), if a program can catch
    /// it to reopen its logs.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`], saying why, for a number that is no signal (0, or
    /// past 64) or a signal refused above.
    pub fn new(signal: i32) -> Result<ReopenSignal> {
        signal.to_string().parse()
    }

    /// The signal's number, as kill(2) takes it.
    #[must_use]
    pub fn number(self) -> i32 {
        self.0.number()
    }

    fn check(sig: Signal) -> std::result::Result<ReopenSignal, String> {
        let why = match sig.number() {
            libc::SIGKILL | libc::SIGSTOP => "it cannot be caught",
            libc::SIGSEGV | libc::SIGILL | libc::SIGFPE | libc::SIGBUS | libc::SIGTRAP | libc::SIGSYS => {
                "the kernel sends it for a fault"
            }
            libc::SIGPIPE => "it stays ignored, so that a write to a closed pipe fails with EPIPE",
            32 | 33 => "the C library uses it internally",
            _ => return Ok(ReopenSignal(sig)),
        };
        Err(refusal(sig, why))
    }
}

fn refusal(sig: Signal, why: &str) -> String {
    format!("{sig} cannot be the reopen signal: {why}")
}

impl TryFrom<i32> for ReopenSignal {
    type Error = Error;

    fn try_from(signal: i32) -> Result<ReopenSignal> {
        ReopenSignal::new(signal)
    }
}

/// A name (`HUP`, `SIGHUP`, `hup`, `RTMIN+3`) or a number (`1`).
impl FromStr for ReopenSignal {
    type Err = Error;

    fn from_str(s: &str) -> Result<ReopenSignal> {
        s.parse().and_then(ReopenSignal::check).map_err(Error::Usage)
    }
}

/// Its name without `SIG`, as `kill -l` prints it: `HUP`, `RTMIN+3`.
impl fmt::Display for ReopenSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The supervisor's reopen signal (`--reopen-signal`, `detach reopen
/// --signal`): a [`ReopenSignal`], and not one the supervisor needs for
/// itself (TERM stops it, CHLD reaps, PIPE must stay ignored for its writes,
/// `SIGRTMIN+5` carries the verbs' requests, URG their answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SupervisorReopenSignal(ReopenSignal);

impl SupervisorReopenSignal {
    pub(crate) fn number(self) -> i32 {
        self.0.number()
    }
}

impl FromStr for SupervisorReopenSignal {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<SupervisorReopenSignal, String> {
        let sig: Signal = s.parse()?;
        let n = sig.number();
        let why = match n {
            libc::SIGTERM => "it stops detach",
            libc::SIGCHLD => "detach needs it to reap the command",
            libc::SIGPIPE => "detach keeps it ignored",
            libc::SIGURG => "detach needs it for the verbs' answers",
            _ if n == request_signal() => "detach needs it for the verbs' requests",
            _ => return ReopenSignal::check(sig).map(SupervisorReopenSignal),
        };
        Err(refusal(sig, why))
    }
}

/// The name of signal `sig` without `SIG`: `TERM`, `RTMIN+3`; its number for
/// one without a name (glibc's 32 and 33, or out of range).
pub(crate) fn name(sig: i32) -> String {
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) if sig == rtmin => "RTMIN".to_string(),
        Err(_) if sig > rtmin && sig <= rtmax => format!("RTMIN+{}", sig - rtmin),
        Err(_) => sig.to_string(),
    }
}

/// The number of a signal name: `HUP`, `SIGHUP`, `hup`, `RTMIN`, `RTMIN+N`,
/// `RTMAX`, `RTMAX-N` (within the real-time range).
fn number_of(s: &str) -> Option<i32> {
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let offset = |rest: &str, sign: char| -> Option<i32> {
        match rest {
            "" => Some(0),
            _ => rest.strip_prefix(sign)?.parse::<u8>().ok().map(i32::from),
        }
    };
    let n = if let Some(rest) = bare.strip_prefix("RTMIN") {
        rtmin + offset(rest, '+')?
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        rtmax - offset(rest, '-')?
    } else {
        return nix::sys::signal::Signal::from_str(&format!("SIG{bare}")).ok().map(|s| s as i32);
    };
    (rtmin..=rtmax).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(s: &str) -> std::result::Result<i32, String> {
        s.parse::<Signal>().map(Signal::number)
    }

    fn reopen(s: &str) -> std::result::Result<i32, String> {
        s.parse::<SupervisorReopenSignal>().map(SupervisorReopenSignal::number)
    }

    fn library(s: &str) -> std::result::Result<i32, String> {
        s.parse::<ReopenSignal>().map(ReopenSignal::number).map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_numbers_parse_alike() {
        for s in ["HUP", "SIGHUP", "hup", "SigHup", "1"] {
            assert_eq!(sig(s), Ok(libc::SIGHUP), "{s}");
        }
        assert_eq!(sig("usr1"), Ok(libc::SIGUSR1));
        assert_eq!(sig("RTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(sig("SIGRTMIN+3"), Ok(libc::SIGRTMIN() + 3));
        assert_eq!(sig("rtmax-1"), Ok(libc::SIGRTMAX() - 1));
        assert_eq!(sig("64"), Ok(64));
    }

    #[test]
    fn zero_out_of_range_and_unknown_names_are_refused() {
        for s in ["0", "-1", "65", "99999999999999999999", "", "FOO", "SIG", "RTMIN+99", "RTMAX+1", "RTMIN-1", "1.0"] {
            assert!(sig(s).is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn the_reopen_signal_refuses_what_detach_needs_by_name_and_number() {
        let refused = ["KILL", "9", "STOP", "19", "TERM", "15", "CHLD", "17", "SEGV", "11", "ILL", "FPE", "BUS", "7"];
        for s in refused.into_iter().chain(["URG", "PIPE", "TRAP", "SYS", "32", "33", "RTMIN+5"]) {
            let err = reopen(s).expect_err(s);
            assert!(err.contains("cannot be the reopen signal"), "{s}: {err}");
        }
        let rt5 = (libc::SIGRTMIN() + 5).to_string();
        assert!(reopen(&rt5).is_err());
        for (s, n) in [("HUP", 1), ("usr1", 10), ("SIGUSR2", 12), ("28", 28), ("RTMIN+1", libc::SIGRTMIN() + 1)] {
            assert_eq!(reopen(s), Ok(n), "{s}");
        }
    }

    /// Issue 17: `reopen_on_signal(libc::SIGKILL)` panicked inside signal-hook. The library's
    /// check refuses every signal signal-hook forbids, by number and by name, with an error.
    #[test]
    fn reopen_signal_refuses_what_signal_hook_forbids_instead_of_panicking() {
        for &n in signal_hook::consts::FORBIDDEN {
            let err = ReopenSignal::new(n).expect_err(&name(n));
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
            assert!(library(&name(n)).is_err(), "{}", name(n));
        }
        for s in ["KILL", "9", "STOP", "SEGV", "ILL", "FPE", "BUS", "TRAP", "SYS", "PIPE", "32", "33", "0", "65"] {
            let err = library(s).expect_err(s);
            assert!(err.contains("cannot be the reopen signal") || err.contains("no signal"), "{s}: {err}");
        }
        assert_eq!(
            ReopenSignal::new(9).unwrap_err().to_string(),
            "KILL cannot be the reopen signal: it cannot be caught"
        );
    }

    #[test]
    fn reopen_signal_takes_what_a_program_may_catch_and_the_supervisor_narrows_it() {
        for (s, n) in
            [("HUP", 1), ("USR1", 10), ("TERM", 15), ("CHLD", 17), ("URG", 23), ("RTMIN+5", libc::SIGRTMIN() + 5)]
        {
            assert_eq!(library(s), Ok(n), "{s}");
        }
        assert_eq!(ReopenSignal::try_from(libc::SIGUSR2).map(ReopenSignal::number).ok(), Some(libc::SIGUSR2));
        assert_eq!(
            [ReopenSignal::HUP, ReopenSignal::USR1, ReopenSignal::USR2].map(|s| s.to_string()),
            ["HUP", "USR1", "USR2"]
        );
        // Every signal the supervisor takes, the library takes too: one check, narrowed.
        for n in 1..=MAX {
            if reopen(&n.to_string()).is_ok() {
                assert_eq!(library(&n.to_string()), Ok(n), "{}", name(n));
            }
        }
    }

    #[test]
    fn names_are_those_kill_l_prints() {
        assert_eq!(name(libc::SIGTERM), "TERM");
        assert_eq!(name(libc::SIGHUP), "HUP");
        assert_eq!(name(libc::SIGRTMIN()), "RTMIN");
        assert_eq!(name(libc::SIGRTMIN() + 3), "RTMIN+3");
        assert_eq!(name(32), "32");
        for n in 1..=MAX {
            assert_eq!(sig(&name(n)), Ok(n), "{n} named {}", name(n));
        }
    }
}
