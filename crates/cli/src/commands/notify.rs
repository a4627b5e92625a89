//! `notify`: the session's deploy report as one pull-request comment (GitHub) or merge-request
//! note (GitLab), created on the first run and updated in place on every later one; and the
//! commit author's avatar for branch deployments ([`author_avatar`]).
//!
//! The stage (the report, the pull request, the comment, the avatar) is `pipeline::notify`;
//! this command adds what only a CLI decides: which token and API URL the environment gives,
//! what to say when there is nothing to comment on, and the exit code.
//!
//! Outside a pull or merge request, on a CI system without one of the two forges, or without a
//! token, `notify` says why it posts nothing and succeeds, so that one CI file serves pushes
//! and pull requests alike; `--strict` makes each of these a configuration error. A token is
//! read from the environment CI provides and never printed; the forge crate sends it only to
//! the API origin CI names.

use std::time::Duration;

use dagster_deploy_ci_context as ci;
use dagster_deploy_forge::{CommentOutcome, Forge, ForgeClient, ForgeOptions, ForgeToken};
use dagster_deploy_pipeline::notify::{
    NotifyTarget, head_commit_avatar, notify_target, post_report,
};

use super::Context;
use crate::args::{NotifyArgs, env};
use crate::failure::{CommandResult, Failure};
use crate::output::Output;
use crate::settings::{env_var, report_request_timeout, request_timeout};

/// How long the avatar lookup may take in all: it decorates a branch deployment and must never
/// hold up a deploy.
const AVATAR_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(context: &Context<'_>, args: &NotifyArgs) -> CommandResult {
    let output = context.output;
    let session = super::open_session(context)?;
    let skip = |reason: String, hint: &str| -> CommandResult {
        if args.strict {
            Err(Failure::config(reason).with_hint(hint.to_owned()))
        } else {
            output.info(format!("notify: {reason}; no comment posted"));
            Ok(())
        }
    };
    let ci_context = ci::detect(&|name: &str| env_var(name), &args.project_dir)?;
    let (forge, target) = match notify_target(&ci_context, &|name: &str| env_var(name)) {
        NotifyTarget::Post { forge, target } => (forge, target),
        NotifyTarget::NotAPullRequest => {
            return skip(
                "this run is not part of a pull or merge request".to_owned(),
                "run notify in a pull-request (GitHub) or merge-request (GitLab) pipeline",
            );
        }
        NotifyTarget::UnsupportedCi(other) => {
            return skip(
                format!("notify comments on GitHub and GitLab only, and this is {other}"),
                "run notify on GitHub Actions or GitLab CI",
            );
        }
    };
    let options = forge_options(context, output);
    let client = match forge {
        Forge::GitHub => {
            let Some(token) = env_var(env::GITHUB_TOKEN) else {
                return skip(
                    format!("{} is not set", env::GITHUB_TOKEN),
                    "pass `GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` in the step's env, with `permissions: pull-requests: write`",
                );
            };
            ForgeClient::github(&github_api_url(), ForgeToken::new(token), options)?
        }
        Forge::GitLab => {
            let Some(token) = env_var(env::GITLAB_TOKEN) else {
                let reason = if env_var(env::CI_JOB_TOKEN).is_some() {
                    format!(
                        "{} is not set, and GitLab does not let {} write merge-request notes",
                        env::GITLAB_TOKEN,
                        env::CI_JOB_TOKEN
                    )
                } else {
                    format!("{} is not set", env::GITLAB_TOKEN)
                };
                return skip(
                    reason,
                    "set GITLAB_TOKEN (a masked CI/CD variable) to a project access token with the `api` scope and the Reporter role",
                );
            };
            ForgeClient::gitlab(&gitlab_api_url(), ForgeToken::new(token), options)?
        }
    };
    output.detail(format!(
        "notify: {forge} pull request {}#{} through {}",
        target.repository,
        target.number,
        client.api_origin()
    ));
    let outcome = post_report(&session, &client, &target).await?;
    let (done, url) = match &outcome {
        CommentOutcome::Created { url, .. } => ("Posted the deploy report", url),
        CommentOutcome::Updated { url, .. } => ("Updated the deploy report", url),
        CommentOutcome::Unchanged { url, .. } => ("The deploy report is up to date", url),
    };
    let place = match forge {
        Forge::GitLab => "merge request",
        Forge::GitHub => "pull request",
    };
    output.info(format!(
        "{done} on {place} {}#{}{}",
        target.repository,
        target.number,
        url.as_deref()
            .map(|url| format!(": {url}"))
            .unwrap_or_default()
    ));
    Ok(())
}

/// The GitHub REST API root: `GITHUB_API_URL` as Actions sets it, else derived from
/// `GITHUB_SERVER_URL` (GitHub Enterprise Server serves it under `/api/v3`), else github.com's.
fn github_api_url() -> String {
    if let Some(url) = env_var(env::GITHUB_API_URL) {
        return url;
    }
    match env_var(env::GITHUB_SERVER_URL) {
        Some(server) if server.trim_end_matches('/') != "https://github.com" => {
            format!("{}/api/v3", server.trim_end_matches('/'))
        }
        _ => "https://api.github.com".to_owned(),
    }
}

/// The GitLab v4 API root: `CI_API_V4_URL` as GitLab CI sets it, else `CI_SERVER_URL/api/v4`,
/// else gitlab.com's.
fn gitlab_api_url() -> String {
    env_var(env::CI_API_V4_URL).unwrap_or_else(|| {
        let server = env_var(env::CI_SERVER_URL).unwrap_or_else(|| "https://gitlab.com".into());
        format!("{}/api/v4", server.trim_end_matches('/'))
    })
}

fn forge_options(context: &Context<'_>, output: &Output) -> ForgeOptions {
    let mut options = ForgeOptions::default();
    let timeout = request_timeout(context.matches);
    report_request_timeout(output, timeout.as_ref(), options.request_timeout);
    if let Some(timeout) = timeout {
        options.request_timeout = Duration::from_secs(timeout.value);
    }
    options
}

/// The avatar GitHub shows for the author of the commit a branch deployment is made for, when
/// this is GitHub Actions with `GITHUB_TOKEN` set (as the reference looks it up). A failed
/// lookup never fails the deploy: it is one warning, and the branch deployment goes without.
pub(crate) async fn author_avatar(ci_context: &ci::CiContext, output: &Output) -> Option<String> {
    if ci_context.provider != ci::CiProvider::GitHub {
        return None;
    }
    let token = env_var(env::GITHUB_TOKEN)?;
    let mut options = ForgeOptions {
        request_timeout: AVATAR_TIMEOUT,
        ..ForgeOptions::default()
    };
    options.retry.max_retries = 1;
    let lookup = async {
        let client = ForgeClient::github(&github_api_url(), ForgeToken::new(token), options)?;
        head_commit_avatar(ci_context, &client).await
    };
    match tokio::time::timeout(AVATAR_TIMEOUT * 2, lookup).await {
        Ok(Ok(avatar)) => avatar,
        Ok(Err(error)) => {
            output.warn(format!(
                "could not look up the commit author's avatar on GitHub ({error}); the branch deployment goes without it"
            ));
            None
        }
        Err(_) => {
            output.warn(format!(
                "GitHub did not answer the commit author's avatar lookup within {} s; the branch deployment goes without it",
                (AVATAR_TIMEOUT * 2).as_secs()
            ));
            None
        }
    }
}
