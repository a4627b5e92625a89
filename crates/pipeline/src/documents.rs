//! The deploy documents: for each location, its entry in the session's `dagster_cloud.yaml`
//! overlaid with what the session recorded (image, git facts, PEX metadata, definitions state),
//! as `location_document` builds them (reference-behaviour §3.6 step 3). The overlay and the
//! document of one location are pure functions of the location's state and its parsed file;
//! only [`documents`] reads files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::DagsterCloudYaml;
use dagster_deploy_cloud_client::{DocumentOverlay, PexMetadata, location_document};
use dagster_deploy_statedir::{BuildOutput, LocationState};
use serde_json::Value;

use crate::error::{Error, Result};

/// What the session lays over a location's configuration entry.
pub fn overlay(state: &LocationState) -> DocumentOverlay {
    DocumentOverlay {
        location_name: state.location_name.clone(),
        image: state.image().map(str::to_owned),
        git: state.build.git.clone(),
        pex: match &state.build_output {
            Some(BuildOutput::PythonExecutable {
                python_version,
                pex_tag,
                ..
            }) => Some(PexMetadata {
                pex_tag: pex_tag.clone(),
                python_version: python_version.clone(),
            }),
            _ => None,
        },
        pex_bundle: matches!(
            state.build_output,
            Some(BuildOutput::Docker {
                pex_bundle: true,
                ..
            })
        ),
        defs_state_info: state.defs_state_info.as_ref().map(|info| info.to_json()),
    }
}

/// The deploy document of `state`'s location, from `file`, the parsed configuration its state
/// points to.
pub fn document(state: &LocationState, file: &DagsterCloudYaml) -> Result<Value> {
    let location = file
        .location(&state.location_name)
        .ok_or_else(|| Error::LocationNotInFile {
            location: state.location_name.clone(),
            file: file.path().to_path_buf(),
        })?;
    Ok(location_document(location.entry(), &overlay(state)))
}

/// Reads a session's `dagster_cloud.yaml` for its entries (a regular file of at most 16 MiB).
/// Only the entries are needed, not the build directories, so those are not checked.
pub fn read_location_file(path: &Path) -> Result<DagsterCloudYaml> {
    DagsterCloudYaml::read(path).map_err(Error::LocationFile)
}

/// The deploy documents of `selected`, one per location, in order; each configuration file is
/// read once.
pub fn documents(selected: &[LocationState]) -> Result<Vec<Value>> {
    let mut files: HashMap<PathBuf, DagsterCloudYaml> = HashMap::new();
    let mut documents = Vec::with_capacity(selected.len());
    for state in selected {
        let path = PathBuf::from(&state.location_file);
        if !files.contains_key(&path) {
            files.insert(path.clone(), read_location_file(&path)?);
        }
        documents.push(document(state, &files[&path])?);
    }
    Ok(documents)
}

#[cfg(test)]
mod tests;
