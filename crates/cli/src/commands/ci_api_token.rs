//! `ci-api-token create`: mint an agent token for CI and print it alone on stdout.

use super::Context;
use crate::args::CiApiTokenCommand;
use crate::failure::CommandResult;
use crate::settings::CloudSettings;

pub(crate) async fn run(context: &Context<'_>, command: &CiApiTokenCommand) -> CommandResult {
    match command {
        CiApiTokenCommand::Create(args) => {
            let settings = CloudSettings::new(&args.cloud, context.matches, context.output);
            let client = settings.client()?;
            let token = client
                .create_agent_token(args.description.as_deref())
                .await?;
            context.output.info(
                "Created an agent token; it is printed on stdout only. Store it as a CI secret.",
            );
            context.output.stdout_line(token.expose());
        }
    }
    Ok(())
}
