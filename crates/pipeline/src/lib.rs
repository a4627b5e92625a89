//! The stages of a dagster-deploy pipeline as library calls, so that a platform team's own
//! tool runs the same stages the `dagster-deploy` CLI does:
//!
//! - [`config`]: find and validate a deploy configuration (a dg project or workspace, or a
//!   `dagster_cloud.yaml`);
//! - [`start`]: open a session from it (CI context, deployment type, branch deployment, git
//!   facts); [`branch`]: branch-deployment requests;
//! - [`build_output`]: record images built elsewhere; [`build`]: build and push them natively
//!   or with Docker, then record them;
//! - [`documents`] and [`deploy`]: turn a session into deploy documents, deploy, wait for each
//!   location to load and record each one's outcome; [`unchanged`]: which locations the
//!   deployment already runs, so that a deploy can leave them out;
//! - [`image`]: push an image; [`up`]: the whole pipeline in one call;
//! - [`notify`]: the session's deploy report as one pull-request comment or merge-request note,
//!   and the head commit's author avatar for a branch deployment.
//!
//! The stages never print, read environment variables or exit: settings come in as plain
//! structs (the environment, where the CI context needs it, as a lookup function), progress goes
//! out as [`Event`]s to a [`Progress`] the caller supplies, and failures are [`Error`]s whose
//! [`ErrorKind`] a caller maps to its own outcome (an exit code, a retry).
//!
//! This crate depends on the libraries (`buildconfig`, `statedir`, `cloud-client`,
//! `registry`, `ci-context`, `forge`, `types`); they never depend on it.

pub mod branch;
pub mod build;
pub mod build_output;
pub mod config;
pub mod deploy;
pub mod documents;
mod error;
pub mod image;
pub mod notify;
mod progress;
pub mod registry;
pub mod start;
pub mod unchanged;
pub mod up;

pub use config::{ConfigSource, LoadedConfig, load_config};
pub use deploy::{
    DeployPlan, DeployReport, Interruption, deploy_and_wait, leave_out_unchanged, plan_deploy,
};
pub use error::{Error, ErrorKind, Result, one_line};
pub use progress::{DepsLayerSource, Event, Progress, Silent};
pub use start::{StartPlan, StartSettings, Started, open_session};
