//! The GitHub and GitLab REST APIs, as `dagster-deploy` uses them from CI: one pull-request
//! comment (GitHub) or merge-request note (GitLab) per deployment, created on the first run and
//! updated in place afterwards, and a commit author's avatar URL (GitHub).
//!
//! - `token`: [`ForgeToken`], the API token: the workspace's one redacting `Secret`.
//! - `transport`: the one place that sends: the token goes only to the configured API origin
//!   (redirects are reported, never followed; a pagination link to another origin is refused),
//!   request timeouts, and the shared retry policy of `dagster-deploy-http-policy`.
//! - `client`: [`ForgeClient`], the calls of both forges behind one API.
//! - `comment`: [`CommentMarker`], the hidden HTML marker that tells our comment from every
//!   other, and the rule that decides which existing comment is ours.
//!
//! No printing, no environment: the caller says which forge, which API URL and which token.
//! Errors are data: a plain message, a `help()`, predicates such as
//! [`Error::is_permission`], and accessors such as [`Error::status`].
//!
//! ```
//! use dagster_deploy_forge::{CommentMarker, ForgeClient, ForgeOptions, ForgeToken};
//!
//! let client = ForgeClient::github(
//!     "https://api.github.com",
//!     ForgeToken::new("ghs_example"),
//!     ForgeOptions::default(),
//! )
//! .unwrap();
//! assert_eq!(client.api_origin(), "https://api.github.com");
//! assert!(!format!("{client:?}").contains("ghs_example"));
//!
//! // The marker is an HTML comment: invisible in the rendered comment, and keyed so that two
//! // deployments commenting on one pull request keep one comment each.
//! let marker = CommentMarker::new("pr-42");
//! assert_eq!(marker.as_str(), "<!-- dagster-deploy:notify pr-42 -->");
//!
//! // Plain HTTP goes to loopback only: the token would travel in clear text.
//! let error = ForgeClient::github("http://github.example", ForgeToken::new("t"), ForgeOptions::default())
//!     .unwrap_err();
//! assert!(error.is_invalid_setting());
//! ```

mod client;
mod comment;
mod error;
mod token;
mod transport;

pub use client::{CommentOutcome, Forge, ForgeClient, ReviewTarget};
pub use comment::CommentMarker;
pub use dagster_deploy_http_policy::{HttpTransport, TransportSettings};
pub use error::{Error, Result};
pub use token::ForgeToken;
pub use transport::ForgeOptions;

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
