//! What the daemon needs, validated and opened before the first fork (logs,
//! pidfiles, credentials, /dev/null), so that every error reaches the
//! caller's terminal and nothing has started yet; and what is undone when a
//! start fails.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pidfile::Pidfile;
use crate::stdio::{self, LogOptions, LogTarget, open_log, redirect};
use crate::user::{self, Credentials};
use crate::{Daemon, LOG_MODE_BITS, LogPaths};

/// Everything validated and opened before the first fork, so that every
/// error reaches the caller's terminal and nothing has started yet.
pub(crate) struct Prepared {
    pub(crate) log_options: LogOptions,
    pub(crate) stdout: Option<(PathBuf, File)>,
    pub(crate) stderr: Option<(PathBuf, File)>,
    /// stdout and stderr share one file (`--log`).
    pub(crate) shared: bool,
    pub(crate) pidfile: Option<Pidfile>,
    pub(crate) child_pidfile: Option<Pidfile>,
    pub(crate) creds: Option<Credentials>,
    pub(crate) devnull: File,
    /// The logs this start created (path, device and inode): removed if it fails.
    pub(crate) created_logs: Vec<(PathBuf, (u64, u64))>,
    /// The pidfiles' absolute paths.
    pub(crate) pidfile_paths: Vec<PathBuf>,
}

impl Prepared {
    /// `child_pidfile` is the command's (`--child-pidfile`), which only the
    /// command line has.
    pub(crate) fn new(d: &Daemon, child_pidfile: Option<&Path>) -> Result<Prepared> {
        check_distinct(d, child_pidfile)?;
        if let Some(mask) = d.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        let creds = user::resolve(d.user.as_deref(), d.group.as_deref())?;
        let log_options = LogOptions {
            mode: d.log_options.mode & LOG_MODE_BITS,
            owner: d.log_owner.as_deref().map(user::resolve_owner).transpose()?,
        };
        let devnull = stdio::open_devnull().map_err(|e| Error::os("cannot open '/dev/null'", e))?;
        let mut prep = Prepared {
            log_options,
            stdout: None,
            stderr: None,
            shared: d.logs.log.is_some(),
            pidfile: None,
            child_pidfile: None,
            creds,
            devnull,
            created_logs: Vec::new(),
            pidfile_paths: Vec::new(),
        };
        // From here on, a failure must leave nothing behind: no pidfile, no
        // log this start created.
        match prep.open_files(d, child_pidfile) {
            Ok(()) => Ok(prep),
            Err(e) => {
                prep.undo();
                Err(e)
            }
        }
    }

    /// Opens the logs, locks the pidfiles, changes directory. Every path is
    /// absolute by then, so the chdir cannot change what they name.
    pub(crate) fn open_files(&mut self, d: &Daemon, child_pidfile: Option<&Path>) -> Result<()> {
        let (out, err) = match &d.logs {
            LogPaths { log: Some(log), .. } => (Some(log), None),
            LogPaths { stdout, stderr, .. } => (stdout.as_ref(), stderr.as_ref()),
        };
        self.stdout = out.map(|p| self.open_log(p)).transpose()?;
        self.stderr = err.map(|p| self.open_log(p)).transpose()?;
        self.pidfile = d.pidfile.as_deref().map(|p| self.acquire(p)).transpose()?;
        self.child_pidfile = child_pidfile.map(|p| self.acquire(p)).transpose()?;
        if let Some(root) = &d.chroot {
            // Checked before anything starts; the chdir is made inside it.
            return match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(Error::Usage(format!("chroot '{}': not a directory", root.display()))),
                Err(e) => Err(Error::Usage(format!("chroot '{}': {e}", root.display()))),
            };
        }
        match &d.chdir {
            Some(dir) => std::env::set_current_dir(dir)
                .map_err(|e| Error::os(format!("cannot change directory to '{}'", dir.display()), e)),
            None => Ok(()),
        }
    }

    /// Opens a log, remembering whether this start created it.
    pub(crate) fn open_log(&mut self, path: &Path) -> Result<(PathBuf, File)> {
        let path = absolute(path)?;
        let existed = std::fs::symlink_metadata(&path).is_ok();
        let file =
            open_log(&path, &self.log_options).map_err(|err| Error::Create { what: "log", path: path.clone(), err })?;
        if !existed && let Ok(meta) = file.metadata() {
            self.created_logs.push((path.clone(), (meta.dev(), meta.ino())));
        }
        Ok((path, file))
    }

    pub(crate) fn acquire(&mut self, path: &Path) -> Result<Pidfile> {
        let path = absolute(path)?;
        let pidfile = Pidfile::acquire(&path)?;
        self.pidfile_paths.push(path);
        Ok(pidfile)
    }

    /// A start failed: removes the pidfiles this process holds and the logs
    /// this start created, while they are still empty (a log that already
    /// existed is never touched; one the command wrote to is kept).
    pub(crate) fn undo(&mut self) {
        self.remove_pidfiles();
        for (path, id) in self.created_logs.drain(..) {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == id && m.len() == 0) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// The first parent's side of a start that failed in the daemon: what
    /// the daemon may not have been able to remove (after `--user` dropped
    /// its privileges, say). A pidfile the daemon rewrote is removed only
    /// once its lock is free (its holder gone), so a detach started since
    /// keeps its own.
    pub(crate) fn undo_in_parent(&mut self) {
        self.undo();
        for path in &self.pidfile_paths {
            if std::fs::symlink_metadata(path).is_ok()
                && let Ok(stale) = Pidfile::acquire(path)
            {
                stale.remove();
            }
        }
    }

    /// The fds the daemon must keep when it closes what it inherited.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.devnull.as_raw_fd()];
        fds.extend(self.stdout.iter().chain(&self.stderr).map(|(_, f)| f.as_raw_fd()));
        fds.extend(self.pidfile.iter().chain(&self.child_pidfile).map(|p| p.raw_fd()));
        fds
    }

    pub(crate) fn write_pidfile(&mut self, pid: u32) -> Result<()> {
        match &mut self.pidfile {
            Some(p) => p.write(pid),
            None => Ok(()),
        }
    }

    pub(crate) fn write_child_pidfile(&mut self, pid: u32) -> Result<()> {
        match &mut self.child_pidfile {
            Some(p) => p.write(pid),
            None => Ok(()),
        }
    }

    pub(crate) fn remove_pidfiles(&mut self) {
        self.pidfile.take().into_iter().chain(self.child_pidfile.take()).for_each(Pidfile::remove);
    }

    /// The freopen step: /dev/null over fd 0 (when `daemon`), each log over
    /// fd 1 and/or 2; a stream without a log gets /dev/null when `daemon`,
    /// and is left as it is otherwise (`--foreground` keeps the journal).
    pub(crate) fn install_logs(&mut self, daemon: bool) -> Result<Vec<LogTarget>> {
        use crate::stdio::StdFd::{Stderr, Stdin, Stdout};
        let null = |fd| redirect(self.devnull.as_fd(), fd).map_err(|e| Error::os("cannot redirect to '/dev/null'", e));
        if daemon {
            null(Stdin)?;
        }
        let mut logs = Vec::new();
        let streams = [
            (self.stdout.take(), if self.shared { &[Stdout, Stderr][..] } else { &[Stdout][..] }),
            (self.stderr.take(), &[Stderr][..]),
        ];
        for (log, fds) in streams {
            match log {
                Some((path, file)) => logs.push(
                    LogTarget::install(&path, self.log_options, file, fds)
                        .map_err(|e| Error::os(format!("cannot redirect to '{}'", path.display()), e))?,
                ),
                None if daemon && !(self.shared && fds == [Stderr]) => fds.iter().try_for_each(|&fd| null(fd))?,
                None => {}
            }
        }
        Ok(logs)
    }
}

pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::os(format!("cannot resolve '{}'", path.display()), e))
}

/// Refuses two of the log, stdout, stderr, pidfile and child pidfile paths
/// that name one file: `--log X --pidfile X` once wrote the log into the
/// pidfile. Compared as absolute paths, as their directory's real path plus
/// their name (a symlinked directory, `./x` and `x`), and, for files that
/// exist, by device and inode (a hard link or a symlink to the same file).
fn check_distinct(d: &Daemon, child_pidfile: Option<&Path>) -> Result<()> {
    let named = [
        ("--log", d.logs.log.as_deref()),
        ("--stdout", d.logs.stdout.as_deref()),
        ("--stderr", d.logs.stderr.as_deref()),
        ("--pidfile", d.pidfile.as_deref()),
        ("--child-pidfile", child_pidfile),
    ];
    let files: Vec<(&str, &Path, FileKey)> =
        named.into_iter().filter_map(|(opt, p)| Some((opt, p?, FileKey::of(p?)))).collect();
    for (i, (a, path, key)) in files.iter().enumerate() {
        if let Some((b, _, _)) = files[..i].iter().find(|(_, _, k)| k.same(key)) {
            return Err(Error::Usage(format!("{b} and {a} name the same file '{}'", path.display())));
        }
    }
    Ok(())
}

/// What tells two paths apart, as far as it can be known before opening.
struct FileKey {
    pub(crate) absolute: Option<PathBuf>,
    pub(crate) resolved: Option<PathBuf>,
    pub(crate) id: Option<(u64, u64)>,
}

impl FileKey {
    pub(crate) fn of(path: &Path) -> FileKey {
        let absolute = std::path::absolute(path).ok();
        let resolved = absolute.as_deref().and_then(|a| {
            let dir = std::fs::canonicalize(a.parent()?).ok()?;
            Some(dir.join(a.file_name()?))
        });
        let id = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        FileKey { absolute, resolved, id }
    }

    pub(crate) fn same(&self, other: &FileKey) -> bool {
        fn eq<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            a.is_some() && a == b
        }
        eq(&self.absolute, &other.absolute) || eq(&self.resolved, &other.resolved) || eq(&self.id, &other.id)
    }
}
