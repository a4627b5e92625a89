//! `build-and-push`: a printer over the build stage ([`dagster_deploy_pipeline::build`]),
//! which builds one image per selected location (natively, or with `docker build`), pushes it
//! to the location's registry and records it in the session, as set-build-output does.

use std::time::Duration;

use dagster_deploy_pipeline::build::{
    BuildSettings, Builder as StageBuilder, DepsLayerSettings, DockerBuild, NativeBuild,
    build_images, plan_builds,
};
use dagster_deploy_pipeline::build_output::record_images;
use dagster_deploy_registry::ImageRef;
use dagster_deploy_registry::build::Platform;

use super::Context;
use super::image::registry_settings;
use super::printer::Printer;
use super::set_build_output::checked_tag;
use crate::args::{BuildArgs, Builder, env};
use crate::failure::{CommandResult, Failure};
use crate::settings::{env_var, request_timeout};

pub(crate) async fn run(
    context: &Context<'_>,
    args: &BuildArgs,
    location_names: &[String],
) -> CommandResult {
    let output = context.output;
    check_args(args)?;
    let session = super::open_session(context)?;
    // Every location is checked before anything is built.
    let plans = plan_builds(&session, location_names, args.tag.as_deref())?;
    if plans.is_empty() {
        output.info("No locations selected: nothing to build");
        return Ok(());
    }
    let settings = build_settings(context, args)?;
    let printer = Printer::new(output).with_request_timeout(request_timeout(context.matches));
    let images = build_images(&plans, &settings, &printer).await?;
    let recorded = record_images(&session, location_names, &images)?;
    super::report_repairs(output, &session.take_repairs());
    for (name, image) in recorded {
        output.info(format!("Recorded image {image} for location {name}"));
    }
    Ok(())
}

/// The build stage's settings, from the flags and the environment.
fn build_settings(context: &Context<'_>, args: &BuildArgs) -> Result<BuildSettings, Failure> {
    let builder = match args.builder {
        Builder::Native => {
            let NativeSettings {
                base,
                platform,
                source_date_epoch,
            } = native_settings(args)?;
            StageBuilder::Native(NativeBuild {
                base,
                deps: DepsLayerSettings {
                    enabled: !args.no_deps_layer,
                    uv: args.uv.clone(),
                    // uv downloads from the package index: it gets none of our secrets.
                    hidden_env: [
                        env::API_TOKEN,
                        env::REGISTRY_USERNAME,
                        env::REGISTRY_PASSWORD,
                        env::GITHUB_TOKEN,
                        env::GITLAB_TOKEN,
                        env::CI_JOB_TOKEN,
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                    ..DepsLayerSettings::new(cache_dir(args)?)
                },
                platform,
                workdir: args.workdir.clone(),
                source_date_epoch,
                registry: registry_settings(context, &args.insecure_registries)?,
            })
        }
        Builder::Docker => StageBuilder::Docker(DockerBuild {
            platform: args.platform.clone(),
            timeout: Duration::from_secs(args.build_timeout),
        }),
    };
    Ok(BuildSettings {
        tag: args.tag.clone(),
        builder,
    })
}

/// The cache directory: `--cache-dir`, else the XDG cache directory's `dagster-deploy`.
fn cache_dir(args: &BuildArgs) -> Result<std::path::PathBuf, Failure> {
    if let Some(dir) = &args.cache_dir {
        return Ok(dir.clone());
    }
    let base = env_var(env::XDG_CACHE_HOME)
        .filter(|dir| std::path::Path::new(dir).is_absolute())
        .map(std::path::PathBuf::from)
        .or_else(|| env_var("HOME").map(|home| std::path::PathBuf::from(home).join(".cache")))
        .ok_or_else(|| {
            Failure::usage("no cache directory for dependency layers: HOME is not set")
                .with_hint(format!("pass --cache-dir DIR or set {}", env::CACHE_DIR))
        })?;
    Ok(base.join("dagster-deploy"))
}

/// The native builder's settings, checked.
struct NativeSettings {
    base: ImageRef,
    platform: Platform,
    source_date_epoch: Option<i64>,
}

fn native_settings(args: &BuildArgs) -> Result<NativeSettings, Failure> {
    let base = args.base_image.as_deref().ok_or_else(|| {
        Failure::usage("the native builder needs --base-image REF").with_hint(
            "name an image that holds Python and your dependencies, or use --builder docker",
        )
    })?;
    let base = ImageRef::parse(base).map_err(|error| {
        Failure::usage(format!(
            "--base-image: {}",
            dagster_deploy_registry::Error::from(error)
        ))
    })?;
    let platform: Platform = args
        .platform
        .parse()
        .map_err(|error| Failure::usage(format!("--platform: {error}")))?;
    let source_date_epoch = match env_var(env::SOURCE_DATE_EPOCH) {
        Some(value) => Some(value.parse::<i64>().map_err(|_| {
            Failure::usage(format!(
                "{} must be whole seconds since 1970, not {value:?}",
                env::SOURCE_DATE_EPOCH
            ))
        })?),
        None => None,
    };
    Ok(NativeSettings {
        base,
        platform,
        source_date_epoch,
    })
}

/// Checks the build flags without building anything, so `up` fails before `start` touches
/// the state directory or Dagster+.
pub(crate) fn check_args(args: &BuildArgs) -> Result<(), Failure> {
    if let Some(tag) = &args.tag {
        checked_tag("--tag", tag)?;
    }
    match args.builder {
        Builder::Native => native_settings(args).map(drop),
        Builder::Docker => Ok(()),
    }
}
