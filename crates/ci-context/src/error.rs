//! The crate's single error type and `Result` alias.
//!
//! Messages name the environment variable, file, directory or git command involved and say what
//! to do. They never contain remote URLs (CI checkouts embed tokens in them) or other secrets.

use std::path::PathBuf;

use crate::provider::CiProvider;

/// Result alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading the CI context or git metadata.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CI provider was detected but one of its always-present variables is missing.
    #[error(
        "{provider} was detected but the environment variable {name} is not set; \
         run inside a real {provider} job or set {name}"
    )]
    MissingEnvVar {
        /// The detected provider.
        provider: CiProvider,
        /// The missing variable.
        name: &'static str,
    },

    /// A CI variable has a value this crate cannot interpret.
    #[error("the environment variable {name} has the value {value:?}, expected {expected}")]
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
        "could not read the GitHub event file {} (from GITHUB_EVENT_PATH): {source}",
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
        "the GitHub event file {} (from GITHUB_EVENT_PATH) is not a valid event payload: {source}",
        path.display()
    )]
    ParseEventFile {
        /// The event file.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },

    /// The `git` binary could not be started.
    #[error("could not run `git` in {}: {source}; install git and make sure it is on PATH", dir.display())]
    GitSpawn {
        /// The directory git was run in.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// `git` ran but exited unsuccessfully.
    #[error("`git {command}` failed in {} ({status}): {stderr}{hint}", dir.display())]
    GitFailed {
        /// The directory git was run in.
        dir: PathBuf,
        /// The git arguments, space-separated (for display only; git is run with an argv).
        command: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// git's standard error, trimmed.
        stderr: String,
        /// Advice for well-known failures (empty otherwise).
        hint: String,
    },

    /// `git` ran longer than the git timeout and was stopped.
    #[error(
        "`git {command}` in {} did not finish within {seconds} s and was stopped; run it by hand to see what it waits for (a hook, a credential prompt, a slow or hung file system)",
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
    #[error("invalid commit {commit:?}: pass a commit hash or ref that does not start with '-'")]
    InvalidCommit {
        /// The rejected value.
        commit: String,
    },

    /// There is no pull request or merge request in this context.
    #[error(
        "no pull request or merge request found in the {provider} context; \
         a branch deployment needs one (deploy to the full deployment instead)"
    )]
    NotAPullRequest {
        /// The detected provider.
        provider: CiProvider,
    },

    /// A fact needed for a branch deployment could not be determined.
    #[error(
        "cannot create a branch deployment: the {field} is unknown in the {provider} context; {advice}"
    )]
    MissingBranchDeploymentField {
        /// The missing fact (`branch`, `commit hash`, `repository`).
        field: &'static str,
        /// The detected provider.
        provider: CiProvider,
        /// What to do about it.
        advice: &'static str,
    },

    /// A `configure` input that cannot be put into a CI file.
    #[error("invalid {field} {value:?} for the CI configuration: expected {expected}")]
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
}
