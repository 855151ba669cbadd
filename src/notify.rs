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
        Some(Notifier { socket: UnixDatagram::unbound().ok()?, addr })
    }

    /// Sends `state` (newline-separated assignments). Best effort: systemd
    /// going away must never harm the service.
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
