//! What /proc/PID/stat says of a process: its state, parent, process group
//! and start time. The command name (field 2) may hold spaces and
//! parentheses, so the fields are counted from the last ')'.

/// The fields of /proc/PID/stat that detach reads.
pub struct Stat {
    /// `R`, `S`, `Z` (a zombie)...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks since boot: with the pid, it names one process for the
    /// whole life of the system.
    pub start_time: u64,
}

/// /proc/PID/stat, read once; `None` for a process that is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields 3 (state) onwards.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_stat_is_read() {
        let me = super::stat(std::process::id() as i32).expect("our own stat");
        assert_eq!(me.ppid, std::os::unix::process::parent_id() as i32);
        assert!(me.start_time > 0);
    }
}
