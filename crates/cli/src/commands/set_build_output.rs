//! `set-build-output`: record `<registry>:<tag>` as the image of the selected locations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use dagster_deploy_buildconfig::DagsterCloudYaml;
use dagster_deploy_registry::ImageRef;
use dagster_deploy_statedir::{LocationState, Session};

use super::Context;
use crate::args::SetBuildOutputArgs;
use crate::failure::{CommandResult, Failure, one_line};

/// Checks an image tag given with `flag`, before anything is read, sent or written: it becomes
/// part of an image name and of a registry URL.
pub(crate) fn checked_tag(flag: &str, tag: &str) -> Result<(), Failure> {
    ImageRef::validate_tag(tag).map_err(|error| {
        Failure::usage(format!("{flag} {tag:?}: {error}")).with_hint(
            "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        )
    })
}

pub(crate) fn run(context: &Context<'_>, args: &SetBuildOutputArgs) -> CommandResult {
    let tag = &args.image_tag;
    checked_tag("--image-tag", tag)?;
    let session = super::open_session(context)?;
    let recorded = record(&session, &args.location_names, |registry| {
        format!("{registry}:{tag}")
    })?;
    super::report_repairs(context.output, &session.take_repairs());
    for (name, image) in recorded {
        context
            .output
            .info(format!("Recorded image {image} for location {name}"));
    }
    Ok(())
}

/// Records an image for each requested location, computed from its registry. Every location is
/// checked before any is written.
pub(crate) fn record(
    session: &Session,
    requested: &[String],
    image_for_registry: impl Fn(&str) -> String,
) -> Result<Vec<(String, String)>, Failure> {
    let files = RegistryLookup::default();
    Ok(session.record_build_output(requested, |state| {
        files
            .registry(state)
            .map(|registry| image_for_registry(&registry))
    })?)
}

/// Finds each location's registry in the file its state points to (defaults applied), falling
/// back to the registry recorded at `start`. Each file is read once.
#[derive(Default)]
pub(crate) struct RegistryLookup {
    files: RefCell<HashMap<PathBuf, Result<DagsterCloudYaml, String>>>,
}

impl RegistryLookup {
    pub(crate) fn registry(&self, state: &LocationState) -> Result<String, String> {
        let path = PathBuf::from(&state.location_file);
        let mut files = self.files.borrow_mut();
        let yaml = files
            .entry(path.clone())
            .or_insert_with(|| DagsterCloudYaml::load(&path).map_err(|error| one_line(&error)));
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
            Err(error) => format!("cannot read {}: {error}", path.display()),
            Ok(_) => format!(
                "location {} has no build.registry in {}: add `build: {{registry: <repository>}}` to it (or to defaults), then run start again",
                state.location_name,
                path.display()
            ),
        })
    }
}
