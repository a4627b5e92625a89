//! The emulated organization (deployments, deployed locations, request log) and the resolvers
//! that answer each GraphQL root field from it. Everything here is synchronous and runs under
//! the emulator's mutex; HTTP, delays and failure bursts live in `emulator/mod.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use super::config::{AgentBehaviour, AgentMode, EmulatorConfig};
use super::graphql::{OperationKind, RootField};
use super::running;
use crate::agent::{LoadOutcome, RealAgent, RealAgentConfig};

/// One request the emulator received, with secrets redacted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path, e.g. `/prod/graphql`.
    pub path: String,
    /// The deployment the request was scoped to (from the path, else the header), if any.
    pub deployment: Option<String>,
    /// The GraphQL operation name (from the document, else the `operationName` key).
    pub operation_name: Option<String>,
    /// The first root field of the operation, e.g. `deployLocations`.
    pub root_field: Option<String>,
    /// Every root field of the operation, in document order.
    pub root_fields: Vec<String>,
    /// The GraphQL document as sent.
    pub query: String,
    /// The `variables` object as sent (`{}` when absent).
    pub variables: Value,
    /// Request headers with lower-case names; token and authorization values are `<redacted>`.
    pub headers: BTreeMap<String, String>,
    /// The HTTP status the emulator answered with.
    pub response_status: u16,
    /// Milliseconds since the emulator started, when the request arrived.
    pub received_at_ms: u64,
}

/// A code location as last deployed to a deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeployedLocation {
    /// The deployment it was deployed to.
    pub deployment: String,
    /// `location_name` from the document.
    pub name: String,
    /// The location document exactly as received.
    pub document: Value,
    /// How many times it has been deployed.
    pub deploy_count: u32,
}

/// A deployment of the emulated organization.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeploymentRecord {
    /// Numeric id, as used by `deleteDeployment`.
    pub id: i64,
    /// Deployment name.
    pub name: String,
    /// `PRODUCTION` or `BRANCH`.
    pub deployment_type: String,
    /// For branch deployments: the last `branchData` variable received.
    pub branch_data: Option<Value>,
    /// For branch deployments: the last `commit` variable received.
    pub commit: Option<Value>,
    /// For branch deployments: the `baseDeploymentName` received.
    pub base_deployment_name: Option<String>,
    /// For branch deployments: the `snapshotBaseCondition` received.
    pub snapshot_base_condition: Option<String>,
}

#[derive(Debug)]
struct LocationState {
    location: DeployedLocation,
    deployed_at: Instant,
    /// Counts deploys across all locations; a real load records its outcome only if the
    /// location still has the generation it started with.
    generation: u64,
    /// What the real agent found, once it has finished.
    real_outcome: Option<LoadOutcome>,
}

/// A deployed location waiting for the real agent.
#[derive(Debug)]
pub(crate) struct PendingLoad {
    deployment: String,
    name: String,
    generation: u64,
    /// The location's deploy document.
    pub(crate) document: Value,
}

/// The whole mutable state, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) failure_burst: FailureBurst,
    pub(crate) maintenance: MaintenanceBurst,
    pub(crate) started: Instant,
    deployments: BTreeMap<String, DeploymentRecord>,
    next_deployment_id: i64,
    locations: BTreeMap<(String, String), LocationState>,
    agent_tokens_created: u32,
    generations: u64,
    pending_loads: Vec<PendingLoad>,
    real_agent: Option<Result<Arc<RealAgent>, String>>,
}

/// The remaining part of a burst of HTTP failures.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FailureBurst {
    pub(crate) remaining: u32,
    pub(crate) status: u16,
    pub(crate) retry_after_seconds: Option<u64>,
}

/// The remaining part of a run of maintenance answers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MaintenanceBurst {
    pub(crate) remaining: u32,
    pub(crate) retry_interval_seconds: f64,
}

fn python_error(message: impl Into<String>) -> Value {
    json!({"__typename": "PythonError", "message": message.into(), "stack": [], "errorChain": []})
}

fn string_argument<'a>(field: &'a RootField, name: &str) -> Result<&'a str, String> {
    field
        .arguments
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "Variable or argument \"{name}\" of field \"{}\" must be a non-null String.",
                field.name
            )
        })
}

fn slug(text: &str) -> String {
    let mut slug = String::new();
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    if slug.is_empty() {
        "branch".to_owned()
    } else {
        slug
    }
}

impl State {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        let mut state = Self {
            config: EmulatorConfig::default(),
            requests: Vec::new(),
            failure_burst: FailureBurst::default(),
            maintenance: MaintenanceBurst::default(),
            started: Instant::now(),
            deployments: BTreeMap::new(),
            next_deployment_id: 1,
            locations: BTreeMap::new(),
            agent_tokens_created: 0,
            generations: 0,
            pending_loads: Vec::new(),
            real_agent: None,
        };
        state.set_config(config);
        state
    }

    /// Replaces the config and creates the full deployments it names that do not exist yet.
    pub(crate) fn set_config(&mut self, config: EmulatorConfig) {
        for name in &config.deployments {
            if !self.deployments.contains_key(name) {
                self.insert_deployment(name.clone(), "PRODUCTION");
            }
        }
        self.config = config;
    }

    fn insert_deployment(&mut self, name: String, deployment_type: &str) -> &mut DeploymentRecord {
        let id = self.next_deployment_id;
        self.next_deployment_id += 1;
        self.deployments
            .entry(name.clone())
            .or_insert(DeploymentRecord {
                id,
                name,
                deployment_type: deployment_type.to_owned(),
                branch_data: None,
                commit: None,
                base_deployment_name: None,
                snapshot_base_condition: None,
            })
    }

    /// The loads the real agent has to start, handed over once.
    pub(crate) fn take_pending_loads(&mut self) -> Vec<PendingLoad> {
        std::mem::take(&mut self.pending_loads)
    }

    /// The real agent, created on first use; an error says why it cannot run here.
    pub(crate) fn real_agent(&mut self) -> Result<Arc<RealAgent>, String> {
        self.real_agent
            .get_or_insert_with(|| {
                RealAgent::new(RealAgentConfig::default())
                    .map(Arc::new)
                    .map_err(|error| error.to_string())
            })
            .clone()
    }

    /// Records what the real agent found for `load`, unless the location changed since.
    pub(crate) fn record_real_load(&mut self, load: &PendingLoad, outcome: LoadOutcome) {
        let key = (load.deployment.clone(), load.name.clone());
        if let Some(state) = self.locations.get_mut(&key)
            && state.generation == load.generation
        {
            state.real_outcome = Some(outcome);
        }
    }

    pub(crate) fn deployments(&self) -> Vec<DeploymentRecord> {
        self.deployments.values().cloned().collect()
    }

    pub(crate) fn deployed_locations(&self) -> Vec<DeployedLocation> {
        self.locations
            .values()
            .map(|state| state.location.clone())
            .collect()
    }

    /// Answers one root field; `Err` becomes a GraphQL error with the field set to `null`.
    pub(crate) fn resolve(
        &mut self,
        kind: OperationKind,
        deployment: Option<&str>,
        field: &RootField,
        now: Instant,
    ) -> Result<Value, String> {
        match (kind, field.name.as_str()) {
            (_, "__typename") => Ok(json!(match kind {
                OperationKind::Mutation => "Mutation",
                _ => "Query",
            })),
            (OperationKind::Query, "organizationSettings") => {
                Ok(json!({"settings": self.config.organization_settings}))
            }
            (OperationKind::Query, "fullDeployments") => Ok(Value::Array(
                self.deployments
                    .values()
                    .filter(|record| record.deployment_type == "PRODUCTION")
                    .map(|record| {
                        json!({"deploymentName": record.name, "deploymentId": record.id, "deploymentType": record.deployment_type})
                    })
                    .collect(),
            )),
            (OperationKind::Query, "currentDeployment") => {
                let record = self.deployment(deployment)?;
                Ok(json!({
                    "deploymentName": record.name,
                    "deploymentId": record.id,
                    "deploymentType": record.deployment_type,
                    "agentType": self.config.agent_type,
                }))
            }
            (OperationKind::Query, "agents") => Ok(self.agents()),
            (OperationKind::Query, "workspaceOrError") => {
                let name = self.deployment(deployment)?.name.clone();
                Ok(self.workspace(&name, now))
            }
            (OperationKind::Query, "workspace") => {
                let name = self.deployment(deployment)?.name.clone();
                Ok(running::workspace(self.deployed_documents(&name)))
            }
            (OperationKind::Query, "locationsAsDocument") => {
                let name = self.deployment(deployment)?.name.clone();
                Ok(running::locations_as_document(self.deployed_documents(&name)))
            }
                        (OperationKind::Query, "deploymentByName") => {
                let name = string_argument(field, "name")?;
                Ok(match self.deployments.get(name) {
                    Some(record) => json!({
                        "__typename": "DagsterCloudDeployment",
                        "deploymentName": record.name,
                        "deploymentId": record.id,
                        "deploymentType": record.deployment_type,
                    }),
                    None => json!({
                        "__typename": "DeploymentNotFoundError",
                        "message": format!("Deployment {name} not found"),
                    }),
                })
            }
            (OperationKind::Query, "getBranchDeploymentName") => {
                let repo_name = string_argument(field, "repoName")?;
                let branch_name = string_argument(field, "branchName")?;
                Ok(self
                    .find_branch_deployment(repo_name, branch_name)
                    .map_or(Value::Null, |name| Value::String(name.to_owned())))
            }
            (OperationKind::Mutation, "createOrUpdateBranchDeployment") => {
                self.create_or_update_branch_deployment(field)
            }
            (OperationKind::Mutation, "deleteDeployment") => {
                let id = field.arguments.get("deploymentId").and_then(Value::as_i64);
                let found = self
                    .deployments
                    .values()
                    .find(|record| Some(record.id) == id)
                    .map(|record| record.name.clone());
                Ok(match found {
                    Some(name) => {
                        let record = self.deployments.remove(&name).unwrap_or_else(|| {
                            unreachable!("deployment {name} was just found")
                        });
                        self.locations.retain(|(owner, _), _| *owner != name);
                        json!({"__typename": "DagsterCloudDeployment", "deploymentId": record.id, "deploymentName": record.name})
                    }
                    None => python_error(format!(
                        "No deployment with id {}",
                        field.arguments.get("deploymentId").unwrap_or(&Value::Null)
                    )),
                })
            }
            (OperationKind::Mutation, "deployLocations") => {
                let name = self.deployment(deployment)?.name.clone();
                self.deploy_locations(&name, field, now)
            }
            (OperationKind::Mutation, "addOrUpdateLocationFromDocument") => {
                let name = self.deployment(deployment)?.name.clone();
                let document = field.arguments.get("document").cloned().unwrap_or(Value::Null);
                match validate_location(&document, "document") {
                    Ok(location_name) => {
                        self.store_location(&name, location_name.clone(), document, now);
                        Ok(json!({"__typename": "WorkspaceEntry", "locationName": location_name}))
                    }
                    Err(error) => Ok(json!({"__typename": "InvalidLocationError", "errors": [error]})),
                }
            }
            (OperationKind::Mutation, "markCliEvent") => Ok(json!("ok")),
            (OperationKind::Mutation, "createAgentToken") => {
                self.agent_tokens_created += 1;
                Ok(json!({
                    "__typename": "DagsterCloudAgentToken",
                    "token": format!("agent:{}:emulated-{:04}", self.config.organization, self.agent_tokens_created),
                }))
            }
            (kind, name) => Err(format!(
                "Cannot query field \"{name}\" on type \"{}\".",
                match kind {
                    OperationKind::Mutation => "Mutation",
                    OperationKind::Subscription => "Subscription",
                    OperationKind::Query => "Query",
                }
            )),
        }
    }

    /// The documents of the locations deployed to `deployment`, by name.
    fn deployed_documents<'a>(&'a self, deployment: &'a str) -> impl Iterator<Item = &'a Value> {
        self.locations
            .iter()
            .filter(move |((owner, _), _)| owner == deployment)
            .map(|(_, state)| &state.location.document)
    }

    fn deployment(&self, deployment: Option<&str>) -> Result<&DeploymentRecord, String> {
        let name = deployment.ok_or_else(|| {
            "This field needs a deployment: call /<deployment>/graphql or send the Dagster-Cloud-Deployment header.".to_owned()
        })?;
        self.deployments.get(name).ok_or_else(|| {
            format!(
                "Deployment \"{name}\" does not exist in organization {}.",
                self.config.organization
            )
        })
    }

    fn agents(&self) -> Value {
        let metadata = json!([{"key": "type", "value": "K8sUserCodeLauncher"}, {"key": "version", "value": "1.13.28"}]);
        match self.config.agent {
            AgentBehaviour::Running => json!([{
                "id": "emulated-agent",
                "agentLabel": "emulated agent",
                "status": "RUNNING",
                "errors": [],
                "metadata": metadata,
            }]),
            AgentBehaviour::NotRunning => json!([{
                "id": "emulated-agent",
                "agentLabel": "emulated agent",
                "status": "NOT_RUNNING",
                "errors": [{"timestamp": 0.0, "error": {"message": "Agent has not sent a heartbeat recently", "stack": []}}],
                "metadata": metadata,
            }]),
            AgentBehaviour::Absent => json!([]),
        }
    }

    fn workspace(&self, deployment: &str, now: Instant) -> Value {
        let entries: Vec<Value> = self
            .locations
            .iter()
            .filter(|((owner, _), _)| owner == deployment)
            .map(|((_, name), state)| self.location_entry(name, state, now))
            .collect();
        json!({"__typename": "Workspace", "locationEntries": entries})
    }

    fn location_entry(&self, name: &str, state: &LocationState, now: Instant) -> Value {
        let loaded = self.config.agent == AgentBehaviour::Running
            && match self.config.agent_mode {
                AgentMode::Simulated => {
                    now.saturating_duration_since(state.deployed_at) >= self.config.load_time
                }
                AgentMode::Real => state.real_outcome.is_some(),
            };
        if !loaded {
            return json!({
                "__typename": "WorkspaceLocationEntry",
                "id": name,
                "name": name,
                "loadStatus": "LOADING",
                "locationOrLoadError": null,
            });
        }
        let load_error = match (&self.config.agent_mode, &state.real_outcome) {
            (AgentMode::Real, Some(LoadOutcome::Failed(error))) => Some(error),
            (AgentMode::Real, _) => None,
            (AgentMode::Simulated, _) => self.config.load_errors.get(name),
        };
        let location_or_error = match load_error {
            Some(error) => json!({
                "__typename": "PythonError",
                "message": error.message,
                "stack": error.stack,
                "errorChain": error.error_chain.iter().map(|link| json!({
                    "isExplicitLink": link.is_explicit_link,
                    "error": {"__typename": "PythonError", "message": link.message, "stack": link.stack},
                })).collect::<Vec<_>>(),
            }),
            None => json!({"__typename": "RepositoryLocation", "id": name, "name": name}),
        };
        json!({
            "__typename": "WorkspaceLocationEntry",
            "id": name,
            "name": name,
            "loadStatus": "LOADED",
            "locationOrLoadError": location_or_error,
        })
    }

    fn store_location(&mut self, deployment: &str, name: String, document: Value, now: Instant) {
        let key = (deployment.to_owned(), name.clone());
        let deploy_count = self
            .locations
            .get(&key)
            .map_or(1, |state| state.location.deploy_count + 1);
        self.generations += 1;
        if self.config.agent_mode == AgentMode::Real {
            self.pending_loads.push(PendingLoad {
                deployment: deployment.to_owned(),
                name: name.clone(),
                generation: self.generations,
                document: document.clone(),
            });
        }
        self.locations.insert(
            key,
            LocationState {
                location: DeployedLocation {
                    deployment: deployment.to_owned(),
                    name,
                    document,
                    deploy_count,
                },
                deployed_at: now,
                generation: self.generations,
                real_outcome: None,
            },
        );
    }

    fn deploy_locations(
        &mut self,
        deployment: &str,
        field: &RootField,
        now: Instant,
    ) -> Result<Value, String> {
        if let Some(message) = &self.config.deploy_error {
            return Ok(python_error(message.clone()));
        }
        let document = field
            .arguments
            .get("document")
            .cloned()
            .unwrap_or(Value::Null);
        let Some(locations) = document.get("locations").and_then(Value::as_array) else {
            return Ok(json!({
                "__typename": "InvalidLocationError",
                "errors": ["document: expected an object with a \"locations\" list"],
            }));
        };
        let mut names = Vec::new();
        let mut errors = Vec::new();
        for (index, location) in locations.iter().enumerate() {
            match validate_location(location, &format!("locations[{index}]")) {
                Ok(name) => names.push(name),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Ok(json!({"__typename": "InvalidLocationError", "errors": errors}));
        }
        for (name, location) in names.iter().zip(locations) {
            self.store_location(deployment, name.clone(), location.clone(), now);
        }
        Ok(json!({
            "__typename": "DeployLocationsSuccess",
            "locations": names.iter().map(|name| json!({"locationName": name})).collect::<Vec<_>>(),
        }))
    }

    fn find_branch_deployment(&self, repo_name: &str, branch_name: &str) -> Option<&str> {
        self.deployments
            .values()
            .find(|record| {
                record.branch_data.as_ref().is_some_and(|data| {
                    data.get("repoName").and_then(Value::as_str) == Some(repo_name)
                        && data.get("branchName").and_then(Value::as_str) == Some(branch_name)
                })
            })
            .map(|record| record.name.as_str())
    }

    fn create_or_update_branch_deployment(&mut self, field: &RootField) -> Result<Value, String> {
        let branch_data = field
            .arguments
            .get("branchData")
            .cloned()
            .unwrap_or(Value::Null);
        let commit = field
            .arguments
            .get("commit")
            .cloned()
            .unwrap_or(Value::Null);
        let repo_name = branch_data.get("repoName").and_then(Value::as_str);
        let branch_name = branch_data.get("branchName").and_then(Value::as_str);
        let (Some(repo_name), Some(branch_name)) = (repo_name, branch_name) else {
            return Err(
                "Variable \"$branchData\" needs non-null String fields repoName and branchName."
                    .to_owned(),
            );
        };
        if commit.get("commitHash").and_then(Value::as_str).is_none()
            || commit.get("timestamp").and_then(Value::as_f64).is_none()
        {
            return Err(
                "Variable \"$commit\" needs a String commitHash and a Float timestamp.".to_owned(),
            );
        }
        let base = field
            .arguments
            .get("baseDeploymentName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(base) = &base
            && !self.deployments.contains_key(base)
        {
            return Ok(python_error(format!("Base deployment {base} not found")));
        }
        let condition = field
            .arguments
            .get("snapshotBaseCondition")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = match self.find_branch_deployment(repo_name, branch_name) {
            Some(name) => name.to_owned(),
            None => {
                let mut name = slug(branch_name);
                if self.deployments.contains_key(&name) {
                    name = format!("{name}-{}", self.next_deployment_id);
                }
                self.insert_deployment(name.clone(), "BRANCH");
                name
            }
        };
        let record = self
            .deployments
            .get_mut(&name)
            .unwrap_or_else(|| unreachable!("branch deployment {name} was just created"));
        record.branch_data = Some(branch_data);
        record.commit = Some(commit);
        record.base_deployment_name = base;
        record.snapshot_base_condition = condition;
        Ok(json!({
            "__typename": "DagsterCloudDeployment",
            "deploymentId": record.id,
            "deploymentName": record.name,
        }))
    }
}

/// Checks the minimum the real server checks before accepting a location document.
fn validate_location(location: &Value, place: &str) -> Result<String, String> {
    let Some(object) = location.as_object() else {
        return Err(format!("{place}: expected a mapping"));
    };
    let name = object
        .get("location_name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| format!("{place}: missing required key location_name"))?;
    if let Some(image) = object.get("image")
        && !image.is_string()
    {
        return Err(format!("{place} ({name}): image must be a string"));
    }
    if let Some(code_source) = object.get("code_source")
        && !code_source.is_object()
    {
        return Err(format!("{place} ({name}): code_source must be a mapping"));
    }
    Ok(name.to_owned())
}

/// Elapsed milliseconds, saturating.
pub(crate) fn millis_since(start: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}
