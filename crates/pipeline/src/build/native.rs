//! The native builder: for each location, decide where its code server will import the code
//! from (before anything is built), then add a code layer to the base image and push it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use dagster_deploy_buildconfig::{CodeSource, DagsterCloudYaml};
use dagster_deploy_registry::ImageRef;
use dagster_deploy_registry::build::{
    CodeImageSpec, CodeTarget, ImportPlan, LoadTarget, build_code_image, plan_imports,
};

use super::{BuildPlan, NativeBuild};
use crate::documents::read_location_file;
use crate::error::{Error, Result};
use crate::progress::{Event, Progress};

pub(super) async fn build(
    plans: &[BuildPlan],
    settings: &NativeBuild,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<HashMap<String, String>> {
    let python_paths = plan_python_paths(plans, &settings.workdir, progress)?;
    let mut targets = Vec::with_capacity(plans.len());
    for plan in plans {
        let target = ImageRef::parse(&plan.registry).map_err(|invalid| Error::InvalidRegistry {
            location: plan.location.clone(),
            registry: plan.registry.clone(),
            error: Box::new(invalid.into()),
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
    let client = settings.registry.client(&destinations, progress)?;
    let mut images = HashMap::new();
    for (plan, target) in plans.iter().zip(targets) {
        progress.event(&Event::Building {
            location: &plan.location,
            build_directory: &plan.context_dir,
            base: &settings.base,
        });
        let spec = CodeImageSpec {
            base: settings.base.clone(),
            context_dir: plan.context_dir.clone(),
            target,
            tag: tag.map(str::to_owned),
            platform: settings.platform.clone(),
            workdir: settings.workdir.clone(),
            env: Vec::new(),
            env_prepend: python_paths
                .get(&plan.location)
                .map(|entries| vec![("PYTHONPATH".to_owned(), entries.join(":"))])
                .unwrap_or_default(),
            entrypoint: None,
            cmd: None,
            source_date_epoch: settings.source_date_epoch,
        };
        let built = build_code_image(&client, &spec).await?;
        progress.event(&Event::Pushed {
            image: &built.image,
            digest: &built.digest,
            layer_uploaded: built.layer_uploaded,
            reused: built.reused,
        });
        images.insert(plan.location.clone(), built.image.to_string());
    }
    Ok(images)
}

/// Decides, for every location, how its code server will import the code from the native
/// image, before anything is built: the `PYTHONPATH` entry each image needs, an event when the
/// code must come from the base image, an error when a `python_file` is missing.
fn plan_python_paths(
    plans: &[BuildPlan],
    workdir: &str,
    progress: &dyn Progress,
) -> Result<HashMap<String, Vec<String>>> {
    let mut files: HashMap<&Path, DagsterCloudYaml> = HashMap::new();
    let mut python_paths = HashMap::new();
    for plan in plans {
        if !files.contains_key(plan.location_file.as_path()) {
            files.insert(
                &plan.location_file,
                read_location_file(&plan.location_file)?,
            );
        }
        let Some(location) = files[plan.location_file.as_path()].location(&plan.location) else {
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
        let import = plan_imports(&plan.context_dir, workdir, &target).map_err(|error| {
            Error::ImportPlan {
                location: plan.location.clone(),
                error: Box::new(error),
            }
        })?;
        match import {
            ImportPlan::Direct { .. } => {}
            ImportPlan::PythonPath { entry, path } => {
                progress.event(&Event::PythonPath {
                    location: &plan.location,
                    path: &path,
                    entry: &entry,
                });
                python_paths.insert(plan.location.clone(), vec![entry]);
            }
            ImportPlan::FromBase { name, searched } => {
                // A Dockerfile-era `working_directory: /opt/dagster/app` names where the code
                // used to be copied; the native builder copies it to the workdir instead.
                let outside_workdir = target.working_directory.as_deref().filter(|directory| {
                    let workdir = workdir.trim_end_matches('/');
                    directory.starts_with('/')
                        && !directory.starts_with(&format!("{workdir}/"))
                        && directory.trim_end_matches('/') != workdir
                });
                progress.event(&Event::CodeFromBase {
                    location: &plan.location,
                    name: &name,
                    build_directory: &plan.context_dir,
                    searched: &searched,
                    outside_workdir,
                    workdir,
                });
            }
        }
    }
    Ok(python_paths)
}
