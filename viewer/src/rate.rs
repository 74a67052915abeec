//! Average-rate limit shared by all tasks of one client.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A leaky bucket (GCRA): request `k` may start no earlier than
/// `k / rate` after the first, with a burst allowance of `burst` requests.
///
/// Slots are handed out under a lock and waited for outside it, so waiting
/// tasks do not block each other's bookkeeping.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    burst: u32,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate_per_s` of `inf` (or anything that rounds to a zero interval)
    /// disables the limit. `burst` >= 1.
    pub fn new(rate_per_s: f64, burst: u32) -> Self {
        let interval = if rate_per_s.is_finite() && rate_per_s > 0.0 {
            Some(Duration::from_secs_f64(1.0 / rate_per_s)).filter(|d| !d.is_zero())
        } else {
            None
        };
        Self {
            interval,
            burst: burst.max(1),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            // Credit for idle time is capped at `burst - 1` intervals.
            let earliest = now.checked_sub(interval * (self.burst - 1)).unwrap_or(now);
            let slot = match *next {
                Some(n) if n > earliest => n,
                _ => earliest,
            };
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests() {
        let rl = RateLimiter::new(10.0, 1);
        let t0 = Instant::now();
        for _ in 0..21 {
            rl.acquire().await;
        }
        let el = t0.elapsed();
        assert!(el >= Duration::from_millis(2000), "{el:?}");
        assert!(el < Duration::from_millis(2100), "{el:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited() {
        let rl = RateLimiter::new(f64::INFINITY, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            rl.acquire().await;
        }
        assert!(t0.elapsed() < Duration::from_millis(1));
    }
}
