//! Built-in rotation (issue 15): by size under a full-speed writer whose writes cut lines at
//! random places, nothing lost, doubled or split; the number of archives kept; by period; and
//! on demand, by SIGALRM and by `detach rotate`.

use crate::util::{
    DEADLINE, Guard, TICKER, alive, assert_consecutive, detach, read, s, signal, start, wait_child, wait_until,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `SEED TOTAL OUT [GO]`: writes a random stream (seeded) of lines of 0 to 300 bytes, and now and then one of 64 KiB
/// to 200 KiB, TOTAL bytes or a little more, in writes of 1 to 9000 bytes at full speed; keeps
/// a copy of the stream in the file OUT first; then, with GO, creates GO.done and waits for GO.
const RANDOM_WRITER: &str = r#"
import os, random, sys
random.seed(int(sys.argv[1])); total = int(sys.argv[2])
parts, n, i = [], 0, 0
while n < total:
    long = random.random() < 0.0005
    size = random.randint(65536, 200000) if long else random.randint(0, 300)
    line = b"%d " % i + bytes(random.choice(b"abcdefgh") for _ in range(min(size, 40))) + b"z" * max(0, size - 40) + b"\n"
    parts.append(line); n += len(line); i += 1
data = b"".join(parts)
with open(sys.argv[3], "wb") as f:
    f.write(data)
at = 0
while at < len(data):
    k = random.randint(1, 9000)
    at += os.write(1, data[at:at + k])
if len(sys.argv) > 4:
    import time
    open(sys.argv[4] + ".done", "w").close()
    while not os.path.exists(sys.argv[4]):
        time.sleep(0.01)
"#;

/// The archives of `log` from oldest to newest, then `log` itself.
pub fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for i in 1.. {
        let archive = PathBuf::from(format!("{}.{i}", log.display()));
        if !archive.exists() {
            break;
        }
        files.push(archive);
    }
    files.reverse();
    files.push(log.to_path_buf());
    files
}

fn concat(files: &[PathBuf]) -> Vec<u8> {
    files.iter().flat_map(|f| fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()))).collect()
}

/// Runs the random writer under `detach --foreground --log app.log OPTS` to its end; returns
/// the log's path and the bytes written.
fn run_random_writer(g: &Guard, opts: &[&str], seed: u32, total: usize) -> (PathBuf, Vec<u8>) {
    let (log, copy) = (g.path("app.log"), g.path("written"));
    let mut cmd = detach();
    cmd.args(["--foreground", "--log", s(&log)]).args(opts);
    cmd.args(["--", "python3", "-c", RANDOM_WRITER, &seed.to_string(), &total.to_string(), s(&copy)]);
    let (mut child, _, err) = g.spawn(&mut cmd);
    let status = wait_child(&mut child, || format!("detach did not end; stderr: {}", read(&err)));
    assert!(status.success(), "{status:?}: {}", read(&err));
    (log, fs::read(&copy).unwrap())
}

#[test]
fn rotation_by_size_under_a_random_writer_loses_nothing_and_splits_no_line() {
    let g = Guard::new();
    let limit = 64 * 1024;
    let (log, written) = run_random_writer(&g, &["--rotate-size", "64K", "--rotate-keep", "1000"], 15, 4 << 20);
    let files = rotated_files(&log);
    assert!(files.len() > 40, "only {} files", files.len());
    let got = concat(&files);
    assert!(got == written, "the files hold {} bytes, {} were written (or they differ)", got.len(), written.len());
    let over: Vec<_> = files.iter().filter(|f| crate::util::size(f) > limit as u64).collect();
    assert!(!over.is_empty(), "no over-long line was written: the test proves less than it says");
    for (n, file) in files.iter().enumerate() {
        let data = fs::read(file).unwrap();
        if n + 1 < files.len() {
            assert!(data.ends_with(b"\n"), "{} ends mid-line", file.display());
        }
        // Past the size only by a line that began within it: one over-long line alone, or
        // (a line flushed in pieces by the 100 ms hold) the file's last line.
        let body = data[..data.len().saturating_sub(1)].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        assert!(data.len() <= limit || body <= limit, "{} holds {} bytes before its last line", file.display(), body);
        if data.len() > limit && body > 0 {
            println!("{}: {} bytes, the last line begun at {body}", file.display(), data.len());
        }
    }
}

#[test]
fn rotate_keep_3_keeps_three_archives() {
    let g = Guard::new();
    let (log, written) = run_random_writer(&g, &["--rotate-size", "4K", "--rotate-keep", "3"], 3, 200_000);
    for i in 1..=3 {
        assert!(Path::new(&format!("{}.{i}", log.display())).exists(), "no archive {i}");
    }
    let extra: Vec<_> = fs::read_dir(g.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.log.") && !["app.log.1", "app.log.2", "app.log.3"].contains(&n.as_str()))
        .collect();
    assert!(extra.is_empty(), "more than 3 archives: {extra:?}");
    let got = concat(&rotated_files(&log));
    assert!(written.ends_with(&got), "the last files do not hold the end of the stream");
}

#[test]
fn rotate_every_1s_rotates_while_the_command_runs() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log), "--rotate-every", "1s"], &["sh", "-c", TICKER]);
    let archive2 = PathBuf::from(format!("{}.2", log.display()));
    assert!(wait_until(|| archive2.exists(), DEADLINE), "no second rotation; log: {:?}", read(&log));
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let files = rotated_files(&log);
    let texts: Vec<String> = files.iter().map(|f| read(f)).collect();
    for (f, t) in files.iter().zip(&texts).take(files.len() - 1) {
        assert!(!t.is_empty(), "{} is empty: an empty log is not rotated", f.display());
    }
    assert_consecutive(&texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn sigalrm_and_detach_rotate_rotate_now() {
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, cmd) = start(&g, &["--log", s(&log), "--log-mode", "0600"], &["sh", "-c", TICKER]);
    let (one, two) = (PathBuf::from(format!("{}.1", log.display())), PathBuf::from(format!("{}.2", log.display())));
    assert!(wait_until(|| read(&log).contains("tick 2"), DEADLINE));
    signal(daemon.sup, libc::SIGALRM);
    assert!(wait_until(|| one.exists(), DEADLINE), "SIGALRM did not rotate");
    assert!(alive(cmd), "SIGALRM reached the command");
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    let out = g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    // It answers once done: the rotation is there when it returns.
    assert!(two.exists(), "detach rotate returned before the rotation");
    assert_eq!(fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600, "new log's mode");
    assert!(wait_until(|| read(&log).contains("tick"), DEADLINE));
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let texts: Vec<String> = rotated_files(&log).iter().map(|f| read(f)).collect();
    assert_eq!(texts.len(), 3);
    assert_consecutive(&texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn rotate_compress_leaves_whole_gzip_archives_of_their_part_of_the_stream() {
    let g = Guard::new();
    let (log, copy, go) = (g.path("app.log"), g.path("written"), g.path("go"));
    let opts = ["--log", s(&log), "--rotate-size", "64K", "--rotate-keep", "1000", "--rotate-compress"];
    let argv = ["python3", "-c", RANDOM_WRITER, "7", "1000000", s(&copy), s(&go)];
    let (daemon, _) = start(&g, &opts, &argv);
    // All written, then every archive compressed (at the thread's pace: no fixed wait).
    let done = g.path("go.done");
    let names = || -> Vec<String> {
        let entries = fs::read_dir(g.dir.path()).unwrap().flatten();
        entries.map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("app.log.")).collect()
    };
    let all_compressed = || done.exists() && !names().is_empty() && names().iter().all(|n| n.ends_with(".gz"));
    assert!(wait_until(all_compressed, DEADLINE * 3), "archives left uncompressed: {:?}", names());
    fs::write(&go, "").unwrap();
    daemon.wait_exit(&log);
    let written = fs::read(&copy).unwrap();
    let mut parts = Vec::new();
    for i in (1..).take_while(|i| Path::new(&format!("{}.{i}.gz", log.display())).exists()) {
        let gz = format!("{}.{i}.gz", log.display());
        let test = Command::new("gzip").args(["-t", &gz]).status().unwrap();
        assert!(test.success(), "gzip -t {gz} failed");
        let out = Command::new("zcat").arg(&gz).output().unwrap();
        assert!(out.status.success(), "zcat {gz}");
        assert!(out.stdout.ends_with(b"\n"), "{gz} ends mid-line");
        parts.push(out.stdout);
    }
    parts.reverse();
    parts.push(fs::read(&log).unwrap());
    let got = parts.concat();
    assert!(got == written, "the archives hold {} bytes, {} were written (or they differ)", got.len(), written.len());
    let tmp: Vec<_> = fs::read_dir(g.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "left behind: {tmp:?}");
}

/// The text of archive `i` of `log`, compressed or not; `None` when there is none.
fn archive_text(log: &Path, i: u32) -> Option<String> {
    let plain = PathBuf::from(format!("{}.{i}", log.display()));
    let gz = format!("{}.{i}.gz", log.display());
    if plain.exists() {
        return Some(read(&plain));
    }
    let out = Command::new("zcat").arg(&gz).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_compression_that_fails_leaves_the_archive_whole_and_says_so_once() {
    let g = Guard::new();
    let (log, copy, go) = (g.path("app.log"), g.path("written"), g.path("go"));
    // The temporary file of archive 1's compression is a directory: it cannot be created.
    fs::create_dir(g.path("app.log.1.gz.tmp")).unwrap();
    let opts = ["--log", s(&log), "--rotate-size", "64K", "--rotate-keep", "1000", "--rotate-compress"];
    let argv = ["python3", "-c", RANDOM_WRITER, "8", "300000", s(&copy), s(&go)];
    let (daemon, _) = start(&g, &opts, &argv);
    let texts = || {
        let mut t: Vec<String> = (1..).map_while(|i| archive_text(&log, i)).collect();
        t.reverse(); // oldest first
        t.push(read(&log));
        t
    };
    let said = || texts().iter().any(|t| t.contains("cannot compress"));
    assert!(wait_until(said, DEADLINE), "the failure was never said");
    assert!(wait_until(|| g.path("go.done").exists(), DEADLINE));
    fs::write(&go, "").unwrap();
    daemon.wait_exit(&log);
    let all = texts().concat();
    assert_eq!(all.matches("cannot compress").count(), 1, "said more than once");
    let plain = (1..).take_while(|i| archive_text(&log, *i).is_some());
    let plain = plain.filter(|i| Path::new(&format!("{}.{i}", log.display())).exists()).count();
    assert!(plain >= 1, "the archive that failed is not there whole");
    // Nothing lost: the stream is there, with the one line of detach's own.
    let without: String = all.lines().filter(|l| !l.starts_with("detach: ")).map(|l| format!("{l}\n")).collect();
    assert!(without.as_bytes() == fs::read(&copy).unwrap(), "the archives do not hold the stream");
}

/// Busy loops on every CPU, at nice 19, killed when dropped.
struct BusyCpus(Vec<std::process::Child>);

impl BusyCpus {
    fn start() -> BusyCpus {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spin = || Command::new("nice").args(["-n", "19", "sh", "-c", "while :; do :; done"]).spawn().unwrap();
        BusyCpus((0..n).map(|_| spin()).collect())
    }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn compression_waits_while_every_cpu_is_busy_but_not_past_its_limit() {
    // One busy loop per usable CPU saturates what detach measures only when no CPU quota
    // (cgroup v1, which detach does not read) makes that fewer than the CPUs it may run on.
    let mask = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let allowed = (0..nix::sched::CpuSet::count()).filter(|&i| mask.is_set(i).unwrap_or(false)).count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    if usable != allowed {
        println!("SKIP: {usable} CPUs usable of the {allowed} this test may run on (a CPU quota)");
        return;
    }
    let g = Guard::new();
    let log = g.path("app.log");
    let (daemon, _) = start(&g, &["--log", s(&log), "--rotate-compress"], &["sh", "-c", TICKER]);
    assert!(wait_until(|| read(&log).contains("tick 2"), DEADLINE));
    let busy = BusyCpus::start();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = g.run(detach().args(["rotate", "--pidfile", s(&daemon.pidfile)]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let rotated = std::time::Instant::now();
    let (plain, gz) = (PathBuf::from(format!("{}.1", log.display())), PathBuf::from(format!("{}.1.gz", log.display())));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(plain.exists() && !gz.exists(), "compressed at once on a machine with no CPU to spare");
    // Past 5 s of waiting, compressed anyway, the loops still running.
    assert!(wait_until(|| gz.exists(), DEADLINE * 2), "never compressed while the machine stayed busy");
    let waited = rotated.elapsed();
    drop(busy);
    assert!(waited.as_secs_f64() > 4.0, "compressed after {waited:?}: it did not wait for a spare CPU");
    assert!(!plain.exists(), "the archive is there twice");
    signal(daemon.sup, libc::SIGTERM);
    daemon.wait_exit(&log);
    let text = Command::new("zcat").arg(&gz).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("tick 0\n"), "the .gz is not the first part");
}
