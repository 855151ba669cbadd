//! The guarantees of issue 3: the supervisor reopens its logs with no line lost or split,
//! notices a moved log by itself, refuses what an attacker plants at the log path, forwards
//! signals, escalates TERM to KILL, and drains the output of orphans before it leaves.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, Guard, alive, detach, proc_stat, read, wait_pid, wait_until};

/// A writer at full speed: `LEAST WIDTH STOP COUNT` writes lines 0, 1, 2, ..., each of WIDTH
/// bytes ("line 0000123 xxx...\n") in one write(2), at least LEAST of them and on until STOP
/// exists (checked every 64 KiB or so), then writes how many lines it wrote into COUNT.
/// Writing until told to stop makes every rotation of a test happen under load.
const PY_WRITER: &str = r#"
import os, sys
least, width, stop, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
pad = b"x" * (width - 14) + b"\n"
every = max(1, 65536 // width)
w = os.write
i = 0
while True:
    w(1, b"line %07d " % i + pad)
    i += 1
    if i >= least and i % every == 0 and os.path.exists(stop):
        break
with open(count, "w") as f:
    f.write(str(i))
"#;

/// Line `i` of [`PY_WRITER`].
fn writer_line(i: u64, width: usize) -> Vec<u8> {
    let mut line = format!("line {i:07} ").into_bytes();
    line.resize(width - 1, b'x');
    line.push(b'\n');
    line
}

/// [`PY_WRITER`] started under a supervisor with `--log app.log`.
struct Writer {
    started: Started,
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
        let started = start(g, &all_opts, &argv);
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
        wait_exit(&self.started);
        let count: u64 = read(&self.count).parse().expect("the writer's line count");
        println!("{count} lines of {} bytes in {} files", self.width, files.len());
        for file in files {
            assert!(size(file) > 0, "{} received no line: a reopen did not take effect", file.display());
        }
        assert_files_hold(files, (0..count).map(|i| writer_line(i, self.width)));
    }
}

/// A slow writer for the tests that watch where lines go: "tick 0", "tick 1", ... every 20 ms.
const TICKER: &str = "i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.02; done";

/// A supervisor started in daemon mode, with the pids from its two pidfiles.
struct Started {
    sup: i32,
    cmd: i32,
    pidfile: PathBuf,
}

/// Runs `detach --pidfile p.pid --child-pidfile c.pid OPTS -- ARGV` in daemon mode and waits
/// for both pidfiles.
fn start(g: &Guard, opts: &[&str], argv: &[&str]) -> Started {
    let pidfile = g.pidfile("p.pid");
    let child_pidfile = g.pidfile("c.pid");
    let out = g.run(
        detach()
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--child-pidfile")
            .arg(&child_pidfile)
            .args(opts)
            .arg("--")
            .args(argv),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let (sup, cmd) = (wait_pid(&pidfile), wait_pid(&child_pidfile));
    g.track(sup);
    g.track(cmd);
    Started { sup, cmd, pidfile }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// Like `wait_until`, with 1 ms between polls: the rotation loops below must keep up with a
/// writer at full speed.
fn poll_fast(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Polls until `path` contains `text`; panics with the file's content otherwise.
fn wait_for_text(path: &Path, text: &str) {
    let found = wait_until(|| read(path).contains(text), DEADLINE);
    assert!(found, "{text:?} never appeared in {}: {:?}", path.display(), read(path));
}

/// Polls until the supervisor has left: its pidfile is removed at exit.
fn wait_exit(started: &Started) {
    let gone = wait_until(|| !started.pidfile.exists(), DEADLINE);
    assert!(gone, "the supervisor (pid {}) never exited", started.sup);
}

/// Renames the log away, sends the reopen signal, and waits for the supervisor to create the
/// new file at the path (only it creates that file).
fn rotate(log: &Path, to: &Path, sup: i32, sig: libc::c_int) {
    fs::rename(log, to).unwrap_or_else(|e| panic!("mv {} {}: {e}", log.display(), to.display()));
    signal(sup, sig);
    assert!(poll_fast(|| log.exists()), "{} was not reopened after the signal", log.display());
}

/// Checks that `files`, read in this order, hold exactly `expected` lines, once each, in
/// order, and that no file ends in the middle of a line. Names the first difference instead
/// of printing megabytes.
fn assert_files_hold(files: &[PathBuf], expected: impl Iterator<Item = Vec<u8>>) {
    let mut expected = expected.enumerate();
    // The incomplete last line of a file, to name the split once the next file is read.
    let mut tail: Option<(&PathBuf, Vec<u8>)> = None;
    for file in files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for (n, got) in data.split_inclusive(|&b| b == b'\n').enumerate() {
            if let Some((prev, head)) = tail.take() {
                panic!(
                    "a line is split between files: {} ends with {:?}, {} begins with {:?}",
                    prev.display(),
                    short(&head),
                    file.display(),
                    short(got)
                );
            }
            if !got.ends_with(b"\n") {
                tail = Some((file, got.to_vec()));
                continue;
            }
            let Some((i, want)) = expected.next() else {
                panic!("{} line {n}: extra line {:?}", file.display(), short(got));
            };
            assert!(
                got == want.as_slice(),
                "{} line {n}: expected line {i} {:?}, found {:?}",
                file.display(),
                short(&want),
                short(got)
            );
        }
    }
    if let Some((prev, head)) = tail {
        panic!("{} ends mid-line: {:?}", prev.display(), short(&head));
    }
    if let Some((i, want)) = expected.next() {
        panic!("lines lost from line {i} on: {:?} is in none of the files", short(&want));
    }
}

fn short(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 40 {
        return text.into_owned();
    }
    let (head, tail): (String, String) = (chars[..20].iter().collect(), chars[chars.len() - 12..].iter().collect());
    format!("{head}...{tail} ({} bytes)", line.len())
}

/// The numbers of the "tick N" lines of [`TICKER`] in `text`.
fn ticks(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).collect()
}

/// Checks that the ticks found in `texts`, in this order, are consecutive.
fn assert_consecutive(texts: &[&str]) {
    let all: Vec<u64> = texts.iter().flat_map(|t| ticks(t)).collect();
    for pair in all.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "ticks lost or doubled: {all:?}");
    }
}

/// How many "tick" lines `path` holds after its first line containing `after`.
fn ticks_after(path: &Path, after: &str) -> usize {
    let text = read(path);
    text.find(after).map_or(0, |at| ticks(&text[at..]).len())
}

// 1. Manual rotations under a writer at full speed.

/// mv log log.K + HUP, K = 1..=100, while a writer at full speed writes 200,000 lines or more.
fn hundred_rotations(opts: &[&str]) {
    let g = Guard::new();
    let w = Writer::start(&g, opts, 200_000, 60);
    let mut files = Vec::new();
    for k in 1..=100 {
        w.wait_output(&format!("before rotation {k}"));
        let to = g.path(&format!("app.log.{k}"));
        rotate(&w.log, &to, w.started.sup, libc::SIGHUP);
        files.push(to);
    }
    w.wait_output("after the last rotation");
    files.push(w.log.clone());
    w.finish(&files);
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
fn ticker_with_log_moved(g: &Guard) -> (Started, PathBuf, PathBuf) {
    let log = g.path("app.log");
    let old = g.path("old.log");
    let started = start(g, &["--log", s(&log)], &["sh", "-c", TICKER]);
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
    let started = start(&g, &["--log", s(&log)], &["sh", "-c", TICKER]);
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
    wait_exit(&started);
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
    let started = start(&g, &["--log", s(&log)], &["sh", "-c", TRAPS]);
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
    assert!(alive(started.cmd));
}

#[test]
fn with_another_reopen_signal_hup_is_forwarded() {
    let g = Guard::new();
    let log = g.path("app.log");
    let old = g.path("app.log.1");
    let started = start(&g, &["--log", s(&log), "--reopen-signal", "USR2"], &["sh", "-c", TRAPS]);
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
    let started = start(&g, &["--log", s(&log), "--kill-timeout", "0.5"], &argv);
    wait_for_text(&log, "ready\n");
    let bg = wait_pid(&bg_pidfile);
    g.track(bg);
    assert_eq!(proc_stat(bg).map(|st| st.pgrp), Some(started.cmd), "the sleep should be in the command's group");
    signal(started.sup, libc::SIGTERM);
    wait_exit(&started);
    let members = || group_members(started.cmd);
    assert!(wait_until(|| members().is_empty(), DEADLINE), "left in the command's group: {:?}", members());
    assert!(!alive(bg) && !alive(started.cmd));
    assert!(wait_until(|| !alive(started.sup), DEADLINE), "the supervisor is still alive");
}

#[test]
fn foreground_term_escalation_exits_137() {
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
    let mut status = None;
    let exited = wait_until(
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
        DEADLINE,
    );
    assert!(exited, "detach --foreground did not exit after TERM; stderr: {}", read(&err));
    assert_eq!(status.unwrap().code(), Some(137), "stderr: {}", read(&err));
    assert!(wait_until(|| !alive(bg), DEADLINE), "the command's group was not killed");
}

// 7. Orphans: drained, bounded by --drain-timeout.

#[test]
fn orphan_output_is_drained_before_the_supervisor_exits() {
    let g = Guard::new();
    let log = g.path("app.log");
    let started = start(&g, &["--log", s(&log)], &["sh", "-c", "(sleep 0.5; echo orphan-line) & echo parent-exits"]);
    wait_for_text(&log, "parent-exits\n");
    // The pidfile goes only after the drain: once it is gone, the orphan's line must be there.
    wait_exit(&started);
    assert_eq!(read(&log), "parent-exits\norphan-line\n");
}

/// Starts a command that leaves `sleep 30` behind holding its stdout; returns the orphan.
fn start_with_orphan(g: &Guard, opts: &[&str]) -> (Started, i32) {
    let log = g.path("app.log");
    let orphan_pidfile = g.path("orphan.pid");
    let script = format!("sleep 30 & echo $! > {}; echo parent-exits", s(&orphan_pidfile));
    let mut all_opts = vec!["--log", s(&log)];
    all_opts.extend(opts);
    let started = start(g, &all_opts, &["sh", "-c", &script]);
    let orphan = wait_pid(&orphan_pidfile);
    g.track(orphan);
    wait_for_text(&log, "parent-exits\n");
    (started, orphan)
}

#[test]
fn drain_timeout_bounds_the_wait_for_orphans() {
    let g = Guard::new();
    let (started, orphan) = start_with_orphan(&g, &["--drain-timeout", "0.2"]);
    wait_exit(&started);
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
    let started = start(&g, &["--stdout", s(&out), "--stderr", s(&err), "--no-watch"], &["sh", "-c", &script]);
    wait_for_text(&out, "out1\n");
    wait_for_text(&err, "err1\n");
    let (out1, err1) = (g.path("out.log.1"), g.path("err.log.1"));
    fs::rename(&out, &out1).unwrap();
    fs::rename(&err, &err1).unwrap();
    signal(started.sup, libc::SIGHUP);
    assert!(wait_until(|| out.exists() && err.exists(), DEADLINE), "both files should be reopened");
    fs::write(&go, "").unwrap();
    wait_exit(&started);
    assert_eq!([read(&out1), read(&err1), read(&out), read(&err)], ["out1\n", "err1\n", "out2\n", "err2\n"]);
}

#[test]
fn foreground_exits_with_the_command_status_or_128_plus_signal() {
    let g = Guard::new();
    let log = g.path("app.log");
    for (script, code) in [("exit 7", 7), ("kill -KILL $$", 137), ("kill -TERM $$", 143), ("echo fine", 0)] {
        let out = g.run(detach().args(["--foreground", "--log", s(&log), "--", "sh", "-c", script]));
        assert_eq!(out.code(), Some(code), "{script}: {out:?}");
    }
    assert_eq!(read(&log), "fine\n");
}

// 9. Incomplete lines: shown after a short hold, never split by a reopen.

#[test]
fn incomplete_line_is_written_after_a_short_hold() {
    let g = Guard::new();
    let log = g.path("app.log");
    let go = g.path("go");
    let script = format!("printf partial; while [ ! -e {go} ]; do sleep 0.02; done; echo ' rest'", go = s(&go));
    let started = start(&g, &["--log", s(&log)], &["sh", "-c", &script]);
    // The command is still running and writes nothing more until told to.
    wait_for_text(&log, "partial");
    fs::write(&go, "").unwrap();
    wait_exit(&started);
    assert_eq!(read(&log), "partial rest\n");
}

#[test]
fn line_of_100_kib_in_one_write_is_never_split_by_a_reopen() {
    let g = Guard::new();
    let w = Writer::start(&g, &["--no-watch"], 100, 100 * 1024);
    let mut files = Vec::new();
    for k in 1..=20 {
        w.wait_output(&format!("before rotation {k}"));
        let to = g.path(&format!("app.log.{k}"));
        rotate(&w.log, &to, w.started.sup, libc::SIGHUP);
        files.push(to);
    }
    w.wait_output("after the last rotation");
    files.push(w.log.clone());
    w.finish(&files);
}

// 10. The supervisor is a child subreaper.

#[test]
fn orphans_of_the_command_are_reparented_to_the_supervisor() {
    let g = Guard::new();
    let (started, orphan) = start_with_orphan(&g, &[]);
    let reparented = wait_until(|| proc_stat(orphan).is_some_and(|st| st.ppid == started.sup), DEADLINE);
    assert!(reparented, "orphan {orphan}: {:?}, supervisor {}", proc_stat(orphan), started.sup);
    assert!(!alive(started.cmd), "the command should have exited");
    // The supervisor waits for the orphan's end of the pipe; once it is gone, so is the supervisor.
    assert!(started.pidfile.exists(), "the supervisor left while the orphan held the pipe");
    signal(orphan, libc::SIGKILL);
    wait_exit(&started);
}
