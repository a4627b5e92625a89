//! `RegistryClient`: the distribution-API primitives (HEAD/mount/upload blobs, fetch and push raw
//! manifests) over plain HTTP with auth, retries, redirects, streaming and digest checks. Which
//! request may carry credentials is decided in `policy.rs`, what the client remembers about
//! authentication lives in `access.rs`; which blobs an image needs is decided in `push.rs`;
//! where bytes come from is described by `BlobContent`.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use dagster_deploy_http_policy::{Failure, Idempotency, RetryPolicy, parse_retry_after};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use reqwest::header;
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use url::Url;

use crate::access::{AuthCache, Scopes, Token};
use crate::auth::{self, Challenge};
use crate::credentials::{Credentials, DEFAULT_HELPER_TIMEOUT, HelperSettings, UserPassword};
use crate::error::{Error, Result};
use crate::policy::{RegistryPolicy, display_url};
use crate::progress::{BlobOutcome, BlobProgress, ImageProgress, ProgressCallback, ProgressEvent};
use crate::reference::ImageRef;

/// Media types a manifest GET accepts.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest we read; the distribution spec recommends registries accept at least 4 MiB.
const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Size of each read from disk while streaming a blob.
const READ_CHUNK: usize = 256 * 1024;
/// Most redirects followed for one request (a CDN rarely needs more than one).
const MAX_REDIRECTS: usize = 5;

/// How a `RegistryClient` authenticates and behaves.
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
            .finish()
    }
}

/// A manifest or index exactly as stored: pushing `bytes` unchanged preserves `digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The exact manifest bytes.
    pub bytes: Bytes,
    /// Its media type (the `Content-Type` it is pushed with).
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl RawManifest {
    /// Wraps manifest bytes, computing their digest.
    pub fn new(bytes: Bytes, media_type: impl Into<String>) -> Self {
        let digest = sha256_digest(&bytes);
        Self {
            bytes,
            media_type: media_type.into(),
            digest,
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Where the bytes of a blob come from.
#[derive(Clone, Debug)]
pub(crate) enum BlobContent {
    /// `size` bytes of a file starting at `offset` (a layout blob or a tar entry).
    File { path: PathBuf, offset: u64 },
    /// Bytes in memory (small blobs: configs).
    Bytes(Bytes),
    /// The same digest in another registry repository.
    Remote(ImageRef),
}

impl BlobContent {
    fn describe(&self) -> String {
        match self {
            BlobContent::File { path, offset: 0 } => path.display().to_string(),
            BlobContent::File { path, offset } => format!("{} at byte {offset}", path.display()),
            BlobContent::Bytes(_) => "in-memory blob".to_owned(),
            BlobContent::Remote(image) => image.to_string(),
        }
    }
}

/// What a cross-repository mount request did.
pub(crate) enum MountOutcome {
    Mounted,
    /// The registry could not mount and opened an upload session instead.
    Started(Url),
}

/// How long a request may take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// The whole exchange, answer included, within the request timeout.
    Whole,
    /// A streamed blob: no total limit (the caller watches for stalls).
    Streaming,
}

/// When bytes last moved in a streamed transfer, to notice a stall.
struct Activity {
    started: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(
            self.last_millis.load(Ordering::Relaxed),
        ))
    }

    /// Runs `future` to the end, or gives up (`None`) once nothing moved for `limit`.
    async fn watch<F: Future>(&self, future: F, limit: Duration) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        loop {
            let left = limit.saturating_sub(self.idle_for());
            if left.is_zero() {
                return None;
            }
            tokio::select! {
                output = &mut future => return Some(output),
                () = tokio::time::sleep(left) => {}
            }
        }
    }
}

/// A client for OCI distribution registries.
pub struct RegistryClient {
    http: reqwest::Client,
    options: ClientOptions,
    policy: RegistryPolicy,
    retry: RetryPolicy,
    helpers: HelperSettings,
    auth: AuthCache,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The key of an origin in the auth cache (`https://host:port`).
fn origin_key(origin: &Url) -> String {
    origin.origin().ascii_serialization()
}

async fn status_error(method: &Method, url: &Url, response: Response) -> Error {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if let Some((cut, _)) = body.char_indices().nth(500) {
        body.truncate(cut);
    }
    Error::Status {
        method: method.to_string(),
        url: display_url(url),
        status,
        body: body.trim().to_owned(),
    }
}

/// Whether `status` to a `method` request is a redirect the client follows: only reads are
/// redirected (to a CDN, say); a redirected write is reported as it is.
fn follows_redirect(method: &Method, status: StatusCode) -> bool {
    (*method == Method::GET || *method == Method::HEAD)
        && matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        )
}

/// The `Retry-After` of a response, if it has a valid one.
fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after)
}

impl RegistryClient {
    /// Creates a client; no network traffic happens until the first call.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("dagster-deploy/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.request_timeout.min(Duration::from_secs(30)))
            .pool_idle_timeout(Duration::from_secs(30))
            // Redirects are followed by `exchange`, which applies the credential rule to
            // every hop; reqwest's own policy would decide that by host alone.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::ClientSetup)?;
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
            auth: AuthCache::default(),
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
        ImageRef::validate_digest(digest).map_err(|reason| Error::InvalidReference {
            reference: format!("{}/{}@{digest}", image.registry(), image.repository()),
            reason,
        })?;
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
            self.auth.plan(&origin_key(&origin), scopes);
        }
    }

    /// The login for `registry`, looked up once per client (a failing lookup too).
    async fn credentials_for(&self, registry: &str) -> Result<Option<UserPassword>> {
        let cell = self.auth.credential_cell(registry);
        let lookup = cell
            .get_or_init(|| async {
                match self
                    .options
                    .credentials
                    .resolve(registry, &self.helpers)
                    .await
                {
                    Ok(found) => Ok(found),
                    Err(Error::Credentials { origin, reason, .. }) => Err((origin, reason)),
                    Err(other) => Err(("the credential lookup".to_owned(), other.to_string())),
                }
            })
            .await;
        lookup
            .clone()
            .map_err(|(origin, reason)| Error::Credentials {
                registry: registry.to_owned(),
                origin,
                reason,
            })
    }

    /// The `Authorization` header a request to `url` on behalf of `image` carries. This is the
    /// client's one credential rule (see `policy.rs`): the registry's login, or a token got
    /// with it, and only if `url` has the registry's own origin; nothing anywhere else.
    async fn authorization(
        &self,
        image: &ImageRef,
        scopes: &Scopes,
        url: &Url,
    ) -> Result<Option<String>> {
        if !self.policy.carries_credentials(image, url)? {
            return Ok(None);
        }
        let origin = origin_key(&self.policy.registry_origin(image)?);
        match self.auth.challenge(&origin) {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials_for(image.registry())
                .await?
                .as_ref()
                .map(auth::basic_header)),
            Some(Challenge::Bearer { realm, service }) => self
                .bearer(image, &origin, &realm, service.as_deref(), scopes)
                .await
                .map(Some),
        }
    }

    /// A bearer token covering `scopes` (and everything planned), fetched at most once at a
    /// time per registry and reused while it covers what is asked.
    async fn bearer(
        &self,
        image: &ImageRef,
        origin: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<String> {
        let slot = self.auth.token_slot(origin);
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref().filter(|token| token.scopes.covers(scopes)) {
            return Ok(token.header.clone());
        }
        let realm = Url::parse(realm).map_err(|error| Error::Protocol {
            url: origin.to_owned(),
            reason: format!("the bearer challenge's realm `{realm}` is not a URL: {error}"),
        })?;
        // Checked even when anonymous: the token itself is a credential.
        self.policy.check_realm(image.registry(), &realm)?;
        let wanted = held
            .as_ref()
            .map(|token| token.scopes.clone())
            .unwrap_or_default()
            .union(&self.auth.planned(origin))
            .union(scopes);
        let credentials = self.credentials_for(image.registry()).await?;
        let request = auth::TokenRequest {
            registry: image.registry(),
            realm: &realm,
            service,
            scopes: &wanted.to_query(),
            credentials: credentials.as_ref(),
        };
        let token = auth::fetch_token(
            &self.http,
            &request,
            self.options.request_timeout,
            &self.retry,
        )
        .await?;
        let header = format!("Bearer {token}");
        *held = Some(Token {
            scopes: wanted,
            header: header.clone(),
        });
        Ok(header)
    }

    async fn unauthorized(&self, image: &ImageRef, url: &Url, status: StatusCode) -> Error {
        let detail = match self.credentials_for(image.registry()).await {
            Ok(Some(credentials)) => format!(
                "the credentials of user `{}` were rejected",
                credentials.username
            ),
            Ok(None) => match self.options.credentials.explicit_registries() {
                Some(scoped) => format!(
                    "no credentials found for {} (the explicit username and password are for {} only)",
                    image.registry(),
                    scoped.join(", ")
                ),
                None => format!("no credentials found for {}", image.registry()),
            },
            Err(error) => error.to_string(),
        };
        Error::Unauthorized {
            registry: image.registry().to_owned(),
            url: display_url(url),
            status: status.as_u16(),
            detail,
        }
    }

    /// Sends one request to `url`, following redirects of reads; every hop is checked by the
    /// transport rule and gets its own `Authorization` from the credential rule. Returns the
    /// URL that answered, the `Authorization` it was sent, and the answer.
    async fn exchange(
        &self,
        image: &ImageRef,
        scopes: &Scopes,
        method: &Method,
        url: &Url,
        bound: Bound,
        build: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(Url, Option<String>, reqwest::Result<Response>)> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            self.policy.check_transport(image.registry(), &current)?;
            let authorization = self.authorization(image, scopes, &current).await?;
            let mut request = self.http.request(method.clone(), current.clone());
            if let Some(value) = &authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            if bound == Bound::Whole {
                request = request.timeout(self.options.request_timeout);
            }
            let outcome = build(request).send().await;
            match &outcome {
                Ok(response) if follows_redirect(method, response.status()) => {
                    current = location(&current, response)?;
                    tracing::debug!(url = %display_url(&current), "following a registry redirect");
                }
                _ => return Ok((current, authorization, outcome)),
            }
        }
        Err(Error::Protocol {
            url: display_url(url),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Sends a replayable (bodiless or in-memory body) request, answering the registry's own
    /// auth challenges and retrying transient failures as the shared retry policy says.
    async fn send(
        &self,
        image: &ImageRef,
        scopes: &Scopes,
        method: Method,
        url: &Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        self.send_bounded(image, scopes, method, url, Bound::Whole, build)
            .await
    }

    async fn send_bounded(
        &self,
        image: &ImageRef,
        scopes: &Scopes,
        method: Method,
        url: &Url,
        bound: Bound,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let registry_origin = self.policy.registry_origin(image)?;
        let mut challenged = false;
        let mut retries = 0;
        loop {
            let (answered, sent, outcome) = self
                .exchange(image, scopes, &method, url, bound, &build)
                .await?;
            let failure = match &outcome {
                Err(error) if error.is_connect() => Some(Failure::Connect),
                Err(_) => Some(Failure::Exchange),
                Ok(response) => Some(Failure::Status(response.status().as_u16())),
            };
            // Every request sent through here may be repeated: reads, and writes of content
            // named by its digest (a new upload session at worst leaves one unused).
            if let Some(failure) = failure
                && self
                    .retry
                    .should_retry(retries + 1, failure, Idempotency::Idempotent)
            {
                retries += 1;
                let delay = self
                    .retry
                    .delay(retries, outcome.as_ref().ok().and_then(retry_after));
                tracing::debug!(url = %display_url(url), retries, ?failure, ?delay, "retrying registry request");
                tokio::time::sleep(delay).await;
                continue;
            }
            let response = outcome.map_err(|source| Error::Transport {
                url: display_url(&answered),
                source: source.without_url(),
            })?;
            // Only the registry itself may ask for its credentials; a 401 from anywhere else
            // (a redirect target, an upload host) is an answer like any other.
            let from_registry =
                dagster_deploy_http_policy::same_origin(&answered, &registry_origin);
            if from_registry && response.status() == StatusCode::UNAUTHORIZED {
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(auth::parse_challenge);
                if let (false, Some(challenge)) = (challenged, challenge) {
                    challenged = true;
                    let origin = origin_key(&registry_origin);
                    self.auth.forget_token(&origin, sent.as_deref()).await;
                    self.auth.set_challenge(&origin, challenge);
                    continue;
                }
                return Err(self.unauthorized(image, url, response.status()).await);
            }
            if from_registry && response.status() == StatusCode::FORBIDDEN {
                return Err(self.unauthorized(image, url, response.status()).await);
            }
            return Ok(response);
        }
    }

    /// Whether the registry already has blob `digest` in `image`'s repository.
    pub async fn blob_exists(&self, image: &ImageRef, digest: &str) -> Result<bool> {
        let url = self.blob_url(image, digest)?;
        let response = self
            .send(
                image,
                &Scopes::pull(image.repository()),
                Method::HEAD,
                &url,
                |request| request,
            )
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&Method::HEAD, &url, response).await),
        }
    }

    /// Mounts blob `digest` from `from_repository` (same registry) into `to`; false if the
    /// registry could not mount it.
    pub async fn mount_blob(
        &self,
        to: &ImageRef,
        from_repository: &str,
        digest: &str,
    ) -> Result<bool> {
        match self.mount_or_start(to, from_repository, digest).await? {
            MountOutcome::Mounted => Ok(true),
            MountOutcome::Started(session) => {
                // Cancel the session the registry opened instead; failure only leaks a temp upload.
                let scopes = Scopes::push(to.repository());
                let _ = self
                    .send(to, &scopes, Method::DELETE, &session, |request| request)
                    .await;
                Ok(false)
            }
        }
    }

    pub(crate) async fn mount_or_start(
        &self,
        to: &ImageRef,
        from_repository: &str,
        digest: &str,
    ) -> Result<MountOutcome> {
        ImageRef::validate_digest(digest).map_err(|reason| Error::InvalidReference {
            reference: format!("{}/{}@{digest}", to.registry(), to.repository()),
            reason,
        })?;
        let mut url = self.url(to, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let scopes = Scopes::push(to.repository()).union(&Scopes::pull(from_repository));
        let response = self
            .send(to, &scopes, Method::POST, &url, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Started(location(&url, &response)?)),
            _ => Err(status_error(&Method::POST, &url, response).await),
        }
    }

    /// Uploads `size` bytes of the file at `path` as blob `digest`, streaming from disk,
    /// verifying the digest and retrying (resuming where possible) on failure.
    pub async fn upload_blob_file(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        path: &Path,
    ) -> Result<()> {
        let content = BlobContent::File {
            path: path.to_owned(),
            offset: 0,
        };
        let progress = BlobProgress::new(self.options.progress.clone(), digest, size, None);
        self.upload_blob(image, digest, size, &content, Arc::new(progress), None)
            .await
    }

    /// Uploads in-memory `bytes` as blob `digest` (for small blobs such as configs).
    pub async fn upload_blob_bytes(
        &self,
        image: &ImageRef,
        digest: &str,
        bytes: Bytes,
    ) -> Result<()> {
        let size = bytes.len() as u64;
        let progress = BlobProgress::new(self.options.progress.clone(), digest, size, None);
        self.upload_blob(
            image,
            digest,
            size,
            &BlobContent::Bytes(bytes),
            Arc::new(progress),
            None,
        )
        .await
    }

    pub(crate) fn blob_progress(
        &self,
        digest: &str,
        size: u64,
        image: Option<Arc<ImageProgress>>,
    ) -> Arc<BlobProgress> {
        Arc::new(BlobProgress::new(
            self.options.progress.clone(),
            digest,
            size,
            image,
        ))
    }

    async fn start_upload(&self, image: &ImageRef) -> Result<Url> {
        let url = self.url(image, "blobs/uploads/")?;
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::POST, &url, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(&Method::POST, &url, response).await);
        }
        location(&url, &response)
    }

    /// Asks how much of an interrupted upload the registry holds: `(session URL, bytes held)`.
    async fn upload_status(&self, image: &ImageRef, session: &Url) -> Result<(Url, u64)> {
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, session, |request| request)
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(status_error(&Method::GET, session, response).await);
        }
        let held = response
            .headers()
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|range| range.trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, end)| end.parse::<u64>().ok())
            .map_or(0, |end| end + 1);
        Ok((location(session, &response)?, held))
    }

    pub(crate) async fn upload_blob(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        content: &BlobContent,
        progress: Arc<BlobProgress>,
        opened_session: Option<Url>,
    ) -> Result<()> {
        if let BlobContent::File { path, offset } = content {
            let length = tokio::fs::metadata(path)
                .await
                .map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            if length < offset + size {
                return Err(Error::InvalidImage {
                    path: path.clone(),
                    reason: format!(
                        "blob {digest} should be {size} bytes but the file is too short ({length} bytes)"
                    ),
                });
            }
        }
        let resumable = !matches!(content, BlobContent::Remote(_));
        let mut fresh_session = opened_session;
        let mut interrupted_session: Option<Url> = None;
        let mut attempt: u32 = 0;
        loop {
            let (session, offset) = match (fresh_session.take(), interrupted_session.take()) {
                (Some(session), _) => (session, 0),
                (None, Some(session)) => match self.upload_status(image, &session).await {
                    Ok((session, held)) if held <= size => (session, held),
                    _ => (self.start_upload(image).await?, 0),
                },
                (None, None) => (self.start_upload(image).await?, 0),
            };
            match self
                .send_blob(
                    image,
                    digest,
                    size,
                    content,
                    &progress,
                    session.clone(),
                    offset,
                )
                .await
            {
                Ok(()) => {
                    progress.finish(BlobOutcome::Uploaded);
                    return Ok(());
                }
                Err(error) if error.is_retryable() && attempt < self.options.max_retries => {
                    attempt += 1;
                    tracing::debug!(%digest, attempt, %error, "retrying blob upload");
                    progress.emit(&ProgressEvent::BlobRetry {
                        digest: digest.to_owned(),
                        attempt: attempt + 1,
                        reason: error.to_string(),
                    });
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    // Resume the session we were writing to, unless we were already resuming it.
                    if resumable && offset == 0 {
                        interrupted_session = Some(session);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt: PATCH the bytes from `offset` on, check the digest, then commit with PUT.
    #[allow(clippy::too_many_arguments, reason = "internal step of upload_blob")]
    async fn send_blob(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        content: &BlobContent,
        progress: &Arc<BlobProgress>,
        mut session: Url,
        offset: u64,
    ) -> Result<()> {
        let activity = Arc::new(Activity::new());
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        hash_prefix(content, offset, &hasher).await?;
        progress.reset_to(offset);
        let scopes = Scopes::push(image.repository());
        if offset < size || size == 0 {
            let body = self
                .content_stream(
                    content,
                    digest,
                    size,
                    offset,
                    hasher.clone(),
                    progress.clone(),
                    activity.clone(),
                )
                .await?;
            self.policy.check_transport(image.registry(), &session)?;
            let mut request = self
                .http
                .patch(session.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size - offset)
                .body(body);
            if offset > 0 {
                request = request.header(header::CONTENT_RANGE, format!("{offset}-{}", size - 1));
            }
            if let Some(value) = self.authorization(image, &scopes, &session).await? {
                request = request.header(header::AUTHORIZATION, value);
            }
            // The body streams for as long as it takes; only a stall ends it.
            let limit = self.options.request_timeout;
            let response = activity
                .watch(request.send(), limit)
                .await
                .ok_or_else(|| Error::Stalled {
                    url: display_url(&session),
                    seconds: limit.as_secs(),
                })?
                .map_err(|source| Error::Transport {
                    url: display_url(&session),
                    source: source.without_url(),
                })?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(status_error(&Method::PATCH, &session, response).await);
            }
            session = location(&session, &response)?;
        }
        let actual = format!(
            "sha256:{}",
            hex::encode(hasher.lock().map_err(|_| poisoned())?.clone().finalize())
        );
        if actual != digest {
            return Err(Error::DigestMismatch {
                location: content.describe(),
                expected: digest.to_owned(),
                actual,
            });
        }
        let mut commit = session.clone();
        commit.query_pairs_mut().append_pair("digest", digest);
        let response = self
            .send(image, &scopes, Method::PUT, &commit, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => {}
            StatusCode::BAD_REQUEST => {
                let error = status_error(&Method::PUT, &commit, response).await;
                if error.to_string().contains("DIGEST_INVALID") {
                    return Err(Error::DigestMismatch {
                        location: content.describe(),
                        expected: digest.to_owned(),
                        actual: "a different digest (the registry rejected it)".to_owned(),
                    });
                }
                return Err(error);
            }
            // A retried commit after a lost response: the blob may be there already.
            StatusCode::NOT_FOUND if self.blob_exists(image, digest).await? => {}
            _ => return Err(status_error(&Method::PUT, &commit, response).await),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "internal step of send_blob")]
    async fn content_stream(
        &self,
        content: &BlobContent,
        digest: &str,
        size: u64,
        offset: u64,
        hasher: Arc<Mutex<Sha256>>,
        progress: Arc<BlobProgress>,
        activity: Arc<Activity>,
    ) -> Result<reqwest::Body> {
        let observe = move |chunk: &Bytes| {
            if let Ok(mut hasher) = hasher.lock() {
                hasher.update(chunk);
            }
            progress.add(chunk.len() as u64);
            activity.touch();
        };
        match content {
            BlobContent::Bytes(bytes) => {
                let rest = bytes.slice(
                    usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len())..,
                );
                observe(&rest);
                Ok(reqwest::Body::from(rest))
            }
            BlobContent::File {
                path,
                offset: start,
            } => {
                let stream = file_stream(path, start + offset, size - offset).await?;
                Ok(reqwest::Body::wrap_stream(stream.inspect_ok(observe)))
            }
            BlobContent::Remote(source) => {
                let stream = self.blob_stream(source, digest).await?;
                Ok(reqwest::Body::wrap_stream(stream.inspect_ok(observe)))
            }
        }
    }

    /// Fetches the manifest `image` names (by tag or digest), exactly as stored.
    pub async fn fetch_manifest(&self, image: &ImageRef) -> Result<RawManifest> {
        let url = self.url(image, &format!("manifests/{}", image.manifest_reference()))?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, &url, |request| {
                request.header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&Method::GET, &url, response).await);
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
        let bytes = read_limited(
            response,
            &url,
            image.manifest_reference(),
            MAX_MANIFEST_SIZE,
        )
        .await?;
        let media_type = match content_type
            .filter(|value| value.contains("manifest") || value.contains("index"))
        {
            Some(value) => value,
            None => crate::manifest::media_type_of(&bytes, url.as_ref())?,
        };
        let manifest = RawManifest::new(bytes, media_type);
        if let Some(expected) = image
            .digest()
            .filter(|expected| *expected != manifest.digest)
        {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: expected.to_owned(),
                actual: manifest.digest,
            });
        }
        Ok(manifest)
    }

    /// Fetches a small blob (e.g. an image config), refusing anything over `max_size` bytes.
    pub async fn fetch_blob(&self, image: &ImageRef, digest: &str, max_size: u64) -> Result<Bytes> {
        let url = self.blob_url(image, digest)?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, &url, |request| request)
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&Method::GET, &url, response).await);
        }
        let bytes = read_limited(response, &url, digest, max_size).await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob's bytes as they arrive, unverified: the caller checks the digest (an
    /// upload does), or stops early (the builder reading directory entries from base layers).
    pub(crate) async fn blob_stream(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + use<>> {
        let url = self.blob_url(image, digest)?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send_bounded(
                image,
                &scopes,
                Method::GET,
                &url,
                Bound::Streaming,
                |request| request,
            )
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&Method::GET, &url, response).await);
        }
        let shown = display_url(&url);
        Ok(response
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                url: shown.clone(),
                source,
            }))
    }

    /// Pushes `manifest` bytes unchanged under `image`'s tag (or digest); returns the digest.
    pub async fn push_manifest(&self, image: &ImageRef, manifest: &RawManifest) -> Result<String> {
        let reference = image.tag().unwrap_or(&manifest.digest).to_owned();
        let url = self.url(image, &format!("manifests/{reference}"))?;
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::PUT, &url, |request| {
                request
                    .header(header::CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&Method::PUT, &url, response).await);
        }
        if let Some(returned) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .filter(|returned| *returned != manifest.digest)
        {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: manifest.digest.clone(),
                actual: returned.to_owned(),
            });
        }
        self.emit(&ProgressEvent::ManifestPushed {
            reference,
            digest: manifest.digest.clone(),
        });
        Ok(manifest.digest.clone())
    }
}

fn poisoned() -> Error {
    Error::Protocol {
        url: String::new(),
        reason: "internal hasher lock poisoned".to_owned(),
    }
}

/// The absolute URL of a response's `Location` header.
fn location(request_url: &Url, response: &Response) -> Result<Url> {
    let value = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| Error::Protocol {
            url: display_url(request_url),
            reason: "missing Location header".to_owned(),
        })?;
    request_url.join(value).map_err(|error| Error::Protocol {
        url: display_url(request_url),
        reason: format!("invalid Location `{value}`: {error}"),
    })
}

/// Reads a whole (small) answer, refusing more than `max_size` bytes.
pub(crate) async fn read_limited(
    response: Response,
    url: &Url,
    what: &str,
    max_size: u64,
) -> Result<Bytes> {
    let too_large = || Error::BlobTooLarge {
        digest: what.to_owned(),
        url: display_url(url),
        max_size,
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_size)
    {
        return Err(too_large());
    }
    let mut buffer = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| Error::Transport {
            url: display_url(url),
            source: source.without_url(),
        })?;
        if buffer.len() as u64 + chunk.len() as u64 > max_size {
            return Err(too_large());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Feeds the first `length` bytes of `content` into `hasher` (to resume an upload).
async fn hash_prefix(content: &BlobContent, length: u64, hasher: &Mutex<Sha256>) -> Result<()> {
    if length == 0 {
        return Ok(());
    }
    match content {
        BlobContent::Bytes(bytes) => {
            let end = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            hasher.lock().map_err(|_| poisoned())?.update(&bytes[..end]);
        }
        BlobContent::File { path, offset } => {
            let mut stream = std::pin::pin!(file_stream(path, *offset, length).await?);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                hasher.lock().map_err(|_| poisoned())?.update(&chunk);
            }
        }
        BlobContent::Remote(_) => {}
    }
    Ok(())
}

/// Streams `length` bytes of `path` from `offset` in bounded chunks.
async fn file_stream(
    path: &Path,
    offset: u64,
    length: u64,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io_error)?;
    file.seek(SeekFrom::Start(offset)).await.map_err(io_error)?;
    Ok(futures_util::stream::try_unfold(
        (file, length),
        |(mut file, remaining)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(READ_CHUNK);
            let mut buffer = BytesMut::with_capacity(want);
            while buffer.len() < want {
                let read = (&mut file)
                    .take((want - buffer.len()) as u64)
                    .read_buf(&mut buffer)
                    .await?;
                if read == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file ended before the blob did",
                    ));
                }
            }
            let remaining = remaining - buffer.len() as u64;
            Ok(Some((buffer.freeze(), (file, remaining))))
        },
    ))
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

    #[tokio::test]
    async fn file_stream_reads_exactly_the_requested_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..700_000u32).map(|index| (index % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let chunks: Vec<Bytes> = file_stream(&path, 10, 600_000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.iter().all(|chunk| chunk.len() <= READ_CHUNK));
        assert_eq!(chunks.concat(), data[10..600_010]);
        let short: std::io::Result<Vec<Bytes>> = file_stream(&path, 600_000, 200_000)
            .await
            .unwrap()
            .try_collect()
            .await;
        assert!(short.is_err());
    }
}
