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
            panic!("{cmd:?} did not exit; stderr: {}", read(&err));
        }
        Out { pid: child.id() as i32, status: status.unwrap(), stdout: read(&out), stderr: read(&err) }
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
