//! Parsing git remote URLs into host, owner and repository name (reference-behaviour §4.7,
//! ref-bug 14 fixed).
//!
//! Accepted: `<scheme>://[user[:password]@]<host>[:port]/<owner…>/<repo>[.git][/]` (scheme of
//! lowercase letters and `+`) and scp-like `<user>@<host>:<owner…>/<repo>[.git][/]`. The owner
//! keeps every segment but the last (GitLab subgroups); only one trailing `/` and then one
//! trailing `.git` are removed, so `my.github-tool` stays intact. Credentials in the URL are
//! dropped and never stored.

/// A parsed git remote: where it is hosted and which repository it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// Lower-cased host name, without user, password or port.
    pub host: String,
    /// Everything before the repository name (`group/subgroup` on GitLab).
    pub owner: String,
    /// The repository name.
    pub name: String,
}

impl RemoteUrl {
    /// Parses a remote URL; `None` for local paths and anything not of the accepted forms.
    pub fn parse(url: &str) -> Option<RemoteUrl> {
        let url = url.trim();
        if let Some((scheme, rest)) = url.split_once("://") {
            if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_lowercase() || b == b'+') {
                return None;
            }
            let (authority, path) = rest.split_once('/')?;
            let host_port = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            let host = match host_port.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
                _ => host_port,
            };
            Self::from_parts(host, path)
        } else {
            let (user, rest) = url.split_once('@')?;
            let (host, path) = rest.split_once(':')?;
            if user.is_empty() || user.contains('/') || host.contains('/') {
                return None;
            }
            Self::from_parts(host, path)
        }
    }

    fn from_parts(host: &str, path: &str) -> Option<RemoteUrl> {
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return None;
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.rsplit_once('/')?;
        if name.is_empty() || owner.split('/').any(str::is_empty) {
            return None;
        }
        Some(RemoteUrl {
            host: host.to_ascii_lowercase(),
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `https://<host>`, the web server of the remote.
    pub fn web_base(&self) -> String {
        format!("https://{}", self.host)
    }

    /// `https://<host>/<owner>/<name>`, the repository's web page on common forges.
    pub fn web_url(&self) -> String {
        format!("https://{}/{}/{}", self.host, self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteUrl;

    #[track_caller]
    fn check(url: &str, expected: Option<(&str, &str, &str)>) {
        let parsed = RemoteUrl::parse(url);
        let actual = parsed
            .as_ref()
            .map(|r| (r.host.as_str(), r.owner.as_str(), r.name.as_str()));
        assert_eq!(actual, expected, "parsing {url:?}");
    }

    #[test]
    fn parses_https_ssh_and_scp_forms() {
        check(
            "https://github.com/acme/data.git",
            Some(("github.com", "acme", "data")),
        );
        check(
            "https://github.com/acme/data",
            Some(("github.com", "acme", "data")),
        );
        check(
            "ssh://git@github.com:22/acme/data.git",
            Some(("github.com", "acme", "data")),
        );
        check(
            "git+ssh://git@GitHub.com/acme/data",
            Some(("github.com", "acme", "data")),
        );
        check(
            "git@github.com:acme/data.git",
            Some(("github.com", "acme", "data")),
        );
        check(
            "git@gitlab.example.com:acme/data/",
            Some(("gitlab.example.com", "acme", "data")),
        );
    }

    #[test]
    fn keeps_gitlab_subgroups_in_the_owner() {
        check(
            "https://gitlab.com/group/sub/deeper/repo.git",
            Some(("gitlab.com", "group/sub/deeper", "repo")),
        );
        check(
            "git@gitlab.com:group/sub/repo.git",
            Some(("gitlab.com", "group/sub", "repo")),
        );
    }

    #[test]
    fn keeps_dot_git_inside_repository_names() {
        check(
            "https://github.com/acme/my.github-tool.git",
            Some(("github.com", "acme", "my.github-tool")),
        );
        check(
            "git@github.com:acme/my.github-tool",
            Some(("github.com", "acme", "my.github-tool")),
        );
        check(
            "https://github.com/acme/repo.git.git",
            Some(("github.com", "acme", "repo.git")),
        );
        check(
            "https://github.com/acme/repo.git/",
            Some(("github.com", "acme", "repo")),
        );
    }

    #[test]
    fn rejects_local_paths_and_malformed_urls() {
        check("/srv/git/repo.git", None);
        check("../repo", None);
        check("file:///srv/git/repo.git", None);
        check("https://github.com/repo.git", None);
        check("https://github.com//repo", None);
        check("HTTPS://github.com/acme/repo", None);
        check("git@github.com:", None);
        check("github.com:acme/repo", None);
        check("", None);
    }

    #[test]
    fn credentials_in_the_url_are_not_kept() {
        let parsed =
            RemoteUrl::parse("https://gitlab-ci-token:glcbt-SECRET123@gitlab.com/acme/data.git")
                .unwrap();
        assert_eq!(parsed.host, "gitlab.com");
        let debug = format!("{parsed:?} {} {}", parsed.web_url(), parsed.web_base());
        assert!(!debug.contains("SECRET123"), "{debug}");
        assert!(!debug.contains("gitlab-ci-token"), "{debug}");
    }
}
