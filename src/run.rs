//! What the `detach` command does: prepare, daemonize (or not), start the
//! command, and supervise it (or become it, with `--exec`).

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::daemon::{self, Close, CommandSpec, Silence};
use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::ready::{self, NotifySocket};
use crate::restart::{Ending, Launcher, Output};
use crate::stdio::{self, StdFd};
use crate::supervise::{self, Caller, Outcome, Outputs, Signals, Sink, Start, Stream, Supervisor};
use crate::syslog::{self, Syslog};
use crate::{Daemon, Prepared};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Daemonize and supervise the command (the default).
    Daemon,
    /// Supervise without daemonizing (`--foreground`).
    Foreground,
    /// Daemonize and become the command (`--exec`): no supervisor.
    Exec,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub daemon: Daemon,
    pub mode: Mode,
    pub command: Vec<OsString>,
    pub child_pidfile: Option<PathBuf>,
    pub title: Option<String>,
    /// Pass NOTIFY_SOCKET to the command instead of notifying systemd.
    pub notify_passthrough: bool,
    pub supervise: supervise::Options,
    /// What "started" means: exec'd (the default), or ready (`--ready`, `--start-seconds`).
    pub ready: ready::Options,
    pub syslog: syslog::Settings,
    /// The command's environment: --env, --env-file, --clear-env.
    pub env: crate::env::EnvSettings,
    /// The command's root, limits and priorities: --chroot, --limit, --nice...
    pub confinement: crate::limits::Settings,
}

/// Size asked for the command's pipes (F_SETPIPE_SZ): room for bursts while
/// the supervisor is busy writing, fewer wake-ups per megabyte. 1 MiB is the
/// default pipe-max-size for unprivileged processes.
const PIPE_SIZE: i32 = 1 << 20;

/// Runs the command as `config` says. Returns the exit status for detach:
/// 0 in the caller once a daemon started; the command's status in the
/// supervisor (and with `--foreground`).
pub fn run(config: Config) -> Result<i32> {
    // First: a missing syslog socket or an unknown server starts nothing.
    let syslog = match config.syslog.enabled() {
        true => Some(Syslog::open(&config.syslog, std::path::Path::new(&config.command[0]))?),
        false => None,
    };
    let keep: Vec<_> = syslog.iter().flat_map(Syslog::fds).collect();
    // Env files and the command's world are checked before anything opens.
    let env = config.env.load()?;
    let confinement = config.confinement.prepare()?;
    let mut prep = Prepared::new(&config.daemon, config.child_pidfile.as_deref())?;
    let spec = CommandSpec {
        argv: config.command.clone(),
        env: env.build(prep.creds.as_ref().and_then(|c| c.login.as_ref()), config.notify_passthrough),
        confinement,
        creds: prep.creds.clone(),
        notify_socket: None,
        // With --exec nothing supervises: there is no parent to outlive.
        term_on_parent_death: config.mode != Mode::Exec,
    };
    match config.mode {
        Mode::Exec => {
            let reporter = daemon::daemonize(&prep.fds(), Close::All, Silence::MeansExec)
                .inspect_err(|_| prep.undo_in_parent())?;
            let err = exec_command(&mut prep, &spec);
            prep.undo();
            reporter.fail(&err)
        }
        Mode::Daemon => {
            let reporter = daemon::daemonize(&[prep.fds(), keep].concat(), Close::All, Silence::MeansDeath)
                .inspect_err(|_| prep.undo_in_parent())?;
            // Report to the first parent once the command has been exec'd
            // (or is ready, as --ready asks), or why it was not; then supervise.
            match start_supervisor(&config, &mut prep, &spec, syslog, true) {
                Ok(mut supervisor) => {
                    supervisor.wait_with(reporter);
                    finish(supervisor, prep)
                }
                Err(e) => {
                    prep.undo();
                    reporter.fail(&e)
                }
            }
        }
        Mode::Foreground => {
            // The caller's other fds are not the command's (nor ours).
            daemon::close_fds_except(&[prep.fds(), keep].concat());
            let mut supervisor =
                start_supervisor(&config, &mut prep, &spec, syslog, false).inspect_err(|_| prep.undo())?;
            supervisor.report_started();
            finish(supervisor, prep)
        }
    }
}

/// `--exec`: the daemon's own stdio becomes the logs, and it becomes the
/// command. The pidfile's fd stays open across the exec so that the command
/// holds its lock. Returns only on failure.
fn exec_command(prep: &mut Prepared, spec: &CommandSpec) -> Error {
    let pid = std::process::id();
    let setup = prep
        .write_pidfile(pid)
        .and_then(|()| prep.write_child_pidfile(pid))
        .and_then(|()| prep.install_logs(true))
        .and_then(|_| {
            for p in prep.pidfile.iter().chain(&prep.child_pidfile) {
                p.keep_across_exec().map_err(|e| Error::os("cannot keep the pidfile open", e))?;
            }
            Ok(())
        });
    match setup {
        Ok(()) => spec.exec(),
        Err(e) => e,
    }
}

/// Supervises until the end, then ends as the command did: its exit status,
/// or a death by its signal (after the pidfiles are gone); or, when the first
/// run was never ready, tells the caller why.
fn finish(supervisor: Supervisor, mut prep: Prepared) -> Result<i32> {
    let (outcome, caller) = supervisor.run();
    prep.remove_pidfiles();
    match outcome {
        Outcome::Ended(Ending::Exited(status)) => Ok(status),
        Outcome::Ended(Ending::Killed { signal, .. }) => crate::signals::die_by(signal),
        Outcome::StartFailed(e) => match caller {
            Caller { reporter: Some(r), .. } => r.fail(&e),
            Caller { stderr: Some(mut stderr), .. } => {
                let _ = std::io::Write::write_all(&mut stderr, format!("detach: {e}\n").as_bytes());
                Ok(e.exit_code().into())
            }
            Caller { .. } => Err(e),
        },
    }
}

/// Names the process, becomes a subreaper, catches signals, starts the
/// command on pipes, writes the pidfiles and puts the logs over fds 1 and 2.
fn start_supervisor(
    config: &Config,
    prep: &mut Prepared,
    spec: &CommandSpec,
    syslog: Option<Syslog>,
    daemon: bool,
) -> Result<Supervisor> {
    set_title(config);
    // Orphans of the command are reparented to us, not to init: we reap
    // them, and their output keeps flowing through our pipe.
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::os("cannot become a subreaper", e))?;
    let signals =
        Signals::block(config.supervise.reopen_signal).map_err(|e| Error::os("cannot block the handled signals", e))?;

    // One pipe for --log (keeps the order of stdout and stderr), one per
    // file for --stdout/--stderr, none for a stream without a log. Syslog
    // tells stdout from stderr, so with it each stream has its own pipe.
    // The launcher holds the write ends for the runs to come; once none
    // follows it drops them, and EOF then means every writer is gone.
    let to_syslog = syslog.is_some();
    // A start gate shows the command's last output when it fails, and
    // `line:` reads it: a daemon pipes even the streams it has no log for
    // (what was /dev/null is then read and dropped). In the foreground such
    // a stream stays the caller's (the journal), unread.
    let gated = daemon && config.ready.gated();
    let mut readers: Vec<(OwnedFd, bool)> = Vec::new();
    let mut pipe_if = |logged: bool, stderr: bool| -> Result<Option<OwnedFd>> {
        Ok(logged.then(open_pipe).transpose()?.map(|(r, w)| {
            readers.push((r, stderr));
            w
        }))
    };
    let out = pipe_if(prep.stdout.is_some() || to_syslog || gated, false)?;
    let err = match &out {
        Some(w) if prep.shared && !to_syslog => Some(clone(w)?),
        _ => pipe_if(prep.stderr.is_some() || prep.shared || to_syslog || gated, true)?,
    };
    let output = |w: Option<OwnedFd>| match w {
        Some(w) => Output::Pipe(w),
        None if daemon => Output::Null,
        None => Output::Inherit,
    };
    let (stdout, stderr) = (output(out), output(err));
    let mut launcher = Launcher { spec: spec.clone(), stdout, stderr, child_pidfile: prep.child_pidfile.take() };
    // `--ready notify`: a socket of detach's own, the command's NOTIFY_SOCKET.
    let notify_socket = match config.ready.check {
        Some(ready::Check::Notify) => {
            let owner = prep.creds.as_ref().map(|c| (c.uid, c.gid));
            let socket = NotifySocket::create(owner).map_err(|e| Error::os("cannot create a notify socket", e))?;
            launcher.spec.notify_socket = Some(socket.path());
            Some(socket)
        }
        _ => None,
    };
    // In the foreground, a failed start is told on detach's own stderr (the
    // journal, a terminal), which the logs are about to replace as fd 2.
    let caller_stderr = match !daemon && config.ready.gated() {
        true => Some(stdio::duplicate_stderr().map_err(|e| Error::os("cannot duplicate stderr", e))?),
        false => None,
    };
    let pid = launcher.launch().inspect_err(|_| launcher.remove_pidfile())?;
    let setup = || -> Result<(Vec<Sink>, Vec<Stream>)> {
        prep.write_pidfile(std::process::id())?;
        let logs = prep.install_logs(daemon)?;
        // A stream's log is the one installed over its fd (both, for --log).
        let sink_of = |fd| logs.iter().position(|l| l.streams().contains(&fd));
        let streams = readers
            .into_iter()
            .map(|(r, stderr)| Stream::new(r, sink_of(if stderr { StdFd::Stderr } else { StdFd::Stdout }), stderr))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::os("cannot set up the output pipes", e))?;
        let sinks = logs
            .into_iter()
            .map(|log| Sink::new(log, config.supervise.log_buffer).manage(&config.supervise.logging))
            .collect();
        Ok((sinks, streams))
    };
    match setup() {
        Ok((sinks, streams)) => {
            let notify = if config.notify_passthrough { None } else { Notifier::from_env() };
            let outputs = Outputs { streams, sinks, syslog };
            let caller = Caller { reporter: None, stderr: caller_stderr };
            let start = Start { ready: config.ready.clone(), notify_socket, caller };
            Ok(Supervisor::new(launcher, pid, outputs, signals, notify, config.supervise.clone(), start))
        }
        Err(e) => {
            // Nothing may be left running when detach reports a failure.
            let child = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            launcher.remove_pidfile();
            Err(e)
        }
    }
}

fn open_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("cannot create a pipe", e))?;
    // A bigger pipe, where the system allows it; the default works too.
    // SAFETY: fcntl on an fd we own; F_SETPIPE_SZ takes an int.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
    Ok((r, w))
}

fn clone(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(|e| Error::os("cannot duplicate a pipe", e))
}

/// The supervisor's name as ps shows it (comm; the kernel keeps 15 bytes).
fn set_title(config: &Config) {
    let title = config.title.clone().unwrap_or_else(|| {
        let prog = std::path::Path::new(&config.command[0]);
        format!("detach: {}", prog.file_name().unwrap_or(prog.as_os_str()).to_string_lossy())
    });
    if let Ok(title) = CString::new(title) {
        let _ = nix::sys::prctl::set_name(&title);
    }
}
