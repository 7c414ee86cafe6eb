//! Restart backoff: immediately, then 1 s doubling to 30 s; reset after 10 s of running.

use std::time::Duration;

/// First delay after an immediate restart.
const FIRST: Duration = Duration::from_secs(1);
/// Longest delay between restarts.
const MAX: Duration = Duration::from_secs(30);
/// A run at least this long counts as healthy and resets the backoff.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// The delay before the next restart of one service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The delay to wait now, given how long the last run lasted; advances the sequence.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= HEALTHY_RUN {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = if delay.is_zero() {
            FIRST
        } else {
            (delay * 2).min(MAX)
        };
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_and_reset() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(10);
        let got: Vec<u64> = (0..8).map(|_| b.next_delay(short).as_secs()).collect();
        assert_eq!(got, [0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.next_delay(Duration::from_secs(11)), Duration::ZERO);
        assert_eq!(b.next_delay(short), Duration::from_secs(1));
    }
}
