//! The deploy session state directory (`DAGSTER_BUILD_STATEDIR`): one `location-<name>.json`
//! per code location, in the reference tools' exact format so that Python and Rust steps can
//! share a session, plus our own files (`dagster-deploy-session.json`, the deploy outcomes, and
//! the journal of a change in progress), whose names do not start with `location-`.
//!
//! Every command's change is all-or-nothing, even across thousands of files and even if the
//! process is killed: see the `journal` module. Readers hold a shared lock, writers an
//! exclusive one; `start` refuses to clear a directory holding foreign files. This crate reads
//! no YAML and knows no CLI: callers pass plain data and closures.

mod error;
mod format;
mod fsio;
mod journal;
mod merge;
mod model;
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
