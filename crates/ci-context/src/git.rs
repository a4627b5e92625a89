//! Running the `git` binary (always with an argument vector and `-C <dir>`, never a shell
//! string: reference-behaviour ref-bug 15, and never for longer than [`GIT_TIMEOUT`]) and the
//! commit metadata read from it.
//!
//! Failures are errors carrying the directory, the command and git's stderr; only the
//! best-effort discovery in `discovery.rs` turns them into `None`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dagster_deploy_process::output_within;
use serde::Serialize;

use crate::error::{Error, Result};

/// Facts about one commit, read from the local checkout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitMetadata {
    /// The full commit hash.
    pub hash: String,
    /// Committer time in unix seconds (what the reference sends as `timestamp`).
    pub timestamp: f64,
    /// The commit subject line.
    pub message: String,
    /// The author's name.
    pub author_name: String,
    /// The author's email address.
    pub author_email: String,
}

/// How long one git command may run. The commands here are local, read-only queries that take
/// milliseconds; a minute means git is waiting for something (a hook, a credential prompt, a
/// hung network file system), and CI would otherwise wait with it until its own limit.
pub(crate) const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `git -C <dir> <args…>` and returns its standard output with the trailing newline removed.
pub(crate) fn run_git(dir: &Path, args: &[&str]) -> Result<String> {
    run_git_within(dir, args, GIT_TIMEOUT)
}

fn run_git_within(dir: &Path, args: &[&str], limit: Duration) -> Result<String> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        // Never wait for credentials on a terminal inside CI.
        .env("GIT_TERMINAL_PROMPT", "0");
    let output = output_within(&mut command, limit)
        .map_err(|source| Error::GitSpawn {
            dir: dir.to_path_buf(),
            source,
        })?
        .ok_or_else(|| Error::GitTimedOut {
            dir: dir.to_path_buf(),
            command: args.join(" "),
            seconds: limit.as_secs_f64(),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(Error::GitFailed {
            dir: dir.to_path_buf(),
            command: args.join(" "),
            status: output.status,
            stderr,
        });
    }
    let stdout = String::from_utf8(output.stdout).map_err(|_| Error::GitOutput {
        dir: dir.to_path_buf(),
        command: args.join(" "),
        detail: "output is not UTF-8".to_owned(),
    })?;
    Ok(stdout.trim_end_matches(['\n', '\r']).to_owned())
}

/// Runs git and maps any failure or empty output to `None` (for best-effort discovery).
pub(crate) fn git_opt(dir: &Path, args: &[&str]) -> Option<String> {
    run_git(dir, args).ok().filter(|s| !s.trim().is_empty())
}

/// The checked-out branch (`git rev-parse --abbrev-ref HEAD`); `HEAD` when detached.
pub(crate) fn current_branch(dir: &Path) -> Result<String> {
    run_git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])
}

/// The root of the working tree enclosing `dir`.
pub(crate) fn repo_root(dir: &Path) -> Option<PathBuf> {
    git_opt(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from)
}

/// Reads hash, committer timestamp, subject and author of `commit` (default `HEAD`) in `repo_dir`.
///
/// Errors (not a repository, unknown commit, dubious ownership, git missing) carry the
/// directory and git's stderr; they are never turned into empty strings
/// (reference-behaviour ref-bug 15).
pub fn commit_metadata(repo_dir: &Path, commit: Option<&str>) -> Result<CommitMetadata> {
    let commit = commit.unwrap_or("HEAD");
    if commit.is_empty() || commit.starts_with('-') || commit.contains(char::is_whitespace) {
        return Err(Error::InvalidCommit {
            commit: commit.to_owned(),
        });
    }
    let args = [
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H%x00%ct%x00%an%x00%ae%x00%s",
        commit,
        "--",
    ];
    let output = run_git(repo_dir, &args)?;
    let bad_output = |detail: String| Error::GitOutput {
        dir: repo_dir.to_path_buf(),
        command: args.join(" "),
        detail,
    };
    let fields: Vec<&str> = output.split('\0').collect();
    let [hash, timestamp, author_name, author_email, message] = fields[..] else {
        return Err(bad_output(format!(
            "expected 5 NUL-separated fields, got {}",
            fields.len()
        )));
    };
    let timestamp = timestamp.trim().parse::<f64>().map_err(|_| {
        bad_output(format!(
            "the committer timestamp {timestamp:?} is not a number"
        ))
    })?;
    Ok(CommitMetadata {
        hash: hash.to_owned(),
        timestamp,
        message: message.to_owned(),
        author_name: author_name.to_owned(),
        author_email: author_email.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod test_repo {
    //! Real git repositories in temp dirs, isolated from the user's git configuration.

    use std::path::Path;
    use std::process::Command;

    /// Runs git in `dir` with a fixed identity and dates; panics with stderr on failure.
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=Ada Lovelace",
                "-c",
                "user.email=ada@example.com",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "1700000123 +0000")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// A repository on branch `main` with one commit; returns the temp dir.
    pub(crate) fn repo_with_commit(subject: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet"]);
        std::fs::write(dir.path().join("README.md"), "hello\n").unwrap();
        git(dir.path(), &["add", "README.md"]);
        git(dir.path(), &["commit", "--quiet", "-m", subject]);
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::test_repo::{git, repo_with_commit};
    use super::*;

    #[test]
    fn commit_metadata_reads_head_of_a_real_repository() {
        let repo = repo_with_commit("Add the sales pipeline");
        let head = git(repo.path(), &["rev-parse", "HEAD"]);
        let meta = commit_metadata(repo.path(), None).unwrap();
        assert_eq!(
            meta,
            CommitMetadata {
                hash: head,
                timestamp: 1_700_000_123.0,
                message: "Add the sales pipeline".into(),
                author_name: "Ada Lovelace".into(),
                author_email: "ada@example.com".into(),
            }
        );
    }

    #[test]
    fn commit_metadata_reads_a_named_commit_in_a_path_with_spaces() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("my project dir");
        std::fs::create_dir(&dir).unwrap();
        git(&dir, &["init", "--quiet"]);
        git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "first"]);
        let first = git(&dir, &["rev-parse", "HEAD"]);
        git(
            &dir,
            &[
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                "second: with \"quotes\" and $HOME",
            ],
        );
        assert_eq!(
            commit_metadata(&dir, Some(&first)).unwrap().message,
            "first"
        );
        assert_eq!(
            commit_metadata(&dir, None).unwrap().message,
            "second: with \"quotes\" and $HOME"
        );
    }

    #[test]
    fn commit_metadata_outside_a_repository_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = commit_metadata(dir.path(), None).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::GitFailed { .. }), "{err:?}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("not a git repository"), "{message}");
    }

    #[test]
    fn commit_metadata_for_an_unknown_commit_reports_git_stderr() {
        let repo = repo_with_commit("x");
        let err = commit_metadata(repo.path(), Some("deadbeefdeadbeef")).unwrap_err();
        assert!(err.to_string().contains("deadbeefdeadbeef"), "{err}");
    }

    #[test]
    fn a_git_timeout_names_the_command_the_directory_and_what_to_do() {
        let repo = repo_with_commit("x");
        // An alias that runs a shell command stands in for a hook that waits forever.
        let args = ["-c", "alias.hang=!sleep 30", "hang"];
        let error = run_git_within(repo.path(), &args, Duration::from_millis(300)).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::GitTimedOut { .. }), "{error:?}");
        assert!(error.is_timeout());
        assert!(
            message.contains("`git -c alias.hang=!sleep 30 hang`")
                && message.contains("within 0.3 s")
                && message.contains(&repo.path().display().to_string()),
            "{message}"
        );
        assert!(
            error
                .help()
                .is_some_and(|help| help.contains("run it by hand")),
            "{error:?}"
        );
    }

    #[test]
    fn commit_metadata_rejects_option_like_commits() {
        let repo = repo_with_commit("x");
        for bad in ["--output=/tmp/x", "", "HEAD ~1"] {
            let err = commit_metadata(repo.path(), Some(bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidCommit { .. }), "{bad}: {err:?}");
        }
    }
}
