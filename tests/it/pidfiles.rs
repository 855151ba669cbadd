//! Issue 13's pidfile trust (items 1-3, 10, 11, 14) and issue 12's request verbs, client side:
//! a verb signals only the process the kernel says holds the pidfile's write lock (or a live
//! child of it, for a child pidfile), never the pid a file merely names; a stranger's lock
//! neither blocks a start nor misleads a verb; as root, a pidfile another user could have
//! replaced is refused.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::{
    DEADLINE, Guard, Out, alive, detach, is_root, pids_with_arg, proc_stat, read, read_pid, s, start, start_named,
    ticks, wait_child, wait_for_text, wait_pid, wait_until,
};

/// `detach VERB --pidfile P EXTRA...`, run to completion.
fn verb(g: &Guard, verb: &str, pidfile: &Path, extra: &[&str]) -> Out {
    g.run(detach().arg(verb).arg("--pidfile").arg(pidfile).args(extra))
}

/// A live process that is nobody's daemon: `sleep 1000`, started by the test (tracked). A
/// signal it does not expect (HUP, TERM, the request signal) kills it.
fn victim(g: &Guard) -> Child {
    let (child, _, _) = g.spawn(Command::new("sleep").arg("1000"));
    child
}

fn assert_untouched(child: &mut Child, what: &str) {
    assert!(child.try_wait().expect("try_wait").is_none(), "{what} killed the unrelated process {}", child.id());
}

/// How a [`locker`] locks the file it opens, besides an flock(LOCK_EX), which detach used to
/// take for "running" and which anyone who can open the file can take.
#[derive(Clone, Copy)]
enum Hold {
    /// A fcntl write lock on the whole file (as lockf(3) takes): the file must be writable.
    Write,
    /// A fcntl read lock: what any reader of a 0644 file can take.
    Read,
}

/// Starts `sleep 1000` holding a lock on `path` (opened by the sleep itself, after
/// `uid`'s setuid), with `blocked` blocked: a process that is not detach. Tracked.
fn locker(g: &Guard, path: &Path, hold: Hold, uid: Option<u32>, blocked: Option<i32>) -> Child {
    let cpath = CString::new(s(path)).unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    // SAFETY: open, flock, fcntl and sigprocmask are async-signal-safe; the path was made
    // before the fork; the fd stays open (no O_CLOEXEC) so that sleep holds the lock.
    unsafe {
        cmd.pre_exec(move || {
            let mode = match hold {
                Hold::Write => libc::O_RDWR,
                Hold::Read => libc::O_RDONLY,
            };
            let fd = libc::open(cpath.as_ptr(), mode);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut fl: libc::flock = std::mem::zeroed();
            fl.l_whence = libc::SEEK_SET as libc::c_short;
            fl.l_type = match hold {
                Hold::Write => libc::F_WRLCK,
                Hold::Read => libc::F_RDLCK,
            } as libc::c_short;
            if libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) < 0 || libc::fcntl(fd, libc::F_SETLK, &fl) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(sig) = blocked {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            Ok(())
        });
    }
    let (child, _, _) = g.spawn(&mut cmd);
    child
}

/// The signal that carries a request to a supervisor (src/request.rs).
fn request_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

/// A directory inside the test's temp dir, owned by `nobody` (mode 0755), with the temp dir
/// opened to others so that `nobody` can reach it.
fn nobodys_dir(g: &Guard) -> PathBuf {
    fs::set_permissions(g.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = g.path("nobody");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

const NOBODY: u32 = 65534;

// Item 1: a start over a stale pidfile must never expose the old pid while locked.

#[test]
fn a_start_over_a_stale_pidfile_never_lets_reopen_hit_the_old_pid() {
    let g = Guard::new();
    let mut victim = victim(&g);
    let pidfile = g.pidfile("p.pid");
    for round in 0..8 {
        fs::write(&pidfile, format!("{}\n", victim.id())).unwrap();
        // logrotate's postrotate, in a loop, while the start takes the pidfile over.
        let stop = Arc::new(AtomicBool::new(false));
        let reopens = {
            let (stop, pidfile) = (stop.clone(), pidfile.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) || n < 3 {
                    let _ = detach().arg("reopen").arg("--pidfile").arg(&pidfile).stderr(Stdio::null()).status();
                    n += 1;
                }
            })
        };
        let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
        assert_eq!(out.code(), Some(0), "round {round}: {out:?}");
        let sup = wait_pid(&pidfile);
        g.track(sup);
        stop.store(true, Ordering::Relaxed);
        reopens.join().unwrap();
        assert_untouched(&mut victim, &format!("round {round}: reopen during a start"));
        assert!(alive(sup), "round {round}: the new supervisor died");
        let out = verb(&g, "stop", &pidfile, &[]);
        assert_eq!(out.code(), Some(0), "{out:?}");
    }
}

// Item 2: a stranger's lock on a stale pidfile.

#[test]
fn a_strangers_lock_on_a_stale_pidfile_neither_misleads_the_verbs_nor_blocks_a_start() {
    if !is_root("a_strangers_lock_on_a_stale_pidfile_neither_misleads_the_verbs_nor_blocks_a_start") {
        return;
    }
    let g = Guard::new();
    fs::set_permissions(g.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut victim = victim(&g);
    let pidfile = g.pidfile("p.pid");
    fs::write(&pidfile, format!("{}\n", victim.id())).unwrap();
    let mut squatter = locker(&g, &pidfile, Hold::Read, Some(NOBODY), None);
    let out = verb(&g, "status", &pidfile, &[]);
    assert_eq!(out.code(), Some(1), "a stranger's lock was taken for a daemon: {out:?}");
    assert!(out.stdout.contains("stale pidfile"), "{out:?}");
    let out = verb(&g, "reopen", &pidfile, &[]);
    assert_eq!(out.code(), Some(7), "{out:?}");
    let out = verb(&g, "stop", &pidfile, &["--timeout", "1"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_untouched(&mut victim, "status, reopen and stop on a squatted pidfile");
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "a stranger's read lock blocked the start: {out:?}");
    let sup = wait_pid(&pidfile);
    assert_eq!(proc_stat(sup).unwrap().comm, "detach: sleep");
    let out = verb(&g, "status", &pidfile, &[]);
    assert!(out.stdout.starts_with(&format!("running (pid {sup})")), "{out:?}");
    assert_eq!(fs::metadata(&pidfile).unwrap().permissions().mode() & 0o777, 0o644);
    assert_untouched(&mut squatter, "a start over a squatted pidfile");
}

// Item 3: a pidfile in a directory that a less privileged user can write.

/// Root's daemon, its pidfile in a directory `nobody` owns (RuntimeDirectory= with User=): the
/// pidfile and the supervisor's pid.
fn start_in_nobodys_dir(g: &Guard) -> (PathBuf, i32) {
    let pidfile = nobodys_dir(g).join("p.pid");
    let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    g.track(sup);
    (pidfile, sup)
}

#[test]
fn root_refuses_a_pidfile_a_user_could_have_replaced_and_signals_nobody() {
    if !is_root("root_refuses_a_pidfile_a_user_could_have_replaced_and_signals_nobody") {
        return;
    }
    let g = Guard::new();
    let (pidfile, sup) = start_in_nobodys_dir(&g);
    for v in ["status", "reopen", "stop"] {
        let out = verb(&g, v, &pidfile, &[]);
        assert_eq!(out.code(), Some(4), "{v}: {out:?}");
        assert!(out.stderr.contains("not trusting pidfile") && out.stderr.contains("uid 65534"), "{v}: {out:?}");
    }
    assert!(alive(sup), "a refused verb signalled the supervisor");
    // The attack: `nobody` puts a file of its own, locked, naming root's process, in its place.
    let mut victim = victim(&g);
    let planted = pidfile.with_file_name("planted");
    fs::write(&planted, format!("{}\n", victim.id())).unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let mut planter = locker(&g, &planted, Hold::Write, Some(NOBODY), None);
    fs::rename(&planted, &pidfile).unwrap();
    for v in ["status", "reopen", "stop"] {
        let out = verb(&g, v, &pidfile, &[]);
        assert_eq!(out.code(), Some(4), "{v} on a planted pidfile: {out:?}");
    }
    let out = verb(&g, "signal", &pidfile, &["HUP"]);
    assert_eq!(out.code(), Some(4), "{out:?}");
    assert_untouched(&mut victim, "verbs on a planted pidfile");
    assert_untouched(&mut planter, "verbs on a planted pidfile");
}

// Item 10: `detach stop` during a fresh start.

#[test]
fn stop_right_after_a_start_waits_for_the_pid_then_stops_the_daemon() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let marker = g.marker();
    for round in 0..12 {
        let (mut first, _, err) =
            g.spawn(detach().arg("--pidfile").arg(&pidfile).args(["--", "sh", "-c", "exec sleep 30", &marker]));
        assert!(wait_until(|| pidfile.exists(), DEADLINE), "round {round}: no pidfile");
        let out = verb(&g, "stop", &pidfile, &["--timeout", "5"]);
        assert_eq!(out.code(), Some(0), "round {round}: {out:?}");
        let status = wait_child(&mut first, || format!("detach did not return: {}", read(&err)));
        assert!(status.success(), "round {round}: {status:?} {}", read(&err));
        let gone = wait_until(|| pids_with_arg(&marker).is_empty(), DEADLINE);
        assert!(gone, "round {round}: left running after stop: {:?}", pids_with_arg(&marker));
        assert!(!pidfile.exists(), "round {round}: pidfile left");
    }
}

// Item 11: the child pidfile between two runs.

#[test]
fn a_child_pidfile_between_runs_is_not_running_and_its_old_pid_is_never_signalled() {
    let g = Guard::new();
    let log = g.path("app.log");
    let opts = ["--log", s(&log), "--restart", "always", "--restart-delay", "60"];
    let d = start_named(&g, "", &opts, &["sh", "-c", "echo ran"]);
    wait_for_text(&log, "ran");
    // Between runs the supervisor empties it (keeping its lock): it names no process.
    let emptied = wait_until(|| d.child_pidfile.exists() && read(&d.child_pidfile).is_empty(), DEADLINE);
    assert!(emptied, "the child pidfile still names the dead run: {:?}", read(&d.child_pidfile));
    let out = verb(&g, "status", &d.child_pidfile, &[]);
    assert_eq!(out.code(), Some(3), "a dead command was called running: {out:?}");
    assert!(out.stdout.contains("not running (restarting"), "{out:?}");
    let out = verb(&g, "reopen", &d.child_pidfile, &[]);
    assert_eq!(out.code(), Some(7), "{out:?}");
    let out = verb(&g, "stop", &d.child_pidfile, &[]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(alive(d.sup), "stop on a child pidfile between runs hit the supervisor");
    assert!(d.child_pidfile.exists(), "the supervisor's locked child pidfile was removed");
}

#[test]
fn status_of_a_child_pidfile_names_the_command_and_its_supervisor() {
    let g = Guard::new();
    let (d, cmd) = start(&g, &[], &["sleep", "30"]);
    let out = verb(&g, "status", &d.child_pidfile, &[]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("running (pid {cmd}), up "))
            && first.ends_with(&format!("supervised by pid {}", d.sup)),
        "{out:?}"
    );
    // stop on the child pidfile stops the command, not the supervisor.
    let out = verb(&g, "stop", &d.child_pidfile, &["--timeout", "5"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(!alive(cmd), "the command survived stop");
}

// Item 14: a verb's probe never makes a start fail, nor removes the pidfile a start took.

#[test]
fn verbs_racing_a_start_over_a_stale_pidfile_never_fail_it_nor_remove_its_pidfile() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    for round in 0..40 {
        fs::write(&pidfile, "999999\n").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let verbs = {
            let (stop, pidfile) = (stop.clone(), pidfile.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for v in ["status", "stop"] {
                        let mut cmd = detach();
                        cmd.arg(v).arg("--pidfile").arg(&pidfile).stdout(Stdio::null()).stderr(Stdio::null());
                        let _ = cmd.status();
                    }
                }
            })
        };
        let out = g.run(detach().arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
        stop.store(true, Ordering::Relaxed);
        verbs.join().unwrap();
        assert_eq!(out.code(), Some(0), "round {round}: a verb made the start fail: {out:?}");
        // The verbs' stop may have stopped the new daemon; if it runs, its pidfile names it.
        match read_pid(&pidfile).filter(|&p| alive(p)) {
            Some(sup) => {
                g.track(sup);
                let out = verb(&g, "stop", &pidfile, &[]);
                assert_eq!(out.code(), Some(0), "{out:?}");
            }
            None => {
                let orphans = supervisors_of(&pidfile);
                assert!(orphans.is_empty(), "round {round}: a daemon runs without its pidfile: {orphans:?}");
            }
        }
    }
}

/// Supervisors (`detach: sleep`) whose pidfile argument is `pidfile`.
fn supervisors_of(pidfile: &Path) -> Vec<i32> {
    pids_with_arg(s(pidfile))
        .into_iter()
        .filter(|&p| proc_stat(p).is_some_and(|st| st.comm == "detach: sleep"))
        .collect()
}

/// A daemon ticking into `app.log` (no watch), once that log has been moved to `app.log.1`
/// under it: the daemon, its command and the log's path, for a reopen to recreate.
fn ticking_with_its_log_moved(g: &Guard) -> (crate::util::Daemon, i32, PathBuf) {
    let log = g.path("app.log");
    let (d, cmd) = start(g, &["--log", s(&log), "--no-watch"], &["sh", "-c", crate::util::TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, g.path("app.log.1")).unwrap();
    (d, cmd, log)
}

#[test]
fn without_pidfd_open_the_verbs_fall_back_to_kill_after_checking_the_lock() {
    let g = Guard::new();
    let (d, cmd, log) = ticking_with_its_log_moved(&g);
    let out = g.run(no_pidfd_open(detach().arg("reopen").arg("--pidfile").arg(&d.pidfile)));
    assert_eq!(out.code(), Some(0), "reopen without pidfd_open: {out:?}");
    assert!(wait_until(|| ticks(&read(&log)).len() >= 2, DEADLINE), "the reopen never happened");
    let out = g.run(no_pidfd_open(detach().arg("status").arg("--pidfile").arg(&d.pidfile)));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let out = g.run(no_pidfd_open(detach().arg("stop").arg("--pidfile").arg(&d.pidfile)));
    assert_eq!(out.code(), Some(0), "stop without pidfd_open: {out:?}");
    assert!(!alive(d.sup) && !alive(cmd), "stop without pidfd_open left the daemon running");
    assert!(!d.pidfile.exists());
}

/// Makes pidfd_open(2) fail with ENOSYS in `cmd`, as on kernels before 5.3 (a seccomp filter).
fn no_pidfd_open(cmd: &mut Command) -> &mut Command {
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        // Load the syscall number (offset 0 of struct seccomp_data).
        libc::sock_filter { code: 0x20, jt: 0, jf: 0, k: 0 },
        // pidfd_open is 434 on every architecture (asm-generic numbering).
        libc::sock_filter { code: 0x15, jt: 0, jf: 1, k: 434 },
        libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: SECCOMP_RET_ERRNO | libc::ENOSYS as u32 },
        libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW },
    ];
    // SAFETY: prctl(2) only, on a filter array built before the fork and copied into the
    // closure; the kernel copies the program.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut _ };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

// Issue 12: reopen --wait, restart, signal: what needs no supervisor's answer.

#[test]
fn request_verbs_when_not_running_exit_7() {
    let g = Guard::new();
    let stale = g.path("stale.pid");
    fs::write(&stale, "999999\n").unwrap();
    for pidfile in [g.path("none.pid"), stale] {
        for args in [&["reopen", "--wait"][..], &["restart"], &["signal", "USR1"]] {
            let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile));
            assert_eq!(out.code(), Some(7), "{args:?} {}: {out:?}", pidfile.display());
        }
    }
}

#[test]
fn signal_refuses_a_stale_pidfile_naming_a_live_process() {
    let g = Guard::new();
    let mut victim = victim(&g);
    let pidfile = g.path("stale.pid");
    fs::write(&pidfile, format!("{}\n", victim.id())).unwrap();
    for args in [&["signal", "TERM"][..], &["restart"], &["reopen", "--wait"]] {
        let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile));
        assert_eq!(out.code(), Some(7), "{args:?}: {out:?}");
    }
    assert_untouched(&mut victim, "request verbs on a stale pidfile");
}

#[test]
fn request_verbs_never_send_the_request_signal_to_a_holder_that_would_die_of_it() {
    let g = Guard::new();
    let pidfile = g.path("other.pid");
    fs::write(&pidfile, "").unwrap();
    let mut other = locker(&g, &pidfile, Hold::Write, None, None);
    fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
    for args in [&["reopen", "--wait"][..], &["restart"], &["signal", "USR1"]] {
        let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile));
        assert_eq!(out.code(), Some(4), "{args:?}: {out:?}");
        let expected = format!("pid {} does not take requests (started with --exec?)", other.id());
        assert!(out.stderr.contains(&expected), "{args:?}: {out:?}");
    }
    assert_untouched(&mut other, "a request to a process that does not take requests");
    // The plain verbs do reach the holder of the lock: it is what the pidfile names.
    let out = verb(&g, "status", &pidfile, &[]);
    assert!(out.stdout.starts_with(&format!("running (pid {})", other.id())), "{out:?}");
}

#[test]
fn request_verbs_refuse_an_exec_daemon() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out = g.run(detach().arg("--exec").arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&pidfile);
    let out = verb(&g, "restart", &pidfile, &[]);
    assert_eq!(out.code(), Some(4), "{out:?}");
    assert!(out.stderr.contains("started with --exec?"), "{out:?}");
    assert!(alive(pid), "the --exec daemon died of a request");
    let out = verb(&g, "status", &pidfile, &[]);
    assert!(out.stdout.starts_with(&format!("running (pid {pid})")), "the --exec daemon holds its lock: {out:?}");
}

#[test]
fn a_request_nobody_answers_times_out_with_1() {
    let g = Guard::new();
    let pidfile = g.path("mute.pid");
    fs::write(&pidfile, "").unwrap();
    // Blocks the request signal as a supervisor does, but never answers.
    let mut mute = locker(&g, &pidfile, Hold::Write, None, Some(request_signal()));
    fs::write(&pidfile, format!("{}\n", mute.id())).unwrap();
    let out = g.run(detach().args(["reopen", "--wait", "--timeout", "0.3", "--pidfile"]).arg(&pidfile));
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains(&format!("no answer from the supervisor (pid {})", mute.id())), "{out:?}");
    assert_untouched(&mut mute, "an unanswered request");
}

#[test]
fn request_verbs_refuse_an_untrusted_pidfile_as_root() {
    if !is_root("request_verbs_refuse_an_untrusted_pidfile_as_root") {
        return;
    }
    let g = Guard::new();
    let (pidfile, sup) = start_in_nobodys_dir(&g);
    for args in [&["reopen", "--wait"][..], &["restart"], &["signal", "USR1"]] {
        let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile));
        assert_eq!(out.code(), Some(4), "{args:?}: {out:?}");
        assert!(out.stderr.contains("not trusting pidfile"), "{args:?}: {out:?}");
    }
    assert!(alive(sup));
}

#[test]
fn verbs_reject_bad_signals_and_timeouts_as_usage_errors() {
    let g = Guard::new();
    let pidfile = g.path("none.pid");
    for args in [&["signal", "NOPE"][..], &["signal", "0"], &["signal", "65"], &["reopen", "--timeout", "1"]] {
        let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile));
        assert_eq!(out.code(), Some(64), "{args:?}: {out:?}");
    }
}

// Against a live supervisor: these need the supervisor's side of the requests (the lead's
// signalfd loop, which answers through request::answer).

#[test]
fn reopen_wait_returns_once_the_supervisor_reopened() {
    let g = Guard::new();
    let (d, cmd, log) = ticking_with_its_log_moved(&g);
    let out = verb(&g, "reopen", &d.pidfile, &["--wait"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // Confirmed, not guessed: the new file exists when the verb returns.
    assert!(log.exists(), "reopen --wait returned before the reopen");
    assert!(alive(d.sup) && alive(cmd));
}

#[test]
fn restart_keeps_the_supervisor_and_starts_a_new_command() {
    let g = Guard::new();
    let (d, cmd) = start(&g, &[], &["sleep", "30"]);
    let out = verb(&g, "restart", &d.pidfile, &[]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(alive(d.sup), "the supervisor did not stay");
    let new = wait_pid(&d.child_pidfile);
    assert_ne!(new, cmd, "no new run");
    assert!(!alive(cmd), "the old run is still alive");
    assert_eq!(proc_stat(new).unwrap().ppid, d.sup);
}

#[test]
fn signal_reaches_the_command_through_the_supervisor() {
    let g = Guard::new();
    let log = g.path("app.log");
    let script = "trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.05; done";
    let (d, _) = start(&g, &["--log", s(&log)], &["sh", "-c", script]);
    wait_for_text(&log, "ready");
    let out = verb(&g, "signal", &d.pidfile, &["USR1"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "got USR1");
    assert!(alive(d.sup));
}
