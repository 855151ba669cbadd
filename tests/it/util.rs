//! Small helpers for the integration tests: run the real binary, poll for a handshake,
//! read /proc, and a guard that kills whatever a test started, even when it panics.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long any handshake may take before a test gives up. Generous: only a hang fails it.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The binary under test.
pub fn detach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_detach"))
}

/// Polls `cond` every 10ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(mut cond: impl FnMut() -> bool, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Like [`wait_until`] with [`DEADLINE`], with 1 ms between polls: for the loops that must keep
/// up with a writer at full speed.
pub fn poll_fast(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Polls until `path` contains `text`; panics with the file's content otherwise.
pub fn wait_for_text(path: &Path, text: &str) {
    let found = wait_until(|| read(path).contains(text), DEADLINE);
    assert!(found, "{text:?} never appeared in {}: {:?}", path.display(), read(path));
}

/// Waits for `child` to exit and returns its status; after [`DEADLINE`] kills it and panics
/// with `what()`.
pub fn wait_child(child: &mut Child, what: impl FnOnce() -> String) -> ExitStatus {
    let mut status = None;
    let done = wait_until(
        || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        },
        DEADLINE,
    );
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{}", what());
    }
    status.unwrap()
}

/// A path as the `&str` an argv takes.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Sends `sig` to `pid`; panics when kill(2) fails.
pub fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// The size of a file, 0 when it does not exist (yet).
pub fn size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The pid in a pidfile, only once it is completely written ("<pid>\n").
pub fn read_pid(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    text.strip_suffix('\n')?.parse().ok()
}

/// Polls for a complete pidfile; panics with the path when it never appears.
pub fn wait_pid(path: &Path) -> i32 {
    let mut pid = None;
    let found = wait_until(
        || {
            pid = read_pid(path);
            pid.is_some()
        },
        DEADLINE,
    );
    assert!(found, "pidfile {} never appeared", path.display());
    pid.unwrap()
}

/// Reads a file as text, empty when it does not exist (yet).
pub fn read(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// The fields of /proc/PID/stat the tests look at (man 5 proc_pid_stat).
#[derive(Debug)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i64,
    pub starttime: u64,
    /// utime + stime: the CPU time it has used, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses /proc/PID/stat. comm (field 2) may hold spaces and parens, so the numeric fields
/// are split after the *last* ')'.
pub fn proc_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state), so field N is rest[N - 3].
    Some(Stat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        session: rest.get(3)?.parse().ok()?,
        tty_nr: rest.get(4)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
        cpu_ticks: rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?,
    })
}

/// One field of /proc/PID/status ("Umask", "SigIgn", "Uid", ...), value trimmed.
pub fn proc_status(pid: i32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim().to_string())
    })
}

/// The open fds of a process, each with its readlink target ("/dev/null", "pipe:[123]").
pub fn proc_fds(pid: i32) -> BTreeMap<i32, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {dir}: {e}"));
    let mut fds = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Ok(target) = fs::read_link(entry.path()) {
            fds.insert(fd, target.to_string_lossy().into_owned());
        }
    }
    fds
}

/// The working directory of a process.
pub fn proc_cwd(pid: i32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/cwd")).expect("readlink /proc/PID/cwd")
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Pids of live processes (other than this one) with `marker` inside one of their arguments.
pub fn pids_with_arg(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid != me && String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// What a finished run of `detach` left: status and its own stdout/stderr.
#[derive(Debug)]
pub struct Out {
    /// The pid `detach` itself had.
    pub pid: i32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// How it ended: see [`how`].
    pub fn how(&self) -> String {
        how(&self.status)
    }
}

/// How a process ended, as a test compares it: "exit 3", "killed by 15", "killed by 11 (core)".
pub fn how(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) if status.core_dumped() => format!("killed by {sig} (core)"),
        (None, Some(sig)) => format!("killed by {sig}"),
        _ => format!("{status:?}"),
    }
}

/// Owns a test's temp dir; on drop SIGKILLs what the test started: the pids in the pidfiles it
/// knows, the pids it was told about, and any process whose argv names the temp dir. Only
/// processes started after the guard was created are touched, so a stale or reused pid is safe.
pub struct Guard {
    pub dir: TempDir,
    pidfiles: RefCell<Vec<PathBuf>>,
    pids: RefCell<Vec<i32>>,
    runs: Cell<u32>,
    born: u64,
}

impl Guard {
    pub fn new() -> Guard {
        Guard {
            dir: tempfile::tempdir().expect("tempdir"),
            pidfiles: RefCell::new(Vec::new()),
            pids: RefCell::new(Vec::new()),
            runs: Cell::new(0),
            born: now_ticks(),
        }
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A pidfile path inside the temp dir, remembered so its pid is killed on drop.
    pub fn pidfile(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        self.pidfiles.borrow_mut().push(path.clone());
        path
    }

    /// The temp dir as a string: put it in an argv to find the process later.
    pub fn marker(&self) -> String {
        self.dir.path().to_str().expect("utf-8 temp dir").to_string()
    }

    /// Remembers a pid to kill on drop.
    pub fn track(&self, pid: i32) {
        self.pids.borrow_mut().push(pid);
    }

    fn stdio(&self) -> (Stdio, PathBuf, PathBuf) {
        let n = self.runs.get();
        self.runs.set(n + 1);
        let (stdin, out, err) =
            (self.path(&format!(".stdin-{n}")), self.path(&format!(".stdout-{n}")), self.path(&format!(".stderr-{n}")));
        // A real file, not /dev/null, so a test can tell whether fd 0 was replaced.
        fs::write(&stdin, "").expect("create stdin file");
        (Stdio::from(fs::File::open(&stdin).expect("open stdin")), out, err)
    }

    /// Starts `cmd` with stdout/stderr in files of the temp dir; the pid is tracked.
    /// Returns the child and the paths of its stdout and stderr.
    pub fn spawn(&self, cmd: &mut Command) -> (Child, PathBuf, PathBuf) {
        let (stdin, out, err) = self.stdio();
        let child = cmd
            .stdin(stdin)
            .stdout(fs::File::create(&out).expect("create stdout file"))
            .stderr(fs::File::create(&err).expect("create stderr file"))
            .spawn()
            .expect("spawn detach");
        self.track(child.id() as i32);
        (child, out, err)
    }

    /// Runs `cmd` to completion. Its output goes to files, not pipes, so a daemon that wrongly
    /// keeps the caller's stdout cannot hang the test; it waits on the exit status only.
    pub fn run(&self, cmd: &mut Command) -> Out {
        let (mut child, out, err) = self.spawn(cmd);
        let status = wait_child(&mut child, || format!("{cmd:?} did not exit; stderr: {}", read(&err)));
        Out { pid: child.id() as i32, status, stdout: read(&out), stderr: read(&err) }
    }

    /// True for a live process started after this guard: one this test may have started.
    fn is_ours(&self, pid: i32) -> bool {
        proc_stat(pid).is_some_and(|s| s.starttime + 1 >= self.born)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut roots: Vec<i32> = self.pids.borrow().clone();
        roots.extend(self.pidfiles.borrow().iter().filter_map(|p| read_pid(p)));
        roots.extend(pids_with_arg(&self.marker()));
        roots.retain(|&pid| self.is_ours(pid));
        // A SIGKILLed supervisor cannot stop its command: kill the whole tree.
        for pid in with_descendants(roots) {
            let leader = proc_stat(pid).is_some_and(|s| s.pgrp == pid);
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                if leader {
                    libc::kill(-pid, libc::SIGKILL);
                }
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The given pids and every process below them.
fn with_descendants(mut pids: Vec<i32>) -> Vec<i32> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = entry.file_name().to_str().and_then(|n| n.parse().ok());
        if let Some(stat) = pid.and_then(proc_stat) {
            parents.push((pid.unwrap(), stat.ppid));
        }
    }
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for &(pid, ppid) in &parents {
            if ppid == parent && !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        i += 1;
    }
    pids
}

/// Now, in the clock ticks of /proc/PID/stat's starttime (time since boot).
fn now_ticks() -> u64 {
    let uptime = fs::read_to_string("/proc/uptime").expect("read /proc/uptime");
    let secs: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (secs * hz) as u64
}

/// True when the test runs as root; otherwise prints the SKIP line.
pub fn is_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("SKIP: {test} needs root");
    }
    root
}

/// A supervisor started in daemon mode by [`start_named`]: its pid and its two pidfiles.
pub struct Daemon {
    pub sup: i32,
    pub pidfile: PathBuf,
    pub child_pidfile: PathBuf,
}

/// Runs `detach --pidfile NAMEp.pid --child-pidfile NAMEc.pid OPTS -- ARGV` in daemon mode and
/// waits for the supervisor's pidfile (only: a command that is restarted may come and go
/// between two polls). NAME tells several supervisors of one test apart; the pid is tracked.
pub fn start_named(g: &Guard, name: &str, opts: &[&str], argv: &[&str]) -> Daemon {
    let pidfile = g.pidfile(&format!("{name}p.pid"));
    let child_pidfile = g.pidfile(&format!("{name}c.pid"));
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
    let sup = wait_pid(&pidfile);
    g.track(sup);
    Daemon { sup, pidfile, child_pidfile }
}

/// [`start_named`] with `p.pid` and `c.pid`, waiting for both pidfiles: the daemon and the
/// pid of its command (tracked).
pub fn start(g: &Guard, opts: &[&str], argv: &[&str]) -> (Daemon, i32) {
    let daemon = start_named(g, "", opts, argv);
    let cmd = daemon.wait_cmd(g);
    (daemon, cmd)
}

impl Daemon {
    /// Polls for the child pidfile; the command's pid, tracked.
    pub fn wait_cmd(&self, g: &Guard) -> i32 {
        let cmd = wait_pid(&self.child_pidfile);
        g.track(cmd);
        cmd
    }

    /// Polls until the supervisor has left: its pidfile is removed at exit, then its pid is
    /// gone. Panics with `log`'s content otherwise.
    pub fn wait_exit(&self, log: &Path) {
        let gone = wait_until(|| !self.pidfile.exists() && !alive(self.sup), DEADLINE);
        assert!(gone, "the supervisor (pid {}) never exited; log: {:?}", self.sup, read(log));
    }
}

/// A writer at full speed: `LEAST WIDTH STOP COUNT` writes lines 0, 1, 2, ..., each of WIDTH
/// bytes ("line 0000123 xxx...\n") in one write(2), at least LEAST of them and on until STOP
/// exists (checked every 64 KiB or so), then writes how many lines it wrote into COUNT.
/// Writing until told to stop makes every rotation of a test happen under load.
pub const PY_WRITER: &str = r#"
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
pub fn writer_line(i: u64, width: usize) -> Vec<u8> {
    let mut line = format!("line {i:07} ").into_bytes();
    line.resize(width - 1, b'x');
    line.push(b'\n');
    line
}

/// Checks that `files`, read in this order, hold exactly `expected` lines, once each, in
/// order, and that no file ends in the middle of a line. Names the first difference instead
/// of printing megabytes.
pub fn assert_files_hold(files: &[PathBuf], expected: impl Iterator<Item = Vec<u8>>) {
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

/// A slow writer for the tests that watch where lines go: "tick 0", "tick 1", ... every 20 ms.
pub const TICKER: &str = "i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.02; done";

/// The numbers of the "tick N" lines of [`TICKER`] in `text`.
pub fn ticks(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).collect()
}

/// Checks that the ticks found in `texts`, in this order, are consecutive.
pub fn assert_consecutive(texts: &[&str]) {
    let all: Vec<u64> = texts.iter().flat_map(|t| ticks(t)).collect();
    for pair in all.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "ticks lost or doubled: {all:?}");
    }
}

/// The CPU ticks `pid` uses over `window` (a measurement of a process left idle, not a
/// synchronisation: the tests that use it assert a bound far from both outcomes).
pub fn cpu_ticks_over(pid: i32, window: Duration) -> u64 {
    let before = proc_stat(pid).expect("the process is alive").cpu_ticks;
    thread::sleep(window);
    proc_stat(pid).expect("the process is still alive").cpu_ticks - before
}

/// An example binary (examples/NAME.rs), built by `cargo test` beside the tests; built here if
/// a runner skipped examples.
pub fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_detach")).with_file_name("examples").join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo).args(["build", "--example", name]).status().expect("run cargo");
        assert!(ok.success(), "cannot build examples/{name}.rs");
    }
    bin
}

/// One datagram from `socket`, waiting up to its read timeout; a wait cut short by EINTR (a
/// stop and continue of the test process, which interrupts a socket read with a timeout even
/// without a handler) is resumed.
pub fn recv_datagram(socket: &std::os::unix::net::UnixDatagram) -> std::io::Result<String> {
    let mut buf = [0u8; 4096];
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
