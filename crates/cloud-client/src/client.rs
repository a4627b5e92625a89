//! The organization-scoped [`CloudClient`] and deployment-scoped [`DeploymentClient`], one
//! method per operation, and the domain types they return.
//!
//! Each method sends one generated operation through `transport.rs` and maps the result union
//! onto domain values or typed errors. Waiting for locations to load is in `wait.rs`.

use std::fmt;
use std::sync::Arc;

use graphql_client::GraphQLQuery;
use serde_json::Value;

use crate::endpoint::OrgUrl;
use crate::error::{Error, Result};
use crate::operations::{
    CliAddOrUpdateLocation, CliAgentStatus, CliCreateOrUpdateBranchDeployment,
    CliCurrentDeploymentName, CliDeleteDeployment, CliDeployLocations, CliDeploymentByName,
    CliGetBranchDeploymentName, CliLocationsAsDocument, CliLocationsQuery, CliOrganizationSettings,
    CliWorkspaceEntries, CreateAgentTokenMutation, DeploymentInfoQuery, cli_add_or_update_location,
    cli_agent_status, cli_create_or_update_branch_deployment, cli_current_deployment_name,
    cli_delete_deployment, cli_deploy_locations, cli_deployment_by_name,
    cli_get_branch_deployment_name, cli_locations_as_document, cli_locations_query,
    cli_organization_settings, cli_workspace_entries, create_agent_token_mutation,
    deployment_info_query,
};
use crate::token::ApiToken;
use crate::transport::{ClientOptions, Idempotency, Transport};
use dagster_deploy_types::PullRequestStatus;

/// The agent type of a deployment (`currentDeployment.agentType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentType {
    /// Dagster+ Serverless.
    Serverless,
    /// Dagster+ Hybrid (your own agent).
    Hybrid,
    /// A value this client does not know.
    Unknown(String),
}

/// One agent as reported by `CliAgentStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// The status name, e.g. `RUNNING`.
    pub status: String,
    /// Messages of the agent's recent errors.
    pub errors: Vec<String>,
}

impl AgentStatus {
    /// Whether the agent is heartbeating (`RUNNING`).
    pub fn is_running(&self) -> bool {
        self.status == "RUNNING"
    }
}

/// Load status of a code location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStatus {
    /// The agent is (re)loading the location.
    Loading,
    /// The location is loaded (successfully or with an error).
    Loaded,
    /// A value this client does not know.
    Unknown(String),
}

/// One entry of the deployment's workspace (`CliLocationsQuery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationStatus {
    /// Location name.
    pub name: String,
    /// Load status.
    pub load_status: LoadStatus,
    /// The load error, rendered as reference-behaviour §3.7 describes, if the location failed to
    /// load.
    pub error: Option<String>,
}

/// One location of the deployment's workspace with what it runs (`CliWorkspaceEntries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceEntry {
    /// Location name.
    pub location_name: String,
    /// The location's deploy data as Dagster+ keeps it: Dagster's serialization of its
    /// `CodeLocationDeployData` (a JSON object whose `image`, `git_metadata`, code source and
    /// container context are the ones the agent runs), exactly as received; `None` if absent.
    pub serialized_deployment_metadata: Option<String>,
}

/// Type of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentType {
    /// A full (production) deployment.
    Production,
    /// A development deployment.
    Dev,
    /// A branch deployment.
    Branch,
    /// A value this client does not know.
    Unknown(String),
}

impl fmt::Display for DeploymentType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            DeploymentType::Production => "PRODUCTION",
            DeploymentType::Dev => "DEV",
            DeploymentType::Branch => "BRANCH",
            DeploymentType::Unknown(other) => other,
        })
    }
}

/// A deployment found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    /// Deployment name.
    pub name: String,
    /// Numeric deployment id.
    pub id: i64,
    /// Deployment type.
    pub deployment_type: DeploymentType,
}

/// When the branch deployment snapshots its base deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotBaseCondition {
    /// Snapshot taken when the branch deployment is created.
    OnCreate,
    /// Snapshot refreshed on every update.
    OnUpdate,
}

/// Variables of `CliCreateOrUpdateBranchDeployment` (reference-behaviour §4.5); `None` is sent as
/// `null`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BranchDeploymentRequest {
    /// Repository name, e.g. `owner/repo`.
    pub repo_name: String,
    /// Branch name.
    pub branch_name: String,
    /// Web URL of the branch.
    pub branch_url: Option<String>,
    /// Web URL of the pull/merge request.
    pub pull_request_url: Option<String>,
    /// Pull/merge request state.
    pub pull_request_status: Option<PullRequestStatus>,
    /// Pull/merge request number.
    pub pull_request_number: Option<String>,
    /// Commit SHA.
    pub commit_hash: String,
    /// Committer time, Unix seconds.
    pub timestamp: f64,
    /// Commit subject.
    pub commit_message: Option<String>,
    /// Web URL of the commit.
    pub commit_url: Option<String>,
    /// Author name.
    pub author_name: Option<String>,
    /// Author email.
    pub author_email: Option<String>,
    /// Author avatar URL.
    pub author_avatar_url: Option<String>,
    /// The base (full) deployment.
    pub base_deployment_name: Option<String>,
    /// Snapshot condition.
    pub snapshot_base_condition: Option<SnapshotBaseCondition>,
}

/// Client for organization-scoped operations; cheap to clone.
#[derive(Clone)]
pub struct CloudClient {
    transport: Arc<Transport>,
    org_url: OrgUrl,
}

impl fmt::Debug for CloudClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CloudClient")
            .field("org_url", &self.org_url)
            .field("token", self.transport.token())
            .finish()
    }
}

/// Client for deployment-scoped operations: `<org URL>/<deployment>/graphql` plus the
/// `Dagster-Cloud-Deployment` header.
#[derive(Clone)]
pub struct DeploymentClient {
    transport: Arc<Transport>,
    deployment: String,
    endpoint: String,
}

impl fmt::Debug for DeploymentClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DeploymentClient")
            .field("endpoint", &self.endpoint)
            .field("token", self.transport.token())
            .finish()
    }
}

impl CloudClient {
    /// Creates a client without sending a request; fails if the URL is plain HTTP to a
    /// non-loopback host, or (with [`Error::InvalidToken`]) if the token is empty or cannot be
    /// sent in an HTTP header.
    pub fn new(org_url: OrgUrl, token: ApiToken, options: ClientOptions) -> Result<Self> {
        org_url.ensure_token_safe()?;
        Ok(CloudClient {
            transport: Arc::new(Transport::new(token, &org_url, options)?),
            org_url,
        })
    }

    /// The organization URL.
    pub fn org_url(&self) -> &OrgUrl {
        &self.org_url
    }

    /// A client for one deployment of this organization; fails with
    /// [`Error::InvalidDeployment`] if the name cannot be a URL path segment.
    pub fn deployment(&self, name: &str) -> Result<DeploymentClient> {
        Ok(DeploymentClient {
            transport: Arc::clone(&self.transport),
            deployment: name.to_owned(),
            endpoint: self.org_url.deployment_graphql_endpoint(name)?,
        })
    }

    fn endpoint(&self) -> String {
        self.org_url.graphql_endpoint()
    }

    /// `CliOrganizationSettings`: the connectivity and token check; returns the settings JSON.
    pub async fn organization_settings(&self) -> Result<Value> {
        let url = self.endpoint();
        let data = self
            .transport
            .execute::<CliOrganizationSettings>(
                &url,
                None,
                cli_organization_settings::Variables,
                Idempotency::Idempotent,
            )
            .await?;
        data.organization_settings
            .and_then(|settings| settings.settings)
            .filter(|settings| !settings.is_null())
            .ok_or_else(|| Error::UnexpectedResponse {
                url,
                operation: "CliOrganizationSettings",
                detail: "the organization settings are missing (null)".into(),
            })
    }

    /// `CliCreateOrUpdateBranchDeployment`; returns the branch deployment's name.
    pub async fn create_or_update_branch_deployment(
        &self,
        request: &BranchDeploymentRequest,
    ) -> Result<String> {
        use cli_create_or_update_branch_deployment as op;
        let url = self.endpoint();
        let variables = op::Variables {
            branch_data: op::CreateOrUpdateBranchDeploymentInput {
                repo_name: request.repo_name.clone(),
                branch_name: request.branch_name.clone(),
                branch_url: request.branch_url.clone(),
                pull_request_url: request.pull_request_url.clone(),
                pull_request_status: request.pull_request_status.map(|status| match status {
                    PullRequestStatus::Open => op::PullRequestStatus::OPEN,
                    PullRequestStatus::Closed => op::PullRequestStatus::CLOSED,
                    PullRequestStatus::Merged => op::PullRequestStatus::MERGED,
                }),
                pull_request_number: request.pull_request_number.clone(),
            },
            commit: op::DeploymentCommitInput {
                commit_hash: request.commit_hash.clone(),
                timestamp: request.timestamp,
                commit_message: request.commit_message.clone(),
                commit_url: request.commit_url.clone(),
                author_name: request.author_name.clone(),
                author_email: request.author_email.clone(),
                author_avatar_url: request.author_avatar_url.clone(),
            },
            base_deployment_name: request.base_deployment_name.clone(),
            snapshot_base_condition: request.snapshot_base_condition.map(
                |condition| match condition {
                    SnapshotBaseCondition::OnCreate => {
                        op::SnapshotBaseDeploymentCondition::ON_CREATE
                    }
                    SnapshotBaseCondition::OnUpdate => {
                        op::SnapshotBaseDeploymentCondition::ON_UPDATE
                    }
                },
            ),
        };
        let operation = "CliCreateOrUpdateBranchDeployment";
        let data = self
            .transport
            .execute::<CliCreateOrUpdateBranchDeployment>(
                &url,
                None,
                variables,
                Idempotency::Idempotent,
            )
            .await?;
        use op::CliCreateOrUpdateBranchDeploymentCreateOrUpdateBranchDeployment as Outcome;
        match data.create_or_update_branch_deployment {
            Some(Outcome::DagsterCloudDeployment(deployment)) => Ok(deployment.deployment_name),
            Some(Outcome::PythonError(error)) => {
                Err(self.server_error(url, operation, &error.message, &[]))
            }
            Some(Outcome::UnauthorizedError) => Err(Error::Unauthorized { url, message: None }),
            other => Err(unexpected(url, operation, &other)),
        }
    }

    /// `CliGetBranchDeploymentName`: the branch deployment of a repository branch.
    pub async fn branch_deployment_name(
        &self,
        repo_name: &str,
        branch_name: &str,
    ) -> Result<String> {
        let url = self.endpoint();
        let data = self
            .transport
            .execute::<CliGetBranchDeploymentName>(
                &url,
                None,
                cli_get_branch_deployment_name::Variables {
                    repo_name: repo_name.to_owned(),
                    branch_name: branch_name.to_owned(),
                },
                Idempotency::Idempotent,
            )
            .await?;
        data.get_branch_deployment_name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Error::UnexpectedResponse {
                url,
                operation: "CliGetBranchDeploymentName",
                detail: format!(
                    "no branch deployment name for repository {repo_name:?}, branch {branch_name:?}"
                ),
            })
    }

    /// `CliDeploymentByName`: looks a deployment up by name.
    pub async fn deployment_by_name(&self, name: &str) -> Result<DeploymentInfo> {
        use cli_deployment_by_name as op;
        let url = self.endpoint();
        let data = self
            .transport
            .execute::<CliDeploymentByName>(
                &url,
                None,
                op::Variables {
                    name: name.to_owned(),
                },
                Idempotency::Idempotent,
            )
            .await?;
        match data.deployment_by_name {
            Some(op::CliDeploymentByNameDeploymentByName::DagsterCloudDeployment(deployment)) => {
                Ok(DeploymentInfo {
                    name: deployment.deployment_name,
                    id: deployment.deployment_id,
                    deployment_type: match deployment.deployment_type {
                        Some(op::DagsterCloudDeploymentType::PRODUCTION) => {
                            DeploymentType::Production
                        }
                        Some(op::DagsterCloudDeploymentType::DEV) => DeploymentType::Dev,
                        Some(op::DagsterCloudDeploymentType::BRANCH) => DeploymentType::Branch,
                        Some(op::DagsterCloudDeploymentType::Other(other)) => {
                            DeploymentType::Unknown(other)
                        }
                        None => DeploymentType::Unknown("unknown".into()),
                    },
                })
            }
            Some(op::CliDeploymentByNameDeploymentByName::UnauthorizedError) => {
                Err(Error::Unauthorized { url, message: None })
            }
            _ => Err(Error::DeploymentNotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// Deletes a deployment, but only ever a branch deployment (checked by name first).
    pub async fn delete_branch_deployment(&self, name: &str) -> Result<()> {
        use cli_delete_deployment as op;
        let deployment = self.deployment_by_name(name).await?;
        if deployment.deployment_type != DeploymentType::Branch {
            return Err(Error::NotBranchDeployment {
                name: name.to_owned(),
                deployment_type: deployment.deployment_type.to_string(),
            });
        }
        let url = self.endpoint();
        let operation = "CliDeleteDeployment";
        let data = self
            .transport
            .execute::<CliDeleteDeployment>(
                &url,
                None,
                op::Variables {
                    deployment_id: deployment.id,
                },
                Idempotency::NotIdempotent,
            )
            .await?;
        match data.delete_deployment {
            Some(op::CliDeleteDeploymentDeleteDeployment::DagsterCloudDeployment(_)) => Ok(()),
            Some(op::CliDeleteDeploymentDeleteDeployment::PythonError(error)) => {
                Err(self.server_error(url, operation, &error.message, &[]))
            }
            Some(op::CliDeleteDeploymentDeleteDeployment::UnauthorizedError) => {
                Err(Error::Unauthorized { url, message: None })
            }
            other => Err(unexpected(url, operation, &other)),
        }
    }

    /// `CreateAgentTokenMutation`: mints an organization agent token.
    pub async fn create_agent_token(&self, description: Option<&str>) -> Result<ApiToken> {
        use create_agent_token_mutation as op;
        let url = self.endpoint();
        let operation = "CreateAgentTokenMutation";
        let data = self
            .transport
            .execute::<CreateAgentTokenMutation>(
                &url,
                None,
                op::Variables {
                    description: description.map(str::to_owned),
                },
                Idempotency::NotIdempotent,
            )
            .await?;
        match data.create_agent_token {
            Some(op::CreateAgentTokenMutationCreateAgentToken::DagsterCloudAgentToken(token)) => {
                Ok(ApiToken::new(token.token))
            }
            Some(op::CreateAgentTokenMutationCreateAgentToken::UnauthorizedError(error)) => {
                Err(Error::Unauthorized {
                    url,
                    message: Some(self.transport.scrub(&error.message)),
                })
            }
            Some(op::CreateAgentTokenMutationCreateAgentToken::PythonError(error)) => {
                Err(self.server_error(url, operation, &error.message, &error.stack))
            }
            Some(op::CreateAgentTokenMutationCreateAgentToken::Unknown) | None => {
                Err(Error::UnexpectedResponse {
                    url,
                    operation,
                    detail: "the result is neither a token nor an error".into(),
                })
            }
        }
    }

    fn server_error(
        &self,
        url: String,
        operation: &'static str,
        message: &str,
        stack: &[String],
    ) -> Error {
        server_error(&self.transport, url, operation, message, stack)
    }
}

impl DeploymentClient {
    /// The deployment-scoped GraphQL endpoint, `<org URL>/<deployment>/graphql`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The deployment name.
    pub fn deployment_name(&self) -> &str {
        &self.deployment
    }

    /// Sends one operation to this deployment's endpoint, scoped to the deployment.
    async fn execute_in_deployment<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        idempotency: Idempotency,
    ) -> Result<Q::ResponseData> {
        self.transport
            .execute::<Q>(
                &self.endpoint,
                Some(&self.deployment),
                variables,
                idempotency,
            )
            .await
    }

    fn server_error(&self, operation: &'static str, message: &str, stack: &[String]) -> Error {
        server_error(
            &self.transport,
            self.endpoint.clone(),
            operation,
            message,
            stack,
        )
    }

    /// `CliDeployLocations`: one batched call with all location documents; returns the names.
    pub async fn deploy_locations(&self, documents: &[Value]) -> Result<Vec<String>> {
        use cli_deploy_locations as op;
        let operation = "CliDeployLocations";
        let document = serde_json::json!({ "locations": documents });
        let data = self
            .execute_in_deployment::<CliDeployLocations>(
                op::Variables { document },
                Idempotency::Idempotent,
            )
            .await?;
        use op::CliDeployLocationsDeployLocations as Outcome;
        match data.deploy_locations {
            Some(Outcome::DeployLocationsSuccess(success)) => Ok(success
                .locations
                .into_iter()
                .map(|location| location.location_name)
                .collect()),
            Some(Outcome::PythonError(error)) => {
                Err(self.server_error(operation, &error.message, &error.stack))
            }
            Some(Outcome::InvalidLocationError(invalid)) => Err(Error::InvalidLocation {
                url: self.endpoint.clone(),
                operation,
                errors: invalid
                    .errors
                    .iter()
                    .map(|error| self.transport.scrub(error))
                    .collect(),
            }),
            Some(Outcome::UnauthorizedError) => Err(Error::Unauthorized {
                url: self.endpoint.clone(),
                message: None,
            }),
            other => Err(unexpected(self.endpoint.clone(), operation, &other)),
        }
    }

    /// `CliAddOrUpdateLocation`: adds or updates one location; returns its name.
    pub async fn add_or_update_location(&self, document: &Value) -> Result<String> {
        use cli_add_or_update_location as op;
        let operation = "CliAddOrUpdateLocation";
        let data = self
            .execute_in_deployment::<CliAddOrUpdateLocation>(
                op::Variables {
                    document: document.clone(),
                },
                Idempotency::Idempotent,
            )
            .await?;
        use op::CliAddOrUpdateLocationAddOrUpdateLocationFromDocument as Outcome;
        match data.add_or_update_location_from_document {
            Some(Outcome::WorkspaceEntry(entry)) => Ok(entry.location_name),
            Some(Outcome::PythonError(error)) => {
                Err(self.server_error(operation, &error.message, &error.stack))
            }
            Some(Outcome::InvalidLocationError(invalid)) => Err(Error::InvalidLocation {
                url: self.endpoint.clone(),
                operation,
                errors: invalid
                    .errors
                    .iter()
                    .map(|error| self.transport.scrub(error))
                    .collect(),
            }),
            Some(Outcome::UnauthorizedError(error)) => Err(Error::Unauthorized {
                url: self.endpoint.clone(),
                message: Some(self.transport.scrub(&error.message)),
            }),
            other => Err(unexpected(self.endpoint.clone(), operation, &other)),
        }
    }

    /// `DeploymentInfoQuery`: whether the deployment is Serverless or Hybrid.
    pub async fn agent_type(&self) -> Result<AgentType> {
        use deployment_info_query as op;
        let data = self
            .execute_in_deployment::<DeploymentInfoQuery>(op::Variables, Idempotency::Idempotent)
            .await?;
        match data
            .current_deployment
            .and_then(|deployment| deployment.agent_type)
        {
            Some(op::DeploymentAgentType::SERVERLESS) => Ok(AgentType::Serverless),
            Some(op::DeploymentAgentType::HYBRID) => Ok(AgentType::Hybrid),
            Some(op::DeploymentAgentType::Other(other)) => Ok(AgentType::Unknown(other)),
            None => Err(Error::UnexpectedResponse {
                url: self.endpoint.clone(),
                operation: "DeploymentInfoQuery",
                detail: "the deployment has no agent type".into(),
            }),
        }
    }

    /// `CliAgentStatus`: the deployment's agents.
    pub async fn agent_status(&self) -> Result<Vec<AgentStatus>> {
        use cli_agent_status as op;
        let data = self
            .execute_in_deployment::<CliAgentStatus>(op::Variables, Idempotency::Idempotent)
            .await?;
        Ok(data
            .agents
            .unwrap_or_default()
            .into_iter()
            .map(|agent| AgentStatus {
                status: match agent.status {
                    op::AgentStatus::Other(other) => other,
                    known => format!("{known:?}"),
                },
                errors: agent
                    .errors
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|error| error.error)
                    .map(|error| self.transport.scrub(&error.message))
                    .collect(),
            })
            .collect())
    }

    /// `CliCurrentDeploymentName`: the name the server gives this deployment.
    pub async fn current_deployment_name(&self) -> Result<String> {
        let data = self
            .execute_in_deployment::<CliCurrentDeploymentName>(
                cli_current_deployment_name::Variables,
                Idempotency::Idempotent,
            )
            .await?;
        data.current_deployment
            .map(|deployment| deployment.deployment_name)
            .ok_or_else(|| Error::UnexpectedResponse {
                url: self.endpoint.clone(),
                operation: "CliCurrentDeploymentName",
                detail: "there is no current deployment".into(),
            })
    }

    /// `CliLocationsQuery`: the load status of every location in the deployment.
    pub async fn location_statuses(&self) -> Result<Vec<LocationStatus>> {
        use cli_locations_query as op;
        let operation = "CliLocationsQuery";
        let data = self
            .execute_in_deployment::<CliLocationsQuery>(op::Variables, Idempotency::Idempotent)
            .await?;
        use op::CliLocationsQueryWorkspaceOrError as Outcome;
        use op::CliLocationsQueryWorkspaceOrErrorOnWorkspaceLocationEntriesLocationOrLoadError as LoadError;
        match data.workspace_or_error {
            Some(Outcome::Workspace(workspace)) => Ok(workspace
                .location_entries
                .into_iter()
                .map(|entry| LocationStatus {
                    name: entry.name,
                    load_status: match entry.load_status {
                        op::RepositoryLocationLoadStatus::LOADING => LoadStatus::Loading,
                        op::RepositoryLocationLoadStatus::LOADED => LoadStatus::Loaded,
                        op::RepositoryLocationLoadStatus::Other(other) => {
                            LoadStatus::Unknown(other)
                        }
                    },
                    error: match entry.location_or_load_error {
                        Some(LoadError::PythonError(error)) => {
                            let chain: Vec<(bool, &str, &[String])> = error
                                .error_chain
                                .iter()
                                .map(|link| {
                                    (
                                        link.is_explicit_link,
                                        link.error.message.as_str(),
                                        link.error.stack.as_slice(),
                                    )
                                })
                                .collect();
                            Some(self.transport.scrub(&render_python_error(
                                &error.message,
                                &error.stack,
                                &chain,
                            )))
                        }
                        _ => None,
                    },
                })
                .collect()),
            Some(Outcome::PythonError(error)) => {
                Err(self.server_error(operation, &error.message, &error.stack))
            }
            Some(Outcome::UnauthorizedError) => Err(Error::Unauthorized {
                url: self.endpoint.clone(),
                message: None,
            }),
            other => Err(unexpected(self.endpoint.clone(), operation, &other)),
        }
    }

    /// `CliWorkspaceEntries`: every location of the deployment with its serialized deploy data.
    pub async fn workspace_entries(&self) -> Result<Vec<WorkspaceEntry>> {
        use cli_workspace_entries as op;
        let data = self
            .execute_in_deployment::<CliWorkspaceEntries>(op::Variables, Idempotency::Idempotent)
            .await?;
        let entries = data
            .workspace
            .and_then(|workspace| workspace.workspace_entries)
            .ok_or_else(|| Error::UnexpectedResponse {
                url: self.endpoint.clone(),
                operation: "CliWorkspaceEntries",
                detail: "the workspace has no entries list (null)".into(),
            })?;
        Ok(entries
            .into_iter()
            .map(|entry| WorkspaceEntry {
                location_name: entry.location_name,
                serialized_deployment_metadata: entry.serialized_deployment_metadata,
            })
            .collect())
    }

    /// `CliLocationsAsDocument`: the deployment's code locations as one document, as Dagster+
    /// returns it (`Value::Null` when it has none).
    pub async fn locations_as_document(&self) -> Result<Value> {
        use cli_locations_as_document as op;
        let data = self
            .execute_in_deployment::<CliLocationsAsDocument>(op::Variables, Idempotency::Idempotent)
            .await?;
        Ok(data
            .locations_as_document
            .and_then(|result| result.document)
            .unwrap_or(Value::Null))
    }
}

fn server_error(
    transport: &Transport,
    url: String,
    operation: &'static str,
    message: &str,
    stack: &[String],
) -> Error {
    Error::Server {
        url,
        operation,
        message: transport.scrub(message),
        stack: stack.iter().map(|line| transport.scrub(line)).collect(),
    }
}

fn unexpected<T: fmt::Debug>(url: String, operation: &'static str, result: &Option<T>) -> Error {
    Error::UnexpectedResponse {
        url,
        operation,
        detail: match result {
            None => "the result is null".into(),
            Some(_) => "the result has a type this client does not know".into(),
        },
    }
}

/// Renders a Python error and its cause chain as the reference does (reference-behaviour §3.7): the
/// message, the concatenated stack, then for each chain link a separator line, its message and
/// stack.
pub(crate) fn render_python_error(
    message: &str,
    stack: &[String],
    chain: &[(bool, &str, &[String])],
) -> String {
    let mut parts = vec![message.to_owned(), stack.concat()];
    for (is_explicit_link, message, stack) in chain {
        parts.push(
            if *is_explicit_link {
                "The above exception was caused by the following exception:"
            } else {
                "The above exception occurred during handling of the following exception:"
            }
            .to_owned(),
        );
        parts.push((*message).to_owned());
        parts.push(stack.concat());
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_error_chain_renders_like_the_reference() {
        let stack = vec![
            "  File \"a.py\", line 1\n".to_owned(),
            "    import b\n".to_owned(),
        ];
        let cause_stack = vec!["  File \"b.py\", line 3\n".to_owned()];
        let rendered = render_python_error(
            "ImportError: cannot import b",
            &stack,
            &[
                (
                    true,
                    "ModuleNotFoundError: No module named 'c'",
                    &cause_stack,
                ),
                (false, "KeyError: 'x'", &[]),
            ],
        );
        insta::assert_snapshot!(rendered, @r#"
        ImportError: cannot import b
          File "a.py", line 1
            import b

        The above exception was caused by the following exception:
        ModuleNotFoundError: No module named 'c'
          File "b.py", line 3

        The above exception occurred during handling of the following exception:
        KeyError: 'x'
        "#);
    }

    #[test]
    fn deployment_type_display_uses_api_names() {
        assert_eq!(DeploymentType::Branch.to_string(), "BRANCH");
        assert_eq!(DeploymentType::Unknown("X".into()).to_string(), "X");
    }
}
