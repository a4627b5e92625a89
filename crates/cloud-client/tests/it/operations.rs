//! Every operation: what is sent (endpoint, headers, operation name, variables) and how each
//! result variant is mapped.

use dagster_deploy_cloud_client::{
    AgentType, BranchDeploymentRequest, DeploymentType, Error, LoadStatus, PullRequestStatus,
    SnapshotBaseCondition,
};
use mockito::Matcher;
use serde_json::json;

use crate::support::{TOKEN, assert_no_token, client, graphql, recording};

#[tokio::test]
async fn deployment_calls_carry_all_headers_and_go_to_the_deployment_endpoint() {
    let mut server = mockito::Server::new_async().await;
    let mock = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        200,
        json!({"data": {"deployLocations": {"__typename": "DeployLocationsSuccess", "locations": [{"locationName": "a"}]}}}),
    )
    .match_header("dagster-cloud-api-token", TOKEN)
    .match_header("dagster-cloud-version", "1.13.29")
    .match_header("dagster-cloud-scope", "deployment")
    .match_header("dagster-cloud-deployment", "prod")
    .match_header("content-type", "application/json")
    .match_header("user-agent", Matcher::Regex("^dagster-deploy/".into()))
    .match_header("python-version", Matcher::Missing)
    .expect(1)
    .create_async()
    .await;
    let deployment = client(&server).deployment("prod").unwrap();
    assert_eq!(
        deployment.endpoint(),
        format!("{}/prod/graphql", server.url())
    );
    let names = deployment
        .deploy_locations(&[json!({"location_name": "a"})])
        .await
        .unwrap();
    assert_eq!(names, ["a"]);
    mock.assert_async().await;
}

#[tokio::test]
async fn deploy_sends_one_batched_document() {
    let mut server = mockito::Server::new_async().await;
    let (mock, seen) = recording(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        json!({"data": {"deployLocations": {"__typename": "DeployLocationsSuccess", "locations": []}}}),
    );
    let _mock = mock.expect(1).create_async().await;
    client(&server)
        .deployment("prod")
        .unwrap()
        .deploy_locations(&[json!({"location_name": "a"}), json!({"location_name": "b"})])
        .await
        .unwrap();
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["operationName"], "CliDeployLocations");
    assert_eq!(
        body["variables"],
        json!({"document": {"locations": [{"location_name": "a"}, {"location_name": "b"}]}})
    );
    insta::assert_snapshot!("deploy_locations_query", body["query"].as_str().unwrap());
}

#[tokio::test]
async fn deploy_maps_invalid_location_and_python_errors() {
    let mut server = mockito::Server::new_async().await;
    let _invalid = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        200,
        json!({"data": {"deployLocations": {"__typename": "InvalidLocationError", "errors": ["image missing", "bad queue"]}}}),
    )
    .expect(1)
    .create_async()
    .await;
    let _python = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        200,
        json!({"data": {"deployLocations": {"__typename": "PythonError", "message": "boom", "stack": ["  at x\n"]}}}),
    )
    .expect(1)
    .create_async()
    .await;
    let deployment = client(&server).deployment("prod").unwrap();
    match deployment.deploy_locations(&[json!({})]).await.unwrap_err() {
        Error::InvalidLocation { errors, .. } => assert_eq!(errors, ["image missing", "bad queue"]),
        other => panic!("unexpected {other:?}"),
    }
    match deployment.deploy_locations(&[json!({})]).await.unwrap_err() {
        Error::Server {
            message,
            stack,
            operation,
            ..
        } => {
            assert_eq!(message, "boom");
            assert_eq!(stack, ["  at x\n"]);
            assert_eq!(operation, "CliDeployLocations");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn add_or_update_location_returns_the_name_and_maps_unauthorized() {
    let mut server = mockito::Server::new_async().await;
    let _ok = graphql(
        &mut server,
        "/prod/graphql",
        "CliAddOrUpdateLocation",
        200,
        json!({"data": {"addOrUpdateLocationFromDocument": {"__typename": "WorkspaceEntry", "locationName": "a"}}}),
    )
    .expect(1)
    .create_async()
    .await;
    let _denied = graphql(
        &mut server,
        "/prod/graphql",
        "CliAddOrUpdateLocation",
        200,
        json!({"data": {"addOrUpdateLocationFromDocument": {"__typename": "UnauthorizedError", "message": "no"}}}),
    )
    .expect(1)
    .create_async()
    .await;
    let deployment = client(&server).deployment("prod").unwrap();
    let document = json!({"location_name": "a"});
    assert_eq!(
        deployment.add_or_update_location(&document).await.unwrap(),
        "a"
    );
    let error = deployment
        .add_or_update_location(&document)
        .await
        .unwrap_err();
    assert!(error.is_unauthorized(), "{error}");
}

#[tokio::test]
async fn deployment_queries_map_to_domain_types() {
    let mut server = mockito::Server::new_async().await;
    let _agent_type = graphql(
        &mut server,
        "/prod/graphql",
        "DeploymentInfoQuery",
        200,
        json!({"data": {"currentDeployment": {"agentType": "SERVERLESS"}}}),
    )
    .create_async()
    .await;
    let _agents = graphql(
        &mut server,
        "/prod/graphql",
        "CliAgentStatus",
        200,
        json!({"data": {"agents": [
            {"status": "RUNNING", "errors": []},
            {"status": "NOT_RUNNING", "errors": [{"error": {"message": "lost heartbeat"}}]}
        ]}}),
    )
    .create_async()
    .await;
    let _name = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        json!({"data": {"currentDeployment": {"deploymentName": "prod"}}}),
    )
    .create_async()
    .await;
    let _locations = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        json!({"data": {"workspaceOrError": {"__typename": "Workspace", "locationEntries": [
            {"__typename": "WorkspaceLocationEntry", "name": "a", "loadStatus": "LOADED",
             "locationOrLoadError": {"__typename": "RepositoryLocation", "name": "a"}},
            {"__typename": "WorkspaceLocationEntry", "name": "b", "loadStatus": "LOADED",
             "locationOrLoadError": {"__typename": "PythonError", "message": "ImportError", "stack": ["s1\n"], "errorChain": []}},
            {"__typename": "WorkspaceLocationEntry", "name": "c", "loadStatus": "LOADING", "locationOrLoadError": null}
        ]}}}),
    )
    .create_async()
    .await;
    let deployment = client(&server).deployment("prod").unwrap();
    assert_eq!(
        deployment.agent_type().await.unwrap(),
        AgentType::Serverless
    );
    let agents = deployment.agent_status().await.unwrap();
    assert!(agents[0].is_running());
    assert!(!agents[1].is_running());
    assert_eq!(agents[1].status, "NOT_RUNNING");
    assert_eq!(agents[1].errors, ["lost heartbeat"]);
    assert_eq!(deployment.current_deployment_name().await.unwrap(), "prod");
    let locations = deployment.location_statuses().await.unwrap();
    assert_eq!(locations.len(), 3);
    assert_eq!(
        (locations[0].load_status.clone(), locations[0].error.clone()),
        (LoadStatus::Loaded, None)
    );
    assert_eq!(locations[1].error.as_deref(), Some("ImportError\ns1\n"));
    assert_eq!(locations[2].load_status, LoadStatus::Loading);
}

#[tokio::test]
async fn workspace_python_error_is_a_server_error() {
    let mut server = mockito::Server::new_async().await;
    let _locations = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        json!({"data": {"workspaceOrError": {"__typename": "PythonError", "message": "db down", "stack": []}}}),
    )
    .create_async()
    .await;
    let error = client(&server)
        .deployment("prod")
        .unwrap()
        .location_statuses()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Server { ref message, .. } if message == "db down"),
        "{error:?}"
    );
}

#[tokio::test]
async fn organization_settings_go_to_the_org_endpoint_without_deployment_header() {
    let mut server = mockito::Server::new_async().await;
    let ok = graphql(
        &mut server,
        "/graphql",
        "CliOrganizationSettings",
        200,
        json!({"data": {"organizationSettings": {"settings": {"run_queue_config": {}}}}}),
    )
    .match_header("dagster-cloud-deployment", Matcher::Missing)
    .match_header("dagster-cloud-api-token", TOKEN)
    .expect(1)
    .create_async()
    .await;
    let settings = client(&server).organization_settings().await.unwrap();
    assert_eq!(settings, json!({"run_queue_config": {}}));
    ok.assert_async().await;

    let _null = graphql(
        &mut server,
        "/graphql",
        "CliOrganizationSettings",
        200,
        json!({"data": {"organizationSettings": {"settings": null}}}),
    )
    .create_async()
    .await;
    let error = client(&server).organization_settings().await.unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedResponse { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn branch_deployment_sends_every_variable_with_explicit_nulls() {
    let mut server = mockito::Server::new_async().await;
    let (mock, seen) = recording(
        &mut server,
        "/graphql",
        "CliCreateOrUpdateBranchDeployment",
        json!({"data": {"createOrUpdateBranchDeployment": {"__typename": "DagsterCloudDeployment", "deploymentId": 7, "deploymentName": "feature-x"}}}),
    );
    let _mock = mock.create_async().await;
    let request = BranchDeploymentRequest {
        repo_name: "acme/data".into(),
        branch_name: "feature-x".into(),
        branch_url: Some("https://github.com/acme/data/tree/feature-x".into()),
        pull_request_url: None,
        pull_request_status: Some(PullRequestStatus::Open),
        pull_request_number: Some("12".into()),
        commit_hash: "4f2a9c1".into(),
        timestamp: 1_700_000_000.5,
        commit_message: Some("Add x".into()),
        base_deployment_name: Some("prod".into()),
        snapshot_base_condition: Some(SnapshotBaseCondition::OnUpdate),
        ..BranchDeploymentRequest::default()
    };
    let name = client(&server)
        .create_or_update_branch_deployment(&request)
        .await
        .unwrap();
    assert_eq!(name, "feature-x");
    let body = seen.lock().unwrap()[0].clone();
    insta::assert_json_snapshot!(body["variables"], @r#"
    {
      "branchData": {
        "repoName": "acme/data",
        "branchName": "feature-x",
        "branchUrl": "https://github.com/acme/data/tree/feature-x",
        "pullRequestUrl": null,
        "pullRequestStatus": "OPEN",
        "pullRequestNumber": "12"
      },
      "commit": {
        "commitHash": "4f2a9c1",
        "timestamp": 1700000000.5,
        "commitMessage": "Add x",
        "commitUrl": null,
        "authorName": null,
        "authorEmail": null,
        "authorAvatarUrl": null
      },
      "baseDeploymentName": "prod",
      "snapshotBaseCondition": "ON_UPDATE"
    }
    "#);
}

#[tokio::test]
async fn branch_deployment_python_error_is_a_server_error() {
    let mut server = mockito::Server::new_async().await;
    let _mock = graphql(
        &mut server,
        "/graphql",
        "CliCreateOrUpdateBranchDeployment",
        200,
        json!({"data": {"createOrUpdateBranchDeployment": {"__typename": "PythonError", "message": "no such base"}}}),
    )
    .create_async()
    .await;
    let error = client(&server)
        .create_or_update_branch_deployment(&BranchDeploymentRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Server { ref message, .. } if message == "no such base"),
        "{error:?}"
    );
}

#[tokio::test]
async fn branch_deployment_name_is_returned_and_null_is_an_error() {
    let mut server = mockito::Server::new_async().await;
    let _ok = graphql(
        &mut server,
        "/graphql",
        "CliGetBranchDeploymentName",
        200,
        json!({"data": {"getBranchDeploymentName": "feature-x"}}),
    )
    .match_body(Matcher::PartialJson(
        json!({"variables": {"repoName": "acme/data", "branchName": "x"}}),
    ))
    .expect(1)
    .create_async()
    .await;
    let _null = graphql(
        &mut server,
        "/graphql",
        "CliGetBranchDeploymentName",
        200,
        json!({"data": {"getBranchDeploymentName": null}}),
    )
    .create_async()
    .await;
    let client = client(&server);
    assert_eq!(
        client
            .branch_deployment_name("acme/data", "x")
            .await
            .unwrap(),
        "feature-x"
    );
    let error = client
        .branch_deployment_name("acme/data", "x")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("branch \"x\""), "{error}");
}

#[tokio::test]
async fn delete_only_ever_deletes_a_branch_deployment() {
    let mut server = mockito::Server::new_async().await;
    let _lookup_branch = graphql(
        &mut server,
        "/graphql",
        "CliDeploymentByName",
        200,
        json!({"data": {"deploymentByName": {"__typename": "DagsterCloudDeployment", "deploymentName": "feature-x", "deploymentId": 42, "deploymentType": "BRANCH"}}}),
    )
    .match_body(Matcher::PartialJson(json!({"variables": {"name": "feature-x"}})))
    .create_async()
    .await;
    let _lookup_prod = graphql(
        &mut server,
        "/graphql",
        "CliDeploymentByName",
        200,
        json!({"data": {"deploymentByName": {"__typename": "DagsterCloudDeployment", "deploymentName": "prod", "deploymentId": 1, "deploymentType": "PRODUCTION"}}}),
    )
    .match_body(Matcher::PartialJson(json!({"variables": {"name": "prod"}})))
    .create_async()
    .await;
    let delete = graphql(
        &mut server,
        "/graphql",
        "CliDeleteDeployment",
        200,
        json!({"data": {"deleteDeployment": {"__typename": "DagsterCloudDeployment", "deploymentId": 42}}}),
    )
    .match_body(Matcher::PartialJson(json!({"variables": {"deploymentId": 42}})))
    .expect(1)
    .create_async()
    .await;
    let client = client(&server);
    let info = client.deployment_by_name("feature-x").await.unwrap();
    assert_eq!(
        (info.id, info.deployment_type),
        (42, DeploymentType::Branch)
    );
    client.delete_branch_deployment("feature-x").await.unwrap();
    let error = client.delete_branch_deployment("prod").await.unwrap_err();
    assert!(
        matches!(error, Error::NotBranchDeployment { ref deployment_type, .. } if deployment_type == "PRODUCTION"),
        "{error:?}"
    );
    delete.assert_async().await;
}

#[tokio::test]
async fn unknown_deployment_is_not_found() {
    let mut server = mockito::Server::new_async().await;
    let _lookup = graphql(
        &mut server,
        "/graphql",
        "CliDeploymentByName",
        200,
        json!({"data": {"deploymentByName": {"__typename": "DeploymentNotFoundError"}}}),
    )
    .create_async()
    .await;
    let error = client(&server)
        .deployment_by_name("nope")
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::DeploymentNotFound { ref name } if name == "nope"),
        "{error:?}"
    );
}

#[tokio::test]
async fn create_agent_token_returns_a_hidden_token() {
    let mut server = mockito::Server::new_async().await;
    let _ok = graphql(
        &mut server,
        "/graphql",
        "CreateAgentTokenMutation",
        200,
        json!({"data": {"createAgentToken": {"__typename": "DagsterCloudAgentToken", "token": "agent:new-secret"}}}),
    )
    .match_body(Matcher::PartialJson(json!({"variables": {"description": "ci"}})))
    .expect(1)
    .create_async()
    .await;
    let _denied = graphql(
        &mut server,
        "/graphql",
        "CreateAgentTokenMutation",
        200,
        json!({"data": {"createAgentToken": {"__typename": "UnauthorizedError", "message": "not an admin"}}}),
    )
    .create_async()
    .await;
    let client = client(&server);
    let token = client.create_agent_token(Some("ci")).await.unwrap();
    assert_eq!(token.expose(), "agent:new-secret");
    assert!(!format!("{token:?}").contains("new-secret"));
    let error = client.create_agent_token(Some("ci")).await.unwrap_err();
    assert!(
        matches!(error, Error::Unauthorized { ref message, .. } if message.as_deref() == Some("not an admin")),
        "{error:?}"
    );
    assert_no_token(&error);
}

#[tokio::test]
async fn workspace_entries_return_each_location_with_its_serialized_deploy_data() {
    let mut server = mockito::Server::new_async().await;
    let (mock, seen) = recording(
        &mut server,
        "/prod/graphql",
        "CliWorkspaceEntries",
        json!({"data": {"workspace": {"workspaceEntries": [
            {"locationName": "a", "serializedDeploymentMetadata": "{\"image\": \"r/a:1\"}"},
            {"locationName": "b", "serializedDeploymentMetadata": null},
        ]}}}),
    );
    let _mock = mock
        .match_header("dagster-cloud-deployment", "prod")
        .expect(1)
        .create_async()
        .await;
    let entries = client(&server)
        .deployment("prod")
        .unwrap()
        .workspace_entries()
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].location_name, "a");
    assert_eq!(
        entries[0].serialized_deployment_metadata.as_deref(),
        Some("{\"image\": \"r/a:1\"}")
    );
    assert_eq!(entries[1].serialized_deployment_metadata, None);
    let body = seen.lock().unwrap()[0].clone();
    insta::assert_snapshot!(body["query"].as_str().unwrap(), @r"
    # Recorded from the reference (reference-behaviour §5.4, `dagster-cloud workspace list`): deployment-scoped.
    query CliWorkspaceEntries {
      workspace {
        workspaceEntries {
          locationName
          serializedDeploymentMetadata
        }
      }
    }
    ");
}

#[tokio::test]
async fn a_workspace_without_entries_is_an_unexpected_response() {
    let mut server = mockito::Server::new_async().await;
    let _mock = graphql(
        &mut server,
        "/prod/graphql",
        "CliWorkspaceEntries",
        200,
        json!({"data": {"workspace": null}}),
    )
    .create_async()
    .await;
    let error = client(&server)
        .deployment("prod")
        .unwrap()
        .workspace_entries()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::UnexpectedResponse {
                operation: "CliWorkspaceEntries",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn locations_as_document_returns_the_document_or_null() {
    let mut server = mockito::Server::new_async().await;
    let document = json!({"locations": [{"location_name": "a", "image": "r/a:1"}]});
    let (mock, seen) = recording(
        &mut server,
        "/prod/graphql",
        "CliLocationsAsDocument",
        json!({"data": {"locationsAsDocument": {"__typename": "LocationsAsDocument", "document": document}}}),
    );
    let _mock = mock.expect(1).create_async().await;
    let deployment = client(&server).deployment("prod").unwrap();
    assert_eq!(deployment.locations_as_document().await.unwrap(), document);
    let body = seen.lock().unwrap()[0].clone();
    insta::assert_snapshot!(body["query"].as_str().unwrap(), @r"
    # Recorded from the reference (reference-behaviour §5.4, `dagster-cloud workspace pull`): deployment-scoped.
    query CliLocationsAsDocument {
      locationsAsDocument {
        __typename
        document
      }
    }
    ");
    drop(_mock);
    let _empty = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsAsDocument",
        200,
        json!({"data": {"locationsAsDocument": null}}),
    )
    .create_async()
    .await;
    assert_eq!(
        deployment.locations_as_document().await.unwrap(),
        serde_json::Value::Null
    );
}
