//! Branch deployments: the request for the current pull request (or branch), built from the CI
//! context and the commit, and the calls that create, update, look up or delete one.

use std::path::Path;

use dagster_deploy_ci_context as ci;
use dagster_deploy_cloud_client::{BranchDeploymentRequest, CloudClient, SnapshotBaseCondition};

use crate::error::{Error, Result};

/// The branch-deployment request for `ci_context`: its pull or merge request when there is
/// one, else the checked-out branch of the git checkout at `project_dir`. With `mark_closed`,
/// the request closes the branch deployment.
pub fn branch_request(
    ci_context: &ci::CiContext,
    project_dir: &Path,
    mark_closed: bool,
) -> Result<BranchDeploymentRequest> {
    let commit = ci::commit_metadata(project_dir, None)?;
    let data = if ci_context.pull_request.is_some() {
        ci::branch_deployment_request(ci_context, &commit, mark_closed)
    } else {
        ci::branch_deployment_request_for_branch(ci_context, &commit, mark_closed)
    }
    .map_err(Error::NoBranch)?;
    Ok(BranchDeploymentRequest {
        repo_name: data.repo_name,
        branch_name: data.branch_name,
        branch_url: data.branch_url,
        pull_request_url: data.pull_request_url,
        pull_request_status: Some(data.pull_request_status),
        pull_request_number: data.pull_request_number,
        commit_hash: data.commit.hash,
        timestamp: data.commit.timestamp,
        commit_message: Some(data.commit.message),
        commit_url: data.commit.url,
        author_name: Some(data.commit.author_name),
        author_email: Some(data.commit.author_email),
        author_avatar_url: data.commit.author_avatar_url,
        base_deployment_name: None,
        snapshot_base_condition: None,
    })
}

/// What to create or update a branch deployment with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchSettings {
    /// The deployment the branch deployment is based on; `None` leaves it to Dagster+.
    pub base_deployment: Option<String>,
    /// When the branch deployment snapshots its base.
    pub snapshot_base_condition: Option<SnapshotBaseCondition>,
    /// Close it (the pull request was closed or merged).
    pub mark_closed: bool,
    /// The head commit's author's avatar, when the caller could look it up (the GitHub API
    /// gives it; this crate does not call forges).
    pub author_avatar_url: Option<String>,
}

/// Creates or updates the branch deployment of the current pull request (or branch) and
/// returns its name. Any failure is an error: this never falls back to the base deployment
/// (reference-behaviour ref-bug 15).
pub async fn upsert_branch_deployment(
    client: &CloudClient,
    ci_context: &ci::CiContext,
    project_dir: &Path,
    settings: &BranchSettings,
) -> Result<String> {
    let mut request = branch_request(ci_context, project_dir, settings.mark_closed)?;
    request.base_deployment_name = settings.base_deployment.clone();
    request.snapshot_base_condition = settings.snapshot_base_condition;
    request.author_avatar_url = settings.author_avatar_url.clone();
    Ok(client.create_or_update_branch_deployment(&request).await?)
}

/// The name of the current pull request's (or branch's) branch deployment, changing nothing.
/// A lookup needs only the repository and the branch, not the commit's metadata.
pub async fn lookup_branch_deployment(
    client: &CloudClient,
    ci_context: &ci::CiContext,
) -> Result<String> {
    let repo = ci_context.repo.as_ref().map(|repo| repo.full_name());
    let branch = ci_context
        .pull_request
        .as_ref()
        .and_then(|pull_request| pull_request.head_ref.clone())
        .or_else(|| ci_context.branch.clone());
    let (Some(repo), Some(branch)) = (repo, branch) else {
        return Err(Error::NoRepositoryOrBranch);
    };
    Ok(client.branch_deployment_name(&repo, &branch).await?)
}
