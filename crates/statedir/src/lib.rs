//! The deploy session state directory (`DAGSTER_BUILD_STATEDIR`): one `location-<name>.json`
//! per code location, in the reference tools' exact format so that Python and Rust steps can
//! share a session, plus our own files (`dagster-deploy-session.json`, the deploy outcomes, and
//! the journal of a change in progress), whose names do not start with `location-`.
//!
//! Every command's change is all-or-nothing, even across thousands of files and even if the
//! process is killed: see the `journal` module. Files are replaced through spare files that
//! are flushed once per command and exchanged into place, so a command over thousands of
//! locations costs about what one over a few does: see the `replace` module. Readers hold a shared lock, writers an
//! exclusive one; creating a session refuses to clear a directory holding foreign files. This
//! crate reads no YAML and knows no CLI: callers pass plain data and closures. Errors are data:
//! a plain message, a `help()` worded for any program, and accessors.
//!
//! ```
//! use dagster_deploy_statedir::{BuildMetadata, NewLocation, Session, SessionInfo};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let info = SessionInfo {
//!     tool_version: "0.1.0".to_owned(),
//!     created_at: "2026-01-01T12:00:00Z".parse().unwrap(),
//!     project_dir: "/repo".into(),
//!     organization_url: "https://acme.dagster.cloud".to_owned(),
//! };
//! let sales = NewLocation {
//!     location_name: "sales".to_owned(),
//!     url: "https://acme.dagster.cloud".to_owned(),
//!     deployment_name: "prod".to_owned(),
//!     location_file: "/repo/dagster_cloud.yaml".to_owned(),
//!     is_branch_deployment: false,
//!     build: BuildMetadata::default(),
//!     status_url: None,
//!     project_dir: None,
//! };
//! Session::create(dir.path(), info, vec![sales]).unwrap();
//! assert!(dir.path().join("location-sales.json").is_file());
//!
//! // Another process (a build job) opens the same session and records its image.
//! let session = Session::open(dir.path()).unwrap();
//! let recorded = session
//!     .record_build_output(&[], |state| Ok(format!("ghcr.io/acme/{}:v1", state.location_name)))
//!     .unwrap();
//! assert_eq!(recorded, [("sales".to_owned(), "ghcr.io/acme/sales:v1".to_owned())]);
//! assert_eq!(session.location("sales").unwrap().image(), Some("ghcr.io/acme/sales:v1"));
//! ```

mod error;
mod format;
mod fsio;
mod journal;
mod merge;
mod model;
mod replace;
mod session;
mod status;
#[cfg(test)]
mod testing;

pub use error::{Error, MergeDifference, Result};
pub use model::{
    BuildConfig, BuildMetadata, BuildOutput, DefsStateInfo, DefsStateVersion, DeployOutcome,
    DeployRecord, DeployResult, GitMetadata, LocationState, MergeReport, NewLocation,
    RecordedOutcome, Repair, SessionInfo, Status, StatusChange, TakenOutput,
};
pub use session::Session;

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
