//! Client for the Dagster+ GraphQL API, as used by `dagster-deploy` to deploy from CI.
//!
//! The crate owns everything GraphQL: the checked-in partial schema, one `.graphql` file per
//! operation (`graphql/`), the generated types (private), the HTTP transport with retries, and
//! the wait-for-load loop. Its public API speaks in domain types. It does not read files,
//! print, or know about the state directory: location entries arrive as JSON maps.

mod client;
mod document;
mod endpoint;
mod error;
mod operations;
#[cfg(test)]
mod property_tests;
mod token;
mod transport;
mod wait;

pub use client::{
    AgentStatus, AgentType, BranchDeploymentRequest, CloudClient, DeploymentClient, DeploymentInfo,
    DeploymentType, LoadStatus, LocationStatus, SnapshotBaseCondition,
};
pub use dagster_deploy_types::{GitMetadata, PullRequestStatus, Secret};
pub use document::{DocumentOverlay, PexMetadata, location_document};
pub use endpoint::{OrgUrl, UrlDerivation, validate_deployment_name};
pub use error::{Error, Result};
pub use token::ApiToken;
pub use transport::{ClientOptions, DAGSTER_CLOUD_VERSION};
pub use wait::{LoadEvent, LoadOutcome, LocationLoad, WaitOptions, default_heartbeat_timeout};
