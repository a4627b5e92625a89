//! Deploying a session: one batched deploy of the selected locations, a wait for each to load,
//! and each location's own outcome recorded in the session.
//!
//! [`plan_deploy`] takes the snapshot that is deployed and builds its documents (a dry run
//! stops there); [`deploy_and_wait`] sends them, follows the load and records what happened.
//! The outcome is recorded against the snapshot (see `Session::record_deploy_results`),
//! whatever changes in the session meanwhile. An interruption, given as a future by the
//! caller (a CLI listens for SIGINT and SIGTERM), is recorded too: from the moment the deploy
//! is sent, no way of stopping leaves the session without an outcome.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use dagster_deploy_cloud_client::{
    CloudClient, LoadEvent, LoadOutcome, LocationLoad, OrgUrl, WaitOptions,
};
use dagster_deploy_statedir::{DeployOutcome, DeployRecord, DeployResult, LocationState, Session};
use serde_json::Value;

use crate::documents::documents;
use crate::error::{Error, Result, one_line};
use crate::progress::{Event, Progress};
use crate::unchanged::{Comparison, Running, compare};

/// Sessions older than this are reported: their images may be stale.
const OLD_SESSION: Duration = Duration::from_secs(24 * 3600);

/// What stopped a deploy from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interruption {
    /// An interrupt (SIGINT, Ctrl-C).
    Interrupt,
    /// A termination request (SIGTERM, as CI cancellation sends).
    Terminate,
    /// The embedding program cancelled it; the text says how, e.g. `cancelled by the operator`.
    Cancelled(String),
}

impl Interruption {
    /// How the interruption is described in messages and in the session's history.
    pub fn describe(&self) -> &str {
        match self {
            Interruption::Interrupt => "interrupted (Ctrl-C)",
            Interruption::Terminate => "stopped (SIGTERM)",
            Interruption::Cancelled(how) => how,
        }
    }
}

/// A deploy about to be sent: the locations as read (the snapshot whose outcome is recorded),
/// where they go, and their documents.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    /// The locations deployed, as read.
    pub locations: Vec<LocationState>,
    /// The organization URL they target.
    pub organization_url: OrgUrl,
    /// The deployment they target.
    pub deployment: String,
    /// The GraphQL endpoint of the deployment.
    pub endpoint: String,
    /// One deploy document per location, in order.
    pub documents: Vec<Value>,
    /// Locations left out because the deployment already runs their document
    /// ([`leave_out_unchanged`]); recorded as unchanged with the deploy's outcomes.
    pub unchanged: Vec<UnchangedLocation>,
}

/// A location left out of a deploy because the deployment already runs its document.
#[derive(Debug, Clone, PartialEq)]
pub struct UnchangedLocation {
    /// The location, as read (its outcome is recorded against this snapshot).
    pub state: LocationState,
    /// The image the deployment runs, if any.
    pub image: Option<String>,
    /// The commit Dagster+ shows for it, if known.
    pub commit: Option<String>,
}

impl UnchangedLocation {
    /// What the session's history says about it: what runs, and from which commit.
    fn outcome(&self, deployment: &str) -> DeployOutcome {
        let image = self.image.as_deref().unwrap_or("its document");
        DeployOutcome::Unchanged(match &self.commit {
            Some(commit) => {
                format!("{deployment} already runs {image} (deployed from commit {commit})")
            }
            None => format!("{deployment} already runs {image}"),
        })
    }
}

impl DeployPlan {
    /// Plans the deploy of `locations` (at least one, each with a build output), which must
    /// all target one deployment.
    pub fn new(locations: Vec<LocationState>) -> Result<DeployPlan> {
        let Some(first) = locations.first() else {
            return Err(Error::Unbuilt {
                locations: Vec::new(),
            });
        };
        let unbuilt: Vec<String> = locations
            .iter()
            .filter(|state| state.build_output.is_none())
            .map(|state| state.location_name.clone())
            .collect();
        if !unbuilt.is_empty() {
            return Err(Error::Unbuilt { locations: unbuilt });
        }
        if let Some(other) = locations
            .iter()
            .find(|state| state.url != first.url || state.deployment_name != first.deployment_name)
        {
            return Err(Error::MixedTargets {
                first: first.location_name.clone(),
                first_target: format!("{} at {}", first.deployment_name, first.url),
                second: other.location_name.clone(),
                second_target: format!("{} at {}", other.deployment_name, other.url),
            });
        }
        let deployment = first.deployment_name.clone();
        let documents = documents(&locations)?;
        let organization_url = OrgUrl::parse(&first.url)?;
        let endpoint = format!("{}/graphql", organization_url.deployment_url(&deployment)?);
        Ok(DeployPlan {
            locations,
            organization_url,
            deployment,
            endpoint,
            documents,
            unchanged: Vec::new(),
        })
    }

    /// The names of the locations left out as unchanged, in order.
    pub fn unchanged_names(&self) -> Vec<String> {
        self.unchanged
            .iter()
            .map(|location| location.state.location_name.clone())
            .collect()
    }

    /// The results recorded for the locations left out as unchanged.
    fn unchanged_results(&self) -> impl Iterator<Item = DeployResult> + '_ {
        self.unchanged.iter().map(|location| DeployResult {
            sent: location.state.clone(),
            outcome: location.outcome(&self.deployment),
        })
    }

    /// The location names, in order.
    pub fn names(&self) -> Vec<String> {
        self.locations
            .iter()
            .map(|state| state.location_name.clone())
            .collect()
    }

    /// The request body a deploy sends: `{"locations": [document, ...]}`.
    pub fn request_document(&self) -> Value {
        serde_json::json!({ "locations": self.documents })
    }

    /// Whether a document sets an agent queue (which changes the default agent wait).
    pub fn has_agent_queue(&self) -> bool {
        self.documents.iter().any(|document| {
            document
                .get("agent_queue")
                .and_then(Value::as_str)
                .is_some_and(|queue| !queue.is_empty())
        })
    }
}

/// Plans the deploy of the session's selected (and, if any are named, requested) locations;
/// `None` when none is selected. Reports a session older than a day.
pub fn plan_deploy(
    session: &Session,
    requested: &[String],
    progress: &dyn Progress,
) -> Result<Option<DeployPlan>> {
    if let Some(info) = session.info()? {
        let age = jiff::Timestamp::now().duration_since(info.created_at);
        if age.as_secs() > OLD_SESSION.as_secs() as i64 {
            progress.event(&Event::StaleSession {
                hours: age.as_secs().unsigned_abs() / 3600,
            });
        }
    }
    let selected = session.selected(requested)?;
    if selected.is_empty() {
        return Ok(None);
    }
    DeployPlan::new(selected).map(Some)
}

/// Leaves out of `plan` every location whose document the deployment already runs, by the rule
/// of [`crate::unchanged`]: two queries, whatever the number of locations. When what the
/// deployment runs cannot be read, every location counts as changed (the event says why).
pub async fn leave_out_unchanged(
    mut plan: DeployPlan,
    client: &CloudClient,
    progress: &dyn Progress,
) -> Result<DeployPlan> {
    let deployment_client = client.deployment(&plan.deployment)?;
    let running = match Running::read(&deployment_client).await {
        Ok(running) => running,
        Err(error) => {
            progress.event(&Event::NotCompared {
                reason: &one_line(&error),
            });
            return Ok(plan);
        }
    };
    let mut changed = Vec::new();
    let mut send = (Vec::new(), Vec::new());
    for (state, document) in plan.locations.into_iter().zip(plan.documents) {
        match compare(&document, &running) {
            Comparison::Unchanged { image, commit } => plan.unchanged.push(UnchangedLocation {
                state,
                image,
                commit,
            }),
            Comparison::Changed(why) => {
                changed.push((state.location_name.clone(), why));
                send.0.push(state);
                send.1.push(document);
            }
        }
    }
    (plan.locations, plan.documents) = send;
    progress.event(&Event::Compared {
        deployment: &plan.deployment,
        unchanged: &plan.unchanged_names(),
        changed: &changed,
    });
    Ok(plan)
}

/// How long to wait for the locations to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitSettings {
    /// How long the whole wait may take; zero deploys without waiting.
    pub load_timeout: Duration,
    /// How long to wait for a running agent; `None` is the default for the deployment's agent
    /// type.
    pub agent_heartbeat_timeout: Option<Duration>,
}

impl Default for WaitSettings {
    fn default() -> Self {
        let defaults = WaitOptions::default();
        WaitSettings {
            load_timeout: defaults.load_timeout,
            agent_heartbeat_timeout: defaults.agent_heartbeat_timeout,
        }
    }
}

/// How one location's deploy ended, and what the session recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationResult {
    /// How waiting for it ended.
    pub load: LocationLoad,
    /// What was recorded.
    pub outcome: DeployOutcome,
}

/// What a deploy did: one result per location, and what recording them found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    /// The deployment.
    pub deployment: String,
    /// One result per location, in the order Dagster+ reported them.
    pub results: Vec<LocationResult>,
    /// Locations whose inputs changed while the deploy ran, or that left the session.
    pub record: DeployRecord,
    /// Locations left out because the deployment already ran their document, in order.
    pub unchanged: Vec<String>,
}

impl DeployReport {
    /// The location names, in order.
    pub fn names(&self) -> Vec<String> {
        self.results
            .iter()
            .map(|result| result.load.location.clone())
            .collect()
    }

    /// Whether every location loaded (or was deployed without waiting).
    pub fn succeeded(&self) -> bool {
        self.results
            .iter()
            .all(|result| result.load.outcome.is_success())
    }

    /// The failure to report when locations did not load, naming them; `None` when all did.
    pub fn failure(&self) -> Option<Error> {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|result| !result.load.outcome.is_success())
            .map(|result| result.load.location.clone())
            .collect();
        if failed.is_empty() {
            return None;
        }
        let timed_out = self.results.iter().any(|result| {
            matches!(
                result.load.outcome,
                LoadOutcome::TimedOut | LoadOutcome::NoAgent
            )
        });
        Some(Error::LoadFailed {
            failed,
            total: self.results.len(),
            timed_out,
        })
    }
}

/// Sends the deploy of `plan`, waits for each location to load and records each location's
/// outcome in `session`. When `interruption` completes first, the interruption is recorded
/// (saying whether Dagster+ had accepted the deploy) and returned as the error. A report whose
/// locations did not all load is still `Ok`: see [`DeployReport::failure`].
pub async fn deploy_and_wait(
    session: &Session,
    plan: &DeployPlan,
    client: &CloudClient,
    wait: &WaitSettings,
    interruption: impl Future<Output = Interruption>,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let deployment_client = client.deployment(&plan.deployment)?;
    let names = plan.names();
    if names.is_empty() {
        // Every location is unchanged: nothing is sent, only the skips are recorded.
        let results: Vec<DeployResult> = plan.unchanged_results().collect();
        let record =
            session
                .record_deploy_results(&results)
                .map_err(|error| Error::Unrecorded {
                    loaded: 0,
                    total: results.len(),
                    error: Box::new(error),
                })?;
        progress.event(&Event::Recorded(&record));
        return Ok(DeployReport {
            deployment: plan.deployment.clone(),
            results: Vec::new(),
            record,
            unchanged: plan.unchanged_names(),
        });
    }
    let mut interruption = std::pin::pin!(interruption);
    progress.event(&Event::Deploying {
        locations: &names,
        deployment: &plan.deployment,
        endpoint: &plan.endpoint,
    });
    // Which locations have no entry yet: their first `LOADED` cannot be a previous version, so
    // the wait trusts it at once. Asked before the deploy; if the question fails, nothing is
    // trusted early and the wait is as careful as without it.
    let send = async {
        let absent = deployment_client
            .absent_locations(&names)
            .await
            .unwrap_or_default();
        (
            absent,
            deployment_client.deploy_locations(&plan.documents).await,
        )
    };
    let (absent_before, sent) = tokio::select! {
        sent = send => sent,
        interruption = &mut interruption => {
            let reason = format!(
                "{} before Dagster+ answered (it may have been accepted)",
                interruption.describe()
            );
            let error = Error::Interrupted { interruption, accepted: false, unrecorded: None };
            return Err(record_all(session, plan, DeployOutcome::Interrupted(reason), error, progress));
        }
    };
    if let Err(error) = sent {
        let outcome = DeployOutcome::Failed(one_line(&error));
        let error = Error::DeployRejected {
            error,
            unrecorded: None,
        };
        return Err(record_all(session, plan, outcome, error, progress));
    }
    let deployment_url = client.org_url().deployment_url(&plan.deployment)?;
    progress.event(&Event::Accepted {
        deployment_url: &deployment_url,
    });

    let options = WaitOptions {
        load_timeout: wait.load_timeout,
        agent_heartbeat_timeout: wait.agent_heartbeat_timeout,
        has_agent_queue: plan.has_agent_queue(),
        absent_before,
        ..WaitOptions::default()
    };
    progress.event(&Event::WaitStarted { locations: &names });
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
        progress.event(&Event::Load(event));
    };
    let waited = tokio::select! {
        loads = deployment_client.wait_for_load(&names, &options, &mut on_event) => Ok(loads),
        interruption = &mut interruption => Err(interruption),
    };
    progress.event(&Event::WaitEnded);
    let loads = match waited {
        Ok(Ok(loads)) => loads,
        Ok(Err(error)) => {
            // Dagster+ accepted the deploy; only following it failed.
            let reason = one_line(&error);
            let results = results_so_far(&plan.locations, &seen, || {
                DeployOutcome::NotTracked(reason.clone())
            });
            let error = Error::NotTracked {
                error,
                unrecorded: None,
            };
            return Err(record(session, plan, results, error, progress));
        }
        Err(interruption) => {
            let reason = format!(
                "{} while waiting for the load (Dagster+ had accepted the deploy)",
                interruption.describe()
            );
            let results = results_so_far(&plan.locations, &seen, || {
                DeployOutcome::Interrupted(reason.clone())
            });
            let error = Error::Interrupted {
                interruption,
                accepted: true,
                unrecorded: None,
            };
            return Err(record(session, plan, results, error, progress));
        }
    };

    let by_name: HashMap<&str, &LocationState> = plan
        .locations
        .iter()
        .map(|state| (state.location_name.as_str(), state))
        .collect();
    let mut sent = Vec::new();
    let mut results = Vec::new();
    for load in loads {
        progress.event(&Event::LocationResult(&load));
        let outcome = outcome_of(&load.outcome);
        if let Some(state) = by_name.get(load.location.as_str()) {
            sent.push(DeployResult {
                sent: (*state).clone(),
                outcome: outcome.clone(),
            });
        }
        results.push(LocationResult { load, outcome });
    }
    sent.extend(plan.unchanged_results());
    let record = session
        .record_deploy_results(&sent)
        .map_err(|error| Error::Unrecorded {
            loaded: sent
                .iter()
                .filter(|result| result.outcome == DeployOutcome::Deployed)
                .count(),
            total: sent.len(),
            error: Box::new(error),
        })?;
    progress.event(&Event::Recorded(&record));
    Ok(DeployReport {
        deployment: plan.deployment.clone(),
        results,
        record,
        unchanged: plan.unchanged_names(),
    })
}

/// What the session records for a location that ended with `outcome`.
fn outcome_of(outcome: &LoadOutcome) -> DeployOutcome {
    match outcome {
        LoadOutcome::Loaded | LoadOutcome::NotAwaited => DeployOutcome::Deployed,
        LoadOutcome::Failed { error } => DeployOutcome::Failed(load_failure(error)),
        LoadOutcome::TimedOut => {
            DeployOutcome::Failed("timed out waiting for the location to load".to_owned())
        }
        LoadOutcome::NoAgent => {
            DeployOutcome::Failed("no agent is running for this deployment".to_owned())
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
    deployed: &[LocationState],
    seen: &HashMap<String, DeployOutcome>,
    otherwise: impl Fn() -> DeployOutcome,
) -> Vec<DeployResult> {
    deployed
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

/// Records `outcome` for every deployed location, then returns `error`.
fn record_all(
    session: &Session,
    plan: &DeployPlan,
    outcome: DeployOutcome,
    error: Error,
    progress: &dyn Progress,
) -> Error {
    let results = results_so_far(&plan.locations, &HashMap::new(), || outcome.clone());
    record(session, plan, results, error, progress)
}

/// Records `results` and the plan's unchanged locations, then returns `error`, saying in it
/// when they could not be recorded (the session then does not know what happened).
fn record(
    session: &Session,
    plan: &DeployPlan,
    mut results: Vec<DeployResult>,
    error: Error,
    progress: &dyn Progress,
) -> Error {
    results.extend(plan.unchanged_results());
    match session.record_deploy_results(&results) {
        Ok(record) => {
            progress.event(&Event::Recorded(&record));
            error
        }
        Err(unrecorded) => error.with_unrecorded(Some(unrecorded)),
    }
}
