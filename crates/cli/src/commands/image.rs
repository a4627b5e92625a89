//! `image push SOURCE DEST`: push an image without a Docker daemon and print its digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagster_deploy_pipeline::image::push_image;
use dagster_deploy_pipeline::registry::{RegistryLogin, RegistrySettings};
use dagster_deploy_registry::build::Platform;
use dagster_deploy_registry::{
    ImageRef, ImageSource, PlatformSelection, ProgressCallback, ProgressEvent, Secret,
};

use super::Context;
use super::printer::Printer;
use crate::args::{ImageCommand, env};
use crate::failure::{CommandResult, Failure};
use crate::output::Output;
use crate::settings::{env_var, request_timeout};

pub(crate) async fn run(context: &Context<'_>, command: &ImageCommand) -> CommandResult {
    match command {
        ImageCommand::Push(args) => {
            let source: ImageSource =
                args.source
                    .parse()
                    .map_err(|error: dagster_deploy_registry::Error| {
                        Failure::usage(error.to_string())
                    })?;
            let destination = ImageRef::parse(&args.destination).map_err(|error| {
                Failure::usage(dagster_deploy_registry::Error::from(error).to_string())
            })?;
            let registry = registry_settings(context, &args.insecure_registries)?;
            let printer =
                Printer::new(context.output).with_request_timeout(request_timeout(context.matches));
            let selection = match &args.platform {
                Some(platform) => PlatformSelection::One(
                    platform
                        .parse::<Platform>()
                        .map_err(|error| Failure::usage(format!("--platform: {error}")))?,
                ),
                None => PlatformSelection::All,
            };
            let report = push_image(&source, &destination, &selection, &registry, &printer).await?;
            context.output.info(format!(
                "Pushed {destination}: {} blob(s) uploaded, {} already there, {} mounted",
                report.blobs_uploaded, report.blobs_skipped, report.blobs_mounted
            ));
            context.output.stdout_line(&report.digest);
        }
    }
    Ok(())
}

/// How a command reaches registries: progress bars on a terminal, and credentials from
/// Docker's config.json or, for the registries pushed to only, an explicit username and
/// password from the environment: they are never sent to another registry (a base image's,
/// say).
pub(crate) fn registry_settings(
    context: &Context<'_>,
    insecure: &[String],
) -> Result<RegistrySettings, Failure> {
    let output = context.output;
    let login = match (
        env_var(env::REGISTRY_USERNAME),
        env_var(env::REGISTRY_PASSWORD),
    ) {
        (Some(username), Some(password)) => RegistryLogin::Destinations {
            username,
            password: Secret::new(password),
        },
        (None, None) => RegistryLogin::DockerConfig,
        _ => {
            return Err(Failure::usage(format!(
                "only one of {} and {} is set",
                env::REGISTRY_USERNAME,
                env::REGISTRY_PASSWORD
            ))
            .with_hint(
                "set both for an explicit registry login, or neither to use Docker's config.json",
            ));
        }
    };
    Ok(RegistrySettings {
        login,
        insecure_registries: insecure.to_vec(),
        request_timeout: request_timeout(context.matches)
            .map(|timeout| Duration::from_secs(timeout.value)),
        progress: output.is_terminal().then(|| progress_bars(output)),
        ..RegistrySettings::default()
    })
}

fn progress_bars(output: &Output) -> ProgressCallback {
    let bars: Mutex<HashMap<String, indicatif::ProgressBar>> = Mutex::new(HashMap::new());
    let new_bar = output.bar_factory();
    Arc::new(move |event: &ProgressEvent| {
        let Ok(mut bars) = bars.lock() else { return };
        match event {
            ProgressEvent::BlobBytes { digest, sent, size } => {
                let bar = bars.entry(digest.clone()).or_insert_with(|| {
                    let short: String = digest
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect();
                    new_bar(&short, *size)
                });
                bar.set_position(*sent);
            }
            ProgressEvent::BlobDone { digest, .. } => {
                if let Some(bar) = bars.remove(digest) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    })
}
