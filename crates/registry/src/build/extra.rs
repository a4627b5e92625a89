//! Layers made elsewhere that a code image carries between its base layers and its code layer
//! ([`ExtraLayer`], set in [`CodeImageSpec::extra_layers`](super::CodeImageSpec)), and a way
//! to find such a layer again in a registry by a name the caller derives from its inputs
//! ([`push_layer_record`], [`find_layer_record`]); and, the same way, a small JSON document
//! the caller learnt at some cost ([`push_config_record`], [`find_config_record`]).
//!
//! A layer record is a one-layer OCI image pushed under a tag in the target repository: its
//! manifest names the layer's blob, its config the layer's `diff_id`. A builder that knows the
//! inputs of a layer (a dependency lock, a platform) but not its bytes (a fresh CI runner with
//! an empty cache) finds the record by tag and uses the blob the repository already holds,
//! instead of building and uploading the layer again. The record is an ordinary image, so
//! registries keep its blob, and garbage collection or a retention rule that removes it only
//! costs one rebuild.
//!
//! A config record is an OCI artifact under a tag: its config blob is the caller's JSON (media
//! type [`RECORD_CONFIG`]) and its one layer the OCI empty descriptor (`{}`), because the image
//! specification asks for at least one layer "for portability" and names that descriptor for
//! manifests with nothing else to carry. Finding one costs a manifest GET and a GET of its
//! config, however large the thing it describes.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::{Value, json};

use super::config::{Descriptor, rfc3339_utc};
use crate::client::{BlobContent, Scopes};
use crate::digest::sha256_digest;
use crate::engine::{self, PlannedBlob, PushPlan};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor as ManifestDescriptor, ManifestContents, RawManifest};
use crate::media_type::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::{ImageRef, RegistryClient};

/// The largest record config read; real ones are a few hundred bytes.
const MAX_RECORD_CONFIG_SIZE: u64 = 64 * 1024;

/// The media type of a config record's config blob (the caller's JSON).
pub const RECORD_CONFIG: &str = "application/vnd.dagster-deploy.record.v1+json";

/// The OCI empty descriptor's media type, content and digest (the config record's one layer).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONTENT: &[u8] = b"{}";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

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
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "created": rfc3339_utc(0),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": rfc3339_utc(0), "created_by": layer.created_by}],
    });
    let descriptor =
        json!({"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size});
    push_record(
        client,
        target,
        tag,
        (OCI_CONFIG, &config),
        (descriptor, layer.planned(target)),
    )
    .await
}

/// Pushes `config` (a JSON document the caller can find again by `tag`) as a config record
/// under `tag` in `target`'s repository.
pub async fn push_config_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
    config: &Value,
) -> Result<()> {
    let descriptor = json!({
        "mediaType": EMPTY_MEDIA_TYPE,
        "digest": EMPTY_DIGEST,
        "size": EMPTY_CONTENT.len(),
    });
    let empty = PlannedBlob {
        digest: EMPTY_DIGEST.to_owned(),
        size: EMPTY_CONTENT.len() as u64,
        content: BlobContent::Bytes(Bytes::from_static(EMPTY_CONTENT)),
    };
    push_record(
        client,
        target,
        tag,
        (RECORD_CONFIG, config),
        (descriptor, empty),
    )
    .await
}

/// Pushes an OCI manifest of one config (media type, JSON) and one layer (descriptor, blob)
/// under `tag`.
async fn push_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
    (config_media_type, config): (&str, &Value),
    (layer_descriptor, layer_blob): (Value, PlannedBlob),
) -> Result<()> {
    ImageRef::validate_tag(tag).map_err(|reason| Error::InvalidTag {
        tag: tag.to_owned(),
        reason,
    })?;
    client.plan_access(target, &Scopes::push(target.repository()));
    let config = Bytes::from(serde_json::to_vec(config).expect("a JSON value serialises"));
    let config_descriptor = Descriptor {
        digest: sha256_digest(&config),
        size: config.len() as u64,
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_media_type, "digest": config_descriptor.digest, "size": config_descriptor.size},
        "layers": [layer_descriptor],
    }))
    .expect("plain JSON serialises");
    let mut plan = PushPlan::default();
    plan.add_blob(layer_blob);
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
    let Some(Record { layer, config, .. }) = find_record(client, target, tag).await? else {
        return Ok(None);
    };
    let diff_id = config
        .pointer("/rootfs/diff_ids/0")
        .and_then(Value::as_str)
        .map(str::to_owned);
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

/// Finds the JSON document recorded under `tag` in `target`'s repository by
/// [`push_config_record`]: `None` when there is no such tag or it is not a config record. The
/// caller checks that the document is one it understands.
pub async fn find_config_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
) -> Result<Option<Value>> {
    Ok(find_record(client, target, tag)
        .await?
        .filter(|record| {
            record.config_media_type == RECORD_CONFIG && record.layer.media_type == EMPTY_MEDIA_TYPE
        })
        .map(|record| record.config))
}

/// The record under `tag`: `None` when there is no
/// such tag, when it is not a one-layer image manifest, or when its config is gone or not JSON.
async fn find_record(
    client: &RegistryClient,
    target: &ImageRef,
    tag: &str,
) -> Result<Option<Record>> {
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
    let Ok([layer]) = <[ManifestDescriptor; 1]>::try_from(layers) else {
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
    Ok(serde_json::from_slice::<Value>(&config_bytes)
        .ok()
        .map(|json| Record {
            config_media_type: config.media_type,
            layer,
            config: json,
        }))
}

/// A record as [`find_record`] finds it.
struct Record {
    /// The media type the manifest gives the config.
    config_media_type: String,
    /// The record's one layer.
    layer: ManifestDescriptor,
    /// The config, as JSON.
    config: Value,
}
