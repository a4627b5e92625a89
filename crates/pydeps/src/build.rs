//! Building a dependency layer, or reusing the one already built for the same key.
//!
//! Steps: `uv export` gives the pinned requirements (milliseconds, offline); their key
//! ([`LayerKey`]) names the layer in the local [`LayerCache`]; on a hit the cached blob is
//! returned without running the install; on a miss uv installs the wheels into a staging
//! directory in the cache, `venv.rs` plans the environment, `layer.rs` writes the layer, and
//! the blob and its metadata are stored under the key (metadata last, through a rename, so an
//! interrupted build never leaves an entry that looks complete).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::LayerKey;
use crate::layer::write_layer;
use crate::lock::LockedProject;
use crate::target::{BaseEntry, BaseFiles, TargetPython, is_normal_absolute};
use crate::uv::Uv;
use crate::venv::plan_venv;

/// Where the environment goes in the image unless the caller says otherwise. Outside the code
/// directory (`/app`), so a project's own `.venv` in the code layer can never mix with it, and
/// a change of working directory does not change the layer.
pub const DEFAULT_VENV_DIR: &str = "/opt/venv";

/// What to build.
#[derive(Debug, Clone)]
pub struct DepsRequest<'a> {
    /// The project and its lock.
    pub project: &'a LockedProject,
    /// The base image's Python.
    pub target: &'a TargetPython,
    /// The environment's absolute directory in the image ([`DEFAULT_VENV_DIR`]).
    pub venv_dir: String,
    /// The files' mtime (`SOURCE_DATE_EPOCH`); `None` means the epoch.
    pub source_date_epoch: Option<u64>,
}

impl<'a> DepsRequest<'a> {
    /// A request with the default directory and epoch mtimes.
    pub fn new(project: &'a LockedProject, target: &'a TargetPython) -> Self {
        Self {
            project,
            target,
            venv_dir: DEFAULT_VENV_DIR.to_owned(),
            source_date_epoch: None,
        }
    }
}

/// What the image's config needs for the environment to be the one its processes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEnv {
    /// Variables to set, replacing the base's (`VIRTUAL_ENV`).
    pub set: Vec<(String, String)>,
    /// Path lists to put in front of the base's value with `:` (`PATH`).
    pub prepend: Vec<(String, String)>,
}

/// A dependency layer on disk, ready to push before the code layer.
#[derive(Debug, Clone)]
pub struct DepsLayer {
    /// The content key.
    pub key: LayerKey,
    /// The gzipped tar, in the cache.
    pub blob: PathBuf,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Number of tar entries.
    pub entries: usize,
    /// Number of packages installed.
    pub packages: usize,
    /// Whether the layer came from the cache (no install ran).
    pub reused: bool,
    /// The image environment the layer needs.
    pub env: ImageEnv,
    /// A line for the image history's `created_by`.
    pub created_by: String,
}

/// What [`build_deps_layer`] is doing, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The lock was exported: this many packages, this key.
    Exported {
        /// Packages pinned for the project.
        packages: usize,
        /// The layer's key.
        key: LayerKey,
    },
    /// The cache held the layer; nothing is installed.
    Reused {
        /// The layer's digest.
        digest: String,
    },
    /// uv is installing the packages.
    Installing {
        /// Packages to install.
        packages: usize,
        /// uv's platform name, e.g. `x86_64-manylinux_2_36`.
        platform: String,
        /// The Python version, e.g. `3.11.2`.
        python: String,
    },
    /// uv finished installing.
    Installed {
        /// How long the install took.
        elapsed: Duration,
    },
    /// The layer was written and stored in the cache.
    Written {
        /// The layer's digest.
        digest: String,
        /// Its compressed size.
        size: u64,
    },
}

/// Built dependency layers on disk, by key. Entries are never changed once written; removing
/// the directory (or any entry) is always safe.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

/// The metadata stored next to a cached blob.
#[derive(Serialize, Deserialize)]
struct CachedLayer {
    digest: String,
    diff_id: String,
    size: u64,
    entries: usize,
    packages: usize,
}

impl LayerCache {
    /// A cache in `dir`, created when first written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn blob_path(&self, key: &LayerKey) -> PathBuf {
        self.dir.join(format!("{key}.tar.gz"))
    }

    fn metadata_path(&self, key: &LayerKey) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached entry for `key`, if complete.
    fn get(&self, key: &LayerKey) -> Option<CachedLayer> {
        let text = std::fs::read(self.metadata_path(key)).ok()?;
        let cached: CachedLayer = serde_json::from_slice(&text).ok()?;
        let blob_size = std::fs::metadata(self.blob_path(key)).ok()?.len();
        (blob_size == cached.size).then_some(cached)
    }

    fn cache_error(&self, path: &Path) -> impl Fn(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Cache {
            path: path.clone(),
            source,
        }
    }
}

/// Checks that the base image does not already hold `venv_dir`: the layer would mix its
/// files with another environment's.
pub fn check_venv_dir(files: &dyn BaseFiles, venv_dir: &str) -> Result<()> {
    if !is_normal_absolute(venv_dir) {
        return Err(Error::InvalidVenvDir {
            dir: venv_dir.to_owned(),
        });
    }
    let existing = files.entry(venv_dir).map_err(|source| Error::ReadBase {
        path: venv_dir.to_owned(),
        source,
    })?;
    match existing {
        None => Ok(()),
        Some(BaseEntry::Directory) if files.list(venv_dir).is_ok_and(|names| names.is_empty()) => {
            Ok(())
        }
        Some(_) => Err(Error::VenvDirTaken {
            path: venv_dir.to_owned(),
        }),
    }
}

/// The key of the layer [`build_deps_layer`] would build for `request`, without installing
/// anything (it runs `uv export`, which is offline and takes milliseconds): a caller can look
/// the layer up elsewhere (a registry, under [`LayerKey::tag`]) before building it.
pub fn deps_layer_key(uv: &Uv, request: &DepsRequest<'_>) -> Result<LayerKey> {
    export(uv, request).map(|(_, key)| key)
}

/// The exported requirements of `request` and the layer's key.
fn export(uv: &Uv, request: &DepsRequest<'_>) -> Result<(String, LayerKey)> {
    if !is_normal_absolute(&request.venv_dir) {
        return Err(Error::InvalidVenvDir {
            dir: request.venv_dir.clone(),
        });
    }
    let venv_dir = request.venv_dir.trim_end_matches('/');
    let mtime = request.source_date_epoch.unwrap_or(0);
    let requirements = uv.export(request.project)?;
    let key = LayerKey::new(&requirements, request.target, venv_dir, mtime, uv.version());
    Ok((requirements, key))
}

/// Builds the dependency layer for `request`, or returns the cached one with the same key.
pub fn build_deps_layer(
    uv: &Uv,
    request: &DepsRequest<'_>,
    cache: &LayerCache,
    progress: &mut dyn FnMut(Progress),
) -> Result<DepsLayer> {
    let (requirements, key) = export(uv, request)?;
    let venv_dir = request.venv_dir.trim_end_matches('/');
    let mtime = request.source_date_epoch.unwrap_or(0);
    let packages = count_packages(&requirements);
    progress(Progress::Exported {
        packages,
        key: key.clone(),
    });
    let env = ImageEnv {
        set: vec![("VIRTUAL_ENV".to_owned(), venv_dir.to_owned())],
        prepend: vec![("PATH".to_owned(), format!("{venv_dir}/bin"))],
    };
    let platform = request.target.uv_platform();
    let python = request.target.version.to_string();
    let created_by = format!(
        "uv {} pip install --target {venv_dir} --python-platform {platform} --python-version {python} --no-build ({packages} packages from {})",
        uv.version(),
        request
            .project
            .lock_path
            .strip_prefix(&request.project.root_dir)
            .unwrap_or(&request.project.lock_path)
            .display()
    );
    let layer = |cached: CachedLayer, reused: bool| DepsLayer {
        key: key.clone(),
        blob: cache.blob_path(&key),
        digest: cached.digest,
        diff_id: cached.diff_id,
        size: cached.size,
        entries: cached.entries,
        packages: cached.packages,
        reused,
        env: env.clone(),
        created_by: created_by.clone(),
    };
    if let Some(cached) = cache.get(&key) {
        progress(Progress::Reused {
            digest: cached.digest.clone(),
        });
        return Ok(layer(cached, true));
    }

    std::fs::create_dir_all(&cache.dir).map_err(cache.cache_error(&cache.dir))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&cache.dir)
        .map_err(cache.cache_error(&cache.dir))?;
    let requirements_path = staging.path().join("requirements.txt");
    std::fs::write(&requirements_path, &requirements)
        .map_err(cache.cache_error(&requirements_path))?;
    let installed = staging.path().join("installed");
    std::fs::create_dir_all(&installed).map_err(cache.cache_error(&installed))?;
    // uv refuses an empty requirements file; a project without dependencies still gets an
    // (empty) environment, so that the image is the same shape either way.
    if packages > 0 {
        progress(Progress::Installing {
            packages,
            platform,
            python,
        });
        let started = Instant::now();
        uv.install(
            &requirements_path,
            &installed,
            request.target,
            &request.project.project_dir,
        )?;
        progress(Progress::Installed {
            elapsed: started.elapsed(),
        });
    }
    let entries = plan_venv(&installed, venv_dir, request.target)?;
    let blob = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(&cache.dir)
        .map_err(cache.cache_error(&cache.dir))?;
    let written =
        write_layer(&entries, mtime, blob.as_file()).map_err(|source| Error::WriteLayer {
            path: cache.dir.clone(),
            source,
        })?;
    let blob_path = cache.blob_path(&key);
    blob.persist(&blob_path)
        .map_err(|error| cache.cache_error(&blob_path)(error.error))?;
    let cached = CachedLayer {
        digest: written.digest,
        diff_id: written.diff_id,
        size: written.size,
        entries: written.entries,
        packages,
    };
    let metadata_path = cache.metadata_path(&key);
    let mut metadata = tempfile::Builder::new()
        .prefix(".metadata-")
        .tempfile_in(&cache.dir)
        .map_err(cache.cache_error(&cache.dir))?;
    let json = serde_json::to_vec(&cached).expect("plain data serialises");
    metadata
        .write_all(&json)
        .and_then(|()| metadata.as_file().sync_all())
        .map_err(cache.cache_error(&metadata_path))?;
    metadata
        .persist(&metadata_path)
        .map_err(|error| cache.cache_error(&metadata_path)(error.error))?;
    progress(Progress::Written {
        digest: cached.digest.clone(),
        size: cached.size,
    });
    Ok(layer(cached, false))
}

/// Requirement lines of an exported `requirements.txt`: continuation lines (hashes) are
/// indented, and comments and global options (`--index-url`) are not requirements.
fn count_packages(requirements: &str) -> usize {
    requirements
        .lines()
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with(char::is_whitespace)
                && !line.starts_with('#')
                && !line.starts_with("--")
        })
        .count()
}

#[cfg(test)]
mod tests;
