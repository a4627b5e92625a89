//! Branch deployments in a GitHub pull request, from a recorded event: `start` creates the
//! branch deployment and the session targets it; `deploy` goes there; `branch-deployment
//! --mark-closed` closes it; `branch-deployment delete` deletes only branch deployments.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig};
use serde_json::Value;

use crate::support::{DgWorkspace, TOKEN, command, dagster_deploy, describe, run, success};

const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/github/pull_request_opened.json"
);

fn in_pull_request<'a>(command: &'a mut Command, checkout: &Path) -> &'a mut Command {
    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(checkout)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_ACTION", "deploy")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", EVENT)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/data")
        .env("GITHUB_SHA", head.trim())
        .env("GITHUB_RUN_ID", "99")
        .env("GITHUB_BASE_REF", "main")
        .env("GITHUB_HEAD_REF", "feature/sales-report")
}

#[test]
fn a_pull_request_gets_its_branch_deployment_which_closes_and_deletes() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(100)),
    );
    let workspace = DgWorkspace::new(&["sales"], "registry.example.com/team/code");
    let home = tempfile::tempdir().unwrap();
    let statedir = home.path().join("state");
    let cli = || command(&dagster_deploy(), home.path(), &emulator.url(), &statedir);

    success(in_pull_request(
        cli()
            .args(["start", "--deployment", "prod", "--yes", "--project-dir"])
            .arg(workspace.path()),
        workspace.path(),
    ));
    let branch = emulator
        .deployments()
        .into_iter()
        .find(|deployment| deployment.deployment_type == "BRANCH")
        .expect("start created a branch deployment");
    let data = branch.branch_data.clone().unwrap();
    assert_eq!(data["repoName"], "acme/data");
    assert_eq!(data["branchName"], "feature/sales-report");
    assert_eq!(data["pullRequestNumber"], "42");
    assert_eq!(data["pullRequestStatus"], "OPEN");
    assert_eq!(branch.base_deployment_name.as_deref(), Some("prod"));

    let status = success(cli().args(["status", "--output-format", "json"]));
    let state: Value = serde_json::from_str(status.lines().next().unwrap()).unwrap();
    assert_eq!(state["deployment_name"], branch.name.as_str());
    assert_eq!(state["is_branch_deployment"], true);
    assert_eq!(
        state["status_url"],
        "https://github.com/acme/data/actions/runs/99"
    );

    success(cli().args(["set-build-output", "--image-tag", "pr42"]));
    success(cli().args(["deploy"]));
    let deploy = &emulator.requests_for("deployLocations")[0];
    assert_eq!(
        deploy.deployment.as_deref(),
        Some(branch.name.as_str()),
        "deployed to the branch deployment"
    );

    let closed = success(in_pull_request(
        cli()
            .args([
                "branch-deployment",
                "--mark-closed",
                "--deployment",
                "prod",
                "--project-dir",
            ])
            .arg(workspace.path()),
        workspace.path(),
    ));
    assert_eq!(closed.trim(), branch.name);
    let after = emulator
        .deployments()
        .into_iter()
        .find(|deployment| deployment.name == branch.name)
        .unwrap();
    assert_eq!(after.branch_data.unwrap()["pullRequestStatus"], "CLOSED");

    let refused = run(cli().args(["branch-deployment", "delete", "prod"]));
    assert!(
        !refused.status.success(),
        "deleting a full deployment must be refused:\n{}",
        describe(&refused)
    );
    assert!(
        emulator
            .deployments()
            .iter()
            .any(|deployment| deployment.name == "prod")
    );
    success(cli().args(["branch-deployment", "delete", &branch.name]));
    assert!(
        !emulator
            .deployments()
            .iter()
            .any(|deployment| deployment.name == branch.name)
    );
}

#[test]
fn deployment_type_branch_without_a_pull_request_or_branch_is_an_error() {
    let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN));
    let workspace = DgWorkspace::new(&["sales"], "registry.example.com/team/code");
    // A detached HEAD: no pull request, no branch.
    crate::support::git(workspace.path(), &["checkout", "-q", "--detach"]);
    let home = tempfile::tempdir().unwrap();
    let statedir = home.path().join("state");
    let output = run(
        command(&dagster_deploy(), home.path(), &emulator.url(), &statedir)
            .args([
                "start",
                "--deployment",
                "prod",
                "--deployment-type",
                "branch",
                "--project-dir",
            ])
            .arg(workspace.path()),
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        !statedir.join("location-sales.json").exists(),
        "nothing may be written"
    );
    assert!(
        emulator
            .deployments()
            .iter()
            .all(|deployment| deployment.deployment_type != "BRANCH")
    );
}
