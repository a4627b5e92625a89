//! Sending one request: the transport rule (`policy.rs`) on every hop, redirects of reads
//! followed by hand, the registry's own auth challenges answered, transient failures retried
//! as the shared policy says, whole-request timeouts or stall detection for streams. Also the
//! small readers of answers every concern uses: errors from statuses, `Location`, bounded
//! bodies.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use dagster_deploy_http_policy::{Failure, Idempotency, parse_retry_after};
use futures_util::StreamExt as _;
use reqwest::header;
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::RegistryClient;
use super::auth::{self, Scopes};
use crate::error::{Error, Result};
use crate::policy::display_url;
use crate::reference::ImageRef;

/// Most redirects followed for one request (a CDN rarely needs more than one).
const MAX_REDIRECTS: usize = 5;

/// How long a request may take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    /// The whole exchange, answer included, within the request timeout.
    Whole,
    /// A streamed blob: no total limit (the caller watches for stalls).
    Streaming,
}

/// When bytes last moved in a streamed transfer, to notice a stall.
pub(super) struct Activity {
    started: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(
            self.last_millis.load(Ordering::Relaxed),
        ))
    }

    /// Runs `future` to the end, or gives up (`None`) once nothing moved for `limit`.
    pub(super) async fn watch<F: Future>(&self, future: F, limit: Duration) -> Option<F::Output> {
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

impl RegistryClient {
    /// Sends one request to `url`, following redirects of reads; every hop is checked by the
    /// transport rule and gets its own `Authorization` from the credential rule. Returns the
    /// URL that answered, the `Authorization` it was sent, and the answer.
    pub(super) async fn exchange(
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
            // A caller's client that follows redirects itself would bypass the rules above.
            if let Ok(response) = &outcome
                && response.url() != &current
            {
                return Err(Error::Protocol {
                    url: display_url(&current),
                    reason: format!(
                        "the HTTP client followed a redirect to {} itself; give the registry client one that does not follow redirects",
                        display_url(response.url())
                    ),
                });
            }
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
    pub(super) async fn send(
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

    pub(super) async fn send_bounded(
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
                registry: image.registry().to_owned(),
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
                    let origin = auth::origin_key(&registry_origin);
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
}

/// An error for an answer with an unexpected status, with the start of its body.
pub(super) async fn status_error(
    image: &ImageRef,
    method: &Method,
    url: &Url,
    response: Response,
) -> Error {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if let Some((cut, _)) = body.char_indices().nth(500) {
        body.truncate(cut);
    }
    Error::Status {
        registry: image.registry().to_owned(),
        repository: image.repository().to_owned(),
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

/// The absolute URL of a response's `Location` header.
pub(super) fn location(request_url: &Url, response: &Response) -> Result<Url> {
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

/// Reads a whole (small) answer from `registry`, refusing more than `max_size` bytes.
pub(crate) async fn read_limited(
    response: Response,
    registry: &str,
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
            registry: registry.to_owned(),
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
