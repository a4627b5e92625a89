//! The wait-for-load loop: per-location outcomes, events, timeouts, zero values, stale LOADED
//! entries and how quickly a load is noticed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dagster_deploy_cloud_client::test_support::{self, Answer};
use dagster_deploy_cloud_client::{LoadEvent, LoadOutcome, LocationLoad, WaitOptions};
use mockito::{Matcher, ServerGuard};
use serde_json::{Value, json};

use crate::support::{client, graphql};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn fast_wait() -> WaitOptions {
    WaitOptions {
        agent_heartbeat_timeout: Some(Duration::from_secs(5)),
        load_timeout: Duration::from_secs(5),
        initial_poll_interval: Duration::from_millis(10),
        max_poll_interval: Duration::from_millis(50),
        stale_loaded_grace: Duration::from_millis(300),
        ..WaitOptions::default()
    }
}

fn entry(name: &str, status: &str, error: Option<Value>) -> Value {
    test_support::location_entry(name, status, error)
}

fn workspace(entries: Vec<Value>) -> Value {
    Answer::locations(entries).body().clone()
}

fn agents(status: &str) -> Value {
    Answer::agents(&[status]).body().clone()
}

async fn running_agent(server: &mut ServerGuard) -> mockito::Mock {
    graphql(
        server,
        "/prod/graphql",
        "CliAgentStatus",
        200,
        agents("RUNNING"),
    )
    .create_async()
    .await
}

async fn wait(
    server: &ServerGuard,
    list: &[&str],
    options: &WaitOptions,
) -> (Vec<LocationLoad>, Vec<LoadEvent>) {
    let mut events = Vec::new();
    let mut record = |event: &LoadEvent| events.push(event.clone());
    let results = client(server)
        .deployment("prod")
        .unwrap()
        .wait_for_load(&names(list), options, &mut record)
        .await
        .unwrap();
    (results, events)
}

fn render(events: &[LoadEvent]) -> String {
    events
        .iter()
        .map(|event| format!("{event:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn each_location_gets_its_own_outcome() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let _loading = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![
            entry("warehouse", "LOADING", None),
            entry("marketing", "LOADING", None),
        ]),
    )
    .expect(1)
    .create_async()
    .await;
    let python_error = json!({
        "__typename": "PythonError",
        "message": "ModuleNotFoundError: No module named 'marketing'\n",
        "stack": ["  File \"loader.py\", line 1, in load\n"],
        "errorChain": [{"isExplicitLink": true, "error": {"message": "ImportError: boom\n", "stack": []}}],
    });
    let _loaded = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![
            entry("warehouse", "LOADED", None),
            entry("marketing", "LOADED", Some(python_error)),
        ]),
    )
    .create_async()
    .await;
    let (results, events) = wait(&server, &["marketing", "warehouse"], &fast_wait()).await;
    assert_eq!(
        results[1],
        LocationLoad {
            location: "warehouse".into(),
            outcome: LoadOutcome::Loaded
        }
    );
    assert_eq!(results[0].location, "marketing");
    assert!(!results[0].outcome.is_success());
    insta::assert_snapshot!(render(&events), @r#"
    WaitingForAgent
    AgentRunning
    Loading { location: "marketing" }
    Loading { location: "warehouse" }
    Failed { location: "marketing", error: "ModuleNotFoundError: No module named 'marketing'\n\n  File \"loader.py\", line 1, in load\n\nThe above exception was caused by the following exception:\nImportError: boom\n\n" }
    Loaded { location: "warehouse" }
    "#);
}

#[tokio::test]
async fn no_running_agent_within_the_heartbeat_timeout_is_reported_per_location() {
    let mut server = mockito::Server::new_async().await;
    let _agent = graphql(
        &mut server,
        "/prod/graphql",
        "CliAgentStatus",
        200,
        agents("NOT_RUNNING"),
    )
    .create_async()
    .await;
    let locations = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![]),
    )
    .expect(0)
    .create_async()
    .await;
    let options = WaitOptions {
        agent_heartbeat_timeout: Some(Duration::from_millis(200)),
        ..fast_wait()
    };
    let started = Instant::now();
    let (results, events) = wait(&server, &["a"], &options).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(results[0].outcome, LoadOutcome::NoAgent);
    assert_eq!(events, [LoadEvent::WaitingForAgent]);
    locations.assert_async().await;
}

#[tokio::test]
async fn a_location_that_never_loads_times_out() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let _locations = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![
            entry("a", "LOADING", None),
            entry("b", "LOADED", None),
        ]),
    )
    .create_async()
    .await;
    let options = WaitOptions {
        load_timeout: Duration::from_millis(500),
        stale_loaded_grace: Duration::from_millis(100),
        ..fast_wait()
    };
    let (results, _events) = wait(&server, &["a", "b"], &options).await;
    assert_eq!(results[0].outcome, LoadOutcome::TimedOut);
    assert_eq!(
        results[1].outcome,
        LoadOutcome::Loaded,
        "b was trusted after the grace period"
    );
}

#[tokio::test]
async fn a_zero_load_timeout_does_not_wait_or_call_the_api() {
    let mut server = mockito::Server::new_async().await;
    let any = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let options = WaitOptions {
        load_timeout: Duration::ZERO,
        ..fast_wait()
    };
    let (results, events) = wait(&server, &["a", "a", "b"], &options).await;
    assert_eq!(
        results
            .iter()
            .map(|load| (load.location.as_str(), &load.outcome))
            .collect::<Vec<_>>(),
        [
            ("a", &LoadOutcome::NotAwaited),
            ("b", &LoadOutcome::NotAwaited)
        ]
    );
    assert!(events.is_empty());
    any.assert_async().await;
}

#[tokio::test]
async fn an_unset_or_zero_heartbeat_timeout_asks_for_the_agent_type() {
    for heartbeat_timeout in [None, Some(Duration::ZERO)] {
        let mut server = mockito::Server::new_async().await;
        let agent_type = graphql(
            &mut server,
            "/prod/graphql",
            "DeploymentInfoQuery",
            200,
            json!({"data": {"currentDeployment": {"agentType": "HYBRID"}}}),
        )
        .expect(1)
        .create_async()
        .await;
        let _agent = running_agent(&mut server).await;
        let _locations = graphql(
            &mut server,
            "/prod/graphql",
            "CliLocationsQuery",
            200,
            workspace(vec![entry("a", "LOADING", None)]),
        )
        .expect(1)
        .create_async()
        .await;
        let _loaded = graphql(
            &mut server,
            "/prod/graphql",
            "CliLocationsQuery",
            200,
            workspace(vec![entry("a", "LOADED", None)]),
        )
        .create_async()
        .await;
        let options = WaitOptions {
            agent_heartbeat_timeout: heartbeat_timeout,
            ..fast_wait()
        };
        let (results, _) = wait(&server, &["a"], &options).await;
        assert_eq!(results[0].outcome, LoadOutcome::Loaded);
        agent_type.assert_async().await;
    }
}

#[tokio::test]
async fn a_loaded_entry_never_seen_loading_is_trusted_only_after_the_grace_period() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let _locations = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![entry("a", "LOADED", None)]),
    )
    .create_async()
    .await;
    let started = Instant::now();
    let (results, events) = wait(&server, &["a"], &fast_wait()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results[0].outcome, LoadOutcome::Loaded);
    assert_eq!(
        render(&events),
        "WaitingForAgent\nAgentRunning\nLoading { location: \"a\" }\nLoaded { location: \"a\" }"
    );
}

/// A location that had no entry before the deploy has no previous version: its first `LOADED`
/// is the new one, trusted at once instead of after the stale-entry grace (30 s by default).
#[tokio::test]
async fn a_loaded_entry_of_a_location_absent_before_the_deploy_is_trusted_at_once() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let before = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![entry("old", "LOADED", None)]),
    )
    .expect(1)
    .create_async()
    .await;
    let deployment = client(&server).deployment("prod").unwrap();
    let absent = deployment
        .absent_locations(&names(&["old", "new"]))
        .await
        .unwrap();
    before.assert_async().await;
    before.remove_async().await;
    assert_eq!(absent, ["new".to_owned()].into_iter().collect());

    let _after = graphql(
        &mut server,
        "/prod/graphql",
        "CliLocationsQuery",
        200,
        workspace(vec![
            entry("old", "LOADED", None),
            entry("new", "LOADED", None),
        ]),
    )
    .create_async()
    .await;
    let options = WaitOptions {
        agent_heartbeat_timeout: Some(Duration::from_secs(5)),
        load_timeout: Duration::from_secs(20),
        absent_before: absent,
        ..WaitOptions::default()
    };
    let started = Instant::now();
    let mut events = Vec::new();
    let mut record = |event: &LoadEvent| events.push(event.clone());
    let results = deployment
        .wait_for_load(&names(&["new"]), &options, &mut record)
        .await
        .unwrap();
    assert_eq!(results[0].outcome, LoadOutcome::Loaded);
    assert_eq!(
        render(&events),
        "WaitingForAgent\nAgentRunning\nLoaded { location: \"new\" }"
    );
    // Well inside the 30 s grace that a location with a previous version would wait for.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// A location that loads one second after the deploy is reported about a second later.
#[tokio::test]
async fn a_one_second_load_is_reported_within_about_a_second() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let deployed_at = Instant::now();
    let loaded_seen_at = Arc::new(Mutex::new(None::<Duration>));
    let _locations = server
        .mock("POST", "/prod/graphql")
        .match_body(Matcher::PartialJson(
            json!({"operationName": "CliLocationsQuery"}),
        ))
        .with_header("content-type", "application/json")
        .with_body_from_request(move |_| {
            let status = if deployed_at.elapsed() < Duration::from_secs(1) {
                "LOADING"
            } else {
                "LOADED"
            };
            workspace(vec![entry("a", status, None)])
                .to_string()
                .into_bytes()
        })
        .create_async()
        .await;
    let options = WaitOptions {
        agent_heartbeat_timeout: Some(Duration::from_secs(5)),
        load_timeout: Duration::from_secs(10),
        ..WaitOptions::default()
    };
    let sink = Arc::clone(&loaded_seen_at);
    let mut record = move |event: &LoadEvent| {
        if matches!(event, LoadEvent::Loaded { .. }) {
            *sink.lock().unwrap() = Some(deployed_at.elapsed());
        }
    };
    let results = client(&server)
        .deployment("prod")
        .unwrap()
        .wait_for_load(&names(&["a"]), &options, &mut record)
        .await
        .unwrap();
    assert_eq!(results[0].outcome, LoadOutcome::Loaded);
    let reported = loaded_seen_at.lock().unwrap().unwrap();
    // Default cadence: polls at ~0, 0.1, 0.25, 0.45, 0.65, …, 1.05, 1.25 s (200 ms apart in
    // the first minute).
    assert!(
        reported < Duration::from_millis(1600),
        "reported after {reported:?}"
    );
}

/// Ref-bug 11: the agent takes 2.5 s to pick up the deploy, so until then the previous version
/// is reported as LOADED. With the default grace period that entry is not taken for the new
/// version; the location is reported once it has been seen loading and has loaded again.
#[tokio::test]
async fn a_previous_version_still_loaded_after_two_seconds_is_not_reported_as_success() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let deployed_at = Instant::now();
    let _locations = server
        .mock("POST", "/prod/graphql")
        .match_body(Matcher::PartialJson(
            json!({"operationName": "CliLocationsQuery"}),
        ))
        .with_header("content-type", "application/json")
        .with_body_from_request(move |_| {
            let elapsed = deployed_at.elapsed();
            let status = if elapsed < Duration::from_millis(2500) {
                "LOADED" // the previous version
            } else if elapsed < Duration::from_millis(2800) {
                "LOADING"
            } else {
                "LOADED"
            };
            workspace(vec![entry("a", status, None)])
                .to_string()
                .into_bytes()
        })
        .create_async()
        .await;
    let options = WaitOptions {
        agent_heartbeat_timeout: Some(Duration::from_secs(5)),
        load_timeout: Duration::from_secs(10),
        initial_poll_interval: Duration::from_millis(50),
        max_poll_interval: Duration::from_millis(100),
        ..WaitOptions::default()
    };
    let (results, events) = wait(&server, &["a"], &options).await;
    let reported = deployed_at.elapsed();
    assert_eq!(results[0].outcome, LoadOutcome::Loaded);
    assert!(
        reported >= Duration::from_millis(2800) && reported < Duration::from_secs(5),
        "reported after {reported:?}"
    );
    assert_eq!(
        render(&events),
        "WaitingForAgent\nAgentRunning\nLoading { location: \"a\" }\nLoaded { location: \"a\" }"
    );
}

/// The load timeout bounds the whole wait: a location query that never answers (here: within
/// the 5 s request timeout of the test client, and with retries far longer) cannot hold the
/// wait past it.
#[tokio::test]
async fn an_unresponsive_server_cannot_hold_the_wait_past_the_load_timeout() {
    let mut server = mockito::Server::new_async().await;
    let _agent = running_agent(&mut server).await;
    let _stuck = server
        .mock("POST", "/prod/graphql")
        .match_body(Matcher::PartialJson(
            json!({"operationName": "CliLocationsQuery"}),
        ))
        .with_chunked_body(|writer| {
            std::thread::sleep(Duration::from_secs(4));
            writer.write_all(b"{}")
        })
        .create_async()
        .await;
    let options = WaitOptions {
        load_timeout: Duration::from_millis(800),
        ..fast_wait()
    };
    let started = Instant::now();
    let (results, _) = wait(&server, &["a"], &options).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results[0].outcome, LoadOutcome::TimedOut);
}

/// The same for the agent status and agent type queries: no answer means no agent was seen.
#[tokio::test]
async fn a_silent_server_ends_the_wait_at_the_load_timeout_with_no_agent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let client = dagster_deploy_cloud_client::CloudClient::new(
        dagster_deploy_cloud_client::OrgUrl::parse(&url).unwrap(),
        dagster_deploy_cloud_client::ApiToken::new(crate::support::TOKEN),
        crate::support::fast_options(),
    )
    .unwrap();
    for heartbeat in [None, Some(Duration::from_secs(30))] {
        let options = WaitOptions {
            load_timeout: Duration::from_millis(800),
            agent_heartbeat_timeout: heartbeat,
            ..fast_wait()
        };
        let started = Instant::now();
        let results = client
            .deployment("prod")
            .unwrap()
            .wait_for_load(&names(&["a"]), &options, &mut |_| {})
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{heartbeat:?}: {:?}",
            started.elapsed()
        );
        assert_eq!(results[0].outcome, LoadOutcome::NoAgent, "{heartbeat:?}");
    }
}
