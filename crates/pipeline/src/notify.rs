//! The notify stage: the session's deploy report (rendered and escaped by `statedir`) as one
//! comment on the pull request (GitHub) or note on the merge request (GitLab) the CI run
//! belongs to, created on the first run and updated in place on every later one; and the head
//! commit's author avatar, which a branch deployment carries.
//!
//! The caller makes the [`ForgeClient`] (it knows where the token and the API URL come from);
//! [`notify_target`] says first whether there is anything to comment on, so that a caller
//! without a pull request never needs a token.

use dagster_deploy_ci_context as ci;
use dagster_deploy_forge::{CommentMarker, CommentOutcome, Forge, ForgeClient, ReviewTarget};
use dagster_deploy_statedir::Session;

use crate::error::Result;

/// The most locations a comment lists; GitHub refuses comments over 65,536 characters, and a
/// row takes up to about 700.
pub const MAX_REPORT_LOCATIONS: usize = 80;

/// Where the report goes, or why it goes nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// The pull or merge request to comment on, and its forge.
    Post {
        /// GitHub or GitLab.
        forge: Forge,
        /// The repository and number.
        target: ReviewTarget,
    },
    /// This run belongs to no pull or merge request.
    NotAPullRequest,
    /// The CI system is neither GitHub Actions nor GitLab CI.
    UnsupportedCi(ci::CiProvider),
}

/// Where the report of a run in `ci_context` goes. `env` is the environment (injected): on
/// GitLab, a forked merge request lives in the target project, which
/// `CI_MERGE_REQUEST_PROJECT_PATH` names, and its iid is numbered there.
pub fn notify_target(
    ci_context: &ci::CiContext,
    env: &dyn Fn(&str) -> Option<String>,
) -> NotifyTarget {
    let (Some(pull_request), Some(repo)) = (&ci_context.pull_request, &ci_context.repo) else {
        return NotifyTarget::NotAPullRequest;
    };
    let (forge, repository) = match ci_context.provider {
        ci::CiProvider::GitHub => (Forge::GitHub, repo.full_name()),
        ci::CiProvider::GitLab => (
            Forge::GitLab,
            env("CI_MERGE_REQUEST_PROJECT_PATH")
                .filter(|path| !path.is_empty())
                .unwrap_or_else(|| repo.full_name()),
        ),
        other => return NotifyTarget::UnsupportedCi(other),
    };
    NotifyTarget::Post {
        forge,
        target: ReviewTarget {
            repository,
            number: pull_request.number,
        },
    }
}

/// Makes the session's report the text of our comment on `target`: one comment per
/// deployment (keyed by the first selected location's deployment), found by its marker and
/// author, updated if it exists.
pub async fn post_report(
    session: &Session,
    client: &ForgeClient,
    target: &ReviewTarget,
) -> Result<CommentOutcome> {
    let report = session.pull_request_report(MAX_REPORT_LOCATIONS)?;
    let key = session
        .locations()?
        .into_iter()
        .find(|state| state.selected)
        .map(|state| state.deployment_name)
        .unwrap_or_default();
    Ok(client
        .upsert_comment(target, &CommentMarker::new(&key), &report)
        .await?)
}

/// The avatar the forge shows for the author of the commit a branch deployment is made for
/// (the pull request's head, else the build's commit); `None` outside GitHub Actions, without
/// a repository or commit, or when the author is not a GitHub user.
pub async fn head_commit_avatar(
    ci_context: &ci::CiContext,
    client: &ForgeClient,
) -> Result<Option<String>> {
    if ci_context.provider != ci::CiProvider::GitHub {
        return Ok(None);
    }
    let commit = ci_context
        .pull_request
        .as_ref()
        .and_then(|pull_request| pull_request.head_sha.clone())
        .or_else(|| ci_context.commit_hash.clone());
    let (Some(repo), Some(commit)) = (&ci_context.repo, commit) else {
        return Ok(None);
    };
    Ok(client
        .commit_author_avatar(&repo.full_name(), &commit)
        .await?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn context(env: &HashMap<&str, &str>) -> ci::CiContext {
        let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
        let outside_git = tempfile::tempdir().unwrap();
        ci::detect(&lookup, outside_git.path()).unwrap()
    }

    fn gitlab(extra: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        let mut env = HashMap::from([
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "2222222222222222222222222222222222222222"),
            ("CI_COMMIT_REF_NAME", "feature"),
            ("CI_JOB_URL", "https://gitlab.example/acme/data/-/jobs/5"),
            ("CI_PROJECT_NAME", "data"),
            ("CI_PROJECT_NAMESPACE", "fork-owner"),
            ("CI_PROJECT_PATH", "fork-owner/data"),
            ("CI_PROJECT_URL", "https://gitlab.example/fork-owner/data"),
            ("CI_SERVER_URL", "https://gitlab.example"),
        ]);
        env.extend(extra.iter().copied());
        env
    }

    #[test]
    fn a_merge_request_is_commented_in_its_target_project_and_a_push_nowhere() {
        let env = gitlab(&[
            ("CI_MERGE_REQUEST_IID", "7"),
            ("CI_MERGE_REQUEST_PROJECT_PATH", "acme/data"),
        ]);
        let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
        assert_eq!(
            notify_target(&context(&env), &lookup),
            NotifyTarget::Post {
                forge: Forge::GitLab,
                target: ReviewTarget {
                    repository: "acme/data".into(),
                    number: 7
                }
            }
        );
        let push = gitlab(&[]);
        let lookup = |name: &str| push.get(name).map(|value| (*value).to_owned());
        assert_eq!(
            notify_target(&context(&push), &lookup),
            NotifyTarget::NotAPullRequest
        );
    }
}
