//! Tests of `dagster_cloud.rs`: schema, defaults, values and positions.

use std::path::Path;

use serde_json::json;

use super::*;

const FILE: &str = "/repo/dagster_cloud.yaml";

fn parse(text: &str) -> Result<DagsterCloudYaml> {
    DagsterCloudYaml::parse(text, Path::new(FILE))
}

/// Asserts that `text` fails with an `Invalid` error at `line:column` on `field`, whose problem
/// contains `problem`.
fn check_invalid(
    text: &str,
    expected_line: usize,
    expected_column: usize,
    expected_field: &str,
    problem_part: &str,
) {
    match parse(text) {
        Err(Error::Invalid {
            line,
            column,
            field,
            problem,
            ..
        }) => {
            assert_eq!(
                (line, column, field.as_str()),
                (expected_line, expected_column, expected_field),
                "{problem}"
            );
            assert!(
                problem.contains(problem_part),
                "{problem:?} lacks {problem_part:?}"
            );
        }
        other => panic!("expected an Invalid error for {text:?}, got {other:?}"),
    }
}

#[test]
fn the_recorded_legacy_file_parses_into_two_locations() {
    let text = include_str!("../../tests/fixtures/legacy-flow/dagster_cloud.yaml");
    let config = parse(text).unwrap();
    let names: Vec<&str> = config
        .locations()
        .iter()
        .map(|l| l.name().as_str())
        .collect();
    assert_eq!(names, ["warehouse", "marketing"]);
    let warehouse = config.location("warehouse").unwrap();
    assert_eq!(
        warehouse.code_source(),
        Some(&CodeSource::PackageName("warehouse".into()))
    );
    assert_eq!(
        warehouse.registry().unwrap().as_str(),
        "registry.example.com/data/warehouse"
    );
    assert_eq!(warehouse.build_directory(), Some(Path::new("/repo/pkg_a")));
    assert_eq!(warehouse.build().unwrap().directory(), Some("./pkg_a"));
    assert_eq!(warehouse.working_directory(), Some("/opt/app"));
    assert_eq!(
        Value::Object(warehouse.entry().clone()),
        json!({
            "location_name": "warehouse",
            "code_source": {"package_name": "warehouse"},
            "working_directory": "/opt/app",
            "build": {"directory": "./pkg_a", "registry": "registry.example.com/data/warehouse"},
            "container_context": {"k8s": {"env_vars": ["SNOWFLAKE_ACCOUNT", "LOG_LEVEL=info"]}}
        })
    );
    let marketing = config.location("marketing").unwrap();
    assert_eq!(marketing.agent_queue(), Some("eu-queue"));
    assert_eq!(marketing.build_directory(), None);
    assert!(config.location("nope").is_none());
}

#[test]
fn defaults_are_applied_to_every_location() {
    // The fix for reference-behaviour ref-bug 1: the reference ignores `defaults` when deploying.
    let config = parse(
        "defaults:
  build: {registry: ghcr.io/acme/base, directory: ./common}
  agent_queue: q1
  image: ignored-by-a
  container_context:
    k8s:
      env_vars: [LOG_LEVEL=info, REGION=us]
      namespace: dagster
locations:
  - location_name: a
    code_source: {module_name: a.defs}
    image: mine
    container_context:
      k8s:
        env_vars: [REGION=eu]
  - location_name: b
    code_source: {package_name: b}
    build: {registry: ghcr.io/acme/b, directory: null}
    agent_queue: null
",
    )
    .unwrap();
    let a = config.location("a").unwrap();
    assert_eq!(a.registry().unwrap().as_str(), "ghcr.io/acme/base");
    assert_eq!(a.agent_queue(), Some("q1"));
    assert_eq!(a.image(), Some("mine"));
    assert_eq!(a.build_directory(), Some(Path::new("/repo/common")));
    assert_eq!(
        a.entry()["container_context"],
        json!({"k8s": {"env_vars": ["LOG_LEVEL=info", "REGION=eu"], "namespace": "dagster"}})
    );
    let b = config.location("b").unwrap();
    assert_eq!(b.registry().unwrap().as_str(), "ghcr.io/acme/b");
    // A null in the location does not mask the default.
    assert_eq!(b.agent_queue(), Some("q1"));
    assert_eq!(b.build().unwrap().directory(), Some("./common"));
    assert_eq!(
        b.entry()["build"],
        json!({"registry": "ghcr.io/acme/b", "directory": "./common"})
    );
    assert!(
        !b.entry().contains_key("code_source")
            || b.entry()["code_source"] == json!({"package_name": "b"})
    );
}

#[test]
fn without_defaults_the_entry_is_kept_as_written() {
    let config = parse("locations:\n- location_name: a\n  image: null\n  code_source: {module_name: m, package_name: ''}\n").unwrap();
    let a = &config.locations()[0];
    assert_eq!(
        Value::Object(a.entry().clone()),
        json!({"location_name": "a", "image": null, "code_source": {"module_name": "m", "package_name": ""}})
    );
    assert_eq!(a.code_source(), Some(&CodeSource::ModuleName("m".into())));
    assert_eq!(a.image(), None);
}

#[test]
fn unknown_keys_point_at_the_key_and_suggest_the_nearest() {
    check_invalid(
        "locations:\n  - location_name: a\n    agent_queu: x\n",
        3,
        5,
        "locations[0].agent_queu",
        "unknown key `agent_queu`",
    );
    check_invalid(
        "location:\n  - location_name: a\n",
        1,
        1,
        "location",
        "unknown key",
    );
    check_invalid(
        "defaults:\n  code_source: {module_name: x}\nlocations: [{location_name: a}]\n",
        2,
        3,
        "defaults.code_source",
        "in `defaults`",
    );
    check_invalid(
        "locations:\n- location_name: a\n  build:\n    registy: ghcr.io/a\n",
        4,
        5,
        "locations[0].build.registy",
        "unknown key",
    );
    let err = parse("locations:\n  - location_name: a\n    agent_queu: x\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("help: did you mean `agent_queue`?"),
        "{err}"
    );
}

#[test]
fn value_errors_point_at_the_value() {
    check_invalid(
        "locations:\n  - location_name: a\n  - location_name: b\n  - location_name: c\n    build:\n      registry: ghcr.io/acme/app:latest\n",
        6,
        17,
        "locations[2].build.registry",
        "includes a tag",
    );
    check_invalid(
        "locations:\n  - location_name: 123\n",
        2,
        20,
        "locations[0].location_name",
        "expected a string, found a number",
    );
    check_invalid(
        "locations:\n  - location_name: a/b\n",
        2,
        20,
        "locations[0].location_name",
        "path separator",
    );
    check_invalid(
        "locations:\n  - location_name: a\n    image: [x]\n",
        3,
        12,
        "locations[0].image",
        "expected a string, found a list",
    );
    check_invalid(
        "locations:\n  - location_name: a\n    container_context: x\n",
        3,
        24,
        "locations[0].container_context",
        "expected `container_context` (a mapping)",
    );
    check_invalid(
        "locations:\n  - code_source: {module_name: m}\n",
        2,
        5,
        "locations[0]",
        "`location_name` is missing",
    );
    check_invalid("locations: {a: 1}\n", 1, 12, "locations", "expected a list");
    check_invalid("locations: []\n", 1, 12, "locations", "empty");
    check_invalid(
        "defaults: {}\n",
        1,
        1,
        "locations",
        "`locations` is missing",
    );
    check_invalid("- a\n", 1, 1, "(document)", "expected the top level");
    check_invalid(
        "defaults:\n  build: {registry: 'Bad Registry'}\nlocations: [{location_name: a}]\n",
        2,
        21,
        "defaults.build.registry",
        "not a valid repository",
    );
    check_invalid(
        "locations:\n  - location_name: a\n    build: {directory: ''}\n",
        3,
        24,
        "locations[0].build.directory",
        "empty",
    );
}

#[test]
fn code_source_needs_exactly_one_truthy_key() {
    check_invalid(
        "locations:\n  - location_name: a\n    code_source: {}\n",
        3,
        18,
        "locations[0].code_source",
        "no code source",
    );
    check_invalid(
        "locations:\n  - location_name: a\n    code_source: {module_name: '', package_name: null}\n",
        3,
        18,
        "locations[0].code_source",
        "no code source",
    );
    check_invalid(
        "locations:\n  - location_name: a\n    code_source:\n      module_name: m\n      python_file: f.py\n",
        5,
        7,
        "locations[0].code_source.python_file",
        "module_name, python_file",
    );
    let config = parse(
        "locations:\n  - location_name: a\n    code_source: {autoload_defs_module_name: x}\n",
    )
    .unwrap();
    let code_source = config.locations()[0].code_source().unwrap();
    assert_eq!(
        (code_source.key(), code_source.value()),
        ("autoload_defs_module_name", "x")
    );
}

#[test]
fn duplicate_location_names_point_at_the_second_and_name_the_first() {
    check_invalid(
        "locations:\n  - location_name: a\n  - location_name: b\n  - location_name: a\n",
        4,
        20,
        "locations[2].location_name",
        "first used at line 2 (locations[0])",
    );
}

#[test]
fn defaults_that_cannot_merge_are_reported_at_the_location() {
    check_invalid(
        "defaults:\n  container_context: {k8s: plain}\nlocations:\n  - location_name: a\n    container_context:\n      k8s: {namespace: n}\n",
        6,
        12,
        "locations[0].container_context.k8s",
        "cannot merge with `defaults.container_context.k8s`",
    );
}

#[test]
fn error_display_has_file_line_column_field_and_help() {
    let err = parse(
        "locations:\n  - location_name: a\n    build:\n      registry: ghcr.io/x@sha256:00\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: /repo/dagster_cloud.yaml:4:17: locations[0].build.registry: the registry `ghcr.io/x@sha256:00` includes a digest (`@sha256:00`)\n  help: remove the `@...` part: the image digest is decided at build time"
    );
    assert_eq!(err.line_column(), Some((4, 17)));
    assert_eq!(err.path(), Path::new(FILE));
}

#[test]
fn load_checks_that_build_directories_exist() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    let path = dir.path().join("dagster_cloud.yaml");
    std::fs::write(
        &path,
        "locations:\n  - location_name: ok\n    build: {directory: pkg}\n  - location_name: missing\n    build:\n      directory: ./nope\n",
    )
    .unwrap();
    let err = DagsterCloudYaml::load(&path).unwrap_err();
    match &err {
        Error::BuildDirectoryNotFound {
            line,
            column,
            field,
            location,
            directory,
            ..
        } => {
            assert_eq!((*line, *column), (6, 18));
            assert_eq!(field, "locations[1].build.directory");
            assert_eq!(location, "missing");
            assert_eq!(&**directory, dir.path().join("nope"));
        }
        other => panic!("unexpected {other:?}"),
    }
    std::fs::create_dir(dir.path().join("nope")).unwrap();
    let config = DagsterCloudYaml::load(&path).unwrap();
    assert_eq!(
        config.locations()[0].build_directory(),
        Some(dir.path().join("pkg").as_path())
    );
    assert_eq!(config.path(), path);
}

#[test]
fn load_reports_a_missing_build_directory_from_defaults_at_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dagster_cloud.yaml");
    std::fs::write(
        &path,
        "defaults:\n  build: {directory: gone}\nlocations:\n  - location_name: a\n",
    )
    .unwrap();
    let err = DagsterCloudYaml::load(&path).unwrap_err();
    assert!(
        matches!(&err, Error::BuildDirectoryNotFound { line: 2, field, .. } if field == "defaults.build.directory"),
        "{err:?}"
    );
}

#[test]
fn load_rejects_invalid_utf8_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dagster_cloud.yaml");
    std::fs::write(&path, b"locations:\n  - location_name: \xc3\x28\n").unwrap();
    assert!(matches!(
        DagsterCloudYaml::load(&path),
        Err(Error::InvalidUtf8 {
            line: 2,
            column: 20,
            ..
        })
    ));
    std::fs::write(&path, "\n\n").unwrap();
    let err = DagsterCloudYaml::load(&path).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err:?}");
    assert!(
        err.to_string().contains("help: list your code locations"),
        "{err}"
    );
}
