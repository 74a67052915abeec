//! Backoff and `Retry-After`.

use std::time::{Duration, SystemTime};

/// Full-jitter exponential backoff: a uniform wait in
/// `[0, min(max, base * 2^(retry-1))]` for retry number `retry` (1-based).
/// Jitter spreads the retries of many tasks that failed together.
pub fn backoff(retry: u32, base_ms: u64, max_ms: u64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let ceiling = base_ms.saturating_mul(1u64 << exp).min(max_ms);
    Duration::from_millis((crate::jitter::unit() * ceiling as f64) as u64)
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_ceiling() {
        for retry in 1..10 {
            for _ in 0..100 {
                let d = backoff(retry, 100, 1000);
                let cap = (100u64 << (retry - 1)).min(1000);
                assert!(d <= Duration::from_millis(cap), "{retry} {d:?}");
            }
        }
        assert_eq!(backoff(1, 0, 1000), Duration::ZERO);
        // Huge retry counts do not overflow.
        assert!(backoff(u32::MAX, u64::MAX, 5) <= Duration::from_millis(5));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
