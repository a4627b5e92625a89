//! `state merge DIR…`: the fan-in of parallel CI jobs that each built some locations.

use dagster_deploy_statedir::Session;

use super::Context;
use crate::args::StateCommand;
use crate::failure::CommandResult;

pub(crate) fn run(context: &Context<'_>, command: &StateCommand) -> CommandResult {
    match command {
        StateCommand::Merge(args) => {
            let target = crate::settings::statedir(context.statedir.as_deref())?;
            let report = Session::merge(&target, &args.dirs)?;
            super::report_repairs(context.output, &report.repairs);
            for taken in &report.taken {
                context.output.info(format!(
                    "Took the build output of {} from {}",
                    taken.location,
                    taken.source.display()
                ));
            }
            context.output.info(format!(
                "Merged {} session copies into {}: {} location(s)",
                args.dirs.len(),
                target.display(),
                report.locations
            ));
            if !report.unbuilt.is_empty() {
                context.output.warn(format!(
                    "no image recorded yet for: {}",
                    report.unbuilt.join(", ")
                ));
            }
        }
    }
    Ok(())
}
