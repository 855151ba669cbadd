//! Issue 14: knowing it started. `--start-seconds`, `--ready notify|line:|tcp:|unix:` and
//! `--ready-timeout`, with real servers (python3), and what the caller sees when it fails.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Guard, alive, detach, pids_with_arg, read, read_pid, recv_datagram, s, signal, wait_for_text, wait_pid,
    wait_until,
};

/// A python3 program, as one argv.
fn py(code: &str) -> Vec<String> {
    vec!["python3".into(), "-c".into(), code.into()]
}

/// Python that sends `messages` (each one datagram, `\n` for newlines) to $NOTIFY_SOCKET, with
/// `pause` seconds before each, then sleeps.
fn notifier(messages: &[&str], pause: f64) -> Vec<String> {
    let timed: Vec<(f64, &str)> = messages.iter().map(|m| (pause, *m)).collect();
    notifier_timed(&timed)
}

/// [`notifier`] with a pause of its own before each message.
fn notifier_timed(messages: &[(f64, &str)]) -> Vec<String> {
    let sends: String = messages
        .iter()
        .map(|(pause, m)| format!("time.sleep({pause}); s.sendto(b'{m}', os.environ['NOTIFY_SOCKET']); "))
        .collect();
    py(&format!(
        "import os, socket, time; print('up', flush=True); \
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); {sends}time.sleep(60)"
    ))
}

/// Asserts that nothing the test started is left: no process naming its temp dir, no pidfile.
fn assert_nothing_left(g: &Guard, pidfile: &Path) {
    let gone = wait_until(|| pids_with_arg(&g.marker()).is_empty(), DEADLINE);
    assert!(gone, "left running: {:?}", pids_with_arg(&g.marker()));
    assert!(!pidfile.exists(), "the pidfile was left behind");
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server under test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_command_that_exits_before_it_is_ready_fails_the_start_with_its_last_output() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("p.pid"));
    let script =
        format!("echo starting {}; echo 'config error: unknown key lisen' >&2; sleep 0.05; exit 3", g.marker());
    let out = g.run(
        detach()
            .args(["--log", s(&log), "--pidfile", s(&pidfile), "--ready", "line:^listening"])
            .args(["--", "sh", "-c", &script]),
    );
    assert_eq!(out.code(), Some(3), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    // "… 0.05 s after it started": the time is the machine's, the words are the contract.
    let head = lines[0].strip_prefix("detach: 'sh' exited with status 3 ").unwrap_or_default();
    assert!(head.ends_with(" s after it started, before it was ready"), "{out:?}");
    assert_eq!(
        lines[1..],
        ["detach: its last output:", &format!("  | starting {}", g.marker()), "  | config error: unknown key lisen"]
    );
    assert_nothing_left(&g, &pidfile);
    // The log keeps what the command wrote.
    assert!(read(&log).contains("config error"), "{:?}", read(&log));
}

#[test]
fn tcp_readiness_returns_only_once_the_server_listens() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("p.pid"));
    let port = free_port();
    let server = py(&format!(
        "import socket, time; time.sleep(1); s = socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', {port})); s.listen(); \
         print('listening', flush=True); time.sleep(60)"
    ));
    let began = Instant::now();
    let out = g.run(
        detach()
            .args(["--log", s(&log), "--pidfile", s(&pidfile), "--ready", &format!("tcp:{port}")])
            .arg("--")
            .args(&server),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    // The server cannot listen before its 1 s sleep: a lower bound, not a timing assertion.
    assert!(began.elapsed() >= Duration::from_secs(1), "detach returned before the server listened");
    let sup = wait_pid(&pidfile);
    g.track(sup);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), "the server is not running");
}

#[test]
fn unix_readiness_waits_for_the_socket() {
    let g = Guard::new();
    let sock = g.path("app.sock");
    let server = py(&format!(
        "import socket, time; time.sleep(0.3); s = socket.socket(socket.AF_UNIX); s.bind('{}'); s.listen(); \
         time.sleep(60)",
        s(&sock)
    ));
    let pidfile = g.pidfile("p.pid");
    let out = g.run(
        detach().args(["--pidfile", s(&pidfile), "--ready", &format!("unix:{}", s(&sock))]).arg("--").args(&server),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(sock.exists(), "detach returned before the socket was there");
    g.track(wait_pid(&pidfile));
}

#[test]
fn line_readiness_matches_a_line_that_still_goes_to_the_log() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("p.pid"));
    let script = "echo starting; sleep 0.3; echo 'listening on port 8080'; exec sleep 60";
    let out = g.run(
        detach()
            .args(["--log", s(&log), "--pidfile", s(&pidfile), "--ready", "line:listening on port [0-9]+"])
            .args(["--", "sh", "-c", script]),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    g.track(wait_pid(&pidfile));
    // Ready means the line was pumped: it is in the log when detach returns.
    assert!(read(&log).contains("listening on port 8080\n"), "{:?}", read(&log));
}

#[test]
fn notify_readiness_waits_for_ready_1_from_the_command() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("p.pid"));
    let cmd = notifier(&["STATUS=warming up", "READY=1"], 0.3);
    let out = g.run(detach().args(["--log", s(&log), "--pidfile", s(&pidfile), "--ready", "notify", "--"]).args(&cmd));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    g.track(sup);
    // The command's socket is detach's own, in a directory only its user can enter.
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    let cmd_pid: i32 = children.split_whitespace().next().expect("the command").parse().unwrap();
    let env = std::fs::read(format!("/proc/{cmd_pid}/environ")).unwrap();
    let socket = env.split(|&b| b == 0).find_map(|v| v.strip_prefix(b"NOTIFY_SOCKET=")).expect("NOTIFY_SOCKET set");
    let dir = Path::new(std::str::from_utf8(socket).unwrap()).parent().unwrap().to_owned();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "{}", dir.display());
    signal(sup, libc::SIGTERM);
    assert!(wait_until(|| !dir.exists(), DEADLINE), "the notify directory outlived detach");
}

#[test]
fn notify_timeout_shows_the_last_status_and_errno_fails_with_its_reason() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let cmd = notifier(&["STATUS=still loading the cache"], 0.1);
    let began = Instant::now();
    let out =
        g.run(detach().args(["--pidfile", s(&pidfile), "--ready", "notify", "--ready-timeout", "1", "--"]).args(&cmd));
    assert_eq!(out.code(), Some(124), "{out:?}");
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert!(out.stderr.starts_with("detach: 'python3' was not ready "), "{out:?}");
    assert!(out.stderr.contains(" s after it started (--ready-timeout); stopped\n"), "{out:?}");
    assert!(out.stderr.contains("detach: its last status: still loading the cache"), "{out:?}");
    assert!(out.stderr.contains("  | up"), "{out:?}");
    assert_nothing_left(&g, &pidfile);

    let cmd = notifier(&["STATUS=cannot open the database\\nERRNO=2"], 0.1);
    let out = g.run(detach().args(["--pidfile", s(&pidfile), "--ready", "notify", "--"]).args(&cmd));
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("reported that it failed: No such file or directory (os error 2)"), "{out:?}");
    assert!(out.stderr.contains("its last status: cannot open the database"), "{out:?}");
    assert_nothing_left(&g, &pidfile);
}

#[test]
fn extend_timeout_usec_gives_the_command_more_time() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    // EXTEND at once, READY at 2 s: past the 1.5 s timeout, within the extended 10 s.
    let cmd = notifier_timed(&[(0.0, "EXTEND_TIMEOUT_USEC=10000000"), (2.0, "READY=1")]);
    let out = g
        .run(detach().args(["--pidfile", s(&pidfile), "--ready", "notify", "--ready-timeout", "1.5", "--"]).args(&cmd));
    assert_eq!(out.code(), Some(0), "ready at 2 s, within the extended timeout: {out:?}");
    g.track(wait_pid(&pidfile));
}

#[test]
fn ready_timeout_stops_a_command_that_never_gets_ready_and_exits_124() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let script = format!("trap '' TERM; echo waiting {}; while :; do sleep 0.1; done", g.marker());
    let out = g.run(
        detach()
            .args(["--pidfile", s(&pidfile), "--ready", "line:never", "--ready-timeout", "1", "--kill-timeout", "0.5"])
            .args(["--", "sh", "-c", &script]),
    );
    assert_eq!(out.code(), Some(124), "{out:?}");
    assert!(out.stderr.contains("  | waiting"), "{out:?}");
    assert_nothing_left(&g, &pidfile);
}

#[test]
fn start_seconds_fails_a_command_that_dies_early_and_passes_one_that_lives() {
    let g = Guard::new();
    let pidfile = g.pidfile("p.pid");
    let out = g.run(detach().args([
        "--pidfile",
        s(&pidfile),
        "--start-seconds",
        "1",
        "--",
        "sh",
        "-c",
        "sleep 0.3; kill -USR1 $$",
    ]));
    assert_eq!(out.code(), Some(128 + libc::SIGUSR1), "the first process reports a death by signal as 128+S: {out:?}");
    assert!(out.stderr.starts_with("detach: 'sh' was killed by SIGUSR1 "), "{out:?}");
    assert!(out.stderr.contains(" s after it started, before it was ready"), "{out:?}");
    assert_nothing_left(&g, &pidfile);

    let began = Instant::now();
    let out = g.run(detach().args(["--pidfile", s(&pidfile), "--start-seconds", "1", "--", "sleep", "60"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(began.elapsed() >= Duration::from_secs(1), "returned before --start-seconds");
    let sup = wait_pid(&pidfile);
    g.track(sup);
    assert!(alive(sup));
}

/// Under systemd (Type=notify, --foreground), READY=1 reaches systemd only after the command's.
#[test]
fn foreground_sends_ready_to_systemd_only_once_the_command_is_ready() {
    let g = Guard::new();
    let systemd = g.path("systemd.sock");
    let listener = UnixDatagram::bind(&systemd).unwrap();
    listener.set_read_timeout(Some(DEADLINE)).unwrap();
    let marker = g.path("ready-sent");
    let cmd = py(&format!(
        "import os, socket, time; time.sleep(0.5); open('{}', 'w').close(); \
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
         s.sendto(b'STATUS=serving\\nREADY=1', os.environ['NOTIFY_SOCKET']); time.sleep(60)",
        s(&marker)
    ));
    let mut child = detach()
        .env("NOTIFY_SOCKET", &systemd)
        .args(["--foreground", "--ready", "notify", "--"])
        .args(&cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    g.track(child.id() as i32);
    let recv = |what: &str| recv_datagram(&listener).unwrap_or_else(|e| panic!("no {what} for systemd: {e}"));
    let first = recv("first message");
    let second = recv("second message");
    assert!(marker.exists(), "detach told systemd before the command was ready: {first:?}");
    let both = [first, second];
    assert!(both.contains(&"STATUS=serving".to_string()), "STATUS= not relayed: {both:?}");
    assert!(both.iter().any(|m| m.starts_with("READY=1\nMAINPID=")), "{both:?}");
    signal(child.id() as i32, libc::SIGTERM);
    let _ = child.wait();
}

#[test]
fn restart_waits_for_the_new_run_to_be_ready_and_later_runs_say_when_they_are() {
    let g = Guard::new();
    let (log, pidfile, child_pidfile) = (g.path("app.log"), g.pidfile("p.pid"), g.pidfile("c.pid"));
    let script = "sleep 0.3; echo ready now; exec sleep 60";
    let out = g.run(
        detach().args(["--log", s(&log), "--pidfile", s(&pidfile), "--child-pidfile", s(&child_pidfile)]).args([
            "--ready",
            "line:ready now",
            "--",
            "sh",
            "-c",
            script,
        ]),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    g.track(sup);
    let first = wait_pid(&child_pidfile);
    let began = Instant::now();
    let out = g.run(detach().args(["restart", "--pidfile", s(&pidfile)]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(began.elapsed() >= Duration::from_millis(300), "restart returned before the new run was ready");
    wait_for_text(&log, "detach: 'sh' is ready: a line matched 'ready now'\n");
    assert_eq!(read(&log).matches("ready now\n").count(), 2, "{:?}", read(&log));
    let second = read_pid(&child_pidfile).expect("the new run's pid");
    assert_ne!(first, second);
}

#[test]
fn bad_readiness_options_are_usage_errors() {
    let g = Guard::new();
    for args in [
        &["--ready", "bogus"][..],
        &["--ready", "line:("],
        &["--ready", "tcp:host.example:80"],
        &["--ready", "tcp:0"],
        &["--ready", "notify", "--notify-passthrough"],
        &["--exec", "--ready", "notify"],
        &["--exec", "--start-seconds", "1"],
        &["--start-seconds", "-1"],
        &["--ready-timeout", "1e19"],
        &["--ready", "notify", "--chroot", "/"],
    ] {
        let out = g.run(detach().args(args).args(["--", "true"]));
        assert_eq!(out.code(), Some(64), "{args:?}: {out:?}");
    }
}

// Regressions from the review of the readiness work.

/// A later run that was not ready in time is stopped; the KILL timer of that stop must not
/// reach the run after it (it did: run 3 got a SIGKILL meant for run 2), and a run that was
/// KILLed for not being ready must not make the next, clean, ending count as a failure.
#[test]
fn a_stop_for_not_being_ready_never_reaches_the_next_run_nor_its_ending() {
    let g = Guard::new();
    let counter = g.path("n");
    // Run 1: ready, then fails. Run 2: never ready; `stubborn` ignores TERM. Run 3: ready,
    // lives past the kill timeout of run 2's stop, and exits 0.
    for (name, run2) in [("dies", "sleep 60"), ("stubborn", "trap '' TERM; while :; do sleep 0.1; done")] {
        let _ = std::fs::remove_file(&counter);
        let log = g.path(&format!("{name}.log"));
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo run $n; \
             case $n in 1) echo READY; sleep 0.2; exit 1;; 2) {run2};; *) echo READY; sleep 2.5; echo run $n done; exit 0;; esac",
            c = s(&counter)
        );
        let out = g.run(
            detach()
                .args(["--foreground", "--log", s(&log), "--restart", "on-failure", "--restart-delay", "0"])
                .args(["--ready", "line:READY", "--ready-timeout", "1", "--kill-timeout", "2"])
                .args(["--", "sh", "-c", &script]),
        );
        let text = read(&log);
        assert_eq!(out.how(), "exit 0", "{name}: {out:?}\n{text}");
        assert!(text.contains("run 3 done\n"), "{name}: run 3 was cut short:\n{text}");
        assert!(!text.contains("run 4"), "{name}: a clean ending was restarted:\n{text}");
    }
}

/// Under systemd, a reopen (logrotate, ExecReload) while the command is not ready yet must not
/// send RELOADING=1/READY=1: READY=1 would make the unit active before the command is.
#[test]
fn a_reopen_before_the_command_is_ready_tells_systemd_nothing() {
    let g = Guard::new();
    let systemd = g.path("systemd.sock");
    let listener = UnixDatagram::bind(&systemd).unwrap();
    listener.set_read_timeout(Some(DEADLINE)).unwrap();
    let (log, ready) = (g.path("app.log"), g.path("ready"));
    let script = format!("echo starting; sleep 1; touch {}; echo READY; exec sleep 60", s(&ready));
    let mut child = detach()
        .env("NOTIFY_SOCKET", &systemd)
        .args(["--foreground", "--log", s(&log), "--ready", "line:READY", "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    g.track(pid);
    wait_for_text(&log, "starting\n");
    signal(pid, libc::SIGHUP);
    let first = recv_datagram(&listener).unwrap_or_else(|e| {
        let status = child.try_wait();
        panic!("no message for systemd ({e}); detach: {status:?}; log: {:?}", read(&log))
    });
    assert!(ready.exists(), "systemd heard {first:?} before the command was ready");
    assert!(first.starts_with("READY=1\nMAINPID="), "{first:?}");
    signal(pid, libc::SIGTERM);
    let _ = child.wait();
}

/// `detach restart` while the first run's start is not settled (its caller still waits) is
/// refused, and leaves the start alone: it used to end detach as a failed start.
#[test]
fn restart_before_the_first_run_is_ready_is_refused_and_harmless() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("p.pid"));
    let script = "echo starting; sleep 1.5; echo READY; exec sleep 60";
    let mut child = detach()
        .args(["--foreground", "--log", s(&log), "--pidfile", s(&pidfile), "--ready", "line:READY"])
        .args(["--", "sh", "-c", script])
        .spawn()
        .unwrap();
    g.track(child.id() as i32);
    wait_for_text(&log, "starting\n");
    wait_pid(&pidfile);
    let out = g.run(detach().args(["restart", "--pidfile", s(&pidfile)]));
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert!(out.stderr.contains("Device or resource busy"), "{out:?}");
    wait_for_text(&log, "READY\n");
    assert!(child.try_wait().unwrap().is_none(), "detach ended: {:?}", read(&log));
    signal(child.id() as i32, libc::SIGTERM);
    let _ = child.wait();
}

/// With --foreground, fd 2 is the log once the command runs: a failed start's report must
/// still reach detach's own stderr (the journal), and the log gets one line.
#[test]
fn foreground_failed_start_is_reported_on_the_callers_stderr_not_only_in_the_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let out = g.run(detach().args([
        "--foreground",
        "--log",
        s(&log),
        "--ready",
        "line:READY",
        "--",
        "sh",
        "-c",
        "echo boom; exit 3",
    ]));
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stderr.starts_with("detach: 'sh' exited with status 3"), "{out:?}");
    assert!(out.stderr.contains("  | boom"), "{out:?}");
    assert_eq!(read(&log).matches("exited with status 3").count(), 1, "{:?}", read(&log));
}

/// Found trying edge values: a command that prints its ready line and exits at once was called
/// "exited before it was ready" (the line was pumped, but the gate not looked at before the
/// end), and `--start-seconds 0` failed every command that ends at once. Both started.
#[test]
fn ready_by_its_last_words_or_with_zero_start_seconds_is_started() {
    let g = Guard::new();
    let log = g.path("app.log");
    let out = g.run(detach().args(["--log", s(&log), "--ready", "line:ready", "--", "sh", "-c", "echo ready; exit 0"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let out = g.run(detach().args(["--foreground", "--start-seconds", "0", "--", "true"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    // Not ready and ended with 0: a failure all the same, with status 1.
    let out = g.run(detach().args(["--log", s(&log), "--ready", "line:never", "--", "sh", "-c", "echo x; exit 0"]));
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("exited with status 0"), "{out:?}");
}
