//! The CLI's [`Progress`]: turns the events of the pipeline's stages into the lines, spinners
//! and warnings a user reads. The stages decide what happens; this decides how it looks.

use std::collections::HashMap;
use std::sync::Mutex;

use dagster_deploy_cloud_client::{LoadEvent, LoadOutcome};
use dagster_deploy_pipeline::{DepsLayerSource, Event, Progress};
use dagster_deploy_pydeps::Progress as DepsProgress;
use dagster_deploy_registry::BlobOutcome;
use dagster_deploy_statedir::DeployRecord;

use crate::args::env;
use crate::output::Output;
use crate::settings::{Resolved, report_request_timeout};

/// Prints the events of a stage: progress lines, details with `--verbose`, warnings. While a
/// deploy waits, a few locations get a spinner each on a terminal (a line per change in CI);
/// more get one bar with counts (in CI, a count line every tenth), and a line each only for a
/// failure or with `--verbose`.
pub(crate) struct Printer<'a> {
    output: &'a Output,
    spinners: Mutex<HashMap<String, indicatif::ProgressBar>>,
    loads: Mutex<Option<LoadCounts>>,
    /// Whether the last wait was of many locations (its results print only failures).
    many: std::sync::atomic::AtomicBool,
    /// The request timeout given to a registry client, and where it came from.
    request_timeout: Option<Resolved<u64>>,
}

impl<'a> Printer<'a> {
    pub(crate) fn new(output: &'a Output) -> Self {
        Printer {
            output,
            spinners: Mutex::new(HashMap::new()),
            loads: Mutex::new(None),
            many: std::sync::atomic::AtomicBool::new(false),
            request_timeout: None,
        }
    }

    /// Reports `timeout` (or the default) as the request timeout of the registry clients.
    pub(crate) fn with_request_timeout(mut self, timeout: Option<Resolved<u64>>) -> Self {
        self.request_timeout = timeout;
        self
    }
}

impl Printer<'_> {
    fn loads(&self) -> std::sync::MutexGuard<'_, Option<LoadCounts>> {
        self.loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the results being printed belong to a wait of many locations.
    fn many_locations(&self) -> bool {
        self.many.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The counts of a wait for many locations: one bar on a terminal, a line every tenth in CI.
struct LoadCounts {
    total: usize,
    loaded: usize,
    failed: usize,
    /// The last tenth reported in CI.
    reported_tenth: usize,
    bar: indicatif::ProgressBar,
}

impl LoadCounts {
    fn new(output: &Output, total: usize) -> Self {
        let bar = output.counter("loading", total as u64);
        LoadCounts {
            total,
            loaded: 0,
            failed: 0,
            reported_tenth: 0,
            bar,
        }
    }

    fn record(&mut self, output: &Output, event: &LoadEvent) {
        match event {
            LoadEvent::Loaded { location } => {
                self.loaded += 1;
                output.detail(format!("{location}: loaded"));
            }
            // The result prints the failure with its error.
            LoadEvent::Failed { .. } => self.failed += 1,
            LoadEvent::Loading { location } => {
                output.detail(format!("{location}: loading"));
                return;
            }
            LoadEvent::WaitingForAgent => {
                output.info("waiting for a running agent");
                return;
            }
            LoadEvent::AgentRunning => {
                output.info("an agent is running");
                return;
            }
        }
        let done = self.loaded + self.failed;
        self.bar.set_position(done as u64);
        self.bar.set_message(self.summary());
        let tenth = done * 10 / self.total.max(1);
        if !output.is_terminal() && tenth > self.reported_tenth {
            self.reported_tenth = tenth;
            output.info(self.summary());
        }
    }

    fn summary(&self) -> String {
        let mut text = format!(
            "{} of {} loaded",
            thousands(self.loaded),
            count(self.total, "location", "locations")
        );
        if self.failed > 0 {
            text.push_str(&format!(", {} failed", thousands(self.failed)));
        }
        text
    }

    fn finish(self) {
        self.bar.finish_and_clear();
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
            Event::Compared {
                deployment,
                unchanged,
                changed,
            } => {
                output.info(format!(
                    "{} unchanged in {deployment}, left out of the deploy{}",
                    count(unchanged.len(), "location", "locations"),
                    if unchanged.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", summarize(unchanged))
                    }
                ));
                for (location, why) in *changed {
                    output.detail(format!("{location}: changed: {why}"));
                }
            }
            Event::NotCompared { reason } => output.warn(format!(
                "cannot read what the deployment runs, so every location is deployed: {reason}"
            )),
            Event::Deploying {
                locations,
                deployment,
                endpoint,
            } => output.info(format!(
                "Deploying {} to {deployment} ({endpoint})",
                names_line(locations)
            )),
            Event::Accepted { deployment_url } => output.info(format!(
                "Dagster+ accepted the deploy; view it at {deployment_url}/locations"
            )),
            Event::WaitStarted { locations } if locations.len() > LISTED_NAMES => {
                self.many.store(true, std::sync::atomic::Ordering::Relaxed);
                *self.loads() = Some(LoadCounts::new(output, locations.len()));
            }
            Event::Load(event) if self.loads().is_some() => {
                if let Some(counts) = self.loads().as_mut() {
                    counts.record(output, event);
                }
            }
            Event::WaitEnded if self.loads().is_some() => {
                if let Some(counts) = self.loads().take() {
                    counts.finish();
                }
            }
            Event::LocationResult(load) if self.many_locations() => match &load.outcome {
                LoadOutcome::Failed { error } => {
                    output.info(format!("{}: failed to load:\n{error}", load.location));
                }
                LoadOutcome::Loaded => output.detail(format!("{}: loaded", load.location)),
                LoadOutcome::NotAwaited => output.detail(format!(
                    "{}: deployed (not waiting for it to load)",
                    load.location
                )),
                _ => {}
            },
            Event::WaitStarted { locations } => {
                self.many.store(false, std::sync::atomic::Ordering::Relaxed);
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
            Event::NoDepsLayer { location, disabled } => output.info(if *disabled {
                format!(
                    "{location}: no dependency layer (--no-deps-layer): the base image must hold the dependencies"
                )
            } else {
                format!(
                    "{location}: no uv.lock, so no dependency layer: the base image must hold the dependencies"
                )
            }),
            Event::DepsProgress { location, progress } => match progress {
                DepsProgress::Installing {
                    packages,
                    platform,
                    python,
                } => output.info(format!(
                    "{location}: installing {packages} locked packages with uv for {platform}, Python {python}"
                )),
                DepsProgress::Installed { elapsed } => output.detail(format!(
                    "{location}: uv installed the packages in {:.1} s",
                    elapsed.as_secs_f64()
                )),
                DepsProgress::Exported { packages, key } => output.detail(format!(
                    "{location}: uv.lock pins {packages} packages (dependency layer {})",
                    key.tag()
                )),
                _ => {}
            },
            Event::DepsLayer {
                location,
                digest,
                source,
            } => output.info(format!(
                "{location}: dependency layer {digest} {}",
                match source {
                    DepsLayerSource::Registry => "already in the registry: not built",
                    DepsLayerSource::Cache => "from the local cache: not installed",
                    DepsLayerSource::Built => "built from uv.lock",
                }
            )),
            Event::Pushed {
                image,
                digest,
                reused: true,
                ..
            } => output.info(format!(
                "Unchanged {image}: reused {digest}, which the registry already holds for this content (nothing compressed or uploaded)"
            )),
            Event::Pushed {
                image,
                digest,
                layer_uploaded,
                deps_layer,
                reused: false,
            } => {
                let state = |uploaded: bool| if uploaded { "uploaded" } else { "unchanged" };
                let deps = match deps_layer {
                    None => String::new(),
                    Some(outcome) => format!(
                        "; dependency layer {}",
                        state(*outcome == BlobOutcome::Uploaded)
                    ),
                };
                output.info(format!(
                    "Pushed {image} ({digest}{deps}; code layer {})",
                    state(*layer_uploaded)
                ));
            }
            Event::Running { program, arguments } => {
                output.info(format!("Running: {program} {}", arguments.join(" ")));
            }
            _ => {}
        }
    }
}

/// How many names a line lists before it summarises the rest.
pub(crate) const LISTED_NAMES: usize = 5;

/// `names` for one line: all of them when there are a few, else the first few and how many
/// more, e.g. `loc-0000, loc-0001, … and 1,995 more`.
pub(crate) fn summarize(names: &[String]) -> String {
    if names.len() <= LISTED_NAMES {
        return names.join(", ");
    }
    format!(
        "{}, … and {} more",
        names[..LISTED_NAMES].join(", "),
        thousands(names.len() - LISTED_NAMES)
    )
}

/// `names` after a verb: the names themselves when there are a few, else their count and a
/// summary, e.g. `2,000 locations (loc-0000, …, … and 1,995 more)`.
pub(crate) fn names_line(names: &[String]) -> String {
    if names.len() <= LISTED_NAMES {
        return names.join(", ");
    }
    format!(
        "{} ({})",
        count(names.len(), "location", "locations"),
        summarize(names)
    )
}

/// `1 location`, `2,000 locations`.
pub(crate) fn count(number: usize, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        thousands(number),
        if number == 1 { one } else { many }
    )
}

/// A number with `,` between groups of three digits.
pub(crate) fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("loc-{index:04}")).collect()
    }

    #[test]
    fn a_few_names_are_listed_and_many_are_summarised_with_a_count() {
        assert_eq!(names_line(&names(2)), "loc-0000, loc-0001");
        assert_eq!(
            names_line(&names(2000)),
            "2,000 locations (loc-0000, loc-0001, loc-0002, loc-0003, loc-0004, … and 1,995 more)"
        );
        assert_eq!(summarize(&names(6)).matches("loc-").count(), 5);
    }

    #[test]
    fn counts_group_digits_by_three() {
        for (number, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(thousands(number), text);
        }
        assert_eq!(count(1, "location", "locations"), "1 location");
        assert_eq!(count(2000, "location", "locations"), "2,000 locations");
    }
}
