//! Where a `dagster-deploy` run happens: CI provider, branch, commit, pull request and
//! repository, read from CI variables and the local git checkout, plus the branch-deployment
//! request built from them.
//!
//! No network, no printing: the CLI decides what to show and what to send to Dagster+. The
//! environment is passed in as a lookup function, so a caller (or a test) decides what it
//! holds. Errors are data: a plain message, a `help()`, and predicates such as
//! [`Error::is_not_a_pull_request`].
//!
//! ```
//! use std::collections::HashMap;
//! use dagster_deploy_ci_context::{CiProvider, PullRequestStatus, detect};
//!
//! // A GitLab merge-request pipeline, as GitLab sets its variables.
//! let env: HashMap<&str, &str> = HashMap::from([
//!     ("GITLAB_CI", "true"),
//!     ("CI_COMMIT_SHA", "2222222222222222222222222222222222222222"),
//!     ("CI_COMMIT_REF_NAME", "feature/forecast"),
//!     ("CI_JOB_URL", "https://gitlab.com/acme/data-platform/pipelines/-/jobs/555"),
//!     ("CI_PROJECT_NAME", "pipelines"),
//!     ("CI_PROJECT_NAMESPACE", "acme/data-platform"),
//!     ("CI_PROJECT_PATH", "acme/data-platform/pipelines"),
//!     ("CI_PROJECT_URL", "https://gitlab.com/acme/data-platform/pipelines"),
//!     ("CI_SERVER_URL", "https://gitlab.com"),
//!     ("CI_MERGE_REQUEST_IID", "17"),
//!     ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
//! ]);
//! let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
//! let outside_git = tempfile::tempdir().unwrap();
//! let context = detect(&lookup, outside_git.path()).unwrap();
//! assert_eq!(context.provider, CiProvider::GitLab);
//! assert_eq!(context.repo.unwrap().full_name(), "acme/data-platform/pipelines");
//! let merge_request = context.pull_request.unwrap();
//! assert_eq!((merge_request.number, merge_request.status), (17, PullRequestStatus::Open));
//! ```

mod branch_deployment;
mod context;
mod discovery;
mod error;
mod git;
mod guess;
mod provider;
mod providers;
mod remote;
pub mod scaffold;

pub use branch_deployment::{
    BranchDeploymentCommit, BranchDeploymentData, branch_deployment_request,
    branch_deployment_request_for_branch,
};
pub use context::{CiContext, GitProvider, PullRequest, RepoId, detect};
pub use dagster_deploy_types::PullRequestStatus;
pub use discovery::{RepoDiscovery, discover};
pub use error::{Error, Result};
pub use git::{CommitMetadata, commit_metadata};
pub use guess::{DeploymentType, DeploymentTypeGuess, guess_deployment_type};
pub use provider::CiProvider;
pub use remote::RemoteUrl;

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
