//! `RegistryClient`: the distribution-API primitives (HEAD/mount/upload blobs, fetch and push raw
//! manifests) over plain HTTP with auth, retries, streaming and digest checks. Which blobs an
//! image needs is decided in `push.rs`; where bytes come from is described by `BlobContent`.

use std::collections::HashMap;
use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use reqwest::header;
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use url::Url;

use crate::auth::{self, Challenge};
use crate::credentials::{Credentials, UserPassword, same_registry};
use crate::error::{Error, Result};
use crate::progress::{BlobOutcome, BlobProgress, ImageProgress, ProgressCallback, ProgressEvent};
use crate::reference::ImageRef;

/// Media types a manifest GET accepts.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest we read; the distribution spec recommends registries accept at least 4 MiB.
const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Size of each read from disk while streaming a blob.
const READ_CHUNK: usize = 256 * 1024;

/// How a `RegistryClient` authenticates and behaves.
#[derive(Clone)]
pub struct ClientOptions {
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Registries (`host` or `host:port`) reached over plain HTTP even if not on loopback.
    pub insecure_registries: Vec<String>,
    /// How many blobs upload at once.
    pub max_concurrent_uploads: usize,
    /// How many times a failed request or blob upload is retried.
    pub max_retries: u32,
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

#[derive(Default)]
struct AuthCache {
    challenges: HashMap<String, Challenge>,
    tokens: HashMap<(String, String), String>,
    credentials: HashMap<String, Option<UserPassword>>,
}

/// A client for OCI distribution registries.
pub struct RegistryClient {
    http: reqwest::Client,
    options: ClientOptions,
    auth: tokio::sync::Mutex<AuthCache>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|character| character.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// `host:port` (or `host` without an explicit port) of `url`.
fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A URL without its query (upload session state), for messages.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
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

impl RegistryClient {
    /// Creates a client; no network traffic happens until the first call.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("dagster-deploy/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(Error::ClientSetup)?;
        Ok(Self {
            http,
            options,
            auth: tokio::sync::Mutex::default(),
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

    fn scheme(&self, image: &ImageRef) -> &'static str {
        let host = image.api_host();
        let insecure = self
            .options
            .insecure_registries
            .iter()
            .any(|name| name == host || name == image.registry());
        if insecure || is_loopback(host) {
            "http"
        } else {
            "https"
        }
    }

    fn url(&self, image: &ImageRef, path: &str) -> Result<Url> {
        let text = format!(
            "{}://{}/v2/{}/{path}",
            self.scheme(image),
            image.api_host(),
            image.repository()
        );
        Url::parse(&text).map_err(|error| Error::InvalidReference {
            reference: image.to_string(),
            reason: error.to_string(),
        })
    }

    /// Whether plain HTTP to `url`'s host is allowed: loopback, or listed as insecure.
    fn plain_http_allowed(&self, url: &Url) -> bool {
        let host = host_and_port(url);
        is_loopback(&host)
            || self
                .options
                .insecure_registries
                .iter()
                .any(|name| same_registry(name, &host))
    }

    /// Refuses to put credentials for `registry` on the wire to `url` unless the connection is
    /// encrypted or its host is loopback or explicitly trusted as an insecure registry.
    fn check_credential_transport(&self, registry: &str, url: &Url) -> Result<()> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_http_allowed(url) => Ok(()),
            scheme => Err(Error::InsecureTransport {
                registry: registry.to_owned(),
                host: host_and_port(url),
                scheme: scheme.to_owned(),
                url: display_url(url),
            }),
        }
    }

    async fn credentials_for(&self, registry: &str) -> Result<Option<UserPassword>> {
        if let Some(found) = self.auth.lock().await.credentials.get(registry) {
            return Ok(found.clone());
        }
        let found = self.options.credentials.resolve(registry).await?;
        self.auth
            .lock()
            .await
            .credentials
            .insert(registry.to_owned(), found.clone());
        Ok(found)
    }

    /// The `Authorization` header for a request to `url` on `image`'s registry with `scopes`, if
    /// one is needed and known; refused if it would travel unencrypted to a remote host.
    async fn authorization(
        &self,
        image: &ImageRef,
        scopes: &[String],
        url: &Url,
    ) -> Result<Option<String>> {
        let value = self.authorization_value(image, scopes).await?;
        if value.is_some() {
            self.check_credential_transport(image.registry(), url)?;
        }
        Ok(value)
    }

    async fn authorization_value(
        &self,
        image: &ImageRef,
        scopes: &[String],
    ) -> Result<Option<String>> {
        let host = image.api_host().to_owned();
        let challenge = self.auth.lock().await.challenges.get(&host).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials_for(image.registry())
                .await?
                .as_ref()
                .map(auth::basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                let key = (host.clone(), scopes.join(" "));
                if let Some(token) = self.auth.lock().await.tokens.get(&key) {
                    return Ok(Some(token.clone()));
                }
                let realm = Url::parse(&realm).map_err(|error| Error::Protocol {
                    url: format!("https://{host}/v2/"),
                    reason: format!("the bearer challenge's realm `{realm}` is not a URL: {error}"),
                })?;
                // Checked even when anonymous: the token itself is a credential.
                self.check_credential_transport(image.registry(), &realm)?;
                let credentials = self.credentials_for(image.registry()).await?;
                let token = auth::fetch_token(
                    &self.http,
                    image.registry(),
                    &realm,
                    service.as_deref(),
                    scopes,
                    credentials.as_ref(),
                )
                .await?;
                let value = format!("Bearer {token}");
                self.auth.lock().await.tokens.insert(key, value.clone());
                Ok(Some(value))
            }
        }
    }

    async fn unauthorized(&self, image: &ImageRef, url: &Url, status: StatusCode) -> Error {
        let detail = match self.credentials_for(image.registry()).await {
            Ok(Some(credentials)) => format!(
                "the credentials of user `{}` were rejected",
                credentials.username
            ),
            Ok(None) => match self.options.credentials.explicit_registry() {
                Some(scoped) => format!(
                    "no credentials found for {} (the explicit username and password are for {scoped} only)",
                    image.registry()
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

    /// Sends a replayable (bodiless or in-memory body) request, answering auth challenges and
    /// retrying transport errors and server errors.
    async fn send(
        &self,
        image: &ImageRef,
        scopes: &[String],
        method: Method,
        url: &Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(value) = self.authorization(image, scopes, url).await? {
                request = request.header(header::AUTHORIZATION, value);
            }
            let outcome = build(request).send().await;
            let retryable = match &outcome {
                Err(_) => true,
                Ok(response) => response.status().is_server_error(),
            };
            if retryable && attempt < self.options.max_retries {
                attempt += 1;
                tracing::debug!(%url, attempt, "retrying registry request");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            let response = outcome.map_err(|source| Error::Transport {
                url: display_url(url),
                source,
            })?;
            if response.status() == StatusCode::UNAUTHORIZED {
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(auth::parse_challenge);
                if let (false, Some(challenge)) = (challenged, challenge) {
                    challenged = true;
                    let mut cache = self.auth.lock().await;
                    let host = image.api_host().to_owned();
                    cache.tokens.remove(&(host.clone(), scopes.join(" ")));
                    cache.challenges.insert(host, challenge);
                    continue;
                }
                return Err(self.unauthorized(image, url, response.status()).await);
            }
            if response.status() == StatusCode::FORBIDDEN {
                return Err(self.unauthorized(image, url, response.status()).await);
            }
            return Ok(response);
        }
    }

    /// Whether the registry already has blob `digest` in `image`'s repository.
    pub async fn blob_exists(&self, image: &ImageRef, digest: &str) -> Result<bool> {
        let url = self.url(image, &format!("blobs/{digest}"))?;
        let response = self
            .send(
                image,
                &[pull_scope(image.repository())],
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
                let scopes = [push_scope(to.repository())];
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
        let mut url = self.url(to, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let scopes = [push_scope(to.repository()), pull_scope(from_repository)];
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
        let scopes = [push_scope(image.repository())];
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
        let scopes = [push_scope(image.repository())];
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
                    tokio::time::sleep(backoff(attempt)).await;
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
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        hash_prefix(content, offset, &hasher).await?;
        progress.reset_to(offset);
        let scopes = [push_scope(image.repository())];
        if offset < size || size == 0 {
            let body = self
                .content_stream(
                    content,
                    digest,
                    size,
                    offset,
                    hasher.clone(),
                    progress.clone(),
                )
                .await?;
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
            let response = request.send().await.map_err(|source| Error::Transport {
                url: display_url(&session),
                source,
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

    async fn content_stream(
        &self,
        content: &BlobContent,
        digest: &str,
        size: u64,
        offset: u64,
        hasher: Arc<Mutex<Sha256>>,
        progress: Arc<BlobProgress>,
    ) -> Result<reqwest::Body> {
        let observe = move |chunk: &Bytes| {
            if let Ok(mut hasher) = hasher.lock() {
                hasher.update(chunk);
            }
            progress.add(chunk.len() as u64);
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
        let scopes = [pull_scope(image.repository())];
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
        let (response, url) = self.get_blob(image, digest).await?;
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

    /// `GET` of a blob, answered with success; returns the response and its URL.
    async fn get_blob(&self, image: &ImageRef, digest: &str) -> Result<(Response, Url)> {
        let url = self.url(image, &format!("blobs/{digest}"))?;
        let scopes = [pull_scope(image.repository())];
        let response = self
            .send(image, &scopes, Method::GET, &url, |request| request)
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&Method::GET, &url, response).await);
        }
        Ok((response, url))
    }

    /// Streams a blob's bytes as they arrive, unverified: the caller checks the digest (an
    /// upload does), or stops early (the builder reading directory entries from base layers).
    pub(crate) async fn blob_stream(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + use<>> {
        let (response, url) = self.get_blob(image, digest).await?;
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
        let scopes = [push_scope(image.repository())];
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

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(6))
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

async fn read_limited(response: Response, url: &Url, what: &str, max_size: u64) -> Result<Bytes> {
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
            source,
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
    fn only_loopback_hosts_are_plain_http_by_default() {
        for (host, expected) in [
            ("127.0.0.1:5000", true),
            ("localhost:5000", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("ghcr.io", false),
            ("localhost.evil.example", false),
        ] {
            assert_eq!(is_loopback(host), expected, "{host}");
        }
    }

    #[test]
    fn insecure_registries_use_http_and_others_https() {
        let client = RegistryClient::new(ClientOptions {
            insecure_registries: vec!["reg.internal:5000".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        let insecure = ImageRef::parse("reg.internal:5000/a:b").unwrap();
        let secure = ImageRef::parse("ghcr.io/a:b").unwrap();
        assert_eq!(client.url(&insecure, "x").unwrap().scheme(), "http");
        assert_eq!(client.url(&secure, "x").unwrap().scheme(), "https");
    }

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

    #[test]
    fn credentials_travel_over_plain_http_only_to_loopback_or_insecure_hosts() {
        let client = RegistryClient::new(ClientOptions {
            insecure_registries: vec!["reg.internal:5000".into(), "auth.internal".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        for (url, allowed) in [
            ("https://auth.example/token", true),
            ("http://127.0.0.1:5000/token", true),
            ("http://localhost/token", true),
            ("http://[::1]:8080/token", true),
            ("http://reg.internal:5000/v2/", true),
            ("http://auth.internal/token", true),
            ("http://reg.internal:5001/v2/", false),
            ("http://auth.example/token", false),
            ("http://localhost.evil.example/token", false),
            ("ftp://127.0.0.1/token", false),
        ] {
            let result =
                client.check_credential_transport("reg.example", &Url::parse(url).unwrap());
            assert_eq!(result.is_ok(), allowed, "{url}: {result:?}");
        }
        let error = client
            .check_credential_transport(
                "reg.example",
                &Url::parse("http://auth.example:8080/token?account=x").unwrap(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("auth.example:8080")
                && error.contains("reg.example")
                && !error.contains("account=x"),
            "{error}"
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
