//! The crate's one error type. Every variant names the file and, where the problem sits at a
//! place in the file, the line, the column and the field path, plus a hint on how to fix it.
//! Rendering (`Display`) is the only formatting done in this crate.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while reading dagster_cloud.yaml or a dg project.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error(
        "error: {}: cannot read the file: {source}\n  help: check that the path exists and is readable",
        path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A configuration path names something that is not a regular file.
    #[error(
        "error: {}: this is {kind}, not a regular file\n  help: point at the configuration file itself (reading a FIFO or a device would wait forever)",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO (named pipe)".
        kind: &'static str,
    },

    /// A file is larger than the size limit.
    #[error(
        "error: {}: the file is {size} bytes, more than the limit of {limit} bytes\n  help: configuration files this large are not supported; split or shrink the file",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// A file is not valid UTF-8.
    #[error(
        "error: {}:{line}:{column}: the file is not valid UTF-8\n  help: save the file with UTF-8 encoding",
        path.display()
    )]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in characters) of the first invalid byte.
        column: usize,
    },

    /// A file is empty or contains only whitespace and comments.
    #[error("error: {}: the file is empty\n  help: {help}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What the file should contain.
        help: &'static str,
    },

    /// A YAML or TOML syntax error, or a document the parser refuses (too deep, too many aliases).
    #[error("error: {}:{line}:{column}: {message}\n  help: {help}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser reported.
        message: String,
        /// What to do.
        help: String,
    },

    /// A value or key breaks the schema (unknown key, wrong type, invalid name or registry, ...).
    #[error("error: {}:{line}:{column}: {field}: {problem}\n  help: {help}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column of the offending key or value.
        column: usize,
        /// Field path, e.g. `locations[2].build.registry`.
        field: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        help: String,
    },

    /// A `build.directory` does not exist or is not a directory.
    #[error(
        "error: {}:{line}:{column}: {field}: build directory `{written}` of location `{location}` not found at {}\n  help: create the directory or fix the path (a relative path is resolved against the folder of {})",
        path.display(), directory.display(), path.display()
    )]
    BuildDirectoryNotFound {
        /// The file that names the directory.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column of the value.
        column: usize,
        /// Field path, e.g. `locations[0].build.directory`.
        field: String,
        /// The location (or dg project) name.
        location: String,
        /// The directory as written.
        written: Box<str>,
        /// The directory after resolution.
        directory: Box<std::path::Path>,
    },

    /// No `dg.toml` or `pyproject.toml` with `[tool.dg]` was found.
    #[error(
        "error: {}: no dg project or workspace found here or in any parent folder\n  help: run the command inside a dg project or workspace (a folder with dg.toml, or pyproject.toml with a [tool.dg] table), or point the target path at one",
        start.display()
    )]
    NoDgConfig {
        /// Where the search started.
        start: PathBuf,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Read { path, .. }
            | Error::NotAFile { path, .. }
            | Error::TooLarge { path, .. }
            | Error::InvalidUtf8 { path, .. }
            | Error::Empty { path, .. }
            | Error::Syntax { path, .. }
            | Error::Invalid { path, .. }
            | Error::BuildDirectoryNotFound { path, .. } => path,
            Error::NoDgConfig { start } => start,
        }
    }

    /// Whether a file exists but could not be read (permission denied, an I/O error): a
    /// problem of the machine rather than of the configuration.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() != std::io::ErrorKind::NotFound)
    }

    /// The 1-based line and column the error points at, if it points at a place in a file.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            Error::InvalidUtf8 { line, column, .. }
            | Error::Syntax { line, column, .. }
            | Error::Invalid { line, column, .. }
            | Error::BuildDirectoryNotFound { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}
