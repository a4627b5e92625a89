//! The distribution auth handshake: parsing `WWW-Authenticate` challenges and fetching bearer
//! tokens. Credential lookup lives in `credentials.rs`; request sending in `client.rs`.

use base64::Engine as _;
use serde::Deserialize;

use crate::credentials::UserPassword;
use crate::error::{Error, Result};

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

/// Fetches a bearer token for `scopes` from the challenge's realm.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &url::Url,
    service: Option<&str>,
    scopes: &[String],
    credentials: Option<&UserPassword>,
) -> Result<String> {
    let realm_text = realm.as_str();
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = service {
        query.push(("service", service));
    }
    for scope in scopes {
        query.push(("scope", scope));
    }
    let mut url = realm.clone();
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(&query);
    }
    let mut request = http.get(url);
    if let Some(credentials) = credentials {
        request = request.header(reqwest::header::AUTHORIZATION, basic_header(credentials));
    }
    let response = request.send().await.map_err(|source| Error::Transport {
        url: realm_text.to_owned(),
        source,
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthorized {
            registry: registry.to_owned(),
            url: realm_text.to_owned(),
            status: status.as_u16(),
            detail: match credentials {
                Some(credentials) => {
                    format!("the token service rejected user `{}`", credentials.username)
                }
                None => "the token service requires credentials and none were found".to_owned(),
            },
        });
    }
    if !status.is_success() {
        return Err(Error::Status {
            method: "GET".to_owned(),
            url: realm_text.to_owned(),
            status: status.as_u16(),
            body: String::new(),
        });
    }
    let body: TokenResponse = response.json().await.map_err(|error| Error::Protocol {
        url: realm_text.to_owned(),
        reason: format!("token response is not JSON with a `token`: {error}"),
    })?;
    body.token
        .or(body.access_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Error::Protocol {
            url: realm_text.to_owned(),
            reason: "token response has neither `token` nor `access_token`".to_owned(),
        })
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
