//! `--rotate-compress`: gzip each archive in a thread of its own, so that the
//! pump never waits for a compression.
//!
//! The archive `PATH.i` is compressed into `PATH.i.gz.tmp`, which is synced
//! and renamed to `PATH.i.gz` only once whole; then `PATH.i` is removed. So
//! there is never a truncated `.gz`: a failure (disk full) or the end of the
//! supervisor leaves the archive uncompressed and whole, and no `.tmp`.
//!
//! It compresses only while the machine has a CPU to spare (spare_cpu.rs),
//! looking again every 64 KiB, or once an archive has waited
//! [`MOST_DEFERRED`]: on a machine whose CPUs the pump and its program keep
//! busy, compressing would slow them, whatever its priority. An archive
//! deleted past --rotate-keep while it waits is simply not compressed.
//!
//! Rotations rename archives while one is being compressed: the supervisor
//! holds [`Compressor::shift`]'s lock for the renames and reports each one,
//! so the job follows its archive (`.1` became `.2`), or is dropped with it
//! (deleted past `--rotate-keep`). The thread takes the same lock for its
//! final rename and removal, which therefore never collide with a rotation.
//!
//! A thread in the supervisor, which forks for each restart: a lock held by
//! this thread at fork time stays locked in the child, which is a hazard only
//! if the child takes it before exec. The child's pre_exec (daemon.rs) makes
//! raw system calls only, no allocation and no lock, so it is safe. The
//! thread is started after the supervisor blocked its signals (signals.rs)
//! and inherits that mask: every signal still waits for the event loop's
//! signalfd, none is delivered to this thread.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, fchown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::rotate::{archive_name, open_dir};
use crate::spare_cpu::SpareCpu;

/// How long an archive waits for a spare CPU before it is compressed anyway
/// (at nice 10): on a machine that stays busy, archives are still compressed.
const MOST_DEFERRED: Duration = Duration::from_secs(5);
/// How often a waiting compression looks again.
const PAUSE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct State {
    /// Archives waiting, by their current index, with when each was queued.
    queue: VecDeque<(u32, Instant)>,
    /// The archive being compressed: its current index; 0 once deleted.
    active: Option<u32>,
    /// The first failure, not said yet.
    failure: Option<String>,
    /// A failure was said: the next ones are not.
    failed_once: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
}

/// One log's compression thread.
pub struct Compressor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    pub fn start(path: &Path) -> io::Result<Compressor> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (worker, path) = (shared.clone(), path.to_path_buf());
        let thread = std::thread::Builder::new().name("detach-gzip".into()).spawn(move || work(&worker, &path))?;
        Ok(Compressor { shared, thread: Some(thread) })
    }

    /// Runs `renames` (rotate::shift) under the lock, following each
    /// archive it moves. The new `.1` is queued by [`queue_newest`] once the
    /// log was reopened: until then detach may still be writing to it.
    ///
    /// [`queue_newest`]: Compressor::queue_newest
    pub fn shift<T>(&self, renames: impl FnOnce(&mut dyn FnMut(u32, u32)) -> io::Result<T>) -> io::Result<T> {
        let mut state = lock(&self.shared);
        let st = &mut *state;
        let shifted = renames(&mut |from, to| {
            for i in st.queue.iter_mut().map(|(i, _)| i).chain(st.active.as_mut()) {
                if *i == from {
                    *i = to;
                }
            }
        });
        st.queue.retain(|&(i, _)| i != 0);
        shifted
    }

    /// Queues the newest archive, `.1`, which detach no longer writes to.
    pub fn queue_newest(&self) {
        let mut state = lock(&self.shared);
        state.queue.push_back((1, Instant::now()));
        // A thread busy with (or waiting to start) another archive comes to
        // the queue by itself: no wake-up per rotation.
        if state.active.is_none() {
            self.shared.wake.notify_one();
        }
    }

    /// The first failure, once.
    pub fn take_failure(&self) -> Option<String> {
        lock(&self.shared).failure.take()
    }
}

impl Drop for Compressor {
    /// At exit: the compression under way stops, and its archive stays
    /// whole and uncompressed; the queue is left as it is.
    fn drop(&mut self) {
        {
            // Under the lock: the thread checks `stop` and waits under it,
            // so the wake-up cannot fall between its check and its wait.
            let _state = lock(&self.shared);
            self.shared.stop.store(true, Ordering::Relaxed);
            self.shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread: one archive at a time, at a lower priority than the pump,
/// and only while the machine has a CPU to spare (spare_cpu.rs), or once the
/// archive waited [`MOST_DEFERRED`].
fn work(shared: &Shared, path: &Path) {
    // SAFETY: setpriority(2) on this thread's own id (Linux: nice is per
    // thread); plain integers.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    let mut spare = SpareCpu::new();
    loop {
        let (index, queued) = {
            let mut state = lock(shared);
            while state.queue.is_empty() && !shared.stop.load(Ordering::Relaxed) {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            // The newest first: it has the most rotations to go before
            // --rotate-keep deletes it, so a flood that rotates faster than
            // archives compress still gets some compressed.
            // Its wait ends when the oldest one's does: an archive waiting
            // behind newer ones still gets compressed 5 s after its rotation.
            let oldest = state.queue.front().map(|&(_, t)| t);
            let (index, queued) = state.queue.pop_back().unwrap_or((0, Instant::now()));
            state.active = Some(index);
            (index, oldest.map_or(queued, |t| t.min(queued)))
        };
        let mut turn = Turn { shared, spare: &mut spare, until: queued + MOST_DEFERRED };
        if let Err(e) = compress(&mut turn, path, index) {
            let mut state = lock(shared);
            if !state.failed_once && !shared.stop.load(Ordering::Relaxed) {
                state.failed_once = true;
                let archive = PathBuf::from(archive_name(path.as_os_str(), index, false));
                state.failure = Some(format!("cannot compress '{}': {e}; left uncompressed", archive.display()));
            }
        }
        lock(shared).active = None;
    }
}

/// One archive's compression: the thread's state, and until when it waits
/// for a spare CPU.
struct Turn<'a> {
    shared: &'a Shared,
    spare: &'a mut SpareCpu,
    until: Instant,
}

impl Turn<'_> {
    /// Waits while the machine is busy (up to `until`); false when the
    /// archive was deleted meanwhile; ECANCELED at the supervisor's end.
    fn go_on(&mut self) -> io::Result<bool> {
        let ended = |state: &State| {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Some(Err(io::Error::from_raw_os_error(libc::ECANCELED)));
            }
            (state.active == Some(0)).then_some(Ok(false))
        };
        loop {
            if let Some(end) = ended(&lock(self.shared)) {
                return end;
            }
            // /proc/stat is read without the lock, which a rotation takes.
            if Instant::now() >= self.until || !self.spare.busy() {
                return Ok(true);
            }
            let state = lock(self.shared);
            if let Some(end) = ended(&state) {
                return end;
            }
            // Woken early by the end; else looks again after the pause.
            drop(self.shared.wake.wait_timeout(state, PAUSE));
        }
    }
}

/// Compresses archive `index` to a `.tmp`, then renames it in place of the
/// archive (at the index the archive has by then).
fn compress(turn: &mut Turn, path: &Path, index: u32) -> io::Result<()> {
    let shared = turn.shared;
    if !turn.go_on()? {
        return Ok(());
    }
    let (dir, name) = open_dir(path)?;
    let tmp = {
        let mut t = archive_name(&name, index, true);
        t.push(".tmp");
        t
    };
    // Opened under the lock: a rotation cannot move it in between.
    let mut source = {
        let state = lock(shared);
        let Some(now) = state.active.filter(|&i| i != 0) else { return Ok(()) };
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        File::from(openat(&dir, &*archive_name(&name, now, false), flags, Mode::empty())?)
    };
    let result = write_gz(turn, &dir, &tmp, &mut source);
    let mut state = lock(shared);
    let finished = match (&result, state.active) {
        (Ok(true), Some(now)) if now != 0 => renameat(&dir, &*tmp, &dir, &*archive_name(&name, now, true))
            .and_then(|()| unlinkat(&dir, &*archive_name(&name, now, false), UnlinkatFlags::NoRemoveDir))
            .map_err(io::Error::from),
        _ => Ok(()),
    };
    state.active = None;
    drop(state);
    // The archive's last reference, once unlinked: its pages are freed here,
    // not under the lock a rotation in the pump waits for.
    drop(source);
    let _ = unlinkat(&dir, &*tmp, UnlinkatFlags::NoRemoveDir); // gone once renamed
    result.and(finished)
}

/// gzip of `source` into a new `tmp` (same mode and owner), synced; false
/// when the archive was deleted meanwhile (past --rotate-keep): the rest of
/// the work, and the sync of a file nobody will keep, is not done.
fn write_gz(turn: &mut Turn, dir: &OwnedFd, tmp: &OsString, source: &mut File) -> io::Result<bool> {
    let meta = source.metadata()?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let _ = unlinkat(dir, &**tmp, UnlinkatFlags::NoRemoveDir); // one a crash left
    let out = File::from(openat(dir, &**tmp, flags, Mode::from_bits_truncate(meta.mode() & 0o666))?);
    // The archive's owner (a --log-owner); fails harmlessly when not root,
    // and the file is then ours, as the archive is.
    let _ = fchown(&out, Some(meta.uid()), Some(meta.gid()));
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut buf = vec![0; 64 * 1024];
    loop {
        if !turn.go_on()? {
            return Ok(false);
        }
        match source.read(&mut buf)? {
            0 => break,
            n => gz.write_all(&buf[..n])?,
        }
    }
    let out = gz.finish()?;
    // On disk before the rename: a crash then leaves no empty `.gz`.
    out.sync_data()?;
    Ok(true)
}
