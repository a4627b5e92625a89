//! The distribution auth handshake: parsing `WWW-Authenticate` challenges and fetching bearer
//! tokens. Credential lookup lives in `credentials.rs`; request sending in `client/transport.rs`; which
//! challenges are believed and where a login may go in `policy.rs`.

use std::time::Duration;

use base64::Engine as _;
use dagster_deploy_http_policy::{Failure, Idempotency, RetryPolicy, parse_retry_after};
use serde::Deserialize;

use crate::client::read_limited;
use crate::credentials::UserPassword;
use crate::error::{Error, Result};
use crate::policy::display_url;

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP basic auth (e.g. an htpasswd-protected registry).
    Basic,
    /// A token from `realm`, for `service`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="https://auth",service="reg",scope="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let parameters = parse_parameters(rest);
    let find = |name: &str| {
        parameters
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    Some(Challenge::Bearer {
        realm: find("realm")?,
        service: find("service"),
    })
}

/// Splits `a="x, y",b=z` into pairs, honouring quotes (scopes contain commas).
fn parse_parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut characters = text.chars().peekable();
    loop {
        while matches!(characters.peek(), Some(' ' | ',')) {
            characters.next();
        }
        let key: String = characters
            .by_ref()
            .take_while(|character| *character != '=')
            .collect();
        if key.is_empty() {
            return pairs;
        }
        let mut value = String::new();
        if characters.peek() == Some(&'"') {
            characters.next();
            while let Some(character) = characters.next() {
                match character {
                    '"' => break,
                    '\\' => value.extend(characters.next()),
                    other => value.push(other),
                }
            }
        } else {
            while let Some(character) = characters.peek().copied() {
                if character == ',' {
                    break;
                }
                value.push(character);
                characters.next();
            }
        }
        pairs.push((key.trim().to_owned(), value));
    }
}

/// The `Authorization` header value for basic auth.
pub(crate) fn basic_header(credentials: &UserPassword) -> String {
    let raw = format!("{}:{}", credentials.username, credentials.password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Largest token response read; real ones are a few kilobytes.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;

/// Where a token comes from: the realm a registry's own challenge named.
pub(crate) struct TokenRequest<'a> {
    pub(crate) registry: &'a str,
    /// The repository of the request that needed the token (for errors).
    pub(crate) repository: &'a str,
    pub(crate) realm: &'a url::Url,
    pub(crate) service: Option<&'a str>,
    pub(crate) scopes: &'a [String],
    /// The registry's login, sent to the realm (see `policy.rs` for why that is allowed).
    pub(crate) credentials: Option<&'a UserPassword>,
}

/// Fetches a bearer token from the realm, retrying transient failures as the shared policy
/// says (a token request is a read).
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    request: &TokenRequest<'_>,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<String> {
    let shown = display_url(request.realm);
    let mut url = request.realm.clone();
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = request.service {
            query.append_pair("service", service);
        }
        for scope in request.scopes {
            query.append_pair("scope", scope);
        }
    }
    let mut retries = 0;
    let response = loop {
        let mut get = http.get(url.clone()).timeout(timeout);
        if let Some(credentials) = request.credentials {
            get = get.header(reqwest::header::AUTHORIZATION, basic_header(credentials));
        }
        let outcome = get.send().await;
        let failure = match &outcome {
            Err(error) if error.is_connect() => Failure::Connect,
            Err(_) => Failure::Exchange,
            Ok(response) => Failure::Status(response.status().as_u16()),
        };
        if retry.should_retry(retries + 1, failure, Idempotency::Idempotent) {
            retries += 1;
            let asked = outcome.as_ref().ok().and_then(|response| {
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_retry_after)
            });
            tokio::time::sleep(retry.delay(retries, asked)).await;
            continue;
        }
        break outcome.map_err(|source| Error::Transport {
            registry: request.registry.to_owned(),
            url: shown.clone(),
            source: source.without_url(),
        })?;
    };
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthorized {
            registry: request.registry.to_owned(),
            repository: request.repository.to_owned(),
            url: shown,
            status: status.as_u16(),
            detail: match request.credentials {
                Some(credentials) => {
                    format!("the token service rejected user `{}`", credentials.username)
                }
                None => "the token service requires credentials and none were found".to_owned(),
            },
        });
    }
    if !status.is_success() {
        return Err(Error::Status {
            registry: request.registry.to_owned(),
            repository: request.repository.to_owned(),
            method: "GET".to_owned(),
            url: shown,
            status: status.as_u16(),
            body: String::new(),
        });
    }
    let bytes = read_limited(
        response,
        request.registry,
        request.realm,
        "token response",
        MAX_TOKEN_RESPONSE,
    )
    .await?;
    parse_token_response(&bytes).map_err(|reason| Error::Protocol { url: shown, reason })
}

/// The token in a token service's JSON answer (`token`, or the OAuth2 `access_token`).
pub(crate) fn parse_token_response(bytes: &[u8]) -> std::result::Result<String, String> {
    let body: TokenResponse = serde_json::from_slice(bytes).map_err(|error| {
        format!(
            "token response is not JSON with a `token` (line {} column {})",
            error.line(),
            error.column()
        )
    })?;
    body.token
        .or(body.access_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| "token response has neither `token` nor `access_token`".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_quoted_commas() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            challenge,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
    }

    #[test]
    fn parses_basic_and_rejects_unknown_schemes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }
}
