//! Building and pushing one image per selected location, natively (a code layer on a base
//! image, no daemon) or with `docker build` and `docker push`, then recording the images in the
//! session.
//!
//! [`plan_builds`] checks every location before anything is built: its registry, its build
//! directory and Dockerfile paths (reference-behaviour §1.2, §3.4.1); [`build_images`] builds
//! and pushes; `record_images` records. [`build_and_push`] runs the three.

mod deps;
mod docker;
mod native;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dagster_deploy_buildconfig::DgContext;
use dagster_deploy_registry::ImageRef;
use dagster_deploy_registry::build::Platform;
use dagster_deploy_statedir::{LocationState, Session};

pub use deps::DepsLayerSettings;
pub use docker::derived_docker_tag;

use crate::build_output::{RegistryLookup, record_images};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::registry::RegistrySettings;

/// What to build for one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The location.
    pub location: String,
    /// The image repository pushed to.
    pub registry: String,
    /// The build directory (the Docker build context).
    pub context_dir: PathBuf,
    /// The Dockerfile (docker builder only).
    pub dockerfile: PathBuf,
    /// The session's `dagster_cloud.yaml` (the user's, or the one generated for dg projects):
    /// the deploy document is made from its entry, so the image must load what it says.
    pub location_file: PathBuf,
    /// The dg project's root, where its package is (directly or in `src/`).
    pub project_root: Option<PathBuf>,
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// The image tag; `None` derives one (from the content, natively; randomly, with Docker,
    /// as the reference does).
    pub tag: Option<String>,
    /// The builder and its settings.
    pub builder: Builder,
}

/// Which builder, with its settings.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per build; boxing would only make it harder to write"
)]
pub enum Builder {
    /// A code layer on a base image, pushed without a daemon.
    Native(NativeBuild),
    /// `docker build` and `docker push`.
    Docker(DockerBuild),
}

/// The native builder's settings.
#[derive(Debug, Clone)]
pub struct NativeBuild {
    /// The image the code layer goes on; it must hold Python, and the dependencies unless
    /// the project has a `uv.lock` and `deps` is enabled.
    pub base: ImageRef,
    /// The dependency layer built from a project's `uv.lock`.
    pub deps: DepsLayerSettings,
    /// The platform taken from a multi-platform base.
    pub platform: Platform,
    /// Where the code goes in the image.
    pub workdir: String,
    /// The time recorded in the layer and the image config (seconds since 1970); `None` uses a
    /// fixed time, so the same inputs give the same image.
    pub source_date_epoch: Option<i64>,
    /// How the registries are reached.
    pub registry: RegistrySettings,
}

/// The docker builder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerBuild {
    /// The `--platform` of `docker build`.
    pub platform: String,
    /// How long each `docker build` and `docker push` may run.
    pub timeout: Duration,
}

/// Plans the builds of the session's selected (and requested) locations: each one's registry,
/// build directory (which must exist) and Dockerfile. With a fixed `tag`, two locations may not
/// share a registry (they would get the same image).
pub fn plan_builds(
    session: &Session,
    requested: &[String],
    tag: Option<&str>,
) -> Result<Vec<BuildPlan>> {
    let selected = session.selected(requested)?;
    plan_locations(&selected, tag)
}

/// [`plan_builds`] for locations already read.
pub fn plan_locations(selected: &[LocationState], tag: Option<&str>) -> Result<Vec<BuildPlan>> {
    let lookup = RegistryLookup::default();
    // A workspace's locations share one dg context: discover it once per project directory.
    let mut dg_projects: HashMap<PathBuf, Option<DgContext>> = HashMap::new();
    let mut plans = Vec::with_capacity(selected.len());
    for state in selected {
        let registry = lookup.registry(state)?;
        let paths = build_paths(state, &mut dg_projects);
        if !paths.context_dir.is_dir() {
            return Err(Error::MissingBuildDirectory {
                location: state.location_name.clone(),
                directory: paths.context_dir,
            });
        }
        plans.push(BuildPlan {
            location: state.location_name.clone(),
            registry,
            context_dir: paths.context_dir,
            dockerfile: paths.dockerfile,
            location_file: PathBuf::from(&state.location_file),
            project_root: paths.project_root,
        });
    }
    if let Some(tag) = tag {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for plan in &plans {
            if let Some(other) = seen.insert(&plan.registry, &plan.location) {
                return Err(Error::SharedRegistry {
                    first: other.to_owned(),
                    second: plan.location.clone(),
                    registry: plan.registry.clone(),
                    tag: tag.to_owned(),
                });
            }
        }
    }
    Ok(plans)
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

/// Builds and pushes the image of each plan; returns each location's image (by tag).
pub async fn build_images(
    plans: &[BuildPlan],
    settings: &BuildSettings,
    progress: &dyn Progress,
) -> Result<HashMap<String, String>> {
    if let Some(tag) = &settings.tag {
        ImageRef::validate_tag(tag).map_err(|reason| Error::InvalidTag {
            tag: tag.clone(),
            reason,
        })?;
    }
    match &settings.builder {
        Builder::Native(native) => {
            native::build(plans, native, settings.tag.as_deref(), progress).await
        }
        Builder::Docker(docker) => {
            docker::build(plans, docker, settings.tag.as_deref(), progress).await
        }
    }
}

/// Plans, builds and pushes the images of the session's selected (and requested) locations,
/// then records them; returns `(location, image)` pairs, empty when nothing is selected.
pub async fn build_and_push(
    session: &Session,
    requested: &[String],
    settings: &BuildSettings,
    progress: &dyn Progress,
) -> Result<Vec<(String, String)>> {
    let plans = plan_builds(session, requested, settings.tag.as_deref())?;
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let images = build_images(&plans, settings, progress).await?;
    record_images(session, requested, &images)
}
