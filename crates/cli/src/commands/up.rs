//! `up`: start, build-and-push and deploy in one go.

use super::{Context, build_and_push, deploy, start};
use crate::args::{DeployArgs, UpArgs};
use crate::failure::CommandResult;

pub(crate) async fn run(context: &Context<'_>, args: &UpArgs) -> CommandResult {
    build_and_push::check_args(&args.build)?;
    let started = start::run(context, &args.start).await?;
    let context = Context {
        statedir: Some(started.statedir),
        matches: context.matches,
        output: context.output,
    };
    build_and_push::run(&context, &args.build, &args.start.location_names).await?;
    let deploy_args = DeployArgs {
        location_names: args.start.location_names.clone(),
        location_load_timeout: args.location_load_timeout,
        agent_heartbeat_timeout: args.agent_heartbeat_timeout,
        dry_run: false,
        skip_unchanged: args.skip_unchanged,
    };
    deploy::run(&context, &deploy_args).await
}
