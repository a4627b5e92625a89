//! `push_image`: the one call behind `image push SOURCE DEST`. It plans the source, makes every
//! blob present (HEAD, then mount or streamed upload, in bounded parallel), and only then pushes
//! the manifests byte for byte. Blobs of a registry source in the same registry are mounted from
//! the source repository; blobs of a local source are mounted from a repository the source names
//! (`docker save` records where an image came from) when it is in the destination registry, and
//! uploaded in the session that attempt opened otherwise.

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::access::Scopes;
use crate::client::{BlobContent, MountOutcome, RegistryClient};
use crate::error::{Error, Result};
use crate::progress::{BlobOutcome, ImageProgress};
use crate::reference::ImageRef;
use crate::source::{ImageSource, PlannedBlob, PlatformSelection};

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the pushed root manifest or index.
    pub digest: String,
    /// Blobs whose bytes were sent.
    pub blobs_uploaded: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: usize,
    /// Bytes of blobs uploaded (not counting retried bytes).
    pub bytes_uploaded: u64,
    /// Manifests pushed (child manifests of an index plus the root).
    pub manifests_pushed: usize,
}

/// Pushes the image at `source` to `dest`, returning the digest and what was transferred; a
/// multi-platform source is pushed whole.
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
    // A repository of the destination registry that may hold the local source's blobs.
    let mount_from = plan
        .mount_from
        .iter()
        .find(|origin| {
            client.same_registry_origin(origin, dest) && origin.repository() != dest.repository()
        })
        .map(|origin| origin.repository().to_owned());
    let root = plan.manifests.last().ok_or_else(|| Error::InvalidSource {
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
    let total: u64 = plan.blobs.iter().map(|blob| blob.size).sum();
    let image_progress = Arc::new(ImageProgress::new(total));
    let concurrency = client.options().max_concurrent_uploads.max(1);
    let outcomes: Vec<(BlobOutcome, u64)> = futures_util::stream::iter(plan.blobs.iter())
        .map(|blob| {
            ensure_blob(
                client,
                dest,
                blob,
                mount_from.as_deref(),
                image_progress.clone(),
            )
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut report = PushReport::default();
    for (outcome, size) in outcomes {
        match outcome {
            BlobOutcome::Uploaded => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += size;
            }
            BlobOutcome::Skipped => report.blobs_skipped += 1,
            BlobOutcome::Mounted => report.blobs_mounted += 1,
        }
    }
    // Every blob is confirmed; now the manifests, children by digest, the root by tag.
    let (root, children) = plan
        .manifests
        .split_last()
        .ok_or_else(|| Error::InvalidSource {
            source_text: source.to_string(),
            reason: "it contains no manifest".to_owned(),
        })?;
    for child in children {
        client
            .push_manifest(&dest.with_digest(&child.digest)?, child)
            .await?;
        report.manifests_pushed += 1;
    }
    let root_destination = match dest.tag() {
        Some(tag) => dest.with_tag(tag)?,
        None => dest.with_digest(&root.digest)?,
    };
    report.digest = client.push_manifest(&root_destination, root).await?;
    report.manifests_pushed += 1;
    Ok(report)
}

/// Makes one blob present in `dest`: skip if there, mount if a repository of the same
/// registry may have it (the registry source's, or `local_origin` for a local source), else
/// upload.
async fn ensure_blob(
    client: &RegistryClient,
    dest: &ImageRef,
    blob: &PlannedBlob,
    local_origin: Option<&str>,
    image_progress: Arc<ImageProgress>,
) -> Result<(BlobOutcome, u64)> {
    let progress = client.blob_progress(&blob.digest, blob.size, Some(image_progress));
    if client.blob_exists(dest, &blob.digest).await? {
        progress.finish(BlobOutcome::Skipped);
        return Ok((BlobOutcome::Skipped, blob.size));
    }
    let mut opened_session = None;
    let mount_from = match &blob.content {
        BlobContent::Remote(source) if client.same_registry_origin(source, dest) => {
            Some(source.repository())
        }
        BlobContent::Remote(_) => None,
        BlobContent::File { .. } | BlobContent::Bytes(_) => local_origin,
    };
    if let Some(from_repository) = mount_from {
        match client
            .mount_or_start(dest, from_repository, &blob.digest)
            .await?
        {
            MountOutcome::Mounted => {
                progress.finish(BlobOutcome::Mounted);
                return Ok((BlobOutcome::Mounted, blob.size));
            }
            MountOutcome::Started(session) => opened_session = Some(session),
        }
    }
    client
        .upload_blob(
            dest,
            &blob.digest,
            blob.size,
            &blob.content,
            progress,
            opened_session,
        )
        .await?;
    Ok((BlobOutcome::Uploaded, blob.size))
}
