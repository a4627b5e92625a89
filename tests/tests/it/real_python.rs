//! Native images on a real Python base, loaded for real: each test builds with
//! `build-and-push --builder native` on the Debian + dagster base that `scripts/pybase.sh`
//! caches, deploys to the emulator in real-agent mode, and requires every location to load, i.e.
//! the agent pulled the image, started `dagster api grpc` in it the way the Hybrid agent does,
//! `dagster api grpc-health-check` passed and the code server listed its repositories. A failure
//! shows the code server's own error (the deploy prints it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dagster_deploy_e2e::{Emulator, RealAgent, RealAgentConfig, Registry};
use serde_json::Value;

use crate::support::{
    command, dagster_deploy, describe, git, real_agent_emulator, registry_with_base, run,
    start_legacy, success,
};

/// The OCI layout of the Debian + venv (dagster, dagster-cloud) base built by setup.sh.
fn dagster_base_layout() -> PathBuf {
    let path = std::env::var_os("DAGSTER_DEPLOY_PYBASE_DAGSTER").map_or_else(
        || PathBuf::from("/var/tmp/dagster-deploy-pybase-dagster-1.13.27-v1"),
        PathBuf::from,
    );
    assert!(
        path.join("index.json").is_file(),
        "the real Python base image is not at {}: run scripts/setup.sh (it calls scripts/pybase.sh), or set DAGSTER_DEPLOY_PYBASE_DAGSTER",
        path.display()
    );
    path
}

/// Writes `files` (path relative to `root`, contents) and returns `root`.
fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

/// Definitions with one asset named after the location, so a wrong module is visible.
fn definitions(asset: &str) -> String {
    format!(
        "import dagster as dg\n\n\n@dg.asset\ndef {asset}():\n    return 1\n\n\ndefs = dg.Definitions(assets=[{asset}])\n"
    )
}

fn dg_project_toml(name: &str, module: &str) -> String {
    format!(
        "[project]\nname = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\"dagster\"]\n\n[tool.dg]\ndirectory_type = \"project\"\n\n[tool.dg.project]\nroot_module = \"{module}\"\n"
    )
}

/// A registry holding the real base, an emulator whose agent loads images for real, and a
/// private home and state directory.
struct RealPipeline {
    emulator: Emulator,
    registry: Registry,
    base: String,
    home: tempfile::TempDir,
    statedir: PathBuf,
}

impl RealPipeline {
    fn new() -> Self {
        let (registry, base) = registry_with_base(&dagster_base_layout(), "base/dagster");
        let emulator = real_agent_emulator();
        let home = tempfile::tempdir().unwrap();
        let statedir = home.path().join("state");
        RealPipeline {
            emulator,
            registry,
            base,
            home,
            statedir,
        }
    }

    fn code_registry(&self, name: &str) -> String {
        format!("{}/code/{name}", self.registry.host())
    }

    fn cli(&self) -> Command {
        command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir,
        )
    }

    /// `start` (with `start_args`), `build-and-push --builder native` (with `build_args`) on
    /// the real base, then `deploy`; returns the deploy's output.
    fn deploy(&self, start_args: &[&str], build_args: &[&str]) -> Output {
        success(
            self.cli()
                .args(["start", "--deployment", "prod", "--deployment-type", "full"])
                .args(start_args),
        );
        success(
            self.cli()
                .args(["build-and-push", "--builder", "native", "--base-image"])
                .arg(&self.base)
                .args(build_args),
        );
        run(self
            .cli()
            .args(["deploy", "--location-load-timeout", "300"]))
    }

    /// Asserts that the deploy succeeded and that exactly `names` were deployed, each with its
    /// own image.
    fn assert_all_loaded(&self, deploy: &Output, names: &[&str]) {
        assert!(
            deploy.status.success(),
            "every location must load in its real image:\n{}",
            describe(deploy)
        );
        let deployed = self.emulator.deployed_locations();
        let mut deployed_names: Vec<&str> = deployed
            .iter()
            .map(|location| location.name.as_str())
            .collect();
        deployed_names.sort_unstable();
        let mut expected = names.to_vec();
        expected.sort_unstable();
        assert_eq!(deployed_names, expected);
        let mut images: Vec<&str> = deployed
            .iter()
            .filter_map(|location| location.document["image"].as_str())
            .collect();
        images.sort_unstable();
        images.dedup();
        assert_eq!(images.len(), names.len(), "one image per location");
    }

    /// The document sent for `name`.
    fn document(&self, name: &str) -> Value {
        self.emulator
            .deployed_locations()
            .into_iter()
            .find(|location| location.name == name)
            .unwrap_or_else(|| panic!("{name} was not deployed"))
            .document
    }
}

fn git_checkout(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "code"]);
}

/// A standalone dg project in a git checkout, in a folder named `name` (dg names the location
/// after it), with its package `module` in `src/` or at the top; returns the project folder.
fn dg_project(
    checkout: &Path,
    pipeline: &RealPipeline,
    name: &str,
    module: &str,
    src_layout: bool,
) -> PathBuf {
    let project = checkout.join(name);
    let package = if src_layout {
        format!("src/{module}")
    } else {
        module.to_owned()
    };
    write_tree(
        &project,
        &[
            ("pyproject.toml", &dg_project_toml(name, module)),
            (
                "build.yaml",
                &format!("registry: {}\n", pipeline.code_registry(name)),
            ),
            (&format!("{package}/__init__.py"), ""),
            (
                &format!("{package}/definitions.py"),
                &definitions(&format!("{module}_asset")),
            ),
        ],
    );
    git_checkout(&project);
    project
}

#[test]
fn a_dg_project_in_src_layout_loads_from_its_native_image() {
    let pipeline = RealPipeline::new();
    let checkout = tempfile::tempdir().unwrap();
    let project = dg_project(checkout.path(), &pipeline, "my-proj", "myproj", true);
    let deploy = pipeline.deploy(&["--project-dir", project.to_str().unwrap()], &[]);
    pipeline.assert_all_loaded(&deploy, &["my-proj"]);
    // The reference's dg document: the module, no working directory.
    let document = pipeline.document("my-proj");
    assert_eq!(
        document["code_source"],
        serde_json::json!({"module_name": "myproj.definitions"})
    );
    assert!(document.get("working_directory").is_none(), "{document}");
}

#[test]
fn a_dg_project_in_flat_layout_loads_from_its_native_image() {
    let pipeline = RealPipeline::new();
    let checkout = tempfile::tempdir().unwrap();
    let project = dg_project(checkout.path(), &pipeline, "flat", "flat_proj", false);
    let deploy = pipeline.deploy(
        &["--project-dir", project.to_str().unwrap()],
        &["--workdir", "/home/app/code"],
    );
    pipeline.assert_all_loaded(&deploy, &["flat"]);
}

#[test]
fn every_project_of_a_dg_workspace_loads_from_its_own_image() {
    let pipeline = RealPipeline::new();
    let workspace = tempfile::tempdir().unwrap();
    write_tree(
        workspace.path(),
        &[
            (
                "dg.toml",
                "directory_type = \"workspace\"\n\n[workspace]\n\n[[workspace.projects]]\npath = \"projects/sales\"\n\n[[workspace.projects]]\npath = \"projects/ops\"\n",
            ),
            (
                "build.yaml",
                &format!("registry: {}\n", pipeline.code_registry("workspace")),
            ),
            (
                "projects/sales/pyproject.toml",
                &dg_project_toml("sales", "sales"),
            ),
            ("projects/sales/src/sales/__init__.py", ""),
            (
                "projects/sales/src/sales/definitions.py",
                &definitions("revenue"),
            ),
            (
                "projects/ops/pyproject.toml",
                &dg_project_toml("ops", "ops"),
            ),
            (
                "projects/ops/build.yaml",
                &format!("registry: {}\n", pipeline.code_registry("ops")),
            ),
            ("projects/ops/ops/__init__.py", ""),
            ("projects/ops/ops/definitions.py", &definitions("uptime")),
        ],
    );
    git_checkout(workspace.path());
    let deploy = pipeline.deploy(
        &["--project-dir", workspace.path().to_str().unwrap()],
        &["--workdir", "/var/tmp/code"],
    );
    pipeline.assert_all_loaded(&deploy, &["sales", "ops"]);
}

#[test]
fn dagster_cloud_yaml_locations_load_with_build_directory_working_directory_and_python_file() {
    let pipeline = RealPipeline::new();
    let repo = tempfile::tempdir().unwrap();
    let registry = pipeline.code_registry("legacy");
    let yaml = format!(
        "locations:
  - location_name: packaged
    code_source:
      package_name: packaged_pkg
    build:
      directory: ./packaged
      registry: {registry}
  - location_name: workdir
    code_source:
      module_name: workdir_defs
    working_directory: ./lib
    build:
      directory: ./workdir
      registry: {registry}
  - location_name: by-file
    code_source:
      python_file: jobs/repo.py
    working_directory: jobs
    build:
      directory: ./by-file
      registry: {registry}
  - location_name: autoloaded
    code_source:
      autoload_defs_module_name: auto_pkg.defs
    executable_path: /opt/venv/bin/python
    build:
      directory: ./autoloaded
      registry: {registry}
"
    );
    write_tree(
        repo.path(),
        &[
            ("dagster_cloud.yaml", &yaml),
            (
                "packaged/packaged_pkg/__init__.py",
                &definitions("packaged_asset"),
            ),
            ("workdir/lib/workdir_defs.py", &definitions("workdir_asset")),
            (
                "by-file/jobs/repo.py",
                "import dagster as dg\nfrom helpers import size\n\n\n@dg.asset\ndef by_file_asset():\n    return size()\n\n\ndefs = dg.Definitions(assets=[by_file_asset])\n",
            ),
            ("by-file/jobs/helpers.py", "def size():\n    return 3\n"),
            (
                "autoloaded/pyproject.toml",
                "[project]\nname = \"auto-pkg\"\nversion = \"0.1.0\"\n",
            ),
            ("autoloaded/src/auto_pkg/__init__.py", ""),
            ("autoloaded/src/auto_pkg/defs/__init__.py", ""),
            (
                "autoloaded/src/auto_pkg/defs/assets.py",
                "import dagster as dg\n\n\n@dg.asset\ndef autoloaded_asset():\n    return 1\n",
            ),
        ],
    );
    git_checkout(repo.path());
    let deploy = pipeline.deploy(
        &[
            "--dagster-cloud-yaml",
            repo.path().join("dagster_cloud.yaml").to_str().unwrap(),
        ],
        &[],
    );
    pipeline.assert_all_loaded(&deploy, &["packaged", "workdir", "by-file", "autoloaded"]);
    // The user's fields reach the agent unchanged.
    assert_eq!(pipeline.document("workdir")["working_directory"], "./lib");
    assert_eq!(
        pipeline.document("autoloaded")["executable_path"],
        "/opt/venv/bin/python"
    );
}

#[test]
fn a_location_that_cannot_import_fails_with_the_code_servers_own_error() {
    let pipeline = RealPipeline::new();
    let repo = tempfile::tempdir().unwrap();
    let registry = pipeline.code_registry("broken");
    write_tree(
        repo.path(),
        &[
            (
                "dagster_cloud.yaml",
                &format!(
                    "locations:\n  - location_name: broken\n    code_source:\n      module_name: broken_defs\n    build:\n      directory: .\n      registry: {registry}\n"
                ),
            ),
            (
                "broken_defs.py",
                "import dagster as dg\nimport not_installed_anywhere\n\ndefs = dg.Definitions()\n",
            ),
        ],
    );
    git_checkout(repo.path());
    let deploy = pipeline.deploy(
        &[
            "--dagster-cloud-yaml",
            repo.path().join("dagster_cloud.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(deploy.status.code(), Some(7), "{}", describe(&deploy));
    let stderr = String::from_utf8_lossy(&deploy.stderr);
    assert!(
        stderr.contains("No module named 'not_installed_anywhere'"),
        "the deploy must show the code server's own error:\n{stderr}"
    );
}

#[test]
fn parents_of_the_workdir_keep_the_base_metadata_in_the_unpacked_image() {
    let pipeline = RealPipeline::new();
    let project = tempfile::tempdir().unwrap();
    write_tree(project.path(), &[("main.py", "print('hi')\n")]);
    let agent = RealAgent::new(RealAgentConfig::default()).expect("the real agent runs here");
    let base_view = agent
        .run(
            &pipeline.base,
            &["stat", "-c", "%a %u:%g %n", "/var/tmp", "/home/app"],
        )
        .unwrap_or_else(|error| panic!("{}", error.message));
    assert_eq!(base_view, "1777 0:0 /var/tmp\n755 1000:1000 /home/app\n");
    for (workdir, checked) in [
        ("/var/tmp/code", "/var/tmp"),
        ("/home/app/code", "/home/app"),
    ] {
        let target = format!("{}/fidelity", pipeline.registry.host());
        let built = build_image(&pipeline, project.path(), &target, workdir);
        let view = agent
            .run(&built, &["stat", "-c", "%a %u:%g %n", checked, workdir])
            .unwrap_or_else(|error| panic!("{}", error.message));
        let base_line = base_view
            .lines()
            .find(|line| line.ends_with(checked))
            .unwrap();
        assert_eq!(
            view,
            format!("{base_line}\n755 0:0 {workdir}\n"),
            "unpacking the code layer over the base must leave {checked} as the base has it"
        );
    }
}

/// Builds `context` on the pipeline's base into `target` with its files under `workdir`, by
/// running start and build-and-push on a one-location dagster_cloud.yaml; returns the image.
fn build_image(pipeline: &RealPipeline, context: &Path, target: &str, workdir: &str) -> String {
    let yaml = context.join("dagster_cloud.yaml");
    std::fs::write(
        &yaml,
        format!(
            "locations:\n  - location_name: fidelity\n    code_source:\n      python_file: main.py\n    build:\n      directory: .\n      registry: {target}\n"
        ),
    )
    .unwrap();
    let statedir = tempfile::tempdir().unwrap();
    success(start_legacy(
        pipeline
            .cli()
            .env("DAGSTER_BUILD_STATEDIR", statedir.path()),
        &yaml,
    ));
    success(
        pipeline
            .cli()
            .env("DAGSTER_BUILD_STATEDIR", statedir.path())
            .args(["build-and-push", "--builder", "native", "--base-image"])
            .arg(&pipeline.base)
            .args(["--workdir", workdir]),
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(statedir.path().join("location-fidelity.json")).unwrap(),
    )
    .unwrap();
    state["build_output"]["image"]
        .as_str()
        .expect("an image")
        .to_owned()
}
