//! Issue 13, items 4 and 14: where root may write a log. A user who controls a directory on
//! the log's path swaps a directory below it for a symlink to a root-only directory; the
//! supervisor (root) must never create, write or chown a file there. Root's own symlinks
//! (`/var/log -> /data/log`) and a log directory owned by the service's user keep working.

use crate::util::{DEADLINE, Guard, TICKER, detach, is_root, read, s, signal, start, ticks, wait_for_text, wait_until};
use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

/// nobody's uid and gid.
fn nobody() -> (u32, u32) {
    let user = nix::unistd::User::from_name("nobody").expect("getpwnam").expect("user nobody exists");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// A root-only directory `secret` (0700) and a directory `home` owned by nobody holding
/// `logs/`: the attack's layout. Returns (home, secret).
fn attack_layout(g: &Guard) -> (PathBuf, PathBuf) {
    let (uid, gid) = nobody();
    let (home, secret) = (g.path("home"), g.path("secret"));
    fs::create_dir(&secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(home.join("logs")).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(home.join("logs"), Some(uid), Some(gid)).unwrap();
    (home, secret)
}

/// What nobody can do in its home: put a symlink of its own where a directory was.
fn swap_for_symlink(dir: &Path, aside: &Path, target: &Path) {
    let (uid, gid) = nobody();
    fs::rename(dir, aside).unwrap();
    symlink(target, dir).unwrap();
    lchown(dir, Some(uid), Some(gid)).unwrap();
}

#[test]
fn a_user_swapping_a_log_directory_for_a_symlink_never_makes_root_write_through_it() {
    if !is_root("a_user_swapping_a_log_directory_for_a_symlink_never_makes_root_write_through_it") {
        return;
    }
    let g = Guard::new();
    let (home, secret) = attack_layout(&g);
    let log = home.join("logs/app.log");
    let (started, _) = start(&g, &["--log", s(&log), "--log-owner", "nobody"], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    let aside = home.join("logs.old");
    swap_for_symlink(&home.join("logs"), &aside, &secret);
    // No signal: the watch notices that the path names nothing and, one interval later,
    // reopens. Either the reopen is refused (and says so in the old file) or it created the
    // log in the root-only directory.
    let planted = secret.join("app.log");
    let refused = |text: &str| text.contains("detach: cannot reopen");
    let decided = wait_until(|| planted.exists() || refused(&read(&aside.join("app.log"))), DEADLINE);
    assert!(decided, "the watch never reopened: {:?}", read(&aside.join("app.log")));
    assert!(!planted.exists(), "root created {} through nobody's symlink", planted.display());
    let text = read(&aside.join("app.log"));
    let why = format!("refusing the symlink '{}'", home.join("logs").display());
    assert!(text.contains(&why), "the warning does not say why: {text:?}");
    // The pump goes on into the old file, and HUP is refused the same way.
    signal(started.sup, libc::SIGHUP);
    let n = ticks(&text).len();
    assert!(wait_until(|| ticks(&read(&aside.join("app.log"))).len() > n + 5, DEADLINE), "lines stopped");
    assert!(fs::read_dir(&secret).unwrap().next().is_none(), "something was created in {}", secret.display());
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&aside.join("app.log"));
}

#[test]
fn a_log_path_through_a_users_symlink_is_refused_at_start() {
    if !is_root("a_log_path_through_a_users_symlink_is_refused_at_start") {
        return;
    }
    let g = Guard::new();
    let (home, secret) = attack_layout(&g);
    swap_for_symlink(&home.join("logs"), &home.join("logs.old"), &secret);
    let log = home.join("logs/app.log");
    let pidfile = g.pidfile("p.pid");
    let out =
        g.run(detach().arg("--pidfile").arg(&pidfile).args(["--log", s(&log), "--", "sleep", "30"]).arg(g.marker()));
    assert_eq!(out.code(), Some(73), "{out:?}");
    assert!(out.stderr.contains("refusing the symlink"), "{out:?}");
    assert!(fs::read_dir(&secret).unwrap().next().is_none(), "something was created in {}", secret.display());
    assert!(!pidfile.exists());
}

/// `/var/log -> /data/log`, set up by root in directories only root can change: followed at
/// start and by every reopen.
#[test]
fn a_symlink_root_placed_in_a_root_only_directory_is_followed() {
    let g = Guard::new();
    let (data, link) = (g.path("data"), g.path("varlog"));
    fs::create_dir(&data).unwrap();
    symlink(&data, &link).unwrap();
    let log = link.join("app.log");
    let (started, _) = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    wait_for_text(&data.join("app.log"), "tick 1\n");
    fs::rename(data.join("app.log"), data.join("app.log.1")).unwrap();
    signal(started.sup, libc::SIGHUP);
    wait_for_text(&data.join("app.log"), "tick ");
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&data.join("app.log"));
}

/// `/var/log/app/` owned by the service's user, with `--user`: the common layout.
#[test]
fn a_log_directory_owned_by_the_service_user_keeps_working() {
    if !is_root("a_log_directory_owned_by_the_service_user_keeps_working") {
        return;
    }
    let g = Guard::new();
    let (uid, gid) = nobody();
    let dir = g.path("app");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let log = dir.join("app.log");
    let (started, _) = start(&g, &["--user", "nobody", "--log", s(&log)], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, dir.join("app.log.1")).unwrap();
    signal(started.sup, libc::SIGHUP);
    wait_for_text(&log, "tick ");
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);
    assert!(!read(&log).contains("detach: "), "{:?}", read(&log));
}

/// Issue 13, item 14: each HUP sends RELOADING and READY to systemd's notify socket; once a
/// socket nobody reads was full, the send blocked and the supervisor stopped pumping.
#[test]
fn a_notify_socket_nobody_reads_never_stops_the_pump() {
    let g = Guard::new();
    let (log, sock) = (g.path("app.log"), g.path("notify.sock"));
    let _unread = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    let script = format!("trap 'echo got-USR1' USR1; {TICKER}");
    let (mut child, _, err) = g.spawn(detach().env("NOTIFY_SOCKET", &sock).args([
        "--foreground",
        "--log",
        s(&log),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let sup = child.id() as i32;
    wait_for_text(&log, "tick 1\n");
    // The loop takes HUP before USR1 (signal order): once the trap has echoed, the HUP sent
    // before it was handled, its two datagrams sent or refused.
    let usr1s = || read(&log).matches("got-USR1\n").count();
    for k in 1..=40 {
        signal(sup, libc::SIGHUP);
        signal(sup, libc::SIGUSR1);
        assert!(wait_until(|| usr1s() == k, DEADLINE), "the pump stopped after HUP {k}: {:?}", read(&err));
    }
    let n = ticks(&read(&log)).len();
    assert!(wait_until(|| ticks(&read(&log)).len() > n + 5, DEADLINE), "lines stopped");
    signal(sup, libc::SIGTERM);
    let status = crate::util::wait_child(&mut child, || format!("detach did not exit: {}", read(&err)));
    // 143, or a death by TERM itself: the command's end either way.
    let by_term = status.code() == Some(143) || status.signal() == Some(libc::SIGTERM);
    assert!(by_term, "{status:?}: {}", read(&err));
}

/// Prints the parent-death signal the process holds (prctl PR_GET_PDEATHSIG, 2).
const PDEATHSIG_PROBE: &str =
    "import ctypes; s = ctypes.c_int(-1); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print('pdeathsig=%d' % s.value)";

/// Issue 13, item 6, the documented limit: the kernel clears the parent-death signal when a
/// process changes its credentials. With `--user`, detach sets it after the switch, so the
/// command holds TERM (and `kill -9` of the supervisor ends it: faults.rs tests that); a
/// command that switches by itself (setpriv, su, gosu) has lost it, and would run on after a
/// `kill -9` of the supervisor. If this ever fails, the README's "Orphans and stopping" is wrong.
#[test]
fn pdeathsig_is_kept_with_user_and_lost_when_the_command_switches_users_itself() {
    if !is_root("pdeathsig_is_kept_with_user_and_lost_when_the_command_switches_users_itself") {
        return;
    }
    let g = Guard::new();
    // Not the PATH's python3: nobody may not reach it (pyenv under /root).
    let probe = ["/usr/bin/python3", "-c", PDEATHSIG_PROBE];
    let run = |name: &str, opts: &[&str], argv: &[&str]| {
        let log = g.path(name);
        let out = g.run(detach().args(["--foreground", "--log", s(&log)]).args(opts).arg("--").args(argv));
        assert_eq!(out.code(), Some(0), "{out:?}: {:?}", read(&log));
        read(&log)
    };
    assert_eq!(run("user.log", &["--user", "nobody"], &probe), format!("pdeathsig={}\n", libc::SIGTERM));
    let setpriv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"];
    let itself = [&setpriv[..], &probe[..]].concat();
    assert_eq!(run("setpriv.log", &[], &itself), "pdeathsig=0\n", "the kernel kept it: update the README");
    // Before the switch, the command holds it too: the switch alone clears it.
    assert_eq!(run("root.log", &[], &probe), format!("pdeathsig={}\n", libc::SIGTERM));
}
