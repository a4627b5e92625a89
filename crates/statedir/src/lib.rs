//! The deploy session state directory (`DAGSTER_BUILD_STATEDIR`): one `location-<name>.json`
//! per code location, in the reference tools' exact format so that Python and Rust steps can
//! share a session, plus our own `dagster-deploy-session.json`. Writes are atomic and
//! read-modify-write cycles hold a lock; `start` refuses to clear a directory holding foreign
//! files. This crate reads no YAML and knows no CLI: callers pass plain data and closures.

mod error;
mod format;
mod fsio;
mod merge;
mod model;
mod session;
mod status;

pub use error::{Error, MergeDifference, Result};
pub use model::{
    BuildConfig, BuildMetadata, BuildOutput, DefsStateInfo, DefsStateVersion, DeployResult,
    LocationState, MergeReport, NewLocation, SessionInfo, Status, StatusChange, TakenOutput,
};
pub use session::Session;
