//! Finding and validating a deploy configuration: a dg project or workspace, or a
//! `dagster_cloud.yaml` named explicitly or found in the project directory.

use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DagsterCloudYaml, DgContext};
use dagster_deploy_statedir::Session;

use crate::error::{Error, Result};

/// The file name of a user's deploy configuration.
const DAGSTER_CLOUD_YAML: &str = "dagster_cloud.yaml";

/// Where a deploy configuration is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The dg project or workspace directory (or, without dg, the directory of the
    /// `dagster_cloud.yaml`).
    pub project_dir: PathBuf,
    /// A `dagster_cloud.yaml` to read instead of a dg project.
    pub dagster_cloud_yaml: Option<PathBuf>,
}

impl ConfigSource {
    /// The configuration of the dg project or workspace in `project_dir` (or of the
    /// `dagster_cloud.yaml` there).
    pub fn project(project_dir: impl Into<PathBuf>) -> Self {
        ConfigSource {
            project_dir: project_dir.into(),
            dagster_cloud_yaml: None,
        }
    }
}

/// A validated configuration and where its locations are described.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed locations, defaults applied.
    pub yaml: DagsterCloudYaml,
    /// The file each state file's `location_file` points to.
    pub location_file: PathBuf,
    /// The project (or workspace) root, recorded as `project_dir`.
    pub project_dir: PathBuf,
    /// For a dg project: the text to write to `location_file` once the session exists.
    pub generated: Option<String>,
    /// What was read, for messages: the YAML file, or the dg project or workspace.
    pub source: String,
    /// For a single dg project: its `defs` folder, when it exists
    /// (reference-behaviour §3.3 step 7).
    pub defs_dir: Option<PathBuf>,
}

/// Reads and validates the configuration. For a dg project, the `dagster_cloud.yaml` it
/// stands for is generated and validated as if it were already at
/// `statedir/dagster_cloud.yaml` (where opening a session writes it); without a state
/// directory (a check), nothing is written anywhere.
pub fn load_config(source: &ConfigSource, statedir: Option<&Path>) -> Result<LoadedConfig> {
    let project_dir =
        std::path::absolute(&source.project_dir).map_err(|error| Error::ResolvePath {
            what: "the project directory ",
            path: source.project_dir.clone(),
            error,
        })?;
    if let Some(path) = &source.dagster_cloud_yaml {
        let path = std::path::absolute(path).map_err(|error| Error::ResolvePath {
            what: "",
            path: path.clone(),
            error,
        })?;
        return load_yaml(path, project_dir);
    }
    match DgContext::discover(&project_dir) {
        Ok(dg) => {
            let text = dg.to_dagster_cloud_yaml()?;
            let location_file = match statedir {
                Some(statedir) => Session::generated_location_file_path(statedir)?,
                // Only for messages: a check writes nothing.
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
            Err(Error::NoConfiguration(dg_error))
        }
        Err(dg_error) => Err(dg_error.into()),
    }
}

fn load_yaml(path: PathBuf, project_dir: PathBuf) -> Result<LoadedConfig> {
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

impl LoadedConfig {
    /// Checks that every requested location name is configured.
    pub fn check_requested(&self, requested: &[String]) -> Result<()> {
        let unknown: Vec<String> = requested
            .iter()
            .filter(|name| self.yaml.location(name).is_none())
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(Error::UnknownLocations {
            names: unknown,
            file: self.location_file.clone(),
            known: self.location_names(),
        })
    }

    /// The configured location names, in file order.
    pub fn location_names(&self) -> Vec<String> {
        self.yaml
            .locations()
            .iter()
            .map(|location| location.name().as_str().to_owned())
            .collect()
    }
}
