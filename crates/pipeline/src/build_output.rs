//! Recording build outputs: the image each selected location was built into, computed from its
//! registry. [`RegistryLookup`] finds a location's registry in the configuration file its state
//! points to (defaults applied), falling back to the registry recorded when the session was
//! opened.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use dagster_deploy_buildconfig::DagsterCloudYaml;
use dagster_deploy_registry::ImageRef;
use dagster_deploy_statedir::{LocationState, Session};

use crate::error::{Error, Result};

/// A location whose registry is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MissingRegistry {
    /// The configuration file cannot be read, and the session recorded no registry.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Neither the configuration file nor the session names a registry for the location.
    #[error(
        "location {location} has no build.registry in {}: add `build: {{registry: <repository>}}` to it (or to defaults), then run start again",
        path.display()
    )]
    NotConfigured {
        /// The location.
        location: String,
        /// The configuration file.
        path: PathBuf,
    },
}

/// Finds each location's registry; each configuration file is read once.
#[derive(Debug, Default)]
pub struct RegistryLookup {
    files: RefCell<HashMap<PathBuf, std::result::Result<DagsterCloudYaml, String>>>,
}

impl RegistryLookup {
    /// The registry of `state`'s location: from its configuration file (defaults applied),
    /// else as recorded when the session was opened.
    pub fn registry(&self, state: &LocationState) -> std::result::Result<String, MissingRegistry> {
        let path = PathBuf::from(&state.location_file);
        let mut files = self.files.borrow_mut();
        let yaml = files.entry(path.clone()).or_insert_with(|| {
            DagsterCloudYaml::load(&path).map_err(|error| crate::one_line(&error))
        });
        let from_yaml = match yaml {
            Ok(yaml) => yaml
                .location(&state.location_name)
                .and_then(|location| location.registry())
                .map(|registry| registry.as_str().to_owned()),
            Err(_) => None,
        };
        let recorded = state
            .build
            .build_config
            .as_ref()
            .and_then(|build| build.registry.clone());
        from_yaml.or(recorded).ok_or_else(|| match yaml {
            Err(reason) => MissingRegistry::Unreadable {
                path,
                reason: reason.clone(),
            },
            Ok(_) => MissingRegistry::NotConfigured {
                location: state.location_name.clone(),
                path,
            },
        })
    }
}

/// Records `<registry>:<tag>` as the image of each selected (and, if any are named, requested)
/// location, and returns `(location, image)` pairs. Every location is checked before any is
/// written.
pub fn record_image_tag(
    session: &Session,
    requested: &[String],
    tag: &str,
) -> Result<Vec<(String, String)>> {
    ImageRef::validate_tag(tag).map_err(|reason| Error::InvalidTag {
        tag: tag.to_owned(),
        reason,
    })?;
    let lookup = RegistryLookup::default();
    Ok(session.record_build_output(requested, |state| {
        lookup
            .registry(state)
            .map(|registry| format!("{registry}:{tag}"))
            .map_err(|missing| missing.to_string())
    })?)
}

/// Records the images in `images` (by location name) for the selected (and requested)
/// locations, all or nothing; a selected location without an image is an error.
pub fn record_images(
    session: &Session,
    requested: &[String],
    images: &HashMap<String, String>,
) -> Result<Vec<(String, String)>> {
    Ok(session.record_build_output(requested, |state| {
        images
            .get(&state.location_name)
            .cloned()
            .ok_or_else(|| format!("no image was built for {}", state.location_name))
    })?)
}
