//! A pidfile that is also a lock.
//!
//! The lock (flock(2), held by an open file description) is what says "running",
//! not the pid in the file: pids are reused, locks die with their holder. So a
//! stale pidfile is one nobody locks, and it is simply taken over.
//!
//! The pid is written atomically: into a new file beside it, locked, then
//! renamed over the path, so a reader never sees an empty or half-written
//! pidfile. A contender that opened the old inode before the rename notices,
//! after locking it, that the path now names another file, and tries again.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

pub struct Pidfile {
    path: PathBuf,
    lock: Flock<File>,
}

impl Pidfile {
    /// Opens and locks `path`, or says who holds it.
    pub fn acquire(path: &Path) -> Result<Pidfile> {
        let create = |err| Error::Create { what: "pidfile", path: path.to_owned(), err };
        loop {
            let file = open_pidfile(path, false).map_err(create)?;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::AlreadyRunning { path: path.to_owned(), pid: read_pid(&mut file) });
                }
                Err((_, errno)) => return Err(create(errno.into())),
            };
            // Between our open and our lock, the holder may have renamed a new
            // pidfile over the path, or removed it at exit.
            if same_file(&lock, path) {
                return Ok(Pidfile { path: path.to_owned(), lock });
            }
        }
    }

    /// Writes `pid` atomically: a locked temp file renamed over the path.
    pub fn write(&mut self, pid: u32) -> Result<()> {
        let err = |err| Error::Create { what: "pidfile", path: self.path.clone(), err };
        let tmp = temp_path(&self.path);
        let mut file = open_pidfile(&tmp, true).map_err(err)?;
        let written = file.write_all(format!("{pid}\n").as_bytes());
        let locked = written
            .and_then(|()| Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| io::Error::from(e)));
        let renamed = locked.and_then(|lock| std::fs::rename(&tmp, &self.path).map(|()| lock));
        match renamed {
            Ok(lock) => {
                self.lock = lock; // the old inode's lock goes with it
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(err(e))
            }
        }
    }

    /// Empties the pidfile, keeping its lock: it names no process for now.
    pub fn clear(&mut self) {
        let _ = self.lock.set_len(0);
    }

    /// Lets the pidfile and its lock outlive an exec: for `--exec`, where the
    /// command itself becomes the holder.
    pub fn keep_across_exec(&self) -> io::Result<()> {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        fcntl(self.lock.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
        Ok(())
    }

    pub fn raw_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }

    /// Removes the pidfile if it is still ours; the lock goes with the fd.
    pub fn remove(self) {
        if same_file(&self.lock, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn open_pidfile(path: &Path, create_new: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .create_new(create_new)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}
