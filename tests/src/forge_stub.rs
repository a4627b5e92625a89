//! A stateful stand-in for the parts of the GitHub and GitLab REST APIs that `notify` and the
//! avatar lookup use, on `127.0.0.1:<free port>`: who am I, list (paginated, with `Link`
//! headers), create and update pull-request comments and merge-request notes, and a commit's
//! author. Every request is recorded, with whether it carried the token.
//!
//! | request | answer |
//! |---|---|
//! | `GET /user` | `{"login"}` of [`ForgeStubConfig::github_login`], or 403 as GitHub answers a `GITHUB_TOKEN` |
//! | `GET /api/v4/user` | `{"username"}` of [`ForgeStubConfig::gitlab_username`] |
//! | `GET`/`POST /repos/{owner}/{repo}/issues/{n}/comments` | list / create |
//! | `PATCH /repos/{owner}/{repo}/issues/comments/{id}` | update |
//! | `GET /repos/{owner}/{repo}/commits/{sha}` | `{"author": {"avatar_url"}}` |
//! | `GET`/`POST /api/v4/projects/{path}/merge_requests/{iid}/notes` | list / create |
//! | `PUT /api/v4/projects/{path}/merge_requests/{iid}/notes/{id}` | update |
//!
//! A request without the token (`Authorization: Bearer …` for GitHub, `PRIVATE-TOKEN` for
//! GitLab) gets 401. Lists are paginated by [`ForgeStubConfig::per_page`]; the `Link` header's
//! next page points at [`ForgeStubConfig::next_link_base`] when set (another origin, to test
//! that the token does not follow it). [`ForgeStubConfig::redirect_to`] answers every request
//! with a 302 there; [`ForgeStubConfig::forbid_writes`] answers writes with 403.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// How the stub behaves.
#[derive(Debug, Clone)]
pub struct ForgeStubConfig {
    /// The only token accepted.
    pub token: String,
    /// The login `GET /user` answers; `None` answers 403 and comments are written as
    /// `github-actions[bot]`, as for an Actions `GITHUB_TOKEN`.
    pub github_login: Option<String>,
    /// The user name `GET /api/v4/user` answers, and GitLab notes are written as.
    pub gitlab_username: String,
    /// Comments per page of a list.
    pub per_page: usize,
    /// Where `Link: rel="next"` points instead of this stub (another origin).
    pub next_link_base: Option<String>,
    /// Answer every request with a 302 to this URL.
    pub redirect_to: Option<String>,
    /// Answer every create or update with 403.
    pub forbid_writes: bool,
    /// The avatar URL of every commit's author; `None` answers `"author": null`.
    pub avatar_url: Option<String>,
}

impl Default for ForgeStubConfig {
    fn default() -> Self {
        ForgeStubConfig {
            token: "forge-token".into(),
            github_login: None,
            gitlab_username: "project_1_bot".into(),
            per_page: 30,
            next_link_base: None,
            redirect_to: None,
            forbid_writes: false,
            avatar_url: None,
        }
    }
}

/// A comment or note the stub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubComment {
    /// Its id.
    pub id: u64,
    /// The thread: `repos/{owner}/{repo}/issues/{n}` or `projects/{path}/merge_requests/{iid}`
    /// (see [`github_thread`], [`gitlab_thread`]).
    pub thread: String,
    /// Its author's login or user name.
    pub author: String,
    /// Its text.
    pub body: String,
}

/// A request the stub received.
#[derive(Debug, Clone)]
pub struct StubRequest {
    /// The method.
    pub method: String,
    /// The path and query, as sent.
    pub path_and_query: String,
    /// Whether it carried the stub's token.
    pub had_token: bool,
    /// Every header value, for searching for a token.
    pub header_values: Vec<String>,
}

/// The thread of GitHub pull request `number` of `repo` (`owner/name`).
pub fn github_thread(repo: &str, number: u64) -> String {
    format!("repos/{repo}/issues/{number}")
}

/// The thread of GitLab merge request `iid` of project `path` (`group/name`).
pub fn gitlab_thread(path: &str, iid: u64) -> String {
    format!("projects/{}/merge_requests/{iid}", path.replace('/', "%2F"))
}

struct StubState {
    config: ForgeStubConfig,
    comments: Vec<StubComment>,
    next_id: u64,
    requests: Vec<StubRequest>,
    origin: String,
}

type Shared = Arc<Mutex<StubState>>;

/// The running stub; stopped when dropped.
pub struct ForgeStub {
    address: SocketAddr,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForgeStub {
    /// Starts the stub on its own thread and runtime.
    pub fn start_blocking(config: ForgeStubConfig) -> ForgeStub {
        Self::try_start_blocking(config).unwrap_or_else(|error| panic!("{error}"))
    }

    fn try_start_blocking(config: ForgeStubConfig) -> Result<ForgeStub> {
        let (listener, address) = crate::emulator::bind(0)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let shared = Arc::new(Mutex::new(StubState {
            config,
            comments: Vec::new(),
            next_id: 1000,
            requests: Vec::new(),
            origin: format!("http://{address}"),
        }));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("forge-stub-{}", address.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        let router = Router::new().fallback(handle).with_state(thread_shared);
                        let _ = axum::serve(listener, router)
                            .with_graceful_shutdown(async move {
                                let _ = stopped.await;
                            })
                            .await;
                    }
                });
            })
            .map_err(Error::Runtime)?;
        Ok(ForgeStub {
            address,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: the GitHub API URL (`GITHUB_API_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `http://127.0.0.1:PORT/api/v4`: the GitLab API URL (`CI_API_V4_URL`).
    pub fn gitlab_url(&self) -> String {
        format!("{}/api/v4", self.url())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StubState> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a comment by `author` to `thread`, as someone else would have written it.
    pub fn seed_comment(&self, thread: &str, author: &str, body: &str) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        state.comments.push(StubComment {
            id,
            thread: thread.to_owned(),
            author: author.to_owned(),
            body: body.to_owned(),
        });
        id
    }

    /// The comments of `thread`, oldest first.
    pub fn comments(&self, thread: &str) -> Vec<StubComment> {
        self.state()
            .comments
            .iter()
            .filter(|comment| comment.thread == thread)
            .cloned()
            .collect()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<StubRequest> {
        self.state().requests.clone()
    }
}

impl Drop for ForgeStub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = uri.path().to_owned();
    let gitlab = path.starts_with("/api/v4/");
    let token = state.config.token.clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let had_token = if gitlab {
        header("private-token") == token
    } else {
        header("authorization") == format!("Bearer {token}")
    };
    state.requests.push(StubRequest {
        method: method.to_string(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| path.clone(), |value| value.to_string()),
        had_token,
        header_values: headers
            .values()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect(),
    });
    if let Some(target) = state.config.redirect_to.clone() {
        return (StatusCode::FOUND, [("location", target)]).into_response();
    }
    if !had_token {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        );
    }
    let rest = path
        .strip_prefix(if gitlab { "/api/v4/" } else { "/" })
        .unwrap_or_default();
    let parts: Vec<&str> = rest.split('/').collect();
    let author = if gitlab {
        state.config.gitlab_username.clone()
    } else {
        state
            .config
            .github_login
            .clone()
            .unwrap_or_else(|| "github-actions[bot]".to_owned())
    };
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|value| value.get("body").and_then(Value::as_str).map(str::to_owned));
    let write = method != Method::GET;
    if write && state.config.forbid_writes {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"message": "Resource not accessible by integration"}),
        );
    }
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["user"]) if gitlab => reply(StatusCode::OK, json!({"username": author})),
        ("GET", ["user"]) => match &state.config.github_login {
            Some(login) => reply(StatusCode::OK, json!({"login": login})),
            None => reply(
                StatusCode::FORBIDDEN,
                json!({"message": "Resource not accessible by integration"}),
            ),
        },
        ("GET", ["repos", _, _, "commits", _]) => reply(
            StatusCode::OK,
            json!({"author": state.config.avatar_url.as_ref().map(|url| json!({"login": "alice", "avatar_url": url}))}),
        ),
        ("GET", ["repos", _, _, "issues", _, "comments"])
        | ("GET", ["projects", _, "merge_requests", _, "notes"]) => {
            let thread = parts[..parts.len() - 1].join("/");
            list(&state, &thread, &uri, gitlab)
        }
        ("POST", ["repos", _, _, "issues", _, "comments"])
        | ("POST", ["projects", _, "merge_requests", _, "notes"]) => {
            let Some(text) = text else {
                return reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"message": "no body"}),
                );
            };
            state.next_id += 1;
            let comment = StubComment {
                id: state.next_id,
                thread: parts[..parts.len() - 1].join("/"),
                author,
                body: text,
            };
            state.comments.push(comment.clone());
            reply(StatusCode::CREATED, render(&state.origin, &comment, gitlab))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id])
        | ("PUT", ["projects", _, "merge_requests", _, "notes", id]) => {
            let id: u64 = id.parse().unwrap_or_default();
            let origin = state.origin.clone();
            match state.comments.iter_mut().find(|comment| comment.id == id) {
                Some(comment) if comment.author != author => reply(
                    StatusCode::FORBIDDEN,
                    json!({"message": "only the author may edit a comment"}),
                ),
                Some(comment) => {
                    if let Some(text) = text {
                        comment.body = text;
                    }
                    reply(StatusCode::OK, render(&origin, comment, gitlab))
                }
                None => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

fn render(origin: &str, comment: &StubComment, gitlab: bool) -> Value {
    if gitlab {
        json!({"id": comment.id, "body": comment.body, "system": false,
               "author": {"username": comment.author}})
    } else {
        json!({"id": comment.id, "body": comment.body, "user": {"login": comment.author},
               "html_url": format!("{origin}/{}#issuecomment-{}", comment.thread, comment.id)})
    }
}

fn list(state: &StubState, thread: &str, uri: &Uri, gitlab: bool) -> Response {
    let page: usize = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|page| page.parse().ok())
        .unwrap_or(1)
        .max(1);
    let all: Vec<&StubComment> = state
        .comments
        .iter()
        .filter(|comment| comment.thread == thread)
        .collect();
    let per_page = state.config.per_page.max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|comment| render(&state.origin, comment, gitlab))
        .collect();
    let mut response = reply(StatusCode::OK, Value::Array(items));
    if page * per_page < all.len() {
        let base = state
            .config
            .next_link_base
            .clone()
            .unwrap_or_else(|| state.origin.clone());
        let link = format!(
            "<{base}{}?per_page={per_page}&page={}>; rel=\"next\"",
            uri.path(),
            page + 1
        );
        if let Ok(value) = link.parse() {
            response.headers_mut().insert("link", value);
        }
    }
    response
}
