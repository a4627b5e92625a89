//! Image sources (`oci:`, `oci-archive:`, `docker-archive:`, registry references) and how each
//! is turned into a `PushPlan`: the manifests to push, where every blob's bytes are, and which
//! repositories may already hold them. Archives are indexed in place (tar entries are
//! contiguous), never extracted or read into memory. A `docker save` archive that holds an
//! `index.json` (Docker 25 and later) is read as the OCI layout it also is, so its manifests and
//! compressed layers are pushed as they are; older ones are read from `manifest.json`, with
//! layers pushed as stored (plain or gzip). [`PlatformSelection`] picks one platform of a
//! multi-platform image.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bytes::Bytes;
use serde::Deserialize;

use crate::client::{BlobContent, RegistryClient};
use crate::digest::{Sha256Hasher, sha256_digest};
use crate::engine::{PlannedBlob, PushPlan};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ManifestContents, RawManifest};
use crate::media_type::{OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST};
use crate::platform::{self, Platform};
use crate::reference::ImageRef;

/// Largest JSON file (index, manifest, config) read into memory from a local source.
const MAX_JSON_SIZE: u64 = 64 * 1024 * 1024;
/// Annotation holding the tag of an entry in an OCI layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation holding the full image name of an entry in the `index.json` of `docker save`.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// Which images of a multi-platform source a push sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PlatformSelection {
    /// Everything: an index with all its platforms, byte for byte (the digest is kept).
    #[default]
    All,
    /// The image for this platform alone, pushed as a single-platform image; children of the
    /// index that are missing from a local source are then no obstacle.
    One(Platform),
}

/// Where `push_image` reads an image from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI image layout directory, optionally selecting the entry tagged `tag`.
    OciLayout {
        /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
        dir: PathBuf,
        /// Tag to select in `index.json`.
        tag: Option<String>,
    },
    /// An uncompressed tar of an OCI image layout.
    OciArchive {
        /// The archive file.
        file: PathBuf,
        /// Tag to select in `index.json`.
        tag: Option<String>,
    },
    /// An archive written by `docker save` (its first image).
    DockerArchive {
        /// The archive file.
        file: PathBuf,
    },
    /// An image in a registry (copied, or retagged within the same registry).
    Registry(ImageRef),
}

fn split_tag(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once(':') {
        Some((path, tag))
            if !path.is_empty()
                && !tag.is_empty()
                && tag.chars().all(|character| {
                    character.is_ascii_alphanumeric() || "_.-".contains(character)
                }) =>
        {
            (path, Some(tag))
        }
        _ => (text, None),
    }
}

impl FromStr for ImageSource {
    type Err = Error;

    /// Parses `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`, `docker://REF` or `REF`.
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidSource {
            source_text: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, tag) = split_tag(rest);
            if dir.is_empty() {
                return Err(invalid("the layout directory is missing"));
            }
            return Ok(ImageSource::OciLayout {
                dir: dir.into(),
                tag: tag.map(str::to_owned),
            });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (file, tag) = split_tag(rest);
            if file.is_empty() {
                return Err(invalid("the archive file is missing"));
            }
            return Ok(ImageSource::OciArchive {
                file: file.into(),
                tag: tag.map(str::to_owned),
            });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(invalid("the archive file is missing"));
            }
            return Ok(ImageSource::DockerArchive { file: rest.into() });
        }
        let reference = text.strip_prefix("docker://").unwrap_or(text);
        if let Some((transport, _)) = reference.split_once(':').filter(|(transport, rest)| {
            !transport.contains(['.', '/'])
                && !rest
                    .chars()
                    .next()
                    .is_some_and(|character| character.is_ascii_digit())
        }) && [
            "dir",
            "docker-daemon",
            "containers-storage",
            "oci",
            "docker-archive",
            "oci-archive",
        ]
        .contains(&transport)
        {
            return Err(invalid(&format!(
                "the `{transport}:` transport is not supported"
            )));
        }
        Ok(ImageSource::Registry(ImageRef::parse(reference)?))
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::OciLayout { dir, .. } => write!(formatter, "oci:{}", dir.display())?,
            ImageSource::OciArchive { file, .. } => {
                write!(formatter, "oci-archive:{}", file.display())?
            }
            ImageSource::DockerArchive { file } => {
                return write!(formatter, "docker-archive:{}", file.display());
            }
            ImageSource::Registry(image) => return write!(formatter, "docker://{image}"),
        }
        match self {
            ImageSource::OciLayout { tag: Some(tag), .. }
            | ImageSource::OciArchive { tag: Some(tag), .. } => {
                write!(formatter, ":{tag}")
            }
            _ => Ok(()),
        }
    }
}

/// Files of a layout: a directory, or entries of an uncompressed tar (name -> offset, size).
enum LayoutStore {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
}

impl LayoutStore {
    fn origin(&self) -> &Path {
        match self {
            LayoutStore::Dir(dir) => dir,
            LayoutStore::Tar { file, .. } => file,
        }
    }

    fn locate(&self, name: &str) -> Result<(BlobContent, u64)> {
        match self {
            LayoutStore::Dir(dir) => {
                let path = dir.join(name);
                let metadata = std::fs::metadata(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok((BlobContent::File { path, offset: 0 }, metadata.len()))
            }
            LayoutStore::Tar { file, entries } => {
                let (offset, size) = entries.get(name).ok_or_else(|| Error::InvalidImage {
                    path: file.clone(),
                    reason: format!("the archive has no entry `{name}`"),
                })?;
                Ok((
                    BlobContent::File {
                        path: file.clone(),
                        offset: *offset,
                    },
                    *size,
                ))
            }
        }
    }

    fn read(&self, name: &str) -> Result<Bytes> {
        let (content, size) = self.locate(name)?;
        let BlobContent::File { path, offset } = content else {
            unreachable!("layout stores only hold files")
        };
        if size > MAX_JSON_SIZE {
            return Err(Error::InvalidImage {
                path: path.clone(),
                reason: format!("`{name}` is {size} bytes, too large for a JSON document"),
            });
        }
        let io_error = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(io_error)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset)).map_err(io_error)?;
        let mut buffer = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(size).read_to_end(&mut buffer).map_err(io_error)?;
        Ok(Bytes::from(buffer))
    }

    /// `blobs/<algorithm>/<encoded>`; the digest is checked so that it cannot name a file
    /// outside the layout.
    fn blob_name(digest: &str) -> Result<String> {
        let invalid = |reason: String| Error::InvalidManifest {
            location: digest.to_owned(),
            reason,
        };
        ImageRef::validate_digest(digest).map_err(invalid)?;
        let (algorithm, encoded) = digest
            .split_once(':')
            .ok_or_else(|| invalid("a digest must look like `sha256:<hex>`".to_owned()))?;
        Ok(format!("blobs/{algorithm}/{encoded}"))
    }

    /// Whether the store has the manifest blob a descriptor names.
    fn holds_manifest_of(&self, descriptor: &Descriptor) -> bool {
        Self::blob_name(&descriptor.digest).is_ok_and(|name| self.locate(&name).is_ok())
    }

    /// Reads a manifest blob and checks that it hashes to `descriptor.digest`.
    fn read_manifest(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let name = Self::blob_name(&descriptor.digest)?;
        let bytes = self.read(&name)?;
        let location = format!("{} ({name})", self.origin().display());
        let media_type = if descriptor.media_type.is_empty() {
            manifest::media_type_of(&bytes, &location)?
        } else {
            descriptor.media_type.clone()
        };
        let raw = RawManifest::new(bytes, media_type);
        if raw.digest != descriptor.digest {
            return Err(Error::DigestMismatch {
                location,
                expected: descriptor.digest.clone(),
                actual: raw.digest,
            });
        }
        Ok(raw)
    }
}

/// Indexes an uncompressed tar: entry name -> (data offset, size), following links.
fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let io_error = |source| Error::Io {
        path: file.to_owned(),
        source,
    };
    let mut handle = std::fs::File::open(file).map_err(io_error)?;
    let mut magic = [0u8; 2];
    if handle.read(&mut magic).map_err(io_error)? == 2 && magic == [0x1f, 0x8b] {
        return Err(Error::InvalidImage {
            path: file.to_owned(),
            reason: "the archive is gzip-compressed; decompress it first".to_owned(),
        });
    }
    let handle = std::fs::File::open(file).map_err(io_error)?;
    let mut archive = tar::Archive::new(handle);
    let mut entries = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for entry in archive.entries().map_err(io_error)? {
        let entry = entry.map_err(|error| Error::InvalidImage {
            path: file.to_owned(),
            reason: format!("not a valid tar: {error}"),
        })?;
        let name = normalise_tar_name(&entry.path().map_err(io_error)?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_file() {
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        } else if (kind.is_symlink() || kind.is_hard_link())
            && let Some(target) = entry.link_name().map_err(io_error)?
        {
            let target = target.to_string_lossy().into_owned();
            let resolved = if kind.is_symlink() {
                let parent = Path::new(&name)
                    .parent()
                    .map(|parent| parent.to_string_lossy().into_owned())
                    .unwrap_or_default();
                resolve_relative(&parent, &target)
            } else {
                normalise_tar_name(&target)
            };
            links.push((name, resolved));
        }
    }
    // Links may point at links; a few passes resolve any sane chain.
    for _ in 0..8 {
        for (name, target) in &links {
            if let Some(found) = entries.get(target).copied() {
                entries.entry(name.clone()).or_insert(found);
            }
        }
    }
    Ok(entries)
}

fn normalise_tar_name(name: &str) -> String {
    resolve_relative("", name)
}

fn resolve_relative(base: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|part| !part.is_empty()).collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Plans a push from an OCI layout (directory or archive).
fn plan_layout(
    store: &LayoutStore,
    tag: Option<&str>,
    selection: &PlatformSelection,
    source_text: &str,
) -> Result<PushPlan> {
    let index_bytes = store.read("index.json")?;
    let index_location = store.origin().join("index.json");
    let manifests = match manifest::parse(&index_bytes, &index_location.display().to_string())? {
        ManifestContents::Index { manifests } => manifests,
        ManifestContents::Image { .. } => {
            return Err(Error::InvalidImage {
                path: index_location,
                reason: "`index.json` is an image manifest, not an index".to_owned(),
            });
        }
    };
    let name_of = |descriptor: &Descriptor| descriptor.annotations.get(REF_NAME).cloned();
    let selected: Vec<&Descriptor> = match tag {
        Some(tag) => manifests
            .iter()
            .filter(|descriptor| {
                name_of(descriptor).is_some_and(|name| {
                    name == tag
                        || name
                            .rsplit_once(':')
                            .is_some_and(|(_, suffix)| suffix == tag)
                })
            })
            .collect(),
        None => manifests.iter().collect(),
    };
    let root = match selected.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::InvalidImage {
                path: index_location,
                reason: format!(
                    "no manifest tagged `{}`; tags present: {}",
                    tag.unwrap_or_default(),
                    tags_list(&manifests, name_of)
                ),
            });
        }
        _ => {
            return Err(Error::InvalidImage {
                path: index_location,
                reason: format!(
                    "it holds {} images; choose one by tag (`oci:DIR:TAG`, `oci-archive:FILE:TAG`) (tags: {})",
                    selected.len(),
                    tags_list(&manifests, name_of)
                ),
            });
        }
    };
    let mut plan = PushPlan::default();
    plan.mount_from.extend(
        root.annotations
            .get(CONTAINERD_IMAGE_NAME)
            .and_then(|name| ImageRef::parse(name).ok()),
    );
    let root = match selection {
        PlatformSelection::All => root.clone(),
        PlatformSelection::One(platform) => {
            choose_layout_platform(store, root, platform, source_text)?
        }
    };
    add_layout_manifest(store, &root, &mut plan, 0, source_text)?;
    Ok(plan)
}

/// The descriptor of `platform`'s image: a child of the index `root`, or `root` itself when it
/// is an image manifest whose config declares that platform.
fn choose_layout_platform(
    store: &LayoutStore,
    root: &Descriptor,
    platform: &Platform,
    source_text: &str,
) -> Result<Descriptor> {
    let raw = store.read_manifest(root)?;
    let location = format!("{} ({})", store.origin().display(), root.digest);
    match manifest::parse(&raw.bytes, &location)? {
        ManifestContents::Index { manifests } => {
            let child = platform::select(&manifests, platform, source_text)?.clone();
            // A nested index (rare) is narrowed the same way.
            let child_raw = store.read_manifest(&child)?;
            match manifest::parse(&child_raw.bytes, &child.digest)? {
                ManifestContents::Index { .. } => {
                    choose_layout_platform(store, &child, platform, source_text)
                }
                ManifestContents::Image { .. } => Ok(child),
            }
        }
        ManifestContents::Image { config, .. } => {
            let config_bytes = store.read(&LayoutStore::blob_name(&config.digest)?)?;
            platform::check_config(&config_bytes, platform, source_text)?;
            Ok(root.clone())
        }
    }
}

fn tags_list(manifests: &[Descriptor], name_of: impl Fn(&Descriptor) -> Option<String>) -> String {
    let names: Vec<String> = manifests.iter().filter_map(name_of).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn add_layout_manifest(
    store: &LayoutStore,
    descriptor: &Descriptor,
    plan: &mut PushPlan,
    depth: usize,
    source_text: &str,
) -> Result<()> {
    let raw = store.read_manifest(descriptor)?;
    let location = format!("{} ({})", store.origin().display(), descriptor.digest);
    match manifest::parse(&raw.bytes, &location)? {
        ManifestContents::Index { manifests } => {
            if depth > 4 {
                return Err(Error::InvalidManifest {
                    location,
                    reason: "indexes nested too deeply".to_owned(),
                });
            }
            let missing: Vec<String> = manifests
                .iter()
                .filter(|child| !store.holds_manifest_of(child))
                .map(|child| {
                    let platform = child
                        .platform
                        .as_ref()
                        .map_or_else(|| "an image".to_owned(), ToString::to_string);
                    format!("{platform} ({})", child.digest)
                })
                .collect();
            if !missing.is_empty() {
                return Err(Error::IncompleteIndex {
                    source_text: source_text.to_owned(),
                    missing: missing.join(", "),
                });
            }
            for child in &manifests {
                add_layout_manifest(store, child, plan, depth + 1, source_text)?;
            }
        }
        ManifestContents::Image { config, layers } => {
            for blob in std::iter::once(&config)
                .chain(&layers)
                .filter(|blob| !blob.is_foreign())
            {
                let (content, size) = store.locate(&LayoutStore::blob_name(&blob.digest)?)?;
                if size != blob.size {
                    return Err(Error::InvalidImage {
                        path: store.origin().to_owned(),
                        reason: format!(
                            "blob {} is {size} bytes but the manifest says {}",
                            blob.digest, blob.size
                        ),
                    });
                }
                plan.add_blob(PlannedBlob {
                    digest: blob.digest.clone(),
                    size,
                    content,
                });
            }
        }
    }
    if plan
        .manifests
        .iter()
        .all(|pushed| pushed.digest != raw.digest)
    {
        plan.manifests.push(raw);
    }
    Ok(())
}

#[derive(Deserialize)]
struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct DockerImageConfig {
    rootfs: DockerRootFs,
}

#[derive(Deserialize)]
struct DockerRootFs {
    diff_ids: Vec<String>,
}

/// Plans a push from a `docker save` archive: its `index.json` when it has one (read as an
/// OCI layout), else `manifest.json` with its layers as stored under a new OCI manifest.
fn plan_docker_archive(
    file: &Path,
    selection: &PlatformSelection,
    source_text: &str,
) -> Result<PushPlan> {
    let store = LayoutStore::Tar {
        file: file.to_owned(),
        entries: index_tar(file)?,
    };
    if store.locate("index.json").is_ok() {
        let mut plan = plan_layout(&store, None, selection, source_text)?;
        if let Ok(listing) = store.read("manifest.json")
            && let Ok(entries) = serde_json::from_slice::<Vec<DockerArchiveEntry>>(&listing)
        {
            plan.mount_from.extend(repo_tags(&entries));
        }
        return Ok(plan);
    }
    let invalid = |reason: String| Error::InvalidImage {
        path: file.to_owned(),
        reason,
    };
    let listing: Vec<DockerArchiveEntry> = serde_json::from_slice(&store.read("manifest.json")?)
        .map_err(|error| {
            invalid(format!(
                "`manifest.json` is invalid at line {}: {error}",
                error.line()
            ))
        })?;
    let entry = match listing.as_slice() {
        [one] => one,
        [] => return Err(invalid("`manifest.json` lists no image".to_owned())),
        _ => {
            return Err(invalid(format!(
                "it holds {} images; save a single image",
                listing.len()
            )));
        }
    };
    let config_name = normalise_tar_name(&entry.config);
    let config_bytes = store.read(&config_name)?;
    if let PlatformSelection::One(platform) = selection {
        platform::check_config(&config_bytes, platform, source_text)?;
    }
    let config: DockerImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|error| invalid(format!("`{config_name}` is not an image config: {error}")))?;
    if config.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(invalid(format!(
            "`manifest.json` lists {} layers but the config has {} diff_ids",
            entry.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let config_digest = sha256_digest(&config_bytes);
    let mut plan = PushPlan::default();
    plan.mount_from = repo_tags(listing.as_slice());
    let mut layer_descriptors = Vec::new();
    for (layer_name, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let layer_name = normalise_tar_name(layer_name);
        let (content, size) = store.locate(&layer_name)?;
        let (digest, media_type) = archived_layer_digest(&content, size, &layer_name, diff_id)?;
        layer_descriptors.push(serde_json::json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
        }));
        plan.add_blob(PlannedBlob {
            digest,
            size,
            content,
        });
    }
    plan.add_blob(PlannedBlob {
        digest: config_digest.clone(),
        size: config_bytes.len() as u64,
        content: BlobContent::Bytes(config_bytes.clone()),
    });
    let mut document = BTreeMap::new();
    document.insert("schemaVersion", serde_json::json!(2));
    document.insert("mediaType", serde_json::json!(OCI_MANIFEST));
    document.insert(
        "config",
        serde_json::json!({
            "mediaType": OCI_CONFIG,
            "digest": config_digest,
            "size": config_bytes.len(),
        }),
    );
    document.insert("layers", serde_json::Value::Array(layer_descriptors));
    let bytes = serde_json::to_vec(&document)
        .map_err(|error| invalid(format!("cannot write the manifest: {error}")))?;
    plan.manifests
        .push(RawManifest::new(Bytes::from(bytes), OCI_MANIFEST));
    Ok(plan)
}

/// The image names of a `docker save` listing, as repositories to mount from.
fn repo_tags(entries: &[DockerArchiveEntry]) -> Vec<ImageRef> {
    entries
        .iter()
        .flat_map(|entry| entry.repo_tags.iter().flatten())
        .filter_map(|name| ImageRef::parse(name).ok())
        .collect()
}

/// The digest and media type of a layer stored in a `docker save` archive. A plain tar's
/// digest is its diff_id; a compressed one (gzip or zstd, as the containerd image store saves
/// them) is named by its file (`blobs/sha256/<hex>`) or hashed. Uploads verify either way.
fn archived_layer_digest(
    content: &BlobContent,
    size: u64,
    name: &str,
    diff_id: &str,
) -> Result<(String, &'static str)> {
    let BlobContent::File { path, offset } = content else {
        unreachable!("archive entries are files")
    };
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset)).map_err(io_error)?;
    let mut magic = [0u8; 4];
    let read = (&mut file)
        .take(size.min(4))
        .read(&mut magic)
        .map_err(io_error)?;
    let media_type = match &magic[..read] {
        [0x1f, 0x8b, ..] => OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => return Ok((diff_id.to_owned(), OCI_LAYER)),
    };
    if let Some(hex) = name.strip_prefix("blobs/sha256/")
        && hex.len() == 64
        && hex.chars().all(|character| character.is_ascii_hexdigit())
    {
        return Ok((crate::digest::sha256_from_hex(hex), media_type));
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset)).map_err(io_error)?;
    let mut hasher = Sha256Hasher::default();
    let mut remaining = file.take(size);
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = remaining.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok((hasher.finish(), media_type))
}

/// Plans a copy from a registry: manifests are fetched, blobs stay remote (streamed or mounted).
/// With one platform selected, only that platform's manifest of an index is copied.
async fn plan_registry(
    client: &RegistryClient,
    source: &ImageRef,
    selection: &PlatformSelection,
) -> Result<PushPlan> {
    let mut plan = PushPlan::default();
    let mut root = client.fetch_manifest(source).await?;
    if let PlatformSelection::One(platform) = selection {
        let source_text = source.to_string();
        let location = format!("{source} ({})", root.digest);
        match manifest::parse(&root.bytes, &location)? {
            ManifestContents::Index { manifests } => {
                let digest = &platform::select(&manifests, platform, &source_text)?.digest;
                root = client.fetch_manifest(&source.with_digest(digest)?).await?;
            }
            ManifestContents::Image { config, .. } => {
                let bytes = client
                    .fetch_blob(source, &config.digest, MAX_JSON_SIZE)
                    .await?;
                platform::check_config(&bytes, platform, &source_text)?;
            }
        }
    }
    let mut pending = vec![(root, 0usize)];
    let mut ordered = Vec::new();
    while let Some((raw, depth)) = pending.pop() {
        let location = format!("{source} ({})", raw.digest);
        match manifest::parse(&raw.bytes, &location)? {
            ManifestContents::Index { manifests } if depth < 4 => {
                for child in &manifests {
                    let child_raw = client
                        .fetch_manifest(&source.with_digest(&child.digest)?)
                        .await?;
                    pending.push((child_raw, depth + 1));
                }
            }
            ManifestContents::Index { .. } => {
                return Err(Error::InvalidManifest {
                    location,
                    reason: "indexes nested too deeply".to_owned(),
                });
            }
            ManifestContents::Image { config, layers } => {
                for blob in std::iter::once(&config)
                    .chain(&layers)
                    .filter(|blob| !blob.is_foreign())
                {
                    plan.add_blob(PlannedBlob {
                        digest: blob.digest.clone(),
                        size: blob.size,
                        content: BlobContent::Remote(source.clone()),
                    });
                }
            }
        }
        ordered.push(raw);
    }
    // Children were discovered after their parents; push them first.
    ordered.reverse();
    let mut pushed = HashSet::new();
    plan.manifests = ordered
        .into_iter()
        .filter(|raw| pushed.insert(raw.digest.clone()))
        .collect();
    Ok(plan)
}

impl ImageSource {
    /// Reads the source into a plan; local sources are indexed on a blocking thread.
    pub(crate) async fn plan(
        &self,
        client: &RegistryClient,
        selection: &PlatformSelection,
    ) -> Result<PushPlan> {
        let source = self.clone();
        let source_text = self.to_string();
        let selection = selection.clone();
        match source {
            ImageSource::Registry(image) => plan_registry(client, &image, &selection).await,
            local => tokio::task::spawn_blocking(move || match local {
                ImageSource::OciLayout { dir, tag } => plan_layout(
                    &LayoutStore::Dir(dir),
                    tag.as_deref(),
                    &selection,
                    &source_text,
                ),
                ImageSource::OciArchive { file, tag } => {
                    let entries = index_tar(&file)?;
                    plan_layout(
                        &LayoutStore::Tar { file, entries },
                        tag.as_deref(),
                        &selection,
                        &source_text,
                    )
                }
                ImageSource::DockerArchive { file } => {
                    plan_docker_archive(&file, &selection, &source_text)
                }
                ImageSource::Registry(_) => unreachable!("handled above"),
            })
            .await
            .map_err(|error| Error::Task {
                reason: format!("reading {self}: {error}"),
            })?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: ImageSource) {
        assert_eq!(text.parse::<ImageSource>().unwrap(), expected, "{text}");
    }

    #[test]
    fn parses_every_source_form() {
        check(
            "oci:./layout:v1",
            ImageSource::OciLayout {
                dir: "./layout".into(),
                tag: Some("v1".into()),
            },
        );
        check(
            "oci:/tmp/layout",
            ImageSource::OciLayout {
                dir: "/tmp/layout".into(),
                tag: None,
            },
        );
        check(
            "oci-archive:img.tar:latest",
            ImageSource::OciArchive {
                file: "img.tar".into(),
                tag: Some("latest".into()),
            },
        );
        check(
            "docker-archive:/tmp/save.tar",
            ImageSource::DockerArchive {
                file: "/tmp/save.tar".into(),
            },
        );
        let image = ImageRef::parse("127.0.0.1:5000/team/app:v1").unwrap();
        check(
            "docker://127.0.0.1:5000/team/app:v1",
            ImageSource::Registry(image.clone()),
        );
        check("127.0.0.1:5000/team/app:v1", ImageSource::Registry(image));
    }

    #[test]
    fn rejects_empty_paths_and_unsupported_transports() {
        for text in [
            "oci:",
            "docker-archive:",
            "docker-daemon:alpine:latest",
            "dir:/tmp/x",
        ] {
            let error = text.parse::<ImageSource>().unwrap_err().to_string();
            assert!(error.contains(text), "{error}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "oci:./layout:v1",
            "oci-archive:img.tar",
            "docker-archive:/tmp/s.tar",
            "docker://ghcr.io/a/b:c",
        ] {
            assert_eq!(text.parse::<ImageSource>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn tar_names_are_normalised_and_links_resolved() {
        assert_eq!(normalise_tar_name("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(resolve_relative("abc", "../def/layer.tar"), "def/layer.tar");
    }

    #[test]
    fn gzip_archives_are_rejected_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.tar.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0]).unwrap();
        let error = index_tar(&path).unwrap_err().to_string();
        assert!(
            error.contains("decompress") && error.contains("image.tar.gz"),
            "{error}"
        );
    }
}
