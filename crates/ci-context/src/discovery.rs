//! Best-effort discovery of repository owner/name, git provider, base branch and repository
//! root (reference-behaviour §4.7). Never fails: anything that cannot be found is `None`.

use std::path::{Path, PathBuf};

use crate::context::{GitProvider, RepoId, non_empty};
use crate::git::{git_opt, repo_root};
use crate::providers::read_github_event;
use crate::remote::RemoteUrl;

/// The repository facts stored in every location state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDiscovery {
    /// Owner and name of the repository.
    pub repo: Option<RepoId>,
    /// GitHub or GitLab, when known.
    pub git_provider: Option<GitProvider>,
    /// The branch pull requests target.
    pub base_branch: Option<String>,
    /// The working-tree root of the enclosing git checkout.
    pub repo_root: Option<PathBuf>,
}

/// Discovers repository facts from the environment and the checkout enclosing `project_dir`.
pub fn discover(env: &dyn Fn(&str) -> Option<String>, project_dir: &Path) -> RepoDiscovery {
    // The default branch is only needed on GitHub push events; a bad event file is ignored here.
    let default_branch = non_empty(env, "GITHUB_EVENT_PATH")
        .and_then(|path| read_github_event(Path::new(&path)).ok())
        .and_then(|event| event.repository.and_then(|r| r.default_branch));
    let found = discover_with(env, project_dir, default_branch.as_deref());
    RepoDiscovery {
        repo: found.repo,
        git_provider: found.git_provider,
        base_branch: found.env_base_branch.or(found.origin_head_branch),
        repo_root: found.repo_root,
    }
}

/// Discovery split by source, so `detect` can slot provider-specific facts in between.
pub(crate) struct Discovery {
    pub(crate) repo: Option<RepoId>,
    pub(crate) git_provider: Option<GitProvider>,
    /// Base branch from CI variables (the first three rules of §4.7).
    pub(crate) env_base_branch: Option<String>,
    /// Base branch from `refs/remotes/origin/HEAD` (the last rule).
    pub(crate) origin_head_branch: Option<String>,
    pub(crate) repo_root: Option<PathBuf>,
}

pub(crate) fn discover_with(
    env: &dyn Fn(&str) -> Option<String>,
    project_dir: &Path,
    github_default_branch: Option<&str>,
) -> Discovery {
    let origin = git_opt(project_dir, &["config", "--get", "remote.origin.url"])
        .and_then(|url| RemoteUrl::parse(&url));

    let repo = non_empty(env, "GITHUB_REPOSITORY")
        .or_else(|| non_empty(env, "CI_PROJECT_PATH"))
        .and_then(|full| RepoId::from_full_name(&full))
        .or_else(|| {
            origin.as_ref().map(|o| RepoId {
                owner: o.owner.clone(),
                name: o.name.clone(),
            })
        });

    let git_provider = if non_empty(env, "GITLAB_CI").is_some() {
        Some(GitProvider::GitLab)
    } else if non_empty(env, "GITHUB_ACTIONS").is_some() {
        Some(GitProvider::GitHub)
    } else {
        origin.as_ref().and_then(|o| {
            if o.host.contains("gitlab") {
                Some(GitProvider::GitLab)
            } else if o.host.contains("github") {
                Some(GitProvider::GitHub)
            } else {
                None
            }
        })
    };

    let env_base_branch = non_empty(env, "GITHUB_BASE_REF")
        .or_else(|| non_empty(env, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"))
        .or_else(|| non_empty(env, "CI_DEFAULT_BRANCH"))
        .or_else(|| {
            let is_branch_push = non_empty(env, "GITHUB_EVENT_NAME").as_deref() == Some("push")
                && non_empty(env, "GITHUB_REF_TYPE").as_deref() == Some("branch");
            let ref_name = non_empty(env, "GITHUB_REF_NAME")?;
            (is_branch_push && Some(ref_name.as_str()) == github_default_branch).then_some(ref_name)
        });

    let origin_head_branch = git_opt(
        project_dir,
        &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
    )
    .and_then(|target| {
        target
            .strip_prefix("refs/remotes/origin/")
            .map(str::to_owned)
    })
    .filter(|branch| !branch.is_empty());

    Discovery {
        repo,
        git_provider,
        env_base_branch,
        origin_head_branch,
        repo_root: repo_root(project_dir),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::git::test_repo::{git, repo_with_commit};

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn discovery_parses_origin_in_a_parent_directory_with_subgroups() {
        let repo = repo_with_commit("x");
        git(
            repo.path(),
            &[
                "remote",
                "add",
                "origin",
                "git@gitlab.example.com:data/platform/my.github-tool.git",
            ],
        );
        let project = repo.path().join("projects/sales");
        std::fs::create_dir_all(&project).unwrap();
        let found = discover(&env_of(&[]), &project);
        assert_eq!(
            found.repo,
            Some(RepoId {
                owner: "data/platform".into(),
                name: "my.github-tool".into()
            })
        );
        assert_eq!(found.git_provider, Some(GitProvider::GitLab));
        assert_eq!(found.base_branch, None);
        let root = found.repo_root.unwrap();
        assert_eq!(
            root.canonicalize().unwrap(),
            repo.path().canonicalize().unwrap()
        );
    }

    #[test]
    fn discovery_takes_base_branch_from_origin_head() {
        let repo = repo_with_commit("x");
        git(
            repo.path(),
            &[
                "remote",
                "add",
                "origin",
                "https://github.com/acme/data.git",
            ],
        );
        let head = git(repo.path(), &["rev-parse", "HEAD"]);
        git(
            repo.path(),
            &["update-ref", "refs/remotes/origin/trunk", &head],
        );
        git(
            repo.path(),
            &[
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                "refs/remotes/origin/trunk",
            ],
        );
        let found = discover(&env_of(&[]), repo.path());
        assert_eq!(found.base_branch.as_deref(), Some("trunk"));
        assert_eq!(found.git_provider, Some(GitProvider::GitHub));
        assert_eq!(found.repo.unwrap().full_name(), "acme/data");
    }

    #[test]
    fn discovery_prefers_ci_variables_over_the_origin_remote() {
        let repo = repo_with_commit("x");
        git(
            repo.path(),
            &[
                "remote",
                "add",
                "origin",
                "https://github.com/acme/data.git",
            ],
        );
        let env = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", "group/sub/project"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "develop"),
            ("CI_DEFAULT_BRANCH", "main"),
        ]);
        let found = discover(&env, repo.path());
        assert_eq!(
            found.repo,
            Some(RepoId {
                owner: "group/sub".into(),
                name: "project".into()
            })
        );
        assert_eq!(found.git_provider, Some(GitProvider::GitLab));
        assert_eq!(found.base_branch.as_deref(), Some("develop"));
    }

    #[test]
    fn discovery_uses_the_pushed_branch_only_when_it_is_the_default_branch() {
        let dir = tempfile::tempdir().unwrap();
        let push = [
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REF_NAME", "main"),
        ];
        assert_eq!(
            discover_with(&env_of(&push), dir.path(), Some("main"))
                .env_base_branch
                .as_deref(),
            Some("main")
        );
        assert_eq!(
            discover_with(&env_of(&push), dir.path(), Some("master")).env_base_branch,
            None
        );
        assert_eq!(
            discover_with(&env_of(&push), dir.path(), None).env_base_branch,
            None
        );
    }

    #[test]
    fn discovery_outside_git_finds_nothing_and_does_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let found = discover(
            &env_of(&[("GITHUB_EVENT_PATH", "/nonexistent/event.json")]),
            dir.path(),
        );
        assert_eq!(
            found,
            RepoDiscovery {
                repo: None,
                git_provider: None,
                base_branch: None,
                repo_root: None
            }
        );
    }
}
