//! Small helpers of the verbs: waiting on fds, deadlines, and what /proc
//! says of a process.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

pub(super) use crate::deadline::after as deadline;
use crate::request;

/// Polls `fds` for input up to `timeout`; the first readable one.
pub(super) fn poll_in(fds: &[i32], timeout: Duration) -> Option<i32> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll(2) on an array of pollfd we own, of the length we pass.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return None;
    }
    pfds.iter().find(|p| p.revents != 0).map(|p| p.fd)
}

pub(super) fn children_of(pid: i32) -> Vec<i32> {
    let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

pub(super) fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<_> = raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect();
    Some(args.join(" "))
}

/// How long `pid` has run, as 1d02h03m04s.
pub(super) fn uptime(pid: i32) -> Option<String> {
    let start = request::start_time(pid)?;
    let mut up = String::new();
    File::open("/proc/uptime").ok()?.read_to_string(&mut up).ok()?;
    let now: f64 = up.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let secs = (now - start as f64 / hz).max(0.0) as u64;
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    Some(match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m{s:02}s"),
    })
}
