//! `branch-deployment`: print (creating or updating it) the branch deployment of the current
//! pull request, close it with `--mark-closed`, or `delete NAME`.

use dagster_deploy_ci_context as ci;

use super::Context;
use super::start::branch_request;
use crate::args::{BranchDeploymentArgs, BranchDeploymentCommand};
use crate::failure::{CommandResult, Failure};
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
    let ci_context = ci::detect(&|name: &str| env_var(name), &args.project_dir)?;
    let name = if args.read_only {
        // A lookup needs only the repository and the branch, not the commit's metadata.
        let repo = ci_context.repo.as_ref().map(|repo| repo.full_name());
        let branch = ci_context
            .pull_request
            .as_ref()
            .and_then(|pull_request| pull_request.head_ref.clone())
            .or_else(|| ci_context.branch.clone());
        let (Some(repo), Some(branch)) = (repo, branch) else {
            return Err(Failure::config("cannot tell the repository and branch of this checkout")
                .with_hint("run inside a pull or merge request, or in a git checkout with an origin remote and a branch"));
        };
        client.branch_deployment_name(&repo, &branch).await?
    } else {
        let mut request = branch_request(&ci_context, &args.project_dir, args.mark_closed)?;
        request.author_avatar_url =
            super::notify::author_avatar(&ci_context, &request.commit_hash, output).await;
        request.base_deployment_name = settings.deployment()?.map(|resolved| resolved.value);
        client
            .create_or_update_branch_deployment(&request)
            .await
            .map_err(Failure::from)?
    };
    if args.mark_closed {
        output.info(format!("Marked branch deployment {name} closed"));
    }
    output.stdout_line(&name);
    Ok(())
}
