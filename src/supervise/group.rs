//! Signalling a run's process group safely once its leader is gone.
//!
//! While the command (the group's leader) is our unreaped child, its pid,
//! and so its group id, cannot be reused. Once it is reaped, a stranger may
//! get that pid and make it a group id of its own (setsid, setpgid): a signal
//! to the group then reaches the stranger. So a group whose leader is gone
//! is signalled only while a member of it is still one of our descendants
//! (orphans of the command are reparented to us, the subreaper).

use nix::unistd::Pid;

use crate::procfs::stat;

/// Sends `sig` to process group `group`; `leader_alive`: its leader is our
/// unreaped child (no check needed).
pub fn signal_group(group: Pid, leader_alive: bool, sig: i32) {
    if leader_alive || has_our_member(group) {
        // SAFETY: kill(2) with integers, to a group shown to be ours.
        unsafe { libc::kill(-group.as_raw(), sig) };
    }
}

/// Whether a process of `group` descends from this process.
fn has_our_member(group: Pid) -> bool {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    let pids = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == group.as_raw())).any(|pid| descends_from(pid, me))
}

/// Walks the parents of `pid` up to init: is `ancestor` among them?
fn descends_from(mut pid: i32, ancestor: i32) -> bool {
    for _ in 0..256 {
        match stat(pid).map(|s| s.ppid) {
            Some(ppid) if ppid == ancestor => return true,
            Some(ppid) if ppid > 1 => pid = ppid,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn a_group_of_our_child_is_ours_and_a_strangers_is_not() {
        let mut child = std::process::Command::new("sleep").arg("5").process_group(0).spawn().unwrap();
        let group = Pid::from_raw(child.id() as i32);
        assert!(has_our_member(group));
        assert!(!has_our_member(Pid::from_raw(1)), "init's group is not ours");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!has_our_member(group), "a group with no member left is not ours");
    }
}
