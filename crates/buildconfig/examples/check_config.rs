//! Checks a deploy configuration and prints every problem with its position, kind and help:
//! what a platform tool embedding this crate would show its users.
//!
//! ```text
//! cargo run -p dagster-deploy-buildconfig --example check_config [-- PATH]
//! ```
//!
//! PATH is a `dagster_cloud.yaml`, or a folder inside a dg project or workspace (its projects'
//! `dg.toml`, `pyproject.toml`, `build.yaml` and `container_context.yaml` are checked). Without
//! PATH, two built-in files are checked: a valid one and one with several mistakes. The exit
//! status is 1 when PATH is given and invalid.

#![allow(clippy::print_stdout, reason = "an example prints what it found")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dagster_deploy_buildconfig::{DagsterCloudYaml, DgContext, Error};

const VALID: &str = "\
defaults:
  build:
    registry: ghcr.io/acme/data
locations:
  - location_name: sales
    code_source:
      module_name: sales.definitions
  - location_name: marketing
    code_source:
      package_name: marketing
    agent_queue: eu
";

const WITH_MISTAKES: &str = "\
locations:
  - location_name: sales
    code_source:
      module: sales.definitions
    build:
      registry: ghcr.io/acme/sales:latest
  - location_name: sales
    image: [python]
";

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        for (name, text) in [("valid.yaml", VALID), ("with-mistakes.yaml", WITH_MISTAKES)] {
            println!("== {name}");
            show(DagsterCloudYaml::parse(text, Path::new(name)));
        }
        return ExitCode::SUCCESS;
    };
    let checked = if path.is_dir() {
        // A dg project or workspace: its generated dagster_cloud.yaml is what gets deployed.
        DgContext::discover(&path).and_then(|dg| {
            let text = dg.to_dagster_cloud_yaml()?;
            DagsterCloudYaml::parse(&text, &dg.root().join("dagster_cloud.yaml"))
        })
    } else {
        DagsterCloudYaml::load(&path)
    };
    if show(checked) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the locations of a valid configuration, or every problem of an invalid one;
/// returns whether it is valid.
fn show(checked: Result<DagsterCloudYaml, Error>) -> bool {
    match checked {
        Ok(config) => {
            for location in config.locations() {
                let registry = location
                    .registry()
                    .map_or("none", |registry| registry.as_str());
                let code = location.code_source().map_or("none".to_owned(), |code| {
                    format!("{} = {}", code.key(), code.value())
                });
                println!("{}: code {code}, registry {registry}", location.name());
            }
            true
        }
        Err(error) if error.diagnostics().is_empty() => {
            // The file could not be read or parsed: one error, with its cause chain.
            println!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                println!("  caused by: {cause}");
                source = cause.source();
            }
            if let Some(help) = error.help() {
                println!("  help: {help}");
            }
            false
        }
        Err(error) => {
            for problem in error.diagnostics() {
                println!(
                    "{}:{}:{} {:?} at {} (location {}): {}",
                    problem.path().display(),
                    problem.line(),
                    problem.column(),
                    problem.kind(),
                    problem.field(),
                    problem.location().unwrap_or("-"),
                    problem.message()
                );
                println!("  help: {}", problem.help());
            }
            println!("{} problem(s)", error.problem_count());
            false
        }
    }
}
