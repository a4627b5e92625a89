//! `build-and-push`: build one image per selected location (natively, or with `docker build`),
//! push it to the location's registry and record it in the session, as set-build-output does.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dagster_deploy_buildconfig::{CodeSource, DagsterCloudYaml, DgContext};
use dagster_deploy_registry::ImageRef;
use dagster_deploy_registry::build::{
    CodeImageSpec, CodeTarget, ImportPlan, LoadTarget, Platform, build_code_image, plan_imports,
};
use dagster_deploy_statedir::LocationState;

use super::Context;
use super::deploy::read_location_file;
use super::image::registry_client;
use super::set_build_output::{RegistryLookup, checked_tag};
use crate::args::{BuildArgs, Builder, env};
use crate::failure::{CommandResult, ExitKind, Failure};
use crate::settings::env_var;

pub(crate) async fn run(
    context: &Context<'_>,
    args: &BuildArgs,
    location_names: &[String],
) -> CommandResult {
    let output = context.output;
    check_args(args)?;
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
        let BuildPaths {
            context_dir,
            dockerfile,
            project_root,
        } = build_paths(state, &mut dg_projects);
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
            location_file: PathBuf::from(&state.location_file),
            project_root,
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
    /// The session's `dagster_cloud.yaml` (the user's, or the one generated for dg projects):
    /// the deploy document is made from its entry, so the image must load what it says.
    location_file: PathBuf,
    /// The dg project's root, where its package is (directly or in `src/`).
    project_root: Option<PathBuf>,
}

/// Where a location is built from.
struct BuildPaths {
    context_dir: PathBuf,
    dockerfile: PathBuf,
    project_root: Option<PathBuf>,
}

/// The build context and the Dockerfile (reference-behaviour §1.2, §3.4.1): `build.directory`
/// (relative to the configuration file that names it) and the Dockerfile in it; else, for a dg
/// project, its build root and `<project root>/Dockerfile`; else the project directory.
fn build_paths(
    state: &LocationState,
    dg_projects: &mut HashMap<PathBuf, Option<DgContext>>,
) -> BuildPaths {
    let location_file = Path::new(&state.location_file);
    let base = location_file.parent().unwrap_or(Path::new("."));
    let project_dir = state
        .project_dir
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| base.to_path_buf());
    let dg = dg_projects
        .entry(project_dir.clone())
        .or_insert_with(|| DgContext::discover(&project_dir).ok());
    let dg_project = dg.as_ref().and_then(|dg| dg.project(&state.location_name));
    let project_root = dg_project.map(|project| project.root().to_path_buf());
    if let Some(directory) = state
        .build
        .build_config
        .as_ref()
        .and_then(|build| build.directory.as_deref())
    {
        let context_dir = base.join(directory);
        let dockerfile = context_dir.join("Dockerfile");
        return BuildPaths {
            context_dir,
            dockerfile,
            project_root,
        };
    }
    match dg_project {
        Some(project) => BuildPaths {
            context_dir: project.build_context().to_path_buf(),
            dockerfile: project.dockerfile_path(),
            project_root,
        },
        None => BuildPaths {
            context_dir: project_dir.clone(),
            dockerfile: project_dir.join("Dockerfile"),
            project_root,
        },
    }
}

/// Decides, for every location, how its code server will import the code from the native
/// image, before anything is built: the `PYTHONPATH` entry each image needs, a warning when the
/// code must come from the base image, an error when a `python_file` is missing.
fn plan_python_paths(
    context: &Context<'_>,
    plans: &[Plan],
    workdir: &str,
) -> Result<HashMap<String, Vec<String>>, Failure> {
    let mut files: HashMap<&Path, DagsterCloudYaml> = HashMap::new();
    let mut python_paths = HashMap::new();
    for plan in plans {
        if !files.contains_key(plan.location_file.as_path()) {
            files.insert(
                &plan.location_file,
                read_location_file(&plan.location_file)?,
            );
        }
        let Some(location) = files[plan.location_file.as_path()].location(&plan.name) else {
            continue;
        };
        let Some(code_source) = location.code_source() else {
            continue;
        };
        let code = match code_source {
            CodeSource::ModuleName(name) => CodeTarget::ModuleName(name.clone()),
            CodeSource::PackageName(name) => CodeTarget::PackageName(name.clone()),
            CodeSource::AutoloadDefsModuleName(name) => {
                CodeTarget::AutoloadDefsModuleName(name.clone())
            }
            CodeSource::PythonFile(file) => CodeTarget::PythonFile(file.clone()),
        };
        let target = LoadTarget {
            code,
            working_directory: location.working_directory().map(str::to_owned),
            source_roots: plan.project_root.iter().cloned().collect(),
        };
        let import = plan_imports(&plan.context_dir, workdir, &target)
            .map_err(|error| Failure::config(format!("location {}: {error}", plan.name)))?;
        match import {
            ImportPlan::Direct { .. } => {}
            ImportPlan::PythonPath { entry, path } => {
                context.output.detail(format!(
                    "{}: {path} is imported from {entry}, which goes on PYTHONPATH",
                    plan.name
                ));
                python_paths.insert(plan.name.clone(), vec![entry]);
            }
            ImportPlan::FromBase { name, searched } => {
                let searched = if searched.is_empty() {
                    String::new()
                } else {
                    format!(" (searched {})", searched.join(", "))
                };
                // A Dockerfile-era `working_directory: /opt/dagster/app` names where the code
                // used to be copied; the native builder copies it to --workdir instead.
                let advice = match &target.working_directory {
                    Some(directory)
                        if directory.starts_with('/')
                            && !directory
                                .starts_with(&format!("{}/", workdir.trim_end_matches('/')))
                            && directory.trim_end_matches('/') != workdir.trim_end_matches('/') =>
                    {
                        format!(
                            "; its working_directory {directory} is outside the code directory {workdir}: pass --workdir {directory} (or the directory above it that holds the build directory's files)"
                        )
                    }
                    _ => String::new(),
                };
                context.output.warn(format!(
                    "location {}: `{name}` is not in the build directory {}{searched}; its code server will load only if the base image provides it{advice}",
                    plan.name,
                    plan.context_dir.display()
                ));
            }
        }
    }
    Ok(python_paths)
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
    if let Some(tag) = &args.tag {
        checked_tag("--tag", tag)?;
    }
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
    let python_paths = plan_python_paths(context, plans, &args.workdir)?;
    let mut targets = Vec::new();
    for Plan { name, registry, .. } in plans {
        let target = ImageRef::parse(registry).map_err(|error| {
            Failure::config(format!("location {name}: registry {registry}: {error}"))
        })?;
        targets.push(target);
    }
    // One client for every location: each registry's login is looked up once, and one token
    // per registry serves all the pushes.
    let destinations: BTreeSet<String> = targets
        .iter()
        .map(|target| target.registry().to_owned())
        .collect();
    let destinations: Vec<String> = destinations.into_iter().collect();
    let client = registry_client(context, &args.insecure_registries, &destinations)?;
    let mut images = HashMap::new();
    for (
        Plan {
            name, context_dir, ..
        },
        target,
    ) in plans.iter().zip(targets)
    {
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
            env_prepend: python_paths
                .get(name)
                .map(|entries| vec![("PYTHONPATH".to_owned(), entries.join(":"))])
                .unwrap_or_default(),
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
        ..
    } in plans
    {
        let tag = match &args.tag {
            Some(tag) => tag.clone(),
            None => derived_docker_tag(name, rand::random::<u128>()),
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
        let limit = Duration::from_secs(args.build_timeout);
        docker(
            context,
            limit,
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
        docker(context, limit, &["push", &image]).await?;
        images.insert(name.clone(), image);
    }
    Ok(images)
}

/// The tag the docker builder gives an image when `--tag` is absent, as the reference does:
/// `<location>-<32 hex digits>`, with every character a tag may not hold (a location name may
/// have spaces, `+` or accents) replaced by `-`, and short enough for the 128-character limit.
fn derived_docker_tag(location: &str, random: u128) -> String {
    let mut name: String = location
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name: String = name
        .trim_matches(|c| matches!(c, '.' | '-'))
        .chars()
        .take(128 - 33)
        .collect();
    if name.is_empty() {
        format!("{random:032x}")
    } else {
        format!("{name}-{random:032x}")
    }
}

/// Runs `docker ARGUMENTS`, stopping it after `limit`.
async fn docker(context: &Context<'_>, limit: Duration, arguments: &[&str]) -> Result<(), Failure> {
    context
        .output
        .info(format!("Running: docker {}", arguments.join(" ")));
    let mut child = tokio::process::Command::new("docker")
        .args(arguments)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            Failure::new(ExitKind::Registry, format!("cannot run docker: {error}"))
                .with_hint("install Docker, or use --builder native, which needs no daemon")
        })?;
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.map_err(|error| {
            Failure::new(
                ExitKind::Registry,
                format!("`docker {}` did not finish: {error}", arguments[0]),
            )
        })?,
        Err(_) => {
            // Dropping the child kills it (`kill_on_drop`); say so and why.
            drop(child);
            return Err(Failure::new(
                ExitKind::Timeout,
                format!(
                    "`docker {}` did not finish within {} s and was stopped",
                    arguments[0],
                    limit.as_secs()
                ),
            )
            .with_hint(format!(
                "check that the Docker daemon answers (`docker info`); if the build is only slow, raise --build-timeout SECONDS (or {})",
                env::BUILD_TIMEOUT
            )));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(
            ExitKind::Registry,
            format!("`docker {}` failed ({status})", arguments[0]),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::derived_docker_tag;

    #[test]
    fn derived_docker_tags_are_valid_tags_for_any_location_name() {
        for (name, prefix) in [
            ("alpha", "alpha-"),
            ("Sales + Ops é", "Sales-Ops-"),
            ("..", ""),
            ("-x-", "x-"),
            ("a.b_c", "a.b_c-"),
        ] {
            let tag = derived_docker_tag(name, 0xabc);
            assert!(tag.starts_with(prefix), "{name}: {tag}");
            assert!(
                dagster_deploy_registry::ImageRef::validate_tag(&tag).is_ok(),
                "{name}: {tag}"
            );
        }
        let long = derived_docker_tag(&"n".repeat(300), u128::MAX);
        assert!(long.len() <= 128, "{}", long.len());
        assert!(dagster_deploy_registry::ImageRef::validate_tag(&long).is_ok());
    }
}
