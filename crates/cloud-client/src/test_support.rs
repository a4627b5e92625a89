//! Dagster+ answers for tests, behind the `test-support` feature: what this crate's own tests
//! answer its client with, exported so that a tool embedding the crate can test its flows
//! against the same stand-in (a [`mockito`] server) without a Dagster+ organization.
//!
//! Each [`Answer`] is one GraphQL operation's response, in the shape Dagster+ sends it;
//! [`Answer::mock`] serves it on a mock server, matched by operation name. Organization calls
//! go to [`ORGANIZATION_PATH`], deployment calls to [`deployment_path`]. Nothing here is
//! compiled without the feature.
//!
//! ```
//! use dagster_deploy_cloud_client::test_support::{self, Answer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut server = mockito::Server::new_async().await;
//! let deploy = Answer::deploy_locations(&["sales"])
//!     .mock(&mut server, &test_support::deployment_path("prod"))
//!     .expect(1)
//!     .create_async()
//!     .await;
//! let client = test_support::client(&server, "user:test-token");
//! let loaded = client
//!     .deployment("prod")
//!     .unwrap()
//!     .deploy_locations(&[serde_json::json!({"location_name": "sales"})])
//!     .await
//!     .unwrap();
//! assert_eq!(loaded, ["sales"]);
//! deploy.assert_async().await;
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use mockito;
use mockito::{Matcher, Mock, ServerGuard};
use serde_json::{Value, json};

use crate::{ApiToken, ClientOptions, CloudClient, OrgUrl};

/// The path of organization-scoped calls (settings, branch deployments, agent tokens).
pub const ORGANIZATION_PATH: &str = "/graphql";

/// The path of the calls scoped to `deployment` (deploys, locations, agents).
pub fn deployment_path(deployment: &str) -> String {
    format!("/{deployment}/graphql")
}

/// Client options with millisecond retry delays and a short maintenance cap, so that tests of
/// retry paths run fast.
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(5),
        retry_base_delay: Duration::from_millis(1),
        max_retry_delay: Duration::from_millis(200),
        maintenance_cap: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

/// A client for the organization served by `server` (its URL is the organization URL), with
/// [`fast_options`].
///
/// # Panics
///
/// If the server's URL or the token cannot be used (a test setup mistake).
pub fn client(server: &ServerGuard, token: &str) -> CloudClient {
    let org_url =
        OrgUrl::parse(&server.url()).expect("a mockito server URL is an organization URL");
    CloudClient::new(org_url, ApiToken::new(token), fast_options())
        .expect("a client for a mockito server")
}

/// One GraphQL operation's answer: the operation it answers, the HTTP status and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    operation: &'static str,
    status: usize,
    body: Value,
}

impl Answer {
    /// An answer to `operation` with HTTP 200 and the JSON `body`, for answers this module has
    /// no constructor for.
    pub fn new(operation: &'static str, body: Value) -> Self {
        Answer {
            operation,
            status: 200,
            body,
        }
    }

    /// The same answer with another HTTP status (e.g. 503 to test retries).
    pub fn with_status(mut self, status: usize) -> Self {
        self.status = status;
        self
    }

    /// The GraphQL operation name it answers, e.g. `CliDeployLocations`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The response body.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// A mock (not yet created) that answers POSTs of this operation to `path`; add
    /// expectations, then call `create` or `create_async`.
    pub fn mock(&self, server: &mut ServerGuard, path: &str) -> Mock {
        server
            .mock("POST", path)
            .match_body(Matcher::PartialJson(
                json!({ "operationName": self.operation }),
            ))
            .with_status(self.status)
            .with_header("content-type", "application/json")
            .with_body(self.body.to_string())
    }

    /// Like [`Answer::mock`], and records the JSON body of every request it answers.
    pub fn recording(
        &self,
        server: &mut ServerGuard,
        path: &str,
    ) -> (Mock, Arc<Mutex<Vec<Value>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let response = self.body.to_string();
        let mock = self
            .mock(server, path)
            .with_body_from_request(move |request| {
                let body = request
                    .body()
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    .unwrap_or(Value::Null);
                if let Ok(mut seen) = sink.lock() {
                    seen.push(body);
                }
                response.clone().into_bytes()
            });
        (mock, seen)
    }

    /// `CliDeployLocations` accepted, naming the deployed locations.
    pub fn deploy_locations(names: &[&str]) -> Self {
        let locations: Vec<Value> = names
            .iter()
            .map(|name| json!({ "locationName": name }))
            .collect();
        Self::data(
            "CliDeployLocations",
            "deployLocations",
            json!({"__typename": "DeployLocationsSuccess", "locations": locations}),
        )
    }

    /// `CliDeployLocations` refused: the documents do not validate (`InvalidLocationError`).
    pub fn invalid_location(errors: &[&str]) -> Self {
        Self::data(
            "CliDeployLocations",
            "deployLocations",
            json!({"__typename": "InvalidLocationError", "errors": errors}),
        )
    }

    /// `CliAddOrUpdateLocation` accepted for `name`.
    pub fn add_or_update_location(name: &str) -> Self {
        Self::data(
            "CliAddOrUpdateLocation",
            "addOrUpdateLocationFromDocument",
            json!({"__typename": "WorkspaceEntry", "locationName": name}),
        )
    }

    /// `DeploymentInfoQuery`: the deployment's agent type (`HYBRID`, `SERVERLESS`).
    pub fn agent_type(agent_type: &str) -> Self {
        Self::data(
            "DeploymentInfoQuery",
            "currentDeployment",
            json!({ "agentType": agent_type }),
        )
    }

    /// `CliAgentStatus`: one agent per status (`RUNNING`, `NOT_RUNNING`, ...), without errors.
    pub fn agents(statuses: &[&str]) -> Self {
        let agents: Vec<Value> = statuses
            .iter()
            .map(|status| json!({"status": status, "errors": []}))
            .collect();
        Self::data("CliAgentStatus", "agents", Value::Array(agents))
    }

    /// `CliCurrentDeploymentName`: the deployment the token's scope names.
    pub fn current_deployment_name(name: &str) -> Self {
        Self::data(
            "CliCurrentDeploymentName",
            "currentDeployment",
            json!({ "deploymentName": name }),
        )
    }

    /// `CliLocationsQuery`: the workspace, one entry per [`location_entry`].
    pub fn locations(entries: Vec<Value>) -> Self {
        Self::data(
            "CliLocationsQuery",
            "workspaceOrError",
            json!({"__typename": "Workspace", "locationEntries": entries}),
        )
    }

    /// `CliWorkspaceEntries`: `(location name, serialized deploy data)` per location.
    pub fn workspace_entries(entries: &[(&str, &str)]) -> Self {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(name, metadata)| {
                json!({"locationName": name, "serializedDeploymentMetadata": metadata})
            })
            .collect();
        Self::data(
            "CliWorkspaceEntries",
            "workspace",
            json!({ "workspaceEntries": entries }),
        )
    }

    /// `CliLocationsAsDocument` with `document`.
    pub fn locations_as_document(document: Value) -> Self {
        Self::data(
            "CliLocationsAsDocument",
            "locationsAsDocument",
            json!({"__typename": "LocationsAsDocument", "document": document}),
        )
    }

    /// `CliOrganizationSettings` with `settings`.
    pub fn organization_settings(settings: Value) -> Self {
        Self::data(
            "CliOrganizationSettings",
            "organizationSettings",
            json!({ "settings": settings }),
        )
    }

    /// `CliCreateOrUpdateBranchDeployment` accepted: the branch deployment's id and name.
    pub fn branch_deployment(id: i64, name: &str) -> Self {
        Self::data(
            "CliCreateOrUpdateBranchDeployment",
            "createOrUpdateBranchDeployment",
            json!({"__typename": "DagsterCloudDeployment", "deploymentId": id, "deploymentName": name}),
        )
    }

    /// `CliGetBranchDeploymentName`: the name, or `None` when there is no such deployment.
    pub fn branch_deployment_name(name: Option<&str>) -> Self {
        Self::data(
            "CliGetBranchDeploymentName",
            "getBranchDeploymentName",
            json!(name),
        )
    }

    /// `CliDeploymentByName`: a deployment of `deployment_type` (`BRANCH`, `PRODUCTION`).
    pub fn deployment_by_name(name: &str, id: i64, deployment_type: &str) -> Self {
        Self::data(
            "CliDeploymentByName",
            "deploymentByName",
            json!({"__typename": "DagsterCloudDeployment", "deploymentName": name, "deploymentId": id, "deploymentType": deployment_type}),
        )
    }

    /// `CliDeploymentByName`: no deployment has that name.
    pub fn deployment_not_found() -> Self {
        Self::data(
            "CliDeploymentByName",
            "deploymentByName",
            json!({"__typename": "DeploymentNotFoundError"}),
        )
    }

    /// `CliDeleteDeployment` accepted.
    pub fn delete_deployment(id: i64) -> Self {
        Self::data(
            "CliDeleteDeployment",
            "deleteDeployment",
            json!({"__typename": "DagsterCloudDeployment", "deploymentId": id}),
        )
    }

    /// `CreateAgentTokenMutation` accepted: the new token.
    pub fn agent_token(token: &str) -> Self {
        Self::data(
            "CreateAgentTokenMutation",
            "createAgentToken",
            json!({"__typename": "DagsterCloudAgentToken", "token": token}),
        )
    }

    /// `operation` answered with a `PythonError` at its result `field` (e.g.
    /// `CliDeployLocations`, `deployLocations`): a server-side exception.
    pub fn python_error(
        operation: &'static str,
        field: &str,
        message: &str,
        stack: &[&str],
    ) -> Self {
        Self::data(
            operation,
            field,
            json!({"__typename": "PythonError", "message": message, "stack": stack}),
        )
    }

    /// `operation` answered with an `UnauthorizedError` at its result `field`: the token is
    /// not allowed to do this.
    pub fn unauthorized(operation: &'static str, field: &str, message: &str) -> Self {
        Self::data(
            operation,
            field,
            json!({"__typename": "UnauthorizedError", "message": message}),
        )
    }

    /// `{"data": {field: value}}` for `operation`.
    fn data(operation: &'static str, field: &str, value: Value) -> Self {
        let mut data = serde_json::Map::new();
        data.insert(field.to_owned(), value);
        Self::new(operation, json!({ "data": data }))
    }
}

/// One entry of [`Answer::locations`]: `name` with its load status (`LOADING`, `LOADED`) and,
/// for a location that failed to load, the `PythonError` value of its load error.
pub fn location_entry(name: &str, load_status: &str, load_error: Option<Value>) -> Value {
    json!({
        "__typename": "WorkspaceLocationEntry",
        "name": name,
        "loadStatus": load_status,
        "locationOrLoadError": load_error
            .unwrap_or_else(|| json!({"__typename": "RepositoryLocation", "name": name})),
    })
}
