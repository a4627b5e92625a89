//! Tests of the emulator over real HTTP: scoping, the deploy-and-load cycle, failure modes,
//! recording and the control endpoints.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const DEPLOY: &str = "mutation CliDeployLocations($document: GenericScalar!) {\n    deployLocations(document: $document) {\n        __typename\n        ... on DeployLocationsSuccess { locations { locationName } }\n        ... on PythonError { message stack }\n        ... on InvalidLocationError { errors }\n    }\n}";
const LOCATIONS: &str = "query CliLocationsQuery { workspaceOrError { __typename ... on Workspace { locationEntries { __typename name loadStatus locationOrLoadError { __typename ... on RepositoryLocation { name } ... on PythonError { message stack errorChain { isExplicitLink error { message stack } } } } } } ... on PythonError { message stack } } }";
const AGENTS: &str = "query CliAgentStatus { agents { status errors { error { message } } } }";
const TOKEN: &str = "user:t0ps3cret-value";

struct Call<'a> {
    path: &'a str,
    token: Option<&'a str>,
    deployment_header: Option<&'a str>,
    query: &'a str,
    variables: Value,
}

impl<'a> Call<'a> {
    fn new(path: &'a str, query: &'a str) -> Self {
        Self {
            path,
            token: Some(TOKEN),
            deployment_header: None,
            query,
            variables: json!({}),
        }
    }

    fn variables(mut self, variables: Value) -> Self {
        self.variables = variables;
        self
    }

    async fn send(self, emulator: &Emulator) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("{}{}", emulator.url(), self.path))
            .json(&json!({"query": self.query, "variables": self.variables}));
        if let Some(token) = self.token {
            request = request.header("Dagster-Cloud-Api-Token", token);
        }
        if let Some(deployment) = self.deployment_header {
            request = request.header("Dagster-Cloud-Deployment", deployment);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn two_locations() -> Value {
    json!({"document": {"locations": [
        {"location_name": "marketing", "code_source": {"module_name": "marketing.definitions"}, "image": "r/m:1"},
        {"location_name": "warehouse", "code_source": {"package_name": "warehouse"}, "image": "r/w:1"},
    ]}})
}

fn load_statuses(body: &Value) -> Vec<(String, String, String)> {
    body["data"]["workspaceOrError"]["locationEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["name"].as_str().unwrap().to_owned(),
                entry["loadStatus"].as_str().unwrap().to_owned(),
                entry["locationOrLoadError"]["__typename"]
                    .as_str()
                    .unwrap_or("null")
                    .to_owned(),
            )
        })
        .collect()
}

fn config() -> EmulatorConfig {
    EmulatorConfig::default()
        .with_token(TOKEN)
        .with_load_time(Duration::from_millis(300))
}

#[tokio::test]
async fn deployed_locations_load_after_the_load_time() {
    let emulator = Emulator::start(config().with_failing_location("marketing")).await;
    let (status, body) = Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": {"deployLocations": {"__typename": "DeployLocationsSuccess", "locations": [{"locationName": "marketing"}, {"locationName": "warehouse"}]}}})
    );

    let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
    assert_eq!(body["data"]["workspaceOrError"]["__typename"], "Workspace");
    assert_eq!(
        load_statuses(&body),
        [
            ("marketing".into(), "LOADING".into(), "null".into()),
            ("warehouse".into(), "LOADING".into(), "null".into())
        ]
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
    assert_eq!(
        load_statuses(&body),
        [
            ("marketing".into(), "LOADED".into(), "PythonError".into()),
            (
                "warehouse".into(),
                "LOADED".into(),
                "RepositoryLocation".into()
            )
        ]
    );
    let error = &body["data"]["workspaceOrError"]["locationEntries"][0]["locationOrLoadError"];
    assert_eq!(error["message"], "ImportError in marketing");
    assert_eq!(error["stack"], json!(["  File x.py\n"]));
    assert_eq!(error["errorChain"], json!([]));

    let deployed = emulator.deployed_locations();
    assert_eq!(deployed.len(), 2);
    assert_eq!(deployed[1].deployment, "prod");
    assert_eq!(deployed[1].document["image"], "r/w:1");
    assert_eq!(deployed[1].deploy_count, 1);
}

#[tokio::test]
async fn error_chains_are_reported_with_their_link_kind() {
    let mut config = config().with_load_time(Duration::ZERO);
    config.load_errors.insert(
        "warehouse".to_owned(),
        LoadError {
            message: "outer".to_owned(),
            stack: vec!["a\n".to_owned()],
            error_chain: vec![ChainedError {
                is_explicit_link: true,
                message: "inner".to_owned(),
                stack: vec!["b\n".to_owned()],
            }],
        },
    );
    let emulator = Emulator::start(config).await;
    Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
    let error = &body["data"]["workspaceOrError"]["locationEntries"][1]["locationOrLoadError"];
    assert_eq!(
        error["errorChain"],
        json!([{"isExplicitLink": true, "error": {"__typename": "PythonError", "message": "inner", "stack": ["b\n"]}}])
    );
}

#[tokio::test]
async fn without_a_running_agent_nothing_loads() {
    let emulator = Emulator::start(config().with_load_time(Duration::ZERO)).await;
    Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    for (agent, expected_agents) in [
        (AgentBehaviour::Absent, json!([])),
        (AgentBehaviour::NotRunning, json!(["NOT_RUNNING"])),
    ] {
        emulator.update_config(|config| config.agent = agent);
        let (_, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
        let statuses: Vec<Value> = body["data"]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|agent| agent["status"].clone())
            .collect();
        assert_eq!(Value::Array(statuses), expected_agents);
        let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
        assert!(
            load_statuses(&body)
                .iter()
                .all(|(_, status, _)| status == "LOADING"),
            "{body}"
        );
    }
    emulator.update_config(|config| config.agent = AgentBehaviour::Running);
    let (_, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(body["data"]["agents"][0]["status"], "RUNNING");
    let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
    assert!(
        load_statuses(&body)
            .iter()
            .all(|(_, status, _)| status == "LOADED")
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_unauthorized_and_never_recorded() {
    let emulator = Emulator::start(config()).await;
    let mut call = Call::new("/prod/graphql", AGENTS);
    call.token = Some("user:wrong-token");
    let (status, body) = call.send(&emulator).await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("Unauthorized"), "{message}");

    let mut call = Call::new("/prod/graphql", AGENTS);
    call.token = None;
    let (_, body) = call.send(&emulator).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Unauthorized")
    );

    let (_, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(body["data"]["agents"][0]["status"], "RUNNING");

    let requests = emulator.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].headers["dagster-cloud-api-token"], REDACTED);
    assert!(!requests[1].headers.contains_key("dagster-cloud-api-token"));
    let everything = format!(
        "{requests:?} {} {}",
        serde_json::to_string(&requests).unwrap(),
        reqwest::get(format!("{}/__emulator/requests", emulator.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    );
    assert!(
        !everything.contains("t0ps3cret"),
        "the token leaked: {everything}"
    );
    assert!(
        !everything.contains("wrong-token"),
        "a token leaked: {everything}"
    );
}

#[tokio::test]
async fn requests_are_recorded_with_operation_root_field_scope_and_variables() {
    let emulator = Emulator::start(config()).await;
    let mut call = Call::new("/graphql", DEPLOY).variables(two_locations());
    call.deployment_header = Some("prod");
    call.send(&emulator).await;
    Call::new("/graphql", "mutation MarkCliEventMutation($eventType: CliEventType!, $durationSeconds: Float!) { markCliEvent(eventType: $eventType, durationSeconds: $durationSeconds) }")
        .variables(json!({"eventType": "DEPLOY", "durationSeconds": 1.5}))
        .send(&emulator)
        .await;

    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/graphql");
    assert_eq!(requests[0].deployment.as_deref(), Some("prod"));
    assert_eq!(
        requests[0].operation_name.as_deref(),
        Some("CliDeployLocations")
    );
    assert_eq!(requests[0].root_field.as_deref(), Some("deployLocations"));
    assert_eq!(requests[0].variables, two_locations());
    assert_eq!(requests[0].headers["dagster-cloud-deployment"], "prod");
    assert_eq!(requests[0].response_status, 200);
    assert_eq!(requests[1].deployment, None);
    assert_eq!(requests[1].root_fields, ["markCliEvent"]);
    assert_eq!(emulator.requests_for("markCliEvent").len(), 1);

    let over_http: Value = reqwest::get(format!("{}/__emulator/requests", emulator.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http[1]["operation_name"], "MarkCliEventMutation");
    assert_eq!(over_http[1]["variables"]["durationSeconds"], 1.5);

    reqwest::Client::new()
        .delete(format!("{}/__emulator/requests", emulator.url()))
        .send()
        .await
        .unwrap();
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn deployment_scope_comes_from_the_path_the_header_or_an_org_prefix() {
    let emulator = Emulator::start(config()).await;
    let (_, body) = Call::new("/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(body["data"]["deployLocations"], Value::Null);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("needs a deployment"),
        "{body}"
    );

    let (_, body) = Call::new(
        "/staging/graphql",
        "query { currentDeployment { deploymentName } }",
    )
    .send(&emulator)
    .await;
    assert_eq!(
        body["errors"][0]["message"],
        "Deployment \"staging\" does not exist in organization acme."
    );
    assert_eq!(body["errors"][0]["path"], json!(["currentDeployment"]));

    let (_, body) = Call::new(
        "/acme/prod/graphql",
        "query CliCurrentDeploymentName { currentDeployment { deploymentName } }",
    )
    .send(&emulator)
    .await;
    assert_eq!(body["data"]["currentDeployment"]["deploymentName"], "prod");
    assert_eq!(body["data"]["currentDeployment"]["agentType"], "HYBRID");

    let (status, _) = Call::new("/prod/other", AGENTS).send(&emulator).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_dg_deployment_info_query_answers_both_root_fields() {
    let emulator = Emulator::start(config()).await;
    let mut call = Call::new(
        "/graphql",
        "query DeploymentInfoQuery { currentDeployment { agentType } agents { status metadata { key value } } }",
    );
    call.deployment_header = Some("prod");
    let (_, body) = call.send(&emulator).await;
    assert_eq!(body["data"]["currentDeployment"]["agentType"], "HYBRID");
    assert_eq!(
        body["data"]["agents"][0]["metadata"][0],
        json!({"key": "type", "value": "K8sUserCodeLauncher"})
    );
    assert_eq!(
        emulator.requests()[0].root_fields,
        ["currentDeployment", "agents"]
    );
}

#[tokio::test]
async fn invalid_documents_and_deploy_errors_come_back_as_typed_results() {
    let emulator = Emulator::start(config()).await;
    let (_, body) = Call::new("/prod/graphql", DEPLOY)
        .variables(json!({"document": {"locations": [{"code_source": {}}, {"location_name": "x", "image": 3}]}}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["deployLocations"],
        json!({"__typename": "InvalidLocationError", "errors": [
            "locations[0]: missing required key location_name",
            "locations[1] (x): image must be a string",
        ]})
    );
    emulator.update_config(|config| config.deploy_error = Some("boom".to_owned()));
    let (_, body) = Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(body["data"]["deployLocations"]["__typename"], "PythonError");
    assert_eq!(body["data"]["deployLocations"]["message"], "boom");
    assert!(emulator.deployed_locations().is_empty());

    let (_, body) = Call::new("/prod/graphql", "query { nope }")
        .send(&emulator)
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"nope\" on type \"Query\"."
    );
    let (_, body) = Call::new("/prod/graphql", "query {").send(&emulator).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Syntax Error")
    );
}

#[tokio::test]
async fn add_or_update_location_deploys_one_location() {
    let emulator = Emulator::start(config()).await;
    let (_, body) = Call::new("/prod/graphql", "mutation CliAddOrUpdateLocation($document: GenericScalar!) { addOrUpdateLocationFromDocument(document: $document) { __typename ... on WorkspaceEntry { locationName } } }")
        .variables(json!({"document": {"location_name": "solo", "code_source": {"package_name": "solo"}}}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["addOrUpdateLocationFromDocument"],
        json!({"__typename": "WorkspaceEntry", "locationName": "solo"})
    );
    assert_eq!(emulator.deployed_locations()[0].name, "solo");
}

#[tokio::test]
async fn branch_deployments_are_created_found_updated_and_deleted() {
    let emulator = Emulator::start(config()).await;
    let create = "mutation CliCreateOrUpdateBranchDeployment($branchData: CreateOrUpdateBranchDeploymentInput!, $commit: DeploymentCommitInput!, $baseDeploymentName: String, $snapshotBaseCondition: SnapshotBaseDeploymentCondition) { createOrUpdateBranchDeployment(branchData: $branchData, commit: $commit, baseDeploymentName: $baseDeploymentName, snapshotBaseCondition: $snapshotBaseCondition,) { __typename ... on DagsterCloudDeployment { deploymentId deploymentName } ... on PythonError { message } } }";
    let variables = |status: &str| {
        json!({
            "branchData": {"repoName": "acme/data", "branchName": "feature/Add-Things", "branchUrl": null, "pullRequestUrl": null, "pullRequestStatus": status, "pullRequestNumber": "7"},
            "commit": {"commitHash": "abc", "timestamp": 1_700_000_000.0, "commitMessage": "m", "commitUrl": null, "authorName": "a", "authorEmail": "e", "authorAvatarUrl": null},
            "baseDeploymentName": "prod",
            "snapshotBaseCondition": "ON_CREATE",
        })
    };
    let (_, created) = Call::new("/graphql", create)
        .variables(variables("OPEN"))
        .send(&emulator)
        .await;
    let created = &created["data"]["createOrUpdateBranchDeployment"];
    assert_eq!(created["__typename"], "DagsterCloudDeployment");
    assert_eq!(created["deploymentName"], "feature-add-things");
    let (_, updated) = Call::new("/graphql", create)
        .variables(variables("CLOSED"))
        .send(&emulator)
        .await;
    assert_eq!(updated["data"]["createOrUpdateBranchDeployment"], *created);
    let record = emulator
        .deployments()
        .into_iter()
        .find(|record| record.name == "feature-add-things")
        .unwrap();
    assert_eq!(record.deployment_type, "BRANCH");
    assert_eq!(record.branch_data.unwrap()["pullRequestStatus"], "CLOSED");
    assert_eq!(record.snapshot_base_condition.as_deref(), Some("ON_CREATE"));

    let (_, body) = Call::new("/graphql", "query CliGetBranchDeploymentName($repoName: String!, $branchName: String!) { getBranchDeploymentName(repoName: $repoName, branchName: $branchName) }")
        .variables(json!({"repoName": "acme/data", "branchName": "feature/Add-Things"}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["getBranchDeploymentName"],
        "feature-add-things"
    );

    let by_name = "query DeploymentByNameQuery($deploymentName: String!) { deploymentByName(name: $deploymentName) { __typename ... on DagsterCloudDeployment { deploymentName deploymentId deploymentType } } }";
    let (_, body) = Call::new("/graphql", by_name)
        .variables(json!({"deploymentName": "feature-add-things"}))
        .send(&emulator)
        .await;
    assert_eq!(body["data"]["deploymentByName"]["deploymentType"], "BRANCH");
    let id = body["data"]["deploymentByName"]["deploymentId"].clone();

    // A branch deployment is deployment-scoped like any other.
    let (_, body) = Call::new("/feature-add-things/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["deployLocations"]["__typename"],
        "DeployLocationsSuccess"
    );

    let (_, body) = Call::new("/graphql", "mutation CliDeleteDeployment($deploymentId: Int!) { deleteDeployment(deploymentId: $deploymentId) { __typename ... on DagsterCloudDeployment { deploymentId } } }")
        .variables(json!({"deploymentId": id}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["deleteDeployment"]["__typename"],
        "DagsterCloudDeployment"
    );
    assert!(emulator.deployed_locations().is_empty());
    let (_, body) = Call::new("/graphql", by_name)
        .variables(json!({"deploymentName": "feature-add-things"}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["deploymentByName"]["__typename"],
        "DeploymentNotFoundError"
    );
}

#[tokio::test]
async fn organization_settings_agent_tokens_and_telemetry_answer() {
    let emulator = Emulator::start(config()).await;
    let (_, body) = Call::new(
        "/graphql",
        "query CliOrganizationSettings { organizationSettings { settings } }",
    )
    .send(&emulator)
    .await;
    assert_eq!(
        body,
        json!({"data": {"organizationSettings": {"settings": {}}}})
    );
    let (_, body) = Call::new("/graphql", "mutation CreateAgentTokenMutation($description: String) { createAgentToken(description: $description) { __typename ... on DagsterCloudAgentToken { token } } }")
        .variables(json!({"description": "ci"}))
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["createAgentToken"],
        json!({"__typename": "DagsterCloudAgentToken", "token": "agent:acme:emulated-0001"})
    );
    let (_, body) = Call::new(
        "/graphql",
        "mutation { markCliEvent(eventType: DEPLOY, durationSeconds: 1) }",
    )
    .send(&emulator)
    .await;
    assert_eq!(body, json!({"data": {"markCliEvent": "ok"}}));
}

#[tokio::test]
async fn a_failure_burst_answers_the_next_requests_with_the_status() {
    let emulator = Emulator::start(config()).await;
    emulator.fail_next(2, 502, Some(1));
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(format!("{}/prod/graphql", emulator.url()))
            .header("Dagster-Cloud-Api-Token", TOKEN)
            .json(&json!({"query": AGENTS}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status().as_u16(), 502);
    assert_eq!(first.headers()["retry-after"], "1");
    assert_eq!(send().await.unwrap().status().as_u16(), 502);
    assert_eq!(send().await.unwrap().status().as_u16(), 200);

    let response = client
        .post(format!("{}/__emulator/fail-next", emulator.url()))
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_none());
    let statuses: Vec<u16> = emulator
        .requests()
        .iter()
        .map(|request| request.response_status)
        .collect();
    assert_eq!(statuses, [502, 502, 200, 503]);
}

#[tokio::test]
async fn the_config_endpoint_merges_keys_and_names_bad_ones() {
    let emulator = Emulator::start(config()).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/__emulator/config", emulator.url()))
        .json(&json!({"agent": "absent", "load_time_ms": 5, "response_delay_ms": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let config = emulator.config();
    assert_eq!(config.agent, AgentBehaviour::Absent);
    assert_eq!(config.load_time, Duration::from_millis(5));
    assert_eq!(
        config.token.as_deref(),
        Some(TOKEN),
        "untouched keys are kept"
    );

    let response = client
        .post(format!("{}/__emulator/config", emulator.url()))
        .json(&json!({"load_tme_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("load_tme_ms"), "{body}");
}

#[tokio::test]
async fn a_response_delay_slows_every_graphql_answer() {
    let mut config = config();
    config.response_delay = Duration::from_millis(300);
    let emulator = Emulator::start(config).await;
    let started = std::time::Instant::now();
    let (status, _) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn start_blocking_serves_from_its_own_thread_and_stops_on_drop() {
    let emulator = Emulator::start_blocking(config());
    let address = emulator.address();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(Call::new("/prod/graphql", AGENTS).send(&emulator));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["agents"][0]["status"], "RUNNING");
    drop(emulator);
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the emulator at {address} should be stopped"
    );
}

#[test]
fn deployment_is_read_from_paths_with_and_without_org_prefix() {
    let check = |path: &str, expected: Option<Option<&str>>| {
        assert_eq!(
            deployment_from_path(path, "acme"),
            expected.map(|inner| inner.map(str::to_owned)),
            "{path}"
        );
    };
    check("/graphql", Some(None));
    check("/acme/graphql", Some(None));
    check("/prod/graphql", Some(Some("prod")));
    check("/acme/prod/graphql", Some(Some("prod")));
    check("//prod/graphql", Some(Some("prod")));
    check("/a/b/c/graphql", None);
    check("/prod/graphql/x", None);
}

#[tokio::test]
async fn a_maintenance_burst_answers_maintenance_bodies_then_recovers() {
    let emulator = Emulator::start(config()).await;
    emulator.maintenance_next(1, 0.25);
    let (status, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(status, 200);
    assert_eq!(body["maintenance"]["retry_interval"], 0.25);
    assert_eq!(body["maintenance"]["timeout"], 3600);
    let (_, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(body["data"]["agents"][0]["status"], "RUNNING");

    let response = reqwest::Client::new()
        .post(format!("{}/__emulator/maintenance-next", emulator.url()))
        .json(&json!({"count": 1, "retry_interval_seconds": 0.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, body) = Call::new("/prod/graphql", AGENTS).send(&emulator).await;
    assert_eq!(body["maintenance"]["retry_interval"], 0.1);
}

#[tokio::test]
async fn a_real_agent_reports_what_it_found_and_ignores_the_simulated_errors() {
    // Images outside loopback registries are refused by the real agent before any pull, so
    // this exercises the real mode's bookkeeping without an image (the agent needs root).
    let emulator = Emulator::start(
        config()
            .with_failing_location("warehouse")
            .with_real_agent(),
    )
    .await;
    let (_, body) = Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(
        body["data"]["deployLocations"]["__typename"],
        "DeployLocationsSuccess"
    );
    let mut entries = Value::Null;
    for _ in 0..100 {
        let (_, body) = Call::new("/prod/graphql", LOCATIONS).send(&emulator).await;
        entries = body["data"]["workspaceOrError"]["locationEntries"].clone();
        if load_statuses(&body)
            .iter()
            .all(|(_, status, _)| status == "LOADED")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for entry in entries.as_array().unwrap() {
        let error = &entry["locationOrLoadError"];
        assert_eq!(error["__typename"], "PythonError", "{entries}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("pulls only from loopback registries, not r"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn what_a_deployment_runs_is_answered_as_deploy_data_and_as_one_document() {
    let emulator = Emulator::start(config()).await;
    let (status, _) = Call::new("/prod/graphql", DEPLOY)
        .variables(two_locations())
        .send(&emulator)
        .await;
    assert_eq!(status, 200);
    let (_, body) = Call::new(
        "/prod/graphql",
        "query CliWorkspaceEntries { workspace { workspaceEntries { locationName serializedDeploymentMetadata } } }",
    )
    .send(&emulator)
    .await;
    let entries = body["data"]["workspace"]["workspaceEntries"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["locationName"], "marketing");
    let data: Value =
        serde_json::from_str(entries[0]["serializedDeploymentMetadata"].as_str().unwrap()).unwrap();
    assert_eq!(data["__class__"], "CodeDeploymentMetadata");
    assert_eq!(data["image"], "r/m:1");
    assert_eq!(data["module_name"], "marketing.definitions");
    assert_eq!(data["package_name"], Value::Null);
    assert_eq!(data["container_context"], json!({}));
    let (_, body) = Call::new(
        "/prod/graphql",
        "query CliLocationsAsDocument { locationsAsDocument { __typename document } }",
    )
    .send(&emulator)
    .await;
    let locations = &body["data"]["locationsAsDocument"]["document"]["locations"];
    assert_eq!(locations[1]["location_name"], "warehouse");
    assert_eq!(locations[1]["image"], "r/w:1");
    assert_eq!(locations[1]["container_context"], json!({}));
}
