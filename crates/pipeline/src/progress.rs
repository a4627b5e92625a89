//! How a stage tells its caller what it is doing: [`Event`]s, given to a [`Progress`] the
//! caller supplies. The stages never print; a CLI turns events into lines, spinners and
//! warnings, an embedding tool into its own log or nothing ([`Silent`]).

use std::path::Path;
use std::time::Duration;

use dagster_deploy_ci_context::CiProvider;
use dagster_deploy_cloud_client::{LoadEvent, LocationLoad, OrgUrl};
use dagster_deploy_registry::ImageRef;
use dagster_deploy_statedir::DeployRecord;

/// Something a stage did or found, in the order it happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Opening a session: the CI system the run is in.
    CiProvider(&'a CiProvider),
    /// The connection to Dagster+ was checked.
    Connected {
        /// The organization URL.
        organization_url: &'a OrgUrl,
    },
    /// Opening a session: where it deploys to.
    Target {
        /// The deployment the session deploys to.
        deployment: &'a str,
        /// For a branch deployment, its base deployment.
        base_deployment: Option<&'a str>,
    },
    /// Deploying: the session was started long ago, so its images may be stale.
    StaleSession {
        /// Its age, in whole hours.
        hours: u64,
    },
    /// Deploying with `leave_out_unchanged`: which locations the deployment already runs.
    Compared {
        /// The deployment.
        deployment: &'a str,
        /// Locations left out, in order.
        unchanged: &'a [String],
        /// Locations that are sent, each with what differs.
        changed: &'a [(String, String)],
    },
    /// Deploying with `leave_out_unchanged`: what the deployment runs could not be read, so
    /// every location is sent.
    NotCompared {
        /// Why.
        reason: &'a str,
    },
    /// Deploying: the deploy is about to be sent.
    Deploying {
        /// The locations.
        locations: &'a [String],
        /// The deployment.
        deployment: &'a str,
        /// The GraphQL endpoint.
        endpoint: &'a str,
    },
    /// Deploying: Dagster+ accepted the deploy.
    Accepted {
        /// The deployment's web page.
        deployment_url: &'a str,
    },
    /// Deploying: the wait for the locations to load starts.
    WaitStarted {
        /// The locations waited for.
        locations: &'a [String],
    },
    /// Deploying: what Dagster+ reported while the locations load.
    Load(&'a LoadEvent),
    /// Deploying: the wait ended (whatever its outcome).
    WaitEnded,
    /// Deploying: how one location ended.
    LocationResult(&'a LocationLoad),
    /// Deploying: the outcomes were recorded; locations whose inputs changed meanwhile, or
    /// that left the session, are named.
    Recorded(&'a DeployRecord),
    /// Building natively: a location's code is imported from below a directory that goes on
    /// `PYTHONPATH`.
    PythonPath {
        /// The location.
        location: &'a str,
        /// The module in the image.
        path: &'a str,
        /// The `PYTHONPATH` entry.
        entry: &'a str,
    },
    /// Building natively: a location's code is not in its build directory, so the base image
    /// must provide it.
    CodeFromBase {
        /// The location.
        location: &'a str,
        /// The module or file looked for.
        name: &'a str,
        /// The build directory.
        build_directory: &'a Path,
        /// The image directories searched.
        searched: &'a [String],
        /// The location's `working_directory`, when it is an absolute path outside the image's
        /// code directory (a Dockerfile-era setting): the code directory should be this one.
        outside_workdir: Option<&'a str>,
        /// The image's code directory.
        workdir: &'a str,
    },
    /// A registry client was made.
    RegistryClient {
        /// The registries the explicit login (if any) is for.
        login_for: Option<&'a [String]>,
        /// Registries reached over plain HTTP.
        insecure: &'a [String],
        /// The request timeout, if the caller set one.
        request_timeout: Option<Duration>,
    },
    /// Building natively: a location's image is being built.
    Building {
        /// The location.
        location: &'a str,
        /// Its build directory.
        build_directory: &'a Path,
        /// The base image.
        base: &'a ImageRef,
    },
    /// Building natively: a location's image was pushed.
    Pushed {
        /// The image, by tag.
        image: &'a ImageRef,
        /// Its manifest digest.
        digest: &'a str,
        /// Whether the code layer was uploaded (else the registry had it).
        layer_uploaded: bool,
        /// Whether the registry already held this exact image (same content key), so nothing
        /// was compressed or uploaded; at most the manifest was pushed under a new tag.
        reused: bool,
    },
    /// Building with Docker: a command is run.
    Running {
        /// The program (`docker`).
        program: &'a str,
        /// Its arguments.
        arguments: &'a [&'a str],
    },
}

/// Receives a stage's [`Event`]s. Calls come from the task running the stage, one at a time.
pub trait Progress: Send + Sync {
    /// Called for each event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event);
    }
}

/// A [`Progress`] that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _event: &Event<'_>) {}
}
