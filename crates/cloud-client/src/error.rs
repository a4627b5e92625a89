//! The crate's single error type and its `Result` alias.
//!
//! Errors are data: the message (`Display`) names the URL or value involved and never repeats
//! the error's `source()`; what to do is a separate [`Error::help`]; the endpoint, HTTP status
//! and GraphQL operation are accessors, and predicates such as [`Error::is_timeout`] say what
//! class of failure it is. Nothing here names an environment variable, a flag or a command of
//! the program that embeds the crate: that advice is the caller's.
//!
//! No variant ever carries the API token: server-provided text is scrubbed before it is stored
//! (see `token.rs`), and the token itself only exists inside [`crate::ApiToken`].

use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to the Dagster+ API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The organization name cannot be used in a URL.
    #[error("invalid organization name {organization:?}")]
    InvalidOrganization {
        /// The rejected name.
        organization: String,
    },

    /// The region cannot be used in a URL.
    #[error("invalid region {region:?}")]
    InvalidRegion {
        /// The rejected region.
        region: String,
    },

    /// A deployment name cannot be used in a URL path.
    #[error("invalid deployment name {name:?}")]
    InvalidDeployment {
        /// The rejected name (at most its first 80 characters).
        name: String,
    },

    /// The Dagster+ URL cannot be parsed or used.
    #[error("invalid Dagster+ URL {url:?}: {reason}")]
    InvalidUrl {
        /// The rejected URL without user name, password, query or fragment (never a secret).
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The Dagster+ URL holds a user name or password: the API token is given on its own.
    #[error("the Dagster+ URL {url:?} holds credentials, which are not supported")]
    UrlCredentials {
        /// The URL without user name, password, query or fragment.
        url: String,
    },

    /// The API token cannot be sent (empty, or characters not allowed in an HTTP header).
    #[error("invalid Dagster+ API token: {reason}")]
    InvalidToken {
        /// What is wrong with it; never contains the token or any part of it.
        reason: String,
    },

    /// Refused to send the API token over plain HTTP to a host that is not loopback.
    #[error("refusing to send the API token over plain HTTP to {url}")]
    InsecureUrl {
        /// The rejected URL.
        url: String,
    },

    /// A request was about to go to another origin than the organization URL's; the token only
    /// goes to that one origin.
    #[error(
        "refusing to send the API token to {url}: it is not on the organization URL's origin {origin}"
    )]
    ForeignOrigin {
        /// The refused URL, without credentials or query.
        url: String,
        /// The organization URL's origin.
        origin: String,
    },

    /// The server answered with a redirect, which is not followed (the token would go along).
    #[error(
        "Dagster+ at {url} redirected the request (HTTP {status}){}; redirects are not followed, so that the API token goes nowhere else",
        location.as_deref().map(|location| format!(" to {location}")).unwrap_or_default()
    )]
    Redirected {
        /// The endpoint.
        url: String,
        /// The redirect status.
        status: u16,
        /// Where it pointed, without credentials or query.
        location: Option<String>,
    },

    /// The HTTP client could not be constructed.
    #[error("could not set up the HTTP client")]
    ClientSetup {
        /// The underlying error.
        #[source]
        source: dagster_deploy_http_policy::Error,
    },

    /// The server rejected the API token (HTTP 401/403 or an `UnauthorizedError`).
    #[error(
        "Dagster+ at {url} rejected the API token{}",
        message.as_deref().map(|message| format!(" ({message})")).unwrap_or_default()
    )]
    Unauthorized {
        /// The endpoint that rejected the token.
        url: String,
        /// The server's message, if it sent one.
        message: Option<String>,
    },

    /// The server answered with a `PythonError`.
    #[error(
        "Dagster+ at {url} reported an error in {operation}: {message}{}",
        render_stack(stack)
    )]
    Server {
        /// The endpoint.
        url: String,
        /// The GraphQL operation name.
        operation: &'static str,
        /// The Python exception message.
        message: String,
        /// The Python stack trace lines (may be empty).
        stack: Vec<String>,
    },

    /// The server rejected a location document.
    #[error(
        "Dagster+ at {url} rejected the location document(s) in {operation}:\n{}",
        errors.iter().map(|error| format!("  - {error}")).collect::<Vec<_>>().join("\n")
    )]
    InvalidLocation {
        /// The endpoint.
        url: String,
        /// The GraphQL operation name.
        operation: &'static str,
        /// The server's list of validation errors.
        errors: Vec<String>,
    },

    /// The response carried GraphQL `errors` (for example a field the server does not know).
    #[error("Dagster+ at {url} returned GraphQL errors for {operation}: {}", messages.join("; "))]
    GraphQl {
        /// The endpoint.
        url: String,
        /// The GraphQL operation name.
        operation: &'static str,
        /// The error messages.
        messages: Vec<String>,
    },

    /// The server answered with an HTTP error status.
    #[error(
        "Dagster+ at {url} answered HTTP {status} (after {attempts} attempt(s)): {body_excerpt}"
    )]
    Http {
        /// The endpoint.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, scrubbed of the token.
        body_excerpt: String,
        /// How many requests were made.
        attempts: u32,
    },

    /// The request could not be sent or the response could not be read.
    #[error("could not reach Dagster+ at {url} (after {attempts} attempt(s))")]
    Network {
        /// The endpoint.
        url: String,
        /// How many requests were made.
        attempts: u32,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The request timed out.
    #[error("Dagster+ at {url} did not answer within {timeout:?} (after {attempts} attempt(s))")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The per-request timeout.
        timeout: Duration,
        /// How many requests were made.
        attempts: u32,
    },

    /// Dagster+ stayed in maintenance longer than we are willing to wait.
    #[error("Dagster+ at {url} is in maintenance ({message}); gave up after {waited:?}")]
    Maintenance {
        /// The endpoint.
        url: String,
        /// The server's maintenance message.
        message: String,
        /// How long we waited.
        waited: Duration,
    },

    /// The response did not have the expected shape.
    #[error("unexpected response from Dagster+ at {url} for {operation}: {detail}")]
    UnexpectedResponse {
        /// The endpoint.
        url: String,
        /// The GraphQL operation name.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },

    /// No deployment has the given name.
    #[error("Dagster+ has no deployment named {name:?}")]
    DeploymentNotFound {
        /// The requested name.
        name: String,
    },

    /// Refused to delete a deployment that is not a branch deployment.
    #[error(
        "refusing to delete deployment {name:?}: it is a {deployment_type} deployment, and only branch deployments may be deleted"
    )]
    NotBranchDeployment {
        /// The deployment name.
        name: String,
        /// Its type as reported by the server.
        deployment_type: String,
    },
}

impl Error {
    /// Whether retrying the whole operation later might succeed (network, timeout, 5xx, 409,
    /// 429, maintenance).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { .. } | Error::Timeout { .. } | Error::Maintenance { .. } => true,
            Error::Http { status, .. } => *status == 409 || *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Whether a setting given to the client is unusable (organization, region, URL, deployment
    /// name, plain HTTP to a remote host, a malformed proxy URL or root certificate): nothing was
    /// sent.
    pub fn is_invalid_setting(&self) -> bool {
        matches!(
            self,
            Error::InvalidOrganization { .. }
                | Error::InvalidRegion { .. }
                | Error::InvalidUrl { .. }
                | Error::UrlCredentials { .. }
                | Error::InvalidDeployment { .. }
                | Error::InsecureUrl { .. }
                | Error::ForeignOrigin { .. }
        ) || matches!(self, Error::ClientSetup { source } if source.is_invalid_setting())
    }

    /// Whether a request timed out (after its retries).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether the server rejected the API token.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// Whether the request could not be sent or its answer not read (connection refused, DNS,
    /// TLS, a broken connection), after its retries.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Network { .. })
    }

    /// Whether Dagster+ answered with something other than the result of the call: an error
    /// it reported, GraphQL errors, an HTTP error status, a rejected document, a redirect, an
    /// unexpected shape.
    pub fn is_server_response(&self) -> bool {
        matches!(
            self,
            Error::Server { .. }
                | Error::InvalidLocation { .. }
                | Error::GraphQl { .. }
                | Error::Http { .. }
                | Error::Redirected { .. }
                | Error::UnexpectedResponse { .. }
        )
    }

    /// The endpoint (or refused URL) the error is about, if any; never holds credentials or
    /// a query.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::InvalidUrl { url, .. }
            | Error::UrlCredentials { url }
            | Error::InsecureUrl { url }
            | Error::ForeignOrigin { url, .. }
            | Error::Redirected { url, .. }
            | Error::Unauthorized { url, .. }
            | Error::Server { url, .. }
            | Error::InvalidLocation { url, .. }
            | Error::GraphQl { url, .. }
            | Error::Http { url, .. }
            | Error::Network { url, .. }
            | Error::Timeout { url, .. }
            | Error::Maintenance { url, .. }
            | Error::UnexpectedResponse { url, .. } => Some(url),
            Error::InvalidOrganization { .. }
            | Error::InvalidRegion { .. }
            | Error::InvalidDeployment { .. }
            | Error::InvalidToken { .. }
            | Error::ClientSetup { .. }
            | Error::DeploymentNotFound { .. }
            | Error::NotBranchDeployment { .. } => None,
        }
    }

    /// The HTTP status the server answered with, for an HTTP error or a redirect.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } | Error::Redirected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The GraphQL operation that failed, when the server answered it with an error.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Error::Server { operation, .. }
            | Error::InvalidLocation { operation, .. }
            | Error::GraphQl { operation, .. }
            | Error::UnexpectedResponse { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// How many requests were made before giving up, for the errors that retry.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Http { attempts, .. }
            | Error::Network { attempts, .. }
            | Error::Timeout { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// What to do about the error, if there is more to say than the message.
    ///
    /// ```
    /// use dagster_deploy_cloud_client::OrgUrl;
    ///
    /// let error = OrgUrl::from_organization("not an org!", None).unwrap_err();
    /// assert_eq!(error.to_string(), r#"invalid organization name "not an org!""#);
    /// assert!(error.is_invalid_setting());
    /// assert!(error.help().unwrap().starts_with("use the short name from the Dagster+ URL"));
    /// ```
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            Error::InvalidOrganization { .. } => {
                "use the short name from the Dagster+ URL (letters, digits and '-'), e.g. `acme` for https://acme.dagster.cloud"
            }
            Error::InvalidRegion { .. } => "use a short region name such as `eu`",
            Error::InvalidDeployment { .. } => {
                "a deployment name is letters, digits, '-', '_' and '.', as Dagster+ shows it"
            }
            Error::InvalidUrl { .. } => {
                "use an organization URL such as https://acme.dagster.cloud or https://dagster.cloud/acme"
            }
            Error::UrlCredentials { .. } => {
                "remove the user name and password from the URL, and give the API token on its own"
            }
            Error::InvalidToken { .. } => "copy the token again, without extra characters",
            Error::InsecureUrl { .. } => {
                "use an https:// URL (plain http is only allowed for 127.0.0.1, ::1 and localhost)"
            }
            Error::Redirected { .. } => {
                "if the new address is right, use it as the organization URL"
            }
            Error::Unauthorized { .. } => {
                "check that the token is valid and was created for this organization, and that the organization URL is right"
            }
            Error::InvalidLocation { .. } => {
                "fix these location entries in the deploy configuration, then deploy again"
            }
            Error::Network { .. } => {
                "check the network, the proxy settings and the organization URL"
            }
            Error::Timeout { .. } | Error::Maintenance { .. } => "try again later",
            Error::DeploymentNotFound { .. } => "check the deployment name",
            Error::ClientSetup { source } => return source.help(),
            Error::ForeignOrigin { .. }
            | Error::Server { .. }
            | Error::GraphQl { .. }
            | Error::Http { .. }
            | Error::UnexpectedResponse { .. }
            | Error::NotBranchDeployment { .. } => return None,
        })
    }
}

fn render_stack(stack: &[String]) -> String {
    if stack.is_empty() {
        String::new()
    } else {
        format!("\n{}", stack.concat().trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_display_quotes_the_server_and_help_names_token_and_organization() {
        let error = Error::Unauthorized {
            url: "https://acme.dagster.cloud/graphql".into(),
            message: Some("bad token".into()),
        };
        let text = error.to_string();
        assert_eq!(
            text,
            "Dagster+ at https://acme.dagster.cloud/graphql rejected the API token (bad token)"
        );
        let help = error.help().unwrap_or_default();
        assert!(help.contains("token is valid"), "{help}");
        assert!(help.contains("organization"), "{help}");
        assert_eq!(error.url(), Some("https://acme.dagster.cloud/graphql"));
        assert!(error.is_unauthorized());
        assert!(!error.is_retryable());
    }

    #[test]
    fn server_error_display_includes_message_and_stack() {
        let error = Error::Server {
            url: "u".into(),
            operation: "CliDeployLocations",
            message: "boom".into(),
            stack: vec![
                "  File a.py, line 1\n".into(),
                "  File b.py, line 2\n".into(),
            ],
        };
        insta::assert_snapshot!(error.to_string(), @r"
        Dagster+ at u reported an error in CliDeployLocations: boom
          File a.py, line 1
          File b.py, line 2
        ");
    }

    #[test]
    fn invalid_location_display_lists_every_error() {
        let error = Error::InvalidLocation {
            url: "u".into(),
            operation: "CliDeployLocations",
            errors: vec!["missing image".into(), "bad code_source".into()],
        };
        insta::assert_snapshot!(error.to_string(), @r"
        Dagster+ at u rejected the location document(s) in CliDeployLocations:
          - missing image
          - bad code_source
        ");
        assert_eq!(error.operation(), Some("CliDeployLocations"));
    }

    #[test]
    fn retryable_predicate_separates_transient_from_permanent_errors() {
        let http = |status| Error::Http {
            url: "u".into(),
            status,
            body_excerpt: String::new(),
            attempts: 1,
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(
            Error::Timeout {
                url: "u".into(),
                timeout: Duration::from_secs(1),
                attempts: 4
            }
            .is_retryable()
        );
        assert!(
            !Error::GraphQl {
                url: "u".into(),
                operation: "X",
                messages: vec![]
            }
            .is_retryable()
        );
    }
}
