//! The guarantees of issue 5: the control verbs (status, reopen, stop) judge a daemon by the
//! lock on its pidfile and never signal a process that merely took its pid over; sd_notify
//! messages reach a real datagram socket at the right moments; the shipped logrotate example
//! rotates a running daemon's log with the real logrotate, losing nothing; the shipped units
//! pass `systemd-analyze verify`.

use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::util::{
    DEADLINE, Guard, Out, PY_WRITER, TICKER, alive, assert_consecutive, assert_files_hold, detach, how, pids_with_arg,
    poll_fast, read, s, signal, size, start, ticks, wait_child, wait_for_text, wait_pid, wait_until, writer_line,
};

/// `detach VERB --pidfile P EXTRA...`, run to completion.
fn verb(g: &Guard, verb: &str, pidfile: &Path, extra: &[&str]) -> Out {
    g.run(detach().arg(verb).arg("--pidfile").arg(pidfile).args(extra))
}

/// A live process unrelated to any daemon: `sleep 30`, started by the test (tracked).
fn bystander(g: &Guard) -> Child {
    let (child, _, _) = g.spawn(Command::new("sleep").arg("30"));
    child
}

/// Asserts that the test's own `sleep` was not signalled (a signalled sleep dies).
fn assert_untouched(child: &mut Child, what: &str) {
    assert!(child.try_wait().expect("try_wait").is_none(), "{what} killed the unrelated process {}", child.id());
    assert!(alive(child.id() as i32), "{what}: the unrelated process {} is not alive", child.id());
}

/// A pidfile nobody locks, naming `pid`.
fn unlocked_pidfile(g: &Guard, pid: impl std::fmt::Display) -> PathBuf {
    let path = g.path("stale.pid");
    fs::write(&path, format!("{pid}\n")).unwrap();
    path
}

/// A command that ignores TERM (so does every child it starts: SIG_IGN survives exec), says
/// "ready" once the trap is set, and sleeps in a loop. `$0` is the temp dir, as a marker.
const IGNORES_TERM: &str = "trap '' TERM; echo ready; while :; do sleep 0.1; done";

// 1. status

#[test]
fn status_of_a_running_daemon_prints_pid_command_and_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (d, _) = start(&g, &["--log", s(&log)], &["sh", "-c", "echo started; exec sleep 30"]);
    wait_for_text(&log, "started");
    let out = verb(&g, "status", &d.pidfile, &[]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let head = format!("running (pid {}), up ", d.sup);
    assert!(lines.first().is_some_and(|l| l.starts_with(&head)), "expected {head:?}...: {out:?}");
    let command = lines.iter().find_map(|l| l.strip_prefix("command: ")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(command.contains("exec sleep 30"), "command line: {command:?}");
    let canonical = fs::canonicalize(&log).unwrap();
    let stdout_line = format!("stdout: {}", canonical.display());
    assert!(lines.contains(&stdout_line.as_str()), "expected {stdout_line:?}: {out:?}");
}

#[test]
fn status_of_a_pidfile_naming_a_dead_pid_is_stale() {
    let g = Guard::new();
    let pidfile = unlocked_pidfile(&g, 999_999);
    let out = verb(&g, "status", &pidfile, &[]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stdout.contains("stale pidfile"), "{out:?}");
    assert!(!out.stdout.contains("running (pid"), "{out:?}");
}

#[test]
fn status_of_an_unlocked_pidfile_naming_a_live_process_is_stale_not_running() {
    let g = Guard::new();
    // The pid of the test itself: alive, and certainly no daemon of that pidfile.
    let pidfile = unlocked_pidfile(&g, std::process::id());
    let out = verb(&g, "status", &pidfile, &[]);
    assert_eq!(out.code(), Some(1), "a reused pid was taken for the daemon: {out:?}");
    assert!(out.stdout.contains("stale pidfile"), "{out:?}");
    assert!(!out.stdout.contains("running (pid"), "{out:?}");
}

#[test]
fn status_without_a_pidfile_is_not_running() {
    let g = Guard::new();
    let out = verb(&g, "status", &g.path("none.pid"), &[]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stdout.contains("not running"), "{out:?}");
}

// 2. reopen

#[test]
fn reopen_makes_the_daemon_write_to_a_new_log() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let (d, cmd) = start(&g, &["--log", s(&log), "--no-watch"], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, &old).unwrap();
    let out = verb(&g, "reopen", &d.pidfile, &[]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // --no-watch: only the signal can have made the supervisor create the file again.
    let more = wait_until(|| ticks(&read(&log)).len() >= 3, DEADLINE);
    assert!(more, "no line reached the new {} after reopen: {:?}", log.display(), read(&log));
    assert_consecutive(&[&read(&old), &read(&log)]);
    assert!(alive(d.sup) && alive(cmd), "the reopen signal killed the daemon");
}

#[test]
fn reopen_with_another_signal_sends_that_signal() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let (d, cmd) = start(&g, &["--log", s(&log), "--no-watch", "--reopen-signal", "USR1"], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, &old).unwrap();
    let out = verb(&g, "reopen", &d.pidfile, &["--signal", "USR1"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    wait_for_text(&log, "tick");
    assert!(alive(d.sup) && alive(cmd), "the reopen signal killed the daemon");
}

#[test]
fn reopen_when_not_running_exits_7() {
    let g = Guard::new();
    let out = verb(&g, "reopen", &g.path("none.pid"), &[]);
    assert_eq!(out.code(), Some(7), "no pidfile: {out:?}");
    let out = verb(&g, "reopen", &unlocked_pidfile(&g, 999_999), &[]);
    assert_eq!(out.code(), Some(7), "stale pidfile: {out:?}");
}

#[test]
fn reopen_never_signals_a_process_that_reused_the_pid() {
    let g = Guard::new();
    let mut sleep = bystander(&g);
    let pidfile = unlocked_pidfile(&g, sleep.id());
    for sig in ["HUP", "USR1", "USR2"] {
        let out = verb(&g, "reopen", &pidfile, &["--signal", sig]);
        assert_untouched(&mut sleep, &format!("reopen --signal {sig}"));
        assert_eq!(out.code(), Some(7), "--signal {sig}: {out:?}");
    }
    // TERM is no reopen signal: refused before anything is sent.
    let out = verb(&g, "reopen", &pidfile, &["--signal", "TERM"]);
    assert_untouched(&mut sleep, "reopen --signal TERM");
    assert_ne!(out.code(), Some(0), "{out:?}");
}

// 3. stop

#[test]
fn stop_terminates_the_daemon_and_removes_its_pidfile() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (d, cmd) = start(&g, &["--log", s(&log)], &["sh", "-c", "echo started; exec sleep 30"]);
    wait_for_text(&log, "started");
    let out = verb(&g, "stop", &d.pidfile, &["--timeout", "5"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(!d.pidfile.exists(), "the pidfile is left: {out:?}");
    assert!(!alive(d.sup), "the supervisor {} is alive after stop", d.sup);
    assert!(!alive(cmd), "the command {cmd} is alive after stop");
    assert!(!out.stdout.contains("killed"), "a TERM-able daemon needed a KILL: {out:?}");
    let status = verb(&g, "status", &d.pidfile, &[]);
    assert_eq!(status.code(), Some(3), "{status:?}");
}

#[test]
fn stop_of_a_command_ignoring_term_relies_on_the_supervisors_kill_timeout() {
    let g = Guard::new();
    let log = g.path("app.log");
    let marker = g.marker();
    let (d, cmd) = start(&g, &["--log", s(&log), "--kill-timeout", "0.3"], &["sh", "-c", IGNORES_TERM, &marker]);
    wait_for_text(&log, "ready");
    let out = verb(&g, "stop", &d.pidfile, &["--timeout", "8"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // stop says "killed" only when it had to KILL itself: the supervisor's own escalation
    // (0.3 s) must have ended the command long before stop's 8 s.
    assert!(!out.stdout.contains("killed"), "stop had to KILL; --kill-timeout did not work: {out:?}");
    assert!(!d.pidfile.exists(), "the pidfile is left: {out:?}");
    assert!(!alive(d.sup) && !alive(cmd), "left alive: supervisor {} command {cmd}", d.sup);
}

#[test]
fn stop_kills_a_supervisor_that_outlives_the_timeout_with_its_process_group() {
    let g = Guard::new();
    let log = g.path("app.log");
    let marker = g.marker();
    // A grandchild in the command's process group, which ignores TERM as well.
    let script = "trap '' TERM; sleep 1000 & echo \"grandchild $!\"; echo ready; while :; do sleep 0.1; done";
    let (d, cmd) = start(&g, &["--log", s(&log), "--kill-timeout", "60"], &["sh", "-c", script, &marker]);
    wait_for_text(&log, "ready");
    let grandchild: i32 = read(&log)
        .lines()
        .find_map(|l| l.strip_prefix("grandchild ")?.parse().ok())
        .unwrap_or_else(|| panic!("no grandchild pid in {:?}", read(&log)));
    g.track(grandchild);
    assert!(alive(grandchild));
    let out = verb(&g, "stop", &d.pidfile, &["--timeout", "0.5"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains(&format!("killed (pid {})", d.sup)), "{out:?}");
    assert!(!d.pidfile.exists(), "the stale pidfile is left: {out:?}");
    for (what, pid) in [("supervisor", d.sup), ("command", cmd), ("grandchild", grandchild)] {
        let gone = wait_until(|| !alive(pid), DEADLINE);
        assert!(gone, "the {what} (pid {pid}) survived stop: {out:?}");
    }
    let left = pids_with_arg(&marker);
    assert!(wait_until(|| pids_with_arg(&marker).is_empty(), DEADLINE), "processes left: {left:?}");
}

#[test]
fn stop_when_not_running_exits_0_and_removes_a_stale_pidfile() {
    let g = Guard::new();
    let out = verb(&g, "stop", &g.path("none.pid"), &[]);
    assert_eq!(out.code(), Some(0), "no pidfile: {out:?}");
    let stale = unlocked_pidfile(&g, 999_999);
    let out = verb(&g, "stop", &stale, &[]);
    assert_eq!(out.code(), Some(0), "stale pidfile: {out:?}");
    assert!(!stale.exists(), "the stale pidfile is left");
}

#[test]
fn stop_never_signals_a_process_that_reused_the_pid() {
    let g = Guard::new();
    let mut sleep = bystander(&g);
    let pidfile = unlocked_pidfile(&g, sleep.id());
    let out = verb(&g, "stop", &pidfile, &["--timeout", "0.5"]);
    assert_untouched(&mut sleep, "stop");
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(!out.stdout.contains("killed"), "{out:?}");
}

// 4. A command named like a verb.

#[test]
fn a_command_named_like_a_verb_runs_after_double_dash() {
    let g = Guard::new();
    for name in ["status", "reopen", "stop"] {
        let out = g.run(detach().current_dir(g.dir.path()).args(["--foreground", "--", name]));
        assert_eq!(out.code(), Some(127), "{name}: {out:?}");
        assert!(out.stderr.contains(&format!("cannot execute '{name}'")), "{name}: {out:?}");
    }
}

// 5. sd_notify

/// A socket standing in for systemd's notify socket.
struct NotifySocket {
    socket: UnixDatagram,
    /// The value of NOTIFY_SOCKET.
    env: String,
}

impl NotifySocket {
    fn path(g: &Guard) -> NotifySocket {
        let path = g.path("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, env: s(&path).to_string() }
    }

    fn abstract_name() -> NotifySocket {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("detach-test-{}-{nanos}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
        NotifySocket { socket, env: format!("@{name}") }
    }

    /// The next message; panics after DEADLINE.
    fn recv(&self, waiting_for: &str) -> String {
        self.socket.set_nonblocking(false).unwrap();
        self.socket.set_read_timeout(Some(DEADLINE)).unwrap();
        crate::util::recv_datagram(&self.socket)
            .unwrap_or_else(|e| panic!("no notify message while waiting for {waiting_for}: {e}"))
    }

    /// Every message already queued.
    fn drain(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut all = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            all.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        all
    }
}

fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

const SHOW_NOTIFY_SOCKET: &str = "echo \"ns=[$NOTIFY_SOCKET]\"; exec sleep 30";

/// `detach --foreground --log L -- sh -c SHOW_NOTIFY_SOCKET`: READY with MAINPID, RELOADING
/// and READY around a HUP, STOPPING on TERM; the command never sees NOTIFY_SOCKET.
fn notify_lifecycle(g: &Guard, sock: &NotifySocket) {
    let log = g.path("app.log");
    let (mut child, _, err) = g.spawn(
        detach()
            .env("NOTIFY_SOCKET", &sock.env)
            .args(["--foreground", "--log", s(&log), "--", "sh", "-c"])
            .arg(SHOW_NOTIFY_SOCKET),
    );
    let pid = child.id() as i32;
    let ready = sock.recv("READY=1");
    assert_eq!(ready, format!("READY=1\nMAINPID={pid}"), "stderr: {}", read(&err));
    wait_for_text(&log, "ns=[");
    assert!(read(&log).contains("ns=[]\n"), "the command saw NOTIFY_SOCKET: {:?}", read(&log));

    // HUP: RELOADING=1 with the monotonic time of the reload, then READY=1.
    fs::rename(&log, g.path("app.log.1")).unwrap();
    let before = monotonic_usec();
    signal(pid, libc::SIGHUP);
    let reloading = sock.recv("RELOADING=1");
    let after = monotonic_usec();
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("expected RELOADING=1 and MONOTONIC_USEC: {reloading:?}"));
    assert!(before <= usec && usec <= after, "MONOTONIC_USEC={usec} is not between {before} and {after}");
    assert_eq!(sock.recv("READY=1 after the reload"), "READY=1");
    assert!(wait_until(|| log.exists(), DEADLINE), "the log was not reopened on HUP");

    // TERM: STOPPING=1, then detach exits with the command's status.
    signal(pid, libc::SIGTERM);
    assert_eq!(sock.recv("STOPPING=1"), "STOPPING=1");
    let status = wait_child(&mut child, || format!("detach (pid {pid}) did not exit"));
    assert_eq!(how(&status), "killed by 15", "stderr: {}", read(&err));
    let rest = sock.drain();
    assert!(rest.is_empty(), "messages after STOPPING=1: {rest:?}");
}

#[test]
fn notify_ready_reloading_stopping_on_a_path_socket() {
    let g = Guard::new();
    let sock = NotifySocket::path(&g);
    notify_lifecycle(&g, &sock);
}

#[test]
fn notify_ready_reloading_stopping_on_an_abstract_socket() {
    let g = Guard::new();
    let sock = NotifySocket::abstract_name();
    notify_lifecycle(&g, &sock);
}

#[test]
fn notify_sends_no_ready_when_the_command_cannot_be_executed() {
    let g = Guard::new();
    let sock = NotifySocket::path(&g);
    let missing = g.path("no-such-program");
    let out = g.run(
        detach()
            .env("NOTIFY_SOCKET", &sock.env)
            .args(["--foreground", "--log", s(&g.path("app.log")), "--"])
            .arg(&missing),
    );
    assert_eq!(out.code(), Some(127), "{out:?}");
    assert!(out.stderr.contains("cannot execute"), "{out:?}");
    let messages = sock.drain();
    assert!(!messages.iter().any(|m| m.contains("READY=1")), "READY=1 for a command never exec'd: {messages:?}");
}

/// The command of the passthrough test: shows NOTIFY_SOCKET and sends its own message to it.
const NOTIFY_ITSELF: &str = r#"
import os, socket
ns = os.environ.get("NOTIFY_SOCKET", "")
print("ns=[%s]" % ns, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=from the command", ns)
"#;

#[test]
fn notify_passthrough_leaves_the_notifying_to_the_command() {
    let g = Guard::new();
    let sock = NotifySocket::path(&g);
    let log = g.path("app.log");
    let out = g.run(detach().env("NOTIFY_SOCKET", &sock.env).args([
        "--foreground",
        "--notify-passthrough",
        "--log",
        s(&log),
        "--",
        "python3",
        "-c",
        NOTIFY_ITSELF,
    ]));
    assert_eq!(out.code(), Some(0), "{out:?} log: {:?}", read(&log));
    assert!(
        read(&log).contains(&format!("ns=[{}]\n", sock.env)),
        "the command did not see NOTIFY_SOCKET: {:?}",
        read(&log)
    );
    let messages = sock.drain();
    assert_eq!(messages, ["STATUS=from the command"], "detach notified despite --notify-passthrough");
}

// 6. The shipped logrotate example, with the real logrotate.

#[test]
fn shipped_logrotate_example_rotates_a_running_daemon_losing_nothing() {
    const ROTATIONS: u32 = 10;
    const WIDTH: usize = 60;
    let g = Guard::new();
    let log = g.path("app.log");
    let pidfile = g.pidfile("p.pid");
    let (stop, count) = (g.path("stop"), g.path("count"));
    let example = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/logrotate/example"));
    for needle in ["/var/log/example.log", "/run/example.pid", "/usr/local/bin/detach", "create 0640 root adm"] {
        assert!(example.contains(needle), "the example no longer contains {needle:?}:\n{example}");
    }
    let conf_text = example
        .replace("/var/log/example.log", s(&log))
        .replace("/run/example.pid", s(&pidfile))
        .replace("/usr/local/bin/detach", env!("CARGO_BIN_EXE_detach"))
        .replace("create 0640 root adm", "create 0640");
    let conf = g.path("logrotate.conf");
    let state = g.path("logrotate.state");
    fs::write(&conf, conf_text).unwrap();

    let width = WIDTH.to_string();
    let argv = ["python3", "-c", PY_WRITER, "20000", &width, s(&stop), s(&count)];
    let out = g.run(detach().args(["--log", s(&log), "--pidfile", s(&pidfile), "--no-watch", "--"]).args(argv));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let sup = wait_pid(&pidfile);
    g.track(sup);

    for k in 1..=ROTATIONS {
        // notifempty: the log must hold lines; a new log holds lines only once reopened.
        assert!(poll_fast(|| size(&log) > 0), "no line reached {} before rotation {k}", log.display());
        let out = Command::new("/usr/sbin/logrotate").arg("-f").arg("-s").arg(&state).arg(&conf).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "logrotate, rotation {k}: {out:?}");
        assert!(g.path(&format!("app.log.{k}")).exists(), "rotation {k} made no app.log.{k}");
    }
    assert!(poll_fast(|| size(&log) > 0), "no line reached {} after the last rotation", log.display());
    fs::write(&stop, "").unwrap();
    assert!(wait_until(|| !pidfile.exists(), DEADLINE), "the daemon (pid {sup}) never exited");
    let written: u64 = read(&count).parse().expect("the writer's line count");

    let names: Vec<_> = fs::read_dir(g.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!g.path(&format!("app.log.{}", ROTATIONS + 1)).exists(), "more rotated files than rotations: {names:?}");
    let mut files: Vec<PathBuf> = (1..=ROTATIONS).rev().map(|k| g.path(&format!("app.log.{k}"))).collect();
    files.push(log);
    println!("{written} lines in {} files", files.len());
    for file in &files {
        assert!(size(file) > 0, "{} is empty: a reopen did not take effect", file.display());
    }
    assert_files_hold(&files, (0..written).map(|i| writer_line(i, WIDTH)));
}

// 7. The shipped units.

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("systemd-analyze").is_file()));
    if !found {
        println!("SKIP: systemd-analyze not installed");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/verify.sh");
    let out = Command::new("bash").arg(&script).arg(env!("CARGO_BIN_EXE_detach")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{} failed: {stdout}{}", script.display(), String::from_utf8_lossy(&out.stderr));
    let units = fs::read_dir(script.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".service"))
        .count();
    assert!(units >= 2, "fewer units than expected in systemd/");
    assert_eq!(stdout.matches("ok: systemd/").count(), units + 1, "not every unit was verified: {stdout}");
}
