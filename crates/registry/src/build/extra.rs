//! Layers made elsewhere that a code image carries between its base layers and its code layer
//! ([`ExtraLayer`], set in [`CodeImageSpec::extra_layers`](super::CodeImageSpec)), and a way
//! to find such a layer again in a registry by a name the caller derives from its inputs
//! ([`push_layer_record`], [`find_layer_record`]).
//!
//! A layer record is a one-layer OCI image pushed under a tag in the target repository: its
//! manifest names the layer's blob, its config the layer's `diff_id`. A builder that knows the
//! inputs of a layer (a dependency lock, a platform) but not its bytes (a fresh CI runner with
//! an empty cache) finds the record by tag and uses the blob the repository already holds,
//! instead of building and uploading the layer again. The record is an ordinary image, so
//! registries keep its blob, and garbage collection or a retention rule that removes it only
//! costs one rebuild.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::{Value, json};

use super::config::{Descriptor, rfc3339_utc};
use crate::client::{BlobContent, Scopes};
use crate::digest::sha256_digest;
use crate::engine::{self, PlannedBlob, PushPlan};
use crate::error::{Error, Result};
use crate::manifest::{ManifestContents, RawManifest};
use crate::media_type::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::{ImageRef, RegistryClient};

/// The largest layer-record config read; real ones are a few hundred bytes.
const MAX_RECORD_CONFIG_SIZE: u64 = 64 * 1024;

/// A gzipped layer built by the caller, placed above the base layers and below the code layer,
/// in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraLayer {
    /// `sha256:<hex>` of the gzipped blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Where the blob's bytes are.
    pub content: LayerContent,
    /// The image history's `created_by` for the layer.
    pub created_by: String,
}

/// Where an [`ExtraLayer`]'s bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerContent {
    /// A file on this machine.
    File(PathBuf),
    /// Already in the target repository (found by [`find_layer_record`]); nothing is sent.
    InTarget,
}

impl ExtraLayer {
    /// The blob as the push engine plans it.
    pub(crate) fn planned(&self, target: &ImageRef) -> PlannedBlob {
        PlannedBlob {
            digest: self.digest.clone(),
            size: self.size,
            content: match &self.content {
                LayerContent::File(path) => BlobContent::File {
                    path: path.clone(),
                    offset: 0,
                },
                // The engine finds it with a HEAD and skips it.
                LayerContent::InTarget => BlobContent::Remote(target.clone()),
            },
        }
    }
}

/// A layer found by [`find_layer_record`]: in the target repository, with its `diff_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedLayer {
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// Pushes a record of `layer` under `tag` in `target`'s repository (after the layer's blob is
/// there, or with it). `architecture` goes in the record's config, so that the record is a
/// valid image of that platform.
pub async fn push_layer_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
    layer: &ExtraLayer,
    architecture: &str,
) -> Result<()> {
    ImageRef::validate_tag(tag).map_err(|reason| Error::InvalidTag {
        tag: tag.to_owned(),
        reason,
    })?;
    client.plan_access(target, &Scopes::push(target.repository()));
    let config = Bytes::from(
        serde_json::to_vec(&json!({
            "architecture": architecture,
            "os": "linux",
            "created": rfc3339_utc(0),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": rfc3339_utc(0), "created_by": layer.created_by}],
        }))
        .expect("plain JSON serialises"),
    );
    let config_descriptor = Descriptor {
        digest: sha256_digest(&config),
        size: config.len() as u64,
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_descriptor.digest, "size": config_descriptor.size},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
    }))
    .expect("plain JSON serialises");
    let mut plan = PushPlan::default();
    plan.add_blob(layer.planned(target));
    plan.add_blob(PlannedBlob {
        digest: config_descriptor.digest,
        size: config_descriptor.size,
        content: BlobContent::Bytes(config),
    });
    plan.manifests
        .push(RawManifest::new(Bytes::from(manifest), OCI_MANIFEST));
    engine::push(client, &plan, target, Some(tag))
        .await
        .map_err(|source| Error::Push {
            target: format!("{}/{}", target.registry(), target.repository()),
            source: Box::new(source),
        })?;
    Ok(())
}

/// Finds the layer recorded under `tag` in `target`'s repository: `None` when there is no such
/// tag, when it is not a one-layer record, or when the repository no longer has the blob.
pub async fn find_layer_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
) -> Result<Option<RecordedLayer>> {
    let tagged = target.with_tag(tag).map_err(|error| Error::InvalidTag {
        tag: tag.to_owned(),
        reason: error.to_string(),
    })?;
    client.plan_access(target, &Scopes::push(target.repository()));
    let raw = match client.fetch_manifest(&tagged).await {
        Ok(raw) => raw,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(error),
    };
    let Ok(ManifestContents::Image { config, layers }) = raw.contents(&tagged.to_string()) else {
        return Ok(None);
    };
    let [layer] = layers.as_slice() else {
        return Ok(None);
    };
    let config_bytes = match client
        .fetch_blob(target, &config.digest, MAX_RECORD_CONFIG_SIZE)
        .await
    {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(error),
    };
    let diff_id = serde_json::from_slice::<Value>(&config_bytes)
        .ok()
        .and_then(|config| {
            config
                .pointer("/rootfs/diff_ids/0")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let Some(diff_id) = diff_id else {
        return Ok(None);
    };
    if !client.blob_exists(target, &layer.digest).await? {
        return Ok(None);
    }
    Ok(Some(RecordedLayer {
        digest: layer.digest.clone(),
        diff_id,
        size: layer.size,
    }))
}
