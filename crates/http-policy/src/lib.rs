//! The HTTP rules and the transport that the two network clients of dagster-deploy
//! (`cloud-client` for Dagster+ and `registry` for OCI registries) share, so that they cannot
//! drift apart:
//!
//! - `origin`: what an origin is (scheme, host, port), which hosts are loopback, and where
//!   plain HTTP is acceptable. Each client writes its own "may this request carry these
//!   credentials" rule on top of these.
//! - `retry`: one retry policy: which failures are retried for idempotent and non-idempotent
//!   requests, `Retry-After`, exponential backoff with jitter.
//! - `transport`: the HTTP client both send through, the caller's own or one built from
//!   [`TransportSettings`] (proxies with a loopback rule, extra root certificates, timeouts,
//!   user agent), with the TLS backend chosen by cargo feature (`rustls-aws-lc`, the default;
//!   `rustls-ring`; `native-tls`) and `hickory-dns` for builds that cannot use the system
//!   resolver.
//!
//! With the `test-support` feature, `test_support` makes throw-away TLS certificates.
//!
//! No requests are sent here: `origin` and `retry` know URLs, status codes and durations
//! only, and `transport` builds clients without using them.

mod body;
mod origin;
mod retry;
#[cfg(feature = "test-support")]
pub mod test_support;
mod transport;

pub use body::{BodyError, read_body_bounded};
pub use origin::{host_and_port, is_loopback, is_loopback_host, same_origin};
pub use retry::{Failure, Idempotency, RetryPolicy, parse_retry_after};
pub use transport::{
    Certificate, CertificateEncoding, DEFAULT_USER_AGENT, Error, HttpTransport, ProxyMode,
    ProxySettings, Result, TransportSettings,
};

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
