//! The library face: a Rust program daemonizing itself (examples/daemon.rs).

use std::process::Command;

use crate::util::{DEADLINE, Guard, alive, example, proc_fds, proc_stat, read, signal, wait_pid, wait_until};

#[test]
fn library_daemon_starts_logs_reopens_on_hup_and_removes_its_pidfile() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let out = g.run(Command::new(example("daemon")).arg(&log).arg(&pidfile));
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let pid = wait_pid(&pidfile);
    assert_ne!(pid, out.pid, "the daemon is not the process that was started");
    let stat = proc_stat(pid).expect("daemon running");
    assert_ne!(stat.session, pid, "the daemon must not be a session leader");
    assert_eq!(stat.tty_nr, 0, "the daemon has a controlling terminal");
    let fds = proc_fds(pid);
    assert_eq!(fds.get(&0).map(String::as_str), Some("/dev/null"));
    assert_eq!(fds.get(&1), Some(&log.display().to_string()));
    assert_eq!(fds.get(&2), Some(&log.display().to_string()));
    assert!(wait_until(|| read(&log).contains("stderr tick 3\n"), DEADLINE), "no ticks in {}", log.display());

    let rotated = g.path("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(pid, libc::SIGHUP);
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE), "nothing written to the reopened log");
    let old = read(&rotated);
    assert!(old.ends_with('\n'), "the rotated log ends mid-line: {:?}", &old[old.len().saturating_sub(40)..]);

    signal(pid, libc::SIGTERM);
    assert!(wait_until(|| !alive(pid) && !pidfile.exists(), DEADLINE), "daemon still running or pidfile left");
    assert!(read(&log).contains("stopping after"), "the daemon did not stop cleanly");
}

#[test]
fn library_daemon_reports_a_log_it_cannot_open_and_starts_nothing() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("no/such/dir/app.log"), g.pidfile("app.pid"));
    let out = g.run(Command::new(example("daemon")).arg(&log).arg(&pidfile));
    assert_eq!(out.code(), Some(73), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("cannot open log '{}': No such file or directory", log.display())),
        "{}",
        out.stderr
    );
    assert!(!pidfile.exists(), "a pidfile was left behind");
}

/// Issue 14: `start_deferred` keeps the caller waiting until `ready()`; `fail()` hands it the
/// error and its code; a report dropped unsent is a failure, never a success.
#[test]
fn library_start_deferred_returns_once_ready_or_with_the_reason() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = g.run(Command::new(example("deferred")).arg(&log).arg(&pidfile).arg(&addr));
    assert_eq!(out.code(), Some(0), "{out:?}");
    g.track(wait_pid(&pidfile));
    // Ready means listening: a connection works the moment the caller returns.
    let mut reply = String::new();
    let mut conn = std::net::TcpStream::connect(&addr).expect("the daemon listens when its caller returns");
    std::io::Read::read_to_string(&mut conn, &mut reply).unwrap();
    assert_eq!(reply, "hello\n");

    let (log2, pidfile2) = (g.path("b.log"), g.pidfile("b.pid"));
    let out = g.run(Command::new(example("deferred")).arg(&log2).arg(&pidfile2).arg(&addr));
    assert_eq!(out.code(), Some(71), "{out:?}");
    assert!(out.stderr.starts_with(&format!("deferred: cannot bind {addr}: Address already in use")), "{out:?}");

    let out = g.run(Command::new(example("deferred")).arg(&log2).arg(&pidfile2).arg(&addr).arg("--forget"));
    assert_eq!(out.code(), Some(71), "{out:?}");
    assert!(out.stderr.contains("the daemon never said it was ready"), "{out:?}");
}

/// From the reviews: `start()` closed every fd above 2 (then every one without close-on-exec),
/// so a `File` the program opened before it kept a number that the daemon then reused for its
/// pidfile; writing to that `File`, or dropping it, hit the pidfile (and its locks). It closes
/// none now unless asked (`unsafe close_inherited_fds`); the held file here has no
/// close-on-exec, as a `nix::unistd::pipe()` has not.
#[test]
fn library_start_keeps_the_programs_own_fds() {
    let g = Guard::new();
    let (log, pidfile, held) = (g.path("app.log"), g.pidfile("app.pid"), g.path("held.txt"));
    let out = g.run(Command::new(example("library_start")).arg(&log).arg(&pidfile).args(["0640", "--hold"]).arg(&held));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(wait_until(|| read(&held) == "still mine\n", DEADLINE), "held file: {:?}", read(&held));
    let pid = read(&pidfile);
    assert!(
        pid.is_empty() || pid.trim().parse::<i32>().is_ok(),
        "the pidfile was written through the held fd: {pid:?}"
    );
}
