//! Where `start` and `check` read the deploy configuration: a dg project or workspace, or a
//! `dagster_cloud.yaml` named with `--dagster-cloud-yaml`
//! ([`dagster_deploy_pipeline::config`] reads and validates it).

use dagster_deploy_pipeline::ConfigSource;

use crate::args::ConfigArgs;

/// The configuration the flags name. The reference's `--dagster-cloud-yaml-path` is relative
/// to the project directory (reference-behaviour §3.2); ours is relative to the current
/// directory.
pub(crate) fn source(args: &ConfigArgs) -> ConfigSource {
    let relative_to_project = args
        .dagster_cloud_yaml_path
        .as_ref()
        .map(|path| args.project_dir.join(path));
    ConfigSource {
        project_dir: args.project_dir.clone(),
        dagster_cloud_yaml: args.dagster_cloud_yaml.clone().or(relative_to_project),
    }
}
