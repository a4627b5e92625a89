//! The CI context: what `detect` returns, and how it is assembled from the provider's
//! variables (`providers.rs`), repository discovery (`discovery.rs`) and local git.
//!
//! The environment is injected as a lookup function so tests never touch the process env.

use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use dagster_deploy_types::PullRequestStatus;
use serde::Serialize;

use crate::discovery::discover_with;
use crate::error::Result;
use crate::git;
use crate::provider::CiProvider;
use crate::providers;

/// Everything known about the CI run: provider, branch, commit, PR and repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiContext {
    /// The CI system.
    pub provider: CiProvider,
    /// The branch being built (the PR's head branch in a PR), if known.
    pub branch: Option<String>,
    /// The commit being built (the PR's head commit in a GitHub PR), if known.
    pub commit_hash: Option<String>,
    /// The pull request / merge request this run belongs to.
    pub pull_request: Option<PullRequest>,
    /// The repository as `owner/name` (owner may contain `/` for GitLab subgroups).
    pub repo: Option<RepoId>,
    /// The git hosting product, when it is GitHub or GitLab.
    pub git_provider: Option<GitProvider>,
    /// The branch pull requests target (e.g. `main`), not the checked-out branch.
    pub base_branch: Option<String>,
    /// The git server's web URL (e.g. `https://github.com` or a GitHub Enterprise URL).
    pub server_url: Option<String>,
    /// The CI run's web page, used as the status URL.
    pub run_url: Option<String>,
    /// The source tree at the commit, e.g. `<server>/<repo>/tree/<sha>`.
    pub git_url: Option<String>,
    /// The branch's web page, e.g. `<server>/<repo>/tree/<branch>`.
    pub branch_url: Option<String>,
    /// The commit's web page, e.g. `<server>/<repo>/commit/<sha>`.
    pub commit_url: Option<String>,
    /// The working-tree root of the git checkout enclosing the project directory.
    pub repo_root: Option<PathBuf>,
}

/// A pull request (GitHub, Bitbucket, Azure, …) or merge request (GitLab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// The PR number (GitLab: the MR iid).
    pub number: u64,
    /// The PR's web page, when it can be known.
    pub url: Option<String>,
    /// Open, closed or merged.
    pub status: PullRequestStatus,
    /// The PR's source branch.
    pub head_ref: Option<String>,
    /// The PR's head commit.
    pub head_sha: Option<String>,
}

/// A repository's owner (possibly `group/subgroup`) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoId {
    /// Everything before the last `/`.
    pub owner: String,
    /// The repository name.
    pub name: String,
}

impl RepoId {
    /// Splits `owner/name` at the last `/`; `None` unless both sides are non-empty.
    pub fn from_full_name(full_name: &str) -> Option<RepoId> {
        let (owner, name) = full_name.trim().trim_end_matches('/').rsplit_once('/')?;
        (!owner.is_empty() && !name.is_empty()).then(|| RepoId {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The git hosting product, as stored in the state file's `git_provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// GitHub or GitHub Enterprise.
    GitHub,
    /// GitLab.
    GitLab,
}

impl GitProvider {
    /// `github` or `gitlab`.
    pub fn as_str(self) -> &'static str {
        match self {
            GitProvider::GitHub => "github",
            GitProvider::GitLab => "gitlab",
        }
    }
}

impl CiContext {
    /// A context with only the provider set.
    pub(crate) fn empty(provider: CiProvider) -> CiContext {
        CiContext {
            provider,
            branch: None,
            commit_hash: None,
            pull_request: None,
            repo: None,
            git_provider: None,
            base_branch: None,
            server_url: None,
            run_url: None,
            git_url: None,
            branch_url: None,
            commit_url: None,
            repo_root: None,
        }
    }

    /// The JSON `inspect` prints (reference-behaviour §3.9): source and project dir, plus git URL
    /// and commit hash on GitHub.
    pub fn inspect_document(&self, project_dir: &Path) -> serde_json::Value {
        let project_dir =
            std::path::absolute(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
        let mut document = serde_json::Map::new();
        document.insert(
            "source".into(),
            format!("source.{}", self.provider.source_name()).into(),
        );
        document.insert(
            "project-dir".into(),
            project_dir.display().to_string().into(),
        );
        if self.provider == CiProvider::GitHub {
            document.insert("git-url".into(), self.git_url.clone().into());
            document.insert("commit-hash".into(), self.commit_hash.clone().into());
        }
        serde_json::Value::Object(document)
    }
}

/// Reads the CI context from the environment (via `env`) and the git checkout at `project_dir`.
///
/// Errors only when a detected GitHub/GitLab job lacks a variable those systems always set, or
/// when the GitHub event file or a PR number cannot be read. Missing git facts are `None`.
pub fn detect(env: &dyn Fn(&str) -> Option<String>, project_dir: &Path) -> Result<CiContext> {
    let provider = CiProvider::detect(env);
    let mut context = CiContext::empty(provider);
    let mut github_default_branch = None;
    match provider {
        CiProvider::GitHub => github_default_branch = providers::github(env, &mut context)?,
        CiProvider::GitLab => providers::gitlab(env, &mut context)?,
        CiProvider::Bitbucket => providers::bitbucket(env, &mut context)?,
        CiProvider::AzurePipelines => providers::azure(env, &mut context)?,
        CiProvider::Buildkite => providers::buildkite(env, &mut context)?,
        CiProvider::CircleCi => providers::circleci(env, &mut context)?,
        CiProvider::Jenkins => providers::jenkins(env, &mut context)?,
        CiProvider::CodeBuild | CiProvider::Travis | CiProvider::Local | CiProvider::Unknown => {}
    }
    let discovery = discover_with(env, project_dir, github_default_branch.as_deref());
    context.repo = context.repo.take().or(discovery.repo);
    // Without a CI marker or a parseable origin, the provider-specific server still tells.
    context.git_provider = discovery.git_provider.or_else(|| {
        let server = context.server_url.as_deref()?.to_ascii_lowercase();
        let host = server
            .split("://")
            .nth(1)
            .unwrap_or(&server)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if host.contains("gitlab") {
            Some(GitProvider::GitLab)
        } else if host.contains("github") {
            Some(GitProvider::GitHub)
        } else {
            None
        }
    });
    context.base_branch = discovery
        .env_base_branch
        .or(context.base_branch.take())
        .or(discovery.origin_head_branch);
    context.repo_root = discovery.repo_root;
    if context.branch.is_none() {
        context.branch = git::git_opt(project_dir, &["rev-parse", "--abbrev-ref", "HEAD"])
            .filter(|b| b != "HEAD");
    }
    if context.commit_hash.is_none() {
        context.commit_hash = git::git_opt(project_dir, &["rev-parse", "HEAD"]);
    }
    Ok(context)
}

/// The value of `name`, treating empty as unset (reference-behaviour §4.1).
pub(crate) fn non_empty(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests;
