//! `status`: the session as JSON lines (as the reference prints them), markdown, or a table.

use super::Context;
use super::printer::{count, thousands};
use crate::args::{OutputFormat, StatusArgs};
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, args: &StatusArgs) -> CommandResult {
    let session = super::open_session(context)?;
    match args.output_format {
        OutputFormat::Json => context.output.stdout_json(&session.status_json_lines()?),
        OutputFormat::Markdown => context.output.stdout(&session.status_markdown()?),
        OutputFormat::Table => {
            let (table, counts) = session.status_table_with_counts()?;
            context.output.stdout(&table);
            // The count line goes to stderr, so that stdout holds the table alone.
            let total: usize = counts.iter().map(|(_, number)| number).sum();
            let counts: Vec<String> = counts
                .iter()
                .map(|(status, number)| format!("{} {status}", thousands(*number)))
                .collect();
            context.output.info(format!(
                "{}: {}",
                count(total, "location", "locations"),
                counts.join(", ")
            ));
        }
    }
    Ok(())
}
