//! `status`: the session as JSON lines (as the reference prints them), markdown, or a table.

use dagster_deploy_statedir::Session;

use super::Context;
use crate::args::{OutputFormat, StatusArgs};
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, args: &StatusArgs) -> CommandResult {
    let session = Session::open(&crate::settings::statedir(context.statedir.as_deref())?)?;
    let text = match args.output_format {
        OutputFormat::Json => session.status_json_lines()?,
        OutputFormat::Markdown => session.status_markdown()?,
        OutputFormat::Table => session.status_table()?,
    };
    context.output.stdout(&text);
    Ok(())
}
