//! Loading the deploy configuration for `start` and `check`: a dg project or workspace, or a
//! `dagster_cloud.yaml` named with `--dagster-cloud-yaml`.

use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DagsterCloudYaml, DgContext};

use crate::args::ConfigArgs;
use crate::failure::Failure;

/// The name of the generated file in the state directory, as the reference names it.
pub(crate) const GENERATED_YAML: &str = "dagster_cloud.yaml";

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
    if let Some(path) = &args.dagster_cloud_yaml {
        let path = std::path::absolute(path).map_err(|error| {
            Failure::config(format!("cannot resolve {}: {error}", path.display()))
        })?;
        let yaml = DagsterCloudYaml::load(&path)?;
        return Ok(LoadedConfig {
            yaml,
            location_file: path,
            project_dir,
            generated: None,
        });
    }
    match DgContext::discover(&project_dir) {
        Ok(dg) => {
            let text = dg.to_dagster_cloud_yaml()?;
            let location_file = match statedir {
                Some(statedir) => statedir.join(GENERATED_YAML),
                None => dg.root().join(GENERATED_YAML),
            };
            let yaml = DagsterCloudYaml::parse(&text, &location_file)?;
            Ok(LoadedConfig {
                yaml,
                location_file,
                project_dir: dg.root().to_path_buf(),
                generated: Some(text),
            })
        }
        Err(dg_error) => {
            // Not a dg project: a dagster_cloud.yaml in the project directory still works.
            let fallback = project_dir.join(GENERATED_YAML);
            if fallback.is_file() {
                let yaml = DagsterCloudYaml::load(&fallback)?;
                return Ok(LoadedConfig {
                    yaml,
                    location_file: fallback,
                    project_dir,
                    generated: None,
                });
            }
            Err(Failure::from(dg_error).with_hint(
                "run from a dg project or workspace (dg.toml or pyproject.toml [tool.dg]), pass --project-dir, \
                 or name a dagster_cloud.yaml with --dagster-cloud-yaml",
            ))
        }
    }
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
