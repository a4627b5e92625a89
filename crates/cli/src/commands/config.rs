//! Loading the deploy configuration for `start` and `check`: a dg project or workspace, or a
//! `dagster_cloud.yaml` named with `--dagster-cloud-yaml`.

use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DagsterCloudYaml, DgContext};
use dagster_deploy_statedir::Session;

use crate::args::ConfigArgs;
use crate::failure::Failure;

/// The file name of a user's deploy configuration.
const DAGSTER_CLOUD_YAML: &str = "dagster_cloud.yaml";

/// A validated configuration and where its locations are described.
pub(crate) struct LoadedConfig {
    /// The parsed locations, defaults applied.
    pub(crate) yaml: DagsterCloudYaml,
    /// The file each state file's `location_file` points to.
    pub(crate) location_file: PathBuf,
    /// The project (or workspace) root, recorded as `project_dir`.
    pub(crate) project_dir: PathBuf,
    /// For a dg project: the text to write to `location_file` once the session exists.
    pub(crate) generated: Option<String>,
    /// What was read, for messages: the YAML file, or the dg project or workspace.
    pub(crate) source: String,
    /// For a single dg project: its `defs` folder, when it exists
    /// (reference-behaviour §3.3 step 7).
    pub(crate) defs_dir: Option<PathBuf>,
}

/// The `dagster_cloud.yaml` to read instead of a dg project, if one is named. The reference's
/// `--dagster-cloud-yaml-path` is relative to the project directory (reference-behaviour §3.2);
/// ours is relative to the current directory.
fn dagster_cloud_yaml(args: &ConfigArgs) -> Option<PathBuf> {
    let relative_to_project = args
        .dagster_cloud_yaml_path
        .as_ref()
        .map(|path| args.project_dir.join(path));
    args.dagster_cloud_yaml.clone().or(relative_to_project)
}

/// Reads and validates the configuration. For a dg project the generated file is validated
/// as if it were already at `statedir/dagster_cloud.yaml`; nothing is written.
pub(crate) fn load(args: &ConfigArgs, statedir: Option<&Path>) -> Result<LoadedConfig, Failure> {
    let project_dir = std::path::absolute(&args.project_dir).map_err(|error| {
        Failure::config(format!(
            "cannot resolve the project directory {}: {error}",
            args.project_dir.display()
        ))
    })?;
    if let Some(path) = &dagster_cloud_yaml(args) {
        let path = std::path::absolute(path).map_err(|error| {
            Failure::config(format!("cannot resolve {}: {error}", path.display()))
        })?;
        return load_yaml(path, project_dir);
    }
    match DgContext::discover(&project_dir) {
        Ok(dg) => {
            let text = dg.to_dagster_cloud_yaml()?;
            let location_file = match statedir {
                Some(statedir) => Session::generated_location_file_path(statedir)?,
                // Only for messages: `check` writes nothing.
                None => dg.root().join(DAGSTER_CLOUD_YAML),
            };
            let yaml = DagsterCloudYaml::parse(&text, &location_file)?;
            let kind = if dg.is_workspace() {
                "dg workspace"
            } else {
                "dg project"
            };
            let defs_dir = match dg.projects() {
                [project] if !dg.is_workspace() => {
                    let module_path: PathBuf = project.root_module().split('.').collect();
                    [
                        project.root().join("src").join(&module_path).join("defs"),
                        project.root().join(&module_path).join("defs"),
                    ]
                    .into_iter()
                    .find(|dir| dir.is_dir())
                }
                _ => None,
            };
            Ok(LoadedConfig {
                yaml,
                location_file,
                project_dir: dg.root().to_path_buf(),
                generated: Some(text),
                source: format!("the {kind} at {}", dg.root().display()),
                defs_dir,
            })
        }
        // Not a dg project: a dagster_cloud.yaml in the project directory still works. Any
        // other dg error (a broken dg.toml or build.yaml) is reported, never papered over.
        Err(dg_error @ dagster_deploy_buildconfig::Error::NoDgConfig { .. }) => {
            let fallback = project_dir.join(DAGSTER_CLOUD_YAML);
            if fallback.is_file() {
                return load_yaml(fallback, project_dir);
            }
            Err(Failure::from(dg_error).with_hint(
                "run from a dg project or workspace (dg.toml or pyproject.toml [tool.dg]), pass --project-dir, \
                 or name a dagster_cloud.yaml with --dagster-cloud-yaml",
            ))
        }
        Err(dg_error) => Err(Failure::from(dg_error)),
    }
}

fn load_yaml(path: PathBuf, project_dir: PathBuf) -> Result<LoadedConfig, Failure> {
    let yaml = DagsterCloudYaml::load(&path)?;
    Ok(LoadedConfig {
        yaml,
        source: path.display().to_string(),
        location_file: path,
        project_dir,
        generated: None,
        defs_dir: None,
    })
}
/// Checks requested location names against the configuration.
pub(crate) fn check_requested(
    yaml: &DagsterCloudYaml,
    requested: &[String],
    file: &Path,
) -> Result<(), Failure> {
    let unknown: Vec<&str> = requested
        .iter()
        .filter(|name| yaml.location(name).is_none())
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = yaml
        .locations()
        .iter()
        .map(|location| location.name().as_str())
        .collect();
    Err(Failure::usage(format!(
        "unknown location(s) {} in {}",
        unknown.join(", "),
        file.display()
    ))
    .with_hint(format!(
        "the configured locations are: {}",
        known.join(", ")
    )))
}
