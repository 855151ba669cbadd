//! Knowing it started: `--start-seconds`, `--ready KIND` and `--ready-timeout`.
//!
//! A run of the command passes a gate: open from its exec until it is ready
//! (the check passed, and it was still running `--start-seconds` later), or
//! until it fails to be (it ended, the timeout passed, or it sent ERRNO=).
//! While the gate is open it keeps the command's last lines of output, so
//! that a failure can show the caller why.

mod check;
mod notify_socket;

use std::time::{Duration, Instant};

pub use check::Check;
use check::Probe;
pub use notify_socket::{Message, NotifySocket};

use crate::restart::Ending;

/// Lines of output a failure report shows, and the bytes kept of each.
const LAST_LINES: usize = 10;
const LINE_BYTES: usize = 300;

/// What "started" means for each run.
#[derive(Clone, Debug)]
pub struct Options {
    pub check: Option<Check>,
    pub start_seconds: Option<Duration>,
    /// `--ready-timeout`: not ready by then is a failure.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { check: None, start_seconds: None, timeout: Duration::from_secs(90) }
    }
}

impl Options {
    /// Whether a run has to pass a gate at all (else: started = exec'd).
    pub fn gated(&self) -> bool {
        self.check.is_some() || self.start_seconds.is_some_and(|s| !s.is_zero())
    }
}

/// What the gate says now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Ready,
    /// Not ready in time, or the command said ERRNO=: it must be stopped.
    Failed {
        code: u8,
        why: String,
    },
}

/// The exit status when the timeout passes, as timeout(1)'s.
pub const TIMED_OUT: u8 = 124;

pub struct Gate {
    check: Option<Check>,
    start_seconds: Option<Duration>,
    started: Instant,
    timeout_at: Instant,
    /// When the check passed (at the start, without one).
    met_at: Option<Instant>,
    probe: Option<Probe>,
    /// The last STATUS= the command sent.
    status: Option<String>,
    errno: Option<i32>,
    last: Vec<String>,
    partial: Vec<u8>,
}

impl Gate {
    pub fn new(opts: &Options, now: Instant) -> Gate {
        let probe = matches!(opts.check, Some(Check::Tcp(_) | Check::Unix(_))).then(|| Probe::new(now));
        Gate {
            check: opts.check.clone(),
            start_seconds: opts.start_seconds,
            started: now,
            timeout_at: crate::deadline::from(now, opts.timeout),
            met_at: opts.check.is_none().then_some(now),
            probe,
            status: None,
            errno: None,
            last: Vec::new(),
            partial: Vec::new(),
        }
    }

    /// The command wrote `data` (whole lines, or a line's beginning held
    /// long enough): keep its last lines, and match them for `line:`.
    pub fn saw_output(&mut self, data: &[u8], now: Instant) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let room = LINE_BYTES.saturating_sub(self.partial.len());
            let body = piece.strip_suffix(b"\n").unwrap_or(piece);
            self.partial.extend_from_slice(&body[..body.len().min(room)]);
            if let (Some(Check::Line(re)), None) = (&self.check, self.met_at)
                && re.is_match(&String::from_utf8_lossy(&self.partial))
            {
                self.met_at = Some(now);
            }
            if piece.ends_with(b"\n") {
                let line = printable(&std::mem::take(&mut self.partial));
                if self.last.len() == LAST_LINES {
                    self.last.remove(0);
                }
                self.last.push(line);
            }
        }
    }

    /// A datagram on detach's own NOTIFY_SOCKET.
    pub fn saw_notify(&mut self, m: Message, now: Instant) {
        if m.status.is_some() {
            self.status = m.status;
        }
        if let Some(usec) = m.extend_usec {
            // systemd's meaning: the timeout is now + usec, if that is later.
            self.timeout_at = self.timeout_at.max(now + Duration::from_micros(usec));
        }
        if m.errno.is_some_and(|e| e > 0) {
            self.errno = m.errno;
        } else if m.ready && matches!(self.check, Some(Check::Notify)) && self.met_at.is_none() {
            self.met_at = Some(now);
        }
    }

    /// When the gate must next look: a probe, the end of --start-seconds,
    /// the timeout.
    pub fn deadline(&self) -> Instant {
        let probe = self.probe.as_ref().filter(|_| self.met_at.is_none()).map(Probe::next_at);
        let settled = self.met_at.map(|t| t + self.start_seconds.unwrap_or_default());
        [probe, settled, Some(self.timeout_at)].into_iter().flatten().min().unwrap_or(self.timeout_at)
    }

    /// Probes if due, and says where the run stands.
    pub fn verdict(&mut self, program: &str, now: Instant) -> Verdict {
        if let Some(errno) = self.errno {
            let err = std::io::Error::from_raw_os_error(errno);
            return Verdict::Failed { code: 1, why: format!("'{program}' reported that it failed: {err}") };
        }
        if let (Some(probe), Some(check), None) = (&mut self.probe, &self.check, self.met_at)
            && probe.try_connect(check, now)
        {
            self.met_at = Some(now);
        }
        if let Some(met) = self.met_at
            && now >= met + self.start_seconds.unwrap_or_default()
        {
            return Verdict::Ready;
        }
        if now >= self.timeout_at {
            let secs = now.duration_since(self.started).as_secs_f64();
            return Verdict::Failed {
                code: TIMED_OUT,
                why: format!("'{program}' was not ready {secs:.1} s after it started (--ready-timeout); stopped"),
            };
        }
        Verdict::Pending
    }

    /// The failure of a run that ended before it was ready.
    pub fn ended(&self, program: &str, ending: Ending, now: Instant) -> (u8, String) {
        let how = match ending {
            Ending::Exited(n) => format!("exited with status {n}"),
            Ending::Killed { signal, .. } => format!("was killed by SIG{}", crate::sig::name(signal)),
        };
        let secs = now.duration_since(self.started).as_secs_f64();
        let code = ending.shell_status().clamp(1, 255) as u8;
        (code, format!("'{program}' {how} {secs:.2} s after it started, before it was ready"))
    }

    /// `head`, then the last STATUS= and the last lines of output, each on a
    /// line of its own (the caller prints the first with `detach: `).
    pub fn report(&self, head: &str) -> String {
        let mut text = head.to_owned();
        if let Some(status) = &self.status {
            text.push_str(&format!("\ndetach: its last status: {}", printable(status.as_bytes())));
        }
        let partial = (!self.partial.is_empty()).then(|| printable(&self.partial));
        let lines: Vec<&String> = self.last.iter().chain(&partial).collect();
        if !lines.is_empty() {
            text.push_str("\ndetach: its last output:");
            let skip = lines.len().saturating_sub(LAST_LINES);
            for line in &lines[skip..] {
                text.push_str(&format!("\n  | {line}"));
            }
        }
        text
    }

    /// What made it ready, for the log line of a later run.
    pub fn how_ready(&self) -> String {
        let check = match &self.check {
            Some(Check::Notify) => "it sent READY=1".to_owned(),
            Some(Check::Line(re)) => format!("a line matched '{}'", re.as_str()),
            Some(Check::Tcp(addr)) => format!("{addr} accepts connections"),
            Some(Check::Unix(path)) => format!("{} accepts connections", path.display()),
            None => "it started".to_owned(),
        };
        match self.start_seconds {
            Some(s) => format!("{check}, and ran {:.1} s", s.as_secs_f64()),
            None => check,
        }
    }
}

/// A line as it can be shown on a terminal: not UTF-8 and control bytes
/// (but TAB) as `?`.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() && c != '\t' { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(check: Option<&str>, start_seconds: Option<u64>) -> Gate {
        let opts = Options {
            check: check.map(|c| c.parse().unwrap()),
            start_seconds: start_seconds.map(Duration::from_secs),
            timeout: Duration::from_secs(5),
        };
        Gate::new(&opts, Instant::now())
    }

    #[test]
    fn a_line_makes_it_ready_even_when_it_comes_in_pieces() {
        let mut g = gate(Some("line:^listening on [0-9]+$"), None);
        let now = Instant::now();
        g.saw_output(b"starting\nlisten", now);
        assert_eq!(g.verdict("x", now), Verdict::Pending);
        g.saw_output(b"ing on 8080\n", now);
        assert_eq!(g.verdict("x", now), Verdict::Ready);
    }

    #[test]
    fn the_report_shows_the_last_ten_lines_and_the_status() {
        let mut g = gate(Some("notify"), None);
        let now = Instant::now();
        for i in 0..12 {
            g.saw_output(format!("line {i}\n").as_bytes(), now);
        }
        g.saw_output(b"no newline \x1b[0m", now);
        g.saw_notify(Message { status: Some("loading".into()), ..Message::default() }, now);
        let text = g.report("'x' exited");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..3], ["'x' exited", "detach: its last status: loading", "detach: its last output:"]);
        assert_eq!(lines[3], "  | line 3");
        assert_eq!(lines.last(), Some(&"  | no newline ?[0m"));
        assert_eq!(lines.len(), 13);
    }

    #[test]
    fn start_seconds_waits_after_the_check_and_errno_fails() {
        let mut g = gate(Some("notify"), Some(1));
        let now = Instant::now();
        g.saw_notify(Message { ready: true, ..Message::default() }, now);
        assert_eq!(g.verdict("x", now), Verdict::Pending);
        assert_eq!(g.verdict("x", now + Duration::from_secs(1)), Verdict::Ready);
        let mut g = gate(Some("notify"), None);
        g.saw_notify(Message { errno: Some(2), ..Message::default() }, now);
        assert!(matches!(g.verdict("x", now), Verdict::Failed { code: 1, .. }));
    }

    #[test]
    fn extend_timeout_moves_the_deadline_later_only() {
        let mut g = gate(Some("notify"), None);
        let now = Instant::now();
        let before = g.deadline();
        g.saw_notify(Message { extend_usec: Some(1), ..Message::default() }, now);
        assert_eq!(g.deadline(), before);
        g.saw_notify(Message { extend_usec: Some(60_000_000), ..Message::default() }, now);
        assert!(g.deadline() > before);
        assert!(matches!(g.verdict("x", now + Duration::from_secs(10)), Verdict::Pending));
    }
}
