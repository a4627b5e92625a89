//! Sending one GraphQL operation over HTTP: headers, retries, maintenance waits and the
//! mapping of HTTP/GraphQL failures onto [`Error`] (reference-behaviour §5.2–5.3, with ref-bug 34
//! fixed).
//!
//! Two rules are written once here. **Credentials:** the API token goes only to the origin
//! (scheme, host, port) of the organization URL the client was made for, and redirects are
//! never followed (a redirect would carry the token wherever the server points, and turn the
//! POST into a GET); they are reported with the URL to configure instead. **Retries:** the
//! shared policy of `dagster-deploy-http-policy` (429, 500, 502, 503 and 504, connection
//! failures; only 429, 503 and connection failures for non-idempotent operations), plus 409
//! for idempotent operations, as the reference retries it.
//!
//! What an operation's *result* means (unions such as `PythonError`) is decided by the callers
//! in `client.rs`; this module only knows the GraphQL envelope.

use std::time::{Duration, Instant};

use dagster_deploy_http_policy::{
    BodyError, Failure, HttpTransport, RetryPolicy, parse_retry_after, read_body_bounded,
    same_origin,
};
use graphql_client::GraphQLQuery;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::Value;

use crate::endpoint::{OrgUrl, redact_url};
use crate::error::{Error, Result};
use crate::token::{ApiToken, scrub};

pub(crate) use dagster_deploy_http_policy::Idempotency;

/// The `Dagster-Cloud-Version` we announce; the server may gate behaviour on it
/// (reference-behaviour §5.2).
pub const DAGSTER_CLOUD_VERSION: &str = "1.13.29";

/// Largest response read: a workspace of thousands of locations with load errors is a few
/// megabytes; anything beyond this is not an answer to our query.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// How many characters of a response body an error keeps.
const BODY_EXCERPT_CHARS: usize = 400;

/// Default wait between maintenance polls when the server does not say.
const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// Knobs of the HTTP transport; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one HTTP request, connection to end of body (default 60 s).
    pub request_timeout: Duration,
    /// Retries after the first attempt (default 3, so 4 attempts).
    pub max_retries: u32,
    /// Backoff base: retry n waits about `base · 2^n` (default 0.5 s, so 1, 2, 4 s), with ±25 % jitter.
    pub retry_base_delay: Duration,
    /// Upper bound of one backoff or `Retry-After` wait (default 30 s).
    pub max_retry_delay: Duration,
    /// Longest total wait for a server in maintenance (default 10 min; the reference waits 16 h).
    pub maintenance_cap: Duration,
    /// Value of the `Dagster-Cloud-Version` header.
    pub version: String,
    /// The HTTP client: built from settings (proxy, root certificates, user agent, connect
    /// timeout; the default), or the caller's own, which must not follow redirects: a
    /// redirected request would carry the API token wherever the server points.
    pub transport: HttpTransport,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(60),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            maintenance_cap: Duration::from_secs(600),
            version: DAGSTER_CLOUD_VERSION.to_owned(),
            transport: HttpTransport::default(),
        }
    }
}

/// The HTTP client with the token and options; shared by all scoped clients.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// The origin of the organization URL: the only place the token goes.
    origin: url::Url,
    retry: RetryPolicy,
    token: ApiToken,
    /// The token as a (sensitive) header value, validated when the transport is built.
    token_header: HeaderValue,
    options: ClientOptions,
}

/// What one HTTP exchange led to.
pub(crate) enum Attempt {
    Data(Value),
    Retry {
        error: Error,
        retry_after: Option<Duration>,
    },
    Maintenance {
        message: String,
        retry_interval: Duration,
        timeout: Option<Duration>,
    },
    Fail(Error),
}

impl Transport {
    /// Validates the token and builds the HTTP client for `org_url`; no request is sent.
    pub(crate) fn new(token: ApiToken, org_url: &OrgUrl, options: ClientOptions) -> Result<Self> {
        let token_header = token_header(&token)?;
        let origin = url::Url::parse(org_url.as_str()).map_err(|error| Error::InvalidUrl {
            url: redact_url(org_url.as_str()),
            reason: error.to_string(),
        })?;
        // A client built from settings never follows redirects: they would forward the token
        // header to wherever the server points, possibly over plain HTTP, and turn the POST into
        // a GET; a redirect is reported instead.
        let http = options
            .transport
            .client(Some(options.request_timeout))
            .map_err(|source| Error::ClientSetup { source })?;
        Ok(Transport {
            http,
            origin,
            retry: RetryPolicy {
                max_retries: options.max_retries,
                base_delay: options.retry_base_delay,
                max_delay: options.max_retry_delay,
            },
            token,
            token_header,
            options,
        })
    }

    pub(crate) fn token(&self) -> &ApiToken {
        &self.token
    }

    /// Scrubs the token out of server-provided text.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(text, &self.token)
    }

    fn headers(&self, deployment: Option<&str>) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("dagster-cloud-api-token"),
            self.token_header.clone(),
        );
        headers.insert(
            HeaderName::from_static("dagster-cloud-version"),
            HeaderValue::from_str(&self.options.version)
                .unwrap_or_else(|_| HeaderValue::from_static(DAGSTER_CLOUD_VERSION)),
        );
        headers.insert(
            HeaderName::from_static("dagster-cloud-scope"),
            HeaderValue::from_static("deployment"),
        );
        if let Some(deployment) = deployment {
            let value = HeaderValue::from_str(deployment).map_err(|_| Error::InvalidUrl {
                url: deployment.to_owned(),
                reason: "the deployment name contains characters not allowed in an HTTP header"
                    .into(),
            })?;
            headers.insert(HeaderName::from_static("dagster-cloud-deployment"), value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(headers)
    }

    /// Sends `Q` to `url` and returns its `data`, retrying as reference-behaviour §5.3.1 describes
    /// (fixed).
    pub(crate) async fn execute<Q: GraphQLQuery>(
        &self,
        url: &str,
        deployment: Option<&str>,
        variables: Q::Variables,
        idempotency: Idempotency,
    ) -> Result<Q::ResponseData> {
        let query = Q::build_query(variables);
        let operation = query.operation_name;
        let body = serde_json::to_vec(&query).map_err(|error| Error::UnexpectedResponse {
            url: url.to_owned(),
            operation,
            detail: format!("could not encode the request: {error}"),
        })?;
        let data = self
            .send_with_retries(url, deployment, operation, body, idempotency)
            .await?;
        serde_json::from_value(data).map_err(|error| Error::UnexpectedResponse {
            url: url.to_owned(),
            operation,
            detail: self.scrub(&format!("the `data` does not match the query: {error}")),
        })
    }

    async fn send_with_retries(
        &self,
        url: &str,
        deployment: Option<&str>,
        operation: &'static str,
        body: Vec<u8>,
        idempotency: Idempotency,
    ) -> Result<Value> {
        let headers = self.headers(deployment)?;
        let started = Instant::now();
        let mut retries = 0u32;
        let mut requests = 0u32;
        loop {
            requests += 1;
            let attempt = self
                .attempt(url, &headers, operation, body.clone(), idempotency)
                .await;
            match attempt {
                Attempt::Data(data) => return Ok(data),
                Attempt::Fail(error) => return Err(with_attempts(error, requests)),
                Attempt::Retry { error, retry_after } => {
                    if retries >= self.retry.max_retries {
                        return Err(with_attempts(error, requests));
                    }
                    retries += 1;
                    let delay = self.retry.delay(retries, retry_after);
                    tracing::warn!(
                        %url, operation, retry = retries, delay_ms = delay.as_millis() as u64,
                        "retrying Dagster+ request: {error}"
                    );
                    tokio::time::sleep(delay).await;
                }
                Attempt::Maintenance {
                    message,
                    retry_interval,
                    timeout,
                } => {
                    let limit = timeout.map_or(self.options.maintenance_cap, |timeout| {
                        timeout.min(self.options.maintenance_cap)
                    });
                    let waited = started.elapsed();
                    if waited >= limit {
                        return Err(Error::Maintenance {
                            url: url.to_owned(),
                            message,
                            waited,
                        });
                    }
                    let delay = retry_interval.min(limit - waited);
                    tracing::warn!(%url, operation, "Dagster+ is in maintenance: {message}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &HeaderMap,
        operation: &'static str,
        body: Vec<u8>,
        idempotency: Idempotency,
    ) -> Attempt {
        // The credential rule: the token goes to the organization's origin and nowhere else.
        let allowed = url::Url::parse(url).is_ok_and(|target| same_origin(&target, &self.origin));
        if !allowed {
            return Attempt::Fail(Error::ForeignOrigin {
                url: redact_url(url),
                origin: self.origin.origin().ascii_serialization(),
            });
        }
        let response = match self
            .http
            .post(url)
            .timeout(self.options.request_timeout)
            .headers(headers.clone())
            .body(body)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return self.transport_failure(url, error, idempotency),
        };
        // A caller's client that followed a redirect itself: report it as the redirect it was.
        if response.url().as_str() != url
            && url::Url::parse(url).is_ok_and(|sent| &sent != response.url())
        {
            return Attempt::Fail(Error::Redirected {
                url: url.to_owned(),
                status: response.status().as_u16(),
                location: Some(redact_url(response.url().as_str())),
            });
        }
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(redact_url);
            return Attempt::Fail(Error::Redirected {
                url: url.to_owned(),
                status: status.as_u16(),
                location,
            });
        }
        let bytes = match read_body_bounded(response, MAX_RESPONSE_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return Attempt::Fail(self.too_large(url, operation)),
            Err(BodyError::Read(error)) => {
                return self.transport_failure(url, error, idempotency);
            }
        };
        self.interpret(url, operation, status, retry_after, &bytes, idempotency)
    }

    fn too_large(&self, url: &str, operation: &'static str) -> Error {
        Error::UnexpectedResponse {
            url: url.to_owned(),
            operation,
            detail: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
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
        let retryable = RetryPolicy::is_retryable(failure, idempotency);
        let error = if error.is_timeout() {
            Error::Timeout {
                url: url.to_owned(),
                timeout: self.options.request_timeout,
                attempts: 1,
            }
        } else {
            Error::Network {
                url: url.to_owned(),
                attempts: 1,
                source: error.without_url(),
            }
        };
        if retryable {
            Attempt::Retry {
                error,
                retry_after: None,
            }
        } else {
            Attempt::Fail(error)
        }
    }

    pub(crate) fn interpret(
        &self,
        url: &str,
        operation: &'static str,
        status: StatusCode,
        retry_after: Option<Duration>,
        bytes: &[u8],
        idempotency: Idempotency,
    ) -> Attempt {
        let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let object = json.as_object();
        let field = |name: &str| object.and_then(|object| object.get(name));

        if let Some(maintenance) = field("maintenance") {
            let seconds = |key: &str| {
                maintenance
                    .get(key)
                    .and_then(Value::as_f64)
                    .filter(|value| value.is_finite() && *value >= 0.0)
                    .map(Duration::from_secs_f64)
            };
            return Attempt::Maintenance {
                message: self.scrub(
                    maintenance
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message"),
                ),
                retry_interval: seconds("retry_interval").unwrap_or(DEFAULT_MAINTENANCE_INTERVAL),
                timeout: seconds("timeout"),
            };
        }

        let error_messages = field("errors").and_then(Value::as_array).map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), str::to_owned);
                    self.scrub(&message)
                })
                .collect::<Vec<_>>()
        });

        // A GraphQL error that says the token was refused (by its code, or by the message the
        // server uses) is an authentication failure, not a generic GraphQL error.
        let unauthorized_error = field("errors")
            .and_then(Value::as_array)
            .is_some_and(|errors| {
                errors.iter().any(|error| {
                    let code = error
                        .pointer("/extensions/code")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    matches!(code, "UNAUTHORIZED" | "UNAUTHENTICATED" | "FORBIDDEN")
                        || message.to_ascii_lowercase().starts_with("unauthorized")
                })
            });
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || unauthorized_error
        {
            return Attempt::Fail(Error::Unauthorized {
                url: url.to_owned(),
                message: error_messages
                    .and_then(|messages| messages.into_iter().next())
                    .or_else(|| Some(format!("HTTP {}", status.as_u16()))),
            });
        }

        let http_error = || Error::Http {
            url: url.to_owned(),
            status: status.as_u16(),
            body_excerpt: self.excerpt(bytes),
            attempts: 1,
        };
        let code = status.as_u16();
        let retryable = RetryPolicy::is_retryable(Failure::Status(code), idempotency)
            || (code == 409 && idempotency == Idempotency::Idempotent);
        if retryable {
            // Unlike the reference, a GraphQL `errors` body on these statuses is retried too.
            return Attempt::Retry {
                error: http_error(),
                retry_after,
            };
        }
        if let Some(messages) = error_messages.filter(|messages| !messages.is_empty()) {
            return Attempt::Fail(Error::GraphQl {
                url: url.to_owned(),
                operation,
                messages,
            });
        }
        if !status.is_success() {
            return Attempt::Fail(http_error());
        }
        match field("data") {
            Some(data) if !data.is_null() => Attempt::Data(data.clone()),
            _ => Attempt::Fail(Error::UnexpectedResponse {
                url: url.to_owned(),
                operation,
                detail: format!(
                    "HTTP {} without GraphQL `data`: {}",
                    status.as_u16(),
                    self.excerpt(bytes)
                ),
            }),
        }
    }

    fn excerpt(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        // Scrub before cutting, so that a token straddling the cut cannot survive in part.
        let scrubbed = self.scrub(text.trim());
        let mut excerpt: String = scrubbed.chars().take(BODY_EXCERPT_CHARS).collect();
        if scrubbed.chars().count() > BODY_EXCERPT_CHARS {
            excerpt.push('…');
        }
        if excerpt.is_empty() {
            excerpt.push_str("(empty body)");
        }
        excerpt
    }
}

/// The token as a sensitive header value, or [`Error::InvalidToken`] saying what is wrong
/// (by position and kind only: the reason never contains any part of the token).
fn token_header(token: &ApiToken) -> Result<HeaderValue> {
    let secret = token.expose();
    let invalid = |reason: String| Error::InvalidToken { reason };
    if secret.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    // Tokens are printable ASCII. HTTP would also accept bytes >= 0x80, but a non-ASCII
    // character is always a copy-and-paste accident (e.g. a typographic quote).
    if let Some((index, character)) = secret
        .chars()
        .enumerate()
        .find(|(_, character)| !(character.is_ascii_graphic() || *character == ' '))
    {
        let position = index + 1;
        let kind = match character {
            '\n' | '\r' => "a line break".to_owned(),
            '\t' => "a tab".to_owned(),
            character if character.is_ascii_control() => {
                format!("a control character (U+{:04X})", u32::from(character))
            }
            _ => "a non-ASCII character".to_owned(),
        };
        return Err(invalid(format!(
            "it contains {kind} at character {position} of {}, which cannot be sent in an HTTP header",
            secret.chars().count()
        )));
    }
    let mut value = HeaderValue::from_str(secret)
        .map_err(|_| invalid("it cannot be sent in an HTTP header".into()))?;
    value.set_sensitive(true);
    Ok(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgUrl {
        OrgUrl::parse("https://acme.dagster.cloud").unwrap()
    }

    #[tokio::test]
    async fn the_token_is_never_sent_outside_the_organization_origin() {
        let transport = Transport::new(
            ApiToken::new("t0ken-value"),
            &org(),
            ClientOptions::default(),
        )
        .unwrap();
        let headers = transport.headers(None).unwrap();
        for url in [
            "https://evil.example/graphql",
            "http://acme.dagster.cloud/graphql",
            "https://acme.dagster.cloud:8443/graphql",
            "https://acme.dagster.cloud.evil.example/graphql",
            "not a url",
        ] {
            let attempt = transport
                .attempt(url, &headers, "Op", Vec::new(), Idempotency::Idempotent)
                .await;
            assert!(
                matches!(attempt, Attempt::Fail(Error::ForeignOrigin { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn tokens_that_cannot_be_sent_are_rejected_without_showing_them() {
        let cases = [
            ("user:abc\ndef0123", "a line break at character 9 of 16"),
            (
                "user:abc\u{7}def0123",
                "a control character (U+0007) at character 9",
            ),
            (
                "user:abc\u{201c}def0123",
                "a non-ASCII character at character 9",
            ),
            ("user:abc\tdef0123", "a tab at character 9"),
            ("\n \n", "it is empty"),
        ];
        for (value, expected) in cases {
            let error = Transport::new(ApiToken::new(value), &org(), ClientOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{value:?} was accepted"));
            let text = format!("{error} {error:?}");
            assert!(matches!(error, Error::InvalidToken { .. }), "{text}");
            assert!(text.contains(expected), "{text}");
            assert!(
                error
                    .help()
                    .is_some_and(|help| help.contains("copy the token"))
            );
            assert!(!text.contains("abc") && !text.contains("def0123"), "{text}");
            assert!(!error.is_unauthorized());
        }
    }

    #[test]
    fn the_token_header_is_trimmed_and_sensitive() {
        let transport = Transport::new(
            ApiToken::new("user:abc def\r\n"),
            &org(),
            ClientOptions::default(),
        )
        .unwrap();
        let headers = transport.headers(None).unwrap();
        let value = &headers["dagster-cloud-api-token"];
        assert_eq!(value.as_bytes(), b"user:abc def");
        assert!(value.is_sensitive());
    }

    #[test]
    fn excerpt_is_scrubbed_and_shortened() {
        let transport = Transport::new(
            ApiToken::new("t0ken-value"),
            &org(),
            ClientOptions::default(),
        )
        .unwrap();
        let body = format!("bad t0ken-value {}", "x".repeat(1000));
        let excerpt = transport.excerpt(body.as_bytes());
        assert!(excerpt.starts_with("bad **** x"), "{excerpt}");
        assert!(!excerpt.contains("t0ken-value"));
        assert_eq!(excerpt.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert_eq!(transport.excerpt(b""), "(empty body)");
    }
}
