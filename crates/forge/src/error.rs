//! The one error type of the crate. Messages are plain, name the URL (never with credentials
//! or a query) and never repeat their `source()`; what to do is in [`Error::help`], worded for
//! any program (no flags, no environment variables).

use std::time::Duration;

use crate::client::Forge;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to GitHub or GitLab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API URL is not a URL, or cannot have paths appended.
    #[error("invalid {forge} API URL {url:?}: {reason}")]
    InvalidUrl {
        /// The forge.
        forge: Forge,
        /// The URL as given, without credentials.
        url: String,
        /// Why it is unusable.
        reason: String,
    },

    /// The API URL is plain HTTP to a host that is not loopback: the token would travel in
    /// clear text.
    #[error("refusing to send the {forge} token over plain HTTP to {url}")]
    InsecureUrl {
        /// The forge.
        forge: Forge,
        /// The URL, without credentials.
        url: String,
    },

    /// The API URL carries a user name or password.
    #[error("the {forge} API URL {url} contains credentials")]
    UrlCredentials {
        /// The forge.
        forge: Forge,
        /// The URL with the credentials removed.
        url: String,
    },

    /// The token contains characters that cannot go into an HTTP header.
    #[error("the {forge} token contains characters that are not allowed in an HTTP header")]
    InvalidToken {
        /// The forge.
        forge: Forge,
    },

    /// A repository, pull-request or commit name that cannot be part of an API path.
    #[error("invalid {what} {value:?} for the {forge} API")]
    InvalidTarget {
        /// The forge.
        forge: Forge,
        /// What the value names (`repository`, `commit`).
        what: &'static str,
        /// The value.
        value: String,
    },

    /// A request would have gone to another origin than the API's (a pagination link to
    /// another host, say); it was not sent, so the token stayed home.
    #[error("refusing to send the {forge} token to {url}: it is not on the API's origin {origin}")]
    ForeignOrigin {
        /// The forge.
        forge: Forge,
        /// The refused URL, without credentials or query.
        url: String,
        /// The API's origin.
        origin: String,
    },

    /// The server answered with a redirect, which is not followed (the token would go along).
    #[error(
        "{forge} at {url} redirected the request (HTTP {status}){}; redirects are not followed, so that the token goes nowhere else",
        location.as_deref().map(|location| format!(" to {location}")).unwrap_or_default()
    )]
    Redirected {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// The redirect status.
        status: u16,
        /// Where it pointed, without credentials or query.
        location: Option<String>,
    },

    /// The server rejected the token (HTTP 401).
    #[error("{forge} at {url} rejected the token (HTTP 401)")]
    Unauthorized {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
    },

    /// The token is valid but may not do this (HTTP 403).
    #[error("{forge} at {url} refused the request (HTTP 403): the token lacks {permission}")]
    Forbidden {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// The permission the call needs, as the forge names it.
        permission: &'static str,
    },

    /// The repository, pull request or comment was not found (HTTP 404). GitHub also answers
    /// 404 when the token may not see a private repository.
    #[error(
        "{forge} at {url} answered HTTP 404: it does not exist, or the token lacks {permission} to see it"
    )]
    NotFound {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// The permission the call needs, as the forge names it.
        permission: &'static str,
    },

    /// The server answered with another HTTP error status.
    #[error(
        "{forge} at {url} answered HTTP {status} (after {attempts} attempt(s)): {body_excerpt}"
    )]
    Http {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, scrubbed of the token.
        body_excerpt: String,
        /// How many requests were made.
        attempts: u32,
    },

    /// The request could not be sent or its answer not read.
    #[error("could not reach {forge} at {url} (after {attempts} attempt(s))")]
    Network {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// How many requests were made.
        attempts: u32,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The request timed out.
    #[error("{forge} at {url} did not answer within {timeout:?} (after {attempts} attempt(s))")]
    Timeout {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// The per-request timeout.
        timeout: Duration,
        /// How many requests were made.
        attempts: u32,
    },

    /// The answer did not have the expected shape.
    #[error("unexpected answer from {forge} at {url}: {detail}")]
    UnexpectedResponse {
        /// The forge.
        forge: Forge,
        /// The requested URL.
        url: String,
        /// What was wrong.
        detail: String,
    },

    /// The pull request has more pages of comments than we read.
    #[error("{forge} at {url} listed more than {pages} pages of comments; stopped reading")]
    TooManyPages {
        /// The forge.
        forge: Forge,
        /// The first page's URL.
        url: String,
        /// The pages read.
        pages: u32,
    },

    /// The HTTP client could not be constructed.
    #[error("could not set up the HTTP client")]
    ClientSetup {
        /// What the transport settings got wrong.
        #[source]
        source: dagster_deploy_http_policy::Error,
    },
}

impl Error {
    /// Whether a setting given to the client is unusable (URL, token, repository, commit, a
    /// foreign origin): nothing was sent.
    pub fn is_invalid_setting(&self) -> bool {
        matches!(
            self,
            Error::InvalidUrl { .. }
                | Error::InsecureUrl { .. }
                | Error::UrlCredentials { .. }
                | Error::InvalidToken { .. }
                | Error::InvalidTarget { .. }
                | Error::ForeignOrigin { .. }
        )
    }

    /// Whether the token was rejected (401) or lacks a permission (403, or a 404 that may
    /// mean the token cannot see the repository).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Error::Unauthorized { .. } | Error::Forbidden { .. } | Error::NotFound { .. }
        )
    }

    /// Whether a request timed out (after its retries).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether trying again later might succeed (network, timeout, 429 and 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { .. } | Error::Timeout { .. } => true,
            Error::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The HTTP status the server answered with, if it answered with an error or a redirect.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } | Error::Redirected { status, .. } => Some(*status),
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// The permission the refused call needs, for a 403 or 404.
    pub fn permission(&self) -> Option<&'static str> {
        match self {
            Error::Forbidden { permission, .. } | Error::NotFound { permission, .. } => {
                Some(permission)
            }
            _ => None,
        }
    }

    /// The URL the error is about, if any; never holds credentials.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::InvalidUrl { url, .. }
            | Error::InsecureUrl { url, .. }
            | Error::UrlCredentials { url, .. }
            | Error::ForeignOrigin { url, .. }
            | Error::Redirected { url, .. }
            | Error::Unauthorized { url, .. }
            | Error::Forbidden { url, .. }
            | Error::NotFound { url, .. }
            | Error::Http { url, .. }
            | Error::Network { url, .. }
            | Error::Timeout { url, .. }
            | Error::UnexpectedResponse { url, .. }
            | Error::TooManyPages { url, .. } => Some(url),
            Error::InvalidToken { .. }
            | Error::InvalidTarget { .. }
            | Error::ClientSetup { .. } => None,
        }
    }

    /// What to do about the error, if there is more to say than the message.
    ///
    /// ```
    /// use dagster_deploy_forge::{ForgeClient, ForgeOptions, ForgeToken};
    ///
    /// let error = ForgeClient::gitlab("ftp://gitlab.example/api/v4", ForgeToken::new("t"), ForgeOptions::default())
    ///     .unwrap_err();
    /// assert!(error.is_invalid_setting());
    /// assert!(error.help().unwrap().contains("https://"));
    /// ```
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            Error::InvalidUrl { .. } | Error::InsecureUrl { .. } => {
                "use the API's https:// URL (plain http is only allowed for 127.0.0.1, ::1 and localhost), such as https://api.github.com or https://gitlab.com/api/v4"
            }
            Error::UrlCredentials { .. } => {
                "remove the user name and password from the URL, and give the token on its own"
            }
            Error::InvalidToken { .. } => "copy the token again, without extra characters",
            Error::Unauthorized { .. } => {
                "the token is expired, revoked or not a token of this server"
            }
            Error::Forbidden { .. } | Error::NotFound { .. } => {
                "give the token the permission named above, or use a token that has it"
            }
            Error::Redirected { .. } => "if the new address is right, use it as the API URL",
            Error::Network { .. } => "check the network, the proxy settings and the API URL",
            Error::Timeout { .. } => "try again later",
            Error::InvalidTarget { .. }
            | Error::ForeignOrigin { .. }
            | Error::Http { .. }
            | Error::UnexpectedResponse { .. }
            | Error::TooManyPages { .. } => return None,
            Error::ClientSetup { source } => return source.help(),
        })
    }
}
