//! `branch-deployment`: a printer over the branch-deployment stage
//! ([`dagster_deploy_pipeline::branch`]): print (creating or updating it) the branch deployment of the current
//! pull request, close it with `--mark-closed`, or `delete NAME`.

use dagster_deploy_ci_context as ci;
use dagster_deploy_pipeline::branch::{
    BranchSettings, lookup_branch_deployment, upsert_branch_deployment,
};

use super::Context;
use crate::args::{BranchDeploymentArgs, BranchDeploymentCommand};
use crate::failure::CommandResult;
use crate::settings::{CloudSettings, env_var};

pub(crate) async fn run(context: &Context<'_>, args: &BranchDeploymentArgs) -> CommandResult {
    let output = context.output;
    if let Some(BranchDeploymentCommand::Delete(delete)) = &args.command {
        let settings = CloudSettings::new(&delete.cloud, context.matches, output);
        let client = settings.client()?;
        client.delete_branch_deployment(&delete.name).await?;
        output.info(format!("Deleted branch deployment {}", delete.name));
        return Ok(());
    }
    let settings = CloudSettings::new(&args.cloud, context.matches, output);
    let client = settings.client()?;
    // The reference takes the project directory as a positional argument.
    let project_dir = args
        .project_dir_positional
        .as_ref()
        .unwrap_or(&args.project_dir);
    let ci_context = ci::detect(&|name: &str| env_var(name), project_dir)?;
    let name = if args.read_only {
        // A lookup needs only the repository and the branch, not the commit's metadata.
        lookup_branch_deployment(&client, &ci_context).await?
    } else {
        let branch = BranchSettings {
            base_deployment: settings.deployment()?.map(|resolved| resolved.value),
            snapshot_base_condition: args
                .snapshot_base_condition
                .map(super::start::snapshot_condition),
            mark_closed: args.mark_closed,
            author_avatar_url: super::notify::author_avatar(&ci_context, output).await,
        };
        upsert_branch_deployment(&client, &ci_context, project_dir, &branch).await?
    };
    if args.mark_closed {
        output.info(format!("Marked branch deployment {name} closed"));
    }
    output.stdout_line(&name);
    Ok(())
}
