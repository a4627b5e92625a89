//! The CI files `configure` writes, executed as generated: for a dg workspace of two projects
//! pushing to two registries that each need a login, `configure` writes the GitHub workflow or
//! the GitLab CI file, the files are committed and cloned into a folder named differently (as
//! CI clones do), and `ci_runner` runs them step by step for a push to the default branch and
//! then for a pull (merge) request. The install step fetches the release archive built by
//! `scripts/dist-build.sh` from a local server; the steps deploy to the local emulator and push
//! to local registries with the secrets the files name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig, Registry};

use crate::ci_runner::{GitHubRun, GitLabRun, JobRun, When};
use crate::file_server::FileServer;
use crate::support::{
    DgWorkspace, TOKEN, dagster_deploy, describe, dist_dir, git, repository_root, run,
    seed_base_image,
};

const SALES_LOGIN: (&str, &str) = ("sales-pusher", "sales-registry-secret-81f2");
const OPS_LOGIN: (&str, &str) = ("ops-pusher", "ops-registry-secret-c55e");

/// Everything a run needs: the emulator, three registries (an open one for the base image and
/// one per project, each with its own login), a workspace configured by `configure`, a CI
/// clone of it, and the download server for the release archive.
struct Scenario {
    emulator: Emulator,
    sales_registry: Registry,
    ops_registry: Registry,
    _base_registry: Registry,
    workspace: DgWorkspace,
    clone_parent: tempfile::TempDir,
    downloads: FileServer,
    /// What `configure` printed on stderr (the "Next:" hint).
    configure_stderr: String,
}

impl Scenario {
    fn new(provider: &str) -> Scenario {
        let emulator = Emulator::start_blocking(
            EmulatorConfig::default()
                .with_token(TOKEN)
                .with_load_time(Duration::from_millis(200)),
        );
        let base_registry = Registry::start();
        let sales_registry = Registry::start_with_login(SALES_LOGIN.0, SALES_LOGIN.1);
        let ops_registry = Registry::start_with_login(OPS_LOGIN.0, OPS_LOGIN.1);
        let base = seed_base_image(&base_registry.host());
        let workspace = DgWorkspace::new(
            &["sales", "ops-core"],
            &format!("{}/e2e/code", sales_registry.host()),
        );
        // A second registry, set in the project: configure must keep it and log in to it.
        std::fs::write(
            workspace.path().join("projects/ops-core/build.yaml"),
            format!("directory: .\nregistry: {}/e2e/ops\n", ops_registry.host()),
        )
        .unwrap();
        git(
            workspace.path(),
            &["commit", "-qam", "ops-core pushes elsewhere"],
        );

        let home = tempfile::tempdir().unwrap();
        let output = run(Command::new(dagster_deploy())
            .env_clear()
            .env("PATH", crate::ci_runner::OS_PATH)
            .env("HOME", home.path())
            .env("DAGSTER_CLOUD_ORGANIZATION", "acme")
            .env("DAGSTER_CLOUD_URL", emulator.url())
            .args([
                "configure",
                "--git-provider",
                provider,
                "--yes",
                "--base-image",
                &base,
            ])
            .arg("--project-dir")
            .arg(workspace.path()));
        assert!(output.status.success(), "{}", describe(&output));
        let configure_stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        git(workspace.path(), &["add", "-A"]);
        git(workspace.path(), &["commit", "-qm", "configure"]);

        // CI clones into a folder named after the repository, not the developer's folder.
        let clone_parent = tempfile::tempdir().unwrap();
        let output = run(Command::new("git")
            .args(["clone", "-q"])
            .arg(workspace.path())
            .arg(clone_parent.path().join("data")));
        assert!(output.status.success(), "{}", describe(&output));
        let downloads = FileServer::start(&dist_dir());
        crate::support::release_archive();
        Scenario {
            emulator,
            sales_registry,
            ops_registry,
            _base_registry: base_registry,
            workspace,
            clone_parent,
            downloads,
            configure_stderr,
        }
    }

    fn checkout(&self) -> PathBuf {
        self.clone_parent.path().join("data")
    }

    fn head(&self) -> String {
        let output = run(Command::new("git")
            .arg("-C")
            .arg(self.checkout())
            .args(["rev-parse", "HEAD"]));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A feature branch with one commit, checked out in the CI clone.
    fn open_branch(&self) -> String {
        let checkout = self.checkout();
        git(&checkout, &["checkout", "-q", "-b", "feature/sales-report"]);
        std::fs::write(
            checkout.join("projects/sales/src/sales/report.py"),
            "REPORT = 1\n",
        )
        .unwrap();
        git(&checkout, &["add", "-A"]);
        git(&checkout, &["commit", "-qm", "a sales report"]);
        self.head()
    }

    /// The secrets for the names a generated file reads: each must be named in configure's
    /// hint, and belong to the API token or to one of the two registries (told apart by port).
    fn secrets_for(&self, names: &[String], text: &str) -> BTreeMap<String, String> {
        let port = |registry: &Registry| registry.host().rsplit_once(':').unwrap().1.to_owned();
        let (sales_port, ops_port) = (port(&self.sales_registry), port(&self.ops_registry));
        names
            .iter()
            .map(|name| {
                assert!(
                    self.configure_stderr.contains(name.as_str()),
                    "the hint does not name {name}:\n{}",
                    self.configure_stderr
                );
                let login = if name.contains(&format!("_{sales_port}_")) {
                    SALES_LOGIN
                } else if name.contains(&format!("_{ops_port}_")) {
                    OPS_LOGIN
                } else {
                    assert_eq!(
                        name, "DAGSTER_CLOUD_API_TOKEN",
                        "unexpected secret in:\n{text}"
                    );
                    return (name.clone(), TOKEN.to_owned());
                };
                let value = match name.rsplit_once('_').map(|(_, kind)| kind) {
                    Some("USERNAME") => login.0,
                    Some("PASSWORD") => login.1,
                    _ => panic!("unexpected secret {name} in:\n{text}"),
                };
                (name.clone(), value.to_owned())
            })
            .collect()
    }

    /// The machine's own variables: the release mirror (the local server).
    fn runner_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "DAGSTER_DEPLOY_DOWNLOAD_URL".to_owned(),
            self.downloads.url(),
        )])
    }

    /// Checks what a job did: it passed, no secret appeared in its output, and the release
    /// archive came from the local server.
    fn check_job(&self, job: &JobRun) {
        job.assert_success();
        let transcript = job
            .steps
            .iter()
            .map(|step| format!("{}{}", step.stdout, step.stderr))
            .collect::<String>();
        for secret in [TOKEN, SALES_LOGIN.1, OPS_LOGIN.1] {
            assert!(
                !transcript.contains(secret),
                "a secret reached the log of {}:\n{}",
                job.job,
                job.transcript()
            );
        }
        assert!(
            self.downloads
                .requests()
                .iter()
                .any(|path| path.ends_with(".tar.gz.sha256")),
            "the archive and its checksum came from {}: {:?}",
            self.downloads.url(),
            self.downloads.requests()
        );
    }

    /// The image each location got in `deployment`, and that it is in its registry.
    fn deployed_images(&self, deployment: &str) -> BTreeMap<String, String> {
        let images: BTreeMap<String, String> = self
            .emulator
            .deployed_locations()
            .into_iter()
            .filter(|location| location.deployment == deployment)
            .map(|location| {
                let image = location.document["image"].as_str().unwrap().to_owned();
                (location.name, image)
            })
            .collect();
        for (registry, image) in [
            (&self.sales_registry, images.get("sales")),
            (&self.ops_registry, images.get("ops-core")),
        ] {
            let image = image.unwrap_or_else(|| panic!("not deployed: {images:?}"));
            let (repository, tag) = image
                .strip_prefix(&format!("{}/", registry.host()))
                .and_then(|rest| rest.rsplit_once(':'))
                .unwrap_or_else(|| panic!("{image} is not in {}", registry.host()));
            let tag_dir = registry
                .directory()
                .join("storage/docker/registry/v2/repositories")
                .join(repository)
                .join("_manifests/tags")
                .join(tag);
            assert!(tag_dir.is_dir(), "{image} was not pushed");
        }
        images
    }

    fn branch_deployment(&self) -> dagster_deploy_e2e::DeploymentRecord {
        self.emulator
            .deployments()
            .into_iter()
            .find(|deployment| deployment.deployment_type == "BRANCH")
            .expect("a branch deployment")
    }
}

/// Names after `prefix` up to the first character that cannot be in a variable name.
fn names_after(text: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .match_indices(prefix)
        .map(|(index, _)| {
            text[index + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{nanos}", std::process::id())
}

#[test]
fn the_generated_github_workflow_deploys_a_push_and_a_pull_request() {
    let scenario = Scenario::new("github");
    let workflow_path = scenario
        .workspace
        .path()
        .join(".github/workflows/dagster-plus-deploy.yml");
    let text = std::fs::read_to_string(&workflow_path).unwrap();
    // Every secret the workflow reads is in the hint, and the test has a value for it.
    let names: Vec<String> = names_after(&text, "secrets.")
        .into_iter()
        .filter(|name| name != "GITHUB_TOKEN")
        .collect();
    let secrets = scenario.secrets_for(&names, &text);
    assert_eq!(secrets.len(), 5, "the token and two logins: {names:?}");
    assert!(
        !text.contains("--location-name data"),
        "location names come from the configuration"
    );
    let repository = std::fs::read_to_string(repository_root().join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("repository = \"https://github.com/"))
        .map(|rest| rest.trim_end_matches('"').to_owned())
        .expect("the workspace repository");
    let home = tempfile::tempdir().unwrap();
    let run_id = unique_id();
    let github =
        |event_name: &str, event: serde_json::Value, git_ref: &str, head_ref: &str| GitHubRun {
            workflow: serde_yaml_ng::from_str(&text).unwrap(),
            workspace: scenario.checkout(),
            our_action: (format!("{repository}@"), repository_root()),
            secrets: secrets.clone(),
            event_name: event_name.to_owned(),
            event,
            git_ref: git_ref.to_owned(),
            sha: scenario.head(),
            head_ref: head_ref.to_owned(),
            base_ref: if head_ref.is_empty() {
                String::new()
            } else {
                "main".to_owned()
            },
            repository: "acme/data".to_owned(),
            run_id: run_id.clone(),
            actor: "octocat".to_owned(),
            home: home.path().to_path_buf(),
            runner_env: scenario.runner_env(),
        };
    let repository_json = serde_json::json!({"full_name": "acme/data", "default_branch": "main"});

    // A push to main deploys both locations to prod.
    let push = github(
        "push",
        serde_json::json!({"ref": "refs/heads/main", "after": scenario.head(), "repository": repository_json}),
        "refs/heads/main",
        "",
    );
    assert_eq!(push.jobs_to_run(), ["deploy"]);
    let job = push.run_job("deploy");
    scenario.check_job(&job);
    let images = scenario.deployed_images("prod");
    assert!(
        images["sales"].ends_with(&format!("-{run_id}-1-sales")),
        "{images:?}"
    );
    let summary_written = job
        .steps
        .iter()
        .any(|step| step.name == "status" && step.exit_code == Some(0));
    assert!(summary_written, "{}", job.transcript());
    let _ = std::fs::remove_dir_all(format!("/tmp/dagster-deploy-state-{run_id}"));

    // A pull request gets a branch deployment with both locations.
    let head = scenario.open_branch();
    let pull_request = |action: &str, state: &str| {
        serde_json::json!({
            "action": action,
            "number": 7,
            "pull_request": {
                "number": 7,
                "html_url": "https://github.com/acme/data/pull/7",
                "state": state,
                "merged": false,
                "title": "A sales report",
                "head": {"sha": head, "ref": "feature/sales-report"},
                "base": {"ref": "main"}
            },
            "repository": repository_json,
        })
    };
    let opened = github(
        "pull_request",
        pull_request("opened", "open"),
        "refs/pull/7/merge",
        "feature/sales-report",
    );
    assert_eq!(opened.jobs_to_run(), ["deploy"]);
    let job = opened.run_job("deploy");
    scenario.check_job(&job);
    let branch = scenario.branch_deployment();
    assert_eq!(
        branch.branch_data.as_ref().unwrap()["pullRequestStatus"],
        "OPEN"
    );
    let images = scenario.deployed_images(&branch.name);
    assert_eq!(images.len(), 2, "{images:?}");
    let _ = std::fs::remove_dir_all(format!("/tmp/dagster-deploy-state-{run_id}"));

    // Closing it closes the branch deployment.
    let closed = github(
        "pull_request",
        pull_request("closed", "closed"),
        "refs/pull/7/merge",
        "feature/sales-report",
    );
    assert_eq!(closed.jobs_to_run(), ["close-branch-deployment"]);
    let job = closed.run_job("close-branch-deployment");
    scenario.check_job(&job);
    assert_eq!(
        scenario.branch_deployment().branch_data.unwrap()["pullRequestStatus"],
        "CLOSED"
    );
}

/// The predefined variables of a GitLab pipeline for the checkout's HEAD.
fn gitlab_variables(scenario: &Scenario, pipeline_id: &str) -> BTreeMap<String, String> {
    let sha = scenario.head();
    BTreeMap::from(
        [
            ("CI", "true".to_owned()),
            ("GITLAB_CI", "true".to_owned()),
            ("CI_COMMIT_SHA", sha.clone()),
            ("CI_COMMIT_SHORT_SHA", sha[..8].to_owned()),
            ("CI_DEFAULT_BRANCH", "main".to_owned()),
            ("CI_PIPELINE_ID", pipeline_id.to_owned()),
            ("CI_JOB_ID", format!("{pipeline_id}1")),
            (
                "CI_JOB_URL",
                format!("https://gitlab.com/acme/data/-/jobs/{pipeline_id}1"),
            ),
            ("CI_PROJECT_NAME", "data".to_owned()),
            ("CI_PROJECT_NAMESPACE", "acme".to_owned()),
            ("CI_PROJECT_PATH", "acme/data".to_owned()),
            ("CI_PROJECT_URL", "https://gitlab.com/acme/data".to_owned()),
            ("CI_PROJECT_DIR", scenario.checkout().display().to_string()),
            ("CI_SERVER_URL", "https://gitlab.com".to_owned()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    )
}

#[test]
fn the_generated_gitlab_pipeline_deploys_the_default_branch_and_a_merge_request() {
    let scenario = Scenario::new("gitlab");
    let text = std::fs::read_to_string(scenario.workspace.path().join(".gitlab-ci.yml")).unwrap();
    let pipeline: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    // Every variable the file reads is defined by it, predefined by GitLab, or named in the hint.
    let defined: Vec<String> = pipeline["variables"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|key| key.as_str().unwrap().to_owned())
        .collect();
    let shell_locals = [
        "HOME",
        "PATH",
        "DOCKER_AUTH_CONFIG",
        "DAGSTER_DEPLOY_SHA256",
        "DAGSTER_DEPLOY_DOWNLOAD_URL",
        "DAGSTER_DEPLOY_INSTALL_DIR",
        "repository",
        "version",
        "base",
        "install_dir",
        "arch",
        "target",
        "archive",
        "work",
        "expected",
        "actual",
        "installed",
    ];
    let mut names: Vec<String> = names_after(&text, "$")
        .into_iter()
        .chain(names_after(&text, "${"))
        .filter(|name| {
            !(name.is_empty()
                || name.starts_with("CI_")
                || defined.contains(name)
                || shell_locals.contains(&name.as_str())
                || name.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    names.sort();
    names.dedup();
    // The API token is read by dagster-deploy from the environment, not named in a command.
    names.push("DAGSTER_CLOUD_API_TOKEN".to_owned());
    let secrets = scenario.secrets_for(&names, &text);
    assert_eq!(secrets.len(), 5, "the token and two logins: {names:?}");
    assert!(scenario.configure_stderr.contains("DOCKER_AUTH_CONFIG"));
    let home = tempfile::tempdir().unwrap();
    let pipeline_id = unique_id();
    let gitlab = |event: BTreeMap<String, String>| {
        let mut variables = gitlab_variables(&scenario, &pipeline_id);
        variables.extend(event);
        variables.extend(secrets.clone());
        GitLabRun {
            pipeline: pipeline.clone(),
            project_dir: scenario.checkout(),
            variables,
            home: home.path().to_path_buf(),
            runner_env: scenario.runner_env(),
        }
    };
    let event = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    };

    let push = gitlab(event(&[
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_NAME", "main"),
    ]));
    assert_eq!(
        push.jobs_to_run(),
        [("deploy-full".to_owned(), When::OnSuccess)]
    );
    let job = push.run_job("deploy-full");
    scenario.check_job(&job);
    let images = scenario.deployed_images("prod");
    assert_eq!(images.len(), 2, "{images:?}");
    let _ = std::fs::remove_dir_all(format!("/tmp/dagster-deploy-state-{pipeline_id}"));

    let head = scenario.open_branch();
    let merge_request = gitlab(event(&[
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_COMMIT_REF_NAME", "feature/sales-report"),
        ("CI_MERGE_REQUEST_IID", "7"),
        (
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
            "feature/sales-report",
        ),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", &head),
        (
            "CI_MERGE_REQUEST_PROJECT_URL",
            "https://gitlab.com/acme/data",
        ),
    ]));
    assert_eq!(
        merge_request.jobs_to_run(),
        [
            ("deploy-branch".to_owned(), When::OnSuccess),
            ("close-branch-deployment".to_owned(), When::Manual),
        ]
    );
    let job = merge_request.run_job("deploy-branch");
    scenario.check_job(&job);
    let branch = scenario.branch_deployment();
    let images = scenario.deployed_images(&branch.name);
    assert_eq!(images.len(), 2, "{images:?}");
    let _ = std::fs::remove_dir_all(format!("/tmp/dagster-deploy-state-{pipeline_id}"));

    // Stopping the environment (merge or close) runs the manual stop job.
    let job = merge_request.run_job("close-branch-deployment");
    scenario.check_job(&job);
    assert_eq!(
        scenario.branch_deployment().branch_data.unwrap()["pullRequestStatus"],
        "CLOSED"
    );
}
