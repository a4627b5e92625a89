//! The HTTP rules the two network clients of dagster-deploy (`cloud-client` for Dagster+ and
//! `registry` for OCI registries) share, so that they cannot drift apart:
//!
//! - `origin`: what an origin is (scheme, host, port), which hosts are loopback, and where
//!   plain HTTP is acceptable. Each client writes its own "may this request carry these
//!   credentials" rule on top of these.
//! - `retry`: one retry policy: which failures are retried for idempotent and non-idempotent
//!   requests, `Retry-After`, exponential backoff with jitter.
//!
//! No requests are sent here; this crate knows URLs, status codes and durations only.

mod origin;
mod retry;

pub use origin::{host_and_port, is_loopback, is_loopback_host, same_origin};
pub use retry::{Failure, Idempotency, RetryPolicy, parse_retry_after};
