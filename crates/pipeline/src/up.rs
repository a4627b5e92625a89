//! The whole pipeline in one call: open a session, build and push every selected location's
//! image, deploy and wait.

use std::future::Future;

use dagster_deploy_cloud_client::CloudClient;

use crate::build::{BuildSettings, build_and_push};
use crate::config::ConfigSource;
use crate::deploy::{DeployReport, Interruption, WaitSettings, deploy_and_wait, plan_deploy};
use crate::error::Result;
use crate::progress::Progress;
use crate::start::{StartSettings, open_session};

/// Everything [`up`] needs besides the client.
#[derive(Debug, Clone)]
pub struct UpSettings {
    /// Where the configuration is.
    pub config: ConfigSource,
    /// How the session is opened (a missing deployment type accepts the guess).
    pub start: StartSettings,
    /// How images are built.
    pub build: BuildSettings,
    /// How long to wait for the locations to load.
    pub wait: WaitSettings,
}

/// Opens a session, builds and pushes each location's image, then deploys them and waits for
/// them to load. `env` is the environment the CI context is read from. A report whose locations
/// did not all load is still `Ok`: see [`DeployReport::failure`].
pub async fn up(
    settings: &UpSettings,
    env: &dyn Fn(&str) -> Option<String>,
    client: &CloudClient,
    interruption: impl Future<Output = Interruption>,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let started = open_session(
        &settings.config,
        settings.start.clone(),
        env,
        Some(client),
        progress,
    )
    .await?;
    let requested = &settings.start.location_names;
    build_and_push(&started.session, requested, &settings.build, progress).await?;
    let Some(plan) = plan_deploy(&started.session, requested, progress)? else {
        return Ok(DeployReport {
            deployment: started.deployment,
            results: Vec::new(),
            record: Default::default(),
            unchanged: Vec::new(),
        });
    };
    deploy_and_wait(
        &started.session,
        &plan,
        client,
        &settings.wait,
        interruption,
        progress,
    )
    .await
}
