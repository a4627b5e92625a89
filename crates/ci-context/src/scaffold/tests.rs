//! The scaffolded CI files parse as YAML and have unique step ids, per-location tags, the
//! organization URL and only `dagster-deploy` flags that exist.

use std::collections::HashSet;

use serde_yaml_ng::Value;

use super::*;

fn location(name: &str) -> ScaffoldLocation {
    ScaffoldLocation {
        name: Some(name.into()),
        registry: Some("ghcr.io/acme/code".into()),
    }
}

fn options(builder: ScaffoldBuilder) -> ScaffoldOptions {
    ScaffoldOptions {
        organization: "acme".into(),
        organization_url: "https://acme.dagster.cloud".into(),
        deployment: "prod".into(),
        project_dir: "data platform".into(),
        locations: vec![
            location("sales"),
            location("ops.core"),
            location("ops-core"),
            location("it's odd"),
        ],
        builder,
        version: "0.1.0".into(),
        release_repository: "dagster-deploy/dagster-deploy".into(),
        gitlab_image: None,
    }
}

fn native() -> ScaffoldBuilder {
    ScaffoldBuilder::Native {
        base_image: "python:3.12-slim".into(),
        deps_layer: false,
    }
}

fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn github_workflow_has_unique_step_ids_and_distinct_tags() {
    let text = github_workflow(&options(native())).unwrap();
    let doc = parse(&text);
    assert_eq!(
        doc["env"]["DAGSTER_CLOUD_URL"].as_str(),
        Some("https://acme.dagster.cloud")
    );
    assert_eq!(
        doc["env"]["DAGSTER_PROJECT_DIR"].as_str(),
        Some("data platform")
    );
    let steps = doc["jobs"]["deploy"]["steps"].as_sequence().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    let builds: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .filter(|r| r.contains("build-and-push"))
        .collect();
    assert_eq!(builds.len(), 4);
    let tags: HashSet<&str> = builds
        .iter()
        .map(|b| b.split("--image-tag ").nth(1).unwrap().trim())
        .collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    assert!(
        builds[0].contains("--location-name sales --builder native --base-image python:3.12-slim")
    );
    assert!(
        builds[3].contains(r"--location-name 'it'\''s odd'"),
        "{}",
        builds[3]
    );
    let close = &doc["jobs"]["close-branch-deployment"]["steps"][2]["run"];
    assert_eq!(
        close.as_str(),
        Some("dagster-deploy branch-deployment --mark-closed")
    );
    insta::assert_snapshot!(text);
}

#[test]
fn github_workflow_writes_the_given_url_and_logs_in_with_docker_for_the_docker_builder() {
    let mut opts = options(ScaffoldBuilder::Docker);
    opts.organization_url = "https://acme.eu.dagster.cloud".into();
    opts.locations[1].registry = Some("acme/app".into());
    let doc = parse(&github_workflow(&opts).unwrap());
    assert_eq!(
        doc["env"]["DAGSTER_CLOUD_URL"].as_str(),
        Some("https://acme.eu.dagster.cloud")
    );
    let steps = doc["jobs"]["deploy"]["steps"].as_sequence().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("--builder docker --image-tag")),
        "{runs:?}"
    );
    assert!(!runs.iter().any(|r| r.contains("--path")), "{runs:?}");
    let logins: Vec<&str> = runs
        .iter()
        .copied()
        .filter(|r| r.contains("docker login"))
        .collect();
    assert_eq!(logins.len(), 2, "one login per registry host: {logins:?}");
    assert!(logins[0].ends_with("ghcr.io") && logins[1].ends_with("docker.io"));
    let docker_hub = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("registry-login-docker-io"))
        .unwrap();
    assert_eq!(
        docker_hub["env"]["DOCKERHUB_TOKEN"].as_str(),
        Some("${{ secrets.DOCKERHUB_TOKEN }}")
    );
    assert_eq!(
        doc["permissions"]["packages"].as_str(),
        Some("write"),
        "ghcr.io is pushed to with GITHUB_TOKEN"
    );
}

#[test]
fn github_workflow_installs_with_the_pinned_action() {
    let doc = parse(&github_workflow(&options(native())).unwrap());
    for job in ["deploy", "close-branch-deployment"] {
        let install = &doc["jobs"][job]["steps"][1];
        assert_eq!(
            install["uses"].as_str(),
            Some("dagster-deploy/dagster-deploy@v0.1.0"),
            "{job}"
        );
        assert_eq!(install["with"]["version"].as_str(), Some("0.1.0"));
    }
}

#[test]
fn native_builds_carry_their_own_registry_login_and_a_single_unnamed_location_is_not_selected() {
    let mut opts = options(native());
    opts.locations = vec![ScaffoldLocation {
        name: None,
        registry: Some("registry.example.com:5000/team/code".into()),
    }];
    let doc = parse(&github_workflow(&opts).unwrap());
    let build = doc["jobs"]["deploy"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some("build-and-push"))
        .unwrap();
    let run = build["run"].as_str().unwrap();
    assert_eq!(
        run.trim(),
        "DAGSTER_DEPLOY_REGISTRY_USERNAME=\"$REGISTRY_USERNAME\" DAGSTER_DEPLOY_REGISTRY_PASSWORD=\"$REGISTRY_PASSWORD\" dagster-deploy build-and-push --builder native --base-image python:3.12-slim --image-tag \"$IMAGE_TAG\""
    );
    assert_eq!(
        build["env"]["REGISTRY_PASSWORD"].as_str(),
        Some("${{ secrets.REGISTRY_PASSWORD }}")
    );
    opts.locations.push(location("sales"));
    assert!(matches!(
        github_workflow(&opts).unwrap_err(),
        Error::InvalidScaffoldValue {
            field: "locations",
            ..
        }
    ));
}

#[test]
fn secrets_name_every_login_and_say_which_the_ci_system_provides() {
    let mut opts = options(native());
    opts.locations = vec![
        location("a"),
        ScaffoldLocation {
            name: Some("b".into()),
            registry: Some("123.dkr.ecr.eu-west-1.amazonaws.com/app".into()),
        },
        ScaffoldLocation {
            name: Some("c".into()),
            registry: Some("docker.io/acme/app".into()),
        },
    ];
    let github = secrets(&opts, GitProvider::GitHub);
    let names: Vec<(Vec<String>, bool)> = github
        .iter()
        .map(|secret| (secret.names.clone(), secret.provided))
        .collect();
    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        names,
        [
            (owned(&["DAGSTER_CLOUD_API_TOKEN"]), false),
            (owned(&["GITHUB_TOKEN"]), true),
            (
                owned(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
                false
            ),
            (owned(&["DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"]), false),
        ]
    );
    let gitlab = secrets(&opts, GitProvider::GitLab);
    assert_eq!(gitlab[1].names, owned(&["GITHUB_USERNAME", "GITHUB_TOKEN"]));
    assert!(!gitlab[1].provided);
}

#[test]
fn gitlab_ci_has_full_and_branch_jobs_and_closes_on_stop() {
    let text = gitlab_ci(&options(native())).unwrap();
    let doc = parse(&text);
    assert_eq!(
        doc["variables"]["DAGSTER_CLOUD_URL"].as_str(),
        Some("https://acme.dagster.cloud")
    );
    let script = strings(&doc[".dagster-deploy"]["script"]);
    let builds: Vec<&String> = script
        .iter()
        .filter(|l| l.contains("build-and-push"))
        .collect();
    let tags: HashSet<&str> = builds
        .iter()
        .map(|b| b.split("--image-tag ").nth(1).unwrap())
        .collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    assert_eq!(script.last().unwrap(), "dagster-deploy deploy");
    assert_eq!(
        doc["deploy-branch"]["environment"]["on_stop"].as_str(),
        Some("close-branch-deployment")
    );
    assert_eq!(
        doc["close-branch-deployment"]["environment"]["action"].as_str(),
        Some("stop")
    );
    assert_eq!(
        strings(&doc["close-branch-deployment"]["script"])[1],
        "dagster-deploy branch-deployment --mark-closed"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn gitlab_ci_with_docker_builder_uses_docker_in_docker() {
    let doc = parse(&gitlab_ci(&options(ScaffoldBuilder::Docker)).unwrap());
    assert_eq!(
        doc[".dagster-deploy"]["image"].as_str(),
        Some("docker:27"),
        "an image with a docker CLI"
    );
    assert_eq!(
        doc["variables"]["DOCKER_HOST"].as_str(),
        Some("tcp://docker:2375")
    );
    assert_eq!(
        strings(&doc[".dagster-deploy"]["services"]),
        ["docker:27-dind"]
    );
    let script = strings(&doc[".dagster-deploy"]["script"]);
    assert!(
        script[1].contains("docker login") && script[1].ends_with("ghcr.io"),
        "{script:?}"
    );
}

#[test]
fn gitlab_ci_installs_the_pinned_archive_with_the_install_script() {
    let doc = parse(&gitlab_ci(&options(native())).unwrap());
    assert_eq!(
        doc["variables"]["DAGSTER_DEPLOY_VERSION"].as_str(),
        Some("0.1.0")
    );
    let install = strings(&doc[".dagster-deploy-install"]["before_script"]);
    assert!(install[0].contains("sha256"), "{}", install[0]);
    assert!(install_script_body().starts_with("set -eu\n"));
    let body: Vec<&str> = install_script_body()
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    let embedded: Vec<&str> = install[0]
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
        .collect();
    for line in body {
        assert!(
            embedded.contains(&line.trim_start()),
            "the embedded script lacks {line:?}"
        );
    }
    assert_eq!(
        doc[".dagster-deploy"]["extends"].as_str(),
        Some(".dagster-deploy-install")
    );
    assert_eq!(
        doc[".dagster-deploy"]["image"].as_str(),
        Some("buildpack-deps:bookworm-scm")
    );
}

#[test]
fn with_a_dependency_layer_the_ci_files_install_uv_and_say_the_base_is_plain_python() {
    let builder = ScaffoldBuilder::Native {
        base_image: "python:3.11-slim".into(),
        deps_layer: true,
    };
    let github = github_workflow(&options(builder.clone())).unwrap();
    assert!(
        github.contains(
            "installed by uv\n# (set up below) for the plain Python image python:3.11-slim"
        ),
        "{github}"
    );
    let steps = parse(&github)["jobs"]["deploy"]["steps"].clone();
    let ids: Vec<String> = steps
        .as_sequence()
        .unwrap()
        .iter()
        .map(|step| step["id"].as_str().unwrap().to_owned())
        .collect();
    let install = ids
        .iter()
        .position(|id| id == "install-uv")
        .expect("an install-uv step");
    let start = ids.iter().position(|id| id == "start").unwrap();
    assert!(install < start, "{ids:?}");
    let run = steps[install]["run"].as_str().unwrap();
    assert!(
        run.contains(&format!("https://astral.sh/uv/{UV_VERSION}/install.sh")),
        "{run}"
    );
    let gitlab = gitlab_ci(&options(builder)).unwrap();
    let script = strings(&parse(&gitlab)[".dagster-deploy"]["script"]);
    let install = script
        .iter()
        .position(|line| line.contains("astral.sh/uv/"))
        .expect("uv is installed");
    let build = script
        .iter()
        .position(|line| line.contains("build-and-push"))
        .unwrap();
    assert!(install < build, "{script:?}");

    // Without a lock, the files say what the base must hold, and install no uv.
    let github = github_workflow(&options(native())).unwrap();
    assert!(
        github.contains("which must already hold Python and\n# every dependency of the code"),
        "{github}"
    );
    assert!(!github.contains("astral.sh"), "{github}");
    assert!(!gitlab_ci(&options(native())).unwrap().contains("astral.sh"));
}

#[test]
fn invalid_inputs_are_rejected_with_the_field_name() {
    type Change = Box<dyn Fn(&mut ScaffoldOptions)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "organization",
            Box::new(|o| o.organization = "Acme Corp".into()),
        ),
        (
            "locations",
            Box::new(|o| o.locations = vec![location("a\nb: c")]),
        ),
        (
            "registry",
            Box::new(|o| o.locations[0].registry = Some("ghcr.io/a b".into())),
        ),
        (
            "organization_url",
            Box::new(|o| o.organization_url = "acme.dagster.cloud".into()),
        ),
        (
            "release_repository",
            Box::new(|o| o.release_repository = "a/b/c".into()),
        ),
        ("locations", Box::new(|o| o.locations.clear())),
        (
            "base_image",
            Box::new(|o| {
                o.builder = ScaffoldBuilder::Native {
                    base_image: "python 3".into(),
                    deps_layer: true,
                }
            }),
        ),
        ("deployment", Box::new(|o| o.deployment = "prod\n".into())),
    ];
    for (field, change) in cases {
        let mut opts = options(native());
        change(&mut opts);
        for err in [
            github_workflow(&opts).unwrap_err(),
            gitlab_ci(&opts).unwrap_err(),
        ] {
            assert!(
                matches!(&err, Error::InvalidScaffoldValue { field: f, .. } if *f == field),
                "{err:?}"
            );
        }
    }
}

#[test]
fn build_yaml_files_parse_and_carry_the_registry_where_it_belongs() {
    let workspace: Value =
        serde_yaml_ng::from_str(&workspace_build_yaml(Some("ghcr.io/acme/code"))).unwrap();
    assert_eq!(workspace["registry"], Value::from("ghcr.io/acme/code"));
    let member: Value =
        serde_yaml_ng::from_str(&project_build_yaml(Some("ghcr.io/x"), true)).unwrap();
    assert_eq!(member["directory"], Value::from("."));
    assert!(
        member.get("registry").is_none(),
        "a workspace member inherits the registry"
    );
    let standalone: Value =
        serde_yaml_ng::from_str(&project_build_yaml(Some("ghcr.io/x"), false)).unwrap();
    assert_eq!(standalone["registry"], Value::from("ghcr.io/x"));
    for text in [project_build_yaml(None, false), workspace_build_yaml(None)] {
        let unset: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            unset["registry"],
            Value::Null,
            "without a registry the file stays valid: {text}"
        );
        assert_eq!(build_yaml_registry(&text), None);
    }
}

#[test]
fn setting_the_registry_keeps_every_other_line() {
    let check = |text: &str, expected: &str| {
        let updated = build_yaml_with_registry(text, "ghcr.io/acme/new");
        assert_eq!(updated, expected, "from {text:?}");
        assert_eq!(
            build_yaml_registry(&updated).as_deref(),
            Some("ghcr.io/acme/new")
        );
    };
    check(
        "# mine\nregistry: '...'\ndirectory: .\n",
        "# mine\nregistry: 'ghcr.io/acme/new'\ndirectory: .\n",
    );
    check(
        &workspace_build_yaml(None),
        &workspace_build_yaml(Some("ghcr.io/acme/new")),
    );
    check(
        "directory: .",
        "directory: .\nregistry: 'ghcr.io/acme/new'\n",
    );
    assert_eq!(
        build_yaml_registry("registry: \"a/b\"  # comment\n").as_deref(),
        Some("a/b")
    );
    assert_eq!(build_yaml_registry("  registry: nested\n"), None);
}

#[test]
fn dockerfile_names_the_python_version_and_package_and_rejects_bad_values() {
    let text = dockerfile("3.12", "sales").unwrap();
    assert!(
        text.contains("FROM ghcr.io/astral-sh/uv:python3.12-bookworm-slim AS builder"),
        "{text}"
    );
    assert!(text.contains("FROM python:3.12-slim-bookworm"), "{text}");
    assert!(
        text.contains("uv sync --frozen --no-dev --package sales"),
        "{text}"
    );
    assert!(dockerfile("3", "sales").is_err());
    assert!(dockerfile("3.12", "sales; rm -rf /").is_err());
}
