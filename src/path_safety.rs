//! Finding a log's directory so that no directory a less privileged user
//! controls can steer the supervisor (often root) elsewhere.
//!
//! O_NOFOLLOW guards only the last component of a path: the kernel's walk
//! follows every symlink before it. A user who owns a directory on the path
//! (its home, say) could swap a directory below it for a symlink to a
//! root-only one, and the next reopen, root's, would create the log there,
//! with the user's content. So the walk is done here, one component at a
//! time, each opened with `O_PATH|O_NOFOLLOW`, and a symlink is followed only
//! when no one but root could have placed it (OpenSSH's StrictModes rule):
//! it is owned by root, and every directory that leads to it, itself
//! included, is owned by root and writable by no one else (or sticky, like
//! /tmp, whose entries only their owners may replace). So a `/var/log ->
//! /data/log` set up by root keeps working.
//!
//! Past the first directory another user can change, the rest of the path
//! must be real directories (no symlink, no `..`): the log then lies in that
//! user's own tree, and a rename can bring into that tree only what lived in
//! directories the user could write already. The `/var/log/app/` owned by the
//! service's user keeps working: its only entry on the path is the log, which
//! `open_log` opens with O_NOFOLLOW and refuses unless it is a regular file
//! with one link.
//!
//! The supervisor's own user counts as root here: it can write where it may.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, open, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

/// Symlinks followed in one walk before ELOOP (Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// The directory that holds `path`'s last component, opened `O_PATH`, and
/// that component's name. `path` is made absolute against the cwd first.
pub fn open_parent(path: &Path) -> io::Result<(OwnedFd, OsString)> {
    let path = std::path::absolute(path)?;
    let mut pending = components(&path)?;
    let Some(name) = pending.pop().filter(|name| name != "..") else {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    };
    pending.reverse(); // a stack: the next component last
    let mut walk = Walk::at_root()?;
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if let Some(target) = walk.step(&part)? {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            if target.is_absolute() {
                walk.restart_at_root()?;
            }
            pending.extend(components(&target)?.into_iter().rev());
        }
    }
    Ok((walk.dir, name))
}

/// The normal components of `path` (`.` dropped, `..` kept), in order.
fn components(path: &Path) -> io::Result<Vec<OsString>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::ParentDir => parts.push("..".into()),
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
    Ok(parts)
}

/// Where the walk is, and whether only root could have shaped it so far.
struct Walk {
    dir: OwnedFd,
    /// The path walked so far, symlinks resolved: for messages.
    at: PathBuf,
    /// The first directory on the way that someone else may change.
    open_to_others: Option<PathBuf>,
}

impl Walk {
    fn at_root() -> io::Result<Walk> {
        let mut walk = Walk { dir: open_path(None, OsStr::new("/"))?, at: "/".into(), open_to_others: None };
        walk.judge(&fstat(walk.dir.as_fd())?);
        Ok(walk)
    }

    fn restart_at_root(&mut self) -> io::Result<()> {
        self.dir = open_path(None, OsStr::new("/"))?;
        self.at = "/".into();
        self.judge(&fstat(self.dir.as_fd())?);
        Ok(())
    }

    /// Notes whether the directory just entered is open to others.
    fn judge(&mut self, st: &FileStat) {
        if self.open_to_others.is_none() && !only_root_changes(st) {
            self.open_to_others = Some(self.at.clone());
        }
    }

    /// Enters `part`; returns a symlink's target instead when it is one that
    /// may be followed.
    fn step(&mut self, part: &OsStr) -> io::Result<Option<PathBuf>> {
        if part == ".." {
            if let Some(dir) = &self.open_to_others {
                return Err(refused(format!("'..' below '{}'", dir.display()), dir));
            }
            self.dir = open_path(Some(&self.dir), part)?;
            self.at.pop();
            self.judge(&fstat(self.dir.as_fd())?);
            return Ok(None);
        }
        let next = open_path(Some(&self.dir), part)?;
        let st = fstat(next.as_fd())?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let here = self.at.join(part);
        if kind == SFlag::S_IFLNK {
            if let Some(dir) = &self.open_to_others {
                return Err(refused(format!("the symlink '{}'", here.display()), dir));
            }
            if !trusted_owner(st.st_uid) {
                return Err(refused(format!("the symlink '{}', owned by uid {}", here.display(), st.st_uid), &here));
            }
            return Ok(Some(readlinkat(next.as_fd(), "")?.into()));
        }
        if kind != SFlag::S_IFDIR {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        (self.dir, self.at) = (next, here);
        self.judge(&st);
        Ok(None)
    }
}

/// `O_PATH|O_NOFOLLOW`: a handle on the entry itself, symlink or not, that
/// grants nothing but a place to walk from (open(2)). A directory is opened
/// with `O_DIRECTORY` first: unlike a bare `O_PATH` open, that triggers an
/// automount (x-systemd.automount on /data, say), which the walk must enter.
fn open_path(dir: Option<&OwnedFd>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let open_with = |flags| match dir {
        Some(dir) => openat(dir.as_fd(), name, flags, Mode::empty()),
        None => open(name, flags, Mode::empty()),
    };
    match open_with(flags | OFlag::O_DIRECTORY) {
        // Not a directory: a symlink, or something the caller refuses.
        Err(nix::errno::Errno::ENOTDIR) => Ok(open_with(flags)?),
        other => Ok(other?),
    }
}

/// Root, or the user the supervisor runs as.
fn trusted_owner(uid: libc::uid_t) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// A directory whose entries only root (or we) can replace: owned by root,
/// and writable by no group or other, unless sticky (then others may add
/// entries, but replace only their own, which the walk checks in turn).
fn only_root_changes(st: &FileStat) -> bool {
    let writable_by_others = st.st_mode & 0o022 != 0;
    let sticky = st.st_mode & libc::S_ISVTX != 0;
    trusted_owner(st.st_uid) && (!writable_by_others || sticky)
}

fn refused(what: String, dir: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("refusing {what}: '{}' can be changed by a user other than root", dir.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("detach-path-safety-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn parent_of(path: &Path) -> io::Result<PathBuf> {
        let (fd, name) = open_parent(path)?;
        let dir = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))?;
        Ok(dir.join(name))
    }

    #[test]
    fn follows_symlinks_only_root_could_have_placed() {
        let dir = tempdir("follow");
        std::fs::create_dir(dir.join("data")).unwrap();
        symlink(dir.join("data"), dir.join("abs")).unwrap();
        symlink("data", dir.join("rel")).unwrap();
        assert_eq!(parent_of(&dir.join("abs/app.log")).unwrap(), dir.join("data/app.log"));
        assert_eq!(parent_of(&dir.join("rel/./app.log")).unwrap(), dir.join("data/app.log"));
        assert_eq!(parent_of(&dir.join("data/../data/app.log")).unwrap(), dir.join("data/app.log"));
        // Group-writable: another user (the group's) could have put the link there.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = parent_of(&dir.join("abs/app.log")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("refusing the symlink"), "{err}");
        // Real directories below it are fine: the log lies in that tree.
        assert_eq!(parent_of(&dir.join("data/app.log")).unwrap(), dir.join("data/app.log"));
        let err = parent_of(&dir.join("data/../data/app.log")).unwrap_err();
        assert!(err.to_string().contains("refusing '..'"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_the_os_error() {
        let dir = tempdir("missing");
        let err = parent_of(&dir.join("nope/app.log")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        std::fs::write(dir.join("file"), "").unwrap();
        let err = parent_of(&dir.join("file/app.log")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
