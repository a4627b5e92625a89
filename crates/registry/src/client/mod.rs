//! `RegistryClient`: the distribution-API primitives (HEAD, mount and upload blobs, fetch and
//! push raw manifests), split by concern:
//!
//! - `transport`: sending one request, with the transport and credential rules on every
//!   redirect hop, auth challenges answered, retries and timeouts;
//! - `auth`: what the `Authorization` header of a request is (`auth/cache.rs`: what a client
//!   remembers, single-flight; `auth/challenge.rs`: `WWW-Authenticate` and token requests);
//! - `blobs`: HEAD, cross-repository mounts, and reading blobs;
//! - `upload`: resumable, streamed blob uploads from a file, memory or another repository;
//! - `manifests`: fetching and pushing manifests byte for byte.
//!
//! Which request may carry credentials is decided in `policy.rs`; which blobs an image needs,
//! and in which order, in `engine.rs`.

pub(crate) mod auth;
mod blobs;
mod manifests;
mod transport;
mod upload;

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use dagster_deploy_http_policy::{HttpTransport, RetryPolicy};
use url::Url;

use crate::credentials::{Credentials, DEFAULT_HELPER_TIMEOUT, HelperSettings};
use crate::error::{Error, Result};
use crate::policy::RegistryPolicy;
use crate::progress::{ProgressCallback, ProgressEvent};
use crate::reference::ImageRef;

pub(crate) use auth::Scopes;
pub(crate) use blobs::MountOutcome;
pub(crate) use transport::read_limited;
pub(crate) use upload::BlobContent;

/// How a [`RegistryClient`] authenticates and behaves.
#[derive(Clone)]
pub struct ClientOptions {
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Registries (`host` or `host:port`) reached over plain HTTP even if not on loopback.
    pub insecure_registries: Vec<String>,
    /// How many blobs upload at once.
    pub max_concurrent_uploads: usize,
    /// How many times a failed request or blob upload is retried (default 4).
    pub max_retries: u32,
    /// Backoff base: retry n waits about `base · 2^n`, with ±25 % jitter (default 0.1 s).
    pub retry_base_delay: Duration,
    /// Upper bound of one backoff or `Retry-After` wait (default 30 s).
    pub max_retry_delay: Duration,
    /// How long one request may take from connection to the end of its answer; for streamed
    /// blobs, how long the transfer may stall without a byte moving (default 120 s).
    pub request_timeout: Duration,
    /// How long a `docker-credential-*` helper may run before it is stopped (default 60 s).
    pub helper_timeout: Duration,
    /// Where `docker-credential-*` helpers are looked for, in `PATH` syntax; `None` means the
    /// process `PATH`.
    pub helper_search_path: Option<OsString>,
    /// Receives progress events.
    pub progress: Option<ProgressCallback>,
    /// The HTTP client: built from settings (proxy, root certificates, user agent, connect
    /// timeout; the default), or the caller's own, which must not follow redirects.
    pub transport: HttpTransport,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            credentials: Credentials::FromDockerConfig,
            insecure_registries: Vec::new(),
            max_concurrent_uploads: 4,
            max_retries: 4,
            retry_base_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
            helper_search_path: None,
            progress: None,
            transport: HttpTransport::default(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientOptions")
            .field("credentials", &self.credentials)
            .field("insecure_registries", &self.insecure_registries)
            .field("max_concurrent_uploads", &self.max_concurrent_uploads)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_retry_delay", &self.max_retry_delay)
            .field("request_timeout", &self.request_timeout)
            .field("helper_timeout", &self.helper_timeout)
            .field("helper_search_path", &self.helper_search_path)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .field("transport", &self.transport)
            .finish()
    }
}

/// A client for OCI distribution registries. One client per program run is the intent: it
/// remembers each registry's login (a credential helper runs once) and token, and every
/// operation announces the repositories it will touch so that one token covers them all.
///
/// ```no_run
/// use dagster_deploy_registry::{ClientOptions, Credentials, ImageRef, RegistryClient};
///
/// # async fn run() -> dagster_deploy_registry::Result<()> {
/// let client = RegistryClient::new(ClientOptions {
///     credentials: Credentials::basic("registry.example", "ci", "access-token"),
///     ..ClientOptions::default()
/// })?;
/// let base = ImageRef::parse("registry.example/base/python:3.12")?;
/// let manifest = client.fetch_manifest(&base).await?;
/// println!("{} is {}", base, manifest.digest);
/// # Ok(())
/// # }
/// ```
pub struct RegistryClient {
    http: reqwest::Client,
    options: ClientOptions,
    policy: RegistryPolicy,
    retry: RetryPolicy,
    helpers: HelperSettings,
    auth: auth::AuthCache,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Creates a client; no network traffic happens until the first call.
    pub fn new(options: ClientOptions) -> Result<Self> {
        // A connection must not take longer than a whole request may.
        let http = options
            .transport
            .client(Some(options.request_timeout))
            .map_err(|source| Error::ClientSetup { source })?;
        Ok(Self {
            http,
            policy: RegistryPolicy::new(options.insecure_registries.clone()),
            retry: RetryPolicy {
                max_retries: options.max_retries,
                base_delay: options.retry_base_delay,
                max_delay: options.max_retry_delay,
            },
            helpers: HelperSettings {
                search_path: options.helper_search_path.clone(),
                timeout: options.helper_timeout,
            },
            options,
            auth: auth::AuthCache::default(),
        })
    }

    /// The options this client was created with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    pub(crate) fn emit(&self, event: &ProgressEvent) {
        if let Some(callback) = &self.options.progress {
            callback(event);
        }
    }

    /// `<scheme>://<host>/v2/<repository>/<path>`; `path` holds only checked parts.
    fn url(&self, image: &ImageRef, path: &str) -> Result<Url> {
        let text = format!(
            "{}://{}/v2/{}/{path}",
            self.policy.scheme(image),
            image.api_host(),
            image.repository()
        );
        Url::parse(&text).map_err(|error| Error::InvalidReference {
            reference: image.to_string(),
            reason: error.to_string(),
        })
    }

    /// The URL of blob `digest`, which is checked first: digests come from manifests written by
    /// others, and must not turn into other paths.
    fn blob_url(&self, image: &ImageRef, digest: &str) -> Result<Url> {
        check_digest(image, digest)?;
        self.url(image, &format!("blobs/{digest}"))
    }

    /// Whether two images live on the same registry origin (one login, mountable blobs).
    pub(crate) fn same_registry_origin(&self, left: &ImageRef, right: &ImageRef) -> bool {
        self.policy.same_registry_origin(left, right)
    }

    /// Announces that an operation will need `scopes` on `image`'s registry, so the first
    /// token it fetches covers them all.
    pub(crate) fn plan_access(&self, image: &ImageRef, scopes: &Scopes) {
        if let Ok(origin) = self.policy.registry_origin(image) {
            self.auth.plan(&auth::origin_key(&origin), scopes);
        }
    }
}

/// Refuses a digest that is not `algorithm:encoded` before it becomes part of a URL.
fn check_digest(image: &ImageRef, digest: &str) -> Result<()> {
    ImageRef::validate_digest(digest).map_err(|reason| Error::InvalidReference {
        reference: format!("{}/{}@{digest}", image.registry(), image.repository()),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_debug_hides_the_password() {
        let client = RegistryClient::new(ClientOptions {
            credentials: Credentials::basic("ghcr.io", "u", "pa55word"),
            ..ClientOptions::default()
        })
        .unwrap();
        let debug = format!("{client:?}");
        assert!(
            debug.contains("Secret(***)") && !debug.contains("pa55word"),
            "{debug}"
        );
    }
}
