//! Every fork of the crate lives here: fork/setsid/fork with a status pipe
//! back to the first parent, and the spawn or exec of the command.
//!
//! The daemonizing forks happen while the process is single-threaded (checked),
//! so the daemon that goes on after them is an ordinary process. The fork that
//! starts the command goes through std's `Command`, which reports an exec
//! failure (errno) through its own close-on-exec pipe; our `pre_exec` hook
//! only makes system calls on data prepared before the fork, and marks in a
//! shared page which step it is at, so that a failure names its option.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe2, setsid};

use crate::error::{Error, Result, exit};
use crate::limits::{Confinement, Step, StepMark};
use crate::user::{Credentials, drop_privileges};

/// The daemon's end of the status pipe: how the first parent, still attached
/// to the caller's terminal, learns whether the command really started.
pub struct Reporter {
    pipe: File,
}

impl Reporter {
    /// Tells the first parent that all went well (it exits 0).
    pub fn success(mut self) {
        let _ = self.pipe.write_all(&[exit::OK]);
    }

    /// Hands `err` to the first parent, which prints it and exits with its
    /// code; then ends this process.
    pub fn fail(self, err: &Error) -> ! {
        let code = err.exit_code();
        self.report_failure(err);
        std::process::exit(code.into())
    }

    /// Hands `err` to the first parent, and goes on.
    pub fn report_failure(mut self, err: &Error) {
        let mut msg = vec![err.exit_code()];
        msg.extend(err.to_string().bytes().filter(|&b| b != 0));
        msg.push(0); // the end: the reader does not wait for EOF
        let _ = self.pipe.write_all(&msg);
    }
}

/// What an empty report means: in `--exec` mode the close-on-exec pipe closing
/// with nothing in it *is* the success report; a supervisor always writes one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    MeansExec,
    MeansDeath,
}

/// fork, setsid, fork: the daemon is in a new session but not its leader, so
/// it can never acquire a controlling terminal by opening one. Returns in the
/// daemon only. The first parent waits for the daemon's report and exits 0 on
/// success; on failure it returns the daemon's error to the caller.
/// Inherited fds above 2, except `keep`, are closed in the daemon.
pub fn daemonize(keep: &[RawFd], close: Close, silence: Silence) -> Result<Reporter> {
    ensure_single_threaded()?;
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::os("cannot create status pipe", e))?;
    // SAFETY: the process is single-threaded (checked above), so the child is
    // a complete copy and may go on running ordinary Rust code.
    match unsafe { fork() }.map_err(|e| Error::os("cannot fork", e))? {
        ForkResult::Parent { child } => {
            drop(wr);
            let report = read_report(rd, silence);
            let _ = waitpid(child, None); // the middle process exits at once
            match report {
                Ok(()) => std::process::exit(0),
                Err(e) => return Err(e),
            }
        }
        ForkResult::Child => drop(rd),
    }
    // Cannot fail: a fresh child is never a process group leader.
    let _ = setsid();
    // SAFETY: still single-threaded, as above.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {}
        Ok(ForkResult::Parent { .. }) => {
            // SAFETY: _exit skips atexit handlers and stdio flushing, which
            // belong to the original process, not to this transient copy.
            unsafe { libc::_exit(0) }
        }
        Err(e) => Reporter { pipe: File::from(wr) }.fail(&Error::os("cannot fork", e)),
    }
    let mut keep = keep.to_vec();
    keep.push(wr.as_raw_fd());
    if close == Close::All {
        close_fds_except(&keep);
    }
    Ok(Reporter { pipe: File::from(wr) })
}

/// Whether the daemon closes the fds above 2 it did not open (but `keep`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Every one: the command line, which owns nothing else.
    All,
    /// None: the library's default, since any of them may belong to a
    /// live object of the program (`Daemon::close_inherited_fds` opts in).
    Nothing,
}

/// Reads the daemon's report: empty, or an exit code followed by a message.
///
/// The report ends at its first byte (success) or at a NUL, not at EOF: a
/// library daemon that forks workers before it reports hands them the write
/// end too (close-on-exec acts at exec only), and the caller must not wait
/// for them to exit.
fn read_report(rd: OwnedFd, silence: Silence) -> Result<()> {
    let mut buf = Vec::new();
    let mut file = File::from(rd);
    let mut chunk = [0u8; 512];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::os("cannot read the daemon's status", e)),
        }
        if buf.first() == Some(&exit::OK) || buf[1..].contains(&0) {
            break;
        }
    }
    if let Some(end) = buf.iter().skip(1).position(|&b| b == 0) {
        buf.truncate(end + 1);
    }
    match buf.split_first() {
        None if silence == Silence::MeansExec => Ok(()),
        None => {
            Err(Error::Reported { code: exit::OSERR, message: "the daemon died before starting the command".into() })
        }
        Some((&exit::OK, _)) => Ok(()),
        Some((&code, msg)) => Err(Error::Reported { code, message: String::from_utf8_lossy(msg).into_owned() }),
    }
}

/// fork in a multi-threaded process copies only the calling thread: locks held
/// by the others stay locked forever in the child. Refuse rather than hang.
fn ensure_single_threaded() -> Result<()> {
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1);
    if threads > 1 {
        return Err(Error::os(
            "cannot daemonize",
            io::Error::other(format!("the process has {threads} threads; daemonize before starting any")),
        ));
    }
    Ok(())
}

/// Closes every fd above 2 except `keep`: the daemon holds nothing of its
/// caller's (a listening socket, a terminal, the write end of someone's pipe).
/// `--foreground` calls it too, so that the command never inherits them.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd > 2).collect();
    keep.sort_unstable();
    let mut lo: u32 = 3;
    let mut ok = true;
    for fd in keep.iter().map(|&fd| fd as u32).chain([u32::MAX]) {
        if fd > lo {
            // SAFETY: close_range(2) closes fds of this process only; none of
            // those in the range is owned by a live Rust object (we keep them).
            ok &= unsafe { libc::syscall(libc::SYS_close_range, lo, fd - 1, 0) } == 0;
        }
        lo = fd.saturating_add(1);
    }
    if !ok {
        close_fds_slowly(&keep);
    }
}

/// Fallback for kernels before 5.9: the fds listed in /proc/self/fd.
fn close_fds_slowly(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: as above; the directory's own fd is already closed, so
        // closing its number again is a harmless EBADF.
        unsafe { libc::close(fd) };
    }
}

/// The command: argv, its environment, its world, and who it runs as.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub argv: Vec<OsString>,
    /// The whole environment, built before any fork (see `env`): std makes
    /// it the envp array in the parent.
    pub env: Vec<(OsString, OsString)>,
    /// Root, directory, limits and priorities (see `limits`).
    pub confinement: Confinement,
    pub creds: Option<Credentials>,
    /// detach's own NOTIFY_SOCKET for the command (`--ready notify`).
    pub notify_socket: Option<std::path::PathBuf>,
    /// The command gets TERM when the process that started it dies (the
    /// supervisor, killed with KILL): see [`term_on_parent_death`].
    pub term_on_parent_death: bool,
}

impl CommandSpec {
    pub fn program(&self) -> String {
        self.argv[0].to_string_lossy().into_owned()
    }

    /// The command, ready to spawn or exec, with the mark its pre_exec
    /// leaves of the step it is at.
    fn command(&self) -> Result<(Command, Arc<StepMark>)> {
        let mark = Arc::new(StepMark::new().map_err(|e| Error::os("cannot map a page", e))?);
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        cmd.env_clear();
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let confinement = self.confinement.clone();
        if let Some(path) = &self.notify_socket {
            cmd.env(crate::notify::ENV, path);
        }
        let creds = self.creds.clone();
        let parent = self.term_on_parent_death.then(std::process::id);
        let child_mark = Arc::clone(&mark);
        // SAFETY: runs between fork and exec: only async-signal-safe system
        // calls and atomic stores, on `confinement`, `creds` and `parent`
        // made before the fork; no allocation, no lock.
        unsafe {
            cmd.pre_exec(move || {
                let mark = &child_mark;
                mark.set(Step::Setup, 0);
                reset_signal_dispositions();
                confinement.apply(mark)?;
                if let Some(c) = &creds {
                    mark.set(Step::User, 0);
                    drop_privileges(c)?;
                }
                mark.set(Step::Setup, 0);
                if let Some(pid) = parent {
                    term_on_parent_death(pid)?;
                }
                mark.set(Step::Exec, 0);
                Ok(())
            });
        }
        Ok((cmd, mark))
    }

    /// What went wrong in the child: the option whose step failed, or the
    /// exec itself.
    fn failure(&self, mark: &StepMark, err: io::Error) -> Error {
        let step = mark.get();
        if step.0 == Step::Exec {
            return Error::Exec { program: self.program(), err };
        }
        match self.confinement.step_error(step, err) {
            Ok(e) => e,
            Err(err) => Error::os(format!("cannot start '{}'", self.program()), err),
        }
    }

    /// Starts the command as a child in its own process group, so that a stop
    /// can reach the children it leaves behind. Returns once it has been
    /// exec'd: std's spawn waits on a close-on-exec pipe for the exec's errno.
    pub fn spawn(&self, stdout: Stdio, stderr: Stdio) -> Result<Child> {
        let (mut cmd, mark) = self.command()?;
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr).process_group(0);
        // `cmd` holds the parent's copies of the pipes' write ends: it is
        // dropped right here, so that the pipe sees EOF once the command's
        // side closes.
        cmd.spawn().map_err(|err| self.failure(&mark, err))
    }

    /// Replaces this process with the command (`--exec`). Returns only on
    /// failure.
    pub fn exec(&self) -> Error {
        match self.command() {
            Ok((mut cmd, mark)) => {
                let err = cmd.exec();
                self.failure(&mark, err)
            }
            Err(e) => e,
        }
    }
}

/// The command gets SIGTERM if the supervisor dies without stopping it
/// (KILL, OOM killer): with no reader left on its pipe, its next write would
/// meet SIGPIPE or EPIPE anyway, at a random point; TERM lets it shut down
/// cleanly and leaves no unsupervised copy behind to clash with the next
/// start. Set after the privilege drop, which clears it (commit_creds), and
/// the parent is checked afterwards, in case it died before the prctl.
///
/// Async-signal-safe: prctl(2) and getppid(2) only.
fn term_on_parent_death(parent: u32) -> std::io::Result<()> {
    // SAFETY: plain system calls with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() as u32 != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// The supervisor keeps the signals it handles blocked (it reads them from a
/// signalfd, and installs no handler), and exec keeps a blocked signal blocked
/// and an *ignored* one ignored: a command started from a Python parent
/// (SIGPIPE ignored), from nohup (SIGHUP ignored) or under our own mask would
/// inherit that. Both are reset here: an empty mask, and SIG_DFL for every
/// signal, glibc's two internal ones (32, 33) included, which its wrappers
/// refuse but a parent's posix_spawn can leave ignored (seen from a Rust
/// parent: SigIgn 0x180000000 in detach and in its command).
///
/// Async-signal-safe: sigprocmask(2) and sigaction(2) only.
fn reset_signal_dispositions() {
    // SAFETY: sigemptyset/sigprocmask/signal are async-signal-safe and
    // touch only the sigset_t we own; SIGKILL, SIGSTOP and glibc's internal
    // signals fail with EINVAL, which is harmless.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..=libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    reset_internal_signals();
}

/// glibc's internal signals 32 and 33, with the raw system call, where the
/// kernel's struct sigaction is known: handler, flags, restorer, an 8-byte
/// mask (x86_64, aarch64, riscv64). Elsewhere they keep what they had.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
fn reset_internal_signals() {
    let default_action = [0u64; 4]; // SIG_DFL, no flags, no restorer, empty mask
    for sig in [32, 33] {
        // SAFETY: rt_sigaction(2) is async-signal-safe and reads the 32-byte
        // buffer we own, which is the kernel's struct sigaction on these
        // architectures; sigsetsize 8 is theirs too.
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, default_action.as_ptr(), std::ptr::null::<u64>(), 8) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
fn reset_internal_signals() {}
