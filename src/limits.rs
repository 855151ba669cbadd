//! The command's world besides its environment: `--chroot`, `--limit`,
//! `--nice`, `--ionice`, `--oom-score-adj`. Values are parsed into types that
//! cannot hold a bad one; [`Settings::prepare`] turns them, before any fork,
//! into plain data ([`Confinement`]) that the child applies with system calls
//! only, in this order:
//!
//!   chroot, chdir, limits, nice, ionice, OOM score, (then groups, uid, exec)
//!
//! the order of start-stop-daemon and systemd: the root first, so that the
//! directory and the command are looked up inside it; limits before the
//! priority, so that `--limit nice=...` can allow a lower `--nice`; all
//! before the switch to `--user`, which may take the privilege they need.
//!
//! When one fails, the child writes which step it was into a page it shares
//! with its parent ([`StepMark`]) before returning the error to std, whose
//! own pipe carries only the errno: the parent then names the option.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};

/// What the command line says about the command's world.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub chroot: Option<PathBuf>,
    /// The command's working directory inside `chroot` (default `/`); used
    /// only with a chroot (otherwise the command inherits detach's).
    pub chdir: Option<PathBuf>,
    pub limits: Vec<Limit>,
    pub nice: Option<i32>,
    pub ionice: Option<Ionice>,
    pub oom_score_adj: Option<i32>,
}

/// `--limit NAME=SOFT[:HARD]`, prlimit(1)'s syntax: `N` sets both, `S:H`
/// both, `S:` the soft one only, `:H` the hard one only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// As given, for messages.
    pub text: String,
    pub resource: Resource,
    pub soft: Option<libc::rlim_t>,
    pub hard: Option<libc::rlim_t>,
}

/// A resource of setrlimit(2), by prlimit(1)'s name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: &'static str,
    id: libc::__rlimit_resource_t,
}

const RESOURCES: [(&str, libc::__rlimit_resource_t); 16] = [
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Limit, String> {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!("'{s}' is not NAME=SOFT[:HARD]"));
        };
        let lower = name.to_ascii_lowercase();
        let Some(&(name, id)) = RESOURCES.iter().find(|(n, _)| *n == lower) else {
            let names: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
            return Err(format!("'{name}' is not a limit (one of {})", names.join(", ")));
        };
        let half = |v: &str| {
            parse_limit_value(v).map_err(|()| {
                format!("'{v}' is not a limit value (a number, with K, M or G for powers of 1024, or unlimited)")
            })
        };
        let (soft, hard) = match value.split_once(':') {
            None => {
                let v = half(value)?;
                (Some(v), Some(v))
            }
            Some(("", "")) => return Err(format!("'{s}' sets neither the soft nor the hard limit")),
            Some(("", h)) => (None, Some(half(h)?)),
            Some((soft, "")) => (Some(half(soft)?), None),
            Some((soft, h)) => (Some(half(soft)?), Some(half(h)?)),
        };
        if let (Some(s_), Some(h)) = (soft, hard)
            && s_ > h
        {
            return Err(format!("'{s}': the soft limit is above the hard one"));
        }
        Ok(Limit { text: s.to_owned(), resource: Resource { name, id }, soft, hard })
    }
}

/// A number (K, M, G: powers of 1024) or `unlimited`/`infinity`.
fn parse_limit_value(v: &str) -> std::result::Result<libc::rlim_t, ()> {
    let v = v.trim().to_ascii_lowercase();
    if v == "unlimited" || v == "infinity" {
        return Ok(libc::RLIM_INFINITY);
    }
    let (digits, shift) = match v.strip_suffix(['k', 'm', 'g']) {
        Some(d) if v.ends_with('k') => (d, 10),
        Some(d) if v.ends_with('m') => (d, 20),
        Some(d) => (d, 30),
        None => (v.as_str(), 0),
    };
    let n: libc::rlim_t = digits.parse().map_err(|_| ())?;
    n.checked_mul(1 << shift).filter(|&n| n != libc::RLIM_INFINITY).ok_or(())
}

/// `--ionice CLASS[:LEVEL]`: an I/O scheduling class and level, the
/// vocabulary of ionice(1) and start-stop-daemon's `--iosched`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ionice {
    class: libc::c_int,
    level: libc::c_int,
}

impl Ionice {
    /// The value of ioprio_set(2): class in bits 13 and up, level below.
    fn ioprio(self) -> libc::c_int {
        (self.class << 13) | self.level
    }
}

impl std::str::FromStr for Ionice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Ionice, String> {
        let (class, level) = match s.split_once(':') {
            Some((c, l)) => (c, Some(l)),
            None => (s, None),
        };
        let class = match class.to_ascii_lowercase().as_str() {
            "realtime" | "real-time" | "rt" | "1" => 1,
            "best-effort" | "be" | "2" => 2,
            "idle" | "3" => 3,
            _ => return Err(format!("'{class}' is not an I/O class (realtime, best-effort or idle)")),
        };
        let level = match level {
            None if class == 3 => 0,
            // ionice(1)'s default level for realtime and best-effort.
            None => 4,
            Some(_) if class == 3 => return Err("the idle class takes no level".into()),
            Some(l) => l
                .parse()
                .ok()
                .filter(|l| (0..=7).contains(l))
                .ok_or_else(|| format!("'{l}' is not a level from 0 to 7"))?,
        };
        Ok(Ionice { class, level })
    }
}

/// The steps the child takes, by number, for [`StepMark`]. Exec is the last:
/// a failure there is the command's own (not found, not executable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Setup = 0,
    Chroot,
    Chdir,
    Limit,
    Nice,
    Ionice,
    OomScore,
    User,
    Exec,
}

impl Step {
    fn from_u8(n: u8) -> Step {
        [Step::Chroot, Step::Chdir, Step::Limit, Step::Nice, Step::Ionice, Step::OomScore, Step::User, Step::Exec]
            .into_iter()
            .find(|s| *s as u8 == n)
            .unwrap_or(Step::Setup)
    }
}

/// Two bytes in an anonymous page shared by the parent and the child it
/// forks: the child writes the step it is at (and which `--limit`), the
/// parent reads them when spawn fails. A store to an atomic is plain memory,
/// async-signal-safe; the page outlives the exec in the parent only.
pub struct StepMark {
    page: std::ptr::NonNull<AtomicU8>,
}

// SAFETY: the page is only ever accessed through atomics.
unsafe impl Send for StepMark {}
// SAFETY: as above.
unsafe impl Sync for StepMark {}

impl StepMark {
    pub fn new() -> io::Result<StepMark> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let page = std::ptr::NonNull::new(page.cast::<AtomicU8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(StepMark { page })
    }

    fn byte(&self, i: usize) -> &AtomicU8 {
        // SAFETY: the mapping is at least a page (2 bytes asked), zeroed,
        // alive until drop, and AtomicU8 has the size and alignment of u8.
        unsafe { &*self.page.as_ptr().add(i) }
    }

    /// Async-signal-safe: two atomic stores.
    pub fn set(&self, step: Step, index: usize) {
        self.byte(1).store(index.min(255) as u8, Ordering::SeqCst);
        self.byte(0).store(step as u8, Ordering::SeqCst);
    }

    pub fn get(&self) -> (Step, usize) {
        (Step::from_u8(self.byte(0).load(Ordering::SeqCst)), self.byte(1).load(Ordering::SeqCst).into())
    }
}

impl Drop for StepMark {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no reference to it outlives self.
        unsafe { libc::munmap(self.page.as_ptr().cast(), 2) };
    }
}

impl Settings {
    /// Checks what can be checked before anything starts (a `--chroot` that
    /// is no directory is a usage error), and prepares the data the child
    /// applies: C strings, limits with both halves known.
    pub fn prepare(&self) -> Result<Confinement> {
        let mut settings = self.clone();
        // Absolute now: detach changes directory before the command starts.
        settings.chroot = match &self.chroot {
            Some(dir) => {
                Some(std::path::absolute(dir).map_err(|e| Error::Usage(format!("--chroot '{}': {e}", dir.display())))?)
            }
            None => None,
        };
        let chroot = settings.chroot.as_deref().map(|dir| {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::Usage(format!("--chroot '{}': not a directory", dir.display()))),
                Err(e) => return Err(Error::Usage(format!("--chroot '{}': {e}", dir.display()))),
            }
            c_path("--chroot", dir)
        });
        let chroot = chroot.transpose()?;
        let dir = match (&chroot, &self.chdir) {
            (None, _) => None,
            // chroot(2) leaves the working directory where it was: a
            // relative --chdir would be resolved outside the new root.
            (Some(_), Some(d)) => Some(c_path("--chdir", &Path::new("/").join(d))?),
            (Some(_), None) => Some(c"/".to_owned()),
        };
        let limits = self.limits.iter().map(resolve_limit).collect::<Result<Vec<_>>>()?;
        let oom_score = self.oom_score_adj.map(|n| format!("{n}\n").into_bytes());
        Ok(Confinement {
            settings,
            chroot,
            dir,
            limits,
            nice: self.nice,
            ioprio: self.ionice.map(Ionice::ioprio),
            oom_score,
        })
    }
}

fn c_path(option: &str, path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Usage(format!("{option} '{}': a path with a NUL byte", path.display())))
}

/// Fills the half a `--limit` leaves out with the current value: the
/// command inherits detach's limits, which do not change.
fn resolve_limit(l: &Limit) -> Result<(libc::__rlimit_resource_t, libc::rlimit)> {
    let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    if l.soft.is_none() || l.hard.is_none() {
        // SAFETY: getrlimit(2) writes the struct we own.
        if unsafe { libc::getrlimit(l.resource.id, &mut now) } != 0 {
            return Err(Error::os(format!("--limit {}: cannot read the limit", l.text), io::Error::last_os_error()));
        }
    }
    let limit = libc::rlimit { rlim_cur: l.soft.unwrap_or(now.rlim_cur), rlim_max: l.hard.unwrap_or(now.rlim_max) };
    if limit.rlim_cur > limit.rlim_max {
        let show = |v: libc::rlim_t| if v == libc::RLIM_INFINITY { "unlimited".to_string() } else { v.to_string() };
        return Err(Error::Usage(format!(
            "--limit {}: the soft limit ({}) would be above the hard one ({})",
            l.text,
            show(limit.rlim_cur),
            show(limit.rlim_max)
        )));
    }
    Ok((l.resource.id, limit))
}

/// The command's world as plain data, made before the fork.
#[derive(Clone, Debug, Default)]
pub struct Confinement {
    settings: Settings,
    chroot: Option<CString>,
    dir: Option<CString>,
    limits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    nice: Option<i32>,
    ioprio: Option<libc::c_int>,
    oom_score: Option<Vec<u8>>,
}

const OOM_SCORE_ADJ: &std::ffi::CStr = c"/proc/self/oom_score_adj";

impl Confinement {
    /// Applies it all to this process, in the documented order, marking
    /// each step first. Runs between fork and exec: system calls only, on
    /// data made before the fork; no allocation.
    pub fn apply(&self, mark: &StepMark) -> io::Result<()> {
        let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
        // /proc may not exist inside the new root: the OOM score's file is
        // opened before the chroot (still this process's own: /proc/self
        // after the fork names the child), and written in its turn.
        let oom = match &self.oom_score {
            Some(value) => {
                mark.set(Step::OomScore, 0);
                // SAFETY: open(2) with a NUL-terminated path we own.
                let fd = unsafe { libc::open(OOM_SCORE_ADJ.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                Some((fd, value))
            }
            None => None,
        };
        // SAFETY (for each call below): plain system calls on C strings and
        // structs made before the fork, which live as long as `self`.
        if let Some(root) = &self.chroot {
            mark.set(Step::Chroot, 0);
            check(unsafe { libc::chroot(root.as_ptr()) })?;
        }
        if let Some(dir) = &self.dir {
            mark.set(Step::Chdir, 0);
            check(unsafe { libc::chdir(dir.as_ptr()) })?;
        }
        for (i, (resource, limit)) in self.limits.iter().enumerate() {
            mark.set(Step::Limit, i);
            check(unsafe { libc::setrlimit(*resource, limit) })?;
        }
        if let Some(n) = self.nice {
            mark.set(Step::Nice, 0);
            check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) })?;
        }
        if let Some(ioprio) = self.ioprio {
            mark.set(Step::Ionice, 0);
            const IOPRIO_WHO_PROCESS: libc::c_int = 1;
            let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
            check(r as libc::c_int)?;
        }
        if let Some((fd, value)) = oom {
            mark.set(Step::OomScore, 0);
            let written = unsafe { libc::write(fd, value.as_ptr().cast(), value.len()) };
            let result = if written == value.len() as isize { Ok(()) } else { Err(io::Error::last_os_error()) };
            unsafe { libc::close(fd) };
            result?;
        }
        Ok(())
    }

    /// The error for a failure at `step` (the `index`th `--limit`), naming
    /// the option; `err` back for a step no option owns.
    pub fn step_error(&self, (step, index): (Step, usize), err: io::Error) -> std::result::Result<Error, io::Error> {
        let s = &self.settings;
        let what = match step {
            Step::Chroot => {
                format!("--chroot: cannot change root to '{}'", s.chroot.as_deref().unwrap_or(Path::new("")).display())
            }
            Step::Chdir => format!(
                "--chdir: cannot change directory to '{}' inside --chroot '{}'",
                s.chdir.as_deref().unwrap_or(Path::new("/")).display(),
                s.chroot.as_deref().unwrap_or(Path::new("")).display()
            ),
            Step::Limit => format!("--limit {}: cannot set the limit", s.limits.get(index).map_or("", |l| &l.text)),
            Step::Nice => format!("--nice {}: cannot set the priority", s.nice.unwrap_or_default()),
            Step::Ionice => "--ionice: cannot set the I/O priority".to_string(),
            Step::OomScore => {
                format!("--oom-score-adj {}: cannot set the OOM score", s.oom_score_adj.unwrap_or_default())
            }
            Step::User => "--user/--group: cannot switch to the user and group".to_string(),
            Step::Setup | Step::Exec => return Err(err),
        };
        Ok(match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Error::Permission { what, err },
            _ => Error::Os { what, err },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_prlimit() {
        let l: Limit = "nofile=1024:4096".parse().unwrap();
        assert_eq!((l.resource.name, l.soft, l.hard), ("nofile", Some(1024), Some(4096)));
        let l: Limit = "core=unlimited".parse().unwrap();
        assert_eq!((l.soft, l.hard), (Some(libc::RLIM_INFINITY), Some(libc::RLIM_INFINITY)));
        let l: Limit = "fsize=1M:".parse().unwrap();
        assert_eq!((l.soft, l.hard), (Some(1 << 20), None));
        let l: Limit = "AS=:2G".parse().unwrap();
        assert_eq!((l.resource.name, l.soft, l.hard), ("as", None, Some(2 << 30)));
        for bad in ["nofile", "files=1", "nofile=x", "nofile=10:5", "nofile=:", "nofile=-1", "stack=1T", "cpu=1.5"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ionice_parses_classes_and_levels() {
        assert_eq!("best-effort:7".parse::<Ionice>().unwrap().ioprio(), (2 << 13) | 7);
        assert_eq!("realtime".parse::<Ionice>().unwrap().ioprio(), (1 << 13) | 4);
        assert_eq!("idle".parse::<Ionice>().unwrap().ioprio(), 3 << 13);
        for bad in ["none", "best-effort:8", "idle:1", "realtime:x", ""] {
            assert!(bad.parse::<Ionice>().is_err(), "{bad}");
        }
    }

    #[test]
    fn step_mark_is_shared_with_a_forked_child() {
        let mark = StepMark::new().unwrap();
        // SAFETY: the child only stores to the shared page and _exits.
        match unsafe { libc::fork() } {
            0 => {
                mark.set(Step::Nice, 3);
                unsafe { libc::_exit(0) };
            }
            pid => {
                let mut status = 0;
                // SAFETY: waitpid writes the int we own.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        assert_eq!(mark.get(), (Step::Nice, 3));
    }
}
