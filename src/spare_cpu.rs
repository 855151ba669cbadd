//! Whether the machine has a CPU to spare, for work that should not take
//! one from the pump or from the program it serves (compress.rs).
//!
//! A lower priority is not enough: on a 2-CPU virtual machine, a gzip thread
//! at nice 19 or SCHED_IDLE still slowed a full-speed writer and the pump by
//! 6% to 23% (BENCHMARKS.md §6; the two vCPUs may share a core). So the
//! compressor looks at the idle time, over the last tenth of a second, of
//! the CPUs this thread may run on (/proc/stat's `cpuN` lines, for the CPUs
//! in its affinity mask), and at what is left of the CPU quota of its cgroup
//! and the cgroups above (cgroup v2 `cpu.max` and `cpu.stat`: a container's
//! limit). Its own thread's CPU time counts as spare (it would be, if the
//! thread waited). Less than a whole CPU to spare means busy.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one look covers.
const WINDOW: Duration = Duration::from_millis(100);
/// A last look older than this says nothing about now: look again.
const STALE: Duration = Duration::from_millis(400);
/// Less spare than this, in CPUs, is busy: a whole one (a writer and the
/// pump on a 2-CPU machine leave half of one idle, in the gaps of their
/// handoffs through the pipe, and a compression there still slowed them);
/// three quarters of all there is on a machine, or under a quota, of less
/// than 1.34 CPUs.
const ENOUGH: f64 = 1.0;

/// Successive looks at the CPU time, from one thread.
pub struct SpareCpu {
    last: Option<Sample>,
    busy: bool,
    /// The cgroup with the smallest CPU quota on the way up from ours, and
    /// that quota, in CPUs.
    quota: Option<(PathBuf, f64)>,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    /// Our CPUs' time and their idle time (idle + iowait), in clock ticks.
    total: u64,
    idle: u64,
    cpus: u32,
    /// The calling thread's own CPU time.
    own: Duration,
    /// The quota's cgroup's CPU time.
    used: Option<Duration>,
}

impl SpareCpu {
    pub fn new() -> SpareCpu {
        SpareCpu { last: None, busy: true, quota: quota() }
    }

    /// Whether the CPUs were busy over the last window (busy until a first
    /// window is over; never busy when /proc/stat cannot be read).
    pub fn busy(&mut self) -> bool {
        let now = Instant::now();
        match self.last.map(|s| now.duration_since(s.at)) {
            Some(age) if age < WINDOW => return self.busy,
            Some(age) if age > STALE => self.last = None,
            _ => {}
        }
        let Some(sample) = sample(now, self.quota.as_ref().map(|(dir, _)| dir)) else {
            self.busy = false;
            return false;
        };
        // What these CPUs (and the quota) can give at most.
        let capacity = self.quota.as_ref().map_or(f64::from(sample.cpus), |(_, q)| q.min(f64::from(sample.cpus)));
        self.busy = match self.last {
            Some(last) => self.spare(&last, &sample) < ENOUGH.min(0.75 * capacity),
            None => true,
        };
        self.last = Some(sample);
        self.busy
    }

    /// CPUs to spare between two samples.
    fn spare(&self, last: &Sample, now: &Sample) -> f64 {
        let wall = now.at.duration_since(last.at).as_secs_f64();
        let own = now.own.saturating_sub(last.own).as_secs_f64();
        let total = now.total.saturating_sub(last.total) as f64;
        let mut spare = match total > 0.0 && now.cpus > 0 {
            true => {
                let idle = now.idle.saturating_sub(last.idle) as f64 + own * ticks_per_second();
                (idle / total).min(1.0) * f64::from(now.cpus)
            }
            false => f64::from(now.cpus),
        };
        if let (Some((_, quota)), Some(a), Some(b), true) = (&self.quota, last.used, now.used, wall > 0.0) {
            let used = b.saturating_sub(a).as_secs_f64() - own;
            spare = spare.min(quota - used.max(0.0) / wall);
        }
        spare
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf(3) reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The `cpuN` lines of /proc/stat (`cpuN user nice system idle iowait irq
/// softirq steal ...`) of the CPUs this thread may run on (all of them when
/// the mask cannot be read), its own CPU time, and the quota cgroup's.
fn sample(at: Instant, cgroup: Option<&PathBuf>) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mask = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
    let (mut total, mut idle, mut cpus) = (0, 0, 0);
    for line in stat.lines().skip(1).take_while(|l| l.starts_with("cpu")) {
        let mut fields = line.split_whitespace();
        let n: usize = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
        if mask.as_ref().is_some_and(|m| !m.is_set(n).unwrap_or(true)) {
            continue;
        }
        let times: Vec<u64> = fields.take(8).map(|f| f.parse().ok()).collect::<Option<_>>()?;
        if times.len() < 5 {
            return None;
        }
        total += times.iter().sum::<u64>();
        idle += times[3] + times[4];
        cpus += 1;
    }
    let own = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let own = Duration::new(own.tv_sec().max(0) as u64, own.tv_nsec().clamp(0, 999_999_999) as u32);
    let used = cgroup.and_then(|dir| {
        let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
        let usec = stat.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())?;
        Some(Duration::from_micros(usec))
    });
    Some(Sample { at, total, idle, cpus, own, used })
}

/// The smallest cgroup v2 CPU quota (`cpu.max`: `QUOTA PERIOD`, or `max`)
/// from this process's cgroup up to the root, with its directory.
fn quota() -> Option<(PathBuf, f64)> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mut dir = PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let mut least: Option<(PathBuf, f64)> = None;
    loop {
        let max = std::fs::read_to_string(dir.join("cpu.max")).unwrap_or_default();
        let mut f = max.split_whitespace();
        if let (Some(Ok(q)), Some(Ok(p))) = (f.next().map(str::parse::<f64>), f.next().map(str::parse::<f64>))
            && q > 0.0
            && p > 0.0
            && least.as_ref().is_none_or(|(_, l)| q / p < *l)
        {
            least = Some((dir.clone(), q / p));
        }
        if dir == std::path::Path::new("/sys/fs/cgroup") || !dir.pop() {
            return least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_read_for_the_cpus_this_thread_may_use() {
        let mut spare = SpareCpu::new();
        assert!(spare.busy(), "before a whole window, busy");
        let s = spare.last.expect("/proc/stat was not read");
        let usable = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        // available_parallelism also counts a cgroup quota, rounded down.
        assert!(s.cpus >= usable, "{} CPUs read, {usable} usable", s.cpus);
        assert!(s.total > s.idle && s.idle > 0, "total {} idle {}", s.total, s.idle);
    }

    fn at(base: Instant, ms: u64, total: u64, idle: u64, own_ms: u64, used_ms: Option<u64>) -> Sample {
        let ms_ = Duration::from_millis;
        let at = base + ms_(ms);
        Sample { at, total, idle, cpus: 2, own: ms_(own_ms), used: used_ms.map(ms_) }
    }

    #[test]
    fn spare_counts_idle_cpus_and_its_own_time_within_a_quota() {
        let t = Instant::now();
        let hz = ticks_per_second() as u64;
        let (no_quota, half) = (SpareCpu { last: None, busy: true, quota: None }, 0.5);
        // 2 CPUs over 1 s: 2 * hz ticks, a quarter idle: half a CPU spare.
        let (a, b) = (at(t, 0, 0, 0, 0, None), at(t, 1000, 2 * hz, hz / 2, 0, None));
        assert!((no_quota.spare(&a, &b) - 0.5).abs() < 0.01);
        // The same, this thread having used half a CPU of it: one CPU spare.
        let b = at(t, 1000, 2 * hz, hz / 2, 500, None);
        assert!((no_quota.spare(&a, &b) - 1.0).abs() < 0.01);
        // A quota of half a CPU, the cgroup using 0.45 s a second (none of it ours): 0.05.
        let quota = SpareCpu { last: None, busy: true, quota: Some((PathBuf::new(), half)) };
        let (a, b) = (at(t, 0, 0, 0, 0, Some(0)), at(t, 1000, 2 * hz, hz, 0, Some(450)));
        assert!((quota.spare(&a, &b) - 0.05).abs() < 0.01, "{}", quota.spare(&a, &b));
    }

    #[test]
    fn a_look_after_a_long_pause_starts_a_new_window() {
        let mut spare = SpareCpu::new();
        spare.busy();
        std::thread::sleep(STALE + Duration::from_millis(50));
        assert!(spare.busy(), "a window of {STALE:?} and more was taken as the last tenth of a second");
    }
}
