//! Where `start` and `check` read the deploy configuration: a dg project or workspace, or a
//! `dagster_cloud.yaml` named with `--dagster-cloud-yaml`
//! ([`dagster_deploy_pipeline::config`] reads and validates it).

use dagster_deploy_pipeline::ConfigSource;

use crate::args::ConfigArgs;

/// The configuration the flags name.
pub(crate) fn source(args: &ConfigArgs) -> ConfigSource {
    ConfigSource {
        project_dir: args.project_dir.clone(),
        dagster_cloud_yaml: args.dagster_cloud_yaml.clone(),
    }
}
