//! `build-and-push`: build one image per selected location (natively, or with `docker build`),
//! push it to the location's registry and record it in the session, as set-build-output does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::DgContext;
use dagster_deploy_registry::ImageRef;
use dagster_deploy_registry::build::{CodeImageSpec, Platform, build_code_image};
use dagster_deploy_statedir::LocationState;

use super::Context;
use super::image::registry_client;
use super::set_build_output::RegistryLookup;
use crate::args::{BuildArgs, Builder, env};
use crate::failure::{CommandResult, ExitKind, Failure};
use crate::settings::env_var;

pub(crate) async fn run(
    context: &Context<'_>,
    args: &BuildArgs,
    location_names: &[String],
) -> CommandResult {
    let output = context.output;
    let session = super::open_session(context)?;
    let selected = session.selected(location_names)?;
    if selected.is_empty() {
        output.info("No locations selected: nothing to build");
        return Ok(());
    }
    // Every location is checked before anything is built.
    let lookup = RegistryLookup::default();
    let mut plans = Vec::new();
    // A workspace's locations share one dg context: discover it once per project directory.
    let mut dg_projects: HashMap<PathBuf, Option<DgContext>> = HashMap::new();
    for state in &selected {
        let registry = lookup.registry(state).map_err(Failure::config)?;
        let (context_dir, dockerfile) = build_paths(state, &mut dg_projects);
        if !context_dir.is_dir() {
            return Err(Failure::config(format!(
                "the build directory {} of location {} does not exist",
                context_dir.display(),
                state.location_name
            ))
            .with_hint(
                "fix build.directory in build.yaml or dagster_cloud.yaml, then run start again",
            ));
        }
        plans.push(Plan {
            name: state.location_name.clone(),
            registry,
            context_dir,
            dockerfile,
        });
    }
    if let Some(tag) = &args.tag {
        let mut seen = HashMap::new();
        for Plan { name, registry, .. } in &plans {
            if let Some(other) = seen.insert(registry.clone(), name.clone()) {
                return Err(Failure::usage(format!(
                    "locations {other} and {name} share the registry {registry}, so --tag {tag} would give both the same image"
                ))
                .with_hint("leave out --tag (tags are then derived from each image's content), or build them one at a time with --location-name"));
            }
        }
    }

    let images = match args.builder {
        Builder::Native => build_native(context, args, &plans).await?,
        Builder::Docker => build_docker(context, args, &plans).await?,
    };
    let recorded = session.record_build_output(location_names, |state| {
        images
            .get(&state.location_name)
            .cloned()
            .ok_or_else(|| format!("no image was built for {}", state.location_name))
    })?;
    super::report_repairs(output, &session.take_repairs());
    for (name, image) in recorded {
        output.info(format!("Recorded image {image} for location {name}"));
    }
    Ok(())
}

/// What to build for one location.
struct Plan {
    name: String,
    registry: String,
    context_dir: PathBuf,
    dockerfile: PathBuf,
}

/// The build context and the Dockerfile (SPEC §1.2, §3.4.1): `build.directory` (relative to
/// the configuration file that names it) and the Dockerfile in it; else, for a dg project, its
/// build root and `<project root>/Dockerfile`; else the project directory.
fn build_paths(
    state: &LocationState,
    dg_projects: &mut HashMap<PathBuf, Option<DgContext>>,
) -> (PathBuf, PathBuf) {
    let location_file = Path::new(&state.location_file);
    let base = location_file.parent().unwrap_or(Path::new("."));
    if let Some(directory) = state
        .build
        .build_config
        .as_ref()
        .and_then(|build| build.directory.as_deref())
    {
        let context = base.join(directory);
        let dockerfile = context.join("Dockerfile");
        return (context, dockerfile);
    }
    let project_dir = state
        .project_dir
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| base.to_path_buf());
    let dg = dg_projects
        .entry(project_dir.clone())
        .or_insert_with(|| DgContext::discover(&project_dir).ok());
    match dg.as_ref().and_then(|dg| dg.project(&state.location_name)) {
        Some(project) => (
            project.build_context().to_path_buf(),
            project.dockerfile_path(),
        ),
        None => (project_dir.clone(), project_dir.join("Dockerfile")),
    }
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
    let base =
        ImageRef::parse(base).map_err(|error| Failure::usage(format!("--base-image: {error}")))?;
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
    match args.builder {
        Builder::Native => native_settings(args).map(drop),
        Builder::Docker => Ok(()),
    }
}

async fn build_native(
    context: &Context<'_>,
    args: &BuildArgs,
    plans: &[Plan],
) -> Result<HashMap<String, String>, Failure> {
    let output = context.output;
    let NativeSettings {
        base,
        platform,
        source_date_epoch,
    } = native_settings(args)?;
    let mut images = HashMap::new();
    for Plan {
        name,
        registry,
        context_dir,
        ..
    } in plans
    {
        let target = ImageRef::parse(registry).map_err(|error| {
            Failure::config(format!("location {name}: registry {registry}: {error}"))
        })?;
        let client = registry_client(output, &args.insecure_registries, target.registry())?;
        output.info(format!(
            "Building {name} from {} on {base}",
            context_dir.display()
        ));
        let spec = CodeImageSpec {
            base: base.clone(),
            context_dir: context_dir.clone(),
            target,
            tag: args.tag.clone(),
            platform: platform.clone(),
            workdir: args.workdir.clone(),
            env: Vec::new(),
            entrypoint: None,
            cmd: None,
            source_date_epoch,
        };
        let built = build_code_image(&client, &spec).await?;
        output.info(format!(
            "Pushed {} ({}; code layer {})",
            built.image,
            built.digest,
            if built.layer_uploaded {
                "uploaded"
            } else {
                "unchanged"
            }
        ));
        images.insert(name.clone(), built.image.to_string());
    }
    Ok(images)
}

async fn build_docker(
    context: &Context<'_>,
    args: &BuildArgs,
    plans: &[Plan],
) -> Result<HashMap<String, String>, Failure> {
    let mut images = HashMap::new();
    for Plan {
        name,
        registry,
        context_dir,
        dockerfile,
    } in plans
    {
        let tag = match &args.tag {
            Some(tag) => tag.clone(),
            None => format!("{name}-{:032x}", rand::random::<u128>()),
        };
        let image = format!("{registry}:{tag}");
        if !dockerfile.is_file() {
            return Err(Failure::config(format!(
                "location {name}: no Dockerfile at {}",
                dockerfile.display()
            ))
            .with_hint(
                "add a Dockerfile to the build directory, or use --builder native --base-image REF",
            ));
        }
        let context_arg = context_dir.to_string_lossy().into_owned();
        let dockerfile_arg = dockerfile.to_string_lossy().into_owned();
        docker(
            context,
            &[
                "build",
                &context_arg,
                "-t",
                &image,
                "-f",
                &dockerfile_arg,
                "--platform",
                &args.platform,
            ],
        )
        .await?;
        docker(context, &["push", &image]).await?;
        images.insert(name.clone(), image);
    }
    Ok(images)
}

async fn docker(context: &Context<'_>, arguments: &[&str]) -> Result<(), Failure> {
    context
        .output
        .info(format!("Running: docker {}", arguments.join(" ")));
    let status = tokio::process::Command::new("docker")
        .args(arguments)
        .status()
        .await
        .map_err(|error| {
            Failure::new(ExitKind::Registry, format!("cannot run docker: {error}"))
                .with_hint("install Docker, or use --builder native, which needs no daemon")
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(
            ExitKind::Registry,
            format!("`docker {}` failed ({status})", arguments[0]),
        ))
    }
}
