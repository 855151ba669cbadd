//! `detach logs`: the last lines of a daemon's logs, and `-f` to follow them.
//!
//! The logs are found where the supervisor writes them: its fds 1 and 2
//! (`/proc/PID/fd/N`, as `status` shows them), opened through that magic link
//! rather than by path. So `-f` follows the file the supervisor writes, not
//! the file at the path: when the supervisor has moved to another file (a
//! rotation of its own, or logrotate's rename and the reopen that follows),
//! everything it wrote to the old one is there already, the old file is read
//! to its end, and the new one from its start. Following a path instead (as
//! `tail -F`) loses the lines written between logrotate's create and the
//! reopen.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// How often `-f` looks for new data and for a new file.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// One log being shown.
struct Source {
    /// The supervisor's fd it is installed over.
    fd: i32,
    file: File,
    id: (u64, u64),
    path: PathBuf,
    /// The log's path as first found: the name its archives are numbered
    /// after (`path` may already name an archive when read after a rotation).
    base: PathBuf,
}

/// The regular files over the supervisor's fds `fds` (one per file), opened
/// for reading through /proc.
fn open_sources(pid: i32, fds: &[i32]) -> io::Result<Vec<Source>> {
    let mut sources: Vec<Source> = Vec::new();
    for &fd in fds {
        let Some(source) = open_source(pid, fd)? else { continue };
        if !sources.iter().any(|s| s.id == source.id) {
            sources.push(source);
        }
    }
    Ok(sources)
}

/// The file over `pid`'s fd `fd`, if a regular file.
fn open_source(pid: i32, fd: i32) -> io::Result<Option<Source>> {
    let link = format!("/proc/{pid}/fd/{fd}");
    let file = match File::open(&link) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None); // /dev/null, a pipe, the journal's socket
    }
    let path = std::fs::read_link(&link).unwrap_or_else(|_| link.into());
    Ok(Some(Source { fd, file, id: (meta.dev(), meta.ino()), base: path.clone(), path }))
}

/// Prints the last `n` lines of each log of the supervisor `pid` (its fds
/// `fds`); with `follow`, then what is written, until `gone` (the
/// supervisor's pidfd) says it has ended. Returns false when there is no log.
pub fn show(pid: i32, fds: &[i32], n: usize, follow: bool, gone: &dyn Fn(Duration) -> bool) -> io::Result<bool> {
    let mut sources = open_sources(pid, fds)?;
    if sources.is_empty() {
        return Ok(false);
    }
    let headers = sources.len() > 1;
    let mut out = io::stdout().lock();
    let mut last_shown = None;
    for (i, s) in sources.iter_mut().enumerate() {
        if headers {
            let sep = if i > 0 { "\n" } else { "" };
            writeln!(out, "{sep}==> {} <==", s.path.display())?;
            last_shown = Some(s.fd);
        }
        print_tail(&mut s.file, n, &mut out)?;
    }
    out.flush()?;
    if !follow {
        return Ok(true);
    }
    loop {
        let ended = gone(FOLLOW_INTERVAL);
        for s in &mut sources {
            let mut data = Vec::new();
            s.file.read_to_end(&mut data)?;
            // The supervisor moved to another file: the old one is complete.
            let next = if ended { None } else { open_source(pid, s.fd).ok().flatten().filter(|n| n.id != s.id) };
            if next.is_some() {
                // Written between the read above and the switch.
                s.file.read_to_end(&mut data)?;
            } else if s.file.stream_position()? > s.file.metadata()?.len() {
                s.file.seek(SeekFrom::Start(0))?; // truncated (copytruncate)
            }
            // Rotations faster than this loop: the files between the old
            // one and the new one, whole, oldest first.
            if let Some(next) = &next {
                for mut between in rotated_between(&s.base, s.id, next.id) {
                    between.read_to_end(&mut data)?;
                }
            }
            if !data.is_empty() {
                if headers && last_shown != Some(s.fd) {
                    writeln!(out, "\n==> {} <==", s.path.display())?;
                    last_shown = Some(s.fd);
                }
                out.write_all(&data)?;
            }
            if let Some(next) = next {
                let base = std::mem::take(&mut s.base);
                *s = Source { base, ..next };
            }
        }
        out.flush()?;
        if ended {
            return Ok(true);
        }
    }
}

/// The archives rotated after the file `old` and before `new` (device,
/// inode each), whole, oldest first: `old` is `PATH.K` by now, `new` is the
/// current file or, if the supervisor rotated again meanwhile, an archive
/// too. Empty when nothing came between, or when `old` is not found (moved
/// by another program, or deleted past --rotate-keep: what is gone cannot
/// be shown). A `.gz` archive is read through gzip.
///
/// A rotation may run while this looks: its renames go from the highest
/// number down, so at most one name is missing at a time (one miss is
/// stepped over) and a file may be met twice (once seen, it is skipped).
fn rotated_between(path: &std::path::Path, old: (u64, u64), new: (u64, u64)) -> Vec<Box<dyn Read>> {
    const MOST: u32 = 100_000;
    let archive = |k: u32, gz: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{k}{gz}"));
        PathBuf::from(p)
    };
    let mut files: Vec<Box<dyn Read>> = Vec::new();
    let mut seen = Vec::new();
    let mut misses = 0;
    // Newer than `.1`: the log the supervisor has just moved aside, until
    // its archiver makes it `.1` (archiver.rs).
    let staged = path.file_name().map(|n| path.with_file_name(crate::rotate::staged_name(n)));
    if let Some(file) = staged.and_then(|p| File::open(p).ok())
        && let Ok(id) = file.metadata().map(|m| (m.dev(), m.ino()))
    {
        if id == old {
            return files;
        }
        seen.push(id);
        if id != new {
            files.push(Box::new(file));
        }
    }
    for k in 1..MOST {
        // Opened before it is looked at: renamed later, it stays this file.
        let (file, gz) = match File::open(archive(k, "")) {
            Ok(f) => (f, false),
            Err(_) => match File::open(archive(k, ".gz")) {
                Ok(f) => (f, true),
                Err(_) => {
                    misses += 1;
                    if misses == 2 {
                        break;
                    }
                    continue;
                }
            },
        };
        misses = 0;
        let Ok(id) = file.metadata().map(|m| (m.dev(), m.ino())) else { continue };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if id == old {
            files.reverse();
            return files;
        }
        if id == new {
            files.clear(); // newer than `new`: for the next switch
            continue;
        }
        files.push(if gz { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) });
    }
    Vec::new()
}

/// Writes the last `n` lines of `file` (from its end, block by block) and
/// leaves its offset at the end.
fn print_tail(file: &mut File, n: usize, out: &mut impl Write) -> io::Result<()> {
    const BLOCK: u64 = 64 * 1024;
    let end = file.seek(SeekFrom::End(0))?;
    let mut start = end;
    let mut newlines = 0;
    let mut buf = Vec::new();
    // Count newlines backwards; the file's last byte, if a newline, ends
    // the last line rather than starting another.
    'search: while start > 0 {
        let from = start.saturating_sub(BLOCK);
        buf.resize((start - from) as usize, 0);
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut buf)?;
        for (i, &b) in buf.iter().enumerate().rev() {
            let at = from + i as u64;
            if b == b'\n' && at + 1 != end {
                newlines += 1;
                if newlines == n {
                    start = at + 1;
                    break 'search;
                }
            }
        }
        start = from;
    }
    if n == 0 {
        start = end;
    }
    file.seek(SeekFrom::Start(start))?;
    io::copy(&mut Read::by_ref(file).take(end - start), out)?;
    file.seek(SeekFrom::Start(end))?;
    Ok(())
}
