//! `deploy` (alias `finish`): send one batched deploy of the selected locations, wait for each
//! to load, and record each location's own outcome in the session.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dagster_deploy_buildconfig::DagsterCloudYaml;
use dagster_deploy_cloud_client::{
    DocumentOverlay, LoadEvent, LoadOutcome, OrgUrl, PexMetadata, WaitOptions, location_document,
};
use dagster_deploy_statedir::{
    BuildOutput, DeployOutcome, DeployRecord, DeployResult, LocationState, Session,
};

use super::Context;
use crate::args::{CloudArgs, DeployArgs};
use crate::failure::{CommandResult, ExitKind, Failure, one_line};
use crate::output::Output;
use crate::settings::CloudSettings;

/// Sessions older than this get a warning: their images may be stale.
const OLD_SESSION: Duration = Duration::from_secs(24 * 3600);

pub(crate) async fn run(context: &Context<'_>, args: &DeployArgs) -> CommandResult {
    let output = context.output;
    let session = super::open_session(context)?;
    if let Some(info) = session.info()? {
        let age = jiff::Timestamp::now().duration_since(info.created_at);
        if age.as_secs() > OLD_SESSION.as_secs() as i64 {
            output.warn(format!(
                "this session was started {} hours ago; run start again if its images are stale",
                age.as_secs() / 3600
            ));
        }
    }
    // What is deployed is exactly this snapshot: the outcome is recorded against it (see
    // `Session::record_deploy_results`), whatever changes in the session meanwhile.
    let selected = session.selected(&args.location_names)?;
    if selected.is_empty() {
        output.info("No locations selected: nothing to deploy");
        return Ok(());
    }
    let unbuilt: Vec<&str> = selected
        .iter()
        .filter(|state| state.build_output.is_none())
        .map(|state| state.location_name.as_str())
        .collect();
    if !unbuilt.is_empty() {
        return Err(Failure::config(format!(
            "no image recorded for location(s) {}",
            unbuilt.join(", ")
        ))
        .with_hint("run build-and-push, or set-build-output --image-tag TAG, for them first"));
    }
    let (url, deployment) = target(&selected)?;
    let documents = documents(&selected)?;
    let org_url = OrgUrl::parse(&url)?;
    let endpoint = format!("{}/graphql", org_url.deployment_url(&deployment)?);

    if args.dry_run {
        output.info(format!(
            "Dry run: would POST CliDeployLocations to {endpoint} with this document:"
        ));
        let document = serde_json::json!({ "locations": documents });
        output.stdout_json(&format!(
            "{}\n",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        ));
        return Ok(());
    }

    // The session knows the organization URL; the token comes from the environment or config.
    let settings = CloudSettings::new(&CloudArgs::default(), context.matches, output);
    let client = settings.client_for_session(org_url)?;
    // Every setting is resolved before Dagster+ is told anything.
    let load_timeout = settings.load_timeout(args.location_load_timeout)?;
    let agent_heartbeat_timeout = settings.heartbeat_timeout(args.agent_heartbeat_timeout);
    let deployment_client = client.deployment(&deployment)?;
    let names: Vec<String> = selected
        .iter()
        .map(|state| state.location_name.clone())
        .collect();
    // From here on, Ctrl-C and SIGTERM are recorded in the session instead of killing the
    // process mid-way.
    let mut interrupt = Interrupt::listen()?;
    output.info(format!(
        "Deploying {} to {deployment} ({endpoint})",
        names.join(", ")
    ));
    let sent = tokio::select! {
        sent = deployment_client.deploy_locations(&documents) => sent,
        signal = interrupt.recv() => {
            let failure = Failure::new(
                signal.exit_kind(),
                format!("{} before Dagster+ answered the deploy: it may or may not have been accepted", signal.describe()),
            )
            .with_hint("check the locations in Dagster+, then deploy again");
            let reason = format!("{} before Dagster+ answered (it may have been accepted)", signal.describe());
            return Err(record_all(output, &session, &selected, DeployOutcome::Interrupted(reason), failure));
        }
    };
    if let Err(error) = sent {
        let outcome = DeployOutcome::Failed(one_line(&error));
        let failure = Failure::from(error);
        return Err(record_all(output, &session, &selected, outcome, failure));
    }
    output.info(format!(
        "Dagster+ accepted the deploy; view it at {}/locations",
        client.org_url().deployment_url(&deployment)?
    ));

    let options = WaitOptions {
        load_timeout,
        agent_heartbeat_timeout,
        has_agent_queue: documents.iter().any(|document| {
            document
                .get("agent_queue")
                .and_then(|queue| queue.as_str())
                .is_some_and(|queue| !queue.is_empty())
        }),
        ..WaitOptions::default()
    };
    let spinners: HashMap<String, indicatif::ProgressBar> = names
        .iter()
        .map(|name| (name.clone(), output.spinner(name)))
        .collect();
    // Outcomes seen so far, so that an interrupted or failed wait still records what it saw.
    let mut seen: HashMap<String, DeployOutcome> = HashMap::new();
    let mut on_event = |event: &LoadEvent| {
        match event {
            LoadEvent::Loaded { location } => {
                seen.insert(location.clone(), DeployOutcome::Deployed);
            }
            LoadEvent::Failed { location, error } => {
                seen.insert(location.clone(), DeployOutcome::Failed(load_failure(error)));
            }
            _ => {}
        }
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
    };
    let waited = tokio::select! {
        loads = deployment_client.wait_for_load(&names, &options, &mut on_event) => Ok(loads),
        signal = interrupt.recv() => Err(signal),
    };
    for spinner in spinners.values() {
        spinner.finish_and_clear();
    }
    let loads = match waited {
        Ok(Ok(loads)) => loads,
        Ok(Err(error)) => {
            // Dagster+ accepted the deploy; only following it failed.
            let reason = one_line(&error);
            let results = results_so_far(&selected, &seen, || {
                DeployOutcome::NotTracked(reason.clone())
            });
            let failure = Failure::new(
                ExitKind::NotTracked,
                format!("Dagster+ accepted the deploy, but its load could not be tracked: {reason}"),
            )
            .with_hint("the locations may still load: check them in Dagster+; the session records them as not tracked");
            return Err(record(output, &session, &results, failure));
        }
        Err(signal) => {
            let reason = format!(
                "{} while waiting for the load (Dagster+ had accepted the deploy)",
                signal.describe()
            );
            let results = results_so_far(&selected, &seen, || {
                DeployOutcome::Interrupted(reason.clone())
            });
            let failure = Failure::new(
                signal.exit_kind(),
                format!("{} while waiting for the locations to load; Dagster+ had accepted the deploy", signal.describe()),
            )
            .with_hint("the locations may still load: check them in Dagster+; the session records them as interrupted");
            return Err(record(output, &session, &results, failure));
        }
    };

    let by_name: HashMap<&str, &LocationState> = selected
        .iter()
        .map(|state| (state.location_name.as_str(), state))
        .collect();
    let mut results = Vec::new();
    let mut worst: Option<ExitKind> = None;
    let mut failed = Vec::new();
    for load in &loads {
        let outcome = match &load.outcome {
            LoadOutcome::Loaded => {
                // In CI the load events already said so; a terminal's spinners are gone now.
                if output.is_terminal() {
                    output.info(format!("{}: loaded", load.location));
                }
                DeployOutcome::Deployed
            }
            LoadOutcome::NotAwaited => {
                output.info(format!(
                    "{}: deployed (not waiting for it to load)",
                    load.location
                ));
                DeployOutcome::Deployed
            }
            LoadOutcome::Failed { error } => {
                output.info(format!("{}: failed to load:\n{error}", load.location));
                worst = worst.or(Some(ExitKind::Load));
                failed.push(load.location.clone());
                DeployOutcome::Failed(load_failure(error))
            }
            LoadOutcome::TimedOut => {
                worst = Some(ExitKind::Timeout);
                failed.push(load.location.clone());
                DeployOutcome::Failed("timed out waiting for the location to load".to_owned())
            }
            LoadOutcome::NoAgent => {
                worst = Some(ExitKind::Timeout);
                failed.push(load.location.clone());
                DeployOutcome::Failed("no agent is running for this deployment".to_owned())
            }
        };
        if let Some(state) = by_name.get(load.location.as_str()) {
            results.push(DeployResult {
                sent: (*state).clone(),
                outcome,
            });
        }
    }
    if let Err(error) = session.record_deploy_results(&results).map(|record| {
        warn_superseded(output, &record);
    }) {
        return Err(unrecorded(error, &results));
    }
    match worst {
        None => {
            output.info(format!("Deployed {} to {deployment}", names.join(", ")));
            Ok(())
        }
        Some(kind) => {
            let mut failure = Failure::new(
                kind,
                format!(
                    "{} of {} location(s) did not load: {}",
                    failed.len(),
                    names.len(),
                    failed.join(", ")
                ),
            );
            if kind == ExitKind::Timeout {
                failure = failure.with_hint("check that a Dagster+ agent is running for this deployment, or raise --location-load-timeout");
            } else {
                failure = failure.with_hint("fix the code of the failed location(s) and deploy again; the others are recorded as deployed");
            }
            Err(failure)
        }
    }
}

/// The history reason of a load failure: its first line.
fn load_failure(error: &str) -> String {
    format!(
        "failed to load: {}",
        error.lines().next().unwrap_or_default()
    )
}

/// One result per deployed location: the outcome seen for it so far, else `otherwise()`.
fn results_so_far(
    selected: &[LocationState],
    seen: &HashMap<String, DeployOutcome>,
    otherwise: impl Fn() -> DeployOutcome,
) -> Vec<DeployResult> {
    selected
        .iter()
        .map(|state| DeployResult {
            sent: state.clone(),
            outcome: seen
                .get(&state.location_name)
                .cloned()
                .unwrap_or_else(&otherwise),
        })
        .collect()
}

/// Records `outcome` for every deployed location, then returns `failure`.
fn record_all(
    output: &Output,
    session: &Session,
    selected: &[LocationState],
    outcome: DeployOutcome,
    failure: Failure,
) -> Failure {
    let results = results_so_far(selected, &HashMap::new(), || outcome.clone());
    record(output, session, &results, failure)
}

/// Records `results`, then returns `failure`; if they cannot be recorded, says so in the
/// failure as well (the session then does not know what happened).
fn record(
    output: &Output,
    session: &Session,
    results: &[DeployResult],
    mut failure: Failure,
) -> Failure {
    match session.record_deploy_results(results) {
        Ok(record) => warn_superseded(output, &record),
        Err(error) => {
            failure.causes.push(format!(
                "the outcome could not be recorded in the session: {}",
                one_line(&error)
            ));
        }
    }
    failure
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

/// Dagster+ accepted the deploy and the wait ended, but the session could not record it.
fn unrecorded(error: dagster_deploy_statedir::Error, results: &[DeployResult]) -> Failure {
    let loaded = results
        .iter()
        .filter(|result| result.outcome == DeployOutcome::Deployed)
        .count();
    Failure::new(
        ExitKind::NotTracked,
        format!(
            "Dagster+ accepted the deploy ({loaded} of {} location(s) loaded), but the outcome could not be recorded in the session: {}",
            results.len(),
            one_line(&error)
        ),
    )
    .with_hint("free disk space or fix the permissions of the state directory; the locations are deployed as reported above, and `status` does not know it")
}

/// Ctrl-C or SIGTERM, listened for while a deploy is in flight.
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    fn describe(&self) -> &'static str {
        match self {
            Signal::Interrupt => "interrupted (Ctrl-C)",
            Signal::Terminate => "stopped (SIGTERM)",
        }
    }

    fn exit_kind(&self) -> ExitKind {
        match self {
            Signal::Interrupt => ExitKind::Interrupted,
            Signal::Terminate => ExitKind::Terminated,
        }
    }
}

/// The signal handlers of a deploy: installed before anything is sent, so that an interruption
/// at any later moment is recorded rather than fatal.
struct Interrupt {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn listen() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| {
                signal(kind).map_err(|error| {
                    Failure::internal(format!("cannot listen for interruptions: {error}"))
                })
            };
            Ok(Interrupt {
                interrupt: install(SignalKind::interrupt())?,
                terminate: install(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Signal::Interrupt,
                _ = self.terminate.recv() => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
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

/// The organization URL and deployment every selected location targets; they must agree.
fn target(selected: &[LocationState]) -> Result<(String, String), Failure> {
    let first = &selected[0];
    for state in selected {
        if state.url != first.url || state.deployment_name != first.deployment_name {
            return Err(Failure::config(format!(
                "locations {} and {} target different deployments ({} at {} and {} at {})",
                first.location_name,
                state.location_name,
                first.deployment_name,
                first.url,
                state.deployment_name,
                state.url
            ))
            .with_hint("deploy them separately with --location-name, or start a new session"));
        }
    }
    Ok((first.url.clone(), first.deployment_name.clone()))
}

/// Reads a session's `dagster_cloud.yaml` for its entries (a regular file of at most 16 MiB).
/// Only the entries are needed, not the build directories, so they are not checked.
pub(crate) fn read_location_file(path: &Path) -> Result<DagsterCloudYaml, Failure> {
    DagsterCloudYaml::read(path).map_err(|error| {
        let hint = if error.is_io() {
            "the session's configuration file cannot be read: fix its permissions"
        } else if matches!(error, dagster_deploy_buildconfig::Error::Read { .. }) {
            "the session's configuration file is gone: run start again"
        } else {
            "the session's configuration file changed: run start again"
        };
        Failure::from(error).with_hint(hint)
    })
}

/// The location documents (reference-behaviour §3.6 step 3), one per location.
pub(crate) fn documents(selected: &[LocationState]) -> Result<Vec<serde_json::Value>, Failure> {
    let mut files: HashMap<PathBuf, DagsterCloudYaml> = HashMap::new();
    let mut documents = Vec::new();
    for state in selected {
        let path = PathBuf::from(&state.location_file);
        if !files.contains_key(&path) {
            files.insert(path.clone(), read_location_file(&path)?);
        }
        let location = files[&path].location(&state.location_name).ok_or_else(|| {
            Failure::config(format!(
                "location {} is not in {} any more",
                state.location_name,
                path.display()
            ))
            .with_hint("run start again, or deselect the location")
        })?;
        let overlay = DocumentOverlay {
            location_name: state.location_name.clone(),
            image: state.image().map(str::to_owned),
            git: state.build.git.clone(),
            pex: match &state.build_output {
                Some(BuildOutput::PythonExecutable {
                    python_version,
                    pex_tag,
                    ..
                }) => Some(PexMetadata {
                    pex_tag: pex_tag.clone(),
                    python_version: python_version.clone(),
                }),
                _ => None,
            },
            pex_bundle: matches!(
                state.build_output,
                Some(BuildOutput::Docker {
                    pex_bundle: true,
                    ..
                })
            ),
            defs_state_info: state.defs_state_info.as_ref().map(|info| info.to_json()),
        };
        documents.push(location_document(location.entry(), &overlay));
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use dagster_deploy_statedir::Session;

    use super::documents;

    /// A state file as the reference writes it, with the given build output.
    fn state_file(location_file: &str, name: &str, build_output: &str) -> String {
        format!(
            r#"{{"url":"https://acme.dagster.cloud","deployment_name":"prod","location_file":"{location_file}","location_name":"{name}","is_branch_deployment":false,"selected":true,"build":{{"git_url":null,"commit_hash":"abc","build_config":null,"git_provider":null,"repo_owner":null,"repo_name":null,"base_branch":null,"defs_base_path":null}},"build_output":{build_output},"defs_state_info":null,"status_url":null,"history":[],"project_dir":null}}"#
        )
    }

    #[test]
    fn pex_outputs_written_by_the_reference_reach_the_deploy_document() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("dagster_cloud.yaml");
        std::fs::write(
            &yaml,
            "locations:\n  - location_name: pex\n    code_source: {package_name: pex}\n  - location_name: bundled\n    code_source: {package_name: bundled}\n",
        )
        .unwrap();
        let statedir = dir.path().join("state");
        std::fs::create_dir(&statedir).unwrap();
        let yaml = yaml.to_str().unwrap();
        std::fs::write(
            statedir.join("location-pex.json"),
            state_file(
                yaml,
                "pex",
                r#"{"strategy":"python-executable","python_version":"3.11","image":null,"pex_tag":"files=abc:deps=def"}"#,
            ),
        )
        .unwrap();
        std::fs::write(
            statedir.join("location-bundled.json"),
            state_file(
                yaml,
                "bundled",
                r#"{"strategy":"docker","python_version":null,"image":"r.example.com/b:1","pex_bundle":true}"#,
            ),
        )
        .unwrap();
        let session = Session::open(&statedir).unwrap();
        let selected = session.selected(&[]).unwrap();
        let documents = documents(&selected).unwrap();
        let by_name = |name: &str| {
            documents
                .iter()
                .find(|document| document["location_name"] == name)
                .unwrap()
                .clone()
        };
        let pex = by_name("pex");
        assert_eq!(
            pex["pex_metadata"],
            serde_json::json!({"pex_tag": "files=abc:deps=def", "python_version": "3.11"})
        );
        assert!(pex.get("image").is_none(), "{pex}");
        assert!(pex.get("pex_bundle").is_none(), "{pex}");
        let bundled = by_name("bundled");
        assert_eq!(bundled["pex_bundle"], true);
        assert_eq!(bundled["image"], "r.example.com/b:1");
        assert!(bundled.get("pex_metadata").is_none(), "{bundled}");
    }
}
