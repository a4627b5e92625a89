//! The native code-image builder: a reproducible code layer on top of a base image, pushed
//! without a Docker daemon (the way `ko`, `jib` and `crane append` work).
//!
//! [`build_code_image`] reads the base image's manifest and config, hashes the build directory
//! as an uncompressed tar (`layer.rs`, honouring `.dockerignore` via `dockerignore.rs`), writes
//! the new config (`config.rs`) and derives the content key from the base manifest digest, the
//! config digest and the recipe. If the target repository holds this very image under the
//! content tag (`code-<key>`, one manifest GET), that image is reused: nothing is compressed or
//! uploaded. Otherwise the layer is gzipped on every core (`gzip.rs`) and the image pushed
//! through the crate's push engine (`engine.rs`, the same one [`push_image`](crate::push_image)
//! runs), under the requested tag and the content tag. Base layers are found in
//! the target repository or mounted across repositories, so they are not downloaded when the
//! base lives in the target registry; only a working directory below the top level (`/var/tmp/code`, not `/app`) makes
//! the builder read the base layers' tar headers, to repeat its parents' metadata
//! (`base_dirs.rs`). [`plan_imports`] (`imports.rs`) tells the caller which directory of the image
//! must go on `PYTHONPATH` for a location's code to import. Layers built elsewhere (a
//! dependency layer) go between the base and the code layer through
//! [`CodeImageSpec::extra_layers`] (`extra.rs`, which also records such a layer under a tag so a
//! later build finds it in the registry); `base_files.rs` reads a base's config facts and, on
//! request, its merged file system, for a caller that must look inside. Terminal output and the
//! `docker build` path belong to the CLI, not here.

mod base_dirs;
mod base_files;
mod config;
mod dockerignore;
mod extra;
mod gzip;
mod imports;
mod layer;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::client::{BlobContent, Scopes};
use crate::digest::{sha256_digest, sha256_hex};
use crate::engine::{self, PlannedBlob, PushPlan};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{ManifestContents, RawManifest};
use crate::progress::BlobOutcome;
use crate::{ImageRef, RegistryClient};

pub use crate::platform::Platform;
pub use base_files::{BaseSummary, ImageEntry, ImageFiles, inspect_base, read_image_files};
pub use extra::{
    ExtraLayer, LayerContent, RECORD_CONFIG, RecordedLayer, find_config_record, find_layer_record,
    push_config_record, push_layer_record,
};
pub use imports::{CodeTarget, ImportPlan, LoadTarget, plan_imports};

/// The largest base image config we accept; real ones are a few kilobytes.
const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;
/// Prefix of tags derived from the image content.
const DERIVED_TAG_PREFIX: &str = "code-";
/// Hex digits of the content key used in a derived tag.
const DERIVED_TAG_HEX_DIGITS: usize = 12;
/// How this builder turns its inputs into an image, beyond what the content key hashes: bump
/// it when the layer's tar or the image documents are written differently, so that no rebuild
/// reuses an image this version would not produce.
const RECIPE_VERSION: u32 = 1;

/// What to build: a base image, a build directory and where the result goes.
#[derive(Debug, Clone)]
pub struct CodeImageSpec {
    /// The base image (tag or digest); with no `extra_layers`, it must hold the dependencies.
    pub base: ImageRef,
    /// Layers built elsewhere (such as a dependency layer), put between the base layers and
    /// the code layer in this order; their `Env` changes go in `env` and `env_prepend`.
    pub extra_layers: Vec<ExtraLayer>,
    /// The build directory whose files become the code layer.
    pub context_dir: PathBuf,
    /// The repository to push to; its tag and digest, if any, are ignored in favour of `tag`.
    pub target: ImageRef,
    /// The tag to push; `None` uses the content tag (`code-<12 hex of the content key>`), which
    /// is pushed alongside any other tag.
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
    /// Timestamp for files and history, in seconds since the epoch (what the
    /// `SOURCE_DATE_EPOCH` convention carries); `None` means the epoch itself.
    pub source_date_epoch: Option<i64>,
}

impl CodeImageSpec {
    /// A spec with the defaults: `linux/amd64`, `/app`, no env, base entrypoint and cmd,
    /// content-derived tag, epoch timestamps.
    pub fn new(base: ImageRef, context_dir: PathBuf, target: ImageRef) -> Self {
        Self {
            base,
            extra_layers: Vec::new(),
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
    /// Whether the target repository already held this exact image under its content tag, so
    /// nothing was compressed or uploaded (at most the manifest was pushed under `tag`).
    pub reused: bool,
    /// What the push did with each of the spec's `extra_layers`, in order (all `Skipped` when
    /// the image was reused).
    pub extra_layers: Vec<BlobOutcome>,
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
///
/// ```no_run
/// use dagster_deploy_registry::build::{CodeImageSpec, build_code_image};
/// use dagster_deploy_registry::{ClientOptions, ImageRef, RegistryClient};
///
/// # async fn run() -> dagster_deploy_registry::Result<()> {
/// let client = RegistryClient::new(ClientOptions::default())?;
/// let spec = CodeImageSpec::new(
///     ImageRef::parse("registry.example/base/python:3.12")?,
///     "./my_project".into(),
///     ImageRef::parse("registry.example/team/my_project")?,
/// );
/// let built = build_code_image(&client, &spec).await?;
/// println!("pushed {} ({})", built.image, built.digest);
/// # Ok(())
/// # }
/// ```
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
    let start_scan = move |parents: Vec<Option<base_dirs::DirectoryMetadata>>| {
        tokio::task::spawn_blocking(move || {
            layer::scan_layer(&context_dir, &workdir_segments, &parents, epoch)
        })
    };
    let base_error = |source| Error::BaseImage {
        image: spec.base.to_string(),
        source: Box::new(source),
    };
    let (scanned, base) = if parent_paths.is_empty() {
        // The files are hashed on a blocking thread while the base documents are fetched.
        let scan_task = start_scan(Vec::new());
        let base = fetch_base(client, &spec.base, &spec.platform).await;
        (scan_task.await, base.map_err(base_error)?)
    } else {
        let base = fetch_base(client, &spec.base, &spec.platform)
            .await
            .map_err(base_error)?;
        let parents =
            base_dirs::base_directories(client, &spec.base, &base.layers, &parent_paths).await?;
        (start_scan(parents).await, base)
    };
    let scanned = Arc::new(scanned.map_err(task_error)??);

    let change = config::ConfigChange {
        extra_layers: &spec.extra_layers,
        diff_id: &scanned.diff_id,
        created_epoch: epoch,
        workdir: &workdir,
        env: &spec.env,
        env_prepend: &spec.env_prepend,
        entrypoint: spec.entrypoint.as_deref(),
        cmd: spec.cmd.as_deref(),
    };
    let invalid_base = |reason| {
        base_error(Error::InvalidManifest {
            location: format!("{} ({})", spec.base, base.digest),
            reason,
        })
    };
    let config_bytes =
        Bytes::from(config::extend_config(&base.config, &change).map_err(invalid_base)?);
    let config_descriptor = config::Descriptor {
        digest: sha256_digest(&config_bytes),
        size: config_bytes.len() as u64,
    };
    // The whole image follows from the base, the config (which holds the uncompressed layer's
    // digest and every setting) and the compression recipe: the content key names it.
    let extra_digests: Vec<&str> = (spec.extra_layers.iter())
        .map(|extra| extra.digest.as_str())
        .collect();
    let key = content_key(&base.digest, &extra_digests, &config_descriptor.digest);
    let content_tag = derived_tag(&key);
    let tag = spec.tag.clone().unwrap_or_else(|| content_tag.clone());
    let image = spec
        .target
        .with_tag(&tag)
        .map_err(|error| Error::InvalidTag {
            tag: tag.clone(),
            reason: error.to_string(),
        })?;
    let manifest_for = |layer_descriptor: &config::Descriptor| -> Result<RawManifest> {
        let mut layers: Vec<config::Descriptor> = (spec.extra_layers.iter())
            .map(|extra| config::Descriptor {
                digest: extra.digest.clone(),
                size: extra.size,
            })
            .collect();
        layers.push(layer_descriptor.clone());
        let bytes = config::extend_manifest(&base.manifest, &config_descriptor, &layers)
            .map_err(invalid_base)?;
        Ok(RawManifest::new(
            Bytes::from(bytes),
            config::manifest_media_type(&base.manifest),
        ))
    };
    let push_error = |source| Error::Push {
        target: format!("{}/{}", target.registry(), target.repository()),
        source: Box::new(source),
    };

    // Nothing changed: the repository holds this image under its content tag already. Then
    // nothing is compressed or uploaded; a requested tag is one manifest PUT.
    if let Some((manifest, layer_descriptor)) =
        find_by_content_tag(client, target, &content_tag, &manifest_for).await
    {
        let digest = if tag == content_tag {
            manifest.digest.clone()
        } else {
            client
                .push_manifest(&image, &manifest)
                .await
                .map_err(push_error)?
        };
        return Ok(BuiltImage {
            image,
            digest,
            layer_digest: layer_descriptor.digest,
            layer_size: layer_descriptor.size,
            layer_entries: scanned.entry_count,
            layer_uploaded: false,
            reused: true,
            extra_layers: vec![BlobOutcome::Skipped; spec.extra_layers.len()],
            base_digest: base.digest.clone(),
            base_layers_present: base.layers.len(),
            base_layers_mounted: 0,
            base_layers_copied: 0,
        });
    }

    let compress_scanned = scanned.clone();
    let layer = tokio::task::spawn_blocking(move || {
        compress_scanned.compress(&std::env::temp_dir(), gzip::default_threads())
    })
    .await
    .map_err(task_error)??;
    let layer_descriptor = config::Descriptor {
        digest: layer.digest.clone(),
        size: layer.size,
    };
    let manifest = manifest_for(&layer_descriptor)?;

    // One push through the engine: the base layers (found in the target, mounted from the
    // base's repository, or streamed across registries), the code layer and the config, then
    // the manifest.
    let mut plan = PushPlan::default();
    for (digest, size) in &base.layers {
        plan.add_blob(PlannedBlob {
            digest: digest.clone(),
            size: *size,
            content: BlobContent::Remote(spec.base.clone()),
        });
    }
    for extra in &spec.extra_layers {
        plan.add_blob(extra.planned(target));
    }
    plan.add_blob(PlannedBlob {
        digest: layer.digest.clone(),
        size: layer.size,
        content: BlobContent::File {
            path: layer.file.path().to_owned(),
            offset: 0,
        },
    });
    plan.add_blob(PlannedBlob {
        digest: config_descriptor.digest.clone(),
        size: config_descriptor.size,
        content: BlobContent::Bytes(config_bytes),
    });
    plan.manifests.push(manifest.clone());
    let (report, outcomes) = engine::push(client, &plan, target, Some(&tag))
        .await
        .map_err(push_error)?;
    // The content tag goes alongside a requested tag, so that the next build of the same
    // content finds it. The image is pushed by now: a registry that refuses the extra tag (a
    // repository with immutable tags that holds something else under it) only costs the next
    // build its shortcut, so that is a warning, not a failure.
    if tag != content_tag {
        let content_image = target.with_tag(&content_tag)?;
        if let Err(error) = client.push_manifest(&content_image, &manifest).await {
            tracing::warn!(
                "could not also tag the image as {content_image} ({error}); the next build of the same code will build it again"
            );
        }
    }
    let outcome_of = |digest: &str| {
        plan.blobs
            .iter()
            .zip(&outcomes)
            .find(|(blob, _)| blob.digest == digest)
            .map(|(_, outcome)| *outcome)
    };
    let mut built = BuiltImage {
        image,
        digest: report.digest,
        layer_digest: layer.digest.clone(),
        layer_size: layer.size,
        layer_entries: layer.entries,
        layer_uploaded: outcome_of(&layer.digest) == Some(BlobOutcome::Uploaded),
        reused: false,
        extra_layers: (spec.extra_layers.iter())
            .map(|extra| outcome_of(&extra.digest).unwrap_or(BlobOutcome::Skipped))
            .collect(),
        base_digest: base.digest.clone(),
        base_layers_present: 0,
        base_layers_mounted: 0,
        base_layers_copied: 0,
    };
    for (digest, _) in &base.layers {
        match outcome_of(digest) {
            Some(BlobOutcome::Skipped) => built.base_layers_present += 1,
            Some(BlobOutcome::Mounted) => built.base_layers_mounted += 1,
            Some(BlobOutcome::Uploaded) => built.base_layers_copied += 1,
            None => {}
        }
    }
    Ok(built)
}

/// The image the target repository holds under `content_tag`, with its code layer, if it is
/// exactly the image this build would push: the same manifest bytes once its code layer's
/// descriptor is put in ours. Anything else (no such tag, another image under it, an error
/// reading it) means building; the check only ever saves work.
async fn find_by_content_tag(
    client: &RegistryClient,
    target: &ImageRef,
    content_tag: &str,
    manifest_for: &impl Fn(&config::Descriptor) -> Result<RawManifest>,
) -> Option<(RawManifest, config::Descriptor)> {
    let reference = target.with_tag(content_tag).ok()?;
    let found = match client.fetch_manifest(&reference).await {
        Ok(found) => found,
        Err(error) => {
            if error.kind() != ErrorKind::NotFound {
                tracing::debug!(image = %reference, %error, "content tag not readable; building");
            }
            return None;
        }
    };
    let ManifestContents::Image { layers, .. } = found.contents(&reference.to_string()).ok()?
    else {
        return None;
    };
    let code_layer = layers.last()?;
    let layer_descriptor = config::Descriptor {
        digest: code_layer.digest.clone(),
        size: code_layer.size,
    };
    let expected = manifest_for(&layer_descriptor).ok()?;
    if expected.digest != found.digest {
        tracing::debug!(image = %reference, "content tag holds another image; building");
        return None;
    }
    Some((expected, layer_descriptor))
}

fn task_error(error: tokio::task::JoinError) -> Error {
    Error::Task {
        reason: error.to_string(),
    }
}

/// The timestamp for layer entries and history: `source_date_epoch` if given, else the epoch.
fn epoch_seconds(source_date_epoch: Option<i64>) -> Result<u64> {
    match source_date_epoch {
        None => Ok(0),
        Some(value) => u64::try_from(value).map_err(|_| Error::InvalidSourceDateEpoch { value }),
    }
}

/// The content key of an image: the hex SHA-256 of everything its bytes follow from. The base
/// manifest digest fixes the base layers, the manifest format and the working directory's
/// parents' metadata; the config digest fixes the code layer's uncompressed bytes (its
/// diff_id) and every setting (working directory, environment, entrypoint, command,
/// timestamp); the recipe version and the compression fingerprint fix how the layer is
/// compressed and the documents are written. Extra layers (a dependency layer) are named by
/// their compressed digests, which the manifest carries.
fn content_key(base_digest: &str, extra_digests: &[&str], config_digest: &str) -> String {
    let mut document = format!(
        "dagster-deploy code image\nrecipe {RECIPE_VERSION}\ncompression {}\nbase {base_digest}\n",
        gzip::recipe_fingerprint(layer::GZIP_LEVEL)
    );
    for digest in extra_digests {
        document.push_str(&format!("extra {digest}\n"));
    }
    document.push_str(&format!("config {config_digest}\n"));
    sha256_hex(&sha256_digest(document.as_bytes())).to_owned()
}

/// The tag derived from a content key: `code-` and its first 12 hex digits.
fn derived_tag(content_key: &str) -> String {
    let end = content_key.len().min(DERIVED_TAG_HEX_DIGITS);
    format!("{DERIVED_TAG_PREFIX}{}", &content_key[..end])
}

/// The base image's single-platform manifest and config.
struct BaseImage {
    /// Digest of the platform manifest.
    digest: String,
    /// The manifest, as JSON to extend (fields this crate does not know survive).
    manifest: Value,
    /// The config, as JSON to extend.
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
    let top = client.fetch_manifest(base).await?;
    let location = |raw: &RawManifest| format!("{image} ({})", raw.digest);
    let (raw, contents, from_index) = match top.contents(&location(&top))? {
        ManifestContents::Index { manifests } => {
            let choice = crate::platform::select(&manifests, platform, &image)?;
            let raw = client
                .fetch_manifest(&base.with_digest(&choice.digest)?)
                .await?;
            let contents = raw.contents(&location(&raw))?;
            (raw, contents, true)
        }
        contents => (top, contents, false),
    };
    let invalid = |reason: String| Error::InvalidManifest {
        location: location(&raw),
        reason,
    };
    let ManifestContents::Image { config, layers } = contents else {
        return Err(invalid(
            "an index inside an index; only Docker v2 schema 2 and OCI image manifests can be a base"
                .to_owned(),
        ));
    };
    let manifest: Value = serde_json::from_slice(&raw.bytes)
        .map_err(|error| invalid(format!("it is not JSON: {error}")))?;
    let config_bytes = client
        .fetch_blob(base, &config.digest, MAX_CONFIG_SIZE)
        .await?;
    let config_location = format!("{image} (config {})", config.digest);
    let config_json: Value =
        serde_json::from_slice(&config_bytes).map_err(|error| Error::InvalidManifest {
            location: config_location.clone(),
            reason: format!("it is not JSON: {error}"),
        })?;
    let diff_ids = config_json
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if diff_ids != layers.len() {
        return Err(invalid(format!(
            "config {} lists {diff_ids} diff_ids but the manifest has {} layers",
            config.digest,
            layers.len()
        )));
    }
    if !from_index {
        crate::platform::check_config(&config_bytes, platform, &image)?;
    }
    Ok(BaseImage {
        digest: raw.digest,
        manifest,
        config: config_json,
        layers: layers
            .into_iter()
            .map(|layer| (layer.digest, layer.size))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tags_take_twelve_hex_digits_of_the_content_key() {
        assert_eq!(derived_tag("0123456789abcdef"), "code-0123456789ab");
        assert_eq!(derived_tag("abc"), "code-abc");
    }

    #[test]
    fn the_content_key_follows_the_base_the_extra_layers_and_the_config_and_nothing_else() {
        let base = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let config = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let other = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
        let key = content_key(base, &[], config);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(content_key(base, &[], config), key, "stable");
        assert_ne!(content_key(other, &[], config), key, "another base");
        assert_ne!(content_key(base, &[], other), key, "another config");
        let with_deps = content_key(base, &[other], config);
        assert_ne!(with_deps, key, "a dependency layer");
        assert_ne!(
            content_key(base, &[base], config),
            with_deps,
            "another dependency layer"
        );
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
            error.to_string().contains("source date epoch -1"),
            "{error}"
        );
    }
}
