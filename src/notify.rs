//! sd_notify(3) without libsystemd: one datagram per state change to the
//! socket named by NOTIFY_SOCKET (a path, or `@name` in the abstract
//! namespace). Tiny on purpose: the protocol is "KEY=VALUE lines in a
//! datagram", and a crate for it would weigh more than this file.

use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

pub const ENV: &str = "NOTIFY_SOCKET";

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for, if any. Read once at start: the
    /// variable is then taken out of the command's environment.
    pub fn from_env() -> Option<Notifier> {
        Self::new(std::env::var_os(ENV)?)
    }

    fn new(path: OsString) -> Option<Notifier> {
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name).ok()?,
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        // The send happens inside the supervisor's loop: a systemd that does
        // not read (stuck, or a socket someone else bound) must never stop
        // the pump. A full queue makes the send fail with EAGAIN instead.
        socket.set_nonblocking(true).ok()?;
        Some(Notifier { socket, addr })
    }

    /// Sends `state` (newline-separated assignments), never blocking. Best
    /// effort: systemd going away, or not reading, must never harm the
    /// service; a state it did not take is lost.
    pub fn send(&self, state: &str) {
        let _ = self.socket.send_to_addr(state.as_bytes(), &self.addr);
    }

    /// `RELOADING=1` with the monotonic time systemd wants beside it.
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Issue 13, item 14: a notify socket nobody reads fills up after a few datagrams, and a
    /// blocking send then stopped the supervisor's loop for good.
    #[test]
    fn a_notify_socket_nobody_reads_never_blocks_the_sender() {
        let dir = std::env::temp_dir().join(format!("detach-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _unread = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(path.into_os_string()).expect("a notifier");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                notifier.send("READY=1");
            }
            done.send(()).unwrap();
        });
        // Only detects a hang: 1000 sends that do not block take microseconds.
        let sent = finished.recv_timeout(Duration::from_secs(30));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(sent.is_ok(), "send blocked on a notify socket nobody reads");
    }
}
