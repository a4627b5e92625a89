//! What a failed command reports: a class (which picks the exit code), a message, the causes
//! below it, and a hint saying what to do. Library errors are classified here, in one place.

use std::error::Error as StdError;
use std::fmt::Write as _;

use crate::args::env;

/// The failure classes, with their exit codes (listed in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ExitKind {
    Internal = 1,
    Usage = 2,
    Config = 3,
    Auth = 4,
    Registry = 5,
    Deploy = 6,
    Load = 7,
    Timeout = 8,
    /// Dagster+ accepted the deploy, but its outcome is not known (the wait for the load could
    /// not be completed, or its result could not be recorded).
    NotTracked = 9,
    /// A local file could not be read or written (disk full, permission denied, I/O error).
    Io = 10,
    /// Interrupted by SIGINT (Ctrl-C): 128 + 2, as shells report it.
    Interrupted = 130,
    /// Stopped by SIGTERM (CI cancellation): 128 + 15.
    Terminated = 143,
}

/// A failed command.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ExitKind,
    pub(crate) message: String,
    pub(crate) causes: Vec<String>,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Internal, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Config, message)
    }

    /// A local file could not be read or written: never a configuration error.
    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Io, message)
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Builds a failure from an error, walking its `source()` chain once.
    pub(crate) fn from_error(kind: ExitKind, error: &(dyn StdError + 'static)) -> Self {
        let text = error.to_string();
        // Some libraries render their own `error: ` prefix; the CLI adds one once.
        let message = text.strip_prefix("error: ").unwrap_or(&text);
        let mut failure = Failure::new(kind, message);
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Errors often repeat their source in their own message; print each fact once.
            if !failure.message.contains(&text) && !failure.causes.iter().any(|c| c.contains(&text))
            {
                failure.causes.push(text);
            }
            source = cause.source();
        }
        failure
    }

    /// The text printed on stderr.
    pub(crate) fn render(&self) -> String {
        let mut text = format!("error: {}", self.message);
        for cause in &self.causes {
            let _ = write!(text, "\n  caused by: {cause}");
        }
        if let Some(hint) = &self.hint {
            let _ = write!(text, "\n  help: {hint}");
        }
        text
    }
}

impl From<dagster_deploy_buildconfig::Error> for Failure {
    fn from(error: dagster_deploy_buildconfig::Error) -> Self {
        // A file that cannot be read for a reason other than its absence (an I/O error, no
        // permission) is a problem of the machine, not of the configuration.
        let kind = if error.is_io() {
            ExitKind::Io
        } else {
            ExitKind::Config
        };
        Failure::from_error(kind, &error)
    }
}

impl From<dagster_deploy_statedir::Error> for Failure {
    fn from(error: dagster_deploy_statedir::Error) -> Self {
        let kind = if error.is_io() {
            // Disk full, permission denied: never a configuration error.
            ExitKind::Io
        } else if matches!(
            error,
            dagster_deploy_statedir::Error::UnknownLocations { .. }
        ) {
            // An unknown `--location-name` is a bad argument, as it is for `start`.
            ExitKind::Usage
        } else {
            ExitKind::Config
        };
        let hint = (kind == ExitKind::Io)
            .then_some("free disk space or fix the permissions of the state directory, then run the command again; a change it had started is completed by the next command");
        let failure = Failure::from_error(kind, &error);
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

/// The advice for a request that took too long.
fn request_timeout_hint() -> String {
    format!(
        "if the server is only slow, raise the request timeout with --request-timeout SECONDS (or {})",
        env::REQUEST_TIMEOUT
    )
}

/// The advice for a credential helper or Docker config that failed.
fn credentials_hint() -> String {
    format!(
        "fix the credential helper or Docker's config.json, or give the login explicitly with {} and {}",
        env::REGISTRY_USERNAME,
        env::REGISTRY_PASSWORD
    )
}

impl From<dagster_deploy_cloud_client::Error> for Failure {
    fn from(error: dagster_deploy_cloud_client::Error) -> Self {
        let kind = if error.is_unauthorized() {
            ExitKind::Auth
        } else if error.is_timeout() {
            ExitKind::Timeout
        } else if error.is_invalid_setting() {
            ExitKind::Config
        } else {
            ExitKind::Deploy
        };
        let failure = Failure::from_error(kind, &error);
        if error.is_timeout() {
            failure.with_hint(request_timeout_hint())
        } else {
            failure
        }
    }
}

/// A registry error (pushes and native builds): the class from its kind, and the CLI's own
/// advice (flags, env vars, commands) where the library's help cannot name them.
impl From<dagster_deploy_registry::Error> for Failure {
    fn from(error: dagster_deploy_registry::Error) -> Self {
        use dagster_deploy_registry::{Error, ErrorKind};
        let kind = match error.kind() {
            ErrorKind::Authentication => ExitKind::Auth,
            ErrorKind::InvalidInput => ExitKind::Usage,
            _ => ExitKind::Registry,
        };
        let cli_hint = match &error {
            Error::Credentials { .. } => Some(credentials_hint()),
            Error::Unauthorized { registry, .. } => Some(format!(
                "log in with `docker login {registry}`, or set {} and {}",
                env::REGISTRY_USERNAME,
                env::REGISTRY_PASSWORD
            )),
            Error::InsecureTransport { host, .. } => Some(format!(
                "credentials and images travel only over https, or plain http to loopback; only if {host} is on a trusted network, pass --insecure-registry {host}"
            )),
            Error::IncompleteIndex { .. } => Some(
                "push the platform the source holds with --platform OS/ARCH (e.g. --platform linux/amd64)".to_owned(),
            ),
            Error::InvalidSourceDateEpoch { .. } => {
                Some(format!("set {} to 0 or more seconds", env::SOURCE_DATE_EPOCH))
            }
            _ if error.is_not_found() && error.status().is_none() => Some(
                "choose one of the platforms it offers with --platform OS/ARCH".to_owned(),
            ),
            _ if error.is_timeout() => Some(request_timeout_hint()),
            _ => None,
        };
        let failure = Failure::from_error(kind, &error);
        match cli_hint.or_else(|| error.help().map(String::from)) {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

impl From<dagster_deploy_ci_context::Error> for Failure {
    fn from(error: dagster_deploy_ci_context::Error) -> Self {
        Failure::from_error(ExitKind::Config, &error)
    }
}

/// The result of a command.
pub(crate) type CommandResult = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials_error() -> dagster_deploy_registry::Error {
        dagster_deploy_registry::Error::Credentials {
            registry: "reg.example".into(),
            origin: "docker-credential-ecr-login".into(),
            reason: "it did not answer within 60 s and was stopped".into(),
        }
    }

    #[test]
    fn a_credential_helper_failure_is_an_authentication_error() {
        let failure = Failure::from(credentials_error());
        assert_eq!(failure.kind, ExitKind::Auth);
        let rendered = failure.render();
        assert!(
            rendered.contains("docker-credential-ecr-login")
                && rendered.contains(env::REGISTRY_USERNAME),
            "{rendered}"
        );
        let during_build = Failure::from(dagster_deploy_registry::Error::Push {
            target: "reg.example/team/app".into(),
            source: Box::new(credentials_error()),
        });
        assert_eq!(during_build.kind, ExitKind::Auth);
    }

    #[test]
    fn a_request_timeout_names_the_flag_and_the_env_var() {
        let failure = Failure::from(dagster_deploy_cloud_client::Error::Timeout {
            url: "https://acme.dagster.cloud/graphql".into(),
            timeout: std::time::Duration::from_secs(60),
            attempts: 4,
        });
        assert_eq!(failure.kind, ExitKind::Timeout);
        let hint = failure.hint.unwrap_or_default();
        assert!(
            hint.contains("--request-timeout") && hint.contains(env::REQUEST_TIMEOUT),
            "{hint}"
        );
    }
}
