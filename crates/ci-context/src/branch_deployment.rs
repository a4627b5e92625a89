//! The facts sent to Dagster+ to create or update a branch deployment (reference-behaviour §4.5),
//! built from a `CiContext` and the commit's `CommitMetadata`.
//!
//! This is a domain type: the GraphQL variable names (`branchData`, `commit`) are the
//! cloud client's business.

use serde::Serialize;

use crate::context::{CiContext, PullRequestStatus};
use crate::error::{Error, Result};
use crate::git::CommitMetadata;

/// Everything `createOrUpdateBranchDeployment` needs besides the base deployment name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchDeploymentData {
    /// `owner/name` for every provider (GitLab: `namespace/name`, reference-behaviour ref-bug 13
    /// fixed).
    pub repo_name: String,
    /// The PR's head branch (or the checked-out branch for local git).
    pub branch_name: String,
    /// The branch's web page, when known.
    pub branch_url: Option<String>,
    /// The PR's web page (`None` for local git).
    pub pull_request_url: Option<String>,
    /// `OPEN`, `CLOSED` or `MERGED`; `CLOSED` when the caller marks it closed.
    pub pull_request_status: PullRequestStatus,
    /// The PR number as the API's string (`None` for local git).
    pub pull_request_number: Option<String>,
    /// The commit being deployed.
    pub commit: BranchDeploymentCommit,
}

/// The `commit` input of the branch-deployment mutation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchDeploymentCommit {
    /// The commit hash (the PR head commit in a PR).
    pub hash: String,
    /// Committer time, unix seconds.
    pub timestamp: f64,
    /// The commit subject.
    pub message: String,
    /// The commit's web page (sent, unlike the reference: reference-behaviour ref-bug 16).
    pub url: Option<String>,
    /// Author name.
    pub author_name: String,
    /// Author email.
    pub author_email: String,
    /// Author avatar; left `None` here (it needs the GitHub API and a token).
    pub author_avatar_url: Option<String>,
}

/// Builds the branch-deployment request for the context's pull/merge request.
///
/// `Err(NotAPullRequest)` (see `Error::is_not_a_pull_request`) when the context has no PR/MR:
/// the caller decides whether that means a full deployment or an error. For local runs where
/// a branch deployment is required, use `branch_deployment_request_for_branch`.
pub fn branch_deployment_request(
    context: &CiContext,
    commit: &CommitMetadata,
    mark_closed: bool,
) -> Result<BranchDeploymentData> {
    let Some(pull_request) = &context.pull_request else {
        return Err(Error::NotAPullRequest {
            provider: context.provider,
        });
    };
    let mut data = request_without_pull_request(context, commit, mark_closed)?;
    if !mark_closed {
        data.pull_request_status = pull_request.status;
    }
    data.pull_request_url = pull_request.url.clone();
    data.pull_request_number = Some(pull_request.number.to_string());
    Ok(data)
}

/// Builds a request from the branch alone, without PR facts (reference-behaviour §4.4: the
/// reference's local git flow when a branch deployment is required). Status is `OPEN`, or `CLOSED`
/// if marked.
pub fn branch_deployment_request_for_branch(
    context: &CiContext,
    commit: &CommitMetadata,
    mark_closed: bool,
) -> Result<BranchDeploymentData> {
    request_without_pull_request(context, commit, mark_closed)
}

fn request_without_pull_request(
    context: &CiContext,
    commit: &CommitMetadata,
    mark_closed: bool,
) -> Result<BranchDeploymentData> {
    let provider = context.provider;
    let missing = |field, advice| Error::MissingBranchDeploymentField {
        field,
        provider,
        advice,
    };
    let repo = context.repo.as_ref().ok_or_else(|| {
        missing(
            "repository",
            "add an `origin` remote such as git@github.com:owner/repo.git, or set GITHUB_REPOSITORY=owner/repo",
        )
    })?;
    let branch = context.branch.clone().ok_or_else(|| {
        missing(
            "branch",
            "check out a branch (not a detached HEAD) in the project's git repository",
        )
    })?;
    let hash = context
        .commit_hash
        .clone()
        .unwrap_or_else(|| commit.hash.clone());
    if hash.is_empty() {
        return Err(missing(
            "commit hash",
            "run inside a git checkout with at least one commit",
        ));
    }
    let commit_url = context
        .commit_url
        .clone()
        .filter(|_| context.commit_hash.is_some());
    let status = if mark_closed {
        PullRequestStatus::Closed
    } else {
        PullRequestStatus::Open
    };
    Ok(BranchDeploymentData {
        repo_name: repo.full_name(),
        branch_name: branch,
        branch_url: context.branch_url.clone(),
        pull_request_url: None,
        pull_request_status: status,
        pull_request_number: None,
        commit: BranchDeploymentCommit {
            hash,
            timestamp: commit.timestamp,
            message: commit.message.clone(),
            url: commit_url,
            author_name: commit.author_name.clone(),
            author_email: commit.author_email.clone(),
            author_avatar_url: None,
        },
    })
}

#[cfg(test)]
mod tests;
