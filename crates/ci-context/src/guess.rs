//! Guessing a full or branch deployment from the checked-out branch (reference-behaviour §4.6).

use std::path::Path;

use crate::git::current_branch;

/// Which kind of deployment to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentType {
    /// Deploy to the named (base) deployment.
    Full,
    /// Deploy to the branch deployment of the current branch.
    Branch,
}

/// The guess and the branch it was based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentTypeGuess {
    /// The guessed type.
    pub deployment_type: DeploymentType,
    /// The checked-out branch (`HEAD` when detached), `None` when git could not tell.
    pub branch: Option<String>,
}

impl DeploymentTypeGuess {
    /// The sentence the reference prints for this guess, naming the base deployment.
    pub fn message(&self, base_deployment: &str) -> String {
        match (&self.branch, self.deployment_type) {
            (None, _) => {
                format!("Could not determine a git branch, so deploying to {base_deployment}.")
            }
            (Some(branch), DeploymentType::Full) => {
                format!("Current branch is {branch}, so deploying to {base_deployment}.")
            }
            (Some(branch), DeploymentType::Branch) => format!(
                "Deploying to the branch deployment for {branch}, with {base_deployment} as the base deployment."
            ),
        }
    }
}

/// Guesses from `git rev-parse --abbrev-ref HEAD` in `project_dir`: no branch, `main`,
/// `master` or a detached `HEAD` → full; any other branch → branch.
pub fn guess_deployment_type(project_dir: &Path) -> DeploymentTypeGuess {
    match current_branch(project_dir)
        .ok()
        .filter(|b| !b.trim().is_empty())
    {
        None => DeploymentTypeGuess {
            deployment_type: DeploymentType::Full,
            branch: None,
        },
        Some(branch) => {
            let deployment_type = if matches!(branch.as_str(), "main" | "master" | "HEAD") {
                DeploymentType::Full
            } else {
                DeploymentType::Branch
            };
            DeploymentTypeGuess {
                deployment_type,
                branch: Some(branch),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo::{git, repo_with_commit};

    #[test]
    fn guess_is_full_on_main_and_master_and_detached_head() {
        let repo = repo_with_commit("x");
        let guess = guess_deployment_type(repo.path());
        assert_eq!(
            guess,
            DeploymentTypeGuess {
                deployment_type: DeploymentType::Full,
                branch: Some("main".into())
            }
        );
        assert_eq!(
            guess.message("prod"),
            "Current branch is main, so deploying to prod."
        );

        git(repo.path(), &["checkout", "--quiet", "-b", "master"]);
        assert_eq!(
            guess_deployment_type(repo.path()).deployment_type,
            DeploymentType::Full
        );

        git(repo.path(), &["checkout", "--quiet", "--detach"]);
        let detached = guess_deployment_type(repo.path());
        assert_eq!(detached.branch.as_deref(), Some("HEAD"));
        assert_eq!(detached.deployment_type, DeploymentType::Full);
    }

    #[test]
    fn guess_is_branch_on_a_feature_branch() {
        let repo = repo_with_commit("x");
        git(
            repo.path(),
            &["checkout", "--quiet", "-b", "feature/sales-report"],
        );
        let guess = guess_deployment_type(repo.path());
        assert_eq!(guess.deployment_type, DeploymentType::Branch);
        assert_eq!(
            guess.message("prod"),
            "Deploying to the branch deployment for feature/sales-report, with prod as the base deployment."
        );
    }

    #[test]
    fn guess_is_full_outside_git() {
        let dir = tempfile::tempdir().unwrap();
        let guess = guess_deployment_type(dir.path());
        assert_eq!(
            guess,
            DeploymentTypeGuess {
                deployment_type: DeploymentType::Full,
                branch: None
            }
        );
        assert_eq!(
            guess.message("prod"),
            "Could not determine a git branch, so deploying to prod."
        );
    }
}
