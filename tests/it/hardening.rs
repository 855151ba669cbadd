//! Issue 13: values checked where they enter, colliding paths, the restart floor, what a
//! failed start leaves behind, and the fds a foreground command inherits. Each test is named
//! after the bug it pins.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::util::{
    DEADLINE, Guard, Out, detach, example, pids_with_arg, proc_fds, read, s, signal, start, wait_for_text, wait_pid,
    wait_until,
};

/// A usage error: status 64, one line `detach: error: ...` and one hint line, nothing on
/// stdout.
fn assert_usage_error(out: &Out, what: &str) {
    assert_eq!(out.code(), Some(64), "{what}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{what}: not one line plus a hint: {:?}", out.stderr);
    assert!(lines[0].starts_with("detach: error: "), "{what}: {:?}", out.stderr);
    assert!(lines[1].starts_with("Try 'detach --help'"), "{what}: {:?}", out.stderr);
    assert!(out.stdout.is_empty(), "{what}: {out:?}");
}

fn assert_nothing_running(marker: &str) {
    let gone = wait_until(|| pids_with_arg(marker).is_empty(), DEADLINE);
    assert!(gone, "processes left running: {:?}", pids_with_arg(marker));
}

/// The names in a directory, for the messages of the tests that check what was left.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.retain(|n| !n.starts_with('.'));
    names.sort();
    names
}

// 5. --log-mode

#[test]
fn log_mode_with_setuid_setgid_sticky_or_exec_bits_is_refused() {
    let g = Guard::new();
    let log = g.path("out.log");
    for mode in ["4755", "2644", "1666", "0700", "0777", "4000"] {
        let out = g.run(detach().args(["--log-mode", mode, "--foreground", "--log", s(&log), "--", "true"]));
        assert_usage_error(&out, mode);
        assert!(out.stderr.contains("0666"), "{mode}: {out:?}");
        assert!(!log.exists(), "{mode}: the log was created");
    }
    let out =
        g.run(detach().args(["--log-mode", "0666", "--umask", "0", "--foreground", "--log", s(&log), "--", "true"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(fs::metadata(&log).unwrap().mode() & 0o7777, 0o666);
}

/// The library's `Daemon::log_mode` keeps the read and write bits only.
#[test]
fn library_log_mode_cannot_create_a_setuid_log() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("lib.log"), g.pidfile("lib.pid"));
    let out = g.run(Command::new(example("library_start")).args([s(&log), s(&pidfile), "4777"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "started\n");
    // umask 077: only the owner's read and write bits are left.
    assert_eq!(fs::metadata(&log).unwrap().mode() & 0o7777, 0o600);
}

// 7. Signals by name and number.

#[test]
fn numeric_reopen_signal_is_checked_like_its_name() {
    let g = Guard::new();
    let marker = g.path("ran");
    let refused = [
        "KILL", "9", "STOP", "19", "TERM", "15", "CHLD", "17", "SEGV", "11", "ILL", "4", "FPE", "8", "BUS", "7", "URG",
        "23", "RTMIN+5", "0", "65", "-1", "NOPE",
    ];
    for sig in refused {
        let arg = format!("--reopen-signal={sig}");
        let out = g.run(detach().args([arg.as_str(), "--foreground", "--", "touch", s(&marker)]));
        assert_usage_error(&out, sig);
        assert!(!marker.exists(), "{sig}: the command ran");
        let out = g.run(detach().args(["reopen", "--pidfile", s(&g.path("none.pid")), &format!("--signal={sig}")]));
        assert_usage_error(&out, &format!("reopen --signal {sig}"));
    }
    for sig in ["USR1", "sigusr1", "10", "RTMIN+1", "WINCH"] {
        let out = g.run(detach().args(["--reopen-signal", sig, "--foreground", "--", "true"]));
        assert_eq!(out.code(), Some(0), "{sig}: {out:?}");
    }
}

// 8. Durations.

#[test]
fn huge_negative_nan_and_infinite_durations_are_usage_errors() {
    let g = Guard::new();
    let marker = g.path("ran");
    for opt in ["--kill-timeout", "--drain-timeout", "--restart-delay", "--restart-max-delay"] {
        for value in ["1e19", "-1", "nan", "inf", "-inf", "31536001", "x"] {
            let arg = format!("{opt}={value}");
            let out = g.run(detach().args([arg.as_str(), "--foreground", "--", "touch", s(&marker)]));
            assert_usage_error(&out, &arg);
            assert!(!marker.exists(), "{arg}: the command ran");
        }
    }
    for value in ["1e19", "-1", "nan", "inf"] {
        let arg = format!("--timeout={value}");
        let out = g.run(detach().args(["stop", "--pidfile", s(&g.path("none.pid")), &arg]));
        assert_usage_error(&out, &format!("stop {arg}"));
    }
}

/// The largest accepted timeout (a year) works: TERM still stops the daemon at once when the
/// command obeys it (1e19 used to abort the supervisor on TERM, leaving its pidfile).
#[test]
fn a_kill_timeout_of_a_year_is_accepted_and_term_still_stops() {
    let g = Guard::new();
    let log = g.path("out.log");
    let (daemon, _cmd) = start(&g, &["--kill-timeout", "31536000", "--log", s(&log)], &["sleep", "30"]);
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
}

// 12. Colliding paths.

#[test]
fn two_options_naming_the_same_file_are_a_usage_error() {
    let g = Guard::new();
    let dir = g.dir.path();
    fs::write(g.path("existing"), "").unwrap();
    fs::hard_link(g.path("existing"), g.path("hardlink")).unwrap();
    std::os::unix::fs::symlink(g.path("existing"), g.path("symlink")).unwrap();
    fs::create_dir(g.path("d")).unwrap();
    std::os::unix::fs::symlink(g.path("d"), g.path("dlink")).unwrap();
    let cases: &[&[&str]] = &[
        &["--log", "x", "--pidfile", "x"],
        &["--log", "x", "--pidfile", "./x"],
        &["--pidfile", "d/../x", "--log", "x"],
        &["--pidfile", "p", "--child-pidfile", "p"],
        &["--stdout", "x", "--stderr", "x"],
        &["--stdout", "x", "--child-pidfile", "x"],
        &["--stdout", "existing", "--stderr", "hardlink"],
        &["--log", "symlink", "--pidfile", "existing"],
        &["--stdout", "d/new", "--stderr", "dlink/new"],
    ];
    let before = listing(dir);
    for args in cases {
        let out = g.run(detach().current_dir(dir).args(*args).args(["--", "touch", s(&g.path("ran"))]));
        assert_usage_error(&out, &format!("{args:?}"));
        assert!(out.stderr.contains("name the same file"), "{args:?}: {out:?}");
        assert_eq!(listing(dir), before, "{args:?}: files created");
    }
}

// 13. --restart-delay 0.

/// `--restart-delay 0` used to restart thousands of times a second: the first restart is
/// immediate, the next ones back off from 0.1 s. The delays are read from the log's restart
/// lines (what the policy computed), not timed.
#[test]
fn restart_delay_zero_backs_off_from_a_floor() {
    let g = Guard::new();
    let log = g.path("out.log");
    let args = ["--foreground", "--restart", "always", "--restart-delay", "0", "--restart-limit", "4"];
    let out = g.run(detach().args(args).args(["--log", s(&log), "--", "false"]));
    assert_eq!(out.code(), Some(1), "{out:?}");
    let text = read(&log);
    let delays: Vec<&str> =
        text.lines().filter_map(|l| l.split_once("; restart ")?.1.split_once(" in ")?.1.strip_suffix(" s")).collect();
    assert_eq!(delays, ["0.0", "0.1", "0.2", "0.4"], "{text}");
    assert!(text.contains("giving up after 4 restarts"), "{text}");
}

// 18. One line per usage error; --exec --restart never.

#[test]
fn every_usage_error_is_one_line_and_a_hint() {
    let g = Guard::new();
    let cases: &[&[&str]] = &[
        &[],
        &["--no-such-option", "--", "true"],
        &["--pidfile", "p.pid"],
        &["--umask", "9z", "--", "true"],
        &["--exec", "--foreground", "--", "true"],
        &["--log", "a", "--stdout", "b", "--", "true"],
        &["--restart", "sometimes", "--", "true"],
        &["--exec", "--restart", "always", "--", "true"],
        &["stop"],
        &["status", "--pidfile"],
        &["reopen", "--pidfile", "p.pid", "--bogus"],
    ];
    for args in cases {
        let out = g.run(detach().current_dir(g.dir.path()).args(*args));
        assert_usage_error(&out, &format!("{args:?}"));
    }
    let help = g.run(detach().arg("--help"));
    assert_eq!(help.code(), Some(0), "{help:?}");
    assert!(help.stderr.is_empty() && help.stdout.contains("--log"), "{help:?}");
}

#[test]
fn exec_with_the_explicit_default_restart_never_is_accepted() {
    let g = Guard::new();
    let marker = g.path("ran");
    let out = g.run(detach().args(["--exec", "--restart", "never", "--", "touch", s(&marker)]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(wait_until(|| marker.exists(), DEADLINE), "the command never ran");
}

// 15. What a failed start leaves behind.

/// Runs a start that must fail with `code`, and checks that it left no pidfile, no log it
/// created, and no process.
fn assert_fails_leaving_nothing(g: &Guard, args: &[&str], code: i32) {
    let before = listing(g.dir.path());
    let out = g.run(detach().current_dir(g.dir.path()).args(args));
    assert_eq!(out.code(), Some(code), "{args:?}: {out:?}");
    assert_eq!(listing(g.dir.path()), before, "{args:?} left files behind ({})", out.stderr);
    assert_nothing_running(&g.marker());
}

#[test]
fn a_failed_start_leaves_no_log_it_created_and_no_pidfile() {
    let g = Guard::new();
    let m = g.marker();
    let noexec = g.path("noexec");
    fs::write(&noexec, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&noexec, fs::Permissions::from_mode(0o644)).unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--log", "a.log", "--pidfile", "p.pid", "--child-pidfile", "c.pid", "--", "/no/such", &m], 127),
        (vec!["--log", "a.log", "--pidfile", "p.pid", "--", s(&noexec), &m], 126),
        (vec!["--foreground", "--stdout", "o.log", "--pidfile", "p.pid", "--", "/no/such", &m], 127),
        (vec!["--exec", "--log", "a.log", "--pidfile", "p.pid", "--", "/no/such", &m], 127),
        (
            vec![
                "--stdout",
                "o.log",
                "--stderr",
                "no/dir/e.log",
                "--pidfile",
                "p.pid",
                "--",
                "sh",
                "-c",
                "sleep 30",
                &m,
            ],
            73,
        ),
        (vec!["--log", "a.log", "--pidfile", "no/dir/p.pid", "--", "sh", "-c", "sleep 30", &m], 73),
        (vec!["--log", "a.log", "--chdir", "/no/such/dir", "--pidfile", "p.pid", "--", "sh", "-c", "sleep 30", &m], 71),
        (vec!["--log", "a.log", "--user", "no-such-user-x", "--", "sh", "-c", "sleep 30", &m], 67),
    ];
    for (args, code) in &cases {
        assert_fails_leaving_nothing(&g, args, *code);
    }
}

/// A log that already existed is never removed or truncated by a failed start.
#[test]
fn a_failed_start_keeps_a_log_that_already_existed() {
    let g = Guard::new();
    let log = g.path("old.log");
    fs::write(&log, "kept\n").unwrap();
    let empty = g.path("empty.log");
    fs::write(&empty, "").unwrap();
    for log in [&log, &empty] {
        let out = g.run(detach().args(["--log", s(log), "--", "/no/such", &g.marker()]));
        assert_eq!(out.code(), Some(127), "{out:?}");
    }
    assert_eq!(read(&log), "kept\n");
    assert!(empty.exists(), "an empty log that existed was removed");
}

/// A second detach on a running one's pidfile: 75, and its own new log is removed.
#[test]
fn already_running_leaves_no_log_it_created() {
    let g = Guard::new();
    let (daemon, _cmd) = start(&g, &["--log", s(&g.path("first.log"))], &["sh", "-c", "sleep 30", &g.marker()]);
    let second = g.path("second.log");
    let out = g.run(detach().args(["--log", s(&second), "--pidfile", s(&daemon.pidfile), "--", "true"]));
    assert_eq!(out.code(), Some(75), "{out:?}");
    assert!(!second.exists(), "the second start left its log");
    assert_eq!(wait_pid(&daemon.pidfile), daemon.sup, "the running daemon's pidfile changed");
}

/// `--exec --user` drops privileges before the exec: a failing exec used to leave the pidfile
/// (and the log), which the unprivileged process could no longer remove.
#[test]
fn exec_as_another_user_that_fails_leaves_no_pidfile() {
    if !crate::util::is_root("exec_as_another_user_that_fails_leaves_no_pidfile") {
        return;
    }
    let g = Guard::new();
    let m = g.marker();
    let args = ["--exec", "--user", "nobody", "--log", "a.log", "--pidfile", "p.pid", "--", "/no/such", &m];
    assert_fails_leaving_nothing(&g, &args, 127);
}

/// `Daemon::start` refuses a multi-threaded caller (71): the pidfile it had created is gone,
/// and the caller's directory and umask are back.
#[test]
fn library_start_that_fails_restores_the_callers_cwd_and_umask() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("lib.log"), g.pidfile("lib.pid"));
    let out = g.run(Command::new(example("library_start")).current_dir(g.dir.path()).args([
        s(&log),
        s(&pidfile),
        "0640",
        "--thread",
    ]));
    assert_eq!(out.code(), Some(71), "{out:?}");
    assert!(out.stderr.contains("threads"), "{out:?}");
    let cwd = fs::canonicalize(g.dir.path()).unwrap();
    assert!(out.stdout.contains(&format!("cwd={}\n", cwd.display())), "the caller's cwd changed: {out:?}");
    // The test's own process passes its umask on; the start set 077.
    let mask = unsafe_umask();
    assert!(out.stdout.contains(&format!("umask={mask:03o}\n")), "the caller's umask changed: {out:?}");
    assert!(!pidfile.exists(), "the pidfile was left behind");
    assert!(!log.exists(), "the log was left behind");
}

/// The umask of this process (set back at once).
fn unsafe_umask() -> u32 {
    // SAFETY: umask(2) cannot fail; the mask is restored on the next line.
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(mask) };
    mask
}

// 17. --foreground and the caller's fds.

/// A foreground detach started with extra fds (5, and 3 announced as a socket-activation fd)
/// passes none of them to the command, nor the LISTEN_* variables.
#[test]
fn foreground_command_inherits_no_fd_above_2() {
    let g = Guard::new();
    let child_pidfile = g.pidfile("c.pid");
    let extra = g.path("extra");
    fs::write(&extra, "").unwrap();
    let script = format!(
        "LISTEN_PID=$$ LISTEN_FDS=1 exec {} --foreground --child-pidfile {} --log {} -- sh -c 'sleep 30' {} 3<{} 5<{}",
        env!("CARGO_BIN_EXE_detach"),
        s(&child_pidfile),
        s(&g.path("out.log")),
        g.marker(),
        s(&extra),
        s(&extra),
    );
    let (mut child, _, _) = g.spawn(Command::new("sh").args(["-c", &script]));
    let cmd = wait_pid(&child_pidfile);
    g.track(cmd);
    let fds = proc_fds(cmd);
    let _ = child.kill();
    let _ = child.wait();
    assert!(fds.keys().all(|&fd| fd <= 2), "the command inherited fds: {fds:?}");
    let environ = fs::read(format!("/proc/{cmd}/environ")).unwrap_or_default();
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("LISTEN_FDS=") && !environ.contains("LISTEN_PID="), "{environ:?}");
}
