//! `configure` in a real git checkout: the files it writes, that the workflows parse and use
//! only flags the binary has, that a second run changes nothing, that `--force` rewrites only
//! what configure generated, that every registry gets a login and every secret is named, and
//! that the organization URL is the one `check -v` resolves. (The generated files are run step
//! by step in `ci_files`.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{DgWorkspace, dagster_deploy, describe, git, run, success};

/// `configure` with a clean environment: a private HOME, no Dagster+ settings but the flags.
fn configure_command(dir: &Path, home: &Path, provider: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(dagster_deploy());
    command
        .env_clear()
        .env("PATH", crate::ci_runner::OS_PATH)
        .env("HOME", home)
        .args([
            "configure",
            "--git-provider",
            provider,
            "--yes",
            "--project-dir",
        ])
        .arg(dir)
        .args(extra);
    command
}

fn configure(workspace: &DgWorkspace, provider: &str, extra: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["--organization", "acme"];
    args.extend(extra);
    success(&mut configure_command(
        workspace.path(),
        home.path(),
        provider,
        &args,
    ))
}

/// Runs `configure` and returns its stderr (progress and the "Next:" hint).
fn configure_stderr(dir: &Path, provider: &str, extra: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["--organization", "acme"];
    args.extend(extra);
    let output = run(&mut configure_command(dir, home.path(), provider, &args));
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every `dagster-deploy <command> --flag` in a script, as (command words, flags).
fn invocations(script: &str) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let mut found = Vec::new();
    for line in script.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
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
fn configure_twice_changes_nothing() {
    let workspace = DgWorkspace::new(&["sales", "ops-core"], "ghcr.io/acme/code");
    for provider in ["github", "gitlab"] {
        configure(
            &workspace,
            provider,
            &["--registry-url", "ghcr.io/acme/code"],
        );
        git(workspace.path(), &["add", "-A"]);
        git(workspace.path(), &["commit", "-qm", provider]);
        let stderr = configure_stderr(
            workspace.path(),
            provider,
            &["--registry-url", "ghcr.io/acme/code"],
        );
        assert!(
            !stderr.contains("Wrote") && !stderr.contains("Set the"),
            "{stderr}"
        );
        let status = success(
            Command::new("git")
                .arg("-C")
                .arg(workspace.path())
                .args(["status", "--porcelain"]),
        );
        assert_eq!(status, "", "a second run changed files:\n{stderr}");
    }
}

#[test]
fn force_rewrites_only_what_configure_generated() {
    let workspace = DgWorkspace::new(&["sales", "ops-core"], "ghcr.io/acme/code");
    let member = workspace.path().join("projects/sales/build.yaml");
    std::fs::write(&member, "directory: .\n# mine\n").unwrap();
    let override_file = workspace.path().join("projects/ops-core/build.yaml");
    std::fs::write(
        &override_file,
        "# ops pushes elsewhere\ndirectory: .\nregistry: quay.io/acme/ops\n",
    )
    .unwrap();
    let workspace_file = workspace.path().join("build.yaml");
    std::fs::write(
        &workspace_file,
        "# the team's registry\nregistry: ghcr.io/acme/code\n",
    )
    .unwrap();
    configure(&workspace, "github", &[]);
    let workflow = workspace
        .path()
        .join(".github/workflows/dagster-plus-deploy.yml");
    let generated = std::fs::read_to_string(&workflow).unwrap();

    // An edited generated file is kept, unless forced.
    std::fs::write(&workflow, format!("{generated}# edited\n")).unwrap();
    configure(&workspace, "github", &[]);
    assert!(
        std::fs::read_to_string(&workflow)
            .unwrap()
            .ends_with("# edited\n")
    );
    configure(
        &workspace,
        "github",
        &["--force", "--registry-url", "ghcr.io/acme/new"],
    );
    let rewritten = std::fs::read_to_string(&workflow).unwrap();
    assert!(!rewritten.contains("# edited"));

    // --force changed the workspace registry line and nothing else.
    assert_eq!(
        std::fs::read_to_string(&workspace_file).unwrap(),
        "# the team's registry\nregistry: 'ghcr.io/acme/new'\n"
    );
    assert_eq!(
        std::fs::read_to_string(&member).unwrap(),
        "directory: .\n# mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(&override_file).unwrap(),
        "# ops pushes elsewhere\ndirectory: .\nregistry: quay.io/acme/ops\n",
        "another project's registry override survives"
    );
    assert!(
        rewritten.contains("--location-name ops-core")
            && rewritten.contains("secrets.REGISTRY_PASSWORD"),
        "the override's registry (quay.io) gets a login:\n{rewritten}"
    );

    // A workflow configure did not write is never overwritten, even with --force.
    let theirs = "name: our own deploy\non: push\njobs: {}\n";
    std::fs::write(&workflow, theirs).unwrap();
    let stderr = configure_stderr(workspace.path(), "github", &["--force"]);
    assert_eq!(std::fs::read_to_string(&workflow).unwrap(), theirs);
    assert!(stderr.contains("did not write it"), "{stderr}");
}

#[test]
fn a_placeholder_registry_is_filled_in_by_registry_url() {
    let workspace = DgWorkspace::new(&["sales"], "ghcr.io/acme/code");
    // The reference's scaffold writes this placeholder when it knows no registry.
    let workspace_file = workspace.path().join("build.yaml");
    std::fs::write(&workspace_file, "# pick one\nregistry: '...'\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let output: Output = run(&mut configure_command(
        workspace.path(),
        home.path(),
        "github",
        &["--organization", "acme"],
    ));
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--registry-url"),
        "{}",
        describe(&output)
    );
    configure(
        &workspace,
        "github",
        &["--registry-url", "ghcr.io/acme/code"],
    );
    assert_eq!(
        std::fs::read_to_string(&workspace_file).unwrap(),
        "# pick one\nregistry: 'ghcr.io/acme/code'\n"
    );
    // Without a registry at all, configure writes a file that stays valid.
    let fresh = DgWorkspace::new(&["sales"], "ghcr.io/acme/code");
    std::fs::remove_file(fresh.path().join("build.yaml")).unwrap();
    configure(&fresh, "github", &[]);
    configure(&fresh, "github", &["--registry-url", "ghcr.io/acme/later"]);
    let text = std::fs::read_to_string(fresh.path().join("build.yaml")).unwrap();
    assert!(text.contains("registry: 'ghcr.io/acme/later'"), "{text}");
    assert_eq!(text.matches("registry:").count(), 1, "{text}");
}

/// The organization URL `check -v` resolves in `home` with `env`. Without an API token, check
/// stops right after resolving it, before any network traffic.
fn check_resolves(dir: &Path, home: &Path, env: &[(&str, &str)], extra: &[&str]) -> String {
    let output = run(Command::new(dagster_deploy())
        .env_clear()
        .env("PATH", crate::ci_runner::OS_PATH)
        .env("HOME", home)
        .envs(env.iter().copied())
        .args(["check", "-v", "--project-dir"])
        .arg(dir)
        .args(extra));
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.split("organization URL: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "check -v printed no organization URL:\n{}",
                describe(&output)
            )
        })
        .to_owned()
}

#[test]
fn the_organization_url_comes_from_every_settings_source_as_check_resolves_it() {
    let workspace = DgWorkspace::new(&["sales"], "ghcr.io/acme/code");
    let workflow = workspace
        .path()
        .join(".github/workflows/dagster-plus-deploy.yml");
    // (source, env vars, a config file in HOME and its text)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Option<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "dg login config",
            vec![],
            Some((
                ".config/dg.toml",
                "[cli.plus]\norganization = \"acme\"\nurl = \"https://acme.eu.dagster.cloud\"\n",
            )),
        ),
        (
            "dagster-cloud login config",
            vec![],
            Some((
                ".dagster_cloud_cli/config",
                "organization: acme\nurl: https://acme.eu.dagster.cloud\n",
            )),
        ),
        (
            "region env var",
            vec![
                ("DAGSTER_CLOUD_ORGANIZATION", "acme"),
                ("DAGSTER_CLOUD_ENV", "eu"),
            ],
            None,
        ),
        (
            "URL env var",
            vec![
                ("DAGSTER_CLOUD_ORGANIZATION", "acme"),
                ("DAGSTER_CLOUD_URL", "https://acme.eu.dagster.cloud"),
            ],
            None,
        ),
    ];
    for (name, env, config) in cases {
        let home = tempfile::tempdir().unwrap();
        if let Some((path, text)) = config {
            let path = home.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let expected = check_resolves(workspace.path(), home.path(), &env, &[]);
        assert_eq!(expected, "https://acme.eu.dagster.cloud", "{name}");
        let output = run(
            configure_command(workspace.path(), home.path(), "github", &["--force"])
                .envs(env.iter().copied()),
        );
        assert!(output.status.success(), "{name}: {}", describe(&output));
        let text = std::fs::read_to_string(&workflow).unwrap();
        assert!(
            text.contains(&format!("DAGSTER_CLOUD_URL: '{expected}'")),
            "{name}: the workflow does not use {expected}:\n{text}"
        );
    }
    // configure's --region flag wins over the other sources.
    configure_stderr(workspace.path(), "github", &["--force", "--region", "eu"]);
    let text = std::fs::read_to_string(&workflow).unwrap();
    assert!(
        text.contains("DAGSTER_CLOUD_URL: 'https://acme.eu.dagster.cloud'"),
        "{text}"
    );
}

#[test]
fn every_registry_gets_a_login_and_the_hint_names_every_secret() {
    let workspace = DgWorkspace::new(
        &["sales", "ops", "hub", "own"],
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/code",
    );
    for (project, registry) in [
        ("ops", "ghcr.io/acme/ops"),
        ("hub", "acme/hub"),
        ("own", "registry.example.com:5000/own"),
    ] {
        std::fs::write(
            workspace
                .path()
                .join(format!("projects/{project}/build.yaml")),
            format!("directory: .\nregistry: {registry}\n"),
        )
        .unwrap();
    }
    let stderr = configure_stderr(workspace.path(), "github", &[]);
    let text = std::fs::read_to_string(
        workspace
            .path()
            .join(".github/workflows/dagster-plus-deploy.yml"),
    )
    .unwrap();
    assert!(
        text.contains("aws ecr get-login-password --region eu-west-1"),
        "{text}"
    );
    assert!(text.contains("packages: write"), "{text}");
    for secret in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "DOCKERHUB_USERNAME",
        "DOCKERHUB_TOKEN",
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
        "DAGSTER_CLOUD_API_TOKEN",
        "GITHUB_TOKEN",
    ] {
        assert!(
            text.contains(&format!("secrets.{secret}")),
            "{secret} not used:\n{text}"
        );
        assert!(
            stderr.contains(secret),
            "the hint does not name {secret}:\n{stderr}"
        );
    }
    let gitlab_stderr = configure_stderr(workspace.path(), "gitlab", &[]);
    let gitlab = std::fs::read_to_string(workspace.path().join(".gitlab-ci.yml")).unwrap();
    for variable in [
        "GITHUB_USERNAME",
        "GITHUB_TOKEN",
        "DOCKERHUB_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "DOCKER_AUTH_CONFIG",
    ] {
        // The AWS CLI reads its keys from the environment itself; the others are in commands.
        assert!(gitlab.contains(variable), "{variable}:\n{gitlab}");
        assert!(
            gitlab_stderr.contains(variable),
            "the hint does not name {variable}:\n{gitlab_stderr}"
        );
    }
}

#[test]
fn a_project_at_the_git_root_is_not_named_after_the_checkout_folder() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("my-clone");
    std::fs::create_dir_all(checkout.join("src/sales")).unwrap();
    let pyproject = "[project]\nname = \"sales\"\nversion = \"0.1.0\"\n\n[tool.dg]\ndirectory_type = \"project\"\n\n[tool.dg.project]\nroot_module = \"sales\"\n";
    std::fs::write(checkout.join("pyproject.toml"), pyproject).unwrap();
    std::fs::write(checkout.join("src/sales/__init__.py"), "").unwrap();
    std::fs::write(checkout.join("src/sales/definitions.py"), "").unwrap();
    git(&checkout, &["init", "-q", "-b", "main"]);
    configure_stderr(
        &checkout,
        "github",
        &["--registry-url", "ghcr.io/acme/sales"],
    );
    let text = std::fs::read_to_string(checkout.join(".github/workflows/dagster-plus-deploy.yml"))
        .unwrap();
    assert!(!text.contains("--location-name"), "{text}");
    assert!(
        text.contains("dagster-deploy build-and-push --builder native"),
        "{text}"
    );

    // A name written in the project is used.
    std::fs::write(
        checkout.join("pyproject.toml"),
        pyproject.replace(
            "root_module = \"sales\"",
            "root_module = \"sales\"\ncode_location_name = \"sales-prod\"",
        ),
    )
    .unwrap();
    configure_stderr(&checkout, "github", &["--force"]);
    let text = std::fs::read_to_string(checkout.join(".github/workflows/dagster-plus-deploy.yml"))
        .unwrap();
    assert!(text.contains("--location-name sales-prod"), "{text}");
}

/// A dg project at the root of a git checkout, with `extra` files (path, contents).
fn project_checkout(dir: &Path, extra: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("src/sales")).unwrap();
    let pyproject = "[project]\nname = \"sales\"\nversion = \"0.1.0\"\nrequires-python = \">=3.10\"\ndependencies = [\"dagster\"]\n\n[tool.dg]\ndirectory_type = \"project\"\n\n[tool.dg.project]\nroot_module = \"sales\"\ncode_location_name = \"sales\"\n";
    std::fs::write(dir.join("pyproject.toml"), pyproject).unwrap();
    std::fs::write(dir.join("src/sales/__init__.py"), "").unwrap();
    std::fs::write(dir.join("src/sales/definitions.py"), "").unwrap();
    for (path, contents) in extra {
        std::fs::write(dir.join(path), contents).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
}

#[test]
fn with_a_uv_lock_configure_picks_a_plain_python_base_of_the_projects_version() {
    let dir = tempfile::tempdir().unwrap();
    project_checkout(
        dir.path(),
        &[
            (
                "uv.lock",
                "version = 1\nrevision = 3\nrequires-python = \">=3.11, <3.14\"\n",
            ),
            (".python-version", "3.12\n"),
        ],
    );
    let stderr = configure_stderr(
        dir.path(),
        "github",
        &["--registry-url", "ghcr.io/acme/sales"],
    );
    let workflow_path = dir.path().join(".github/workflows/dagster-plus-deploy.yml");
    let text = std::fs::read_to_string(&workflow_path).unwrap();
    assert!(
        text.contains("--builder native --base-image python:3.12-slim"),
        "{text}"
    );
    assert!(
        text.contains("for the plain Python image python:3.12-slim"),
        "{text}"
    );
    assert!(text.contains("id: install-uv"), "{text}");
    assert!(stderr.contains(".python-version asks for"), "{stderr}");
    assert!(
        stderr.contains("the packages uv.lock pins become a layer of their own"),
        "{stderr}"
    );

    // Without .python-version, the lock's requires-python decides.
    std::fs::remove_file(dir.path().join(".python-version")).unwrap();
    let stderr = configure_stderr(dir.path(), "gitlab", &[]);
    let text = std::fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap();
    assert!(
        text.contains("--builder native --base-image python:3.11-slim"),
        "{text}"
    );
    assert!(text.contains("astral.sh/uv/"), "{text}");
    assert!(stderr.contains("uv.lock asks for"), "{stderr}");
}

#[test]
fn without_a_uv_lock_configure_says_what_the_base_image_must_hold() {
    let dir = tempfile::tempdir().unwrap();
    project_checkout(dir.path(), &[]);
    let stderr = configure_stderr(
        dir.path(),
        "github",
        &["--registry-url", "ghcr.io/acme/sales"],
    );
    let text =
        std::fs::read_to_string(dir.path().join(".github/workflows/dagster-plus-deploy.yml"))
            .unwrap();
    assert!(
        text.contains("# Images: the code goes on top of python:3.12-slim, which must already hold Python and\n# every dependency of the code"),
        "{text}"
    );
    assert!(!text.contains("install-uv"), "{text}");
    assert!(
        stderr.contains("warning: no uv.lock in ")
            && stderr.contains("must hold Python and every dependency"),
        "{stderr}"
    );
}
