//! Tests of `dagster_cloud.rs`: schema, defaults, values and positions.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::DiagnosticKind;

const FILE: &str = "/repo/dagster_cloud.yaml";

fn parse(text: &str) -> Result<DagsterCloudYaml> {
    DagsterCloudYaml::parse(text, Path::new(FILE))
}

/// Asserts that `text` fails with an `Invalid` error holding one problem, at `line:column` on
/// `field`, whose message contains `problem_part`.
fn check_invalid(
    text: &str,
    expected_line: usize,
    expected_column: usize,
    expected_field: &str,
    problem_part: &str,
) {
    let diagnostics = problems(text);
    let [diagnostic] = diagnostics.as_slice() else {
        panic!("expected one problem for {text:?}, got {diagnostics:#?}");
    };
    assert_eq!(
        (diagnostic.line, diagnostic.column, diagnostic.field()),
        (expected_line, expected_column, expected_field),
        "{diagnostic}"
    );
    assert!(
        diagnostic.message().contains(problem_part),
        "{diagnostic} lacks {problem_part:?}"
    );
}

/// Every problem `text` has, in file order; panics if it parses or fails otherwise.
fn problems(text: &str) -> Vec<crate::Diagnostic> {
    match parse(text) {
        Err(crate::Error::Invalid {
            diagnostics,
            unlisted: 0,
        }) => diagnostics,
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
        err.help()
            .is_some_and(|help| help.starts_with("did you mean `agent_queue`?")),
        "{err:?}"
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
        "/repo/dagster_cloud.yaml:4:17: locations[0].build.registry: the registry `ghcr.io/x@sha256:00` includes a digest (`@sha256:00`)"
    );
    assert_eq!(
        err.help(),
        Some("remove the `@...` part: the image digest is decided at build time")
    );
    assert_eq!(err.line_column(), Some((4, 17)));
    assert_eq!(err.path(), Path::new(FILE));
    let [diagnostic] = err.diagnostics() else {
        panic!("{err:?}")
    };
    assert_eq!(diagnostic.kind(), crate::DiagnosticKind::InvalidRegistry);
    assert_eq!(diagnostic.location(), Some("a"));
    assert_eq!(diagnostic.field(), "locations[0].build.registry");
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
    let [missing] = err.diagnostics() else {
        panic!("unexpected {err:?}")
    };
    assert_eq!((missing.line(), missing.column()), (6, 18));
    assert_eq!(missing.field(), "locations[1].build.directory");
    assert_eq!(missing.location(), Some("missing"));
    assert_eq!(missing.kind(), crate::DiagnosticKind::DirectoryNotFound);
    assert!(
        missing
            .message()
            .ends_with(&dir.path().join("nope").display().to_string()),
        "{missing}"
    );
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
    let [missing] = err.diagnostics() else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(
        (missing.line(), missing.field()),
        (2, "defaults.build.directory")
    );
}

#[test]
fn load_rejects_invalid_utf8_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dagster_cloud.yaml");
    std::fs::write(&path, b"locations:\n  - location_name: \xc3\x28\n").unwrap();
    assert!(matches!(
        DagsterCloudYaml::load(&path),
        Err(crate::Error::InvalidUtf8 {
            line: 2,
            column: 20,
            ..
        })
    ));
    std::fs::write(&path, "\n\n").unwrap();
    let err = DagsterCloudYaml::load(&path).unwrap_err();
    assert!(matches!(err, crate::Error::Empty { .. }), "{err:?}");
    assert!(
        err.help()
            .is_some_and(|help| help.starts_with("list your code locations")),
        "{err:?}"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_file_order() {
    let text = "\
defaults:
  agent_queue: [q]
locations:
  - location_name: a
    code_sorce: {package_name: a}
    build:
      registry: ghcr.io/acme/a:latest
  - location_name: b/c
    image: 3
  - code_source: {module_name: m, python_file: f.py}
  - location_name: a
    container_context: x
";
    let found: Vec<(usize, String, DiagnosticKind, Option<String>)> = problems(text)
        .into_iter()
        .map(|problem| {
            (
                problem.line(),
                problem.field().to_owned(),
                problem.kind(),
                problem.location().map(str::to_owned),
            )
        })
        .collect();
    let a = || Some("a".to_owned());
    assert_eq!(
        found,
        [
            (
                2,
                "defaults.agent_queue".into(),
                DiagnosticKind::WrongType,
                None
            ),
            (
                5,
                "locations[0].code_sorce".into(),
                DiagnosticKind::UnknownKey,
                a()
            ),
            (
                7,
                "locations[0].build.registry".into(),
                DiagnosticKind::InvalidRegistry,
                a()
            ),
            (
                8,
                "locations[1].location_name".into(),
                DiagnosticKind::InvalidLocationName,
                Some("b/c".into())
            ),
            (
                9,
                "locations[1].image".into(),
                DiagnosticKind::WrongType,
                Some("b/c".into())
            ),
            (10, "locations[2]".into(), DiagnosticKind::MissingKey, None),
            (
                10,
                "locations[2].code_source.python_file".into(),
                DiagnosticKind::CodeSource,
                None
            ),
            (
                11,
                "locations[3].location_name".into(),
                DiagnosticKind::DuplicateLocationName,
                a()
            ),
            (
                12,
                "locations[3].container_context".into(),
                DiagnosticKind::WrongType,
                a()
            ),
        ]
    );
}

#[test]
fn duplicate_names_are_all_reported_even_for_locations_with_other_problems() {
    let text = "locations:\n  - location_name: a\n  - location_name: a\n  - location_name: b\n    imag: x\n  - location_name: a\n  - location_name: b\n";
    let found: Vec<(usize, DiagnosticKind)> = problems(text)
        .iter()
        .map(|problem| (problem.line(), problem.kind()))
        .collect();
    assert_eq!(
        found,
        [
            (3, DiagnosticKind::DuplicateLocationName),
            (5, DiagnosticKind::UnknownKey),
            (6, DiagnosticKind::DuplicateLocationName),
            (7, DiagnosticKind::DuplicateLocationName),
        ]
    );
}

#[test]
fn a_misspelt_required_key_is_reported_once() {
    check_invalid(
        "locations:\n  - location_nam: a\n",
        2,
        5,
        "locations[0].location_nam",
        "unknown key",
    );
    check_invalid(
        "location:\n  - location_name: a\n",
        1,
        1,
        "location",
        "unknown key",
    );
}

#[test]
fn a_wrong_code_source_value_is_not_also_reported_as_missing() {
    check_invalid(
        "locations:\n  - location_name: a\n    code_source: {module_name: [m]}\n",
        3,
        32,
        "locations[0].code_source.module_name",
        "expected a string",
    );
}

#[test]
fn load_reports_missing_build_directories_with_the_schema_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dagster_cloud.yaml");
    std::fs::write(
        &path,
        "locations:\n  - location_name: a\n    build: {directory: gone-a}\n  - location_name: b\n    buld: {}\n  - location_name: c\n    build: {directory: gone-c}\n",
    )
    .unwrap();
    let err = DagsterCloudYaml::load(&path).unwrap_err();
    let found: Vec<(usize, DiagnosticKind, Option<&str>)> = err
        .diagnostics()
        .iter()
        .map(|problem| (problem.line(), problem.kind(), problem.location()))
        .collect();
    assert_eq!(
        found,
        [
            (3, DiagnosticKind::DirectoryNotFound, Some("a")),
            (5, DiagnosticKind::UnknownKey, Some("b")),
            (7, DiagnosticKind::DirectoryNotFound, Some("c")),
        ]
    );
    assert_eq!(err.problem_count(), 3);
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:24: locations[0].build.directory: build directory `gone-a` of location `a` not found at {} (and 2 more problems)",
            path.display(),
            dir.path().join("gone-a").display()
        )
    );
}

#[test]
fn a_file_with_very_many_problems_lists_the_first_and_counts_the_rest() {
    let mut text = String::from("locations:\n");
    for index in 0..crate::MAX_DIAGNOSTICS + 10 {
        text.push_str(&format!("  - location_name: l{index}\n    imag: x\n"));
    }
    let err = parse(&text).unwrap_err();
    assert_eq!(err.diagnostics().len(), crate::MAX_DIAGNOSTICS);
    assert_eq!(err.problem_count(), crate::MAX_DIAGNOSTICS + 10);
    assert_eq!(err.diagnostics()[0].line(), 3);
    assert!(err.to_string().ends_with("(and 59 more problems)"), "{err}");
}
