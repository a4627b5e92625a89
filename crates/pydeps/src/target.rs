//! The Python a base image runs: its interpreter, version and platform, read from the image's
//! config and files, never by running it.
//!
//! * The interpreter is the `python3` first found on the image's `PATH`, followed through
//!   symlinks (`/bin` → `usr/bin` on merged-/usr systems included) to a versioned name such as
//!   `python3.11`, which gives the minor version.
//! * The full version comes from `PYTHON_VERSION` in the image's environment (the official
//!   `python` images set it), else from the Debian package `python3.N-minimal` in the dpkg
//!   database (`/var/lib/dpkg/status`, or `status.d/` in distroless images), else from the
//!   Alpine package `python3`; without any of them only `3.N` is known.
//! * The platform: the architecture from the image config, and the C library: glibc with the
//!   version of the `libc6` package (the manylinux tag), musl where the musl loader or Alpine's
//!   package database is present, else glibc 2.17 (manylinux2014), the most widely compatible.
//!
//! How the files are read is the caller's: [`BaseFiles`] is implemented here for an unpacked
//! root file system ([`UnpackedRoot`]), and a registry client can implement it over the base
//! layers' tar entries ([`FILES_READ`] lists the only files whose content is needed).

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The files whose content [`TargetPython::detect`] may read (all other checks need only the
/// entries' kinds and symlink targets). `status.d` is a directory of per-package files.
pub const FILES_READ: &[&str] = &[
    "/var/lib/dpkg/status",
    "/var/lib/dpkg/status.d/",
    "/lib/apk/db/installed",
];

/// The `PATH` a container gets when the image sets none (the Docker and containerd default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Symlink hops followed before giving up (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;
/// The largest package database read.
const MAX_DATABASE_SIZE: u64 = 64 * 1024 * 1024;
/// glibc minor versions with a manylinux tag the pinned uv accepts (2.17 is manylinux2014),
/// highest first; a newer glibc uses the highest.
const MANYLINUX_MINORS: &[u32] = &[40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 28, 17];

/// One entry of the base image's file system, as its layers leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseEntry {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link with its target, as stored (absolute or relative).
    Symlink {
        /// The link's target.
        target: String,
    },
    /// A device, FIFO or socket.
    Other,
}

/// Read access to the base image's merged file system. Paths are absolute, `/`-separated,
/// without `.` or `..`; no method follows a symlink in the last component.
pub trait BaseFiles {
    /// The entry at `path`, or `None` when the image has none (symlinks in parent
    /// directories are resolved by the caller of this trait, not by the implementation).
    fn entry(&self, path: &str) -> std::io::Result<Option<BaseEntry>>;
    /// The names in the directory at `path`; empty when it does not exist.
    fn list(&self, path: &str) -> std::io::Result<Vec<String>>;
    /// The content of the regular file at `path`, or `None` when there is none or it is
    /// larger than `limit` bytes.
    fn read(&self, path: &str, limit: u64) -> std::io::Result<Option<Vec<u8>>>;
}

/// A base image unpacked into a directory (for example by `umoci unpack`).
#[derive(Debug, Clone)]
pub struct UnpackedRoot {
    root: PathBuf,
}

impl UnpackedRoot {
    /// The root file system in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl BaseFiles for UnpackedRoot {
    fn entry(&self, path: &str) -> std::io::Result<Option<BaseEntry>> {
        let host_path = self.host_path(path);
        let metadata = match std::fs::symlink_metadata(&host_path) {
            Ok(metadata) => metadata,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(error),
        };
        let file_type = metadata.file_type();
        Ok(Some(if file_type.is_symlink() {
            let target = std::fs::read_link(&host_path)?;
            BaseEntry::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else if file_type.is_dir() {
            BaseEntry::Directory
        } else if file_type.is_file() {
            BaseEntry::File
        } else {
            BaseEntry::Other
        }))
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let host_path = self.host_path(path);
        if !std::fs::symlink_metadata(&host_path).is_ok_and(|metadata| metadata.is_dir()) {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(host_path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &str, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        let host_path = self.host_path(path);
        match std::fs::symlink_metadata(&host_path) {
            Ok(metadata) if metadata.is_file() && metadata.len() <= limit => {
                std::fs::read(host_path).map(Some)
            }
            Ok(_) => Ok(None),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

fn is_missing(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// What the image config says about the base, besides its files.
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    /// The config's `architecture`, e.g. `amd64` or `arm64`.
    pub architecture: String,
    /// The config's `Env`, as `NAME=value` strings.
    pub env: Vec<String>,
}

/// A CPU architecture wheels are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// x86-64 (`amd64` in image configs).
    X86_64,
    /// 64-bit ARM (`arm64` in image configs).
    Aarch64,
}

/// The C library of the image, which decides which Linux wheels run there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Libc {
    /// glibc of this `major.minor` version (or 2.17 when it could not be read).
    Glibc {
        /// Major version (2).
        major: u32,
        /// Minor version, e.g. 36 on Debian bookworm.
        minor: u32,
    },
    /// musl (Alpine).
    Musl,
}

/// A Python version; `patch` is `None` when the image does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PythonVersion {
    /// Major version (3).
    pub major: u32,
    /// Minor version, e.g. 12.
    pub minor: u32,
    /// Patch version, e.g. 7, when known.
    pub patch: Option<u32>,
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(formatter, ".{patch}")?;
        }
        Ok(())
    }
}

/// The Python of a base image: everything a dependency layer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetPython {
    /// The interpreter's absolute path in the image, e.g. `/usr/bin/python3.11`.
    pub interpreter: String,
    /// Its version.
    pub version: PythonVersion,
    /// The CPU architecture.
    pub architecture: Architecture,
    /// The C library.
    pub libc: Libc,
}

impl TargetPython {
    /// Reads the interpreter, version and platform of a base image; see the module
    /// documentation for where each comes from.
    pub fn detect(files: &dyn BaseFiles, facts: &ImageFacts) -> Result<Self> {
        let architecture = match facts.architecture.as_str() {
            "amd64" | "x86_64" => Architecture::X86_64,
            "arm64" | "aarch64" => Architecture::Aarch64,
            other => {
                return Err(Error::UnsupportedArchitecture {
                    architecture: other.to_owned(),
                });
            }
        };
        let path_env = env_value(&facts.env, "PATH").unwrap_or(DEFAULT_PATH);
        let (interpreter, major, minor) = find_interpreter(files, path_env)?;
        let packages = PackageDatabase::read(files)?;
        let full_version = env_value(&facts.env, "PYTHON_VERSION")
            .map(str::to_owned)
            .or_else(|| packages.version(&format!("python{major}.{minor}-minimal")))
            .or_else(|| packages.version(&format!("python{major}")));
        let patch = full_version.and_then(|version| {
            let mut parts = version.split(['.', '-', '+', '~']);
            let same_minor = parts.next() == Some(&major.to_string())
                && parts.next() == Some(&minor.to_string());
            same_minor
                .then(|| parts.next().and_then(leading_number))
                .flatten()
        });
        let libc = if let Some(version) = packages.version("libc6") {
            let mut parts = version.split(['.', '-', '+', '~']);
            match (
                parts.next().and_then(leading_number),
                parts.next().and_then(leading_number),
            ) {
                (Some(major), Some(minor)) => Libc::Glibc { major, minor },
                _ => Libc::Glibc {
                    major: 2,
                    minor: 17,
                },
            }
        } else if packages.is_alpine || has_musl_loader(files, architecture)? {
            Libc::Musl
        } else {
            Libc::Glibc {
                major: 2,
                minor: 17,
            }
        };
        Ok(Self {
            interpreter,
            version: PythonVersion {
                major,
                minor,
                patch,
            },
            architecture,
            libc,
        })
    }

    /// The platform in uv's `--python-platform` naming, e.g. `x86_64-manylinux_2_36`.
    pub fn uv_platform(&self) -> String {
        let arch = match self.architecture {
            Architecture::X86_64 => "x86_64",
            Architecture::Aarch64 => "aarch64",
        };
        match self.libc {
            Libc::Musl => format!("{arch}-unknown-linux-musl"),
            Libc::Glibc { major, minor } => {
                let minor = if major > 2 {
                    MANYLINUX_MINORS[0]
                } else {
                    MANYLINUX_MINORS
                        .iter()
                        .copied()
                        .find(|known| *known <= minor)
                        .unwrap_or(17)
                };
                if minor == 17 {
                    format!("{arch}-manylinux2014")
                } else {
                    format!("{arch}-manylinux_2_{minor}")
                }
            }
        }
    }

    /// The `site-packages` directory below an environment's root, e.g.
    /// `lib/python3.11/site-packages`.
    pub fn site_packages(&self) -> String {
        format!(
            "lib/python{}.{}/site-packages",
            self.version.major, self.version.minor
        )
    }
}

/// The value of `name` in `NAME=value` strings (the last one wins, as in a container).
fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
}

fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The first `python3` on `path_env`, as a versioned interpreter path and its version.
fn find_interpreter(files: &dyn BaseFiles, path_env: &str) -> Result<(String, u32, u32)> {
    for directory in path_env.split(':').filter(|dir| dir.starts_with('/')) {
        let candidate = format!("{}/python3", directory.trim_end_matches('/'));
        let Some(resolved) = resolve(files, &candidate)? else {
            continue;
        };
        if !matches!(read_entry(files, &resolved)?, Some(BaseEntry::File)) {
            continue;
        }
        let name = resolved.rsplit('/').next().unwrap_or_default();
        if let Some((major, minor)) = versioned_name(name) {
            return Ok((resolved, major, minor));
        }
        // `python3` is the file itself: look for the versioned name that resolves to it.
        let parent = resolved.rsplit_once('/').map_or("/", |(parent, _)| parent);
        for sibling in files.list(parent).map_err(|source| Error::ReadBase {
            path: parent.to_owned(),
            source,
        })? {
            let Some((major, minor)) = versioned_name(&sibling) else {
                continue;
            };
            let sibling_path = format!("{parent}/{sibling}");
            if resolve(files, &sibling_path)?.as_deref() == Some(resolved.as_str()) {
                return Ok((sibling_path, major, minor));
            }
        }
        return Err(Error::UnversionedInterpreter { path: resolved });
    }
    Err(Error::NoInterpreter {
        path_env: path_env.to_owned(),
    })
}

/// `(3, 11)` for `python3.11`.
fn versioned_name(name: &str) -> Option<(u32, u32)> {
    let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn read_entry(files: &dyn BaseFiles, path: &str) -> Result<Option<BaseEntry>> {
    files.entry(path).map_err(|source| Error::ReadBase {
        path: path.to_owned(),
        source,
    })
}

/// Follows symlinks in every component of `path` inside the image; `None` when a component
/// is missing or the links loop.
fn resolve(files: &dyn BaseFiles, path: &str) -> Result<Option<String>> {
    let mut pending: Vec<String> = path
        .split('/')
        .rev()
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let current = if resolved.is_empty() {
            format!("/{part}")
        } else {
            format!("/{}/{part}", resolved.join("/"))
        };
        match read_entry(files, &current)? {
            None => return Ok(None),
            Some(BaseEntry::Symlink { target }) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Ok(None);
                }
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .rev()
                        .filter(|part| !part.is_empty())
                        .map(str::to_owned),
                );
            }
            Some(_) => resolved.push(part),
        }
    }
    Ok(Some(format!("/{}", resolved.join("/"))))
}

/// Whether the musl dynamic loader of `architecture` is present.
fn has_musl_loader(files: &dyn BaseFiles, architecture: Architecture) -> Result<bool> {
    let name = match architecture {
        Architecture::X86_64 => "/lib/ld-musl-x86_64.so.1",
        Architecture::Aarch64 => "/lib/ld-musl-aarch64.so.1",
    };
    Ok(resolve(files, name)?.is_some())
}

/// Installed package versions from the dpkg or apk database.
#[derive(Default)]
struct PackageDatabase {
    /// `(name, version)` of installed packages.
    packages: Vec<(String, String)>,
    is_alpine: bool,
}

impl PackageDatabase {
    fn read(files: &dyn BaseFiles) -> Result<Self> {
        let mut database = Self::default();
        let read = |path: &str| -> Result<Option<String>> {
            let Some(resolved) = resolve(files, path)? else {
                return Ok(None);
            };
            let bytes =
                files
                    .read(&resolved, MAX_DATABASE_SIZE)
                    .map_err(|source| Error::ReadBase {
                        path: path.to_owned(),
                        source,
                    })?;
            Ok(bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        };
        if let Some(text) = read("/var/lib/dpkg/status")? {
            database.add_dpkg(&text);
        }
        let status_dir = "/var/lib/dpkg/status.d";
        if let Some(resolved) = resolve(files, status_dir)? {
            let names = files.list(&resolved).map_err(|source| Error::ReadBase {
                path: status_dir.to_owned(),
                source,
            })?;
            for name in names {
                if let Some(text) = read(&format!("{status_dir}/{name}"))? {
                    database.add_dpkg(&text);
                }
            }
        }
        if let Some(text) = read("/lib/apk/db/installed")? {
            database.is_alpine = true;
            database.add_apk(&text);
        }
        Ok(database)
    }

    /// Paragraphs of `Field: value` lines; only installed packages count (distroless files
    /// have no `Status`).
    fn add_dpkg(&mut self, text: &str) {
        for paragraph in text.split("\n\n") {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let installed = field("Status").is_none_or(|status| status.ends_with(" installed"));
            if let (Some(name), Some(version), true) =
                (field("Package"), field("Version"), installed)
            {
                // `libc6:amd64` in multi-arch databases.
                let name = name.split(':').next().unwrap_or(name);
                self.packages.push((name.to_owned(), version.to_owned()));
            }
        }
    }

    /// Alpine's `P:name` / `V:version` records.
    fn add_apk(&mut self, text: &str) {
        for record in text.split("\n\n") {
            let field = |prefix: &str| record.lines().find_map(|line| line.strip_prefix(prefix));
            if let (Some(name), Some(version)) = (field("P:"), field("V:")) {
                self.packages.push((name.to_owned(), version.to_owned()));
            }
        }
    }

    /// The version of `name`, with a Debian epoch (`1:`) removed.
    fn version(&self, name: &str) -> Option<String> {
        let (_, version) = self.packages.iter().find(|(package, _)| package == name)?;
        let version = version
            .split_once(':')
            .map_or(version.as_str(), |(_, rest)| rest);
        Some(version.to_owned())
    }
}

/// Whether `path` is absolute and names a directory below `/` without `.`, `..` or empty
/// segments (a trailing `/` is allowed).
pub(crate) fn is_normal_absolute(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !rest.is_empty()
        && rest
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

#[cfg(test)]
mod tests;
