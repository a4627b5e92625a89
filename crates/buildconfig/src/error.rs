//! The crate's one error type, and the [`Diagnostic`]s it carries when a configuration breaks
//! the schema.
//!
//! Errors are data: the message (`Display`) is one plain sentence that names the file and,
//! where the problem sits at a place in the file, the line, the column and the field path; what
//! to do is a separate [`Error::help`]; positions, field paths and location names are
//! accessors. The message never repeats the error's `source()`, and nothing here knows which
//! program shows it: advice about commands, flags or environment variables is the caller's.
//!
//! A file that cannot be read or parsed stops at its first error. A file that parses but breaks
//! the schema is checked to the end, and every problem found is reported together
//! ([`Error::Invalid`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while reading dagster_cloud.yaml or a dg project.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{}: cannot read the file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A configuration path names something that is not a regular file.
    #[error("{}: this is {kind}, not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO (named pipe)".
        kind: &'static str,
    },

    /// A file is larger than the size limit.
    #[error(
        "{}: the file is {size} bytes, more than the limit of {limit} bytes",
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
    #[error("{}:{line}:{column}: the file is not valid UTF-8", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in characters) of the first invalid byte.
        column: usize,
    },

    /// A file is empty or contains only whitespace and comments.
    #[error("{}: the file is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What the file should contain (returned by [`Error::help`]).
        help: &'static str,
    },

    /// A YAML or TOML syntax error, or a document the parser refuses (too deep, too many
    /// aliases): parsing stops here.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser reported.
        message: String,
        /// What to do (returned by [`Error::help`]).
        help: &'static str,
    },

    /// The configuration breaks the schema (unknown keys, wrong types, invalid names or
    /// registries, duplicate names, missing build directories, ...): every problem found, in
    /// file order.
    #[error("{}", describe_invalid(diagnostics, *unlisted))]
    Invalid {
        /// The problems, at least one, each with its file, position, field and help; at most
        /// [`MAX_DIAGNOSTICS`].
        diagnostics: Vec<Diagnostic>,
        /// How many more problems were found beyond [`MAX_DIAGNOSTICS`] (not located or listed).
        unlisted: usize,
    },

    /// No `dg.toml` or `pyproject.toml` with `[tool.dg]` was found.
    #[error(
        "no dg project or workspace found in {} or any parent folder",
        start.display()
    )]
    NoDgConfig {
        /// Where the search started.
        start: PathBuf,
    },
}

/// Most problems listed (and located) in one [`Error::Invalid`]. Locating a problem re-reads
/// the file up to it, so the cap keeps a file with thousands of mistakes from taking thousands
/// of parses; the rest are counted.
pub const MAX_DIAGNOSTICS: usize = 50;

fn describe_invalid(diagnostics: &[Diagnostic], unlisted: usize) -> String {
    let more = diagnostics.len().saturating_sub(1) + unlisted;
    match (diagnostics.first(), more) {
        (Some(first), 0) => first.to_string(),
        (Some(first), 1) => format!("{first} (and 1 more problem)"),
        (Some(first), more) => format!("{first} (and {more} more problems)"),
        (None, _) => "the configuration is invalid".to_owned(),
    }
}

impl Error {
    /// The file the error is about (for [`Error::Invalid`], the file of the first problem;
    /// for [`Error::NoDgConfig`], the folder the search started from).
    pub fn path(&self) -> &Path {
        match self {
            Error::Read { path, .. }
            | Error::NotAFile { path, .. }
            | Error::TooLarge { path, .. }
            | Error::InvalidUtf8 { path, .. }
            | Error::Empty { path, .. }
            | Error::Syntax { path, .. } => path,
            Error::Invalid { diagnostics, .. } => diagnostics
                .first()
                .map_or(Path::new(""), |diagnostic| &diagnostic.path),
            Error::NoDgConfig { start } => start,
        }
    }

    /// What to do about the error, if there is more to say than the message.
    ///
    /// ```
    /// # use std::path::Path;
    /// # use dagster_deploy_buildconfig::DagsterCloudYaml;
    /// let error = DagsterCloudYaml::parse("locations:\n  - location_nam: x\n", Path::new("d.yaml"))
    ///     .unwrap_err();
    /// assert!(error.help().unwrap().starts_with("did you mean `location_name`?"));
    /// ```
    pub fn help(&self) -> Option<&str> {
        match self {
            Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("check the path")
            }
            Error::Read { .. } => Some("check that the file is readable"),
            Error::NotAFile { .. } => Some(
                "point at the configuration file itself (reading a FIFO or a device would wait forever)",
            ),
            Error::TooLarge { .. } => {
                Some("configuration files this large are not supported; split or shrink the file")
            }
            Error::InvalidUtf8 { .. } => Some("save the file with UTF-8 encoding"),
            Error::Empty { help, .. } | Error::Syntax { help, .. } => Some(help),
            Error::Invalid { diagnostics, .. } => diagnostics.first().map(Diagnostic::help),
            Error::NoDgConfig { .. } => Some(
                "a dg project or workspace is a folder with dg.toml, or with pyproject.toml holding a [tool.dg] table",
            ),
        }
    }

    /// Whether a file exists but could not be read (permission denied, an I/O error): a
    /// problem of the machine rather than of the configuration.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() != std::io::ErrorKind::NotFound)
    }

    /// Whether the file (or folder) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// The 1-based line and column the error points at, if it points at a place in a file
    /// (for [`Error::Invalid`], the first problem's).
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            Error::InvalidUtf8 { line, column, .. } | Error::Syntax { line, column, .. } => {
                Some((*line, *column))
            }
            Error::Invalid { diagnostics, .. } => diagnostics
                .first()
                .map(|diagnostic| (diagnostic.line, diagnostic.column)),
            _ => None,
        }
    }

    /// The problems of a configuration that breaks the schema, in file order; empty for the
    /// other errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Invalid { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }

    /// How many problems the error stands for: every problem found for [`Error::Invalid`]
    /// (listed or not), one for the others.
    pub fn problem_count(&self) -> usize {
        match self {
            Error::Invalid {
                diagnostics,
                unlisted,
            } => diagnostics.len() + unlisted,
            _ => 1,
        }
    }
}

/// One problem at a place in a configuration file: where it is, which field, what kind, what is
/// wrong and what to do.
///
/// `Display` renders `file:line:column: field: message`; the help is separate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) field: String,
    pub(crate) kind: DiagnosticKind,
    pub(crate) location: Option<String>,
    pub(crate) message: String,
    pub(crate) help: String,
}

impl Diagnostic {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line of the offending key or value.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column (in characters) of the offending key or value.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The field path, e.g. `locations[2].build.registry` or `tool.dg.project.root_module`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> DiagnosticKind {
        self.kind
    }

    /// The code location (or dg project) the problem belongs to, when it belongs to one.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// What is wrong, without the position (which `Display` adds).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do.
    pub fn help(&self) -> &str {
        &self.help
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// The kinds of schema problems, for callers that branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A key that is not allowed where it is written (the help suggests the nearest one).
    UnknownKey,
    /// A required key is absent (the position is that of the enclosing mapping).
    MissingKey,
    /// A value of the wrong type, e.g. a list where a string belongs.
    WrongType,
    /// A value that must not be empty is (`locations: []`, `directory: ""`).
    EmptyValue,
    /// A location name that cannot be used (empty, too long, a path separator, ...).
    InvalidLocationName,
    /// A registry that is not an OCI repository reference (a tag, a digest, a scheme, ...).
    InvalidRegistry,
    /// A location without a code source, or with more than one.
    CodeSource,
    /// A location name used twice.
    DuplicateLocationName,
    /// A value that cannot be merged with the default (or workspace) value at the same key.
    MergeConflict,
    /// A directory a value names does not exist (a build directory, a workspace project).
    DirectoryNotFound,
    /// A workspace entry that is not a dg project.
    NotAProject,
    /// Any other value the schema does not accept (e.g. an unknown `directory_type`).
    InvalidValue,
}

/// Marks a check whose problem was recorded in [`Problems`]: the caller carries on with the
/// next check, so that one run reports every problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;

/// The result of a check that records its problems instead of returning them.
pub(crate) type Checked<T> = std::result::Result<T, Reported>;

/// The problems found so far in one configuration (one file, or a dg project's files).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    diagnostics: Vec<Diagnostic>,
    unlisted: usize,
}

impl Problems {
    /// Records a problem; `make` builds (and locates) it only while fewer than
    /// [`MAX_DIAGNOSTICS`] are listed.
    pub(crate) fn push(&mut self, make: impl FnOnce() -> Diagnostic) -> Reported {
        if self.diagnostics.len() < MAX_DIAGNOSTICS {
            self.diagnostics.push(make());
        } else {
            self.unlisted += 1;
        }
        Reported
    }

    /// How many problems were recorded: compare before and after a group of checks to know
    /// whether any of them failed.
    pub(crate) fn count(&self) -> usize {
        self.diagnostics.len() + self.unlisted
    }

    /// Attaches `location` to the problems recorded since `count` was [`Problems::count`]
    /// that have none.
    pub(crate) fn name_location(&mut self, count: usize, location: &str) {
        for diagnostic in self.diagnostics.iter_mut().skip(count) {
            diagnostic
                .location
                .get_or_insert_with(|| location.to_owned());
        }
    }

    /// `Ok(())` if nothing was recorded, else an [`Error::Invalid`] with every problem sorted
    /// by file (in the order the files were first named) and position.
    pub(crate) fn finish(self) -> Result<()> {
        let Problems {
            mut diagnostics,
            unlisted,
        } = self;
        if diagnostics.is_empty() && unlisted == 0 {
            return Ok(());
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for diagnostic in &diagnostics {
            if !files.contains(&diagnostic.path) {
                files.push(diagnostic.path.clone());
            }
        }
        diagnostics.sort_by_key(|diagnostic| {
            let file = files.iter().position(|path| *path == diagnostic.path);
            (file, diagnostic.line, diagnostic.column)
        });
        Err(Error::Invalid {
            diagnostics,
            unlisted,
        })
    }
}
