//! The guarantees of issue 8: the log pump under real faults. A full disk (a small tmpfs the
//! test mounts and fills), a reopen onto another file system while the disk is full, the log
//! directory renamed away and back, a storm of HUPs, a 16 MiB line and every byte value, eight
//! writers on one pipe, the command killed by a signal and the supervisor killed by SIGKILL.

use crate::util::{
    DEADLINE, Guard, PY_WRITER, TICKER, alive, assert_consecutive, assert_files_hold, detach, poll_fast, proc_status,
    read, s, signal, size, start, ticks, wait_for_text, wait_until, writer_line,
};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// For the runs that move megabytes through a debug build on a shared machine: long, since it
/// only detects a hang.
const LONG: Duration = Duration::from_secs(120);

// Helpers: a tmpfs to fill, a writer that waits between its phases, and the marker's parts.

/// A tmpfs the test mounted; unmounted (lazily: the supervisor may still hold a file on it)
/// when dropped, even when the test panics.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: "1m") on the new directory `name` in the
    /// guard's temp dir. None, with a line saying why, when not root.
    fn mount(g: &Guard, test: &str, name: &str, size: &str) -> Option<Tmpfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: {test} needs root to mount a tmpfs");
            return None;
        }
        let dir = g.path(name);
        fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount -t tmpfs on {}: {out:?}", dir.display());
        Some(Tmpfs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fills the file system with a file named `filler`: the disk is full once this returns
    /// (checked: a new file cannot take one byte).
    fn fill(&self) -> PathBuf {
        let path = self.path("filler");
        let mut file = OpenOptions::new().create_new(true).write(true).open(&path).unwrap();
        let chunk = vec![b'f'; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let probe = self.path("probe");
        let err = fs::write(&probe, "x").expect_err("the tmpfs is not full");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        let _ = fs::remove_file(&probe);
        path
    }

    /// umount -l: the path now names the directory under the mount point.
    fn unmount(&self) {
        let out = Command::new("umount").arg("-l").arg(&self.dir).output().expect("run umount");
        assert!(out.status.success(), "umount -l {}: {out:?}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Fails harmlessly when the test unmounted it already.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

/// A writer in three phases, lines of [`writer_line`]: `WIDTH A B C CTL` writes lines 0..A,
/// waits until the supervisor has read them all (FIONREAD on its end of the pipe says 0), creates
/// CTL/phase1, waits for CTL/go; writes lines A..B the same way, creates CTL/done, waits for
/// CTL/end; writes lines B..C and exits 0. So the test knows what was written when, and that the
/// supervisor had read (so held, written or dropped) all of it.
const PHASED_WRITER: &str = r#"
import fcntl, os, sys, termios, time
width, a, b, c, ctl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pad = b"x" * (width - 14) + b"\n"
def lines(lo, hi):
    for i in range(lo, hi):
        os.write(1, b"line %07d " % i + pad)
def read_by_supervisor():
    n = bytearray(4)
    while True:
        fcntl.ioctl(1, termios.FIONREAD, n)
        if int.from_bytes(n, "little") == 0:
            return
        time.sleep(0.01)
def mark(name):
    open(os.path.join(ctl, name), "w").close()
def wait(name):
    while not os.path.exists(os.path.join(ctl, name)):
        time.sleep(0.01)
lines(0, a); read_by_supervisor(); mark("phase1"); wait("go")
lines(a, b); read_by_supervisor(); mark("done"); wait("end")
lines(b, c)
"#;

/// Line width of the phased writer: even, so that a cut at a page boundary of the tmpfs
/// (a multiple of 4096) never falls just before a newline, where "the head ends with a line
/// break" could not be told from "a line break was added before the marker".
const WIDTH: usize = 100;

/// [`PHASED_WRITER`] under a daemonized supervisor.
struct Phased {
    sup: i32,
    log: PathBuf,
    /// The end of each phase, in lines.
    a: u64,
    b: u64,
    c: u64,
    /// All the writer writes, in order.
    stream: Vec<u8>,
    pidfile: PathBuf,
}

impl Phased {
    fn start(g: &Guard, log: &Path, opts: &[&str], (a, b, c): (u64, u64, u64)) -> Phased {
        let args = [WIDTH.to_string(), a.to_string(), b.to_string(), c.to_string(), g.marker()];
        let mut argv = vec!["python3", "-c", PHASED_WRITER];
        argv.extend(args.iter().map(String::as_str));
        let mut all_opts = vec!["--log", s(log)];
        all_opts.extend(opts);
        let (started, _) = start(g, &all_opts, &argv);
        let stream = (0..c).flat_map(|i| writer_line(i, WIDTH)).collect();
        Phased { sup: started.sup, log: log.to_path_buf(), a, b, c, stream, pidfile: started.pidfile }
    }

    fn bytes(&self, lines: u64) -> usize {
        lines as usize * WIDTH
    }

    /// Waits for `name` in the control dir; panics with the log's size if it never comes.
    fn wait_for(&self, g: &Guard, name: &str) {
        let ok = wait_until(|| g.path(name).exists(), LONG);
        assert!(ok, "the writer never created {name} (log: {} bytes): it is blocked", size(&self.log));
    }

    /// Phase 1 written through to the log, before any fault.
    fn wait_phase1(&self, g: &Guard) {
        self.wait_for(g, "phase1");
        let want = self.bytes(self.a) as u64;
        assert!(wait_until(|| size(&self.log) == want, DEADLINE), "phase 1 never reached the log: {}", size(&self.log));
    }

    /// Lets phase 2 run and waits until the supervisor has read all of it.
    fn run_phase2(&self, g: &Guard) {
        fs::write(g.path("go"), "").unwrap();
        self.wait_for(g, "done");
        assert!(alive(self.sup), "the supervisor died while the disk was full");
    }

    /// Lets phase 3 run and waits for the supervisor to leave (its pidfile goes last).
    fn finish(&self, g: &Guard) {
        fs::write(g.path("end"), "").unwrap();
        let gone = wait_until(|| !self.pidfile.exists() && !alive(self.sup), LONG);
        assert!(gone, "the supervisor never exited; log: {} bytes", size(&self.log));
    }

    /// The last line of phase 2, as text.
    fn last_of_phase2(&self) -> String {
        String::from_utf8(writer_line(self.b - 1, WIDTH)).unwrap()
    }
}

/// Where `needle` occurs in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

/// `2026-11-23T17:01:41.603Z` as milliseconds since the epoch; panics on any other shape.
fn parse_time(text: &str) -> u64 {
    let b = text.as_bytes();
    let shape = b.len() == 24
        && [4, 7, 10, 13, 16, 19, 23].iter().zip(b"--T::.Z").all(|(&i, &c)| b[i] == c)
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19, 20..23]
            .iter()
            .all(|r| b[r.clone()].iter().all(u8::is_ascii_digit));
    assert!(shape, "not an RFC 3339 UTC time with milliseconds: {text:?}");
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss, ms) = (n(11..13), n(14..16), n(17..19), n(20..23));
    assert!((1..=12).contains(&m) && (1..=31).contains(&d) && hh < 24 && mm < 60 && ss < 60, "{text:?}");
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (((days * 24 + hh) * 60 + mm) * 60 + ss) as u64 * 1000 + ms as u64
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The marker line `detach: dropped N bytes (disk full) between T1 and T2` at the start of
/// `text`: N, and checks that T1 and T2 parse and that `not_before <= T1 <= T2 <= not_after`.
/// Returns N and the marker's length with its newline.
fn parse_marker(text: &[u8], not_before: SystemTime, not_after: SystemTime) -> (u64, usize) {
    let end = text.iter().position(|&c| c == b'\n').expect("the marker line ends with a newline");
    let line = std::str::from_utf8(&text[..end]).expect("the marker is text");
    let fail = || format!("not the marker line: {line:?}");
    let rest = line.strip_prefix("detach: dropped ").unwrap_or_else(|| panic!("{}", fail()));
    let (n, rest) = rest.split_once(" bytes (disk full) between ").unwrap_or_else(|| panic!("{}", fail()));
    let (first, last) = rest.split_once(" and ").unwrap_or_else(|| panic!("{}", fail()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("{}", fail()));
    let (first, last) = (parse_time(first), parse_time(last));
    let (lo, hi) = (ms(not_before), ms(not_after));
    assert!(lo <= first && first <= last && last <= hi, "{line:?}: want {lo} <= {first} <= {last} <= {hi} (ms)");
    (n, end + 1)
}

/// Checks one disk-full episode: `head` (what the log held up to the fault) and `rest` (the
/// marker line, then what was written after it) against `stream`, everything the command
/// wrote. The head must be the stream's beginning (maybe cut in a line, then one added line
/// break), the part after the marker a contiguous tail of the stream starting at a line, and
/// the marker's count exactly the bytes between them. Returns (head, dropped, tail) in bytes.
fn check_gap(head: &[u8], rest: &[u8], stream: &[u8], drops: (SystemTime, SystemTime)) -> (usize, u64, usize) {
    let kept = if stream.starts_with(head) {
        head.len()
    } else {
        let cut = head.strip_suffix(b"\n").filter(|h| stream.starts_with(h));
        let cut =
            cut.unwrap_or_else(|| panic!("the {} bytes before the marker are not the output's beginning", head.len()));
        assert_ne!(stream[cut.len()], b'\n');
        cut.len()
    };
    let (dropped, marker_len) = parse_marker(rest, drops.0, drops.1);
    let tail = &rest[marker_len..];
    assert!(stream.ends_with(tail), "the {} bytes after the marker are not the output's end", tail.len());
    let at = stream.len() - tail.len();
    assert!(at == 0 || stream[at - 1] == b'\n', "the data after the marker starts inside a line (offset {at})");
    assert_eq!(
        kept as u64 + dropped + tail.len() as u64,
        stream.len() as u64,
        "kept {kept} bytes before the marker and {} after it, of {}: the marker says {dropped} were dropped",
        tail.len(),
        stream.len()
    );
    (kept, dropped, tail.len())
}

// 1. A full disk: the command goes on, the supervisor holds what it may, and says what it dropped.

/// Phase 1 into a tmpfs, the tmpfs filled, phase 2 (the command must get through it), space
/// freed, phase 3. With `drops`: one marker, exactly counted, the held data (at most `bound`
/// bytes) after it. Without: no marker, every line in order.
fn disk_full(test: &str, log_buffer: &str, bound: usize, phases: (u64, u64, u64), drops: bool) {
    let g = Guard::new();
    let Some(tmp) = Tmpfs::mount(&g, test, "fs", "1m") else { return };
    let w = Phased::start(&g, &tmp.path("app.log"), &["--log-buffer", log_buffer], phases);
    w.wait_phase1(&g);
    let filler = tmp.fill();
    let full_since = SystemTime::now();
    w.run_phase2(&g);
    let while_full = fs::read(&w.log).unwrap();
    assert!(while_full.len() < w.bytes(w.b), "phase 2 was all written to a full disk?");
    assert!(while_full.starts_with(&w.stream[..w.bytes(w.a)]), "phase 1 damaged");
    let freed_at = SystemTime::now();
    fs::remove_file(&filler).unwrap();
    // Written by a retry while the command runs, not only at exit.
    let awaited = if drops { "detach: dropped".to_string() } else { w.last_of_phase2() };
    wait_for_text(&w.log, &awaited);
    w.finish(&g);
    let data = fs::read(&w.log).unwrap();
    let markers = find_all(&data, b"detach: ");
    if !drops {
        assert!(markers.is_empty(), "a line of detach's in the log: {:?}", read(&w.log));
        assert_files_hold(std::slice::from_ref(&w.log), (0..w.c).map(|i| writer_line(i, WIDTH)));
        println!("{} bytes while full (of {}), then all {} lines", while_full.len(), data.len(), w.c);
        return;
    }
    assert_eq!(markers.len(), 1, "one marker, and no other line of detach's: at {markers:?}");
    let (head, rest) = data.split_at(markers[0]);
    let (kept, dropped, tail) = check_gap(head, rest, &w.stream, (full_since, freed_at));
    assert_whole_lines_before_marker(head, &w.stream, while_full.len());
    let held = tail - (w.bytes(w.c) - w.bytes(w.b));
    println!("kept {kept} bytes, dropped {dropped}, then held {held} and phase 3 (bound {bound})");
    assert!(kept >= w.bytes(w.a), "lines written before the fault are missing");
    assert!(dropped > 0);
    assert!(held <= bound, "held {held} bytes, over --log-buffer {log_buffer}");
    if bound > 0 {
        assert!(held > 0, "nothing held with --log-buffer {log_buffer}");
    }
}

#[test]
fn disk_full_drops_the_oldest_past_the_bound_and_says_how_much_once_space_is_back() {
    // Phase 2: 4 MB, more than the pipe (1 MiB), the line buffer and the backlog together,
    // so the writer finishes only if the supervisor keeps reading.
    disk_full("disk_full_drops_the_oldest_past_the_bound", "256K", 256 << 10, (100, 40_100, 40_200), true);
}

/// The log before the marker: the output's beginning, whole lines only; a line the disk cut
/// while full (`while_full` bytes were in the log) was completed, and nothing else added.
fn assert_whole_lines_before_marker(head: &[u8], stream: &[u8], while_full: usize) {
    let whole = stream.starts_with(head) && head.ends_with(b"\n");
    let end = String::from_utf8_lossy(&head[head.len().saturating_sub(2 * WIDTH)..]);
    assert!(whole, "a torn line before the marker: the log there ends with {end:?}");
    assert!(
        while_full <= head.len() && head.len() - while_full < WIDTH,
        "{} bytes while full, {} before the marker",
        while_full,
        head.len()
    );
}

/// Issue 13, item 16: the rest of a line cut by the disk filling was dropped first, leaving a
/// torn fragment before the marker.
#[test]
fn a_line_cut_by_a_full_disk_is_completed_before_the_marker() {
    let g = Guard::new();
    let Some(tmp) = Tmpfs::mount(&g, "a_line_cut_by_a_full_disk_is_completed_before_the_marker", "fs", "1m") else {
        return;
    };
    // Phase 2: 200 KB against a 64 KiB backlog, so that lines are dropped.
    let w = Phased::start(&g, &tmp.path("app.log"), &["--log-buffer", "64K"], (100, 2_100, 2_200));
    w.wait_phase1(&g);
    let filler = tmp.fill();
    let full_since = SystemTime::now();
    w.run_phase2(&g);
    let while_full = fs::read(&w.log).unwrap();
    assert!(!while_full.ends_with(b"\n"), "the disk filled at a line's end: no line was cut");
    let freed_at = SystemTime::now();
    fs::remove_file(&filler).unwrap();
    wait_for_text(&w.log, "detach: dropped");
    w.finish(&g);
    let data = fs::read(&w.log).unwrap();
    let markers = find_all(&data, b"detach: ");
    assert_eq!(markers.len(), 1, "one marker, and no other line of detach's: at {markers:?}");
    let (head, rest) = data.split_at(markers[0]);
    assert_whole_lines_before_marker(head, &w.stream, while_full.len());
    check_gap(head, rest, &w.stream, (full_since, freed_at));
}

#[test]
fn disk_full_within_the_backlog_delays_lines_but_loses_none() {
    disk_full("disk_full_within_the_backlog", "1M", 1 << 20, (100, 3_100, 3_200), false);
}

#[test]
fn disk_full_with_log_buffer_0_counts_every_byte_written_while_full() {
    disk_full("disk_full_with_log_buffer_0", "0", 0, (100, 1_100, 1_200), true);
}

// 2. A full disk, then a reopen onto a file elsewhere: the marker is that file's first line.

#[test]
fn reopen_onto_another_file_system_during_disk_full_writes_the_marker_first() {
    let g = Guard::new();
    let test = "reopen_onto_another_file_system_during_disk_full";
    let Some(tmp) = Tmpfs::mount(&g, test, "logs", "1m") else { return };
    let w = Phased::start(&g, &tmp.path("app.log"), &["--log-buffer", "256K"], (100, 40_100, 40_200));
    w.wait_phase1(&g);
    tmp.fill();
    let full_since = SystemTime::now();
    w.run_phase2(&g);
    let old = fs::read(&w.log).unwrap();
    // The full tmpfs leaves the path (the supervisor's fd keeps it alive): the path now names
    // nothing, in a directory of the test's own file system, with room.
    tmp.unmount();
    assert!(!w.log.exists());
    signal(w.sup, libc::SIGHUP);
    wait_for_text(&w.log, "detach: dropped");
    // The rest of the old file's cut line is dropped by the reopen itself.
    let reopened_at = SystemTime::now();
    w.finish(&g);
    let new = fs::read(&w.log).unwrap();
    assert!(find_all(&old, b"detach: ").is_empty(), "a line of detach's in the full file");
    assert!(
        new.starts_with(b"detach: dropped "),
        "the new file does not begin with the marker: {:?}",
        String::from_utf8_lossy(&new[..new.len().min(120)])
    );
    assert_eq!(find_all(&new, b"detach: ").len(), 1, "one marker, and no other line of detach's");
    // The old file's last line may be cut where the disk filled: its rest counts as dropped.
    let cut = !old.ends_with(b"\n");
    let head: Vec<u8> = if cut { [&old[..], b"\n"].concat() } else { old.clone() };
    let (kept, dropped, tail) = check_gap(&head, &new, &w.stream, (full_since, reopened_at));
    println!("old file: {kept} bytes (cut in a line: {cut}); dropped {dropped}; new file: {tail} after the marker");
    assert!(kept >= w.bytes(w.a), "lines written before the fault are missing");
    let held = tail - (w.bytes(w.c) - w.bytes(w.b));
    assert!(0 < held && held <= 256 << 10, "held {held} bytes, with --log-buffer 256K");
}

// 3. The log directory renamed, then restored.

#[test]
fn log_directory_renamed_then_restored_loses_and_doubles_nothing_and_warns_once() {
    let g = Guard::new();
    let (dir, moved) = (g.path("logs"), g.path("logs.moved"));
    fs::create_dir(&dir).unwrap();
    let (log, moved_log) = (dir.join("app.log"), moved.join("app.log"));
    let script = format!("trap 'echo got-USR1' USR1; {TICKER}");
    let (started, _) = start(&g, &["--log", s(&log)], &["sh", "-c", &script]);
    wait_for_text(&log, "tick 1\n");
    fs::rename(&dir, &moved).unwrap();
    let warning = format!("detach: cannot reopen '{}': No such file or directory", log.display());
    // Several HUPs while renamed, each handled on its own: HUP is acted on before USR1 (the
    // loop takes signals in number order), so once the USR1 trap has written its line, the
    // HUP sent before it was handled, and the next one is not merged with it.
    let usr1s = |path: &Path| read(path).matches("got-USR1\n").count();
    for k in 1..=5 {
        signal(started.sup, libc::SIGHUP);
        signal(started.sup, libc::SIGUSR1);
        assert!(wait_until(|| usr1s(&moved_log) == k, DEADLINE), "USR1 {k} never echoed: {:?}", read(&moved_log));
        assert!(read(&moved_log).contains(&warning), "no warning after HUP {k}: {:?}", read(&moved_log));
    }
    // And the watch tries too, once a second: 125 ticks of 20 ms or more are 2.5 s at least.
    let after_warning = |path: &Path| read(path).split_once(&warning).map_or(0, |(_, rest)| ticks(rest).len());
    assert!(wait_until(|| after_warning(&moved_log) >= 125, DEADLINE * 2), "lines stopped: {:?}", read(&moved_log));
    assert!(!dir.exists(), "the log directory was created again");
    fs::rename(&moved, &dir).unwrap();
    signal(started.sup, libc::SIGHUP);
    signal(started.sup, libc::SIGUSR1);
    assert!(wait_until(|| usr1s(&log) == 6, DEADLINE), "USR1 6 never echoed: {:?}", read(&log));
    let more = wait_until(|| read(&log).rsplit_once("got-USR1\n").is_some_and(|(_, r)| ticks(r).len() >= 10), DEADLINE);
    assert!(more, "lines stopped after the directory came back: {:?}", read(&log));
    signal(started.sup, libc::SIGTERM);
    started.wait_exit(&log);
    let text = read(&log);
    assert_eq!(text.matches("detach: ").count(), 1, "one warning for five HUPs and the watch: {text:?}");
    assert_eq!(text.matches(&warning).count(), 1, "{text:?}");
    assert_eq!(usr1s(&log), 6);
    for line in text.lines() {
        assert!(
            line.starts_with("tick ") || line == "got-USR1" || line.starts_with(&warning),
            "unexpected line {line:?}"
        );
    }
    assert_consecutive(&[&text]);
}

// 4. A storm of HUPs.

#[test]
fn two_thousand_hups_during_a_writer_lose_and_double_nothing() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (stop, count) = (g.path("stop"), g.path("count"));
    let width = 60;
    let argv = ["python3", "-c", PY_WRITER, "100000", "60", s(&stop), s(&count)];
    let (mut child, _, err) = g.spawn(detach().args(["--foreground", "--log", s(&log), "--"]).args(argv));
    let sup = child.id() as i32;
    assert!(poll_fast(|| size(&log) > 0), "no output; stderr: {}", read(&err));
    // 2000 HUPs in bursts of 20, each burst once the log has grown, so they spread over the
    // writing; every 500, the log is moved first, so some reopens switch files.
    let mut files = Vec::new();
    for k in 1..=2000 {
        if k % 500 == 0 {
            let to = g.path(&format!("app.log.{}", k / 500));
            fs::rename(&log, &to).unwrap();
            files.push(to);
        }
        signal(sup, libc::SIGHUP);
        if k % 500 == 0 {
            assert!(poll_fast(|| log.exists()), "not reopened after HUP {k}");
        }
        if k % 20 == 0 {
            let before = size(&log);
            assert!(poll_fast(|| size(&log) > before), "the log stopped growing after HUP {k}");
        }
    }
    files.push(log.clone());
    assert!(child.try_wait().unwrap().is_none(), "the supervisor exited during the HUPs: {}", read(&err));
    fs::write(&stop, "").unwrap();
    let status = wait_long(&mut child, &err);
    assert_eq!(status.code(), Some(0), "stderr: {}", read(&err));
    let count: u64 = read(&count).parse().expect("the writer's line count");
    assert!(count >= 100_000);
    println!("{count} lines in {} files", files.len());
    assert_files_hold(&files, (0..count).map(|i| writer_line(i, width)));
}

/// Waits (up to [`LONG`]) for a `detach --foreground` started with [`Guard::spawn`].
fn wait_long(child: &mut Child, err: &Path) -> ExitStatus {
    let mut status = None;
    let done = wait_until(
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
        LONG,
    );
    assert!(done, "detach --foreground did not exit; stderr: {}", read(err));
    status.unwrap()
}

// 5. A 16 MiB line, then every byte value: byte for byte, in bounded memory.

/// Writes a 16 MiB line (no newline: 16-byte records "@<offset in hex>|") then 256 KiB of
/// bytes 0..=255 repeated, creates $1, and waits for $2 before it exits.
const HUGE_LINE: &str = r#"
import os, sys, time
out = sys.stdout.buffer
for off in range(0, 16 << 20, 1 << 16):
    out.write(b"".join(b"@%014x|" % o for o in range(off, off + (1 << 16), 16)))
out.write(bytes(range(256)) * 1024)
out.flush()
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
"#;

/// The supervisor's bound: 128 KiB of line buffer per pipe plus the backlog (empty here), on
/// top of a debug binary and libc (about 2.5 MiB). Holding the 16 MiB line would show 16+ MiB.
const HWM_BOUND_KIB: u64 = 8 * 1024;

#[test]
fn sixteen_mib_line_and_every_byte_value_pass_byte_for_byte_in_bounded_memory() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (done, end) = (g.path("done"), g.path("end"));
    let (started, _) = start(&g, &["--log", s(&log)], &["python3", "-c", HUGE_LINE, s(&done), s(&end)]);
    let mut want = Vec::with_capacity((16 << 20) + (256 << 10));
    for off in (0..16 << 20).step_by(16) {
        want.extend_from_slice(format!("@{off:014x}|").as_bytes());
    }
    for _ in 0..1024 {
        want.extend(0..=255u8);
    }
    // All of it in the file (the last 245 bytes after a hold for a newline), the command still
    // running: the supervisor's peak so far is its peak for the whole run. (Or the bound is
    // passed already: no need to wait for a design that holds the line until it ends.)
    let hwm_kib = || {
        let hwm = proc_status(started.sup, "VmHWM").expect("VmHWM of the supervisor");
        hwm.strip_suffix(" kB").and_then(|n| n.parse::<u64>().ok()).unwrap_or_else(|| panic!("VmHWM {hwm:?}"))
    };
    let all_in = || size(&log) == want.len() as u64;
    let ended = wait_until(|| done.exists() && (all_in() || hwm_kib() >= HWM_BOUND_KIB), LONG);
    let kib = hwm_kib();
    eprintln!("supervisor VmHWM after a 16 MiB line and 256 KiB of binary: {kib} kB");
    assert!(kib < HWM_BOUND_KIB, "the supervisor's VmHWM is {kib} kB, over {HWM_BOUND_KIB} kB");
    assert!(ended, "the log never got all {} bytes: {}", want.len(), size(&log));
    fs::write(&end, "").unwrap();
    started.wait_exit(&log);
    let got = fs::read(&log).unwrap();
    let first_difference = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{} bytes written, {} in the log; first difference at {first_difference:?}",
        want.len(),
        got.len()
    );
}

// 6. Eight writers on one pipe.

/// Forks 8 writers; writer K writes lines I = 0..20000, each in one write(2): "wK IIIII ", then
/// a letter repeated, then a newline, [`writer8_len`] bytes in all (up to 4000, under PIPE_BUF).
const EIGHT_WRITERS: &str = r#"
import os
def length(k, i):
    return 4000 if i % 50 == k else 24 + (i * 31 + k * 17) % 200
kids = []
for k in range(8):
    pid = os.fork()
    if pid == 0:
        for i in range(20000):
            head = b"w%d %05d " % (k, i)
            line = head + bytes([97 + i % 26]) * (length(k, i) - len(head) - 1) + b"\n"
            assert os.write(1, line) == len(line)
        os._exit(0)
    kids.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in kids]
raise SystemExit(0 if all(c == 0 for c in codes) else 1)
"#;

fn writer8_len(k: usize, i: usize) -> usize {
    if i % 50 == k { 4000 } else { 24 + (i * 31 + k * 17) % 200 }
}

fn writer8_line(k: usize, i: usize) -> Vec<u8> {
    let mut line = format!("w{k} {i:05} ").into_bytes();
    line.resize(writer8_len(k, i) - 1, b'a' + (i % 26) as u8);
    line.push(b'\n');
    line
}

#[test]
fn eight_concurrent_writers_of_pipe_buf_lines_are_never_torn() {
    const WRITERS: usize = 8;
    const LINES: usize = 20_000;
    let g = Guard::new();
    let log = g.path("app.log");
    let (mut child, _, err) =
        g.spawn(detach().args(["--foreground", "--log", s(&log), "--", "python3", "-c", EIGHT_WRITERS]));
    let status = wait_long(&mut child, &err);
    assert_eq!(status.code(), Some(0), "stderr: {}", read(&err));
    let data = fs::read(&log).unwrap();
    assert!(data.ends_with(b"\n"), "the log ends mid-line");
    let mut next = [0usize; WRITERS];
    for (n, line) in data.split_inclusive(|&c| c == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        let short = || text.chars().take(40).collect::<String>();
        let (k, i) = text
            .strip_prefix('w')
            .and_then(|t| Some((t.get(..1)?.parse::<usize>().ok()?, t.get(2..7)?.parse::<usize>().ok()?)))
            .filter(|&(k, _)| k < WRITERS)
            .unwrap_or_else(|| panic!("line {n}: not a writer's line: {:?} ({} bytes)", short(), line.len()));
        assert_eq!(i, next[k], "line {n}: writer {k}'s line {i} where {} was due", next[k]);
        assert!(line == writer8_line(k, i).as_slice(), "line {n}: writer {k}'s line {i} torn: {} bytes", line.len());
        next[k] += 1;
    }
    assert_eq!(next, [LINES; WRITERS], "lines per writer");
}

// 7. Deaths by signal: KILL and TERM are in supervise.rs; a signal that dumps core, here.

/// detach dies by the command's SEGV, says so in its log, and dumps no core of its own even
/// where it could (RLIMIT_CORE unlimited, core_pattern writing into its working directory).
#[test]
fn foreground_dies_by_sigsegv_without_a_core_of_its_own_and_says_so() {
    let g = Guard::new();
    let log = g.path("app.log");
    let mut cmd = detach();
    cmd.current_dir(g.dir.path()).args(["--foreground", "--log", s(&log), "--", "sh", "-c"]);
    cmd.arg("ulimit -c 0; echo up; kill -SEGV $$");
    // SAFETY: setrlimit(2) between fork and exec, on a value made before the fork.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
    let out = g.run(&mut cmd);
    assert_eq!(out.how(), format!("killed by {}", libc::SIGSEGV), "{out:?}");
    assert_eq!(read(&log), "up\ndetach: 'sh' was killed by SIGSEGV\n");
}

// 8. The supervisor killed by SIGKILL: the command gets TERM.

/// Writes "TERM" into $1 when it gets TERM; says "ready" first.
const TERM_TRAP: &str = "trap 'echo TERM > \"$1\"; exit 0' TERM; echo ready; while :; do sleep 0.05; done";

/// Starts TERM_TRAP with `opts`, SIGKILLs the supervisor, and checks that the command's trap
/// ran and the command left. `shared`: a directory the command may write to.
fn supervisor_killed(g: &Guard, opts: &[&str], shared: &Path) {
    let log = g.path("app.log");
    let got = shared.join("got-term");
    let mut all_opts = vec!["--log", s(&log)];
    all_opts.extend(opts);
    let (started, cmd) = start(g, &all_opts, &["sh", "-c", TERM_TRAP, "sh", s(&got)]);
    wait_for_text(&log, "ready\n");
    assert!(!got.exists());
    signal(started.sup, libc::SIGKILL);
    assert!(wait_until(|| !alive(started.sup), DEADLINE), "the supervisor survived SIGKILL");
    assert!(wait_until(|| got.exists(), DEADLINE), "the command never got TERM");
    assert_eq!(read(&got), "TERM\n");
    assert!(wait_until(|| !alive(cmd), DEADLINE), "the command is still running");
}

#[test]
fn supervisor_killed_by_sigkill_sends_term_to_the_command() {
    let g = Guard::new();
    supervisor_killed(&g, &[], g.dir.path());
}

/// PR_SET_PDEATHSIG is cleared by a change of credentials: it must be set after the switch.
#[test]
fn supervisor_killed_by_sigkill_sends_term_to_the_command_run_as_another_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: supervisor_killed_by_sigkill_..._another_user needs root for --user");
        return;
    }
    let g = Guard::new();
    fs::set_permissions(g.dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let shared = g.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    supervisor_killed(&g, &["--user", "nobody"], &shared);
}

// 9. --log-buffer 0 is case 1 with no bound (above). 10. Bad sizes.

#[test]
fn bad_log_buffer_sizes_exit_64_naming_the_value() {
    let g = Guard::new();
    for args in [
        ["--log-buffer", "4X"],
        ["--log-buffer", "-1"],
        ["--log-buffer=-1", "--foreground"],
        ["--log-buffer", "99999999999G"],
    ] {
        let value = args[0].strip_prefix("--log-buffer=").unwrap_or(args[1]);
        let pidfile = g.pidfile("p.pid");
        let out = g.run(detach().args(args).arg("--pidfile").arg(&pidfile).args(["--", "sleep", "30"]).arg(g.marker()));
        assert_eq!(out.code(), Some(64), "{args:?}: {out:?}");
        assert!(out.stderr.contains(&format!("'{value}'")), "{args:?}: the error does not name {value:?}: {out:?}");
        assert!(!pidfile.exists(), "{args:?}: started anyway");
    }
}
