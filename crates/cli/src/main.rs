//! The `dagster-deploy` binary: parse the command line, run the command, map the outcome to an
//! exit code. Everything else lives in the modules below and in the library crates.

mod args;
mod commands;
mod failure;
mod output;
mod reference;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Called as `dg` or `dagster-cloud`, the reference's command line becomes ours first.
    let environment = reference::Environment {
        var: &settings::env_var,
        stdin_is_terminal: std::io::stdin().is_terminal(),
        holds_session: &commands::holds_session,
    };
    let invocation = match reference::translate(std::env::args_os().collect(), &environment) {
        Ok(invocation) => invocation,
        Err(failure) => {
            output::Output::new(false).failure(&failure);
            return ExitCode::from(failure.kind as u8);
        }
    };
    let (cli, matches) = args::parse(invocation.args);
    let output = output::Output::new(cli.global.verbose);
    for warning in &invocation.warnings {
        output.warn(warning);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output.failure(&failure::Failure::internal(format!(
                "cannot start the async runtime: {error}"
            )));
            return ExitCode::from(failure::ExitKind::Internal as u8);
        }
    };
    match runtime.block_on(commands::run(cli, &matches, &output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output.failure(&failure);
            ExitCode::from(failure.kind as u8)
        }
    }
}
