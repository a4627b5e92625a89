//! The answers `test_support` exports are the ones the client understands: each is served by a
//! mock server and read back through the public API, so an embedder testing against them tests
//! against what this client accepts.

use dagster_deploy_cloud_client::test_support::{self, Answer, ORGANIZATION_PATH, deployment_path};
use dagster_deploy_cloud_client::{
    AgentType, BranchDeploymentRequest, DeploymentType, Error, LoadStatus,
};
use serde_json::json;

const TOKEN: &str = "user:answers-test-token";

#[tokio::test]
async fn deployment_answers_are_read_back_as_domain_values() {
    let mut server = mockito::Server::new_async().await;
    let prod = deployment_path("prod");
    for answer in [
        Answer::deploy_locations(&["a", "b"]),
        Answer::add_or_update_location("a"),
        Answer::agent_type("HYBRID"),
        Answer::agents(&["RUNNING", "NOT_RUNNING"]),
        Answer::current_deployment_name("prod"),
        Answer::locations(vec![
            test_support::location_entry("a", "LOADED", None),
            test_support::location_entry("b", "LOADING", None),
        ]),
    ] {
        answer.mock(&mut server, &prod).create_async().await;
    }
    let client = test_support::client(&server, TOKEN);
    let deployment = client.deployment("prod").unwrap();
    let document = json!({"location_name": "a"});
    assert_eq!(
        deployment
            .deploy_locations(std::slice::from_ref(&document))
            .await
            .unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        deployment.add_or_update_location(&document).await.unwrap(),
        "a"
    );
    assert_eq!(deployment.agent_type().await.unwrap(), AgentType::Hybrid);
    let agents = deployment.agent_status().await.unwrap();
    assert_eq!(
        agents
            .iter()
            .map(|agent| agent.is_running())
            .collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(deployment.current_deployment_name().await.unwrap(), "prod");
    let statuses = deployment.location_statuses().await.unwrap();
    assert_eq!(
        statuses
            .iter()
            .map(|status| (status.name.as_str(), status.load_status.clone()))
            .collect::<Vec<_>>(),
        [("a", LoadStatus::Loaded), ("b", LoadStatus::Loading)]
    );
}

#[tokio::test]
async fn organization_answers_are_read_back_as_domain_values() {
    let mut server = mockito::Server::new_async().await;
    for answer in [
        Answer::organization_settings(json!({"run_queue_config": {}})),
        Answer::branch_deployment(7, "feature-x"),
        Answer::branch_deployment_name(Some("feature-x")),
        Answer::deployment_by_name("feature-x", 42, "BRANCH"),
        Answer::delete_deployment(42),
        Answer::agent_token("agent:new"),
    ] {
        answer
            .mock(&mut server, ORGANIZATION_PATH)
            .create_async()
            .await;
    }
    let client = test_support::client(&server, TOKEN);
    assert_eq!(
        client.organization_settings().await.unwrap(),
        json!({"run_queue_config": {}})
    );
    let request = BranchDeploymentRequest {
        repo_name: "acme/data".into(),
        branch_name: "feature-x".into(),
        commit_hash: "4f2a9c1".into(),
        ..BranchDeploymentRequest::default()
    };
    assert_eq!(
        client
            .create_or_update_branch_deployment(&request)
            .await
            .unwrap(),
        "feature-x"
    );
    assert_eq!(
        client
            .branch_deployment_name("acme/data", "feature-x")
            .await
            .unwrap(),
        "feature-x"
    );
    let info = client.deployment_by_name("feature-x").await.unwrap();
    assert_eq!(info.deployment_type, DeploymentType::Branch);
    client.delete_branch_deployment("feature-x").await.unwrap();
    let token = client.create_agent_token(None).await.unwrap();
    assert_eq!(token.expose(), "agent:new");
}

#[tokio::test]
async fn failure_answers_become_the_matching_errors() {
    let mut server = mockito::Server::new_async().await;
    let prod = deployment_path("prod");
    Answer::invalid_location(&["image missing"])
        .mock(&mut server, &prod)
        .create_async()
        .await;
    Answer::unauthorized(
        "CliAddOrUpdateLocation",
        "addOrUpdateLocationFromDocument",
        "no",
    )
    .mock(&mut server, &prod)
    .create_async()
    .await;
    Answer::python_error("CliLocationsQuery", "workspaceOrError", "db down", &[])
        .mock(&mut server, &prod)
        .create_async()
        .await;
    Answer::deployment_not_found()
        .mock(&mut server, ORGANIZATION_PATH)
        .create_async()
        .await;
    let client = test_support::client(&server, TOKEN);
    let deployment = client.deployment("prod").unwrap();
    let document = json!({"location_name": "a"});
    let error = deployment
        .deploy_locations(std::slice::from_ref(&document))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidLocation { .. }), "{error:?}");
    let error = deployment
        .add_or_update_location(&document)
        .await
        .unwrap_err();
    assert!(error.is_unauthorized(), "{error:?}");
    let error = deployment.location_statuses().await.unwrap_err();
    assert!(matches!(error, Error::Server { .. }), "{error:?}");
    let error = client.deployment_by_name("gone").await.unwrap_err();
    assert!(
        matches!(error, Error::DeploymentNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_with_an_error_status_is_retried_then_reported() {
    let mut server = mockito::Server::new_async().await;
    let unavailable = Answer::current_deployment_name("prod")
        .with_status(503)
        .mock(&mut server, &deployment_path("prod"))
        .expect(4)
        .create_async()
        .await;
    let error = test_support::client(&server, TOKEN)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503), "{error:?}");
    assert_eq!(error.attempts(), Some(4));
    unavailable.assert_async().await;
}
