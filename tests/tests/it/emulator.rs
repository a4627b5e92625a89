//! Validates the emulator against the real reference CLI (`dagster-cloud ci …`, installed by
//! `scripts/setup.sh`): the legacy flow must succeed against it, send the recorded deploy
//! document, make the recorded sequence of calls, and fail the recorded way when a location
//! fails to load. Also checks that the `dagster-cloud-emulator` binary announces its address.
//! The reference polls every 3 s, so each deploy here takes about 3 s.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig, REDACTED, RecordedRequest};
use serde_json::{Value, json};

const TOKEN: &str = "user:emulator-test-token-0123";
use crate::support::{FIXTURES, reference_cli};

fn fixture(name: &str) -> Value {
    let path = Path::new(FIXTURES).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A project dir with the recorded `dagster_cloud.yaml`, and an empty state dir.
struct Workspace {
    _root: tempfile::TempDir,
    project: PathBuf,
    statedir: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        std::fs::create_dir_all(project.join("pkg_a")).unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("dagster_cloud.yaml"),
            project.join("dagster_cloud.yaml"),
        )
        .unwrap();
        let statedir = root.path().join("state");
        Self {
            project,
            statedir,
            _root: root,
        }
    }

    /// Runs `dagster-cloud ci <args>` in the project dir with only the variables it needs.
    fn ci(&self, url: &str, token: &str, args: &[&str]) -> Output {
        let home = self.statedir.with_file_name("home");
        std::fs::create_dir_all(&home).unwrap();
        Command::new(reference_cli())
            .arg("ci")
            .args(args)
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("DAGSTER_CLOUD_URL", url)
            .env("DAGSTER_CLOUD_API_TOKEN", token)
            .env("DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT", "60")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `ci init` and `ci set-build-output` as in the recording; both must succeed.
    fn init_and_set_build_output(&self, url: &str, image_tag: &str) {
        let statedir = self.statedir.to_str().unwrap();
        for args in [
            vec![
                "init",
                "--statedir",
                statedir,
                "--project-dir",
                ".",
                "--organization",
                "acme",
                "--deployment",
                "prod",
                "--git-url",
                "https://github.com/acme/data/tree/4f2a9c1",
                "--commit-hash",
                "4f2a9c1",
                "--status-url",
                "https://github.com/acme/data/actions/runs/42",
            ],
            vec![
                "set-build-output",
                "--statedir",
                statedir,
                "--image-tag",
                image_tag,
            ],
        ] {
            let output = self.ci(url, TOKEN, &args);
            assert!(
                output.status.success(),
                "ci {args:?} failed:\n{}",
                describe(&output)
            );
        }
    }

    fn deploy(&self, url: &str, token: &str) -> Output {
        self.ci(
            url,
            token,
            &["deploy", "--statedir", self.statedir.to_str().unwrap()],
        )
    }

    fn last_history_status(&self, location: &str) -> String {
        let path = self.statedir.join(format!("location-{location}.json"));
        let state: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        state["history"].as_array().unwrap().last().unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `(path, root field)` of each call, to compare with the recording.
fn call_sequence(requests: &[RecordedRequest]) -> Vec<(String, String)> {
    requests
        .iter()
        .map(|request| {
            (
                request.path.clone(),
                request.root_field.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn recorded_call_sequence(recording: &Value) -> Vec<(String, String)> {
    recording
        .as_array()
        .unwrap()
        .iter()
        .map(|request| {
            (
                request["endpoint_path"].as_str().unwrap().to_owned(),
                request["root_field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_deploy_request_matches(emulator: &Emulator, recording: &Value) {
    let deploys = emulator.requests_for("deployLocations");
    assert_eq!(deploys.len(), 1, "{deploys:#?}");
    let deploy = &deploys[0];
    assert_eq!(deploy.operation_name.as_deref(), Some("CliDeployLocations"));
    assert_eq!(deploy.variables, recording[0]["variables"]);
    assert_eq!(deploy.deployment.as_deref(), Some("prod"));
    for (name, value) in [
        ("dagster-cloud-api-token", REDACTED),
        ("dagster-cloud-scope", "deployment"),
        ("dagster-cloud-deployment", "prod"),
        ("content-type", "application/json"),
    ] {
        assert_eq!(
            deploy.headers.get(name).map(String::as_str),
            Some(value),
            "header {name}"
        );
    }
}

#[test]
fn reference_cli_deploys_through_the_emulator_as_recorded() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(200)),
    );
    let workspace = Workspace::new();
    workspace.init_and_set_build_output(&emulator.url(), "4f2a9c1-42");
    let output = workspace.deploy(&emulator.url(), TOKEN);
    assert!(
        output.status.success(),
        "ci deploy failed:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Agent synced changes to"),
        "{}",
        describe(&output)
    );

    let recording = fixture("requests-success.json");
    assert_deploy_request_matches(&emulator, &recording);
    assert_eq!(
        call_sequence(&emulator.requests()),
        recorded_call_sequence(&recording)
    );
    let event = &emulator.requests_for("markCliEvent")[0];
    assert_eq!(event.variables["success"], json!(true));
    assert_eq!(event.variables["eventType"], "DEPLOY");

    let deployed = emulator.deployed_locations();
    let images: Vec<(&str, &str)> = deployed
        .iter()
        .map(|location| {
            (
                location.name.as_str(),
                location.document["image"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            (
                "marketing",
                "registry.example.com/data/marketing:4f2a9c1-42"
            ),
            (
                "warehouse",
                "registry.example.com/data/warehouse:4f2a9c1-42"
            )
        ]
    );
    for location in ["marketing", "warehouse"] {
        assert_eq!(
            workspace.last_history_status(location),
            "success",
            "{location}"
        );
    }
}

#[test]
fn reference_cli_fails_the_deploy_when_a_location_fails_to_load() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(200))
            .with_failing_location("marketing"),
    );
    let workspace = Workspace::new();
    workspace.init_and_set_build_output(&emulator.url(), "4f2a9c1-43");
    let output = workspace.deploy(&emulator.url(), TOKEN);
    assert!(
        !output.status.success(),
        "ci deploy should fail:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = "Some locations failed to load after being synced by the agent:\nError loading marketing:\nImportError in marketing\n  File x.py\n";
    assert!(stdout.contains(expected), "{}", describe(&output));

    let recording = fixture("requests-failure.json");
    assert_deploy_request_matches(&emulator, &recording);
    assert_eq!(
        call_sequence(&emulator.requests()),
        recorded_call_sequence(&recording)
    );
    let event = &emulator.requests_for("markCliEvent")[0];
    assert_eq!(event.variables["success"], json!(false));
    assert_eq!(
        event.variables["message"],
        recording[5]["variables"]["message"]
    );
    // reference-behaviour ref-bug 33: the reference marks both locations failed.
    for location in ["marketing", "warehouse"] {
        assert_eq!(
            workspace.last_history_status(location),
            "failed",
            "{location}"
        );
    }
}

#[test]
fn reference_cli_reports_an_unauthorized_token_and_never_sees_it_echoed() {
    let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN));
    let workspace = Workspace::new();
    workspace.init_and_set_build_output(&emulator.url(), "4f2a9c1-44");
    let wrong_token = "user:not-the-right-token";
    let output = workspace.deploy(&emulator.url(), wrong_token);
    assert!(
        !output.status.success(),
        "ci deploy should fail:\n{}",
        describe(&output)
    );
    let everything = describe(&output);
    assert!(everything.contains("Unauthorized"), "{everything}");
    assert!(
        !everything.contains(wrong_token),
        "the token was echoed:\n{everything}"
    );
    assert!(emulator.deployed_locations().is_empty());
    let recorded = serde_json::to_string(&emulator.requests()).unwrap();
    assert!(!recorded.contains("not-the-right-token"), "{recorded}");
}

#[test]
fn emulator_binary_announces_its_address_first_and_serves_graphql() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dagster-cloud-emulator"))
        .args(["--port", "0", "--token", TOKEN, "--agent", "absent"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let url = first_line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/prod/graphql"))
            .header("Dagster-Cloud-Api-Token", TOKEN)
            .json(&json!({"query": "query CliAgentStatus { agents { status } }"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(body, json!({"data": {"agents": []}}));
}
