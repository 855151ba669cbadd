//! The guarantees of issue 2: daemonizing, stdio into logs, pidfiles, errors before detaching.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::util::{
    DEADLINE, Guard, Out, alive, detach, is_root, pids_with_arg, proc_cwd, proc_fds, proc_stat, proc_status, read,
    read_pid, signal, wait_for_text, wait_pid, wait_until,
};

const NO_SIGNALS: &str = "0000000000000000";

/// The path as the kernel names it in /proc/PID/fd and /proc/PID/cwd.
fn canon(path: &Path) -> String {
    fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// Polls until the process's name is `comm`: the pidfile may be written before the exec (or
/// the title) that a test is about to look at.
fn wait_comm(pid: i32, comm: &str) {
    let found = wait_until(|| proc_stat(pid).is_some_and(|s| s.comm == comm), DEADLINE);
    assert!(found, "pid {pid} never became {comm:?}: {:?}", proc_stat(pid));
}

/// Polls until nothing whose argv names `marker` is alive.
fn assert_nothing_running(marker: &str) {
    let gone = wait_until(|| pids_with_arg(marker).is_empty(), DEADLINE);
    assert!(gone, "processes left running: {:?}", pids_with_arg(marker));
}

/// `detach --pidfile PIDFILE --child-pidfile CHILD_PIDFILE`; the test adds options and command.
fn detach_with_pidfiles(pidfile: &Path, child_pidfile: &Path) -> Command {
    let mut cmd = detach();
    cmd.arg("--pidfile").arg(pidfile).arg("--child-pidfile").arg(child_pidfile);
    cmd
}

/// Polls for the pid in `pidfile`, then until that process has become `sleep`; returns the pid.
fn wait_sleep(pidfile: &Path) -> i32 {
    let pid = wait_pid(pidfile);
    wait_comm(pid, "sleep");
    pid
}

/// Checks that `pid` has /dev/null as fd 0 and `log` as fds 1 and 2; returns all its fds.
fn assert_stdio_in_log(pid: i32, log: &Path) -> BTreeMap<i32, String> {
    let fds = proc_fds(pid);
    let log = canon(log);
    assert_eq!(fds.get(&0).map(String::as_str), Some("/dev/null"), "{fds:?}");
    assert_eq!(fds.get(&1), Some(&log), "{fds:?}");
    assert_eq!(fds.get(&2), Some(&log), "{fds:?}");
    fds
}

/// Checks that a run of detach reported the missing command `/no/such`: status 127 and why.
fn assert_no_such_command(out: &Out) {
    assert_eq!(out.code(), Some(127), "{out:?}");
    assert!(out.stderr.contains("cannot execute '/no/such': No such file or directory"), "{out:?}");
}

/// Runs `detach OPTS -- sh -c "sleep 30; :" MARKER/second`, OPTS naming a pidfile that running
/// `pid` holds, and checks that it exits 75 naming `pid` and leaves nothing running.
fn assert_second_refused(g: &Guard, opts: &mut Command, pid: i32) {
    let second_marker = format!("{}/second", g.marker());
    let second = g.run(opts.args(["--", "sh", "-c", "sleep 30; :"]).arg(&second_marker));
    assert_eq!(second.code(), Some(75), "{second:?}");
    assert!(second.stderr.contains(&format!("already running (pid {pid})")), "{second:?}");
    assert_nothing_running(&second_marker);
}

fn umask_in_child(cmd: &mut Command, mask: libc::mode_t) {
    // SAFETY: the closure only calls umask(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
}

fn sig_bits(pid: i32, field: &str) -> u64 {
    let hex = proc_status(pid, field).unwrap_or_else(|| panic!("no {field} for {pid}"));
    u64::from_str_radix(&hex, 16).expect("hex signal mask")
}

// 1. Daemon mode, log contents.

#[test]
fn daemon_returns_zero_while_command_runs_and_logs_stdout_and_stderr() {
    let g = Guard::new();
    let log = g.path("app.log");
    let child_pidfile = g.pidfile("child.pid");
    let out = g.run(detach_with_pidfiles(&g.pidfile("p.pid"), &child_pidfile).arg("--log").arg(&log).args([
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 30",
    ]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "out\n");
    wait_for_text(&log, "err\n");
    let cmd = wait_sleep(&child_pidfile);
    assert!(alive(cmd), "the command should still run after detach returned");
}

#[test]
fn log_keeps_the_order_of_stdout_and_stderr_lines() {
    let g = Guard::new();
    let log = g.path("app.log");
    let script = "echo a; echo b >&2; echo c; i=0; \
                  while [ $i -lt 200 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done; echo end";
    let out = g.run(detach().arg("--log").arg(&log).args(["--", "sh", "-c", script]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "end\n");
    let mut expected = String::from("a\nb\nc\n");
    for i in 0..200 {
        expected.push_str(&format!("o{i}\ne{i}\n"));
    }
    expected.push_str("end\n");
    assert_eq!(read(&log), expected);
}

// 2. The supervisor is a daemon.

#[test]
fn supervisor_has_no_tty_own_session_root_cwd_and_stdio_on_null_and_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let pidfile = g.pidfile("p.pid");
    // Give detach a controlling terminal and a strange umask, so losing them is observable.
    let pty = nix::pty::openpty(None, None).expect("openpty");
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        // SAFETY: fcntl on an fd we own; keeps the pty out of other tests' children.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    let tty = pty.slave.as_raw_fd();
    let mut cmd = detach();
    cmd.arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]);
    // SAFETY: setsid, ioctl and umask are async-signal-safe; no allocation on success.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::umask(0o077);
            Ok(())
        });
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    wait_comm(sup, "detach: sleep");
    let stat = proc_stat(sup).expect("supervisor alive");
    // SAFETY: getsid(0) has no preconditions.
    let test_sid = unsafe { libc::getsid(0) };
    assert_ne!(stat.session, sup, "supervisor must not be a session leader");
    assert_ne!(stat.session, test_sid, "supervisor must leave the caller's session");
    assert_ne!(stat.session, out.pid, "supervisor must leave detach's session");
    assert_eq!(stat.tty_nr, 0, "supervisor has a controlling tty");
    assert_eq!(proc_cwd(sup), Path::new("/"));
    assert_eq!(proc_status(sup, "Umask").as_deref(), Some("0022"));
    let fds = assert_stdio_in_log(sup, &log);
    assert!(
        fds.values().all(|t| !t.contains("/.std") && !t.contains("/dev/pts")),
        "supervisor holds the caller's stdio or the tty: {fds:?}"
    );
    drop(pty);
}

#[test]
fn supervisor_title_is_cut_to_15_bytes() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let title = "custom-title-longer-than-the-kernel-keeps";
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--title", title, "--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    wait_comm(sup, &title[..15]);
    assert_eq!(read(Path::new(&format!("/proc/{sup}/comm"))), format!("{}\n", &title[..15]));
}

// 3. The command.

#[test]
fn command_is_child_of_supervisor_in_own_group_holding_only_stdio() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let leaked_path = g.path("leaked");
    fs::write(&leaked_path, "").unwrap();
    let leaked = fs::File::open(&leaked_path).unwrap();
    let leaked_fd = leaked.as_raw_fd();
    let mut cmd = detach_with_pidfiles(&pidfile, &child_pidfile);
    cmd.arg("--log").arg(g.path("app.log")).args(["--", "sleep", "30"]);
    // The caller hands detach fd 7 without close-on-exec (dup2 clears the flag).
    // SAFETY: dup2 is async-signal-safe; leaked_fd stays open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(leaked_fd, 7) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    let pid = wait_sleep(&child_pidfile);
    let stat = proc_stat(pid).expect("command alive");
    assert_eq!(stat.ppid, sup, "the command's parent is the supervisor");
    assert_eq!(stat.pgrp, pid, "the command leads its own process group");
    assert_eq!(stat.session, proc_stat(sup).unwrap().session);
    let fds = proc_fds(pid);
    assert_eq!(fds.keys().copied().collect::<BTreeSet<_>>(), BTreeSet::from([0, 1, 2]), "{fds:?}");
    assert_eq!(fds[&0], "/dev/null");
    assert!(fds[&1].starts_with("pipe:["), "{fds:?}");
    assert_eq!(fds[&1], fds[&2], "stdout and stderr share one pipe");
    let leaked_path = canon(&leaked_path);
    let sup_fds = proc_fds(sup);
    assert!(sup_fds.values().all(|t| *t != leaked_path), "supervisor kept the caller's fd 7: {sup_fds:?}");
    drop(leaked);
}

// 4. Clean signal state.

/// Makes the process ignore SIGPIPE and block SIGUSR1, as a Python parent would, and ignore
/// glibc's reserved signal 32, as glibc's posix_spawn leaves it in a child whose parent handled
/// it (cargo runs this test binary that way). glibc's signal() refuses to touch 32, hence the
/// raw syscall.
fn dirty_signals(cmd: &mut Command) {
    // SAFETY: rt_sigaction and signal are async-signal-safe. The kernel's struct sigaction on
    // x86_64 and arm64 is handler, flags, restorer, mask: [SIG_IGN, 0, 0, 0] ignores.
    unsafe {
        cmd.pre_exec(|| {
            let ignore = [libc::SIG_IGN as u64, 0, 0, 0];
            libc::syscall(libc::SYS_rt_sigaction, 32, ignore.as_ptr(), std::ptr::null_mut::<u64>(), 8);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
    block_in_child(cmd, libc::SIGUSR1);
}

/// Makes the process start with `sig` blocked.
fn block_in_child(cmd: &mut Command, sig: libc::c_int) {
    // SAFETY: sigemptyset, sigaddset and sigprocmask are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

#[test]
fn command_starts_with_default_dispositions_and_empty_mask() {
    let g = Guard::new();
    // The setup really dirties the state: a plain child sees it.
    let mut probe = Command::new("sleep");
    probe.arg("30");
    dirty_signals(&mut probe);
    let (mut probe, _, _) = g.spawn(&mut probe);
    let probe_pid = probe.id() as i32;
    assert!(wait_until(|| proc_status(probe_pid, "SigIgn").is_some(), DEADLINE));
    assert_ne!(sig_bits(probe_pid, "SigIgn") & (1 << (libc::SIGPIPE - 1)), 0);
    assert_ne!(sig_bits(probe_pid, "SigIgn") & (1 << (32 - 1)), 0);
    assert_ne!(sig_bits(probe_pid, "SigBlk") & (1 << (libc::SIGUSR1 - 1)), 0);
    probe.kill().unwrap();
    probe.wait().unwrap();

    let child_pidfile = g.pidfile("child.pid");
    let mut cmd = detach_with_pidfiles(&g.pidfile("p.pid"), &child_pidfile);
    cmd.args(["--", "sleep", "30"]);
    dirty_signals(&mut cmd);
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_sleep(&child_pidfile);
    assert_eq!(proc_status(pid, "SigIgn").as_deref(), Some(NO_SIGNALS));
    assert_eq!(proc_status(pid, "SigBlk").as_deref(), Some(NO_SIGNALS));
}

// 5. Exec failure is reported before detaching.

#[test]
fn missing_command_exits_127_and_leaves_nothing() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let out = g.run(
        detach_with_pidfiles(&pidfile, &child_pidfile)
            .arg("--log")
            .arg(g.path("app.log"))
            .args(["--", "/no/such"])
            .arg(g.marker()),
    );
    assert_no_such_command(&out);
    assert_eq!(out.stderr.lines().count(), 1, "one error line: {out:?}");
    assert_nothing_running(&g.marker());
    assert!(!pidfile.exists(), "pidfile left behind");
    assert!(!child_pidfile.exists(), "child pidfile left behind");
}

#[test]
fn command_without_execute_permission_exits_126() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let script = g.path("script.sh");
    fs::write(&script, "#!/bin/sh\nsleep 30\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).arg("--").arg(&script));
    assert_eq!(out.code(), Some(126), "{out:?}");
    let expected = format!("cannot execute '{}': Permission denied", script.display());
    assert!(out.stderr.contains(&expected), "{out:?}");
    assert_nothing_running(&g.marker());
    assert!(!pidfile.exists(), "pidfile left behind");
}

// 6. Pidfiles.

#[test]
fn pidfile_holds_supervisor_pid_and_is_not_world_writable() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let out = g.run(detach_with_pidfiles(&pidfile, &child_pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    let pid = wait_pid(&child_pidfile);
    assert_ne!(sup, pid);
    assert_eq!(proc_stat(pid).unwrap().ppid, sup, "pidfile must name the command's parent");
    assert_eq!(read(&pidfile), format!("{sup}\n"));
    for path in [&pidfile, &child_pidfile] {
        let mode = fs::metadata(path).unwrap().mode();
        assert_eq!(mode & 0o002, 0, "{} is world-writable: {mode:o}", path.display());
    }
}

/// systemd's Type=forking reads PIDFile= as soon as the first process exits (daemon(7)).
#[test]
fn pidfile_is_written_before_detach_returns() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = read_pid(&pidfile).expect("pidfile complete when detach returns");
    assert!(alive(pid));
}

#[test]
fn second_detach_on_locked_pidfile_exits_75_and_leaves_first_alone() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let log = g.path("app.log");
    let first = g.run(detach().arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(first.code(), Some(0), "{first:?}");
    let sup = wait_pid(&pidfile);
    let start = proc_stat(sup).unwrap().starttime;
    assert_second_refused(&g, detach().arg("--log").arg(&log).arg("--pidfile").arg(&pidfile), sup);
    assert!(alive(sup), "the first supervisor was harmed");
    assert_eq!(proc_stat(sup).unwrap().starttime, start);
    assert_eq!(read(&pidfile), format!("{sup}\n"), "pidfile changed");
}

#[test]
fn child_pidfile_is_locked_like_the_pidfile() {
    let g = Guard::new();
    let child_pidfile = g.pidfile("child.pid");
    let first = g.run(detach().arg("--child-pidfile").arg(&child_pidfile).args(["--", "sleep", "30"]));
    assert_eq!(first.code(), Some(0), "{first:?}");
    let pid = wait_pid(&child_pidfile);
    assert_second_refused(&g, detach().arg("--child-pidfile").arg(&child_pidfile), pid);
    assert!(alive(pid));
    assert_eq!(read(&child_pidfile), format!("{pid}\n"), "child pidfile changed");
}

#[test]
fn stale_pidfile_is_taken_over() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    fs::write(&pidfile, "999999\n").unwrap();
    let out = g.run(detach_with_pidfiles(&pidfile, &child_pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&child_pidfile);
    let sup = proc_stat(pid).unwrap().ppid;
    assert!(wait_until(|| read_pid(&pidfile) == Some(sup), DEADLINE), "pidfile not taken over: {:?}", read(&pidfile));
}

/// Lets the command exit on cue and checks that the supervisor reaps it, removes both pidfiles
/// and exits. `blocked` is blocked in the caller.
fn check_pidfiles_removed_on_exit(blocked: Option<libc::c_int>) {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let go = g.path("go");
    let mut cmd = detach_with_pidfiles(&pidfile, &child_pidfile);
    cmd.args(["--", "sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.01; done", "sh"]).arg(&go);
    if let Some(sig) = blocked {
        block_in_child(&mut cmd, sig);
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    let pid = wait_pid(&child_pidfile);
    fs::write(&go, "").unwrap();
    assert!(
        wait_until(|| !pidfile.exists() && !child_pidfile.exists(), DEADLINE),
        "pidfiles left after the command exited: {:?} {:?}",
        read(&pidfile),
        read(&child_pidfile)
    );
    assert!(wait_until(|| proc_stat(pid).is_none(), DEADLINE), "command not reaped: {:?}", proc_stat(pid));
    assert!(wait_until(|| !alive(sup), DEADLINE), "supervisor still running");
}

#[test]
fn pidfiles_are_removed_when_command_exits() {
    check_pidfiles_removed_on_exit(None);
}

/// The supervisor inherits the caller's signal mask: with SIGCHLD blocked it never saw the exit.
#[test]
fn pidfiles_are_removed_when_command_exits_even_if_caller_blocked_sigchld() {
    check_pidfiles_removed_on_exit(Some(libc::SIGCHLD));
}

/// Starts a command that logs "got-term" on TERM, sends TERM to the supervisor, and checks
/// that the command got it and the supervisor cleaned up. `blocked` is blocked in the caller.
fn check_term_reaches_command(blocked: Option<libc::c_int>) {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let log = g.path("app.log");
    let script = "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done";
    let mut cmd = detach();
    cmd.arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args(["--", "sh", "-c", script]);
    if let Some(sig) = blocked {
        block_in_child(&mut cmd, sig);
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    wait_for_text(&log, "ready\n");
    signal(sup, libc::SIGTERM);
    wait_for_text(&log, "got-term\n");
    assert!(wait_until(|| !pidfile.exists(), DEADLINE), "pidfile left");
    assert!(wait_until(|| !alive(sup), DEADLINE), "supervisor still alive");
}

#[test]
fn term_to_supervisor_reaches_command() {
    check_term_reaches_command(None);
}

/// The supervisor inherits the caller's signal mask: a blocked TERM would stay pending forever.
#[test]
fn term_to_supervisor_reaches_command_when_caller_blocked_term() {
    check_term_reaches_command(Some(libc::SIGTERM));
}

#[test]
fn symlink_at_pidfile_path_is_refused() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let target = g.path("target");
    fs::write(&target, "keep\n").unwrap();
    symlink(&target, &pidfile).unwrap();
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]).arg(g.marker()));
    assert_eq!(out.code(), Some(73), "{out:?}");
    assert_nothing_running(&g.marker());
    assert_eq!(read(&target), "keep\n", "symlink target written");
    assert!(fs::symlink_metadata(&pidfile).unwrap().file_type().is_symlink());
}

// 7. Log files.

#[test]
fn existing_log_content_is_kept() {
    let g = Guard::new();
    let log = g.path("app.log");
    fs::write(&log, "old line\n").unwrap();
    let out = g.run(detach().arg("--log").arg(&log).args(["--", "sh", "-c", "echo new line"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "new line\n");
    assert_eq!(read(&log), "old line\nnew line\n");
}

#[test]
fn new_log_has_mode_0640_under_umask_022() {
    let g = Guard::new();
    let log = g.path("app.log");
    let mut cmd = detach();
    cmd.arg("--log").arg(&log).args(["--", "true"]);
    umask_in_child(&mut cmd, 0o022);
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let meta = fs::metadata(&log).expect("log created before detach returns");
    assert_eq!(meta.mode() & 0o7777, 0o640);
}

#[test]
fn symlink_at_log_path_is_refused() {
    let g = Guard::new();
    let log = g.path("app.log");
    let pidfile = g.pidfile("p.pid");
    let target = g.path("precious");
    fs::write(&target, "precious\n").unwrap();
    symlink(&target, &log).unwrap();
    let out = g.run(
        detach()
            .arg("--log")
            .arg(&log)
            .arg("--pidfile")
            .arg(&pidfile)
            .args(["--", "sh", "-c", "echo written"])
            .arg(g.marker()),
    );
    assert_eq!(out.code(), Some(73), "{out:?}");
    assert!(out.stderr.contains(&format!("cannot open log '{}'", log.display())), "{out:?}");
    assert_nothing_running(&g.marker());
    assert_eq!(read(&target), "precious\n", "wrote through the symlink");
    assert!(!pidfile.exists(), "pidfile left behind");
}

#[test]
fn log_in_missing_dir_exits_73_before_anything_starts() {
    let g = Guard::new();
    let log = g.path("missing/app.log");
    let pidfile = g.pidfile("p.pid");
    let out = g.run(
        detach().arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]).arg(g.marker()),
    );
    assert_eq!(out.code(), Some(73), "{out:?}");
    let expected = format!("cannot open log '{}': No such file or directory", log.display());
    assert!(out.stderr.contains(&expected), "{out:?}");
    assert!(!pidfile.exists(), "pidfile created");
    assert!(!g.path("missing").exists(), "log dir created");
    assert_nothing_running(&g.marker());
}

/// Regression: a bad --chdir was noticed after the pidfile had been created.
#[test]
fn missing_chdir_dir_exits_71_and_leaves_no_pidfile() {
    let g = Guard::new();
    let (pidfile, child_pidfile) = (g.pidfile("p.pid"), g.pidfile("c.pid"));
    let missing = g.path("no/such/dir");
    let mut cmd = detach();
    cmd.arg("--pidfile").arg(&pidfile).arg("--child-pidfile").arg(&child_pidfile).arg("--chdir").arg(&missing);
    let out = g.run(cmd.args(["--", "sleep", "30"]).arg(g.marker()));
    assert_eq!(out.code(), Some(71), "{out:?}");
    let expected = format!("cannot change directory to '{}': No such file or directory", missing.display());
    assert!(out.stderr.contains(&expected), "{out:?}");
    assert!(!pidfile.exists() && !child_pidfile.exists(), "a pidfile was left behind");
    assert_nothing_running(&g.marker());
}

/// Regression: a relative --child-pidfile was resolved after the chdir to /.
#[test]
fn relative_pidfiles_are_taken_from_the_callers_directory() {
    let g = Guard::new();
    let (pidfile, child_pidfile) = (g.pidfile("p.pid"), g.pidfile("c.pid"));
    let mut cmd = detach();
    cmd.current_dir(g.dir.path()).args(["--pidfile", "p.pid", "--child-pidfile", "c.pid", "--log", "app.log"]);
    let out = g.run(cmd.args(["--", "sh", "-c", "sleep 30"]).arg(g.marker()));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let (sup, child) = (wait_pid(&pidfile), wait_pid(&child_pidfile));
    assert_eq!(proc_stat(child).map(|s| s.ppid), Some(sup), "the child pidfile does not name the command");
    assert!(g.path("app.log").exists(), "the relative log was not created in the caller's directory");
    assert_eq!(proc_cwd(sup), std::path::Path::new("/"));
}

// 8. Usage.

#[test]
fn usage_errors_exit_64_and_start_nothing() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let log = g.path("app.log").to_string_lossy().into_owned();
    let out_path = g.path("out.log").to_string_lossy().into_owned();
    let pid_arg = pidfile.to_string_lossy().into_owned();
    let marker = g.marker();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--pidfile", &pid_arg],
        vec!["--pidfile", &pid_arg, "--"],
        vec!["--no-such-option", "--pidfile", &pid_arg, "--", "sleep", "30", &marker],
        vec!["--log", &log, "--stdout", &out_path, "--", "sleep", "30", &marker],
        vec!["--umask", "9z", "--pidfile", &pid_arg, "--", "sleep", "30", &marker],
        vec!["--exec", "--foreground", "--pidfile", &pid_arg, "--", "sleep", "30", &marker],
    ];
    for args in cases {
        let out = g.run(detach().args(&args));
        assert_eq!(out.code(), Some(64), "{args:?}: {out:?}");
        assert!(!out.stderr.trim().is_empty(), "{args:?}: no message");
        assert!(!pidfile.exists(), "{args:?}: pidfile created");
    }
    assert_nothing_running(&marker);
    let bare = g.run(&mut detach());
    assert_eq!(bare.code(), Some(64), "no arguments: {bare:?}");
}

#[test]
fn help_shows_an_example_and_version_prints_it() {
    let g = Guard::new();
    let help = g.run(detach().arg("--help"));
    assert_eq!(help.code(), Some(0), "{help:?}");
    assert!(help.stdout.to_lowercase().contains("example"), "{help:?}");
    assert!(help.stdout.contains("--log"), "{help:?}");
    let version = g.run(detach().arg("--version"));
    assert_eq!(version.code(), Some(0), "{version:?}");
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")), "{version:?}");
}

// 9. --foreground.

#[test]
fn foreground_exits_with_command_status() {
    let g = Guard::new();
    let log = g.path("app.log");
    let out = g.run(detach().arg("--foreground").arg("--log").arg(&log).args(["--", "sh", "-c", "echo hi; exit 3"]));
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert_eq!(read(&log), "hi\n");
}

#[test]
fn foreground_dies_by_the_signal_that_killed_the_command() {
    let g = Guard::new();
    let out = g.run(detach().args(["--foreground", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.how(), "killed by 15", "{out:?}");
}

#[test]
fn foreground_command_is_child_of_detach_in_callers_dir() {
    let g = Guard::new();
    let child_pidfile = g.pidfile("child.pid");
    let mut cmd = detach();
    cmd.current_dir(g.dir.path())
        .arg("--foreground")
        .arg("--child-pidfile")
        .arg(&child_pidfile)
        .args(["--", "sleep", "30"]);
    let (mut child, _, stderr) = g.spawn(&mut cmd);
    let pid = wait_pid(&child_pidfile);
    assert_eq!(proc_stat(pid).unwrap().ppid, child.id() as i32, "stderr: {}", read(&stderr));
    assert_eq!(proc_cwd(pid).to_string_lossy(), canon(g.dir.path()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn foreground_missing_command_exits_127() {
    let g = Guard::new();
    let out = g.run(detach().args(["--foreground", "--", "/no/such"]));
    assert_no_such_command(&out);
}

// 10. --exec.

#[test]
fn exec_mode_runs_command_itself_with_log_as_stdout_and_stderr() {
    let g = Guard::new();
    let log = g.path("app.log");
    let pidfile = g.pidfile("p.pid");
    let out = g.run(detach().arg("--exec").arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args([
        "--",
        "sh",
        "-c",
        "echo pid=$$; exec sleep 30",
    ]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "\n");
    let logged: i32 = read(&log)
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pid= line in {:?}", read(&log)));
    g.track(logged);
    assert_eq!(wait_pid(&pidfile), logged, "pidfile must hold the command's pid");
    wait_comm(logged, "sleep");
    assert_stdio_in_log(logged, &log);
    let stat = proc_stat(logged).unwrap();
    assert_ne!(stat.session, logged, "must not be a session leader");
    assert_eq!(stat.tty_nr, 0);
}

/// With no supervisor, the command itself must hold the pidfile's lock.
#[test]
fn exec_mode_pidfile_stays_locked_while_command_runs() {
    let g = Guard::new();
    let log = g.path("app.log");
    let pidfile = g.pidfile("p.pid");
    let first =
        g.run(detach().arg("--exec").arg("--log").arg(&log).arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(first.code(), Some(0), "{first:?}");
    let pid = wait_sleep(&pidfile);
    assert_second_refused(&g, detach().arg("--exec").arg("--log").arg(&log).arg("--pidfile").arg(&pidfile), pid);
    assert!(alive(pid));
}

#[test]
fn exec_mode_missing_command_exits_127_without_pidfile() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out = g.run(
        detach()
            .arg("--exec")
            .arg("--log")
            .arg(g.path("app.log"))
            .arg("--pidfile")
            .arg(&pidfile)
            .args(["--", "/no/such"])
            .arg(g.marker()),
    );
    assert_no_such_command(&out);
    assert_nothing_running(&g.marker());
    assert!(!pidfile.exists(), "pidfile left behind");
}

// 11. --stdout / --stderr.

#[test]
fn stdout_and_stderr_options_separate_the_streams() {
    let g = Guard::new();
    let (out_log, err_log) = (g.path("out.log"), g.path("err.log"));
    let out = g.run(detach().arg("--stdout").arg(&out_log).arg("--stderr").arg(&err_log).args([
        "--",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; echo end; echo end >&2",
    ]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&out_log, "end\n");
    wait_for_text(&err_log, "end\n");
    assert_eq!(read(&out_log), "to-out\nend\n");
    assert_eq!(read(&err_log), "to-err\nend\n");
}

#[test]
fn stdout_alone_leaves_stderr_out_of_it() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out_log = g.path("out.log");
    let out = g.run(detach().arg("--stdout").arg(&out_log).arg("--pidfile").arg(&pidfile).args([
        "--",
        "sh",
        "-c",
        "echo to-err >&2; echo to-out",
    ]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&out_log, "to-out\n");
    assert!(wait_until(|| !pidfile.exists(), DEADLINE), "supervisor never exited");
    assert_eq!(read(&out_log), "to-out\n");
}

// 12. --chdir, --umask.

#[test]
fn chdir_sets_cwd_of_supervisor_and_command() {
    let g = Guard::new();
    let work = g.path("work");
    fs::create_dir(&work).unwrap();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let out =
        g.run(detach_with_pidfiles(&pidfile, &child_pidfile).arg("--chdir").arg(&work).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let work = canon(&work);
    wait_sleep(&child_pidfile);
    for pid in [wait_pid(&pidfile), wait_pid(&child_pidfile)] {
        assert_eq!(proc_cwd(pid).to_string_lossy(), work, "pid {pid}");
    }
}

#[test]
fn umask_option_sets_umask_of_supervisor_and_command() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("child.pid");
    let out = g.run(detach_with_pidfiles(&pidfile, &child_pidfile).args(["--umask", "077", "--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_sleep(&child_pidfile);
    for pid in [wait_pid(&pidfile), wait_pid(&child_pidfile)] {
        assert_eq!(proc_status(pid, "Umask").as_deref(), Some("0077"), "pid {pid}");
    }
}

// 13. --user.

#[test]
fn user_nobody_runs_command_as_nobody_with_log_owned_by_root() {
    if !is_root("user_nobody_runs_command_as_nobody_with_log_owned_by_root") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").expect("getpwnam").expect("user nobody exists");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let g = Guard::new();
    let log = g.path("app.log");
    let child_pidfile = g.pidfile("child.pid");
    let out = g.run(
        detach_with_pidfiles(&g.pidfile("p.pid"), &child_pidfile)
            .args(["--user", "nobody", "--log"])
            .arg(&log)
            .args(["--", "sleep", "30"]),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_sleep(&child_pidfile);
    let ids = |field: &str| -> Vec<u32> {
        proc_status(pid, field).unwrap_or_default().split_whitespace().map(|n| n.parse().unwrap()).collect()
    };
    assert_eq!(ids("Uid"), vec![uid; 4]);
    assert_eq!(ids("Gid"), vec![gid; 4]);
    assert!(!ids("Groups").contains(&0), "kept root's group: {:?}", ids("Groups"));
    assert_eq!(fs::metadata(&log).unwrap().uid(), 0, "log must stay root's");
}

#[test]
fn unknown_user_exits_67() {
    if !is_root("unknown_user_exits_67") {
        return;
    }
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out = g.run(
        detach()
            .args(["--user", "nosuchuser-xyz"])
            .arg("--pidfile")
            .arg(&pidfile)
            .args(["--", "sleep", "30"])
            .arg(g.marker()),
    );
    assert_eq!(out.code(), Some(67), "{out:?}");
    assert!(out.stderr.contains("unknown user 'nosuchuser-xyz'"), "{out:?}");
    assert!(!pidfile.exists(), "pidfile created");
    assert_nothing_running(&g.marker());
}
