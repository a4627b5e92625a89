//! `set-build-output`: record `<registry>:<tag>` as the image of the selected locations, with
//! the build-output stage ([`dagster_deploy_pipeline::build_output`]).

use dagster_deploy_pipeline::build_output::record_image_tag;
use dagster_deploy_registry::ImageRef;

use super::Context;
use super::printer::{LISTED_NAMES, names_line};
use crate::args::SetBuildOutputArgs;
use crate::failure::{CommandResult, Failure};

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
    let recorded = record_image_tag(&session, &args.location_names, tag)?;
    super::report_repairs(context.output, &session.take_repairs());
    // A few locations get a line each, as the reference prints them; a monorepo gets one
    // summary line, with the per-location lines under `--verbose`.
    let summarised = recorded.len() > LISTED_NAMES;
    for (name, image) in &recorded {
        let line = format!("Recorded image {image} for location {name}");
        if summarised {
            context.output.detail(line);
        } else {
            context.output.info(line);
        }
    }
    if summarised {
        let names: Vec<String> = recorded.into_iter().map(|(name, _)| name).collect();
        context
            .output
            .info(format!("Recorded tag {tag} for {}", names_line(&names)));
    }
    Ok(())
}
