//! The native code-image builder: a reproducible code layer on top of a base image, pushed
//! without a Docker daemon (the way `ko`, `jib` and `crane append` work).
//!
//! [`build_code_image`] reads the base image's manifest and config, makes one gzipped layer
//! from the build directory (`layer.rs`, honouring `.dockerignore` via `dockerignore.rs`), writes
//! the new config and manifest (`config.rs`) and pushes them with the crate's
//! [`RegistryClient`]. Base layers are found in the target repository or
//! mounted across repositories, so they are not downloaded when the base lives in the target
//! registry; only a working directory below the top level (`/var/tmp/code`, not `/app`) makes
//! the builder read the base layers' tar headers, to repeat its parents' metadata
//! (`base_dirs.rs`). [`plan_imports`] (`imports.rs`) tells the caller which directory of the image
//! must go on `PYTHONPATH` for a location's code to import. Terminal output and the
//! `docker build` path belong to the CLI, not here.

mod base_dirs;
mod config;
mod dockerignore;
mod error;
mod imports;
mod layer;
mod platform;

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::access::Scopes;
use crate::client::{BlobContent, MountOutcome};
use crate::{ImageRef, RawManifest, RegistryClient};

pub use error::{Error, Result};
pub use imports::{CodeTarget, ImportPlan, LoadTarget, plan_imports};
pub use platform::Platform;
pub(crate) use platform::select_from_index;

/// The largest base image config we accept; real ones are a few kilobytes.
const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;
/// How many base layers are checked, mounted or copied at once.
const BASE_LAYER_CONCURRENCY: usize = 4;
/// Prefix of tags derived from the image content.
const DERIVED_TAG_PREFIX: &str = "code-";
/// Hex digits of the manifest digest used in a derived tag.
const DERIVED_TAG_HEX_DIGITS: usize = 12;

/// What to build: a base image, a build directory and where the result goes.
#[derive(Debug, Clone)]
pub struct CodeImageSpec {
    /// The base image that already holds the dependencies (tag or digest).
    pub base: ImageRef,
    /// The build directory whose files become the code layer.
    pub context_dir: PathBuf,
    /// The repository to push to; its tag and digest, if any, are ignored in favour of `tag`.
    pub target: ImageRef,
    /// The tag to push; `None` derives one from the content (`code-<12 hex of the digest>`).
    pub tag: Option<String>,
    /// The platform to take from a multi-platform base (`linux/amd64` by default).
    pub platform: Platform,
    /// Absolute directory in the image that holds the files, e.g. `/app`.
    pub workdir: String,
    /// Environment variables to set, overriding base variables of the same name.
    pub env: Vec<(String, String)>,
    /// Path-list variables such as `PYTHONPATH`, put in front of the base's value with `:`.
    pub env_prepend: Vec<(String, String)>,
    /// A new entrypoint, or `None` to keep the base's.
    pub entrypoint: Option<Vec<String>>,
    /// A new command, or `None` to keep the base's.
    pub cmd: Option<Vec<String>>,
    /// Timestamp for files and history (`SOURCE_DATE_EPOCH`); `None` means the epoch.
    pub source_date_epoch: Option<i64>,
}

impl CodeImageSpec {
    /// A spec with the defaults: `linux/amd64`, `/app`, no env, base entrypoint and cmd,
    /// content-derived tag, epoch timestamps.
    pub fn new(base: ImageRef, context_dir: PathBuf, target: ImageRef) -> Self {
        Self {
            base,
            context_dir,
            target,
            tag: None,
            platform: Platform::default(),
            workdir: "/app".to_owned(),
            env: Vec::new(),
            env_prepend: Vec::new(),
            entrypoint: None,
            cmd: None,
            source_date_epoch: None,
        }
    }
}

/// The pushed image and what the push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The pushed image, with its tag (`registry/repository:tag`).
    pub image: ImageRef,
    /// Digest of the pushed manifest (`sha256:…`).
    pub digest: String,
    /// Digest of the code layer blob.
    pub layer_digest: String,
    /// Size of the compressed code layer in bytes.
    pub layer_size: u64,
    /// Number of tar entries in the code layer (files, directories and symlinks).
    pub layer_entries: usize,
    /// Whether the code layer was uploaded (false: the registry already had it).
    pub layer_uploaded: bool,
    /// Digest of the base manifest that was built upon (the chosen platform's).
    pub base_digest: String,
    /// Base layers the target repository already had.
    pub base_layers_present: usize,
    /// Base layers mounted from the base's repository in the same registry.
    pub base_layers_mounted: usize,
    /// Base layers copied from another registry (downloaded and uploaded).
    pub base_layers_copied: usize,
}

/// Builds the code image described by `spec` and pushes it; the same inputs give the same
/// digest, and a layer the registry already has is not uploaded again.
pub async fn build_code_image(client: &RegistryClient, spec: &CodeImageSpec) -> Result<BuiltImage> {
    // Checked before anything is read or sent: the tag becomes a URL path.
    if let Some(tag) = &spec.tag {
        ImageRef::validate_tag(tag).map_err(|reason| Error::InvalidTag {
            tag: tag.clone(),
            reason,
        })?;
    }
    let workdir_segments = layer::workdir_segments(&spec.workdir)?;
    let workdir = format!("/{}", workdir_segments.join("/"));
    // `var` and `var/tmp` for `/var/tmp/code`: the directories whose metadata the base owns.
    let parent_paths: Vec<String> = (1..workdir_segments.len())
        .map(|end| workdir_segments[..end].join("/"))
        .collect();
    let epoch = epoch_seconds(spec.source_date_epoch)?;
    let target = &spec.target;
    // One token per registry covers the whole build: the base is read, the target written.
    client.plan_access(&spec.base, &Scopes::pull(spec.base.repository()));
    client.plan_access(target, &Scopes::push(target.repository()));

    let context_dir = spec.context_dir.clone();
    let start_layer = move |parents: Vec<Option<base_dirs::DirectoryMetadata>>| {
        tokio::task::spawn_blocking(move || {
            layer::write_layer(
                &context_dir,
                &workdir_segments,
                &parents,
                epoch,
                &std::env::temp_dir(),
            )
        })
    };
    let (layer, base) = if parent_paths.is_empty() {
        // The layer is built on a blocking thread while the base documents are fetched.
        let layer_task = start_layer(Vec::new());
        let base = fetch_base(client, &spec.base, &spec.platform).await;
        (layer_task.await, base?)
    } else {
        let base = fetch_base(client, &spec.base, &spec.platform).await?;
        let parents =
            base_dirs::base_directories(client, &spec.base, &base.layers, &parent_paths).await?;
        (start_layer(parents).await, base)
    };
    let layer = layer.map_err(|error| Error::Task {
        reason: error.to_string(),
    })??;

    let push_error = |source| Error::Push {
        target: format!("{}/{}", target.registry(), target.repository()),
        source,
    };
    let base_layers = transfer_base_layers(client, &spec.base, target, &base).await?;

    let layer_uploaded = if client
        .blob_exists(target, &layer.digest)
        .await
        .map_err(push_error)?
    {
        false
    } else {
        client
            .upload_blob_file(target, &layer.digest, layer.size, layer.file.path())
            .await
            .map_err(push_error)?;
        true
    };

    let change = config::ConfigChange {
        diff_id: &layer.diff_id,
        created_epoch: epoch,
        workdir: &workdir,
        env: &spec.env,
        env_prepend: &spec.env_prepend,
        entrypoint: spec.entrypoint.as_deref(),
        cmd: spec.cmd.as_deref(),
    };
    let base_name = spec.base.to_string();
    let invalid_base = |reason| Error::InvalidBaseImage {
        image: base_name.clone(),
        reason,
    };
    let config_bytes =
        Bytes::from(config::extend_config(&base.config, &change).map_err(invalid_base)?);
    let config_descriptor = config::Descriptor {
        digest: sha256_digest(&config_bytes),
        size: config_bytes.len() as u64,
    };
    if !client
        .blob_exists(target, &config_descriptor.digest)
        .await
        .map_err(push_error)?
    {
        client
            .upload_blob_bytes(target, &config_descriptor.digest, config_bytes)
            .await
            .map_err(push_error)?;
    }
    let layer_descriptor = config::Descriptor {
        digest: layer.digest.clone(),
        size: layer.size,
    };
    let manifest_bytes = Bytes::from(
        config::extend_manifest(&base.manifest, &config_descriptor, &layer_descriptor)
            .map_err(invalid_base)?,
    );
    let manifest_digest = sha256_digest(&manifest_bytes);
    let tag = match &spec.tag {
        Some(tag) => tag.clone(),
        None => derived_tag(&manifest_digest),
    };
    let image = spec
        .target
        .with_tag(&tag)
        .map_err(|error| Error::InvalidTag {
            tag: tag.clone(),
            reason: error.to_string(),
        })?;
    let manifest = RawManifest {
        bytes: manifest_bytes,
        media_type: config::manifest_media_type(&base.manifest).to_owned(),
        digest: manifest_digest,
    };
    let digest = client
        .push_manifest(&image, &manifest)
        .await
        .map_err(push_error)?;
    Ok(BuiltImage {
        image,
        digest,
        layer_digest: layer.digest.clone(),
        layer_size: layer.size,
        layer_entries: layer.entries,
        layer_uploaded,
        base_digest: base.digest,
        base_layers_present: base_layers.present,
        base_layers_mounted: base_layers.mounted,
        base_layers_copied: base_layers.copied,
    })
}

/// The timestamp for layer entries and history: `SOURCE_DATE_EPOCH` if given, else the epoch.
fn epoch_seconds(source_date_epoch: Option<i64>) -> Result<u64> {
    match source_date_epoch {
        None => Ok(0),
        Some(value) => u64::try_from(value).map_err(|_| Error::InvalidSourceDateEpoch { value }),
    }
}

/// The tag derived from a manifest digest: `code-` and its first 12 hex digits.
fn derived_tag(manifest_digest: &str) -> String {
    let hex = manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(manifest_digest);
    let end = hex.len().min(DERIVED_TAG_HEX_DIGITS);
    format!("{DERIVED_TAG_PREFIX}{}", &hex[..end])
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The base image's single-platform manifest and config.
struct BaseImage {
    /// Digest of the platform manifest.
    digest: String,
    manifest: Value,
    config: Value,
    /// `(digest, size)` of each base layer, in order.
    layers: Vec<(String, u64)>,
}

/// Fetches the base manifest (resolving an index to `platform`) and its config, nothing else.
async fn fetch_base(
    client: &RegistryClient,
    base: &ImageRef,
    platform: &Platform,
) -> Result<BaseImage> {
    let image = base.to_string();
    let fetch_error = |source| Error::BaseImage {
        image: image.clone(),
        source,
    };
    let invalid = |reason: String| Error::InvalidBaseImage {
        image: image.clone(),
        reason,
    };
    let top = client.fetch_manifest(base).await.map_err(fetch_error)?;
    let top_document: Value = serde_json::from_slice(&top.bytes)
        .map_err(|error| invalid(format!("manifest {} is not JSON: {error}", top.digest)))?;
    let from_index = platform::is_index(&top.media_type, &top_document);
    let (raw, document) = if from_index {
        let choice = platform::select_from_index(&top_document, platform, &image)?;
        let raw = client
            .fetch_manifest(
                &base
                    .with_digest(&choice.digest)
                    .map_err(|invalid| fetch_error(invalid.into()))?,
            )
            .await
            .map_err(fetch_error)?;
        let document: Value = serde_json::from_slice(&raw.bytes)
            .map_err(|error| invalid(format!("manifest {} is not JSON: {error}", raw.digest)))?;
        (raw, document)
    } else {
        (top, top_document)
    };
    let config_digest = document
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(format!(
                "manifest {} has no config digest (only Docker v2 schema 2 and OCI image manifests are supported)",
                raw.digest
            ))
        })?;
    let layers = document
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(format!("manifest {} has no `layers` array", raw.digest)))?
        .iter()
        .enumerate()
        .map(|(index, descriptor)| {
            let digest = descriptor.get("digest").and_then(Value::as_str);
            let size = descriptor.get("size").and_then(Value::as_u64);
            match (digest, size) {
                // The digest becomes a URL path: it must be a digest and nothing else.
                (Some(digest), Some(_)) if ImageRef::validate_digest(digest).is_err() => {
                    Err(invalid(format!(
                        "layer {index} of manifest {} has an invalid digest {digest:?}",
                        raw.digest
                    )))
                }
                (Some(digest), Some(size)) => Ok((digest.to_owned(), size)),
                _ => Err(invalid(format!(
                    "layer {index} of manifest {} lacks a digest or size",
                    raw.digest
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let config_bytes = client
        .fetch_blob(base, config_digest, MAX_CONFIG_SIZE)
        .await
        .map_err(fetch_error)?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|error| invalid(format!("config {config_digest} is not JSON: {error}")))?;
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if diff_ids != layers.len() {
        return Err(invalid(format!(
            "config {config_digest} lists {diff_ids} diff_ids but manifest {} has {} layers",
            raw.digest,
            layers.len()
        )));
    }
    if !from_index
        && let Some(offered) = Platform::from_json(&config)
        && !platform.accepts(&offered)
    {
        return Err(Error::PlatformMismatch {
            image,
            platform: platform.to_string(),
            actual: offered.to_string(),
        });
    }
    Ok(BaseImage {
        digest: raw.digest,
        manifest: document,
        config,
        layers,
    })
}

/// How each base layer reached the target repository.
#[derive(Debug, Default)]
struct BaseLayerCounts {
    present: usize,
    mounted: usize,
    copied: usize,
}

enum BaseLayerOutcome {
    Present,
    Mounted,
    Copied,
}

/// Makes every base layer available in the target repository: already there, mounted from the
/// base repository of the same registry, or (only when mounting is impossible) streamed across.
async fn transfer_base_layers(
    client: &RegistryClient,
    base: &ImageRef,
    target: &ImageRef,
    image: &BaseImage,
) -> Result<BaseLayerCounts> {
    let outcomes: Vec<BaseLayerOutcome> = futures_util::stream::iter(image.layers.iter())
        .map(|(digest, size)| transfer_base_layer(client, base, target, digest, *size))
        .buffered(BASE_LAYER_CONCURRENCY)
        .try_collect()
        .await?;
    let mut counts = BaseLayerCounts::default();
    for outcome in outcomes {
        match outcome {
            BaseLayerOutcome::Present => counts.present += 1,
            BaseLayerOutcome::Mounted => counts.mounted += 1,
            BaseLayerOutcome::Copied => counts.copied += 1,
        }
    }
    Ok(counts)
}

/// Makes one base layer available in the target repository without holding it in memory.
async fn transfer_base_layer(
    client: &RegistryClient,
    base: &ImageRef,
    target: &ImageRef,
    digest: &str,
    size: u64,
) -> Result<BaseLayerOutcome> {
    let push_error = |source| Error::Push {
        target: format!("{}/{}", target.registry(), target.repository()),
        source,
    };
    if client
        .blob_exists(target, digest)
        .await
        .map_err(push_error)?
    {
        return Ok(BaseLayerOutcome::Present);
    }
    let opened_session = if client.same_registry_origin(base, target) {
        match client
            .mount_or_start(target, base.repository(), digest)
            .await
            .map_err(push_error)?
        {
            MountOutcome::Mounted => return Ok(BaseLayerOutcome::Mounted),
            // The registry could not mount (e.g. no pull access to the base repository): fall
            // back to a streamed copy through the upload session it opened.
            MountOutcome::Started(session) => Some(session),
        }
    } else {
        None
    };
    let progress = client.blob_progress(digest, size, None);
    client
        .upload_blob(
            target,
            digest,
            size,
            &BlobContent::Remote(base.clone()),
            progress,
            opened_session,
        )
        .await
        .map_err(push_error)?;
    Ok(BaseLayerOutcome::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tags_take_twelve_hex_digits() {
        assert_eq!(derived_tag("sha256:0123456789abcdef"), "code-0123456789ab");
        assert_eq!(derived_tag("sha256:abc"), "code-abc");
    }

    #[test]
    fn source_date_epoch_defaults_to_zero_and_must_not_be_negative() {
        assert_eq!(epoch_seconds(None).expect("default"), 0);
        assert_eq!(
            epoch_seconds(Some(1_700_000_000)).expect("set"),
            1_700_000_000
        );
        let error = epoch_seconds(Some(-1)).expect_err("negative");
        assert!(
            error.to_string().contains("SOURCE_DATE_EPOCH `-1`"),
            "{error}"
        );
    }
}
