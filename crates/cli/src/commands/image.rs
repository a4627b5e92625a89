//! `image push SOURCE DEST`: push an image without a Docker daemon and print its digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagster_deploy_registry::build::Platform;
use dagster_deploy_registry::{
    ClientOptions, Credentials, ImageRef, ImageSource, PlatformSelection, ProgressCallback,
    ProgressEvent, RegistryClient, Secret, push_image_with,
};

use super::Context;
use crate::args::{ImageCommand, env};
use crate::failure::{CommandResult, Failure};
use crate::output::Output;
use crate::settings::{env_var, report_request_timeout, request_timeout};

pub(crate) async fn run(context: &Context<'_>, command: &ImageCommand) -> CommandResult {
    match command {
        ImageCommand::Push(args) => {
            let source: ImageSource =
                args.source
                    .parse()
                    .map_err(|error: dagster_deploy_registry::Error| {
                        Failure::usage(error.to_string())
                    })?;
            let destination = ImageRef::parse(&args.destination)
                .map_err(|error| Failure::usage(error.to_string()))?;
            let client = registry_client(
                context,
                &args.insecure_registries,
                &[destination.registry().to_owned()],
            )?;
            let selection = match &args.platform {
                Some(platform) => PlatformSelection::One(
                    platform
                        .parse::<Platform>()
                        .map_err(|error| Failure::usage(format!("--platform: {error}")))?,
                ),
                None => PlatformSelection::All,
            };
            let report = push_image_with(&client, &source, &destination, &selection).await?;
            context.output.info(format!(
                "Pushed {destination}: {} blob(s) uploaded, {} already there, {} mounted",
                report.blobs_uploaded, report.blobs_skipped, report.blobs_mounted
            ));
            context.output.stdout_line(&report.digest);
        }
    }
    Ok(())
}

/// The one registry client of a command: progress bars on a terminal, and credentials from
/// Docker's config.json or, for the `destination_registries` only, an explicit username and
/// password from the environment: they are never sent to another registry (a base image's,
/// say). One client per command means one credential lookup and one token per registry.
pub(crate) fn registry_client(
    context: &Context<'_>,
    insecure: &[String],
    destination_registries: &[String],
) -> Result<RegistryClient, Failure> {
    let output = context.output;
    let credentials = match (
        env_var(env::REGISTRY_USERNAME),
        env_var(env::REGISTRY_PASSWORD),
    ) {
        (Some(username), Some(password)) => Credentials::Basic {
            registries: destination_registries.to_vec(),
            username,
            password: Secret::new(password),
        },
        (None, None) => Credentials::FromDockerConfig,
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
    match &credentials {
        Credentials::Basic { registries, .. } => output.detail(format!(
            "registry login for {}: from env vars {} and {}; other registries: Docker's config.json",
            registries.join(", "),
            env::REGISTRY_USERNAME,
            env::REGISTRY_PASSWORD
        )),
        _ => output.detail(
            "registry logins: Docker's config.json ($DOCKER_CONFIG, else ~/.docker) and its credential helpers",
        ),
    }
    if !insecure.is_empty() {
        output.detail(format!(
            "plain HTTP allowed to: {} (flag --insecure-registry)",
            insecure.join(", ")
        ));
    }
    let progress = if output.is_terminal() {
        Some(progress_bars(output))
    } else {
        None
    };
    let defaults = ClientOptions::default();
    let timeout = request_timeout(context.matches);
    report_request_timeout(output, timeout.as_ref(), defaults.request_timeout);
    let options = ClientOptions {
        credentials,
        insecure_registries: insecure.to_vec(),
        progress,
        request_timeout: timeout.map_or(defaults.request_timeout, |timeout| {
            Duration::from_secs(timeout.value)
        }),
        ..defaults
    };
    Ok(RegistryClient::new(options)?)
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
