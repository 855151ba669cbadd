//! Built-in rotation (`--rotate-size`, `--rotate-every`, `--rotate-keep`): when
//! a log is due, and what a rotation does to the files.
//!
//! The supervisor owns the file, so it rotates only where it knows a line
//! ends (sink.rs asks [`Rotator::due`] at line boundaries only): no line is
//! ever split between two files, and nothing is lost or doubled, since the
//! bytes after the rotation go to the new file through the same write path.
//!
//! Archives are named as logrotate, supervisord and Docker name them:
//! `PATH.1` (newest) to `PATH.N`. Every rename happens inside the log's
//! directory, opened by the same checked walk as the log itself
//! (path_safety.rs), so a directory swapped for a symlink cannot send the
//! renames elsewhere.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::path_safety;

/// Archives kept when no `--rotate-keep` is given.
pub const DEFAULT_KEEP: u32 = 10;

/// When and how the logs rotate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `--rotate-size`: rotate before a line would make the file larger.
    pub size: Option<u64>,
    /// `--rotate-every`.
    pub every: Option<Period>,
    /// `--rotate-keep` (at least 1); [`DEFAULT_KEEP`] when `None`.
    pub keep: Option<u32>,
}

impl Rotation {
    pub fn keep(&self) -> u32 {
        self.keep.unwrap_or(DEFAULT_KEEP).max(1)
    }
}

/// A rotation period, in seconds: `hourly`, `daily`, `weekly`, or a number
/// with `s`, `m`, `h` or `d`. An hour or more is aligned on local wall-clock
/// boundaries (daily at midnight, weekly on Monday at midnight); a shorter
/// period counts from the start or the last rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(u64);

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Period, String> {
        let secs = match s {
            "hourly" => Some(3600),
            "daily" => Some(86_400),
            "weekly" => Some(7 * 86_400),
            _ => {
                let (num, unit) = s.split_at(s.len().saturating_sub(1));
                let mult = match unit {
                    "s" => Some(1),
                    "m" => Some(60),
                    "h" => Some(3600),
                    "d" => Some(86_400),
                    _ => None,
                };
                let n = num.parse::<u64>().ok().filter(|&n| n > 0);
                n.zip(mult).and_then(|(n, m)| n.checked_mul(m))
            }
        };
        secs.filter(|&s| s <= 366 * 86_400).map(Period).ok_or_else(|| {
            format!("'{s}' is not a period (hourly, daily, weekly, or like 30s, 10m, 6h, 1d; at most 366d)")
        })
    }
}

impl Period {
    /// The wall-clock time of the next rotation after `now`.
    fn next_after(self, now: SystemTime) -> SystemTime {
        let p = self.0 as i64;
        if p < 3600 {
            return now + Duration::from_secs(self.0);
        }
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        // 1970-01-01 was a Thursday: weeks are counted from Monday the 5th.
        let anchor = if p % (7 * 86_400) == 0 { 4 * 86_400 } else { 0 };
        let local = secs + utc_offset(secs);
        let next_local = (local - anchor).div_euclid(p) * p + p + anchor;
        // The offset at the boundary itself (a DST change may lie between).
        let guess = next_local - utc_offset(secs);
        let next = (next_local - utc_offset(guess)).max(secs + 1);
        UNIX_EPOCH + Duration::from_secs(next as u64)
    }
}

/// The UTC offset of local time at `secs`, in seconds (localtime_r: TZ and
/// /etc/localtime, as `date`).
fn utc_offset(secs: i64) -> i64 {
    let time = secs as libc::time_t;
    // SAFETY: a zeroed tm is a valid value; localtime_r writes only the tm
    // we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&time, &mut tm);
        tm.tm_gmtoff as i64
    }
}

/// One log's rotation state.
pub struct Rotator {
    pub policy: Rotation,
    /// Bytes in the current file (its size when opened, plus what detach wrote).
    pub size: u64,
    /// When `--rotate-every` is next due.
    next_at: Option<Instant>,
    /// A rotation was asked (ALRM, `detach rotate`, the period) while the
    /// file ended inside a line: it happens at that line's end.
    pending: bool,
}

impl Rotator {
    pub fn new(policy: Rotation, size: u64) -> Rotator {
        let mut r = Rotator { policy, size, next_at: None, pending: false };
        r.schedule();
        r
    }

    /// Sets the next time rotation after now.
    pub fn schedule(&mut self) {
        self.next_at = self.policy.every.map(|p| {
            let now = SystemTime::now();
            let wait = p.next_after(now).duration_since(now).unwrap_or_default();
            Instant::now() + wait
        });
    }

    /// Rotates at the next line boundary.
    pub fn ask(&mut self) {
        self.pending = true;
    }

    /// Whether anything may be due: else the writes skip the line walk.
    pub fn active(&self) -> bool {
        self.pending || self.policy.size.is_some() || self.next_at.is_some()
    }

    /// Whether the log must rotate before a line of `next` bytes, at a
    /// line boundary. The period rotates no empty file (it only reschedules).
    pub fn due(&mut self, next: usize, now: Instant) -> bool {
        if self.next_at.is_some_and(|t| now >= t) {
            if self.size == 0 {
                self.schedule();
            } else {
                self.pending = true;
            }
        }
        let full = self.policy.size.is_some_and(|max| self.size > 0 && self.size + next as u64 > max);
        self.pending || full
    }

    /// How many bytes of `data` go into the current file: a line already
    /// begun goes on to its end; from a line boundary, the lines that fit,
    /// at least one (a line larger than the size gets a file of its own).
    pub fn fit(&self, data: &[u8], line_start: bool) -> usize {
        let Some(max) = self.policy.size else { return data.len() };
        let line_end = |from: usize| memchr::memchr(b'\n', &data[from..]).map_or(data.len(), |i| from + i + 1);
        if !line_start {
            return line_end(0);
        }
        let room = max.saturating_sub(self.size) as usize;
        if data.len() <= room {
            return data.len();
        }
        let mut end = line_end(0);
        while end < data.len() {
            let next = line_end(end);
            if next > room {
                break;
            }
            end = next;
        }
        end
    }

    /// The next instant the supervisor must wake to rotate (asked to
    /// rotate: now; the caller asks only at a line boundary).
    pub fn wake_at(&self) -> Option<Instant> {
        if self.pending { Some(Instant::now()) } else { self.next_at }
    }

    /// Forgets what was asked: the rotation happened.
    pub fn done(&mut self) {
        self.pending = false;
        self.size = 0;
        self.schedule();
    }
}

/// `name.i` (or `name.i.gz`).
pub fn archive_name(name: &OsStr, i: u32, gz: bool) -> OsString {
    let mut n = name.as_bytes().to_vec();
    n.extend_from_slice(format!(".{i}{}", if gz { ".gz" } else { "" }).as_bytes());
    <OsString as std::os::unix::ffi::OsStringExt>::from_vec(n)
}

/// The log's directory (opened by the checked walk) and the log's name.
pub fn open_dir(path: &Path) -> io::Result<(OwnedFd, OsString)> {
    path_safety::open_parent(path)
}

fn exists(dir: &OwnedFd, name: &OsStr) -> bool {
    fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

fn ignore_missing(r: nix::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An O_PATH descriptor of `name` in `dir` (no open of the file itself: no
/// side effect whatever it is), so that unlinking it only removes its name.
fn hold(dir: &OwnedFd, name: &OsStr) -> Option<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty()).ok()
}

/// Closes the last descriptor of a deleted archive in a thread of its own.
///
/// The last close of an unlinked file frees its pages, and an archive just
/// rotated is still in the page cache, mostly dirty: freeing a 1 MiB
/// archive's pages took a third of what writing it took, and stalled the
/// pump (the largest part of what `--rotate-size 1M` cost against no
/// rotation, per perf: bench/pump.sh's cr row). Deleting the name stays here,
/// in order with the renames; only the freeing moves. The thread starts at
/// the first deletion, in the supervisor (its signals are blocked, and it
/// blocks them all again itself); if it cannot start, the close happens
/// here, as before. At exit, what it has not closed yet the exit closes.
/// Like compress.rs's thread it is no hazard to the forks for restarts: the
/// child's pre_exec takes no lock and allocates nothing.
fn release(fd: OwnedFd) {
    static CLOSER: OnceLock<Option<mpsc::Sender<OwnedFd>>> = OnceLock::new();
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<OwnedFd>();
        let started = std::thread::Builder::new().name("detach-unlink".into()).stack_size(64 * 1024).spawn(move || {
            crate::signals::block_all_in_this_thread();
            rx.into_iter().for_each(drop);
        });
        started.ok().map(|_| tx)
    });
    match closer {
        Some(tx) => drop(tx.send(fd)), // a dead thread hands the fd back: closed here
        None => drop(fd),
    }
}

/// Whether `name` in `dir` still names the file `id` (dev, inode).
pub fn names(dir: &OwnedFd, name: &OsStr, id: (u64, u64)) -> io::Result<bool> {
    match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok((st.st_dev, st.st_ino) == id),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The name a rotated log has from the moment the pump moves it aside to the
/// moment the archiver makes it `.1` (archiver.rs): `.NAME.detach-rotated`,
/// hidden from the globs (`*`, `*.log`) that logrotate and people use.
pub fn staged_name(name: &OsStr) -> OsString {
    let mut n = OsString::from(".");
    n.push(name);
    n.push(".detach-rotated");
    n
}

/// Moves the archives up by one (`.1` to `.2`, ...; the one that would pass
/// `keep` is deleted) and the log at `name` to `.1`, if `name` still names
/// the file `id` (dev, inode). Returns whether it did: when another program
/// (logrotate) moved the file first, only a reopen is left to do. `moved`
/// hears of each archive renamed, as (from, to); `to` 0 for a deletion.
pub fn shift(
    dir: &OwnedFd,
    name: &OsStr,
    id: (u64, u64),
    keep: u32,
    moved: &mut dyn FnMut(u32, u32),
) -> io::Result<bool> {
    if !names(dir, name, id)? {
        return Ok(false);
    }
    shift_into(dir, name, name, keep, moved)?;
    Ok(true)
}

/// Finishes a rotation the pump staged: when `.NAME.detach-rotated` exists,
/// moves the archives up and makes it `.1`. Returns the device and inode of
/// the file it settled, if there was one.
pub fn settle(
    dir: &OwnedFd,
    name: &OsStr,
    keep: u32,
    moved: &mut dyn FnMut(u32, u32),
) -> io::Result<Option<(u64, u64)>> {
    let staged = staged_name(name);
    let st = match fstatat(dir.as_fd(), &*staged, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        // A name too long to stage (over NAME_MAX - 16 bytes) is never staged:
        // its rotations are made in place.
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENAMETOOLONG) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    shift_into(dir, name, &staged, keep, moved)?;
    Ok(Some((st.st_dev, st.st_ino)))
}

/// Moves the archives of `name` up by one and `from` to `.1`.
fn shift_into(dir: &OwnedFd, name: &OsStr, from: &OsStr, keep: u32, moved: &mut dyn FnMut(u32, u32)) -> io::Result<()> {
    // The archives form a run from .1 up; what lies past a gap is left alone.
    // Which of `.i` and `.i.gz` exist, so that only those are renamed.
    let mut found: Vec<[bool; 2]> = Vec::new();
    while found.len() < keep as usize {
        let i = found.len() as u32 + 1;
        let forms = [exists(dir, &archive_name(name, i, false)), exists(dir, &archive_name(name, i, true))];
        if forms == [false, false] {
            break;
        }
        found.push(forms);
    }
    if found.len() == keep as usize {
        let forms = found[keep as usize - 1];
        for gz in [false, true] {
            let archive = archive_name(name, keep, gz);
            let held = forms[gz as usize].then(|| hold(dir, &archive)).flatten();
            ignore_missing(unlinkat(dir.as_fd(), &*archive, UnlinkatFlags::NoRemoveDir))?;
            if let Some(fd) = held {
                release(fd);
            }
        }
        moved(keep, 0);
        found.pop();
    }
    for (i, forms) in found.iter().enumerate().rev() {
        let i = i as u32 + 1;
        for gz in [false, true].into_iter().filter(|&gz| forms[gz as usize]) {
            let (from, to) = (archive_name(name, i, gz), archive_name(name, i + 1, gz));
            ignore_missing(renameat(dir.as_fd(), &*from, dir.as_fd(), &*to))?;
        }
        moved(i, i + 1);
    }
    renameat(dir.as_fd(), from, dir.as_fd(), &*archive_name(name, 1, false))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_with_their_units() {
        assert_eq!("1s".parse(), Ok(Period(1)));
        assert_eq!("10m".parse(), Ok(Period(600)));
        assert_eq!("6h".parse(), Ok(Period(6 * 3600)));
        assert_eq!("daily".parse(), Ok(Period(86_400)));
        for bad in ["", "0s", "s", "5", "1w", "-1h", "999d"] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_daily_period_ends_at_local_midnight() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_457_039);
        let next = Period(86_400).next_after(now).duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!((next + utc_offset(next)) % 86_400, 0);
        assert!(next > 1_764_457_039 && next <= 1_764_457_039 + 86_400);
    }

    #[test]
    fn fit_takes_whole_lines_at_least_one() {
        let r = Rotator::new(Rotation { size: Some(10), ..Rotation::default() }, 4);
        assert_eq!(r.fit(b"ab\ncd\nef\n", true), 6); // 4 + 6 = 10
        assert_eq!(r.fit(b"abcdefghijkl\nx\n", true), 13); // one line too long: whole
        assert_eq!(r.fit(b"ab\ncdefgh\n", false), 3); // a begun line goes on
    }
}
