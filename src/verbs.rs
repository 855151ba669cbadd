//! The control verbs on the command line: `detach status|reopen|stop|restart|
//! rotate|logs|signal --pidfile P`, parsed by clap and run by control.rs.

use std::path::PathBuf;

use crate::cli_values::Seconds;
use crate::control;
use crate::sig::{Signal, SupervisorReopenSignal};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Verb {
    /// Is the daemon of PIDFILE running? Exit 0 (running: prints pid, uptime, command, logs),
    /// 1 (dead, pidfile left), 3 (not running; for a child pidfile, also between two runs),
    /// 4 (pidfile unreadable or not trusted)
    Status {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
    },
    /// Make the daemon of PIDFILE reopen its logs (logrotate's postrotate). Exit 0 once delivered
    /// (with --wait: once the supervisor confirmed it), 1 no answer in time, 4 pidfile not
    /// trusted or the daemon takes no requests (--exec), 7 not running
    Reopen {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// The daemon's --reopen-signal (not used with --wait)
        #[arg(long, value_name = "SIG", default_value = "HUP")]
        signal: SupervisorReopenSignal,
        /// Ask the supervisor to reopen, and return once it says it has
        #[arg(long)]
        wait: bool,
        /// With --wait, seconds to wait for the answer
        #[arg(long, value_name = "SECONDS", default_value = "10", requires = "wait")]
        timeout: Seconds,
    },
    /// Stop the daemon of PIDFILE: TERM, wait, then KILL. Exit 0 once it is gone and its
    /// pidfile removed (also when it was not running), 1 if it would not die, 4 pidfile not
    /// trusted
    Stop {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// Seconds to wait after TERM before KILL (above the daemon's --kill-timeout)
        #[arg(long, value_name = "SECONDS", default_value = "15")]
        timeout: Seconds,
    },
    /// Make the supervisor of PIDFILE stop its command and start it again, in place. Exit 0
    /// once the new run has been exec'd (or is ready, with --ready), 1 no answer in time, 4 pidfile not trusted or no
    /// supervisor (--exec), 7 not running; the supervisor's error otherwise
    Restart {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// Seconds to wait for the new run (above the daemon's --kill-timeout)
        #[arg(long, value_name = "SECONDS", default_value = "30")]
        timeout: Seconds,
    },
    /// Make the supervisor of PIDFILE rotate its logs now (as SIGALRM does), keeping
    /// --rotate-keep archives (default 10). Exit 0 once done, 1 no answer in time, 4 pidfile not
    /// trusted or no supervisor (--exec), 7 not running
    Rotate {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// Seconds to wait for the supervisor's answer
        #[arg(long, value_name = "SECONDS", default_value = "10")]
        timeout: Seconds,
    },
    /// Print the last lines of the logs of the daemon of PIDFILE (the files its supervisor
    /// writes, found as status finds them); with -f, follow them across rotations and reopens
    /// until the daemon ends. Exit 0; 4 pidfile not trusted or no log file; 7 not running
    Logs {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// How many lines to print from the end of each log
        #[arg(short = 'n', long = "lines", value_name = "N", default_value = "10")]
        lines: usize,
        /// Then print what is written, following rotations and reopens, until the daemon ends
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the command's stdout log (with --stdout and --stderr logs)
        #[arg(long, conflicts_with = "stderr")]
        stdout: bool,
        /// Only the command's stderr log
        #[arg(long)]
        stderr: bool,
    },
    /// Make the supervisor of PIDFILE send SIG (name or number) to its command. Exit 0 once
    /// sent, 1 no answer in time, 4 pidfile not trusted or no supervisor (--exec), 7 not
    /// running; the supervisor's error otherwise (ESRCH: no command running)
    Signal {
        #[arg(long, value_name = "PATH")]
        pidfile: PathBuf,
        /// Seconds to wait for the supervisor's answer
        #[arg(long, value_name = "SECONDS", default_value = "10")]
        timeout: Seconds,
        /// The signal: TERM, SIGUSR1, 10...
        #[arg(value_name = "SIG")]
        signal: Signal,
    },
}

impl Verb {
    pub(crate) fn run(self) -> crate::Result<u8> {
        use crate::request::Request;
        match self {
            Verb::Status { pidfile } => Ok(control::status(&pidfile)),
            Verb::Reopen { pidfile, wait: true, timeout, .. } => {
                control::request(&pidfile, Request::Reopen, timeout.get())
            }
            Verb::Reopen { pidfile, signal, .. } => control::reopen(&pidfile, signal.number()),
            Verb::Stop { pidfile, timeout } => control::stop(&pidfile, timeout.get()),
            Verb::Restart { pidfile, timeout } => control::request(&pidfile, Request::Restart, timeout.get()),
            Verb::Logs { pidfile, lines, follow, stdout, stderr } => {
                let fds: &[i32] = match (stdout, stderr) {
                    (true, _) => &[1],
                    (_, true) => &[2],
                    _ => &[1, 2],
                };
                control::logs(&pidfile, lines, follow, fds)
            }
            Verb::Rotate { pidfile, timeout } => control::request(&pidfile, Request::Rotate, timeout.get()),
            Verb::Signal { pidfile, timeout, signal } => {
                control::request(&pidfile, Request::Signal(signal.number()), timeout.get())
            }
        }
    }
}
