//! A log file the supervisor writes to: writes that never block the pump, a
//! bounded backlog while the file cannot take data (disk full), reopen by
//! path on request, and the once-a-second watch for a moved or deleted file.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::archiver::{self, Archiver, Staged};
use crate::backlog::{self, Backlog};
use crate::compress::Compressor;
use crate::rotate::{self, Rotation, Rotator};
use crate::stdio::{LogTarget, PathState, with_fd};
use crate::timestamp::{self, Stamper, TimeFormat};

/// What detach does to the lines of its log files besides writing them.
#[derive(Clone, Debug, Default)]
pub struct Logging {
    /// `--timestamp`: each line starts with the time its first byte was read.
    pub timestamp: Option<TimeFormat>,
    /// Built-in rotation.
    pub rotation: Rotation,
    /// `--rotate-compress`: gzip each archive, in the background.
    pub compress: bool,
}

/// How often the log paths are checked for a move or a delete.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A log file the supervisor writes to, with what it remembers about it.
pub struct Sink {
    log: LogTarget,
    /// The log file ends with a newline (as far as detach wrote it).
    written_line_end: bool,
    /// What detach has taken to write (written or queued) ends with one.
    taken_line_end: bool,
    last_check: Instant,
    /// When the watch first found the path naming nothing.
    missing_since: Option<Instant>,
    /// errnos of the reopens that failed since the last that worked: each
    /// kind of failure is said once, even when two kinds alternate.
    reopen_errors: Vec<i32>,
    /// What could not be written yet, and what had to be dropped.
    backlog: Backlog,
    /// detach's own messages written here, for syslog to relay.
    notes: Vec<String>,
    /// `--timestamp`, and the buffer stamped lines are built in.
    stamper: Option<Stamper>,
    stamped: Vec<u8>,
    rotator: Rotator,
    compressor: Option<Arc<Compressor>>,
    /// The thread that does a rotation's renames (started at the first).
    archiver: Option<Archiver>,
    /// errnos of the rotations that failed since the last that worked.
    rotate_errors: Vec<i32>,
}

impl Sink {
    pub fn new(log: LogTarget, limit: usize) -> Sink {
        Sink {
            log,
            written_line_end: true,
            taken_line_end: true,
            last_check: Instant::now(),
            missing_since: None,
            reopen_errors: Vec::new(),
            backlog: Backlog::new(limit),
            notes: Vec::new(),
            stamper: None,
            stamped: Vec::new(),
            rotator: Rotator::new(Rotation::default(), 0),
            compressor: None,
            archiver: None,
            rotate_errors: Vec::new(),
        }
    }

    /// Applies `--timestamp` and the rotation options to this log.
    pub fn manage(mut self, logging: &Logging) -> Sink {
        self.stamper = logging.timestamp.map(Stamper::new);
        self.rotator = Rotator::new(logging.rotation.clone(), self.file_size());
        if logging.compress {
            match Compressor::start(self.log.path()) {
                Ok(c) => self.compressor = Some(Arc::new(c)),
                Err(e) => self.warn(&format!("cannot start compressing archives: {e}")),
            }
        }
        // A rotation a killed detach left half done: its log becomes `.1`.
        let keep = self.rotator.policy.keep();
        let leftover = rotate::open_dir(self.log.path())
            .and_then(|(dir, name)| archiver::settle(&dir, &name, keep, self.compressor.as_deref(), None));
        if let Err(e) = leftover {
            self.rotate_failed(&e);
        }
        self
    }

    /// The open file's size, as fstat says (0 if it cannot).
    fn file_size(&self) -> u64 {
        with_fd(self.log.fd(), |f| f.metadata().map(|m| m.len()).unwrap_or(0))
    }

    /// Writes `data`, read at `now` (its first line's first byte at `since`,
    /// when it was held), stamped if asked. Never blocks on a failing log:
    /// the pipe keeps flowing.
    pub fn write(&mut self, data: &[u8], since: Option<Instant>, now: Instant, watch: bool) {
        if watch && now.duration_since(self.last_check) >= WATCH_INTERVAL {
            self.check_moved(now);
        }
        match &mut self.stamper {
            None => self.take(data, now),
            Some(stamper) => {
                let (first, rest) = wall_times(since.unwrap_or(now), now);
                let mut out = std::mem::take(&mut self.stamped);
                timestamp::stamp_lines(stamper, data, self.taken_line_end, first, rest, &mut out);
                self.take(&out, now);
                self.stamped = out;
            }
        }
    }

    /// Writes `data`, rotating first where a rotation is due; only at a
    /// line boundary, with nothing queued, so that no line is split.
    fn take(&mut self, data: &[u8], now: Instant) {
        if !self.rotator.active() {
            return self.put(data, now);
        }
        let mut rest = data;
        while !rest.is_empty() {
            let first_line = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            if self.at_line_boundary() && self.rotator.due(first_line, now) {
                let _ = self.rotate();
            }
            let k = self.rotator.fit(rest, self.taken_line_end);
            self.put(&rest[..k], now);
            rest = &rest[k..];
        }
    }

    fn at_line_boundary(&self) -> bool {
        self.taken_line_end && self.backlog.is_clear()
    }

    /// ALRM or `detach rotate`: rotates now, or at the end of the line the
    /// file ends in (or once what waits for a full disk is written). Returns
    /// once the archives are in place.
    pub fn rotate_now(&mut self) -> Result<(), i32> {
        self.rotator.ask();
        if !self.at_line_boundary() {
            return Ok(());
        }
        self.rotate()?;
        self.settled()
    }

    /// Waits for the rotation under way to be settled (the end of the
    /// supervisor, `detach rotate`); its failure's errno.
    pub fn settled(&mut self) -> Result<(), i32> {
        let failed = self.archiver.as_ref().and_then(|a| {
            a.wait();
            a.take_failure()
        });
        failed.map_or(Ok(()), |e| Err(self.rotate_failed(&e)))
    }

    /// Rotates: the pump stages the log and writes to the archiver's spare
    /// (archiver.rs), or, when it cannot, does the whole rotation itself.
    fn rotate(&mut self) -> Result<(), i32> {
        let keep = self.rotator.policy.keep();
        if self.archiver.is_none() {
            let (path, opts) = (self.log.path(), self.log.options());
            self.archiver = Archiver::start(path, opts, self.compressor.clone()).ok();
        }
        let Some(spare) = self.archiver.as_ref().and_then(Archiver::take_spare) else {
            return self.rotate_in_place(keep);
        };
        let staged = match archiver::stage(&spare, self.log.path(), self.log.id()) {
            Ok(staged) => staged,
            Err(_) => return self.rotate_in_place(keep),
        };
        let archiver::Spare { dir, name, file, .. } = spare;
        self.rotate_errors.clear();
        self.rotator.done();
        let old = self.log.id();
        let switched = match staged {
            Staged::Linked => self.log.replace(file).map(|()| self.switched(old)).or_else(|_| self.reopen()),
            // Moved by another program (only a reopen is left to do), or
            // staged without a new file at its name.
            Staged::Elsewhere | Staged::Unnamed => self.reopen(),
        };
        // The staged log is settled once the pump writes elsewhere: it is
        // then compressed too. Should every reopen have failed, the pump
        // still writes to it, under its staged name: nothing is lost, and
        // the next rotation or start settles it.
        if switched.is_ok()
            && let Some(a) = &self.archiver
        {
            a.settle(dir, name, keep);
        }
        switched
    }

    /// Moves the archives up, the log to `.1`, and opens a new log with the
    /// checks of a reopen. A file another program moved away first is only
    /// reopened. On failure the log stays as it is, said once per kind.
    fn rotate_in_place(&mut self, keep: u32) -> Result<(), i32> {
        let id = self.log.id();
        let compressor = self.compressor.as_deref();
        let shifted = rotate::open_dir(self.log.path()).and_then(|(dir, name)| {
            // What a failed settling left goes first: it is older. It may be
            // the file the pump still writes to (its reopen failed): then
            // that was the rotation.
            if archiver::settle(&dir, &name, keep, compressor, Some(id))? == Some(id) {
                return Ok(true);
            }
            match compressor {
                Some(c) => c.shift(|moved| rotate::shift(&dir, &name, id, keep, moved)),
                None => rotate::shift(&dir, &name, id, keep, &mut |_, _| {}),
            }
        });
        if let Err(e) = shifted {
            self.rotator.done(); // not again before the next period or size
            return Err(self.rotate_failed(&e));
        }
        if let Some(a) = &self.archiver {
            a.recovered();
        }
        self.rotate_errors.clear();
        self.rotator.done();
        let reopened = self.reopen();
        // Only once the log is reopened is `.1` no longer written to: a
        // compression (which deletes the archive) must not start before.
        if let (Ok(()), Ok(true), Some(c)) = (reopened, shifted, &self.compressor) {
            c.queue_newest();
        }
        reopened
    }

    /// Writes `data`, or queues it behind what waits for the log to take
    /// data again.
    fn put(&mut self, data: &[u8], now: Instant) {
        if let Some(&last) = data.last() {
            self.taken_line_end = last == b'\n';
        }
        if self.backlog.is_clear() {
            let n = self.write_some(data, now);
            if n < data.len() {
                self.backlog.push_cut(data, n);
            }
        } else {
            self.backlog.push(data.to_vec());
            if self.backlog.may_try(now) {
                self.drain(now);
            }
        }
    }

    /// Writes as much of `bytes` as the log takes; on a failure, says when
    /// to retry. Returns how many bytes were written.
    fn write_some(&mut self, bytes: &[u8], now: Instant) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            match with_fd(self.log.fd(), |mut f| f.write(&bytes[done..])) {
                Ok(0) => {
                    self.backlog.failed("the log takes no more data".into(), now);
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.backlog.failed(backlog::describe(&e), now);
                    break;
                }
            }
        }
        if done > 0 {
            self.written_line_end = bytes[done - 1] == b'\n';
            self.rotator.size += done as u64;
        }
        done
    }

    /// Writes what waits: the rest of a chunk cut short, then the marker for
    /// what was dropped, then the queue, oldest first; stops at a failure.
    fn drain(&mut self, now: Instant) {
        if let Some(rest) = self.backlog.started().map(<[u8]>::to_vec) {
            let n = self.write_some(&rest, now);
            self.backlog.advance(n);
            if n < rest.len() {
                return;
            }
        }
        if let Some(loss) = self.backlog.take_loss() {
            let line_break = if self.written_line_end { "" } else { "\n" };
            let marker = format!("dropped {} bytes ({}) {}", loss.bytes, loss.why, loss.between());
            let line = format!("{line_break}detach: {marker}\n");
            let n = self.write_some(line.as_bytes(), now);
            if n == 0 {
                return self.backlog.restore_loss(loss);
            }
            // Cut short by the disk filling up again: its rest goes first.
            self.backlog.push_next(line.as_bytes()[n..].to_vec());
            log::warn!("{marker}");
            self.notes.push(marker);
        }
        while let Some(front) = self.backlog.front() {
            let front = front.to_vec(); // one copy per retry, not per write
            let n = self.write_some(&front, now);
            self.backlog.advance(n);
            if n < front.len() {
                return;
            }
        }
        self.backlog.succeeded();
    }

    /// A retry or a timed rotation is due (the supervisor's timer), or the
    /// pump is ending.
    pub fn retry(&mut self, now: Instant) {
        if !self.backlog.is_clear() {
            self.drain(now);
        }
        if self.at_line_boundary() && self.rotator.due(0, now) {
            let _ = self.rotate();
        }
    }

    /// Appends a line of detach's own, starting it on a line of its own,
    /// in order behind whatever waits.
    pub fn own_line(&mut self, msg: &str) {
        let line_break = if self.taken_line_end { "" } else { "\n" };
        self.write(format!("{line_break}detach: {msg}\n").as_bytes(), None, Instant::now(), false);
    }

    /// Writes one line of detach's own into this log, at a line boundary
    /// (and hands it to the `log` crate, for a library user's logger).
    pub fn warn(&mut self, msg: &str) {
        log::warn!("{msg}");
        self.own_line(msg);
        self.notes.push(msg.to_owned());
    }

    /// The watch: reopen when the path names another file; when it names
    /// nothing, wait one more interval before creating it, so that a rotation
    /// between its rename and its create (logrotate's `create`, which moves
    /// a file it finds there aside as `.backup`) is never raced.
    pub fn check_moved(&mut self, now: Instant) {
        self.last_check = now;
        if self.rotator.policy.size.is_some() {
            // Another writer (or logrotate's copytruncate) changes the size.
            self.rotator.size = self.file_size();
        }
        match self.log.path_state() {
            PathState::Same => self.missing_since = None,
            PathState::Replaced => drop(self.reopen()),
            PathState::Missing => {
                if now.duration_since(*self.missing_since.get_or_insert(now)) >= WATCH_INTERVAL {
                    let _ = self.reopen();
                }
            }
        }
    }

    /// Says a rotation's failure once per kind; its errno.
    fn rotate_failed(&mut self, e: &io::Error) -> i32 {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        if !self.rotate_errors.contains(&errno) {
            self.rotate_errors.push(errno);
            self.warn(&format!("cannot rotate '{}': {e}", self.log.path().display()));
        }
        errno
    }

    /// What changes when the log's fds were given another file (a reopen,
    /// a rotation), `old` being the one before.
    fn switched(&mut self, old: (u64, u64)) {
        // Another file: what detach writes there starts a line
        // (reopening the same file keeps where its last line ended).
        self.written_line_end |= self.log.id() != old;
        if self.log.id() != old {
            // The rest of a line cut short belongs to the old file.
            self.backlog.abandon_cut();
        }
        self.reopen_errors.clear();
        self.missing_since = None;
    }

    /// Reopens by path; on failure keeps the old file, says so once per
    /// kind of failure, and returns the errno.
    pub fn reopen(&mut self) -> Result<(), i32> {
        let old = self.log.id();
        match self.log.reopen() {
            Ok(()) => {
                self.switched(old);
                self.rotator.size = self.file_size();
                // A new file may take what the old one would not.
                self.retry(Instant::now());
                Ok(())
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if !self.reopen_errors.contains(&errno) {
                    self.reopen_errors.push(errno);
                    self.warn(&format!("cannot reopen '{}': {e}", self.log.path().display()));
                }
                Err(errno)
            }
        }
    }

    /// When the backlog is due for a retry, or the period for a rotation.
    pub fn retry_at(&self) -> Option<Instant> {
        let rotate_at = if self.at_line_boundary() { self.rotator.wake_at() } else { None };
        self.backlog.retry_at().into_iter().chain(rotate_at).min()
    }

    /// detach's own lines written here since the last call, for syslog.
    pub fn take_notes(&mut self) -> Vec<String> {
        if let Some(failure) = self.compressor.as_ref().and_then(|c| c.take_failure()) {
            self.warn(&failure);
        }
        if let Some(e) = self.archiver.as_ref().and_then(Archiver::take_failure) {
            self.rotate_failed(&e);
        }
        std::mem::take(&mut self.notes)
    }
}

/// The wall-clock times of two instants of the past (a line's start and its
/// read), from one reading of each clock.
fn wall_times(since: Instant, read: Instant) -> (SystemTime, SystemTime) {
    let (wall, mono) = (SystemTime::now(), Instant::now());
    let back = |t: Instant| wall.checked_sub(mono.saturating_duration_since(t)).unwrap_or(wall);
    (back(since), back(read))
}
