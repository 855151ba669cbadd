//! `--user`/`--group`: names resolved before any fork, and the privilege drop,
//! made of system calls only so that it may run between fork and exec.

use std::ffi::CString;
use std::io;

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};

use crate::error::{Error, Result};

/// Who the command runs as: resolved in full before forking, because
/// getpwnam/initgroups read files and allocate, which a forked child of a
/// multi-threaded process must not do (the `daemonize` crate's mistake).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// `--user`'s entry in the password database, for the command's
    /// environment (none with `--group` alone).
    pub login: Option<Login>,
}

/// What `--user` puts in the command's environment, as FreeBSD's
/// `daemon -u` and `su -` do: `HOME`, `USER` and `LOGNAME`, `SHELL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub name: String,
    pub home: std::path::PathBuf,
    /// The login shell; `/bin/sh` when the entry has none (login(1)).
    pub shell: std::path::PathBuf,
}

/// Resolves `--user` and `--group` (names or numeric ids). `None` when
/// neither is given.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Credentials>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let user = user.map(lookup_user).transpose()?;
    let gid = match group {
        Some(name) => lookup_group(name)?,
        None => user.as_ref().map_or_else(Gid::effective, |u| u.gid),
    };
    let uid = user.as_ref().map_or_else(Uid::effective, |u| u.uid);
    // initgroups(3) semantics: the user's supplementary groups plus the
    // primary one; with --group alone, just that group.
    let groups = match &user {
        Some(u) => {
            let name = CString::new(u.name.as_bytes()).map_err(|_| no_user("user", &u.name))?;
            getgrouplist(&name, gid).map_err(|e| Error::os(format!("cannot list groups of '{}'", u.name), e))?
        }
        None => vec![gid],
    };
    let login = user.as_ref().map(|u| Login {
        name: u.name.clone(),
        home: u.dir.clone(),
        shell: if u.shell.as_os_str().is_empty() { "/bin/sh".into() } else { u.shell.clone() },
    });
    let creds = Credentials {
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups: groups.iter().map(|g| g.as_raw()).collect(),
        login,
    };
    check_permitted(&creds, user.as_ref().map(|u| u.name.as_str()))?;
    Ok(Some(creds))
}

fn no_user(what: &'static str, name: &str) -> Error {
    Error::NoUser { what, name: name.to_owned() }
}

fn lookup_user(name: &str) -> Result<User> {
    let found = User::from_name(name).map_err(|e| Error::os(format!("cannot look up user '{name}'"), e))?;
    match (found, name.parse::<u32>()) {
        (Some(u), _) => Ok(u),
        (None, Ok(uid)) => User::from_uid(Uid::from_raw(uid))
            .map_err(|e| Error::os(format!("cannot look up user '{name}'"), e))?
            .ok_or_else(|| no_user("user", name)),
        (None, Err(_)) => Err(no_user("user", name)),
    }
}

fn lookup_group(name: &str) -> Result<Gid> {
    let found = Group::from_name(name).map_err(|e| Error::os(format!("cannot look up group '{name}'"), e))?;
    match (found, name.parse::<u32>()) {
        (Some(g), _) => Ok(g.gid),
        (None, Ok(gid)) => Ok(Gid::from_raw(gid)),
        (None, Err(_)) => Err(no_user("group", name)),
    }
}

/// Only root may become someone else; say so before anything starts rather
/// than as a puzzling exec failure later.
fn check_permitted(creds: &Credentials, user: Option<&str>) -> Result<()> {
    if Uid::effective().is_root() {
        return Ok(());
    }
    if creds.uid == Uid::effective().as_raw() && creds.gid == Gid::effective().as_raw() {
        return Ok(());
    }
    let who = user.unwrap_or("the requested group");
    Err(Error::Permission {
        what: format!("cannot switch to user '{who}' (only root can)"),
        err: io::Error::from_raw_os_error(libc::EPERM),
    })
}

/// setgroups, setgid, setuid, in that order (setuid first would leave us
/// unable to change groups), then verified: a setuid that "succeeded" but left
/// a saved uid of 0 would let the command regain root.
///
/// Async-signal-safe: system calls on data prepared before the fork, no
/// allocation. Safe to call between fork and exec.
pub fn drop_privileges(c: &Credentials) -> io::Result<()> {
    let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    // SAFETY: plain system calls; `groups` is a live slice of gid_t whose
    // length is passed with it.
    unsafe {
        if libc::geteuid() == 0 {
            check(libc::setgroups(c.groups.len(), c.groups.as_ptr()))?;
        }
        check(libc::setgid(c.gid))?;
        check(libc::setuid(c.uid))?;
        let (mut r, mut e, mut s) = (0, 0, 0);
        check(libc::getresuid(&mut r, &mut e, &mut s))?;
        if [r, e, s] != [c.uid; 3] || libc::getegid() != c.gid {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        if c.uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}

/// Resolves `--log-owner USER[:GROUP]` to a uid and gid (the user's primary
/// group when GROUP is left out).
pub fn resolve_owner(spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = lookup_user(user)?;
    let gid = group.map(lookup_group).transpose()?.unwrap_or(user.gid);
    Ok((user.uid.as_raw(), gid.as_raw()))
}
