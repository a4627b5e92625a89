//! What a failed command reports: a class (which picks the exit code), a message, the causes
//! below it, and a hint saying what to do; for a configuration with several mistakes, every
//! problem with its own hint, then their count.
//!
//! This is the one place that turns a library error into what the user reads. Library errors
//! are data: a plain message that never repeats its `source()` (printed here as `caused by:`
//! lines), a `help()` worded for any program, and predicates and accessors. Here each is given
//! its exit code, and the CLI's own advice (commands, flags, environment variables), which the
//! libraries leave out, replaces or completes the library's help.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::Path;

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
    /// `notify`: GitHub or GitLab could not be reached or answered something unexpected.
    Forge = 11,
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
    /// Problems printed before the message, each with its own hint: every mistake of a
    /// configuration file, when there are several (the message then counts them).
    pub(crate) problems: Vec<Problem>,
}

/// One of several problems of a failure.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
            problems: Vec::new(),
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

    /// Replaces the hint.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Builds a failure from an error: its message, then each error of its `source()` chain
    /// as a cause, and `hint`.
    pub(crate) fn from_error(
        kind: ExitKind,
        error: &(dyn StdError + 'static),
        hint: Option<String>,
    ) -> Self {
        let mut failure = Failure::new(kind, error.to_string());
        let mut source = error.source();
        while let Some(cause) = source {
            failure.causes.push(cause.to_string());
            source = cause.source();
        }
        failure.hint = hint;
        failure
    }

    /// The text printed on stderr.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        for problem in &self.problems {
            let _ = write!(text, "error: {}", problem.message);
            if let Some(hint) = &problem.hint {
                let _ = write!(text, "\n  help: {hint}");
            }
            text.push('\n');
        }
        let _ = write!(text, "error: {}", self.message);
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
        let diagnostics = error.diagnostics();
        if error.problem_count() < 2 {
            let hint = error.help().map(str::to_owned);
            return Failure::from_error(kind, &error, hint);
        }
        // Several problems: each with its own help, then how many there are and where.
        let first_file = error.path();
        let files = if diagnostics
            .iter()
            .all(|problem| problem.path() == first_file)
        {
            first_file.display().to_string()
        } else {
            let mut files: Vec<&Path> = diagnostics.iter().map(|problem| problem.path()).collect();
            files.dedup();
            format!("{} files", files.len())
        };
        let count = error.problem_count();
        let message = if count > diagnostics.len() {
            format!(
                "{count} problems in {files}; the first {} are listed above",
                diagnostics.len()
            )
        } else {
            format!("{count} problems in {files}")
        };
        let mut failure = Failure::new(kind, message);
        failure.problems = diagnostics
            .iter()
            .map(|problem| Problem {
                message: problem.to_string(),
                hint: Some(problem.help().to_owned()),
            })
            .collect();
        failure
    }
}

pub(crate) use dagster_deploy_pipeline::one_line;

/// The advice to begin a new session.
const START_AGAIN: &str = "run `dagster-deploy start` to begin a new session";

impl From<dagster_deploy_statedir::Error> for Failure {
    fn from(error: dagster_deploy_statedir::Error) -> Self {
        use dagster_deploy_statedir::Error;
        let kind = if error.is_io() {
            // Disk full, permission denied: never a configuration error.
            ExitKind::Io
        } else if matches!(error, Error::UnknownLocations { .. }) {
            // An unknown `--location-name` is a bad argument, as it is for `start`.
            ExitKind::Usage
        } else {
            ExitKind::Config
        };
        let hint = match &error {
            Error::Io { .. } => Some(
                "free disk space or fix the permissions of the state directory, then run the command again; a change it had started is completed by the next command".to_owned(),
            ),
            Error::NoSession { .. } => Some(format!(
                "run `dagster-deploy start` first, or point --statedir ({}) at the session directory",
                env::STATEDIR
            )),
            Error::Corrupt { .. } => Some(START_AGAIN.to_owned()),
            Error::NotAFile { .. } => {
                Some(format!("replace it with the state file, or {START_AGAIN}"))
            }
            Error::TooLarge { .. } => Some(format!(
                "a state file this large is not part of a deploy session: {START_AGAIN}"
            )),
            Error::Journal { .. } => Some(format!(
                "inspect it (it lists each file's intended content), then move it out of the state directory, or {START_AGAIN}"
            )),
            Error::NewerFormat { .. } => Some(
                "run every step of this session with the same (or a newer) version of dagster-deploy, or of the reference CLI that wrote it".to_owned(),
            ),
            Error::ForeignEntries { .. } => Some(format!(
                "point --statedir ({}) at an empty or dedicated directory, or remove those entries",
                env::STATEDIR
            )),
            Error::GeneratedFileConflict { .. } => Some(
                "the copies come from different `dagster-deploy start` runs: merge only copies of one session".to_owned(),
            ),
            _ => error.help().map(str::to_owned),
        };
        Failure::from_error(kind, &error, hint)
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
        use dagster_deploy_cloud_client::Error;
        let kind = if error.is_unauthorized() {
            ExitKind::Auth
        } else if error.is_timeout() {
            ExitKind::Timeout
        } else if error.is_invalid_setting() {
            ExitKind::Config
        } else {
            ExitKind::Deploy
        };
        let hint = match &error {
            Error::Timeout { .. } => Some(format!("try again later; {}", request_timeout_hint())),
            Error::InvalidToken { .. } => Some(format!(
                "check the value of {} and copy the token again without extra characters",
                env::API_TOKEN
            )),
            Error::UrlCredentials { .. } => Some(format!(
                "remove the user name and password from {}, and give the token in {}",
                env::URL,
                env::API_TOKEN
            )),
            Error::Redirected { .. } => Some(format!(
                "if the new address is right, use it as {}",
                env::URL
            )),
            Error::Unauthorized { .. } => Some(format!(
                "check that the token is valid and was created for this organization, and that the organization (or {}) is right",
                env::URL
            )),
            Error::InvalidLocation { .. } => Some(
                "fix the location entries in dagster_cloud.yaml (or build.yaml) and deploy again"
                    .to_owned(),
            ),
            _ => error.help().map(str::to_owned),
        };
        Failure::from_error(kind, &error, hint)
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
        let hint = cli_hint.or_else(|| error.help().map(String::from));
        Failure::from_error(kind, &error, hint)
    }
}

impl From<dagster_deploy_forge::Error> for Failure {
    fn from(error: dagster_deploy_forge::Error) -> Self {
        let kind = if error.is_permission() {
            ExitKind::Auth
        } else if error.is_timeout() {
            ExitKind::Timeout
        } else if error.is_invalid_setting() {
            ExitKind::Config
        } else {
            ExitKind::Forge
        };
        Failure::from_error(kind, &error, forge_hint(&error))
    }
}

/// The CLI's advice for a GitHub or GitLab error: which token variable, permission or URL.
fn forge_hint(error: &dagster_deploy_forge::Error) -> Option<String> {
    use dagster_deploy_forge::{Error, Forge};
    let token_hint = |forge: &Forge| match forge {
        Forge::GitHub => format!(
            "give the workflow `permissions: pull-requests: write` (for {}), or set {} to a token that has it",
            env::GITHUB_TOKEN,
            env::GITHUB_TOKEN
        ),
        Forge::GitLab => format!(
            "set {} to a project access token with the `api` scope and at least the Reporter role",
            env::GITLAB_TOKEN
        ),
    };
    match error {
        Error::Forbidden { forge, .. } | Error::NotFound { forge, .. } => Some(token_hint(forge)),
        Error::Unauthorized { forge, .. } => Some(format!(
            "the token is expired, revoked or for another server; {}",
            token_hint(forge)
        )),
        Error::InvalidUrl { forge, .. }
        | Error::InsecureUrl { forge, .. }
        | Error::UrlCredentials { forge, .. }
        | Error::Redirected { forge, .. } => Some(format!(
            "check {}",
            match forge {
                Forge::GitHub => env::GITHUB_API_URL,
                Forge::GitLab => env::CI_API_V4_URL,
            }
        )),
        Error::Timeout { .. } => Some(format!("try again later; {}", request_timeout_hint())),
        _ => error.help().map(str::to_owned),
    }
}

impl From<dagster_deploy_ci_context::Error> for Failure {
    fn from(error: dagster_deploy_ci_context::Error) -> Self {
        let hint = error.help();
        Failure::from_error(ExitKind::Config, &error, hint)
    }
}

/// The advice for a dependency layer that could not be built, with the flags that apply.
fn deps_layer_hint(error: &dagster_deploy_pydeps::Error) -> Option<String> {
    use dagster_deploy_pydeps::Error;
    Some(match error {
        Error::NeedsBuild { .. } => "packages built from source need a compiler inside the image: build with --builder docker, or pin versions that ship wheels for this platform".to_owned(),
        Error::UvNotFound { .. } | Error::UvVersion { .. } => format!(
            "install uv (`pip install uv`, or your package manager's), then pass --uv PROGRAM or set {} if it is not on PATH; or pass --no-deps-layer with a base image that holds the dependencies",
            env::UV
        ),
        Error::VenvDirTaken { .. } => "use a plain Python base image such as python:3.12-slim, or pass --no-deps-layer if this base already holds the dependencies".to_owned(),
        Error::UnsupportedArchitecture { .. }
        | Error::UnsupportedFileType { .. }
        | Error::NonUtf8Path { .. } => format!(
            "{}; or build with --builder docker",
            error.help().unwrap_or_default()
        ),
        Error::UvTimedOut { .. } => "check that the package index is reachable (uv honours HTTPS_PROXY and, with UV_NATIVE_TLS=1, the system's certificates)".to_owned(),
        _ => return error.help(),
    })
}

/// The result of a command.
impl From<dagster_deploy_pipeline::Error> for Failure {
    fn from(error: dagster_deploy_pipeline::Error) -> Self {
        use dagster_deploy_pipeline::{Error, ErrorKind};
        let kind = match error.kind() {
            ErrorKind::Usage => ExitKind::Usage,
            ErrorKind::Config => ExitKind::Config,
            ErrorKind::Io => ExitKind::Io,
            ErrorKind::Auth => ExitKind::Auth,
            ErrorKind::Registry => ExitKind::Registry,
            ErrorKind::Deploy => ExitKind::Deploy,
            ErrorKind::Load => ExitKind::Load,
            ErrorKind::Timeout => ExitKind::Timeout,
            ErrorKind::NotTracked => ExitKind::NotTracked,
            ErrorKind::Forge => ExitKind::Forge,
            ErrorKind::Interrupted => ExitKind::Interrupted,
            ErrorKind::Terminated => ExitKind::Terminated,
            _ => ExitKind::Internal,
        };
        let unrecorded = error.unrecorded().map(|error| {
            format!(
                "the outcome could not be recorded in the session: {}",
                one_line(error)
            )
        });
        // The CLI's advice names its commands and flags where the stage's cannot.
        let hint = match &error {
            Error::Forge(forge) => forge_hint(forge),
            Error::Unbuilt { .. } => Some(
                "run build-and-push, or set-build-output --image-tag TAG, for them first".to_owned(),
            ),
            Error::MixedTargets { .. } => Some(
                "deploy them separately with --location-name, or start a new session".to_owned(),
            ),
            Error::LoadFailed {
                timed_out: true, ..
            } => Some(
                "check that a Dagster+ agent is running for this deployment, or raise --location-load-timeout".to_owned(),
            ),
            Error::SharedRegistry { .. } => Some(
                "leave out --tag (tags are then derived from each image's content), or build them one at a time with --location-name".to_owned(),
            ),
            Error::NoDockerfile { .. } => Some(
                "add a Dockerfile to the build directory, or use --builder native --base-image REF"
                    .to_owned(),
            ),
            Error::DockerSpawn { .. } => {
                Some("install Docker, or use --builder native, which needs no daemon".to_owned())
            }
            Error::DepsLayer { error, .. } => deps_layer_hint(error),
            Error::DockerTimeout { .. } => Some(format!(
                "check that the Docker daemon answers (`docker info`); if the build is only slow, raise --build-timeout SECONDS (or {})",
                env::BUILD_TIMEOUT
            )),
            Error::Unrecorded { .. } => Some(
                "free disk space or fix the permissions of the state directory; the locations are deployed as reported above, and `status` does not know it".to_owned(),
            ),
            _ => error.help(),
        };
        let mut failure = match error {
            // A library's own error keeps its own class and advice.
            Error::Config(error) => error.into(),
            Error::NoConfiguration(error) => Failure::from(error).with_hint(
                "run from a dg project or workspace (dg.toml or pyproject.toml [tool.dg]), pass --project-dir, \
                 or name a dagster_cloud.yaml with --dagster-cloud-yaml",
            ),
            Error::CiContext(error) => error.into(),
            Error::NoBranch(error) => Failure::from(error).with_hint(
                "run inside a pull or merge request or on a git branch, or pass --deployment-type full",
            ),
            Error::Session(error) => error.into(),
            Error::Cloud(error) => error.into(),
            Error::Registry(error) => (*error).into(),
            Error::LocationFile(error) => {
                Failure::from(error).with_hint(hint.unwrap_or_default())
            }
            // Dagster+'s refusal is reported as the cloud client's error, with its advice.
            Error::DeployRejected { error, .. } => error.into(),
            Error::NotTracked { error, .. } => Failure::new(
                kind,
                format!(
                    "Dagster+ accepted the deploy, but its load could not be tracked: {}",
                    one_line(&error)
                ),
            )
            .with_hint(hint.unwrap_or_default()),
            Error::Unrecorded {
                loaded,
                total,
                error,
            } => Failure::new(
                kind,
                format!(
                    "Dagster+ accepted the deploy ({loaded} of {total} location(s) loaded), but the outcome could not be recorded in the session: {}",
                    one_line(&error)
                ),
            )
            .with_hint(hint.unwrap_or_default()),
            Error::SharedRegistry {
                first,
                second,
                registry,
                tag,
            } => Failure::new(
                kind,
                format!(
                    "locations {first} and {second} share the registry {registry}, so --tag {tag} would give both the same image"
                ),
            )
            .with_hint(hint.unwrap_or_default()),
            error => Failure::from_error(kind, &error, hint),
        };
        failure.causes.extend(unrecorded);
        failure
    }
}

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
    fn a_library_error_is_printed_once_with_its_cause_below_it() {
        let error = dagster_deploy_statedir::Error::Io {
            action: "write state file",
            path: "/state/location-a.json".into(),
            source: std::io::Error::other("No space left on device"),
        };
        let rendered = Failure::from(error).render();
        assert_eq!(
            rendered,
            "error: cannot write state file /state/location-a.json\n  \
             caused by: No space left on device\n  \
             help: free disk space or fix the permissions of the state directory, then run the command again; a change it had started is completed by the next command"
        );
    }

    #[test]
    fn several_configuration_problems_are_each_printed_with_their_help_then_counted() {
        let text = "locations:\n  - location_name: a\n    imag: x\n  - location_name: a\n";
        let error = dagster_deploy_buildconfig::DagsterCloudYaml::parse(
            text,
            std::path::Path::new("/p/dagster_cloud.yaml"),
        )
        .unwrap_err();
        let failure = Failure::from(error);
        assert_eq!(failure.kind, ExitKind::Config);
        assert_eq!(
            failure.render(),
            "error: /p/dagster_cloud.yaml:3:5: locations[0].imag: unknown key `imag` in a location\n  \
             help: did you mean `image`? The keys allowed here are: location_name, code_source, build, working_directory, image, executable_path, attribute, container_context, agent_queue\n\
             error: /p/dagster_cloud.yaml:4:20: locations[1].location_name: duplicate location name `a`; it is first used at line 2 (locations[0])\n  \
             help: give every location a unique `location_name`\n\
             error: 2 problems in /p/dagster_cloud.yaml"
        );
    }

    #[test]
    fn the_cli_adds_the_advice_the_libraries_leave_out() {
        // Each library's message and help are free of CLI advice; the failure carries it.
        let no_session = dagster_deploy_statedir::Error::NoSession {
            dir: "/state".into(),
        };
        let token = dagster_deploy_cloud_client::Error::InvalidToken {
            reason: "it is empty".into(),
        };
        let library_texts = [
            no_session.to_string(),
            no_session.help().unwrap_or_default().to_owned(),
            token.to_string(),
            token.help().unwrap_or_default().to_owned(),
        ];
        for text in &library_texts {
            for advice in ["dagster-deploy", "DAGSTER_", "--"] {
                assert!(!text.contains(advice), "{advice:?} in {text:?}");
            }
        }
        let hint = Failure::from(no_session).hint.unwrap_or_default();
        assert!(
            hint.contains("dagster-deploy start") && hint.contains(env::STATEDIR),
            "{hint}"
        );
        let hint = Failure::from(token).hint.unwrap_or_default();
        assert!(hint.contains(env::API_TOKEN), "{hint}");
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
