//! Deadlines from durations a user gave: `now + after`, checked. Parsing
//! bounds the command line's durations to a year, but the library's are not,
//! and `Instant + Duration` panics on overflow.

use std::time::{Duration, Instant};

/// `after` from now; a duration too long to add means "not in this
/// process's life": a century.
pub fn after(after: Duration) -> Instant {
    from(Instant::now(), after)
}

/// `after` from `start`, as [`after`] does from now.
pub fn from(start: Instant, after: Duration) -> Instant {
    start.checked_add(after).unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_duration_is_far_away_and_no_panic() {
        let far = super::after(std::time::Duration::MAX);
        assert!(far > std::time::Instant::now() + std::time::Duration::from_secs(365 * 86_400));
    }
}
