//! `start`: a printer over the start stage ([`dagster_deploy_pipeline::start`]), which
//! validates the configuration (and the connection), resolves the deployment (full, or the
//! branch deployment of the current pull request), then opens the session. The CLI's part is
//! its settings, and asking the user to confirm a guessed deployment type.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use dagster_deploy_cloud_client::SnapshotBaseCondition as ApiSnapshotCondition;
use dagster_deploy_pipeline::load_config;
use dagster_deploy_pipeline::start::{
    DeploymentType as StageDeploymentType, DeploymentTypeGuess, StartPlan, StartSettings,
};

use super::printer::Printer;
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
    let printer = Printer::new(output);
    let settings = CloudSettings::new(&args.cloud, context.matches, output);
    let statedir = crate::settings::statedir(context.statedir.as_deref())?;

    // Everything is checked before the state directory is touched.
    let loaded = load_config(&config::source(&args.config), Some(&statedir))?;
    loaded.check_requested(&args.location_names)?;
    output.info(format!(
        "Configuration valid: {} location(s) in {}",
        loaded.yaml.locations().len(),
        loaded.source
    ));
    if args.no_clean_statedir && loaded.generated.is_some() {
        return Err(Failure::usage(
            "--no-clean-statedir keeps other locations of a session opened from a dagster_cloud.yaml; a dg project's session is always opened anew",
        )
        .with_hint("drop --no-clean-statedir, or name the file with --dagster-cloud-yaml"));
    }
    let deployment = settings.require_deployment()?;
    let organization_url = settings.org_url()?;
    let start = StartSettings {
        statedir: statedir.clone(),
        location_names: args.location_names.clone(),
        deployment: deployment.clone(),
        organization_url,
        // The reference's `--require-branch-deployment` is `--deployment-type branch`.
        deployment_type: args
            .deployment_type
            .or(args
                .require_branch_deployment
                .then_some(DeploymentType::Branch))
            .map(|kind| match kind {
                DeploymentType::Full => StageDeploymentType::Full,
                DeploymentType::Branch => StageDeploymentType::Branch,
            }),
        guess_deployment_type: !args.no_require_branch_deployment,
        keep_other_locations: args.no_clean_statedir,
        git_url: args.git_url.clone(),
        commit_hash: args.commit_hash.clone(),
        status_url: args.status_url.clone(),
        snapshot_base_condition: args.snapshot_base_condition.map(snapshot_condition),
        skip_validation: args.skip_validation,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut plan = StartPlan::new(loaded, start, &|name: &str| env_var(name), &printer)?;
    if let Some(guess) = plan.guess() {
        confirm_guess(context, args, guess, &deployment)?;
    }
    if plan.wants_branch_deployment() {
        let avatar = super::notify::author_avatar(plan.ci_context(), output).await;
        plan.set_author_avatar(avatar);
    }
    let client = if plan.needs_client() {
        Some(settings.client()?)
    } else {
        None
    };
    let started = plan.open(client.as_ref(), &printer).await?;
    super::report_repairs(output, &started.session.take_repairs());
    output.info(format!(
        "Opened a deploy session in {} for:",
        statedir.display()
    ));
    for name in &started.locations {
        output.info(format!("  - {name}"));
    }
    Ok(Started { statedir })
}

/// The API's value of `--snapshot-base-condition`.
pub(crate) fn snapshot_condition(condition: SnapshotBaseCondition) -> ApiSnapshotCondition {
    match condition {
        SnapshotBaseCondition::OnCreate => ApiSnapshotCondition::OnCreate,
        SnapshotBaseCondition::OnUpdate => ApiSnapshotCondition::OnUpdate,
    }
}

/// Shows the guessed deployment type and, unless `--yes`, asks the user to confirm it.
fn confirm_guess(
    context: &Context<'_>,
    args: &StartArgs,
    guess: &DeploymentTypeGuess,
    deployment: &str,
) -> Result<(), Failure> {
    context.output.info(guess.message(deployment));
    if args.yes {
        return Ok(());
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
        Ok(())
    } else {
        Err(Failure::usage("deployment cancelled"))
    }
}
