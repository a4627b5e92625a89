//! The scaffolded CI files parse as YAML and have unique step ids, per-location tags, the
//! organization URL and only `dagster-deploy` flags that exist.

use std::collections::HashSet;

use serde_yaml_ng::Value;

use super::*;

fn options(builder: ScaffoldBuilder) -> ScaffoldOptions {
    ScaffoldOptions {
        organization: "acme".into(),
        region: None,
        deployment: "prod".into(),
        project_dir: "data platform".into(),
        locations: vec![
            "sales".into(),
            "ops.core".into(),
            "ops-core".into(),
            "it's odd".into(),
        ],
        builder,
        registry_host: Some("ghcr.io".into()),
        install_command: "cargo install --locked dagster-deploy".into(),
        gitlab_image: "rust:1.95-bookworm".into(),
    }
}

fn native() -> ScaffoldBuilder {
    ScaffoldBuilder::Native {
        base_image: "python:3.12-slim".into(),
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
fn github_workflow_uses_the_region_url_and_docker_builder() {
    let mut opts = options(ScaffoldBuilder::Docker);
    opts.region = Some("eu".into());
    opts.registry_host = None;
    let doc = parse(&github_workflow(&opts).unwrap());
    assert_eq!(
        doc["env"]["DAGSTER_CLOUD_URL"].as_str(),
        Some("https://acme.eu.dagster.cloud")
    );
    let runs: Vec<&str> = doc["jobs"]["deploy"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("--builder docker --image-tag")),
        "{runs:?}"
    );
    assert!(!runs.iter().any(|r| r.contains("--path")), "{runs:?}");
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
        doc["variables"]["DOCKER_HOST"].as_str(),
        Some("tcp://docker:2375")
    );
    assert_eq!(
        strings(&doc[".dagster-deploy"]["services"]),
        ["docker:27-dind"]
    );
    let before = strings(&doc[".dagster-deploy"]["before_script"]);
    assert!(
        before[1].contains("docker login") && before[1].ends_with("ghcr.io"),
        "{before:?}"
    );
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
            Box::new(|o| o.locations = vec!["a\nb: c".into()]),
        ),
        ("locations", Box::new(|o| o.locations.clear())),
        (
            "base_image",
            Box::new(|o| {
                o.builder = ScaffoldBuilder::Native {
                    base_image: "python 3".into(),
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
        serde_yaml_ng::from_str(&workspace_build_yaml("ghcr.io/acme/code")).unwrap();
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
    let placeholder: Value = serde_yaml_ng::from_str(&project_build_yaml(None, false)).unwrap();
    assert_eq!(placeholder["registry"], Value::from("..."));
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
