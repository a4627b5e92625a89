//! Sending one REST request: the credential rule, timeouts, retries, and the mapping of HTTP
//! failures onto [`Error`].
//!
//! **Credentials.** The token goes only to the origin (scheme, host, port) of the API URL the
//! client was made for. Every request passes [`Transport::send`], which checks its URL first:
//! a pagination `Link` to another host is refused before anything is sent. Redirects are never
//! followed (the token would go wherever the server points); they are reported.
//! **Retries.** The shared policy of `dagster-deploy-http-policy`: connection failures, 429 and
//! 503 for every request; 500, 502, 504 and broken exchanges for idempotent ones. A 403 that
//! carries `Retry-After` or `x-ratelimit-remaining: 0` is GitHub's rate limit, retried as a 429.

use std::time::Duration;

use dagster_deploy_http_policy::{
    BodyError, Failure, HttpTransport, Idempotency, RetryPolicy, parse_retry_after,
    read_body_bounded, same_origin,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LINK, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::client::Forge;
use crate::error::{Error, Result};
use crate::token::{ForgeToken, scrub};

/// Largest answer read: a page of 100 long comments is well under this.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// How many characters of an error answer are kept.
const BODY_EXCERPT_CHARS: usize = 400;

/// Knobs of the HTTP transport; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct ForgeOptions {
    /// Timeout of one HTTP request, connection to end of body (default 30 s).
    pub request_timeout: Duration,
    /// Retries and backoff (default: the shared policy's defaults).
    pub retry: RetryPolicy,
    /// The most pages of comments read (default 50, 5,000 comments).
    pub max_pages: u32,
    /// The HTTP client: a caller's own `reqwest::Client`, or settings to build one from
    /// (proxies, with loopback never proxied unless asked; extra root certificates; the
    /// `User-Agent`, which GitHub requires and which defaults to `dagster-deploy/<version>`).
    pub transport: HttpTransport,
}

impl Default for ForgeOptions {
    fn default() -> Self {
        ForgeOptions {
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_pages: 50,
            transport: HttpTransport::default(),
        }
    }
}

/// A successful answer: its JSON and the next page's URL, if the `Link` header named one.
pub(crate) struct Reply {
    pub(crate) json: Value,
    pub(crate) next: Option<Url>,
}

/// The HTTP client, the API origin and the token; every request goes through [`Transport::send`].
pub(crate) struct Transport {
    forge: Forge,
    http: reqwest::Client,
    origin: Url,
    token: ForgeToken,
    headers: HeaderMap,
    options: ForgeOptions,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("forge", &self.forge)
            .field("origin", &self.origin.origin().ascii_serialization())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What one attempt led to.
enum Attempt {
    Done(Reply),
    Retry {
        error: Error,
        retry_after: Option<Duration>,
    },
    Fail(Error),
}

impl Transport {
    /// Checks the API URL and the token, and builds the HTTP client; nothing is sent.
    pub(crate) fn new(
        forge: Forge,
        api_url: &Url,
        token: ForgeToken,
        options: ForgeOptions,
    ) -> Result<Self> {
        let mut headers = HeaderMap::new();
        let mut value = match forge {
            Forge::GitHub => HeaderValue::from_str(&format!("Bearer {}", token.expose())),
            Forge::GitLab => HeaderValue::from_str(token.expose()),
        }
        .map_err(|_| Error::InvalidToken { forge })?;
        value.set_sensitive(true);
        match forge {
            Forge::GitHub => {
                headers.insert(reqwest::header::AUTHORIZATION, value);
                headers.insert(
                    reqwest::header::ACCEPT,
                    HeaderValue::from_static("application/vnd.github+json"),
                );
                headers.insert(
                    HeaderName::from_static("x-github-api-version"),
                    HeaderValue::from_static("2022-11-28"),
                );
            }
            Forge::GitLab => {
                headers.insert(HeaderName::from_static("private-token"), value);
            }
        }
        // A client built from settings never follows redirects: one would carry the token
        // wherever the server points, so it is reported instead.
        let http = options
            .transport
            .client(Some(options.request_timeout))
            .map_err(|source| Error::ClientSetup { source })?;
        Ok(Transport {
            forge,
            http,
            origin: api_url.clone(),
            token,
            headers,
            options,
        })
    }

    pub(crate) fn origin(&self) -> String {
        self.origin.origin().ascii_serialization()
    }

    pub(crate) fn options(&self) -> &ForgeOptions {
        &self.options
    }

    /// Sends one request with retries. `permission` names what the call needs, for the
    /// messages of a 403 or 404.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        idempotency: Idempotency,
        permission: &'static str,
    ) -> Result<Reply> {
        // The credential rule: the token goes to the API's origin and nowhere else.
        if !same_origin(url, &self.origin) {
            return Err(Error::ForeignOrigin {
                forge: self.forge,
                url: display_url(url),
                origin: self.origin(),
            });
        }
        let mut retries = 0;
        loop {
            let attempt = self
                .attempt(&method, url, body, idempotency, permission)
                .await;
            match attempt {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Fail(error) => return Err(with_attempts(error, retries + 1)),
                Attempt::Retry { error, retry_after } => {
                    if retries >= self.options.retry.max_retries {
                        return Err(with_attempts(error, retries + 1));
                    }
                    retries += 1;
                    let delay = self.options.retry.delay(retries, retry_after);
                    tracing::warn!(
                        url = %display_url(url), retry = retries, delay_ms = delay.as_millis() as u64,
                        "retrying {} request: {error}", self.forge
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        idempotency: Idempotency,
        permission: &'static str,
    ) -> Attempt {
        let forge = self.forge;
        let shown = display_url(url);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(self.options.request_timeout)
            .headers(self.headers.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_failure(&shown, error, idempotency),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        if status.is_redirection() {
            let location = headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(|location| match url.join(location) {
                    Ok(target) => display_url(&target),
                    Err(_) => "an unreadable location".to_owned(),
                });
            return Attempt::Fail(Error::Redirected {
                forge,
                url: shown,
                status: status.as_u16(),
                location,
            });
        }
        let bytes = match read_body_bounded(response, MAX_RESPONSE_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                return Attempt::Fail(Error::UnexpectedResponse {
                    forge,
                    url: shown,
                    detail: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            Err(BodyError::Read(error)) => {
                return self.transport_failure(&shown, error, idempotency);
            }
        };
        if status.is_success() {
            let json = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                match serde_json::from_slice(&bytes) {
                    Ok(json) => json,
                    Err(error) => {
                        return Attempt::Fail(Error::UnexpectedResponse {
                            forge,
                            url: shown,
                            detail: format!("the answer is not JSON: {error}"),
                        });
                    }
                }
            };
            let next = headers
                .get_all(LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(next_link)
                .and_then(|next| url.join(&next).ok());
            return Attempt::Done(Reply { json, next });
        }
        let rate_limited = status == StatusCode::FORBIDDEN
            && (retry_after.is_some()
                || headers
                    .get("x-ratelimit-remaining")
                    .is_some_and(|value| value.as_bytes() == b"0"));
        let failure = if rate_limited {
            Failure::Status(429)
        } else {
            Failure::Status(status.as_u16())
        };
        let error = match status.as_u16() {
            401 => Error::Unauthorized { forge, url: shown },
            403 if !rate_limited => Error::Forbidden {
                forge,
                url: shown,
                permission,
            },
            404 => Error::NotFound {
                forge,
                url: shown,
                permission,
            },
            code => Error::Http {
                forge,
                url: shown,
                status: code,
                body_excerpt: excerpt(&scrub(&String::from_utf8_lossy(&bytes), &self.token)),
                attempts: 1,
            },
        };
        if RetryPolicy::is_retryable(failure, idempotency) {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Fail(error)
        }
    }

    fn transport_failure(
        &self,
        url: &str,
        error: reqwest::Error,
        idempotency: Idempotency,
    ) -> Attempt {
        let failure = if error.is_connect() {
            Failure::Connect
        } else {
            Failure::Exchange
        };
        let error = if error.is_timeout() {
            Error::Timeout {
                forge: self.forge,
                url: url.to_owned(),
                timeout: self.options.request_timeout,
                attempts: 1,
            }
        } else {
            Error::Network {
                forge: self.forge,
                url: url.to_owned(),
                attempts: 1,
                source: error.without_url(),
            }
        };
        if RetryPolicy::is_retryable(failure, idempotency) {
            Attempt::Retry {
                error,
                retry_after: None,
            }
        } else {
            Attempt::Fail(error)
        }
    }
}

fn with_attempts(mut error: Error, requests: u32) -> Error {
    match &mut error {
        Error::Http { attempts, .. }
        | Error::Network { attempts, .. }
        | Error::Timeout { attempts, .. } => *attempts = requests,
        _ => {}
    }
    error
}

/// The `rel="next"` target of one `Link` header value (RFC 8288), as GitHub and GitLab send it:
/// `<https://…&page=2>; rel="next", <…>; rel="last"`.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|param| param.trim().split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_owned())
    })
}

/// A URL for messages: without credentials, query or fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link(
                r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#
            ),
            Some("https://api.github.com/x?page=2".to_owned())
        );
        assert_eq!(
            next_link(r#"<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel=next"#),
            Some("https://a/x?page=3".to_owned())
        );
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="first""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn urls_in_messages_lose_credentials_and_queries() {
        let url = Url::parse("https://user:pass@api.example/x?access_token=secret#f").unwrap();
        assert_eq!(display_url(&url), "https://api.example/x");
    }
}
