//! The push engine that every image push runs, whether it copies an image (`push_image`) or
//! builds one (`build::build_code_image`): a [`PushPlan`] names the blobs and manifests, the
//! engine makes every blob present in the destination repository in bounded parallel, and only
//! then pushes the manifests byte for byte, children before the root.
//!
//! Making one blob present is one flow, [`ensure_blob`], whatever its bytes are: HEAD (the
//! repository has it: skipped); else a cross-repository mount when a repository of the same
//! registry may hold it (a registry source's or base image's own repository, or the repository
//! a local image says it came from); else an upload, through the session a refused mount
//! opened, streamed from a file, memory or the source registry.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::client::{BlobContent, MountOutcome, RegistryClient};
use crate::error::Result;
use crate::manifest::RawManifest;
use crate::progress::{BlobOutcome, ImageProgress};
use crate::reference::ImageRef;

/// One blob to make present in the destination.
#[derive(Clone, Debug)]
pub(crate) struct PlannedBlob {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) content: BlobContent,
}

/// Everything a push sends: blobs first, then manifests (children before the root).
#[derive(Debug, Default)]
pub(crate) struct PushPlan {
    pub(crate) blobs: Vec<PlannedBlob>,
    /// Manifests in push order; the last one is the root, pushed under the destination tag.
    pub(crate) manifests: Vec<RawManifest>,
    /// Where a local image says it came from (`docker save`'s image names): repositories that
    /// may already hold its blobs, worth a cross-repository mount in the same registry.
    pub(crate) mount_from: Vec<ImageRef>,
    /// Digests of the blobs planned so far, so that a blob shared by several images (or
    /// several platforms of one) is sent once.
    seen: HashSet<String>,
}

impl PushPlan {
    /// Adds a blob unless the plan has it already.
    pub(crate) fn add_blob(&mut self, blob: PlannedBlob) {
        if self.seen.insert(blob.digest.clone()) {
            self.blobs.push(blob);
        }
    }

    /// The root manifest: the one pushed under the destination's tag.
    pub(crate) fn root(&self) -> Option<&RawManifest> {
        self.manifests.last()
    }
}

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

/// Runs `plan` into `dest`'s repository: every blob made present, then the child manifests by
/// digest and the root under `root_tag` (by its digest when `None`). Returns the report and
/// each planned blob's outcome, in plan order.
pub(crate) async fn push(
    client: &RegistryClient,
    plan: &PushPlan,
    dest: &ImageRef,
    root_tag: Option<&str>,
) -> Result<(PushReport, Vec<BlobOutcome>)> {
    // A repository of the destination registry that may hold the local source's blobs.
    let local_origin = plan
        .mount_from
        .iter()
        .find(|origin| {
            client.same_registry_origin(origin, dest) && origin.repository() != dest.repository()
        })
        .map(|origin| origin.repository());
    let total: u64 = plan.blobs.iter().map(|blob| blob.size).sum();
    let image_progress = Arc::new(ImageProgress::new(total));
    let concurrency = client.options().max_concurrent_uploads.max(1);
    let mut outcomes: Vec<(usize, BlobOutcome)> =
        futures_util::stream::iter(plan.blobs.iter().enumerate())
            .map(|(position, blob)| {
                let image_progress = image_progress.clone();
                async move {
                    ensure_blob(client, dest, blob, local_origin, image_progress)
                        .await
                        .map(|outcome| (position, outcome))
                }
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    outcomes.sort_by_key(|(position, _)| *position);
    let mut report = PushReport::default();
    for ((_, outcome), blob) in outcomes.iter().zip(&plan.blobs) {
        match outcome {
            BlobOutcome::Uploaded => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += blob.size;
            }
            BlobOutcome::Skipped => report.blobs_skipped += 1,
            BlobOutcome::Mounted => report.blobs_mounted += 1,
        }
    }
    // Every blob is confirmed; now the manifests, children by digest, the root by tag.
    if let Some((root, children)) = plan.manifests.split_last() {
        for child in children {
            client
                .push_manifest(&dest.with_digest(&child.digest)?, child)
                .await?;
            report.manifests_pushed += 1;
        }
        let root_destination = match root_tag {
            Some(tag) => dest.with_tag(tag)?,
            None => dest.with_digest(&root.digest)?,
        };
        report.digest = client.push_manifest(&root_destination, root).await?;
        report.manifests_pushed += 1;
    }
    Ok((
        report,
        outcomes.into_iter().map(|(_, outcome)| outcome).collect(),
    ))
}

/// Makes one blob present in `dest`: skipped if there, mounted if a repository of the same
/// registry may have it (a remote blob's own repository, or `local_origin` for local bytes),
/// else uploaded (through the session a refused mount opened, if it opened one).
pub(crate) async fn ensure_blob(
    client: &RegistryClient,
    dest: &ImageRef,
    blob: &PlannedBlob,
    local_origin: Option<&str>,
    image_progress: Arc<ImageProgress>,
) -> Result<BlobOutcome> {
    let progress = client.blob_progress(&blob.digest, blob.size, Some(image_progress));
    if client.blob_exists(dest, &blob.digest).await? {
        progress.finish(BlobOutcome::Skipped);
        return Ok(BlobOutcome::Skipped);
    }
    let mount_from = match &blob.content {
        BlobContent::Remote(source) if client.same_registry_origin(source, dest) => {
            Some(source.repository())
        }
        BlobContent::Remote(_) => None,
        BlobContent::File { .. } | BlobContent::Bytes(_) => local_origin,
    };
    let mut opened_session = None;
    if let Some(from_repository) = mount_from {
        match client
            .mount_or_start(dest, from_repository, &blob.digest)
            .await?
        {
            MountOutcome::Mounted => {
                progress.finish(BlobOutcome::Mounted);
                return Ok(BlobOutcome::Mounted);
            }
            // The registry could not mount (no pull access to the source repository, say):
            // the bytes go through the upload session it opened instead.
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
    Ok(BlobOutcome::Uploaded)
}
