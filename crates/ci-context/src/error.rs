//! The crate's single error type and `Result` alias.
//!
//! Errors are data: the message (`Display`) names the environment variable, file, directory or
//! git command involved and never repeats the error's `source()`; what to do is a separate
//! [`Error::help`]; the git command, directory and timeout are accessors. Messages never contain
//! remote URLs (CI checkouts embed tokens in them) or other secrets, and nothing here names a
//! command or flag of the program that embeds the crate.

use std::path::{Path, PathBuf};

use crate::provider::CiProvider;

/// Result alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading the CI context or git metadata.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CI provider was detected but one of its always-present variables is missing.
    #[error("{provider} was detected but the environment variable {name} is not set")]
    MissingEnvVar {
        /// The detected provider.
        provider: CiProvider,
        /// The missing variable.
        name: &'static str,
    },

    /// A CI variable has a value this crate cannot interpret.
    #[error("the environment variable {name} has the value {value:?}, which is not {expected}")]
    InvalidEnvVar {
        /// The variable.
        name: &'static str,
        /// Its value (only numeric/flag variables are ever reported here, never URLs or tokens).
        value: String,
        /// What the value should look like.
        expected: &'static str,
    },

    /// The GitHub event file named by `GITHUB_EVENT_PATH` could not be read.
    #[error(
        "could not read the GitHub event file {} (from GITHUB_EVENT_PATH)",
        path.display()
    )]
    ReadEventFile {
        /// The event file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The GitHub event file is not the JSON GitHub Actions writes.
    #[error(
        "the GitHub event file {} (from GITHUB_EVENT_PATH) is not a valid event payload",
        path.display()
    )]
    ParseEventFile {
        /// The event file.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },

    /// The `git` binary could not be started.
    #[error("could not run `git` in {}", dir.display())]
    GitSpawn {
        /// The directory git was run in.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// `git` ran but exited unsuccessfully.
    #[error("`git {command}` failed in {} ({status}): {stderr}", dir.display())]
    GitFailed {
        /// The directory git was run in.
        dir: PathBuf,
        /// The git arguments, space-separated (for display only; git is run with an argv).
        command: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// git's standard error, trimmed.
        stderr: String,
    },

    /// `git` ran longer than the git timeout and was stopped.
    #[error(
        "`git {command}` in {} did not finish within {seconds} s and was stopped",
        dir.display()
    )]
    GitTimedOut {
        /// The directory git was run in.
        dir: PathBuf,
        /// The git arguments, space-separated.
        command: String,
        /// The timeout that passed.
        seconds: f64,
    },

    /// `git` succeeded but printed something this crate cannot parse.
    #[error("`git {command}` in {} printed unexpected output: {detail}", dir.display())]
    GitOutput {
        /// The directory git was run in.
        dir: PathBuf,
        /// The git arguments, space-separated.
        command: String,
        /// What was wrong with the output.
        detail: String,
    },

    /// A commit argument that git would read as an option or that is empty.
    #[error("invalid commit {commit:?}: it is empty, starts with '-' or contains whitespace")]
    InvalidCommit {
        /// The rejected value.
        commit: String,
    },

    /// There is no pull request or merge request in this context.
    #[error("no pull request or merge request found in the {provider} context")]
    NotAPullRequest {
        /// The detected provider.
        provider: CiProvider,
    },

    /// A fact needed for a branch deployment could not be determined.
    #[error("cannot create a branch deployment: the {field} is unknown in the {provider} context")]
    MissingBranchDeploymentField {
        /// The missing fact (`branch`, `commit hash`, `repository`).
        field: &'static str,
        /// The detected provider.
        provider: CiProvider,
        /// What to do about it (returned by [`Error::help`]).
        advice: &'static str,
    },

    /// A scaffold input that cannot be put into a CI file.
    #[error("invalid {field} {value:?} for the CI configuration")]
    InvalidScaffoldValue {
        /// The option (`organization`, `locations`, …).
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

impl Error {
    /// True when the context simply has no PR/MR, so the caller may fall back to a full deployment.
    pub fn is_not_a_pull_request(&self) -> bool {
        matches!(self, Error::NotAPullRequest { .. })
    }

    /// True when git ran longer than its timeout and was stopped.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::GitTimedOut { .. })
    }

    /// True when git could not be run, failed, timed out or printed something unexpected.
    pub fn is_git(&self) -> bool {
        matches!(
            self,
            Error::GitSpawn { .. }
                | Error::GitFailed { .. }
                | Error::GitTimedOut { .. }
                | Error::GitOutput { .. }
        )
    }

    /// The environment variable the error is about, if it is about one.
    pub fn env_var(&self) -> Option<&'static str> {
        match self {
            Error::MissingEnvVar { name, .. } | Error::InvalidEnvVar { name, .. } => Some(name),
            Error::ReadEventFile { .. } | Error::ParseEventFile { .. } => Some("GITHUB_EVENT_PATH"),
            _ => None,
        }
    }

    /// The file or directory the error is about: the event file, or the directory git ran in.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::ReadEventFile { path, .. } | Error::ParseEventFile { path, .. } => Some(path),
            Error::GitSpawn { dir, .. }
            | Error::GitFailed { dir, .. }
            | Error::GitTimedOut { dir, .. }
            | Error::GitOutput { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// The git arguments of a failed git command, space-separated.
    pub fn git_command(&self) -> Option<&str> {
        match self {
            Error::GitFailed { command, .. }
            | Error::GitTimedOut { command, .. }
            | Error::GitOutput { command, .. } => Some(command),
            _ => None,
        }
    }

    /// The 1-based line and column of an event file's JSON error.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            Error::ParseEventFile { source, .. } => Some((source.line(), source.column())),
            _ => None,
        }
    }

    /// What to do about the error, if there is more to say than the message.
    ///
    /// ```
    /// use dagster_deploy_ci_context::commit_metadata;
    ///
    /// let error = commit_metadata(std::path::Path::new("."), Some("--exec=x")).unwrap_err();
    /// assert_eq!(
    ///     error.help().as_deref(),
    ///     Some("use a commit hash or a ref name that does not start with '-'")
    /// );
    /// ```
    pub fn help(&self) -> Option<String> {
        Some(match self {
            Error::MissingEnvVar { provider, name } => {
                format!("run inside a real {provider} job or set {name}")
            }
            Error::InvalidEnvVar { expected, .. } => format!("expected {expected}"),
            Error::ReadEventFile { .. } | Error::ParseEventFile { .. } => {
                "GitHub Actions writes this file for every job; outside a job, unset GITHUB_EVENT_PATH or point it at a valid event payload".to_owned()
            }
            Error::GitSpawn { .. } => "install git and make sure it is on PATH".to_owned(),
            Error::GitFailed { dir, stderr, .. } if stderr.contains("dubious ownership") => {
                format!(
                    "the checkout belongs to another user; mark it safe with `git config --global --add safe.directory {}`",
                    dir.display()
                )
            }
            Error::GitFailed { stderr, .. } if stderr.contains("not a git repository") => {
                "use a directory inside a git checkout".to_owned()
            }
            Error::GitTimedOut { .. } => {
                "run it by hand to see what it waits for (a hook, a credential prompt, a slow or hung file system)".to_owned()
            }
            Error::InvalidCommit { .. } => {
                "use a commit hash or a ref name that does not start with '-'".to_owned()
            }
            Error::NotAPullRequest { .. } => {
                "a branch deployment needs one; deploy to the full deployment instead".to_owned()
            }
            Error::MissingBranchDeploymentField { advice, .. } => (*advice).to_owned(),
            Error::InvalidScaffoldValue { expected, .. } => format!("expected {expected}"),
            Error::GitFailed { .. } | Error::GitOutput { .. } => return None,
        })
    }
}
