//! Per-provider readers that fill a `CiContext` from CI variables (reference-behaviour §4.2, §4.3
//! and the documented variables of Bitbucket Pipelines, Azure Pipelines, Buildkite, CircleCI,
//! Jenkins).
//!
//! Repository discovery and local-git fallbacks are applied afterwards by `context::detect`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::context::{CiContext, PullRequest, PullRequestStatus, RepoId, non_empty};
use crate::error::{Error, Result};
use crate::provider::CiProvider;
use crate::remote::RemoteUrl;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn required(env: Env<'_>, provider: CiProvider, name: &'static str) -> Result<String> {
    non_empty(env, name).ok_or(Error::MissingEnvVar { provider, name })
}

fn parse_number(name: &'static str, value: &str) -> Result<u64> {
    value.trim().parse().map_err(|_| Error::InvalidEnvVar {
        name,
        value: value.to_owned(),
        expected: "a pull request number",
    })
}

fn strip_heads(git_ref: &str) -> Option<String> {
    git_ref.strip_prefix("refs/heads/").map(str::to_owned)
}

/// The subset of a GitHub Actions event payload this crate reads.
#[derive(Debug, Deserialize)]
pub(crate) struct GitHubEvent {
    pub(crate) repository: Option<GitHubRepository>,
    pub(crate) pull_request: Option<GitHubPullRequest>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GitHubRepository {
    pub(crate) full_name: String,
    pub(crate) default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GitHubPullRequest {
    number: u64,
    html_url: String,
    state: GitHubPullRequestState,
    #[serde(default)]
    merged: Option<bool>,
    head: GitHubHead,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum GitHubPullRequestState {
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
struct GitHubHead {
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
}

pub(crate) fn read_github_event(path: &Path) -> Result<GitHubEvent> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadEventFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::ParseEventFile {
        path: path.to_path_buf(),
        source,
    })
}

/// GitHub Actions (§4.2). Returns the repository's default branch from the event, if any.
pub(crate) fn github(env: Env<'_>, context: &mut CiContext) -> Result<Option<String>> {
    let provider = CiProvider::GitHub;
    let server = required(env, provider, "GITHUB_SERVER_URL")?
        .trim_end_matches('/')
        .to_owned();
    let sha = required(env, provider, "GITHUB_SHA")?;
    let repository = required(env, provider, "GITHUB_REPOSITORY")?;
    let run_id = required(env, provider, "GITHUB_RUN_ID")?;
    let event_path = PathBuf::from(required(env, provider, "GITHUB_EVENT_PATH")?);
    let event = read_github_event(&event_path)?;

    let full_name = event
        .repository
        .as_ref()
        .map_or(repository, |r| r.full_name.clone());
    let repo_web = format!("{server}/{full_name}");
    context.repo = RepoId::from_full_name(&full_name);
    context.run_url = Some(format!("{repo_web}/actions/runs/{run_id}"));
    if let Some(pr) = event.pull_request {
        let status = match (pr.merged, pr.state) {
            (Some(true), _) => PullRequestStatus::Merged,
            (_, GitHubPullRequestState::Open) => PullRequestStatus::Open,
            (_, GitHubPullRequestState::Closed) => PullRequestStatus::Closed,
        };
        context.commit_hash = Some(pr.head.sha.clone());
        context.branch = Some(pr.head.git_ref.clone());
        context.pull_request = Some(PullRequest {
            number: pr.number,
            url: Some(pr.html_url),
            status,
            head_ref: Some(pr.head.git_ref),
            head_sha: Some(pr.head.sha),
        });
    } else {
        context.commit_hash = Some(sha);
        let is_branch = non_empty(env, "GITHUB_REF_TYPE").as_deref() == Some("branch");
        context.branch = non_empty(env, "GITHUB_REF_NAME")
            .filter(|_| is_branch)
            .or_else(|| {
                non_empty(env, "GITHUB_REF")
                    .as_deref()
                    .and_then(strip_heads)
            });
    }
    let commit = context.commit_hash.clone().unwrap_or_default();
    context.branch_url = context
        .branch
        .as_ref()
        .map(|branch| format!("{repo_web}/tree/{branch}"));
    context.git_url = Some(format!("{repo_web}/tree/{commit}"));
    context.commit_url = Some(format!("{repo_web}/commit/{commit}"));
    context.server_url = Some(server);
    Ok(event.repository.and_then(|r| r.default_branch))
}

/// GitLab CI (§4.3), with the repository as `namespace/name` from `CI_PROJECT_PATH`
/// (reference-behaviour ref-bug 13).
pub(crate) fn gitlab(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    let provider = CiProvider::GitLab;
    let sha = required(env, provider, "CI_COMMIT_SHA")?;
    let job_url = required(env, provider, "CI_JOB_URL")?;
    let project_name = required(env, provider, "CI_PROJECT_NAME")?;
    let project_url = required(env, provider, "CI_PROJECT_URL")?
        .trim_end_matches('/')
        .to_owned();

    context.repo = non_empty(env, "CI_PROJECT_PATH")
        .and_then(|path| RepoId::from_full_name(&path))
        .or_else(|| {
            let namespace = non_empty(env, "CI_PROJECT_NAMESPACE")?;
            RepoId::from_full_name(&format!("{namespace}/{project_name}"))
        });
    context.branch = non_empty(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
        .or_else(|| non_empty(env, "CI_COMMIT_REF_NAME"));
    context.branch_url = context
        .branch
        .as_ref()
        .map(|branch| format!("{project_url}/-/tree/{branch}"));
    if let Some(iid) = non_empty(env, "CI_MERGE_REQUEST_IID") {
        let number = parse_number("CI_MERGE_REQUEST_IID", &iid)?;
        // Forked MRs live in the target project; CI_MERGE_REQUEST_PROJECT_URL names it.
        let mr_project = non_empty(env, "CI_MERGE_REQUEST_PROJECT_URL").map_or_else(
            || project_url.clone(),
            |url| url.trim_end_matches('/').to_owned(),
        );
        context.pull_request = Some(PullRequest {
            number,
            url: Some(format!("{mr_project}/-/merge_requests/{number}")),
            status: PullRequestStatus::Open,
            head_ref: context.branch.clone(),
            head_sha: non_empty(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")
                .or_else(|| Some(sha.clone())),
        });
    }
    context.git_url = Some(format!("{project_url}/-/tree/{sha}"));
    context.commit_url = Some(format!("{project_url}/-/commit/{sha}"));
    context.commit_hash = Some(sha);
    context.run_url = Some(job_url);
    context.server_url = non_empty(env, "CI_SERVER_URL")
        .map(|url| url.trim_end_matches('/').to_owned())
        .or_else(|| RemoteUrl::parse(&project_url).map(|remote| remote.web_base()));
    Ok(())
}

/// Web links on a forge recognised from a remote's host (GitHub, GitLab, Bitbucket Cloud).
struct ForgeLinks {
    repo_web: String,
    pull: &'static str,
    tree: &'static str,
    commit: &'static str,
}

impl ForgeLinks {
    fn for_remote(remote: &RemoteUrl) -> Option<ForgeLinks> {
        let (pull, tree, commit) = if remote.host.contains("github") {
            ("pull", "tree", "commit")
        } else if remote.host.contains("gitlab") {
            ("-/merge_requests", "-/tree", "-/commit")
        } else if remote.host.contains("bitbucket") {
            ("pull-requests", "branch", "commits")
        } else {
            return None;
        };
        Some(ForgeLinks {
            repo_web: remote.web_url(),
            pull,
            tree,
            commit,
        })
    }

    /// Fills server, branch, commit and tree links and returns the PR URL for `number`.
    fn apply(
        &self,
        remote: &RemoteUrl,
        context: &mut CiContext,
        number: Option<u64>,
    ) -> Option<String> {
        let ForgeLinks {
            repo_web,
            pull,
            tree,
            commit,
        } = self;
        context.server_url.get_or_insert_with(|| remote.web_base());
        if let Some(branch) = &context.branch {
            context
                .branch_url
                .get_or_insert_with(|| format!("{repo_web}/{tree}/{branch}"));
        }
        if let Some(sha) = &context.commit_hash {
            let tree_kind = if *tree == "branch" { "src" } else { tree };
            context
                .git_url
                .get_or_insert_with(|| format!("{repo_web}/{tree_kind}/{sha}"));
            context
                .commit_url
                .get_or_insert_with(|| format!("{repo_web}/{commit}/{sha}"));
        }
        number.map(|n| format!("{repo_web}/{pull}/{n}"))
    }
}

/// Fills links from a remote URL (if parseable) and returns the PR URL for `number`.
fn links_from_remote(
    remote: Option<&str>,
    context: &mut CiContext,
    number: Option<u64>,
) -> Option<String> {
    let remote = RemoteUrl::parse(remote?)?;
    context.repo.get_or_insert_with(|| RepoId {
        owner: remote.owner.clone(),
        name: remote.name.clone(),
    });
    ForgeLinks::for_remote(&remote)?.apply(&remote, context, number)
}

fn open_pull_request(
    number: u64,
    url: Option<String>,
    context: &CiContext,
    head_sha: Option<String>,
) -> PullRequest {
    PullRequest {
        number,
        url,
        status: PullRequestStatus::Open,
        head_ref: context.branch.clone(),
        head_sha: head_sha.or_else(|| context.commit_hash.clone()),
    }
}

/// Bitbucket Pipelines (`BITBUCKET_*` variables).
pub(crate) fn bitbucket(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    context.commit_hash = non_empty(env, "BITBUCKET_COMMIT");
    context.branch = non_empty(env, "BITBUCKET_BRANCH");
    context.base_branch = non_empty(env, "BITBUCKET_PR_DESTINATION_BRANCH");
    context.repo =
        non_empty(env, "BITBUCKET_REPO_FULL_NAME").and_then(|full| RepoId::from_full_name(&full));
    let number = non_empty(env, "BITBUCKET_PR_ID")
        .map(|id| parse_number("BITBUCKET_PR_ID", &id))
        .transpose()?;
    let server = non_empty(env, "BITBUCKET_GIT_HTTP_ORIGIN")
        .and_then(|origin| RemoteUrl::parse(&origin))
        .map_or_else(
            || "https://bitbucket.org".to_owned(),
            |remote| remote.web_base(),
        );
    let repo_web = context.repo.as_ref().map(|repo| format!("{server}/{repo}"));
    if let Some(repo_web) = &repo_web {
        if let Some(build) = non_empty(env, "BITBUCKET_BUILD_NUMBER") {
            context.run_url = Some(format!("{repo_web}/pipelines/results/{build}"));
        }
        if let Some(branch) = &context.branch {
            context.branch_url = Some(format!("{repo_web}/branch/{branch}"));
        }
        if let Some(sha) = &context.commit_hash {
            context.git_url = Some(format!("{repo_web}/src/{sha}"));
            context.commit_url = Some(format!("{repo_web}/commits/{sha}"));
        }
    }
    if let Some(number) = number {
        let url = repo_web
            .as_ref()
            .map(|repo_web| format!("{repo_web}/pull-requests/{number}"));
        context.pull_request = Some(open_pull_request(number, url, context, None));
    }
    context.server_url = Some(server);
    Ok(())
}

/// Azure Pipelines (`BUILD_*` and `SYSTEM_PULLREQUEST_*` variables).
pub(crate) fn azure(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    context.commit_hash = non_empty(env, "BUILD_SOURCEVERSION");
    let pr_number = match non_empty(env, "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER") {
        Some(n) => Some(parse_number("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", &n)?),
        None => non_empty(env, "SYSTEM_PULLREQUEST_PULLREQUESTID")
            .map(|id| parse_number("SYSTEM_PULLREQUEST_PULLREQUESTID", &id))
            .transpose()?,
    };
    context.branch = if pr_number.is_some() {
        non_empty(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH").map(|b| strip_heads(&b).unwrap_or(b))
    } else {
        non_empty(env, "BUILD_SOURCEBRANCH")
            .as_deref()
            .and_then(strip_heads)
    };
    context.base_branch =
        non_empty(env, "SYSTEM_PULLREQUEST_TARGETBRANCH").map(|b| strip_heads(&b).unwrap_or(b));
    let collection =
        non_empty(env, "SYSTEM_COLLECTIONURI").map(|c| c.trim_end_matches('/').to_owned());
    let team_project = non_empty(env, "SYSTEM_TEAMPROJECT");
    if let (Some(collection), Some(team_project), Some(build_id)) =
        (&collection, &team_project, non_empty(env, "BUILD_BUILDID"))
    {
        context.run_url = Some(format!(
            "{collection}/{team_project}/_build/results?buildId={build_id}"
        ));
    }
    let repo_name = non_empty(env, "BUILD_REPOSITORY_NAME");
    context.repo = repo_name.as_deref().and_then(RepoId::from_full_name);
    let repo_uri = non_empty(env, "BUILD_REPOSITORY_URI");
    let head_sha = non_empty(env, "SYSTEM_PULLREQUEST_SOURCECOMMITID");
    let pr_url = if non_empty(env, "BUILD_REPOSITORY_PROVIDER").as_deref() == Some("TfsGit") {
        // Azure Repos: the repository web URL is BUILD_REPOSITORY_URI itself.
        if context.repo.is_none() {
            context.repo = team_project
                .zip(repo_name)
                .map(|(owner, name)| RepoId { owner, name });
        }
        context.server_url = collection;
        let repo_web =
            repo_uri.map(|uri| RemoteUrl::parse(&uri).map_or(uri, |remote| remote.web_url()));
        if let (Some(repo_web), Some(sha)) = (&repo_web, &context.commit_hash) {
            context.commit_url = Some(format!("{repo_web}/commit/{sha}"));
            context.git_url = Some(format!("{repo_web}?version=GC{sha}"));
        }
        if let (Some(repo_web), Some(branch)) = (&repo_web, &context.branch) {
            context.branch_url = Some(format!("{repo_web}?version=GB{branch}"));
        }
        repo_web
            .zip(pr_number)
            .map(|(repo_web, n)| format!("{repo_web}/pullrequest/{n}"))
    } else {
        links_from_remote(repo_uri.as_deref(), context, pr_number)
    };
    if let Some(number) = pr_number {
        context.pull_request = Some(open_pull_request(number, pr_url, context, head_sha));
    }
    Ok(())
}

/// Buildkite (`BUILDKITE_*` variables).
pub(crate) fn buildkite(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    // Buildkite uses the literal `HEAD` for builds without a resolved commit.
    context.commit_hash = non_empty(env, "BUILDKITE_COMMIT").filter(|c| c != "HEAD");
    context.branch = non_empty(env, "BUILDKITE_BRANCH");
    context.base_branch = non_empty(env, "BUILDKITE_PULL_REQUEST_BASE_BRANCH");
    context.run_url = non_empty(env, "BUILDKITE_BUILD_URL");
    let number = non_empty(env, "BUILDKITE_PULL_REQUEST")
        .filter(|value| value != "false")
        .map(|value| parse_number("BUILDKITE_PULL_REQUEST", &value))
        .transpose()?;
    let pr_url = links_from_remote(non_empty(env, "BUILDKITE_REPO").as_deref(), context, number);
    if let Some(number) = number {
        context.pull_request = Some(open_pull_request(number, pr_url, context, None));
    }
    Ok(())
}

/// CircleCI (`CIRCLE_*` variables).
pub(crate) fn circleci(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    context.commit_hash = non_empty(env, "CIRCLE_SHA1");
    context.branch = non_empty(env, "CIRCLE_BRANCH");
    context.run_url = non_empty(env, "CIRCLE_BUILD_URL");
    if let (Some(owner), Some(name)) = (
        non_empty(env, "CIRCLE_PROJECT_USERNAME"),
        non_empty(env, "CIRCLE_PROJECT_REPONAME"),
    ) {
        context.repo = Some(RepoId { owner, name });
    }
    let pr_link = non_empty(env, "CIRCLE_PULL_REQUEST");
    let number = match non_empty(env, "CIRCLE_PR_NUMBER") {
        Some(n) => Some(parse_number("CIRCLE_PR_NUMBER", &n)?),
        None => pr_link
            .as_deref()
            .map(|url| {
                parse_number(
                    "CIRCLE_PULL_REQUEST",
                    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url),
                )
            })
            .transpose()?,
    };
    let derived = links_from_remote(
        non_empty(env, "CIRCLE_REPOSITORY_URL").as_deref(),
        context,
        number,
    );
    if let Some(number) = number {
        context.pull_request = Some(open_pull_request(
            number,
            pr_link.or(derived),
            context,
            None,
        ));
    }
    Ok(())
}

/// Jenkins (Git plugin and multibranch `CHANGE_*` variables).
pub(crate) fn jenkins(env: Env<'_>, context: &mut CiContext) -> Result<()> {
    context.commit_hash = non_empty(env, "GIT_COMMIT");
    context.run_url = non_empty(env, "BUILD_URL");
    let number = non_empty(env, "CHANGE_ID")
        .map(|id| parse_number("CHANGE_ID", &id))
        .transpose()?;
    context.branch = if number.is_some() {
        non_empty(env, "CHANGE_BRANCH")
    } else {
        non_empty(env, "BRANCH_NAME").or_else(|| {
            non_empty(env, "GIT_BRANCH")
                .map(|b| b.strip_prefix("origin/").map_or(b.clone(), str::to_owned))
        })
    };
    context.base_branch = non_empty(env, "CHANGE_TARGET");
    let derived = links_from_remote(non_empty(env, "GIT_URL").as_deref(), context, number);
    if let Some(number) = number {
        let url = non_empty(env, "CHANGE_URL").or(derived);
        context.pull_request = Some(open_pull_request(number, url, context, None));
    }
    Ok(())
}
