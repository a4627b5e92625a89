//! Git facts shared by the session, the deploy document and the branch-deployment request:
//! [`GitMetadata`], recorded at `start` and sent with every deploy, and [`PullRequestStatus`].

use serde::Serialize;

/// The git facts of the commit being deployed, as the session records them and the deploy
/// document carries them; `None` fields are left out of the document. The strings are kept as
/// written (a state file written by another tool may hold any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GitMetadata {
    /// The commit hash.
    pub commit_hash: Option<String>,
    /// Web URL of the code at this commit, e.g. `https://github.com/acme/repo/tree/1a2b` (the
    /// state file's `git_url`).
    pub url: Option<String>,
    /// `github`, `gitlab`, or none.
    pub provider: Option<String>,
    /// Repository owner (for GitLab, the namespace with its subgroups).
    pub repo_owner: Option<String>,
    /// Repository name.
    pub repo_name: Option<String>,
    /// The branch pull requests target.
    pub base_branch: Option<String>,
    /// Path of the definitions folder relative to the repository root, with `/` separators.
    pub defs_base_path: Option<String>,
}

/// The state of a pull or merge request, as sent to Dagster+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PullRequestStatus {
    /// Open.
    Open,
    /// Closed without merging (also what `--mark-closed` sends).
    Closed,
    /// Merged.
    Merged,
}

impl PullRequestStatus {
    /// The API's value: `OPEN`, `CLOSED` or `MERGED`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullRequestStatus::Open => "OPEN",
            PullRequestStatus::Closed => "CLOSED",
            PullRequestStatus::Merged => "MERGED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_serialises_as_the_api_value() {
        for status in [
            PullRequestStatus::Open,
            PullRequestStatus::Closed,
            PullRequestStatus::Merged,
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
    }
}
