//! Whether the machine has a CPU to spare, for work that should not take
//! one from the pump or from the program it serves (compress.rs).
//!
//! A lower priority is not enough: on a 2-CPU virtual machine, a gzip thread
//! at nice 19 or SCHED_IDLE still slowed a full-speed writer and the pump by
//! 6% to 23% (BENCHMARKS.md §6; the two vCPUs may share a core). So the
//! compressor looks at the machine's idle time in /proc/stat, over the last
//! tenth of a second, and counts its own thread's CPU time as idle (it would
//! be, if the thread waited): less than a whole CPU left over means busy.

use std::time::{Duration, Instant};

/// How long one look covers.
const WINDOW: Duration = Duration::from_millis(100);
/// Less idle than this, in CPUs, is busy: a whole one (a writer and the
/// pump on a 2-CPU machine leave half of one idle, in the gaps of their
/// handoffs through the pipe, and a compression there still slowed them);
/// three quarters on a machine that has only one.
const ENOUGH: f64 = 1.0;

/// Successive looks at the machine's CPU time, from one thread.
pub struct SpareCpu {
    last: Option<Sample>,
    busy: bool,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    /// All CPUs' time and their idle time (idle + iowait), in clock ticks.
    total: u64,
    idle: u64,
    cpus: u32,
    /// The calling thread's own CPU time.
    own: Duration,
}

impl SpareCpu {
    pub fn new() -> SpareCpu {
        SpareCpu { last: None, busy: true }
    }

    /// Whether the machine was busy over the last window (busy until the
    /// first window is over; never busy when /proc/stat cannot be read).
    pub fn busy(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|s| now.duration_since(s.at) < WINDOW) {
            return self.busy;
        }
        let Some(sample) = sample(now) else {
            self.busy = false;
            return false;
        };
        if let Some(last) = self.last.filter(|l| sample.total > l.total && sample.cpus > 0) {
            let total = (sample.total - last.total) as f64;
            let idle = sample.idle.saturating_sub(last.idle) as f64;
            let own = sample.own.saturating_sub(last.own).as_secs_f64() * ticks_per_second();
            let spare = ((idle + own) / total).min(1.0) * f64::from(sample.cpus);
            self.busy = spare < ENOUGH.min(0.75 * f64::from(sample.cpus));
        }
        self.last = Some(sample);
        self.busy
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf(3) reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The first line of /proc/stat (`cpu  user nice system idle iowait irq
/// softirq steal ...`), the number of `cpuN` lines, and this thread's time.
fn sample(at: Instant) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let fields: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    let cpus = lines.take_while(|l| l.starts_with("cpu")).count() as u32;
    let own = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let own = Duration::new(own.tv_sec().max(0) as u64, own.tv_nsec().clamp(0, 999_999_999) as u32);
    Some(Sample { at, total: fields.iter().sum(), idle: fields[3] + fields[4], cpus, own })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_read_with_every_online_cpu() {
        let mut spare = SpareCpu::new();
        assert!(spare.busy(), "before a whole window, busy");
        // SAFETY: sysconf(3) reads a value.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as u32;
        let s = spare.last.expect("/proc/stat was not read");
        assert_eq!(s.cpus, online, "cpuN lines");
        assert!(s.total > s.idle && s.idle > 0, "total {} idle {}", s.total, s.idle);
    }
}
