//! Built-in rotation (issue 15): by size under a full-speed writer whose writes cut lines at
//! random places, nothing lost, doubled or split; the number of archives kept; by period; and
//! on demand, by SIGALRM and by `detach rotate`.

use crate::util::{
    DEADLINE, Guard, TICKER, alive, assert_consecutive, detach, read, s, signal, start, wait_child, wait_until,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes a random stream (seeded) of lines of 0 to 300 bytes, and now and then one of 64 KiB
/// to 200 KiB, TOTAL bytes or a little more, in writes of 1 to 9000 bytes at full speed; keeps
/// a copy of the stream in the file OUT first.
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
