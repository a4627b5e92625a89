//! Pushing an image without a Docker daemon: from an OCI layout, an archive or another
//! registry, to a registry.

use dagster_deploy_registry::{
    ImageRef, ImageSource, PlatformSelection, PushReport, push_image_with,
};

use crate::error::Result;
use crate::progress::Progress;
use crate::registry::RegistrySettings;

/// Pushes `source` (the whole index, or one platform of it) to `destination`; an explicit
/// login in `registry` goes to the destination's registry only.
pub async fn push_image(
    source: &ImageSource,
    destination: &ImageRef,
    selection: &PlatformSelection,
    registry: &RegistrySettings,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let client = registry.client(&[destination.registry().to_owned()], progress)?;
    Ok(push_image_with(&client, source, destination, selection).await?)
}
