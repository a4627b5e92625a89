//! The crate's error type and `Result` alias. Messages say what failed; [`Error::help`] says
//! what to do about it, without naming any command-line flag (the caller adds those).

use std::path::PathBuf;
use std::time::Duration;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while finding a lock, reading a base image or building a
/// dependency layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A project file (`pyproject.toml`, `uv.lock`) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadProject {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `pyproject.toml` is not valid TOML, or a field has the wrong type.
    #[error("{path}: {message}")]
    Pyproject {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column when known.
        message: String,
    },
    /// The uv program could not be started.
    #[error("cannot run uv ({program}): {source}")]
    UvNotFound {
        /// The program that was run.
        program: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `uv --version` did not print a version.
    #[error("{program} does not look like uv: `--version` printed {output:?}")]
    UvVersion {
        /// The program that was run.
        program: PathBuf,
        /// What it printed.
        output: String,
    },
    /// uv ran longer than the time allowed and was stopped.
    #[error("uv {action} ({program}) did not finish within {} s and was stopped", timeout.as_secs())]
    UvTimedOut {
        /// The program that was run.
        program: PathBuf,
        /// What uv was asked to do, e.g. `export`.
        action: &'static str,
        /// The time allowed.
        timeout: Duration,
    },
    /// uv exited with an error.
    #[error("uv {action} ({program}) failed ({status}):\n{output}")]
    UvFailed {
        /// The program that was run.
        program: PathBuf,
        /// What uv was asked to do, e.g. `export`.
        action: &'static str,
        /// How it exited.
        status: String,
        /// The end of what uv printed on stderr.
        output: String,
    },
    /// uv found no Python interpreter on this machine to run its installer with.
    #[error("uv ({program}) found no Python interpreter on this machine:\n{output}")]
    NoHostInterpreter {
        /// The program that was run.
        program: PathBuf,
        /// The end of what uv printed on stderr.
        output: String,
    },
    /// Some locked packages have no wheel for the image's platform and Python, so they would
    /// have to be built from source.
    #[error(
        "{} no wheel for {platform} and Python {python}, so {} would have to be built from source",
        if packages.is_empty() { "some locked packages have".to_owned() } else { format!("{} {}", list(packages), if packages.len() == 1 { "has" } else { "have" }) },
        if packages.len() == 1 { "it" } else { "they" }
    )]
    NeedsBuild {
        /// The packages uv named (empty when its message named none).
        packages: Vec<String>,
        /// The platform the wheels were chosen for, in uv's naming.
        platform: String,
        /// The Python version the wheels were chosen for.
        python: String,
        /// The end of what uv printed on stderr.
        output: String,
    },
    /// The base image's architecture has no wheels this crate knows how to choose.
    #[error(
        "the base image's architecture `{architecture}` is not supported (amd64 and arm64 are)"
    )]
    UnsupportedArchitecture {
        /// The `architecture` of the image config.
        architecture: String,
    },
    /// The base image has no `python3` on its `PATH`.
    #[error("the base image has no python3 on its PATH ({path_env})")]
    NoInterpreter {
        /// The `PATH` that was searched.
        path_env: String,
    },
    /// The base image's `python3` is not a versioned interpreter such as `python3.12`.
    #[error("the base image's {path} is not a versioned interpreter such as python3.12")]
    UnversionedInterpreter {
        /// The resolved path of `python3` in the image.
        path: String,
    },
    /// The base image already holds the directory the environment would go to.
    #[error("the base image already has {path}")]
    VenvDirTaken {
        /// The directory, absolute.
        path: String,
    },
    /// The directory for the environment is not an absolute, normal path.
    #[error("invalid environment directory `{dir}`: expected an absolute path such as /opt/venv")]
    InvalidVenvDir {
        /// The value given.
        dir: String,
    },
    /// A file of the base image could not be read.
    #[error("cannot read {path} in the base image: {source}")]
    ReadBase {
        /// The path in the image.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// What uv installed could not be read.
    #[error("cannot read {path} installed by uv: {source}")]
    ReadInstalled {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// uv installed a path that is not valid UTF-8, which a layer entry cannot name portably.
    #[error("uv installed a file whose name is not valid UTF-8: {path:?}")]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
    /// uv installed a socket, FIFO or device, which a layer cannot carry.
    #[error("uv installed {path}, which is not a regular file, directory or symlink")]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// The layer could not be written.
    #[error("cannot write the dependency layer in {path}: {source}")]
    WriteLayer {
        /// The directory written to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The layer cache could not be read or written.
    #[error("cannot use the dependency layer cache at {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// What to do about the error, when there is more to say than the message.
    pub fn help(&self) -> Option<String> {
        let text = match self {
            Error::UvNotFound { .. } | Error::UvVersion { .. } => {
                "install uv (for example `pip install uv`, or from your package manager) and point to its program".to_owned()
            }
            Error::UvTimedOut { .. } => {
                "uv may be waiting on a slow package index; allow it more time or check the index's reachability".to_owned()
            }
            Error::NoHostInterpreter { .. } => {
                "uv runs its installer with any Python 3 of the machine that builds (the packages are still chosen for the image): install python3 there, or let uv download one".to_owned()
            }
            Error::NeedsBuild { .. } => {
                "building packages from source needs a compiler and the image's own headers, which only a build inside the image has: build the image with Docker, or pin versions that ship wheels for this platform".to_owned()
            }
            Error::UnsupportedArchitecture { .. } => {
                "build the image for linux/amd64 or linux/arm64, or build it with Docker".to_owned()
            }
            Error::NoInterpreter { .. } | Error::UnversionedInterpreter { .. } => {
                "use a Python base image, such as python:3.12-slim or a Debian image with python3".to_owned()
            }
            Error::VenvDirTaken { .. } => {
                "use a plain Python base image (one without the dependencies), or choose another directory for the environment".to_owned()
            }
            Error::Pyproject { .. } => "fix the file; uv reads it too".to_owned(),
            Error::UnsupportedFileType { .. } | Error::NonUtf8Path { .. } => {
                "build the image with Docker, which copies such files as they are".to_owned()
            }
            Error::ReadProject { .. }
            | Error::UvFailed { .. }
            | Error::InvalidVenvDir { .. }
            | Error::ReadBase { .. }
            | Error::ReadInstalled { .. }
            | Error::WriteLayer { .. }
            | Error::Cache { .. } => return None,
        };
        Some(text)
    }
}

/// `a`, `a and b`, `a, b and c`, each in backticks.
fn list(packages: &[String]) -> String {
    let quoted: Vec<String> = packages.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}
