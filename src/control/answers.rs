//! The supervisor's answers to the request verbs: SIGURG, blocked and read
//! from a signalfd, from the holder's pid only.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::holder::Proc;
use super::procinfo::poll_in;
use crate::request::ANSWER_SIGNAL;

pub(super) enum Answer {
    Done(i32),
    Gone,
    Timeout,
}

/// ANSWER_SIGNAL, blocked and read from a signalfd.
pub(super) struct Answers {
    fd: nix::sys::signalfd::SignalFd,
}

impl Answers {
    pub(super) fn listen() -> io::Result<Answers> {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut mask = SigSet::empty();
        mask.add(Signal::try_from(ANSWER_SIGNAL)?);
        // Blocked before the request goes out, so that the answer waits in
        // the queue (SIGURG's default action would discard it).
        mask.thread_block()?;
        Ok(Answers { fd: SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)? })
    }

    /// The answer from `from` (si_pid, sent with sigqueue's SI_QUEUE); any
    /// other SIGURG is ignored.
    pub(super) fn wait(&self, from: &Proc, end: Instant) -> io::Result<Answer> {
        loop {
            while let Some(info) = self.fd.read_signal()? {
                if info.ssi_pid == from.pid as u32 && info.ssi_code == libc::SI_QUEUE {
                    // The value went out as a u64 holding the outcome as u32.
                    return Ok(Answer::Done(info.ssi_ptr as u32 as i32));
                }
            }
            if !from.alive() {
                return Ok(Answer::Gone);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Answer::Timeout);
            }
            let mut fds = vec![self.fd.as_fd().as_raw_fd()];
            let slice = match &from.pidfd {
                Some(p) => {
                    fds.push(p.as_raw_fd());
                    left
                }
                None => left.min(Duration::from_millis(100)),
            };
            poll_in(&fds, slice);
        }
    }
}
