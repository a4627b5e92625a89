//! The one error type of this crate.
//!
//! Errors are data: the message (`Display`) says what failed and names the file or directory
//! and, where one is involved, the location; it never repeats the error's `source()`. What to
//! do is a separate [`Error::help`], worded for any program that embeds the crate: advice that
//! names a command, a flag or an environment variable is its caller's to add.

use std::path::{Path, PathBuf};

/// Result alias used throughout this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing a deploy session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What we were doing, e.g. "read state file".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The directory does not exist or holds no location state files.
    #[error(
        "no deploy session in {}: it holds no location-<name>.json file",
        dir.display()
    )]
    NoSession {
        /// The state directory.
        dir: PathBuf,
    },

    /// A location state file is not valid JSON or does not follow the schema.
    #[error(
        "state file {} is damaged or was not written by a compatible tool ({detail})",
        path.display()
    )]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it, with line and column when known.
        detail: String,
    },

    /// A file of the session uses a newer schema than this version reads: it is not damaged,
    /// and it is left as it is.
    #[error(
        "{} was written by a newer version of the tools ({detail}); this version cannot read it and leaves it untouched",
        path.display()
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// What is newer: the unknown key, value or format version.
        detail: String,
    },

    /// The journal of an interrupted change cannot be read.
    #[error(
        "the journal of an interrupted change, {}, cannot be read ({detail}); no file was changed",
        path.display()
    )]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// A file of the session is not a regular file (a FIFO, a device, a directory).
    #[error(
        "{} is {kind}, not a regular file; refusing to read it (reading a FIFO would wait forever)",
        path.display()
    )]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },

    /// A file of the session is larger than this version reads (or, for the journal, writes).
    #[error(
        "{} is (or would be) larger than {limit} bytes, the most this version handles for it; nothing was changed",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },

    /// Creating a session would clear a directory that holds files that are not part of a
    /// session.
    #[error(
        "refusing to clear {}: it holds entries that are not deploy session files: {}",
        dir.display(),
        entries.join(", ")
    )]
    ForeignEntries {
        /// The state directory.
        dir: PathBuf,
        /// The unexpected entry names, sorted.
        entries: Vec<String>,
    },

    /// A location name cannot be used as (part of) a file name.
    #[error("invalid location name {name:?}: {reason}")]
    InvalidLocationName {
        /// The rejected name.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// The same location name was given twice when creating a session.
    #[error("location {name:?} is defined more than once")]
    DuplicateLocation {
        /// The repeated name.
        name: String,
    },

    /// Requested names are not in the session (or are deselected where that matters).
    #[error(
        "unknown or deselected location name(s) requested: {}; the session in {} has: {}",
        requested.join(", "),
        dir.display(),
        describe_known(known)
    )]
    UnknownLocations {
        /// The state directory.
        dir: PathBuf,
        /// The names that did not match.
        requested: Vec<String>,
        /// Every location of the session with its `selected` flag, sorted.
        known: Vec<(String, bool)>,
    },

    /// The caller's image computation failed for one or more locations; nothing was written.
    #[error(
        "cannot record a build output, nothing was changed: {}",
        failures.iter().map(|(location, reason)| format!("location {location}: {reason}")).collect::<Vec<_>>().join("; ")
    )]
    BuildOutput {
        /// `(location, reason)` for each location that failed validation.
        failures: Vec<(String, String)>,
    },

    /// Two copies of a session hold different build outputs for the same location.
    #[error(
        "cannot merge sessions: location {} has image {:?} in {} but {:?} in {}",
        .0.location,
        .0.first,
        .0.first_dir.display(),
        .0.second,
        .0.second_dir.display()
    )]
    MergeConflict(Box<MergeDifference>),

    /// Two copies of a session disagree on where a location is deployed.
    #[error(
        "cannot merge sessions: location {} has {field} {:?} in {} but {:?} in {}",
        difference.location,
        difference.first,
        difference.first_dir.display(),
        difference.second,
        difference.second_dir.display()
    )]
    MergeMismatch {
        /// The field that differs (`url`, `deployment_name`).
        field: &'static str,
        /// Where and how the copies differ.
        difference: Box<MergeDifference>,
    },

    /// Two copies of a session hold different generated `dagster_cloud.yaml` files.
    #[error(
        "cannot merge sessions: the generated dagster_cloud.yaml in {} differs from the one in {}",
        first_dir.display(),
        second_dir.display()
    )]
    GeneratedFileConflict {
        /// The directory of the first generated file.
        first_dir: PathBuf,
        /// The directory of the differing one.
        second_dir: PathBuf,
    },
}

/// Where two copies of a session disagree about one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeDifference {
    /// The location whose copies differ.
    pub location: String,
    /// The directory of the first copy.
    pub first_dir: PathBuf,
    /// The value there.
    pub first: String,
    /// The directory of the disagreeing copy.
    pub second_dir: PathBuf,
    /// The value there.
    pub second: String,
}

fn describe_known(known: &[(String, bool)]) -> String {
    if known.is_empty() {
        return "no locations".to_owned();
    }
    known
        .iter()
        .map(|(name, selected)| {
            if *selected {
                name.clone()
            } else {
                format!("{name} (deselected)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// True when a filesystem operation failed (disk full, permission denied, I/O error), as
    /// opposed to a problem with the session's content.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// True when the directory holds no session (nothing was started there, or it is the wrong
    /// directory).
    pub fn is_no_session(&self) -> bool {
        matches!(self, Error::NoSession { .. })
    }

    /// True when the error is a conflict between session copies (a user decision is needed).
    pub fn is_merge_conflict(&self) -> bool {
        matches!(
            self,
            Error::MergeConflict { .. }
                | Error::MergeMismatch { .. }
                | Error::GeneratedFileConflict { .. }
        )
    }

    /// The file or directory the error is about, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Corrupt { path, .. }
            | Error::NewerFormat { path, .. }
            | Error::Journal { path, .. }
            | Error::NotAFile { path, .. }
            | Error::TooLarge { path, .. } => Some(path),
            Error::NoSession { dir }
            | Error::ForeignEntries { dir, .. }
            | Error::UnknownLocations { dir, .. } => Some(dir),
            Error::GeneratedFileConflict { second_dir, .. } => Some(second_dir),
            Error::MergeConflict(difference) | Error::MergeMismatch { difference, .. } => {
                Some(&difference.second_dir)
            }
            Error::InvalidLocationName { .. }
            | Error::DuplicateLocation { .. }
            | Error::BuildOutput { .. } => None,
        }
    }

    /// The location the error is about, if it is about one.
    pub fn location(&self) -> Option<&str> {
        match self {
            Error::InvalidLocationName { name, .. } | Error::DuplicateLocation { name } => {
                Some(name)
            }
            Error::MergeConflict(difference) | Error::MergeMismatch { difference, .. } => {
                Some(&difference.location)
            }
            Error::BuildOutput { failures } => match failures.as_slice() {
                [(location, _)] => Some(location),
                _ => None,
            },
            _ => None,
        }
    }

    /// What to do about the error, if there is more to say than the message.
    ///
    /// ```
    /// # use dagster_deploy_statedir::Session;
    /// let dir = tempfile::tempdir().unwrap();
    /// let error = Session::open(dir.path()).unwrap_err();
    /// assert!(error.is_no_session());
    /// assert_eq!(
    ///     error.help(),
    ///     Some("start a session in this directory first, or use the directory the session was started in")
    /// );
    /// ```
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            Error::Io { .. } => {
                "check the free disk space and the permissions; a change the command had started is completed by the next one that opens the session"
            }
            Error::NoSession { .. } => {
                "start a session in this directory first, or use the directory the session was started in"
            }
            Error::Corrupt { .. } => "start a new session",
            Error::NewerFormat { .. } => {
                "run every step of a session with the same (or a newer) version of the tool that wrote it"
            }
            Error::Journal { .. } => {
                "inspect it (it lists each file's intended content), then move it out of the state directory, or start a new session"
            }
            Error::NotAFile { .. } => "replace it with the state file, or start a new session",
            Error::TooLarge { .. } => {
                "a state file this large is not part of a deploy session: start a new session"
            }
            Error::ForeignEntries { .. } => {
                "use an empty or dedicated directory for the session, or remove those entries"
            }
            Error::InvalidLocationName { .. } => "rename the location in its configuration",
            Error::DuplicateLocation { .. } => "location names must be unique",
            Error::MergeConflict(_) => {
                "the copies come from different builds: keep only one of them"
            }
            Error::MergeMismatch { .. } => {
                "the copies belong to different sessions: merge only copies of one session"
            }
            Error::GeneratedFileConflict { .. } => {
                "the copies come from different starts of the session: merge only copies of one session"
            }
            Error::UnknownLocations { .. } | Error::BuildOutput { .. } => return None,
        })
    }
}
