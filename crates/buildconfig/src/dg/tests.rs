//! Tests of `dg.rs`: discovery, derived values, merging, and the generated dagster_cloud.yaml
//! compared with the reference's recorded output.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::{DagsterCloudYaml, DiagnosticKind};

const RECORDED_ROOT: &str = "/home/runner/work/data/data";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The recorded dg workspace, copied into a fresh temp dir; returns the guard and canonical root.
fn recorded_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("dg-workspace/input"), dir.path());
    let root = std::fs::canonicalize(dir.path()).unwrap();
    (dir, root)
}

fn reference_output(name: &str, root: &Path) -> String {
    std::fs::read_to_string(fixture(&format!("dg-workspace/{name}")))
        .unwrap()
        .replace(RECORDED_ROOT, &root.to_string_lossy())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn workspace_root_generates_the_reference_entries_with_env_vars_merged_by_name() {
    let (_guard, root) = recorded_workspace();
    let context = DgContext::discover(&root).unwrap();
    assert!(context.is_workspace());
    assert_eq!(context.root(), root);
    let generated = context.to_dagster_cloud_yaml().unwrap();
    // Identical to the reference except reference-behaviour ref-bug 2: the project's REGION
    // replaces the workspace's.
    let reference = reference_output("reference-start-at-workspace-root.yaml", &root);
    let buggy = "      - REGION=us\n      - REGION=eu\n";
    assert!(reference.contains(buggy));
    assert_eq!(generated, reference.replace(buggy, "      - REGION=eu\n"));
    // The generated text is a valid dagster_cloud.yaml.
    let parsed = DagsterCloudYaml::parse(&generated, &root.join("dagster_cloud.yaml")).unwrap();
    assert_eq!(parsed.locations().len(), 2);
    assert_eq!(
        parsed.locations()[1].build_directory(),
        Some(root.join("projects/ops-core").as_path())
    );
}

#[test]
fn inside_a_member_project_the_workspace_config_is_merged_too() {
    let (_guard, root) = recorded_workspace();
    let context = DgContext::discover(&root.join("projects/sales/src/sales")).unwrap();
    assert!(!context.is_workspace());
    assert_eq!(context.root(), root.join("projects/sales"));
    assert_eq!(context.workspace_root(), Some(root.as_path()));
    let generated = context.to_dagster_cloud_yaml().unwrap();
    // The reference drops the workspace registry and container context here
    // (reference-behaviour ref-bug 3) ...
    let reference = reference_output("reference-start-inside-projects-sales.yaml", &root);
    assert!(!reference.contains("registry:"));
    // ... ours produces the same entry as at the workspace root.
    let at_root = DgContext::discover(&root)
        .unwrap()
        .to_dagster_cloud_yaml()
        .unwrap();
    let sales_entry_end = at_root.find("- build:\n    directory").and_then(|first| {
        at_root[first + 1..]
            .find("- build:")
            .map(|second| first + 1 + second)
    });
    assert_eq!(generated, at_root[..sales_entry_end.unwrap()]);
    let project = &context.projects()[0];
    assert_eq!(
        project.registry().unwrap().as_str(),
        "registry.example.com/data/shared"
    );
    assert_eq!(
        project
            .container_context()
            .map(|map| Value::Object(map.clone())),
        Some(json!({"k8s": {"env_vars": ["LOG_LEVEL=info", "REGION=eu"], "namespace": "dagster"}}))
    );
}

#[test]
fn derived_project_values_follow_the_spec() {
    let (_guard, root) = recorded_workspace();
    let context = DgContext::discover(&root).unwrap();
    let names: Vec<&str> = context
        .projects()
        .iter()
        .map(|p| p.name().as_str())
        .collect();
    assert_eq!(names, ["sales", "ops-core"]);
    let ops = context.project("ops-core").unwrap();
    assert_eq!(ops.root(), root.join("projects/ops-core"));
    assert_eq!(ops.root_module(), "ops_core");
    assert_eq!(ops.target_module(), "ops_core.definitions");
    assert_eq!(ops.package_name(), Some("ops-core"));
    assert_eq!(ops.build_root(), ops.root());
    assert_eq!(ops.build_directory(), Some(ops.root()));
    assert_eq!(ops.build_context(), ops.root());
    assert_eq!(ops.dockerfile_path(), ops.root().join("Dockerfile"));
    assert_eq!(ops.config_file(), ops.root().join("pyproject.toml"));
    assert_eq!(ops.agent_queue(), None);
    assert_eq!(ops.image(), None);
}

#[test]
fn a_standalone_project_with_overrides_and_a_uv_workspace_build_root() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::fs::canonicalize(dir.path()).unwrap();
    write(
        &repo.join("pyproject.toml"),
        "[tool.uv.workspace]\nmembers = [\"app\"]\n",
    );
    write(
        &repo.join("app/dg.toml"),
        "directory_type = \"project\"\n[project]\nroot_module = \"app_pkg\"\ncode_location_name = \"custom\"\ncode_location_target_module = \"app_pkg.defs\"\nagent_queue = \"gpu\"\nimage = \"\"\n",
    );
    write(
        &repo.join("app/pyproject.toml"),
        "[project]\nname = \"app-dist\"\n",
    );
    write(&repo.join("app/build.yaml"), "registry: ghcr.io/acme/app\n");
    write(
        &repo.join("app/container_context.yaml"),
        "# k8s:\n#   namespace: x\n",
    );
    let context = DgContext::discover(&repo.join("app")).unwrap();
    let project = &context.projects()[0];
    assert_eq!(project.name().as_str(), "custom");
    assert_eq!(project.target_module(), "app_pkg.defs");
    assert_eq!(project.package_name(), Some("app-dist"));
    assert_eq!(project.build_root(), repo);
    assert_eq!(project.build_context(), repo);
    assert_eq!(project.dockerfile_path(), repo.join("app/Dockerfile"));
    assert_eq!(project.agent_queue(), Some("gpu"));
    assert_eq!(project.image(), None);
    assert_eq!(project.container_context(), None);
    assert_eq!(context.workspace_root(), None);
    assert_eq!(
        context.to_dagster_cloud_yaml().unwrap(),
        "locations:\n- agent_queue: gpu\n  build:\n    registry: ghcr.io/acme/app\n  code_source:\n    module_name: app_pkg.defs\n  location_name: custom\n"
    );
}

#[test]
fn project_build_yaml_overrides_the_workspace_and_nulls_do_not_mask() {
    let (_guard, root) = recorded_workspace();
    write(
        &root.join("projects/sales/build.yaml"),
        "directory: src\nregistry: null\n",
    );
    write(
        &root.join("projects/ops-core/build.yaml"),
        "registry: ghcr.io/acme/ops\n",
    );
    let context = DgContext::discover(&root).unwrap();
    let sales = context.project("sales").unwrap();
    assert_eq!(
        sales.registry().unwrap().as_str(),
        "registry.example.com/data/shared"
    );
    assert_eq!(
        sales.build_directory(),
        Some(root.join("projects/sales/src").as_path())
    );
    let ops = context.project("ops-core").unwrap();
    assert_eq!(ops.registry().unwrap().as_str(), "ghcr.io/acme/ops");
    assert_eq!(ops.build_directory(), None);
}

fn discover_error(root: &Path) -> Error {
    DgContext::discover(root).unwrap_err()
}

#[test]
fn bad_dg_inputs_produce_positioned_errors() {
    let (_guard, root) = recorded_workspace();
    write(
        &root.join("projects/sales/build.yaml"),
        "directory: ./missing\n",
    );
    let err = discover_error(&root);
    let [missing] = err.diagnostics() else {
        panic!("{err:?}")
    };
    assert_eq!(
        (missing.line(), missing.column(), missing.location()),
        (1, 12, Some("sales"))
    );
    assert_eq!(missing.kind(), DiagnosticKind::DirectoryNotFound);

    write(
        &root.join("projects/sales/build.yaml"),
        "registry: ghcr.io/a:1\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .contains("build.yaml:1:11: registry: the registry `ghcr.io/a:1` includes a tag"),
        "{err}"
    );

    write(&root.join("projects/sales/build.yaml"), "  \n");
    assert!(matches!(discover_error(&root), Error::Empty { .. }));

    write(
        &root.join("projects/sales/build.yaml"),
        "directory: .\nregistr: x\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .ends_with(":2:1: registr: unknown key `registr` in build.yaml"),
        "{err}"
    );
    assert!(
        err.help()
            .is_some_and(|help| help.starts_with("did you mean `registry`?")),
        "{err:?}"
    );

    write(&root.join("projects/sales/build.yaml"), "directory: .\n");
    write(
        &root.join("projects/sales/container_context.yaml"),
        "k8s: [a]\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .contains("container_context.yaml:1:6: k8s: cannot merge"),
        "{err}"
    );

    write(
        &root.join("projects/sales/container_context.yaml"),
        "k8s: {env_vars: [A=1]}\n",
    );
    write(
        &root.join("projects/sales/pyproject.toml"),
        "[tool.dg]\ndirectory_type = \"project\"\n[tool.dg.project]\nroot_module = \"\"\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .contains("pyproject.toml:4:15: tool.dg.project.root_module: `root_module` is empty"),
        "{err}"
    );

    write(
        &root.join("projects/sales/pyproject.toml"),
        "[tool.dg]\ndirectory_type = \"project\"\n[tool.dg.project\n",
    );
    assert!(matches!(
        discover_error(&root),
        Error::Syntax { line: 3, .. }
    ));

    write(
        &root.join("projects/sales/pyproject.toml"),
        "[tool.dg]\ndirectory_type = \"project\"\n[tool.dg.project]\nroot_module = \"sales\"\ncode_location_name = \"ops-core\"\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .contains("both have the location name `ops-core`"),
        "{err}"
    );

    write(
        &root.join("dg.toml"),
        "directory_type = \"workspace\"\n[[workspace.projects]]\npath = \"projects/gone\"\n",
    );
    let err = discover_error(&root);
    assert!(
        err.to_string().contains(
            "dg.toml:3:8: workspace.projects[0].path: project folder `projects/gone` not found"
        ),
        "{err}"
    );

    write(&root.join("dg.toml"), "directory_type = \"sideways\"\n");
    let err = discover_error(&root);
    assert!(
        err.to_string()
            .contains("dg.toml:1:18: directory_type: unknown directory type `sideways`"),
        "{err}"
    );
}

#[test]
fn no_dg_config_anywhere_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // The temp dir's ancestors (e.g. /tmp) are not expected to hold a dg config.
    let err = discover_error(dir.path());
    assert!(matches!(err, Error::NoDgConfig { .. }), "{err:?}");
    assert!(
        err.help()
            .is_some_and(|help| help.contains("a folder with dg.toml")),
        "{err:?}"
    );
}

#[test]
fn a_project_not_listed_by_the_enclosing_workspace_is_standalone() {
    let (_guard, root) = recorded_workspace();
    write(
        &root.join("projects/extra/dg.toml"),
        "directory_type = \"project\"\n[project]\nroot_module = \"extra\"\n",
    );
    let context = DgContext::discover(&root.join("projects/extra")).unwrap();
    assert_eq!(context.workspace_root(), None);
    assert_eq!(context.projects()[0].registry(), None);
    assert_eq!(context.projects()[0].package_name(), None);
}

#[test]
fn every_problem_of_every_workspace_project_is_reported() {
    let (_guard, root) = recorded_workspace();
    write(
        &root.join("projects/sales/build.yaml"),
        "directory: ./missing\nregistr: x\n",
    );
    write(&root.join("projects/sales/container_context.yaml"), "- a\n");
    write(
        &root.join("projects/ops-core/dg.toml"),
        "directory_type = \"project\"\n[project]\ncode_location_name = \"a/b\"\n",
    );
    let err = discover_error(&root);
    let found: Vec<(String, usize, DiagnosticKind, Option<&str>)> = err
        .diagnostics()
        .iter()
        .map(|problem| {
            (
                problem
                    .path()
                    .strip_prefix(&root)
                    .unwrap()
                    .display()
                    .to_string(),
                problem.line(),
                problem.kind(),
                problem.location(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "projects/sales/build.yaml".into(),
                1,
                DiagnosticKind::DirectoryNotFound,
                Some("sales")
            ),
            (
                "projects/sales/build.yaml".into(),
                2,
                DiagnosticKind::UnknownKey,
                Some("sales")
            ),
            (
                "projects/sales/container_context.yaml".into(),
                1,
                DiagnosticKind::WrongType,
                Some("sales")
            ),
            (
                "projects/ops-core/dg.toml".into(),
                2,
                DiagnosticKind::MissingKey,
                Some("a/b")
            ),
            (
                "projects/ops-core/dg.toml".into(),
                3,
                DiagnosticKind::InvalidLocationName,
                Some("a/b")
            ),
        ]
    );
}
