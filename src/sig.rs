//! Signals by name or number, checked where they enter (the command line).
//!
//! `HUP`, `SIGHUP`, `hup`, `1`, `RTMIN+3`, `SIGRTMAX-2` all parse, and a name
//! and its number are checked alike: before this module a numeric
//! `--reopen-signal 9` skipped the check that `KILL` got, and panicked inside
//! signal-hook; `17` (CHLD) made the supervisor spin.
//!
//! Two types, for the two uses: [`Signal`] is any real signal one may send
//! (`--stop-signal`, `detach signal`), [`ReopenSignal`] one the supervisor can
//! also take over as its reopen signal.

use std::fmt;
use std::str::FromStr;

use crate::request::request_signal;

/// Linux has signals 1 to 64 (`_NSIG` is 65).
const MAX: i32 = 64;

/// A real signal, 1 to 64: one of the standard ones or a real-time one. 0
/// (kill(2)'s "does it exist" probe) and numbers past 64 are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Signal(i32);

impl Signal {
    /// The signal's number, as kill(2) takes it.
    pub(crate) fn number(self) -> i32 {
        self.0
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(s: &str) -> Result<Signal, String> {
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

/// A signal the supervisor can catch to reopen its logs: not one it cannot
/// catch (KILL, STOP), not one it needs for itself (TERM stops it, CHLD
/// reaps, PIPE must stay ignored for its writes, `SIGRTMIN+5` carries the
/// verbs' requests, URG their answers), not a fault the kernel sends for a
/// bug (SEGV, ILL, FPE, BUS, TRAP, SYS: signal-hook refuses some, and
/// catching one and returning runs the faulting instruction again), and not
/// glibc's internal 32 and 33.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReopenSignal(Signal);

impl ReopenSignal {
    pub(crate) fn number(self) -> i32 {
        self.0.number()
    }
}

impl FromStr for ReopenSignal {
    type Err = String;

    fn from_str(s: &str) -> Result<ReopenSignal, String> {
        let sig: Signal = s.parse()?;
        let n = sig.number();
        let why = match n {
            libc::SIGKILL | libc::SIGSTOP => "it cannot be caught",
            libc::SIGTERM => "it stops detach",
            libc::SIGCHLD => "detach needs it to reap the command",
            libc::SIGPIPE => "detach keeps it ignored",
            libc::SIGURG => "detach needs it for the verbs' answers",
            libc::SIGSEGV | libc::SIGILL | libc::SIGFPE | libc::SIGBUS | libc::SIGTRAP | libc::SIGSYS => {
                "the kernel sends it for a fault"
            }
            32 | 33 => "the C library uses it internally",
            _ if n == request_signal() => "detach needs it for the verbs' requests",
            _ => return Ok(ReopenSignal(sig)),
        };
        Err(format!("{sig} cannot be the reopen signal: {why}"))
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

    fn sig(s: &str) -> Result<i32, String> {
        s.parse::<Signal>().map(Signal::number)
    }

    fn reopen(s: &str) -> Result<i32, String> {
        s.parse::<ReopenSignal>().map(ReopenSignal::number)
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
