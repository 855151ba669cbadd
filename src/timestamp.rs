//! `--timestamp`: the time each line's first byte was read, written before
//! the line in one of four formats.
//!
//! Local time is the C library's (localtime_r), so that it follows TZ and
//! /etc/localtime exactly as `date` does. It is asked once per second of
//! wall time, not once per line: the date, the time to the second and the
//! UTC offset are cached, and only the fraction is formatted per write.
//! tzset(3) runs at most once a second, so a new /etc/localtime or a DST
//! change is followed within a second.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a line's time is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// RFC 3339 local time with microseconds and offset: 2026-11-29T23:57:19.123456+01:00
    Iso,
    /// RFC 3339 UTC with microseconds: 2026-11-29T22:57:19.123456Z
    Utc,
    /// TAI64N as s6-log and multilog write it (`tai64nlocal` decodes it): @4000000069...
    Tai64n,
    /// Seconds since the epoch, with microseconds: 1764457039.123456
    Unix,
}

/// A small step back of the clock (under this) is hidden: stamps never go
/// backwards because two clocks were read in a different order. A larger
/// step (the clock was set) is followed.
const JITTER: Duration = Duration::from_secs(1);

/// Formats stamps, caching what changes once a second.
pub struct Stamper {
    format: TimeFormat,
    /// The whole second the cache holds, and its text up to the seconds.
    second: i64,
    head: String,
    /// The offset's text (`+05:30`, `Z`), for iso and utc.
    tail: String,
    /// The latest stamp given, to keep them in order.
    last: SystemTime,
    /// The text of the latest stamp, and the time it stands for.
    text: String,
    text_at: SystemTime,
}

impl Stamper {
    pub fn new(format: TimeFormat) -> Stamper {
        Stamper {
            format,
            second: i64::MIN,
            head: String::new(),
            tail: String::new(),
            last: UNIX_EPOCH,
            text: String::new(),
            text_at: UNIX_EPOCH,
        }
    }

    /// The stamp for `t` followed by one space.
    pub fn stamp(&mut self, t: SystemTime) -> &str {
        let t = match self.last.duration_since(t) {
            Ok(back) if back < JITTER => self.last,
            _ => t,
        };
        self.last = t;
        if t != self.text_at || self.text.is_empty() {
            self.text_at = t;
            self.format_stamp(t);
        }
        &self.text
    }

    fn format_stamp(&mut self, t: SystemTime) {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(_) => (0, 0), // before 1970: a clock that is badly off
        };
        self.text.clear();
        match self.format {
            TimeFormat::Tai64n => {
                // TAI64 label: 2^62 + TAI seconds, which were 10 ahead of
                // UTC in 1970; daemontools' tai64nlocal subtracts both.
                let label = (1u64 << 62) + 10 + secs as u64;
                let _ = write!(self.text, "@{label:016x}{nanos:08x} ");
            }
            TimeFormat::Unix => {
                let _ = write!(self.text, "{secs}.{:06} ", nanos / 1000);
            }
            TimeFormat::Iso | TimeFormat::Utc => {
                if secs != self.second {
                    self.cache_second(secs);
                }
                let _ = write!(self.text, "{}.{:06}{} ", self.head, nanos / 1000, self.tail);
            }
        }
    }

    /// The date and time to the second of `secs`, and the offset, from the
    /// C library; tzset once per new second, to notice a new zone.
    fn cache_second(&mut self, secs: i64) {
        let local = self.format == TimeFormat::Iso;
        let time = secs as libc::time_t;
        // SAFETY: a zeroed tm is a valid value; localtime_r and gmtime_r
        // write only the tm we own. tzset(3) is thread-safe in glibc and
        // touches the C library's own state.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if local {
                tzset();
                libc::localtime_r(&time, &mut tm);
            } else {
                libc::gmtime_r(&time, &mut tm);
            }
            tm
        };
        self.second = secs;
        self.head.clear();
        let _ = write!(
            self.head,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            tm.tm_year as i64 + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        );
        self.tail = if local { offset_text(tm.tm_gmtoff) } else { "Z".into() };
    }
}

unsafe extern "C" {
    /// tzset(3), which the libc crate does not declare.
    fn tzset();
}

/// `+01:00`, `-03:30`, `+00:00`.
fn offset_text(gmtoff: libc::c_long) -> String {
    let sign = if gmtoff < 0 { '-' } else { '+' };
    let minutes = gmtoff.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Writes `data` to `out` with a stamp at the start of each line: the first
/// only when `line_start` (else it continues a line already stamped), with
/// `first`; the others with `rest`.
pub fn stamp_lines(
    stamper: &mut Stamper,
    data: &[u8],
    line_start: bool,
    first: SystemTime,
    rest: SystemTime,
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut pos = 0;
    if !line_start {
        pos = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
        out.extend_from_slice(&data[..pos]);
    } else if !data.is_empty() {
        let stamp = stamper.stamp(first);
        let end = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
        out.extend_from_slice(stamp.as_bytes());
        out.extend_from_slice(&data[..end]);
        pos = end;
    }
    if pos < data.len() {
        let stamp = stamper.stamp(rest).as_bytes();
        let rest = &data[pos..];
        out.reserve(rest.len() + rest.len() / 16 * stamp.len());
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', rest) {
            out.extend_from_slice(stamp);
            out.extend_from_slice(&rest[start..=i]);
            start = i + 1;
        }
        if start < rest.len() {
            out.extend_from_slice(stamp);
            out.extend_from_slice(&rest[start..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    #[test]
    fn formats_follow_their_definitions() {
        let t = at(1_764_457_039, 123_456);
        assert_eq!(Stamper::new(TimeFormat::Utc).stamp(t), "2025-11-29T22:57:19.123456Z ");
        assert_eq!(Stamper::new(TimeFormat::Unix).stamp(t), "1764457039.123456 ");
        assert_eq!(Stamper::new(TimeFormat::Tai64n).stamp(t), "@40000000692b7a59075bca00 ");
    }

    #[test]
    fn offsets_are_signed_hours_and_minutes() {
        assert_eq!(offset_text(19_800), "+05:30");
        assert_eq!(offset_text(-12_600), "-03:30");
        assert_eq!(offset_text(0), "+00:00");
    }

    #[test]
    fn a_small_step_back_is_hidden_a_large_one_followed() {
        let mut s = Stamper::new(TimeFormat::Unix);
        s.stamp(at(100, 500));
        assert_eq!(s.stamp(at(100, 400)), "100.000500 ");
        assert_eq!(s.stamp(at(50, 0)), "50.000000 ");
    }

    #[test]
    fn every_line_start_is_stamped_and_a_continuation_is_not() {
        let mut s = Stamper::new(TimeFormat::Unix);
        let mut out = Vec::new();
        stamp_lines(&mut s, b"a\nb\nc", true, at(1, 0), at(2, 0), &mut out);
        assert_eq!(out, b"1.000000 a\n2.000000 b\n2.000000 c");
        stamp_lines(&mut s, b"c\nd\n", false, at(3, 0), at(3, 0), &mut out);
        assert_eq!(out, b"c\n3.000000 d\n");
    }
}
