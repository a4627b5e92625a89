//! The crate's one error type: a stage's failure as data. Each variant says what failed and
//! carries its facts; [`Error::kind`] classifies it (a CLI maps the kind to an exit code),
//! [`Error::help`] says what to do, in words that name no command-line flag or environment
//! variable (the caller adds those), and an error of one of the libraries is kept as it is.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use dagster_deploy_buildconfig as buildconfig;
use dagster_deploy_ci_context as ci;
use dagster_deploy_cloud_client as cloud;
use dagster_deploy_forge as forge;
use dagster_deploy_pydeps as pydeps;
use dagster_deploy_registry as registry;
use dagster_deploy_statedir as statedir;

use crate::deploy::Interruption;

/// What kind of failure an [`Error`] is: who can fix it, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument: a setting the caller passed is wrong.
    Usage,
    /// The configuration (a `dagster_cloud.yaml`, a dg project, the session) is wrong.
    Config,
    /// A local file could not be read or written (disk full, permission denied).
    Io,
    /// Credentials were refused, or could not be got.
    Auth,
    /// An image could not be built, pulled or pushed.
    Registry,
    /// Dagster+ rejected the deploy or could not be reached.
    Deploy,
    /// A location failed to load.
    Load,
    /// Something took longer than it may.
    Timeout,
    /// Dagster+ accepted the deploy, but its outcome is not known.
    NotTracked,
    /// GitHub or GitLab could not be reached, or answered something unexpected (notify).
    Forge,
    /// Stopped by an interruption (Ctrl-C, or the caller's own cancellation).
    Interrupted,
    /// Stopped by a termination request (SIGTERM, as CI cancellation sends).
    Terminated,
    /// A bug, or a broken environment.
    Internal,
}

/// A stage's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration reader failed.
    #[error(transparent)]
    Config(#[from] buildconfig::Error),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] statedir::Error),
    /// Dagster+ failed, or could not be reached.
    #[error(transparent)]
    Cloud(#[from] cloud::Error),
    /// A registry failed.
    #[error(transparent)]
    Registry(Box<registry::Error>),
    /// The CI context or git failed.
    #[error(transparent)]
    CiContext(#[from] ci::Error),
    /// GitHub or GitLab failed, or could not be reached.
    #[error(transparent)]
    Forge(#[from] forge::Error),

    /// A path could not be made absolute.
    #[error("cannot resolve {what}{}: {error}", path.display())]
    ResolvePath {
        /// What the path is, with a trailing space, or empty.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Neither a dg project nor a `dagster_cloud.yaml` was found.
    #[error(transparent)]
    NoConfiguration(buildconfig::Error),
    /// Locations were asked for that the configuration does not have.
    #[error("unknown location(s) {} in {}", names.join(", "), file.display())]
    UnknownLocations {
        /// The unknown names.
        names: Vec<String>,
        /// The configuration file.
        file: PathBuf,
        /// The locations it has.
        known: Vec<String>,
    },
    /// A branch deployment was needed, but the checkout is neither in a pull request nor on a
    /// branch (or git failed).
    #[error(transparent)]
    NoBranch(ci::Error),
    /// The repository and branch of the checkout are unknown.
    #[error("cannot tell the repository and branch of this checkout")]
    NoRepositoryOrBranch,
    /// A stage needs a Dagster+ client and none was given.
    #[error("a Dagster+ client is needed to {purpose}")]
    NoClient {
        /// What for.
        purpose: &'static str,
    },
    /// The session's `dagster_cloud.yaml` cannot be read or no longer parses.
    #[error(transparent)]
    LocationFile(buildconfig::Error),
    /// A session's location is missing from its `dagster_cloud.yaml`.
    #[error("location {location} is not in {} any more", file.display())]
    LocationNotInFile {
        /// The location.
        location: String,
        /// The file.
        file: PathBuf,
    },
    /// Locations are to be deployed that have no image recorded.
    #[error("no image recorded for location(s) {}", locations.join(", "))]
    Unbuilt {
        /// The locations.
        locations: Vec<String>,
    },
    /// The selected locations target different deployments.
    #[error(
        "locations {first} and {second} target different deployments ({first_target} and {second_target})"
    )]
    MixedTargets {
        /// One location.
        first: String,
        /// Its deployment and organization URL, as `<deployment> at <URL>`.
        first_target: String,
        /// Another location.
        second: String,
        /// Its deployment and organization URL.
        second_target: String,
    },
    /// A location's registry is unknown.
    #[error(transparent)]
    NoRegistry(#[from] crate::build_output::MissingRegistry),
    /// An image tag is invalid.
    #[error("{reason}")]
    InvalidTag {
        /// The tag.
        tag: String,
        /// Why, naming the tag.
        reason: String,
    },
    /// A location's build directory does not exist.
    #[error("the build directory {} of location {location} does not exist", directory.display())]
    MissingBuildDirectory {
        /// The location.
        location: String,
        /// The directory.
        directory: PathBuf,
    },
    /// Two locations would get the same image.
    #[error(
        "locations {first} and {second} share the registry {registry}, so the tag {tag} would give both the same image"
    )]
    SharedRegistry {
        /// One location.
        first: String,
        /// Another.
        second: String,
        /// Their registry.
        registry: String,
        /// The tag asked for.
        tag: String,
    },
    /// Where a location's code is imported from could not be decided.
    #[error("location {location}: {error}")]
    ImportPlan {
        /// The location.
        location: String,
        /// Why.
        error: Box<registry::Error>,
    },
    /// A location's dependency layer could not be built from its `uv.lock`.
    #[error("location {location}: dependency layer: {error}")]
    DepsLayer {
        /// The location.
        location: String,
        /// Why.
        error: Box<pydeps::Error>,
    },
    /// A location's registry is not an image repository.
    #[error("location {location}: registry {registry}: {error}")]
    InvalidRegistry {
        /// The location.
        location: String,
        /// The registry.
        registry: String,
        /// Why.
        error: Box<registry::Error>,
    },
    /// The docker builder found no Dockerfile.
    #[error("location {location}: no Dockerfile at {}", path.display())]
    NoDockerfile {
        /// The location.
        location: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `docker` could not be started.
    #[error("cannot run docker: {error}")]
    DockerSpawn {
        /// Why.
        error: std::io::Error,
    },
    /// Waiting for `docker` failed.
    #[error("`docker {command}` did not finish: {error}")]
    DockerWait {
        /// The subcommand (`build`, `push`).
        command: String,
        /// Why.
        error: std::io::Error,
    },
    /// `docker` ran longer than it may, and was stopped.
    #[error("`docker {command}` did not finish within {} s and was stopped", limit.as_secs())]
    DockerTimeout {
        /// The subcommand.
        command: String,
        /// The limit.
        limit: Duration,
    },
    /// `docker` failed.
    #[error("`docker {command}` failed ({status})")]
    DockerFailed {
        /// The subcommand.
        command: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// Dagster+ rejected the deploy (or could not be reached); the session records it as failed.
    #[error("{error}")]
    DeployRejected {
        /// Why.
        error: cloud::Error,
        /// Why the outcome could not be recorded, if it could not.
        unrecorded: Option<Box<statedir::Error>>,
    },
    /// The deploy was interrupted; the session records it as interrupted.
    #[error("{}", interrupted_message(interruption, *accepted))]
    Interrupted {
        /// What interrupted it.
        interruption: Interruption,
        /// Whether Dagster+ had accepted the deploy.
        accepted: bool,
        /// Why the outcome could not be recorded, if it could not.
        unrecorded: Option<Box<statedir::Error>>,
    },
    /// Dagster+ accepted the deploy, but the wait for its load failed.
    #[error("Dagster+ accepted the deploy, but its load could not be tracked: {error}")]
    NotTracked {
        /// Why.
        error: cloud::Error,
        /// Why the outcome could not be recorded, if it could not.
        unrecorded: Option<Box<statedir::Error>>,
    },
    /// Locations did not load.
    #[error("{} of {total} location(s) did not load: {}", failed.len(), failed.join(", "))]
    LoadFailed {
        /// The locations that did not load.
        failed: Vec<String>,
        /// How many were deployed.
        total: usize,
        /// Whether one of them timed out (or found no agent).
        timed_out: bool,
    },
    /// Dagster+ accepted the deploy and the wait ended, but the session could not record it.
    #[error(
        "Dagster+ accepted the deploy ({loaded} of {total} location(s) loaded), but the outcome could not be recorded in the session: {error}"
    )]
    Unrecorded {
        /// How many loaded.
        loaded: usize,
        /// How many were deployed.
        total: usize,
        /// Why.
        error: Box<statedir::Error>,
    },
}

// Registry errors are large; boxed, they keep every stage's `Result` small.
impl From<registry::Error> for Error {
    fn from(error: registry::Error) -> Self {
        Error::Registry(Box::new(error))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its `source()` chain on one line, for a recorded outcome, a log entry or a
/// message that embeds it.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(line, ": {cause}");
        source = cause.source();
    }
    line
}

fn interrupted_message(interruption: &Interruption, accepted: bool) -> String {
    if accepted {
        format!(
            "{} while waiting for the locations to load; Dagster+ had accepted the deploy",
            interruption.describe()
        )
    } else {
        format!(
            "{} before Dagster+ answered the deploy: it may or may not have been accepted",
            interruption.describe()
        )
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(error) | Error::NoConfiguration(error) | Error::LocationFile(error) => {
                if error.is_io() {
                    ErrorKind::Io
                } else {
                    ErrorKind::Config
                }
            }
            Error::Session(error) => session_kind(error),
            Error::Forge(error) => {
                if error.is_permission() {
                    ErrorKind::Auth
                } else if error.is_timeout() {
                    ErrorKind::Timeout
                } else if error.is_invalid_setting() {
                    ErrorKind::Config
                } else {
                    ErrorKind::Forge
                }
            }
            Error::Cloud(error) | Error::DeployRejected { error, .. } => cloud_kind(error),
            Error::Registry(error) => registry_kind(error),
            // A registry that is not an image repository is a mistake of the configuration.
            Error::InvalidRegistry { .. } => ErrorKind::Config,
            Error::ImportPlan { .. } => ErrorKind::Config,
            Error::DepsLayer { error, .. } => match **error {
                pydeps::Error::UvTimedOut { .. } => ErrorKind::Timeout,
                pydeps::Error::UvNotFound { .. }
                | pydeps::Error::UvVersion { .. }
                | pydeps::Error::NoHostInterpreter { .. } => ErrorKind::Internal,
                pydeps::Error::ReadBase { .. } => ErrorKind::Registry,
                pydeps::Error::Cache { .. } | pydeps::Error::WriteLayer { .. } => ErrorKind::Io,
                _ => ErrorKind::Config,
            },
            Error::CiContext(_) | Error::NoBranch(_) | Error::NoRepositoryOrBranch => {
                ErrorKind::Config
            }
            Error::UnknownLocations { .. }
            | Error::NoClient { .. }
            | Error::InvalidTag { .. }
            | Error::SharedRegistry { .. } => ErrorKind::Usage,
            Error::ResolvePath { .. }
            | Error::LocationNotInFile { .. }
            | Error::Unbuilt { .. }
            | Error::MixedTargets { .. }
            | Error::NoRegistry(_)
            | Error::MissingBuildDirectory { .. }
            | Error::NoDockerfile { .. } => ErrorKind::Config,
            Error::DockerSpawn { .. } | Error::DockerWait { .. } | Error::DockerFailed { .. } => {
                ErrorKind::Registry
            }
            Error::DockerTimeout { .. } => ErrorKind::Timeout,
            Error::Interrupted { interruption, .. } => match interruption {
                Interruption::Terminate => ErrorKind::Terminated,
                _ => ErrorKind::Interrupted,
            },
            Error::NotTracked { .. } | Error::Unrecorded { .. } => ErrorKind::NotTracked,
            Error::LoadFailed { timed_out, .. } => {
                if *timed_out {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Load
                }
            }
        }
    }

    /// What to do about it, when the stage knows; it names no flag or environment variable.
    pub fn help(&self) -> Option<String> {
        let text = match self {
            Error::Forge(error) => return error.help().map(str::to_owned),
            Error::DepsLayer { error, .. } => return error.help(),
            Error::NoConfiguration(_) => {
                "run from a dg project or workspace (dg.toml or pyproject.toml [tool.dg]), or name a dagster_cloud.yaml"
            }
            Error::UnknownLocations { known, .. } => {
                return Some(format!(
                    "the configured locations are: {}",
                    known.join(", ")
                ));
            }
            Error::NoBranch(_) => {
                "run inside a pull or merge request or on a git branch, or deploy to the full deployment"
            }
            Error::NoRepositoryOrBranch => {
                "run inside a pull or merge request, or in a git checkout with an origin remote and a branch"
            }
            Error::LocationFile(error) => {
                if error.is_io() {
                    "the session's configuration file cannot be read: fix its permissions"
                } else if matches!(error, buildconfig::Error::Read { .. }) {
                    "the session's configuration file is gone: run start again"
                } else {
                    "the session's configuration file changed: run start again"
                }
            }
            Error::LocationNotInFile { .. } => "run start again, or deselect the location",
            Error::Unbuilt { .. } => {
                "build and push their images, or record images built elsewhere, first"
            }
            Error::MixedTargets { .. } => "deploy them separately, or start a new session",
            Error::InvalidTag { .. } => {
                "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
            }
            Error::MissingBuildDirectory { .. } => {
                "fix build.directory in build.yaml or dagster_cloud.yaml, then run start again"
            }
            Error::SharedRegistry { .. } => {
                "leave out the tag (tags are then derived from each image's content), or build them one at a time"
            }
            Error::NoDockerfile { .. } => {
                "add a Dockerfile to the build directory, or build natively on a base image"
            }
            Error::DockerSpawn { .. } => "install Docker, or build natively, which needs no daemon",
            Error::DockerTimeout { .. } => {
                "check that the Docker daemon answers (`docker info`); if the build is only slow, allow it more time"
            }
            Error::Interrupted { accepted, .. } => {
                if *accepted {
                    "the locations may still load: check them in Dagster+; the session records them as interrupted"
                } else {
                    "check the locations in Dagster+, then deploy again"
                }
            }
            Error::NotTracked { .. } => {
                "the locations may still load: check them in Dagster+; the session records them as not tracked"
            }
            Error::LoadFailed { timed_out, .. } => {
                if *timed_out {
                    "check that a Dagster+ agent is running for this deployment, or allow the locations more time to load"
                } else {
                    "fix the code of the failed location(s) and deploy again; the others are recorded as deployed"
                }
            }
            Error::Unrecorded { .. } => {
                "free disk space or fix the permissions of the state directory; the locations are deployed as reported, and the session does not know it"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }

    /// When the deploy's outcome could not be recorded in the session, why: the session then
    /// does not know what happened.
    pub fn unrecorded(&self) -> Option<&statedir::Error> {
        match self {
            Error::DeployRejected { unrecorded, .. }
            | Error::Interrupted { unrecorded, .. }
            | Error::NotTracked { unrecorded, .. } => unrecorded.as_deref(),
            _ => None,
        }
    }

    /// Adds why the outcome could not be recorded, for the variants that record one.
    pub(crate) fn with_unrecorded(mut self, error: Option<statedir::Error>) -> Self {
        if let Error::DeployRejected { unrecorded, .. }
        | Error::Interrupted { unrecorded, .. }
        | Error::NotTracked { unrecorded, .. } = &mut self
        {
            *unrecorded = error.map(Box::new);
        }
        self
    }
}

fn session_kind(error: &statedir::Error) -> ErrorKind {
    if error.is_io() {
        ErrorKind::Io
    } else if matches!(error, statedir::Error::UnknownLocations { .. }) {
        // An unknown location name is a bad argument.
        ErrorKind::Usage
    } else {
        ErrorKind::Config
    }
}

fn cloud_kind(error: &cloud::Error) -> ErrorKind {
    if error.is_unauthorized() {
        ErrorKind::Auth
    } else if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_invalid_setting() {
        ErrorKind::Config
    } else {
        ErrorKind::Deploy
    }
}

fn registry_kind(error: &registry::Error) -> ErrorKind {
    match error.kind() {
        registry::ErrorKind::Authentication => ErrorKind::Auth,
        registry::ErrorKind::InvalidInput => ErrorKind::Usage,
        _ => ErrorKind::Registry,
    }
}
