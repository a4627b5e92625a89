//! `completions SHELL`: print a shell completion script on stdout.

use clap::CommandFactory;

use super::Context;
use crate::args::{Cli, CompletionsArgs};
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, args: &CompletionsArgs) -> CommandResult {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "dagster-deploy",
        &mut script,
    );
    context.output.stdout(&String::from_utf8_lossy(&script));
    Ok(())
}
