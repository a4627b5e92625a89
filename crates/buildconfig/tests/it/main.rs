//! Integration tests of the public API: the corpus of bad inputs with snapshots of the rendered
//! messages, and a property test that the parser never panics.

mod bad_inputs;
mod never_panics;
mod parse_time;

use dagster_deploy_buildconfig::Error;

/// An error rendered as a program that shows it would: each problem on its own line (the error
/// itself when it is not a list of problems), each followed by its help.
pub(crate) fn render(error: &Error) -> String {
    let entries: Vec<(String, Option<&str>)> = if error.diagnostics().is_empty() {
        vec![(error.to_string(), error.help())]
    } else {
        error
            .diagnostics()
            .iter()
            .map(|problem| (problem.to_string(), Some(problem.help())))
            .collect()
    };
    entries
        .into_iter()
        .map(|(message, help)| match help {
            Some(help) => format!("error: {message}\n  help: {help}"),
            None => format!("error: {message}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
