//! The `dagster-deploy` binary: parse the command line, run the command, map the outcome to an
//! exit code. Everything else lives in the modules below and in the library crates.

mod args;
mod commands;
mod failure;
mod output;
mod settings;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (cli, matches) = args::parse();
    let output = output::Output::new(cli.global.verbose);
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
