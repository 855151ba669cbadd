//! The `detach` command line (clap derive); config.rs turns it into a `Config`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod config;

use crate::RestartWhen;
use crate::cli_values::{LogMode, Seconds, parse_octal, parse_size, parse_success_status};
use crate::error::{Error, exit};
use crate::ready;
use crate::restart::SuccessStatus;
use crate::sig::{Signal, SupervisorReopenSignal};
use crate::syslog;
use crate::verbs::Verb;

const EXAMPLES: &str = "\
Examples:
  Start a server as a daemon, its output appended to a log:
    detach --log /var/log/app.log --pidfile /run/app.pid -- server --port 8080
  Rotate that log (logrotate postrotate): the supervisor reopens it by path:
    kill -HUP \"$(cat /run/app.pid)\"
  Under systemd (Type=simple or Type=notify), no fork:
    detach --foreground --log /var/log/app.log -- server
  Restart it when it fails, waiting 1 s, 2 s, 4 s... up to 60 s:
    detach --restart on-failure --log /var/log/app.log -- server
  Control a running daemon through its pidfile (checked by its lock, not only its pid):
    detach status --pidfile /run/app.pid
    detach reopen --pidfile /run/app.pid
    detach stop --pidfile /run/app.pid
  Also send each line to syslog, and to a central collector over TCP:
    detach --log /var/log/app.log --syslog --syslog-server tcp://logs.example.com:514 -- server
  No supervisor, the command itself holds the log (no reopen):
    detach --exec --log /var/log/app.log -- server

Exit status: 0 once the command has been exec'd (or is ready, with --ready or
--start-seconds); 64 usage; 67 unknown user or group; 68 unknown syslog host;
69 no syslog socket; 71 system error; 73 cannot create a log or pidfile; 75
already running; 77 not permitted; 124 not ready in time; 126 cannot execute;
127 not found; N or 128+S when the command ended (or was killed by S) before it
was ready. The supervisor (and detach --foreground) ends as the
command ended: its exit status, or killed by its signal (a shell shows 128+N;
systemd counts a stop by TERM as clean); 0 for a --success-status ending.";

/// Run a command as a daemon, its stdout and stderr kept in log files that can be rotated.
#[derive(Parser, Debug)]
#[command(
    name = "detach",
    version,
    after_help = EXAMPLES,
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    subcommand_value_name = "VERB",
    subcommand_help_heading = "Control verbs (a command named like a verb needs `--` before it)"
)]
pub struct Cli {
    #[command(subcommand)]
    verb: Option<Verb>,

    /// Append the command's stdout and stderr to PATH, in the order written
    #[arg(long, value_name = "PATH", conflicts_with_all = ["stdout", "stderr"])]
    log: Option<PathBuf>,

    /// Append the command's stdout to PATH (stderr to /dev/null unless --stderr)
    #[arg(long, value_name = "PATH")]
    stdout: Option<PathBuf>,

    /// Append the command's stderr to PATH (stdout to /dev/null unless --stdout)
    #[arg(long, value_name = "PATH")]
    stderr: Option<PathBuf>,

    /// Write the supervisor's pid to PATH, locked while it runs, removed at exit
    #[arg(long, value_name = "PATH")]
    pidfile: Option<PathBuf>,

    /// Write the command's own pid to PATH (locked and removed like --pidfile)
    #[arg(long, value_name = "PATH")]
    child_pidfile: Option<PathBuf>,

    /// Name of the supervisor as ps shows it [default: "detach: COMMAND"]
    #[arg(long, value_name = "TEXT")]
    title: Option<String>,

    /// Do not fork or detach: supervise in the foreground, and end as the command ended
    #[arg(long, conflicts_with = "exec")]
    foreground: bool,

    /// Daemonize and exec the command itself: no supervisor, so no log reopening
    #[arg(long)]
    exec: bool,

    /// Working directory [default: / ; with --foreground, the current one]
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// File mode creation mask, octal [default: 022 ; with --foreground, inherited]
    #[arg(long, value_name = "MODE", value_parser = parse_octal)]
    umask: Option<u32>,

    /// Run the command as USER (name or uid) with its groups, and its HOME, USER, LOGNAME and SHELL;
    /// logs and pidfiles are opened first
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// Run the command with primary group GROUP (name or gid)
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,

    /// Signal that makes the supervisor reopen its logs (HUP is then forwarded)
    #[arg(long, value_name = "SIG", default_value = "HUP")]
    reopen_signal: SupervisorReopenSignal,

    /// Do not check once a second whether a log was moved or deleted
    #[arg(long)]
    no_watch: bool,

    /// Mode of the log files detach creates, octal, before the umask; at most 0666 (no
    /// execute, setuid, setgid or sticky bit)
    #[arg(long, value_name = "MODE", default_value = "0640")]
    log_mode: LogMode,

    /// Owner of the log files detach creates
    #[arg(long, value_name = "USER[:GROUP]")]
    log_owner: Option<String>,

    /// Most bytes held per log while it cannot be written (disk full); past it the oldest are
    /// dropped, and a line says how many once writing works again. Suffixes K, M, G (powers of 1024)
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    log_buffer: usize,

    /// Start each line of the log files with the time detach read its first byte, then a space:
    /// iso (local time, 2026-11-29T23:57:19.123456+01:00), utc (2026-11-29T22:57:19.123456Z),
    /// tai64n (as s6-log and multilog: tai64nlocal decodes it) or unix (1764457039.123456).
    /// detach's own lines too; syslog is unchanged
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "iso", value_enum, help_heading = "Log files")]
    timestamp: Option<crate::TimeFormat>,

    /// Rotate a log before a line would make it larger than SIZE (suffixes K, M, G); a line
    /// larger than SIZE gets a file of its own. Archives: PATH.1 (newest) to PATH.N
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "exec", help_heading = "Log files")]
    rotate_size: Option<usize>,

    /// Rotate the logs every PERIOD: hourly, daily, weekly, or a number with s, m, h or d (30s,
    /// 10m, 6h, 2d). An hour or more is aligned on local time (daily: at midnight; weekly: Monday
    /// at midnight); an empty log is not rotated
    #[arg(long, value_name = "PERIOD", conflicts_with = "exec", help_heading = "Log files")]
    rotate_every: Option<crate::RotatePeriod>,

    /// Archives kept per log (PATH.1 to PATH.N); older ones are deleted. Also what SIGALRM and
    /// `detach rotate` keep [default: 10]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "exec", help_heading = "Log files")]
    rotate_keep: Option<u32>,

    /// Gzip each archive (PATH.1.gz, ...) in the background, while a CPU is spare (an archive
    /// waits 5 s at most); a failure (disk full) leaves it uncompressed and says so once in
    /// the log
    #[arg(long, conflicts_with = "exec", help_heading = "Log files")]
    rotate_compress: bool,

    /// Also send each line to the local syslog socket, /dev/log (journald or rsyslog)
    #[arg(long, conflicts_with = "exec", help_heading = "Syslog")]
    syslog: bool,

    /// Also send each line to the syslog socket at PATH (a datagram socket like /dev/log)
    #[arg(long, value_name = "PATH", conflicts_with = "exec", help_heading = "Syslog")]
    syslog_socket: Option<PathBuf>,

    /// Also send each line to a remote collector: udp://HOST:PORT, tcp://HOST:PORT, or
    /// tls://HOST[:PORT] (RFC 5425, port 6514, TLS 1.2 or 1.3, the certificate checked against
    /// HOST). TCP and TLS reconnect, looking HOST up again each time, and hold a backlog of up to
    /// --log-buffer meanwhile
    #[arg(long, value_name = "URL", value_parser = syslog::parse_server, conflicts_with = "exec", help_heading = "Syslog")]
    syslog_server: Option<syslog::Server>,

    /// Syslog facility (daemon, user, local0 to local7, ...)
    #[arg(long, value_name = "NAME", default_value = "daemon", value_parser = syslog::parse_facility, help_heading = "Syslog")]
    syslog_facility: u8,

    /// Syslog tag (program name) of the command's lines [default: the command's basename]; detach's
    /// own messages are tagged `detach`
    #[arg(long, value_name = "TAG", help_heading = "Syslog")]
    syslog_tag: Option<String>,

    /// Syslog priority of stdout lines (emerg alert crit err warning notice info debug)
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = syslog::parse_level, help_heading = "Syslog")]
    syslog_stdout_priority: u8,

    /// Syslog priority of stderr lines
    #[arg(long, value_name = "LEVEL", default_value = "err", value_parser = syslog::parse_level, help_heading = "Syslog")]
    syslog_stderr_priority: u8,

    /// Message format for the remote collector: rfc5424, or rfc3164 for collectors that only
    /// parse the old BSD format
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        default_value_t,
        requires = "syslog_server",
        help_heading = "Syslog"
    )]
    syslog_format: syslog::Format,

    /// Framing on tcp:// and tls://: octet (octet counting, RFC 6587 and RFC 5425) or newline
    /// (Fluent Bit's and fluentd's default; a newline inside a line is already escaped as #012)
    #[arg(
        long,
        value_name = "FRAMING",
        value_enum,
        default_value_t,
        requires = "syslog_server",
        help_heading = "Syslog"
    )]
    syslog_framing: syslog::Framing,

    /// CA certificates (PEM) that the tls:// collector's certificate must chain to [default: the
    /// system's, /etc/ssl/certs]
    #[arg(long, value_name = "FILE", requires = "syslog_server", help_heading = "Syslog")]
    syslog_ca: Option<PathBuf>,

    /// Client certificate (PEM, with its chain) for a tls:// collector that asks for one
    #[arg(long, value_name = "FILE", requires_all = ["syslog_server", "syslog_key"], help_heading = "Syslog")]
    syslog_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "syslog_cert", help_heading = "Syslog")]
    syslog_key: Option<PathBuf>,

    /// Signal a stop (TERM to detach, `detach stop`) sends the command: nginx wants QUIT, many
    /// servers INT (systemd's KillSignal=). A name (QUIT, SIGQUIT, RTMIN+2) or a number
    #[arg(long, value_name = "SIG", default_value = "TERM")]
    stop_signal: Signal,

    /// Send the stop signal to the command's whole process group, not only to the command (its
    /// children too: a `sh -c` or npm wrapper's)
    #[arg(long)]
    stop_group: bool,

    /// Exit statuses and signal names, comma-separated, that also count as clean: not restarted
    /// by --restart on-failure, and detach then exits 0 (systemd's SuccessExitStatus=)
    #[arg(long, value_name = "LIST", value_parser = parse_success_status)]
    success_status: Option<SuccessStatus>,

    /// After the stop signal, seconds to wait before the command's process group gets KILL
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    kill_timeout: Seconds,

    /// After the command exits, seconds to keep draining output of its orphans [default: no limit]
    #[arg(long, value_name = "SECONDS")]
    drain_timeout: Option<Seconds>,

    /// Restart the command when it exits: never, on-failure (as systemd's Restart=on-failure: not
    /// after exit 0, a death by HUP, INT, TERM or PIPE, or a --success-status ending), or always
    /// (unless detach is stopping)
    #[arg(long, value_name = "WHEN", default_value = "never", value_enum)]
    restart: RestartWhen,

    /// Seconds before a restart; doubles after each run shorter than --restart-max-delay. With 0
    /// the first restart is immediate, and the next ones wait 0.1 s, 0.2 s, 0.4 s...
    #[arg(long, value_name = "SECONDS", default_value = "1")]
    restart_delay: Seconds,

    /// Most seconds between restarts; a run that lasts longer resets the delay and the count
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    restart_max_delay: Seconds,

    /// Give up after N restarts in a row (N+1 runs), with the last run's status
    #[arg(long, value_name = "N")]
    restart_limit: Option<u32>,

    /// Under systemd Type=notify: let the command notify systemd itself (NOTIFY_SOCKET is passed
    /// to it; needs NotifyAccess=all) instead of detach sending READY=1 once it was exec'd
    #[arg(long)]
    notify_passthrough: bool,

    /// Started means still running SECONDS after its exec (supervisord's startsecs); with
    /// --ready, SECONDS after it was ready. Before that, detach waits, and an exit is a failure
    #[arg(long, value_name = "SECONDS", conflicts_with = "exec", help_heading = "Knowing it started")]
    start_seconds: Option<Seconds>,

    /// Started means ready: notify (READY=1 on a NOTIFY_SOCKET of detach's own), line:REGEX (a line
    /// of output matches), tcp:[HOST:]PORT or unix:PATH (a connect succeeds)
    #[arg(long, value_name = "KIND", conflicts_with = "exec", help_heading = "Knowing it started")]
    ready: Option<ready::Check>,

    /// Not ready this many seconds after its exec: stop the command and exit 124
    #[arg(long, value_name = "SECONDS", default_value = "90", help_heading = "Knowing it started")]
    ready_timeout: Seconds,

    /// Set a variable in the command's environment (repeatable; overrides the files and --user's)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "The command's environment")]
    env: Vec<crate::env::Assignment>,

    /// Remove a variable from the command's environment, whatever set it (repeatable)
    #[arg(long, value_name = "KEY", help_heading = "The command's environment")]
    unset_env: Vec<crate::env::Name>,

    /// Read KEY=VALUE lines (systemd's EnvironmentFile= syntax: # and ; comments, quotes, \
    /// continuations) into the command's environment (repeatable); -PATH: ignored when missing
    #[arg(long, value_name = "PATH", allow_hyphen_values = true, help_heading = "The command's environment")]
    env_file: Vec<crate::env::EnvFile>,

    /// Start the command's environment empty but for a default PATH
    /// (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin); then come --user's HOME,
    /// USER, LOGNAME and SHELL, the files, and --env
    #[arg(long, help_heading = "The command's environment")]
    clear_env: bool,

    /// Run the command with DIR as its root, looked up inside it; --chdir is then inside it too.
    /// Logs and pidfiles stay outside, opened by detach
    #[arg(long, value_name = "DIR", help_heading = "The command's environment")]
    chroot: Option<PathBuf>,

    /// Set a resource limit of the command (repeatable): prlimit's names (nofile, core, as, nproc,
    /// stack, ...); SOFT:HARD, SOFT: or :HARD, one value for both; K, M, G; unlimited
    #[arg(long, value_name = "NAME=SOFT[:HARD]", help_heading = "The command's environment")]
    limit: Vec<crate::limits::Limit>,

    /// Scheduling priority (nice value) of the command, from -20 (highest) to 19 (lowest)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-20..=19), help_heading = "The command's environment")]
    nice: Option<i32>,

    /// I/O scheduling class of the command: realtime, best-effort or idle, with a LEVEL from 0
    /// (highest) to 7 [default level: 4]
    #[arg(long, value_name = "CLASS[:LEVEL]", help_heading = "The command's environment")]
    ionice: Option<crate::limits::Ionice>,

    /// The command's OOM score adjustment, from -1000 (never killed) to 1000 (killed first)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-1000..=1000), help_heading = "The command's environment")]
    oom_score_adj: Option<i32>,

    /// The command to run, and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// The whole of `detach`'s main: parse, run, print one error line, exit.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            report(&Error::Usage(one_line(&e)));
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            // --help and --version: on stdout, status 0.
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
    };
    let result = match cli.verb {
        Some(verb) => verb.run(),
        None => cli.into_config().and_then(crate::run).map(|status| status.clamp(0, 255) as u8),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// One line, one write: `detach: cannot open log '/x': Permission denied (os error 13)`.
/// A usage error says so, and where to look: `detach: error: ...` and a hint.
fn report(e: &Error) {
    let text = match e {
        Error::Usage(msg) => format!("detach: error: {msg}\nTry 'detach --help' for more information.\n"),
        e => format!("detach: {e}\n"),
    };
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// clap's message without its usage block and tips, on one line: what is
/// before the first blank line, its lines joined (a list of missing
/// arguments is indented on lines of its own).
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let head = text.split("\n\n").next().unwrap_or_default();
    let head = head.trim().strip_prefix("error:").unwrap_or(head).trim();
    head.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
