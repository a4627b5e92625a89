//! `push_image`: the one call behind "push this image there". It reads the source into a push
//! plan (`source.rs`) and runs the push engine (`engine.rs`): blobs of a registry source in the
//! same registry are mounted from the source repository; blobs of a local source are mounted
//! from a repository the source names (`docker save` records where an image came from) when it
//! is in the destination registry, and uploaded otherwise.

use crate::client::{RegistryClient, Scopes};
use crate::engine::{self, PushReport};
use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::source::{ImageSource, PlatformSelection};

/// Pushes the image at `source` to `dest`, returning the digest and what was transferred; a
/// multi-platform source is pushed whole, every manifest byte for byte (so the digest is the
/// source's).
///
/// ```no_run
/// use dagster_deploy_registry::{ClientOptions, ImageRef, ImageSource, RegistryClient, push_image};
///
/// # async fn run() -> dagster_deploy_registry::Result<()> {
/// let client = RegistryClient::new(ClientOptions::default())?;
/// let source: ImageSource = "oci:./build/layout:v1".parse()?;
/// let dest = ImageRef::parse("registry.example/team/app:v1")?;
/// let report = push_image(&client, &source, &dest).await?;
/// println!("pushed {} ({} blobs uploaded)", report.digest, report.blobs_uploaded);
/// # Ok(())
/// # }
/// ```
pub async fn push_image(
    client: &RegistryClient,
    source: &ImageSource,
    dest: &ImageRef,
) -> Result<PushReport> {
    push_image_with(client, source, dest, &PlatformSelection::All).await
}

/// Pushes the platforms of `source` that `selection` names to `dest`.
pub async fn push_image_with(
    client: &RegistryClient,
    source: &ImageSource,
    dest: &ImageRef,
    selection: &PlatformSelection,
) -> Result<PushReport> {
    // Every repository the push touches is known up front: the first token covers them all.
    client.plan_access(dest, &Scopes::push(dest.repository()));
    if let ImageSource::Registry(from) = source {
        client.plan_access(from, &Scopes::pull(from.repository()));
    }
    let plan = source.plan(client, selection).await?;
    let root = plan.root().ok_or_else(|| Error::InvalidSource {
        source_text: source.to_string(),
        reason: "it contains no manifest".to_owned(),
    })?;
    if let Some(expected) = dest.digest().filter(|expected| *expected != root.digest) {
        return Err(Error::DigestMismatch {
            location: format!("destination {dest}"),
            expected: expected.to_owned(),
            actual: root.digest.clone(),
        });
    }
    let (report, _) = engine::push(client, &plan, dest, dest.tag()).await?;
    Ok(report)
}
