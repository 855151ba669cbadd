//! The file system's half of a built-in rotation, in a thread of its own.
//!
//! A rotation renames the archives (ten, by default), deletes the oldest and
//! creates a new log. At 1 MiB archives under a full-speed writer that is
//! every 0.7 ms, and done in the pump it stalled the pump by a fifth or more
//! (BENCHMARKS.md §6): the cost is the file system's, not detach's. So the
//! pump does two steps only (sink.rs):
//!
//! 1. it renames the log to `.NAME.detach-rotated` ([`rotate::staged_name`]);
//! 2. it links, at the log's name, a file this thread created beforehand with
//!    O_TMPFILE (nameless until then, with the log's mode and owner), puts it
//!    over the log's fds and writes there from then on;
//!
//! and this thread, told to [`settle`](Archiver::settle), moves the archives
//! up, makes the staged file `.1`, queues it for compression, and creates the
//! next spare. Every byte written is in a named file at every moment: the
//! log, or the staged file, which a detach killed between the two steps
//! leaves for the next start to settle. The pump waits for this thread
//! before it stages the next rotation, and `detach rotate` and the end of the
//! supervisor wait for the settling, so the archives are in place when they
//! return. Without O_TMPFILE (some file systems), or when a step fails before
//! anything moved, the pump rotates as before, all by itself.
//!
//! Like compress.rs's thread, this one lives in the supervisor, which forks
//! for restarts; the child's pre_exec takes no lock and allocates nothing,
//! and this thread blocks every signal, so all of them still go to the event
//! loop's signalfd.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::linkat;

use crate::compress::Compressor;
use crate::rotate;
use crate::stdio::LogOptions;

/// A file ready to become the log: nameless in `dir`, the log's directory
/// (opened by the checked walk), where the log is `name`.
pub struct Spare {
    pub dir: OwnedFd,
    /// `dir`'s device and inode: a rotation checks that the log's path
    /// still leads there.
    dir_id: (u64, u64),
    pub name: OsString,
    pub file: File,
}

/// A staged rotation to finish: the directory, the log's name, --rotate-keep.
struct Job {
    dir: OwnedFd,
    name: OsString,
    keep: u32,
}

#[derive(Default)]
struct State {
    job: Option<Job>,
    /// Settling a job or making a spare: the pump waits before it stages.
    busy: bool,
    spare: Option<Spare>,
    /// Make a spare when idle (cleared after one try, so a failing create is
    /// tried once per rotation, not in a loop).
    want_spare: bool,
    /// The file system has no O_TMPFILE: the pump rotates by itself.
    no_spares: bool,
    /// A settling failed: the staged file is still there, for the pump to
    /// settle before it rotates again.
    stranded: bool,
    /// The failure, not said yet.
    failure: Option<io::Error>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The thread waits on it for work.
    wake: Condvar,
    /// The pump waits on it for the thread to be idle.
    idle: Condvar,
}

/// One log's archiver thread.
pub struct Archiver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Archiver {
    /// Starts the thread, which makes the first spare at once.
    pub fn start(path: &Path, opts: LogOptions, compressor: Option<Arc<Compressor>>) -> io::Result<Archiver> {
        let state = State { busy: true, want_spare: true, ..State::default() };
        let shared = Arc::new(Shared { state: Mutex::new(state), wake: Condvar::new(), idle: Condvar::new() });
        let (worker, path) = (shared.clone(), path.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("detach-rotate".into())
            .stack_size(128 * 1024)
            .spawn(move || work(&worker, &path, opts, compressor.as_deref()))?;
        Ok(Archiver { shared, thread: Some(thread) })
    }

    /// Waits until the thread is idle, then takes its spare: `None` when
    /// there is none, or when a settling failed (the pump then settles and
    /// rotates by itself). Either way the thread makes the next one, whether
    /// or not this one is used.
    pub fn take_spare(&self) -> Option<Spare> {
        let mut state = self.idle_state();
        if !state.no_spares {
            state.want_spare = true;
            state.busy = true;
            self.shared.wake.notify_one();
        }
        if state.stranded {
            return None;
        }
        state.spare.take()
    }

    /// The pump settled what a failed settling left.
    pub fn recovered(&self) {
        lock(&self.shared).stranded = false;
    }

    /// Has the thread settle the rotation staged in `dir`, which the pump
    /// no longer writes to; returns at once.
    pub fn settle(&self, dir: OwnedFd, name: OsString, keep: u32) {
        let mut state = lock(&self.shared);
        state.job = Some(Job { dir, name, keep });
        state.busy = true;
        self.shared.wake.notify_one();
    }

    /// Waits until the thread is idle.
    pub fn wait(&self) {
        drop(self.idle_state());
    }

    /// A settling's failure, once.
    pub fn take_failure(&self) -> Option<io::Error> {
        lock(&self.shared).failure.take()
    }

    fn idle_state(&self) -> MutexGuard<'_, State> {
        let mut state = lock(&self.shared);
        while state.busy {
            state = self.shared.idle.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }
}

impl Drop for Archiver {
    /// Finishes the settling under way; the spare, never linked, vanishes.
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn work(shared: &Shared, path: &Path, opts: LogOptions, compressor: Option<&Compressor>) {
    crate::signals::block_all_in_this_thread();
    loop {
        let (job, make_spare) = {
            let mut state = lock(shared);
            loop {
                let make_spare = state.want_spare && state.spare.is_none() && !state.no_spares && !state.stop;
                if state.job.is_some() || make_spare {
                    break;
                }
                // Idle only with nothing left to do: a pump that waited for
                // the first spare gets it.
                state.busy = false;
                shared.idle.notify_all();
                if state.stop {
                    return;
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.busy = true;
            state.want_spare = false;
            let make_spare = state.spare.is_none() && !state.no_spares && !state.stop;
            (state.job.take(), make_spare)
        };
        if let Some(job) = job
            && let Err(e) = settle(&job.dir, &job.name, job.keep, compressor, None)
        {
            let mut state = lock(shared);
            state.stranded = true;
            state.failure = Some(e);
        }
        if make_spare {
            match make(path, opts) {
                Ok(spare) => lock(shared).spare = Some(spare),
                Err(e) if unsupported(&e) => lock(shared).no_spares = true,
                Err(_) => {} // the next rotation is made in place, and says why
            }
        }
    }
}

/// Settles the staged rotation in `dir`, if there is one (the compressor
/// following each archive renamed), then queues the new `.1` for
/// compression, unless it is `writing`, the file the pump still writes to.
/// Returns the device and inode of the file settled.
pub fn settle(
    dir: &OwnedFd,
    name: &OsStr,
    keep: u32,
    compressor: Option<&Compressor>,
    writing: Option<(u64, u64)>,
) -> io::Result<Option<(u64, u64)>> {
    let settled = match compressor {
        Some(c) => c.shift(|moved| rotate::settle(dir, name, keep, moved)),
        None => rotate::settle(dir, name, keep, &mut |_, _| {}),
    }?;
    if let (Some(id), Some(c)) = (settled, compressor)
        && Some(id) != writing
    {
        c.queue_newest();
    }
    Ok(settled)
}

/// A nameless file in the log's directory, with the mode and owner a new
/// log gets (open_log's flags, O_TMPFILE instead of O_CREAT).
fn make(path: &Path, opts: LogOptions) -> io::Result<Spare> {
    let (dir, name) = rotate::open_dir(path)?;
    let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = openat(&dir, ".", flags, Mode::from_bits_truncate(opts.mode & 0o666))?;
    let file = File::from(fd);
    if let Some((uid, gid)) = opts.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    }
    let st = nix::sys::stat::fstat(&dir)?;
    Ok(Spare { dir, dir_id: (st.st_dev, st.st_ino), name, file })
}

/// open(2): EOPNOTSUPP from a file system without O_TMPFILE, EISDIR from a
/// kernel without it (which sees O_DIRECTORY).
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL))
}

/// What [`stage`] did.
pub enum Staged {
    /// The log is staged and the spare has its name: write to the spare.
    Linked,
    /// The log's name names another file (logrotate moved ours): nothing
    /// moved; only a reopen is left to do.
    Elsewhere,
    /// The log is staged, but the spare could not take its name, nor the log
    /// go back: settle, and reopen by path.
    Unnamed,
}

/// The pump's two steps: the log (the file `id`, at `path`) to its staged
/// name, the spare to the log's name. An error: nothing moved (rotate in
/// place), as when the log's directory is no longer the spare's (moved
/// since the spare was made, which may be a whole --rotate-every ago).
pub fn stage(spare: &Spare, path: &Path, id: (u64, u64)) -> io::Result<Staged> {
    let parent = std::path::absolute(path)?.parent().map(Path::to_path_buf).unwrap_or_else(|| "/".into());
    let st = nix::sys::stat::stat(&parent)?;
    if (st.st_dev, st.st_ino) != spare.dir_id {
        return Err(io::Error::from_raw_os_error(libc::ESTALE));
    }
    if !rotate::names(&spare.dir, &spare.name, id)? {
        return Ok(Staged::Elsewhere);
    }
    let staged = rotate::staged_name(&spare.name);
    rename_noreplace(&spare.dir, &spare.name, &staged)?;
    match link(spare) {
        Ok(()) => Ok(Staged::Linked),
        Err(e) => match rename_noreplace(&spare.dir, &staged, &spare.name) {
            Ok(()) => Err(e),
            Err(_) => Ok(Staged::Unnamed),
        },
    }
}

/// Gives the spare its name: `name` in `dir`; fails with EEXIST when
/// something has that name.
fn link(spare: &Spare) -> io::Result<()> {
    // Through /proc, which needs no privilege; AT_EMPTY_PATH, without /proc,
    // needs CAP_DAC_READ_SEARCH.
    let proc = PathBuf::from(format!("/proc/self/fd/{}", spare.file.as_raw_fd()));
    match linkat(AT_FDCWD, &proc, &spare.dir, &*spare.name, AtFlags::AT_SYMLINK_FOLLOW) {
        Err(Errno::ENOENT) if !Path::new("/proc/self/fd").exists() => {
            linkat(&spare.file, "", &spare.dir, &*spare.name, AtFlags::AT_EMPTY_PATH).map_err(io::Error::from)
        }
        r => r.map_err(io::Error::from),
    }
}

/// renameat2(RENAME_NOREPLACE) within `dir`: never replaces what `to` names.
fn rename_noreplace(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &OsStr| std::ffi::CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: renameat2(2) with a directory fd we own and two NUL-terminated
    // strings that live across the call; the raw syscall, since not every
    // libc wraps it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir.as_raw_fd(),
            from.as_ptr(),
            dir.as_raw_fd(),
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
