//! The one retry policy of both clients: which failed exchanges are retried, and how long to
//! wait before the next attempt.
//!
//! - Retried for every request: a connection that could not be made (nothing reached the
//!   server), and HTTP 429 and 503 (the server says it did not process the request).
//! - Retried for idempotent requests only: HTTP 500, 502 and 504, timeouts and connections
//!   broken after the request was sent (the server may have acted on it; sending it again is
//!   harmless only if doing it twice equals doing it once).
//! - The wait before retry `n` (1-based) is the failed response's own `Retry-After` if it had
//!   one, else `base · 2^n` with ±25 % jitter; both are capped at `max_delay`, and a
//!   `Retry-After` applies to the attempt that carried it only, never to later ones.

use std::time::Duration;

/// Whether sending a request twice has the same effect as sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and writes keyed by content or by a full document (deploys, manifest and blob
    /// pushes): retried after any transient failure.
    Idempotent,
    /// Writes that create something new each time (minting a token, deleting): retried only
    /// when the server certainly did not act on the request.
    NotIdempotent,
}

/// How one attempt failed, as far as the retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: the request never reached the server.
    Connect,
    /// The request was sent but no complete response came back (timeout, reset, broken body).
    Exchange,
    /// The server answered with this HTTP status.
    Status(u16),
}

/// Retry limits and backoff; `Default` gives 3 retries, 0.5 s base and a 30 s cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff base: retry `n` waits about `base · 2^n`.
    pub base_delay: Duration,
    /// Upper bound of one wait, whether from backoff or from `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Whether an attempt that failed with `failure` is worth sending again (limits aside).
    pub fn is_retryable(failure: Failure, idempotency: Idempotency) -> bool {
        match failure {
            Failure::Connect | Failure::Status(429 | 503) => true,
            Failure::Status(500 | 502 | 504) | Failure::Exchange => {
                idempotency == Idempotency::Idempotent
            }
            Failure::Status(_) => false,
        }
    }

    /// Whether retry number `retry` (1-based) is still allowed after `failure`.
    pub fn should_retry(&self, retry: u32, failure: Failure, idempotency: Idempotency) -> bool {
        retry <= self.max_retries && Self::is_retryable(failure, idempotency)
    }

    /// The wait before retry number `retry` (1-based): the failed response's `Retry-After`
    /// (plus up to 10 % jitter, so that clients told the same time do not return together),
    /// else exponential backoff with ±25 % jitter; capped at `max_delay`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let delay = match retry_after {
            Some(asked) => asked.mul_f64(rand::random_range(1.0..1.1)),
            None => self
                .base_delay
                .saturating_mul(2u32.saturating_pow(retry))
                .mul_f64(rand::random_range(0.75..1.25)),
        };
        delay.min(self.max_delay)
    }
}

/// Parses a `Retry-After` value: seconds (fractions accepted), or an HTTP date (minus now,
/// floored at zero). Anything else, including negative numbers, is `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // NaN, infinities and numbers too large for a `Duration` are rejected here too.
        return Duration::try_from_secs_f64(seconds).ok();
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    let until = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(until).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:01 GMT"),
            Some(Duration::ZERO)
        );
        let future = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let header = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&future)
            .unwrap();
        let parsed = parse_retry_after(&header).unwrap();
        assert!(
            parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120),
            "{parsed:?}"
        );
        for bad in ["-1", "soon", "", "1e400", "NaN", "inf"] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_and_failures_are_retried_by_idempotency() {
        use Failure::*;
        use Idempotency::*;
        let check = |failure, idempotent: bool, not_idempotent: bool| {
            assert_eq!(
                RetryPolicy::is_retryable(failure, Idempotent),
                idempotent,
                "{failure:?} idempotent"
            );
            assert_eq!(
                RetryPolicy::is_retryable(failure, NotIdempotent),
                not_idempotent,
                "{failure:?} not idempotent"
            );
        };
        check(Connect, true, true);
        check(Status(429), true, true);
        check(Status(503), true, true);
        check(Status(500), true, false);
        check(Status(502), true, false);
        check(Status(504), true, false);
        check(Exchange, true, false);
        for status in [400, 401, 403, 404, 409, 501, 505] {
            check(Status(status), false, false);
        }
    }

    #[test]
    fn retries_stop_at_the_limit() {
        let policy = RetryPolicy::default();
        let failure = Failure::Status(503);
        assert!(policy.should_retry(3, failure, Idempotency::Idempotent));
        assert!(!policy.should_retry(4, failure, Idempotency::Idempotent));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(
                first >= Duration::from_millis(750) && first <= Duration::from_millis(1250),
                "{first:?}"
            );
            let third = policy.delay(3, None);
            assert!(
                third >= Duration::from_secs(3) && third <= Duration::from_secs(5),
                "{third:?}"
            );
            let asked = policy.delay(1, Some(Duration::from_secs(2)));
            assert!(
                asked >= Duration::from_secs(2) && asked <= Duration::from_millis(2200),
                "{asked:?}"
            );
        }
        assert_eq!(policy.delay(30, None), Duration::from_secs(30));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
        assert_eq!(policy.delay(1, Some(Duration::ZERO)), Duration::ZERO);
    }
}

#[cfg(test)]
mod property_tests {
    //! `Retry-After` comes from any server: every value parses to a finite wait or none,
    //! promptly (each input runs in a forked child with a time limit).

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, timeout: 5_000, ..ProptestConfig::default() })]

        #[test]
        fn any_retry_after_value_is_a_finite_wait_or_none(text in "\\PC{0,200}") {
            if let Some(wait) = parse_retry_after(&text) {
                let policy = RetryPolicy::default();
                prop_assert!(policy.delay(1, Some(wait)) <= policy.max_delay);
            }
        }

        #[test]
        fn numbers_and_dates_parse(seconds in 0u32..100_000, fraction in 0u32..1000) {
            prop_assert_eq!(parse_retry_after(&seconds.to_string()), Some(Duration::from_secs(seconds.into())));
            let text = format!("{seconds}.{fraction:03}");
            prop_assert!(parse_retry_after(&text).is_some());
        }
    }
}
