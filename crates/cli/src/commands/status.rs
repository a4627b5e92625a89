//! `status`: the session as JSON lines (as the reference prints them), markdown, or a table.

use super::Context;
use crate::args::{OutputFormat, StatusArgs};
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, args: &StatusArgs) -> CommandResult {
    let session = super::open_session(context)?;
    match args.output_format {
        OutputFormat::Json => context.output.stdout_json(&session.status_json_lines()?),
        OutputFormat::Markdown => context.output.stdout(&session.status_markdown()?),
        OutputFormat::Table => context.output.stdout(&session.status_table()?),
    }
    Ok(())
}
