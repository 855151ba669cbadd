//! What the pump holds while a destination cannot take data (a full disk, a
//! syslog collector restarting): a bounded queue, a retry clock with backoff,
//! and the account of what had to be dropped, for one marker line later.
//!
//! The policy (README, "What happens when the disk is full"): the pipe is
//! always read, so the command never waits on a broken log; what cannot be
//! written waits here, up to a bound; past the bound the *oldest* data goes.
//! Dropping the oldest keeps what is written when the fault ends contiguous
//! with what follows it, and leaves one gap, right before the queue, which
//! the marker line written first describes exactly.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first retry after a failure, doubled after each failed retry.
const RETRY_FIRST: Duration = Duration::from_millis(10);
/// The longest wait between two retries.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// What one queued chunk costs besides its bytes (its `Vec`, its slot in the
/// queue, the allocator's rounding), counted against the bound: so 4 MiB of
/// one-byte chunks cannot cost twenty times the memory of 4 MiB of lines.
pub const CHUNK_COST: usize = 64;

/// What was dropped, why, and when.
#[derive(Clone, Debug)]
pub struct Loss {
    pub bytes: u64,
    /// How many of the queued items (lines, messages) were dropped, whole or in part.
    pub items: u64,
    pub why: String,
    pub first: SystemTime,
    pub last: SystemTime,
}

impl Loss {
    /// `between 2026-11-23T10:00:00.123Z and 2026-11-23T10:00:05.456Z`
    pub fn between(&self) -> String {
        format!("between {} and {}", rfc3339(self.first), rfc3339(self.last))
    }
}

/// A chunk queued: bytes, and whether it must never be dropped (a marker).
struct Chunk {
    data: Vec<u8>,
    keep: bool,
}

/// A bounded FIFO of byte chunks waiting to be written, oldest first.
pub struct Backlog {
    queue: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    offset: usize,
    /// Bytes queued and not written.
    bytes: usize,
    limit: usize,
    /// Why writing fails now: the reason a drop gets.
    error: Option<String>,
    loss: Option<Loss>,
    retry_delay: Duration,
    retry_at: Option<Instant>,
}

impl Backlog {
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            queue: VecDeque::new(),
            offset: 0,
            bytes: 0,
            limit,
            error: None,
            loss: None,
            retry_delay: RETRY_FIRST,
            retry_at: None,
        }
    }

    /// Nothing waits and nothing was lost: data may be written straight away.
    pub fn is_clear(&self) -> bool {
        self.queue.is_empty() && self.loss.is_none()
    }

    /// Queues `data` behind what waits. While the bound is exceeded (bytes,
    /// plus [`CHUNK_COST`] per chunk), drops the oldest chunk that is neither
    /// started (its rest must follow what was written of it: a TCP frame, a
    /// line) nor a marker; a chunk bigger than the bound may be dropped itself.
    pub fn push(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        self.queue.push_back(Chunk { data, keep: false });
        while self.bytes + self.queue.len() * CHUNK_COST > self.limit {
            let started = usize::from(self.offset > 0);
            let Some(i) = self.queue.iter().skip(started).position(|c| !c.keep) else { break };
            let chunk = self.queue.remove(i + started).expect("an index found above");
            self.bytes -= chunk.data.len();
            self.count_lost(chunk.data.len() as u64, 1);
        }
    }

    /// Queues what is left of `data` once its first `written` bytes were
    /// written, nothing waiting. The rest of the line cut short stays at the
    /// head as a chunk started (never dropped: a line torn by a full disk is
    /// completed before any marker); the lines after it are queued as usual.
    pub fn push_cut(&mut self, data: &[u8], written: usize) {
        if written == 0 || written >= data.len() || !self.queue.is_empty() {
            return self.push(data[written.min(data.len())..].to_vec());
        }
        let line_end = data[written..].iter().position(|&c| c == b'\n').map_or(data.len(), |i| written + i + 1);
        self.bytes += line_end - written;
        self.offset = written;
        self.queue.push_back(Chunk { data: data[..line_end].to_vec(), keep: false });
        self.push(data[line_end..].to_vec());
    }

    /// The rest of a line cut short cannot follow its beginning (the log
    /// was reopened onto another file): it is dropped and counted, so that
    /// the new file starts with a whole line; the lines after it stay. (The
    /// rest of a marker stays: it is no output of the command's to count.)
    pub fn abandon_cut(&mut self) {
        if self.offset == 0 {
            return;
        }
        let Some(front) = self.queue.front_mut().filter(|c| !c.keep) else { return };
        let rest = &front.data[self.offset..];
        let line_end = rest.iter().position(|&c| c == b'\n').map_or(rest.len(), |i| i + 1);
        let after = rest[line_end..].to_vec();
        self.bytes -= line_end;
        self.count_lost(line_end as u64, 1);
        self.offset = 0;
        if after.is_empty() {
            self.queue.pop_front();
        } else if let Some(front) = self.queue.front_mut() {
            front.data = after;
        }
    }

    /// Queues `data` (a marker, or its rest) right after the chunk being
    /// written, if any, ahead of everything else, never to be dropped.
    pub fn push_next(&mut self, data: Vec<u8>) {
        if !data.is_empty() {
            self.bytes += data.len();
            let at = self.queue.iter().skip(usize::from(self.offset > 0)).take_while(|c| c.keep).count();
            self.queue.insert(at + usize::from(self.offset > 0), Chunk { data, keep: true });
        }
    }

    /// How many chunks wait (started or not).
    pub fn chunks(&self) -> usize {
        self.queue.len()
    }

    /// Counts data dropped without being queued (a datagram too big).
    pub fn count_lost(&mut self, bytes: u64, items: u64) {
        let now = SystemTime::now();
        let why = self.error.clone().unwrap_or_else(|| "no room".into());
        let loss = self.loss.get_or_insert(Loss { bytes: 0, items: 0, why, first: now, last: now });
        loss.bytes += bytes;
        loss.items += items;
        loss.last = now;
    }

    /// The unwritten part of the oldest chunk.
    pub fn front(&self) -> Option<&[u8]> {
        self.queue.front().map(|c| &c.data[self.offset..])
    }

    /// The rest of a chunk partly written, which must go first.
    pub fn started(&self) -> Option<&[u8]> {
        self.front().filter(|_| self.offset > 0)
    }

    /// The unwritten parts of the oldest `max` chunks, for one writev(2).
    pub fn fronts(&self, max: usize) -> impl Iterator<Item = &[u8]> {
        let offset = self.offset;
        self.queue.iter().take(max).enumerate().map(move |(i, c)| &c.data[if i == 0 { offset } else { 0 }..])
    }

    /// `n` more bytes from the front were written (they may span chunks).
    pub fn advance(&mut self, mut n: usize) {
        self.bytes -= n;
        while let Some(front) = self.queue.front() {
            let left = front.data.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.queue.pop_front();
            self.offset = 0;
        }
    }

    /// The front chunk went whole (a datagram).
    pub fn advance_chunk(&mut self) {
        if let Some(rest) = self.front() {
            self.advance(rest.len());
        }
    }

    /// The front chunk cannot be written at all: it is dropped and counted.
    pub fn drop_chunk(&mut self) {
        if let Some(rest) = self.front().map(<[u8]>::len) {
            self.advance(rest);
            self.count_lost(rest as u64, 1);
        }
    }

    /// Starts the front chunk over (a new connection must resend it whole).
    pub fn rewind(&mut self) {
        self.bytes += std::mem::take(&mut self.offset);
    }

    /// Takes the account of what was lost, to be said in a marker.
    pub fn take_loss(&mut self) -> Option<Loss> {
        self.loss.take()
    }

    /// Puts back a loss whose marker could not be written.
    pub fn restore_loss(&mut self, loss: Loss) {
        self.loss = Some(loss);
    }

    /// Writing failed: retry later, each time a little later.
    pub fn failed(&mut self, why: String, now: Instant) {
        self.error = Some(why);
        self.retry_at = Some(now + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
    }

    /// Writing works (again): the next failure retries quickly.
    pub fn succeeded(&mut self) {
        self.error = None;
        self.retry_at = None;
        self.retry_delay = RETRY_FIRST;
    }

    /// When the next retry is due, if writing is failing.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.is_clear())
    }

    /// Whether a write may be tried now: nothing waits, or a retry is due.
    pub fn may_try(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }
}

/// The words a write error gets in a marker: `disk full` for ENOSPC.
pub fn describe(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOSPC) => "disk full".into(),
        Some(libc::EDQUOT) => "disk quota exceeded".into(),
        Some(libc::EFBIG) => "file too large".into(),
        Some(libc::EIO) => "I/O error".into(),
        _ => err.to_string(),
    }
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-11-23T10:00:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z", since.subsec_millis())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_795_435_200_123), "2026-11-23T12:00:00.123Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn drops_the_oldest_past_the_bound() {
        // Room for 12 bytes in two chunks.
        let mut b = Backlog::new(12 + 2 * CHUNK_COST);
        b.failed("disk full".into(), Instant::now());
        b.push(b"aaaa\n".to_vec());
        b.advance(2); // "aa" written, "aa\n" left: it stays, to end its line
        b.push(b"bbbb\n".to_vec());
        b.push(b"cccc\n".to_vec()); // 3 + 5 + 5 > 12, in three: b's chunk goes
        let loss = b.take_loss().expect("a loss");
        assert_eq!((loss.bytes, loss.items, loss.why.as_str()), (5, 1, "disk full"));
        b.push_next(b"marker\n".to_vec()); // after the started chunk
        b.push(b"dddd\n".to_vec()); // 3 + 5 + 7 + 5 in four: c goes, then d, never the marker
        let rest: Vec<&[u8]> = b.fronts(9).collect();
        assert_eq!(rest, [&b"aa\n"[..], b"marker\n"]);
        b.advance(3 + 5);
        assert_eq!(b.front(), Some(&b"r\n"[..]));
        b.advance(2);
        assert_eq!(b.take_loss().map(|l| (l.bytes, l.items)), Some((10, 2)));
        assert!(b.is_clear());
    }

    /// Issue 13, item 14: 4 MiB of one-byte chunks cost far more than 4 MiB.
    #[test]
    fn many_tiny_chunks_are_bounded_by_their_bookkeeping_too() {
        let limit = 64 * 1024;
        let mut b = Backlog::new(limit);
        b.failed("disk full".into(), Instant::now());
        for _ in 0..100_000 {
            b.push(vec![b'x']);
        }
        assert!(b.chunks() <= limit / CHUNK_COST, "{} chunks held under a bound of {limit} bytes", b.chunks());
        assert!(b.chunks() > limit / CHUNK_COST / 2, "{} chunks: the bound is too strict", b.chunks());
        let loss = b.take_loss().expect("a loss");
        assert_eq!(loss.bytes as usize + b.fronts(usize::MAX).map(<[u8]>::len).sum::<usize>(), 100_000);
    }

    /// Issue 13, item 16: the rest of a line cut by a full disk is kept, whatever the bound.
    #[test]
    fn the_rest_of_a_line_cut_short_is_never_dropped() {
        let mut b = Backlog::new(0);
        b.failed("disk full".into(), Instant::now());
        b.push_cut(b"aaaa\nbbbb\ncccc\n", 2); // "aa" written
        b.push(b"dddd\n".to_vec());
        let rest: Vec<&[u8]> = b.fronts(9).collect();
        assert_eq!(rest, [&b"aa\n"[..]], "the rest of the cut line went, or more stayed");
        assert_eq!(b.take_loss().map(|l| l.bytes), Some(15));
        // Reopened onto another file: that rest cannot follow its start, and is counted.
        let mut b = Backlog::new(1 << 20);
        b.push_cut(b"aaaa\nbbbb\n", 2);
        b.abandon_cut();
        assert_eq!(b.fronts(9).collect::<Vec<_>>(), [&b"bbbb\n"[..]]);
        assert_eq!(b.take_loss().map(|l| (l.bytes, l.items)), Some((3, 1)));
    }
}
