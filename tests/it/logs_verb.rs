//! `detach logs` (issue 15): the last lines of a daemon's logs, and `-f` following them across
//! detach's own rotations and a logrotate-driven reopen, compared with what was written.

use crate::util::{
    DEADLINE, Guard, TICKER, assert_consecutive, detach, read, s, signal, start, ticks, wait_child, wait_for_text,
    wait_until,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn logs_n_5_prints_the_last_five_lines() {
    let g = Guard::new();
    let log = g.path("app.log");
    let script = "i=1; while [ $i -le 20 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000";
    let (daemon, _) = start(&g, &["--log", s(&log)], &["sh", "-c", script]);
    wait_for_text(&log, "line 20\n");
    let out = g.run(detach().args(["logs", "--pidfile", s(&daemon.pidfile), "-n", "5"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "line 16\nline 17\nline 18\nline 19\nline 20\n");
    let out = g.run(detach().args(["logs", "--pidfile", s(&daemon.pidfile)]));
    assert_eq!(out.stdout.lines().count(), 10, "the default is 10 lines: {out:?}");
}

#[test]
fn logs_shows_the_stdout_and_stderr_logs_apart() {
    let g = Guard::new();
    let (o, e) = (g.path("out.log"), g.path("err.log"));
    let script = "echo out 1; echo out 2; echo err 1 >&2; echo err 2 >&2; exec sleep 1000";
    let (daemon, _) = start(&g, &["--stdout", s(&o), "--stderr", s(&e)], &["sh", "-c", script]);
    wait_for_text(&e, "err 2\n");
    wait_for_text(&o, "out 2\n");
    let pidfile = s(&daemon.pidfile);
    let err = g.run(detach().args(["logs", "--pidfile", pidfile, "-n", "1", "--stderr"]));
    assert_eq!(err.stdout, "err 2\n", "{err:?}");
    let both = g.run(detach().args(["logs", "--pidfile", pidfile, "-n", "1"]));
    let expected = format!("==> {} <==\nout 2\n\n==> {} <==\nerr 2\n", s(&o), s(&e));
    assert_eq!(both.stdout, expected, "{both:?}");
}

/// The archives `log.N` .. `log.1` then `log`, and logrotate's `old/log.1` where it belongs.
fn files_in_order(log: &Path, after_logrotate: u32, old: &Path) -> Vec<PathBuf> {
    let name = |i: u32| PathBuf::from(format!("{}.{i}", log.display()));
    let mut files: Vec<PathBuf> = (1..).map(name).take_while(|p| p.exists()).collect();
    files.reverse();
    // logrotate moved the file that was current `after_logrotate` rotations of detach ago.
    let at = files.len() - after_logrotate as usize;
    files.insert(at, old.to_path_buf());
    files.push(log.to_path_buf());
    files
}

#[test]
fn logs_f_follows_three_rotations_and_a_logrotate_reopen() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    let pidfile = s(&daemon.pidfile).to_string();
    wait_for_text(&log, "tick 3\n");
    let mut follow = detach();
    follow.args(["logs", "-f", "-n", "2", "--pidfile", &pidfile]);
    let (mut follower, out, err) = g.spawn(&mut follow);
    let ticks_out = || ticks(&read(&out)).len();
    assert!(wait_until(|| ticks_out() >= 2, DEADLINE), "the follower printed nothing: {}", read(&err));
    let new_ticks =
        |n: usize| assert!(wait_until(|| ticks_out() >= n, DEADLINE), "the follower stopped: {}", read(&out));
    // 1, 2: detach's own rotations, by SIGALRM and by `detach rotate`.
    signal(daemon.sup, libc::SIGALRM);
    assert!(wait_until(|| g.path("app.log.1").exists(), DEADLINE));
    new_ticks(ticks_out() + 3);
    let rotated = g.run(detach().args(["rotate", "--pidfile", &pidfile]));
    assert_eq!(rotated.code(), Some(0), "{rotated:?}");
    new_ticks(ticks_out() + 3);
    // A reopen driven by the real logrotate (create mode, postrotate `detach reopen`), its
    // archive in a directory of its own: detach's and logrotate's names must not collide.
    let conf = g.path("logrotate.conf");
    let text = format!(
        "{log} {{\n    rotate 5\n    olddir {old}\n    createolddir\n    nocompress\n    nodateext\n    create 0640\n    \
         postrotate\n        {detach} reopen --wait --pidfile {pidfile}\n    endscript\n}}\n",
        log = s(&log),
        old = s(&g.path("old")),
        detach = env!("CARGO_BIN_EXE_detach"),
    );
    fs::write(&conf, text).unwrap();
    let state = g.path("logrotate.state");
    let lr = Command::new("/usr/sbin/logrotate").arg("-f").arg("-s").arg(&state).arg(&conf).output().unwrap();
    assert!(lr.status.success() && lr.stderr.is_empty(), "logrotate: {lr:?}");
    new_ticks(ticks_out() + 3);
    // 3: and one more of detach's own, after the reopen.
    signal(daemon.sup, libc::SIGALRM);
    assert!(wait_until(|| g.path("app.log.3").exists(), DEADLINE));
    new_ticks(ticks_out() + 3);
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let status = wait_child(&mut follower, || format!("logs -f did not end with the daemon: {}", read(&err)));
    assert!(status.success(), "{status:?}: {}", read(&err));
    // What it printed: from the last 2 lines at its start, every line written, once, in order.
    let files = files_in_order(&log, 1, &g.path("old/app.log.1"));
    let written: String = files.iter().map(|f| read(f)).collect();
    assert_consecutive(&[&written]);
    let printed = read(&out);
    assert_consecutive(&[&printed]);
    let (got, all) = (ticks(&printed), ticks(&written));
    assert!(all.ends_with(&got), "printed {:?}..{:?}, written up to {:?}", got.first(), got.last(), all.last());
    assert!(got.len() > 15, "{got:?}");
}

/// From the second review: `-f` compared only the file before and after each 100 ms look, so
/// rotations faster than that skipped whole archives (603 of 20,000 lines shown). It reads the
/// archives rotated in between, oldest first.
#[test]
fn logs_f_misses_no_line_when_rotations_outpace_it() {
    let g = Guard::new();
    let log = g.path("app.log");
    let go = g.path("go");
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.01; done; i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; \
         echo done; exec sleep 1000",
        go = s(&go)
    );
    let opts = ["--log", s(&log), "--rotate-size", "2K", "--rotate-keep", "100000"];
    let (daemon, _) = start(&g, &opts, &["sh", "-c", &script]);
    let out_path = g.path("followed");
    let mut follower = detach()
        .args(["logs", "--pidfile", s(&daemon.pidfile), "-f", "-n", "0"])
        .stdout(fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    g.track(follower.id() as i32);
    // The follower has the file open before the writer starts.
    assert!(wait_until(
        || crate::util::proc_fds(follower.id() as i32).values().any(|t| t.ends_with("app.log")),
        DEADLINE
    ));
    fs::write(&go, "").unwrap();
    assert!(wait_until(|| read(&out_path).contains("done\n"), DEADLINE), "the follower never saw the end");
    let text = read(&out_path);
    let numbers: Vec<u64> = text.lines().filter_map(|l| l.strip_prefix("line ")?.parse().ok()).collect();
    assert_eq!(numbers.len(), 20_000, "lines shown: {} of 20000", numbers.len());
    assert!(numbers.iter().enumerate().all(|(i, &n)| n == i as u64), "out of order or doubled");
    signal(follower.id() as i32, libc::SIGTERM);
    let _ = follower.wait();
}
