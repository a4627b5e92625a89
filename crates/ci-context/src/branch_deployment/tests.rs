//! Tests of the branch-deployment request for GitHub, GitLab and local git contexts.

use std::path::PathBuf;

use super::*;
use crate::context::{CiContext, PullRequest, RepoId, detect};
use crate::git::commit_metadata;
use crate::git::test_repo::{git, repo_with_commit};
use crate::provider::CiProvider;

fn commit() -> CommitMetadata {
    CommitMetadata {
        hash: "ffffffffffffffffffffffffffffffffffffffff".into(),
        timestamp: 1_700_000_123.0,
        message: "Add the sales report asset".into(),
        author_name: "Ada Lovelace".into(),
        author_email: "ada@example.com".into(),
    }
}

fn github_pr_context(event: &str) -> CiContext {
    let event: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "github",
        event,
    ]
    .iter()
    .collect();
    let event = event.display().to_string();
    let env = move |name: &str| {
        let value = match name {
            "GITHUB_ACTION" => "__run",
            "GITHUB_SERVER_URL" => "https://github.com",
            "GITHUB_SHA" => "1111111111111111111111111111111111111111",
            "GITHUB_REPOSITORY" => "acme/data",
            "GITHUB_RUN_ID" => "7001",
            "GITHUB_EVENT_PATH" => event.as_str(),
            _ => return None,
        };
        Some(value.to_owned())
    };
    detect(&env, tempfile::tempdir().unwrap().path()).unwrap()
}

#[test]
fn github_pull_request_request_carries_every_field() {
    let data = branch_deployment_request(
        &github_pr_context("pull_request_opened.json"),
        &commit(),
        false,
    )
    .unwrap();
    assert_eq!(data.repo_name, "acme/data");
    assert_eq!(data.pull_request_status, PullRequestStatus::Open);
    insta::assert_json_snapshot!(data);
}

#[test]
fn status_follows_the_event_unless_marked_closed() {
    let check = |event: &str, mark_closed: bool, expected: PullRequestStatus| {
        let data =
            branch_deployment_request(&github_pr_context(event), &commit(), mark_closed).unwrap();
        assert_eq!(
            data.pull_request_status, expected,
            "{event} mark_closed={mark_closed}"
        );
        assert_eq!(
            data.pull_request_status.as_str(),
            format!("{expected:?}").to_uppercase()
        );
    };
    check("pull_request_opened.json", false, PullRequestStatus::Open);
    check("pull_request_closed.json", false, PullRequestStatus::Closed);
    check("pull_request_merged.json", false, PullRequestStatus::Merged);
    check("pull_request_opened.json", true, PullRequestStatus::Closed);
    check("pull_request_merged.json", true, PullRequestStatus::Closed);
}

#[test]
fn push_event_is_not_a_pull_request() {
    let err =
        branch_deployment_request(&github_pr_context("push.json"), &commit(), false).unwrap_err();
    assert!(err.is_not_a_pull_request(), "{err:?}");
    assert!(err.to_string().contains("GitHub Actions"), "{err}");
}

#[test]
fn gitlab_request_uses_namespace_and_name_as_repo_name() {
    let mut context = CiContext::empty(CiProvider::GitLab);
    context.repo = RepoId::from_full_name("acme/data-platform/pipelines");
    context.branch = Some("feature/forecast".into());
    context.commit_hash = Some("2222222222222222222222222222222222222222".into());
    context.pull_request = Some(PullRequest {
        number: 17,
        url: Some("https://gitlab.com/acme/data-platform/pipelines/-/merge_requests/17".into()),
        status: PullRequestStatus::Open,
        head_ref: context.branch.clone(),
        head_sha: context.commit_hash.clone(),
    });
    let data = branch_deployment_request(&context, &commit(), false).unwrap();
    assert_eq!(data.repo_name, "acme/data-platform/pipelines");
    assert_eq!(data.pull_request_number.as_deref(), Some("17"));
    assert_eq!(data.commit.hash, "2222222222222222222222222222222222222222");
}

#[test]
fn local_branch_request_reads_a_real_repository() {
    let repo = repo_with_commit("Local change");
    git(repo.path(), &["checkout", "--quiet", "-b", "feature/local"]);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://github.com/acme/my.github-tool.git",
        ],
    );
    let context = detect(&|_: &str| None, repo.path()).unwrap();
    let metadata = commit_metadata(repo.path(), None).unwrap();

    let err = branch_deployment_request(&context, &metadata, false).unwrap_err();
    assert!(err.is_not_a_pull_request(), "{err:?}");

    let data = branch_deployment_request_for_branch(&context, &metadata, false).unwrap();
    assert_eq!(data.repo_name, "acme/my.github-tool");
    assert_eq!(data.branch_name, "feature/local");
    assert_eq!(data.pull_request_status, PullRequestStatus::Open);
    assert_eq!(
        (
            data.pull_request_url,
            data.pull_request_number,
            data.branch_url
        ),
        (None, None, None)
    );
    assert_eq!(data.commit.hash, metadata.hash);
    assert_eq!(data.commit.message, "Local change");
    assert_eq!(data.commit.timestamp, 1_700_000_123.0);

    let closed = branch_deployment_request_for_branch(&context, &metadata, true).unwrap();
    assert_eq!(closed.pull_request_status, PullRequestStatus::Closed);
}

#[test]
fn missing_repository_or_branch_is_a_descriptive_error() {
    let repo = repo_with_commit("x");
    git(
        repo.path(),
        &["checkout", "--quiet", "-b", "feature/no-remote"],
    );
    let context = detect(&|_: &str| None, repo.path()).unwrap();
    let err = branch_deployment_request_for_branch(&context, &commit(), false).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingBranchDeploymentField {
                field: "repository",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.help().is_some_and(|help| help.contains("origin")),
        "{err:?}"
    );

    git(
        repo.path(),
        &["remote", "add", "origin", "git@github.com:acme/data.git"],
    );
    git(repo.path(), &["checkout", "--quiet", "--detach"]);
    let context = detect(&|_: &str| None, repo.path()).unwrap();
    let err = branch_deployment_request_for_branch(&context, &commit(), false).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingBranchDeploymentField {
                field: "branch",
                ..
            }
        ),
        "{err:?}"
    );
}
