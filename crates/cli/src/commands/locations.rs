//! `locations list|select|deselect`.

use super::Context;
use crate::args::LocationsCommand;
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, command: &LocationsCommand) -> CommandResult {
    let session = super::open_session(context)?;
    match command {
        LocationsCommand::List => {
            let mut text = String::new();
            for state in session.locations()? {
                text.push_str(&state.location_name);
                if !state.selected {
                    text.push_str(" DESELECTED");
                }
                text.push('\n');
            }
            context.output.stdout(&text);
        }
        LocationsCommand::Select(args) => {
            session.set_selected(&args.names, true)?;
            super::report_repairs(context.output, &session.take_repairs());
            context
                .output
                .info(format!("Selected locations: {}", args.names.join(", ")));
        }
        LocationsCommand::Deselect(args) => {
            session.set_selected(&args.names, false)?;
            super::report_repairs(context.output, &session.take_repairs());
            context
                .output
                .info(format!("Deselected locations: {}", args.names.join(", ")));
        }
    }
    Ok(())
}
