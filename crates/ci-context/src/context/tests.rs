//! Tests of `detect` for every provider, with env maps and recorded-style GitHub event files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::error::Error;
use crate::git::test_repo::{git, repo_with_commit};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "github",
        name,
    ]
    .iter()
    .collect();
    path.display().to_string()
}

/// A directory outside any git repository, so only the env decides.
fn no_git() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn detect_in(pairs: &[(&str, &str)], dir: &Path) -> CiContext {
    detect(&env_of(pairs), dir).unwrap()
}

fn github_env(event: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_ACTION", "__run".into()),
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_SERVER_URL", "https://github.com".into()),
        (
            "GITHUB_SHA",
            "1111111111111111111111111111111111111111".into(),
        ),
        ("GITHUB_REPOSITORY", "acme/data".into()),
        ("GITHUB_RUN_ID", "7001".into()),
        ("GITHUB_EVENT_PATH", fixture(event)),
    ]
}

fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn provider_detection_follows_the_marker_variables() {
    let cases: &[(&[(&str, &str)], CiProvider)] = &[
        (&[], CiProvider::Local),
        (&[("GITHUB_ACTION", "__run")], CiProvider::GitHub),
        (&[("GITLAB_CI", "true")], CiProvider::GitLab),
        (&[("BITBUCKET_BUILD_NUMBER", "12")], CiProvider::Bitbucket),
        (&[("TF_BUILD", "True")], CiProvider::AzurePipelines),
        (&[("BUILDKITE", "true")], CiProvider::Buildkite),
        (&[("CIRCLECI", "true")], CiProvider::CircleCi),
        (
            &[("JENKINS_URL", "https://ci.example.com/")],
            CiProvider::Jenkins,
        ),
        (&[("CODEBUILD_BUILD_ID", "x:1")], CiProvider::CodeBuild),
        (&[("TRAVIS", "true")], CiProvider::Travis),
        (&[("GITLAB_CI", "")], CiProvider::Local),
        (
            &[("GITLAB_CI", "true"), ("JENKINS_URL", "https://ci")],
            CiProvider::Unknown,
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(CiProvider::detect(&env_of(pairs)), *expected, "{pairs:?}");
    }
}

#[test]
fn github_pull_request_opened_uses_the_head_sha_and_ref() {
    let env = github_env("pull_request_opened.json");
    let context = detect_in(&borrowed(&env), no_git().path());
    assert_eq!(
        context.commit_hash.as_deref(),
        Some("9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6")
    );
    assert_eq!(context.branch.as_deref(), Some("feature/sales-report"));
    insta::assert_json_snapshot!(context);
}

#[test]
fn github_pull_request_closed_and_merged_states() {
    let closed = detect_in(
        &borrowed(&github_env("pull_request_closed.json")),
        no_git().path(),
    );
    assert_eq!(
        closed.pull_request.unwrap().status,
        PullRequestStatus::Closed
    );
    let merged = detect_in(
        &borrowed(&github_env("pull_request_merged.json")),
        no_git().path(),
    );
    assert_eq!(
        merged.pull_request.unwrap().status,
        PullRequestStatus::Merged
    );
}

#[test]
fn github_enterprise_server_url_is_used_for_every_link() {
    let mut env = github_env("pull_request_opened_enterprise.json");
    env[2].1 = "https://github.acme-corp.com/".into();
    let context = detect_in(&borrowed(&env), no_git().path());
    assert_eq!(
        context.server_url.as_deref(),
        Some("https://github.acme-corp.com")
    );
    assert_eq!(
        context.run_url.as_deref(),
        Some("https://github.acme-corp.com/acme/data/actions/runs/7001")
    );
    assert_eq!(
        context.git_url.as_deref(),
        Some(
            "https://github.acme-corp.com/acme/data/tree/9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
        )
    );
    assert_eq!(
        context.pull_request.unwrap().url.as_deref(),
        Some("https://github.acme-corp.com/acme/data/pull/42")
    );
    assert_eq!(context.git_provider, Some(GitProvider::GitHub));
}

#[test]
fn github_push_has_no_pull_request_and_finds_the_default_base_branch() {
    let mut env = github_env("push.json");
    env.extend([
        ("GITHUB_EVENT_NAME", "push".to_owned()),
        ("GITHUB_REF", "refs/heads/main".to_owned()),
        ("GITHUB_REF_NAME", "main".to_owned()),
        ("GITHUB_REF_TYPE", "branch".to_owned()),
    ]);
    let context = detect_in(&borrowed(&env), no_git().path());
    assert_eq!(context.pull_request, None);
    assert_eq!(
        context.commit_hash.as_deref(),
        Some("1111111111111111111111111111111111111111")
    );
    assert_eq!(context.branch.as_deref(), Some("main"));
    assert_eq!(context.base_branch.as_deref(), Some("main"));
    assert_eq!(
        context.git_url.as_deref(),
        Some("https://github.com/acme/data/tree/1111111111111111111111111111111111111111")
    );
}

#[test]
fn github_missing_variables_and_bad_event_files_are_errors_naming_them() {
    let mut env = github_env("pull_request_opened.json");
    env.retain(|(k, _)| *k != "GITHUB_EVENT_PATH");
    let err = detect(&env_of(&borrowed(&env)), no_git().path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingEnvVar {
                name: "GITHUB_EVENT_PATH",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("GITHUB_EVENT_PATH"), "{err}");

    let dir = no_git();
    let bad = dir.path().join("event.json");
    std::fs::write(&bad, r#"{"pull_request": {"number": "forty-two"}}"#).unwrap();
    let mut env = github_env("pull_request_opened.json");
    env[6].1 = bad.display().to_string();
    let err = detect(&env_of(&borrowed(&env)), dir.path()).unwrap_err();
    assert!(matches!(err, Error::ParseEventFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
    assert_eq!(err.line_column().map(|(line, _)| line), Some(1), "{err:?}");
    assert_eq!(err.env_var(), Some("GITHUB_EVENT_PATH"));
    // The JSON error is the source, said once: not repeated in the message.
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("line 1"), "{source}");
    assert!(!err.to_string().contains(&source), "{err}");

    env[6].1 = dir.path().join("missing.json").display().to_string();
    let err = detect(&env_of(&borrowed(&env)), dir.path()).unwrap_err();
    assert!(matches!(err, Error::ReadEventFile { .. }), "{err:?}");
}

const GITLAB_MR: &[(&str, &str)] = &[
    ("GITLAB_CI", "true"),
    ("CI_COMMIT_SHA", "2222222222222222222222222222222222222222"),
    ("CI_COMMIT_REF_NAME", "feature/forecast"),
    (
        "CI_JOB_URL",
        "https://gitlab.com/acme/data-platform/pipelines/-/jobs/555",
    ),
    ("CI_PROJECT_NAME", "pipelines"),
    ("CI_PROJECT_PATH", "acme/data-platform/pipelines"),
    ("CI_PROJECT_NAMESPACE", "acme/data-platform"),
    (
        "CI_PROJECT_URL",
        "https://gitlab.com/acme/data-platform/pipelines",
    ),
    ("CI_SERVER_URL", "https://gitlab.com"),
    ("CI_MERGE_REQUEST_IID", "17"),
    ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
    ("CI_DEFAULT_BRANCH", "main"),
];

#[test]
fn gitlab_merge_request_uses_the_full_project_path_as_repository() {
    let context = detect_in(GITLAB_MR, no_git().path());
    assert_eq!(
        context.repo.as_ref().unwrap().full_name(),
        "acme/data-platform/pipelines"
    );
    assert_eq!(context.git_provider, Some(GitProvider::GitLab));
    insta::assert_json_snapshot!(context);
}

#[test]
fn gitlab_without_merge_request_has_no_pull_request_and_missing_vars_fail() {
    let branch: Vec<_> = GITLAB_MR
        .iter()
        .copied()
        .filter(|(k, _)| !k.starts_with("CI_MERGE_REQUEST"))
        .collect();
    let context = detect_in(&branch, no_git().path());
    assert_eq!(context.pull_request, None);
    assert_eq!(context.base_branch.as_deref(), Some("main"));

    let missing: Vec<_> = GITLAB_MR
        .iter()
        .copied()
        .filter(|(k, _)| *k != "CI_PROJECT_URL")
        .collect();
    let err = detect(&env_of(&missing), no_git().path()).unwrap_err();
    assert!(err.to_string().contains("CI_PROJECT_URL"), "{err}");

    let bad: Vec<_> = GITLAB_MR
        .iter()
        .copied()
        .map(|(k, v)| {
            if k == "CI_MERGE_REQUEST_IID" {
                (k, "abc")
            } else {
                (k, v)
            }
        })
        .collect();
    let err = detect(&env_of(&bad), no_git().path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidEnvVar {
                name: "CI_MERGE_REQUEST_IID",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bitbucket_pull_request() {
    let env = [
        ("BITBUCKET_BUILD_NUMBER", "88"),
        (
            "BITBUCKET_COMMIT",
            "3333333333333333333333333333333333333333",
        ),
        ("BITBUCKET_BRANCH", "feature/x"),
        ("BITBUCKET_PR_ID", "9"),
        ("BITBUCKET_PR_DESTINATION_BRANCH", "main"),
        ("BITBUCKET_REPO_FULL_NAME", "acme/data"),
        (
            "BITBUCKET_GIT_HTTP_ORIGIN",
            "http://bitbucket.org/acme/data",
        ),
    ];
    let context = detect_in(&env, no_git().path());
    assert_eq!(
        context.pull_request.as_ref().unwrap().url.as_deref(),
        Some("https://bitbucket.org/acme/data/pull-requests/9")
    );
    insta::assert_json_snapshot!(context);
}

#[test]
fn azure_pipelines_github_pull_request_and_azure_repos_branch_build() {
    let github_pr = [
        ("TF_BUILD", "True"),
        (
            "BUILD_SOURCEVERSION",
            "4444444444444444444444444444444444444444",
        ),
        ("BUILD_SOURCEBRANCH", "refs/pull/31/merge"),
        ("SYSTEM_PULLREQUEST_PULLREQUESTID", "998877"),
        ("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "31"),
        ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "feature/azure"),
        ("SYSTEM_PULLREQUEST_TARGETBRANCH", "main"),
        (
            "SYSTEM_PULLREQUEST_SOURCECOMMITID",
            "5555555555555555555555555555555555555555",
        ),
        ("BUILD_REPOSITORY_PROVIDER", "GitHub"),
        ("BUILD_REPOSITORY_NAME", "acme/data"),
        ("BUILD_REPOSITORY_URI", "https://github.com/acme/data"),
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
        ("SYSTEM_TEAMPROJECT", "Data"),
        ("BUILD_BUILDID", "1234"),
    ];
    let context = detect_in(&github_pr, no_git().path());
    insta::assert_json_snapshot!("azure_github_pr", context);

    let azure_repos_branch = [
        ("TF_BUILD", "True"),
        (
            "BUILD_SOURCEVERSION",
            "6666666666666666666666666666666666666666",
        ),
        ("BUILD_SOURCEBRANCH", "refs/heads/feature/deep/branch"),
        ("BUILD_SOURCEBRANCHNAME", "branch"),
        ("BUILD_REPOSITORY_PROVIDER", "TfsGit"),
        ("BUILD_REPOSITORY_NAME", "data"),
        (
            "BUILD_REPOSITORY_URI",
            "https://acme@dev.azure.com/acme/Data/_git/data",
        ),
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/acme/"),
        ("SYSTEM_TEAMPROJECT", "Data"),
        ("BUILD_BUILDID", "1235"),
    ];
    let context = detect_in(&azure_repos_branch, no_git().path());
    assert_eq!(context.branch.as_deref(), Some("feature/deep/branch"));
    assert_eq!(context.pull_request, None);
    insta::assert_json_snapshot!("azure_repos_branch", context);
}

#[test]
fn buildkite_pull_request_on_github() {
    let env = [
        ("BUILDKITE", "true"),
        (
            "BUILDKITE_COMMIT",
            "7777777777777777777777777777777777777777",
        ),
        ("BUILDKITE_BRANCH", "feature/bk"),
        ("BUILDKITE_PULL_REQUEST", "55"),
        ("BUILDKITE_PULL_REQUEST_BASE_BRANCH", "main"),
        ("BUILDKITE_REPO", "git@github.com:acme/data.git"),
        (
            "BUILDKITE_BUILD_URL",
            "https://buildkite.com/acme/data/builds/100",
        ),
    ];
    let context = detect_in(&env, no_git().path());
    insta::assert_json_snapshot!(context);

    let not_pr = [
        ("BUILDKITE", "true"),
        ("BUILDKITE_PULL_REQUEST", "false"),
        ("BUILDKITE_BRANCH", "main"),
    ];
    assert_eq!(detect_in(&not_pr, no_git().path()).pull_request, None);
}

#[test]
fn circleci_pull_request_number_comes_from_the_pr_url() {
    let env = [
        ("CIRCLECI", "true"),
        ("CIRCLE_SHA1", "8888888888888888888888888888888888888888"),
        ("CIRCLE_BRANCH", "feature/circle"),
        (
            "CIRCLE_PULL_REQUEST",
            "https://github.com/acme/data/pull/77",
        ),
        ("CIRCLE_PROJECT_USERNAME", "acme"),
        ("CIRCLE_PROJECT_REPONAME", "data"),
        ("CIRCLE_REPOSITORY_URL", "git@github.com:acme/data.git"),
        ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/data/321"),
    ];
    let context = detect_in(&env, no_git().path());
    insta::assert_json_snapshot!(context);
}

#[test]
fn jenkins_multibranch_change_request_without_leaking_remote_credentials() {
    let env = [
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("GIT_COMMIT", "9999999999999999999999999999999999999999"),
        ("BRANCH_NAME", "PR-12"),
        ("CHANGE_ID", "12"),
        ("CHANGE_BRANCH", "feature/jenkins"),
        ("CHANGE_TARGET", "main"),
        (
            "GIT_URL",
            "https://x-access-token:ghs_SECRETTOKEN@gitlab.example.com/acme/sub/data.git",
        ),
        (
            "BUILD_URL",
            "https://jenkins.example.com/job/data/job/PR-12/3/",
        ),
    ];
    let context = detect_in(&env, no_git().path());
    let rendered = format!("{context:?} {}", serde_json::to_string(&context).unwrap());
    assert!(!rendered.contains("SECRETTOKEN"), "{rendered}");
    insta::assert_json_snapshot!(context);

    let branch_build = [
        ("JENKINS_URL", "https://j/"),
        ("GIT_BRANCH", "origin/release/1.2"),
    ];
    assert_eq!(
        detect_in(&branch_build, no_git().path()).branch.as_deref(),
        Some("release/1.2")
    );
}

#[test]
fn local_context_reads_branch_commit_and_origin_from_git() {
    let repo = repo_with_commit("x");
    git(repo.path(), &["checkout", "--quiet", "-b", "feature/local"]);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "git@gitlab.com:acme/sub/my.github-tool.git",
        ],
    );
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let context = detect_in(&[], repo.path());
    assert_eq!(context.provider, CiProvider::Local);
    assert_eq!(context.branch.as_deref(), Some("feature/local"));
    assert_eq!(context.commit_hash.as_deref(), Some(head.as_str()));
    assert_eq!(
        context.repo,
        Some(RepoId {
            owner: "acme/sub".into(),
            name: "my.github-tool".into()
        })
    );
    assert_eq!(context.git_provider, Some(GitProvider::GitLab));
    assert_eq!(context.pull_request, None);
}

#[test]
fn local_context_outside_git_is_empty_but_not_an_error() {
    let context = detect_in(&[], no_git().path());
    assert_eq!(context, CiContext::empty(CiProvider::Local));
}

#[test]
fn inspect_document_matches_the_reference_keys() {
    let env = github_env("pull_request_opened.json");
    let dir = no_git();
    let context = detect_in(&borrowed(&env), dir.path());
    let document = context.inspect_document(dir.path());
    assert_eq!(
        document,
        serde_json::json!({
            "source": "source.github",
            "project-dir": dir.path().display().to_string(),
            "git-url": "https://github.com/acme/data/tree/9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6",
            "commit-hash": "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6",
        })
    );
    let local = CiContext::empty(CiProvider::Local).inspect_document(dir.path());
    assert_eq!(
        local.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["source", "project-dir"]
    );
    assert_eq!(local["source"], "source.cli");
}
