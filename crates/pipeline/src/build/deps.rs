//! The native builder's dependency layer: a location whose project has a `uv.lock` (its own or
//! its uv workspace root's) gets the locked packages as a layer between the base image and the
//! code layer, built by `dagster-deploy-pydeps` for the base's platform and Python and pushed by
//! the registry crate as an [`ExtraLayer`]. This module composes the two; neither knows the
//! other.
//!
//! Reuse, cheapest first: the layer's key ([`LayerKey`], from `uv export`, offline) names a
//! layer record in the target repository (`deps-<key>`, see
//! `dagster_deploy_registry::build::find_layer_record`): when the repository has it, nothing is
//! built or uploaded, even on a machine that never built it. Else the local [`LayerCache`]
//! gives the blob without installing, and the push engine skips it when the repository has the
//! blob. Else uv installs the wheels. After a push that carried a layer the repository had no
//! record of, the record is pushed.
//!
//! The layer's key needs the base's Python ([`TargetPython`]), found cheapest first too: what
//! was learnt is kept under the base's manifest digest in the cache directory
//! (`bases/<hex>.json`); else the target repository's base-facts record
//! (`pybase-<hex>`, `base_facts_tag`, a config record found with
//! `dagster_deploy_registry::build::find_config_record`) holds the same JSON
//! (`facts_record`), so a fresh CI runner reads a manifest and a small config instead of the
//! base's layers; else the base's files are read ([`TargetPython::detect`]), streaming every
//! base layer once, and what was learnt is remembered in both places (a record that cannot be
//! pushed is a warning: the next fresh runner reads the layers again). A record of another
//! format, base or environment directory is not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dagster_deploy_pydeps::{
    self as pydeps, Architecture, BaseEntry, BaseFiles, DepsRequest, FILES_READ, ImageEnv,
    ImageFacts, LayerCache, LayerKey, Libc, LockedProject, PythonVersion, TargetPython, Uv,
};
use dagster_deploy_registry::build::{
    BaseSummary, ExtraLayer, ImageEntry, ImageFiles, LayerContent, find_config_record,
    find_layer_record, inspect_base, push_config_record, read_image_files,
};
use dagster_deploy_registry::{ImageRef, RegistryClient, sha256_digest};
use serde_json::{Value, json};

use super::{BuildPlan, NativeBuild};
use crate::error::{Error, Result};
use crate::progress::{DepsLayerSource, Event, Progress};

/// The largest package database read from a base image.
const MAX_DATABASE_SIZE: u64 = 64 * 1024 * 1024;

/// The native builder's dependency-layer settings.
#[derive(Debug, Clone)]
pub struct DepsLayerSettings {
    /// Whether a project's `uv.lock` becomes a dependency layer; when off, the base image must
    /// hold the dependencies, as it must for projects without a lock.
    pub enabled: bool,
    /// The uv program (a path, or a name looked up on `PATH`).
    pub uv: PathBuf,
    /// uv's wheel cache; `None` leaves it to uv (`UV_CACHE_DIR` or its default).
    pub uv_cache_dir: Option<PathBuf>,
    /// Where built layers (`layers/`) and what was learnt about base images (`bases/`) are
    /// kept between builds.
    pub cache_dir: PathBuf,
    /// The environment's directory in the image.
    pub venv_dir: String,
    /// Environment variables of this process that uv must not see: the caller's secrets (API
    /// tokens, registry passwords), which uv has no use for.
    pub hidden_env: Vec<String>,
}

impl DepsLayerSettings {
    /// Enabled, with `uv` from `PATH`, uv's own wheel cache, and the environment in
    /// `/opt/venv`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            enabled: true,
            uv: PathBuf::from("uv"),
            uv_cache_dir: None,
            cache_dir: cache_dir.into(),
            venv_dir: pydeps::DEFAULT_VENV_DIR.to_owned(),
            hidden_env: Vec::new(),
        }
    }
}

/// A dependency layer ready for the code image.
pub(super) struct PreparedDeps {
    /// The layer, for the spec's `extra_layers`.
    pub(super) layer: ExtraLayer,
    /// The variables the image needs.
    pub(super) env: ImageEnv,
    /// The record to push after the image (tag and architecture), when the target repository
    /// had none.
    pub(super) record: Option<(String, String)>,
}

/// What one build learnt about its base image, shared by its locations.
#[derive(Default)]
pub(super) struct BaseMemo {
    summary: Option<BaseSummary>,
    targets: HashMap<String, TargetPython>,
}

/// Prepares the dependency layer of `plan`'s location, or says why it has none.
pub(super) async fn prepare(
    client: &RegistryClient,
    settings: &NativeBuild,
    plan: &BuildPlan,
    target: &ImageRef,
    memo: &mut BaseMemo,
    progress: &dyn Progress,
) -> Result<Option<PreparedDeps>> {
    let location = plan.location.as_str();
    let deps = &settings.deps;
    if !deps.enabled {
        progress.event(&Event::NoDepsLayer {
            location,
            disabled: true,
        });
        return Ok(None);
    }
    let deps_error = |error: pydeps::Error| Error::DepsLayer {
        location: location.to_owned(),
        error: Box::new(error),
    };
    let project_dir = plan.project_root.as_deref().unwrap_or(&plan.context_dir);
    let Some(project) = pydeps::find_lock(project_dir).map_err(deps_error)? else {
        progress.event(&Event::NoDepsLayer {
            location,
            disabled: false,
        });
        return Ok(None);
    };
    let summary = match &memo.summary {
        Some(summary) => summary.clone(),
        None => {
            let summary = inspect_base(client, &settings.base, &settings.platform).await?;
            memo.summary = Some(summary.clone());
            summary
        }
    };
    let target_python = match memo.targets.get(&summary.digest) {
        Some(found) => found.clone(),
        None => {
            let found =
                target_python(client, &settings.base, target, &summary, deps, deps_error).await?;
            memo.targets.insert(summary.digest.clone(), found.clone());
            found
        }
    };

    let uv_settings = deps.clone();
    let request_project = project.clone();
    let request_target = target_python.clone();
    let source_date_epoch = settings
        .source_date_epoch
        .and_then(|epoch| u64::try_from(epoch).ok());
    let (uv, key) = tokio::task::spawn_blocking(move || {
        let mut uv = Uv::new(&uv_settings.uv)?;
        if let Some(cache) = &uv_settings.uv_cache_dir {
            uv = uv.with_cache_dir(cache);
        }
        for name in &uv_settings.hidden_env {
            uv = uv.without_env(name);
        }
        let request = request(
            &request_project,
            &request_target,
            &uv_settings,
            source_date_epoch,
        );
        let key = pydeps::deps_layer_key(&uv, &request)?;
        Ok((uv, key))
    })
    .await
    .map_err(join_error)?
    .map_err(deps_error)?;
    let env = image_env(&deps.venv_dir);

    if let Some(recorded) = find_layer_record(client, target, &key.tag()).await? {
        progress.event(&Event::DepsLayer {
            location,
            digest: &recorded.digest,
            source: DepsLayerSource::Registry,
        });
        return Ok(Some(PreparedDeps {
            layer: ExtraLayer {
                digest: recorded.digest,
                diff_id: recorded.diff_id,
                size: recorded.size,
                content: LayerContent::InTarget,
                created_by: created_by(&uv, &key),
            },
            env,
            record: None,
        }));
    }

    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let cache = LayerCache::new(deps.cache_dir.join("layers"));
    let build_settings = deps.clone();
    let task = tokio::task::spawn_blocking(move || {
        let request = request(&project, &target_python, &build_settings, source_date_epoch);
        pydeps::build_deps_layer(&uv, &request, &cache, &mut |event| {
            // The receiver lives until the task ends; a closed channel only loses a message.
            let _ = sender.send(event);
        })
    });
    while let Some(event) = receiver.recv().await {
        progress.event(&Event::DepsProgress {
            location,
            progress: &event,
        });
    }
    let built = task.await.map_err(join_error)?.map_err(deps_error)?;
    progress.event(&Event::DepsLayer {
        location,
        digest: &built.digest,
        source: if built.reused {
            DepsLayerSource::Cache
        } else {
            DepsLayerSource::Built
        },
    });
    Ok(Some(PreparedDeps {
        layer: ExtraLayer {
            digest: built.digest,
            diff_id: built.diff_id,
            size: built.size,
            content: LayerContent::File(built.blob),
            created_by: built.created_by,
        },
        env: built.env,
        record: Some((built.key.tag(), summary.architecture.clone())),
    }))
}

fn request<'a>(
    project: &'a LockedProject,
    target: &'a TargetPython,
    settings: &DepsLayerSettings,
    source_date_epoch: Option<u64>,
) -> DepsRequest<'a> {
    DepsRequest {
        venv_dir: settings.venv_dir.clone(),
        source_date_epoch,
        ..DepsRequest::new(project, target)
    }
}

/// The environment a layer in `venv_dir` needs (what `build_deps_layer` reports, for a layer
/// found in the registry instead).
fn image_env(venv_dir: &str) -> ImageEnv {
    let venv_dir = venv_dir.trim_end_matches('/');
    ImageEnv {
        set: vec![("VIRTUAL_ENV".to_owned(), venv_dir.to_owned())],
        prepend: vec![("PATH".to_owned(), format!("{venv_dir}/bin"))],
    }
}

/// The history line of a layer found in the registry.
fn created_by(uv: &Uv, key: &LayerKey) -> String {
    format!(
        "uv {} pip install (dependency layer {}, reused)",
        uv.version(),
        key.tag()
    )
}

/// A blocking task that panicked or was cancelled.
fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Registry(Box::new(dagster_deploy_registry::Error::Task {
        reason: error.to_string(),
    }))
}

/// The base's Python: from the cache directory, else from the base-facts record in the target
/// repository, else read from the base's layers (then remembered in both places).
async fn target_python(
    client: &RegistryClient,
    base: &ImageRef,
    target: &ImageRef,
    summary: &BaseSummary,
    deps: &DepsLayerSettings,
    deps_error: impl Fn(pydeps::Error) -> Error,
) -> Result<TargetPython> {
    let hex = summary
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&summary.digest);
    let remembered = deps.cache_dir.join("bases").join(format!("{hex}.json"));
    let read = |record: &Value| read_facts(record, &summary.digest, &deps.venv_dir);
    if let Some(found) = read_remembered(&remembered).as_ref().and_then(read) {
        return Ok(found);
    }
    let tag = base_facts_tag(&summary.digest, &deps.venv_dir);
    if let Some(record) = find_config_record(client, target, &tag).await?
        && let Some(found) = read(&record)
    {
        // Remembering is an optimisation: a cache that cannot be written costs a lookup next
        // time.
        let _ = remember(&remembered, &record);
        return Ok(found);
    }
    let files = read_image_files(client, base, summary, FILES_READ, MAX_DATABASE_SIZE)
        .await
        .map_err(|error| {
            deps_error(pydeps::Error::ReadBase {
                path: "/".to_owned(),
                source: std::io::Error::other(error.to_string()),
            })
        })?;
    let files = RegistryFiles(files);
    let facts = ImageFacts {
        architecture: summary.architecture.clone(),
        env: summary.env.clone(),
    };
    let found = TargetPython::detect(&files, &facts).map_err(&deps_error)?;
    pydeps::check_venv_dir(&files, &deps.venv_dir).map_err(&deps_error)?;
    let record = facts_record(&summary.digest, &found, &deps.venv_dir);
    let _ = remember(&remembered, &record);
    // Like the cache directory, the record only saves the next runner a read of the layers.
    if let Err(error) = push_config_record(client, target, &tag, &record).await {
        tracing::warn!(
            tag = tag.as_str(),
            error = %error,
            "could not record the base image's Python in the target repository; the next \
             build on an empty cache reads the base layers again"
        );
    }
    Ok(found)
}

/// The base's files as the dependency-layer library reads them.
struct RegistryFiles(ImageFiles);

impl BaseFiles for RegistryFiles {
    fn entry(&self, path: &str) -> std::io::Result<Option<BaseEntry>> {
        Ok(self.0.entry(path).map(|entry| match entry {
            ImageEntry::File => BaseEntry::File,
            ImageEntry::Directory => BaseEntry::Directory,
            ImageEntry::Symlink(target) => BaseEntry::Symlink {
                target: target.clone(),
            },
            ImageEntry::Other => BaseEntry::Other,
        }))
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        Ok(self.0.list(path))
    }

    fn read(&self, path: &str, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .content(path)
            .filter(|content| content.len() as u64 <= limit)
            .map(<[u8]>::to_vec))
    }
}

/// The version of what [`facts_record`] writes; a record of another version is not read (and
/// its tag differs), so changing what is learnt about a base only costs one read of its layers.
const BASE_FACTS_FORMAT: &str = "dagster-deploy/base-python/1";

/// The tag of the base-facts record of the base whose manifest digest is `base_digest`, when
/// the environment goes in `venv_dir`: `pybase-` and 64 hex digits, within the tag grammar.
fn base_facts_tag(base_digest: &str, venv_dir: &str) -> String {
    let digest =
        sha256_digest(format!("{BASE_FACTS_FORMAT}\n{base_digest}\n{venv_dir}").as_bytes());
    format!("pybase-{}", digest.trim_start_matches("sha256:"))
}

/// What was learnt about the base whose manifest digest is `base_digest` (whose environment
/// directory `venv_dir` was free), as kept in the cache directory and in the base-facts record.
fn facts_record(base_digest: &str, target: &TargetPython, venv_dir: &str) -> Value {
    let (libc, glibc) = match target.libc {
        Libc::Musl => ("musl", None),
        Libc::Glibc { major, minor } => ("glibc", Some([major, minor])),
    };
    json!({
        "format": BASE_FACTS_FORMAT,
        "base": base_digest,
        "interpreter": target.interpreter,
        "version": [target.version.major, target.version.minor, target.version.patch],
        "architecture": match target.architecture {
            Architecture::X86_64 => "x86_64",
            Architecture::Aarch64 => "aarch64",
        },
        "libc": libc,
        "glibc": glibc,
        "venv_free": venv_dir,
    })
}

/// Reads a [`facts_record`], if it is of this format, for this base and for the same
/// environment directory.
fn read_facts(record: &Value, base_digest: &str, venv_dir: &str) -> Option<TargetPython> {
    if record["format"].as_str()? != BASE_FACTS_FORMAT
        || record["base"].as_str()? != base_digest
        || record["venv_free"].as_str()? != venv_dir
    {
        return None;
    }
    let number = |value: &Value| value.as_u64().and_then(|number| u32::try_from(number).ok());
    let version = record["version"].as_array()?;
    let libc = match record["libc"].as_str()? {
        "musl" => Libc::Musl,
        "glibc" => Libc::Glibc {
            major: number(&record["glibc"][0])?,
            minor: number(&record["glibc"][1])?,
        },
        _ => return None,
    };
    Some(TargetPython {
        interpreter: record["interpreter"].as_str()?.to_owned(),
        version: PythonVersion {
            major: number(version.first()?)?,
            minor: number(version.get(1)?)?,
            patch: version.get(2).and_then(number),
        },
        architecture: match record["architecture"].as_str()? {
            "x86_64" => Architecture::X86_64,
            "aarch64" => Architecture::Aarch64,
            _ => return None,
        },
        libc,
    })
}

/// Keeps a [`facts_record`] in the cache directory.
fn remember(path: &Path, record: &Value) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // Written aside and renamed, so a reader never sees half a record.
    let partial = path.with_extension(format!("json.{}.partial", std::process::id()));
    std::fs::write(&partial, serde_json::to_vec(record)?)?;
    std::fs::rename(&partial, path)
}

/// The record kept in the cache directory, if there is a readable one.
fn read_remembered(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "sha256:aaaa";

    fn targets() -> [TargetPython; 2] {
        [
            TargetPython {
                interpreter: "/usr/bin/python3.11".into(),
                version: PythonVersion {
                    major: 3,
                    minor: 11,
                    patch: Some(2),
                },
                architecture: Architecture::X86_64,
                libc: Libc::Glibc {
                    major: 2,
                    minor: 36,
                },
            },
            TargetPython {
                interpreter: "/usr/local/bin/python3.12".into(),
                version: PythonVersion {
                    major: 3,
                    minor: 12,
                    patch: None,
                },
                architecture: Architecture::Aarch64,
                libc: Libc::Musl,
            },
        ]
    }

    #[test]
    fn a_remembered_base_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bases/abc.json");
        for target in targets() {
            remember(&path, &facts_record(BASE, &target, "/opt/venv")).unwrap();
            let record = read_remembered(&path).unwrap();
            assert_eq!(read_facts(&record, BASE, "/opt/venv"), Some(target));
            // Another environment directory must be checked against the base again.
            assert_eq!(read_facts(&record, BASE, "/srv/venv"), None);
        }
    }

    #[test]
    fn a_record_of_another_base_format_or_environment_directory_is_not_read() {
        let [target, _] = targets();
        let record = facts_record(BASE, &target, "/opt/venv");
        assert_eq!(read_facts(&record, BASE, "/opt/venv"), Some(target));
        assert_eq!(read_facts(&record, "sha256:bbbb", "/opt/venv"), None);
        let mut other_format = record.clone();
        other_format["format"] = json!("dagster-deploy/base-python/0");
        assert_eq!(read_facts(&other_format, BASE, "/opt/venv"), None);
        let mut no_format = record.clone();
        no_format.as_object_mut().unwrap().remove("format");
        assert_eq!(read_facts(&no_format, BASE, "/opt/venv"), None);
        let mut bad_libc = record;
        bad_libc["libc"] = json!("bionic");
        assert_eq!(read_facts(&bad_libc, BASE, "/opt/venv"), None);
    }

    #[test]
    fn the_base_facts_tag_is_a_valid_tag_that_follows_base_and_environment_directory() {
        let tag = base_facts_tag(BASE, "/opt/venv");
        assert!(tag.starts_with("pybase-") && tag.len() == 71, "{tag}");
        ImageRef::validate_tag(&tag).unwrap();
        assert_eq!(tag, base_facts_tag(BASE, "/opt/venv"));
        assert_ne!(tag, base_facts_tag("sha256:bbbb", "/opt/venv"));
        assert_ne!(tag, base_facts_tag(BASE, "/srv/venv"));
    }
}
