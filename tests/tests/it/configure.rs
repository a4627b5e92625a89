//! `configure` in a real git checkout: the files it writes, that the workflows parse and use
//! only flags the binary has, and that existing files survive without `--force`.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{DgWorkspace, dagster_deploy, success};

fn configure(workspace: &DgWorkspace, provider: &str, extra: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    success(
        Command::new(dagster_deploy())
            .env("HOME", home.path())
            .env_remove("DAGSTER_CLOUD_ORGANIZATION")
            .args([
                "configure",
                "--git-provider",
                provider,
                "--organization",
                "acme",
                "--yes",
                "--project-dir",
            ])
            .arg(workspace.path())
            .args(extra),
    )
}

/// Every `dagster-deploy <command> --flag` in a script, as (command words, flags).
fn invocations(script: &str) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let mut found = Vec::new();
    for line in script.lines() {
        let Some(start) = line.find("dagster-deploy ") else {
            continue;
        };
        let words: Vec<&str> = line[start..].split_whitespace().skip(1).collect();
        let command: Vec<String> = words
            .iter()
            .take_while(|word| !word.starts_with('-') && !word.contains('$'))
            .map(|word| (*word).to_owned())
            .collect();
        let flags: BTreeSet<String> = words
            .iter()
            .filter(|word| word.starts_with("--"))
            .map(|word| word.split('=').next().unwrap().to_owned())
            .collect();
        if !command.is_empty() && !command[0].contains('.') {
            found.push((command, flags));
        }
    }
    found
}

fn assert_flags_exist(script: &str) {
    let calls = invocations(script);
    assert!(
        calls.len() >= 4,
        "expected start, build-and-push, deploy, status in:\n{script}"
    );
    for (command, flags) in calls {
        let output = Command::new(dagster_deploy())
            .args(&command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`dagster-deploy {}` is not a command",
            command.join(" ")
        );
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in flags {
            assert!(
                help.contains(&flag),
                "`dagster-deploy {}` has no {flag} (reference-behaviour ref-bug 19)",
                command.join(" ")
            );
        }
    }
}

#[test]
fn configure_github_writes_build_files_and_a_workflow_that_uses_real_flags() {
    let workspace = DgWorkspace::new(&["sales", "ops-core"], "ghcr.io/acme/code");
    configure(&workspace, "github", &[]);
    let workflow_path = workspace
        .path()
        .join(".github/workflows/dagster-plus-deploy.yml");
    let workflow = std::fs::read_to_string(&workflow_path).unwrap();
    let parsed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&workflow).expect("the workflow is valid YAML");
    assert!(parsed.get("jobs").is_some(), "{workflow}");
    assert!(
        workflow.contains("https://acme.dagster.cloud"),
        "the organization URL (reference-behaviour ref-bug 21):\n{workflow}"
    );
    assert!(
        workflow.contains("--location-name sales") && workflow.contains("--location-name ops-core"),
        "{workflow}"
    );
    assert_flags_exist(&workflow);
    let member: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(workspace.path().join("projects/sales/build.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(member["directory"], serde_yaml_ng::Value::from("."));
}

#[test]
fn configure_gitlab_with_the_docker_builder_writes_dockerfiles() {
    let workspace = DgWorkspace::new(&["sales"], "registry.example.com/team/code");
    configure(&workspace, "gitlab", &["--builder", "docker"]);
    let pipeline = std::fs::read_to_string(workspace.path().join(".gitlab-ci.yml")).unwrap();
    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&pipeline).expect("the pipeline is valid YAML");
    assert_flags_exist(&pipeline);
    let dockerfile =
        std::fs::read_to_string(workspace.path().join("projects/sales/Dockerfile")).unwrap();
    assert!(dockerfile.contains("--package sales"), "{dockerfile}");
}

#[test]
fn configure_keeps_existing_files_unless_forced() {
    let workspace = DgWorkspace::new(&["sales"], "ghcr.io/acme/code");
    let build_yaml = workspace.path().join("projects/sales/build.yaml");
    std::fs::write(&build_yaml, "directory: .\n# mine\n").unwrap();
    configure(&workspace, "github", &[]);
    assert_eq!(
        std::fs::read_to_string(&build_yaml).unwrap(),
        "directory: .\n# mine\n"
    );
    configure(&workspace, "github", &["--force"]);
    assert_ne!(
        std::fs::read_to_string(&build_yaml).unwrap(),
        "directory: .\n# mine\n"
    );
}
