//! [`ForgeClient`]: the calls `dagster-deploy` makes to GitHub and GitLab, behind one API.
//!
//! | call | GitHub | GitLab |
//! |---|---|---|
//! | who am I | `GET /user` (`login`; a `GITHUB_TOKEN` may not ask: `github-actions[bot]`) | `GET /user` (`username`) |
//! | list comments | `GET /repos/{owner}/{repo}/issues/{n}/comments` | `GET /projects/{path}/merge_requests/{iid}/notes` |
//! | create | `POST` on the list URL | `POST` on the list URL |
//! | update | `PATCH /repos/{owner}/{repo}/issues/comments/{id}` | `PUT …/notes/{id}` |
//! | commit author's avatar | `GET /repos/{owner}/{repo}/commits/{sha}` (`author.avatar_url`) | none |
//!
//! Lists are read 100 per page, following the `Link` header's `rel="next"` (both forges send
//! it), within the transport's credential rule.

use std::fmt;

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::comment::CommentMarker;
use crate::error::{Error, Result};
use crate::token::ForgeToken;
use crate::transport::{ForgeOptions, Transport, display_url};
use dagster_deploy_http_policy::{Idempotency, is_loopback};

/// The login GitHub gives `GITHUB_TOKEN`'s comments, which may not call `GET /user`.
const GITHUB_ACTIONS_LOGIN: &str = "github-actions[bot]";

/// Which forge an API speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub or GitHub Enterprise Server (REST API v3).
    GitHub,
    /// GitLab (REST API v4).
    GitLab,
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forge::GitHub => "GitHub",
            Forge::GitLab => "GitLab",
        })
    }
}

/// A pull request (GitHub) or merge request (GitLab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewTarget {
    /// The repository: `owner/name` on GitHub, the project's full path (`group/subgroup/name`)
    /// on GitLab.
    pub repository: String,
    /// The pull-request number, or the merge request's iid.
    pub number: u64,
}

/// What [`ForgeClient::upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    /// No comment of ours existed: one was created.
    Created {
        /// The new comment's id.
        id: u64,
        /// Its web page, when the forge says.
        url: Option<String>,
    },
    /// Our comment existed and was given the new text.
    Updated {
        /// The comment's id.
        id: u64,
        /// Its web page, when the forge says.
        url: Option<String>,
    },
    /// Our comment already had exactly this text: nothing was sent.
    Unchanged {
        /// The comment's id.
        id: u64,
        /// Its web page, when the forge says.
        url: Option<String>,
    },
}

/// One existing comment, as far as finding ours is concerned.
struct Comment {
    id: u64,
    author: String,
    body: String,
    url: Option<String>,
}

/// A client for one forge's REST API, with one token.
#[derive(Debug)]
pub struct ForgeClient {
    forge: Forge,
    base: Url,
    transport: Transport,
}

impl ForgeClient {
    /// A GitHub client. `api_url` is the REST API's root: `https://api.github.com`, or
    /// `https://HOST/api/v3` for GitHub Enterprise Server (in Actions, `GITHUB_API_URL`).
    pub fn github(api_url: &str, token: ForgeToken, options: ForgeOptions) -> Result<Self> {
        Self::new(Forge::GitHub, api_url, token, options)
    }

    /// A GitLab client. `api_url` is the v4 API's root, such as `https://gitlab.com/api/v4` (in
    /// GitLab CI, `CI_API_V4_URL`). The token is sent as `PRIVATE-TOKEN`: a personal, group or
    /// project access token with the `api` scope (GitLab does not let a CI job token write
    /// notes).
    pub fn gitlab(api_url: &str, token: ForgeToken, options: ForgeOptions) -> Result<Self> {
        Self::new(Forge::GitLab, api_url, token, options)
    }

    fn new(forge: Forge, api_url: &str, token: ForgeToken, options: ForgeOptions) -> Result<Self> {
        let base = api_base(forge, api_url)?;
        let transport = Transport::new(forge, &base, token, options)?;
        Ok(ForgeClient {
            forge,
            base,
            transport,
        })
    }

    /// The forge this client speaks to.
    pub fn forge(&self) -> Forge {
        self.forge
    }

    /// The API's origin (`scheme://host[:port]`): the only place the token is sent.
    pub fn api_origin(&self) -> String {
        self.transport.origin()
    }

    /// Makes `body` the text of our comment on `target`: the comment that starts with `marker`
    /// and was written by the token's identity is updated (left alone if it already says
    /// exactly this); if there is none, one is created. Every other comment is left untouched.
    pub async fn upsert_comment(
        &self,
        target: &ReviewTarget,
        marker: &CommentMarker,
        body: &str,
    ) -> Result<CommentOutcome> {
        let list_url = self.comments_url(target)?;
        let author = self.identity().await?;
        let wanted = marker.wrap(body);
        let ours = self
            .comments(&list_url)
            .await?
            .into_iter()
            .find(|comment| comment.author == author && marker.marks(&comment.body));
        let payload = json!({ "body": wanted });
        match ours {
            Some(comment) if comment.body == wanted => Ok(CommentOutcome::Unchanged {
                id: comment.id,
                url: comment.url,
            }),
            Some(comment) => {
                let url = self.comment_url(target, comment.id)?;
                let method = match self.forge {
                    Forge::GitHub => Method::PATCH,
                    Forge::GitLab => Method::PUT,
                };
                let reply = self
                    .transport
                    .send(
                        method,
                        &url,
                        Some(&payload),
                        Idempotency::Idempotent,
                        self.write_permission(),
                    )
                    .await?;
                Ok(CommentOutcome::Updated {
                    id: comment.id,
                    url: web_url(&reply.json).or(comment.url),
                })
            }
            None => {
                let mut create_url = list_url.clone();
                create_url.set_query(None);
                // Creating twice would leave two comments: retried only when the server
                // certainly did not act on the first request.
                let reply = self
                    .transport
                    .send(
                        Method::POST,
                        &create_url,
                        Some(&payload),
                        Idempotency::NotIdempotent,
                        self.write_permission(),
                    )
                    .await?;
                let id = reply
                    .json
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| Error::UnexpectedResponse {
                        forge: self.forge,
                        url: display_url(&create_url),
                        detail: "the created comment has no numeric `id`".to_owned(),
                    })?;
                Ok(CommentOutcome::Created {
                    id,
                    url: web_url(&reply.json),
                })
            }
        }
    }

    /// The avatar URL GitHub shows for the author of commit `sha` in `repository`
    /// (`owner/name`), or `None` when the commit's author is not a GitHub user. GitLab's API
    /// has no such lookup: always `None`, without a request.
    pub async fn commit_author_avatar(
        &self,
        repository: &str,
        sha: &str,
    ) -> Result<Option<String>> {
        if self.forge == Forge::GitLab {
            return Ok(None);
        }
        if !(7..=64).contains(&sha.len()) || !sha.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(Error::InvalidTarget {
                forge: self.forge,
                what: "commit",
                value: sha.to_owned(),
            });
        }
        let mut segments = self.repository_segments(repository)?;
        segments.extend(["commits".to_owned(), sha.to_owned()]);
        let url = self.url(&segments, &[]);
        let reply = self
            .transport
            .send(
                Method::GET,
                &url,
                None,
                Idempotency::Idempotent,
                "`contents: read`",
            )
            .await?;
        Ok(reply
            .json
            .pointer("/author/avatar_url")
            .and_then(Value::as_str)
            .filter(|avatar| !avatar.is_empty())
            .map(str::to_owned))
    }

    /// The login or user name comments written with this token carry.
    async fn identity(&self) -> Result<String> {
        let url = self.url(&["user".to_owned()], &[]);
        let field = match self.forge {
            Forge::GitHub => "login",
            Forge::GitLab => "username",
        };
        let reply = self
            .transport
            .send(
                Method::GET,
                &url,
                None,
                Idempotency::Idempotent,
                self.read_permission(),
            )
            .await;
        match reply {
            Ok(reply) => reply
                .json
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::UnexpectedResponse {
                    forge: self.forge,
                    url: display_url(&url),
                    detail: format!("the user has no `{field}`"),
                }),
            // An Actions `GITHUB_TOKEN` is an installation token, which may not read `/user`;
            // its comments are written as `github-actions[bot]`.
            Err(Error::Forbidden { .. }) if self.forge == Forge::GitHub => {
                Ok(GITHUB_ACTIONS_LOGIN.to_owned())
            }
            Err(error) => Err(error),
        }
    }

    /// Every comment of the pull request, page by page.
    async fn comments(&self, first: &Url) -> Result<Vec<Comment>> {
        let author_field = match self.forge {
            Forge::GitHub => "/user/login",
            Forge::GitLab => "/author/username",
        };
        let mut comments = Vec::new();
        let mut next = Some(first.clone());
        let mut pages = 0;
        while let Some(url) = next {
            if pages >= self.transport.options().max_pages {
                return Err(Error::TooManyPages {
                    forge: self.forge,
                    url: display_url(first),
                    pages,
                });
            }
            pages += 1;
            let reply = self
                .transport
                .send(
                    Method::GET,
                    &url,
                    None,
                    Idempotency::Idempotent,
                    self.read_permission(),
                )
                .await?;
            let Some(items) = reply.json.as_array() else {
                return Err(Error::UnexpectedResponse {
                    forge: self.forge,
                    url: display_url(&url),
                    detail: "the comments are not a list".to_owned(),
                });
            };
            for item in items {
                // GitLab's system notes ("added 1 commit") are not comments anyone wrote.
                if item.get("system").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let (Some(id), Some(author), Some(body)) = (
                    item.get("id").and_then(Value::as_u64),
                    item.pointer(author_field).and_then(Value::as_str),
                    item.get("body").and_then(Value::as_str),
                ) else {
                    continue;
                };
                comments.push(Comment {
                    id,
                    author: author.to_owned(),
                    body: body.to_owned(),
                    url: item
                        .get("html_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
            next = reply.next;
        }
        Ok(comments)
    }

    fn comments_url(&self, target: &ReviewTarget) -> Result<Url> {
        let mut segments = self.repository_segments(&target.repository)?;
        let number = target.number.to_string();
        match self.forge {
            Forge::GitHub => segments.extend(["issues".to_owned(), number, "comments".to_owned()]),
            Forge::GitLab => {
                segments.extend(["merge_requests".to_owned(), number, "notes".to_owned()])
            }
        }
        let query: &[(&str, &str)] = match self.forge {
            Forge::GitHub => &[("per_page", "100")],
            Forge::GitLab => &[
                ("per_page", "100"),
                ("sort", "asc"),
                ("order_by", "created_at"),
            ],
        };
        Ok(self.url(&segments, query))
    }

    fn comment_url(&self, target: &ReviewTarget, id: u64) -> Result<Url> {
        let mut segments = self.repository_segments(&target.repository)?;
        match self.forge {
            Forge::GitHub => {
                segments.extend(["issues".to_owned(), "comments".to_owned(), id.to_string()])
            }
            Forge::GitLab => segments.extend([
                "merge_requests".to_owned(),
                target.number.to_string(),
                "notes".to_owned(),
                id.to_string(),
            ]),
        }
        Ok(self.url(&segments, &[]))
    }

    /// The path segments naming the repository: `repos/{owner}/{name}` on GitHub,
    /// `projects/{url-encoded path}` on GitLab. Each part is checked first, so that nothing
    /// in a repository name can change which API path is called.
    fn repository_segments(&self, repository: &str) -> Result<Vec<String>> {
        let parts: Vec<&str> = repository.split('/').collect();
        let valid_part = |part: &&str| {
            !part.is_empty()
                && *part != "."
                && *part != ".."
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
        };
        let shape_ok = match self.forge {
            Forge::GitHub => parts.len() == 2,
            Forge::GitLab => parts.len() >= 2,
        };
        if !shape_ok || !parts.iter().all(valid_part) {
            return Err(Error::InvalidTarget {
                forge: self.forge,
                what: "repository",
                value: repository.to_owned(),
            });
        }
        Ok(match self.forge {
            Forge::GitHub => vec!["repos".to_owned(), parts[0].to_owned(), parts[1].to_owned()],
            // One segment: `url` percent-encodes its `/` as `%2F`, as GitLab wants.
            Forge::GitLab => vec!["projects".to_owned(), repository.to_owned()],
        })
    }

    fn url(&self, segments: &[String], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn read_permission(&self) -> &'static str {
        match self.forge {
            Forge::GitHub => "`pull-requests: read` (or `issues: read`)",
            Forge::GitLab => "the `api` (or `read_api`) scope and access to the project",
        }
    }

    fn write_permission(&self) -> &'static str {
        match self.forge {
            Forge::GitHub => "`pull-requests: write` (or `issues: write`)",
            Forge::GitLab => "the `api` scope and at least the Reporter role in the project",
        }
    }
}

/// The web page of a comment, when the forge says (GitHub's `html_url`; GitLab's notes carry
/// none).
fn web_url(json: &Value) -> Option<String> {
    json.get("html_url")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Checks an API URL: a URL with a host, no credentials, HTTPS (plain HTTP only to loopback).
fn api_base(forge: Forge, api_url: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidUrl {
        forge,
        url: api_url.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(api_url.trim()).map_err(|error| Error::InvalidUrl {
        forge,
        url: Url::parse(api_url)
            .map(|url| display_url(&url))
            .unwrap_or_else(|_| "<unparseable>".to_owned()),
        reason: error.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::UrlCredentials {
            forge,
            url: display_url(&url),
        });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::InsecureUrl {
                forge,
                url: display_url(&url),
            });
        }
        _ => return Err(invalid("not an http(s) URL")),
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err(invalid("the URL has no host"));
    }
    let mut url = url;
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> ForgeClient {
        ForgeClient::github(
            "https://api.github.com/",
            ForgeToken::new("t"),
            ForgeOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn urls_are_built_from_checked_segments() {
        let target = ReviewTarget {
            repository: "acme/data".into(),
            number: 42,
        };
        assert_eq!(
            github().comments_url(&target).unwrap().as_str(),
            "https://api.github.com/repos/acme/data/issues/42/comments?per_page=100"
        );
        let gitlab = ForgeClient::gitlab(
            "https://gitlab.example/api/v4",
            ForgeToken::new("t"),
            ForgeOptions::default(),
        )
        .unwrap();
        let merge_request = ReviewTarget {
            repository: "acme/platform/pipelines".into(),
            number: 7,
        };
        assert_eq!(
            gitlab.comment_url(&merge_request, 9).unwrap().as_str(),
            "https://gitlab.example/api/v4/projects/acme%2Fplatform%2Fpipelines/merge_requests/7/notes/9"
        );
        for bad in [
            "acme",
            "acme/data/x",
            "../x",
            "acme/da ta",
            "acme/%2e%2e",
            "acme/",
        ] {
            let target = ReviewTarget {
                repository: bad.into(),
                number: 1,
            };
            assert!(
                matches!(
                    github().comments_url(&target),
                    Err(Error::InvalidTarget { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_urls_must_be_https_or_loopback_without_credentials() {
        for (url, ok) in [
            ("https://api.github.com", true),
            ("https://ghe.example/api/v3", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:1/api/v4", true),
            ("http://api.github.com", false),
            ("https://user:pw@api.github.com", false),
            ("file:///etc", false),
            ("not a url", false),
        ] {
            let result = ForgeClient::github(url, ForgeToken::new("t"), ForgeOptions::default());
            assert_eq!(result.is_ok(), ok, "{url}");
            if let Err(error) = result {
                assert!(error.is_invalid_setting(), "{url}: {error}");
                assert!(!error.to_string().contains("pw"), "{error}");
            }
        }
    }
}
