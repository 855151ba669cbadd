//! Issue 16: the command's environment and world (--env, --unset-env, --env-file, --clear-env,
//! --user's variables, --nice, --ionice, --oom-score-adj, --limit, --chroot), each read back
//! from the running command's /proc, in every mode and after a restart; every error case with
//! its status and message, and what it leaves behind; the library's bind-then-drop example.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    DEADLINE, Guard, Out, alive, detach, example, is_root, pids_with_arg, proc_stat, read, read_pid, s, signal,
    wait_for_text, wait_pid, wait_until,
};

/// How detach runs the command.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Daemon,
    Foreground,
    Exec,
    /// The default mode with --restart always: the run looked at is the second one.
    Restart,
}

const MODES: [Mode; 4] = [Mode::Daemon, Mode::Foreground, Mode::Exec, Mode::Restart];

/// Starts `detach OPTS -- ARGV` in `mode` and returns the pid of the command once it runs
/// `comm` (tracked). NAME tells several starts of one test apart.
fn launch(g: &Guard, name: &str, mode: Mode, opts: &[&str], argv: &[&str], comm: &str) -> i32 {
    let pid = match mode {
        Mode::Daemon => start_daemon(g, name, opts, argv),
        Mode::Restart => {
            let opts = [opts, &["--restart", "always", "--restart-delay", "0"]].concat();
            let child_pidfile = g.path(&format!("{name}c.pid"));
            let first = start_daemon(g, name, &opts, argv);
            wait_comm(first, comm);
            signal(first, libc::SIGKILL);
            let mut second = None;
            let found = wait_until(
                || {
                    second = read_pid(&child_pidfile).filter(|&p| p != first && alive(p));
                    second.is_some()
                },
                DEADLINE,
            );
            assert!(found, "no second run after the first was killed");
            second.unwrap()
        }
        Mode::Foreground => {
            let child_pidfile = g.pidfile(&format!("{name}c.pid"));
            let mut cmd = detach();
            cmd.arg("--foreground").arg("--child-pidfile").arg(&child_pidfile).args(opts).arg("--").args(argv);
            g.spawn(&mut cmd);
            wait_pid(&child_pidfile)
        }
        Mode::Exec => {
            let pidfile = g.pidfile(&format!("{name}p.pid"));
            let out = g.run(detach().arg("--exec").arg("--pidfile").arg(&pidfile).args(opts).arg("--").args(argv));
            assert_eq!(out.code(), Some(0), "{out:?}");
            wait_pid(&pidfile)
        }
    };
    g.track(pid);
    wait_comm(pid, comm);
    pid
}

fn start_daemon(g: &Guard, name: &str, opts: &[&str], argv: &[&str]) -> i32 {
    let daemon = crate::util::start_named(g, name, opts, argv);
    daemon.wait_cmd(g)
}

/// Polls until the process's name is `comm` (the pidfile may name it before its exec).
fn wait_comm(pid: i32, comm: &str) {
    let found = wait_until(|| proc_stat(pid).is_some_and(|s| s.comm == comm), DEADLINE);
    assert!(found, "pid {pid} never became {comm:?}: {:?}", proc_stat(pid));
}

/// The environment of a running process, from /proc/PID/environ.
fn environ(pid: i32) -> BTreeMap<String, String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).expect("read /proc/PID/environ");
    raw.split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .filter_map(|v| {
            let (k, v) = String::from_utf8_lossy(v).split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))?;
            Some((k, v))
        })
        .collect()
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Field 19 of /proc/PID/stat: the nice value.
fn nice_of(pid: i32) -> i32 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let rest: Vec<&str> = text[text.rfind(')').unwrap() + 1..].split_whitespace().collect();
    rest[16].parse().expect("nice field")
}

/// What `ionice -p PID` says: "idle", "best-effort: prio 7".
fn ionice_of(pid: i32) -> String {
    let out = Command::new("ionice").arg("-p").arg(pid.to_string()).output().expect("run ionice (util-linux)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn oom_score_adj_of(pid: i32) -> i32 {
    fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).expect("read oom_score_adj").trim().parse().unwrap()
}

/// The soft and hard values of one line of /proc/PID/limits ("Max open files").
fn limit_of(pid: i32, what: &str) -> (String, String) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = text.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what:?} in {text}"));
    let fields: Vec<&str> = line[what.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

fn assert_nothing_running(marker: &str) {
    let gone = wait_until(|| pids_with_arg(marker).is_empty(), DEADLINE);
    assert!(gone, "processes left running: {:?}", pids_with_arg(marker));
}

/// The pidfiles of a test's temp dir, for the checks that nothing is left.
fn pidfiles_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pid"))
        .collect()
}

/// A usage error: status 64, the option named, nothing started, no pidfile.
fn assert_usage(g: &Guard, out: &Out, option: &str) {
    assert_eq!(out.code(), Some(64), "{option}: {out:?}");
    assert!(out.stderr.starts_with("detach: error: "), "{option}: {out:?}");
    assert!(out.stderr.contains(option), "{option} not named: {out:?}");
    assert_nothing_running(&g.marker());
    assert!(pidfiles_in(g.dir.path()).is_empty(), "{option}: a pidfile was left");
}

/// An env file with the parts of systemd's syntax: comments of both kinds, blanks, quotes of
/// both kinds with escapes, a value glued to a quoted one, continuations inside and outside
/// quotes, a continued comment.
const ENV_FILE: &str = r#"# a comment
; another comment

PLAIN=1
  SPACED = two words  
SINGLE='$HOME stays \n as is'
DOUBLE="say \"hi\" \$5 \\ back"
GLUED="a" 'b'c
CONTINUED=one \
two
QUOTED_CONTINUED="x\
y"
# a comment that goes on \
NOT_SET=1
EMPTY=
"#;

fn env_file_vars() -> BTreeMap<String, String> {
    vars(&[
        ("PLAIN", "1"),
        ("SPACED", "two words"),
        ("SINGLE", "$HOME stays \\n as is"),
        ("DOUBLE", "say \"hi\" $5 \\ back"),
        ("GLUED", "abc"),
        ("CONTINUED", "one two"),
        ("QUOTED_CONTINUED", "xy"),
        ("EMPTY", ""),
    ])
}

// 1. The environment.

#[test]
fn env_sets_and_overrides_and_unset_env_removes_whatever_set_it() {
    let g = Guard::new();
    let file = g.path("app.env");
    fs::write(&file, "FROM_FILE=file\nOVERRIDDEN=file\nUNSET_FROM_FILE=file\n").unwrap();
    let opts = [
        "--env-file",
        s(&file),
        "--env",
        "OVERRIDDEN=cli",
        "--env",
        "FROM_CLI=a=b",
        "--unset-env",
        "UNSET_FROM_FILE",
        "--unset-env",
        "DETACH_TEST_GONE",
    ];
    let mut cmd = detach();
    cmd.env("DETACH_TEST_KEPT", "kept").env("DETACH_TEST_GONE", "x").env("LISTEN_FDS", "1").env("LISTEN_PID", "1");
    let child_pidfile = g.pidfile("c.pid");
    let out = g.run(cmd.arg("--child-pidfile").arg(&child_pidfile).args(opts).args(["--", "sleep", "60"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&child_pidfile);
    g.track(pid);
    let env = environ(pid);
    assert_eq!(env.get("DETACH_TEST_KEPT").map(String::as_str), Some("kept"), "the inherited environment is lost");
    assert_eq!(env.get("FROM_FILE").map(String::as_str), Some("file"));
    assert_eq!(env.get("OVERRIDDEN").map(String::as_str), Some("cli"), "--env does not override the file");
    assert_eq!(env.get("FROM_CLI").map(String::as_str), Some("a=b"));
    for gone in ["UNSET_FROM_FILE", "DETACH_TEST_GONE", "LISTEN_FDS", "LISTEN_PID"] {
        assert!(!env.contains_key(gone), "{gone} is set: {env:?}");
    }
}

#[test]
fn env_file_reads_quotes_comments_and_continuations() {
    let g = Guard::new();
    let file = g.path("app.env");
    fs::write(&file, ENV_FILE).unwrap();
    let pid = launch(&g, "", Mode::Daemon, &["--clear-env", "--env-file", s(&file)], &["sleep", "60"], "sleep");
    let mut want = env_file_vars();
    want.insert("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    assert_eq!(environ(pid), want);
}

#[test]
fn env_file_with_a_leading_dash_may_be_missing_and_without_one_may_not() {
    let g = Guard::new();
    let missing = g.path("missing.env");
    let optional = format!("-{}", missing.display());
    // Both spellings: `--env-file -PATH` and `--env-file=-PATH`.
    let opts = ["--env-file", &optional, &format!("--env-file={optional}"), "--env", "X=1"];
    let pid = launch(&g, "", Mode::Daemon, &opts, &["sleep", "60"], "sleep");
    assert_eq!(environ(pid).get("X").map(String::as_str), Some("1"));

    let g = Guard::new();
    let (pidfile, marker) = (g.path("p.pid"), g.marker());
    let out = g.run(
        detach().arg("--pidfile").arg(&pidfile).arg("--env-file").arg(&missing).args(["--", "sleep", "60", &marker]),
    );
    assert_usage(&g, &out, "--env-file");
    assert!(out.stderr.contains(&format!("cannot read '{}': No such file", missing.display())), "{out:?}");
}

#[test]
fn malformed_env_file_line_is_a_usage_error_naming_the_file_and_line() {
    for (text, line, why) in [
        ("A=1\n# fine\nJUNK\n", 3, "not KEY=VALUE"),
        ("A=1\nB='never closed\nC=3\n", 2, "no closing '"),
        ("A=1\n\n1BAD=x\n", 3, "'1BAD' is not a variable name"),
    ] {
        let g = Guard::new();
        let file = g.path("bad.env");
        fs::write(&file, text).unwrap();
        let marker = g.marker();
        let args = ["--log", "a.log", "--pidfile", "p.pid", "--env-file", s(&file), "--", "sleep", "60", &marker];
        let out = g.run(detach().current_dir(g.dir.path()).args(args));
        assert_usage(&g, &out, "--env-file");
        assert!(out.stderr.contains(&format!("'{}' line {line}: {why}", file.display())), "{text:?}: {out:?}");
        assert!(!g.path("a.log").exists(), "a log was created before the usage error");
    }
}

#[test]
fn clear_env_leaves_only_path_then_the_files_then_env() {
    let g = Guard::new();
    let file = g.path("app.env");
    fs::write(&file, "FROM_FILE=1\nBOTH=file\n").unwrap();
    let opts = ["--clear-env", "--env-file", s(&file), "--env", "BOTH=cli"];
    let mut cmd = detach();
    let child_pidfile = g.pidfile("c.pid");
    cmd.env("DETACH_TEST_INHERITED", "1").arg("--child-pidfile").arg(&child_pidfile).args(opts);
    let out = g.run(cmd.args(["--", "sleep", "60"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&child_pidfile);
    g.track(pid);
    let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(environ(pid), vars(&[("PATH", path), ("FROM_FILE", "1"), ("BOTH", "cli")]));
}

#[test]
fn user_sets_home_user_logname_and_shell_unless_env_sets_them() {
    if !is_root("user_sets_home_user_logname_and_shell_unless_env_sets_them") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody exists");
    let (home, shell) = (nobody.dir.to_str().unwrap(), nobody.shell.to_str().unwrap());
    let g = Guard::new();
    let mut cmd = detach();
    let child_pidfile = g.pidfile("c.pid");
    cmd.env("HOME", "/root").env("USER", "root").env("LOGNAME", "root").env("SHELL", "/bin/bash");
    let out = g.run(cmd.arg("--child-pidfile").arg(&child_pidfile).args(["--user", "nobody", "--", "sleep", "60"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&child_pidfile);
    g.track(pid);
    let env = environ(pid);
    let got: Vec<_> = ["HOME", "USER", "LOGNAME", "SHELL"].iter().map(|k| env.get(*k).cloned()).collect();
    let want = [home, "nobody", "nobody", shell].map(|v| Some(v.to_string()));
    assert_eq!(got, want, "{env:?}");

    let opts = ["--user", "nobody", "--env", "HOME=/srv/app", "--env", "SHELL=/bin/sh"];
    let pid = launch(&g, "b", Mode::Daemon, &opts, &["sleep", "60"], "sleep");
    let env = environ(pid);
    assert_eq!(env.get("HOME").map(String::as_str), Some("/srv/app"), "--env does not win over --user");
    assert_eq!(env.get("SHELL").map(String::as_str), Some("/bin/sh"));
    assert_eq!(env.get("USER").map(String::as_str), Some("nobody"));
}

// 2. Priorities and limits.

/// Options any user may give (a nice value and OOM score raised, limits lowered), and what
/// they must read back as.
const UNPRIVILEGED: [&str; 12] = [
    "--nice",
    "5",
    "--ionice",
    "idle",
    "--oom-score-adj",
    "300",
    "--limit",
    "nofile=100:200",
    "--limit",
    "fsize=1M:",
    "--limit",
    "core=0",
];

fn assert_unprivileged_options(pid: i32, mode: Mode) {
    assert_eq!(nice_of(pid), 5, "{mode:?}");
    assert_eq!(ionice_of(pid), "idle", "{mode:?}");
    assert_eq!(oom_score_adj_of(pid), 300, "{mode:?}");
    assert_eq!(limit_of(pid, "Max open files"), ("100".into(), "200".into()), "{mode:?}");
    assert_eq!(limit_of(pid, "Max file size").0, "1048576", "{mode:?}");
    assert_eq!(limit_of(pid, "Max core file size"), ("0".into(), "0".into()), "{mode:?}");
}

#[test]
fn nice_ionice_oom_score_and_limits_are_read_back_from_proc() {
    let g = Guard::new();
    let pid = launch(&g, "", Mode::Daemon, &UNPRIVILEGED, &["sleep", "60"], "sleep");
    assert_unprivileged_options(pid, Mode::Daemon);
    let pid = launch(
        &g,
        "b",
        Mode::Daemon,
        &["--ionice", "best-effort:7", "--limit", "nofile=50:"],
        &["sleep", "60"],
        "sleep",
    );
    assert_eq!(ionice_of(pid), "best-effort: prio 7");
    let ours = limit_of(std::process::id() as i32, "Max open files").1;
    assert_eq!(limit_of(pid, "Max open files"), ("50".into(), ours), "SOFT: must keep the hard limit");
}

#[test]
fn the_supervisor_keeps_its_own_environment_and_limits() {
    let g = Guard::new();
    let opts = [&UNPRIVILEGED[..], &["--clear-env", "--env", "ONLY_THE_COMMAND=1"]].concat();
    let d = crate::util::start_named(&g, "", &opts, &["sleep", "60"]);
    d.wait_cmd(&g);
    assert_ne!(nice_of(d.sup), 5);
    assert_ne!(oom_score_adj_of(d.sup), 300);
    assert_ne!(limit_of(d.sup, "Max open files"), ("100".into(), "200".into()));
    assert!(!environ(d.sup).contains_key("ONLY_THE_COMMAND"));
}

#[test]
fn every_option_applies_in_every_mode_and_to_every_restart() {
    for mode in MODES {
        let g = Guard::new();
        let file = g.path("app.env");
        fs::write(&file, "FROM_FILE=1\n").unwrap();
        let opts = [&UNPRIVILEGED[..], &["--clear-env", "--env-file", s(&file), "--env", "FROM_CLI=2"]].concat();
        let pid = launch(&g, "", mode, &opts, &["sleep", "60"], "sleep");
        assert_unprivileged_options(pid, mode);
        let env = environ(pid);
        let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        assert_eq!(env, vars(&[("PATH", path), ("FROM_FILE", "1"), ("FROM_CLI", "2")]), "{mode:?}");
    }
}

// 3. chroot, and what needs root.

/// A small root for --chroot: Debian's static busybox if installed (with sh, sleep, ls, cat
/// as links), else sh, sleep, ls and cat copied with the libraries ldd names; and a file
/// that exists only there.
fn build_root(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let busybox = Path::new("/bin/busybox");
    let is_static = busybox.exists()
        && Command::new("ldd").arg(busybox).output().is_ok_and(|o| !o.status.success() || !o.stdout.contains(&b'/'));
    if is_static {
        fs::copy(busybox, bin.join("busybox")).unwrap();
        for applet in ["sh", "sleep", "ls", "cat"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    } else {
        for prog in ["sh", "sleep", "ls", "cat"] {
            let path = fs::canonicalize(Path::new("/bin").join(prog)).unwrap();
            fs::copy(&path, bin.join(prog)).unwrap();
            let ldd = Command::new("ldd").arg(&path).output().expect("ldd");
            for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
                let target = dir.join(lib.trim_start_matches('/'));
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::copy(lib, &target).unwrap();
            }
        }
    }
    fs::write(dir.join("only-in-the-root"), "").unwrap();
    fs::create_dir(dir.join("srv")).unwrap();
}

#[test]
fn chroot_user_and_privileged_values_apply_in_every_mode_and_to_every_restart() {
    if !is_root("chroot_user_and_privileged_values_apply_in_every_mode_and_to_every_restart") {
        return;
    }
    // Lowering the OOM score needs CAP_SYS_RESOURCE, which a container's root may lack.
    let oom = if has_cap_sys_resource() { "-100" } else { "100" };
    for mode in MODES {
        let g = Guard::new();
        let root = g.path("root");
        build_root(&root);
        let log = g.path("app.log");
        let opts = [
            "--chroot",
            s(&root),
            "--chdir",
            "/srv",
            "--user",
            "nobody",
            "--log",
            s(&log),
            "--nice",
            "-5",
            "--oom-score-adj",
            oom,
            "--ionice",
            "realtime:2",
            "--limit",
            "nofile=64:128",
        ];
        // The command's view: its / and its directory, into the log opened outside.
        let script = "ls /; echo cwd=$(pwd) home=$HOME user=$USER; exec sleep 60";
        let pid = launch(&g, "", mode, &opts, &["sh", "-c", script], "sleep");
        assert_eq!(fs::read_link(format!("/proc/{pid}/root")).unwrap(), root, "{mode:?}");
        assert_eq!(fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), root.join("srv"), "{mode:?}");
        wait_for_text(&log, "cwd=/srv home=/nonexistent user=nobody\n");
        let text = read(&log);
        assert!(text.contains("only-in-the-root\n"), "{mode:?}: the command does not see the root as /: {text}");
        assert_eq!(crate::util::proc_status(pid, "Uid").unwrap().split_whitespace().next(), Some("65534"));
        assert_eq!(nice_of(pid), -5, "{mode:?}");
        assert_eq!(oom_score_adj_of(pid).to_string(), oom, "{mode:?}");
        assert_eq!(ionice_of(pid), "realtime: prio 2", "{mode:?}");
        assert_eq!(limit_of(pid, "Max open files"), ("64".into(), "128".into()), "{mode:?}");
    }
}

/// From the second review: chroot(2) leaves the working directory where it was, so a relative
/// --chdir was resolved on the host, and the command ran outside its root (it listed the
/// host's /etc through `../..`). It is taken inside the root, in every mode.
#[test]
fn a_relative_chdir_with_chroot_is_inside_the_root() {
    if !is_root("a_relative_chdir_with_chroot_is_inside_the_root") {
        return;
    }
    for mode in MODES {
        let g = Guard::new();
        let root = g.path("root");
        build_root(&root);
        let log = g.path("app.log");
        let opts = ["--chroot", s(&root), "--chdir", "srv", "--log", s(&log)];
        let pid = launch(&g, "", mode, &opts, &["sh", "-c", "echo cwd=$(pwd); exec sleep 60"], "sleep");
        assert_eq!(fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), root.join("srv"), "{mode:?}");
        wait_for_text(&log, "cwd=/srv\n");
    }
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff).
fn has_cap_sys_resource() -> bool {
    let caps = crate::util::proc_status(std::process::id() as i32, "CapEff").expect("CapEff");
    u64::from_str_radix(&caps, 16).is_ok_and(|c| c & (1 << 24) != 0)
}

// 4. Errors.

#[test]
fn bad_values_are_usage_errors_naming_the_option_before_anything_starts() {
    let g = Guard::new();
    let marker = g.marker();
    let file = g.path("a-file");
    fs::write(&file, "").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--env", "NOEQUALS"], "--env"),
        (&["--env", "=x"], "--env"),
        (&["--env", "1A=x"], "--env"),
        (&["--unset-env", "A=B"], "--unset-env"),
        (&["--nice", "20"], "--nice"),
        (&["--nice", "-21"], "--nice"),
        (&["--nice", "x"], "--nice"),
        (&["--ionice", "fast"], "--ionice"),
        (&["--ionice", "best-effort:8"], "--ionice"),
        (&["--ionice", "idle:3"], "--ionice"),
        (&["--oom-score-adj", "1001"], "--oom-score-adj"),
        (&["--oom-score-adj", "-1001"], "--oom-score-adj"),
        (&["--limit", "files=10"], "--limit"),
        (&["--limit", "nofile"], "--limit"),
        (&["--limit", "nofile=many"], "--limit"),
        (&["--limit", "nofile=10:5"], "--limit"),
        (&["--limit", "stack=1T"], "--limit"),
        // A hard limit below the soft one the command would inherit.
        (&["--limit", "nofile=:1"], "--limit"),
        (&["--chroot", "/no/such/dir"], "--chroot"),
        (&["--chroot", s(&file)], "--chroot"),
    ];
    for (opts, option) in cases {
        let out = g.run(
            detach()
                .current_dir(g.dir.path())
                .args(["--log", "a.log", "--pidfile", "p.pid"])
                .args(*opts)
                .args(["--", "sleep", "60", &marker]),
        );
        assert_usage(&g, &out, option);
        assert!(!g.path("a.log").exists(), "{opts:?}: a log was created");
    }
}

/// Runs `detach MODE OPTS -- ARGV MARKER` where the command cannot start, and checks the
/// status, the message, and that nothing runs and no pidfile is left; `run` wraps the
/// command (setpriv, to run detach as nobody).
fn assert_fails_in_child(g: &Guard, wrap: &[&str], opts: &[&str], argv: &[&str], code: i32, message: &str) {
    let marker = g.marker();
    for mode in [
        &["--pidfile", "p.pid", "--child-pidfile", "c.pid"][..],
        &["--foreground", "--pidfile", "p.pid"],
        &["--exec", "--pidfile", "p.pid"],
    ] {
        let mut cmd = match wrap.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(env!("CARGO_BIN_EXE_detach"));
                c
            }
            None => detach(),
        };
        cmd.current_dir(g.dir.path()).args(["--log", "a.log"]).args(mode).args(opts).arg("--").args(argv).arg(&marker);
        let out = g.run(&mut cmd);
        assert_eq!(out.code(), Some(code), "{mode:?} {opts:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(out.stderr.starts_with("detach: ") && out.stderr.contains(message), "{mode:?} {opts:?}: {out:?}");
        assert_nothing_running(&marker);
        assert!(pidfiles_in(g.dir.path()).is_empty(), "{mode:?} {opts:?}: a pidfile was left");
    }
}

#[test]
fn failures_in_the_child_name_the_option_and_leave_nothing() {
    let g = Guard::new();
    // Above fs.nr_open: refused even to root.
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open").unwrap().trim().parse().unwrap();
    let too_many = format!("nofile={}", nr_open + 1);
    let message = format!("--limit {too_many}: cannot set the limit: Operation not permitted");
    assert_fails_in_child(&g, &[], &["--limit", &too_many], &["sleep", "60"], 77, &message);
    if !is_root("failures_in_the_child_name_the_option_and_leave_nothing (as root)") {
        return;
    }
    let root = g.path("root");
    build_root(&root);
    let r = s(&root);
    assert_fails_in_child(&g, &[], &["--chroot", r], &["no-such-command"], 127, "cannot execute 'no-such-command'");
    let message = format!("--chdir: cannot change directory to '/nowhere' inside --chroot '{r}': No such file");
    assert_fails_in_child(&g, &[], &["--chroot", r, "--chdir", "/nowhere"], &["sleep", "60"], 71, &message);

    // As nobody: what only privilege allows.
    fs::set_permissions(g.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"];
    let hard = limit_of(std::process::id() as i32, "Max open files").1;
    if hard != "unlimited" {
        let above = format!("nofile=1:{}", hard.parse::<u64>().unwrap() + 1);
        let message = format!("--limit {above}: cannot set the limit: Operation not permitted");
        assert_fails_in_child(&g, &nobody, &["--limit", &above], &["sleep", "60"], 77, &message);
    }
    let message = "--nice -5: cannot set the priority: Permission denied";
    assert_fails_in_child(&g, &nobody, &["--nice", "-5"], &["sleep", "60"], 77, message);
    let message = "--oom-score-adj -100: cannot set the OOM score: Permission denied";
    assert_fails_in_child(&g, &nobody, &["--oom-score-adj", "-100"], &["sleep", "60"], 77, message);
    let message = format!("--chroot: cannot change root to '{r}': Operation not permitted");
    assert_fails_in_child(&g, &nobody, &["--chroot", r], &["sleep", "60"], 77, &message);
}

// 5. The library.

#[test]
fn bind_then_drop_example_serves_a_connection_as_nobody_on_the_listener_root_bound() {
    if !is_root("bind_then_drop_example_serves_a_connection_as_nobody_on_the_listener_root_bound") {
        return;
    }
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let out = g.run(Command::new(example("bind_then_drop")).arg("127.0.0.1:0").arg(&log).arg(&pidfile));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let addr = out.stdout.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{out:?}"));
    let pid = wait_pid(&pidfile);
    wait_for_text(&log, "serving as uid 65534\n");
    let mut answer = String::new();
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to the daemon's listener");
    conn.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "hello from uid 65534\n");
    wait_for_text(&log, "served 127.0.0.1:");
    assert!(wait_until(|| !alive(pid), DEADLINE), "the daemon did not exit after serving");
}

#[test]
fn library_keep_fd_spares_only_the_listener_from_the_close() {
    if !is_root("library_keep_fd_spares_only_the_listener_from_the_close") {
        return;
    }
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let mut cmd = Command::new(example("bind_then_drop"));
    cmd.arg("127.0.0.1:0").arg(&log).arg(&pidfile);
    // An fd the caller leaves open without keeping it: the daemon must not hold it.
    let stray = fs::File::open("/dev/zero").unwrap();
    let stray_fd = std::os::fd::AsRawFd::as_raw_fd(&stray);
    // SAFETY: dup2 onto 9 in the child before exec: async-signal-safe; 9 is not O_CLOEXEC.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::dup2(stray_fd, 9);
            Ok(())
        });
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&pidfile);
    wait_for_text(&log, "serving as uid");
    let fds = crate::util::proc_fds(pid);
    assert!(fds.values().any(|t| t.starts_with("socket:")), "the listener was closed: {fds:?}");
    assert!(!fds.values().any(|t| t == "/dev/zero"), "an fd it was not asked to keep survived: {fds:?}");
    let addr = out.stdout.trim().strip_prefix("listening on ").unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("hello"), "{answer:?}");
}

#[test]
fn library_chroot_puts_the_daemon_in_its_root_after_opening_the_log_outside() {
    if !is_root("library_chroot_puts_the_daemon_in_its_root_after_opening_the_log_outside") {
        return;
    }
    let g = Guard::new();
    let root = g.path("root");
    build_root(&root);
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let mut cmd = Command::new(example("bind_then_drop"));
    let out = g.run(cmd.arg("127.0.0.1:0").arg(&log).arg(&pidfile).arg(&root));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let pid = wait_pid(&pidfile);
    wait_for_text(&log, "serving as uid 65534\n");
    assert_eq!(fs::read_link(format!("/proc/{pid}/root")).unwrap(), root);
    assert!(read(&log).contains("cwd /, / holds: bin only-in-the-root srv\n"), "{}", read(&log));
    let addr = out.stdout.trim().strip_prefix("listening on ").unwrap().to_string();
    let mut answer = String::new();
    std::net::TcpStream::connect(addr).unwrap().read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "hello from uid 65534\n");
}

#[test]
fn library_chroot_that_is_no_directory_fails_before_starting() {
    let g = Guard::new();
    let (log, pidfile) = (g.path("app.log"), g.pidfile("app.pid"));
    let missing = g.path("no-such-root");
    let mut cmd = Command::new(example("bind_then_drop"));
    let out = g.run(cmd.arg("127.0.0.1:0").arg(&log).arg(&pidfile).arg(&missing));
    assert_eq!(out.code(), Some(64), "{out:?}");
    assert!(out.stderr.contains(&format!("chroot '{}': No such file", missing.display())), "{out:?}");
    assert!(!pidfile.exists() && !log.exists(), "a pidfile or log was left");
}

#[test]
fn notify_passthrough_keeps_notify_socket_even_with_clear_env() {
    let g = Guard::new();
    let socket = g.path("notify.sock");
    let _listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    for (name, opts, kept) in [("a", &["--clear-env", "--notify-passthrough"][..], true), ("b", &[][..], false)] {
        let child_pidfile = g.pidfile(&format!("{name}c.pid"));
        let mut cmd = detach();
        cmd.env("NOTIFY_SOCKET", &socket).arg("--child-pidfile").arg(&child_pidfile).args(opts);
        let out = g.run(cmd.args(["--", "sleep", "60"]));
        assert_eq!(out.code(), Some(0), "{out:?}");
        let pid = wait_pid(&child_pidfile);
        g.track(pid);
        let env = environ(pid);
        let want = kept.then(|| socket.display().to_string());
        assert_eq!(env.get("NOTIFY_SOCKET").cloned(), want, "{opts:?}: {env:?}");
    }
}
