//! One module per verb. Each composes library calls; when a command grows real logic, that
//! logic moves into a library crate.

mod branch_deployment;
mod build_and_push;
mod check;
mod ci_api_token;
mod completions;
mod config;
mod configure;
mod deploy;
mod image;
mod locations;
mod notify;
mod printer;
mod set_build_output;
mod start;
mod state;
mod status;
mod up;

use std::path::PathBuf;

use dagster_deploy_statedir::{Repair, Session};

use crate::args::{Cli, Command};
use crate::failure::{CommandResult, Failure};
use crate::output::Output;

/// What every command gets besides its own arguments.
pub(crate) struct Context<'a> {
    pub(crate) statedir: Option<PathBuf>,
    pub(crate) matches: &'a clap::ArgMatches,
    pub(crate) output: &'a Output,
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli, matches: &clap::ArgMatches, output: &Output) -> CommandResult {
    let context = Context {
        statedir: cli.global.statedir.clone(),
        matches,
        output,
    };
    match cli.command {
        Command::Start(args) => start::run(&context, &args).await.map(drop),
        Command::BuildAndPush(args) => {
            build_and_push::run(&context, &args.build, &args.location_names).await
        }
        Command::SetBuildOutput(args) => set_build_output::run(&context, &args),
        Command::Deploy(args) => deploy::run(&context, &args).await,
        Command::Up(args) => up::run(&context, &args).await,
        Command::Status(args) => status::run(&context, &args),
        Command::Notify(args) => notify::run(&context, &args).await,
        Command::Locations(command) => locations::run(&context, &command),
        Command::State(command) => state::run(&context, &command),
        Command::Check(args) => check::run(&context, &args).await,
        Command::Image(command) => image::run(&context, &command).await,
        Command::BranchDeployment(args) => branch_deployment::run(&context, &args).await,
        Command::CiApiToken(command) => ci_api_token::run(&context, &command).await,
        Command::Configure(args) => configure::run(&context, &args),
        Command::Completions(args) => completions::run(&context, &args),
    }
}

/// Whether `dir` holds a deploy session: any location file (ours or the reference's).
pub(crate) fn holds_session(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().starts_with("location-"))
    })
}

/// Opens the session of the state directory, and says so if an interrupted command had left a
/// change half done that opening it completed.
pub(crate) fn open_session(context: &Context<'_>) -> Result<Session, Failure> {
    let session = Session::open(&crate::settings::statedir(context.statedir.as_deref())?)?;
    report_repairs(context.output, &session.take_repairs());
    Ok(session)
}

/// Tells the user about interrupted changes that were completed (or, in a read-only copy,
/// read as completed), so that a session never changes silently.
pub(crate) fn report_repairs(output: &Output, repairs: &[Repair]) {
    for repair in repairs {
        let started = repair
            .started_at
            .map(|at| format!(", started {at}"))
            .unwrap_or_default();
        let done = if repair.on_disk {
            "this command completed the change"
        } else {
            "it was read as completed (the copy is not writable, so it was left as it is)"
        };
        output.warn(format!(
            "an earlier command (process {}{started}) was interrupted while it was changing the session ({}): it had changed {} of {} file(s); {done}, so every location holds the new value",
            repair.pid,
            repair.operation,
            repair.already_done,
            repair.changes,
        ));
        if !repair.kept.is_empty() {
            output.warn(format!(
                "{} file(s) had been changed by another tool since, and were kept as they are: {}",
                repair.kept.len(),
                repair.kept.join(", ")
            ));
        }
    }
}
