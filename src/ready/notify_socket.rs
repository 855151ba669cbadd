//! `--ready notify`: a NOTIFY_SOCKET of detach's own, for the command's
//! sd_notify(3) messages, in a private directory only the command's user can
//! enter (mode 0700), so that no other user can say READY=1 for it.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// What one datagram said, in the order of its lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub ready: bool,
    pub status: Option<String>,
    pub errno: Option<i32>,
    pub extend_usec: Option<u64>,
}

impl Message {
    /// `KEY=VALUE` lines; what detach does not know is ignored, as systemd does.
    pub fn parse(datagram: &[u8]) -> Message {
        let mut m = Message::default();
        for line in String::from_utf8_lossy(datagram).lines() {
            match line.split_once('=') {
                Some(("READY", "1")) => m.ready = true,
                Some(("STATUS", text)) => m.status = Some(text.to_owned()),
                Some(("ERRNO", n)) => m.errno = n.parse().ok(),
                Some(("EXTEND_TIMEOUT_USEC", n)) => m.extend_usec = n.parse().ok(),
                _ => {}
            }
        }
        m
    }
}

pub struct NotifySocket {
    socket: UnixDatagram,
    dir: PathBuf,
}

impl NotifySocket {
    /// Makes the directory (under $XDG_RUNTIME_DIR, /run or /tmp, the first
    /// we can write to), gives it to `owner` (the command's uid and gid) and
    /// binds the socket in it.
    pub fn create(owner: Option<(u32, u32)>) -> io::Result<NotifySocket> {
        let bases =
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).into_iter().chain(["/run".into(), "/tmp".into()]);
        let mut last = io::Error::from(io::ErrorKind::NotFound);
        for base in bases {
            match nix::unistd::mkdtemp(&base.join("detach-notify.XXXXXX")) {
                Ok(dir) => return Self::bind(dir, owner),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    fn bind(dir: PathBuf, owner: Option<(u32, u32)>) -> io::Result<NotifySocket> {
        let made = || -> io::Result<UnixDatagram> {
            let socket = UnixDatagram::bind(dir.join("notify"))?;
            socket.set_nonblocking(true)?;
            std::fs::set_permissions(dir.join("notify"), std::fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
                std::os::unix::fs::chown(dir.join("notify"), Some(uid), Some(gid))?;
            }
            Ok(socket)
        };
        match made() {
            Ok(socket) => Ok(NotifySocket { socket, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// The path for the command's NOTIFY_SOCKET.
    pub fn path(&self) -> PathBuf {
        self.dir.join("notify")
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Every datagram waiting, parsed.
    pub fn read(&self) -> Vec<Message> {
        let mut buf = [0u8; 4096];
        let mut messages = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            messages.push(Message::parse(&buf[..n]));
        }
        messages
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_what_detach_knows() {
        let m = Message::parse(b"STATUS=loading config\nREADY=1\nMAINPID=7\nERRNO=2\nEXTEND_TIMEOUT_USEC=5000000\n");
        let want = Message {
            ready: true,
            status: Some("loading config".into()),
            errno: Some(2),
            extend_usec: Some(5_000_000),
        };
        assert_eq!(m, want);
        assert_eq!(Message::parse(b"READY=0\nWATCHDOG=1"), Message::default());
    }
}
