//! Issue 12: the shipped units under a real systemd. The test boots the host's systemd (252 on
//! Debian 12) as PID 1 in private namespaces, on a copy-on-write view of the host's root
//! (tests/real-systemd/boot.sh), installs the units of systemd/ in it with their command
//! swapped for a ticking shell loop and /usr/local/bin/detach for the binary under test, and
//! drives them with `systemctl` through `nsenter`: start, reload after a `mv` of the log,
//! restart, stop; a command that does not exist; READY=1 under Type=notify.
//!
//! One systemd serves every check, in order (a boot takes about half a second, a check a few
//! hundred ms). It skips only where it cannot run: not root, no cgroup2 mount, no unshare;
//! with CI=true it fails instead. Run it alone with `cargo test --test it real_systemd`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::util::{DEADLINE, Guard, Out, TICKER, alive, read, read_pid, s, size, ticks, wait_child, wait_until};

/// The shipped units, as installed in the booted system.
const FORKING: &str = "detach-example-forking.service";
const SIMPLE: &str = "detach-example-simple.service";
const NOTIFY: &str = "detach-example-notify.service";
/// The notify unit with `--ready notify`, its command ready after 2 s.
const READY_UNIT: &str = "detach-ready-notify.service";

/// Paths the shipped units name, inside the booted system.
const PIDFILE: &str = "/run/example.pid";
const LOG: &str = "/var/log/example.log";

/// Inside the booted system: where the share directory is bound, and what the test put there.
const DETACH: &str = "/share/detach";
const TICKER_PATH: &str = "/share/ticker";
const NO_SUCH: &str = "/no/such/command";

/// The booted system's default unit: sysinit.target, which brings journald up, and nothing else.
const TARGET: &str = "[Unit]
Description=detach's real-systemd test
Requires=sysinit.target
After=sysinit.target
";

#[test]
fn shipped_units_under_a_real_systemd() {
    let Some(cgroup2) = can_run() else { return };
    let g = Guard::new();
    let sys = System::boot(&g, &cgroup2);
    for unit in [FORKING, SIMPLE, NOTIFY] {
        remove_log(&sys);
        let main = if unit == NOTIFY { start_on_ready(&sys) } else { start(&sys, unit) };
        reload(&sys, unit);
        let main = restart(&sys, unit, main);
        stop(&sys, unit, main);
    }
    for unit in [FORKING, NOTIFY] {
        start_fails(&sys, &no_such(unit));
    }
    start_waits_for_readiness(&sys);
    sys.poweroff();
}

// The checks, one step each, in the order the test runs them.

/// Each unit starts with no log: the units share its path.
fn remove_log(sys: &System) {
    match fs::remove_file(sys.file(LOG)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("rm {LOG}: {e}"),
        _ => {}
    }
}

/// `systemctl start` succeeds, the unit is active, `MainPID` is the pid in the pidfile, and the
/// command's lines reach the log. Returns the main pid (inside the booted system).
fn start(sys: &System, unit: &str) -> i32 {
    let out = sys.systemctl(&["start", unit]);
    assert_eq!(out.code(), Some(0), "systemctl start {unit}: {out:?}\n{}", sys.explain(unit));
    let state = sys.show(unit, &["ActiveState", "MainPID"]);
    assert_eq!(state["ActiveState"], "active", "{unit} after start\n{}", sys.explain(unit));
    let main: i32 = state["MainPID"].parse().unwrap();
    assert!(main > 0, "{unit} has no MainPID\n{}", sys.explain(unit));
    let pidfile = read_pid(&sys.file(PIDFILE));
    assert_eq!(pidfile, Some(main), "{unit}: MainPID {main}, but {PIDFILE} holds {pidfile:?}\n{}", sys.explain(unit));
    let log = sys.file(LOG);
    let ticking = wait_until(|| ticks(&read(&log)).len() >= 2, DEADLINE);
    assert!(ticking, "{unit}: no ticks in {LOG}: {:?}\n{}", read(&log), sys.explain(unit));
    main
}

/// After a `mv` of the log, `systemctl reload` (ExecReload=detach reopen --wait) returns only
/// once the supervisor writes to a new file at the log's path: the old file does not grow after
/// that, the new one receives lines, and no line is lost or doubled between the two.
fn reload(sys: &System, unit: &str) {
    let (log, old) = (sys.file(LOG), sys.file(&format!("{LOG}.1")));
    fs::rename(&log, &old).unwrap();
    let out = sys.systemctl(&["reload", unit]);
    assert_eq!(out.code(), Some(0), "systemctl reload {unit}: {out:?}\n{}", sys.explain(unit));
    let old_size = size(&old);
    assert!(log.exists(), "{unit}: systemctl reload returned before {LOG} was reopened\n{}", sys.explain(unit));
    let more = wait_until(|| ticks(&read(&log)).len() >= 3, DEADLINE);
    assert!(more, "{unit}: no lines reached the new {LOG} after reload: {:?}\n{}", read(&log), sys.explain(unit));
    assert_eq!(size(&old), old_size, "{unit}: the old log grew after systemctl reload returned\n{}", sys.explain(unit));
    let all: Vec<u64> = ticks(&read(&old)).into_iter().chain(ticks(&read(&log))).collect();
    let consecutive = all.windows(2).all(|pair| pair[1] == pair[0] + 1);
    assert!(consecutive, "{unit}: ticks lost or doubled by the reload: {all:?}\n{}", sys.explain(unit));
    fs::remove_file(&old).unwrap();
}

/// `systemctl restart` succeeds with a new main pid, in the pidfile, and the new run's lines
/// reach the log. Returns the new main pid.
fn restart(sys: &System, unit: &str, before: i32) -> i32 {
    let log = sys.file(LOG);
    let offset = size(&log) as usize;
    let out = sys.systemctl(&["restart", unit]);
    assert_eq!(out.code(), Some(0), "systemctl restart {unit}: {out:?}\n{}", sys.explain(unit));
    let state = sys.show(unit, &["ActiveState", "MainPID"]);
    assert_eq!(state["ActiveState"], "active", "{unit} after restart\n{}", sys.explain(unit));
    let main: i32 = state["MainPID"].parse().unwrap();
    assert!(main > 0 && main != before, "{unit}: MainPID {main} after restart, {before} before\n{}", sys.explain(unit));
    assert_eq!(read_pid(&sys.file(PIDFILE)), Some(main), "{unit}: the pidfile after restart\n{}", sys.explain(unit));
    let new_run = || ticks(read(&log).get(offset..).unwrap_or("")).contains(&1);
    assert!(
        wait_until(new_run, DEADLINE),
        "{unit}: the restarted command's lines never reached {LOG}\n{}",
        sys.explain(unit)
    );
    main
}

/// `systemctl stop` ends every process of the unit without a SIGKILL from systemd, removes
/// the pidfile, and leaves the unit inactive, not failed: systemd counts detach's end as clean.
fn stop(sys: &System, unit: &str, main: i32) {
    let pids = sys.unit_pids(unit);
    assert!(
        pids.len() >= 2,
        "{unit}: expected detach and its command in the unit's cgroup: {pids:?}\n{}",
        sys.explain(unit)
    );
    // systemd unloads a unit that stopped cleanly at once (a failed one stays loaded), and
    // `systemctl show` of an unloaded unit gives defaults: how the main process ended is read
    // from systemd's debug log instead, which says it for clean and failed endings alike.
    let out = sys.systemctl(&["log-level", "debug"]);
    assert_eq!(out.code(), Some(0), "systemctl log-level debug: {out:?}");
    let out = sys.systemctl(&["stop", unit]);
    assert_eq!(out.code(), Some(0), "systemctl stop {unit}: {out:?}\n{}", sys.explain(unit));
    let out = sys.systemctl(&["log-level", "info"]);
    assert_eq!(out.code(), Some(0), "systemctl log-level info: {out:?}");
    let state = sys.show(unit, &["ActiveState"]);
    assert_eq!(state["ActiveState"], "inactive", "{unit} after stop\n{}", sys.explain(unit));
    let journal = sys.journal(unit);
    let last_stop = journal.rfind("Stopping ").map_or("", |i| &journal[i..]);
    let ended = format!("{unit}: after stop:\n{last_stop}\n{}", sys.explain(unit));
    let exited = |how: &str| last_stop.contains(&format!("Main process exited, code={how}"));
    assert!(exited("killed, status=15/TERM") || exited("exited, status=0/SUCCESS"), "{ended}");
    assert!(last_stop.contains("Deactivated successfully"), "{ended}");
    assert!(!last_stop.contains("Failed with result"), "{ended}");
    assert!(
        last_stop.contains(&format!("Child {main} belongs to {unit}")),
        "the main pid's end is not the one seen: {ended}"
    );
    let left: Vec<i32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
    assert!(left.is_empty(), "{unit}: processes left after stop: {left:?}\n{}", sys.explain(unit));
    assert!(!sys.file(PIDFILE).exists(), "{unit}: {PIDFILE} is left after stop\n{}", sys.explain(unit));
    let journal = sys.journal(unit);
    assert!(!journal.contains("SIGKILL"), "{unit}: systemd had to SIGKILL\n{}", sys.explain(unit));
}

/// [`start`] under Type=notify, which turns the unit active on detach's READY=1, sent from the
/// main pid once the command was exec'd. systemd's debug log says when it received READY=1
/// and when the unit went from start to running; the second must follow the first.
fn start_on_ready(sys: &System) -> i32 {
    let out = sys.systemctl(&["log-level", "debug"]);
    assert_eq!(out.code(), Some(0), "systemctl log-level debug: {out:?}");
    let main = start(sys, NOTIFY);
    let out = sys.systemctl(&["log-level", "info"]);
    assert_eq!(out.code(), Some(0), "systemctl log-level info: {out:?}");
    let ready = format!("Got notification message from PID {main} (READY=1");
    let running = "Changed start -> running";
    let mut journal = String::new();
    let seen = wait_until(
        || {
            journal = sys.journal(NOTIFY);
            journal.contains(running)
        },
        DEADLINE,
    );
    assert!(seen, "no state change to running in the journal\n{}", sys.explain(NOTIFY));
    let got = journal.find(&ready);
    assert!(got.is_some(), "systemd got no READY=1 from detach (pid {main})\n{}", sys.explain(NOTIFY));
    assert!(got < journal.find(running), "{NOTIFY} was running before detach's READY=1\n{}", sys.explain(NOTIFY));
    main
}

/// A unit whose command does not exist: `systemctl start` fails, the unit is failed, no
/// pidfile is left, and detach's error is in `journalctl -u`.
fn start_fails(sys: &System, unit: &str) {
    let out = sys.systemctl(&["start", unit]);
    assert_ne!(out.code(), Some(0), "systemctl start {unit} succeeded with {NO_SUCH}\n{}", sys.explain(unit));
    let state = sys.show(unit, &["ActiveState", "Result"]);
    assert_eq!(state["ActiveState"], "failed", "{unit}: {state:?}\n{}", sys.explain(unit));
    assert!(!sys.file(PIDFILE).exists(), "{unit}: a failed start left {PIDFILE}\n{}", sys.explain(unit));
    let error = format!("detach: cannot execute '{NO_SUCH}'");
    let logged = wait_until(|| sys.journal(unit).contains(&error), DEADLINE);
    assert!(logged, "{unit}: {error:?} is not in journalctl -u {unit}\n{}", sys.explain(unit));
    let status = sys.systemctl(&["status", "--lines=20", unit]);
    assert!(status.stdout.contains(&error), "{unit}: {error:?} is not in systemctl status: {status:?}");
    let out = sys.systemctl(&["reset-failed", unit]);
    assert_eq!(out.code(), Some(0), "systemctl reset-failed {unit}: {out:?}");
}

/// Issue 14: the notify unit with `--ready notify`, its command ready 2 s after it starts:
/// `systemctl start` returns no earlier, and the unit is active then.
fn start_waits_for_readiness(sys: &System) {
    remove_log(sys);
    let began = std::time::Instant::now();
    let out = sys.systemctl(&["start", READY_UNIT]);
    assert_eq!(out.code(), Some(0), "systemctl start {READY_UNIT}: {out:?}\n{}", sys.explain(READY_UNIT));
    // The command cannot say READY=1 before its 2 s sleep: a lower bound, not a timing assertion.
    assert!(
        began.elapsed() >= std::time::Duration::from_secs(2),
        "systemctl start returned before the command was ready"
    );
    let state = sys.show(READY_UNIT, &["ActiveState", "StatusText"]);
    assert_eq!(state["ActiveState"], "active", "{READY_UNIT}\n{}", sys.explain(READY_UNIT));
    assert_eq!(state["StatusText"], "warmed up", "STATUS= not relayed\n{}", sys.explain(READY_UNIT));
    let out = sys.systemctl(&["stop", READY_UNIT]);
    assert_eq!(out.code(), Some(0), "systemctl stop {READY_UNIT}: {out:?}");
}

// Installing the units.

/// The name under which the copy of `unit` that runs a missing command is installed.
fn no_such(unit: &str) -> String {
    unit.replace("detach-example-", "detach-no-such-")
}

/// A shipped unit as the booted system gets it: the binary under test for
/// /usr/local/bin/detach, and `command` for what ExecStart= runs after `--`.
fn install(shipped: &str, command: &str) -> String {
    assert!(shipped.contains("/usr/local/bin/detach"), "the unit no longer runs /usr/local/bin/detach:\n{shipped}");
    let mut unit = String::new();
    for line in shipped.lines() {
        let line = line.replace("/usr/local/bin/detach", DETACH);
        match line.strip_prefix("ExecStart=").and_then(|rest| rest.split_once(" -- ")) {
            Some((detach, _)) => unit += &format!("ExecStart={detach} -- {command}\n"),
            None => unit += &format!("{line}\n"),
        }
    }
    assert!(unit.contains(&format!(" -- {command}\n")), "no ExecStart=... -- COMMAND in the unit:\n{shipped}");
    unit
}

/// Fills the share directory: the binary under test, the ticker, and the units.
fn fill_share(share: &Path) {
    let units = share.join("units");
    fs::create_dir_all(&units).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_detach"), share.join("detach")).expect("copy the binary under test");
    let ticker = share.join("ticker");
    fs::write(&ticker, format!("#!/bin/sh\n{TICKER}\n")).unwrap();
    fs::set_permissions(&ticker, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(units.join("detach-test.target"), TARGET).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let ready = share.join("ready");
    let script = "sleep 2; systemd-notify --status='warmed up' --ready; exec /share/ticker";
    fs::write(&ready, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs::set_permissions(&ready, fs::Permissions::from_mode(0o755)).unwrap();
    let notify = read(&dir.join(NOTIFY)).replace(" --foreground ", " --foreground --ready notify ");
    fs::write(units.join(READY_UNIT), install(&notify, "/share/ready")).unwrap();
    for unit in [FORKING, SIMPLE, NOTIFY] {
        let shipped = read(&dir.join(unit));
        fs::write(units.join(unit), install(&shipped, TICKER_PATH)).unwrap();
        fs::write(units.join(no_such(unit)), install(&shipped, NO_SUCH)).unwrap();
    }
}

// The booted system.

/// The cgroup2 mount to boot under, or None (after saying why) when the test cannot run here.
/// With CI=true, not being able to run fails the test.
fn can_run() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        "needs root"
    } else if !on_path("unshare") {
        "no unshare (util-linux)"
    } else {
        match find_cgroup2() {
            Some(mount) => return Some(mount),
            None => "no cgroup2 mount (findmnt -t cgroup2)",
        }
    };
    assert!(std::env::var("CI").as_deref() != Ok("true"), "real systemd: cannot run on CI: {why}");
    eprintln!("skipped: real systemd: {why}");
    None
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The first cgroup2 mount of the host, as `findmnt -n -o TARGET -t cgroup2` lists them.
fn find_cgroup2() -> Option<PathBuf> {
    let out = Command::new("findmnt").args(["-n", "-o", "TARGET", "-t", "cgroup2"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(PathBuf::from)
}

/// A systemd booted by tests/real-systemd/boot.sh. Dropped without [`System::poweroff`] (a
/// failed check), it kills the whole pid namespace; either way it removes its cgroup.
struct System<'g> {
    g: &'g Guard,
    /// `unshare`, the parent of the namespace.
    unshare: Child,
    /// systemd's pid, as the host sees it.
    pid: i32,
    /// The cgroup made for it under the host's cgroup2 mount.
    cgroup: PathBuf,
    share: PathBuf,
    /// boot.sh's own stderr.
    stderr: PathBuf,
}

impl<'g> System<'g> {
    /// Boots systemd and waits until `systemctl is-system-running` says `running`.
    fn boot(g: &'g Guard, cgroup2: &Path) -> System<'g> {
        let share = g.path("share");
        fill_share(&share);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let cgroup = cgroup2.join(format!("detach-test-{}-{nanos}", std::process::id()));
        fs::create_dir(&cgroup).unwrap_or_else(|e| panic!("mkdir {}: {e}", cgroup.display()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real-systemd/boot.sh");
        let mut boot = Command::new(&script);
        boot.arg(&share).arg(&cgroup).arg("detach-test");
        let (unshare, _, stderr) = g.spawn(&mut boot);
        let mut sys = System { g, pid: 0, unshare, cgroup, share, stderr };
        sys.pid = sys.wait_for_systemd();
        let mut state = String::new();
        let up = wait_until(
            || {
                // Fails until systemd listens on its private socket; then waits for the boot.
                state = sys.systemctl(&["is-system-running", "--wait"]).stdout;
                state.trim() != "" && state.trim() != "offline"
            },
            DEADLINE,
        );
        let failed = sys.systemctl(&["--failed", "--no-legend"]).stdout;
        assert!(up && state.trim() == "running", "systemd is {state:?}, failed units: {failed}\n{}", sys.boot_log());
        sys
    }

    /// The pid of unshare's child once it is systemd (it is boot.sh before that).
    fn wait_for_systemd(&mut self) -> i32 {
        let unshare = self.unshare.id();
        let children = format!("/proc/{unshare}/task/{unshare}/children");
        let mut pid = 0;
        let found = wait_until(
            || {
                pid = read(Path::new(&children)).split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
                pid > 0 && read(Path::new(&format!("/proc/{pid}/comm"))).trim() == "systemd"
                    || self.unshare.try_wait().unwrap().is_some()
            },
            DEADLINE,
        );
        assert!(found && pid > 0 && alive(pid), "systemd never started\n{}", self.boot_log());
        pid
    }

    /// What boot.sh and systemd's console said, for failure messages.
    fn boot_log(&self) -> String {
        let console = read(&self.share.join("console"));
        format!("boot.sh stderr:\n{}\nconsole:\n{console}", read(&self.stderr))
    }

    /// Runs `argv` in every namespace of the booted system.
    fn run(&self, argv: &[&str]) -> Out {
        self.g.run(Command::new("nsenter").arg("-t").arg(self.pid.to_string()).arg("-a").args(argv))
    }

    fn systemctl(&self, args: &[&str]) -> Out {
        let mut argv = vec!["systemctl", "--no-pager"];
        argv.extend(args);
        self.run(&argv)
    }

    /// `systemctl show -p P1,P2 UNIT` as a map.
    fn show(&self, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        let out = self.systemctl(&["show", "-p", &props.join(","), unit]);
        assert_eq!(out.code(), Some(0), "systemctl show {unit}: {out:?}");
        let map: BTreeMap<String, String> =
            out.stdout.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for prop in props {
            assert!(map.contains_key(*prop), "systemctl show {unit} lacks {prop}: {out:?}");
        }
        map
    }

    /// `journalctl -u UNIT`, once journald has written what it received.
    fn journal(&self, unit: &str) -> String {
        self.run(&["journalctl", "--sync"]);
        self.run(&["journalctl", "--no-pager", "-o", "short-monotonic", "-u", unit]).stdout
    }

    /// `systemctl status` and the journal of a unit, for failure messages.
    fn explain(&self, unit: &str) -> String {
        let status = self.systemctl(&["status", "--lines=0", unit]);
        format!("--- systemctl status {unit}:\n{}--- journalctl -u {unit}:\n{}", status.stdout, self.journal(unit))
    }

    /// A path of the booted system, as the host reaches it.
    fn file(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.pid))
    }

    /// The processes in a unit's cgroup, by their host pids.
    fn unit_pids(&self, unit: &str) -> Vec<i32> {
        let procs = self.cgroup.join("system.slice").join(unit).join("cgroup.procs");
        read(&procs).lines().filter_map(|l| l.parse().ok()).collect()
    }

    /// `systemctl poweroff`, then waits for the namespace to end.
    fn poweroff(mut self) {
        let out = self.systemctl(&["poweroff", "--check-inhibitors=no"]);
        assert_eq!(out.code(), Some(0), "systemctl poweroff: {out:?}\n{}", self.boot_log());
        let pid = self.pid;
        wait_child(&mut self.unshare, || format!("systemd (pid {pid}) did not power off"));
    }
}

impl Drop for System<'_> {
    fn drop(&mut self) {
        if self.unshare.try_wait().ok().flatten().is_none() {
            // systemd is PID 1 of its namespace: its death kills every process in it, and
            // unshare, which reaps it, exits. unshare is killed only if it is stuck.
            if self.pid > 0 {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
            if !wait_until(|| self.unshare.try_wait().ok().flatten().is_some(), DEADLINE) {
                let _ = self.unshare.kill();
            }
            let _ = self.unshare.wait();
        }
        remove_cgroup(&self.cgroup);
    }
}

/// Removes a cgroup directory and those below it, deepest first; a directory is busy until
/// the last of its processes has been reaped, so each is retried until DEADLINE.
fn remove_cgroup(root: &Path) {
    let mut dirs = vec![root.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(entries) = fs::read_dir(&dirs[i]) {
            dirs.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        i += 1;
    }
    for dir in dirs.iter().rev() {
        let gone = wait_until(|| fs::remove_dir(dir).is_ok() || !dir.exists(), DEADLINE);
        if !gone {
            eprintln!("real systemd: cannot remove the cgroup {}: {}", s(dir), fs::remove_dir(dir).unwrap_err());
        }
    }
}
