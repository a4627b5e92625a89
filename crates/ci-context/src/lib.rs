//! Where a `dagster-deploy` run happens: CI provider, branch, commit, pull request and
//! repository, read from CI variables and the local git checkout, plus the branch-deployment
//! request built from them.
//!
//! No network, no printing: the CLI decides what to show and what to send to Dagster+.

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
