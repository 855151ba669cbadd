//! The command line's values, checked where they enter: octal modes, sizes,
//! bounded durations, log modes without special bits, success statuses.

use std::time::Duration;

use crate::restart::SuccessStatus;
use crate::sig::Signal;

pub(crate) fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{s}' is not an octal mode (like 022 or 0640)"))
}

pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, shift) = match digits.char_indices().last() {
        Some((i, 'k')) => (&digits[..i], 10),
        Some((i, 'm')) => (&digits[..i], 20),
        Some((i, 'g')) => (&digits[..i], 30),
        _ => (digits, 0),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{s}' is not a size (like 65536, 512K or 4M)"))
}

/// A number of seconds from 0 to [`Seconds::MAX`]: a duration from the
/// command line, checked where it enters. `1e19` once overflowed `Instant`
/// arithmetic and aborted the supervisor; NaN, infinities and negative
/// numbers mean nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Seconds(Duration);

impl Seconds {
    /// One year (365 days): longer than any timeout or delay means, short
    /// enough that adding it to any `Instant` cannot overflow.
    pub(crate) const MAX: u64 = 365 * 24 * 3600;

    pub(crate) fn get(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Seconds, String> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|secs| (0.0..=Seconds::MAX as f64).contains(secs))
            .map(|secs| Seconds(Duration::from_secs_f64(secs)))
            .ok_or_else(|| format!("'{s}' is not a number of seconds from 0 to {} (one year)", Seconds::MAX))
    }
}

/// The mode of a log detach creates: read and write bits only (at most
/// 0666). `--log-mode 4755` once made the command's output a setuid-root
/// executable (root's writes keep the setuid bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogMode(u32);

impl LogMode {
    /// Every bit a log may have.
    pub(crate) const ALLOWED: u32 = 0o666;

    pub(crate) fn get(self) -> u32 {
        self.0
    }
}

impl std::str::FromStr for LogMode {
    type Err = String;

    fn from_str(s: &str) -> Result<LogMode, String> {
        let mode = parse_octal(s)?;
        if mode & !LogMode::ALLOWED != 0 {
            return Err(format!(
                "'{s}' is not a log mode: at most 0666 (read and write bits; no execute, setuid, setgid or sticky bit)"
            ));
        }
        Ok(LogMode(mode))
    }
}

/// `--success-status 75,SIGUSR1,HUP`: exit statuses (0-255) and signals.
pub(crate) fn parse_success_status(list: &str) -> Result<SuccessStatus, String> {
    let mut success = SuccessStatus::default();
    for item in list.split([',', ' ']).filter(|i| !i.is_empty()) {
        match item.parse::<i32>() {
            Ok(n) if (0..=255).contains(&n) => success.codes.push(n),
            Ok(n) => return Err(format!("exit status {n} is out of range (0 to 255)")),
            Err(_) => success.signals.push(item.parse::<Signal>()?.number()),
        }
    }
    Ok(success)
}
