//! The CLI's [`Progress`]: turns the events of the pipeline's stages into the lines, spinners
//! and warnings a user reads. The stages decide what happens; this decides how it looks.

use std::collections::HashMap;
use std::sync::Mutex;

use dagster_deploy_cloud_client::{LoadEvent, LoadOutcome};
use dagster_deploy_pipeline::{Event, Progress};
use dagster_deploy_statedir::DeployRecord;

use crate::args::env;
use crate::output::Output;
use crate::settings::{Resolved, report_request_timeout};

/// Prints the events of a stage: progress lines, one spinner per location on a terminal while
/// a deploy waits, details with `--verbose`, warnings.
pub(crate) struct Printer<'a> {
    output: &'a Output,
    spinners: Mutex<HashMap<String, indicatif::ProgressBar>>,
    /// The request timeout given to a registry client, and where it came from.
    request_timeout: Option<Resolved<u64>>,
}

impl<'a> Printer<'a> {
    pub(crate) fn new(output: &'a Output) -> Self {
        Printer {
            output,
            spinners: Mutex::new(HashMap::new()),
            request_timeout: None,
        }
    }

    /// Reports `timeout` (or the default) as the request timeout of the registry clients.
    pub(crate) fn with_request_timeout(mut self, timeout: Option<Resolved<u64>>) -> Self {
        self.request_timeout = timeout;
        self
    }
}

impl Progress for Printer<'_> {
    fn event(&self, event: &Event<'_>) {
        let output = self.output;
        let mut spinners = self
            .spinners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::CiProvider(provider) => output.detail(format!("CI provider: {provider:?}")),
            Event::Connected { organization_url } => {
                output.info(format!("Connected to {}", organization_url.as_str()));
            }
            Event::Target {
                deployment,
                base_deployment: Some(base),
            } => output.info(format!(
                "Deploying to branch deployment {deployment}, with {base} as the base deployment"
            )),
            Event::Target {
                deployment,
                base_deployment: None,
            } => output.info(format!("Deploying to {deployment}")),
            Event::StaleSession { hours } => output.warn(format!(
                "this session was started {hours} hours ago; run start again if its images are stale"
            )),
            Event::Deploying {
                locations,
                deployment,
                endpoint,
            } => output.info(format!(
                "Deploying {} to {deployment} ({endpoint})",
                locations.join(", ")
            )),
            Event::Accepted { deployment_url } => output.info(format!(
                "Dagster+ accepted the deploy; view it at {deployment_url}/locations"
            )),
            Event::WaitStarted { locations } => {
                spinners.extend(
                    locations
                        .iter()
                        .map(|name| (name.clone(), output.spinner(name))),
                );
            }
            Event::Load(event) => {
                let (name, text) = describe(event);
                match name.and_then(|name| spinners.get(name)) {
                    Some(spinner) if output.is_terminal() => spinner.set_message(text),
                    // The result below prints the failure with its error; say it once.
                    _ if matches!(event, LoadEvent::Failed { .. }) => {}
                    _ => output.info(match name {
                        Some(name) => format!("{name}: {text}"),
                        None => text,
                    }),
                }
            }
            Event::WaitEnded => {
                for (_, spinner) in spinners.drain() {
                    spinner.finish_and_clear();
                }
            }
            Event::LocationResult(load) => match &load.outcome {
                // In CI the load events already said so; a terminal's spinners are gone now.
                LoadOutcome::Loaded if output.is_terminal() => {
                    output.info(format!("{}: loaded", load.location));
                }
                LoadOutcome::NotAwaited => output.info(format!(
                    "{}: deployed (not waiting for it to load)",
                    load.location
                )),
                LoadOutcome::Failed { error } => {
                    output.info(format!("{}: failed to load:\n{error}", load.location));
                }
                _ => {}
            },
            Event::Recorded(record) => warn_superseded(output, record),
            Event::RegistryClient {
                login_for,
                insecure,
                request_timeout: _,
            } => {
                match login_for {
                    Some(registries) => output.detail(format!(
                        "registry login for {}: from env vars {} and {}; other registries: Docker's config.json",
                        registries.join(", "),
                        env::REGISTRY_USERNAME,
                        env::REGISTRY_PASSWORD
                    )),
                    None => output.detail(
                        "registry logins: Docker's config.json ($DOCKER_CONFIG, else ~/.docker) and its credential helpers",
                    ),
                }
                if !insecure.is_empty() {
                    output.detail(format!(
                        "plain HTTP allowed to: {} (flag --insecure-registry)",
                        insecure.join(", ")
                    ));
                }
                report_request_timeout(
                    output,
                    self.request_timeout.as_ref(),
                    dagster_deploy_registry::ClientOptions::default().request_timeout,
                );
            }
            Event::PythonPath {
                location,
                path,
                entry,
            } => output.detail(format!(
                "{location}: {path} is imported from {entry}, which goes on PYTHONPATH"
            )),
            Event::CodeFromBase {
                location,
                name,
                build_directory,
                searched,
                outside_workdir,
                workdir,
            } => {
                let searched = if searched.is_empty() {
                    String::new()
                } else {
                    format!(" (searched {})", searched.join(", "))
                };
                let advice = match outside_workdir {
                    Some(directory) => format!(
                        "; its working_directory {directory} is outside the code directory {workdir}: pass --workdir {directory} (or the directory above it that holds the build directory's files)"
                    ),
                    None => String::new(),
                };
                output.warn(format!(
                    "location {location}: `{name}` is not in the build directory {}{searched}; its code server will load only if the base image provides it{advice}",
                    build_directory.display()
                ));
            }
            Event::Building {
                location,
                build_directory,
                base,
            } => output.info(format!(
                "Building {location} from {} on {base}",
                build_directory.display()
            )),
            Event::Pushed {
                image,
                digest,
                layer_uploaded,
            } => output.info(format!(
                "Pushed {image} ({digest}; code layer {})",
                if *layer_uploaded {
                    "uploaded"
                } else {
                    "unchanged"
                }
            )),
            Event::Running { program, arguments } => {
                output.info(format!("Running: {program} {}", arguments.join(" ")));
            }
            _ => {}
        }
    }
}

fn warn_superseded(output: &Output, record: &DeployRecord) {
    if !record.superseded.is_empty() {
        output.warn(format!(
            "the build output of {} changed while the deploy ran: the image deployed is not the one recorded now, so they are recorded as not deployed; deploy again",
            record.superseded.join(", ")
        ));
    }
    if !record.gone.is_empty() {
        output.warn(format!(
            "{} left the session while the deploy ran (a new session was started): nothing was recorded for them",
            record.gone.join(", ")
        ));
    }
}

fn describe(event: &LoadEvent) -> (Option<&str>, String) {
    match event {
        LoadEvent::WaitingForAgent => (None, "waiting for a running agent".to_owned()),
        LoadEvent::AgentRunning => (None, "an agent is running".to_owned()),
        LoadEvent::Loading { location } => (Some(location.as_str()), "loading".to_owned()),
        LoadEvent::Loaded { location } => (Some(location.as_str()), "loaded".to_owned()),
        LoadEvent::Failed { location, .. } => {
            (Some(location.as_str()), "failed to load".to_owned())
        }
    }
}
