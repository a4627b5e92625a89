//! The registry client a stage pushes with, made from plain settings: which login, which
//! registries may be reached over plain HTTP, how long a request may take, and who gets byte
//! progress. One client per stage means one credential lookup and one token per registry.

use std::time::Duration;

use dagster_deploy_registry::{
    ClientOptions, Credentials, HttpTransport, ProgressCallback, RegistryClient, Secret,
};

use crate::error::Result;
use crate::progress::{Event, Progress};

/// Where registry logins come from.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum RegistryLogin {
    /// Docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`) and its credential helpers.
    #[default]
    DockerConfig,
    /// A username and password for the registries pushed to, only: they are never sent to
    /// another registry (a base image's, say), which gets Docker's `config.json` instead.
    Destinations {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// Exactly these credentials.
    Credentials(Credentials),
}

/// How a stage reaches registries.
#[derive(Clone, Default)]
pub struct RegistrySettings {
    /// Where logins come from.
    pub login: RegistryLogin,
    /// Registries (`host[:port]`) reached over plain HTTP; loopback registries always may.
    pub insecure_registries: Vec<String>,
    /// How long one request may take (for a blob, how long its transfer may stall); `None`
    /// keeps the client's default.
    pub request_timeout: Option<Duration>,
    /// Receives byte progress of uploads.
    pub progress: Option<ProgressCallback>,
    /// The HTTP client: a caller's own `reqwest::Client`, or settings (proxies, extra root
    /// certificates, timeouts, user agent) to build one from.
    pub transport: HttpTransport,
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RegistrySettings")
            .field("login", &self.login)
            .field("insecure_registries", &self.insecure_registries)
            .field("request_timeout", &self.request_timeout)
            .field("progress", &self.progress.is_some())
            .field("transport", &self.transport)
            .finish()
    }
}

impl RegistrySettings {
    /// A client that pushes to `destinations` (registry hosts such as `ghcr.io` or
    /// `127.0.0.1:5000`).
    pub fn client(
        &self,
        destinations: &[String],
        progress: &dyn Progress,
    ) -> Result<RegistryClient> {
        let credentials = match &self.login {
            RegistryLogin::DockerConfig => Credentials::FromDockerConfig,
            RegistryLogin::Destinations { username, password } => Credentials::Basic {
                registries: destinations.to_vec(),
                username: username.clone(),
                password: password.clone(),
            },
            RegistryLogin::Credentials(credentials) => credentials.clone(),
        };
        progress.event(&Event::RegistryClient {
            login_for: matches!(self.login, RegistryLogin::Destinations { .. })
                .then_some(destinations),
            insecure: &self.insecure_registries,
            request_timeout: self.request_timeout,
        });
        let defaults = ClientOptions::default();
        let options = ClientOptions {
            credentials,
            insecure_registries: self.insecure_registries.clone(),
            progress: self.progress.clone(),
            transport: self.transport.clone(),
            request_timeout: self.request_timeout.unwrap_or(defaults.request_timeout),
            ..defaults
        };
        Ok(RegistryClient::new(options)?)
    }
}
