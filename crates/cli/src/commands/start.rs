//! `start`: validate the configuration (and the connection), resolve the deployment (full, or
//! the branch deployment of the current pull request), then open the session.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use dagster_deploy_ci_context as ci;
use dagster_deploy_cloud_client::{
    BranchDeploymentRequest, CloudClient, PullRequestStatus,
    SnapshotBaseCondition as ApiSnapshotCondition,
};
use dagster_deploy_statedir::{BuildConfig, BuildMetadata, NewLocation, Session, SessionInfo};

use super::{Context, config};
use crate::args::{DeploymentType, SnapshotBaseCondition, StartArgs};
use crate::failure::Failure;
use crate::settings::{CloudSettings, env_var};

/// What `start` opened, for `up`.
pub(crate) struct Started {
    pub(crate) statedir: PathBuf,
}

pub(crate) async fn run(context: &Context<'_>, args: &StartArgs) -> Result<Started, Failure> {
    let output = context.output;
    let settings = CloudSettings::new(&args.cloud, context.matches, output);
    let statedir = crate::settings::statedir(context.statedir.as_deref())?;

    // Everything is checked before the state directory is touched.
    let loaded = config::load(&args.config, Some(&statedir))?;
    config::check_requested(&loaded.yaml, &args.location_names, &loaded.location_file)?;
    output.info(format!(
        "Configuration valid: {} location(s) in {}",
        loaded.yaml.locations().len(),
        loaded.source
    ));
    let deployment = settings.require_deployment()?;
    let org_url = settings.org_url()?;

    let ci_context = ci::detect(&|name: &str| env_var(name), &loaded.project_dir)?;
    output.detail(format!("CI provider: {:?}", ci_context.provider));
    let deployment_type = resolve_deployment_type(context, args, &loaded.project_dir, &deployment)?;

    // A pull request gets its branch deployment unless the user explicitly asked for the full
    // deployment (the reference ignores an explicit choice there).
    let wants_branch = match args.deployment_type {
        Some(kind) => kind == DeploymentType::Branch,
        None => deployment_type == DeploymentType::Branch || ci_context.pull_request.is_some(),
    };
    let client: Option<CloudClient> = if args.skip_validation && !wants_branch {
        None
    } else {
        Some(settings.client()?)
    };
    if let (false, Some(client)) = (args.skip_validation, &client) {
        client.organization_settings().await?;
        output.info(format!("Connected to {}", org_url.as_str()));
    }

    let (deployment_name, is_branch_deployment) = match &client {
        Some(client) if wants_branch => {
            let name = branch_deployment(
                client,
                &ci_context,
                &loaded.project_dir,
                &deployment,
                args,
                output,
            )
            .await?;
            // The name comes from Dagster+ and becomes a URL path segment of every deploy.
            dagster_deploy_cloud_client::validate_deployment_name(&name)?;
            output.info(format!(
                "Deploying to branch deployment {name}, with {deployment} as the base deployment"
            ));
            (name, true)
        }
        _ => {
            output.info(format!("Deploying to {deployment}"));
            (deployment.clone(), false)
        }
    };
    // The project's defs folder relative to the checkout, with `/` separators
    // (reference-behaviour §3.3).
    let defs_base_path = loaded.defs_dir.as_ref().and_then(|dir| {
        let relative = dir.strip_prefix(ci_context.repo_root.as_ref()?).ok()?;
        Some(
            relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        )
    });

    let git_url = args.git_url.clone().or_else(|| ci_context.git_url.clone());
    let commit_hash = args
        .commit_hash
        .clone()
        .or_else(|| ci_context.commit_hash.clone());
    let status_url = args
        .status_url
        .clone()
        .or_else(|| ci_context.run_url.clone());
    let repo = ci_context.repo.as_ref();
    let location_file = loaded.location_file.to_string_lossy().into_owned();
    let project_dir = loaded.project_dir.to_string_lossy().into_owned();
    let locations: Vec<NewLocation> = loaded
        .yaml
        .locations()
        .iter()
        .filter(|location| {
            args.location_names.is_empty()
                || args
                    .location_names
                    .iter()
                    .any(|name| name == location.name().as_str())
        })
        .map(|location| NewLocation {
            location_name: location.name().as_str().to_owned(),
            url: org_url.as_str().to_owned(),
            deployment_name: deployment_name.clone(),
            location_file: location_file.clone(),
            is_branch_deployment,
            build: BuildMetadata {
                git_url: git_url.clone(),
                commit_hash: commit_hash.clone(),
                build_config: location.build().map(|build| BuildConfig {
                    directory: build.directory().map(str::to_owned),
                    registry: build
                        .registry()
                        .map(|registry| registry.as_str().to_owned()),
                }),
                git_provider: ci_context
                    .git_provider
                    .map(|provider| provider.as_str().to_owned()),
                repo_owner: repo.map(|repo| repo.owner.clone()),
                repo_name: repo.map(|repo| repo.name.clone()),
                base_branch: ci_context.base_branch.clone(),
                defs_base_path: defs_base_path.clone(),
            },
            status_url: status_url.clone(),
            project_dir: Some(project_dir.clone()),
        })
        .collect();

    let info = SessionInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: jiff::Timestamp::now(),
        project_dir: loaded.project_dir.clone(),
        organization_url: org_url.as_str().to_owned(),
    };
    // The generated file goes in first, so no location file ever points at a missing one.
    let session = match &loaded.generated {
        Some(text) => Session::create_with_location_file(&statedir, info, locations, text)?,
        None => Session::create(&statedir, info, locations)?,
    };
    super::report_repairs(output, &session.take_repairs());
    let names: Vec<String> = session
        .locations()?
        .into_iter()
        .map(|state| state.location_name)
        .collect();
    output.info(format!(
        "Opened a deploy session in {} for:",
        statedir.display()
    ));
    for name in &names {
        output.info(format!("  - {name}"));
    }
    Ok(Started { statedir })
}

fn resolve_deployment_type(
    context: &Context<'_>,
    args: &StartArgs,
    project_dir: &std::path::Path,
    deployment: &str,
) -> Result<DeploymentType, Failure> {
    if let Some(kind) = args.deployment_type {
        return Ok(kind);
    }
    let guess = ci::guess_deployment_type(project_dir);
    let kind = match guess.deployment_type {
        ci::DeploymentType::Branch => DeploymentType::Branch,
        ci::DeploymentType::Full => DeploymentType::Full,
    };
    context.output.info(guess.message(deployment));
    if args.yes {
        return Ok(kind);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "the deployment type was guessed and needs confirmation, but there is no terminal",
        )
        .with_hint("pass --deployment-type full|branch, or --yes to accept the guess"));
    }
    context.output.info("Do you want to continue? [y/N]");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| Failure::usage(format!("cannot read the answer: {error}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(kind)
    } else {
        Err(Failure::usage("deployment cancelled"))
    }
}

/// Creates or updates the branch deployment for the current pull request (or, outside one,
/// for the local branch), and returns its name. Any failure is an error: we never fall back to
/// the base deployment silently (reference-behaviour ref-bug 15).
async fn branch_deployment(
    client: &CloudClient,
    ci_context: &ci::CiContext,
    project_dir: &std::path::Path,
    base_deployment: &str,
    args: &StartArgs,
    output: &crate::output::Output,
) -> Result<String, Failure> {
    let mut request = branch_request(ci_context, project_dir, false)?;
    request.author_avatar_url =
        super::notify::author_avatar(ci_context, &request.commit_hash, output).await;
    request.base_deployment_name = Some(base_deployment.to_owned());
    request.snapshot_base_condition =
        args.snapshot_base_condition
            .map(|condition| match condition {
                SnapshotBaseCondition::OnCreate => ApiSnapshotCondition::OnCreate,
                SnapshotBaseCondition::OnUpdate => ApiSnapshotCondition::OnUpdate,
            });
    Ok(client.create_or_update_branch_deployment(&request).await?)
}

/// The branch-deployment request for the current context: the pull or merge request when there
/// is one, else the checked-out branch of the local git checkout.
pub(crate) fn branch_request(
    ci_context: &ci::CiContext,
    project_dir: &std::path::Path,
    mark_closed: bool,
) -> Result<BranchDeploymentRequest, Failure> {
    let commit = ci::commit_metadata(project_dir, None)?;
    let data = if ci_context.pull_request.is_some() {
        ci::branch_deployment_request(ci_context, &commit, mark_closed)
    } else {
        ci::branch_deployment_request_for_branch(ci_context, &commit, mark_closed)
    }
    .map_err(|error| {
        Failure::from(error).with_hint(
            "run inside a pull or merge request or on a git branch, or pass --deployment-type full",
        )
    })?;
    Ok(BranchDeploymentRequest {
        repo_name: data.repo_name,
        branch_name: data.branch_name,
        branch_url: data.branch_url,
        pull_request_url: data.pull_request_url,
        pull_request_status: Some(match data.pull_request_status {
            ci::PullRequestStatus::Open => PullRequestStatus::Open,
            ci::PullRequestStatus::Closed => PullRequestStatus::Closed,
            ci::PullRequestStatus::Merged => PullRequestStatus::Merged,
        }),
        pull_request_number: data.pull_request_number,
        commit_hash: data.commit.hash,
        timestamp: data.commit.timestamp,
        commit_message: Some(data.commit.message),
        commit_url: data.commit.url,
        author_name: Some(data.commit.author_name),
        author_email: Some(data.commit.author_email),
        author_avatar_url: data.commit.author_avatar_url,
        base_deployment_name: None,
        snapshot_base_condition: None,
    })
}
