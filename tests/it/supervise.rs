//! The guarantees of issue 3: the supervisor reopens its logs with no line lost or split,
//! notices a moved log by itself, refuses what an attacker plants at the log path, forwards
//! signals, escalates TERM to KILL, and drains the output of orphans before it leaves.

use crate::util::{
    DEADLINE, Daemon, Guard, PY_WRITER, TICKER, alive, assert_consecutive, assert_files_hold, detach, how, poll_fast,
    proc_stat, read, s, signal, size, start, ticks, wait_child, wait_for_text, wait_pid, wait_until, writer_line,
};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// [`PY_WRITER`] started under a supervisor with `--log app.log`.
struct Writer {
    started: Daemon,
    log: PathBuf,
    width: usize,
    stop: PathBuf,
    count: PathBuf,
}

impl Writer {
    fn start(g: &Guard, opts: &[&str], least: u64, width: usize) -> Writer {
        let log = g.path("app.log");
        let (stop, count) = (g.path("stop"), g.path("count"));
        let (least_arg, width_arg) = (least.to_string(), width.to_string());
        let argv = ["python3", "-c", PY_WRITER, &least_arg, &width_arg, s(&stop), s(&count)];
        let mut all_opts = vec!["--log", s(&log)];
        all_opts.extend(opts);
        let (started, _) = start(g, &all_opts, &argv);
        Writer { started, log, width, stop, count }
    }

    /// Waits until the current log has received output: the previous reopen took effect.
    fn wait_output(&self, after: &str) {
        let got = poll_fast(|| size(&self.log) > 0);
        assert!(got, "no line reached {} {after}", self.log.display());
    }

    /// Tells the writer to stop, waits for the supervisor to leave, and checks that `files`
    /// (in rotation order, the current log last) hold exactly the lines written.
    fn finish(self, files: &[PathBuf]) {
        fs::write(&self.stop, "").unwrap();
        self.started.wait_exit(&self.log);
        let count: u64 = read(&self.count).parse().expect("the writer's line count");
        println!("{count} lines of {} bytes in {} files", self.width, files.len());
        for file in files {
            assert!(size(file) > 0, "{} received no line: a reopen did not take effect", file.display());
        }
        assert_files_hold(files, (0..count).map(|i| writer_line(i, self.width)));
    }
}

/// Renames the log away, sends the reopen signal, and waits for the supervisor to create the
/// new file at the path (only it creates that file).
fn rotate(log: &Path, to: &Path, sup: i32, sig: libc::c_int) {
    fs::rename(log, to).unwrap_or_else(|e| panic!("mv {} {}: {e}", log.display(), to.display()));
    signal(sup, sig);
    assert!(poll_fast(|| log.exists()), "{} was not reopened after the signal", log.display());
}

/// How many "tick" lines `path` holds after its first line containing `after`.
fn ticks_after(path: &Path, after: &str) -> usize {
    let text = read(path);
    text.find(after).map_or(0, |at| ticks(&text[at..]).len())
}

// 1. Manual rotations under a writer at full speed.

/// mv log log.K + HUP, K = 1..=ROTATIONS, while a writer at full speed writes LEAST lines of
/// WIDTH bytes or more.
fn manual_rotations(opts: &[&str], least: u64, width: usize, rotations: u32) {
    let g = Guard::new();
    let w = Writer::start(&g, opts, least, width);
    let mut files = Vec::new();
    for k in 1..=rotations {
        w.wait_output(&format!("before rotation {k}"));
        let to = g.path(&format!("app.log.{k}"));
        rotate(&w.log, &to, w.started.sup, libc::SIGHUP);
        files.push(to);
    }
    w.wait_output("after the last rotation");
    files.push(w.log.clone());
    w.finish(&files);
}

/// 100 rotations while a writer at full speed writes 200,000 lines or more.
fn hundred_rotations(opts: &[&str]) {
    manual_rotations(opts, 200_000, 60, 100);
}

#[test]
fn hundred_rotations_during_a_full_speed_writer_lose_and_split_nothing() {
    hundred_rotations(&["--no-watch"]);
}

#[test]
fn hundred_rotations_with_the_watch_on_lose_and_split_nothing() {
    hundred_rotations(&[]);
}

// 2. Real logrotate, `create` mode with a postrotate HUP.

/// `logrotate -f` 15 times, in `create` mode with a postrotate HUP, during a writer.
fn logrotate_during_writer(opts: &[&str]) {
    const ROTATIONS: u32 = 15;
    let g = Guard::new();
    let log = g.path("app.log");
    let conf = g.path("logrotate.conf");
    let state = g.path("logrotate.state");
    fs::write(
        &conf,
        format!(
            "{log} {{\n    rotate 100\n    missingok\n    nocompress\n    nodateext\n    create 0640\n    \
             postrotate\n        kill -HUP $(cat {pid})\n    endscript\n}}\n",
            log = s(&log),
            pid = s(&g.path("p.pid")),
        ),
    )
    .unwrap();
    let w = Writer::start(&g, opts, 200_000, 60);
    assert_eq!(w.started.pidfile, g.path("p.pid"));
    for k in 1..=ROTATIONS {
        w.wait_output(&format!("before rotation {k}"));
        let out = Command::new("/usr/sbin/logrotate").arg("-f").arg("-s").arg(&state).arg(&conf).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "logrotate: {out:?}");
    }
    w.wait_output("after the last rotation");
    // logrotate shifts log.1 to log.2 and so on: the oldest file has the highest number.
    let mut files: Vec<PathBuf> = (1..=ROTATIONS).rev().map(|k| g.path(&format!("app.log.{k}"))).collect();
    files.push(log);
    let names: Vec<_> = fs::read_dir(g.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!g.path(&format!("app.log.{}", ROTATIONS + 1)).exists(), "more rotated files than rotations: {names:?}");
    w.finish(&files);
}

#[test]
fn logrotate_create_with_postrotate_hup_loses_and_doubles_nothing() {
    logrotate_during_writer(&["--no-watch"]);
}

#[test]
fn logrotate_create_with_the_watch_on_loses_and_doubles_nothing() {
    logrotate_during_writer(&[]);
}

// 3. What is planted at the log path is refused, and the old file goes on.

/// Starts TICKER with `--log app.log`, moves the log to old.log and returns both paths.
fn ticker_with_log_moved(g: &Guard) -> (Daemon, PathBuf, PathBuf) {
    let log = g.path("app.log");
    let old = g.path("old.log");
    let (started, _) = start(g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, &old).unwrap();
    (started, log, old)
}

/// Waits for the warning about `log` in `old`, then for 10 more ticks after it: the supervisor
/// was not stuck and kept the old file.
fn assert_warned_and_kept_writing(log: &Path, old: &Path, why: &str) {
    let warning = format!("detach: cannot reopen '{}': {why}", log.display());
    wait_for_text(old, &warning);
    let more = wait_until(|| ticks_after(old, &warning) >= 10, DEADLINE);
    assert!(more, "lines stopped reaching the old file after the warning: {:?}", read(old));
}

#[test]
fn symlink_planted_at_log_path_is_not_followed() {
    let g = Guard::new();
    let (started, log, old) = ticker_with_log_moved(&g);
    let target = g.path("target");
    fs::write(&target, "precious\n").unwrap();
    symlink(&target, &log).unwrap();
    signal(started.sup, libc::SIGHUP);
    assert_warned_and_kept_writing(&log, &old, "Too many levels of symbolic links");
    // Past two more watch intervals (100 ticks of 20 ms or more), it is still said only once.
    let warning = format!("detach: cannot reopen '{}'", log.display());
    assert!(wait_until(|| ticks_after(&old, &warning) >= 100, DEADLINE), "{:?}", read(&old));
    assert_eq!(read(&target), "precious\n", "the symlink was followed");
    assert!(fs::symlink_metadata(&log).unwrap().file_type().is_symlink(), "the symlink was replaced");
    assert_eq!(read(&old).matches(&warning).count(), 1, "{:?}", read(&old));
    assert_consecutive(&[&read(&old)]);
}

#[test]
fn fifo_planted_at_log_path_does_not_block_the_supervisor() {
    let g = Guard::new();
    let (started, log, old) = ticker_with_log_moved(&g);
    nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    // No reader: a blocking open would hang the supervisor here.
    signal(started.sup, libc::SIGHUP);
    assert_warned_and_kept_writing(&log, &old, "No such device or address");
    // With a reader, the open succeeds and the FIFO must still be refused.
    let mut reader = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&log).unwrap();
    signal(started.sup, libc::SIGHUP);
    assert_warned_and_kept_writing(&log, &old, "not a regular file");
    let mut buf = [0u8; 4096];
    match reader.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the supervisor wrote into the FIFO: {other:?} {:?}", String::from_utf8_lossy(&buf)),
    }
    drop(reader);
    // The supervisor still answers: without the FIFO, the next HUP opens a new file.
    fs::remove_file(&log).unwrap();
    signal(started.sup, libc::SIGHUP);
    wait_for_text(&log, "tick");
    let (old_text, new_text) = (read(&old), read(&log));
    assert_consecutive(&[&old_text, &new_text]);
}

#[test]
fn hard_link_planted_at_log_path_is_refused() {
    let g = Guard::new();
    let (started, log, old) = ticker_with_log_moved(&g);
    let other = g.path("shadow");
    fs::write(&other, "root:secret\n").unwrap();
    fs::hard_link(&other, &log).unwrap();
    signal(started.sup, libc::SIGHUP);
    assert_warned_and_kept_writing(&log, &old, "");
    assert_eq!(read(&other), "root:secret\n", "the hard link was written through");
    assert_consecutive(&[&read(&old)]);
}

// 4. A moved or deleted log is noticed without a signal.

#[test]
fn moved_deleted_and_replaced_log_is_reopened_without_a_signal() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (moved, moved2) = (g.path("moved.log"), g.path("moved2.log"));
    let (started, _) = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    // mv: the path names nothing; the supervisor creates a new file there.
    fs::rename(&log, &moved).unwrap();
    wait_for_text(&log, "tick");
    let first = read(&log);
    assert_consecutive(&[&read(&moved), &first]);
    // An operator's rm: the file is gone, a new one takes its place.
    fs::remove_file(&log).unwrap();
    let last = ticks(&first).last().copied().unwrap();
    let next = wait_until(|| ticks(&read(&log)).first().is_some_and(|&t| t > last), DEADLINE);
    assert!(next, "no new file after rm: {:?}", read(&log));
    // logrotate's `create` with no postrotate: mv, then a new empty file at the path.
    fs::rename(&log, &moved2).unwrap();
    fs::write(&log, "").unwrap();
    wait_for_text(&log, "tick");
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);
    assert_consecutive(&[&read(&moved2), &read(&log)]);
}

#[test]
fn moved_log_with_no_watch_keeps_receiving_lines() {
    let g = Guard::new();
    let log = g.path("app.log");
    let moved = g.path("moved.log");
    start(&g, &["--log", s(&log), "--no-watch"], &["sh", "-c", TICKER]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&log, &moved).unwrap();
    let before = ticks(&read(&moved)).len();
    // 125 ticks of 20 ms: at least 2.5 s, two and a half watch intervals.
    let more = wait_until(|| ticks(&read(&moved)).len() >= before + 125, DEADLINE * 2);
    assert!(more, "lines stopped reaching the moved file: {:?}", read(&moved));
    assert!(!log.exists(), "--no-watch reopened the log: {:?}", read(&log));
    assert_consecutive(&[&read(&moved)]);
}

// 5. Signals are forwarded; the reopen signal is not.

const TRAPS: &str = "for s in HUP INT QUIT USR1 USR2 WINCH; do trap \"echo got-$s\" $s; done; \
                     echo ready; while :; do sleep 0.05; done";

#[test]
fn signals_are_forwarded_but_hup_reopens() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let (started, cmd) = start(&g, &["--log", s(&log)], &["sh", "-c", TRAPS]);
    wait_for_text(&log, "ready\n");
    for (sig, name) in [
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        signal(started.sup, sig);
        wait_for_text(&log, &format!("got-{name}\n"));
    }
    // A HUP with nothing moved reopens the same file: nothing truncated, nothing forwarded.
    signal(started.sup, libc::SIGHUP);
    signal(started.sup, libc::SIGUSR1);
    assert!(wait_until(|| read(&log).matches("got-USR1").count() == 2, DEADLINE), "{:?}", read(&log));
    assert_eq!(read(&log), "ready\ngot-USR1\ngot-USR2\ngot-INT\ngot-QUIT\ngot-WINCH\ngot-USR1\n");
    rotate(&log, &old, started.sup, libc::SIGHUP);
    // Had HUP been forwarded, its trap would have run before this one.
    signal(started.sup, libc::SIGUSR1);
    wait_for_text(&log, "got-USR1\n");
    assert!(!read(&old).contains("got-HUP") && !read(&log).contains("got-HUP"), "HUP was forwarded");
    assert!(alive(cmd));
}

#[test]
fn with_another_reopen_signal_hup_is_forwarded() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let (started, _) = start(&g, &["--log", s(&log), "--reopen-signal", "USR2"], &["sh", "-c", TRAPS]);
    wait_for_text(&log, "ready\n");
    signal(started.sup, libc::SIGHUP);
    wait_for_text(&log, "got-HUP\n");
    rotate(&log, &old, started.sup, libc::SIGUSR2);
    signal(started.sup, libc::SIGUSR1);
    wait_for_text(&log, "got-USR1\n");
    assert!(!read(&old).contains("got-USR2") && !read(&log).contains("got-USR2"), "USR2 was forwarded");
}

// 6. TERM escalates to KILL of the command's process group.

/// A command that ignores TERM, with a second process in its group (also ignoring TERM,
/// holding the pipe) whose pid it writes to the file named by $1.
const IGNORES_TERM: &str = "trap '' TERM; sleep 30 & echo $! > \"$1\"; echo ready; while :; do sleep 0.05; done";

/// Live processes in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|st| st.pgrp == pgid && st.state != 'Z'))
        .collect()
}

#[test]
fn term_is_escalated_to_kill_of_the_command_group() {
    let g = Guard::new();
    let log = g.path("app.log");
    let bg_pidfile = g.path("bg.pid");
    let argv = ["sh", "-c", IGNORES_TERM, "sh", s(&bg_pidfile)];
    let (started, cmd) = start(&g, &["--log", s(&log), "--kill-timeout", "0.5"], &argv);
    wait_for_text(&log, "ready\n");
    let bg = wait_pid(&bg_pidfile);
    g.track(bg);
    assert_eq!(proc_stat(bg).map(|st| st.pgrp), Some(cmd), "the sleep should be in the command's group");
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);
    let members = || group_members(cmd);
    assert!(wait_until(|| members().is_empty(), DEADLINE), "left in the command's group: {:?}", members());
    assert!(!alive(bg) && !alive(cmd));
    assert!(wait_until(|| !alive(started.sup), DEADLINE), "the supervisor is still alive");
}

#[test]
fn foreground_term_escalation_dies_by_kill() {
    let g = Guard::new();
    let log = g.path("app.log");
    let bg_pidfile = g.path("bg.pid");
    let (mut child, _, err) =
        g.spawn(detach().args(["--foreground", "--kill-timeout", "0.5", "--log", s(&log)]).args([
            "--",
            "sh",
            "-c",
            IGNORES_TERM,
            "sh",
            s(&bg_pidfile),
        ]));
    wait_for_text(&log, "ready\n");
    let bg = wait_pid(&bg_pidfile);
    g.track(bg);
    signal(child.id() as i32, libc::SIGTERM);
    let status =
        wait_child(&mut child, || format!("detach --foreground did not exit after TERM; stderr: {}", read(&err)));
    assert_eq!(how(&status), "killed by 9", "stderr: {}", read(&err));
    assert!(wait_until(|| !alive(bg), DEADLINE), "the command's group was not killed");
}

// 7. Orphans: drained, bounded by --drain-timeout.

#[test]
fn orphan_output_is_drained_before_the_supervisor_exits() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (started, _) =
        start(&g, &["--log", s(&log)], &["sh", "-c", "(sleep 0.5; echo orphan-line) & echo parent-exits"]);
    wait_for_text(&log, "parent-exits\n");
    // The pidfile goes only after the drain: once it is gone, the orphan's line must be there.
    started.wait_exit(&log);
    assert_eq!(read(&log), "parent-exits\norphan-line\n");
}

/// Starts a command that leaves `sleep 30` behind holding its stdout; returns the daemon, the
/// command's pid, the orphan and the log.
fn start_with_orphan(g: &Guard, opts: &[&str]) -> (Daemon, i32, i32, PathBuf) {
    let log = g.path("app.log");
    let orphan_pidfile = g.path("orphan.pid");
    let script = format!("sleep 30 & echo $! > {}; echo parent-exits", s(&orphan_pidfile));
    let mut all_opts = vec!["--log", s(&log)];
    all_opts.extend(opts);
    let (started, cmd) = start(g, &all_opts, &["sh", "-c", &script]);
    let orphan = wait_pid(&orphan_pidfile);
    g.track(orphan);
    wait_for_text(&log, "parent-exits\n");
    (started, cmd, orphan, log)
}

#[test]
fn drain_timeout_bounds_the_wait_for_orphans() {
    let g = Guard::new();
    let (started, _, orphan, log) = start_with_orphan(&g, &["--drain-timeout", "0.2"]);
    started.wait_exit(&log);
    assert!(alive(orphan), "the orphan died: the supervisor did not leave because of the timeout");
}

// 8. --stdout/--stderr through the supervisor, and foreground statuses.

#[test]
fn stdout_and_stderr_files_are_each_reopened_on_hup() {
    let g = Guard::new();
    let (out, err) = (g.path("out.log"), g.path("err.log"));
    let go = g.path("go");
    let script = format!(
        "echo out1; echo err1 >&2; while [ ! -e {go} ]; do sleep 0.02; done; echo out2; echo err2 >&2",
        go = s(&go)
    );
    // No watch: each file must be reopened by the HUP itself.
    let (started, _) = start(&g, &["--stdout", s(&out), "--stderr", s(&err), "--no-watch"], &["sh", "-c", &script]);
    wait_for_text(&out, "out1\n");
    wait_for_text(&err, "err1\n");
    let (out1, err1) = (g.path("out.log.1"), g.path("err.log.1"));
    fs::rename(&out, &out1).unwrap();
    fs::rename(&err, &err1).unwrap();
    signal(started.sup, libc::SIGHUP);
    assert!(wait_until(|| out.exists() && err.exists(), DEADLINE), "both files should be reopened");
    fs::write(&go, "").unwrap();
    started.wait_exit(&out);
    assert_eq!([read(&out1), read(&err1), read(&out), read(&err)], ["out1\n", "err1\n", "out2\n", "err2\n"]);
}

#[test]
fn foreground_ends_with_the_command_status_or_dies_by_its_signal() {
    let g = Guard::new();
    let log = g.path("app.log");
    let cases = [
        ("exit 7", "exit 7"),
        ("kill -KILL $$", "killed by 9"),
        ("kill -TERM $$", "killed by 15"),
        ("echo fine", "exit 0"),
    ];
    for (script, ending) in cases {
        let out = g.run(detach().args(["--foreground", "--log", s(&log), "--", "sh", "-c", script]));
        assert_eq!(out.how(), ending, "{script}: {out:?}");
    }
    assert_eq!(read(&log), "detach: 'sh' was killed by SIGKILL\ndetach: 'sh' was killed by SIGTERM\nfine\n");
}

// 9. Incomplete lines: shown after a short hold, never split by a reopen.

#[test]
fn incomplete_line_is_written_after_a_short_hold() {
    let g = Guard::new();
    let log = g.path("app.log");
    let go = g.path("go");
    let script = format!("printf partial; while [ ! -e {go} ]; do sleep 0.02; done; echo ' rest'", go = s(&go));
    let (started, _) = start(&g, &["--log", s(&log)], &["sh", "-c", &script]);
    // The command is still running and writes nothing more until told to.
    wait_for_text(&log, "partial");
    fs::write(&go, "").unwrap();
    started.wait_exit(&log);
    assert_eq!(read(&log), "partial rest\n");
}

#[test]
fn line_of_100_kib_in_one_write_is_never_split_by_a_reopen() {
    manual_rotations(&["--no-watch"], 100, 100 * 1024, 20);
}

// 10. The supervisor is a child subreaper.

#[test]
fn orphans_of_the_command_are_reparented_to_the_supervisor() {
    let g = Guard::new();
    let (started, cmd, orphan, log) = start_with_orphan(&g, &[]);
    let reparented = wait_until(|| proc_stat(orphan).is_some_and(|st| st.ppid == started.sup), DEADLINE);
    assert!(reparented, "orphan {orphan}: {:?}, supervisor {}", proc_stat(orphan), started.sup);
    assert!(!alive(cmd), "the command should have exited");
    // The supervisor waits for the orphan's end of the pipe; once it is gone, so is the supervisor.
    assert!(started.pidfile.exists(), "the supervisor left while the orphan held the pipe");
    signal(orphan, libc::SIGKILL);
    started.wait_exit(&log);
}
