//! What the commands print, and their exit codes per failure class: usage 2, config 3, auth 4,
//! deploy 6, load 7, timeout 8 (registry 5 is in `docker_builder.rs`). Deploys run against the
//! Dagster+ emulator of `dagster-deploy-e2e`.

use std::time::Duration;

use dagster_deploy_e2e::{AgentBehaviour, Emulator, EmulatorConfig};

use crate::support::{Sandbox, TOKEN, snapshot};

const USAGE: i32 = 2;
const CONFIG: i32 = 3;
const AUTH: i32 = 4;
const DEPLOY: i32 = 6;
const LOAD: i32 = 7;
const TIMEOUT: i32 = 8;

/// A sandbox with a session at the emulator and image tag `v1` recorded for both locations.
fn built_session(emulator: &Emulator) -> Sandbox {
    Sandbox::built(&emulator.url())
}

fn emulator() -> Emulator {
    Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(100)),
    )
}

#[test]
fn a_command_without_a_state_directory_is_a_usage_error() {
    let run = Sandbox::new().cli(["status"]).run().code(USAGE);
    assert!(run.stdout.is_empty());
    snapshot!("no_statedir", run.stderr);
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let run = Sandbox::new()
        .cli(["deploy", "--no-such-flag"])
        .run()
        .code(USAGE);
    assert!(run.stderr.contains("--no-such-flag"), "{}", run.stderr);
}

#[test]
fn deploy_without_a_session_is_a_config_error() {
    let sandbox = Sandbox::new();
    let run = sandbox.in_session(["deploy"]).run().code(CONFIG);
    assert!(run.stderr.contains("run `dagster-deploy start` first"));
    snapshot!("deploy_no_session", run.stderr);
}

#[test]
fn deploy_refuses_a_location_without_an_image_and_sends_nothing() {
    let emulator = emulator();
    let sandbox = Sandbox::with_project();
    sandbox.start(Some(&emulator.url()));
    sandbox
        .in_session([
            "set-build-output",
            "--image-tag",
            "v1",
            "--location-name",
            "alpha",
        ])
        .run()
        .success();
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(CONFIG);
    assert!(run.stderr.contains("location(s) beta"), "{}", run.stderr);
    assert!(emulator.requests().is_empty());
    snapshot!("deploy_location_without_image", run.stderr);
}

#[test]
fn set_build_output_rejects_a_bad_tag_and_records_nothing() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let run = sandbox
        .in_session(["set-build-output", "--image-tag", "bad tag!"])
        .run()
        .code(USAGE);
    snapshot!("set_build_output_bad_tag", run.stderr);
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
}

#[test]
fn set_build_output_summarises_many_locations_and_lists_them_with_verbose() {
    let sandbox = Sandbox::with_locations(12);
    sandbox.start(None);
    let run = sandbox
        .in_session(["set-build-output", "--image-tag", "v1"])
        .run()
        .success();
    assert!(
        run.stderr.contains(
            "Recorded tag v1 for 12 locations (loc-0000, loc-0001, loc-0002, loc-0003, loc-0004, … and 7 more)"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Recorded image"), "{}", run.stderr);
    let verbose = sandbox
        .in_session(["--verbose", "set-build-output", "--image-tag", "v2"])
        .run()
        .success();
    assert_eq!(
        verbose
            .stderr
            .matches("Recorded image registry.example.com/team/loc-")
            .count(),
        12,
        "{}",
        verbose.stderr
    );
    assert!(verbose.stderr.contains("Recorded tag v2 for 12 locations"));
}

#[test]
fn set_build_output_records_registry_and_tag() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let run = sandbox
        .in_session(["set-build-output", "--image-tag", "v1"])
        .run()
        .success();
    snapshot!("set_build_output", run.stderr);
    assert_eq!(
        sandbox.images(),
        [
            (
                "alpha".to_owned(),
                Some("registry.example.com/team/alpha:v1".to_owned())
            ),
            (
                "beta".to_owned(),
                Some("registry.example.com/team/beta:v1".to_owned())
            ),
        ]
    );
}

#[test]
fn start_names_file_line_and_field_of_a_bad_dagster_cloud_yaml() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "proj/dagster_cloud.yaml",
        "locations:\n  - location_name: alpha\n    code_source:\n      package_name: alpha\n    buld:\n      registry: registry.example.com/alpha\n",
    );
    let run = sandbox
        .in_session(["start", "--skip-validation", "--deployment-type", "full"])
        .arg("--dagster-cloud-yaml")
        .arg(sandbox.yaml())
        .args(["--organization", "acme", "--deployment", "prod"])
        .run()
        .code(CONFIG);
    let expected = format!("{}:5:5: locations[0].buld", sandbox.yaml().display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(run.stderr.contains("`build`"), "{}", run.stderr);
    assert!(
        !sandbox.statedir().exists(),
        "nothing may be written before the configuration is valid"
    );
    snapshot!("start_bad_yaml", run.stderr);
}

#[test]
fn check_lists_every_mistake_of_a_file_with_its_help_and_the_count() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "proj/dagster_cloud.yaml",
        "locations:\n  - location_name: alpha\n    code_source: {package_nme: alpha}\n    build:\n      registry: registry.example.com/Alpha\n  - location_name: beta\n    image: [beta]\n  - location_name: alpha\n",
    );
    let run = sandbox
        .cli(["check", "--offline", "--dagster-cloud-yaml"])
        .arg(sandbox.yaml())
        .run()
        .code(CONFIG);
    let yaml = sandbox.yaml().display().to_string();
    for (position, field) in [
        ("3:19", "locations[0].code_source.package_nme"),
        ("5:17", "locations[0].build.registry"),
        ("7:12", "locations[1].image"),
        ("8:20", "locations[2].location_name"),
    ] {
        let expected = format!("error: {yaml}:{position}: {field}: ");
        assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("  help: ").count(), 4, "{}", run.stderr);
    assert!(
        run.stderr
            .trim_end()
            .ends_with(&format!("error: 4 problems in {yaml}")),
        "{}",
        run.stderr
    );
    snapshot!("check_several_mistakes", run.stderr);
}

#[test]
fn start_rejects_an_unknown_location_name_as_a_usage_error() {
    let sandbox = Sandbox::with_project();
    let run = sandbox
        .in_session(["start", "--skip-validation", "--deployment-type", "full"])
        .arg("--dagster-cloud-yaml")
        .arg(sandbox.yaml())
        .args(["--organization", "acme", "--deployment", "prod"])
        .args(["--location-name", "gamma"])
        .run()
        .code(USAGE);
    assert!(!sandbox.statedir().exists());
    snapshot!("start_unknown_location", run.stderr);
}

#[test]
fn session_commands_reject_an_unknown_location_name_as_a_usage_error() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let deploy = sandbox
        .in_session(["deploy", "--dry-run", "--location-name", "gamma"])
        .run()
        .code(USAGE);
    snapshot!("deploy_unknown_location", deploy.stderr);
    let set = sandbox
        .in_session([
            "set-build-output",
            "--image-tag",
            "v1",
            "--location-name",
            "gamma",
        ])
        .run()
        .code(USAGE);
    assert!(set.stderr.contains("gamma"), "{}", set.stderr);
    sandbox
        .in_session(["locations", "select", "gamma"])
        .run()
        .code(USAGE);
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
}

#[test]
fn start_without_a_deployment_is_a_usage_error() {
    let sandbox = Sandbox::with_project();
    let run = sandbox
        .in_session(["start", "--skip-validation", "--deployment-type", "full"])
        .arg("--dagster-cloud-yaml")
        .arg(sandbox.yaml())
        .args(["--organization", "acme"])
        .run()
        .code(USAGE);
    assert!(run.stderr.contains("no deployment given"), "{}", run.stderr);
}

#[test]
fn deploy_dry_run_prints_endpoint_and_document_and_sends_nothing() {
    let emulator = emulator();
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["deploy", "--dry-run"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .success();
    // The endpoint goes to stderr so that stdout is the document alone, ready for `jq`.
    let endpoint = format!("{}/prod/graphql", emulator.url());
    assert!(
        run.stderr
            .contains(&format!("would POST CliDeployLocations to {endpoint} ")),
        "{}",
        run.stderr
    );
    let document: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is the JSON document alone");
    assert_eq!(document["locations"].as_array().map(Vec::len), Some(2));
    snapshot!("deploy_dry_run_stdout", run.stdout);
    snapshot!("deploy_dry_run_stderr", run.stderr);
    assert!(emulator.requests().is_empty(), "{:?}", emulator.requests());
    assert!(emulator.requests_for("deployLocations").is_empty());
    assert!(emulator.deployed_locations().is_empty());
    run.assert_hides(TOKEN);
}

#[test]
fn deploy_loads_every_location_and_records_success() {
    let emulator = emulator();
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .success();
    run.assert_hides(TOKEN);
    let mut deployed: Vec<(String, String)> = emulator
        .deployed_locations()
        .into_iter()
        .map(|location| {
            (
                location.name,
                location.document["image"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    deployed.sort();
    assert_eq!(
        deployed,
        [
            (
                "alpha".to_owned(),
                "registry.example.com/team/alpha:v1".to_owned()
            ),
            (
                "beta".to_owned(),
                "registry.example.com/team/beta:v1".to_owned()
            ),
        ]
    );
    assert_eq!(emulator.requests_for("deployLocations").len(), 1);
    let table = sandbox.in_session(["status"]).run().success();
    snapshot!("status_table_after_deploy", table.stdout);
}

#[test]
fn deploy_without_a_token_is_an_auth_error() {
    let emulator = emulator();
    let sandbox = built_session(&emulator);
    let run = sandbox.in_session(["deploy"]).run().code(AUTH);
    assert!(emulator.requests().is_empty());
    snapshot!("deploy_no_token", run.stderr);
}

#[test]
fn deploy_with_a_refused_token_is_an_auth_error_that_hides_the_token() {
    let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token("other"));
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["--verbose", "deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(AUTH);
    run.assert_hides(TOKEN);
    assert!(emulator.deployed_locations().is_empty());
}

#[test]
fn deploy_rejected_by_dagster_plus_is_a_deploy_error_recorded_per_location() {
    let emulator = emulator();
    emulator.update_config(|config| config.deploy_error = Some("quota exceeded".to_owned()));
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(DEPLOY);
    assert!(run.stderr.contains("quota exceeded"), "{}", run.stderr);
    let json = sandbox
        .in_session(["status", "--output-format", "json"])
        .run()
        .success();
    assert_eq!(
        json.stdout.matches("\"failed\"").count(),
        2,
        "{}",
        json.stdout
    );
}

#[test]
fn a_location_that_fails_to_load_is_a_load_error() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(100))
            .with_failing_location("beta"),
    );
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(LOAD);
    assert!(run.stderr.contains("ImportError in beta"), "{}", run.stderr);
    snapshot!("deploy_load_error", run.stderr);
}

#[test]
fn no_running_agent_is_a_timeout() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_agent(AgentBehaviour::NotRunning),
    );
    let sandbox = built_session(&emulator);
    let run = sandbox
        .in_session(["deploy", "--agent-heartbeat-timeout", "1"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(TIMEOUT);
    assert!(run.stderr.contains("agent"), "{}", run.stderr);
}

#[test]
fn status_prints_table_json_and_markdown() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    sandbox
        .in_session([
            "set-build-output",
            "--image-tag",
            "v1",
            "--location-name",
            "alpha",
        ])
        .run()
        .success();
    let table = sandbox.in_session(["status"]).run().success();
    let explicit = sandbox
        .in_session(["status", "--output-format", "table"])
        .run()
        .success();
    assert_eq!(table.stdout, explicit.stdout, "table is the default");
    snapshot!("status_table", table.stdout);

    let json = sandbox
        .in_session(["status", "--output-format", "json"])
        .run()
        .success();
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    snapshot!("status_json", json.stdout);

    let markdown = sandbox
        .in_session(["status", "--output-format", "markdown"])
        .run()
        .success();
    snapshot!("status_markdown", markdown.stdout);
}

#[test]
fn locations_list_select_and_deselect() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let deselect = sandbox
        .in_session(["locations", "deselect", "beta"])
        .run()
        .success();
    snapshot!("locations_deselect", deselect.stderr);
    let list = sandbox.in_session(["locations", "list"]).run().success();
    assert_eq!(list.stdout, "alpha\nbeta DESELECTED\n");

    // A deselected location is skipped by set-build-output and deploy.
    sandbox
        .in_session(["set-build-output", "--image-tag", "v2"])
        .run()
        .success();
    assert_eq!(
        sandbox.images(),
        [
            (
                "alpha".to_owned(),
                Some("registry.example.com/team/alpha:v2".to_owned())
            ),
            ("beta".to_owned(), None),
        ]
    );
    let dry_run = sandbox.in_session(["deploy", "--dry-run"]).run().success();
    assert!(dry_run.stdout.contains("\"alpha\""), "{}", dry_run.stdout);
    assert!(!dry_run.stdout.contains("\"beta\""), "{}", dry_run.stdout);

    let select = sandbox
        .in_session(["locations", "select", "beta"])
        .run()
        .success();
    snapshot!("locations_select", select.stderr);
    let list = sandbox.in_session(["locations", "list"]).run().success();
    assert_eq!(list.stdout, "alpha\nbeta\n");
}
