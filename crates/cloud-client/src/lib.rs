//! Client for the Dagster+ GraphQL API, as used by `dagster-deploy` to deploy from CI.
//!
//! The crate owns everything GraphQL: the checked-in partial schema, one `.graphql` file per
//! operation (`graphql/`), the generated types (private), the HTTP transport with retries, and
//! the wait-for-load loop. Its public API speaks in domain types. It does not read files,
//! print, or know about the state directory: location entries arrive as JSON maps. Errors are
//! data: a plain message, a `help()` worded for any program, predicates such as
//! [`Error::is_timeout`] and accessors such as [`Error::status`]. With the `test-support`
//! feature, `test_support` serves the answers of every operation from a local mock server.
//!
//! ```
//! use dagster_deploy_cloud_client::{
//!     ApiToken, ClientOptions, CloudClient, DocumentOverlay, OrgUrl, location_document,
//! };
//! use serde_json::json;
//!
//! let org_url = OrgUrl::from_organization("acme", Some("eu")).unwrap();
//! assert_eq!(org_url.as_str(), "https://acme.eu.dagster.cloud");
//! let client =
//!     CloudClient::new(org_url, ApiToken::new("user:token"), ClientOptions::default()).unwrap();
//! assert_eq!(client.deployment("prod").unwrap().endpoint(), "https://acme.eu.dagster.cloud/prod/graphql");
//!
//! // The deploy document: the dagster_cloud.yaml entry without `build`, with the image laid over.
//! let entry = json!({"location_name": "sales", "code_source": {"package_name": "sales"},
//!                    "build": {"registry": "ghcr.io/acme/sales"}});
//! let overlay = DocumentOverlay {
//!     location_name: "sales".to_owned(),
//!     image: Some("ghcr.io/acme/sales:v1".to_owned()),
//!     ..DocumentOverlay::default()
//! };
//! let document = location_document(entry.as_object().unwrap(), &overlay);
//! assert_eq!(document["image"], "ghcr.io/acme/sales:v1");
//! assert!(document.get("build").is_none());
//! ```

mod client;
mod document;
mod endpoint;
mod error;
mod operations;
#[cfg(test)]
mod property_tests;
#[cfg(feature = "test-support")]
pub mod test_support;
mod token;
mod transport;
mod wait;

pub use client::{
    AgentStatus, AgentType, BranchDeploymentRequest, CloudClient, DeploymentClient, DeploymentInfo,
    DeploymentType, LoadStatus, LocationStatus, SnapshotBaseCondition, WorkspaceEntry,
};
pub use dagster_deploy_types::{GitMetadata, PullRequestStatus, Secret};
pub use document::{DocumentOverlay, PexMetadata, location_document};
pub use endpoint::{OrgUrl, UrlDerivation, validate_deployment_name};
pub use error::{Error, Result};
pub use token::ApiToken;
pub use transport::{ClientOptions, DAGSTER_CLOUD_VERSION};
pub use wait::{LoadEvent, LoadOutcome, LocationLoad, WaitOptions, default_heartbeat_timeout};

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
